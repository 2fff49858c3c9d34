//! Fig. 1's grouped bars: one group per table column, one bar per variant, the
//! paper's number as a hollow bar beside ours.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{colour, DrawResult, Layout, BAR_PX, FONT, LABEL_PX, Y_AXIS_PX};
use super::Stat;
use crate::report::table;

/// One variant's bars: per group, our value and the paper's.
#[derive(Debug, Clone)]
pub struct BarSeries {
    pub label: String,
    pub name: String,
    pub values: Vec<Option<Stat>>,
    pub paper: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    /// Group headers: the table's columns (subtasks, then Avg.).
    pub groups: Vec<String>,
    pub series: Vec<BarSeries>,
    /// The question prior per group (see the table's baselines): a line across the
    /// group, the score a model must beat to have used the scene.
    pub prior: Vec<Option<f64>>,
}

pub(super) fn series_name(s: &BarSeries) -> String {
    if s.name.is_empty() || s.name == s.label {
        s.label.clone()
    } else {
        format!("({}) {}", s.label, s.name)
    }
}

/// One bar group per table column that holds a score, one series per variant with a
/// finished run or a paper number.
pub(super) fn bars(table: &table::Table) -> Bars {
    // Scores share one percent axis; Table 6's costs (parameters, ms, MB) do not.
    let keep: Vec<usize> = (0..table.columns.len()).filter(|&c| !table::is_cost(&table.columns[c].0)).collect();
    let series = table
        .rows
        .iter()
        .filter(|r| r.seeds_done > 0 || r.paper.iter().any(Option::is_some))
        .map(|r| BarSeries {
            label: r.label.clone(),
            name: r.name.clone(),
            values: keep.iter().map(|&c| Stat::of(&r.cells[c])).collect(),
            paper: keep.iter().map(|&c| r.paper[c]).collect(),
        })
        .collect();
    let groups = keep.iter().map(|&c| table.columns[c].1.clone()).collect();
    let prior_row = table.baselines.iter().find(|b| b.name == table::QUESTION_PRIOR);
    let prior = keep.iter().map(|&c| prior_row.and_then(|b| b.values[c])).collect();
    Bars { title: table.title.clone(), groups, series, prior }
}

pub(super) fn has_paper(b: &Bars) -> bool {
    b.series.iter().any(|s| s.paper.iter().any(Option::is_some))
}

/// The width of one variant's place in group `g`: room for the paper's bar
/// only where the paper has a number in that group.
pub(super) fn slot(b: &Bars, g: usize) -> f64 {
    if b.series.iter().any(|s| s.paper[g].is_some()) {
        2.0 * BAR_PX
    } else {
        BAR_PX
    }
}

/// Which series have a bar (ours or the paper's) in group `g`.
pub(super) fn present(b: &Bars, g: usize) -> Vec<usize> {
    (0..b.series.len()).filter(|&i| b.series[i].values[g].is_some() || b.series[i].paper[g].is_some()).collect()
}

/// A y range that starts at 0 (bars are lengths) and leaves room above the tallest bar.
fn bar_y_max(b: &Bars) -> f64 {
    let top = b
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().map(Stat::high).chain(s.paper.iter().flatten().copied()))
        .fold(0.0f64, f64::max);
    ((top * 1.08 / 10.0).ceil() * 10.0).clamp(10.0, 100.0).max(top)
}

/// The bar chart's x axis: plot units with one tick, and label, per group
/// centre. (Plotters' `with_key_points` would do, but cannot take a label
/// formatter on an f64 axis.)
struct GroupAxis {
    end: f64,
    centres: Vec<f64>,
}

impl Ranged for GroupAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.end
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        limit.0 + (value / self.end * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.centres.clone()
        }
    }
}

pub(super) fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars, layout: &Layout) -> DrawResult<DB> {
    let end = layout.groups.last().map_or(1.0, |g| g.1);
    let centres: Vec<f64> = layout.groups.iter().map(|(a, z)| (a + z) / 2.0).collect();
    let name_at = |x: &f64| {
        centres.iter().position(|c| (c - x).abs() < 0.5).map(|g| b.groups[g].clone()).unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(Y_AXIS_PX)
        .build_cartesian_2d(GroupAxis { end, centres: centres.clone() }, 0.0..bar_y_max(b))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&name_at)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_style((FONT, LABEL_PX))
        .y_label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, 15))
        .x_desc("subtask")
        .y_desc("score (%)")
        .max_light_lines(0)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    for (g, &(start, stop)) in layout.groups.iter().enumerate() {
        let shown = present(b, g);
        let slot = slot(b, g);
        let mut x = (start + stop) / 2.0 - shown.len() as f64 * slot / 2.0;
        for i in shown {
            let c = colour(i);
            let s = &b.series[i];
            if let Some(v) = s.values[g] {
                chart.draw_series(std::iter::once(Rectangle::new([(x + 1.0, 0.0), (x + BAR_PX - 1.0, v.mean)], c.filled())))?;
                if let Some(sd) = v.std {
                    let mid = x + BAR_PX / 2.0;
                    chart.draw_series(std::iter::once(ErrorBar::new_vertical(mid, v.mean - sd, v.mean, v.mean + sd, BLACK.stroke_width(1), 6)))?;
                }
            }
            if let Some(p) = s.paper[g] {
                let x0 = x + BAR_PX;
                chart.draw_series(std::iter::once(Rectangle::new([(x0 + 1.0, 0.0), (x0 + BAR_PX - 1.0, p)], c.mix(0.2).filled())))?;
                chart.draw_series(std::iter::once(Rectangle::new([(x0 + 1.0, 0.0), (x0 + BAR_PX - 1.0, p)], c.stroke_width(2))))?;
            }
            x += slot;
        }
        if let Some(p) = b.prior.get(g).copied().flatten() {
            chart.draw_series(std::iter::once(PathElement::new(vec![(start, p), (stop, p)], BLACK.stroke_width(2))))?;
        }
    }
    Ok(())
}

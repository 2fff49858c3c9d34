//! Table 5's curves: Avg. against each swept value, ours and the paper's.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{colour, DrawResult, FONT, LABEL_PX, Y_AXIS_PX};
use super::Stat;
use crate::config::{Experiment, RunSpec};
use crate::report::paper::PaperTable;
use crate::report::table;

/// Avg. along one sweep axis, the other swept keys held at one value.
#[derive(Debug, Clone)]
pub struct Curve {
    /// E.g. `gamma (beta = 0.5)`.
    pub name: String,
    /// The swept key on the x axis, e.g. `model.mask.gamma`.
    pub key: String,
    pub points: Vec<(f64, Stat)>,
    pub paper: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Curves {
    pub title: String,
    /// The swept keys, e.g. `data.shortcut.train` (Table 5: both of its axes).
    pub x_desc: String,
    pub y_desc: String,
    pub lines: Vec<Curve>,
    /// The blind guess's Avg., drawn as a rule, when every run saw the same questions.
    pub guess: Option<f64>,
}

pub(super) fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

fn leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// One line per variant and swept key. A zipped sweep such as Table 5's moves
/// one key at a time away from a centre point, so each line keeps the other
/// keys at their most frequent value (the centre), which recovers the paper's
/// one-at-a-time axes. `None` when a finished row lies on no line (a point that
/// moves two keys at once, as `geometry-faults`' missing-and-wrong corner, or a
/// grid over two keys): a figure must not drop a measured point without a word.
pub(super) fn curves(exp: &Experiment, plan: &[RunSpec], table: &table::Table) -> Option<Curves> {
    let avg = table.columns.len() - 1;
    let keys: Vec<String> = plan[0].sweep.iter().map(|(k, _)| k.clone()).collect();
    let point = |spec: &RunSpec, key: &str| spec.sweep.iter().find(|(k, _)| k == key).and_then(|(_, v)| number(v));
    let mut centre: BTreeMap<&str, f64> = BTreeMap::new();
    for key in &keys {
        let mut counts: Vec<(f64, usize)> = Vec::new();
        for spec in plan {
            if let Some(v) = point(spec, key) {
                match counts.iter_mut().find(|(x, _)| *x == v) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((v, 1)),
                }
            }
        }
        // max_by_key keeps the last of equals; reversing keeps the first listed value on ties.
        if let Some((v, _)) = counts.iter().rev().max_by_key(|(_, n)| *n) {
            centre.insert(key, *v);
        }
    }
    let paper = exp.file.reference.as_ref().and_then(|p| PaperTable::load(&exp.root.join(p)).ok());
    let one_variant = exp.file.variants.len() == 1;
    let mut drawn: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut lines = Vec::new();
    for variant in &exp.file.variants {
        for key in &keys {
            let others: Vec<&String> = keys.iter().filter(|k| *k != key).collect();
            let on_line = |spec: &RunSpec| spec.variant == variant.label && others.iter().all(|o| point(spec, o) == centre.get(o.as_str()).copied());
            let mut points: Vec<(f64, Stat)> = Vec::new();
            let mut xs: Vec<f64> = Vec::new();
            for row in &table.rows {
                let Some(spec) = plan.iter().find(|s| s.label == row.label) else { continue };
                if !on_line(spec) {
                    continue;
                }
                let Some(x) = point(spec, key) else { continue };
                xs.push(x);
                drawn.insert(&row.label);
                if let Some(stat) = Stat::of(&row.cells[avg]) {
                    points.push((x, stat));
                }
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            // The paper's table has no variant column; its numbers belong to the one variant there is.
            let mut paper_points: Vec<(f64, f64)> = match (&paper, one_variant) {
                (Some(p), true) => xs.iter().filter_map(|&x| paper_value(p, key, &keys, &centre, x).map(|v| (x, v))).collect(),
                _ => Vec::new(),
            };
            paper_points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let fixed: Vec<String> = others.iter().filter_map(|o| centre.get(o.as_str()).map(|v| format!("{} = {v}", leaf(o)))).collect();
            // With one swept key the x axis names it; a line is then named by its variant alone.
            let axis = if fixed.is_empty() { leaf(key).to_string() } else { format!("{} ({})", leaf(key), fixed.join(", ")) };
            let row = if variant.name.is_empty() { variant.label.clone() } else { format!("{}: {}", variant.label, variant.name) };
            let name = match (one_variant, keys.len()) {
                (true, _) => axis,
                (false, 1) => row,
                (false, _) => format!("{}: {axis}", variant.label),
            };
            if !points.is_empty() || !paper_points.is_empty() {
                lines.push(Curve { name, key: key.clone(), points, paper: paper_points });
            }
        }
    }
    if table.rows.iter().any(|r| r.seeds_done > 0 && !drawn.contains(r.label.as_str())) {
        return None;
    }
    let guess = table.baselines.iter().find(|b| b.name == table::BLIND_GUESS).and_then(|b| b.values[avg]);
    Some(Curves { title: table.title.clone(), x_desc: keys.join(" / "), y_desc: format!("{} (%)", table.columns[avg].1), lines, guess })
}

/// The paper's Avg. at the point where `key` = `x` and the other keys sit at the
/// centre, read from columns named after the keys' last parts (`gamma`, `beta`);
/// an `axis` column, when present, picks the row of the line's own axis.
fn paper_value(p: &PaperTable, key: &str, keys: &[String], centre: &BTreeMap<&str, f64>, x: f64) -> Option<f64> {
    let close = |row: &BTreeMap<String, String>, k: &str, v: f64| row.get(leaf(k)).and_then(|s| s.parse::<f64>().ok()).is_some_and(|c| (c - v).abs() < 1e-9);
    let index = p.rows.iter().position(|row| {
        row.get("axis").is_none_or(|a| a == leaf(key))
            && close(row, key, x)
            && keys.iter().filter(|k| *k != key).all(|k| centre.get(k.as_str()).is_some_and(|&v| close(row, k, v)))
    })?;
    p.number(index, "avg")
}

/// Whether swept values are drawn on a log axis: all above zero and spanning a factor
/// of 10 or more (a learning rate of 0.001, 0.003, 0.01), which a linear axis squashes
/// against zero.
fn log_axis(xs: &[f64]) -> bool {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi / lo >= 10.0
}

/// A swept value as an axis label: three significant digits, no trailing zeros.
fn tick_label(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = 2i32.saturating_sub(x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{x:.digits$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

pub(super) fn draw_curves<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &Curves) -> DrawResult<DB> {
    let raw: Vec<f64> = c.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0).chain(l.paper.iter().map(|p| p.0))).collect();
    // On a log axis the chart's x is log10 of the value; the labels give the value.
    let log = log_axis(&raw);
    let tx = |x: f64| if log { x.log10() } else { x };
    let xs: Vec<f64> = raw.iter().map(|x| tx(*x)).collect();
    let ys: Vec<f64> = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().flat_map(|(_, s)| [s.low(), s.high()]).chain(l.paper.iter().map(|p| p.1)))
        .chain(c.guess)
        .collect();
    let (x0, x1) = padded(&xs, 0.1, if log { 0.05 } else { 0.1 });
    let x_desc = if log { format!("{} (log scale)", c.x_desc) } else { c.x_desc.clone() };
    let x_label = |v: &f64| if log { tick_label(10f64.powf(*v)) } else { tick_label(*v) };
    let (y0, y1) = padded(&ys, 0.15, 2.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&c.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(56)
        .y_label_area_size(Y_AXIS_PX)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_label_style((FONT, LABEL_PX))
        .y_label_style((FONT, LABEL_PX))
        .axis_desc_style((FONT, 15))
        .x_desc(x_desc.as_str())
        .x_label_formatter(&x_label)
        .y_desc(c.y_desc.as_str())
        .max_light_lines(0)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    if let Some(g) = c.guess {
        chart.draw_series(std::iter::once(PathElement::new(vec![(x0, g), (x1, g)], BLACK.stroke_width(2))))?;
    }
    for (i, l) in c.lines.iter().enumerate() {
        let col = colour(i);
        chart.draw_series(LineSeries::new(l.points.iter().map(|(x, s)| (tx(*x), s.mean)), col.stroke_width(2)))?;
        chart.draw_series(l.points.iter().map(|(x, s)| Circle::new((tx(*x), s.mean), 4, col.filled())))?;
        chart.draw_series(
            l.points
                .iter()
                .filter_map(|(x, s)| s.std.map(|sd| ErrorBar::new_vertical(tx(*x), s.mean - sd, s.mean, s.mean + sd, col.stroke_width(1), 8))),
        )?;
        chart.draw_series(DashedLineSeries::new(l.paper.iter().map(|(x, y)| (tx(*x), *y)), 6, 4, col.stroke_width(2)))?;
        chart.draw_series(l.paper.iter().map(|(x, y)| Circle::new((tx(*x), *y), 5, col.stroke_width(2))))?;
    }
    Ok(())
}

/// The range of `values` widened by `share` of its span on each side, and by at
/// least `min_pad`, so points never sit on the frame.
fn padded(values: &[f64], share: f64, min_pad: f64) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * share).max(min_pad);
    (lo - pad, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_spanning_a_decade_get_a_log_axis_with_plain_labels() {
        assert!(log_axis(&[0.001, 0.003, 0.01]));
        assert!(!log_axis(&[0.4, 0.6, 0.8]), "Table 5's gamma stays linear");
        assert!(!log_axis(&[0.0, 1.0, 10.0]), "zero has no logarithm");
        assert_eq!((tick_label(0.001), tick_label(0.00316228), tick_label(0.6), tick_label(250.0)), ("0.001".into(), "0.00316".into(), "0.6".into(), "250".into()));
        assert_eq!((tick_label(0.0), tick_label(-0.25)), ("0".into(), "-0.25".into()));
    }

    #[test]
    fn padding_keeps_points_off_the_frame() {
        assert_eq!(padded(&[], 0.1, 1.0), (0.0, 1.0));
        let (lo, hi) = padded(&[65.0, 66.0], 0.1, 2.0);
        assert!(lo < 65.0 && hi > 66.0 && (hi - lo - 5.0).abs() < 1e-9);
    }
}

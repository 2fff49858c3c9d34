//! Learning curves (`geosr plot EXPERIMENT --curves`): per row, the training loss and
//! the held-out score against the step, mean ± std over the seeds that logged each
//! step, with each run's own line drawn faintly. Runs still training count with the steps they have logged, so a sweep can be
//! watched as it goes.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{colour, DrawResult, FONT, LABEL_PX, Y_AXIS_PX};
use crate::config::RunSpec;
use crate::eval::CurveRow;
use crate::runs::StoreError;
use crate::train::StepRow;

/// One row's line in a panel: at each step, the mean and std over its seeds, and each
/// seed's own line.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub name: String,
    /// (step, mean, std over seeds or 0 with one seed, seeds).
    pub points: Vec<(f64, f64, f64, usize)>,
    /// Each run's (step, value) line.
    pub runs: Vec<Vec<(f64, f64)>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub y_desc: String,
    pub bands: Vec<Band>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LearningCurves {
    pub title: String,
    /// The training loss; then, when any run logged a curve.csv, the held-out score.
    pub panels: Vec<Panel>,
    /// Runs that logged no held-out scores (their `eval.every` was 0).
    pub without_curve: usize,
}

/// Points a loss line keeps: enough for its shape, few enough for a light SVG.
const LOSS_POINTS: usize = 200;

/// The learning curves of `plan`'s runs, or `None` when none has logged a step.
pub fn learning(title: &str, plan: &[RunSpec]) -> Result<Option<LearningCurves>, StoreError> {
    let mut labels: Vec<String> = Vec::new();
    for spec in plan {
        if !labels.contains(&spec.label) {
            labels.push(spec.label.clone());
        }
    }
    let (mut loss_bands, mut score_bands) = (Vec::new(), Vec::new());
    let mut without_curve = 0;
    let mut seen = std::collections::HashSet::new();
    let mut average_name = "Avg.";
    for label in &labels {
        let (mut losses, mut scores) = (Vec::new(), Vec::new());
        for spec in plan.iter().filter(|s| &s.label == label) {
            if !seen.insert((spec.label.clone(), spec.id.clone())) {
                continue;
            }
            let dir = crate::runs::run_dir(spec);
            if !dir.train_csv().exists() {
                continue;
            }
            let rows: Vec<StepRow> = dir.read_csv(&dir.train_csv())?;
            if rows.is_empty() {
                continue;
            }
            losses.push(smoothed_loss(&rows, crate::launch::progress::total_steps(spec)));
            let average = match spec.resolved.config.eval.average {
                crate::config::Average::Macro => "avg_macro",
                crate::config::Average::Micro => "avg_micro",
            };
            average_name = if average == "avg_macro" { "Avg. over subtasks" } else { "Avg. over questions" };
            let curve_path = dir.path.join("curve.csv");
            if curve_path.exists() {
                let curve: Vec<CurveRow> = dir.read_csv(&curve_path)?;
                scores.push(curve.into_iter().filter(|r| r.subtask == average).map(|r| (r.step as f64, r.score)).collect());
            } else {
                without_curve += 1;
            }
        }
        if !losses.is_empty() {
            loss_bands.push(Band { name: label.clone(), points: across_seeds(&losses), runs: losses });
        }
        if !scores.is_empty() {
            score_bands.push(Band { name: label.clone(), points: across_seeds(&scores), runs: scores });
        }
    }
    if loss_bands.is_empty() {
        return Ok(None);
    }
    let mut panels = vec![Panel { y_desc: "training loss (moving mean)".into(), bands: loss_bands }];
    if !score_bands.is_empty() {
        panels.push(Panel { y_desc: format!("held-out {average_name} (%)"), bands: score_bands });
    }
    Ok(Some(LearningCurves { title: format!("{title}: learning curves"), panels, without_curve }))
}

/// The loss as a moving mean over a hundredth of the run, at most [`LOSS_POINTS`]
/// points, on the step grid the run's total gives (so seeds line up).
fn smoothed_loss(rows: &[StepRow], total: usize) -> Vec<(f64, f64)> {
    let window = (total / 100).max(1);
    let stride = total.div_ceil(LOSS_POINTS).max(1);
    let mut out = Vec::new();
    let mut sum = 0.0;
    let mut queue = std::collections::VecDeque::new();
    for r in rows {
        sum += r.loss;
        queue.push_back(r.loss);
        if queue.len() > window {
            sum -= queue.pop_front().unwrap_or(0.0);
        }
        let done = r.step + 1;
        if done % stride == 0 || done == total {
            out.push((done as f64, sum / queue.len() as f64));
        }
    }
    out
}

/// Mean and std at each step over the series that have it.
fn across_seeds(series: &[Vec<(f64, f64)>]) -> Vec<(f64, f64, f64, usize)> {
    let mut steps: Vec<f64> = series.iter().flat_map(|s| s.iter().map(|p| p.0)).collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    steps
        .into_iter()
        .map(|x| {
            let ys: Vec<f64> = series.iter().filter_map(|s| s.iter().find(|p| p.0 == x).map(|p| p.1)).collect();
            let n = ys.len() as f64;
            let mean = ys.iter().sum::<f64>() / n;
            let std = if ys.len() > 1 { (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
            (x, mean, std, ys.len())
        })
        .collect()
}

pub(super) fn draw_learning<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &LearningCurves) -> DrawResult<DB> {
    let title_height = 40;
    let (title, body) = area.split_vertically(title_height);
    title.draw_text(&c.title, &TextStyle::from((FONT, 20).into_font()).color(&BLACK), (Y_AXIS_PX as i32, 10))?;
    let panels = body.split_evenly((c.panels.len(), 1));
    for (panel, area) in c.panels.iter().zip(&panels) {
        let xs: Vec<f64> = panel.bands.iter().flat_map(|b| b.points.iter().map(|p| p.0)).collect();
        let ys: Vec<f64> = panel.bands.iter().flat_map(|b| b.points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2])).collect();
        let x1 = xs.iter().copied().fold(1.0, f64::max);
        let (lo, hi) = (ys.iter().copied().fold(f64::INFINITY, f64::min), ys.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(Y_AXIS_PX)
            .build_cartesian_2d(0.0..x1, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_label_style((FONT, LABEL_PX))
            .y_label_style((FONT, LABEL_PX))
            .axis_desc_style((FONT, 15))
            .x_desc("training step")
            .y_desc(panel.y_desc.as_str())
            .max_light_lines(0)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        for (i, band) in panel.bands.iter().enumerate() {
            let col = colour(i);
            if band.points.iter().any(|p| p.2 > 0.0) {
                let upper = band.points.iter().map(|p| (p.0, p.1 + p.2));
                let lower = band.points.iter().rev().map(|p| (p.0, p.1 - p.2));
                chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), col.mix(0.18).filled())))?;
            }
            // Each seed faintly, so one run that went its own way shows.
            if band.runs.len() > 1 {
                for run in &band.runs {
                    chart.draw_series(LineSeries::new(run.iter().copied(), col.mix(0.45).stroke_width(1)))?;
                }
            }
            chart.draw_series(LineSeries::new(band.points.iter().map(|p| (p.0, p.1)), col.stroke_width(2)))?;
            if band.points.len() <= 40 {
                chart.draw_series(band.points.iter().map(|p| Circle::new((p.0, p.1), 3, col.filled())))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: usize, loss: f64) -> StepRow {
        StepRow { step, epoch: 0, loss, lr: 0.0, samples_per_s: 0.0, elapsed_s: 0.0 }
    }

    #[test]
    fn the_loss_is_smoothed_onto_a_shared_grid() {
        let rows: Vec<StepRow> = (0..1000).map(|s| row(s, if s % 2 == 0 { 1.0 } else { 3.0 })).collect();
        let points = smoothed_loss(&rows, 1000);
        assert_eq!(points.len(), 200);
        assert_eq!(points[0].0, 5.0);
        assert_eq!(points.last().unwrap().0, 1000.0);
        // A window of 10 steps averages the alternation away.
        assert!(points[10..].iter().all(|p| (p.1 - 2.0).abs() < 1e-12));
    }

    #[test]
    fn seeds_are_averaged_where_they_have_the_step() {
        let a = vec![(10.0, 50.0), (20.0, 60.0)];
        let b = vec![(10.0, 54.0)];
        let points = across_seeds(&[a, b]);
        assert_eq!(points[0].0, 10.0);
        assert!((points[0].1 - 52.0).abs() < 1e-12);
        assert!((points[0].2 - 8.0f64.sqrt()).abs() < 1e-12);
        assert_eq!(points[0].3, 2);
        assert_eq!(points[1], (20.0, 60.0, 0.0, 1));
    }
}

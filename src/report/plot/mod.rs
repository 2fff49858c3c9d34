//! `geosr plot`: an experiment's figure drawn from its stored runs, to SVG and PNG.
//!
//! An experiment without a sweep becomes Fig. 1's grouped bars: one group per
//! table column (subtasks, then Avg.), one bar per variant, the paper's number as
//! a hollow bar beside ours. An experiment with a numeric sweep becomes Table 5's
//! curves: Avg. against each swept value. The numbers come from
//! [`table::build`], so a plot and its table never disagree.

mod bars;
mod canvas;
mod curves;
mod learning;

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::config::{Experiment, RunSpec};
use crate::runs::StoreError;

use super::table::{self, Cell};
pub use bars::{BarSeries, Bars};
pub use curves::{Curve, Curves};
pub use learning::{learning, Band, LearningCurves, Panel};

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no font to draw the plot's text with: no TrueType or OpenType font under /usr/share/fonts, \
         /usr/local/share/fonts, ~/.fonts or ~/.local/share/fonts; install one, e.g. `apt-get install fonts-dejavu-core`"
    )]
    NoFont,
    #[error("{experiment}: no finished runs to plot under {}; train them first with `geosr run {experiment}`", dir.display())]
    NoRuns { experiment: String, dir: PathBuf },
    #[error("drawing the plot: {0}")]
    Draw(String),
}

/// A mean over the seeds that finished; `std` only when there are two or more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub seeds: usize,
}

impl Stat {
    fn of(cell: &Cell) -> Option<Stat> {
        let n = cell.values.len();
        Some(Stat { mean: cell.mean()?, std: cell.std().filter(|_| n >= 2), seeds: n })
    }
    fn low(&self) -> f64 {
        self.mean - self.std.unwrap_or(0.0)
    }
    fn high(&self) -> f64 {
        self.mean + self.std.unwrap_or(0.0)
    }
}

#[derive(Debug, Clone)]
pub enum Figure {
    Bars(Bars),
    Curves(Curves),
    /// Loss and held-out score against the training step (`plot --curves`).
    Learning(LearningCurves),
}

/// The figure of `exp` from the finished runs of `plan`.
pub fn figure(exp: &Experiment, plan: &[RunSpec]) -> Result<Figure, PlotError> {
    let table = table::build(exp, plan, true)?;
    if table.rows.iter().all(|r| r.seeds_done == 0) {
        let dir = plan.first().map_or_else(PathBuf::new, |s| {
            crate::runs::store::entry_path(Path::new(&s.resolved.config.output.results_dir), &s.experiment, "")
        });
        return Err(PlotError::NoRuns { experiment: exp.name.clone(), dir });
    }
    let numeric_sweep = plan.first().is_some_and(|s| !s.sweep.is_empty())
        && plan.iter().all(|s| s.sweep.iter().all(|(_, v)| curves::number(v).is_some()));
    // Curves when every finished row lies on one; else bars, which show every row.
    if let Some(curves) = numeric_sweep.then(|| curves::curves(exp, plan, &table)).flatten() {
        return Ok(Figure::Curves(curves));
    }
    Ok(Figure::Bars(bars::bars(&table)))
}

/// The image formats `geosr plot` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

/// Draws `fig` and returns the file's bytes. The PNG is the SVG rasterised, so
/// the two files always show the same picture.
pub fn render(fig: &Figure, format: ImageFormat) -> Result<Vec<u8>, PlotError> {
    let fonts = canvas::fonts()?;
    let layout = canvas::Layout::of(fig)?;
    let mut svg = String::new();
    canvas::draw(SVGBackend::with_string(&mut svg, (layout.width, layout.height)).into_drawing_area(), fig, &layout)?;
    match format {
        ImageFormat::Svg => Ok(svg.into_bytes()),
        ImageFormat::Png => {
            let options = resvg::usvg::Options { fontdb: fonts.clone(), ..Default::default() };
            let tree = resvg::usvg::Tree::from_str(&svg, &options).map_err(|e| PlotError::Draw(e.to_string()))?;
            let mut pixmap = resvg::tiny_skia::Pixmap::new(layout.width, layout.height)
                .ok_or_else(|| PlotError::Draw(format!("cannot allocate a {}x{} image", layout.width, layout.height)))?;
            resvg::render(&tree, resvg::tiny_skia::Transform::identity(), &mut pixmap.as_mut());
            pixmap.encode_png().map_err(|e| PlotError::Draw(e.to_string()))
        }
    }
}

/// Writes `<dir>/<name>.svg` and `.png`, each atomically; returns their paths.
pub fn write(fig: &Figure, dir: &Path, name: &str) -> Result<Vec<PathBuf>, PlotError> {
    // Both are drawn before either is written, so a drawing error leaves the old pair intact.
    let files = [("svg", render(fig, ImageFormat::Svg)?), ("png", render(fig, ImageFormat::Png)?)];
    let mut paths = Vec::new();
    for (ext, bytes) in files {
        let path = dir.join(format!("{name}.{ext}"));
        crate::runs::write_atomic(&path, &bytes)?;
        paths.push(path);
    }
    Ok(paths)
}

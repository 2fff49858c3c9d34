//! `geosr plot`: an experiment's figure drawn from its stored runs, to SVG and PNG.
//!
//! An experiment without a sweep becomes Fig. 1's grouped bars: one group per
//! table column (subtasks, then Avg.), one bar per variant, the paper's number as
//! a hollow bar beside ours. An experiment with a numeric sweep becomes Table 5's
//! curves: Avg. against each swept value. The numbers come from
//! [`table::build`], so a plot and its table never disagree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::config::{Experiment, RunSpec};
use crate::runs::StoreError;

use super::paper::PaperTable;
use super::table::{self, Cell};

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
    pub y_desc: String,
    pub lines: Vec<Curve>,
}

#[derive(Debug, Clone)]
pub enum Figure {
    Bars(Bars),
    Curves(Curves),
}

fn series_name(s: &BarSeries) -> String {
    if s.name.is_empty() || s.name == s.label {
        s.label.clone()
    } else {
        format!("({}) {}", s.label, s.name)
    }
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
        && plan.iter().all(|s| s.sweep.iter().all(|(_, v)| number(v).is_some()));
    if numeric_sweep {
        return Ok(Figure::Curves(curves(exp, plan, &table)));
    }
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
    Ok(Figure::Bars(Bars { title: table.title.clone(), groups, series, prior }))
}

fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

fn leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// One line per variant and swept key. A zipped sweep such as Table 5's moves
/// one key at a time away from a centre point, so each line keeps the other
/// keys at their most frequent value (the centre), which recovers the paper's
/// one-at-a-time axes; on a grid it is the slice through the first values.
fn curves(exp: &Experiment, plan: &[RunSpec], table: &table::Table) -> Curves {
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
            let mut name = if fixed.is_empty() { leaf(key).to_string() } else { format!("{} ({})", leaf(key), fixed.join(", ")) };
            if !one_variant {
                name = format!("{}: {name}", variant.label);
            }
            if !points.is_empty() || !paper_points.is_empty() {
                lines.push(Curve { name, key: key.clone(), points, paper: paper_points });
            }
        }
    }
    Curves { title: table.title.clone(), y_desc: format!("{} (%)", table.columns[avg].1), lines }
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

/// The image formats `geosr plot` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

/// Draws `fig` and returns the file's bytes. The PNG is the SVG rasterised, so
/// the two files always show the same picture.
pub fn render(fig: &Figure, format: ImageFormat) -> Result<Vec<u8>, PlotError> {
    let fonts = fonts()?;
    let layout = Layout::of(fig)?;
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, (layout.width, layout.height)).into_drawing_area(), fig, &layout)?;
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

/// The system's fonts, loaded once per process. Plotters measures and places
/// text only with a registered font, and the rasteriser needs the same face
/// for the SVG's `sans-serif`, so one sans serif face is picked for both.
fn fonts() -> Result<&'static Arc<fontdb::Database>, PlotError> {
    static FONTS: OnceLock<Option<Arc<fontdb::Database>>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_system_fonts();
            let (family, bytes) = sans_serif(&db)?;
            // The font lives as long as the process, as plotters' font table requires.
            plotters::style::register_font(FONT, FontStyle::Normal, Box::leak(bytes.into_boxed_slice())).ok()?;
            db.set_sans_serif_family(family);
            Some(Arc::new(db))
        })
        .as_ref()
        .ok_or(PlotError::NoFont)
}

/// A regular sans serif face from `db` (its family name and file), preferring
/// DejaVu Sans (Debian's fonts-dejavu-core) so plots look the same on every
/// machine that has it.
fn sans_serif(db: &fontdb::Database) -> Option<(String, Vec<u8>)> {
    use fontdb::{Family, Query};
    let families = [Family::Name("DejaVu Sans"), Family::Name("Liberation Sans"), Family::Name("Noto Sans"), Family::SansSerif];
    let id = families
        .iter()
        .find_map(|f| db.query(&Query { families: std::slice::from_ref(f), ..Query::default() }))
        // Plotters reads the first face of a file, so only a file's first face will do.
        .or_else(|| db.faces().find(|f| f.index == 0).map(|f| f.id))?;
    let family = db.face(id)?.families.first()?.0.clone();
    let bytes = db.with_face_data(id, |data, index| (index == 0).then(|| data.to_vec())).flatten()?;
    Some((family, bytes))
}

/// Colour-blind-safe colours (Okabe and Ito), one per variant or line.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

const FONT: &str = "sans-serif";
const LABEL_PX: u32 = 14;
const BAR_PX: f64 = 12.0;
const PLOT_HEIGHT: u32 = 560;
const Y_AXIS_PX: u32 = 70;

fn text_width(text: &str, size: u32) -> Result<u32, PlotError> {
    let (w, _) = (FONT, size).into_font().box_size(text).map_err(|e| PlotError::Draw(e.to_string()))?;
    Ok(w)
}

/// Sizes that depend on the text: the canvas grows with the groups and the
/// legend instead of letting labels overlap or the legend cover data.
struct Layout {
    width: u32,
    height: u32,
    legend_width: u32,
    /// Per bar group: its x range in plot units (one unit = one pixel at this size).
    groups: Vec<(f64, f64)>,
}

enum Swatch {
    Filled,
    Rule,
    Hollow,
    ErrorBar,
    Line,
    Dashed,
}

fn legend_items(fig: &Figure) -> Vec<(RGBColor, Swatch, String)> {
    match fig {
        Figure::Bars(b) => {
            let mut items: Vec<_> = b.series.iter().enumerate().map(|(i, s)| (colour(i), Swatch::Filled, series_name(s))).collect();
            if has_paper(b) {
                items.push((RGBColor(90, 90, 90), Swatch::Hollow, "paper (hollow bar)".into()));
            }
            if b.series.iter().any(|s| s.values.iter().flatten().any(|v| v.std.is_some())) {
                items.push((BLACK, Swatch::ErrorBar, "ours: mean ± std over seeds".into()));
            }
            if b.prior.iter().any(Option::is_some) {
                items.push((BLACK, Swatch::Rule, "question prior (no model)".into()));
            }
            items
        }
        Figure::Curves(c) => {
            let mut items = Vec::new();
            for (i, l) in c.lines.iter().enumerate() {
                if !l.points.is_empty() {
                    items.push((colour(i), Swatch::Line, format!("{} (ours)", l.name)));
                }
                if !l.paper.is_empty() {
                    items.push((colour(i), Swatch::Dashed, format!("{} (paper)", l.name)));
                }
            }
            items
        }
    }
}

fn has_paper(b: &Bars) -> bool {
    b.series.iter().any(|s| s.paper.iter().any(Option::is_some))
}

/// The width of one variant's place in group `g`: room for the paper's bar
/// only where the paper has a number in that group.
fn slot(b: &Bars, g: usize) -> f64 {
    if b.series.iter().any(|s| s.paper[g].is_some()) {
        2.0 * BAR_PX
    } else {
        BAR_PX
    }
}

/// Which series have a bar (ours or the paper's) in group `g`.
fn present(b: &Bars, g: usize) -> Vec<usize> {
    (0..b.series.len()).filter(|&i| b.series[i].values[g].is_some() || b.series[i].paper[g].is_some()).collect()
}

impl Layout {
    fn of(fig: &Figure) -> Result<Layout, PlotError> {
        let mut legend_width = 0;
        for (_, _, text) in legend_items(fig) {
            legend_width = legend_width.max(text_width(&text, LABEL_PX)?);
        }
        let legend_width = legend_width + 60;
        let title = match fig {
            Figure::Bars(b) => &b.title,
            Figure::Curves(c) => &c.title,
        };
        let title_width = text_width(title, 20)? + 40;
        let (plot_width, groups) = match fig {
            Figure::Bars(b) => {
                let mut x = 0.0;
                let mut groups = Vec::new();
                for (g, header) in b.groups.iter().enumerate() {
                    let bars = present(b, g).len() as f64 * slot(b, g);
                    let width = (bars + 24.0).max(f64::from(text_width(header, LABEL_PX)?) + 16.0);
                    groups.push((x, x + width));
                    x += width;
                }
                (x as u32 + Y_AXIS_PX + 30, groups)
            }
            Figure::Curves(_) => (760, Vec::new()),
        };
        Ok(Layout { width: (plot_width + legend_width).max(title_width), height: PLOT_HEIGHT, legend_width, groups })
    }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure, layout: &Layout) -> Result<(), PlotError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError::Draw(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let (plot, legend) = root.split_horizontally(layout.width - layout.legend_width);
    match fig {
        Figure::Bars(b) => draw_bars(&plot, b, layout).map_err(err)?,
        Figure::Curves(c) => draw_curves(&plot, c).map_err(err)?,
    }
    draw_legend(&legend, &legend_items(fig)).map_err(err)?;
    root.present().map_err(err)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

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

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars, layout: &Layout) -> DrawResult<DB> {
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

fn draw_curves<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &Curves) -> DrawResult<DB> {
    let xs: Vec<f64> = c.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0).chain(l.paper.iter().map(|p| p.0))).collect();
    let ys: Vec<f64> = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().flat_map(|(_, s)| [s.low(), s.high()]).chain(l.paper.iter().map(|p| p.1)))
        .collect();
    let (x0, x1) = padded(&xs, 0.1, 0.1);
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
        .x_desc("swept value")
        .y_desc(c.y_desc.as_str())
        .max_light_lines(0)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    for (i, l) in c.lines.iter().enumerate() {
        let col = colour(i);
        chart.draw_series(LineSeries::new(l.points.iter().map(|(x, s)| (*x, s.mean)), col.stroke_width(2)))?;
        chart.draw_series(l.points.iter().map(|(x, s)| Circle::new((*x, s.mean), 4, col.filled())))?;
        chart.draw_series(
            l.points
                .iter()
                .filter_map(|(x, s)| s.std.map(|sd| ErrorBar::new_vertical(*x, s.mean - sd, s.mean, s.mean + sd, col.stroke_width(1), 8))),
        )?;
        chart.draw_series(DashedLineSeries::new(l.paper.iter().copied(), 6, 4, col.stroke_width(2)))?;
        chart.draw_series(l.paper.iter().map(|p| Circle::new(*p, 5, col.stroke_width(2))))?;
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

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, items: &[(RGBColor, Swatch, String)]) -> DrawResult<DB> {
    let style = TextStyle::from((FONT, LABEL_PX).into_font()).color(&BLACK);
    for (row, (c, swatch, text)) in items.iter().enumerate() {
        let y = 60 + row as i32 * 24;
        match swatch {
            Swatch::Filled => area.draw(&Rectangle::new([(8, y - 6), (22, y + 8)], c.filled()))?,
            Swatch::Rule => area.draw(&PathElement::new(vec![(4, y + 1), (26, y + 1)], c.stroke_width(2)))?,
            Swatch::Hollow => {
                area.draw(&Rectangle::new([(8, y - 6), (22, y + 8)], c.mix(0.2).filled()))?;
                area.draw(&Rectangle::new([(8, y - 6), (22, y + 8)], c.stroke_width(2)))?;
            }
            Swatch::ErrorBar => area.draw(&ErrorBar::new_vertical(15, y - 7, y + 1, y + 9, c.stroke_width(1), 6))?,
            Swatch::Line => {
                area.draw(&PathElement::new(vec![(4, y + 1), (26, y + 1)], c.stroke_width(2)))?;
                area.draw(&Circle::new((15, y + 1), 3, c.filled()))?;
            }
            Swatch::Dashed => {
                area.draw(&PathElement::new(vec![(4, y + 1), (10, y + 1)], c.stroke_width(2)))?;
                area.draw(&PathElement::new(vec![(20, y + 1), (26, y + 1)], c.stroke_width(2)))?;
                area.draw(&Circle::new((15, y + 1), 4, c.stroke_width(2)))?;
            }
        }
        area.draw_text(text, &style, (34, y - 7))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_font_database_gives_no_font() {
        assert!(sans_serif(&fontdb::Database::new()).is_none());
    }

    #[test]
    fn padding_keeps_points_off_the_frame() {
        assert_eq!(padded(&[], 0.1, 1.0), (0.0, 1.0));
        let (lo, hi) = padded(&[65.0, 66.0], 0.1, 2.0);
        assert!(lo < 65.0 && hi > 66.0 && (hi - lo - 5.0).abs() < 1e-9);
    }
}

//! What both figures share: the font, the colours, the canvas sized to the text,
//! and the legend.

use std::sync::{Arc, OnceLock};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::bars::{has_paper, present, series_name, slot};
use super::{bars, curves, learning, Figure, PlotError};

/// The system's fonts, loaded once per process. Plotters measures and places
/// text only with a registered font, and the rasteriser needs the same face
/// for the SVG's `sans-serif`, so one sans serif face is picked for both.
pub(super) fn fonts() -> Result<&'static Arc<fontdb::Database>, PlotError> {
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

/// The i-th series' colour. Past the eighth, the palette comes round again mixed
/// 45% (then 70%, ...) toward white, so no two series of a figure share a colour.
pub(super) fn colour(i: usize) -> RGBColor {
    let RGBColor(r, g, b) = COLOURS[i % COLOURS.len()];
    let round = (i / COLOURS.len()) as i32;
    let keep = 0.55f64.powi(round);
    let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * keep).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

pub(super) const FONT: &str = "sans-serif";
pub(super) const LABEL_PX: u32 = 14;
pub(super) const BAR_PX: f64 = 12.0;
const PLOT_HEIGHT: u32 = 560;
pub(super) const Y_AXIS_PX: u32 = 70;

fn text_width(text: &str, size: u32) -> Result<u32, PlotError> {
    let (w, _) = (FONT, size).into_font().box_size(text).map_err(|e| PlotError::Draw(e.to_string()))?;
    Ok(w)
}

/// Sizes that depend on the text: the canvas grows with the groups and the
/// legend instead of letting labels overlap or the legend cover data.
pub(super) struct Layout {
    pub(super) width: u32,
    pub(super) height: u32,
    legend_width: u32,
    /// Per bar group: its x range in plot units (one unit = one pixel at this size).
    pub(super) groups: Vec<(f64, f64)>,
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
            if c.lines.iter().any(|l| l.points.iter().any(|(_, s)| s.std.is_some())) {
                items.push((BLACK, Swatch::ErrorBar, "ours: mean ± std over seeds".into()));
            }
            if c.guess.is_some() {
                items.push((BLACK, Swatch::Rule, "blind guess (no model)".into()));
            }
            items
        }
        Figure::Learning(l) => {
            let mut items: Vec<_> =
                l.panels[0].bands.iter().enumerate().map(|(i, b)| (colour(i), Swatch::Line, b.name.clone())).collect();
            if l.panels.iter().any(|p| p.bands.iter().any(|b| b.points.iter().any(|p| p.3 > 1))) {
                items.push((RGBColor(150, 150, 150), Swatch::Filled, "shaded: mean ± std over seeds".into()));
                items.push((RGBColor(150, 150, 150), Swatch::Rule, "thin: each seed".into()));
            }
            items
        }
    }
}

impl Layout {
    pub(super) fn of(fig: &Figure) -> Result<Layout, PlotError> {
        let mut legend_width = 0;
        for (_, _, text) in legend_items(fig) {
            legend_width = legend_width.max(text_width(&text, LABEL_PX)?);
        }
        let legend_width = legend_width + 60;
        let title = match fig {
            Figure::Bars(b) => &b.title,
            Figure::Curves(c) => &c.title,
            Figure::Learning(l) => &l.title,
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
            Figure::Curves(_) | Figure::Learning(_) => (760, Vec::new()),
        };
        let height = match fig {
            Figure::Learning(l) => 40 + 320 * l.panels.len() as u32,
            _ => PLOT_HEIGHT,
        };
        // The title is the plot area's caption, centred over it; the legend takes the
        // rest of the canvas, so it is the plot area that must hold the title.
        Ok(Layout { width: plot_width.max(title_width) + legend_width, height, legend_width, groups })
    }
}

pub(super) fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure, layout: &Layout) -> Result<(), PlotError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError::Draw(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let (plot, legend) = root.split_horizontally(layout.width - layout.legend_width);
    match fig {
        Figure::Bars(b) => bars::draw_bars(&plot, b, layout).map_err(err)?,
        Figure::Curves(c) => curves::draw_curves(&plot, c).map_err(err)?,
        Figure::Learning(l) => learning::draw_learning(&plot, l).map_err(err)?,
    }
    draw_legend(&legend, &legend_items(fig)).map_err(err)?;
    root.present().map_err(err)
}

pub(super) type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

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
    fn a_long_title_widens_the_plot_area_not_only_the_canvas() {
        if fonts().is_err() {
            return; // no system font: nothing can be measured (render reports NoFont)
        }
        let title = "A title much longer than the default plot area is wide, as experiment titles often are";
        let fig = Figure::Curves(curves::Curves {
            title: title.into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            lines: Vec::new(),
            guess: Some(38.0),
        });
        let layout = Layout::of(&fig).unwrap();
        let plot_area = layout.width - layout.legend_width;
        assert!(plot_area >= text_width(title, 20).unwrap() + 40, "plot area {plot_area} px is narrower than the title");
    }

    #[test]
    fn the_first_sixteen_series_have_sixteen_colours() {
        let colours: std::collections::BTreeSet<(u8, u8, u8)> = (0..16).map(|i| (colour(i).0, colour(i).1, colour(i).2)).collect();
        assert_eq!(colours.len(), 16);
        assert_eq!((colour(0).0, colour(0).1, colour(0).2), (0, 114, 178), "the first eight are Okabe and Ito's");
    }
}

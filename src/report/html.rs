//! `geosr report`: one self-contained HTML page per experiment (styles and figures
//! inline, no script, nothing fetched when it is opened): the table with the paper's
//! numbers, the claims with their CIs, the figure and the learning curves, and every
//! run's provenance and config one click away.

use crate::config::{Experiment, RunSpec};
use crate::runs::StoreError;

use super::claims::{self, Outcome, Verdict};
use super::controls::{Condition, Grid, CLAIMS_LEGEND};
use super::plot::{self, Figure, ImageFormat};
use super::table::{self, Format};

/// Text made safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2rem auto; max-width: 78rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
p.meta, .note { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
thead th { background: #f2f2f2; } tbody th { text-align: left; }
td.best { font-weight: bold; } td.second { text-decoration: underline; }
span.paper { color: #777; } tr.baseline { color: #666; font-style: italic; }
td.held { color: #05683a; font-weight: bold; } td.notheld { color: #a11; font-weight: bold; } td.weak { color: #8a6d00; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
details { margin: 0.2rem 0; } pre { background: #f7f7f7; padding: 0.5rem; overflow-x: auto; font-size: 0.8rem; }
";

/// What the page says about where it came from.
pub struct PageMeta {
    pub written: String,
    pub build: String,
    pub overrides: Vec<String>,
}

/// The report page of `exp` from the stored runs of `plan`; with `controls` (the file as
/// written, then each of its controls) it also sets their claims side by side.
pub fn page(exp: &Experiment, plan: &[RunSpec], verdicts: &[Verdict], controls: &[Condition], meta: &PageMeta) -> Result<String, StoreError> {
    let table = table::build(exp, plan, true)?;
    let mut out = String::new();
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&exp.file.title)
    ));
    out.push_str(&format!("<h1>{}</h1>\n", escape(&exp.file.title)));
    out.push_str(&format!(
        "<p class=\"meta\">Experiment <code>{}</code> ({}), written {} by geosr {}{}.</p>\n",
        escape(&exp.name),
        escape(&exp.path.display().to_string()),
        escape(&meta.written),
        escape(&meta.build),
        if meta.overrides.is_empty() { String::new() } else { format!(" with overrides {}", escape(&meta.overrides.join(", "))) }
    ));
    if !exp.file.description.trim().is_empty() {
        out.push_str(&format!("<p>{}</p>\n", escape(exp.file.description.trim())));
    }

    out.push_str("<h2 id=\"table\">Table</h2>\n");
    out.push_str(&table.render(Format::Html));
    out.push_str(
        "<p class=\"note\">Mean ± std over seeds (no spread from one seed); <b>best</b> in bold, second best underlined; \
         the paper's number in parentheses. Each row's label links to its runs.</p>\n",
    );
    for note in &table.notes {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", escape(note)));
    }

    if !verdicts.is_empty() {
        out.push_str(
            "<h2 id=\"claims\">Claims</h2>\n<table class=\"claims\">\n<thead><tr><th>claim</th><th>paper</th><th>Avg. difference</th>\
             <th>95% CI</th><th>seeds</th><th>outcome</th><th>Holm-adjusted</th><th>detectable</th><th>P(run beats)</th></tr></thead>\n<tbody>\n",
        );
        let class = |o: Outcome| match o {
            Outcome::Held => "held",
            Outcome::DidNotHold | Outcome::Reversed => "notheld",
            _ => "weak",
        };
        let num = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map(f).unwrap_or_else(|| "–".into());
        for v in verdicts {
            let ci = v.ci95.map(|(lo, hi)| format!("[{lo:+.1}, {hi:+.1}]")).unwrap_or_else(|| "–".into());
            out.push_str(&format!(
                "<tr><th>{}</th><td>{}</td><td>{}</td><td>{ci}</td><td>{}/{}</td><td class=\"{}\">{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&v.claim.text),
                num(v.paper, &|d| format!("{d:+.1}")),
                num(v.difference, &|d| format!("{d:+.1}")),
                v.seeds.0,
                v.seeds.1,
                class(v.kind()),
                escape(v.outcome()),
                class(v.adjusted_kind()),
                escape(v.adjusted_outcome()),
                num(v.detectable, &|d| format!("{d:.1}")),
                num(v.superiority, &|p| format!("{p:.2}")),
            ));
        }
        out.push_str(&format!("</tbody>\n</table>\n<p class=\"note\">{}</p>\n", escape(claims::METHOD)));
    }

    if !controls.is_empty() {
        out.push_str("<h2 id=\"controls\">Claims under the controls</h2>\n<ul>\n");
        for c in controls {
            let set = if c.set.is_empty() { String::new() } else { format!(" (<code>{}</code>)", escape(&c.set.join(", "))) };
            out.push_str(&format!("<li><b>{}</b>{set}: {}</li>\n", escape(c.name()), escape(&c.about)));
        }
        out.push_str("</ul>\n");
        let grid = Grid::new(controls);
        for (first, rows, note) in [("row", &grid.avg, "Avg., mean ± std over seeds."), ("claim", &grid.claims, CLAIMS_LEGEND)] {
            if rows.is_empty() {
                continue;
            }
            let head: String = std::iter::once(first).chain(grid.header[1..].iter().map(String::as_str)).map(|h| format!("<th>{}</th>", escape(h))).collect();
            out.push_str(&format!("<table class=\"claims\">\n<thead><tr>{head}</tr></thead>\n<tbody>\n"));
            for row in rows {
                let cells: String = row[1..].iter().map(|c| format!("<td>{}</td>", escape(c))).collect();
                out.push_str(&format!("<tr><th>{}</th>{cells}</tr>\n", escape(&row[0])));
            }
            out.push_str(&format!("</tbody>\n</table>\n<p class=\"note\">{}</p>\n", escape(note)));
        }
    }

    out.push_str("<h2 id=\"figure\">Figure</h2>\n");
    match plot::figure(exp, plan).and_then(|f| figure_svg(&f)) {
        Ok(svg) => out.push_str(&format!("<figure class=\"plot\">{svg}</figure>\n")),
        Err(e) => out.push_str(&format!("<p class=\"note\">No figure: {}</p>\n", escape(&e.to_string()))),
    }
    match plot::learning(&exp.file.title, plan) {
        Ok(Some(curves)) => {
            out.push_str("<h2 id=\"curves\">Learning curves</h2>\n");
            match figure_svg(&Figure::Learning(curves)) {
                Ok(svg) => out.push_str(&format!("<figure class=\"plot\">{svg}</figure>\n")),
                Err(e) => out.push_str(&format!("<p class=\"note\">No curves: {}</p>\n", escape(&e.to_string()))),
            }
        }
        Ok(None) => {}
        Err(e) => out.push_str(&format!("<p class=\"note\">No curves: {}</p>\n", escape(&e.to_string()))),
    }

    out.push_str("<h2 id=\"runs\">Runs</h2>\n");
    runs_section(&mut out, plan);
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

fn figure_svg(fig: &Figure) -> Result<String, plot::PlotError> {
    let bytes = plot::render(fig, ImageFormat::Svg)?;
    let svg = String::from_utf8_lossy(&bytes).into_owned();
    // The page is HTML, not XML: an XML declaration inside it would show as text.
    Ok(match svg.find("<svg") {
        Some(at) => svg[at..].to_string(),
        None => svg,
    })
}

/// Per row, its runs: seed, id, status, build, backend, host, start, wall time and
/// Avg.; each with its provenance and config in a closed `<details>`.
fn runs_section(out: &mut String, plan: &[RunSpec]) {
    let mut labels: Vec<&str> = Vec::new();
    for spec in plan {
        if !labels.contains(&spec.label.as_str()) {
            labels.push(&spec.label);
        }
    }
    for label in labels {
        out.push_str(&format!("<section id=\"runs-{}\">\n<h3>{}</h3>\n", escape(label), escape(label)));
        for spec in plan.iter().filter(|s| s.label == label) {
            let dir = crate::runs::run_dir(spec);
            let manifest = dir.read_manifest().ok().flatten();
            let status = match &manifest {
                None => "not run".to_string(),
                Some(m) => format!("{:?}", m.status).to_lowercase(),
            };
            let avg = dir.read_csv::<crate::eval::EvalRow>(&dir.eval_csv()).ok().and_then(|rows| {
                let key = match spec.resolved.config.eval.average {
                    crate::config::Average::Macro => "avg_macro",
                    crate::config::Average::Micro => "avg_micro",
                };
                rows.into_iter().find(|r| r.subtask == key).map(|r| r.score)
            });
            let summary = match &manifest {
                Some(m) => format!(
                    "seed {} · run <code>{}</code> · {} · Avg. {} · build {} · {} on {} · started {} · {}",
                    spec.seed,
                    escape(&spec.id),
                    escape(&status),
                    avg.map(|a| format!("{a:.1}")).unwrap_or_else(|| "–".into()),
                    escape(&m.provenance.build.as_ref().map(|b| b.short()).unwrap_or_else(|| "not recorded".into())),
                    escape(&m.provenance.backend),
                    escape(&m.provenance.host),
                    escape(m.started.as_deref().unwrap_or("–")),
                    crate::launch::progress::duration(m.wall_seconds()),
                ),
                None => format!("seed {} · run <code>{}</code> · not run", spec.seed, escape(&spec.id)),
            };
            out.push_str(&format!("<details><summary>{summary}</summary>\n"));
            out.push_str(&format!("<p class=\"note\">Folder: <code>{}</code></p>\n", escape(&dir.path.display().to_string())));
            if let Some(m) = &manifest {
                let json = serde_json::to_string_pretty(&m.provenance).unwrap_or_default();
                out.push_str(&format!("<p>Provenance</p>\n<pre>{}</pre>\n", escape(&json)));
            }
            let config = std::fs::read_to_string(dir.config_path())
                .unwrap_or_else(|_| toml::to_string(&spec.resolved.config).unwrap_or_default());
            out.push_str(&format!("<p>Config</p>\n<pre>{}</pre>\n</details>\n", escape(&config)));
        }
        out.push_str("</section>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_cannot_open_a_tag() {
        assert_eq!(escape("<a href=\"x\">R&D's</a>"), "&lt;a href=&quot;x&quot;&gt;R&amp;D&#39;s&lt;/a&gt;");
    }
}

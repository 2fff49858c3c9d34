//! An experiment's claims under each of its `[[controls]]`, side by side with the
//! experiment as written: which of the paper's claims hold only because of a setting
//! a control takes away (an auxiliary loss, a built-in train/evaluation shift).

use crate::config::{Experiment, RunSpec};
use crate::runs::StoreError;

use super::claims::{self, Outcome, Verdict};
use super::table::{self, Table};

/// The experiment as written, or under one control.
pub struct Condition {
    /// `None` for the experiment as written.
    pub control: Option<String>,
    pub about: String,
    /// The keys the control sets, as `key = value`.
    pub set: Vec<String>,
    pub table: Table,
    pub verdicts: Vec<Verdict>,
}

impl Condition {
    /// Rows and claims of `plan`, the plan of `exp` under `control` (`None`: as written).
    pub fn new(exp: &Experiment, control: Option<&str>, plan: &[RunSpec], reference: bool) -> Result<Condition, StoreError> {
        let (about, set) = match control.map(|name| exp.control(name)) {
            Some(Ok(c)) => {
                let set = match crate::config::Layer::table("control", &c.set) {
                    Ok(layer) => crate::config::layers::flatten(&layer.data)
                        .into_iter()
                        .map(|(k, v)| format!("{k} = {}", crate::config::layers::value_to_string(&v)))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                (c.about.clone(), set)
            }
            _ => ("the experiment's own settings".to_string(), Vec::new()),
        };
        Ok(Condition {
            control: control.map(str::to_string),
            about,
            set,
            table: table::build(exp, plan, reference)?,
            verdicts: claims::check(exp, plan)?,
        })
    }

    pub fn name(&self) -> &str {
        self.control.as_deref().unwrap_or("as written")
    }
}

/// What a claim cell says in a few characters, for a table several conditions wide.
fn outcome_short(v: &Verdict) -> &'static str {
    match v.kind() {
        Outcome::NotSignificant => "n.s.",
        other => other.label(),
    }
}

/// The Avg. column of a table.
fn avg_index(t: &Table) -> Option<usize> {
    t.columns.iter().position(|(k, _)| k == "avg")
}

/// The two tables of a set of conditions as text cells: a header, the rows' Avg. and
/// the claims, one column per condition (and the paper's, when it has numbers).
pub struct Grid {
    pub header: Vec<String>,
    pub avg: Vec<Vec<String>>,
    pub claims: Vec<Vec<String>>,
}

impl Grid {
    pub fn new(conditions: &[Condition]) -> Grid {
        let Some(first) = conditions.first() else { return Grid { header: Vec::new(), avg: Vec::new(), claims: Vec::new() } };
        let paper = first.table.rows.iter().any(|r| r.paper.iter().any(Option::is_some));
        let avg = avg_index(&first.table);
        let mut header = vec![String::new()];
        if paper {
            header.push("paper".into());
        }
        header.extend(conditions.iter().map(|c| c.name().to_string()));
        let mut avg_rows = Vec::new();
        for row in &first.table.rows {
            let name = if row.name.is_empty() { row.label.clone() } else { format!("{} {}", row.label, row.name) };
            let mut rec = vec![name];
            if paper {
                rec.push(avg.and_then(|a| row.paper[a]).map(|p| format!("{p:.1}")).unwrap_or_else(|| "–".into()));
            }
            for c in conditions {
                let Some(r) = c.table.rows.iter().find(|r| r.label == row.label) else {
                    rec.push("–".into());
                    continue;
                };
                let cell = avg.map(|a| &r.cells[a]);
                let text = match (cell.and_then(|c| c.mean()), cell.and_then(|c| c.std())) {
                    (Some(m), Some(s)) => format!("{m:.1} ± {s:.1}"),
                    (Some(m), None) => format!("{m:.1}"),
                    _ => "–".into(),
                };
                let seeds = if r.seeds_done < r.seeds_planned { format!(" ({}/{} seeds)", r.seeds_done, r.seeds_planned) } else { String::new() };
                rec.push(format!("{text}{seeds}"));
            }
            avg_rows.push(rec);
        }
        let planned = |c: &Condition, label: &str| c.table.rows.iter().find(|r| r.label == label).map_or(0, |r| r.seeds_planned);
        let mut claims = Vec::new();
        for (k, v0) in first.verdicts.iter().enumerate() {
            let mut rec = vec![v0.claim.text.clone()];
            if paper {
                let paper_avg = |label: &str| first.table.rows.iter().find(|r| r.label == label).and_then(|r| avg.and_then(|a| r.paper[a]));
                rec.push(match (paper_avg(&v0.claim.better), paper_avg(&v0.claim.worse)) {
                    (Some(x), Some(y)) => format!("{:+.1}", x - y),
                    _ => "–".into(),
                });
            }
            for c in conditions {
                let v = &c.verdicts[k];
                let text = match (v.difference, v.ci95) {
                    (Some(d), Some((lo, hi))) => {
                        // The family-adjusted reading where it differs from the raw one.
                        let holm = if v.adjusted_kind() != v.kind() { format!(" (Holm: {})", v.adjusted_outcome()) } else { String::new() };
                        format!("{d:+.1} [{lo:+.1}, {hi:+.1}] {}{holm}", outcome_short(v))
                    }
                    _ => outcome_short(v).to_string(),
                };
                let full = v.seeds.0 >= planned(c, &v.claim.better) && v.seeds.1 >= planned(c, &v.claim.worse);
                let seeds = if full || v.difference.is_none() { String::new() } else { format!(" (seeds {}/{})", v.seeds.0, v.seeds.1) };
                rec.push(format!("{text}{seeds}"));
            }
            claims.push(rec);
        }
        Grid { header, avg: avg_rows, claims }
    }
}

/// What the claims table's cells mean.
pub const CLAIMS_LEGEND: &str = "Difference in Avg. and its 95% CI (t over the seeds' Avg., paired by seed where both rows ran \
                                 the same seeds); held = above 0 and the CI excludes 0, n.s. = above 0 but the CI does not exclude \
                                 it, did not hold = at or below 0 and the CI includes 0, reversed = below 0 and the CI excludes 0, \
                                 underpowered = a tie whose paper difference is below what the seeds detect (80% power, 5%). \
                                 Holm: the reading after adjusting for the condition's claims together, where it differs.";

/// The Avg. rows and the claims of every condition, one column each, as a terminal
/// table or Markdown.
pub fn render(title: &str, conditions: &[Condition], markdown: bool) -> String {
    use tabled::{builder::Builder, settings::Style};
    let styled = |first: &str, header: &[String], rows: &[Vec<String>]| {
        let mut b = Builder::default();
        b.push_record(std::iter::once(first.to_string()).chain(header[1..].iter().cloned()));
        rows.iter().for_each(|r| b.push_record(r.clone()));
        let mut t = b.build();
        if markdown {
            t.with(Style::markdown()).to_string()
        } else {
            t.with(Style::psql()).to_string()
        }
    };
    let grid = Grid::new(conditions);
    let mut out = format!("{title}: the claims under each control\n\n");
    for c in conditions {
        let set = if c.set.is_empty() { String::new() } else { format!(" ({})", c.set.join(", ")) };
        out.push_str(&format!("- {}{set}: {}\n", c.name(), c.about));
    }
    out.push_str(&format!("\nAvg., mean ± std over seeds:\n\n{}\n", styled("row", &grid.header, &grid.avg)));
    if !grid.claims.is_empty() {
        out.push_str(&format!("\nClaims. {CLAIMS_LEGEND}\n\n{}\n", styled("claim", &grid.header, &grid.claims)));
    }
    out
}

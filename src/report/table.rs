//! Paper-style tables rebuilt from stored runs only: one row per variant (and
//! sweep point), the paper's check-mark columns, per-subtask columns and Avg.,
//! mean ± std over seeds, best and second best marked, and optionally the
//! paper's own numbers beside ours.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Average, Experiment, RunSpec};
use crate::eval::EvalRow;
use crate::runs::manifest::Cost;
use crate::runs::{Status, StoreError};

use super::paper::PaperTable;

/// One cell: a metric over the seeds that finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub values: Vec<f64>,
}

impl Cell {
    pub fn mean(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.values.iter().sum::<f64>() / self.values.len() as f64)
    }

    /// Sample standard deviation (n - 1); `None` below two seeds, where the spread is
    /// unknown (not zero).
    pub fn std(&self) -> Option<f64> {
        let m = self.mean()?;
        let n = self.values.len();
        if n < 2 {
            return None;
        }
        Some((self.values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt())
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub name: String,
    /// Ticked check-mark columns, in the experiment's order.
    pub marks: Vec<bool>,
    pub cells: Vec<Cell>,
    /// The paper's value for each column, when the paper has this row.
    pub paper: Vec<Option<f64>>,
    pub seeds_done: usize,
    pub seeds_planned: usize,
    /// The average this row's Avg. is: its own benchmark's (macro for the static
    /// benchmark's Table 3, micro for the dynamic one's Table 4).
    pub average: Average,
    /// The code behind the row's finished runs: each distinct build (short commit,
    /// `*` when built from uncommitted source) with its source fingerprint.
    pub code: Vec<Code>,
    /// The finished runs the row's cells come from: (seed, run id).
    pub runs: Vec<(u64, String)>,
}

/// One build of geosr that trained runs of a table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Code {
    /// `1a2b3c4`, `1a2b3c4*`, or `unknown` for runs that predate build records.
    pub commit: String,
    /// The training code's fingerprint (the whole source's for runs from before it
    /// was kept), or the commit and tree state for older runs still.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub marks: Vec<String>,
    /// Column keys (subtask keys, then `avg`) and their headers.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Row>,
    /// Reference rows every model should beat, from the runs' own eval.csv: the
    /// blind guess (`chance`) and the question prior (`prior`). A column gets a
    /// value only when every finished run agrees on it (they saw the same questions).
    pub baselines: Vec<Baseline>,
    /// What a reader must know: runs skipped because their files are damaged, rows
    /// trained by different code.
    pub notes: Vec<String>,
}

impl Table {
    /// The table as data, every cell's mean, spread, seed count and the paper's value,
    /// for scripts (`table --format json`, and the JSON `reproduce` writes).
    pub fn to_json(&self) -> serde_json::Value {
        let column = |i: usize, cell: &Cell, paper: Option<f64>| {
            serde_json::json!({
                "column": self.columns[i].0, "header": self.columns[i].1,
                "mean": cell.mean(), "std": cell.std(), "n": cell.values.len(), "values": cell.values, "paper": paper,
            })
        };
        serde_json::json!({
            "title": self.title,
            "marks": self.marks,
            "rows": self.rows.iter().map(|r| serde_json::json!({
                "label": r.label,
                "name": r.name,
                "marks": self.marks.iter().zip(&r.marks).filter(|(_, on)| **on).map(|(m, _)| m).collect::<Vec<_>>(),
                "average": format!("{:?}", r.average).to_lowercase(),
                "seeds_done": r.seeds_done,
                "seeds_planned": r.seeds_planned,
                "cells": r.cells.iter().enumerate().map(|(i, c)| column(i, c, r.paper.get(i).copied().flatten())).collect::<Vec<_>>(),
                "runs": r.runs.iter().map(|(seed, id)| serde_json::json!({ "seed": seed, "id": id })).collect::<Vec<_>>(),
                "commits": r.code.iter().map(|c| c.commit.clone()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "baselines": self.baselines.iter().map(|b| serde_json::json!({
                "name": b.name,
                "values": self.columns.iter().zip(&b.values).map(|((key, _), v)| (key.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Names of the two baseline rows.
pub const BLIND_GUESS: &str = "blind guess";
pub const QUESTION_PRIOR: &str = "question prior";

/// The baselines' values per column: each score column's value when all runs agree.
fn baselines(columns: &[(String, String)], avg_keys: &BTreeMap<String, &str>, evals: &BTreeMap<String, Vec<Vec<EvalRow>>>) -> Vec<Baseline> {
    let readers: [(&str, fn(&EvalRow) -> Option<f64>); 2] =
        [(BLIND_GUESS, |r| Some(r.chance)), (QUESTION_PRIOR, |r| r.prior)];
    readers
        .iter()
        .map(|(name, read)| Baseline {
            name: name.to_string(),
            values: columns
                .iter()
                .map(|(key, _)| {
                    if is_cost(key) {
                        return None;
                    }
                    let mut values = evals.iter().flat_map(|(label, runs)| {
                        let key = if key == "avg" { avg_keys.get(label).copied().unwrap_or("avg_macro") } else { key.as_str() };
                        runs.iter().map(move |rows| rows.iter().find(|r| r.subtask == key).and_then(read))
                    });
                    let first = values.next()??;
                    values.all(|v| v.is_some_and(|v| (v - first).abs() < 1e-6)).then_some(first)
                })
                .collect(),
        })
        .filter(|b| b.values.iter().any(Option::is_some))
        .collect()
}

/// One of Table 6's cost columns.
struct CostColumn {
    key: &'static str,
    /// The same figure as a percentage over the table's first row: how figures
    /// from a 7B model and a 40k-parameter one can be compared.
    overhead_key: &'static str,
    header: &'static str,
    read: fn(&Cost) -> Option<f64>,
    /// The paper's column for the same quantity (in its own units).
    paper: &'static str,
    decimals: usize,
}

const COST_COLUMNS: &[CostColumn] = &[
    CostColumn { key: "params", overhead_key: "params_overhead", header: "Params", read: |c| Some(c.params as f64), paper: "size_params_b", decimals: 0 },
    CostColumn { key: "infer_ms", overhead_key: "infer_overhead", header: "Infer. ms/sample", read: |c| Some(c.infer_ms_per_sample), paper: "time_s", decimals: 3 },
    // The device's peak on CUDA, the process's peak RSS on a CPU backend.
    CostColumn {
        key: "peak_mem_mb",
        overhead_key: "mem_overhead",
        header: "Peak mem. MB",
        read: |c| c.peak_device_bytes.or(c.peak_rss_bytes).map(|b| b as f64 / 1e6),
        paper: "mem_gb",
        decimals: 0,
    },
];

/// The cost column a key names, and whether it is the overhead form.
fn cost_column(key: &str) -> Option<(&'static CostColumn, bool)> {
    COST_COLUMNS.iter().find_map(|c| {
        if c.key == key {
            Some((c, false))
        } else if c.overhead_key == key {
            Some((c, true))
        } else {
            None
        }
    })
}

/// Whether a column is one of Table 6's costs (lower is better, so not ranked).
pub fn is_cost(key: &str) -> bool {
    cost_column(key).is_some()
}

/// A cell's text: the mean with the precision its column needs, then ± the std
/// over seeds when there are two or more (one seed's spread is unknown, not 0).
fn cell_text(key: &str, cell: &Cell, pm: &str) -> Option<String> {
    let m = cell.mean()?;
    let mean = match cost_column(key) {
        None => format!("{m:.1}"),
        Some((_, true)) => format!("{m:+.1}"),
        Some((c, false)) => format!("{m:.*}", c.decimals),
    };
    Some(match cell.std() {
        Some(sd) => format!("{mean}{pm}{sd:.1}"),
        None => mean,
    })
}

/// The code a finished run records.
fn code_of(manifest: &crate::runs::Manifest) -> Code {
    match &manifest.provenance.build {
        Some(b) => Code { commit: b.short(), source: b.training_fingerprint().to_string() },
        None => {
            let p = &manifest.provenance;
            let commit = p.git_commit.as_deref().map_or("unknown".to_string(), |c| c[..c.len().min(7)].to_string());
            let commit = if p.git_dirty { format!("{commit}*") } else { commit };
            Code { source: format!("{commit}:{}", p.git_diff_hash.as_deref().unwrap_or("")), commit }
        }
    }
}

/// Builds the table of `exp` from the runs in `plan` that are done.
pub fn build(exp: &Experiment, plan: &[RunSpec], reference: bool) -> Result<Table, StoreError> {
    let mut groups: BTreeMap<usize, (String, String, Vec<&RunSpec>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for spec in plan {
        if !order.contains(&spec.label) {
            order.push(spec.label.clone());
        }
        let idx = order.iter().position(|l| l == &spec.label).expect("just pushed");
        groups.entry(idx).or_insert_with(|| (spec.label.clone(), spec.variant.clone(), Vec::new())).2.push(spec);
    }
    let mut evals: BTreeMap<String, Vec<Vec<EvalRow>>> = BTreeMap::new();
    // (seed, cost) per row: overheads pair each run with the first row's run of its seed.
    let mut costs: BTreeMap<String, Vec<(u64, Option<Cost>)>> = BTreeMap::new();
    let mut codes: BTreeMap<String, Vec<Code>> = BTreeMap::new();
    // Where each finished run trained ("cuda on cuda:0", "libtorch on cpu"), per row and seed.
    let mut platforms: BTreeMap<String, BTreeMap<String, BTreeSet<u64>>> = BTreeMap::new();
    let mut finished: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut averages: BTreeMap<String, Average> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut subtask_names: Vec<(String, String)> = Vec::new();
    if let Some(first) = plan.first() {
        for st in crate::benchmark::subtasks(first.resolved.config.data.bench) {
            subtask_names.push((st.key.to_string(), st.name.to_string()));
        }
    }
    for (label, _, specs) in groups.values() {
        // Each row's Avg. is its own benchmark's average (a figure may mix benchmarks).
        if let Some(spec) = specs.first() {
            averages.insert(label.clone(), spec.resolved.config.eval.average);
        }
        let mut seen = std::collections::HashSet::new();
        for spec in specs.iter().filter(|s| seen.insert(s.id.clone())) {
            let dir = crate::runs::run_dir(spec);
            let manifest = match dir.read_manifest() {
                Ok(Some(m)) if m.status == Status::Done => m,
                Ok(_) => continue,
                Err(e) => {
                    notes.push(format!("skipped {label} seed {}: {e}", spec.seed));
                    continue;
                }
            };
            let rows = match crate::runs::verify_done(spec, &dir, &manifest) {
                Ok(rows) => rows,
                Err(why) => {
                    notes.push(format!("skipped {label} seed {} ({}): {why}", spec.seed, dir.path.display()));
                    continue;
                }
            };
            costs.entry(label.clone()).or_default().push((spec.seed, manifest.cost.clone()));
            codes.entry(label.clone()).or_default().push(code_of(&manifest));
            let platform = format!("{} on {}", manifest.provenance.backend, manifest.provenance.device);
            platforms.entry(platform).or_default().entry(label.clone()).or_default().insert(spec.seed);
            finished.entry(label.clone()).or_default().push((spec.seed, spec.id.clone()));
            for r in rows.iter().filter(|r| !r.subtask.starts_with("avg_")) {
                if !subtask_names.iter().any(|(k, _)| k == &r.subtask) {
                    subtask_names.push((r.subtask.clone(), r.name.clone()));
                }
            }
            evals.entry(label.clone()).or_default().push(rows);
        }
    }
    // The experiment's column order when it gives one, else the order runs report.
    let mut columns: Vec<(String, String)> = if exp.file.columns.is_empty() {
        subtask_names.clone()
    } else {
        exp.file
            .columns
            .iter()
            .map(|k| {
                let name = match cost_column(k) {
                    Some((c, false)) => c.header.to_string(),
                    Some((c, true)) => format!("{} +%", c.header),
                    None => subtask_names.iter().find(|(key, _)| key == k).map_or(k.clone(), |(_, n)| n.clone()),
                };
                (k.clone(), name)
            })
            .collect()
    };
    let avg_key = |a: Average| match a {
        Average::Macro => "avg_macro",
        Average::Micro => "avg_micro",
    };
    let avg_keys: BTreeMap<String, &str> = averages.iter().map(|(l, a)| (l.clone(), avg_key(*a))).collect();
    columns.push(("avg".into(), "Avg.".into()));

    let paper = match (&exp.file.reference, reference) {
        (Some(path), true) => PaperTable::load(&exp.root.join(path)).ok(),
        _ => None,
    };
    let no_costs = Vec::new();
    let first_costs = groups.values().next().and_then(|g| costs.get(&g.0)).unwrap_or(&no_costs);
    let first_paper_row = paper.as_ref().zip(groups.values().next()).and_then(|(p, g)| {
        let v = exp.variant(&g.1)?;
        p.row(&v.label).or_else(|| p.row(&v.name))
    });
    let mut rows = Vec::new();
    for (label, variant, specs) in groups.values() {
        let v = exp.variant(variant).expect("planned from the experiment");
        let runs = evals.get(label).map(Vec::as_slice).unwrap_or(&[]);
        let run_costs = costs.get(label).unwrap_or(&no_costs);
        let cells = columns
            .iter()
            .map(|(key, _)| match cost_column(key) {
                Some((c, false)) => Cell { values: run_costs.iter().filter_map(|(_, x)| x.as_ref().and_then(c.read)).collect() },
                // Seed by seed against the first row's run of the same seed (a seed the
                // first row lacks has nothing to compare with).
                Some((c, true)) => Cell {
                    values: run_costs
                        .iter()
                        .filter_map(|(seed, x)| {
                            let base = first_costs.iter().find(|(s, _)| s == seed)?.1.as_ref()?;
                            Some(100.0 * ((c.read)(x.as_ref()?)? / (c.read)(base)? - 1.0))
                        })
                        .collect(),
                },
                None => {
                    let key = if key == "avg" { avg_keys.get(label).copied().unwrap_or("avg_macro") } else { key.as_str() };
                    Cell { values: runs.iter().filter_map(|r| r.iter().find(|e| e.subtask == key).map(|e| e.score)).collect() }
                }
            })
            .collect();
        let paper_row = paper.as_ref().and_then(|p| p.row(&v.label).or_else(|| p.row(&v.name)));
        let paper_values = columns
            .iter()
            .map(|(key, _)| {
                let p = paper.as_ref()?;
                let r = paper_row?;
                match cost_column(key) {
                    // The paper's absolute figures are in other units (s, billions, GB).
                    Some((_, false)) => None,
                    Some((c, true)) => Some(100.0 * (p.number(r, c.paper)? / p.number(first_paper_row?, c.paper)? - 1.0)),
                    None => p.number(r, key),
                }
            })
            .collect();
        rows.push(Row {
            label: label.clone(),
            name: v.name.clone(),
            marks: exp.file.marks.iter().map(|m| v.marks.contains(m)).collect(),
            cells,
            paper: paper_values,
            seeds_done: runs.len(),
            seeds_planned: specs.iter().map(|s| &s.id).collect::<std::collections::HashSet<_>>().len(),
            average: averages.get(label).copied().unwrap_or(Average::Macro),
            code: {
                let mut c = codes.get(label).cloned().unwrap_or_default();
                c.sort();
                c.dedup();
                c
            },
            runs: finished.get(label).cloned().unwrap_or_default(),
        });
    }
    let baselines = baselines(&columns, &avg_keys, &evals);
    notes.extend(mixed_code_note(&rows));
    notes.extend(mixed_platform_note(&platforms, &order));
    Ok(Table { title: exp.file.title.clone(), marks: exp.file.marks.clone(), columns, rows, baselines, notes })
}

/// A warning when the table's finished runs were trained by more than one build's
/// training code. Builds that differ only in reporting code (a table or plot mended
/// since) train alike, so they count as one.
fn mixed_code_note(rows: &[Row]) -> Option<String> {
    let mut by_code: BTreeMap<&str, (BTreeSet<&str>, Vec<&str>)> = BTreeMap::new();
    for row in rows {
        for code in &row.code {
            let (commits, labels) = by_code.entry(&code.source).or_default();
            commits.insert(&code.commit);
            if !labels.contains(&row.label.as_str()) {
                labels.push(&row.label);
            }
        }
    }
    (by_code.len() > 1).then(|| {
        let parts: Vec<String> = by_code
            .values()
            .map(|(commits, labels)| format!("{} from {}", labels.join(", "), commits.iter().copied().collect::<Vec<_>>().join(" and ")))
            .collect();
        format!(
            "warning: these runs were trained by {} different builds of geosr: {}; \
             `geosr sweep EXPERIMENT --rerun-stale` trains again those this build did not",
            by_code.len(),
            parts.join("; ")
        )
    })
}

/// A note when the table's finished runs trained on more than one backend or
/// device: their kernels sum in other orders, so a row's runs differ as they
/// would between CPUs, and a reader comparing rows should know which ran where.
/// `platforms` maps "backend on device" to each row's seeds there; `order` is the
/// rows' order in the table.
fn mixed_platform_note(platforms: &BTreeMap<String, BTreeMap<String, BTreeSet<u64>>>, order: &[String]) -> Option<String> {
    (platforms.len() > 1).then(|| {
        let parts: Vec<String> = platforms
            .iter()
            .map(|(platform, rows)| {
                // Rows with the same seeds there are named together: "d, e seeds 0-3".
                let mut by_seeds: Vec<(&BTreeSet<u64>, Vec<&str>)> = Vec::new();
                for (label, seeds) in order.iter().filter_map(|l| rows.get_key_value(l)) {
                    match by_seeds.iter_mut().find(|(s, _)| *s == seeds) {
                        Some((_, labels)) => labels.push(label),
                        None => by_seeds.push((seeds, vec![label])),
                    }
                }
                let runs: Vec<String> =
                    by_seeds.iter().map(|(seeds, labels)| format!("{} {}", labels.join(", "), seed_list(seeds))).collect();
                format!("{platform}: {}", runs.join("; "))
            })
            .collect();
        format!(
            "note: these runs trained on {} backends or devices ({}); their kernels differ, as between CPUs, \
             so compare rows by mean and spread over seeds",
            platforms.len(),
            parts.join(" | ")
        )
    })
}

/// "seed 4", "seeds 0-3", "seeds 0, 2, 5".
fn seed_list(seeds: &BTreeSet<u64>) -> String {
    let (Some(first), Some(last)) = (seeds.first(), seeds.last()) else { return "no seeds".into() };
    match seeds.len() {
        1 => format!("seed {first}"),
        n if last - first + 1 == n as u64 => format!("seeds {first}-{last}"),
        _ => format!("seeds {}", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Term,
    Markdown,
    Csv,
    Latex,
    /// A `<table>` for the report page (`geosr report`).
    Html,
}

/// Rank of each row's mean in column `c`: 1 = best, 2 = second best (higher is better).
fn ranks(table: &Table, c: usize) -> Vec<Option<usize>> {
    if is_cost(&table.columns[c].0) {
        return vec![None; table.rows.len()];
    }
    let mut means: Vec<f64> = table.rows.iter().filter_map(|r| r.cells[c].mean()).collect();
    means.sort_by(|a, b| b.total_cmp(a));
    means.dedup();
    table
        .rows
        .iter()
        .map(|r| r.cells[c].mean().and_then(|m| means.iter().position(|x| *x == m)).map(|p| p + 1).filter(|&p| p <= 2))
        .collect()
}

impl Table {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Csv => self.csv(),
            Format::Latex => self.latex(),
            Format::Html => self.html(),
            Format::Term | Format::Markdown => self.text(format),
        }
    }

    fn has_paper(&self) -> bool {
        self.rows.iter().any(|r| r.paper.iter().any(Option::is_some))
    }

    fn text(&self, format: Format) -> String {
        use tabled::{builder::Builder, settings::Style};
        let ranks: Vec<Vec<Option<usize>>> = (0..self.columns.len()).map(|c| ranks(self, c)).collect();
        let mut b = Builder::default();
        let mut header = vec!["Setting".to_string()];
        header.extend(self.marks.iter().cloned());
        header.extend(self.columns.iter().map(|(_, name)| name.clone()));
        header.push("seeds".into());
        header.push("commit".into());
        b.push_record(header);
        for (i, row) in self.rows.iter().enumerate() {
            let mut rec = vec![row.label.clone()];
            rec.extend(row.marks.iter().map(|&m| if m { "✓".to_string() } else { String::new() }));
            for (c, cell) in row.cells.iter().enumerate() {
                let text = cell_text(&self.columns[c].0, cell, " ± ").unwrap_or_else(|| "–".into());
                let mut text = match (format, ranks[c][i]) {
                    (Format::Markdown, Some(1)) => format!("**{text}**"),
                    (Format::Markdown, Some(2)) => format!("_{text}_"),
                    (Format::Term, Some(1)) => format!("{text} ①"),
                    (Format::Term, Some(2)) => format!("{text} ②"),
                    _ => text,
                };
                if self.has_paper() {
                    text.push_str(&format!(" ({})", row.paper[c].map(|p| format!("{p:.1}")).unwrap_or_else(|| "–".into())));
                }
                rec.push(text);
            }
            rec.push(format!("{}/{}", row.seeds_done, row.seeds_planned));
            rec.push(row.code.iter().map(|c| c.commit.as_str()).collect::<Vec<_>>().join(", "));
            b.push_record(rec);
        }
        for baseline in &self.baselines {
            let mut rec = vec![format!("({})", baseline.name)];
            rec.extend(self.marks.iter().map(|_| String::new()));
            rec.extend(baseline.values.iter().map(|v| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())));
            rec.push(String::new());
            rec.push(String::new());
            b.push_record(rec);
        }
        let mut table = b.build();
        let body = match format {
            Format::Markdown => table.with(Style::markdown()).to_string(),
            _ => table.with(Style::psql()).to_string(),
        };
        let mut legend = match format {
            Format::Markdown => "Mean ± std over seeds (no spread from one seed); **best**, _second best_.",
            _ => "Mean ± std over seeds (no spread from one seed); ① best, ② second best.",
        }
        .to_string();
        let averages: std::collections::BTreeSet<&str> = self
            .rows
            .iter()
            .map(|r| match r.average {
                Average::Macro => "macro",
                Average::Micro => "micro",
            })
            .collect();
        if averages.len() > 1 {
            legend.push_str(" Avg. is each row's own benchmark's average: macro over subtasks (static), micro over questions (dynamic).");
        }
        if self.has_paper() {
            legend.push_str(" The paper's number in parentheses.");
        }
        if !self.baselines.is_empty() {
            legend.push_str(
                " The rows (blind guess) and (question prior) score the same questions without a model: \
                 a constant guess, and the best answer to each question's words in the training split.",
            );
        }
        let notes: String = self.notes.iter().map(|n| format!("\n{n}")).collect();
        format!("{}\n\n{body}\n\n{legend}\n{notes}{}", self.title, if notes.is_empty() { "" } else { "\n" })
    }

    fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["setting", "column", "mean", "std", "seeds", "rank", "paper", "commit"]).expect("in memory");
        for c in 0..self.columns.len() {
            let ranks = ranks(self, c);
            for (i, row) in self.rows.iter().enumerate() {
                let cell = &row.cells[c];
                let opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
                w.write_record([
                    row.label.clone(),
                    self.columns[c].0.clone(),
                    opt(cell.mean()),
                    opt(cell.std()),
                    cell.values.len().to_string(),
                    ranks[i].map(|r| r.to_string()).unwrap_or_default(),
                    opt(row.paper[c]),
                    row.code.iter().map(|c| c.commit.as_str()).collect::<Vec<_>>().join(" "),
                ])
                .expect("in memory");
            }
            for baseline in &self.baselines {
                if let Some(v) = baseline.values[c] {
                    let (setting, column) = (format!("({})", baseline.name), self.columns[c].0.clone());
                    w.write_record([setting, column, format!("{v:.4}"), String::new(), String::new(), String::new(), String::new(), String::new()])
                        .expect("in memory");
                }
            }
        }
        String::from_utf8(w.into_inner().expect("in memory")).expect("utf-8")
    }

    fn html(&self) -> String {
        use super::html::escape;
        let ranks: Vec<Vec<Option<usize>>> = (0..self.columns.len()).map(|c| ranks(self, c)).collect();
        let mut out = String::from("<table class=\"results\">\n<thead><tr><th>Setting</th>");
        for m in &self.marks {
            out.push_str(&format!("<th>{}</th>", escape(m)));
        }
        for (_, name) in &self.columns {
            out.push_str(&format!("<th>{}</th>", escape(name)));
        }
        out.push_str("<th>seeds</th><th>commit</th></tr></thead>\n<tbody>\n");
        for (i, row) in self.rows.iter().enumerate() {
            let title = if row.name.is_empty() { String::new() } else { format!(" title=\"{}\"", escape(&row.name)) };
            out.push_str(&format!("<tr><th{title}><a href=\"#runs-{}\">{}</a></th>", escape(&row.label), escape(&row.label)));
            for &m in &row.marks {
                out.push_str(if m { "<td class=\"mark\">✓</td>" } else { "<td></td>" });
            }
            for (c, cell) in row.cells.iter().enumerate() {
                let text = cell_text(&self.columns[c].0, cell, " ± ").unwrap_or_else(|| "–".into());
                let class = match ranks[c][i] {
                    Some(1) => " class=\"best\"",
                    Some(2) => " class=\"second\"",
                    _ => "",
                };
                let paper = if self.has_paper() {
                    format!(" <span class=\"paper\">({})</span>", row.paper[c].map(|p| format!("{p:.1}")).unwrap_or_else(|| "–".into()))
                } else {
                    String::new()
                };
                out.push_str(&format!("<td{class}>{}{paper}</td>", escape(&text)));
            }
            let commits: Vec<&str> = row.code.iter().map(|c| c.commit.as_str()).collect();
            out.push_str(&format!("<td>{}/{}</td><td>{}</td></tr>\n", row.seeds_done, row.seeds_planned, escape(&commits.join(", "))));
        }
        for baseline in &self.baselines {
            out.push_str(&format!("<tr class=\"baseline\"><th>({})</th>", escape(&baseline.name)));
            out.push_str(&"<td></td>".repeat(self.marks.len()));
            for v in &baseline.values {
                out.push_str(&format!("<td>{}</td>", v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())));
            }
            out.push_str("<td></td><td></td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }

    fn latex(&self) -> String {
        let esc = |s: &str| s.replace('&', "\\&").replace('%', "\\%").replace('_', "\\_").replace('#', "\\#");
        let ranks: Vec<Vec<Option<usize>>> = (0..self.columns.len()).map(|c| ranks(self, c)).collect();
        let mut out = String::new();
        out.push_str(&format!("% {}\n", esc(&self.title)));
        out.push_str(&format!("\\begin{{tabular}}{{l{}{}}}\n\\toprule\n", "c".repeat(self.marks.len()), "c".repeat(self.columns.len())));
        let mut header = vec!["Setting".to_string()];
        header.extend(self.marks.iter().map(|m| esc(m)));
        header.extend(self.columns.iter().map(|(_, n)| esc(n)));
        out.push_str(&format!("{} \\\\\n\\midrule\n", header.join(" & ")));
        for (i, row) in self.rows.iter().enumerate() {
            let mut rec = vec![format!("({})", esc(&row.label))];
            rec.extend(row.marks.iter().map(|&m| if m { "\\checkmark".to_string() } else { String::new() }));
            for (c, cell) in row.cells.iter().enumerate() {
                let text = cell_text(&self.columns[c].0, cell, "$\\pm$").unwrap_or_else(|| "--".into());
                rec.push(match ranks[c][i] {
                    Some(1) => format!("\\textbf{{{text}}}"),
                    Some(2) => format!("\\underline{{{text}}}"),
                    _ => text,
                });
            }
            out.push_str(&format!("{} \\\\\n", rec.join(" & ")));
        }
        if !self.baselines.is_empty() {
            out.push_str("\\midrule\n");
        }
        for baseline in &self.baselines {
            let mut rec = vec![format!("\\textit{{{}}}", esc(&baseline.name))];
            rec.extend(self.marks.iter().map(|_| String::new()));
            rec.extend(baseline.values.iter().map(|v| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "--".into())));
            out.push_str(&format!("{} \\\\\n", rec.join(" & ")));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n");
        out
    }
}

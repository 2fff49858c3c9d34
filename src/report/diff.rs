//! `geosr diff`: what differs between two stored runs. The resolved configs are
//! compared key by key (dotted leaf keys), the scores subtask by subtask with the
//! geometry-reliance probes, and the provenance, so a change in a number can be
//! traced to a change in a setting or in the code and machine that produced it.

use std::collections::BTreeMap;

use crate::config::layers::{flatten, value_to_string, Layer};
use crate::eval::EvalRow;
use crate::runs::{Manifest, Provenance, RunDir, StoreError};

/// One run as `diff` sees it.
#[derive(Debug, Clone)]
pub struct Side {
    pub dir: RunDir,
    /// `None` when the run never started (no manifest.json).
    pub manifest: Option<Manifest>,
    /// `false` when the run has no eval.csv yet.
    pub evaluated: bool,
}

/// A key whose value differs; `None` where a side lacks the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// One number in both runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Pair {
    /// B minus A, so a positive difference means B scored higher.
    pub fn delta(&self) -> Option<f64> {
        Some(self.b? - self.a?)
    }
}

/// One row of eval.csv (a subtask or an average) in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDiff {
    pub subtask: String,
    pub name: String,
    pub score: Pair,
    pub drop_no_geometry: Pair,
    pub drop_no_vision: Pair,
}

#[derive(Debug, Clone)]
pub struct RunDiff {
    pub a: Side,
    pub b: Side,
    /// Config keys whose values differ, sorted by key.
    pub config: Vec<Change>,
    /// Every subtask and average either run reports, in A's order then B's extras.
    pub metrics: Vec<MetricDiff>,
    /// Provenance fields that differ.
    pub provenance: Vec<Change>,
}

/// Compares two stored runs.
pub fn diff(a: &RunDir, b: &RunDir) -> Result<RunDiff, StoreError> {
    let (config_a, config_b) = (read_config(a)?, read_config(b)?);
    let mut config = Vec::new();
    let keys: std::collections::BTreeSet<&String> = config_a.keys().chain(config_b.keys()).collect();
    for key in keys {
        let (va, vb) = (config_a.get(key), config_b.get(key));
        if va != vb {
            config.push(Change { key: key.clone(), a: va.cloned(), b: vb.cloned() });
        }
    }

    let (eval_a, eval_b) = (read_eval(a)?, read_eval(b)?);
    let rows_a = eval_a.as_deref().unwrap_or_default();
    let rows_b = eval_b.as_deref().unwrap_or_default();
    let mut metrics: Vec<MetricDiff> = Vec::new();
    for row in rows_a.iter().chain(rows_b) {
        if metrics.iter().any(|m| m.subtask == row.subtask) {
            continue;
        }
        let find = |rows: &[EvalRow]| rows.iter().find(|r| r.subtask == row.subtask).cloned();
        let (ra, rb) = (find(rows_a), find(rows_b));
        let pair = |f: fn(&EvalRow) -> f64| Pair { a: ra.as_ref().map(f), b: rb.as_ref().map(f) };
        metrics.push(MetricDiff {
            subtask: row.subtask.clone(),
            name: row.name.clone(),
            score: pair(|r| r.score),
            drop_no_geometry: pair(|r| r.drop_no_geometry),
            drop_no_vision: pair(|r| r.drop_no_vision),
        });
    }

    let (manifest_a, manifest_b) = (a.read_manifest()?, b.read_manifest()?);
    let provenance = match (&manifest_a, &manifest_b) {
        (Some(ma), Some(mb)) => provenance_changes(&ma.provenance, &mb.provenance),
        _ => Vec::new(),
    };
    Ok(RunDiff {
        a: Side { dir: a.clone(), manifest: manifest_a, evaluated: eval_a.is_some() },
        b: Side { dir: b.clone(), manifest: manifest_b, evaluated: eval_b.is_some() },
        config,
        metrics,
        provenance,
    })
}

/// The stored resolved config as dotted key -> value text, read the way config
/// layers are so values print as `geosr config show` prints them.
fn read_config(dir: &RunDir) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let path = dir.config_path();
    let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
    let layer = Layer::toml_text(&path.display().to_string(), &text)
        .map_err(|e| StoreError::Format { path: path.clone(), message: e.to_string() })?;
    Ok(flatten(&layer.data).into_iter().map(|(k, v)| (k, value_to_string(&v))).collect())
}

fn read_eval(dir: &RunDir) -> Result<Option<Vec<EvalRow>>, StoreError> {
    let path = dir.eval_csv();
    if !path.exists() {
        return Ok(None);
    }
    dir.read_csv(&path).map(Some)
}

/// The provenance fields that can explain a change in results. The command line
/// and the patch text are left out: they differ between any two invocations and
/// say more as `git_commit` and `git_dirty`.
fn provenance_changes(a: &Provenance, b: &Provenance) -> Vec<Change> {
    provenance_fields(a)
        .into_iter()
        .zip(provenance_fields(b))
        .filter_map(|((key, va), (_, vb))| (va != vb).then(|| Change { key: key.to_string(), a: Some(va), b: Some(vb) }))
        .collect()
}

/// The provenance fields [`provenance_changes`] compares, in a fixed order.
fn provenance_fields(p: &Provenance) -> Vec<(&'static str, String)> {
    type Field = (&'static str, fn(&Provenance) -> String);
    let fields: [Field; 20] = [
        ("build", |p| p.build.as_ref().map_or_else(|| "not recorded".into(), |b| b.short())),
        ("build.source_hash", |p| p.build.as_ref().map_or_else(|| "not recorded".into(), |b| b.source_hash.clone())),
        ("build.training_hash", |p| p.build.as_ref().and_then(|b| b.training_hash.clone()).unwrap_or_else(|| "not recorded".into())),
        ("build.cargo_lock_hash", |p| p.build.as_ref().map_or_else(|| "not recorded".into(), |b| b.cargo_lock_hash.clone())),
        ("build.features", |p| p.build.as_ref().map_or_else(|| "not recorded".into(), |b| b.features.join(","))),
        ("git_commit", |p| p.git_commit.clone().unwrap_or_else(|| "none".into())),
        ("git_branch", |p| p.git_branch.clone().unwrap_or_else(|| "none".into())),
        ("git_dirty", |p| p.git_dirty.to_string()),
        // Two dirty trees are the same state only when their patches (and untracked files) are.
        ("git_diff_hash", |p| p.git_diff_hash.clone().unwrap_or_else(|| "none".into())),
        ("threads", |p| p.threads.map_or_else(|| "not recorded".into(), |t| t.to_string())),
        ("cpu_flags", |p| p.cpu_flags.join(" ")),
        ("cpu_caches", |p| p.cpu_caches.join("; ")),
        ("backend", |p| p.backend.clone()),
        ("device", |p| p.device.clone()),
        ("geosr_version", |p| p.geosr_version.clone()),
        ("burn_version", |p| p.burn_version.clone()),
        ("rustc_version", |p| p.rustc_version.clone()),
        ("host", |p| p.host.clone()),
        ("os", |p| p.os.clone()),
        ("cpu", |p| p.cpu.clone()),
    ];
    fields.iter().map(|(key, f)| (*key, f(p))).collect()
}

/// One column of a many-way diff: a stored run, or an experiment's row.
#[derive(Debug, Clone, Default)]
pub struct Column {
    pub name: String,
    /// Dotted config key -> value as `config show` prints it.
    pub config: BTreeMap<String, String>,
    /// Subtask -> (the paper's column name, score); for a row, the mean over its seeds.
    pub scores: Vec<(String, String, f64)>,
    /// Provenance field -> value; empty where there is none to compare (a row).
    pub provenance: BTreeMap<String, String>,
    /// A line about where the column comes from (a run's folder, a row's seeds).
    pub source: String,
}

/// What differs among several runs or rows: only the config keys and provenance fields
/// whose values are not all equal, and every score, side by side.
#[derive(Debug, Clone)]
pub struct ManyDiff {
    pub columns: Vec<String>,
    pub sources: Vec<String>,
    pub config: Vec<(String, Vec<Option<String>>)>,
    pub scores: Vec<(String, Vec<Option<f64>>)>,
    pub provenance: Vec<(String, Vec<Option<String>>)>,
}

/// Compares any number of columns (see [`Column`]).
pub fn diff_many(columns: &[Column]) -> ManyDiff {
    fn differing(maps: Vec<&BTreeMap<String, String>>) -> Vec<(String, Vec<Option<String>>)> {
        let keys: std::collections::BTreeSet<&String> = maps.iter().flat_map(|m| m.keys()).collect();
        keys.into_iter()
            .map(|k| (k.clone(), maps.iter().map(|m| m.get(k).cloned()).collect::<Vec<_>>()))
            .filter(|(_, values)| values.iter().any(|v| *v != values[0]))
            .collect()
    }
    let mut scores: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for col in columns {
        for (subtask, name, _) in &col.scores {
            if scores.iter().any(|(n, _)| n == name) {
                continue;
            }
            let values = columns
                .iter()
                .map(|c| c.scores.iter().find(|(s, _, _)| s == subtask).map(|(_, _, v)| *v))
                .collect();
            scores.push((name.clone(), values));
        }
    }
    let with_provenance: Vec<&BTreeMap<String, String>> = columns.iter().map(|c| &c.provenance).collect();
    ManyDiff {
        columns: columns.iter().map(|c| c.name.clone()).collect(),
        sources: columns.iter().map(|c| c.source.clone()).collect(),
        config: differing(columns.iter().map(|c| &c.config).collect()),
        scores,
        provenance: if with_provenance.iter().all(|p| p.is_empty()) { Vec::new() } else { differing(with_provenance) },
    }
}

/// A stored run as a column of [`diff_many`].
pub fn run_column(dir: &RunDir) -> Result<Column, StoreError> {
    let manifest = dir.read_manifest()?;
    let name = manifest.as_ref().map_or_else(
        || dir.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        |m| format!("{} {} s{}", m.run_id, m.label, m.seed),
    );
    let scores = read_eval(dir)?
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.subtask, r.name, r.score))
        .collect();
    let provenance = manifest
        .as_ref()
        .map(|m| provenance_fields(&m.provenance).into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        .unwrap_or_default();
    Ok(Column { name, config: read_config(dir)?, scores, provenance, source: dir.path.display().to_string() })
}

impl ManyDiff {
    pub fn render(&self) -> String {
        use tabled::{builder::Builder, settings::Style};
        let missing = || "–".to_string();
        let header = |first: &str| std::iter::once(first.to_string()).chain(self.columns.iter().cloned()).collect::<Vec<_>>();
        let mut out = String::new();
        for (name, source) in self.columns.iter().zip(&self.sources) {
            out.push_str(&format!("{name}: {source}\n"));
        }
        if self.config.is_empty() {
            out.push_str("\nconfig: identical\n");
        } else {
            out.push_str(&format!("\nconfig: {} key(s) differ\n", self.config.len()));
            let mut b = Builder::default();
            b.push_record(header("key"));
            for (key, values) in &self.config {
                b.push_record(std::iter::once(key.clone()).chain(values.iter().map(|v| v.clone().unwrap_or_else(missing))));
            }
            out.push_str(&format!("{}\n", b.build().with(Style::psql())));
        }
        if self.scores.is_empty() {
            out.push_str("\nscores: none has an eval.csv\n");
        } else {
            out.push_str("\nscores (percent)\n");
            let mut b = Builder::default();
            b.push_record(header("subtask"));
            for (name, values) in &self.scores {
                let cells = values.iter().map(|v| v.map(|x| format!("{x:.1}")).unwrap_or_else(missing));
                b.push_record(std::iter::once(name.clone()).chain(cells));
            }
            out.push_str(&format!("{}\n", b.build().with(Style::psql())));
        }
        if !self.provenance.is_empty() {
            out.push_str("\nprovenance differs\n");
            let mut b = Builder::default();
            b.push_record(header("field"));
            for (key, values) in &self.provenance {
                b.push_record(std::iter::once(key.clone()).chain(values.iter().map(|v| v.clone().unwrap_or_else(missing))));
            }
            out.push_str(&format!("{}\n", b.build().with(Style::psql())));
        }
        out
    }
}

impl RunDiff {
    pub fn render(&self) -> String {
        use tabled::{builder::Builder, settings::Style};
        let mut out = String::new();
        for (name, side) in [("A", &self.a), ("B", &self.b)] {
            let what = match &side.manifest {
                Some(m) => format!(
                    "{}, {}, seed {}, id {}, {}",
                    m.experiment,
                    m.label,
                    m.seed,
                    m.run_id,
                    format!("{:?}", m.status).to_lowercase()
                ),
                None => "no manifest.json".into(),
            };
            out.push_str(&format!("{name}: {} ({what})\n", side.dir.path.display()));
        }

        let missing = || "–".to_string();
        if self.config.is_empty() {
            out.push_str("\nconfig: identical\n");
        } else {
            out.push_str(&format!("\nconfig: {} key(s) differ\n", self.config.len()));
            let mut b = Builder::default();
            b.push_record(["key", "A", "B"]);
            for c in &self.config {
                b.push_record([c.key.clone(), c.a.clone().unwrap_or_else(missing), c.b.clone().unwrap_or_else(missing)]);
            }
            out.push_str(&format!("{}\n", b.build().with(Style::psql())));
        }

        match (self.a.evaluated, self.b.evaluated) {
            (false, false) => out.push_str("\nscores: neither run has an eval.csv\n"),
            (ea, eb) => {
                out.push_str("\nscores (percent; B−A; drop = score lost when geometry or vision tokens are zeroed)\n");
                if !ea || !eb {
                    out.push_str(&format!("{} has no eval.csv yet\n", if ea { "B" } else { "A" }));
                }
                let num = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(missing);
                let signed = |v: Option<f64>| v.map(|x| format!("{x:+.1}")).unwrap_or_else(missing);
                let mut b = Builder::default();
                b.push_record(["subtask", "A", "B", "B−A", "geo drop A", "geo drop B", "vision drop A", "vision drop B"]);
                for m in &self.metrics {
                    b.push_record([
                        m.name.clone(),
                        num(m.score.a),
                        num(m.score.b),
                        signed(m.score.delta()),
                        num(m.drop_no_geometry.a),
                        num(m.drop_no_geometry.b),
                        num(m.drop_no_vision.a),
                        num(m.drop_no_vision.b),
                    ]);
                }
                out.push_str(&format!("{}\n", b.build().with(Style::psql())));
            }
        }

        if self.a.manifest.is_none() || self.b.manifest.is_none() {
            out.push_str("\nprovenance: not compared (a run has no manifest.json)\n");
        } else if self.provenance.is_empty() {
            out.push_str("\nprovenance: same build, commit, tree state (patch), backend, device, versions, threads and machine\n");
        } else {
            out.push_str("\nprovenance differs\n");
            let mut b = Builder::default();
            b.push_record(["field", "A", "B"]);
            for c in &self.provenance {
                b.push_record([c.key.clone(), c.a.clone().unwrap_or_else(missing), c.b.clone().unwrap_or_else(missing)]);
            }
            out.push_str(&format!("{}\n", b.build().with(Style::psql())));
        }
        out
    }
}

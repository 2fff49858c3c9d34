//! `geosr runs`: every stored run, across experiments, as one flat record of settings,
//! scores, provenance and tags, which filters select and callers pick columns from
//! (what `dvc exp show` and `mlflow search_runs` give).
//!
//! A record's keys live in four namespaces, so a key says where its value came from:
//! config keys as the run's `config.toml` writes them (`model.mask.gamma`),
//! `metrics.*` from `eval.csv` (`metrics.avg`, `metrics.obj_count`, ...), `run.*`
//! from the manifest and the store (`run.id`, `run.experiment`, `run.status`, ...),
//! and `tags.*` with `run.note` from the run's `tags.json` (see [`super::tags`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::eval::EvalRow;

use super::find::read_dirs as sub_dirs;
use super::{Manifest, RunDir, Status, StoreError};

/// One value of a record, typed so that filters compare numbers as numbers and JSON
/// keeps them numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Field {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Field::Int(i) => Some(*i as f64),
            Field::Float(f) => Some(*f),
            Field::Bool(_) => None,
            Field::Text(t) => t.trim().parse().ok(),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Field::Int(i) => i.to_string(),
            Field::Float(f) => f.to_string(),
            Field::Bool(b) => b.to_string(),
            Field::Text(t) => t.clone(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Field::Int(i) => (*i).into(),
            Field::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number),
            Field::Bool(b) => (*b).into(),
            Field::Text(t) => t.clone().into(),
        }
    }
}

/// A stored run, flattened.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub dir: RunDir,
    pub fields: BTreeMap<String, Field>,
}

impl RunRecord {
    pub fn get(&self, key: &str) -> Option<&Field> {
        self.fields.get(key)
    }

    /// The experiments whose plans link this run (or the one that trained it).
    pub fn experiments(&self) -> Vec<String> {
        self.get("run.experiment").map(|f| f.text().split(',').map(str::to_string).collect()).unwrap_or_default()
    }
}

/// An experiment's entry for a run: `<label>-s<seed>-<id>` under `runs/<experiment>/`.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    experiment: String,
    label: String,
}

/// Every run under `results_dir`: the store's folders and the folders of runs stored
/// before the store, each once, with the experiments that link it. Runs are sorted by
/// experiment, label and seed. A folder that cannot be read is an error that names it,
/// not a run left out in silence.
pub fn scan(results_dir: &Path) -> Result<Vec<RunRecord>, StoreError> {
    let mut entries: BTreeMap<PathBuf, Vec<Entry>> = BTreeMap::new();
    for experiment in sub_dirs(&results_dir.join("runs"))? {
        let exp_name = file_name(&experiment);
        for entry in sub_dirs(&experiment)? {
            let Some(label) = entry_label(&file_name(&entry)) else { continue };
            // A link and the folder it points at are one run.
            let real = std::fs::canonicalize(&entry).unwrap_or(entry.clone());
            entries.entry(real).or_default().push(Entry { experiment: exp_name.clone(), label });
        }
    }
    // A set, not a list: with 100,000 runs, looking each linked folder up in a list took
    // minutes.
    let mut seen: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in sub_dirs(&super::store::store_root(results_dir))? {
        let real = std::fs::canonicalize(&d).unwrap_or(d);
        if seen.insert(real.clone()) {
            dirs.push(real);
        }
    }
    for real in entries.keys() {
        if seen.insert(real.clone()) {
            dirs.push(real.clone());
        }
    }
    // Each run's files are read on their own, so the cores share the runs.
    use rayon::prelude::*;
    let mut records: Vec<RunRecord> = dirs
        .par_iter()
        .filter_map(|path| {
            let dir = RunDir { path: path.clone() };
            // A folder the store made for a run that never wrote anything (a lock only).
            if !dir.manifest_path().exists() && !dir.config_path().exists() {
                return None;
            }
            Some(record(&dir, entries.get(path).map(Vec::as_slice).unwrap_or(&[])))
        })
        .collect();
    records.sort_by_cached_key(sort_key);
    Ok(records)
}

fn sort_key(r: &RunRecord) -> (String, String, i64, String) {
    let text = |k: &str| r.get(k).map(Field::text).unwrap_or_default();
    let seed = match r.get("run.seed") {
        Some(Field::Int(i)) => *i,
        _ => i64::MAX,
    };
    (text("run.experiment"), text("run.label"), seed, text("run.id"))
}

/// The label of an entry named `<label>-s<seed>-<id>` (labels may contain '-').
fn entry_label(name: &str) -> Option<String> {
    let (rest, _id) = name.rsplit_once('-')?;
    let (label, seed) = rest.rsplit_once("-s")?;
    seed.parse::<u64>().ok()?;
    Some(label.to_string())
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One run's record. `entries` are the experiments that link it; without any (a run
/// no current experiment plans), its manifest's experiment and label stand in. A run
/// whose files cannot be read or trusted is still a record: status `damaged`, and
/// `run.problem` says what is wrong, as `table` and `status` name it and go on.
fn record(dir: &RunDir, entries: &[Entry]) -> RunRecord {
    let mut fields = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    let manifest = dir.read_manifest().unwrap_or_else(|e| {
        problems.push(e.to_string());
        None
    });
    let config_path = dir.config_path();
    let config: Option<toml::Table> = match std::fs::read_to_string(&config_path) {
        Ok(text) => toml::from_str(&text).map_err(|e| problems.push(format!("{}: {e}", config_path.display()))).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            problems.push(format!("{}: {e}", config_path.display()));
            None
        }
    };
    if let Some(config) = &config {
        flatten_toml("", config, &mut fields);
    }

    let id = manifest.as_ref().map(|m| m.run_id.clone()).unwrap_or_else(|| {
        let name = file_name(&dir.path);
        name.rsplit('-').next().unwrap_or(&name).to_string()
    });
    let text = |s: &str| Field::Text(s.to_string());
    fields.insert("run.id".into(), text(&id));
    fields.insert("run.folder".into(), text(&dir.path.display().to_string()));
    let (mut experiments, mut labels): (Vec<String>, Vec<String>) =
        entries.iter().map(|e| (e.experiment.clone(), e.label.clone())).unzip();
    if experiments.is_empty() {
        if let Some(m) = &manifest {
            experiments.push(m.experiment.clone());
            labels.push(m.label.clone());
        }
    }
    fields.insert("run.experiment".into(), text(&experiments.join(",")));
    labels.dedup();
    fields.insert("run.label".into(), text(&labels.join(",")));
    if let Some(seed) = manifest.as_ref().map(|m| m.seed as i64).or_else(|| match fields.get("train.seed") {
        Some(Field::Int(i)) => Some(*i),
        _ => None,
    }) {
        fields.insert("run.seed".into(), Field::Int(seed));
    }
    if let Some(m) = &manifest {
        manifest_fields(m, &mut fields);
        if m.status == Status::Done {
            if let Err(why) = super::status::check_files(dir, m) {
                problems.push(why);
            }
        }
    }

    let eval_path = dir.eval_csv();
    if eval_path.exists() {
        match dir.read_csv::<EvalRow>(&eval_path) {
            Ok(rows) => {
                let average = config
                    .as_ref()
                    .and_then(|c| c.get("eval")?.get("average")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| "macro".into());
                metric_fields(&rows, &average, &mut fields);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }

    match super::tags::read(dir) {
        Ok(tags) => {
            for (key, value) in &tags.tags {
                fields.insert(format!("tags.{key}"), text(value));
            }
            if let Some(note) = &tags.note {
                fields.insert("run.note".into(), text(note));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }

    // What `status` would say: a live lock is running; a manifest left `running` by a
    // process that is gone is interrupted.
    let status = match &manifest {
        _ if !problems.is_empty() => "damaged".to_string(),
        None => "pending".to_string(),
        Some(_) if dir.is_locked() => "running".to_string(),
        Some(m) if m.status == Status::Running => "interrupted".to_string(),
        Some(m) => format!("{:?}", m.status).to_lowercase(),
    };
    fields.insert("run.status".into(), text(&status));
    if !problems.is_empty() {
        fields.insert("run.problem".into(), text(&problems.join("; ")));
    }
    RunRecord { dir: dir.clone(), fields }
}

fn flatten_toml(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, Field>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        let field = match v {
            toml::Value::Table(t) => {
                flatten_toml(&key, t, out);
                continue;
            }
            toml::Value::Integer(i) => Field::Int(*i),
            toml::Value::Float(f) => Field::Float(*f),
            toml::Value::Boolean(b) => Field::Bool(*b),
            toml::Value::String(s) => Field::Text(s.clone()),
            other => Field::Text(other.to_string()),
        };
        out.insert(key, field);
    }
}

fn manifest_fields(m: &Manifest, out: &mut BTreeMap<String, Field>) {
    let text = |s: &str| Field::Text(s.to_string());
    let p = &m.provenance;
    if let Some(b) = &p.build {
        out.insert("run.build".into(), text(&b.short()));
    }
    if let Some(commit) = &p.git_commit {
        out.insert("run.commit".into(), text(&commit[..commit.len().min(12)]));
    }
    out.insert("run.dirty".into(), Field::Bool(p.git_dirty));
    out.insert("run.backend".into(), text(&p.backend));
    out.insert("run.device".into(), text(&p.device));
    out.insert("run.host".into(), text(&p.host));
    out.insert("run.cpu".into(), text(&p.cpu));
    if let Some(started) = &m.started {
        out.insert("run.started".into(), text(started));
    }
    if let Some(ended) = &m.ended {
        out.insert("run.ended".into(), text(ended));
    }
    if !m.attempts.is_empty() {
        out.insert("run.wall_s".into(), Field::Float((m.wall_seconds() * 10.0).round() / 10.0));
    }
    if let Some(reason) = &m.reason {
        out.insert("run.reason".into(), text(reason));
    }
}

/// `metrics.<subtask>` for each subtask, `metrics.avg` for the average the run's
/// benchmark reports (`eval.average`), both averages by name, and the average's
/// geometry-reliance probes.
fn metric_fields(rows: &[EvalRow], average: &str, out: &mut BTreeMap<String, Field>) {
    for row in rows {
        out.insert(format!("metrics.{}", row.subtask), Field::Float(row.score));
        if row.subtask == format!("avg_{average}") {
            out.insert("metrics.avg".into(), Field::Float(row.score));
            out.insert("metrics.drop_no_geometry".into(), Field::Float(row.drop_no_geometry));
            out.insert("metrics.drop_no_vision".into(), Field::Float(row.drop_no_vision));
        }
    }
}

/// A comparison operator of a `--where` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
    /// The value's text contains the operand.
    Contains,
}

/// A filter `KEY OP VALUE`, e.g. `model.mask.gamma>=0.6` or `run.experiment~table`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub key: String,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("--where {0:?}: expected KEY OP VALUE with OP one of == != >= <= > < ~ (e.g. \"model.mask.gamma>=0.6\")")]
    BadFilter(String),
    #[error("{what} {key:?}: no stored run has this key{hint}")]
    UnknownKey { what: &'static str, key: String, hint: String },
    #[error("--where {key} {op} {value:?}: `{key}` holds numbers, so {op} compares it with a number, e.g. \"{key} {op} 0.5\"")]
    NotANumber { key: String, op: &'static str, value: String },
}

impl std::str::FromStr for Filter {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Filter, QueryError> {
        // Two-character operators first, so `>=` is not read as `>` and `=0.6`.
        const OPS: [(&str, Op); 8] =
            [("==", Op::Eq), ("!=", Op::Ne), (">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt), ("~", Op::Contains), ("=", Op::Eq)];
        let bad = || QueryError::BadFilter(text.to_string());
        let (at, len, op) = OPS
            .iter()
            .filter_map(|(s, op)| text.find(s).map(|at| (at, s.len(), *op)))
            // The leftmost operator; at one position the longer one (OPS order).
            .min_by_key(|(at, len, _)| (*at, usize::MAX - len))
            .ok_or_else(bad)?;
        let key = text[..at].trim();
        let value = text[at + len..].trim();
        // `>> 3`, `=> 3`: a second operator is a typo, not a value to compare text with.
        if key.is_empty() || value.is_empty() || value.starts_with(['=', '<', '>', '!', '~']) {
            return Err(bad());
        }
        Ok(Filter { key: key.to_string(), op, value: value.trim_matches('"').to_string() })
    }
}

impl Filter {
    /// Whether `record` passes. A run without the key never passes: a filter on a
    /// setting says nothing about runs that do not have it.
    pub fn matches(&self, record: &RunRecord) -> bool {
        let Some(field) = record.get(&self.key) else { return false };
        if self.op == Op::Contains {
            return field.text().contains(&self.value);
        }
        let ordering = match (field.as_f64(), self.value.parse::<f64>().ok()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(field.text().as_str().cmp(self.value.as_str())),
        };
        let Some(ordering) = ordering else { return false };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Ge => ordering != Less,
            Op::Le => ordering != Greater,
            Op::Gt => ordering == Greater,
            Op::Lt => ordering == Less,
            Op::Contains => unreachable!("handled above"),
        }
    }
}

impl Filter {
    /// Refuses an order comparison of a numeric key with something that is not a
    /// number (`metrics.avg > abc`), which would compare text and select nothing.
    pub fn check_value(&self, records: &[RunRecord]) -> Result<(), QueryError> {
        let op = match self.op {
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
            _ => return Ok(()),
        };
        let numeric = records.iter().filter_map(|r| r.get(&self.key)).any(|f| f.as_f64().is_some());
        if numeric && self.value.parse::<f64>().is_err() {
            return Err(QueryError::NotANumber { key: self.key.clone(), op, value: self.value.clone() });
        }
        Ok(())
    }
}

/// Refuses a key that no record has, with the closest one that exists: a typo in a
/// filter would otherwise select nothing and look like an answer.
pub fn check_key(records: &[RunRecord], key: &str, what: &'static str) -> Result<(), QueryError> {
    if records.is_empty() || records.iter().any(|r| r.fields.contains_key(key)) {
        return Ok(());
    }
    let known: std::collections::BTreeSet<&String> = records.iter().flat_map(|r| r.fields.keys()).collect();
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let close: Vec<&str> = known
        .iter()
        .filter(|k| k.rsplit('.').next() == Some(leaf) || strsim::levenshtein(k, key) <= 3)
        .map(|k| k.as_str())
        .take(3)
        .collect();
    let hint = if close.is_empty() {
        let spaces: std::collections::BTreeSet<&str> = known.iter().filter_map(|k| k.split('.').next()).collect();
        format!(" (keys start with one of {spaces:?}; `geosr runs --keys` lists them all)")
    } else {
        format!("; did you mean {}?", close.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" or "))
    };
    Err(QueryError::UnknownKey { what, key: key.to_string(), hint })
}

/// The config keys whose values differ among `records` (a key some lack counts as
/// differing), leaving out where results are written and the seed, which `run.seed`
/// shows: the columns that tell these runs apart.
pub fn varying_config_keys(records: &[RunRecord]) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = records
        .iter()
        .flat_map(|r| r.fields.keys())
        .filter(|k| !k.starts_with("run.") && !k.starts_with("metrics.") && !k.starts_with("tags.") && !k.starts_with("output."))
        .filter(|k| k.as_str() != "train.seed")
        .collect();
    keys.into_iter()
        .filter(|k| {
            let first = records[0].get(k);
            records.iter().any(|r| r.get(k) != first)
        })
        .cloned()
        .collect()
}

/// Sorts by `key`: numbers as numbers, runs without the key last.
pub fn sort_by(records: &mut [RunRecord], key: &str, descending: bool) {
    records.sort_by(|a, b| {
        let (fa, fb) = (a.get(key), b.get(key));
        match (fa, fb) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => {
                let o = match (x.as_f64(), y.as_f64()) {
                    (Some(p), Some(q)) => p.total_cmp(&q),
                    _ => x.text().cmp(&y.text()),
                };
                if descending {
                    o.reverse()
                } else {
                    o
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, Field)]) -> RunRecord {
        RunRecord { dir: RunDir { path: "x".into() }, fields: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() }
    }

    #[test]
    fn filters_parse_their_operator_and_compare_numbers_as_numbers() {
        let f: Filter = "model.mask.gamma>=0.6".parse().unwrap();
        assert_eq!(f, Filter { key: "model.mask.gamma".into(), op: Op::Ge, value: "0.6".into() });
        assert_eq!("a = b".parse::<Filter>().unwrap().op, Op::Eq);
        assert_eq!("a==b".parse::<Filter>().unwrap().op, Op::Eq);
        assert_eq!("a!=b".parse::<Filter>().unwrap().op, Op::Ne);
        assert!("gamma".parse::<Filter>().is_err());
        assert!(">=0.6".parse::<Filter>().is_err());

        let r = rec(&[("model.mask.gamma", Field::Float(0.8)), ("train.steps", Field::Int(10)), ("model.fusion", Field::Text("gated".into()))]);
        assert!("model.mask.gamma>=0.6".parse::<Filter>().unwrap().matches(&r));
        assert!(!"model.mask.gamma<0.6".parse::<Filter>().unwrap().matches(&r));
        // 10 > 9 as numbers, though "10" < "9" as text.
        assert!("train.steps>9".parse::<Filter>().unwrap().matches(&r));
        assert!("model.fusion=gated".parse::<Filter>().unwrap().matches(&r));
        assert!("model.fusion~gat".parse::<Filter>().unwrap().matches(&r));
        assert!(!"model.fusion!=gated".parse::<Filter>().unwrap().matches(&r));
        // A run without the key never passes, not even `!=`.
        assert!(!"model.mask.beta!=0.5".parse::<Filter>().unwrap().matches(&r));
        // Doubled or reversed operators are typos, and an order against text is refused
        // for a numeric key (each of these used to select nothing, silently).
        for typo in ["metrics.avg >> 3", "metrics.avg => 3", "metrics.avg <> 3", "a == =b"] {
            assert!(typo.parse::<Filter>().is_err(), "{typo}");
        }
        let records = [r];
        assert!("train.steps > abc".parse::<Filter>().unwrap().check_value(&records).is_err());
        assert!("train.steps > 9".parse::<Filter>().unwrap().check_value(&records).is_ok());
        assert!("model.fusion > a".parse::<Filter>().unwrap().check_value(&records).is_ok(), "text keys order as text");
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_closest_known_one() {
        let records = vec![rec(&[("model.mask.gamma", Field::Float(0.8))])];
        let err = check_key(&records, "model.mask.gama", "--where").unwrap_err().to_string();
        assert!(err.contains("`model.mask.gamma`"), "{err}");
        assert!(check_key(&records, "model.mask.gamma", "--where").is_ok());
    }

    #[test]
    fn varying_keys_are_those_that_tell_runs_apart() {
        let a = rec(&[("model.fusion", Field::Text("gated".into())), ("train.seed", Field::Int(0)), ("model.depth", Field::Int(3))]);
        let b = rec(&[("model.fusion", Field::Text("additive".into())), ("train.seed", Field::Int(1)), ("model.depth", Field::Int(3))]);
        assert_eq!(varying_config_keys(&[a.clone(), b.clone()]), vec!["model.fusion".to_string()]);
        let mut both = vec![a, b];
        sort_by(&mut both, "model.fusion", false);
        assert_eq!(both[0].get("model.fusion"), Some(&Field::Text("additive".into())));
    }

    #[test]
    fn entry_names_give_their_labels() {
        assert_eq!(entry_label("a-s0-0123456789").as_deref(), Some("a"));
        assert_eq!(entry_label("geosr_gamma0.6-x-s12-abc").as_deref(), Some("geosr_gamma0.6-x"));
        assert_eq!(entry_label("notarun"), None);
    }
}

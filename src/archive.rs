//! Run archives: finished runs packed into one Parquet file that outlives the machine
//! (`geosr archive`), and restored into a run store (`geosr import`).
//!
//! One row per run, sorted by run id, so the same runs always give the same bytes. The
//! first columns say what the run is and what it scored, for a reader with pandas,
//! polars or DuckDB and no geosr (`SELECT label, seed, avg_macro FROM 'table3.parquet'`);
//! the rest hold the run's files as they were written (`config_toml`, `eval_csv`,
//! `predictions_csv`, ...), each with its SHA-256 in `sha256`, so an import can tell an
//! archive cut short or edited from a sound one before it writes anything.
//!
//! What is left out: checkpoints, earlier results kept in `history/`, and the final
//! weights unless asked for. `train.csv` keeps every `train_csv_every`-th step and the
//! last one, unless the whole log is asked for: at quick's scale the full log is about
//! half of a run's bytes, and the learning curves need a few hundred points.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::ColumnPath;

use crate::runs::manifest::sha256_hex;
use crate::runs::{Manifest, RunDir, Status};

/// The archive layout's version, in every row; an archive of a later layout is refused.
pub const FORMAT: i64 = 1;

/// The step stride of an archived `train.csv` unless the whole log is kept.
pub const TRAIN_LOG_STRIDE: u64 = 8;

/// Each archived file: its column and its path in the run folder.
pub const FILES: &[(&str, &str)] = &[
    ("config_toml", "config.toml"),
    ("manifest_json", "manifest.json"),
    ("eval_csv", "eval.csv"),
    ("predictions_csv", "predictions.csv"),
    ("train_csv", "train.csv"),
    ("curve_csv", "curve.csv"),
    ("tags_json", "tags.json"),
    ("log_txt", "log.txt"),
    ("weights_mpk", "model/model.mpk"),
];

/// The files whose contents decide whether two copies of a run are the same run with
/// the same results (what `manifest.files` hashes, and the manifest itself).
const IDENTITY_FILES: &[&str] = &["config.toml", "manifest.json", "eval.csv", "predictions.csv"];

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a readable geosr archive ({message}); a file cut short or not Parquet", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error("{}: run {run}: {message}; the archive was changed or damaged after it was written, nothing was imported from it", path.display())]
    BadRun { path: PathBuf, run: String, message: String },
    #[error("{}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] crate::runs::StoreError),
}

/// One run as an archive holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedRun {
    pub run_id: String,
    pub experiment: String,
    pub label: String,
    pub seed: u64,
    /// `(experiment, <label>-s<seed>-<id>)`: every experiment entry that links the run.
    pub entries: BTreeSet<(String, String)>,
    /// The step stride `train.csv` was thinned to (1: the whole log).
    pub train_csv_every: u64,
    /// File path in the run folder -> contents.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// What to take from each run.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    pub weights: bool,
    pub full_log: bool,
}

impl ArchivedRun {
    /// Reads a finished run's files from its folder. `entries` are the experiment
    /// entries that link it.
    pub fn from_dir(dir: &RunDir, manifest: &Manifest, entries: BTreeSet<(String, String)>, opts: PackOptions) -> Result<ArchivedRun, ArchiveError> {
        let mut files = BTreeMap::new();
        for &(_, name) in FILES {
            if name == "model/model.mpk" && !opts.weights {
                continue;
            }
            let path = dir.path.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    files.insert(name.to_string(), bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ArchiveError::Io { path, source }),
            }
        }
        let every = if opts.full_log { 1 } else { TRAIN_LOG_STRIDE };
        if let Some(log) = files.get_mut("train.csv") {
            *log = thin_train_log(log, every);
        }
        Ok(ArchivedRun {
            run_id: manifest.run_id.clone(),
            experiment: manifest.experiment.clone(),
            label: manifest.label.clone(),
            seed: manifest.seed,
            entries,
            train_csv_every: every,
            files,
        })
    }

    fn manifest(&self) -> Option<Manifest> {
        serde_json::from_slice(self.files.get("manifest.json")?).ok()
    }

    /// The evaluation's two averages, from `eval.csv`.
    fn averages(&self) -> (Option<f64>, Option<f64>) {
        let Some(bytes) = self.files.get("eval.csv") else { return (None, None) };
        let rows: Vec<crate::eval::EvalRow> = csv::Reader::from_reader(bytes.as_slice()).deserialize().filter_map(Result::ok).collect();
        let get = |name: &str| rows.iter().find(|r| r.subtask == name).map(|r| r.score);
        (get("avg_micro"), get("avg_macro"))
    }
}

/// Keeps the header, every `every`-th step and the last row of a `train.csv`.
pub fn thin_train_log(bytes: &[u8], every: u64) -> Vec<u8> {
    if every <= 1 {
        return bytes.to_vec();
    }
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let Some((header, rows)) = lines.split_first() else { return bytes.to_vec() };
    let mut out = String::with_capacity(bytes.len() / every as usize + header.len());
    out.push_str(header);
    out.push('\n');
    for (i, row) in rows.iter().enumerate() {
        let step = row.split(',').next().and_then(|s| s.parse::<u64>().ok());
        if step.is_some_and(|s| s % every == 0) || i + 1 == rows.len() {
            out.push_str(row);
            out.push('\n');
        }
    }
    out.into_bytes()
}

const SCHEMA: &str = "message geosr_run {
    REQUIRED INT64 format;
    REQUIRED BYTE_ARRAY run_id (UTF8);
    REQUIRED BYTE_ARRAY experiment (UTF8);
    REQUIRED BYTE_ARRAY label (UTF8);
    REQUIRED INT64 seed;
    OPTIONAL BYTE_ARRAY status (UTF8);
    OPTIONAL BYTE_ARRAY backend (UTF8);
    OPTIONAL BYTE_ARRAY build (UTF8);
    OPTIONAL BYTE_ARRAY ended (UTF8);
    OPTIONAL DOUBLE avg_micro;
    OPTIONAL DOUBLE avg_macro;
    REQUIRED BYTE_ARRAY entries (UTF8);
    REQUIRED INT64 train_csv_every;
    REQUIRED BYTE_ARRAY sha256 (UTF8);
    OPTIONAL BYTE_ARRAY config_toml (UTF8);
    OPTIONAL BYTE_ARRAY manifest_json (UTF8);
    OPTIONAL BYTE_ARRAY eval_csv (UTF8);
    OPTIONAL BYTE_ARRAY predictions_csv (UTF8);
    OPTIONAL BYTE_ARRAY train_csv (UTF8);
    OPTIONAL BYTE_ARRAY curve_csv (UTF8);
    OPTIONAL BYTE_ARRAY tags_json (UTF8);
    OPTIONAL BYTE_ARRAY log_txt (UTF8);
    OPTIONAL BYTE_ARRAY weights_mpk;
}";

/// One column's values, `None` where a run has none.
enum Column {
    Int(Vec<i64>),
    Double(Vec<Option<f64>>),
    Text(Vec<Option<Vec<u8>>>),
}

/// The `sha256` column's text: `<file> <hex>` per line, in file order.
fn hash_lines(files: &BTreeMap<String, Vec<u8>>) -> String {
    files.iter().map(|(name, bytes)| format!("{name} {}\n", sha256_hex(bytes))).collect()
}

fn entry_lines(entries: &BTreeSet<(String, String)>) -> String {
    entries.iter().map(|(exp, name)| format!("{exp}/{name}\n")).collect()
}

/// Writes `runs` to `out` (atomically: a reader never sees half an archive). The bytes
/// depend only on the runs: rows are sorted by run id and nothing records a time.
pub fn write(out: &Path, runs: &[ArchivedRun]) -> Result<(), ArchiveError> {
    let mut runs: Vec<&ArchivedRun> = runs.iter().collect();
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let text = |f: &dyn Fn(&ArchivedRun) -> Option<String>| Column::Text(runs.iter().map(|r| f(r).map(String::into_bytes)).collect());
    let manifests: Vec<Option<Manifest>> = runs.iter().map(|r| r.manifest()).collect();
    let averages: Vec<(Option<f64>, Option<f64>)> = runs.iter().map(|r| r.averages()).collect();
    let mut columns: Vec<(&str, Column)> = vec![
        ("format", Column::Int(vec![FORMAT; runs.len()])),
        ("run_id", text(&|r| Some(r.run_id.clone()))),
        ("experiment", text(&|r| Some(r.experiment.clone()))),
        ("label", text(&|r| Some(r.label.clone()))),
        ("seed", Column::Int(runs.iter().map(|r| r.seed as i64).collect())),
        ("status", Column::Text(manifests.iter().map(|m| m.as_ref().map(|m| status_text(m.status).into_bytes())).collect())),
        ("backend", Column::Text(manifests.iter().map(|m| m.as_ref().map(|m| m.provenance.backend.clone().into_bytes())).collect())),
        (
            "build",
            Column::Text(manifests.iter().map(|m| m.as_ref().and_then(|m| m.provenance.build.as_ref()).map(|b| b.short().into_bytes())).collect()),
        ),
        ("ended", Column::Text(manifests.iter().map(|m| m.as_ref().and_then(|m| m.ended.clone()).map(String::into_bytes)).collect())),
        ("avg_micro", Column::Double(averages.iter().map(|a| a.0).collect())),
        ("avg_macro", Column::Double(averages.iter().map(|a| a.1).collect())),
        ("entries", text(&|r| Some(entry_lines(&r.entries)))),
        ("train_csv_every", Column::Int(runs.iter().map(|r| r.train_csv_every as i64).collect())),
        ("sha256", text(&|r| Some(hash_lines(&r.files)))),
    ];
    for &(column, name) in FILES {
        columns.push((column, Column::Text(runs.iter().map(|r| r.files.get(name).cloned()).collect())));
    }

    let write_err = |e: parquet::errors::ParquetError| ArchiveError::Write { path: out.to_path_buf(), message: e.to_string() };
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA).map_err(write_err)?);
    // zstd at a high level: an archive is written once and kept in git. The files are
    // long, unique strings: no dictionary, no min/max statistics, large pages so similar
    // runs compress together.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(19).map_err(write_err)?))
        .set_created_by(format!("geosr {} (archive format {FORMAT})", env!("CARGO_PKG_VERSION")));
    for &(column, _) in FILES.iter().chain([("sha256", ""), ("entries", "")].iter()) {
        let path = ColumnPath::from(column);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path.clone(), EnabledStatistics::None)
            .set_column_data_page_size_limit(path, 16 << 20);
    }
    let mut buffer = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut buffer, schema, Arc::new(props.build())).map_err(write_err)?;
    let mut group = writer.next_row_group().map_err(write_err)?;
    let mut columns = columns.into_iter();
    while let Some(mut col) = group.next_column().map_err(write_err)? {
        let (_, values) = columns.next().expect("one value list per schema column");
        match values {
            Column::Int(v) => col.typed::<Int64Type>().write_batch(&v, None, None),
            Column::Double(v) => {
                let levels: Vec<i16> = v.iter().map(|x| x.is_some() as i16).collect();
                let present: Vec<f64> = v.into_iter().flatten().collect();
                col.typed::<DoubleType>().write_batch(&present, Some(&levels), None)
            }
            Column::Text(v) => {
                let levels: Vec<i16> = v.iter().map(|x| x.is_some() as i16).collect();
                let present: Vec<ByteArray> = v.into_iter().flatten().map(ByteArray::from).collect();
                col.typed::<ByteArrayType>().write_batch(&present, Some(&levels), None)
            }
        }
        .map_err(write_err)?;
        col.close().map_err(write_err)?;
    }
    group.close().map_err(write_err)?;
    writer.close().map_err(write_err)?;
    crate::runs::write_atomic(out, &buffer)?;
    Ok(())
}

fn status_text(status: Status) -> String {
    serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Reads every run of an archive and checks each against its hashes: every file
/// against the `sha256` column, the hashed result files against the run's manifest,
/// and its config against its run id. One bad run refuses the whole archive.
pub fn read(path: &Path) -> Result<Vec<ArchivedRun>, ArchiveError> {
    let unreadable = |message: String| ArchiveError::Unreadable { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|source| ArchiveError::Io { path: path.to_path_buf(), source })?;
    let reader = SerializedFileReader::new(file).map_err(|e| unreadable(e.to_string()))?;
    // The ids alone first (a small column), so damage further on can name its run.
    let ids = run_ids(&reader);
    let mut runs = Vec::new();
    for (index, row) in reader.get_row_iter(None).map_err(|e| unreadable(e.to_string()))?.enumerate() {
        let row = row.map_err(|e| match ids.get(index) {
            Some(run) => ArchiveError::BadRun { path: path.to_path_buf(), run: run.clone(), message: format!("unreadable: {e}") },
            None => unreadable(format!("row {index}: {e}")),
        })?;
        let fields: BTreeMap<&str, &Field> = row.get_column_iter().map(|(k, v)| (k.as_str(), v)).collect();
        let text = |name: &str| match fields.get(name) {
            Some(Field::Str(s)) => Some(s.clone()),
            Some(Field::Bytes(b)) => String::from_utf8(b.data().to_vec()).ok(),
            _ => None,
        };
        let int = |name: &str| match fields.get(name) {
            Some(Field::Long(v)) => Some(*v),
            _ => None,
        };
        let run_id = text("run_id").ok_or_else(|| unreadable(format!("row {index} has no run_id")))?;
        let bad = |message: String| ArchiveError::BadRun { path: path.to_path_buf(), run: run_id.clone(), message };
        match int("format") {
            Some(FORMAT) => {}
            other => return Err(bad(format!("archive format {other:?}; this geosr reads format {FORMAT} (a newer geosr wrote it?)"))),
        }
        let mut files = BTreeMap::new();
        for &(column, name) in FILES {
            let bytes = match fields.get(column) {
                Some(Field::Str(s)) => s.clone().into_bytes(),
                Some(Field::Bytes(b)) => b.data().to_vec(),
                _ => continue,
            };
            files.insert(name.to_string(), bytes);
        }
        let hashes = text("sha256").ok_or_else(|| bad("no sha256 column".into()))?;
        let expected: BTreeMap<&str, &str> = hashes.lines().filter_map(|l| l.split_once(' ')).collect();
        for (name, bytes) in &files {
            match expected.get(name.as_str()) {
                Some(h) if *h == sha256_hex(bytes) => {}
                Some(_) => return Err(bad(format!("{name} does not match its SHA-256"))),
                None => return Err(bad(format!("{name} has no SHA-256"))),
            }
        }
        if let Some(missing) = expected.keys().find(|name| !files.contains_key(**name)) {
            return Err(bad(format!("{missing} is listed in sha256 but missing")));
        }
        let run = ArchivedRun {
            run_id: run_id.clone(),
            experiment: text("experiment").unwrap_or_default(),
            label: text("label").unwrap_or_default(),
            seed: int("seed").unwrap_or_default() as u64,
            entries: text("entries")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.rsplit_once('/'))
                .map(|(e, n)| (e.to_string(), n.to_string()))
                .collect(),
            train_csv_every: int("train_csv_every").unwrap_or(1).max(1) as u64,
            files,
        };
        check_run(&run).map_err(bad)?;
        runs.push(run);
    }
    Ok(runs)
}

/// The `run_id` column, as far as it reads.
fn run_ids(reader: &SerializedFileReader<std::fs::File>) -> Vec<String> {
    let Ok(projection) = parquet::schema::parser::parse_message_type("message ids { REQUIRED BYTE_ARRAY run_id (UTF8); }") else {
        return Vec::new();
    };
    let Ok(rows) = reader.get_row_iter(Some(projection)) else { return Vec::new() };
    rows.map_while(Result::ok)
        .filter_map(|row| match row.get_column_iter().next() {
            Some((_, Field::Str(s))) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// A run's files agree with one another: a done manifest for this id, the hashes it
/// recorded, and a config that hashes to the id.
fn check_run(run: &ArchivedRun) -> Result<(), String> {
    let manifest: Manifest = serde_json::from_slice(run.files.get("manifest.json").ok_or("no manifest.json")?)
        .map_err(|e| format!("manifest.json: {e}"))?;
    if manifest.run_id != run.run_id {
        return Err(format!("manifest.json is run {}'s", manifest.run_id));
    }
    if manifest.status != Status::Done {
        return Err(format!("its manifest says {}, not done", status_text(manifest.status)));
    }
    for (name, hash) in &manifest.files {
        let bytes = run.files.get(name).ok_or_else(|| format!("{name} is missing"))?;
        if sha256_hex(bytes) != *hash {
            return Err(format!("{name} differs from what the run wrote (its manifest's hash)"));
        }
    }
    let config = std::str::from_utf8(run.files.get("config.toml").ok_or("no config.toml")?).map_err(|e| format!("config.toml: {e}"))?;
    let (id, legacy) = crate::runs::status::config_ids(config)?;
    if id != run.run_id && legacy != run.run_id {
        return Err(format!("config.toml describes run {id}"));
    }
    Ok(())
}

/// What `import` did with each run.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: Vec<String>,
    pub present: Vec<String>,
    /// Runs the store holds with other results, or is training now: left as they are.
    pub conflicts: Vec<(String, String)>,
    /// Runs the store holds with other tags: the store's were kept.
    pub notes: Vec<String>,
}

/// Restores `runs` into the store of `results_dir` and links each under its
/// experiments' entries. A run the store already holds with the same results is left
/// as it is; one it holds with other results (or is training) is a conflict and is
/// never overwritten. A run's manifest is written last, so an import killed half way
/// leaves runs that count as not started, and the same import finishes them.
pub fn restore(results_dir: &Path, runs: &[ArchivedRun]) -> Result<ImportReport, ArchiveError> {
    let mut report = ImportReport::default();
    for run in runs {
        let dir = RunDir { path: crate::runs::store::store_path(results_dir, &run.run_id) };
        let Some(_lock) = dir.try_lock()? else {
            report.conflicts.push((run.run_id.clone(), "a process is training it in this store now".into()));
            continue;
        };
        if dir.manifest_path().exists() {
            let differs: Vec<&str> = IDENTITY_FILES
                .iter()
                .copied()
                .filter(|name| std::fs::read(dir.path.join(name)).ok().as_ref() != run.files.get(*name))
                .collect();
            if !differs.is_empty() {
                let stored = dir.read_manifest().ok().flatten().map(|m| status_text(m.status)).unwrap_or_else(|| "unreadable".into());
                report.conflicts.push((
                    run.run_id.clone(),
                    format!("the store holds it ({stored}) with another {} (kept; remove {} to take the archive's)", differs.join(", "), dir.path.display()),
                ));
                continue;
            }
            if let Some(tags) = run.files.get(crate::runs::tags::FILE) {
                match std::fs::read(dir.path.join(crate::runs::tags::FILE)) {
                    Ok(stored) if stored != *tags => report.notes.push(format!("{}: the store's tags differ from the archive's; kept the store's", run.run_id)),
                    Ok(_) => {}
                    Err(_) => crate::runs::write_atomic(&dir.path.join(crate::runs::tags::FILE), tags)?,
                }
            }
            report.present.push(run.run_id.clone());
        } else {
            for (name, bytes) in run.files.iter().filter(|(name, _)| *name != "manifest.json") {
                crate::runs::write_atomic(&dir.path.join(name), bytes)?;
            }
            crate::runs::write_atomic(&dir.manifest_path(), &run.files["manifest.json"])?;
            report.imported.push(run.run_id.clone());
        }
        for (experiment, name) in &run.entries {
            crate::runs::store::link(results_dir, experiment, name, &dir)?;
        }
    }
    Ok(report)
}

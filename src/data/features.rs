//! Real benchmarks (VSI-Bench, DSR-Bench) with precomputed token features.
//!
//! The model never sees video: an external script runs the frozen vision and geometry
//! encoders and stores their tokens per question. This module reads those files into
//! the same [`Dataset`] the synthetic generators return, so training and evaluation
//! code does not know whether a benchmark is real or synthetic.
//!
//! # Folder layout
//!
//! ```text
//! <dir>/meta.json
//! <dir>/questions.jsonl
//! <dir>/features/<id>.safetensors
//! ```
//!
//! `meta.json` describes every features file:
//!
//! ```json
//! {"bench": "vsi", "frames": 16, "vision_grid": [8, 8], "geometry_grid": [8, 8],
//!  "vision_channels": 1024, "geometry_channels": 256}
//! ```
//!
//! `bench` is `"vsi"` or `"dsr"`; the other keys are positive integers (T, [H_V, W_V],
//! [H_G, W_G], C_V, C_G). Each `features/<id>.safetensors` holds two little-endian f32
//! tensors: `"vision"` of shape `[T*H_V*W_V, C_V]` and `"geometry"` of shape
//! `[T*H_G*W_G, C_G]`, tokens in (t, h, w) order like [`Sample`]. `<id>` is the record's
//! `id` written as text (`17` for the integer 17). Ids must be unique, since they name
//! the file.
//!
//! `questions.jsonl` holds one JSON object per line; blank lines are skipped (but
//! counted, so error line numbers match an editor's).
//!
//! # VSI-Bench records
//!
//! The official schema of `nyu-visionx/VSI-Bench`, one row per line:
//!
//! ```json
//! {"id": 12, "dataset": "scannet", "scene_name": "scene0011_00",
//!  "question_type": "object_rel_direction_hard", "question": "If I am standing by ...",
//!  "options": ["A. left", "B. right", "C. back"], "ground_truth": "B"}
//! ```
//!
//! Required: `id` (integer; a string is accepted too), `question_type` (one of the ten
//! official strings in [`VSI_QUESTION_TYPES`]), `question`, `ground_truth` (a number for
//! the four numerical types, an option letter for the six multiple-choice types), and
//! `options` for multiple choice (absent, null or empty for numerical types).
//! `dataset` and `scene_name` are not read. The three `object_rel_direction_*`
//! sub-levels all map to geosr's `rel_direction` subtask; the official type string,
//! and with it the sub-level, is kept in [`FeatureSet::question_types`] because the
//! official score averages the three sub-levels rather than pooling them.
//!
//! # DSR-Bench records (geosr's own format)
//!
//! DSR-Bench is published as a parquet file whose column names and question-type
//! strings we could not obtain, so **this record format is geosr's own definition**,
//! not the official one. A converter from the official release must produce:
//!
//! ```json
//! {"id": "q0007", "video": "koala/abc123.mp4", "question_type": "rel_speed_comp",
//!  "question": "Which object moves faster ...", "options": ["A. the car", "B. the dog"],
//!  "answer": "B"}
//! ```
//!
//! `id` is a string or an integer, `video` a string (kept for provenance only),
//! `question_type` one of the 13 keys of [`dynamic_scenes::SUBTASKS`] (`abs_distance`,
//! ..., `non_template`), `options` a non-empty list, and `answer` an option letter.
//! Every DSR-Bench question is multiple choice.
//!
//! # Prompts and answers
//!
//! Questions are tokenized with [`vocab::encode_lossy`] (question, then the options with
//! their letters): most real words are outside geosr's small vocabulary and become
//! `UNK`. A multiple-choice answer "B" becomes `Answer::Choice(1)`: the letter's position
//! in `A, B, C, D`, which must index one of the record's options. At most
//! [`MAX_OPTIONS`] options are supported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde_json::{Map, Value};
use thiserror::Error;

use super::vocab::{self, OPTION_LETTERS};
use super::{dynamic_scenes, Answer, AnswerKind, Dataset, Sample, Subtask, MAX_OPTIONS};
use crate::config::Bench;

/// The ten official VSI-Bench `question_type` strings, each with the key of the
/// [`SUBTASKS`](super::static_scenes::SUBTASKS) entry it is scored under.
pub const VSI_QUESTION_TYPES: &[(&str, &str)] = &[
    ("object_counting", "obj_count"),
    ("object_abs_distance", "abs_distance"),
    ("object_size_estimation", "obj_size"),
    ("room_size_estimation", "room_size"),
    ("object_rel_distance", "rel_distance"),
    ("object_rel_direction_easy", "rel_direction"),
    ("object_rel_direction_medium", "rel_direction"),
    ("object_rel_direction_hard", "rel_direction"),
    ("route_planning", "route_plan"),
    ("obj_appearance_order", "appearance_order"),
];

/// The VSI-Bench question types that the official score folds into one
/// `rel_direction` score, as the unweighted mean of their accuracies.
pub const VSI_REL_DIRECTION_LEVELS: [&str; 3] =
    ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"];

/// The benchmark name used in `meta.json` and on the command line: `vsi` or `dsr`.
pub fn bench_name(bench: Bench) -> &'static str {
    match bench {
        Bench::Static => "vsi",
        Bench::Dynamic => "dsr",
    }
}

/// Inverse of [`bench_name`].
pub fn parse_bench(name: &str) -> Option<Bench> {
    match name {
        "vsi" => Some(Bench::Static),
        "dsr" => Some(Bench::Dynamic),
        _ => None,
    }
}

/// Index into `super::subtasks(bench)` of a record's `question_type`, or `None` for
/// a string that is not a question type of that benchmark.
pub fn subtask_index(bench: Bench, question_type: &str) -> Option<usize> {
    let key = match bench {
        Bench::Static => VSI_QUESTION_TYPES.iter().find(|(t, _)| *t == question_type).map(|(_, k)| *k)?,
        Bench::Dynamic => question_type,
    };
    super::subtasks(bench).iter().position(|s| s.key == key)
}

/// The valid `question_type` strings of a benchmark, comma-separated, for error messages.
pub fn valid_question_types(bench: Bench) -> String {
    match bench {
        Bench::Static => VSI_QUESTION_TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "),
        Bench::Dynamic => dynamic_scenes::SUBTASKS.iter().map(|s| s.key).collect::<Vec<_>>().join(", "),
    }
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub bench: Bench,
    pub frames: usize,
    pub vision_grid: [usize; 2],
    pub geometry_grid: [usize; 2],
    pub vision_channels: usize,
    pub geometry_channels: usize,
}

impl Meta {
    /// Expected shape of the `"vision"` tensor.
    pub fn vision_shape(&self) -> [usize; 2] {
        [self.frames * self.vision_grid[0] * self.vision_grid[1], self.vision_channels]
    }
    /// Expected shape of the `"geometry"` tensor.
    pub fn geometry_shape(&self) -> [usize; 2] {
        [self.frames * self.geometry_grid[0] * self.geometry_grid[1], self.geometry_channels]
    }
}

/// A loaded real benchmark: the dataset plus, per sample, what `Sample` has no room for.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    pub data: Dataset,
    /// The record's `id` as text, parallel to `data.samples`.
    pub ids: Vec<String>,
    /// The record's `question_type` exactly as written (for VSI-Bench this keeps the
    /// rel-direction sub-level), parallel to `data.samples`.
    pub question_types: Vec<String>,
}

impl FeatureSet {
    pub fn len(&self) -> usize {
        self.data.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.samples.is_empty()
    }
}

/// What is wrong with one JSON record, independent of where it is. Shared with
/// `eval::score`, whose predictions files are JSONL too.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` {problem}")]
    InvalidField { field: &'static str, problem: String },
    #[error("unknown question_type {found:?}; valid types are: {valid}")]
    UnknownQuestionType { found: String, valid: String },
    #[error("question_type {question_type:?} is multiple choice but `options` is missing or empty")]
    MissingOptions { question_type: String },
    #[error("{found} options, but at most {max} are supported")]
    TooManyOptions { found: usize, max: usize },
    #[error("field `{field}` = {found:?} is not among the option letters {letters}")]
    AnswerNotAnOption { field: &'static str, found: String, letters: String },
    #[error("field `{field}` = {found:?} is not a number (question_type {question_type:?} is numerical)")]
    NotANumber { field: &'static str, found: String, question_type: String },
    #[error(
        "field `{field}` = {found:?} is not a positive number (question_type {question_type:?} is scored by Mean \
         Relative Accuracy, |prediction - truth| / truth, which is undefined for a truth <= 0)"
    )]
    NotPositive { field: &'static str, found: String, question_type: String },
    #[error("duplicate id {id:?} (first on line {first_line})")]
    DuplicateId { id: String, first_line: usize },
}

/// A numerical ground truth as the official scorer needs it: a finite number above 0.
pub fn positive_truth(field: &'static str, text: &str, question_type: &str) -> Result<f64, RecordError> {
    let number = parse_python_float(text.trim()).filter(|x| x.is_finite()).ok_or_else(|| RecordError::NotANumber {
        field,
        found: text.to_string(),
        question_type: question_type.to_string(),
    })?;
    if number <= 0.0 {
        return Err(RecordError::NotPositive { field, found: text.to_string(), question_type: question_type.to_string() });
    }
    Ok(number)
}

/// Why a benchmark folder could not be loaded. Every variant names the file, and
/// every per-record variant the 1-based line of `questions.jsonl`.
#[derive(Debug, Error)]
pub enum FeatureError {
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: invalid JSON: {source}", .path.display())]
    MetaJson { path: PathBuf, source: serde_json::Error },
    #[error("{}: key `{key}`: {problem}", .path.display())]
    Meta { path: PathBuf, key: &'static str, problem: String },
    #[error("{}:{line}: {source}", .path.display())]
    Record { path: PathBuf, line: usize, source: RecordError },
    #[error("{}:{line}: features file {} does not exist", .path.display(), .features.display())]
    MissingFeatures { path: PathBuf, line: usize, features: PathBuf },
    #[error("{}:{line}: {} is not a valid safetensors file: {source}", .path.display(), .features.display())]
    Safetensors { path: PathBuf, line: usize, features: PathBuf, source: SafeTensorError },
    #[error("{}:{line}: {} has no tensor {tensor:?}", .path.display(), .features.display())]
    MissingTensor { path: PathBuf, line: usize, features: PathBuf, tensor: &'static str },
    #[error(
        "{}:{line}: {}: tensor {tensor:?} has shape {found:?}, expected {expected:?} (from meta.json)",
        .path.display(), .features.display()
    )]
    ShapeMismatch {
        path: PathBuf,
        line: usize,
        features: PathBuf,
        tensor: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}:{line}: {}: tensor {tensor:?} has dtype {found}, expected F32", .path.display(), .features.display())]
    WrongDtype { path: PathBuf, line: usize, features: PathBuf, tensor: &'static str, found: String },
    /// A split with no questions left to train on or to score.
    #[error("{}: no questions{detail}: expected at least one", .path.display())]
    Empty { path: PathBuf, detail: String },
    /// The evaluation split's tokens do not fit a model built for the training split.
    #[error(
        "{}: `{key}` is {eval} but the training split's ({}) is {train}: a model trained on one cannot read the other",
        .eval_path.display(), .train_path.display()
    )]
    SplitMismatch { train_path: PathBuf, eval_path: PathBuf, key: &'static str, train: String, eval: String },
}

/// Every record of `<dir>/questions.jsonl`, checked (fields, answers, unique ids),
/// with its 1-based line and its features file; blank lines are skipped but counted.
fn records(dir: &Path, bench: Bench) -> Result<Vec<(usize, Record, PathBuf)>, FeatureError> {
    let path = dir.join("questions.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|source| FeatureError::Io { path: path.clone(), source })?;
    let mut out = Vec::new();
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let record_err = |source: RecordError| FeatureError::Record { path: path.clone(), line, source };
        let record = parse_record(bench, raw).map_err(record_err)?;
        if let Some(&first_line) = first_line_of_id.get(&record.id) {
            return Err(record_err(RecordError::DuplicateId { id: record.id, first_line }));
        }
        first_line_of_id.insert(record.id.clone(), line);
        let features = dir.join("features").join(format!("{}.safetensors", record.id));
        out.push((line, record, features));
    }
    Ok(out)
}

/// Checks every record of `<dir>/questions.jsonl` as [`load`] does (fields, answers,
/// unique ids, each features file's header) without reading any tensor, and returns
/// each record's subtask index. Cheap enough to run for every planned run before any trains.
pub fn check_records(dir: &Path, meta: &Meta) -> Result<Vec<usize>, FeatureError> {
    let questions = dir.join("questions.jsonl");
    records(dir, meta.bench)?
        .into_iter()
        .map(|(line, record, features)| {
            check_features_header(meta, &features).map_err(|e| e.at(&questions, line, &features))?;
            Ok(record.subtask)
        })
        .collect()
}

/// Refuses an evaluation split whose token layout differs from the training split's.
pub fn check_splits(train_dir: &Path, train: &Meta, eval_dir: &Path, eval: &Meta) -> Result<(), FeatureError> {
    let grid = |g: [usize; 2]| format!("[{}, {}]", g[0], g[1]);
    let pairs = [
        ("bench", bench_name(train.bench).to_string(), bench_name(eval.bench).to_string()),
        ("frames", train.frames.to_string(), eval.frames.to_string()),
        ("vision_grid", grid(train.vision_grid), grid(eval.vision_grid)),
        ("geometry_grid", grid(train.geometry_grid), grid(eval.geometry_grid)),
        ("vision_channels", train.vision_channels.to_string(), eval.vision_channels.to_string()),
        ("geometry_channels", train.geometry_channels.to_string(), eval.geometry_channels.to_string()),
    ];
    match pairs.into_iter().find(|(_, a, b)| a != b) {
        None => Ok(()),
        Some((key, train, eval)) => Err(FeatureError::SplitMismatch {
            train_path: train_dir.join("meta.json"),
            eval_path: eval_dir.join("meta.json"),
            key,
            train,
            eval,
        }),
    }
}

/// Reads and checks `<dir>/meta.json`.
pub fn load_meta(dir: &Path) -> Result<Meta, FeatureError> {
    let path = dir.join("meta.json");
    let text =
        std::fs::read_to_string(&path).map_err(|source| FeatureError::Io { path: path.clone(), source })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|source| FeatureError::MetaJson { path: path.clone(), source })?;
    let err = |key: &'static str, problem: String| FeatureError::Meta { path: path.clone(), key, problem };
    let Value::Object(obj) = value else {
        return Err(err("(top level)", format!("expected a JSON object, found {}", json_type(&value))));
    };

    let bench = match obj.get("bench") {
        None => return Err(err("bench", "is missing".into())),
        Some(Value::String(s)) => {
            parse_bench(s).ok_or_else(|| err("bench", format!("is {s:?}, expected \"vsi\" or \"dsr\"")))?
        }
        Some(v) => return Err(err("bench", format!("must be a string, found {}", json_type(v)))),
    };
    let positive = |key: &'static str, v: Option<&Value>| -> Result<usize, FeatureError> {
        match v {
            None => Err(err(key, "is missing".into())),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(err(key, format!("must be a positive integer, found {v}"))),
            },
        }
    };
    let grid = |key: &'static str| -> Result<[usize; 2], FeatureError> {
        match obj.get(key) {
            None => Err(err(key, "is missing".into())),
            Some(Value::Array(a)) if a.len() == 2 => {
                Ok([positive(key, a.first())?, positive(key, a.get(1))?])
            }
            Some(v) => Err(err(key, format!("must be [height, width], found {v}"))),
        }
    };
    Ok(Meta {
        bench,
        frames: positive("frames", obj.get("frames"))?,
        vision_grid: grid("vision_grid")?,
        geometry_grid: grid("geometry_grid")?,
        vision_channels: positive("vision_channels", obj.get("vision_channels"))?,
        geometry_channels: positive("geometry_channels", obj.get("geometry_channels"))?,
    })
}

/// Loads a benchmark folder (see the module doc for its layout), checking every record
/// and every features file; the first problem is returned as an error.
pub fn load(dir: &Path) -> Result<FeatureSet, FeatureError> {
    let meta = load_meta(dir)?;
    let path = dir.join("questions.jsonl");
    let mut set = FeatureSet {
        data: Dataset {
            bench: meta.bench,
            subtasks: super::subtasks(meta.bench),
            samples: Vec::new(),
            frames: meta.frames,
            vision_grid: meta.vision_grid,
            geometry_grid: meta.geometry_grid,
            vision_channels: meta.vision_channels,
            geometry_channels: meta.geometry_channels,
            category_channels: 0,
            question_types: None,
            fingerprint: None,
        },
        ids: Vec::new(),
        question_types: Vec::new(),
    };
    // The fingerprint covers what is read, in the order it is read.
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for name in ["meta.json", "questions.jsonl"] {
        let file = dir.join(name);
        hasher.update(std::fs::read(&file).map_err(|source| FeatureError::Io { path: file, source })?);
    }
    for (line, record, features) in records(dir, meta.bench)? {
        let (vision, geometry) = read_features(&meta, &features, &mut hasher).map_err(|e| e.at(&path, line, &features))?;

        set.data.samples.push(Sample {
            subtask: record.subtask,
            vision,
            geometry,
            prompt: vocab::encode_lossy(&format!("{} {}", record.question, record.options.join(" "))),
            num_options: if matches!(record.answer, Answer::Choice(_)) { record.options.len() } else { 0 },
            answer: record.answer,
            question: record.question,
            options: record.options.iter().enumerate().map(|(k, o)| strip_letter(k, o).to_string()).collect(),
            grounding: Vec::new(),
        });
        set.ids.push(record.id);
        set.question_types.push(record.question_type);
    }
    set.data.question_types = Some(set.question_types.clone());
    set.data.fingerprint = Some(hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect());
    Ok(set)
}

/// One record after validation, before its features are read.
struct Record {
    id: String,
    question_type: String,
    subtask: usize,
    question: String,
    /// As written, letters included ("A. chair").
    options: Vec<String>,
    answer: Answer,
}

fn parse_record(bench: Bench, raw: &str) -> Result<Record, RecordError> {
    let obj = parse_object(raw)?;
    let id = id_field(&obj)?;
    let question_type = string_field(&obj, "question_type")?;
    let subtask = subtask_index(bench, &question_type).ok_or_else(|| RecordError::UnknownQuestionType {
        found: question_type.clone(),
        valid: valid_question_types(bench),
    })?;
    let question = string_field(&obj, "question")?;
    if bench == Bench::Dynamic {
        string_field(&obj, "video")?;
    }
    let options = options_field(&obj)?;

    let info: &Subtask = &super::subtasks(bench)[subtask];
    let answer_field = match bench {
        Bench::Static => "ground_truth",
        Bench::Dynamic => "answer",
    };
    let answer = match info.kind {
        AnswerKind::Number => {
            let text = answer_text(&obj, answer_field)?;
            Answer::Number(positive_truth(answer_field, &text, &question_type)? as f32)
        }
        AnswerKind::Choice => {
            if options.is_empty() {
                return Err(RecordError::MissingOptions { question_type });
            }
            if options.len() > MAX_OPTIONS {
                return Err(RecordError::TooManyOptions { found: options.len(), max: MAX_OPTIONS });
            }
            let text = answer_text(&obj, answer_field)?;
            Answer::Choice(option_index(answer_field, &text, options.len())?)
        }
    };
    Ok(Record { id, question_type, subtask, question, options, answer })
}

/// Parses one JSONL line into an object.
pub(crate) fn parse_object(raw: &str) -> Result<Map<String, Value>, RecordError> {
    match serde_json::from_str::<Value>(raw)? {
        Value::Object(obj) => Ok(obj),
        other => Err(RecordError::NotAnObject(json_type(&other))),
    }
}

/// A required string field.
pub(crate) fn string_field(obj: &Map<String, Value>, field: &'static str) -> Result<String, RecordError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(RecordError::MissingField(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(RecordError::InvalidField {
            field,
            problem: format!("must be a string, found {}", json_type(v)),
        }),
    }
}

/// A required answer field: a string, or a JSON number (written back as text), since
/// converters disagree on whether a numerical ground truth is quoted.
pub(crate) fn answer_text(obj: &Map<String, Value>, field: &'static str) -> Result<String, RecordError> {
    match obj.get(field) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => string_field(obj, field),
    }
}

/// The required `id`: a string or an integer. It names a file, so it may not contain
/// path separators or be a relative path component.
fn id_field(obj: &Map<String, Value>) -> Result<String, RecordError> {
    let id = match obj.get("id") {
        None | Some(Value::Null) => return Err(RecordError::MissingField("id")),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(v) => {
            return Err(RecordError::InvalidField {
                field: "id",
                problem: format!("must be a string or an integer, found {v}"),
            })
        }
    };
    if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\']) {
        return Err(RecordError::InvalidField {
            field: "id",
            problem: format!("= {id:?} cannot name a features file"),
        });
    }
    Ok(id)
}

/// `options`: absent, null or a list of strings.
fn options_field(obj: &Map<String, Value>) -> Result<Vec<String>, RecordError> {
    let bad = |v: &Value| RecordError::InvalidField {
        field: "options",
        problem: format!("must be a list of strings, found {v}"),
    };
    match obj.get("options") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad(v))).collect()
        }
        Some(v) => Err(bad(v)),
    }
}

/// Position of an answer letter among the first `n_options` of `A, B, C, D`
/// (case-insensitive, as the official matching is).
fn option_index(field: &'static str, text: &str, n_options: usize) -> Result<usize, RecordError> {
    let letters = &OPTION_LETTERS[..n_options];
    letters.iter().position(|l| l.eq_ignore_ascii_case(text.trim())).ok_or_else(|| {
        RecordError::AnswerNotAnOption { field, found: text.to_string(), letters: letters.join(", ") }
    })
}

/// The option text without its "A. " prefix, to match the synthetic samples' options.
fn strip_letter(k: usize, option: &str) -> &str {
    option
        .strip_prefix(OPTION_LETTERS[k])
        .and_then(|rest| rest.strip_prefix('.'))
        .map(str::trim_start)
        .unwrap_or(option)
}

/// Python's `float(s)` on an already stripped string, which is how the official
/// VSI-Bench code parses numbers. Rust's parser agrees on everything Python accepts
/// ("1e3", ".5", "5.", "+2", "inf", "nan", any case) except digit-group underscores
/// ("1_000"), which Python allows only between two digits. Non-ASCII digits, which
/// Python also accepts, are not supported.
pub(crate) fn parse_python_float(s: &str) -> Option<f64> {
    let chars: Vec<char> = s.chars().collect();
    let mut cleaned = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let between_digits = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if !between_digits {
                return None;
            }
        } else {
            cleaned.push(c);
        }
    }
    cleaned.parse::<f64>().ok()
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A features-file problem before we know which record asked for the file.
enum TensorProblem {
    Missing,
    Io(std::io::Error),
    Invalid(SafeTensorError),
    NoTensor(&'static str),
    Dtype(&'static str, Dtype),
    Shape(&'static str, Vec<usize>, Vec<usize>),
}

impl TensorProblem {
    fn at(self, path: &Path, line: usize, features: &Path) -> FeatureError {
        let (path, features) = (path.to_path_buf(), features.to_path_buf());
        match self {
            TensorProblem::Missing => FeatureError::MissingFeatures { path, line, features },
            TensorProblem::Io(source) => FeatureError::Io { path: features, source },
            TensorProblem::Invalid(source) => FeatureError::Safetensors { path, line, features, source },
            TensorProblem::NoTensor(tensor) => FeatureError::MissingTensor { path, line, features, tensor },
            TensorProblem::Dtype(tensor, dtype) => {
                FeatureError::WrongDtype { path, line, features, tensor, found: format!("{dtype:?}") }
            }
            TensorProblem::Shape(tensor, expected, found) => {
                FeatureError::ShapeMismatch { path, line, features, tensor, expected, found }
            }
        }
    }
}

/// Checks a features file's header against `meta` (its tensors' names, dtypes and
/// shapes, and that the file holds all their bytes) without reading the tensors.
fn check_features_header(meta: &Meta, features: &Path) -> Result<(), TensorProblem> {
    use std::io::Read;
    let mut file = std::fs::File::open(features).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TensorProblem::Missing,
        _ => TensorProblem::Io(e),
    })?;
    let len = file.metadata().map_err(TensorProblem::Io)?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|_| TensorProblem::Invalid(SafeTensorError::HeaderTooSmall))?;
    let n = u64::from_le_bytes(n);
    if n.saturating_add(8) > len {
        return Err(TensorProblem::Invalid(SafeTensorError::InvalidHeaderLength));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(TensorProblem::Io)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|e| TensorProblem::Invalid(SafeTensorError::InvalidHeaderDeserialization(e)))?;
    let end = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .filter_map(|(_, info)| info.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if 8 + n + end != len {
        return Err(TensorProblem::Invalid(SafeTensorError::MetadataIncompleteBuffer));
    }
    for (name, expected) in [("vision", meta.vision_shape()), ("geometry", meta.geometry_shape())] {
        let info = header.get(name).ok_or(TensorProblem::NoTensor(name))?;
        let dtype: Dtype = info
            .get("dtype")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .ok_or(TensorProblem::Invalid(SafeTensorError::InvalidHeaderLength))?;
        if dtype != Dtype::F32 {
            return Err(TensorProblem::Dtype(name, dtype));
        }
        let shape: Vec<usize> = info.get("shape").and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or_default();
        if shape != expected {
            return Err(TensorProblem::Shape(name, expected.to_vec(), shape));
        }
    }
    Ok(())
}

/// Reads the `vision` and `geometry` tensors of one record and checks them against `meta`.
fn read_features(meta: &Meta, features: &Path, fingerprint: &mut impl sha2::Digest) -> Result<(Vec<f32>, Vec<f32>), TensorProblem> {
    let bytes = std::fs::read(features).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TensorProblem::Missing,
        _ => TensorProblem::Io(e),
    })?;
    fingerprint.update(&bytes);
    let file = SafeTensors::deserialize(&bytes).map_err(TensorProblem::Invalid)?;
    let read = |name: &'static str, expected: [usize; 2]| -> Result<Vec<f32>, TensorProblem> {
        let view = file.tensor(name).map_err(|e| match e {
            SafeTensorError::TensorNotFound(_) => TensorProblem::NoTensor(name),
            other => TensorProblem::Invalid(other),
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(TensorProblem::Dtype(name, view.dtype()));
        }
        if view.shape() != expected {
            return Err(TensorProblem::Shape(name, expected.to_vec(), view.shape().to_vec()));
        }
        // safetensors stores little-endian; the data slice may be unaligned, so decode bytewise.
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    Ok((read("vision", meta.vision_shape())?, read("geometry", meta.geometry_shape())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::static_scenes;
    use safetensors::tensor::TensorView;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    /// A copy of a fixture folder that a test may break.
    fn copy_fixture(name: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let src = fixture(name);
        std::fs::create_dir(tmp.path().join("features")).unwrap();
        for entry in ["meta.json", "questions.jsonl"] {
            std::fs::copy(src.join(entry), tmp.path().join(entry)).unwrap();
        }
        for entry in std::fs::read_dir(src.join("features")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tmp.path().join("features").join(entry.file_name())).unwrap();
        }
        tmp
    }

    /// Replaces line `line` (1-based) of questions.jsonl.
    fn replace_line(dir: &Path, line: usize, new: &str) {
        let path = dir.join("questions.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[line - 1] = new;
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    /// Rewrites one field of the record on `line` (None removes it).
    fn edit_field(dir: &Path, line: usize, field: &str, value: Option<Value>) {
        let text = std::fs::read_to_string(dir.join("questions.jsonl")).unwrap();
        let mut obj: Map<String, Value> = serde_json::from_str(text.lines().nth(line - 1).unwrap()).unwrap();
        match value {
            Some(v) => obj.insert(field.to_string(), v),
            None => obj.remove(field),
        };
        replace_line(dir, line, &serde_json::to_string(&obj).unwrap());
    }

    fn load_err(dir: &Path) -> (FeatureError, String) {
        let err = load(dir).expect_err("a broken folder must not load");
        let msg = err.to_string();
        (err, msg)
    }

    fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(name, dtype, shape, data)| (*name, TensorView::new(*dtype, shape.clone(), data).unwrap()))
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    #[test]
    fn vsi_fixture_round_trips() {
        let set = load(&fixture("vsi")).unwrap();
        let d = &set.data;
        assert_eq!(d.bench, Bench::Static);
        assert_eq!(d.subtasks, static_scenes::SUBTASKS);
        assert_eq!((d.frames, d.vision_grid, d.geometry_grid), (1, [2, 2], [2, 2]));
        assert_eq!((d.vision_channels, d.geometry_channels), (3, 4));
        assert_eq!(set.len(), 13);
        assert_eq!(set.ids.len(), 13);
        assert_eq!(set.question_types.len(), 13);

        for s in &d.samples {
            assert_eq!(s.vision.len(), d.n_vision() * d.vision_channels);
            assert_eq!(s.geometry.len(), d.n_geometry() * d.geometry_channels);
            assert_eq!(s.prompt.len(), vocab::PROMPT_LEN);
        }
        // Every official type is present and maps to its subtask.
        for (qt, key) in VSI_QUESTION_TYPES {
            let i = set.question_types.iter().position(|t| t == qt).unwrap_or_else(|| panic!("{qt} missing"));
            assert_eq!(d.subtasks[d.samples[i].subtask].key, *key);
        }
        // The sub-level survives the mapping to rel_direction.
        let rel_dir: Vec<&str> = (0..set.len())
            .filter(|&i| d.subtasks[d.samples[i].subtask].key == "rel_direction")
            .map(|i| set.question_types[i].as_str())
            .collect();
        assert_eq!(
            rel_dir,
            [
                "object_rel_direction_easy",
                "object_rel_direction_medium",
                "object_rel_direction_medium",
                "object_rel_direction_hard"
            ]
        );

        // Record 1: object_counting, ground truth "3"; record 6: rel_distance, 4 options, "B".
        assert_eq!(set.ids[0], "1");
        assert_eq!(d.samples[0].answer, Answer::Number(3.0));
        assert_eq!(d.samples[0].num_options, 0);
        assert!(d.samples[0].options.is_empty());
        let s = &d.samples[5];
        assert_eq!(s.answer, Answer::Choice(1));
        assert_eq!(s.num_options, 4);
        assert_eq!(s.options, ["chair", "table", "sofa", "lamp"]);
        // Prompt: question words, then "A chair B table ...", unknown words as UNK.
        let words: Vec<&str> =
            s.prompt.iter().filter(|&&t| t != vocab::PAD).map(|&t| vocab::word(t)).collect();
        assert!(words.ends_with(&["A", "chair", "B", "table", "C", "sofa", "D", "lamp"]), "{words:?}");
        assert!(words.contains(&"<unk>"));

        // The fixture's values: element k of record r's tensor is (r * 100 + k) / 1000,
        // geometry negated (see examples/make_fixture.rs).
        assert_eq!(d.samples[0].vision[..3], [0.1, 0.101, 0.102]);
        assert_eq!(d.samples[1].geometry[1], -0.201);
    }

    #[test]
    fn dsr_fixture_round_trips() {
        let set = load(&fixture("dsr")).unwrap();
        let d = &set.data;
        assert_eq!(d.bench, Bench::Dynamic);
        assert_eq!(d.subtasks, dynamic_scenes::SUBTASKS);
        assert_eq!(d.frames, 2);
        assert_eq!(set.len(), 15);
        for (k, sub) in dynamic_scenes::SUBTASKS.iter().enumerate() {
            assert!(d.samples.iter().any(|s| s.subtask == k), "{} missing", sub.key);
        }
        for (i, s) in d.samples.iter().enumerate() {
            assert_eq!(set.question_types[i], d.subtasks[s.subtask].key);
            assert!(matches!(s.answer, Answer::Choice(c) if c < s.num_options));
            assert_eq!(s.vision.len(), d.n_vision() * d.vision_channels);
            assert_eq!(s.geometry.len(), d.n_geometry() * d.geometry_channels);
        }
        assert_eq!(set.ids[0], "dsr-001");
    }

    #[test]
    fn meta_errors_name_the_file_and_the_key() {
        let tmp = copy_fixture("vsi");
        let meta = tmp.path().join("meta.json");
        let cases = [
            (r#"{"bench": "vsi"}"#, "frames", "is missing"),
            (r#"{"bench": "kitti", "frames": 1}"#, "bench", "\"kitti\""),
            (
                r#"{"bench": "vsi", "frames": 1, "vision_grid": [2], "geometry_grid": [2, 2], "vision_channels": 3, "geometry_channels": 4}"#,
                "vision_grid",
                "[height, width]",
            ),
            (
                r#"{"bench": "vsi", "frames": 0, "vision_grid": [2, 2], "geometry_grid": [2, 2], "vision_channels": 3, "geometry_channels": 4}"#,
                "frames",
                "positive integer",
            ),
        ];
        for (text, key, problem) in cases {
            std::fs::write(&meta, text).unwrap();
            let (err, msg) = load_err(tmp.path());
            assert!(matches!(err, FeatureError::Meta { key: k, .. } if k == key), "{msg}");
            assert!(msg.contains("meta.json") && msg.contains(key) && msg.contains(problem), "{msg}");
        }
        std::fs::write(&meta, "{not json").unwrap();
        let (err, msg) = load_err(tmp.path());
        assert!(matches!(err, FeatureError::MetaJson { .. }) && msg.contains("meta.json"), "{msg}");
    }

    /// Asserts a record error on `line`, with `needle` in the message.
    fn assert_record_err(dir: &Path, line: usize, needle: &str, check: impl Fn(&RecordError) -> bool) {
        let (err, msg) = load_err(dir);
        assert!(msg.contains(&format!("questions.jsonl:{line}: ")), "{msg}");
        assert!(msg.contains(needle), "{msg}");
        match err {
            FeatureError::Record { line: l, source, .. } => {
                assert_eq!(l, line);
                assert!(check(&source), "{source:?}");
            }
            other => panic!("expected a record error, got {other:?}"),
        }
    }

    #[test]
    fn record_errors_carry_the_line_number() {
        let fresh = || copy_fixture("vsi");

        let t = fresh();
        replace_line(t.path(), 4, "{\"id\": 4, \"question_type\": ");
        assert_record_err(t.path(), 4, "invalid JSON", |e| matches!(e, RecordError::Json(_)));

        let t = fresh();
        edit_field(t.path(), 2, "question", None);
        assert_record_err(t.path(), 2, "missing field `question`", |e| {
            matches!(e, RecordError::MissingField("question"))
        });

        let t = fresh();
        edit_field(t.path(), 3, "question_type", Some("object_distance".into()));
        assert_record_err(
            t.path(),
            3,
            "object_counting, object_abs_distance",
            |e| matches!(e, RecordError::UnknownQuestionType { found, .. } if found == "object_distance"),
        );

        // Line 6 is object_rel_distance with four options and answer B.
        let t = fresh();
        edit_field(t.path(), 6, "options", None);
        assert_record_err(t.path(), 6, "`options` is missing", |e| {
            matches!(e, RecordError::MissingOptions { .. })
        });

        let t = fresh();
        edit_field(t.path(), 6, "ground_truth", Some("E".into()));
        assert_record_err(t.path(), 6, "A, B, C, D", |e| matches!(e, RecordError::AnswerNotAnOption { .. }));

        let t = fresh();
        edit_field(t.path(), 6, "options", Some(serde_json::json!(["A. x", "B. y", "C. z", "D. w", "E. v"])));
        assert_record_err(t.path(), 6, "5 options", |e| {
            matches!(e, RecordError::TooManyOptions { found: 5, max: 4 })
        });

        // Line 1 is object_counting.
        let t = fresh();
        edit_field(t.path(), 1, "ground_truth", Some("three".into()));
        assert_record_err(t.path(), 1, "\"three\" is not a number", |e| {
            matches!(e, RecordError::NotANumber { .. })
        });

        let t = fresh();
        edit_field(t.path(), 9, "id", Some(2.into()));
        assert_record_err(t.path(), 9, "first on line 2", |e| matches!(e, RecordError::DuplicateId { .. }));

        let t = fresh();
        edit_field(t.path(), 5, "id", Some("../meta".into()));
        assert_record_err(t.path(), 5, "cannot name a features file", |e| {
            matches!(e, RecordError::InvalidField { field: "id", .. })
        });
    }

    #[test]
    fn dsr_records_need_their_own_fields() {
        let t = copy_fixture("dsr");
        edit_field(t.path(), 7, "answer", None);
        assert_record_err(t.path(), 7, "missing field `answer`", |e| {
            matches!(e, RecordError::MissingField("answer"))
        });

        let t = copy_fixture("dsr");
        edit_field(t.path(), 2, "question_type", Some("object_rel_direction_easy".into()));
        assert_record_err(t.path(), 2, "abs_distance, abs_direction", |e| {
            matches!(e, RecordError::UnknownQuestionType { .. })
        });
    }

    /// `data.subtasks` keeps only the chosen questions of real data, and each kept
    /// question keeps its own question type (the fold of rel. direction's levels reads them).
    #[test]
    fn a_subtask_selection_filters_questions_and_their_types_together() {
        let path = fixture("vsi").display().to_string();
        let mut cfg = crate::config::DataConfig {
            source: crate::config::DataSource::Features,
            bench: Bench::Static,
            ..Default::default()
        };
        cfg.features.train = path.clone();
        cfg.features.eval = path;
        let all = crate::data::load(&cfg, crate::data::Split::Train).unwrap();
        cfg.subtasks = vec!["rel_direction".into(), "obj_count".into()];
        let some = crate::data::load(&cfg, crate::data::Split::Eval).unwrap();
        let types = some.question_types.as_ref().unwrap();
        assert_eq!((all.samples.len(), some.samples.len(), types.len()), (13, 6, 6));
        for (sample, kind) in some.samples.iter().zip(types) {
            let key = some.subtasks[sample.subtask].key;
            let expected = if key == "obj_count" { "object_counting" } else { "object_rel_direction_" };
            assert!(kind.starts_with(expected), "{key} kept with question type {kind}");
        }
        let kept = |key: &str| some.samples.iter().filter(|s| some.subtasks[s.subtask].key == key).count();
        assert_eq!((kept("rel_direction"), kept("obj_count")), (4, 2));
    }

    #[test]
    fn features_errors_name_the_record_line_and_the_file() {
        // Line 3 of the VSI fixture has id 3.
        let t = copy_fixture("vsi");
        let file = t.path().join("features/3.safetensors");
        std::fs::remove_file(&file).unwrap();
        let (err, msg) = load_err(t.path());
        assert!(matches!(err, FeatureError::MissingFeatures { line: 3, .. }), "{msg}");
        assert!(msg.contains("questions.jsonl:3:") && msg.contains("3.safetensors"), "{msg}");

        let vision = vec![0u8; 4 * 3 * 4];
        let geometry = vec![0u8; 4 * 4 * 4];
        write_tensors(&file, &[("vision", Dtype::F32, vec![4, 3], vision.clone())]);
        let (err, msg) = load_err(t.path());
        assert!(matches!(err, FeatureError::MissingTensor { line: 3, tensor: "geometry", .. }), "{msg}");

        write_tensors(
            &file,
            &[
                ("vision", Dtype::F32, vec![4, 3], vision.clone()),
                ("geometry", Dtype::F32, vec![2, 8], geometry.clone()),
            ],
        );
        let (err, msg) = load_err(t.path());
        assert!(matches!(err, FeatureError::ShapeMismatch { line: 3, tensor: "geometry", .. }), "{msg}");
        assert!(msg.contains("shape [2, 8], expected [4, 4]"), "{msg}");

        write_tensors(
            &file,
            &[
                ("vision", Dtype::F64, vec![4, 3], vec![0u8; 4 * 3 * 8]),
                ("geometry", Dtype::F32, vec![4, 4], geometry),
            ],
        );
        let (err, msg) = load_err(t.path());
        assert!(matches!(err, FeatureError::WrongDtype { line: 3, tensor: "vision", .. }), "{msg}");
        assert!(msg.contains("dtype F64, expected F32") && msg.contains("questions.jsonl:3:"), "{msg}");

        std::fs::write(&file, b"definitely not safetensors").unwrap();
        let (err, msg) = load_err(t.path());
        assert!(matches!(err, FeatureError::Safetensors { line: 3, .. }), "{msg}");
    }

    #[test]
    fn python_float_rules() {
        assert_eq!(parse_python_float("3.5"), Some(3.5));
        assert_eq!(parse_python_float("1_000"), Some(1000.0));
        assert_eq!(parse_python_float("1__0"), None);
        assert_eq!(parse_python_float("_1"), None);
        assert_eq!(parse_python_float(".5"), Some(0.5));
        assert_eq!(parse_python_float("5."), Some(5.0));
        assert_eq!(parse_python_float("1E2"), Some(100.0));
        assert_eq!(parse_python_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_python_float("nan").unwrap().is_nan());
        assert_eq!(parse_python_float("3.5m"), None);
        assert_eq!(parse_python_float(""), None);
    }
}

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
//! official strings in [`QUESTION_TYPES`](crate::benchmark::vsi::QUESTION_TYPES)),
//! `question`, `ground_truth` (a number for the four numerical types, an option letter
//! for the six multiple-choice types), and `options` for multiple choice (absent, null or
//! empty for numerical types). `dataset` and `scene_name` are not read. The three
//! `object_rel_direction_*` sub-levels all map to geosr's `rel_direction` subtask; the
//! official type string, and with it the sub-level, is kept in
//! [`FeatureSet::question_types`] because the official score averages the three
//! sub-levels rather than pooling them.
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
//! `question_type` one of the 13 keys of [`SUBTASKS`](crate::benchmark::dsr::SUBTASKS)
//! (`abs_distance`, ..., `non_template`), `options` a non-empty list, and `answer` an option letter.
//! Every DSR-Bench question is multiple choice.
//!
//! # Prompts and answers
//!
//! Questions are tokenized with [`vocab::encode_lossy`] (question, then the options with
//! their letters): most real words are outside geosr's small vocabulary and become
//! `UNK`. A multiple-choice answer "B" becomes `Answer::Choice(1)`: the letter's position
//! in `A, B, C, D`, which must index one of the record's options. At most
//! [`MAX_OPTIONS`](super::MAX_OPTIONS) options are supported.

mod meta;
mod questions;
mod tensors;

use std::path::{Path, PathBuf};

use safetensors::SafeTensorError;
use thiserror::Error;

pub use meta::{check_splits, load_meta, Meta};
use questions::{parse_record, strip_letter, Record};
use tensors::{check_features_header, read_features};

use super::vocab;
use super::{Answer, Dataset, Sample};
use crate::benchmark::record::{lines, RecordError, SeenIds};
use crate::config::Bench;

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
    let mut ids = SeenIds::default();
    for (line, raw) in lines(&text) {
        let record_err = |source: RecordError| FeatureError::Record { path: path.clone(), line, source };
        let record = parse_record(bench, raw).map_err(record_err)?;
        ids.insert(&record.id, line).map_err(record_err)?;
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

/// Loads a benchmark folder (see the module doc for its layout), checking every record
/// and every features file; the first problem is returned as an error.
pub fn load(dir: &Path) -> Result<FeatureSet, FeatureError> {
    let meta = load_meta(dir)?;
    let path = dir.join("questions.jsonl");
    let mut set = FeatureSet { data: meta.dataset(), ids: Vec::new(), question_types: Vec::new() };
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

#[cfg(test)]
mod tests;

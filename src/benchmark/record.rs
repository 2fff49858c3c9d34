//! The parts of a benchmark's JSONL record that questions files and predictions files
//! share: the errors a record can have, and how its fields and numbers are read.

use std::collections::HashMap;

use serde_json::{Map, Value};
use thiserror::Error;

use super::{subtask_index, valid_question_types};
use crate::config::Bench;

/// What is wrong with one JSON record, independent of where it is: a line of a
/// questions file (`data::features`) or of a predictions file (`eval::score`).
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

/// The records of a JSONL text, each with its 1-based line; blank lines are skipped
/// but counted, so that the numbers in errors match an editor's.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, raw)| (i + 1, raw)).filter(|(_, raw)| !raw.trim().is_empty())
}

/// The ids a file's records have used so far, each with the line it was first seen on.
#[derive(Debug, Default)]
pub struct SeenIds(HashMap<String, usize>);

impl SeenIds {
    /// Takes note of `id` on `line`; an error if an earlier record had it.
    pub fn insert(&mut self, id: &str, line: usize) -> Result<(), RecordError> {
        if let Some(&first_line) = self.0.get(id) {
            return Err(RecordError::DuplicateId { id: id.to_string(), first_line });
        }
        self.0.insert(id.to_string(), line);
        Ok(())
    }
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

/// The field that holds a record's correct answer: VSI-Bench's `ground_truth`, or
/// `answer` in geosr's DSR-Bench format.
pub fn answer_field(bench: Bench) -> &'static str {
    match bench {
        Bench::Static => "ground_truth",
        Bench::Dynamic => "answer",
    }
}

/// A record's `question_type` as written, and the index of the subtask it is scored under.
pub(crate) fn question_type(bench: Bench, obj: &Map<String, Value>) -> Result<(String, usize), RecordError> {
    let question_type = string_field(obj, "question_type")?;
    let subtask = subtask_index(bench, &question_type).ok_or_else(|| RecordError::UnknownQuestionType {
        found: question_type.clone(),
        valid: valid_question_types(bench),
    })?;
    Ok((question_type, subtask))
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

#[cfg(test)]
mod tests {
    use super::*;

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

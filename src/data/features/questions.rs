//! One record of `questions.jsonl`: its fields checked, its answer read.

use serde_json::{Map, Value};

use crate::benchmark::record::{
    answer_field, answer_text, parse_object, positive_truth, question_type, string_field, RecordError,
};
use crate::benchmark::{subtasks, AnswerKind, Subtask};
use crate::config::Bench;
use crate::data::vocab::OPTION_LETTERS;
use crate::data::{Answer, MAX_OPTIONS};

/// One record after validation, before its features are read.
pub(super) struct Record {
    pub id: String,
    pub question_type: String,
    pub subtask: usize,
    pub question: String,
    /// As written, letters included ("A. chair").
    pub options: Vec<String>,
    pub answer: Answer,
}

pub(super) fn parse_record(bench: Bench, raw: &str) -> Result<Record, RecordError> {
    let obj = parse_object(raw)?;
    let id = id_field(&obj)?;
    let (question_type, subtask) = question_type(bench, &obj)?;
    let question = string_field(&obj, "question")?;
    if bench == Bench::Dynamic {
        string_field(&obj, "video")?;
    }
    let options = options_field(&obj)?;

    let info: &Subtask = &subtasks(bench)[subtask];
    let answer_field = answer_field(bench);
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
pub(super) fn strip_letter(k: usize, option: &str) -> &str {
    option
        .strip_prefix(OPTION_LETTERS[k])
        .and_then(|rest| rest.strip_prefix('.'))
        .map(str::trim_start)
        .unwrap_or(option)
}

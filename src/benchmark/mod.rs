//! The benchmarks' own definitions: each one's subtasks (question types) with their
//! names and answer kinds, the `vsi` / `dsr` names, and the parsing of their JSONL
//! records. Both the loader of precomputed features (`data::features`) and the scorer
//! of predictions files (`eval::score`) read these records, so they live here, below both.

pub mod dsr;
pub mod record;
pub mod vsi;

use crate::config::Bench;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// Multiple choice, scored by accuracy.
    Choice,
    /// A number, scored by Mean Relative Accuracy.
    Number,
}

/// One subtask (question type) of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subtask {
    /// Machine name, e.g. `abs_distance`; the column key in eval.csv.
    pub key: &'static str,
    /// The paper's column header, e.g. `Abs. Dist.`.
    pub name: &'static str,
    pub kind: AnswerKind,
    /// Whether the answer depends on 3D geometry (false for appearance order).
    pub needs_geometry: bool,
}

const fn numeric(key: &'static str, name: &'static str) -> Subtask {
    Subtask { key, name, kind: AnswerKind::Number, needs_geometry: true }
}

const fn choice(key: &'static str, name: &'static str, needs_geometry: bool) -> Subtask {
    Subtask { key, name, kind: AnswerKind::Choice, needs_geometry }
}

/// The subtasks of a benchmark, in the paper's column order.
pub fn subtasks(bench: Bench) -> &'static [Subtask] {
    match bench {
        Bench::Static => vsi::SUBTASKS,
        Bench::Dynamic => dsr::SUBTASKS,
    }
}

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

/// Index into [`subtasks`]`(bench)` of a record's `question_type`, or `None` for
/// a string that is not a question type of that benchmark.
pub fn subtask_index(bench: Bench, question_type: &str) -> Option<usize> {
    let key = match bench {
        Bench::Static => vsi::QUESTION_TYPES.iter().find(|(t, _)| *t == question_type).map(|(_, k)| *k)?,
        Bench::Dynamic => question_type,
    };
    subtasks(bench).iter().position(|s| s.key == key)
}

/// The valid `question_type` strings of a benchmark, comma-separated, for error messages.
pub fn valid_question_types(bench: Bench) -> String {
    match bench {
        Bench::Static => vsi::QUESTION_TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "),
        Bench::Dynamic => dsr::SUBTASKS.iter().map(|s| s.key).collect::<Vec<_>>().join(", "),
    }
}

//! Scores a predictions file with the official protocol of VSI-Bench or DSR-Bench
//! (the backend of `geosr score --bench vsi|dsr PREDICTIONS.jsonl`).
//!
//! # Input
//!
//! JSONL, one object per question (blank lines skipped, other fields ignored):
//!
//! ```json
//! {"id": 12, "question_type": "object_rel_direction_hard", "prediction": "B. right", "ground_truth": "B"}
//! {"id": "q7", "question_type": "rel_speed", "prediction": "A", "answer": "A"}
//! ```
//!
//! `prediction` is the model's raw text. VSI-Bench lines carry `ground_truth` (a number
//! or an option letter) and one of the ten official question types; DSR-Bench lines carry
//! `answer` (an option letter) and one of geosr's 13 DSR keys (see `data::features`).
//! `id` is optional; when present, it must not repeat.
//!
//! # Protocol
//!
//! VSI-Bench, as in the official `lmms_eval/tasks/vsibench/utils.py`:
//! - Both kinds first take `pred.split(' ')[0].rstrip('.').strip()`: the text up to the
//!   first space, trailing dots removed. "B. chair" is "B"; "(B)", "B:" and a prediction
//!   that starts with a space are wrong.
//! - Multiple choice: that token equals the letter, ignoring case (1 or 0).
//! - Numerical: Python's `float()` of that token, scored by Mean Relative Accuracy; a
//!   token `float()` rejects ("3.5m", "three") scores 0. There is no unit handling.
//! - Per type: the mean over its questions. The three `object_rel_direction_*` levels
//!   fold into one Rel. Dir. score, the **unweighted mean of the three level means**
//!   (not the pooled accuracy).
//! - Overall: the **macro mean** of the 8 task scores.
//!
//! DSR-Bench's official matching code was not available (the benchmark's README says
//! only that the score "indicates whether the model prediction is the same as the
//! correct answer"), so we score exact match on the option letter with VSI-Bench's
//! first-token rule above. Overall is the **question-weighted mean**, which is how the
//! GeoSR paper's Table 4 Avg. is computed (its macro mean does not match the printed Avg.).
//!
//! Both averages are reported for both benchmarks; [`ScoreReport::overall`] picks the
//! official one. The micro average is the mean over all questions (for VSI-Bench this
//! pools the rel-direction levels instead of averaging them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::benchmark::record::{
    answer_field, answer_text, lines, parse_object, parse_python_float, positive_truth, question_type, string_field,
    RecordError, SeenIds,
};
use crate::benchmark::{subtasks, vsi, AnswerKind};
use crate::config::Bench;
use crate::data::vocab::OPTION_LETTERS;
use crate::eval::metrics::{choice_matches, macro_average, mean_relative_accuracy};

/// One subtask (or, in [`ScoreReport::levels`], one rel-direction level).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// geosr subtask key (`rel_direction`), or the official type for a level.
    pub key: String,
    /// The paper's column header (`Rel. Dir.`).
    pub name: String,
    pub questions: usize,
    /// Accuracy or MRA, in percent.
    pub score: f64,
    /// The same as a fraction in [0, 1], as the official code computes and logs it
    /// (full precision, so the two outputs can be compared digit for digit).
    pub fraction: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReport {
    pub bench: Bench,
    /// Subtasks with at least one question, in the paper's column order. A subtask
    /// without questions is left out of the averages too, as in the official code.
    pub rows: Vec<ScoreRow>,
    /// VSI-Bench only: the rel-direction levels that have questions, whose unweighted
    /// mean is the `rel_direction` row.
    pub levels: Vec<ScoreRow>,
    pub questions: usize,
    /// Mean of the rows' scores, in percent (VSI-Bench's overall).
    pub avg_macro: f64,
    /// Mean over all questions, in percent (DSR-Bench's overall, as in GeoSR Table 4).
    pub avg_micro: f64,
    /// The two averages as fractions, at full precision.
    pub avg_macro_fraction: f64,
    pub avg_micro_fraction: f64,
}

impl ScoreReport {
    /// The benchmark's official overall score: macro for VSI-Bench, micro for DSR-Bench.
    pub fn overall(&self) -> f64 {
        match self.bench {
            Bench::Static => self.avg_macro,
            Bench::Dynamic => self.avg_micro,
        }
    }

    /// A Markdown table: the score in percent with one decimal like the paper, and
    /// the fraction at full precision (the shortest text that reads back as the same
    /// f64, as Python prints a float), to compare with the official script's output.
    /// The official overall is marked.
    pub fn render_markdown(&self) -> String {
        let mut out = String::from("| Subtask | Key | Questions | Score | Fraction |\n|---|---|---:|---:|---:|\n");
        let mut line = |name: &str, key: &str, questions: usize, score: f64, fraction: f64| {
            out.push_str(&format!("| {name} | {key} | {questions} | {score:.1} | {fraction:?} |\n"));
        };
        for row in &self.rows {
            line(&row.name, &row.key, row.questions, row.score, row.fraction);
            if row.key == "rel_direction" {
                for level in &self.levels {
                    line(&level.name, &level.key, level.questions, level.score, level.fraction);
                }
            }
        }
        let (macro_mark, micro_mark) = match self.bench {
            Bench::Static => (" (overall)", ""),
            Bench::Dynamic => ("", " (overall)"),
        };
        line(&format!("Avg. macro{macro_mark}"), "avg_macro", self.questions, self.avg_macro, self.avg_macro_fraction);
        line(&format!("Avg. micro{micro_mark}"), "avg_micro", self.questions, self.avg_micro, self.avg_micro_fraction);
        out
    }
}

#[derive(Debug, Error)]
pub enum ScoreError {
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {source}", .path.display())]
    Record { path: PathBuf, line: usize, source: RecordError },
    #[error("{}: no predictions", .path.display())]
    Empty { path: PathBuf },
}

/// The first-token rule shared by both answer kinds: `pred.split(' ')[0].rstrip('.').strip()`.
pub fn first_token(prediction: &str) -> &str {
    prediction.split(' ').next().unwrap_or("").trim_end_matches('.').trim()
}

/// Score in [0, 1] of one question: 1/0 for a matching letter, MRA for a number.
/// `truth` is an option letter or the numerical ground truth, already validated.
pub fn question_score(kind: AnswerKind, prediction: &str, truth: &str) -> f64 {
    match kind {
        AnswerKind::Choice => f64::from(u8::from(choice_matches(prediction, truth))),
        AnswerKind::Number => {
            match (parse_python_float(first_token(prediction)), parse_python_float(truth.trim())) {
                (Some(pred), Some(gt)) => mean_relative_accuracy(pred, gt),
                _ => 0.0,
            }
        }
    }
}

/// Reads and scores a predictions file.
pub fn score_file(bench: Bench, path: &Path) -> Result<ScoreReport, ScoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ScoreError::Io { path: path.to_path_buf(), source })?;
    score_jsonl(bench, &text, path)
}

/// Scores predictions given as JSONL text; `path` only labels errors.
pub fn score_jsonl(bench: Bench, text: &str, path: &Path) -> Result<ScoreReport, ScoreError> {
    let subtasks = subtasks(bench);
    // Per-question scores grouped by the type as written, so VSI levels stay apart.
    let mut by_type: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    let mut ids = SeenIds::default();

    for (line, raw) in lines(text) {
        let err = |source: RecordError| ScoreError::Record { path: path.to_path_buf(), line, source };
        let (question_type, subtask, id, score) = score_line(bench, raw).map_err(err)?;
        if let Some(id) = id {
            ids.insert(&id, line).map_err(err)?;
        }
        by_type.entry(question_type).or_insert((subtask, Vec::new())).1.push(score);
    }
    if by_type.is_empty() {
        return Err(ScoreError::Empty { path: path.to_path_buf() });
    }

    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let levels: Vec<ScoreRow> = match bench {
        Bench::Static => vsi::REL_DIRECTION_LEVELS
            .iter()
            .filter_map(|level| {
                let (_, scores) = by_type.get(*level)?;
                let short = level.rsplit('_').next().unwrap_or(level);
                let fraction = mean(scores);
                Some(ScoreRow {
                    key: level.to_string(),
                    name: format!("Rel. Dir. ({short})"),
                    questions: scores.len(),
                    score: 100.0 * fraction,
                    fraction,
                })
            })
            .collect(),
        Bench::Dynamic => Vec::new(),
    };

    let mut rows = Vec::new();
    for (k, sub) in subtasks.iter().enumerate() {
        let groups: Vec<&Vec<f64>> = by_type.values().filter(|(s, _)| *s == k).map(|(_, v)| v).collect();
        let questions: usize = groups.iter().map(|v| v.len()).sum();
        if questions == 0 {
            continue;
        }
        // Several groups only for VSI's rel-direction levels: a mean of their means.
        // The official code needs all three levels; with some missing we average those present.
        let fraction = groups.iter().map(|v| mean(v)).sum::<f64>() / groups.len() as f64;
        rows.push(ScoreRow { key: sub.key.to_string(), name: sub.name.to_string(), questions, score: 100.0 * fraction, fraction });
    }

    let all: Vec<f64> = by_type.values().flat_map(|(_, v)| v.iter().copied()).collect();
    let per_row: Vec<(f64, usize)> = rows.iter().map(|r| (r.fraction, r.questions)).collect();
    let (macro_fraction, micro_fraction) = (macro_average(&per_row), mean(&all));
    Ok(ScoreReport {
        bench,
        avg_macro: 100.0 * macro_fraction,
        avg_micro: 100.0 * micro_fraction,
        avg_macro_fraction: macro_fraction,
        avg_micro_fraction: micro_fraction,
        questions: all.len(),
        rows,
        levels,
    })
}

/// Validates one line and scores it: (question_type, subtask index, id, score).
fn score_line(bench: Bench, raw: &str) -> Result<(String, usize, Option<String>, f64), RecordError> {
    let obj = parse_object(raw)?;
    let (question_type, subtask) = question_type(bench, &obj)?;
    let prediction = string_field(&obj, "prediction")?;
    let truth_field = answer_field(bench);
    let truth = answer_text(&obj, truth_field)?;
    let kind = subtasks(bench)[subtask].kind;
    // A bad ground truth is a broken file, not a wrong prediction: refuse it rather
    // than silently scoring 0.
    match kind {
        AnswerKind::Number => {
            positive_truth(truth_field, &truth, &question_type)?;
        }
        AnswerKind::Choice if !OPTION_LETTERS.iter().any(|l| l.eq_ignore_ascii_case(&truth)) => {
            return Err(RecordError::AnswerNotAnOption {
                field: truth_field,
                found: truth,
                letters: OPTION_LETTERS.join(", "),
            });
        }
        _ => {}
    }
    let id = match obj.get("id") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    };
    let score = question_score(kind, &prediction, &truth);
    Ok((question_type, subtask, id, score))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/predictions").join(name)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn row<'a>(report: &'a ScoreReport, key: &str) -> &'a ScoreRow {
        report
            .rows
            .iter()
            .chain(&report.levels)
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("no row {key}"))
    }

    #[test]
    fn vsi_fixture_scores_as_computed_by_hand() {
        let report = score_file(Bench::Static, &fixture("vsi.jsonl")).unwrap();
        // Per question (see examples/make_fixture.rs for the predictions):
        //  counting: "3" vs 3 -> 1; "three" vs 5 -> unparsable -> 0            => 50.0
        //  abs_distance: "4.3 meters" vs 4, rel .075 -> theta .50...90 pass     => 90.0
        //  size: "62." vs 80, rel .225 -> theta .50....75 pass                  => 60.0
        //  room: "28 square meters" vs 25, rel .12 -> theta .50...85 pass       => 80.0
        //  rel_distance: "B. table" vs B                                         => 100.0
        //  rel_direction: easy "A. left" vs A -> 1; medium "(C)" vs C -> 0 and
        //    "B" vs D -> 0; hard "b" vs B -> 1. Mean of level means (1+0+1)/3   => 66.67
        //    (pooled it would be 2/4 = 50.0)
        //  route: "A." vs A                                                      => 100.0
        //  appearance: "C. sofa" vs D -> 0; "A" vs A -> 1                       => 50.0
        let expected = [
            ("obj_count", 2, 50.0),
            ("abs_distance", 1, 90.0),
            ("obj_size", 1, 60.0),
            ("room_size", 1, 80.0),
            ("rel_distance", 1, 100.0),
            ("rel_direction", 4, 200.0 / 3.0),
            ("route_plan", 1, 100.0),
            ("appearance_order", 2, 50.0),
        ];
        assert_eq!(report.rows.len(), 8);
        for ((key, n, score), r) in expected.iter().zip(&report.rows) {
            assert_eq!((r.key.as_str(), r.questions), (*key, *n));
            assert!(close(r.score, *score), "{key}: {} != {score}", r.score);
        }
        assert_eq!(row(&report, "rel_direction").name, "Rel. Dir.");
        let levels: Vec<(&str, usize, f64)> =
            report.levels.iter().map(|l| (l.key.as_str(), l.questions, l.score)).collect();
        assert_eq!(
            levels,
            [
                ("object_rel_direction_easy", 1, 100.0),
                ("object_rel_direction_medium", 2, 0.0),
                ("object_rel_direction_hard", 1, 100.0)
            ]
        );
        assert!(!close(row(&report, "rel_direction").score, 50.0), "folding must not pool");

        assert_eq!(report.questions, 13);
        // Macro: (50 + 90 + 60 + 80 + 100 + 66.67 + 100 + 50) / 8 = 74.583...
        assert!(close(
            report.avg_macro,
            (50.0 + 90.0 + 60.0 + 80.0 + 100.0 + 200.0 / 3.0 + 100.0 + 50.0) / 8.0
        ));
        // Micro: (1 + 0 + .9 + .6 + .8 + 1 + 1 + 0 + 0 + 1 + 1 + 0 + 1) / 13 = 8.3 / 13.
        assert!(close(report.avg_micro, 100.0 * 8.3 / 13.0), "{}", report.avg_micro);
        assert_eq!(report.overall(), report.avg_macro);

        let md = report.render_markdown();
        assert!(md.contains("| Rel. Dir. | rel_direction | 4 | 66.7 | 0.6666666666666666 |"), "{md}");
        assert!(md.contains("| Rel. Dir. (medium) | object_rel_direction_medium | 2 | 0.0 | 0.0 |"), "{md}");
        assert!(md.contains("| Avg. macro (overall) | avg_macro | 13 | 74.6 | 0.7458333333333333 |"), "{md}");
        assert!(md.contains("| Avg. micro | avg_micro | 13 | 63.8 | 0.6384615384615385 |"), "{md}");
    }

    #[test]
    fn dsr_fixture_scores_as_computed_by_hand() {
        let report = score_file(Bench::Dynamic, &fixture("dsr.jsonl")).unwrap();
        // 15 questions over 13 types: abs_distance and non_template have 2 each.
        //   abs_distance: "A" vs A -> 1, "B. closer" vs C -> 0                     => 50.0
        //   non_template: "(B)" vs B -> 0, "c." vs C -> 1                           => 50.0
        //   wrong: abs_orientation ("B:" vs B), rel_speed ("D" vs A),
        //          rel_direction_pred (" A", a leading space)                      => 0.0
        //   the other 8 types are right                                           => 100.0
        // Correct: 1 + 1 + 8 = 10 of 15.
        assert_eq!(report.rows.len(), 13);
        assert!(report.levels.is_empty());
        let wrong = ["abs_orientation", "rel_speed", "rel_direction_pred"];
        for r in &report.rows {
            let expected = match r.key.as_str() {
                "abs_distance" | "non_template" => 50.0,
                k if wrong.contains(&k) => 0.0,
                _ => 100.0,
            };
            assert!(close(r.score, expected), "{}: {}", r.key, r.score);
            assert_eq!(r.questions, if expected == 50.0 { 2 } else { 1 }, "{}", r.key);
        }
        assert_eq!(row(&report, "rel_speed_comp").name, "Rel. Spd. Comp.");
        assert!(close(report.avg_micro, 100.0 * 10.0 / 15.0));
        // Macro: (2 * 50 + 8 * 100) / 13 = 69.23..., not the question-weighted 66.67.
        assert!(close(report.avg_macro, 900.0 / 13.0));
        assert_eq!(report.overall(), report.avg_micro);
        assert!(report.render_markdown().contains("| Avg. micro (overall) | avg_micro | 15 | 66.7 | 0.6666666666666666 |"));
    }

    #[test]
    fn official_first_token_rule() {
        let mc = |p: &str, t: &str| question_score(AnswerKind::Choice, p, t);
        assert_eq!(mc("B. chair", "B"), 1.0);
        assert_eq!(mc("b", "B"), 1.0);
        assert_eq!(mc("(B)", "B"), 0.0);
        assert_eq!(mc("B:", "B"), 0.0);
        assert_eq!(mc("B\nchair", "B"), 0.0, "only spaces split");
        let num = |p: &str, t: &str| question_score(AnswerKind::Number, p, t);
        assert_eq!(num("3.5 meters", "3.5"), 1.0);
        assert_eq!(num("3.5.", "3.5"), 1.0);
        assert_eq!(num("3.5m", "3.5"), 0.0);
        assert_eq!(num("three", "3"), 0.0);
        assert_eq!(num(" 3", "3"), 0.0, "a leading space makes the first token empty");
        assert_eq!(num("", "3"), 0.0);
        assert_eq!(num("nan", "3"), 0.0);
        assert_eq!(num("inf", "3"), 0.0);
        assert_eq!(num("1_0", "10"), 1.0, "Python's float() accepts digit underscores");
    }

    fn score_err(bench: Bench, text: &str) -> String {
        score_jsonl(bench, text, Path::new("p.jsonl")).expect_err("must fail").to_string()
    }

    #[test]
    fn errors_carry_the_line_number() {
        let good = r#"{"question_type": "object_counting", "prediction": "3", "ground_truth": "3"}"#;
        let cases = [
            ("{oops", "p.jsonl:3: invalid JSON"),
            (
                r#"{"question_type": "object_counting", "ground_truth": "3"}"#,
                "p.jsonl:3: missing field `prediction`",
            ),
            (
                r#"{"question_type": "counting", "prediction": "3", "ground_truth": "3"}"#,
                "p.jsonl:3: unknown question_type \"counting\"",
            ),
            (
                r#"{"question_type": "object_counting", "prediction": "3", "ground_truth": "x"}"#,
                "p.jsonl:3: field `ground_truth` = \"x\" is not a number",
            ),
            (
                r#"{"question_type": "route_planning", "prediction": "A", "ground_truth": "chair"}"#,
                "p.jsonl:3: field `ground_truth` = \"chair\" is not among",
            ),
            (
                r#"{"question_type": "object_counting", "prediction": 3, "ground_truth": "3"}"#,
                "p.jsonl:3: field `prediction` must be a string",
            ),
            ("[1, 2]", "p.jsonl:3: expected a JSON object"),
            (
                r#"{"question_type": "object_counting", "prediction": "3", "ground_truth": -2}"#,
                "p.jsonl:3: field `ground_truth` = \"-2\" is not a positive number",
            ),
            (
                r#"{"question_type": "object_abs_distance", "prediction": "0", "ground_truth": "0"}"#,
                "p.jsonl:3: field `ground_truth` = \"0\" is not a positive number",
            ),
        ];
        for (bad, needle) in cases {
            let msg = score_err(Bench::Static, &format!("{good}\n\n{bad}\n"));
            assert!(msg.contains(needle), "{msg}");
        }
        // DSR needs `answer`, not `ground_truth`.
        let msg = score_err(
            Bench::Dynamic,
            r#"{"question_type": "rel_speed", "prediction": "A", "ground_truth": "A"}"#,
        );
        assert!(msg.contains("p.jsonl:1: missing field `answer`"), "{msg}");
        let msg = score_err(
            Bench::Dynamic,
            "{\"id\": 7, \"question_type\": \"rel_speed\", \"prediction\": \"A\", \"answer\": \"A\"}\n\
             {\"id\": 7, \"question_type\": \"rel_speed\", \"prediction\": \"A\", \"answer\": \"A\"}",
        );
        assert!(msg.contains("p.jsonl:2: duplicate id \"7\" (first on line 1)"), "{msg}");
        assert!(score_err(Bench::Dynamic, "\n\n").contains("no predictions"));
    }

    #[test]
    fn numeric_ground_truth_may_be_a_json_number() {
        let text = r#"{"question_type": "room_size_estimation", "prediction": "20", "ground_truth": 20}"#;
        let report = score_jsonl(Bench::Static, text, Path::new("p")).unwrap();
        assert_eq!(report.rows[0].score, 100.0);
    }
}

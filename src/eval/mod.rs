//! Evaluation: the benchmarks' official metrics, per-subtask aggregation and both averages.

pub mod metrics;
pub mod score;

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::batcher::{BatchItem, GeoBatcher};
use crate::data::{Answer, AnswerKind, Dataset};
use crate::model::{GeoSr, Mode};

/// One evaluated question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub index: usize,
    pub subtask: String,
    pub answer: f64,
    pub prediction: f64,
    /// Accuracy (0 or 1) or MRA in [0, 1].
    pub score: f64,
}

/// One row of `eval.csv`: a subtask, or one of the two averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// Subtask key, or `avg_macro` / `avg_micro`.
    pub subtask: String,
    /// The paper's column header.
    pub name: String,
    /// `accuracy` or `mra` (or `macro` / `micro` for averages).
    pub metric: String,
    pub questions: usize,
    /// Percent, as the paper reports.
    pub score: f64,
}

/// Runs the model over `data` in inference mode (no masking).
pub fn predict<B: Backend>(model: &GeoSr<B>, data: &Dataset, batcher: &GeoBatcher, batch_size: usize, device: &B::Device) -> Vec<Prediction> {
    let mut out = Vec::with_capacity(data.samples.len());
    for (chunk_index, chunk) in data.samples.chunks(batch_size).enumerate() {
        let items = chunk.iter().map(|s| BatchItem { sample: s.clone(), mask_seed: None }).collect();
        let batch = batcher.batch(items, device);
        let fwd = model.forward(&batch, Mode::Infer);
        let choices: Vec<i64> = fwd.choice_logits.argmax(1).into_data().iter::<i64>().collect();
        let numbers: Vec<f32> = fwd.number.into_data().iter::<f32>().collect();
        for (j, sample) in chunk.iter().enumerate() {
            let subtask = data.subtasks[sample.subtask];
            let (answer, prediction, score) = match (sample.answer, subtask.kind) {
                (Answer::Choice(c), _) => {
                    let p = choices[j] as usize;
                    (c as f64, p as f64, if p == c { 1.0 } else { 0.0 })
                }
                (Answer::Number(v), _) => {
                    let p = (numbers[j] as f64).exp_m1().max(0.0);
                    (v as f64, p, metrics::mean_relative_accuracy(p, v as f64))
                }
            };
            out.push(Prediction { index: chunk_index * batch_size + j, subtask: subtask.key.into(), answer, prediction, score });
        }
    }
    out
}

/// Per-subtask scores in the benchmark's order, then the macro and micro averages.
pub fn summarize(data: &Dataset, predictions: &[Prediction]) -> Vec<EvalRow> {
    let mut rows = Vec::new();
    for st in data.subtasks {
        let scores: Vec<f64> = predictions.iter().filter(|p| p.subtask == st.key).map(|p| p.score).collect();
        if scores.is_empty() {
            continue;
        }
        rows.push(EvalRow {
            subtask: st.key.into(),
            name: st.name.into(),
            metric: match st.kind {
                AnswerKind::Choice => "accuracy".into(),
                AnswerKind::Number => "mra".into(),
            },
            questions: scores.len(),
            score: 100.0 * scores.iter().sum::<f64>() / scores.len() as f64,
        });
    }
    let per_subtask: Vec<(f64, usize)> = rows.iter().map(|r| (r.score, r.questions)).collect();
    rows.push(EvalRow {
        subtask: "avg_macro".into(),
        name: "Avg. (macro)".into(),
        metric: "macro".into(),
        questions: predictions.len(),
        score: metrics::macro_average(&per_subtask),
    });
    rows.push(EvalRow {
        subtask: "avg_micro".into(),
        name: "Avg. (micro)".into(),
        metric: "micro".into(),
        questions: predictions.len(),
        score: metrics::micro_average(&per_subtask),
    });
    rows
}

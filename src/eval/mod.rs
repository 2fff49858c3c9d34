//! Evaluation: the benchmarks' official metrics, per-subtask aggregation and both averages.

pub mod metrics;
pub mod score;

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::benchmark::AnswerKind;
use crate::data::batcher::{GeoBatcher, MaskedSample};
use crate::data::{Answer, Dataset};
use crate::model::{Ablation, GeoSr, Mode};

/// One evaluated question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub index: usize,
    pub subtask: String,
    pub answer: f64,
    pub prediction: f64,
    /// Accuracy (0 or 1) or MRA in [0, 1].
    pub score: f64,
    /// The score with geometry tokens zeroed, and with vision tokens zeroed.
    pub score_no_geometry: f64,
    pub score_no_vision: f64,
    /// Mean gate alpha over the vision tokens (gated fusions; weight of the vision stream).
    pub alpha: Option<f64>,
}

/// One row of `curve.csv`: a subtask's (or an average's) score on the held-out slice
/// after `step` training steps (see `eval.every`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    pub step: usize,
    /// Subtask key, or `avg_macro` / `avg_micro`.
    pub subtask: String,
    pub score: f64,
    pub drop_no_geometry: f64,
    pub drop_no_vision: f64,
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
    /// Geometry-reliance probes: the score with geometry (vision) tokens zeroed
    /// and the drop that causes. A model that ignores geometry shows no drop.
    pub score_no_geometry: f64,
    pub score_no_vision: f64,
    pub drop_no_geometry: f64,
    pub drop_no_vision: f64,
    /// Mean gate alpha (share of the vision stream) over the subtask's questions; empty without a gate.
    pub alpha: Option<f64>,
    /// What a blind guess scores. Multiple choice: the mean of 1 / options, or the
    /// share of the most common right answer's words if higher (a model that reads
    /// the options can always pick them). Numbers: the MRA of always answering the
    /// geometric mean of the subtask's answers. A blind model that also uses the
    /// question's words (an object's usual size) can score above this.
    #[serde(default)]
    pub chance: f64,
    /// What the question alone gives: the score of the best answer to each
    /// question's words seen in the training split, without the scene (see
    /// [`QuestionPrior`]). A model that beats `chance` but not this has learned
    /// the questions, not the scenes. Empty when no training split was given.
    #[serde(default)]
    pub prior: Option<f64>,
}

impl EvalRow {
    /// A row from its three scores (plain, geometry zeroed, vision zeroed); the
    /// drops are derived here so they always agree with the scores.
    fn new(
        subtask: &str,
        name: &str,
        metric: &str,
        questions: usize,
        [score, no_g, no_v]: [f64; 3],
        alpha: Option<f64>,
        chance: f64,
        prior: Option<f64>,
    ) -> EvalRow {
        EvalRow {
            subtask: subtask.into(),
            name: name.into(),
            metric: metric.into(),
            questions,
            score,
            score_no_geometry: no_g,
            score_no_vision: no_v,
            drop_no_geometry: score - no_g,
            drop_no_vision: score - no_v,
            alpha,
            chance,
            prior,
        }
    }
}

/// Fewer training questions (or offers of an option) than this and the prior
/// uses the subtask's figures instead of the question's.
pub const MIN_SEEN: usize = 5;

/// A blind model that reads the question: from the training split it learns, for
/// each question's words, the geometric mean of the numerical answers, and how
/// often each option's words were the right one. It never sees a scene, so it
/// scores what the questions alone give away (a chair's usual size, an answer word
/// that is right more often than not). Questions seen fewer than [`MIN_SEEN`]
/// times fall back to the subtask's figures, so rare wordings are not memorised.
#[derive(Debug, Clone, Default)]
pub struct QuestionPrior {
    /// (subtask, question) -> (sum of ln(1 + answer), count).
    numbers: HashMap<(usize, String), (f64, usize)>,
    /// subtask -> (sum of ln(1 + answer), count), for questions not seen in training.
    numbers_by_subtask: HashMap<usize, (f64, usize)>,
    /// (subtask, question, option) -> (times right, times offered).
    options: HashMap<(usize, String, String), (usize, usize)>,
    /// (subtask, option) -> (times right, times offered), for questions not seen in training.
    options_by_subtask: HashMap<(usize, String), (usize, usize)>,
}

impl QuestionPrior {
    pub fn learn(train: &Dataset) -> QuestionPrior {
        let mut prior = QuestionPrior::default();
        for s in &train.samples {
            match s.answer {
                Answer::Number(x) => {
                    let v = (x.max(0.0) as f64).ln_1p();
                    for slot in [
                        prior.numbers.entry((s.subtask, s.question.clone())).or_default(),
                        prior.numbers_by_subtask.entry(s.subtask).or_default(),
                    ] {
                        slot.0 += v;
                        slot.1 += 1;
                    }
                }
                Answer::Choice(right) => {
                    for (k, option) in s.options.iter().enumerate() {
                        let hit = usize::from(k == right);
                        for slot in [
                            prior.options.entry((s.subtask, s.question.clone(), option.clone())).or_default(),
                            prior.options_by_subtask.entry((s.subtask, option.clone())).or_default(),
                        ] {
                            slot.0 += hit;
                            slot.1 += 1;
                        }
                    }
                }
            }
        }
        prior
    }

    /// The prior's expected score on one question, in [0, 1]: MRA for numbers;
    /// for multiple choice, 1 / ties when the right option is among the options
    /// the prior rates highest, else 0.
    pub fn expected_score(&self, sample: &crate::data::Sample) -> f64 {
        match sample.answer {
            Answer::Number(answer) => {
                let key = (sample.subtask, sample.question.clone());
                let (sum, n) = self
                    .numbers
                    .get(&key)
                    .filter(|&&(_, n)| n >= MIN_SEEN)
                    .or_else(|| self.numbers_by_subtask.get(&sample.subtask))
                    .copied()
                    .unwrap_or((0.0, 0));
                let guess = if n == 0 { 0.0 } else { (sum / n as f64).exp_m1() };
                metrics::mean_relative_accuracy(guess, answer as f64)
            }
            Answer::Choice(right) => {
                let rate = |option: &String| {
                    let seen = |c: Option<&(usize, usize)>, min: usize| c.copied().filter(|&(_, n)| n >= min);
                    seen(self.options.get(&(sample.subtask, sample.question.clone(), option.clone())), MIN_SEEN)
                        .or_else(|| seen(self.options_by_subtask.get(&(sample.subtask, option.clone())), 1))
                        .map_or(0.0, |(hits, n)| hits as f64 / n as f64)
                };
                let rates: Vec<f64> = sample.options.iter().map(rate).collect();
                let best = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let tied: Vec<usize> = (0..rates.len()).filter(|&k| rates[k] >= best - 1e-12).collect();
                if tied.contains(&right) {
                    1.0 / tied.len() as f64
                } else {
                    0.0
                }
            }
        }
    }
}

/// The three scores of a prediction, in the order [`EvalRow::new`] takes them.
const SCORES: [fn(&Prediction) -> f64; 3] = [|p| p.score, |p| p.score_no_geometry, |p| p.score_no_vision];

/// Runs the model over `data` in inference mode (no masking), once as is and
/// once for each geometry-reliance probe.
pub fn predict<B: Backend>(model: &GeoSr<B>, data: &Dataset, batcher: &GeoBatcher, batch_size: usize, device: &B::Device) -> Vec<Prediction> {
    let mut out = Vec::with_capacity(data.samples.len());
    for (chunk_index, chunk) in data.samples.chunks(batch_size).enumerate() {
        let items = chunk.iter().map(|s| MaskedSample { sample: s.clone(), masking: None }).collect();
        let batch = batcher.batch(items, device);
        let run = |ablation| {
            let fwd = model.forward_ablated(&batch, Mode::Infer, ablation);
            let alpha: Option<Vec<f32>> =
                fwd.alpha.map(|a| a.mean_dim(1).into_data().iter::<f32>().collect());
            let choices: Vec<i64> = fwd.choice_logits.argmax(1).into_data().iter::<i64>().collect();
            let numbers: Vec<f32> = fwd.number.into_data().iter::<f32>().collect();
            (choices, numbers, alpha)
        };
        let full = run(Ablation::None);
        let no_geometry = run(Ablation::Geometry);
        let no_vision = run(Ablation::Vision);
        for (j, sample) in chunk.iter().enumerate() {
            let subtask = data.subtasks[sample.subtask];
            let judge = |(choices, numbers, _): &(Vec<i64>, Vec<f32>, _)| match sample.answer {
                Answer::Choice(c) => {
                    let p = choices[j] as usize;
                    (c as f64, p as f64, if p == c { 1.0 } else { 0.0 })
                }
                Answer::Number(v) => {
                    let p = (numbers[j] as f64).exp_m1().max(0.0);
                    (v as f64, p, metrics::mean_relative_accuracy(p, v as f64))
                }
            };
            let (answer, prediction, score) = judge(&full);
            out.push(Prediction {
                index: chunk_index * batch_size + j,
                subtask: subtask.key.into(),
                answer,
                prediction,
                score,
                score_no_geometry: judge(&no_geometry).2,
                score_no_vision: judge(&no_vision).2,
                alpha: full.2.as_ref().map(|a| a[j] as f64),
            });
        }
    }
    out
}

/// One plain inference pass over `data` (what Table 6 times); returns the number of questions.
pub fn time_inference<B: Backend>(model: &GeoSr<B>, data: &Dataset, batcher: &GeoBatcher, batch_size: usize, device: &B::Device) -> usize {
    for chunk in data.samples.chunks(batch_size) {
        let items = chunk.iter().map(|s| MaskedSample { sample: s.clone(), masking: None }).collect();
        let out = model.forward(&batcher.batch(items, device), Mode::Infer);
        // Reading the result back waits for the device to finish.
        let _ = out.choice_logits.into_data();
    }
    data.samples.len()
}

/// Per-subtask scores in the benchmark's order, then the macro and micro averages.
/// With `prior`, each row also gets the question prior's score on the same questions.
pub fn summarize(data: &Dataset, predictions: &[Prediction], prior: Option<&QuestionPrior>) -> Vec<EvalRow> {
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let mut rows = Vec::new();
    for st in data.subtasks {
        let ps: Vec<&Prediction> = predictions.iter().filter(|p| p.subtask == st.key).collect();
        if ps.is_empty() {
            continue;
        }
        let metric = match st.kind {
            AnswerKind::Choice => "accuracy",
            AnswerKind::Number => "mra",
        };
        let scores = level_folded_scores(data, st.key, &ps)
            .unwrap_or_else(|| SCORES.map(|f| 100.0 * mean(&ps.iter().map(|p| f(p)).collect::<Vec<_>>())));
        let alphas: Vec<f64> = ps.iter().filter_map(|p| p.alpha).collect();
        let chance = chance_score(data, st.kind, &ps);
        let prior_score =
            prior.map(|q| 100.0 * mean(&ps.iter().map(|p| q.expected_score(&data.samples[p.index])).collect::<Vec<_>>()));
        let alpha = (!alphas.is_empty()).then(|| mean(&alphas));
        rows.push(EvalRow::new(st.key, st.name, metric, ps.len(), scores, alpha, chance, prior_score));
    }
    // Averages of every column, macro over subtasks and micro over questions.
    let mut averages = Vec::new();
    for (key, name, metric) in [("avg_macro", "Avg. (macro)", "macro"), ("avg_micro", "Avg. (micro)", "micro")] {
        let average = |cells: &[(f64, usize)]| {
            if metric == "micro" { metrics::micro_average(cells) } else { metrics::macro_average(cells) }
        };
        let column = |f: fn(&EvalRow) -> f64| average(&rows.iter().map(|r| (f(r), r.questions)).collect::<Vec<_>>());
        let scores = [column(|r| r.score), column(|r| r.score_no_geometry), column(|r| r.score_no_vision)];
        let alphas: Vec<(f64, usize)> = rows.iter().filter_map(|r| r.alpha.map(|a| (a, r.questions))).collect();
        let alpha = (!alphas.is_empty()).then(|| average(&alphas));
        let chance = column(|r| r.chance);
        let prior = rows.iter().all(|r| r.prior.is_some()).then(|| column(|r| r.prior.unwrap_or_default()));
        averages.push(EvalRow::new(key, name, metric, predictions.len(), scores, alpha, chance, prior));
    }
    rows.extend(averages);
    rows
}

/// The blind-guess score of one subtask's questions (see [`EvalRow::chance`]).
fn chance_score(data: &Dataset, kind: AnswerKind, ps: &[&Prediction]) -> f64 {
    let n = ps.len().max(1) as f64;
    match kind {
        AnswerKind::Choice => {
            // Options are shuffled, so a blind model cannot gain from positions, but
            // it can from answer words: rel. direction's "front left" is right more
            // often than 1 in 4, and a model that reads the options can learn that.
            let uniform = ps.iter().map(|p| 1.0 / data.samples[p.index].num_options.max(1) as f64).sum::<f64>() / n;
            let mut counts: std::collections::HashMap<&str, usize> = Default::default();
            for p in ps {
                let sample = &data.samples[p.index];
                if let Some(text) = sample.options.get(p.answer as usize) {
                    *counts.entry(text.as_str()).or_default() += 1;
                }
            }
            let majority = counts.values().copied().max().unwrap_or(0) as f64 / n;
            100.0 * uniform.max(majority)
        }
        AnswerKind::Number => {
            let guess = (ps.iter().map(|p| p.answer.max(0.0).ln_1p()).sum::<f64>() / n).exp_m1();
            100.0 * ps.iter().map(|p| metrics::mean_relative_accuracy(guess, p.answer)).sum::<f64>() / n
        }
    }
}

/// VSI-Bench scores relative direction as the unweighted mean of its easy,
/// medium and hard levels' accuracies (a mean of means), not pooled over
/// questions; real VSI data keeps the levels, so fold them the same way.
/// `None` when the subtask has no levels to fold.
fn level_folded_scores(data: &Dataset, subtask: &str, ps: &[&Prediction]) -> Option<[f64; 3]> {
    let types = data.question_types.as_ref()?;
    if data.bench != crate::config::Bench::Static || subtask != "rel_direction" {
        return None;
    }
    let mut levels: std::collections::BTreeMap<&str, Vec<&Prediction>> = Default::default();
    for p in ps {
        levels.entry(types[p.index].as_str()).or_default().push(p);
    }
    Some(SCORES.map(|f| {
        let means: Vec<f64> =
            levels.values().map(|l| 100.0 * l.iter().map(|p| f(p)).sum::<f64>() / l.len() as f64).collect();
        means.iter().sum::<f64>() / means.len() as f64
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_direction_levels_are_folded_as_a_mean_of_means() {
        let set = crate::data::features::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vsi")).unwrap();
        let data = set.data;
        let rel_dir: Vec<usize> = (0..data.samples.len()).filter(|&i| data.subtasks[data.samples[i].subtask].key == "rel_direction").collect();
        let types = data.question_types.clone().unwrap();
        // Right on every easy and hard question, wrong on every medium one.
        let preds: Vec<Prediction> = rel_dir
            .iter()
            .map(|&i| {
                let right = if types[i].ends_with("medium") { 0.0 } else { 1.0 };
                Prediction { index: i, subtask: "rel_direction".into(), answer: 0.0, prediction: 0.0, score: right, score_no_geometry: right, score_no_vision: 0.0, alpha: None }
            })
            .collect();
        let levels: std::collections::BTreeSet<&str> = rel_dir.iter().map(|&i| types[i].as_str()).collect();
        assert_eq!(levels.len(), 3, "the fixture has all three levels");
        let pooled = 100.0 * preds.iter().map(|p| p.score).sum::<f64>() / preds.len() as f64;
        let row = summarize(&data, &preds, None).into_iter().find(|r| r.subtask == "rel_direction").unwrap();
        assert!((row.score - 200.0 / 3.0).abs() < 1e-9, "{}", row.score);
        assert!((row.score - pooled).abs() > 1.0, "differs from the pooled {pooled}");
    }

    fn sample(subtask: usize, question: &str, options: &[&str], answer: Answer) -> crate::data::Sample {
        crate::data::Sample {
            subtask,
            vision: Vec::new(),
            geometry: Vec::new(),
            prompt: Vec::new(),
            num_options: options.len(),
            answer,
            question: question.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            grounding: Vec::new(),
        }
    }

    /// The prior answers from the question's words: a chair's usual size, the
    /// option word that was usually right, and falls back to the subtask when the
    /// question was never seen; ties split the credit.
    #[test]
    fn question_prior_learns_what_the_words_give_away() {
        let mut train = crate::data::generate(&crate::config::DataConfig { train_size: 1, ..Default::default() }, crate::data::Split::Train);
        let mut samples = Vec::new();
        for _ in 0..MIN_SEEN {
            samples.push(sample(0, "size of chair", &[], Answer::Number(1.0)));
            samples.push(sample(0, "size of bed", &[], Answer::Number(3.0)));
            samples.push(sample(1, "closest to sofa", &["table", "lamp"], Answer::Choice(1)));
            samples.push(sample(1, "closest to sofa", &["lamp", "table"], Answer::Choice(0)));
        }
        // Rarer than MIN_SEEN: answered from the subtask's figures.
        samples.push(sample(0, "size of lamp", &[], Answer::Number(3.0)));
        samples.push(sample(1, "closest to bed", &["table", "lamp"], Answer::Choice(0)));
        train.samples = samples;
        let prior = QuestionPrior::learn(&train);
        assert_eq!(prior.expected_score(&sample(0, "size of chair", &[], Answer::Number(1.0))), 1.0);
        assert_eq!(prior.expected_score(&sample(0, "size of bed", &[], Answer::Number(3.0))), 1.0);
        // Seen once or never: the subtask's guess, exp(mean ln(1 + x)) - 1 over five 1s and six
        // 3s = 2^(5/11) * 4^(6/11) - 1 = 1.92, within 13% of 2.2: inside 8 of MRA's 10 thresholds.
        for question in ["size of lamp", "size of door"] {
            let score = prior.expected_score(&sample(0, question, &[], Answer::Number(2.2)));
            assert!((score - 0.8).abs() < 1e-9, "{question}: {score}");
        }
        // "lamp" was always right for the sofa, whatever its position.
        assert_eq!(prior.expected_score(&sample(1, "closest to sofa", &["table", "lamp"], Answer::Choice(1))), 1.0);
        assert_eq!(prior.expected_score(&sample(1, "closest to sofa", &["lamp", "table"], Answer::Choice(1))), 0.0);
        // The bed was seen once (table right): over the subtask lamp was right 10 of 11
        // offers and table 1 of 11, so the prior says lamp.
        assert_eq!(prior.expected_score(&sample(1, "closest to bed", &["table", "lamp"], Answer::Choice(1))), 1.0);
        // Options never offered in training rate 0 and tie: half the credit.
        assert_eq!(prior.expected_score(&sample(1, "closest to door", &["sink", "desk"], Answer::Choice(0))), 0.5);
    }
}

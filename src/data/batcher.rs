//! Turns samples into tensors. Masking's random draws (delta of Eq. 6 and the random
//! set of Eq. 7) come with each sample, drawn by the training loop (`train`).

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use super::{vocab, Answer, Sample, GROUNDING_WIDTH, MAX_OPTIONS};

/// A sample plus the masking drawn for it; `None` means no masking (evaluation).
#[derive(Debug, Clone)]
pub struct MaskedSample {
    pub sample: Sample,
    pub masking: Option<Masking>,
}

/// One sample's masking draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Masking {
    /// delta of Eq. 6: whether masking is enabled for the sample.
    pub delta: bool,
    /// The random set M of Eq. 7, one 0/1 entry per vision token (1 = in M).
    pub random_set: Vec<f32>,
}

/// How many questions of each kind a batch (or a whole batch split into shards) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionCounts {
    pub choice: usize,
    pub number: usize,
    /// Prompt words with a grounding target (see [`Sample::grounding`]).
    pub grounded: usize,
    /// Role slots with a target (object words before the options, at most [`ROLES`] a question).
    pub roles: usize,
}

impl QuestionCounts {
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let (mut choice, mut number, mut grounded, mut roles) = (0, 0, 0, 0);
        for s in samples {
            match s.answer {
                Answer::Choice(_) => choice += 1,
                Answer::Number(_) => number += 1,
            }
            grounded += s.grounding.chunks(GROUNDING_WIDTH).filter(|w| w[HAS_TARGET] > 0.0).count();
            roles += role_targets(&s.prompt, &s.grounding).chunks(GROUNDING_WIDTH).filter(|r| r[HAS_TARGET] > 0.0).count();
        }
        QuestionCounts { choice, number, grounded, roles }
    }
}

#[derive(Debug, Clone)]
pub struct GeoBatch<B: Backend> {
    /// Raw vision features `[B, N_V, C_vin]`.
    pub vision: Tensor<B, 3>,
    /// Raw geometry (point-map) features `[B, N_G, C_gin]`.
    pub geometry: Tensor<B, 3>,
    /// Prompt ids `[B, L_P]`.
    pub prompt: Tensor<B, 2, Int>,
    /// `[B, MAX_OPTIONS, L_P]`: row k averages the prompt positions of option k's
    /// words (zero for absent options).
    pub option_spans: Tensor<B, 3>,
    /// `[B, MAX_OPTIONS]`, true where a question has no such option.
    pub invalid_options: Tensor<B, 2, Bool>,
    /// Correct option index `[B]` (0 for numerical questions).
    pub choice_target: Tensor<B, 1, Int>,
    /// `ln(1 + answer)` for numerical questions `[B]` (0 otherwise).
    pub number_target: Tensor<B, 1>,
    /// 1 for numerical questions, 0 for multiple choice `[B]`.
    pub is_number: Tensor<B, 1>,
    /// `[B, L_P, GROUNDING_WIDTH]`: each prompt word's grounding target (x, z, dx, dz, has-target).
    pub grounding: Tensor<B, 3>,
    /// `[B, ROLES, GROUNDING_WIDTH]`: the grounding targets of the question's first [`ROLES`]
    /// object words, in the order the question names them (before the options).
    pub roles: Tensor<B, 3>,
    /// The same, counted on the host, so the loss divides without reading tensors back.
    pub counts: QuestionCounts,
    /// delta of Eq. 6 `[B]`: 1 where masking is enabled for the sample.
    pub delta: Tensor<B, 1>,
    /// The random mask set of Eq. 7 `[B, N_V]` (1 = in M).
    pub random_set: Tensor<B, 2>,
    /// Subtask index of each sample.
    pub subtasks: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct GeoBatcher {
    pub n_vision: usize,
    pub n_geometry: usize,
    pub vision_channels: usize,
    pub geometry_channels: usize,
}

impl<B: Backend> Batcher<B, MaskedSample, GeoBatch<B>> for GeoBatcher {
    fn batch(&self, items: Vec<MaskedSample>, device: &B::Device) -> GeoBatch<B> {
        let n = items.len();
        let prompt_len = items.first().map_or(0, |i| i.sample.prompt.len());
        let mut vision = Vec::with_capacity(n * self.n_vision * self.vision_channels);
        let mut geometry = Vec::with_capacity(n * self.n_geometry * self.geometry_channels);
        let mut prompt = Vec::with_capacity(n * prompt_len);
        let mut invalid = Vec::with_capacity(n * MAX_OPTIONS);
        let mut spans = Vec::with_capacity(n * MAX_OPTIONS * prompt_len);
        let (mut choice, mut number, mut is_number) = (Vec::new(), Vec::new(), Vec::new());
        let (mut delta, mut random_set) = (Vec::with_capacity(n), Vec::with_capacity(n * self.n_vision));
        let mut subtasks = Vec::with_capacity(n);
        let mut grounding = Vec::with_capacity(n * prompt_len * GROUNDING_WIDTH);
        let mut roles = Vec::with_capacity(n * ROLES * GROUNDING_WIDTH);
        for item in &items {
            let s = &item.sample;
            vision.extend_from_slice(&s.vision);
            geometry.extend_from_slice(&s.geometry);
            prompt.extend(s.prompt.iter().map(|&t| t as i64));
            invalid.extend((0..MAX_OPTIONS).map(|o| o >= s.num_options));
            spans.extend(option_spans(&s.prompt));
            match s.answer {
                Answer::Choice(c) => {
                    choice.push(c as i64);
                    number.push(0.0);
                    is_number.push(0.0);
                }
                Answer::Number(v) => {
                    choice.push(0);
                    number.push(v.max(0.0).ln_1p());
                    is_number.push(1.0);
                }
            }
            match &item.masking {
                Some(m) => {
                    delta.push(if m.delta { 1.0 } else { 0.0 });
                    random_set.extend_from_slice(&m.random_set);
                }
                None => {
                    delta.push(0.0);
                    random_set.extend(std::iter::repeat_n(0.0, self.n_vision));
                }
            }
            subtasks.push(s.subtask);
            if s.grounding.is_empty() {
                grounding.extend(std::iter::repeat_n(0.0, prompt_len * GROUNDING_WIDTH));
            } else {
                grounding.extend_from_slice(&s.grounding);
            }
            roles.extend(role_targets(&s.prompt, &s.grounding));
        }
        let counts = QuestionCounts::of(items.iter().map(|i| &i.sample));
        GeoBatch {
            vision: Tensor::from_data(TensorData::new(vision, [n, self.n_vision, self.vision_channels]), device),
            geometry: Tensor::from_data(TensorData::new(geometry, [n, self.n_geometry, self.geometry_channels]), device),
            prompt: Tensor::from_data(TensorData::new(prompt, [n, prompt_len]), device),
            option_spans: Tensor::from_data(TensorData::new(spans, [n, MAX_OPTIONS, prompt_len]), device),
            invalid_options: Tensor::from_data(TensorData::new(invalid, [n, MAX_OPTIONS]), device),
            choice_target: Tensor::from_data(TensorData::new(choice, [n]), device),
            number_target: Tensor::from_data(TensorData::new(number, [n]), device),
            is_number: Tensor::from_data(TensorData::new(is_number, [n]), device),
            grounding: Tensor::from_data(TensorData::new(grounding, [n, prompt_len, GROUNDING_WIDTH]), device),
            roles: Tensor::from_data(TensorData::new(roles, [n, ROLES, GROUNDING_WIDTH]), device),
            counts,
            delta: Tensor::from_data(TensorData::new(delta, [n]), device),
            random_set: Tensor::from_data(TensorData::new(random_set, [n, self.n_vision]), device),
            subtasks,
        }
    }
}

/// Object words of a question the role targets follow (Route Plan names four).
pub const ROLES: usize = 4;

/// Where the has-target flag sits among a word's [`GROUNDING_WIDTH`] values.
pub const HAS_TARGET: usize = GROUNDING_WIDTH - 1;

/// `ROLES x GROUNDING_WIDTH`: the grounding targets of the object words before the
/// first option letter, in order, padded with zeros.
pub fn role_targets(prompt: &[u32], grounding: &[f32]) -> Vec<f32> {
    const W: usize = GROUNDING_WIDTH;
    let mut out = vec![0.0f32; ROLES * W];
    if grounding.is_empty() {
        return out;
    }
    let question = prompt.iter().take_while(|&&id| vocab::option_letter(id).is_none()).count();
    let named = (0..question).filter(|&j| grounding[W * j + HAS_TARGET] > 0.0);
    for (k, j) in named.take(ROLES).enumerate() {
        out[W * k..W * (k + 1)].copy_from_slice(&grounding[W * j..W * (j + 1)]);
    }
    out
}

/// `MAX_OPTIONS x prompt.len()` weights, row-major: option k's words are those after
/// its letter up to the next letter or the padding, each weighted 1 / (their count).
pub fn option_spans(prompt: &[u32]) -> Vec<f32> {
    let mut weights = vec![0.0f32; MAX_OPTIONS * prompt.len()];
    let mut current: Option<usize> = None;
    for (j, &id) in prompt.iter().enumerate() {
        if let Some(k) = vocab::option_letter(id) {
            current = Some(k);
        } else if id == vocab::PAD {
            current = None;
        } else if let Some(k) = current {
            weights[k * prompt.len() + j] = 1.0;
        }
    }
    for row in weights.chunks_mut(prompt.len()) {
        let count: f32 = row.iter().sum();
        if count > 0.0 {
            row.iter_mut().for_each(|w| *w /= count);
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_spans_average_each_options_words() {
        let prompt = vocab::encode(&["which", "is", "closest", "to", "tv", "?", "A", "chair", "B", "front", "left", "C", "sofa"]);
        let w = option_spans(&prompt);
        let row = |k: usize| &w[k * prompt.len()..(k + 1) * prompt.len()];
        assert_eq!(row(0)[7], 1.0);
        assert_eq!((row(1)[9], row(1)[10]), (0.5, 0.5));
        assert_eq!(row(2)[12], 1.0);
        assert!(row(3).iter().all(|&x| x == 0.0), "no option D");
        for k in 0..3 {
            assert!((row(k).iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert_eq!(row(k)[6], 0.0, "letters are not part of an option");
        }
    }
}

//! A question before tokenization, and how it becomes a [`Sample`].

use rand::seq::SliceRandom;
use rand::Rng;

use super::Body;
use crate::data::vocab::{self, OPTION_LETTERS, PROMPT_LEN};
use crate::data::{Answer, Sample, GROUNDING_WIDTH, MAX_OPTIONS};

/// A question before tokenization: template words and option words.
pub struct Question {
    pub words: Vec<&'static str>,
    pub options: Vec<Vec<&'static str>>,
    pub answer: Answer,
}

impl Question {
    pub fn number(words: Vec<&'static str>, value: f64) -> Self {
        Question { words, options: Vec::new(), answer: Answer::Number(value as f32) }
    }

    /// `options[correct]` is right. Options are shuffled so that every position is
    /// equally likely to hold the answer; otherwise position would be a shortcut too.
    pub fn choice(
        words: Vec<&'static str>,
        options: Vec<Vec<&'static str>>,
        correct: usize,
        rng: &mut impl Rng,
    ) -> Self {
        assert!((2..=MAX_OPTIONS).contains(&options.len()) && correct < options.len());
        let mut order: Vec<usize> = (0..options.len()).collect();
        order.shuffle(rng);
        let answer = order.iter().position(|&k| k == correct).expect("correct option is in the order");
        let options = order.iter().map(|&k| options[k].clone()).collect();
        Question { words, options, answer: Answer::Choice(answer) }
    }

    pub fn into_sample(self, subtask: usize, vision: Vec<f32>, geometry: Vec<f32>) -> Sample {
        let mut prompt = self.words.clone();
        for (letter, option) in OPTION_LETTERS.iter().zip(&self.options) {
            prompt.push(letter);
            prompt.extend(option);
        }
        debug_assert!(prompt.len() <= PROMPT_LEN, "prompt too long: {prompt:?}");
        Sample {
            subtask,
            vision,
            geometry,
            prompt: vocab::encode(&prompt),
            num_options: self.options.len(),
            answer: self.answer,
            question: self.words.join(" "),
            options: self.options.iter().map(|o| o.join(" ")).collect(),
            grounding: Vec::new(),
        }
    }
}

/// [`Sample::grounding`]: the floor position (x, z) of the object each prompt word
/// names in `first`, and its floor displacement from `first` to `last` (the same
/// objects in the same order; pass `first` twice for a static scene), where the word
/// names exactly one of them.
pub fn grounding(prompt: &[u32], first: &[Body], last: &[Body]) -> Vec<f32> {
    let mut out = vec![0.0f32; GROUNDING_WIDTH * prompt.len()];
    for (j, &id) in prompt.iter().enumerate() {
        let Some(category) = vocab::category(id) else { continue };
        let mut named = first.iter().zip(last).filter(|(o, _)| o.category == category);
        if let (Some((o, end)), None) = (named.next(), named.next()) {
            let moved = end.center - o.center;
            let target = [o.center.x, o.center.z, moved.x, moved.z, 1.0].map(|v| v as f32);
            out[GROUNDING_WIDTH * j..][..GROUNDING_WIDTH].copy_from_slice(&target);
        }
    }
    out
}

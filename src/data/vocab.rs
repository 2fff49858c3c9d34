//! The closed prompt vocabulary shared by both benchmarks.
//!
//! Every question is produced by our own templates, so the set of words is known in
//! advance. A closed vocabulary keeps the prompt embedding table tiny and makes the
//! tokenizer a lookup; an unknown word can only be a bug in a template, hence the panic
//! in [`token`] rather than an `<unk>` id that would silently hide it.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::MAX_OPTIONS;

/// Padding id; prompts shorter than [`PROMPT_LEN`] are filled with it.
pub const PAD: u32 = 0;

/// Every prompt is exactly this many ids long. The longest template plus four
/// options fits (the scene modules' tests check that nothing is cut off).
pub const PROMPT_LEN: usize = 24;

/// Object categories, in one-hot order of the vision tokens' category channels.
pub const CATEGORIES: &[&str] =
    &["chair", "table", "sofa", "bed", "lamp", "tv", "plant", "door", "window", "shelf", "sink", "desk"];

/// Letters that introduce the options inside a prompt, in option order.
pub const OPTION_LETTERS: [&str; MAX_OPTIONS] = ["A", "B", "C", "D"];

/// Template words, answer words and punctuation. Grouped by use only to make a
/// missing word easy to spot; ids follow this order, so append rather than insert
/// if ids must stay stable across versions.
#[rustfmt::skip]
const TEMPLATE_WORDS: &[&str] = &[
    // Punctuation.
    "?", ",", ":",
    // Static templates.
    "how", "many", "are", "there", "far", "is", "from", "in", "meters", "long", "longest",
    "side", "of", "what", "room", "area", "square", "which", "closest", "to", "standing",
    "at", "facing", "where", "walk", "then", "appears", "first", "video",
    // Dynamic templates.
    "does", "do", "get", "closer", "or", "farther", "viewer", "way", "move", "fast", "object",
    "moves", "fastest", "if", "keeps", "moving", "will", "it", "reach", "and", "apart", "end",
    "relative", "heading", "both", "be", "keep",
    // Answer words.
    "front", "back", "left", "right", "same", "forward", "backward", "toward", "away", "still",
    "slow", "medium",
    // Paraphrases used by the dynamic non-template questions.
    "nearer", "further", "quick", "quickest", "go", "goes", "direction", "thing", "camera",
    "continues", "continue", "please", "answer", "tell", "me", "this", "clip",
];

fn all_words() -> impl Iterator<Item = &'static str> {
    std::iter::once("<pad>")
        .chain(CATEGORIES.iter().copied())
        .chain(OPTION_LETTERS.iter().copied())
        .chain(TEMPLATE_WORDS.iter().copied())
}

fn index() -> &'static HashMap<&'static str, u32> {
    static INDEX: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
    INDEX.get_or_init(|| all_words().enumerate().map(|(i, w)| (w, i as u32)).collect())
}

/// Number of distinct ids, i.e. the size of the prompt embedding table.
pub fn vocab_size() -> usize {
    all_words().count()
}

/// The id of one word. Panics on a word outside the vocabulary: templates are ours,
/// so that is a bug to fix here, not an input to tolerate.
pub fn token(word: &str) -> u32 {
    match index().get(word) {
        Some(&id) => id,
        None => panic!("word {word:?} is not in the prompt vocabulary (add it to vocab.rs)"),
    }
}

/// The word of an id, for printing prompts back.
pub fn word(id: u32) -> &'static str {
    all_words().nth(id as usize).unwrap_or("<out-of-range>")
}

/// Encodes words into exactly [`PROMPT_LEN`] ids: padded with [`PAD`], truncated if
/// longer (the generators never produce longer prompts; see their tests).
pub fn encode(words: &[&str]) -> Vec<u32> {
    let mut ids: Vec<u32> = words.iter().take(PROMPT_LEN).map(|w| token(w)).collect();
    ids.resize(PROMPT_LEN, PAD);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_unique_and_pad_is_zero() {
        let words: Vec<_> = all_words().collect();
        let unique: std::collections::HashSet<_> = words.iter().collect();
        assert_eq!(unique.len(), words.len(), "duplicate word in the vocabulary");
        assert_eq!(token("<pad>"), PAD);
        assert_eq!(vocab_size(), words.len());
        assert_eq!(CATEGORIES.len(), 12);
    }

    #[test]
    fn encode_pads_truncates_and_round_trips() {
        let ids = encode(&["how", "many", "chair", "are", "there", "?"]);
        assert_eq!(ids.len(), PROMPT_LEN);
        assert_eq!(word(ids[2]), "chair");
        assert!(ids[6..].iter().all(|&id| id == PAD));
        let long = vec!["left"; PROMPT_LEN + 5];
        assert_eq!(encode(&long).len(), PROMPT_LEN);
    }

    #[test]
    #[should_panic(expected = "not in the prompt vocabulary")]
    fn unknown_word_panics() {
        encode(&["giraffe"]);
    }
}

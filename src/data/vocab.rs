//! The closed prompt vocabulary shared by both benchmarks.
//!
//! Every question is produced by our own templates, so the set of words is known in
//! advance. A closed vocabulary keeps the prompt embedding table tiny and makes the
//! tokenizer a lookup; an unknown word in a template can only be a bug, hence the panic
//! in [`token`] rather than an `<unk>` id that would silently hide it.
//!
//! Real benchmarks (see `data::features`) ask questions in free text, so they go
//! through [`encode_lossy`] instead, which maps every word outside the vocabulary to
//! the reserved [`UNK`] id. `UNK` is the last id, so adding it left the ids of all
//! template words, and hence the synthetic prompts, unchanged.

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

/// Id of every word outside the vocabulary in [`encode_lossy`]. It comes after all
/// real words so that reserving it did not shift any existing id.
pub const UNK: u32 = (1 + CATEGORIES.len() + OPTION_LETTERS.len() + TEMPLATE_WORDS.len()) as u32;

fn all_words() -> impl Iterator<Item = &'static str> {
    std::iter::once("<pad>")
        .chain(CATEGORIES.iter().copied())
        .chain(OPTION_LETTERS.iter().copied())
        .chain(TEMPLATE_WORDS.iter().copied())
        .chain(std::iter::once("<unk>"))
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

/// The category index ([`CATEGORIES`] order) an id names, if it names one.
pub fn category(id: u32) -> Option<usize> {
    CATEGORIES.iter().position(|&w| token(w) == id)
}

/// The option index ([`OPTION_LETTERS`] order) an id's letter marks, if it is one.
pub fn option_letter(id: u32) -> Option<usize> {
    OPTION_LETTERS.iter().position(|&l| token(l) == id)
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

/// Encodes free text (a real benchmark's question and options) into exactly
/// [`PROMPT_LEN`] ids, never panicking: the text is split on every non-alphanumeric
/// character, each word is lowercased and looked up, and words outside the vocabulary
/// become [`UNK`]. Punctuation is dropped, and so is everything past `PROMPT_LEN` words.
///
/// One exception to the lowercasing: a word that is exactly an uppercase option
/// letter ("A" ... "D") maps to that letter's id, so that options written "A. chair"
/// encode like the synthetic prompts' `A chair`. The lowercase "a" stays `UNK`
/// (it is nearly always the article).
pub fn encode_lossy(text: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(PROMPT_LEN)
        .map(|w| {
            if OPTION_LETTERS.contains(&w) {
                return token(w);
            }
            index().get(w.to_lowercase().as_str()).copied().unwrap_or(UNK)
        })
        .collect();
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
    fn unk_is_the_last_id_and_leaves_template_ids_alone() {
        assert_eq!(token("<unk>"), UNK);
        assert_eq!(UNK as usize, vocab_size() - 1);
        // Ids fixed before `<unk>` existed: the synthetic prompts must not change.
        assert_eq!(token("chair"), 1);
        assert_eq!(token("A"), 1 + CATEGORIES.len() as u32);
        assert_eq!(token("?"), 1 + (CATEGORIES.len() + OPTION_LETTERS.len()) as u32);
        assert_eq!(word(UNK), "<unk>");
    }

    #[test]
    fn encode_lossy_lowercases_splits_and_maps_unknown_words_to_unk() {
        let ids = encode_lossy("How many Chair(s) are in the room? A. 3 B. sofa-bed");
        let words: Vec<&str> = ids.iter().take_while(|&&id| id != PAD).map(|&id| word(id)).collect();
        assert_eq!(
            words,
            ["how", "many", "chair", "<unk>", "are", "in", "<unk>", "room", "A", "<unk>", "B", "sofa", "bed"]
        );
        assert_eq!(ids.len(), PROMPT_LEN);
        // The article "a" is not the option letter A.
        assert_eq!(encode_lossy("a chair")[0], UNK);
        // Long text is truncated, empty text is all padding, and nothing panics.
        assert_eq!(encode_lossy(&"giraffe ".repeat(100)), vec![UNK; PROMPT_LEN]);
        assert_eq!(encode_lossy(" ?! "), vec![PAD; PROMPT_LEN]);
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

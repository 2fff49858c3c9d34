//! Benchmarks: synthetic static (VSI-like) and dynamic (DSR-like) scenes with
//! configurable appearance shortcuts, and the batcher that turns samples into tensors.

pub mod batcher;
pub mod dynamic_scenes;
pub mod features;
pub mod static_scenes;
mod synthetic;
pub mod vocab;

pub use batcher::{GeoBatch, GeoBatcher};

use crate::benchmark::{subtasks, Subtask};
use crate::config::{Bench, DataConfig, DataSource};
use crate::model::ModelDims;

/// The version of the synthetic scene generators. Bump it whenever the same config
/// generates different scenes: it is part of every synthetic run's id, so stored
/// runs of the old scenes are not taken for finished runs of the new ones.
/// 2: the static arc's radius is drawn per scene (was a fixed 3 m).
/// 3: the static room's wall gap is random at every shortcut strength (was 0.5 m at 1).
pub const SYNTHETIC_VERSION: u32 = 3;

/// Which split to generate. The splits differ in their shortcut strength
/// (`data.shortcut.train` / `data.shortcut.eval`) and in their random streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Eval,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Choice(usize),
    Number(f32),
}

/// Values per prompt word in [`Sample::grounding`]: x, z, dx, dz and a has-target flag.
pub const GROUNDING_WIDTH: usize = 5;

/// At most this many options in a multiple-choice question.
pub const MAX_OPTIONS: usize = 4;

/// One question about one scene, already tokenized.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index into the benchmark's subtask list.
    pub subtask: usize,
    /// Vision tokens, `n_vision x VISION_CHANNELS`, row-major, token order (t, h, w).
    pub vision: Vec<f32>,
    /// Raw geometry (point-map) tokens, `n_geometry x GEOMETRY_CHANNELS`, order (t, h, w).
    pub geometry: Vec<f32>,
    /// Prompt token ids, exactly `vocab::PROMPT_LEN` long, padded with `vocab::PAD`.
    pub prompt: Vec<u32>,
    /// Number of options for multiple choice, 0 for numerical questions.
    pub num_options: usize,
    pub answer: Answer,
    /// The question in words, for people reading predictions.
    pub question: String,
    pub options: Vec<String>,
    /// Where each prompt word's object stands and how it moves, for the auxiliary
    /// grounding targets (`model.grounding`, `model.grounding_motion`): `PROMPT_LEN x`
    /// [`GROUNDING_WIDTH`] of (x, z, dx, dz, 1) for a word that names exactly one object
    /// of the scene (its floor position in the first frame and its floor displacement
    /// over the clip, zero in a static scene) and zeros for every other word; empty
    /// when the data do not say (precomputed features).
    pub grounding: Vec<f32>,
}

/// A generated split.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub bench: Bench,
    pub subtasks: &'static [Subtask],
    pub samples: Vec<Sample>,
    pub frames: usize,
    pub vision_grid: [usize; 2],
    pub geometry_grid: [usize; 2],
    pub vision_channels: usize,
    pub geometry_channels: usize,
    /// How many leading vision channels one-hot encode an object category named
    /// by a prompt word ([`vocab::CATEGORIES`] order); 0 for precomputed features.
    pub category_channels: usize,
    /// The benchmark's own question type of each sample, for real data (VSI-Bench
    /// keeps relative direction's easy/medium/hard levels apart, and its score folds them).
    pub question_types: Option<Vec<String>>,
    /// A SHA-256 prefix the run's manifest keeps. For precomputed features it covers
    /// `meta.json`, `questions.jsonl` and every features file, as they are read; for
    /// generated data, every sample's tokens, prompt, answer and grounding targets, so
    /// two machines can tell whether they trained on the same questions.
    pub fingerprint: Option<String>,
}

impl Dataset {
    pub fn n_vision(&self) -> usize {
        self.frames * self.vision_grid[0] * self.vision_grid[1]
    }
    pub fn n_geometry(&self) -> usize {
        self.frames * self.geometry_grid[0] * self.geometry_grid[1]
    }

    /// At most `n` questions, every k-th, so each subtask keeps about its share (a
    /// learning curve's held-out slice).
    pub fn spread_slice(&self, n: usize) -> Dataset {
        let stride = self.samples.len().div_ceil(n.max(1)).max(1);
        let keep: Vec<usize> = (0..self.samples.len()).step_by(stride).take(n).collect();
        Dataset {
            samples: keep.iter().map(|&i| self.samples[i].clone()).collect(),
            question_types: self.question_types.as_ref().map(|q| keep.iter().map(|&i| q[i].clone()).collect()),
            ..self.clone()
        }
    }
}

/// SHA-256 over the samples' contents, bit for bit (floats by their bits, so a
/// last-place difference in generation shows), as a 16-hex-digit prefix.
fn samples_fingerprint(samples: &[Sample]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut bytes: Vec<u8> = Vec::new();
    for s in samples {
        bytes.clear();
        let mut put = |v: u64| bytes.extend_from_slice(&v.to_le_bytes());
        put(s.subtask as u64);
        put(s.num_options as u64);
        match s.answer {
            Answer::Choice(i) => put(i as u64),
            Answer::Number(x) => put(1 << 32 | u64::from(x.to_bits())),
        }
        for floats in [&s.vision, &s.geometry, &s.grounding] {
            bytes.extend_from_slice(&(floats.len() as u64).to_le_bytes());
            bytes.extend(floats.iter().flat_map(|x| x.to_bits().to_le_bytes()));
        }
        bytes.extend(s.prompt.iter().flat_map(|t| t.to_le_bytes()));
        hasher.update(&bytes);
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The split a config describes: generated, or loaded from precomputed features.
pub fn load(cfg: &DataConfig, split: Split) -> Result<Dataset, features::FeatureError> {
    match cfg.source {
        DataSource::Synthetic => {
            let mut data = generate(cfg, split);
            data.fingerprint = Some(samples_fingerprint(&data.samples));
            Ok(data)
        }
        DataSource::Features => {
            let dir = match split {
                Split::Train => &cfg.features.train,
                Split::Eval => &cfg.features.eval,
            };
            let set = features::load(std::path::Path::new(dir))?;
            if set.data.bench != cfg.bench {
                return Err(features::FeatureError::Meta {
                    path: std::path::Path::new(dir).join("meta.json"),
                    key: "bench",
                    problem: format!("is {:?} but data.bench is {:?}", set.data.bench, cfg.bench),
                });
            }
            let mut data = set.data;
            if !cfg.subtasks.is_empty() {
                let keep = chosen_subtasks(cfg);
                let kept: Vec<bool> = data.samples.iter().map(|s| keep.contains(&s.subtask)).collect();
                retain_flagged(&mut data.samples, &kept);
                if let Some(types) = data.question_types.as_mut() {
                    retain_flagged(types, &kept);
                }
            }
            if data.samples.is_empty() {
                return Err(features::FeatureError::Empty {
                    path: std::path::Path::new(dir).join("questions.jsonl"),
                    detail: if cfg.subtasks.is_empty() { String::new() } else { format!(" of data.subtasks = {:?}", cfg.subtasks) },
                });
            }
            Ok(data)
        }
    }
}

/// Checks, before anything is trained or written, that a config's data can train and
/// be scored: for precomputed features, that both splits' `meta.json` agree with the
/// config and with each other, that every record is well formed and has its features
/// file, and that `data.subtasks` leaves questions in each split. No tensor is read.
pub fn check(cfg: &DataConfig) -> Result<(), features::FeatureError> {
    if cfg.source != DataSource::Features {
        return Ok(());
    }
    let keep = chosen_subtasks(cfg);
    let mut metas = Vec::new();
    for dir in [&cfg.features.train, &cfg.features.eval] {
        let dir = std::path::Path::new(dir);
        let meta = features::load_meta(dir)?;
        if meta.bench != cfg.bench {
            return Err(features::FeatureError::Meta {
                path: dir.join("meta.json"),
                key: "bench",
                problem: format!("is {:?} but data.bench is {:?}", meta.bench, cfg.bench),
            });
        }
        let subtasks = features::check_records(dir, &meta)?;
        let kept = subtasks.iter().filter(|k| keep.contains(k)).count();
        if kept == 0 {
            let detail = if cfg.subtasks.is_empty() {
                String::new()
            } else {
                format!(" of the subtasks data.subtasks = {:?} keeps ({} questions in all)", cfg.subtasks, subtasks.len())
            };
            return Err(features::FeatureError::Empty { path: dir.join("questions.jsonl"), detail });
        }
        metas.push((dir, meta));
    }
    features::check_splits(metas[0].0, &metas[0].1, metas[1].0, &metas[1].1)
}

/// Keeps the items whose flag is set; `question_types` runs parallel to `samples`,
/// so both are filtered by the same flags.
fn retain_flagged<T>(items: &mut Vec<T>, flags: &[bool]) {
    let mut flags = flags.iter();
    items.retain(|_| *flags.next().expect("one flag per item"));
}

/// Indices of the subtasks `data.subtasks` selects (all when it is empty), in the
/// benchmark's order. Keys are validated when the config resolves.
pub fn chosen_subtasks(cfg: &DataConfig) -> Vec<usize> {
    let all = subtasks(cfg.bench);
    (0..all.len()).filter(|&i| cfg.subtasks.is_empty() || cfg.subtasks.iter().any(|k| k == all[i].key)).collect()
}

/// Generates a synthetic split deterministically from `cfg.seed` and the split.
pub fn generate(cfg: &DataConfig, split: Split) -> Dataset {
    match cfg.bench {
        Bench::Static => synthetic::generate::<static_scenes::Rooms>(cfg, split),
        Bench::Dynamic => synthetic::generate::<dynamic_scenes::Clips>(cfg, split),
    }
}

/// The model dimensions a data config implies, without generating or reading any
/// question (precomputed features have theirs in the training split's `meta.json`).
pub fn model_dims(cfg: &DataConfig) -> Result<ModelDims, features::FeatureError> {
    let layout = match (cfg.source, cfg.bench) {
        (DataSource::Features, _) => features::load_meta(std::path::Path::new(&cfg.features.train))?.dataset(),
        (DataSource::Synthetic, Bench::Static) => synthetic::layout::<static_scenes::Rooms>(cfg),
        (DataSource::Synthetic, Bench::Dynamic) => synthetic::layout::<dynamic_scenes::Clips>(cfg),
    };
    Ok(ModelDims::of(&layout))
}

//! The kit both synthetic benchmarks are drawn with: vectors, the camera and the
//! renderer, objects and the box around them, questions, the random streams, and
//! [`generate`], the loop that draws a split's samples for either benchmark.
//!
//! A benchmark ([`super::static_scenes`], [`super::dynamic_scenes`]) says how one of
//! its scenes and a question about it are drawn ([`Scenes`]); the kit seeds each
//! sample, re-draws scenes that cannot support the question, and assembles the split.

mod camera;
mod faults;
mod question;
mod random;
mod render;
mod vector;
mod world;

pub(super) use camera::Camera;
pub(super) use faults::corrupt_geometry;
pub(super) use question::{grounding, Question};
pub(super) use random::{gaussian3, uniform_deg};
pub(super) use render::{render, shows, Seen};
pub(super) use vector::Vec3;
pub(super) use world::{Body, Enclosure, CATEGORY_COUNT, CATEGORY_SIZES};

use rand_chacha::ChaCha8Rng;

use super::{Dataset, Sample, Split};
use crate::benchmark::subtasks;
use crate::config::{Bench, DataConfig};

/// A synthetic benchmark: its token layout and how one of its samples is drawn.
pub(super) trait Scenes {
    const BENCH: Bench;
    /// `static` or `dynamic`, for the messages that refuse a config.
    const NAME: &'static str;
    /// The fewest frames a scene needs, and why, in words.
    const MIN_FRAMES: (usize, &'static str);
    /// Mixed into every sample's seed, so that the benchmarks draw different streams.
    const SALT: u64;
    const VISION_CHANNELS: usize;
    const GEOMETRY_CHANNELS: usize;

    /// One scene and a question of `subtask` about it, at shortcut strength `s`;
    /// `None` asks for a new scene.
    fn draw(cfg: &DataConfig, s: f64, subtask: usize, rng: &mut ChaCha8Rng) -> Option<Sample>;
}

/// Generates a split of `S` deterministically from `cfg.seed` and the split.
pub(super) fn generate<S: Scenes>(cfg: &DataConfig, split: Split) -> Dataset {
    assert!(
        (3..=CATEGORY_COUNT).contains(&cfg.objects),
        "{} scenes need 3..=12 objects (distinct categories), got {}",
        S::NAME,
        cfg.objects
    );
    assert!(cfg.frames >= S::MIN_FRAMES.0, "{} scenes need {}", S::NAME, S::MIN_FRAMES.1);
    let s = shortcut_strength(cfg, split);
    let chosen = super::chosen_subtasks(cfg);
    let samples = (0..split_size(cfg, split))
        .map(|i| {
            let mut rng = random::sample_rng(cfg.seed, split, S::SALT, i);
            let subtask = chosen[i % chosen.len()];
            redraw_until(subtask, || S::draw(cfg, s, subtask, &mut rng))
        })
        .collect();
    Dataset { samples, ..layout::<S>(cfg) }
}

/// The split `cfg` describes for `S`, before any sample is drawn.
pub(super) fn layout<S: Scenes>(cfg: &DataConfig) -> Dataset {
    Dataset {
        bench: S::BENCH,
        subtasks: subtasks(S::BENCH),
        samples: Vec::new(),
        frames: cfg.frames,
        vision_grid: cfg.vision_grid,
        geometry_grid: cfg.geometry_grid,
        vision_channels: S::VISION_CHANNELS,
        category_channels: CATEGORY_COUNT,
        geometry_channels: S::GEOMETRY_CHANNELS,
        question_types: None,
        fingerprint: None,
    }
}

/// Scenes are re-drawn until a question can be posed; a config where that keeps
/// failing (e.g. a 1x1 grid with many objects) is rejected loudly instead of looping.
fn redraw_until(subtask: usize, mut attempt: impl FnMut() -> Option<Sample>) -> Sample {
    const MAX_ATTEMPTS: usize = 2000;
    (0..MAX_ATTEMPTS).find_map(|_| attempt()).unwrap_or_else(|| {
        panic!(
            "no answerable scene for subtask {subtask} after {MAX_ATTEMPTS} draws; \
             the grids may be too coarse for the number of objects"
        )
    })
}

fn split_size(cfg: &DataConfig, split: Split) -> usize {
    match split {
        Split::Train => cfg.train_size,
        Split::Eval => cfg.eval_size,
    }
}

fn shortcut_strength(cfg: &DataConfig, split: Split) -> f64 {
    let s = match split {
        Split::Train => cfg.shortcut.train,
        Split::Eval => cfg.shortcut.eval,
    };
    s.clamp(0.0, 1.0)
}

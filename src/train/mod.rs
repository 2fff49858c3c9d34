//! The training loop: Adam(W) with linear warmup then cosine or constant
//! learning rate, masking draws seeded per step, NaN/Inf detection.
//!
//! The loop is written by hand, not burn-train's learner: that one checkpoints only
//! after a whole epoch, and the paper's recipes are one epoch long, so an interrupted
//! run would start over (measured by `examples/learner_checkpoints.rs`). This loop
//! also writes a per-step `train.csv` and stops on a non-finite loss with the step.

pub mod schedule;

use std::path::PathBuf;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Optimizer as OptKind};
use crate::data::batcher::{BatchItem, GeoBatcher, QuestionCounts};
use crate::data::Dataset;
use crate::model::{GeoSr, ModelDims, Mode};

/// One row of `train.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub lr: f64,
    pub samples_per_s: f64,
    pub elapsed_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("loss became {loss} at step {step}")]
    NonFinite { step: usize, loss: f64 },
    #[error("checkpoint {0}")]
    Checkpoint(String),
}

/// Total optimizer steps of a run.
pub fn total_steps(config: &Config, train_len: usize) -> usize {
    if config.train.steps > 0 {
        config.train.steps
    } else {
        config.train.epochs * train_len.div_ceil(config.train.batch_size)
    }
}

pub fn batcher_for(config: &Config, data: &Dataset) -> GeoBatcher {
    GeoBatcher {
        n_vision: data.n_vision(),
        n_geometry: data.n_geometry(),
        vision_channels: data.vision_channels,
        geometry_channels: data.geometry_channels,
        gamma: config.model.mask.gamma,
        beta: config.model.mask.beta,
    }
}

/// Seed of the masking draws of sample `slot` of step `step`: a stable mix of the
/// run seed and position, so reruns draw the same masks.
fn mask_seed(run_seed: u64, step: usize, slot: usize) -> u64 {
    let mut x = run_seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in [step as u64, slot as u64] {
        x = (x ^ v).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 31;
    }
    x
}

/// Where and how often a run saves its training state, so an interrupted run
/// resumes from its last checkpoint instead of starting over.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub dir: PathBuf,
    /// Save every this many steps (and after the last step).
    pub every: usize,
}

/// The commit marker of a checkpoint: written last, atomically, after the model
/// and optimizer records, so a half-written checkpoint is never picked up.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    /// Steps already taken.
    next_step: usize,
    elapsed_s: f64,
}

impl Checkpoints {
    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The step a resumed run would start from, if a complete checkpoint exists.
    pub fn resume_step(&self) -> Option<usize> {
        self.read_state().map(|s| s.next_step)
    }

    fn read_state(&self) -> Option<CheckpointState> {
        serde_json::from_slice(&std::fs::read(self.state_path()).ok()?).ok()
    }

    fn save<B: AutodiffBackend, O: Optimizer<GeoSr<B>, B>>(
        &self,
        model: &GeoSr<B>,
        optim: &O,
        state: &CheckpointState,
    ) -> Result<(), TrainError> {
        let err = |e: String| TrainError::Checkpoint(format!("{}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(|e| err(e.to_string()))?;
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        // Records go to temporary names first; the rename makes each one appear whole.
        for (name, result) in [
            ("model", Recorder::<B>::record(&recorder, model.clone().into_record(), self.dir.join("model-partial"))),
            ("optim", Recorder::<B>::record(&recorder, optim.to_record(), self.dir.join("optim-partial"))),
        ] {
            result.map_err(|e| err(e.to_string()))?;
            std::fs::rename(self.dir.join(format!("{name}-partial.mpk")), self.dir.join(format!("{name}.mpk")))
                .map_err(|e| err(e.to_string()))?;
        }
        let json = serde_json::to_vec(state).expect("state serializes");
        crate::runs::write_atomic(&self.state_path(), &json).map_err(|e| err(e.to_string()))
    }

    fn load<B: AutodiffBackend, O: Optimizer<GeoSr<B>, B>>(
        &self,
        model: GeoSr<B>,
        optim: O,
        device: &B::Device,
    ) -> Result<(GeoSr<B>, O), TrainError> {
        let err = |e: String| TrainError::Checkpoint(format!("{}: {e}", self.dir.display()));
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        let record = Recorder::<B>::load(&recorder, self.dir.join("model"), device).map_err(|e| err(e.to_string()))?;
        let optim_record = Recorder::<B>::load(&recorder, self.dir.join("optim"), device).map_err(|e| err(e.to_string()))?;
        Ok((model.load_record(record), optim.load_record(optim_record)))
    }

    /// Removes the checkpoint (a finished or restarted run no longer needs it).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Trains a model on `data`, resuming from `checkpoints` when they hold a saved
/// state, and calling `on_step` for every logged step.
///
/// With several `devices`, each batch is split across them (data parallel): every
/// device runs its shard forward and backward, the gradients are summed on the
/// first device, and the optimizer steps there. Each shard's loss is scaled by the
/// whole batch's question counts, so the summed gradient is the batch's gradient
/// and the run follows the single-device one up to float rounding; `train.batch_size`
/// stays the global batch.
pub fn train<B: AutodiffBackend>(
    config: &Config,
    data: &Dataset,
    devices: &[B::Device],
    checkpoints: Option<&Checkpoints>,
    mut on_step: impl FnMut(&StepRow),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    let t = &config.train;
    let device = devices.first().expect("at least one training device");
    let model: GeoSr<B> = init_model(config, ModelDims::of(data), device);
    match t.optimizer {
        OptKind::Adam => {
            let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
            let optim = AdamConfig::new().with_weight_decay(decay).init::<B, GeoSr<B>>();
            fit(config, data, devices, model, optim, checkpoints, &mut on_step)
        }
        OptKind::Adamw => {
            let optim = AdamWConfig::new().with_weight_decay(t.weight_decay as f32).init::<B, GeoSr<B>>();
            fit(config, data, devices, model, optim, checkpoints, &mut on_step)
        }
    }
}

/// Builds a model from the run seed. The CPU backends draw initial weights from
/// one process-wide generator, so seeding and drawing happen under a lock: two
/// runs initialising at once in one process would otherwise interleave draws.
/// Burn draws a parameter's weights when it is first read, and a clone of an
/// unread parameter draws its own, so every parameter is read here: data-parallel
/// replicas are clones and must start from the same weights.
pub fn init_model<B: Backend>(config: &Config, dims: ModelDims, device: &B::Device) -> GeoSr<B> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    B::seed(device, config.train.seed);
    let model = GeoSr::new(&config.model, dims, device);
    model.visit(&mut ReadEveryParam);
    model
}

struct ReadEveryParam;

impl<B: Backend> ModuleVisitor<B> for ReadEveryParam {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// The sample order of an epoch: a permutation seeded by the run seed and the
/// epoch, so a resumed run sees the same batches as an uninterrupted one.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mask_seed(seed, epoch, usize::MAX)));
    order
}

fn fit<B: AutodiffBackend, O: Optimizer<GeoSr<B>, B>>(
    config: &Config,
    data: &Dataset,
    devices: &[B::Device],
    mut model: GeoSr<B>,
    mut optim: O,
    checkpoints: Option<&Checkpoints>,
    on_step: &mut impl FnMut(&StepRow),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    let t = &config.train;
    let device = &devices[0];
    let batcher = batcher_for(config, data);
    let total = total_steps(config, data.samples.len());
    let schedule = schedule::Schedule::new(t.schedule, t.lr, t.warmup_steps, total);
    let per_epoch = data.samples.len().div_ceil(t.batch_size).max(1);
    let mut first = 0;
    let mut elapsed_before = 0.0;
    if let Some(state) = checkpoints.and_then(Checkpoints::read_state) {
        (model, optim) = checkpoints.expect("state came from here").load(model, optim, device)?;
        first = state.next_step;
        elapsed_before = state.elapsed_s;
    }
    let started = Instant::now();
    let mut window = (Instant::now(), 0usize);
    let mut order = Vec::new();
    let mut order_epoch = usize::MAX;
    for step in first..total {
        let epoch = step / per_epoch;
        if epoch != order_epoch {
            order = epoch_order(data.samples.len(), t.seed, epoch);
            order_epoch = epoch;
        }
        let begin = (step % per_epoch) * t.batch_size;
        let end = (begin + t.batch_size).min(order.len());
        let items: Vec<BatchItem> = order[begin..end]
            .iter()
            .enumerate()
            .map(|(slot, &i)| BatchItem { sample: data.samples[i].clone(), mask_seed: Some(mask_seed(t.seed, step, slot)) })
            .collect();
        window.1 += items.len();
        let (loss_value, grads) = gradients(&model, &batcher, items, devices, t.number_weight);
        if !loss_value.is_finite() {
            return Err(TrainError::NonFinite { step, loss: loss_value });
        }
        let lr = schedule.lr(step);
        model = optim.step(lr, model, grads);
        let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        if step % t.log_every == 0 || step + 1 == total {
            let secs = window.0.elapsed().as_secs_f64().max(1e-9);
            on_step(&StepRow { step, epoch, loss: loss_value, lr, samples_per_s: window.1 as f64 / secs, elapsed_s });
            window = (Instant::now(), 0);
        }
        if let Some(c) = checkpoints {
            if (step + 1) % c.every.max(1) == 0 && step + 1 < total {
                c.save(&model, &optim, &CheckpointState { next_step: step + 1, elapsed_s })?;
            }
        }
    }
    Ok(model.valid())
}

/// The batch's loss and its gradients on the first device, from one shard of
/// `items` per device (see [`train`]).
fn gradients<B: AutodiffBackend>(
    model: &GeoSr<B>,
    batcher: &GeoBatcher,
    items: Vec<BatchItem>,
    devices: &[B::Device],
    number_weight: f64,
) -> (f64, GradientsParams) {
    // Shards divide by the whole batch's counts; a single batch already holds them.
    let counts = (devices.len() > 1).then(|| QuestionCounts::of(items.iter().map(|i| &i.sample)));
    let shard = |model: &GeoSr<B>, items: Vec<BatchItem>, device: &B::Device| {
        let batch = batcher.batch(items, device);
        let out = model.forward(&batch, Mode::Train);
        let loss = model.shard_loss(&out, &batch, number_weight, counts.unwrap_or(batch.counts));
        let value: f64 = loss.clone().into_scalar().elem();
        (value, GradientsParams::from_grads(loss.backward(), model))
    };
    if devices.len() == 1 {
        return shard(model, items, &devices[0]);
    }
    let size = items.len().div_ceil(devices.len());
    let mut items = items.into_iter();
    let shards: Vec<Vec<BatchItem>> = devices.iter().map(|_| items.by_ref().take(size).collect()).collect();
    let results: Vec<(f64, GradientsParams)> = std::thread::scope(|scope| {
        let running: Vec<_> = shards
            .into_iter()
            .zip(devices)
            .filter(|(items, _)| !items.is_empty())
            .map(|(items, device)| {
                let replica = model.clone().fork(device);
                scope.spawn(move || shard(&replica, items, device))
            })
            .collect();
        running.into_iter().map(|r| r.join().expect("a training shard panicked")).collect()
    });
    let mut sum = GradientsAccumulator::new();
    let mut loss = 0.0;
    for (value, grads) in results {
        loss += value;
        sum.accumulate(model, grads.to_device(&devices[0], model));
    }
    (loss, sum.grads())
}

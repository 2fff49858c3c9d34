//! The training loop: Adam(W) with linear warmup then cosine or constant
//! learning rate, masking draws (Eqs. 6-7) seeded per step, NaN/Inf detection.
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
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Optimizer as OptKind};
use crate::data::batcher::{GeoBatch, GeoBatcher, MaskedSample, Masking, QuestionCounts};
use crate::data::{Dataset, Sample};
use crate::model::{masking, GeoSr, ModelDims, Mode};

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
    #[error(
        "training diverged: the loss was {loss:.4e} at step {step}, {:.0} times the first step's {first:.4} \
         (limit {limit:.0}x); lower train.lr", loss / first
    )]
    Diverged { step: usize, loss: f64, first: f64, limit: f64 },
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

/// A sample plus the seed of its masking draws; `None` means no masking (evaluation).
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub sample: Sample,
    pub mask_seed: Option<u64>,
}

/// The data's batcher plus masking's rates: it draws each item's delta and random set
/// from the item's seed, so a training step is a pure function of its batch and runs
/// are reproducible.
#[derive(Debug, Clone)]
pub struct MaskingBatcher {
    pub batcher: GeoBatcher,
    /// gamma of Eq. 7: the share of vision tokens in M.
    pub gamma: f64,
    /// beta of Eq. 6: the probability that masking is enabled for a sample.
    pub beta: f64,
}

/// Evaluation never masks, so it batches with the data's batcher alone; this lets it
/// take the one a run trains with.
impl std::ops::Deref for MaskingBatcher {
    type Target = GeoBatcher;
    fn deref(&self) -> &GeoBatcher {
        &self.batcher
    }
}

impl<B: Backend> Batcher<B, BatchItem, GeoBatch<B>> for MaskingBatcher {
    fn batch(&self, items: Vec<BatchItem>, device: &B::Device) -> GeoBatch<B> {
        let n_vision = self.batcher.n_vision;
        let items = items
            .into_iter()
            .map(|item| MaskedSample {
                masking: item.mask_seed.map(|seed| draw_masking(seed, n_vision, self.gamma, self.beta)),
                sample: item.sample,
            })
            .collect();
        self.batcher.batch(items, device)
    }
}

/// One sample's delta (Eq. 6) and M (Eq. 7), from one stream and in that order: the order
/// runs have always drawn them in, so the same seed keeps giving the same masks.
fn draw_masking(seed: u64, n_vision: usize, gamma: f64, beta: f64) -> Masking {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let delta = masking::sample_delta(beta, &mut rng);
    Masking { delta, random_set: masking::sample_random_set(n_vision, gamma, &mut rng) }
}

pub fn batcher_for(config: &Config, data: &Dataset) -> MaskingBatcher {
    MaskingBatcher {
        batcher: GeoBatcher {
            n_vision: data.n_vision(),
            n_geometry: data.n_geometry(),
            vision_channels: data.vision_channels,
            geometry_channels: data.geometry_channels,
        },
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
///
/// A checkpoint is one folder, `step-<n>/`, holding `model.mpk`, `optim.mpk` and
/// `state.json` (the step, the elapsed time and a hash of each record). It is written
/// in full under a temporary name, flushed to disk, and renamed into place in one
/// step, so a process killed at any moment (or a full disk) leaves either the old
/// checkpoint or the new one, never a mix of the two; on load the hashes are checked
/// and a damaged checkpoint is passed over for the one before it.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub dir: PathBuf,
    /// Save every this many steps (and after the last step).
    pub every: usize,
}

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    /// Steps already taken.
    next_step: usize,
    elapsed_s: f64,
    /// The loss of the run's first step, the yardstick of divergence.
    first_loss: f64,
    /// [`shape_signature`] of the saved model (empty in checkpoints written before it was kept).
    #[serde(default)]
    model_shapes: String,
    /// SHA-256 of `model.mpk` and `optim.mpk`.
    model_sha256: String,
    optim_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to a new file and flushes it to disk, so a full disk is an error
/// here and not a short file later.
fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A checkpoint as read from disk, its records still encoded.
struct Loaded {
    state: CheckpointState,
    model: Vec<u8>,
    optim: Vec<u8>,
}

impl Checkpoints {
    fn generation(&self, step: usize) -> PathBuf {
        self.dir.join(format!("step-{step}"))
    }

    /// Complete checkpoint folders, newest first.
    fn generations(&self) -> Vec<(usize, PathBuf)> {
        let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                Some((name.strip_prefix("step-")?.parse().ok()?, e.path()))
            })
            .collect();
        found.sort_by_key(|g| std::cmp::Reverse(g.0));
        found
    }

    /// Reads one checkpoint folder, checking that its state names its own step and
    /// that each record's hash matches.
    fn read(step: usize, dir: &std::path::Path) -> Result<Loaded, String> {
        let state: CheckpointState = serde_json::from_slice(&std::fs::read(dir.join("state.json")).map_err(|e| e.to_string())?)
            .map_err(|e| format!("state.json: {e}"))?;
        if state.next_step != step {
            return Err(format!("state.json says step {}, the folder step {step}", state.next_step));
        }
        let model = std::fs::read(dir.join("model.mpk")).map_err(|e| format!("model.mpk: {e}"))?;
        let optim = std::fs::read(dir.join("optim.mpk")).map_err(|e| format!("optim.mpk: {e}"))?;
        if sha256_hex(&model) != state.model_sha256 || sha256_hex(&optim) != state.optim_sha256 {
            return Err("a record does not match its hash in state.json".into());
        }
        Ok(Loaded { state, model, optim })
    }

    /// The newest checkpoint that reads back whole; a damaged newer one is reported
    /// on stderr and passed over.
    fn newest(&self) -> Option<Loaded> {
        for (step, dir) in self.generations() {
            match Self::read(step, &dir) {
                Ok(loaded) => return Some(loaded),
                Err(why) => eprintln!("warning: checkpoint {} is damaged ({why}); trying an older one", dir.display()),
            }
        }
        None
    }

    /// The step a resumed run would start from, if a complete checkpoint exists.
    pub fn resume_step(&self) -> Option<usize> {
        self.generations().into_iter().find_map(|(step, dir)| Self::read(step, &dir).ok().map(|l| l.state.next_step))
    }

    fn save<B: AutodiffBackend, O: Optimizer<GeoSr<B>, B>>(
        &self,
        model: &GeoSr<B>,
        optim: &O,
        next_step: usize,
        elapsed_s: f64,
        first_loss: f64,
    ) -> Result<(), TrainError> {
        let err = |e: String| TrainError::Checkpoint(format!("{}: {e}", self.dir.display()));
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
        let model_bytes = Recorder::<B>::record(&recorder, model.clone().into_record(), ()).map_err(|e| err(e.to_string()))?;
        let optim_bytes = Recorder::<B>::record(&recorder, optim.to_record(), ()).map_err(|e| err(e.to_string()))?;
        let state = CheckpointState {
            next_step,
            elapsed_s,
            first_loss,
            model_shapes: shape_signature(model),
            model_sha256: sha256_hex(&model_bytes),
            optim_sha256: sha256_hex(&optim_bytes),
        };
        let partial = self.dir.join(format!(".partial-step-{next_step}"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| err(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            write_synced(&partial.join("model.mpk"), &model_bytes)?;
            write_synced(&partial.join("optim.mpk"), &optim_bytes)?;
            write_synced(&partial.join("state.json"), &serde_json::to_vec(&state).expect("state serializes"))?;
            let target = self.generation(next_step);
            if target.exists() {
                std::fs::remove_dir_all(&target)?;
            }
            std::fs::rename(&partial, &target)?;
            // The rename is durable once the folder that holds it is flushed.
            std::fs::File::open(&self.dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(err(e.to_string()));
        }
        // Older checkpoints are dropped only once the new one is in place.
        for (step, dir) in self.generations() {
            if step < next_step {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Ok(())
    }

    /// Decodes a checkpoint's records. A record that does not decode was written by a
    /// build whose model had other fields (e.g. before the fusion became one enum).
    #[allow(clippy::type_complexity)]
    fn decode<B: AutodiffBackend, O: Optimizer<GeoSr<B>, B>>(
        &self,
        loaded: Loaded,
        device: &B::Device,
    ) -> Result<(<GeoSr<B> as Module<B>>::Record, O::Record), String> {
        let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
        let record = Recorder::<B>::load(&recorder, loaded.model, device).map_err(|e| format!("model.mpk: {e}"))?;
        let optim_record = Recorder::<B>::load(&recorder, loaded.optim, device).map_err(|e| format!("optim.mpk: {e}"))?;
        Ok((record, optim_record))
    }

    /// Removes every checkpoint (a finished or restarted run no longer needs them).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loss this many times the first step's ends the run as diverged.
pub const DIVERGENCE_FACTOR: f64 = 1e3;
/// A run whose loss over its last tenth of steps averages this many times its first
/// step's loss has not learnt but diverged, even where no single step tripped.
pub const END_DIVERGENCE_FACTOR: f64 = 10.0;

/// The encoded weights of a trained model, as `model.mpk` keeps them (Burn's named
/// MessagePack, full precision), to be loaded with [`load_weights`].
pub fn weights_bytes<B: Backend>(model: &GeoSr<B>) -> Result<Vec<u8>, String> {
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
    Recorder::<B>::record(&recorder, model.clone().into_record(), ()).map_err(|e| e.to_string())
}

/// A model of `config`'s shape with the weights [`weights_bytes`] wrote.
pub fn load_weights<B: Backend>(config: &Config, dims: ModelDims, bytes: Vec<u8>, device: &B::Device) -> Result<GeoSr<B>, String> {
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
    let record = Recorder::<B>::load(&recorder, bytes, device).map_err(|e| e.to_string())?;
    Ok(GeoSr::new(&config.model, dims, device).load_record(record))
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
    on_step: impl FnMut(&StepRow),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    train_observed::<B>(config, data, devices, checkpoints, on_step, |_, _| {})
}

/// [`train`], also calling `on_eval(steps_done, model)` every `eval.every` steps and
/// after the last (never when it is 0), for learning curves. What `on_eval` does with
/// the model cannot change training: it gets the weights, not the optimizer.
pub fn train_observed<B: AutodiffBackend>(
    config: &Config,
    data: &Dataset,
    devices: &[B::Device],
    checkpoints: Option<&Checkpoints>,
    mut on_step: impl FnMut(&StepRow),
    mut on_eval: impl FnMut(usize, &GeoSr<B::InnerBackend>),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    let t = &config.train;
    let device = devices.first().expect("at least one training device");
    let model: GeoSr<B> = init_model(config, ModelDims::of(data), device);
    match t.optimizer {
        OptKind::Adam => {
            let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
            let optim = AdamConfig::new().with_weight_decay(decay).init::<B, GeoSr<B>>();
            fit(config, data, devices, model, optim, checkpoints, &mut on_step, &mut on_eval)
        }
        OptKind::Adamw => {
            let optim = AdamWConfig::new().with_weight_decay(t.weight_decay as f32).init::<B, GeoSr<B>>();
            fit(config, data, devices, model, optim, checkpoints, &mut on_step, &mut on_eval)
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

/// The shapes of a model's parameters, in visit order: a checkpoint saved from a model
/// of another shape (another build's, say) decodes into this one's record but cannot be
/// loaded into it, so resuming compares this first.
fn shape_signature<B: Backend>(model: &GeoSr<B>) -> String {
    struct Shapes(Vec<String>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(format!("{:?}", param.val().dims()));
        }
    }
    let mut shapes = Shapes(Vec::new());
    model.visit(&mut shapes);
    shapes.0.join(",")
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
    on_eval: &mut impl FnMut(usize, &GeoSr<B::InnerBackend>),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    let t = &config.train;
    let device = &devices[0];
    let batcher = batcher_for(config, data);
    let total = total_steps(config, data.samples.len());
    let schedule = schedule::Schedule::new(t.schedule, t.lr, t.warmup_steps, total);
    let per_epoch = data.samples.len().div_ceil(t.batch_size).max(1);
    let mut first = 0;
    let mut elapsed_before = 0.0;
    let mut first_loss = None;
    if let Some(c) = checkpoints {
        if let Some(loaded) = c.newest() {
            let state = loaded.state.clone();
            let decoded = if state.model_shapes == shape_signature(&model) {
                c.decode::<B, O>(loaded, device)
            } else {
                Err("its parameters have other shapes".to_string())
            };
            match decoded {
                Ok((record, optim_record)) => {
                    (first, elapsed_before, first_loss) = (state.next_step, state.elapsed_s, Some(state.first_loss));
                    model = model.load_record(record);
                    optim = optim.load_record(optim_record);
                }
                // Resuming is an optimisation: a checkpoint this build cannot read costs
                // the steps it saved, not the run.
                Err(why) => {
                    eprintln!("warning: checkpoint {} does not fit this build's model ({why}); training from step 0", c.dir.display());
                    c.clear();
                }
            }
        }
    }
    // The last tenth of the run's losses, for the end-of-run divergence check.
    let tail = (total / 10).max(1);
    let mut recent: std::collections::VecDeque<f64> = std::collections::VecDeque::with_capacity(tail);
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
        let first_loss = *first_loss.get_or_insert(loss_value);
        if loss_value > DIVERGENCE_FACTOR * first_loss.max(1e-6) {
            return Err(TrainError::Diverged { step, loss: loss_value, first: first_loss, limit: DIVERGENCE_FACTOR });
        }
        if recent.len() == tail {
            recent.pop_front();
        }
        recent.push_back(loss_value);
        if step + 1 == total && recent.len() == tail {
            let mean = recent.iter().sum::<f64>() / tail as f64;
            if mean > END_DIVERGENCE_FACTOR * first_loss.max(1e-6) {
                return Err(TrainError::Diverged { step, loss: mean, first: first_loss, limit: END_DIVERGENCE_FACTOR });
            }
        }
        let lr = schedule.lr(step);
        model = optim.step(lr, model, grads);
        let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        if step % t.log_every == 0 || step + 1 == total {
            let secs = window.0.elapsed().as_secs_f64().max(1e-9);
            on_step(&StepRow { step, epoch, loss: loss_value, lr, samples_per_s: window.1 as f64 / secs, elapsed_s });
            window = (Instant::now(), 0);
        }
        let every = config.eval.every;
        if every > 0 && ((step + 1) % every == 0 || step + 1 == total) {
            on_eval(step + 1, &model.valid());
        }
        if let Some(c) = checkpoints {
            if (step + 1) % c.every.max(1) == 0 && step + 1 < total {
                c.save(&model, &optim, step + 1, elapsed_s, first_loss)?;
            }
        }
    }
    Ok(model.valid())
}

/// The batch's loss and its gradients on the first device, from one shard of
/// `items` per device (see [`train`]).
fn gradients<B: AutodiffBackend>(
    model: &GeoSr<B>,
    batcher: &MaskingBatcher,
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

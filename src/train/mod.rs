//! The training loop: Adam(W) with linear warmup then cosine or constant
//! learning rate, masking draws seeded per step, NaN/Inf detection.
//!
//! The loop is written by hand for now because it must write a per-step
//! `train.csv` and stop on a non-finite loss with the step recorded.

pub mod schedule;

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Optimizer as OptKind};
use crate::data::batcher::{BatchItem, GeoBatcher};
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

/// Trains a fresh model on `data`, calling `on_step` for every logged step.
pub fn train<B: AutodiffBackend>(
    config: &Config,
    data: &Dataset,
    device: &B::Device,
    mut on_step: impl FnMut(&StepRow),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    let t = &config.train;
    B::seed(device, t.seed);
    let model: GeoSr<B> = GeoSr::new(&config.model, ModelDims::of(data), device);
    match t.optimizer {
        OptKind::Adam => {
            let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
            let optim = AdamConfig::new().with_weight_decay(decay).init::<B, GeoSr<B>>();
            fit(config, data, device, model, optim, &mut on_step)
        }
        OptKind::Adamw => {
            let optim = AdamWConfig::new().with_weight_decay(t.weight_decay as f32).init::<B, GeoSr<B>>();
            fit(config, data, device, model, optim, &mut on_step)
        }
    }
}

fn fit<B: AutodiffBackend, O: Optimizer<GeoSr<B>, B>>(
    config: &Config,
    data: &Dataset,
    device: &B::Device,
    mut model: GeoSr<B>,
    mut optim: O,
    on_step: &mut impl FnMut(&StepRow),
) -> Result<GeoSr<B::InnerBackend>, TrainError> {
    let t = &config.train;
    let batcher = batcher_for(config, data);
    let total = total_steps(config, data.samples.len());
    let schedule = schedule::Schedule::new(t.schedule, t.lr, t.warmup_steps, total);
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let mut order: Vec<usize> = Vec::new();
    let mut cursor = 0;
    let started = Instant::now();
    let mut window = (Instant::now(), 0usize);
    let per_epoch = data.samples.len().div_ceil(t.batch_size).max(1);
    for step in 0..total {
        if cursor >= order.len() {
            order = (0..data.samples.len()).collect();
            order.shuffle(&mut rng);
            cursor = 0;
        }
        let end = (cursor + t.batch_size).min(order.len());
        let items: Vec<BatchItem> = order[cursor..end]
            .iter()
            .enumerate()
            .map(|(slot, &i)| BatchItem { sample: data.samples[i].clone(), mask_seed: Some(mask_seed(t.seed, step, slot)) })
            .collect();
        cursor = end;
        window.1 += items.len();
        let batch = batcher.batch(items, device);
        let out = model.forward(&batch, Mode::Train);
        let loss = model.loss(&out, &batch);
        let loss_value: f64 = loss.clone().into_scalar().elem();
        if !loss_value.is_finite() {
            return Err(TrainError::NonFinite { step, loss: loss_value });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = schedule.lr(step);
        model = optim.step(lr, model, grads);
        if step % t.log_every == 0 || step + 1 == total {
            let secs = window.0.elapsed().as_secs_f64().max(1e-9);
            on_step(&StepRow {
                step,
                epoch: step / per_epoch,
                loss: loss_value,
                lr,
                samples_per_s: window.1 as f64 / secs,
                elapsed_s: started.elapsed().as_secs_f64(),
            });
            window = (Instant::now(), 0);
        }
    }
    Ok(model.valid())
}

//! The measurement behind geosr's own training loop (README, "Known limits"):
//! what burn-train 0.21's `SupervisedTraining` keeps when a one-epoch run, the
//! paper's recipe length, stops part-way.
//!
//! A small regression model trains for one epoch of 100 iterations with burn-train's
//! file checkpointer. The run is interrupted at iteration 90, as a job killed near its
//! end would be, and the program counts what the checkpoint folder then holds and how
//! many iterations a relaunch must take to finish.
//!
//! `cargo run --release --example learner_checkpoints`

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use burn::backend::{Autodiff, Flex};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::record::CompactRecorder;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    InferenceStep, Interrupter, Learner, RegressionOutput, SupervisedTraining, TrainOutput, TrainStep,
};

const ITERATIONS: usize = 100;
const STOP_AT: usize = 90;

static STEPS: AtomicUsize = AtomicUsize::new(0);
/// Whether this launch is the one to interrupt.
static ARMED: AtomicBool = AtomicBool::new(true);
static INTERRUPTER: OnceLock<Interrupter> = OnceLock::new();

#[derive(Module, Debug)]
struct Net<B: Backend> {
    linear: Linear<B>,
}

#[derive(Clone, Debug)]
struct Pair<B: Backend> {
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
}

#[derive(Clone)]
struct PairBatcher;

impl<B: Backend> Batcher<B, [f32; 2], Pair<B>> for PairBatcher {
    fn batch(&self, items: Vec<[f32; 2]>, device: &B::Device) -> Pair<B> {
        let n = items.len();
        let x: Vec<f32> = items.iter().map(|i| i[0]).collect();
        let y: Vec<f32> = items.iter().map(|i| i[1]).collect();
        Pair {
            x: Tensor::<B, 1>::from_floats(x.as_slice(), device).reshape([n, 1]),
            y: Tensor::<B, 1>::from_floats(y.as_slice(), device).reshape([n, 1]),
        }
    }
}

impl<B: Backend> Net<B> {
    fn regress(&self, batch: Pair<B>) -> RegressionOutput<B> {
        let output = self.linear.forward(batch.x);
        let err = output.clone() - batch.y.clone();
        let loss = (err.clone() * err).mean().reshape([1]);
        RegressionOutput::new(loss, output, batch.y)
    }
}

impl<B: AutodiffBackend> TrainStep for Net<B> {
    type Input = Pair<B>;
    type Output = RegressionOutput<B>;

    fn step(&self, batch: Pair<B>) -> TrainOutput<RegressionOutput<B>> {
        if STEPS.fetch_add(1, Ordering::SeqCst) + 1 == STOP_AT && ARMED.load(Ordering::SeqCst) {
            INTERRUPTER.get().expect("set before launch").stop(Some("stopped at 90%"));
        }
        let out = self.regress(batch);
        TrainOutput::new(self, out.loss.backward(), out)
    }
}

impl<B: Backend> InferenceStep for Net<B> {
    type Input = Pair<B>;
    type Output = RegressionOutput<B>;

    fn step(&self, batch: Pair<B>) -> RegressionOutput<B> {
        self.regress(batch)
    }
}

type Train = Autodiff<Flex>;

fn launch(dir: &std::path::Path, interrupter: Interrupter) {
    let device = Default::default();
    let items: Vec<[f32; 2]> = (0..ITERATIONS).map(|i| [i as f32 / 100.0, 2.0 * i as f32 / 100.0]).collect();
    let train = DataLoaderBuilder::<Train, _, _>::new(PairBatcher).batch_size(1).build(InMemDataset::new(items.clone()));
    let valid = DataLoaderBuilder::<Flex, _, _>::new(PairBatcher).batch_size(1).build(InMemDataset::new(items));
    let model = Net::<Train> { linear: LinearConfig::new(1, 1).init(&device) };
    let learner = Learner::new(model, AdamConfig::new().init(), 1e-2);
    SupervisedTraining::new(dir, train, valid)
        .num_epochs(1)
        .with_file_checkpointer(CompactRecorder::new())
        .with_interrupter(interrupter)
        .launch(learner);
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("learner-checkpoints-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let interrupter = INTERRUPTER.get_or_init(Interrupter::new).clone();

    launch(&dir, interrupter.clone());
    let taken = STEPS.swap(0, Ordering::SeqCst);
    let saved = files_in(&dir.join("checkpoint"));
    println!("interrupted run: {taken} of {ITERATIONS} iterations taken, {saved} checkpoint files written");

    // The only resume point the learner offers is an epoch number; with nothing saved
    // the relaunch starts the epoch over.
    interrupter.reset();
    ARMED.store(false, Ordering::SeqCst);
    launch(&dir, interrupter);
    let again = STEPS.load(Ordering::SeqCst);
    let saved = files_in(&dir.join("checkpoint"));
    println!("relaunch: {again} iterations to finish one epoch of {ITERATIONS}; {saved} checkpoint files after it");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Training: resuming from checkpoints, non-finite losses, determinism.

mod common;

use burn::backend::{Autodiff, Flex};
use geosr::config::Config;
use geosr::data::{self, Split};
use geosr::eval;
use geosr::train::{self, batcher_for, Checkpoints};

/// Burn's autodiff and CPU backends keep process-wide state (the weight generator,
/// the autodiff graph bookkeeping); two trainings in parallel threads of one process
/// are not reproducible, so these tests take turns. geosr itself trains one run per
/// process and runs sweeps in parallel as separate processes.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn tiny() -> Config {
    let mut c = Config::default();
    c.data.train_size = 48;
    c.data.eval_size = 24;
    c.data.frames = 1;
    c.data.vision_grid = [3, 3];
    c.data.geometry_grid = [2, 2];
    c.train.batch_size = 8;
    c.train.steps = 9;
    c.train.warmup_steps = 2;
    c.train.checkpoint_every = 2;
    c
}

fn scores(c: &Config, model: &geosr::model::GeoSr<Flex>) -> Vec<(f64, f64)> {
    let data = data::generate(&c.data, Split::Eval);
    eval::predict(model, &data, &batcher_for(c, &data), 16, &Default::default())
        .into_iter()
        .map(|p| (p.prediction, p.score))
        .collect()
}

/// Trains `c` with checkpoints and panics at step 5, as a killed process stops.
fn killed_at_step_5(c: &Config, data: &data::Dataset, ck: &Checkpoints) -> std::thread::Result<Result<geosr::model::GeoSr<Flex>, train::TrainError>> {
    let device = Default::default();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train::train::<Autodiff<Flex>>(c, data, std::slice::from_ref(&device), Some(ck), |r| {
            if r.step == 5 {
                panic!("killed");
            }
        })
    }))
}

#[test]
fn an_interrupted_run_resumes_to_the_same_model() {
    let _turn = turn();
    let c = tiny();
    let data = data::generate(&c.data, Split::Train);
    let device = Default::default();
    let mut straight_rows = Vec::new();
    let straight = train::train::<Autodiff<Flex>>(&c, &data, std::slice::from_ref(&device), None, |r| straight_rows.push(r.clone())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ck = Checkpoints { dir: dir.path().join("checkpoint"), every: 2 };
    // Interrupt at step 5: the last complete checkpoint holds steps 0-3.
    let interrupted = killed_at_step_5(&c, &data, &ck);
    assert!(interrupted.is_err(), "{:?}", interrupted.as_ref().map(|r| r.as_ref().err().map(|e| e.to_string())));
    assert_eq!(ck.resume_step(), Some(4));
    let mut resumed_rows = Vec::new();
    let resumed = train::train::<Autodiff<Flex>>(&c, &data, std::slice::from_ref(&device), Some(&ck), |r| resumed_rows.push(r.clone())).unwrap();
    assert_eq!(resumed_rows.first().map(|r| r.step), Some(4), "training restarts at the checkpoint");
    let losses = |rows: &[geosr::train::StepRow]| rows.iter().map(|r| (r.step, r.loss)).collect::<Vec<_>>();
    assert_eq!(losses(&resumed_rows), losses(&straight_rows[4..]), "same batches, masks and optimizer state");
    assert_eq!(scores(&c, &resumed), scores(&c, &straight));
}

#[test]
fn a_checkpoint_of_another_model_shape_is_passed_over() {
    let _turn = turn();
    let c = tiny();
    let data = data::generate(&c.data, Split::Train);
    let device = Default::default();
    let straight = train::train::<Autodiff<Flex>>(&c, &data, std::slice::from_ref(&device), None, |_| {}).unwrap();

    // A checkpoint, whole and with valid hashes, of a model without geometry: what an
    // older build whose model had other fields leaves behind.
    let dir = tempfile::tempdir().unwrap();
    let ck = Checkpoints { dir: dir.path().join("checkpoint"), every: 2 };
    let mut other = tiny();
    other.model.fusion = geosr::config::FusionKind::None;
    other.model.geometry = geosr::config::GeometryKind::None;
    other.model.mask.kind = geosr::config::MaskKind::None;
    let interrupted = killed_at_step_5(&other, &data, &ck);
    assert!(interrupted.is_err());
    assert_eq!(ck.resume_step(), Some(4));
    let mut rows = Vec::new();
    let model = train::train::<Autodiff<Flex>>(&c, &data, std::slice::from_ref(&device), Some(&ck), |r| rows.push(r.clone())).unwrap();
    assert_eq!(rows.first().map(|r| r.step), Some(0), "training starts over");
    assert_eq!(scores(&c, &model), scores(&c, &straight));
}

#[test]
fn a_diverging_run_reports_the_step() {
    let _turn = turn();
    let mut c = tiny();
    c.train.lr = 1e30;
    c.train.warmup_steps = 0;
    let data = data::generate(&c.data, Split::Train);
    match train::train::<Autodiff<Flex>>(&c, &data, &[Default::default()], None, |_| {}) {
        Err(train::TrainError::NonFinite { step, loss }) => {
            assert!(step >= 1 && step < 9, "{step}");
            assert!(!loss.is_finite());
        }
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("lr 1e30 should diverge"),
    }
}


/// Data parallel training splits each batch across devices and sums the shards'
/// gradients: on two replicas of the CPU device it must follow the single-device
/// run (same losses, same trained model) up to float rounding, also when a batch
/// does not split evenly.
#[test]
fn data_parallel_training_follows_the_single_device_run() {
    let _turn = turn();
    let mut c = tiny();
    c.train.batch_size = 7; // 48 samples: shards of 4 + 3, and 3 + 3 for the last batch
    c.train.log_every = 1;
    let data = data::generate(&c.data, Split::Train);
    let device: burn::backend::flex::FlexDevice = Default::default();
    let mut rows = (Vec::new(), Vec::new());
    let one = train::train::<Autodiff<Flex>>(&c, &data, &[device], None, |r| rows.0.push(r.loss)).unwrap();
    let two = train::train::<Autodiff<Flex>>(&c, &data, &[device, device], None, |r| rows.1.push(r.loss)).unwrap();
    assert_eq!(rows.0.len(), c.train.steps);
    for (step, (a, b)) in rows.0.iter().zip(&rows.1).enumerate() {
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "step {step}: loss {a} on one device, {b} on two");
    }
    for (i, (a, b)) in scores(&c, &one).into_iter().zip(scores(&c, &two)).enumerate() {
        assert!((a.0 - b.0).abs() < 1e-3 * a.0.abs().max(1.0), "eval question {i}: {a:?} vs {b:?}");
    }
}

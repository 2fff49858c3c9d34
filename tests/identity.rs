//! Run identity: keys that cannot change a run's numbers do not change its id, and
//! each rule that says so is checked here by training both configs and comparing
//! every prediction bit for bit. Keys that do change the numbers keep changing the id.

use burn::backend::{Autodiff, Flex};
use geosr::config::{Config, FusionKind, GeometryKind, MaskKind};
use geosr::data::{self, Split};
use geosr::eval::{self, Prediction};
use geosr::runs::{legacy_run_id, run_id};
use geosr::train::{self, batcher_for};

/// Burn's CPU backends keep process-wide state; trainings in one process take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny() -> Config {
    let mut c = Config::default();
    c.data.train_size = 48;
    c.data.eval_size = 40;
    c.data.frames = 1;
    c.data.vision_grid = [3, 3];
    c.data.geometry_grid = [2, 2];
    c.train.batch_size = 8;
    c.train.steps = 6;
    c.train.warmup_steps = 1;
    c
}

/// Every prediction of `c` trained from scratch, evaluated in batches of `eval_batch`.
fn predictions(c: &Config, eval_batch: usize) -> Vec<Prediction> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let train_data = data::generate(&c.data, Split::Train);
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = train::Checkpoints { dir: dir.path().join("checkpoint"), every: c.train.checkpoint_every };
    let model = train::train::<Autodiff<Flex>>(c, &train_data, &[Default::default()], Some(&checkpoints), |_| {}).unwrap();
    let eval_data = data::generate(&c.data, Split::Eval);
    eval::predict(&model, &eval_data, &batcher_for(c, &eval_data), eval_batch, &Default::default())
}

/// Asserts that `a` and `b` are one run: the same id, and the same predictions to the bit.
fn same_run(a: &Config, b: &Config) {
    assert_eq!(run_id(a), run_id(b));
    let (pa, pb) = (predictions(a, a.eval.batch_size), predictions(b, b.eval.batch_size));
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.prediction.to_bits(), y.prediction.to_bits(), "question {}: {x:?} vs {y:?}", x.index);
        assert_eq!((x.score, x.score_no_geometry, x.score_no_vision), (y.score, y.score_no_geometry, y.score_no_vision));
    }
}

#[test]
fn logging_and_checkpoint_cadence_do_not_change_a_run() {
    let a = tiny();
    let mut b = tiny();
    b.train.log_every = 5;
    b.train.checkpoint_every = 2;
    same_run(&a, &b);
}

/// Predictions do not depend on how many questions are evaluated at once (measured
/// on the CPU backend for a gated model and a QFormer one): eval.batch_size is inert.
#[test]
fn the_evaluation_batch_size_does_not_change_a_prediction() {
    for (mask, fusion) in [(MaskKind::Random, FusionKind::Gated), (MaskKind::Topk, FusionKind::GatedQformer)] {
        let mut a = tiny();
        (a.model.mask.kind, a.model.fusion) = (mask, fusion);
        let mut b = a.clone();
        b.eval.batch_size = 7;
        same_run(&a, &b);
        let one = predictions(&a, 1);
        let all = predictions(&a, 64);
        assert!(one.iter().zip(&all).all(|(x, y)| x.prediction.to_bits() == y.prediction.to_bits()), "{fusion:?}");
    }
}

#[test]
fn masking_keys_do_not_change_a_variant_that_does_not_mask() {
    let mut a = tiny();
    (a.model.mask.kind, a.model.fusion) = (MaskKind::None, FusionKind::Additive);
    let mut b = a.clone();
    (b.model.mask.gamma, b.model.mask.beta) = (0.3, 0.9);
    same_run(&a, &b);
    // With masking they are the run's settings.
    let (mut c, mut d) = (tiny(), tiny());
    c.model.mask.gamma = 0.3;
    d.model.mask.gamma = 0.6;
    assert_ne!(run_id(&c), run_id(&d));
}

#[test]
fn qformer_keys_do_not_change_a_model_without_one() {
    let a = tiny();
    let mut b = tiny();
    b.model.bottleneck_len = 3;
    b.model.fusion_heads = 1;
    same_run(&a, &b);
    let mut c = tiny();
    (c.model.mask.kind, c.model.fusion) = (MaskKind::Topk, FusionKind::GatedQformer);
    let mut d = c.clone();
    d.model.bottleneck_len = 3;
    assert_ne!(run_id(&c), run_id(&d));
}

#[test]
fn geometry_encoder_keys_do_not_change_a_model_without_geometry() {
    let mut a = tiny();
    (a.model.geometry, a.model.fusion, a.model.mask.kind) = (GeometryKind::None, FusionKind::None, MaskKind::None);
    let mut b = a.clone();
    b.model.geometry_channels = 4;
    b.model.mlp_ratio = 3;
    (b.data.geometry_noise, b.data.geometry_dropout, b.data.geometry_outliers) = (0.4, 0.3, 0.2);
    same_run(&a, &b);
    // Geometry tokens that are made but not fused (random masking, no fusion) are not read.
    let mut e = tiny();
    (e.model.fusion, e.model.mask.kind) = (FusionKind::None, MaskKind::Random);
    let mut f = e.clone();
    (f.data.geometry_noise, f.data.geometry_outliers) = (0.4, 0.2);
    same_run(&e, &f);
    // With geometry, the encoder's width is part of the model.
    let mut c = tiny();
    c.model.geometry_channels = 4;
    assert_ne!(run_id(&c), run_id(&tiny()));
}

/// The constant gate is read by `gated_fixed` alone.
#[test]
fn the_constant_gate_is_part_of_a_gated_fixed_run_only() {
    let a = tiny();
    let mut b = tiny();
    b.model.gate_alpha = 0.2;
    same_run(&a, &b);
    let mut c = tiny();
    c.model.fusion = FusionKind::GatedFixed;
    let mut d = c.clone();
    d.model.gate_alpha = 0.2;
    assert_ne!(run_id(&c), run_id(&d));
    let (pc, pd) = (predictions(&c, 16), predictions(&d, 16));
    assert!(pc.iter().zip(&pd).any(|(x, y)| x.prediction != y.prediction), "the gate's constant changed nothing");
}

/// Configs that set no inert key away from the value it had when it was added keep the
/// id they had before the rule (so stored runs are found); one that did is found under
/// its legacy id. Learning curves on by default (eval.every 256) rename no run.
#[test]
fn ids_of_configs_at_their_defaults_are_unchanged() {
    let mut c = tiny();
    (c.eval.every, c.eval.curve_size) = (0, 512);
    assert_eq!(run_id(&c), legacy_run_id(&c));
    assert_eq!(run_id(&tiny()), run_id(&c), "curves on by default changed the id");
    let mut d = tiny();
    d.train.log_every = 5;
    assert_eq!(run_id(&d), run_id(&c));
    assert_ne!(legacy_run_id(&d), run_id(&d));
}

/// Weight decay is part of an Adam run (an L2 term on its gradients): a run with it
/// predicts differently and has another id.
#[test]
fn weight_decay_changes_an_adam_run() {
    let a = tiny();
    let mut b = tiny();
    b.train.weight_decay = 0.5;
    assert_ne!(run_id(&a), run_id(&b));
    let (pa, pb) = (predictions(&a, 16), predictions(&b, 16));
    assert!(pa.iter().zip(&pb).any(|(x, y)| x.prediction != y.prediction), "weight decay changed nothing");
}

/// Generated data carry a fingerprint of their contents (the manifest keeps it), so two
/// machines can tell whether they trained on the same questions.
#[test]
fn generated_data_carry_a_fingerprint_of_their_contents() {
    let c = tiny();
    let fingerprint = |c: &Config, split| data::load(&c.data, split).unwrap().fingerprint.expect("generated data have one");
    let train = fingerprint(&c, Split::Train);
    assert!(train.len() == 16 && train.chars().all(|ch| ch.is_ascii_hexdigit()), "{train}");
    assert_eq!(train, fingerprint(&c, Split::Train), "generation is deterministic");
    assert_ne!(train, fingerprint(&c, Split::Eval));
    let mut other = c.clone();
    other.data.seed += 1;
    assert_ne!(train, fingerprint(&other, Split::Train), "other scenes, another fingerprint");
    let mut noisier = c.clone();
    noisier.data.geometry_noise *= 1.5;
    assert_ne!(train, fingerprint(&noisier, Split::Train), "the same questions with other geometry tokens");
}

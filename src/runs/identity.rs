//! Run identity: a run's id is a short hash of what can change its numbers.
//!
//! The canonical form is the resolved config with every key that cannot change a
//! result put back to its default: how often a run logs or checkpoints, the
//! evaluation batch size (predictions do not depend on it on the CPU backends,
//! `tests/identity.rs`), the masking ratio and probability of a variant that does not
//! mask, and the bottleneck and fusion-head keys of a model without a QFormer branch.
//! It is serialized to JSON with sorted keys, without the `output` section (where
//! results go does not change what a run computes), so key order and formatting of
//! the source files never change the id. Synthetic runs also hash the generator's
//! version ([`crate::data::SYNTHETIC_VERSION`]): a new generator means new runs.
//!
//! Putting inert keys back to their defaults (rather than leaving them out) keeps the
//! ids of every run stored before this rule existed whenever those keys held their
//! defaults; a run stored under the older rule with another value is still found by
//! [`legacy_run_id`].

use sha2::{Digest, Sha256};

use crate::config::{Config, DataSource, FusionKind, GeometryKind, MaskKind};

/// The id of the run a config describes (10 hex digits).
pub fn run_id(config: &Config) -> String {
    legacy_run_id(&canonical(config))
}

/// ([`run_id`], [`legacy_run_id`]) of a config, hashing once when they agree.
pub fn run_ids(config: &Config) -> (String, String) {
    let c = canonical(config);
    let id = legacy_run_id(&c);
    let legacy = if c == *config { id.clone() } else { legacy_run_id(config) };
    (id, legacy)
}

/// The id the same config had before inert keys were canonicalized; equal to
/// [`run_id`] unless the config sets an inert key away from its default.
pub fn legacy_run_id(config: &Config) -> String {
    let mut value = serde_json::to_value(config).expect("config serializes");
    for (section, key, neutral) in ADDED_KEYS {
        let table = value.get_mut(section).and_then(|v| v.as_object_mut());
        if let Some(table) = table {
            if table.get(*key).is_some_and(|v| *v == neutral()) {
                table.remove(*key);
            }
        }
    }
    if let Some(map) = value.as_object_mut() {
        map.remove("output");
        if config.data.source == DataSource::Synthetic {
            map.insert("synthetic_version".into(), crate::data::SYNTHETIC_VERSION.into());
        }
    }
    let canonical = serde_json::to_string(&value).expect("json serializes");
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// (section, key, the value at which the key changes nothing) of config keys added
/// after the first runs were stored: left out of the hash at that value, so those
/// runs keep their ids.
type AddedKey = (&'static str, &'static str, fn() -> serde_json::Value);
const ADDED_KEYS: &[AddedKey] = &[
    ("train", "number_weight", || serde_json::json!(1.0)),
    ("data", "subtasks", || serde_json::json!([])),
    ("model", "grounding", || serde_json::json!(0.0)),
    ("model", "gate_alpha", || serde_json::json!(0.5)),
    ("data", "geometry_dropout", || serde_json::json!(0.0)),
    ("data", "geometry_outliers", || serde_json::json!(0.0)),
    ("eval", "every", || serde_json::json!(0)),
    ("eval", "curve_size", || serde_json::json!(512)),
    ("model", "grounding_motion", || serde_json::json!(false)),
    ("model", "geometry_cues", || serde_json::json!("none")),
];

/// Keys that never change a run, whatever else the config says: where results go, how
/// often a run logs, checkpoints or scores its learning curve, the evaluation batch.
/// [`canonical`] puts them back to their defaults; names of overridden experiments
/// leave them out, so `GEOSR_TRAIN__CHECKPOINT_EVERY` in a shell renames nothing.
pub fn never_changes_a_run(key: &str) -> bool {
    key.starts_with("output.")
        || ["train.log_every", "train.checkpoint_every", "eval.batch_size", "eval.every", "eval.curve_size"].contains(&key)
}

/// `config` with every key that cannot change its run's numbers at its default.
/// Each rule follows from what [`crate::model::GeoSr::new`] builds and what the
/// training loop reads: a key only lands here when no code path of this config reads it.
pub fn canonical(config: &Config) -> Config {
    let defaults = Config::default();
    let mut c = config.clone();
    c.train.log_every = defaults.train.log_every;
    c.train.checkpoint_every = defaults.train.checkpoint_every;
    c.eval.batch_size = defaults.eval.batch_size;
    // At the values they had when they were added (ADDED_KEYS leaves them out there),
    // not at today's defaults: turning curves on by default must not rename every run.
    c.eval.every = 0;
    c.eval.curve_size = 512;
    let m = &mut c.model;
    if m.mask.kind == MaskKind::None {
        m.mask.gamma = defaults.model.mask.gamma;
        m.mask.beta = defaults.model.mask.beta;
    }
    let uses_geometry = m.geometry != GeometryKind::None && (m.fusion != FusionKind::None || m.mask.kind == MaskKind::Topk);
    let has_qformer = uses_geometry && (m.fusion.has_qformer() || m.mask.kind == MaskKind::Topk);
    if !has_qformer {
        m.bottleneck_len = defaults.model.bottleneck_len;
        m.fusion_heads = defaults.model.fusion_heads;
    }
    if m.fusion != FusionKind::GatedFixed {
        m.gate_alpha = defaults.model.gate_alpha;
    }
    // The alignment MLPs (Eqs. 1, 4, 11, 13) exist only where geometry is used.
    if !uses_geometry {
        m.mlp_ratio = defaults.model.mlp_ratio;
        m.geometry_cues = defaults.model.geometry_cues;
        // Nor are the geometry tokens read. Their noise and faults are drawn last in each
        // sample, from its own stream, so the questions and vision tokens do not move.
        c.data.geometry_noise = defaults.data.geometry_noise;
        c.data.geometry_dropout = defaults.data.geometry_dropout;
        c.data.geometry_outliers = defaults.data.geometry_outliers;
    }
    // No encoder to size: no geometry, or precomputed tokens whose width is the data's.
    if matches!(m.geometry, GeometryKind::None | GeometryKind::Features) {
        m.geometry_channels = defaults.model.geometry_channels;
    }
    c
}

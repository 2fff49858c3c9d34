//! Checks that the schema's types cannot express: ranges and combinations of
//! keys that describe no model of the paper.

use super::schema::{Config, FusionKind, GeometryKind, MaskKind};
use super::ConfigError;

/// Validates a config. `source_of(key)` names the layer that set a key, so the
/// error points at the file or flag a user has to edit.
pub fn check(config: &Config, source_of: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    let fail = |key: &str, value: String, expected: &str| {
        Err(ConfigError::Invalid {
            origin: source_of(key),
            key: key.to_string(),
            value,
            expected: expected.to_string(),
        })
    };
    let m = &config.model;
    for (key, v) in [("model.mask.gamma", m.mask.gamma), ("model.mask.beta", m.mask.beta), ("model.gate_alpha", m.gate_alpha)] {
        if !(0.0..=1.0).contains(&v) || v.is_nan() {
            return fail(key, v.to_string(), "a number in [0, 1]");
        }
    }
    if m.bottleneck_len == 0 {
        return fail("model.bottleneck_len", "0".into(), "at least 1 bottleneck token (L_B >= 1)");
    }
    if m.fusion != FusionKind::None && m.geometry == GeometryKind::None {
        return fail(
            "model.fusion",
            serde_json::to_string(&m.fusion).expect("an enum serializes"),
            "\"none\" when model.geometry = \"none\" (there are no geometry tokens to fuse)",
        );
    }
    if m.mask.kind == MaskKind::Topk {
        if m.geometry == GeometryKind::None {
            return fail(
                "model.mask.kind",
                "\"topk\"".into(),
                "\"none\" or \"random\" when model.geometry = \"none\" (top-k relevance comes from geometry tokens, Eq. 9)",
            );
        }
        if !m.fusion.has_qformer() && m.fusion != FusionKind::None {
            return fail(
                "model.mask.kind",
                "\"topk\"".into(),
                "a QFormer branch for top-k masking (Eqs. 8-10): set model.fusion to \"qformer\", \"gated_qformer\" or \"none\"",
            );
        }
    }
    let b = &config.model.backbone;
    let (depth, width, heads) = b.resolved();
    if depth == 0 || width == 0 || heads == 0 {
        return fail("model.backbone", format!("depth {depth}, width {width}, heads {heads}"), "positive sizes");
    }
    if width % heads != 0 {
        return fail("model.backbone.heads", heads.to_string(), &format!("a divisor of the width {width}"));
    }
    if m.fusion_heads == 0 || width % m.fusion_heads != 0 {
        return fail("model.fusion_heads", m.fusion_heads.to_string(), &format!("a positive divisor of the width {width}"));
    }
    if m.geometry_channels == 0 {
        return fail("model.geometry_channels", "0".into(), "at least 1 channel");
    }
    let d = &config.data;
    if d.source == super::schema::DataSource::Features {
        for (key, v) in [("data.features.train", &d.features.train), ("data.features.eval", &d.features.eval)] {
            if v.is_empty() {
                return fail(key, "\"\"".into(), "a folder of precomputed features when data.source = \"features\"");
            }
        }
    }
    for (key, v) in [("data.shortcut.train", d.shortcut.train), ("data.shortcut.eval", d.shortcut.eval)] {
        if !(0.0..=1.0).contains(&v) || v.is_nan() {
            return fail(key, v.to_string(), "a number in [0, 1]");
        }
    }
    for (key, v) in [
        ("data.train_size", d.train_size),
        ("data.eval_size", d.eval_size),
        ("data.frames", d.frames),
        ("data.objects", d.objects),
        ("train.batch_size", config.train.batch_size),
        ("eval.batch_size", config.eval.batch_size),
        ("train.log_every", config.train.log_every),
        ("train.checkpoint_every", config.train.checkpoint_every),
    ] {
        if v == 0 {
            return fail(key, "0".into(), "a positive integer");
        }
    }
    if d.objects < 3 {
        return fail("data.objects", d.objects.to_string(), "at least 3 objects (relative questions need a reference and two candidates)");
    }
    for (key, g) in [("data.vision_grid", d.vision_grid), ("data.geometry_grid", d.geometry_grid)] {
        if g[0] == 0 || g[1] == 0 {
            return fail(key, format!("[{}, {}]", g[0], g[1]), "two positive sizes [H, W]");
        }
    }
    if !(config.train.lr > 0.0 && config.train.lr.is_finite()) {
        return fail("train.lr", config.train.lr.to_string(), "a positive learning rate");
    }
    let known = crate::benchmark::subtasks(d.bench);
    if let Some(bad) = d.subtasks.iter().find(|k| !known.iter().any(|s| s.key == k.as_str())) {
        let keys: Vec<&str> = known.iter().map(|s| s.key).collect();
        return fail("data.subtasks", format!("{bad:?}"), &format!("subtask keys of the {:?} benchmark: {}", d.bench, keys.join(", ")));
    }
    let w = config.train.number_weight;
    if !(w >= 0.0 && w.is_finite()) {
        return fail("train.number_weight", w.to_string(), "a finite weight >= 0");
    }
    let g = m.grounding;
    if !(g >= 0.0 && g.is_finite()) {
        return fail("model.grounding", g.to_string(), "a finite weight >= 0");
    }
    if g > 0.0 && d.source == super::schema::DataSource::Features {
        return fail(
            "model.grounding",
            g.to_string(),
            "0 when data.source = \"features\" (precomputed features say nothing of where the named objects stand)",
        );
    }
    if m.grounding_motion && g == 0.0 {
        return fail("model.grounding_motion", "true".into(), "false when model.grounding = 0 (no grounding heads to extend)");
    }
    if m.grounding_motion && d.bench != super::schema::Bench::Dynamic {
        return fail("model.grounding_motion", "true".into(), "false unless data.bench = \"dynamic\" (a static scene has no motion to ground)");
    }
    if m.geometry_cues == super::schema::GeometryCues::Appearance && d.source == super::schema::DataSource::Features {
        return fail(
            "model.geometry_cues",
            "\"appearance\"".into(),
            "\"none\" or \"position\" when data.source = \"features\" (precomputed vision tokens have no category channels to copy)",
        );
    }
    let wd = config.train.weight_decay;
    if !(wd >= 0.0 && wd.is_finite()) {
        return fail("train.weight_decay", wd.to_string(), "a finite L2 penalty >= 0 (0 = none)");
    }
    if m.mlp_ratio == 0 {
        return fail("model.mlp_ratio", "0".into(), "a positive integer (the alignment MLPs' hidden width is mlp_ratio x C)");
    }
    let noise = d.geometry_noise;
    if !(noise >= 0.0 && noise.is_finite()) {
        return fail("data.geometry_noise", noise.to_string(), "a finite standard deviation >= 0 (metres)");
    }
    for (key, p) in [("data.geometry_dropout", d.geometry_dropout), ("data.geometry_outliers", d.geometry_outliers)] {
        if !(0.0..=1.0).contains(&p) || p.is_nan() {
            return fail(key, p.to_string(), "a probability in [0, 1] (0 = off)");
        }
    }
    if config.eval.every > 0 && config.eval.curve_size == 0 {
        return fail("eval.curve_size", "0".into(), "a positive number of questions when eval.every > 0");
    }
    if config.train.epochs == 0 && config.train.steps == 0 {
        return fail("train.epochs", "0".into(), "at least 1 epoch (or set train.steps)");
    }
    Ok(())
}

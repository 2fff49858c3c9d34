//! Whether a stored run can be trusted: a run marked done must still hold what a
//! table needs, and one trained by other code is stale.

use super::{Manifest, RunDir};
use crate::config::RunSpec;
use crate::eval::EvalRow;

/// Whether a finished run was trained by other code than this binary: its training
/// code's fingerprint differs (the whole source's, for runs from before that was
/// kept), or it predates fingerprints. Edits to tables and plots alone leave runs fresh.
pub fn is_stale(manifest: &Manifest) -> bool {
    let now = super::manifest::Build::current();
    manifest.provenance.build.as_ref().is_none_or(|b| b.training_fingerprint() != now.training_fingerprint())
}

/// Checks that a run marked done has everything a table needs, and returns its
/// evaluation rows, or what is wrong. A run that recorded its files' hashes is checked
/// against them (`config.toml`, `eval.csv`, `predictions.csv`: any of them missing or
/// changed since it finished); an older run's config must re-hash to its id. Either way
/// eval.csv must read back with its averages and a finite score in every row.
pub fn verify_done(spec: &RunSpec, dir: &RunDir, manifest: &Manifest) -> Result<Vec<EvalRow>, String> {
    let read = |name: &str| std::fs::read(dir.path.join(name)).map_err(|e| format!("{name}: {e}"));
    let eval_bytes = read("eval.csv")?;
    if manifest.files.is_empty() {
        check_config_id(spec, &String::from_utf8_lossy(&read("config.toml")?))?;
    } else {
        check_files(dir, manifest)?;
    }
    let rows: Vec<EvalRow> = csv::Reader::from_reader(eval_bytes.as_slice())
        .deserialize()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("eval.csv: {e}"))?;
    if !rows.iter().any(|r| r.subtask.starts_with("avg_")) {
        return Err("eval.csv has no average rows (cut short?)".into());
    }
    if let Some(bad) = rows.iter().find(|r| !r.score.is_finite()) {
        return Err(format!("eval.csv: `{}` scores {}", bad.subtask, bad.score));
    }
    Ok(rows)
}

/// Every file a run recorded a hash of (`config.toml`, `eval.csv`, `predictions.csv`)
/// is there and unchanged: the claims need predictions.csv, and a run that lost it is
/// not done.
pub fn check_files(dir: &RunDir, manifest: &Manifest) -> Result<(), String> {
    for (name, hash) in &manifest.files {
        let bytes = std::fs::read(dir.path.join(name)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{name} is missing (the run wrote it: its manifest has its hash)"),
            _ => format!("{name}: {e}"),
        })?;
        if *hash != super::manifest::sha256_hex(&bytes) {
            return Err(format!("{name} changed after the run wrote it (its hash differs from the manifest's)"));
        }
    }
    Ok(())
}

/// A stored config must describe the run it is stored with.
fn check_config_id(spec: &RunSpec, config_text: &str) -> Result<(), String> {
    let (id, legacy) = config_ids(config_text)?;
    if id != spec.id && legacy != spec.id && legacy != spec.legacy_id {
        return Err(format!("config.toml describes run {id}, not {}", spec.id));
    }
    Ok(())
}

/// The run id (and the id under the rule before inert keys were canonicalized) that a
/// stored `config.toml` describes.
pub fn config_ids(config_text: &str) -> Result<(String, String), String> {
    // A config this version wrote reads directly; one stored before a key existed is
    // read the way configs are layered, with that key's default, as its id was computed.
    let config = match toml::from_str::<crate::config::Config>(config_text) {
        Ok(config) => config,
        Err(_) => {
            use crate::config::layers::{resolve, Layer};
            let stored = Layer::toml_text("config.toml", config_text).map_err(|e| e.to_string())?;
            resolve(&[Layer::defaults(), stored]).map_err(|e| e.to_string())?.config
        }
    };
    Ok(super::run_ids(&config))
}

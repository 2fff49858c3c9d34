//! Run identity, provenance and the on-disk run store.

pub mod find;
pub mod manifest;
pub mod store;

pub use manifest::{Manifest, Provenance, Status};
pub use find::find_run;
pub use store::{write_atomic, RunDir, RunLock};

use sha2::{Digest, Sha256};

use crate::config::Config;

/// Short hash of the canonical resolved config. The canonical form is the config
/// serialized to JSON with sorted keys, without the `output` section (where results
/// go does not change what a run computes), so key order and formatting of the
/// source files never change the id. Synthetic runs also hash the generator's
/// version ([`crate::data::SYNTHETIC_VERSION`]): a new generator means new runs.
/// Keys added after runs were stored are left out while they hold the value that
/// computes what the runs computed before ([`ADDED_KEYS`]), so those runs keep their ids.
pub fn run_id(config: &Config) -> String {
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
        if config.data.source == crate::config::DataSource::Synthetic {
            map.insert("synthetic_version".into(), crate::data::SYNTHETIC_VERSION.into());
        }
    }
    let canonical = serde_json::to_string(&value).expect("json serializes");
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// (section, key, the value at which the key changes nothing) of config keys added
/// after the first runs were stored.
const ADDED_KEYS: &[(&str, &str, fn() -> serde_json::Value)] = &[
    ("train", "number_weight", || serde_json::json!(1.0)),
    ("data", "subtasks", || serde_json::json!([])),
    ("model", "grounding", || serde_json::json!(0.0)),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Format { path: std::path::PathBuf, message: String },
    #[error("the working tree has uncommitted changes and --require-clean is set:\n{0}")]
    Dirty(String),
    #[error("no run `{query}`: not a run folder (one with manifest.json or config.toml), and no run id under {} starts with it", searched.display())]
    RunNotFound { query: String, searched: std::path::PathBuf },
    #[error("run id `{query}` is ambiguous: {} runs under {} have an id starting with it (give more of the id, or the run folder):\n{}", matches.len(), searched.display(), matches.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    AmbiguousRun { query: String, searched: std::path::PathBuf, matches: Vec<std::path::PathBuf> },
}

//! Run identity, provenance and the on-disk run store.

pub mod events;
pub mod find;
pub mod identity;
pub mod manifest;
pub mod query;
pub mod source;
pub mod status;
pub mod store;
pub mod tags;

pub use manifest::{Manifest, Provenance, Status};
pub use find::find_run;
pub use identity::{legacy_run_id, run_id, run_ids};
pub use status::{is_stale, verify_done};
pub use store::{run_dir, write_atomic, RunDir, RunLock};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Format { path: std::path::PathBuf, message: String },
    #[error("the working tree has uncommitted changes and --require-clean is set:\n{0}")]
    Dirty(String),
    #[error("no run `{query}`: not a run folder (one with manifest.json or config.toml), and no run id in {} starts with it", searched.display())]
    RunNotFound { query: String, searched: std::path::PathBuf },
    #[error("run id `{query}` is ambiguous: {} runs under {} have an id starting with it (give more of the id, or the run folder):\n{}", matches.len(), searched.display(), matches.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    AmbiguousRun { query: String, searched: std::path::PathBuf, matches: Vec<std::path::PathBuf> },
}

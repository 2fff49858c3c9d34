//! Finding a stored run from what a person types: the path of a run folder, or a
//! run id (or a unique prefix of one) in `<results>/store/` or, for runs stored
//! before the store, under `<results>/runs/`.

use std::path::{Path, PathBuf};

use super::{RunDir, StoreError};

/// The run `query` names. A run folder wins over an id, so a folder named like
/// a hex prefix is still reachable by its path.
pub fn find_run(results_dir: &Path, query: &str) -> Result<RunDir, StoreError> {
    let dir = RunDir { path: PathBuf::from(query) };
    if dir.manifest_path().is_file() || dir.config_path().is_file() {
        return Ok(dir);
    }
    let searched = results_dir.to_path_buf();
    let not_found = || StoreError::RunNotFound { query: query.to_string(), searched: searched.clone() };
    let prefix = query.to_ascii_lowercase();
    if prefix.is_empty() || prefix.len() > 10 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let mut matches: Vec<PathBuf> = Vec::new();
    for run in read_dirs(&super::store::store_root(results_dir))? {
        let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(&prefix) {
            matches.push(run);
        }
    }
    for experiment in read_dirs(&results_dir.join("runs"))? {
        for run in read_dirs(&experiment)? {
            // Links into the store were found there.
            if std::fs::symlink_metadata(&run).is_ok_and(|m| m.file_type().is_symlink()) {
                continue;
            }
            // Folder names are `<label>-s<seed>-<id>`; labels may contain '-', ids never do.
            let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.rsplit('-').next().is_some_and(|id| id.starts_with(&prefix)) {
                matches.push(run);
            }
        }
    }
    matches.sort();
    match matches.len() {
        0 => Err(not_found()),
        1 => Ok(RunDir { path: matches.remove(0) }),
        _ => Err(StoreError::AmbiguousRun { query: query.to_string(), searched, matches }),
    }
}

/// The sub-folders of `dir` (following links), sorted, leaving out hidden names (a
/// link being made under a temporary name); none when `dir` does not exist.
pub(super) fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path: dir.to_path_buf(), source }),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        // Follows links: an experiment's entries link into the store.
        if entry.path().is_dir() && !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

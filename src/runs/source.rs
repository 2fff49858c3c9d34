//! The fingerprint of the source a geosr binary is built from: a hash over the
//! files that go into it (`src/`, `Cargo.toml`, `Cargo.lock`, `build.rs`). The build
//! script embeds it in the binary, and a run compares it with the working tree's, so
//! a binary left over from before an edit is noticed. Shared with `build.rs`, so it
//! may use only the standard library and `sha2`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The files whose contents make the binary, relative to the package root, sorted.
pub fn source_files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &root.join("src"), &mut files);
    for name in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        if root.join(name).is_file() {
            files.push(PathBuf::from(name));
        }
    }
    files.sort();
    files
}

/// 12 hex digits of SHA-256 over each source file's path and contents; `None` when
/// `root` has no `src/`.
pub fn source_hash(root: &Path) -> Option<String> {
    hash_files(root, &source_files(root))
}

/// Source that reads stored runs and reports on them (tables, claims, plots, HTML,
/// listings, progress lines) but never runs between a config and its scores. A run's
/// settings are all in its id, so these files and the config are the only ways code
/// can differ without changing a run's numbers; the rest counts as training code.
pub const REPORTING_ONLY: &[&str] = &[
    "src/report/",
    "src/archive.rs",
    "src/cli/archive.rs",
    "src/cli/docs.rs",
    "src/cli/inspect.rs",
    "src/cli/live.rs",
    "src/cli/report.rs",
    "src/cli/runs.rs",
    "src/launch/progress.rs",
];

/// The fingerprint of the source that turns a run's config into its numbers: as
/// [`source_hash`], without the [`REPORTING_ONLY`] files, so mending a table or a
/// plot does not mark every stored run as trained by other code.
pub fn training_hash(root: &Path) -> Option<String> {
    let files: Vec<PathBuf> = source_files(root)
        .into_iter()
        .filter(|f| {
            let f = f.to_string_lossy().replace('\\', "/");
            !REPORTING_ONLY.iter().any(|r| if r.ends_with('/') { f.starts_with(r) } else { f == *r })
        })
        .collect();
    hash_files(root, &files)
}

fn hash_files(root: &Path, files: &[PathBuf]) -> Option<String> {
    if !files.iter().any(|f| f.starts_with("src")) {
        return None;
    }
    let mut hasher = Sha256::new();
    for file in files {
        let bytes = std::fs::read(root.join(file)).ok()?;
        // Forward slashes, so the hash does not depend on the platform's separator.
        hasher.update(file.to_string_lossy().replace('\\', "/").as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Some(hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect())
}

/// 12 hex digits of SHA-256 over one file's contents.
pub fn file_hash(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(Sha256::digest(&bytes).iter().take(6).map(|b| format!("{b:02x}")).collect())
}

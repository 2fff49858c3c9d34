//! The run store: `results/runs/<experiment>/<label>-s<seed>-<id>/`. Every file
//! is written to a temporary sibling and renamed into place, so a reader (or a
//! sweep restarted after `kill -9`) never sees a half-written file.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Manifest, StoreError};

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // Temp files are private (0600); results are meant to be read by others too
    // (a shared results folder on a cluster), so give them a file's usual mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// One run's folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(results_dir: &Path, experiment: &str, dir_name: &str) -> RunDir {
        RunDir { path: results_dir.join("runs").join(experiment).join(dir_name) }
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn manifest_path(&self) -> PathBuf {
        self.path.join("manifest.json")
    }
    pub fn train_csv(&self) -> PathBuf {
        self.path.join("train.csv")
    }
    pub fn eval_csv(&self) -> PathBuf {
        self.path.join("eval.csv")
    }

    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
        write_atomic(&self.manifest_path(), &json)
    }

    /// The stored manifest, or `None` when the run never started.
    pub fn read_manifest(&self) -> Result<Option<Manifest>, StoreError> {
        let path = self.manifest_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Format { path, message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Takes the run's lock, or returns `None` when another live process holds it.
    /// The kernel drops the lock when its holder exits, even after `kill -9`, so a
    /// restarted sweep never waits on a dead run, and two sweeps (or a sweep and a
    /// Slurm task) never train the same run into the same folder at once.
    pub fn try_lock(&self) -> Result<Option<RunLock>, StoreError> {
        let path = self.path.join(".lock");
        let io = |source| StoreError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&self.path).map_err(io)?;
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        if lock_exclusive(&file) {
            // Only the lock holder writes here, so temp files left by an earlier holder
            // killed mid-write (between write_atomic's create and rename) are dead.
            remove_stale_temps(&self.path);
            Ok(Some(RunLock { _file: file }))
        } else {
            Ok(None)
        }
    }

    /// Whether a live process holds the run's lock right now.
    pub fn is_locked(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.path.join(".lock")) else { return false };
        // Taking the lock ourselves is the only portable test; it is released at once.
        !lock_exclusive(&file)
    }

    /// Serializes rows to CSV and writes them atomically.
    pub fn write_csv<T: serde::Serialize>(&self, path: &Path, rows: &[T]) -> Result<(), StoreError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in rows {
            w.serialize(row).map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })?;
        }
        let bytes = w.into_inner().map_err(|e| StoreError::Format { path: path.to_path_buf(), message: e.to_string() })?;
        write_atomic(path, &bytes)
    }

    /// Reads a CSV file of this run (e.g. `eval.csv`) into rows.
    pub fn read_csv<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<Vec<T>, StoreError> {
        let format = |e: csv::Error| StoreError::Format { path: path.to_path_buf(), message: e.to_string() };
        let mut reader = csv::Reader::from_path(path).map_err(format)?;
        reader.deserialize().collect::<Result<_, _>>().map_err(format)
    }
}

/// Deletes `write_atomic`'s leftover temp files in `dir` and its subfolders
/// (`checkpoint/`). Best effort: a file that cannot be removed is left for the next run.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_stale_temps(&path);
        } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Held while a run trains; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

#[cfg(unix)]
fn lock_exclusive(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor we own; no memory is shared with the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn lock_exclusive(_: &std::fs::File) -> bool {
    true
}

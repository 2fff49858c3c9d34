//! The run store. A run's files live in `results/store/<id>/`, keyed by the run id
//! alone, so a run two experiments share (Table 4's row (a) and Table 5's centre
//! point) is trained once; each experiment that plans it has an entry
//! `results/runs/<experiment>/<label>-s<seed>-<id>` linking to it (a relative symbolic
//! link, so a results folder can be moved whole). Runs stored before this layout sit
//! in their experiment's folder itself and are found there.
//!
//! Every file is written to a temporary sibling and renamed into place, so a reader
//! (or a sweep restarted after `kill -9`) never sees a half-written file.

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

/// The variable that puts the run store elsewhere than `<results>/store` (set by
/// `--store DIR`, and inherited by a sweep's run processes and Slurm tasks).
pub const STORE_ENV: &str = "GEOSR_STORE";

/// The folder that holds every run's folder: `$GEOSR_STORE` when set (a store on
/// shared storage, which several working directories, nodes and people use at once;
/// the runs' locks keep each run to one trainer), else `<results>/store`.
pub fn store_root(results_dir: &Path) -> PathBuf {
    match std::env::var_os(STORE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => results_dir.join("store"),
    }
}

/// Where the run of `id` keeps its files.
pub fn store_path(results_dir: &Path, id: &str) -> PathBuf {
    store_root(results_dir).join(id)
}

/// An experiment's entry for one of its runs.
pub fn entry_path(results_dir: &Path, experiment: &str, dir_name: &str) -> PathBuf {
    results_dir.join("runs").join(experiment).join(dir_name)
}

/// The folder of a planned run: its folder in the store, or, for a run stored before
/// the store existed, the experiment's own folder of that name (under the id or,
/// for a run stored under the older id rule, its legacy id). A run never trained
/// gets its store folder.
pub fn run_dir(spec: &crate::config::RunSpec) -> RunDir {
    let results = PathBuf::from(&spec.resolved.config.output.results_dir);
    let store = store_path(&results, &spec.id);
    if store.is_dir() {
        return RunDir { path: store };
    }
    let mut names = vec![spec.dir_name()];
    if spec.legacy_id != spec.id {
        names.push(format!("{}-s{}-{}", spec.label, spec.seed, spec.legacy_id));
    }
    for name in names {
        let entry = entry_path(&results, &spec.experiment, &name);
        // A real folder, not a link: a link would point into the store, checked above.
        if std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir()) {
            return RunDir { path: entry };
        }
    }
    RunDir { path: store }
}

/// Makes the experiment's entry for `spec` point at `dir` (its store folder), unless
/// the entry is that folder or already links there. The link appears whole: it is
/// made under a temporary name and renamed into place.
pub fn link_entry(spec: &crate::config::RunSpec, dir: &RunDir) -> Result<(), StoreError> {
    let results = PathBuf::from(&spec.resolved.config.output.results_dir);
    link(&results, &spec.experiment, &spec.dir_name(), dir)
}

/// Makes `<results>/runs/<experiment>/<dir_name>` point at `dir`; see [`link_entry`].
pub fn link(results: &Path, experiment: &str, dir_name: &str, dir: &RunDir) -> Result<(), StoreError> {
    let entry = entry_path(results, experiment, dir_name);
    let parent = entry.parent().expect("an entry has a folder");
    // One temporary name per entry, so one left by a killed process is replaced (or
    // removed) by the next that links this entry.
    let tmp = parent.join(format!(".tmp-link-{dir_name}"));
    let points_here = || std::fs::canonicalize(&entry).ok() == std::fs::canonicalize(&dir.path).ok();
    match std::fs::symlink_metadata(&entry) {
        // The run's own folder (stored before the store), or another run's: left alone.
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) if points_here() => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        _ => {}
    }
    let io = |source| StoreError::Io { path: entry.clone(), source };
    std::fs::create_dir_all(parent).map_err(io)?;
    // From runs/<experiment>/ up to the results folder, then into store/, so a results
    // folder moves whole; a store elsewhere (`--store`) is linked by its absolute path.
    let target = match dir.path.strip_prefix(results) {
        Ok(inside) if dir.path.is_relative() == results.is_relative() => Path::new("../..").join(inside),
        _ => std::path::absolute(&dir.path).map_err(io)?,
    };
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(&target, &tmp);
    #[cfg(not(unix))]
    let made = std::fs::write(&tmp, target.display().to_string());
    match made.and_then(|()| std::fs::rename(&tmp, &entry)) {
        Ok(()) => Ok(()),
        // Another process linked the same entry at the same moment.
        Err(_) if points_here() => Ok(()),
        Err(e) => Err(io(e)),
    }
}

impl RunDir {
    /// The entry `<results>/runs/<experiment>/<dir_name>` (a run's folder in the
    /// layout before the store, and the name its link has now).
    pub fn new(results_dir: &Path, experiment: &str, dir_name: &str) -> RunDir {
        RunDir { path: entry_path(results_dir, experiment, dir_name) }
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

    /// The SHA-256 of each result file a finished run leaves (see `Manifest::files`).
    pub fn result_hashes(&self) -> std::collections::BTreeMap<String, String> {
        ["config.toml", "eval.csv", "predictions.csv"]
            .into_iter()
            .filter_map(|name| Some((name.to_string(), super::manifest::sha256_hex(&std::fs::read(self.path.join(name)).ok()?))))
            .collect()
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

    /// Whether a live process holds the run's lock right now. On Linux this asks
    /// without taking the lock, so a status check never makes a sweep that starts
    /// the run at the same instant think someone else has it.
    pub fn is_locked(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.path.join(".lock")) else { return false };
        held_by_another(&file)
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

/// Moves a run's results aside into `history/<n>-<time>/` before it is trained again,
/// so no finished result is lost; returns the record the new manifest keeps.
pub fn archive(dir: &RunDir, previous: Option<&Manifest>, reason: String) -> Result<super::manifest::Rerun, StoreError> {
    let n = previous.map_or(0, |m| m.reruns.len()) + 1;
    let when = super::manifest::now_rfc3339();
    let name = format!("{n}-{}", when.replace(':', ""));
    let target = dir.path.join("history").join(&name);
    let io = |source| StoreError::Io { path: target.clone(), source };
    std::fs::create_dir_all(&target).map_err(io)?;
    // The live TensorBoard logs of the earlier attempts go too, or TensorBoard would
    // draw the old run and the new one as one.
    let logs = std::fs::read_dir(&dir.path)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("events.out.tfevents.")).collect())
        .unwrap_or_else(|_| Vec::new());
    for file in ["manifest.json", "config.toml", "train.csv", "curve.csv", "eval.csv", "predictions.csv", "model"].into_iter().map(String::from).chain(logs) {
        let from = dir.path.join(&file);
        if from.exists() {
            std::fs::rename(&from, target.join(&file)).map_err(io)?;
        }
    }
    Ok(super::manifest::Rerun {
        archived_to: format!("history/{name}"),
        previous_status: previous.map(|m| m.status),
        previous_ended: previous.and_then(|m| m.ended.clone()),
        previous_commit: previous.and_then(|m| m.provenance.build.as_ref().map(|b| b.short()).or(m.provenance.git_commit.clone())),
        reason,
        when,
    })
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

/// Waits for, then holds, an exclusive lock on `path` (created if need be), for a short
/// read-change-write of a file beside it (a run's tags). Dropping the file releases it,
/// as does the holder's death.
pub fn lock_blocking(path: &Path) -> Result<std::fs::File, StoreError> {
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io)?;
    if !wait_exclusive(&file) {
        return Err(io(std::io::Error::last_os_error()));
    }
    Ok(file)
}

/// Held while a run trains; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Open-file-description locks (Linux): held per open file, dropped when the holder
/// exits (even after `kill -9`), and testable without being taken.
#[cfg(target_os = "linux")]
fn ofd_lock(file: &std::fs::File, command: libc::c_int) -> Option<libc::flock> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: an all-zero flock is a valid value; the fields that matter are set below.
    let mut region: libc::flock = unsafe { std::mem::zeroed() };
    region.l_type = libc::F_WRLCK as libc::c_short;
    region.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl on a descriptor we own, with a pointer to a local flock.
    let ok = unsafe { libc::fcntl(file.as_raw_fd(), command, &mut region) } == 0;
    ok.then_some(region)
}

#[cfg(target_os = "linux")]
fn lock_exclusive(file: &std::fs::File) -> bool {
    ofd_lock(file, libc::F_OFD_SETLK).is_some()
}

#[cfg(target_os = "linux")]
fn wait_exclusive(file: &std::fs::File) -> bool {
    ofd_lock(file, libc::F_OFD_SETLKW).is_some()
}

#[cfg(target_os = "linux")]
fn held_by_another(file: &std::fs::File) -> bool {
    ofd_lock(file, libc::F_OFD_GETLK).is_some_and(|r| r.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn lock_exclusive(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor we own; no memory is shared with the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn wait_exclusive(file: &std::fs::File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor we own; no memory is shared with the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) == 0 }
}

/// Without a way to ask, the lock is taken and released at once.
#[cfg(all(unix, not(target_os = "linux")))]
fn held_by_another(file: &std::fs::File) -> bool {
    !lock_exclusive(file)
}

#[cfg(not(unix))]
fn lock_exclusive(_: &std::fs::File) -> bool {
    true
}

#[cfg(not(unix))]
fn wait_exclusive(_: &std::fs::File) -> bool {
    true
}

#[cfg(not(unix))]
fn held_by_another(_: &std::fs::File) -> bool {
    false
}

//! `manifest.json`: what a run is, where and from which code it ran, and how it ended.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub label: String,
    pub variant: String,
    pub seed: u64,
    pub run_id: String,
    pub status: Status,
    /// Why a run failed (or `None`).
    pub reason: Option<String>,
    /// The training step at which a run failed, when it failed while training.
    pub failed_step: Option<usize>,
    /// RFC 3339 UTC timestamps.
    pub started: Option<String>,
    pub ended: Option<String>,
    pub provenance: Provenance,
    /// The process that trained the run (with `provenance.host`), so a status can
    /// tell a live run from one whose process died.
    #[serde(default)]
    pub pid: Option<u32>,
    /// `JOBID_TASK` when the run ran as a Slurm array task.
    #[serde(default)]
    pub slurm_task: Option<String>,
    /// The step an interrupted run resumed from.
    #[serde(default)]
    pub resumed_from_step: Option<usize>,
    /// What the run cost (Table 6), once it finished.
    #[serde(default)]
    pub cost: Option<Cost>,
}

impl Manifest {
    /// A pending run's manifest: its identity and provenance, nothing yet about how it went.
    pub fn for_run(spec: &crate::config::RunSpec, provenance: Provenance) -> Manifest {
        Manifest {
            experiment: spec.experiment.clone(),
            label: spec.label.clone(),
            variant: spec.variant.clone(),
            seed: spec.seed,
            run_id: spec.id.clone(),
            status: Status::Pending,
            reason: None,
            failed_step: None,
            started: None,
            ended: None,
            provenance,
            pid: None,
            slurm_task: None,
            resumed_from_step: None,
            cost: None,
        }
    }
}

/// Table 6's figures for one run, measured the same way for every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub params: usize,
    pub train_seconds: f64,
    /// Wall time of the plain evaluation pass divided by its questions.
    pub infer_ms_per_sample: f64,
    /// Peak resident memory of the process during the run (CPU backends).
    pub peak_rss_bytes: Option<u64>,
    /// Peak memory the device's allocator reserved (CUDA), sampled at every
    /// logged training step and after evaluation; absent on CPU backends.
    #[serde(default)]
    pub peak_device_bytes: Option<u64>,
}

/// Resets the kernel's peak-RSS counter of this process, so the next
/// [`peak_rss_bytes`] covers only what follows (Linux; a no-op elsewhere).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size (VmHWM) of this process.
pub fn peak_rss_bytes() -> Option<u64> {
    read_proc("/proc/self/status", "VmHWM")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub git_dirty: bool,
    /// The patch of uncommitted changes (tracked and untracked files) when dirty.
    pub git_diff: Option<String>,
    pub geosr_version: String,
    pub burn_version: String,
    pub rustc_version: String,
    pub backend: String,
    pub device: String,
    pub host: String,
    pub os: String,
    pub cpu: String,
    pub cpu_cores: usize,
    pub memory_bytes: Option<u64>,
    /// The exact command line, shell-quoted.
    pub command: String,
}

/// Current time as RFC 3339 UTC, without pulling in a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days, H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Git state of the repository that holds `dir` (or none when it is not in one).
pub struct GitState {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub dirty: bool,
    pub diff: Option<String>,
}

/// Reads commit, branch and uncommitted changes with libgit2. Ignored files
/// (such as `results/runs/`) do not make a tree dirty.
pub fn git_state(dir: &std::path::Path) -> GitState {
    let Ok(repo) = git2::Repository::discover(dir) else {
        return GitState { commit: None, branch: None, dirty: false, diff: None };
    };
    let head = repo.head().ok();
    let commit = head.as_ref().and_then(|h| h.peel_to_commit().ok()).map(|c| c.id().to_string());
    let branch = head.as_ref().and_then(|h| h.shorthand().map(str::to_string));
    let tree = head.as_ref().and_then(|h| h.peel_to_tree().ok());
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true);
    let mut patch = String::new();
    if let Ok(diff) = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut opts)) {
        let _ = diff.print(git2::DiffFormat::Patch, |_, _, line| {
            if matches!(line.origin(), '+' | '-' | ' ') {
                patch.push(line.origin());
            }
            patch.push_str(&String::from_utf8_lossy(line.content()));
            true
        });
    }
    let dirty = !patch.is_empty();
    GitState { commit, branch, dirty, diff: dirty.then_some(patch) }
}

fn read_proc(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

impl Provenance {
    /// Collects provenance for a run on `backend`/`device`, started by this process.
    pub fn collect(backend: &str, device: &str) -> Provenance {
        let git = git_state(&std::env::current_dir().unwrap_or_else(|_| ".".into()));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".into());
        Provenance {
            git_commit: git.commit,
            git_branch: git.branch,
            git_dirty: git.dirty,
            git_diff: git.diff,
            geosr_version: env!("CARGO_PKG_VERSION").into(),
            burn_version: env!("GEOSR_BURN_VERSION").into(),
            rustc_version: env!("GEOSR_RUSTC_VERSION").into(),
            backend: backend.into(),
            device: device.into(),
            host,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu: read_proc("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
            cpu_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_bytes: read_proc("/proc/meminfo", "MemTotal")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024),
            command: std::env::args().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" "),
        }
    }
}

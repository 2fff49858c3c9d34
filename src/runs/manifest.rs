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
    /// The synthetic generator's version ([`crate::data::SYNTHETIC_VERSION`]) for
    /// synthetic data; `None` for precomputed features.
    #[serde(default)]
    pub synthetic_version: Option<u32>,
    /// Fingerprints of the precomputed features read (train, eval), for features data.
    #[serde(default)]
    pub data_fingerprint: Option<DataFingerprint>,
    /// Every process that worked on this run, oldest first (a resumed run has several).
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Earlier finished or failed results of this run id, kept under `history/` when
    /// the run was trained again (`--force`, `--rerun-stale`, or a damaged store).
    #[serde(default)]
    pub reruns: Vec<Rerun>,
    /// SHA-256 of each result file as the run wrote it (`config.toml`, `eval.csv`,
    /// `predictions.csv`), so a file changed or cut short afterwards is noticed.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// One process's work on a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub started: String,
    pub ended: Option<String>,
    pub host: String,
    pub pid: u32,
    /// The checkpoint step it resumed from.
    pub from_step: Option<usize>,
    /// Wall time of this attempt (training and evaluation), once it ended.
    pub seconds: Option<f64>,
    /// How it ended: "done", "failed", or `None` when it was killed.
    pub outcome: Option<String>,
}

/// A previous result of the same run id, moved aside when the run was redone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rerun {
    /// The folder the previous files were moved to, relative to the run's folder.
    pub archived_to: String,
    pub previous_status: Option<Status>,
    pub previous_ended: Option<String>,
    pub previous_commit: Option<String>,
    pub reason: String,
    pub when: String,
}

/// SHA-256 prefixes over each split the run trained and was scored on: the files of
/// precomputed features as they were read, or the generated questions' contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    pub train: String,
    pub eval: String,
}

impl Manifest {
    /// Wall time over every attempt that ended (training and evaluation, resumes included).
    pub fn wall_seconds(&self) -> f64 {
        self.attempts.iter().filter_map(|a| a.seconds).sum()
    }
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
            synthetic_version: (spec.resolved.config.data.source == crate::config::DataSource::Synthetic)
                .then_some(crate::data::SYNTHETIC_VERSION),
            data_fingerprint: None,
            attempts: Vec::new(),
            reruns: Vec::new(),
            files: Default::default(),
        }
    }
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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

/// Where, from which code and on which machine a run ran. Runs are bit-identical
/// on one machine with one thread count and one build; across CPUs (their SIMD
/// kernels), thread counts (the order of sums), builds and GPUs they are only
/// statistically comparable, so every one of those is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The working tree's commit when the run started (the configs and experiments
    /// read come from there; the code that ran is [`Provenance::build`]).
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    /// Tracked files differ from the commit, or untracked files exist.
    pub git_dirty: bool,
    /// The patch of uncommitted changes to tracked files, cut at [`DIFF_LIMIT`] bytes.
    pub git_diff: Option<String>,
    /// The patch was longer than [`DIFF_LIMIT`] and was cut.
    #[serde(default)]
    pub git_diff_truncated: bool,
    /// SHA-256 prefix of the whole patch and the untracked files' names and sizes:
    /// two dirty trees are the same only when these agree.
    #[serde(default)]
    pub git_diff_hash: Option<String>,
    /// Untracked files: paths and sizes only, never their contents (a `.env` with
    /// secrets, a large data file).
    #[serde(default)]
    pub untracked: Vec<UntrackedFile>,
    /// The binary that ran: its build commit, source fingerprint and features.
    #[serde(default)]
    pub build: Option<Build>,
    pub geosr_version: String,
    pub burn_version: String,
    pub rustc_version: String,
    pub backend: String,
    pub device: String,
    pub host: String,
    pub os: String,
    pub cpu: String,
    pub cpu_cores: usize,
    /// The CPU's SIMD extensions that select kernels (from /proc/cpuinfo).
    #[serde(default)]
    pub cpu_flags: Vec<String>,
    /// The data caches the CPU kernels size their matrix blocks by (from sysfs), as
    /// `L<level> <size>, <ways>-way, shared by CPUs <list>`.
    #[serde(default)]
    pub cpu_caches: Vec<String>,
    /// Threads of the pool the CPU kernels run on (the order of parallel sums).
    #[serde(default)]
    pub threads: Option<usize>,
    /// The GPU's model and driver, on CUDA devices.
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default)]
    pub gpu_driver: Option<String>,
    pub memory_bytes: Option<u64>,
    /// `GEOSR_*` variables and the thread and device variables in force.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// What looked wrong when the run started (a binary built from other source
    /// than the working tree's).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The exact command line, shell-quoted.
    pub command: String,
}

/// A file git does not track: where it is and how large, nothing of what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UntrackedFile {
    pub path: String,
    pub bytes: u64,
}

/// The binary's own build, embedded by `build.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// The commit the binary was built from, if it was built in a git checkout.
    pub commit: Option<String>,
    /// Its source (src/, Cargo.toml, Cargo.lock, build.rs) differed from that commit.
    pub dirty: bool,
    /// Fingerprint of that source ([`crate::runs::source::source_hash`]): two runs
    /// ran the same code exactly when these agree.
    pub source_hash: String,
    /// Fingerprint of the part of it that decides a run's numbers
    /// ([`crate::runs::source::training_hash`]); absent in runs from before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_hash: Option<String>,
    pub cargo_lock_hash: String,
    /// `debug` or `release`.
    pub profile: String,
    /// Cargo features compiled in (`cuda`, `tch`).
    pub features: Vec<String>,
}

impl Build {
    /// This binary's build.
    pub fn current() -> Build {
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Build {
            commit: text(env!("GEOSRBUILD_COMMIT")),
            dirty: !env!("GEOSRBUILD_DIRTY").is_empty(),
            source_hash: env!("GEOSRBUILD_SOURCE_HASH").into(),
            training_hash: text(env!("GEOSRBUILD_TRAINING_HASH")),
            cargo_lock_hash: env!("GEOSRBUILD_CARGO_LOCK_HASH").into(),
            profile: env!("GEOSRBUILD_PROFILE").into(),
            features: [("cuda", cfg!(feature = "cuda")), ("tch", cfg!(feature = "tch"))]
                .into_iter()
                .filter_map(|(name, on)| on.then(|| name.to_string()))
                .collect(),
        }
    }

    /// The fingerprint that says whether two builds train alike: the training code's,
    /// or the whole source's for a build from before that was kept.
    pub fn training_fingerprint(&self) -> &str {
        self.training_hash.as_deref().unwrap_or(&self.source_hash)
    }

    /// `1a2b3c4` or `1a2b3c4*` (built with uncommitted source changes), or the
    /// source fingerprint outside a checkout.
    pub fn short(&self) -> String {
        match &self.commit {
            Some(c) => format!("{}{}", &c[..c.len().min(7)], if self.dirty { "*" } else { "" }),
            None => format!("src:{}", self.source_hash),
        }
    }
}

/// The longest patch a manifest keeps; beyond it the patch is cut and says so.
pub const DIFF_LIMIT: usize = 256 * 1024;

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
    /// Tracked files whose contents differ from the commit.
    pub changed: Vec<String>,
    pub untracked: Vec<UntrackedFile>,
    /// The patch of tracked changes, cut at [`DIFF_LIMIT`] bytes.
    pub diff: Option<String>,
    pub diff_truncated: bool,
    /// SHA-256 prefix of the whole patch and the untracked names and sizes.
    pub diff_hash: Option<String>,
    /// The repository's work tree.
    pub workdir: Option<std::path::PathBuf>,
}

/// Reads commit, branch and uncommitted changes with libgit2. Ignored files
/// (such as `results/runs/`) do not make a tree dirty. Untracked files are listed
/// with their sizes; their contents are never read.
pub fn git_state(dir: &std::path::Path) -> GitState {
    let Ok(repo) = git2::Repository::discover(dir) else {
        return GitState {
            commit: None,
            branch: None,
            dirty: false,
            changed: Vec::new(),
            untracked: Vec::new(),
            diff: None,
            diff_truncated: false,
            diff_hash: None,
            workdir: None,
        };
    };
    use sha2::{Digest, Sha256};
    let head = repo.head().ok();
    let commit = head.as_ref().and_then(|h| h.peel_to_commit().ok()).map(|c| c.id().to_string());
    let branch = head.as_ref().and_then(|h| h.shorthand().map(str::to_string));
    let tree = head.as_ref().and_then(|h| h.peel_to_tree().ok());
    let workdir = repo.workdir().map(std::path::Path::to_path_buf);
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(false);
    let mut patch = String::new();
    let mut truncated = false;
    let mut hasher = Sha256::new();
    let mut changed = Vec::new();
    let mut untracked = Vec::new();
    if let Ok(diff) = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut opts)) {
        for delta in diff.deltas() {
            let Some(path) = delta.new_file().path().or_else(|| delta.old_file().path()) else { continue };
            let path = path.to_string_lossy().into_owned();
            if delta.status() == git2::Delta::Untracked {
                let bytes = workdir.as_ref().and_then(|w| std::fs::metadata(w.join(&path)).ok()).map_or(0, |m| m.len());
                hasher.update(format!("untracked {path} {bytes}\n").as_bytes());
                untracked.push(UntrackedFile { path, bytes });
            } else {
                changed.push(path);
            }
        }
        let _ = diff.print(git2::DiffFormat::Patch, |delta, _, line| {
            if delta.status() == git2::Delta::Untracked {
                return true;
            }
            let mut text = String::new();
            if matches!(line.origin(), '+' | '-' | ' ') {
                text.push(line.origin());
            }
            text.push_str(&String::from_utf8_lossy(line.content()));
            hasher.update(text.as_bytes());
            if patch.len() + text.len() <= DIFF_LIMIT {
                patch.push_str(&text);
            } else {
                truncated = true;
            }
            true
        });
    }
    let dirty = !changed.is_empty() || !untracked.is_empty();
    let hash: String = hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    GitState {
        commit,
        branch,
        dirty,
        changed,
        untracked,
        diff: (!patch.is_empty()).then_some(patch),
        diff_truncated: truncated,
        diff_hash: dirty.then_some(hash),
        workdir,
    }
}

/// The SIMD extensions, of those /proc/cpuinfo lists, that decide which kernels run.
/// Flex's AVX2 and AVX-512 levels also require bmi1, bmi2 and lzcnt (`abm`): a virtual
/// machine that hides one of them runs the narrower kernels, whose sums round differently.
fn cpu_flags() -> Vec<String> {
    const KERNEL_FLAGS: &[&str] = &[
        "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "avx512f", "avx512dq", "avx512cd",
        "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx512vbmi", "amx_tile", "amx_bf16",
        "amx_int8", "asimd", "sve", "sve2",
    ];
    let line = read_proc("/proc/cpuinfo", "flags").or_else(|| read_proc("/proc/cpuinfo", "Features")).unwrap_or_default();
    line.split_whitespace().filter(|f| KERNEL_FLAGS.contains(f)).map(str::to_string).collect()
}

/// The GPU's name and driver version for `cuda:N`, from `nvidia-smi` or the driver's /proc file.
fn gpu_info(device: &str) -> (Option<String>, Option<String>) {
    let Some(index) = device.strip_prefix("cuda:").map(|d| d.split(',').next().unwrap_or("0").to_string()) else {
        return (None, None);
    };
    let smi = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader", "-i", &index])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some((name, driver)) = smi.as_deref().and_then(|s| s.split_once(", ")) {
        return (Some(name.trim().into()), Some(driver.trim().into()));
    }
    let driver = std::fs::read_to_string("/proc/driver/nvidia/version").ok().and_then(|t| t.lines().next().map(str::to_string));
    (None, driver)
}

/// The variables that configure geosr or change how its kernels run.
fn recorded_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("GEOSR_") || ["RAYON_NUM_THREADS", "CUDA_VISIBLE_DEVICES"].contains(&k.as_str()))
        .collect()
}

/// Whether this binary was built from the source in `workdir`, when `workdir` is
/// geosr's own checkout: a warning when the source there changed since the build.
pub fn build_mismatch(workdir: Option<&std::path::Path>) -> Option<String> {
    source_mismatch(std::path::Path::new(env!("GEOSRBUILD_ROOT")), env!("GEOSRBUILD_SOURCE_HASH"), workdir?)
}

/// [`build_mismatch`] for a binary built in `built_root` from source `built_hash`.
/// A working tree elsewhere (a research repository with its own experiments) is not
/// the binary's source, and is not compared.
pub fn source_mismatch(built_root: &std::path::Path, built_hash: &str, workdir: &std::path::Path) -> Option<String> {
    let built_in = std::fs::canonicalize(built_root).ok()?;
    let workdir = std::fs::canonicalize(workdir).ok()?;
    if built_in != workdir {
        return None;
    }
    let now = super::source::source_hash(&workdir)?;
    (now != built_hash).then(|| {
        format!(
            "this geosr binary was built from other source than the working tree's (source {built_hash} when built, {now} now): \
             rebuild (cargo build --release) so the run uses the code it records"
        )
    })
}

/// The first CPU's data and unified caches as sysfs describes them; empty where it
/// does not. The CPU matrix kernels (gemm) read the same files to size their blocks.
fn cpu_caches() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache") else { return Vec::new() };
    let mut dirs: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("level").is_file()).collect();
    dirs.sort();
    let read = |dir: &std::path::Path, name: &str| std::fs::read_to_string(dir.join(name)).map(|s| s.trim().to_string()).unwrap_or_default();
    dirs.iter()
        .filter(|d| read(d, "type") != "Instruction")
        .map(|d| {
            format!(
                "L{} {}, {}-way, shared by CPUs {}",
                read(d, "level"),
                read(d, "size"),
                read(d, "ways_of_associativity"),
                read(d, "shared_cpu_list")
            )
        })
        .collect()
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

/// This machine's name, as a manifest records it.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

impl Provenance {
    /// Collects provenance for a run on `backend`/`device`, started by this process.
    pub fn collect(backend: &str, device: &str) -> Provenance {
        let git = git_state(&std::env::current_dir().unwrap_or_else(|_| ".".into()));
        let host = this_host();
        let (gpu, gpu_driver) = gpu_info(device);
        let warnings = build_mismatch(git.workdir.as_deref()).into_iter().collect();
        Provenance {
            git_commit: git.commit,
            git_branch: git.branch,
            git_dirty: git.dirty,
            git_diff: git.diff,
            git_diff_truncated: git.diff_truncated,
            git_diff_hash: git.diff_hash,
            untracked: git.untracked,
            build: Some(Build::current()),
            geosr_version: env!("CARGO_PKG_VERSION").into(),
            burn_version: env!("GEOSRBUILD_BURN_VERSION").into(),
            rustc_version: env!("GEOSRBUILD_RUSTC_VERSION").into(),
            backend: backend.into(),
            device: device.into(),
            host,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu: read_proc("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
            cpu_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_flags: cpu_flags(),
            cpu_caches: cpu_caches(),
            threads: (backend != "cuda").then(rayon::current_num_threads),
            gpu,
            gpu_driver,
            env: recorded_env(),
            warnings,
            memory_bytes: read_proc("/proc/meminfo", "MemTotal")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024),
            command: std::env::args().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" "),
        }
    }
}

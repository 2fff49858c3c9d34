//! Slurm job arrays: one array task per run, each running `geosr run-index`.
//!
//! A submission is recorded in `<results>/slurm/<experiment>/submissions.json`
//! (job id, array index -> run id), so `geosr status` can ask Slurm about exactly
//! the runs it was given, and report the ones Slurm lost (time limit, node failure,
//! cancelled) as failed: a second `sweep --launcher slurm` then submits them again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::config::RunSpec;
use crate::runs::{write_atomic, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{program}` (is Slurm installed and on PATH?): {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command { command: String, status: String, stderr: String },
    #[error("sbatch printed `{0}`, expected a job id")]
    JobId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The `#SBATCH` settings a user may choose.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// Slurm's time format, e.g. `2:00:00`.
    pub time: Option<String>,
    /// At most this many array tasks at once (`--array=...%K`).
    pub array_parallelism: Option<usize>,
}

/// What each array task runs; `{index}` is the plan index of its run.
#[derive(Debug, Clone)]
pub struct TaskCommand {
    pub exe: PathBuf,
    pub experiment: PathBuf,
    /// Extra arguments after `run-index EXPERIMENT --index I --expect-id ID`.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    pub submitted: String,
    pub script: PathBuf,
    /// Array index (= the run's index in the experiment's plan) -> run id.
    pub tasks: BTreeMap<usize, String>,
}

/// Where an experiment's scripts, logs and submission records go.
pub fn slurm_dir(results_dir: &Path, experiment: &str) -> PathBuf {
    results_dir.join("slurm").join(experiment)
}

/// The sbatch script for the runs at `indices` of `plan`.
pub fn script(plan: &[RunSpec], indices: &[usize], cmd: &TaskCommand, workdir: &Path, log_dir: &Path, opts: &SlurmOptions) -> String {
    let experiment = &plan[indices[0]].experiment;
    let list: Vec<String> = indices.iter().map(usize::to_string).collect();
    let throttle = opts.array_parallelism.map(|k| format!("%{k}")).unwrap_or_default();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=geosr-{experiment}\n"));
    s.push_str(&format!("#SBATCH --array={}{throttle}\n", list.join(",")));
    s.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", log_dir.display()));
    s.push_str(&format!("#SBATCH --chdir={}\n", workdir.display()));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(g) = opts.gpus_per_task {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    if let Some(c) = opts.cpus_per_task {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    s.push_str("set -euo pipefail\n\n");
    // A store on shared storage (`--store`): every task must train into it, whatever
    // the environment the script is later resubmitted from.
    if let Some(store) = std::env::var_os(crate::runs::store::STORE_ENV).filter(|s| !s.is_empty()) {
        s.push_str(&format!("export {}={}\n\n", crate::runs::store::STORE_ENV, quote(&store.to_string_lossy())));
    }
    // The run id each index must resolve to: a task refuses to train something else
    // if the experiment file changed between submission and start.
    s.push_str("case \"$SLURM_ARRAY_TASK_ID\" in\n");
    for &i in indices {
        s.push_str(&format!("  {i}) id={} ;;\n", plan[i].id));
    }
    s.push_str("  *) echo \"no run for array index $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n\n");
    let mut words = vec![
        quote(&cmd.exe.display().to_string()),
        "run-index".into(),
        quote(&cmd.experiment.display().to_string()),
        "--index".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
        "--expect-id".into(),
        "\"$id\"".into(),
    ];
    words.extend(cmd.args.iter().map(|a| quote(a)));
    s.push_str(&format!("exec {}\n", words.join(" ")));
    s
}

/// How each array task picks its device: a task given several GPUs
/// (`--gpus-per-task N` with a CUDA device) trains data parallel on all of them,
/// which Slurm numbers 0..N within the task; otherwise the sweep's `--device`.
pub fn device_args(device: &str, gpus_per_task: Option<u32>) -> Vec<String> {
    match gpus_per_task {
        Some(n) if n > 1 && device.starts_with("cuda") => {
            let list: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            vec!["--devices".into(), list.join(",")]
        }
        _ => vec!["--device".into(), device.to_string()],
    }
}

/// Single-quotes a word for bash unless it is plainly safe.
fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Writes the script, submits it with `sbatch --parsable` (which returns at once)
/// and records the submission. Returns the job id.
pub fn submit(
    plan: &[RunSpec],
    indices: &[usize],
    cmd: &TaskCommand,
    workdir: &Path,
    results_dir: &Path,
    opts: &SlurmOptions,
) -> Result<Submission, SlurmError> {
    // Nothing is written for a submission that cannot happen.
    run("sbatch", &["--version"])?;
    let experiment = &plan[indices[0]].experiment;
    let dir = slurm_dir(results_dir, experiment);
    let log_dir = std::path::absolute(dir.join("logs")).unwrap_or_else(|_| dir.join("logs"));
    // Slurm fails a task whose log folder is missing (JobLaunchFailure).
    std::fs::create_dir_all(&log_dir).map_err(|source| StoreError::Io { path: log_dir.clone(), source })?;
    let stamp = crate::runs::manifest::now_rfc3339();
    // Stamps have whole seconds; `sweep --controls` submits one array per control at once.
    let base = format!("sweep-{}", stamp.replace([':', '-'], ""));
    let script_path = std::iter::once(dir.join(format!("{base}.sbatch")))
        .chain((2..).map(|n| dir.join(format!("{base}-{n}.sbatch"))))
        .find(|p| !p.exists())
        .expect("an unused script name");
    write_atomic(&script_path, script(plan, indices, cmd, workdir, &log_dir, opts).as_bytes())?;
    let out = match run("sbatch", &["--parsable", &script_path.display().to_string()]) {
        Ok(out) => out,
        Err(e) => {
            // A refused submission leaves no script that looks submitted.
            let _ = std::fs::remove_file(&script_path);
            return Err(e);
        }
    };
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let job_id = out.trim().split(';').next().unwrap_or("").to_string();
    if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError::JobId(out.trim().to_string()));
    }
    let submission = Submission {
        job_id,
        submitted: stamp,
        script: script_path,
        tasks: indices.iter().map(|&i| (i, plan[i].id.clone())).collect(),
    };
    let mut all = load_submissions(results_dir, experiment)?;
    all.push(submission.clone());
    let json = serde_json::to_vec_pretty(&all).expect("submissions serialize");
    write_atomic(&dir.join("submissions.json"), &json)?;
    Ok(submission)
}

/// Every recorded submission of an experiment, oldest first.
pub fn load_submissions(results_dir: &Path, experiment: &str) -> Result<Vec<Submission>, StoreError> {
    let path = slurm_dir(results_dir, experiment).join("submissions.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Format { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Slurm's word for one array task, e.g. `PENDING`, `RUNNING`, `TIMEOUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub state: String,
    pub reason: String,
}

impl TaskState {
    pub fn is_queued(&self) -> bool {
        matches!(self.state.as_str(), "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "RESIZING" | "SUSPENDED")
    }
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING")
    }
}

/// The state of every array task of a job that Slurm still knows about: `squeue -t all`
/// while the controller remembers the job (MinJobAge), else `sacct` where accounting
/// is configured. `Ok(None)` when neither knows the job.
pub fn task_states(job_id: &str) -> Result<Option<BTreeMap<usize, TaskState>>, SlurmError> {
    let squeue = run("squeue", &["-h", "-r", "-t", "all", "-j", job_id, "-o", "%K|%T|%r"]);
    if let Ok(text) = &squeue {
        let states = parse_states(text);
        if !states.is_empty() {
            return Ok(Some(states));
        }
    }
    match run("sacct", &["-n", "-P", "-X", "-j", job_id, "-o", "JobID,State,Reason"]) {
        Ok(text) => {
            let states: BTreeMap<usize, TaskState> = text
                .lines()
                .filter_map(|line| {
                    let mut parts = line.split('|');
                    let task = parts.next()?.split_once('_')?.1.parse().ok()?;
                    // sacct writes e.g. `CANCELLED by 0`.
                    let state = parts.next()?.split_whitespace().next()?.to_string();
                    Some((task, TaskState { state, reason: parts.next().unwrap_or("").to_string() }))
                })
                .collect();
            Ok((!states.is_empty()).then_some(states))
        }
        // Neither tool exists: this machine has no Slurm client at all.
        Err(e @ SlurmError::Spawn { .. }) if matches!(squeue, Err(SlurmError::Spawn { .. })) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Parses `squeue -o '%K|%T|%r'` lines; a pending array shows its tasks as a range
/// (`0-3%2`, `1,4`) on one line.
fn parse_states(text: &str) -> BTreeMap<usize, TaskState> {
    let mut states = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.trim().split('|');
        let (Some(tasks), Some(state)) = (parts.next(), parts.next()) else { continue };
        let state = TaskState { state: state.to_string(), reason: parts.next().unwrap_or("").to_string() };
        let tasks = tasks.split('%').next().unwrap_or("");
        for piece in tasks.split(',') {
            let range = match piece.split_once('-') {
                Some((a, b)) => a.parse::<usize>().ok().zip(b.parse::<usize>().ok()),
                None => piece.parse::<usize>().ok().map(|a| (a, a)),
            };
            if let Some((a, b)) = range {
                for t in a..=b {
                    states.insert(t, state.clone());
                }
            }
        }
    }
    states
}

fn run(program: &str, args: &[&str]) -> Result<String, SlurmError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| SlurmError::Spawn { program: program.to_string(), source })?;
    if !out.status.success() {
        return Err(SlurmError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_expand_ranges_and_lists() {
        let states = parse_states("0-2%2|PENDING|JobArrayTaskLimit\n4|RUNNING|None\n5,7|TIMEOUT|TimeLimit\n");
        assert_eq!(states.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 4, 5, 7]);
        assert!(states[&1].is_queued());
        assert!(states[&4].is_running());
        assert_eq!(states[&7].state, "TIMEOUT");
        assert_eq!(states[&7].reason, "TimeLimit");
    }

    #[test]
    fn tasks_with_several_gpus_train_data_parallel() {
        assert_eq!(device_args("cuda:0", Some(4)), ["--devices", "0,1,2,3"]);
        assert_eq!(device_args("cuda:0", Some(1)), ["--device", "cuda:0"]);
        assert_eq!(device_args("cuda:0", None), ["--device", "cuda:0"]);
        assert_eq!(device_args("cpu", Some(2)), ["--device", "cpu"]);
    }

    #[test]
    fn quoting_keeps_safe_words_and_escapes_the_rest() {
        assert_eq!(quote("model.mask.gamma=0.6"), "model.mask.gamma=0.6");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}

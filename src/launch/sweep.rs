//! Sweeps: what is left to do in a plan, where each run stands (on disk, in this
//! machine's processes, in Slurm), and a local pool that trains several runs at once.
//!
//! Parallel runs are separate processes (`geosr run-index`), not threads: Burn's
//! CPU backends keep process-wide state (thread pools, the autodiff graph's
//! bookkeeping), so two runs trained in one process are not reproducible.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::RunSpec;
use crate::runs::{Status, StoreError};

use super::slurm::{self, TaskState};

/// Where one run of a plan stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Done,
    /// A live process holds the run's lock (locally or on a shared file system).
    Running,
    /// Submitted to Slurm and waiting, as array task `JOB_TASK`.
    Queued(String),
    /// Slurm runs it as array task `JOB_TASK` (it may not have started training yet).
    SlurmRunning(String),
    /// Started, but its process is gone without finishing (killed, machine lost).
    Interrupted,
    Failed(String),
    /// Its stored files cannot be trusted (an unreadable manifest, a done run with a
    /// missing config or a broken eval.csv): trained again, the old files kept aside.
    Damaged(String),
    Pending,
}

impl RunState {
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Done => "done",
            RunState::Running | RunState::SlurmRunning(_) => "running",
            RunState::Queued(_) => "queued",
            RunState::Interrupted => "interrupted",
            RunState::Failed(_) => "failed",
            RunState::Damaged(_) => "damaged",
            RunState::Pending => "pending",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            RunState::Queued(t) | RunState::SlurmRunning(t) => format!("slurm {t}"),
            RunState::Interrupted => "resumes from its last checkpoint when run again".into(),
            RunState::Failed(reason) | RunState::Damaged(reason) => reason.clone(),
            _ => String::new(),
        }
    }

    /// Whether a sweep should (re)start it: not finished and nobody is on it.
    pub fn needs_run(&self) -> bool {
        matches!(self, RunState::Interrupted | RunState::Failed(_) | RunState::Damaged(_) | RunState::Pending)
    }
}

/// The state of every run of a plan. Slurm is asked only about runs of recorded
/// submissions, once per job; without a Slurm client, stored state alone decides.
pub fn states(plan: &[RunSpec]) -> Result<Vec<RunState>, StoreError> {
    let mut submitted: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut seen_dirs = std::collections::BTreeSet::new();
    for spec in plan {
        let results = PathBuf::from(&spec.resolved.config.output.results_dir);
        if seen_dirs.insert(results.clone()) {
            for sub in slurm::load_submissions(&results, &spec.experiment)? {
                for (index, id) in sub.tasks {
                    // Later submissions of the same run win.
                    submitted.insert(id, (sub.job_id.clone(), index));
                }
            }
        }
    }
    let mut jobs: BTreeMap<String, Option<BTreeMap<usize, TaskState>>> = BTreeMap::new();
    plan.iter()
        .map(|spec| {
            let dir = crate::runs::run_dir(spec);
            if dir.is_locked() {
                return Ok(RunState::Running);
            }
            let manifest = match dir.read_manifest() {
                Ok(m) => m,
                Err(e) => return Ok(RunState::Damaged(e.to_string())),
            };
            if let Some(m) = manifest.as_ref().filter(|m| m.status == Status::Done) {
                return Ok(match crate::runs::verify_done(spec, &dir, m) {
                    Ok(_) => RunState::Done,
                    Err(why) => RunState::Damaged(why),
                });
            }
            let stored = match &manifest {
                None => RunState::Pending,
                Some(m) if m.status == Status::Failed => {
                    RunState::Failed(m.reason.clone().unwrap_or_else(|| "failed".into()))
                }
                Some(_) => RunState::Interrupted,
            };
            let Some((job, index)) = submitted.get(&spec.id) else { return Ok(stored) };
            let known = jobs.entry(job.clone()).or_insert_with(|| slurm::task_states(job).ok().flatten());
            let task = format!("{job}_{index}");
            Ok(match known.as_ref().map(|k| k.get(index)) {
                // No Slurm client here, or Slurm forgot the job: trust the store.
                None => stored,
                Some(Some(t)) if t.is_queued() => RunState::Queued(task),
                Some(Some(t)) if t.is_running() => RunState::SlurmRunning(task),
                Some(Some(t)) if t.state == "COMPLETED" => match stored {
                    RunState::Failed(_) => stored,
                    _ => RunState::Failed(format!("slurm {task} completed without finishing the run")),
                },
                Some(Some(t)) => match stored {
                    RunState::Failed(reason) => RunState::Failed(format!("{reason} (slurm {task}: {})", t.state)),
                    _ => RunState::Failed(format!("slurm {task}: {} ({})", t.state, t.reason)),
                },
                // Slurm knows the job but not this task: cancelled while pending.
                Some(None) => RunState::Failed(format!("slurm {task} was removed from the queue")),
            })
        })
        .collect()
}

/// The first line of each attempt in a run's `log.txt`.
pub const ATTEMPT_HEADER: &str = "=== geosr run-index, attempt started";

/// The output of the newest attempt in a run's `log.txt`.
pub fn last_attempt(log_text: &str) -> &str {
    match log_text.rfind(ATTEMPT_HEADER) {
        Some(at) => &log_text[at..],
        None => log_text,
    }
}

/// How to start one run as a child process.
#[derive(Debug, Clone)]
pub struct ChildCommand {
    pub exe: PathBuf,
    pub experiment: PathBuf,
    /// Arguments after `run-index EXPERIMENT --index I --expect-id ID`.
    pub args: Vec<String>,
    /// `Some(devices)`: slot k of the pool adds `--device cuda:devices[k]`.
    pub cuda_devices: Option<Vec<usize>>,
}

/// What the pool reports while it works.
#[derive(Debug)]
pub enum Event<'a> {
    Started { spec: &'a RunSpec, log: PathBuf },
    Finished { spec: &'a RunSpec, ok: bool, seconds: f64, log: PathBuf },
    /// `--fail-fast`: no new runs start; the running ones finish.
    Stopping { running: usize },
    /// Sent about ten times a second while runs train, for a live view: the plan
    /// indices of the running runs and of those still queued.
    Tick { running: &'a [usize], queued: &'a [usize] },
}

/// The plan entries at `todo` in the order a pool starts them: seed by seed (in the
/// order the plan first names each seed), and within a seed the most work first
/// (analytic FLOPs of a training step times the steps). Seed rounds make a sweep that
/// stops early (a killed session, a time limit) leave every variant with the same
/// seeds, a table with all its rows; most work first within a round keeps the short
/// runs for each round's end, where they fill the cores the long ones leave.
pub fn run_order(plan: &[RunSpec], todo: &[usize]) -> Vec<usize> {
    let work = super::progress::work;
    let mut rounds: Vec<u64> = Vec::new();
    for run in plan {
        if !rounds.contains(&run.seed) {
            rounds.push(run.seed);
        }
    }
    let round = |seed: u64| rounds.iter().position(|&s| s == seed).unwrap_or(usize::MAX);
    let mut order: Vec<(usize, usize, f64)> = todo.iter().map(|&i| (i, round(plan[i].seed), work(&plan[i]))).collect();
    // Stable: equal work in one round keeps the plan's order.
    order.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)));
    order.into_iter().map(|(i, _, _)| i).collect()
}

/// Kernel threads for a run a pool starts with `left` runs still waiting behind it:
/// its share of the cores among `jobs` at once, or, near a sweep's end, the cores the
/// remaining runs leave idle (the last run gets them all). A running process's thread
/// pool cannot grow, so a run is given them when it starts. A user's own
/// RAYON_NUM_THREADS wins over both.
pub fn threads_for(cores: usize, jobs: usize, left: usize) -> usize {
    (cores / jobs.max(1)).max(cores / (left + 1)).max(1)
}

/// Runs the plan entries at `todo` with at most `jobs` child processes at once, each
/// writing its output to `log.txt` in its run folder, seed by seed and the most work first (see
/// [`run_order`] and [`threads_for`]). Returns how many failed.
pub fn run_pool(
    plan: &[RunSpec],
    todo: &[usize],
    jobs: usize,
    fail_fast: bool,
    cmd: &ChildCommand,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<usize, StoreError> {
    let jobs = jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut queue: std::collections::VecDeque<usize> = run_order(plan, todo).into();
    let mut running: Vec<(Child, usize, usize, Instant, PathBuf)> = Vec::new(); // child, plan index, slot, start, log
    let mut free_slots: Vec<usize> = (0..jobs).rev().collect();
    let mut failed = 0;
    let mut stopping = false;
    loop {
        while !stopping && !free_slots.is_empty() {
            let Some(index) = queue.pop_front() else { break };
            let threads = threads_for(cores, jobs, queue.len()).to_string();
            let slot = free_slots.pop().expect("checked non-empty");
            let spec = &plan[index];
            let dir = crate::runs::run_dir(spec);
            let log = dir.path.join("log.txt");
            let io = |source| StoreError::Io { path: log.clone(), source };
            std::fs::create_dir_all(&dir.path).map_err(io)?;
            let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(io)?;
            // The log keeps every attempt; this header starts the newest one.
            use std::io::Write;
            writeln!(out, "{ATTEMPT_HEADER} {}", crate::runs::manifest::now_rfc3339()).map_err(io)?;
            let err = out.try_clone().map_err(io)?;
            let mut command = Command::new(&cmd.exe);
            if std::env::var_os("RAYON_NUM_THREADS").is_none() {
                command.env("RAYON_NUM_THREADS", &threads);
            }
            command
                .arg("run-index")
                .arg(&cmd.experiment)
                .args(["--index", &index.to_string(), "--expect-id", &spec.id])
                .args(&cmd.args);
            if let Some(devices) = &cmd.cuda_devices {
                command.args(["--device", &format!("cuda:{}", devices[slot % devices.len()])]);
            }
            stop_with_parent(&mut command);
            let child = command
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|source| StoreError::Io { path: cmd.exe.clone(), source })?;
            on_event(Event::Started { spec, log: log.clone() });
            running.push((child, index, slot, Instant::now(), log));
        }
        if running.is_empty() {
            return Ok(failed);
        }
        std::thread::sleep(Duration::from_millis(100));
        let running_now: Vec<usize> = running.iter().map(|r| r.1).collect();
        let queued_now: Vec<usize> = if stopping { Vec::new() } else { queue.iter().copied().collect() };
        on_event(Event::Tick { running: &running_now, queued: &queued_now });
        let mut k = 0;
        while k < running.len() {
            let status = running[k].0.try_wait().map_err(|source| StoreError::Io { path: cmd.exe.clone(), source })?;
            let Some(status) = status else {
                k += 1;
                continue;
            };
            let (_, index, slot, start, log) = running.swap_remove(k);
            free_slots.push(slot);
            let spec = &plan[index];
            let ok = status.success();
            on_event(Event::Finished { spec, ok, seconds: start.elapsed().as_secs_f64(), log });
            if !ok {
                failed += 1;
                if fail_fast && !stopping {
                    stopping = true;
                    on_event(Event::Stopping { running: running.len() });
                }
            }
        }
    }
}

/// Ends a run when the sweep that started it dies, however it dies (`kill`, `kill -9`, an
/// out-of-memory kill): otherwise the run trains on with nobody to report to and holds its
/// lock, so the sweep started again to resume leaves that run to the orphan. The run gets
/// SIGTERM and resumes from its last checkpoint next time, as after any interruption.
fn stop_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: runs in the child between fork and exec, where only async-signal-safe
        // calls are allowed; prctl, getppid and raise are.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The sweep died before the prctl: its signal will never come.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

#[cfg(test)]
mod tests {
    use super::threads_for;

    #[test]
    fn cores_go_to_the_runs_still_going() {
        // 2 cores, 2 jobs: one thread each while two or more runs wait, both for the last.
        assert_eq!([3, 1, 0].map(|left| threads_for(2, 2, left)), [1, 1, 2]);
        // 16 cores, 4 jobs: 4 each, then 8 for the second to last and 16 for the last.
        assert_eq!([5, 1, 0].map(|left| threads_for(16, 4, left)), [4, 8, 16]);
        // More jobs than cores still gives each run a thread.
        assert_eq!(threads_for(2, 8, 10), 1);
    }
}

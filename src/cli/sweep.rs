//! `sweep` and `reproduce`: every run of an experiment that is not done yet, on this
//! machine (in this process or in a pool of child processes) or as a Slurm job array.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use geosr::config::{Experiment, RunSpec};
use geosr::runs;
use geosr::launch::{self, slurm, RunOptions};

use super::args::{ExperimentArgs, Loaded, Selection, Target};
use super::exit::{self, Usage};
use super::{report, run};

#[derive(clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    experiment: ExperimentArgs,
    #[command(flatten)]
    select: Selection,
    /// Runs at once on this machine (each in its own process).
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    /// Start no new run once one has failed.
    #[arg(long)]
    fail_fast: bool,
    /// Off a terminal (a log file, CI, Slurm): print a progress line (each running run's
    /// step, loss and time left, and the sweep's ETA) every SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    progress_every: u64,
    #[arg(long, value_enum, default_value_t = Launcher::Local)]
    launcher: Launcher,
    #[command(flatten)]
    target: Target,
    /// Slurm partition (--launcher slurm).
    #[arg(long)]
    partition: Option<String>,
    /// GPUs per array task (--launcher slurm).
    #[arg(long)]
    gpus_per_task: Option<u32>,
    /// CPUs per array task (--launcher slurm).
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// Time limit per array task, in Slurm's format, e.g. 2:00:00 (--launcher slurm).
    #[arg(long)]
    time: Option<String>,
    /// At most this many array tasks at once (--launcher slurm).
    #[arg(long)]
    array_parallelism: Option<usize>,
    /// Train again the finished runs that other code (another build of geosr) trained.
    #[arg(long)]
    rerun_stale: bool,
    /// The experiment, then each of its [[controls]] in turn (`table --controls` shows
    /// their claims side by side).
    #[arg(long, conflicts_with = "control")]
    controls: bool,
}

#[derive(clap::Args)]
pub struct ReproduceArgs {
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Runs at once (each in its own process).
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    #[command(flatten)]
    target: Target,
    /// Train again the finished runs that other code (another build of geosr) trained.
    #[arg(long)]
    rerun_stale: bool,
    /// Each of the experiment's [[controls]] too, and their claims beside the file's in
    /// results/tables/EXPERIMENT-controls.md.
    #[arg(long, conflicts_with = "control")]
    controls: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Launcher {
    /// This machine.
    Local,
    /// A Slurm job array, one task per run (`sbatch`; returns at once).
    Slurm,
}

pub fn sweep(args: SweepArgs) -> Result<ExitCode> {
    args.target.check()?;
    if args.jobs == 0 {
        return Err(Usage("--jobs 0: expected at least 1 run at once".into()).into());
    }
    let conditions = args.experiment.conditions(args.controls)?;
    let mut failed = 0;
    for experiment in &conditions {
        if let Some(name) = &experiment.control {
            println!("\n# control `{name}`");
        }
        failed += sweep_one(&args, experiment)?;
    }
    Ok(exit::failed_runs(failed))
}

/// One sweep: the runs of `experiment` (the experiment or one of its controls) not done
/// yet. Returns how many failed.
fn sweep_one(args: &SweepArgs, experiment: &ExperimentArgs) -> Result<usize> {
    let (loaded, plan, todo) = prepare(experiment, &args.select, args.rerun_stale)?;
    if todo.is_empty() {
        return Ok(0);
    }
    let local = Local {
        experiment,
        target: &args.target,
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        rerun_stale: args.rerun_stale,
        progress_every: args.progress_every,
    };
    match args.launcher {
        Launcher::Slurm => {
            submit(args, experiment, &loaded.exp, &plan, &todo)?;
            Ok(0)
        }
        Launcher::Local => local.run(&loaded.exp, &plan, &todo),
    }
}

pub fn reproduce(args: ReproduceArgs) -> Result<ExitCode> {
    args.target.check()?;
    if args.jobs == 0 {
        return Err(Usage("--jobs 0: expected at least 1 run at once".into()).into());
    }
    let conditions = args.experiment.conditions(args.controls)?;
    let mut failed = 0;
    let mut outputs = None;
    for experiment in &conditions {
        if let Some(name) = &experiment.control {
            println!("\n# control `{name}`");
        }
        let (loaded, plan, todo) = prepare(experiment, &Selection::default(), args.rerun_stale)?;
        let local = Local {
            experiment,
            target: &args.target,
            jobs: args.jobs,
            fail_fast: false,
            rerun_stale: args.rerun_stale,
            progress_every: 60,
        };
        failed += local.run(&loaded.exp, &plan, &todo)?;
        // The file's own outputs (the first condition); the controls' enter through its view.
        outputs.get_or_insert((loaded, plan));
    }
    let (loaded, plan) = outputs.expect("at least the experiment itself");
    report::write_outputs(&loaded, &plan, args.controls)?;
    Ok(exit::failed_runs(failed))
}

/// The experiment, its whole plan (children find a run by its index in it) and the
/// indices of the selected runs still to do, with their data checked and where they
/// stand printed.
fn prepare(args: &ExperimentArgs, select: &Selection, rerun_stale: bool) -> Result<(Loaded, Vec<RunSpec>, Vec<usize>)> {
    let loaded = args.load()?;
    select.check(&loaded.exp)?;
    let plan = loaded.plan()?;
    run::check_data(plan.iter().filter(|s| select.keeps(s)))?;
    let todo = announce(&loaded.exp, &plan, select, rerun_stale)?;
    Ok((loaded, plan, todo))
}

/// Prints where the selected runs of a plan stand and returns the indices of those
/// still to do (each run once, though rows may share it). Finished runs another experiment trained
/// get a link in this experiment's folder. With `rerun_stale`, finished runs that
/// other code trained are to do again.
fn announce(exp: &Experiment, plan: &[RunSpec], select: &Selection, rerun_stale: bool) -> Result<Vec<usize>> {
    let states = launch::sweep::states(plan)?;
    let mut seen = std::collections::HashSet::new();
    let mut todo = Vec::new();
    let (mut done, mut stale) = (0, 0);
    for (i, (spec, state)) in plan.iter().zip(&states).enumerate() {
        if !select.keeps(spec) || !seen.insert(spec.id.as_str()) {
            continue;
        }
        let dir = runs::run_dir(spec);
        if *state == launch::sweep::RunState::Done {
            geosr::runs::store::link_entry(spec, &dir)?;
            if rerun_stale && dir.read_manifest().ok().flatten().as_ref().is_some_and(runs::is_stale) {
                stale += 1;
                todo.push(i);
            } else {
                done += 1;
            }
        } else if state.needs_run() {
            todo.push(i);
        }
    }
    let busy = seen.len() - done - todo.len();
    let stale_note = if rerun_stale { format!(" ({stale} of them trained by other code)") } else { String::new() };
    let chosen = if select.is_all() { String::new() } else { format!(" ({})", describe(select)) };
    println!("# {}{chosen}: {} runs: {done} done, {busy} running or queued, {} to run{stale_note}", exp.name, seen.len(), todo.len());
    Ok(todo)
}

/// `--variant a --variant d --seed 0` -> `rows a, d; seed 0`.
fn describe(select: &Selection) -> String {
    let seeds: Vec<String> = select.seed.iter().map(u64::to_string).collect();
    [("row", &select.variant), ("seed", &seeds)]
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(what, items)| format!("{what}{} {}", if items.len() == 1 { "" } else { "s" }, items.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The arguments a child `geosr run-index` needs to rebuild the same plan.
fn child_args(experiment: &ExperimentArgs, target: &Target, rerun_stale: bool) -> Vec<String> {
    let mut args: Vec<String> = experiment.overrides.set.iter().flat_map(|s| ["--set".to_string(), s.clone()]).collect();
    args.extend(experiment.grid.iter().flat_map(|g| ["--grid".to_string(), g.clone()]));
    args.extend(experiment.control.iter().flat_map(|c| ["--control".to_string(), c.clone()]));
    args.extend(["--backend".into(), target.backend.name().into()]);
    if rerun_stale {
        args.push("--rerun-stale".into());
    }
    args
}

/// Submits the runs at `todo` as a Slurm job array and says how to follow it.
fn submit(args: &SweepArgs, experiment: &ExperimentArgs, exp: &Experiment, plan: &[RunSpec], todo: &[usize]) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the geosr executable")?;
    let mut task_args = child_args(experiment, &args.target, args.rerun_stale);
    task_args.extend(slurm::device_args(&args.target.device, args.gpus_per_task));
    let path = std::path::absolute(&exp.path).unwrap_or_else(|_| exp.path.clone());
    let cmd = slurm::TaskCommand { exe, experiment: path, args: task_args };
    let opts = slurm::SlurmOptions {
        partition: args.partition.clone(),
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        time: args.time.clone(),
        array_parallelism: args.array_parallelism,
    };
    let results = PathBuf::from(&plan[0].resolved.config.output.results_dir);
    let workdir = std::env::current_dir().context("cannot read the current directory")?;
    let sub = slurm::submit(plan, todo, &cmd, &workdir, &results, &opts)?;
    println!("submitted job array {} ({} tasks): {}", sub.job_id, todo.len(), sub.script.display());
    let control = experiment.control.as_ref().map(|c| format!(" --control {c}")).unwrap_or_default();
    println!(
        "follow it with `geosr status {}{control}`; logs in {}",
        experiment.experiment,
        slurm::slurm_dir(&results, &exp.name).join("logs").display()
    );
    Ok(())
}

/// How a sweep runs on this machine.
struct Local<'a> {
    experiment: &'a ExperimentArgs,
    target: &'a Target,
    jobs: usize,
    fail_fast: bool,
    rerun_stale: bool,
    progress_every: u64,
}

impl Local<'_> {
    /// Runs the plan entries at `todo`: in this process when `jobs` is 1 (with a
    /// progress bar), else in a pool of `jobs` child processes. Returns how many failed.
    fn run(&self, exp: &Experiment, plan: &[RunSpec], todo: &[usize]) -> Result<usize> {
        let device = &self.target.device;
        if self.jobs <= 1 {
            let runs: Vec<RunSpec> = todo.iter().map(|&i| plan[i].clone()).collect();
            let opts = RunOptions { rerun_stale: self.rerun_stale, ..Default::default() };
            return run::dispatch(&runs, opts, device, self.target.backend, self.fail_fast);
        }
        let exe = std::env::current_exe().context("cannot find the geosr executable")?;
        let mut args = child_args(self.experiment, self.target, self.rerun_stale);
        let cuda_devices = parse_cuda_devices(device)?;
        if cuda_devices.is_none() {
            args.extend(["--device".into(), device.to_string()]);
        }
        let experiment = std::path::absolute(&exp.path).unwrap_or_else(|_| exp.path.clone());
        let cmd = launch::sweep::ChildCommand { exe, experiment, args, cuda_devices };
        let mut view = super::live::LiveView::new(plan, todo, self.jobs, self.progress_every);
        let failed = launch::sweep::run_pool(plan, todo, self.jobs, self.fail_fast, &cmd, &mut |event| view.handle(event))?;
        view.finish();
        Ok(failed)
    }
}

/// `cuda:0,1,2` -> `Some([0, 1, 2])`; `cpu` or a single `cuda:N` -> `None`.
fn parse_cuda_devices(device: &str) -> Result<Option<Vec<usize>>> {
    let Some(list) = device.strip_prefix("cuda:").filter(|l| l.contains(',')) else { return Ok(None) };
    let devices = list
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--device {device}: expected cuda:N or cuda:N,M,..."))?;
    Ok(Some(devices))
}

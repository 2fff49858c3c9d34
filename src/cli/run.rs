//! `run` and `run-index`: train chosen runs of an experiment in this process; and how
//! any command trains runs here, on the backend and devices it was given.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use geosr::config::{ConfigError, RunSpec};
use geosr::launch::RunOptions;

use super::args::{ExperimentArgs, RunTarget, Selection};
use super::backend::{self, CpuBackend};
use super::execute::Execute;
use super::exit;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    select: Selection,
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Refuse to run from a working tree with uncommitted changes.
    #[arg(long)]
    require_clean: bool,
    /// Run again even if a finished run with the same id exists (its results are kept under history/).
    #[arg(long)]
    force: bool,
    /// Run again the finished runs that other code (another build of geosr) trained.
    #[arg(long)]
    rerun_stale: bool,
    #[command(flatten)]
    target: RunTarget,
}

#[derive(clap::Args)]
pub struct RunIndexArgs {
    #[arg(long)]
    index: usize,
    /// Refuse to run unless the run at `index` has this id (the experiment changed).
    #[arg(long)]
    expect_id: Option<String>,
    #[command(flatten)]
    experiment: ExperimentArgs,
    #[command(flatten)]
    target: RunTarget,
    /// Train the run again if other code trained it.
    #[arg(long)]
    rerun_stale: bool,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    args.target.check()?;
    let loaded = args.experiment.load()?;
    let exp = &loaded.exp;
    args.select.check(exp)?;
    let select = &args.select;
    let runs: Vec<RunSpec> = exp
        .plan_variants(&loaded.env, &loaded.sets, |label| select.keeps_variant(exp, label))?
        .into_iter()
        .filter(|r| select.keeps(r))
        .collect();
    check_data(&runs)?;
    let opts = RunOptions { require_clean: args.require_clean, force: args.force, rerun_stale: args.rerun_stale, ..Default::default() };
    Ok(exit::failed_runs(run_on(&runs, opts, &args.target)?))
}

pub fn run_index(args: RunIndexArgs) -> Result<ExitCode> {
    let index = args.index;
    args.target.check()?;
    let loaded = args.experiment.load()?;
    let plan = loaded.plan()?;
    let path = &loaded.exp.path;
    let spec = plan.get(index).ok_or_else(|| ConfigError::Experiment {
        path: path.clone(),
        message: format!("--index {index}: the experiment has {} runs (0..{})", plan.len(), plan.len()),
    })?;
    if let Some(expected) = args.expect_id.as_ref().filter(|expected| **expected != spec.id) {
        return Err(ConfigError::Experiment {
            path: path.clone(),
            message: format!(
                "run {index} is now {} ({}), but {expected} was submitted: the experiment or its configs changed since",
                spec.id, spec.label
            ),
        }
        .into());
    }
    check_data(std::slice::from_ref(spec))?;
    let opts = RunOptions { rerun_stale: args.rerun_stale, ..Default::default() };
    // One run, whose failure is already printed: no summary line.
    let failed = run_on(std::slice::from_ref(spec), opts, &args.target)?;
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Checks every distinct data config of `runs` (precomputed features: both splits'
/// meta.json and question types) before anything is trained or written.
pub fn check_data<'a>(runs: impl IntoIterator<Item = &'a RunSpec>) -> Result<()> {
    let mut seen: Vec<&geosr::config::DataConfig> = Vec::new();
    for spec in runs {
        let data = &spec.resolved.config.data;
        if !seen.contains(&data) {
            geosr::data::check(data).with_context(|| format!("{}, run {} seed {}", spec.experiment, spec.label, spec.seed))?;
            seen.push(data);
        }
    }
    Ok(())
}

/// Runs `runs` where `target` says, data parallel on its `--devices` when it names
/// any; returns how many failed.
fn run_on(runs: &[RunSpec], opts: RunOptions, target: &RunTarget) -> Result<usize> {
    let devices = &target.devices;
    if devices.is_empty() {
        return dispatch(runs, opts, &target.target.device, target.target.backend, false);
    }
    let list: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    let opts = RunOptions { device: format!("cuda:{}", list.join(",")), backend: "cuda".into(), ..opts };
    on_gpus(runs, &opts, devices, false)
}

/// Runs `runs` in this process on `device` (with `backend` on the CPU); returns how
/// many failed. With `fail_fast`, stops at the first failure.
pub fn dispatch(runs: &[RunSpec], mut opts: RunOptions, device: &str, backend: CpuBackend, fail_fast: bool) -> Result<usize> {
    opts.device = device.to_string();
    if device == "cpu" {
        opts.backend = backend.name().into();
        backend::on_cpu(backend, Execute { runs, opts: &opts, fail_fast })
    } else if let Some(index) = device.strip_prefix("cuda:") {
        let index: usize = index.parse().with_context(|| format!("--device {device}: expected cuda:N"))?;
        opts.backend = "cuda".into();
        on_gpus(runs, &opts, &[index], fail_fast)
    } else {
        bail!("--device {device}: expected cpu or cuda:N");
    }
}

/// Runs on GPUs `indices`, data parallel when there are several; the peak memory
/// recorded is the first GPU's, which holds the optimizer state.
fn on_gpus(runs: &[RunSpec], opts: &RunOptions, indices: &[usize], fail_fast: bool) -> Result<usize> {
    let opts = RunOptions { device_memory: backend::cuda_memory(indices[0]), ..opts.clone() };
    backend::on_cuda(indices, Execute { runs, opts: &opts, fail_fast })
}

//! The `geosr` command line: parse arguments, pick the backend once, call the library.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use burn::backend::{ndarray::NdArrayDevice, Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand, ValueEnum};
use tabled::{builder::Builder, settings::Style};

use geosr::config::layers::{cli_layers, env_layers};
use geosr::config::{ConfigError, Experiment, Layer, RunSpec};
use geosr::launch::{self, Outcome, RunOptions};
use geosr::report::plot::PlotError;
use geosr::runs::StoreError;

#[derive(Parser)]
#[command(name = "geosr", version, about = "Reproduce and extend the GeoSR ablations from declarative configs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Overrides {
    /// Override a config key for every run, e.g. --set model.mask.gamma=0.6 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect resolved configurations.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List every run an experiment expands to, with its status, without running anything.
    Plan {
        /// Experiment name (experiments/NAME.toml) or path.
        experiment: String,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Train and evaluate the runs of an experiment (all, or those selected).
    Run {
        experiment: String,
        /// Only these variants (repeatable).
        #[arg(long)]
        variant: Vec<String>,
        /// Only these seeds (repeatable).
        #[arg(long)]
        seed: Vec<u64>,
        #[command(flatten)]
        overrides: Overrides,
        /// Refuse to run from a working tree with uncommitted changes.
        #[arg(long)]
        require_clean: bool,
        /// Run again even if a finished run with the same id exists (its results are kept under history/).
        #[arg(long)]
        force: bool,
        /// Run again the finished runs that other code (another build of geosr) trained.
        #[arg(long)]
        rerun_stale: bool,
        /// `cpu` or `cuda:N` (the latter needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Train each run data parallel on these GPUs, e.g. `0,1,2,3`: every batch is
        /// split across them and their gradients summed on the first, which also
        /// evaluates. Needs a build with --features cuda.
        #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "device")]
        devices: Vec<usize>,
        /// CPU backend.
        #[arg(long, value_enum, default_value_t = CpuBackend::default())]
        backend: CpuBackend,
    },
    /// The main job: a sweep of the experiment (finished runs are skipped), then its table
    /// with the paper's numbers and claims, written to results/tables/, and its figure,
    /// drawn to results/plots/.
    Reproduce {
        experiment: String,
        #[command(flatten)]
        overrides: Overrides,
        /// Runs at once (each in its own process).
        #[arg(long, short = 'j', default_value_t = 1)]
        jobs: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, value_enum, default_value_t = CpuBackend::default())]
        backend: CpuBackend,
        /// Train again the finished runs that other code (another build of geosr) trained.
        #[arg(long)]
        rerun_stale: bool,
    },
    /// Run every run of an experiment that is not done yet: skips finished runs, resumes
    /// interrupted ones, redoes failed ones, and keeps going when one fails.
    Sweep {
        experiment: String,
        #[command(flatten)]
        overrides: Overrides,
        /// Runs at once on this machine (each in its own process).
        #[arg(long, short = 'j', default_value_t = 1)]
        jobs: usize,
        /// Start no new run once one has failed.
        #[arg(long)]
        fail_fast: bool,
        #[arg(long, value_enum, default_value_t = Launcher::Local)]
        launcher: Launcher,
        /// `cpu`, `cuda:N`, or `cuda:0,1,2,3` (with --jobs, each job gets its own GPU).
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, value_enum, default_value_t = CpuBackend::default())]
        backend: CpuBackend,
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
    },
    /// Run the run at one index of an experiment's plan (what each Slurm array task runs).
    RunIndex {
        experiment: String,
        #[arg(long)]
        index: usize,
        /// Refuse to run unless the run at `index` has this id (the experiment changed).
        #[arg(long)]
        expect_id: Option<String>,
        #[command(flatten)]
        overrides: Overrides,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Train data parallel on these GPUs (as `run --devices`).
        #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "device")]
        devices: Vec<usize>,
        #[arg(long, value_enum, default_value_t = CpuBackend::default())]
        backend: CpuBackend,
        /// Train the run again if other code trained it.
        #[arg(long)]
        rerun_stale: bool,
    },
    /// Rebuild an experiment's table from its stored runs.
    Table {
        experiment: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Term)]
        format: TableFormat,
        /// Put the paper's numbers beside ours.
        #[arg(long)]
        reference: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Done, running, failed and pending runs per variant and seed.
    Status {
        experiment: String,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Score a predictions file from any model with the benchmark's official protocol.
    Score {
        /// vsi (VSI-Bench: macro average over 8 subtasks) or dsr (DSR-Bench: question-weighted).
        #[arg(long)]
        bench: BenchName,
        /// JSONL with question_type, prediction and ground_truth (vsi) or answer (dsr) per line.
        predictions: std::path::PathBuf,
    },
    /// Measure training speed (steps/s, samples/s) of one run on every compiled backend.
    Bench {
        experiment: String,
        /// Variant label (default: the first).
        #[arg(long)]
        variant: Option<String>,
        /// Timed optimizer steps (after 3 warm-up steps).
        #[arg(long, default_value_t = 30)]
        steps: usize,
        /// Where to time: `cpu` (every CPU backend), `cuda:N`, or both as `cpu,cuda:0`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Only this CPU backend (default: each of them).
        #[arg(long, value_enum)]
        backend: Option<CpuBackend>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Config keys, per-subtask scores and provenance that differ between two stored runs.
    Diff {
        /// A run id (or a unique prefix of one) under results/runs/, or a run folder.
        run_a: String,
        run_b: String,
        /// Only output.results_dir is read, to find runs given by id.
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Draw an experiment's figure from its stored runs to results/plots/EXPERIMENT.{svg,png}:
    /// grouped bars per subtask and Avg., or Avg. against the swept values for a sweep.
    Plot {
        experiment: String,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the resolved config of one run and, for each key, the layer that set it.
    Show {
        experiment: String,
        /// Variant label (default: the first), at the sweep's first point.
        #[arg(long, conflicts_with = "label")]
        variant: Option<String>,
        /// A row as `geosr plan` lists it: a variant at one sweep point, e.g. `geosr_gamma0.6_beta0.5`.
        #[arg(long)]
        label: Option<String>,
        /// Seed (default: the experiment's first).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TableFormat {
    Term,
    Md,
    Csv,
    Latex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Launcher {
    /// This machine.
    Local,
    /// A Slurm job array, one task per run (`sbatch`; returns at once).
    Slurm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchName {
    Vsi,
    Dsr,
}

/// The CPU backends. Flex is the default and, with NdArray, embedded: they need nothing
/// at run time, and NdArray's training step on quick's models is 8-23% slower.
/// LibTorch (`--features tch`) runs PyTorch's kernels, 2.2-2.9x faster than Flex, but
/// needs a PyTorch install to build and to run (docs/performance.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
enum CpuBackend {
    #[default]
    Flex,
    Ndarray,
    #[cfg(feature = "tch")]
    Libtorch,
}

fn override_layers(o: &Overrides) -> Result<(Vec<Layer>, Vec<Layer>), ConfigError> {
    for warning in geosr::config::layers::env_warnings(std::env::vars()) {
        eprintln!("warning: {warning}");
    }
    Ok((env_layers(std::env::vars())?, cli_layers(&o.set)?))
}

/// An experiment and its overrides, with a warning for each override that replaces
/// what a variant sets itself.
fn load_experiment(experiment: &str, overrides: &Overrides) -> Result<(Experiment, Vec<Layer>, Vec<Layer>)> {
    let exp = Experiment::load(experiment)?;
    let (env, sets) = override_layers(overrides)?;
    for warning in exp.override_warnings(&env, &sets) {
        eprintln!("warning: {warning}");
    }
    Ok((exp, env, sets))
}

/// Bad command-line input that no library type names (a device, a count): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// `--device`: the CPU, one GPU, or a list of GPUs (one per parallel job).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Device {
    Cpu,
    Cuda(Vec<usize>),
}

/// Parses and checks `--device` before anything runs: a typo or a GPU on a build
/// without CUDA is refused here, not in every child a sweep starts.
fn parse_device(device: &str) -> Result<Device, Usage> {
    let bad = || Usage(format!("--device {device}: expected cpu, cuda:N or cuda:N,M,... (e.g. cuda:0)"));
    let device_kind = match device.trim() {
        "cpu" => Device::Cpu,
        d => {
            let list = d.strip_prefix("cuda:").ok_or_else(bad)?;
            let ids = list.split(',').map(|i| i.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>().map_err(|_| bad())?;
            Device::Cuda(ids)
        }
    };
    if matches!(device_kind, Device::Cuda(_)) && !cfg!(feature = "cuda") {
        return Err(Usage(format!(
            "--device {device}: this geosr was built without CUDA; rebuild with `cargo build --release --features cuda`"
        )));
    }
    Ok(device_kind)
}

/// `--devices` (data parallel) needs a CUDA build; refused before anything runs.
fn check_devices(devices: &[usize]) -> Result<(), Usage> {
    if !devices.is_empty() && !cfg!(feature = "cuda") {
        return Err(Usage(
            "--devices: this geosr was built without CUDA; rebuild with `cargo build --release --features cuda`".into(),
        ));
    }
    Ok(())
}

/// Checks every distinct data config of `runs` (precomputed features: both splits'
/// meta.json and question types) before anything is trained or written.
fn check_data(runs: &[RunSpec]) -> Result<()> {
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

/// The file name an experiment's tables and figure are written under: its name, and
/// with overrides a suffix that names them, so a run with `--set` never overwrites
/// the plain experiment's tables. Where results go (`output.*`) is not part of it.
fn output_name(exp: &Experiment, env: &[Layer], sets: &[Layer]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for layer in env.iter().chain(sets) {
        for (key, value) in geosr::config::layers::flatten(&layer.data) {
            if !key.starts_with("output.") {
                let text = geosr::config::layers::value_to_string(&value);
                let slug: String = format!("{key}={}", text.trim_matches('"'))
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || ".=-_".contains(c) { c } else { '_' })
                    .collect();
                parts.push(slug);
            }
        }
    }
    if parts.is_empty() {
        return exp.name.clone();
    }
    let joined = parts.join("+");
    if joined.len() <= 80 {
        format!("{}+{joined}", exp.name)
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(joined.as_bytes());
        let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("{}+{}-{hash}", exp.name, &joined[..60])
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader goes away (`geosr table x | head`).
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            // Library errors often embed their cause in their own message; print
            // each cause only when it adds something.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("error: {msg}");
            // Bad input (configs, experiment files, data, prediction files) exits 2.
            let usage = e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<Usage>().is_some()
                || e.downcast_ref::<geosr::launch::slurm::SlurmError>().is_some_and(|s| {
                    matches!(s, geosr::launch::slurm::SlurmError::Spawn { .. })
                })
                || e.downcast_ref::<geosr::eval::score::ScoreError>().is_some()
                || e.downcast_ref::<geosr::data::features::FeatureError>().is_some()
                || e.downcast_ref::<StoreError>().is_some_and(store_usage)
                || e.downcast_ref::<PlotError>().is_some_and(|p| match p {
                    PlotError::NoRuns { .. } => true,
                    PlotError::Store(s) => store_usage(s),
                    _ => false,
                });
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Keeps the buffers a training step frees for the next step. glibc gives large freed
/// blocks back to the kernel (above its trim threshold, and every block it mmapped),
/// and the next step faults the same pages in again, zeroed: that took ~17% of a
/// step in a profile of `quick` a. A user's own `GLIBC_TUNABLES` for malloc wins.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc")) {
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        }
    }
}

/// Store errors that come from what the user typed rather than from the store.
fn store_usage(e: &StoreError) -> bool {
    matches!(e, StoreError::Dirty(_) | StoreError::RunNotFound { .. } | StoreError::AmbiguousRun { .. })
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config { command: ConfigCommand::Show { experiment, variant, label, seed, overrides } } => {
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let seed = seed.unwrap_or(exp.file.seeds[0]);
            let spec = match &label {
                // A row of the plan: a variant at one sweep point.
                Some(label) => {
                    let points = exp.sweep_points();
                    let found = exp.file.variants.iter().find_map(|v| {
                        points.iter().find(|p| geosr::config::experiment::point_label(&v.label, p) == *label).map(|p| (v, p))
                    });
                    let (v, point) = found.ok_or_else(|| ConfigError::Experiment {
                        path: exp.path.clone(),
                        message: format!("--label {label}: no such row; expected one of {:?}", exp.row_labels()),
                    })?;
                    exp.run_spec(v, point, seed, &env, &sets)?
                }
                None => {
                    let v = match &variant {
                        Some(label) => exp.variant(label).ok_or_else(|| unknown_variant(&exp, label))?,
                        None => &exp.file.variants[0],
                    };
                    exp.run_spec(v, &exp.sweep_points()[0], seed, &env, &sets)?
                }
            };
            println!("# {} | run {} | seed {} | id {}", exp.path.display(), spec.label, seed, spec.id);
            let mut b = Builder::default();
            b.push_record(["key", "value", "set by"]);
            for (key, (value, source)) in &spec.resolved.provenance {
                b.push_record([key.as_str(), value.as_str(), source.as_str()]);
            }
            println!("{}", b.build().with(Style::psql()));
        }
        Command::Plan { experiment, overrides } => {
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let runs = exp.plan(&env, &sets)?;
            println!("# {}: {} ({} runs)", exp.name, exp.file.title, runs.len());
            let states = launch::sweep::states(&runs)?;
            let mut b = Builder::default();
            b.push_record(["label", "seed", "run id", "params", "status", "folder"]);
            for (r, state) in runs.iter().zip(&states) {
                let dir = launch::run_dir(r).path.display().to_string();
                let params = planned_params(&r.resolved.config);
                b.push_record([r.label.clone(), r.seed.to_string(), r.id.clone(), params, state.word().to_string(), dir]);
            }
            println!("{}", b.build().with(Style::psql()));
        }
        Command::Reproduce { experiment, overrides, jobs, device, backend, rerun_stale } => {
            parse_device(&device)?;
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let plan = exp.plan(&env, &sets)?;
            check_data(&plan)?;
            let todo = announce(&exp, &plan, rerun_stale)?;
            let failed = sweep_local(&exp, &plan, &todo, &overrides, jobs, false, &device, backend, rerun_stale)?;
            write_outputs(&exp, &plan, &env, &sets)?;
            if failed > 0 {
                eprintln!("{failed} run(s) failed");
                return Ok(ExitCode::from(1));
            }
        }
        Command::Table { experiment, format, reference, overrides } => {
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let plan = exp.plan(&env, &sets)?;
            let table = geosr::report::table::build(&exp, &plan, reference)?;
            let format = match format {
                TableFormat::Term => geosr::report::table::Format::Term,
                TableFormat::Md => geosr::report::table::Format::Markdown,
                TableFormat::Csv => geosr::report::table::Format::Csv,
                TableFormat::Latex => geosr::report::table::Format::Latex,
            };
            print!("{}", table.render(format));
            let text = matches!(format, geosr::report::table::Format::Term | geosr::report::table::Format::Markdown);
            if !exp.file.claims.is_empty() && text {
                let verdicts = geosr::report::claims::check(&exp.file.claims, &plan, 2000)?;
                print!("\n{}", geosr::report::claims::render(&verdicts));
            }
            // Machine formats stay clean; what a reader must know goes to stderr.
            if !text {
                table.notes.iter().for_each(|n| eprintln!("{n}"));
            }
            stray_notes(&exp, &plan);
        }
        Command::Status { experiment, overrides } => {
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let plan = exp.plan(&env, &sets)?;
            let states = launch::sweep::states(&plan)?;
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            let mut b = Builder::default();
            b.push_record(["label", "seed", "status", "commit", "detail"]);
            let mut stale = 0;
            for (spec, state) in plan.iter().zip(&states) {
                *counts.entry(state.word()).or_default() += 1;
                let manifest = launch::run_dir(spec).read_manifest().ok().flatten();
                let commit = manifest.as_ref().and_then(|m| m.provenance.build.as_ref()).map(|b| b.short()).unwrap_or_default();
                let mut detail = state.detail();
                if *state == launch::sweep::RunState::Done && manifest.as_ref().is_some_and(launch::is_stale) {
                    stale += 1;
                    detail = format!("trained by other code than this build ({})", geosr::runs::manifest::Build::current().short());
                }
                b.push_record([spec.label.clone(), spec.seed.to_string(), state.word().to_string(), commit, detail]);
            }
            println!("{}", b.build().with(Style::psql()));
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            println!("{}: {} runs: {}", exp.name, plan.len(), summary.join(", "));
            if stale > 0 {
                println!("{stale} finished run(s) were trained by other code; `geosr sweep {experiment} --rerun-stale` trains them again");
            }
            stray_notes(&exp, &plan);
        }
        Command::Sweep {
            experiment,
            overrides,
            jobs,
            fail_fast,
            launcher,
            device,
            backend,
            partition,
            gpus_per_task,
            cpus_per_task,
            time,
            array_parallelism,
            rerun_stale,
        } => {
            parse_device(&device)?;
            if jobs == 0 {
                return Err(Usage("--jobs 0: expected at least 1 run at once".into()).into());
            }
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let plan = exp.plan(&env, &sets)?;
            check_data(&plan)?;
            let todo = announce(&exp, &plan, rerun_stale)?;
            if todo.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            let failed = match launcher {
                Launcher::Slurm => {
                    let exe = std::env::current_exe().context("cannot find the geosr executable")?;
                    let mut args = child_args(&overrides, backend, rerun_stale);
                    args.extend(launch::slurm::device_args(&device, gpus_per_task));
                    let experiment_path = std::path::absolute(&exp.path).unwrap_or_else(|_| exp.path.clone());
                    let cmd = launch::slurm::TaskCommand { exe, experiment: experiment_path, args };
                    let opts = launch::slurm::SlurmOptions { partition, gpus_per_task, cpus_per_task, time, array_parallelism };
                    let results = std::path::PathBuf::from(&plan[0].resolved.config.output.results_dir);
                    let workdir = std::env::current_dir().context("cannot read the current directory")?;
                    let sub = launch::slurm::submit(&plan, &todo, &cmd, &workdir, &results, &opts)?;
                    println!("submitted job array {} ({} tasks): {}", sub.job_id, todo.len(), sub.script.display());
                    println!(
                        "follow it with `geosr status {experiment}`; logs in {}",
                        launch::slurm::slurm_dir(&results, &exp.name).join("logs").display()
                    );
                    0
                }
                Launcher::Local => sweep_local(&exp, &plan, &todo, &overrides, jobs, fail_fast, &device, backend, rerun_stale)?,
            };
            if failed > 0 {
                eprintln!("{failed} run(s) failed");
                return Ok(ExitCode::from(1));
            }
        }
        Command::RunIndex { experiment, index, expect_id, overrides, device, devices, backend, rerun_stale } => {
            parse_device(&device)?;
            check_devices(&devices)?;
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let plan = exp.plan(&env, &sets)?;
            let spec = plan.get(index).ok_or_else(|| ConfigError::Experiment {
                path: exp.path.clone(),
                message: format!("--index {index}: the experiment has {} runs (0..{})", plan.len(), plan.len()),
            })?;
            if let Some(expected) = &expect_id {
                if &spec.id != expected {
                    return Err(ConfigError::Experiment {
                        path: exp.path.clone(),
                        message: format!(
                            "run {index} is now {} ({}), but {expected} was submitted: the experiment or its configs changed since",
                            spec.id, spec.label
                        ),
                    }
                    .into());
                }
            }
            check_data(std::slice::from_ref(spec))?;
            let opts = RunOptions { rerun_stale, ..Default::default() };
            if run_on(std::slice::from_ref(spec), opts, &device, &devices, backend)? > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Score { bench, predictions } => {
            let bench = match bench {
                BenchName::Vsi => geosr::config::Bench::Static,
                BenchName::Dsr => geosr::config::Bench::Dynamic,
            };
            let report = geosr::eval::score::score_file(bench, &predictions)?;
            print!("{}", report.render_markdown());
        }
        Command::Bench { experiment, variant, steps, device, backend, overrides } => {
            if steps == 0 {
                return Err(Usage("--steps 0: expected at least 1 timed step".into()).into());
            }
            let exp = Experiment::load(&experiment)?;
            // `None` = every CPU backend, `Some(n)` = GPU n.
            let devices: Vec<Option<usize>> = device
                .split(',')
                .map(|d| match d.trim() {
                    "cpu" => Ok(None),
                    d => match parse_device(d)? {
                        Device::Cuda(ids) if ids.len() == 1 => Ok(Some(ids[0])),
                        _ => Err(Usage(format!("--device {device}: expected cpu, cuda:N or a comma-separated list of them")).into()),
                    },
                })
                .collect::<Result<_>>()?;
            let (env, mut sets) = override_layers(&overrides)?;
            sets.extend(cli_layers(&[format!("train.steps={}", steps + 3), "train.log_every=1".into()])?);
            let chosen: Vec<_> = match &variant {
                Some(label) => vec![exp.variant(label).ok_or_else(|| unknown_variant(&exp, label))?],
                None => exp.file.variants.iter().collect(),
            };
            let mut b = Builder::default();
            b.push_record(["variant", "backend", "params", "train ms/step", "train samples/s", "train GFLOP/s", "infer ms/sample", "infer GFLOP/s"]);
            for v in chosen {
                let spec = exp.run_spec(v, &exp.sweep_points()[0], exp.file.seeds[0], &env, &sets)?;
                let config = &spec.resolved.config;
                let data = geosr::data::load(&config.data, geosr::data::Split::Train)?;
                let eval = geosr::data::load(&config.data, geosr::data::Split::Eval)?;
                let splits = (&data, &eval);
                let params = param_count(config, &data).to_string();
                let dims = geosr::model::ModelDims::of(&data);
                let forward = geosr::model::flops::forward_flops(&config.model, &dims) as f64;
                let step_flops = geosr::model::flops::train_step_flops(&config.model, &dims, config.train.batch_size) as f64;
                let mut record = |name: &str, (rows, infer): (Vec<geosr::train::StepRow>, f64)| {
                    let (first, last) = (&rows[2], &rows[rows.len() - 1]);
                    let per_step = (last.elapsed_s - first.elapsed_s) / (last.step - first.step) as f64;
                    b.push_record([
                        spec.label.clone(),
                        name.to_string(),
                        params.clone(),
                        format!("{:.1}", 1000.0 * per_step),
                        format!("{:.0}", config.train.batch_size as f64 / per_step),
                        format!("{:.2}", step_flops / per_step / 1e9),
                        format!("{:.3}", 1000.0 * infer),
                        format!("{:.2}", forward / infer / 1e9),
                    ]);
                };
                for d in &devices {
                    match *d {
                        None => {
                            for cpu in CpuBackend::value_variants().iter().filter(|b| backend.is_none_or(|only| only == **b)) {
                                record(backend_name(*cpu), bench_cpu(*cpu, config, splits)?);
                            }
                        }
                        Some(index) => record(&format!("cuda:{index}"), bench_cuda(config, splits, index)?),
                    }
                }
            }
            println!(
                "# {}: {} timed training steps after 3 warm-up steps; inference over the evaluation split; \
                 GFLOP/s from an analytic count of matrix products (a training step = 3 x forward)",
                exp.name, steps
            );
            println!("{}", b.build().with(Style::psql()));
        }
        Command::Run { experiment, variant, seed, overrides, require_clean, force, device, devices, backend, rerun_stale } => {
            parse_device(&device)?;
            check_devices(&devices)?;
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            for label in &variant {
                exp.variant(label).ok_or_else(|| unknown_variant(&exp, label))?;
            }
            for s in &seed {
                if !exp.file.seeds.contains(s) {
                    return Err(ConfigError::Experiment {
                        path: exp.path.clone(),
                        message: format!("--seed {s}: expected one of the experiment's seeds {:?}", exp.file.seeds),
                    }
                    .into());
                }
            }
            let runs: Vec<RunSpec> = exp
                .plan_variants(&env, &sets, |label| variant.is_empty() || variant.iter().any(|v| v == label))?
                .into_iter()
                .filter(|r| seed.is_empty() || seed.contains(&r.seed))
                .collect();
            check_data(&runs)?;
            let opts = RunOptions { require_clean, force, rerun_stale, ..Default::default() };
            let failed = run_on(&runs, opts, &device, &devices, backend)?;
            if failed > 0 {
                eprintln!("{failed} run(s) failed");
                return Ok(ExitCode::from(1));
            }
        }
        Command::Diff { run_a, run_b, overrides } => {
            let (env, sets) = override_layers(&overrides)?;
            let layers: Vec<Layer> = std::iter::once(Layer::defaults()).chain(env).chain(sets).collect();
            let results = std::path::PathBuf::from(geosr::config::layers::resolve(&layers)?.config.output.results_dir);
            let a = geosr::runs::find_run(&results, &run_a)?;
            let b = geosr::runs::find_run(&results, &run_b)?;
            print!("{}", geosr::report::diff::diff(&a, &b)?.render());
        }
        Command::Plot { experiment, overrides } => {
            let (exp, env, sets) = load_experiment(&experiment, &overrides)?;
            let plan = exp.plan(&env, &sets)?;
            let figure = geosr::report::plot::figure(&exp, &plan);
            if figure.is_err() {
                stray_notes(&exp, &plan);
            }
            let dir = std::path::PathBuf::from(&plan[0].resolved.config.output.results_dir).join("plots");
            for path in geosr::report::plot::write(&figure?, &dir, &output_name(&exp, &env, &sets))? {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints where a plan stands and returns the indices of the runs still to do.
/// Prints where a plan stands and returns the indices of the runs still to do (each
/// run once, though rows may share it). Finished runs another experiment trained
/// get a link in this experiment's folder. With `rerun_stale`, finished runs that
/// other code trained are to do again.
fn announce(exp: &Experiment, plan: &[RunSpec], rerun_stale: bool) -> Result<Vec<usize>> {
    let states = launch::sweep::states(plan)?;
    let mut seen = std::collections::HashSet::new();
    let mut todo = Vec::new();
    let (mut done, mut stale) = (0, 0);
    for (i, (spec, state)) in plan.iter().zip(&states).enumerate() {
        if !seen.insert(spec.id.as_str()) {
            continue;
        }
        let dir = launch::run_dir(spec);
        if *state == launch::sweep::RunState::Done {
            geosr::runs::store::link_entry(spec, &dir)?;
            if rerun_stale && dir.read_manifest().ok().flatten().as_ref().is_some_and(launch::is_stale) {
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
    println!("# {}: {} runs: {done} done, {busy} running or queued, {} to run{stale_note}", exp.name, seen.len(), todo.len());
    Ok(todo)
}

/// The arguments a child `geosr run-index` needs to rebuild the same plan.
fn child_args(overrides: &Overrides, backend: CpuBackend, rerun_stale: bool) -> Vec<String> {
    let mut args: Vec<String> = overrides.set.iter().flat_map(|s| ["--set".to_string(), s.clone()]).collect();
    args.extend(["--backend".into(), backend_name(backend).into()]);
    if rerun_stale {
        args.push("--rerun-stale".into());
    }
    args
}

/// Reports the finished runs of the experiment that this plan leaves out, on stderr.
fn stray_notes(exp: &Experiment, plan: &[RunSpec]) {
    for line in geosr::report::stray::unplanned_runs(exp, plan, 10) {
        eprintln!("note: {line}");
    }
}

/// The table, the claims and the figure of a plan: printed, and written under
/// `results/tables/` and `results/plots/` with a JSON record of the build, the
/// overrides and the run ids behind every row.
fn write_outputs(exp: &Experiment, plan: &[RunSpec], env: &[Layer], sets: &[Layer]) -> Result<()> {
    use geosr::report::table::{build, Format};
    let table = build(exp, plan, true)?;
    let verdicts = geosr::report::claims::check(&exp.file.claims, plan, 2000)?;
    let claims = if verdicts.is_empty() { String::new() } else { format!("\n{}", geosr::report::claims::render(&verdicts)) };
    println!("\n{}{claims}", table.render(Format::Term));
    stray_notes(exp, plan);
    let name = output_name(exp, env, sets);
    let results = std::path::PathBuf::from(&plan[0].resolved.config.output.results_dir).join("tables");
    let build_info = geosr::runs::manifest::Build::current();
    let overrides: Vec<&str> = env.iter().chain(sets).map(|l| l.name.as_str()).collect();
    let footer = format!(
        "Written by geosr {} from {} with overrides [{}]; run ids per row in {name}.json.",
        build_info.short(),
        exp.path.display(),
        overrides.join(", ")
    );
    for (ext, format) in [("md", Format::Markdown), ("csv", Format::Csv), ("tex", Format::Latex)] {
        let mut text = table.render(format);
        match format {
            Format::Markdown => text.push_str(&format!("{claims}\n{footer}\n")),
            Format::Latex => text.push_str(&format!("% {footer}\n")),
            _ => {}
        }
        let path = results.join(format!("{name}.{ext}"));
        geosr::runs::write_atomic(&path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    let record = serde_json::json!({
        "experiment": exp.name,
        "file": exp.path.display().to_string(),
        "written": geosr::runs::manifest::now_rfc3339(),
        "geosr_build": { "commit": build_info.commit, "dirty": build_info.dirty, "source_hash": build_info.source_hash },
        "overrides": overrides,
        "rows": table.rows.iter().map(|r| serde_json::json!({
            "label": r.label,
            "runs": r.runs.iter().map(|(seed, id)| serde_json::json!({ "seed": seed, "id": id })).collect::<Vec<_>>(),
            "commits": r.code.iter().map(|c| c.commit.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "notes": table.notes,
    });
    let path = results.join(format!("{name}.json"));
    geosr::runs::write_atomic(&path, &serde_json::to_vec_pretty(&record).expect("json serializes"))?;
    println!("wrote {}", path.display());
    // The figure is a convenience on top of the tables: a machine without a
    // font still gets its tables, and a warning says why there is no plot.
    let plots = results.parent().map(|r| r.join("plots")).unwrap_or_else(|| "plots".into());
    match geosr::report::plot::figure(exp, plan)
        .map_err(anyhow::Error::from)
        .and_then(|f| geosr::report::plot::write(&f, &plots, &name).map_err(anyhow::Error::from))
    {
        Ok(paths) => paths.iter().for_each(|p| println!("wrote {}", p.display())),
        Err(e) => eprintln!("warning: no plot: {e}"),
    }
    Ok(())
}

/// Runs the plan entries at `todo` on this machine: in this process when `jobs` is 1
/// (with a progress bar), else in a pool of `jobs` child processes. Returns how many failed.
#[allow(clippy::too_many_arguments)]
fn sweep_local(
    exp: &Experiment,
    plan: &[RunSpec],
    todo: &[usize],
    overrides: &Overrides,
    jobs: usize,
    fail_fast: bool,
    device: &str,
    backend: CpuBackend,
    rerun_stale: bool,
) -> Result<usize> {
    if jobs <= 1 {
        let runs: Vec<RunSpec> = todo.iter().map(|&i| plan[i].clone()).collect();
        return dispatch(&runs, RunOptions { rerun_stale, ..Default::default() }, device, backend, fail_fast);
    }
    let exe = std::env::current_exe().context("cannot find the geosr executable")?;
    let mut args = child_args(overrides, backend, rerun_stale);
    let cuda_devices = parse_cuda_devices(device)?;
    if cuda_devices.is_none() {
        args.extend(["--device".into(), device.to_string()]);
    }
    let experiment = std::path::absolute(&exp.path).unwrap_or_else(|_| exp.path.clone());
    let cmd = launch::sweep::ChildCommand { exe, experiment, args, cuda_devices };
    let total = todo.len();
    let mut finished = 0;
    let failed = launch::sweep::run_pool(plan, todo, jobs, fail_fast, &cmd, &mut |event| match event {
        launch::sweep::Event::Started { spec, log } => {
            println!("start  {} seed {} ({})  log: {}", spec.label, spec.seed, spec.id, log.display());
        }
        launch::sweep::Event::Finished { spec, ok, seconds, log } => {
            finished += 1;
            let word = if ok { "done  " } else { "FAILED" };
            println!("[{finished}/{total}] {word} {} seed {} in {seconds:.0} s", spec.label, spec.seed);
            if !ok {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = launch::sweep::last_attempt(&text).lines().collect();
                for line in &lines[lines.len().saturating_sub(5)..] {
                    println!("    {line}");
                }
            }
        }
        launch::sweep::Event::Stopping { running } => {
            println!("--fail-fast: starting no new runs; waiting for {running} running run(s)");
        }
    })?;
    Ok(failed)
}

fn backend_name(backend: CpuBackend) -> &'static str {
    match backend {
        CpuBackend::Flex => "flex",
        CpuBackend::Ndarray => "ndarray",
        #[cfg(feature = "tch")]
        CpuBackend::Libtorch => "libtorch",
    }
}

/// The threads LibTorch's kernels run on: the sweep's share (RAYON_NUM_THREADS), as for
/// the embedded backends; LibTorch's own default is every core.
#[cfg(feature = "tch")]
fn libtorch_threads() {
    if let Some(n) = std::env::var("RAYON_NUM_THREADS").ok().and_then(|n| n.parse::<i32>().ok()) {
        tch::set_num_threads(n);
    }
}

fn bench_cpu(backend: CpuBackend, config: &geosr::config::Config, splits: Splits) -> Result<(Vec<geosr::train::StepRow>, f64)> {
    match backend {
        CpuBackend::Flex => bench_one::<Autodiff<Flex>>(config, splits, &Default::default()),
        CpuBackend::Ndarray => bench_one::<Autodiff<NdArray>>(config, splits, &NdArrayDevice::Cpu),
        #[cfg(feature = "tch")]
        CpuBackend::Libtorch => {
            libtorch_threads();
            bench_one::<Autodiff<burn::backend::LibTorch>>(config, splits, &burn::backend::libtorch::LibTorchDevice::Cpu)
        }
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

/// Runs `runs` on `device`, or data parallel on the GPUs `devices` when any are
/// given (`run` and `run-index`); returns how many failed.
fn run_on(runs: &[RunSpec], opts: RunOptions, device: &str, devices: &[usize], backend: CpuBackend) -> Result<usize> {
    if devices.is_empty() {
        return dispatch(runs, opts, device, backend, false);
    }
    let list: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    let opts = RunOptions { device: format!("cuda:{}", list.join(",")), backend: "cuda".into(), ..opts };
    run_cuda(runs, &opts, devices, false)
}

/// Runs `runs` on the backend `device` and `backend` name; returns how many failed.
/// With `fail_fast`, stops at the first failure.
fn dispatch(runs: &[RunSpec], mut opts: RunOptions, device: &str, backend: CpuBackend, fail_fast: bool) -> Result<usize> {
    opts.device = device.to_string();
    if device == "cpu" {
        match backend {
            CpuBackend::Ndarray => {
                opts.backend = "ndarray".into();
                execute::<Autodiff<NdArray>>(runs, &opts, &[NdArrayDevice::Cpu], fail_fast)
            }
            CpuBackend::Flex => {
                opts.backend = "flex".into();
                execute::<Autodiff<Flex>>(runs, &opts, &[Default::default()], fail_fast)
            }
            #[cfg(feature = "tch")]
            CpuBackend::Libtorch => {
                opts.backend = "libtorch".into();
                libtorch_threads();
                execute::<Autodiff<burn::backend::LibTorch>>(runs, &opts, &[burn::backend::libtorch::LibTorchDevice::Cpu], fail_fast)
            }
        }
    } else if let Some(index) = device.strip_prefix("cuda:") {
        let index: usize = index.parse().with_context(|| format!("--device {device}: expected cuda:N"))?;
        opts.backend = "cuda".into();
        run_cuda(runs, &opts, &[index], fail_fast)
    } else {
        bail!("--device {device}: expected cpu or cuda:N");
    }
}

/// Runs on GPUs `indices`, data parallel when there are several; the peak memory
/// recorded is the first GPU's, which holds the optimizer state.
#[cfg(feature = "cuda")]
fn run_cuda(runs: &[RunSpec], opts: &RunOptions, indices: &[usize], fail_fast: bool) -> Result<usize> {
    use burn::backend::Cuda;
    let devices = indices.iter().map(|&i| cuda_device(i)).collect::<Result<Vec<_>>>()?;
    let index = indices[0];
    let opts = RunOptions { device_memory: Some(launch::DeviceMemory { read: cuda_reserved_bytes, index }), ..opts.clone() };
    execute::<Autodiff<Cuda>>(runs, &opts, &devices, fail_fast)
}

/// GPU `index`, after checking that it can hold a tensor: without a driver or with
/// no such GPU, Burn's CUDA runtime panics on a worker thread, which would end
/// geosr with a backtrace instead of an error.
#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<burn::backend::cuda::CudaDevice> {
    use burn::backend::{cuda::CudaDevice, Cuda};
    use burn::tensor::Tensor;
    use std::sync::{Arc, Mutex};
    let device = CudaDevice::new(index);
    let first_panic: Arc<Mutex<Option<String>>> = Arc::default();
    let previous = std::panic::take_hook();
    let seen = first_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        let mut slot = seen.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(match info.payload().downcast_ref::<String>() {
                Some(s) => s.clone(),
                None => info.payload().downcast_ref::<&str>().map_or_else(|| info.to_string(), |s| s.to_string()),
            });
        }
    }));
    let probe = device.clone();
    let works = std::panic::catch_unwind(move || Tensor::<Cuda, 1>::zeros([1], &probe).into_data()).is_ok();
    std::panic::set_hook(previous);
    if !works {
        let why = first_panic.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        bail!("--device cuda:{index}: the GPU cannot be used: {why}");
    }
    Ok(device)
}

/// Bytes Burn's CUDA allocator holds on GPU `index` (its pools keep what they
/// reserve, so the largest sample is the run's peak).
#[cfg(feature = "cuda")]
fn cuda_reserved_bytes(index: usize) -> Option<u64> {
    use cubecl::Runtime;
    let client = cubecl::cuda::CudaRuntime::client(&burn::backend::cuda::CudaDevice::new(index));
    client.memory_usage().ok().map(|usage| usage.bytes_reserved)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(_: &[RunSpec], _: &RunOptions, _: &[usize], _: bool) -> Result<usize> {
    bail!("this geosr was built without CUDA; rebuild with `cargo build --release --features cuda`")
}

fn unknown_variant(exp: &Experiment, label: &str) -> ConfigError {
    let labels: Vec<&str> = exp.file.variants.iter().map(|v| v.label.as_str()).collect();
    ConfigError::Experiment {
        path: exp.path.clone(),
        message: format!("no variant `{label}`; expected one of {labels:?}"),
    }
}

/// A bench's (training, evaluation) splits.
type Splits<'a> = (&'a geosr::data::Dataset, &'a geosr::data::Dataset);

/// Training step rows and inference seconds per sample of one config on one backend.
/// Trains on `train` for the configured few steps, then times inference over `eval`
/// (the split a run's Table 6 figure is timed on).
fn bench_one<B: AutodiffBackend>(
    config: &geosr::config::Config,
    (train, eval): Splits,
    device: &B::Device,
) -> Result<(Vec<geosr::train::StepRow>, f64)> {
    let mut rows = Vec::new();
    let model = geosr::train::train::<B>(config, train, std::slice::from_ref(device), None, |r| rows.push(r.clone()))?;
    let batcher = geosr::train::batcher_for(config, eval);
    // Untimed warm-up pass (kernel compilation and tuning on a GPU).
    geosr::eval::time_inference(&model, eval, &batcher, config.eval.batch_size, device);
    let start = std::time::Instant::now();
    let n = geosr::eval::time_inference(&model, eval, &batcher, config.eval.batch_size, device);
    Ok((rows, start.elapsed().as_secs_f64() / n.max(1) as f64))
}

#[cfg(feature = "cuda")]
fn bench_cuda(
    config: &geosr::config::Config,
    data: Splits,
    index: usize,
) -> Result<(Vec<geosr::train::StepRow>, f64)> {
    use burn::backend::Cuda;
    bench_one::<Autodiff<Cuda>>(config, data, &cuda_device(index)?)
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: &geosr::config::Config, _: Splits, _: usize) -> Result<(Vec<geosr::train::StepRow>, f64)> {
    bail!("this geosr was built without CUDA; rebuild with `cargo build --release --features cuda`")
}

fn param_count(config: &geosr::config::Config, data: &geosr::data::Dataset) -> usize {
    let model: geosr::model::GeoSr<Flex> =
        geosr::model::GeoSr::new(&config.model, geosr::model::ModelDims::of(data), &Default::default());
    model.answering_params()
}

/// Parameters of a run's model, from its config alone.
fn planned_params(config: &geosr::config::Config) -> String {
    match geosr::data::model_dims(&config.data) {
        Ok(dims) => geosr::model::GeoSr::<Flex>::new(&config.model, dims, &Default::default()).answering_params().to_string(),
        Err(e) => format!("? ({e})"),
    }
}

/// Runs each spec in turn; returns how many failed.
fn execute<B: AutodiffBackend>(runs: &[RunSpec], opts: &RunOptions, devices: &[B::Device], fail_fast: bool) -> Result<usize> {
    // A dirty tree under --require-clean is refused before anything runs.
    if let Some(spec) = runs.iter().find(|s| opts.require_clean || s.resolved.config.output.require_clean) {
        launch::check_clean(spec, &RunOptions { require_clean: true, ..opts.clone() })?;
    }
    let mut failed = 0;
    for (i, spec) in runs.iter().enumerate() {
        println!("[{}/{}] {} seed {} ({})", i + 1, runs.len(), spec.label, spec.seed, spec.id);
        let mut watcher = StepWatcher::new();
        let outcome = launch::run_one::<B>(spec, opts, devices, &mut |row, total| watcher.update(row, total));
        watcher.finish();
        // A run that cannot even record its failure (a full disk) still does not stop the others.
        let outcome = outcome.unwrap_or_else(|e| Outcome::Failed { dir: launch::run_dir(spec).path, reason: e.to_string() });
        match outcome {
            Outcome::Done { dir, eval } => {
                // The probe columns show how the score moves when a stream is zeroed.
                println!(
                    "  {:<16} {:>6} {:>6} {:>6} {:>5}  {:>9} {:>9} {:>6}",
                    "subtask", "score", "chance", "prior", "n", "no geo.", "no vision", "alpha"
                );
                for row in &eval {
                    let alpha = row.alpha.map(|a| format!("{a:.2}")).unwrap_or_else(|| "-".into());
                    let prior = row.prior.map(|p| format!("{p:.1}")).unwrap_or_else(|| "-".into());
                    println!(
                        "  {:<16} {:>6.1} {:>6.1} {:>6} {:>5}  {:>+9.1} {:>+9.1} {:>6}",
                        row.name, row.score, row.chance, prior, row.questions, 0.0 - row.drop_no_geometry, 0.0 - row.drop_no_vision, alpha
                    );
                }
                println!("  -> {}", dir.display());
            }
            Outcome::Skipped { dir } => println!("  already done: {}", dir.display()),
            Outcome::Busy { dir } => println!("  another process is training it: {}", dir.display()),
            Outcome::Failed { dir, reason } => {
                failed += 1;
                println!("  FAILED: {reason} ({})", dir.display());
                if fail_fast && i + 1 < runs.len() {
                    println!("--fail-fast: skipping the remaining {} run(s)", runs.len() - i - 1);
                    break;
                }
            }
        }
    }
    Ok(failed)
}

/// Training progress a person can watch: a progress bar with loss, throughput and
/// ETA on a terminal; a plain line every tenth of the run otherwise (CI, Slurm logs).
struct StepWatcher {
    bar: Option<indicatif::ProgressBar>,
    interactive: bool,
}

impl StepWatcher {
    fn new() -> StepWatcher {
        use std::io::IsTerminal;
        StepWatcher { bar: None, interactive: std::io::stdout().is_terminal() }
    }

    fn update(&mut self, row: &geosr::train::StepRow, total: usize) {
        let done = row.step + 1;
        if self.interactive {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("  {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                        .expect("valid template"),
                );
                bar
            });
            bar.set_position(done as u64);
            bar.set_message(format!("loss {:.4}  {:.0} samples/s", row.loss, row.samples_per_s));
        } else if done == total || done % (total / 10).max(1) == 0 {
            println!(
                "  step {done}/{total}  loss {:.4}  lr {:.2e}  {:.0} samples/s  {:.0}s",
                row.loss, row.lr, row.samples_per_s, row.elapsed_s
            );
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

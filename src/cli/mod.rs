//! The commands: their arguments, and which module runs each.

pub mod exit;
pub mod process;

mod archive;
mod args;
mod backend;
mod docs;
mod execute;
mod inspect;
mod live;
mod report;
mod run;
mod runs;
mod speed;
mod sweep;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use args::ExperimentArgs;

#[derive(Parser)]
#[command(name = "geosr", version, about = "Reproduce and extend the GeoSR ablations from declarative configs")]
pub struct Cli {
    /// The run store: the folder that holds every run (default: <results>/store). Put it on
    /// shared storage to share runs between working directories, Slurm nodes and people;
    /// each run is trained by one process, the others skip it while it trains.
    #[arg(long, global = true, value_name = "DIR", env = geosr::runs::store::STORE_ENV)]
    pub store: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Runs the command, with the store `--store` names in force for this process and
    /// the processes it starts (a sweep's runs, Slurm tasks).
    pub fn run(self) -> Result<ExitCode> {
        if let Some(dir) = &self.store {
            let dir = shared_store(dir)?;
            // Set before this process starts any thread (what makes set_var sound).
            std::env::set_var(geosr::runs::store::STORE_ENV, dir);
        }
        self.command.run()
    }
}

/// `--store DIR` made absolute (runs link to it from any working directory), after
/// checking that it is a folder or can become one.
fn shared_store(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    if dir.as_os_str().is_empty() {
        return Err(exit::Usage("--store: expected a folder, got an empty path".into()).into());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(exit::Usage(format!("--store {}: not a folder", dir.display())).into());
    }
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--store {}: {e}", dir.display()))?;
    Ok(std::fs::canonicalize(dir)?)
}

#[derive(Subcommand)]
pub enum Command {
    /// Inspect resolved configurations.
    Config {
        #[command(subcommand)]
        command: inspect::ConfigCommand,
    },
    /// List every run an experiment expands to, with its status, without running anything.
    Plan(ExperimentArgs),
    /// Train and evaluate the runs of an experiment (all, or those selected).
    Run(run::RunArgs),
    /// The main job: a sweep of the experiment (finished runs are skipped), then its table
    /// with the paper's numbers and claims, written to results/tables/, and its figure,
    /// drawn to results/plots/.
    Reproduce(sweep::ReproduceArgs),
    /// Run every run of an experiment that is not done yet: skips finished runs, resumes
    /// interrupted ones, redoes failed ones, and keeps going when one fails.
    Sweep(sweep::SweepArgs),
    /// Run the run at one index of an experiment's plan (what each Slurm array task runs).
    RunIndex(run::RunIndexArgs),
    /// Rebuild an experiment's table from its stored runs.
    Table(report::TableArgs),
    /// Done, running, failed and pending runs per variant and seed.
    Status(inspect::StatusArgs),
    /// Score a predictions file from any model with the benchmark's official protocol.
    Score(report::ScoreArgs),
    /// Measure training speed (steps/s, samples/s) of one run on every compiled backend.
    Speed(speed::SpeedArgs),
    /// The former name of `speed`.
    #[command(hide = true)]
    Bench(speed::SpeedArgs),
    /// Config keys, per-subtask scores and provenance that differ between two stored runs.
    Diff(inspect::DiffArgs),
    /// Write one self-contained HTML page for an experiment to results/reports/: its
    /// table with the paper's numbers, the claims with CIs, the figures and learning
    /// curves, and each run's provenance and config.
    Report(ExperimentArgs),
    /// Stored runs across experiments, filtered and sorted by any config key, score,
    /// provenance field or tag, as a table, CSV or JSON.
    Runs(runs::RunsArgs),
    /// Set or remove a run's tags (KEY=VALUE) and note, or show them.
    Tag(runs::TagArgs),
    /// Draw an experiment's figure from its stored runs to results/plots/EXPERIMENT.{svg,png}:
    /// grouped bars per subtask and Avg., or Avg. against the swept values for a sweep.
    Plot(report::PlotArgs),
    /// Pack the finished runs of experiments (config, manifest, scores, predictions, logs,
    /// tags; weights when asked) into one Parquet file that pandas, polars and DuckDB read.
    Archive(archive::ArchiveArgs),
    /// Restore the runs of archives (default: every results/archive/*.parquet) into the
    /// store, after checking every hash; a run the store holds with other results is kept.
    Import(archive::ImportArgs),
    /// Rewrite the generated blocks (`<!-- geosr: COMMAND -->` ... `<!-- /geosr -->`) of
    /// README.md and docs/*.md from the stored runs; `--check` names those that differ.
    Docs(docs::DocsArgs),
}

impl Command {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Command::Config { command } => inspect::config(command),
            Command::Plan(args) => inspect::plan(args),
            Command::Run(args) => run::run(args),
            Command::Reproduce(args) => sweep::reproduce(args),
            Command::Sweep(args) => sweep::sweep(args),
            Command::RunIndex(args) => run::run_index(args),
            Command::Table(args) => report::table(args),
            Command::Status(args) => inspect::status(args),
            Command::Score(args) => report::score(args),
            Command::Speed(args) => speed::speed(args),
            Command::Bench(args) => {
                eprintln!("note: `geosr bench` is now `geosr speed`");
                speed::speed(args)
            }
            Command::Diff(args) => inspect::diff(args),
            Command::Plot(args) => report::plot(args),
            Command::Report(args) => report::report(args),
            Command::Runs(args) => runs::runs(args),
            Command::Tag(args) => runs::tag(args),
            Command::Archive(args) => archive::archive(args),
            Command::Import(args) => archive::import(args),
            Command::Docs(args) => docs::docs(args),
        }
    }
}

//! `archive` and `import`: finished runs to one Parquet file and back into a store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use geosr::archive::{self, ArchiveError, ArchivedRun, PackOptions};
use geosr::launch::sweep::{states, RunState};

use super::args::{ExperimentArgs, Overrides};
use super::exit::Usage;

#[derive(clap::Args)]
pub struct ArchiveArgs {
    /// Experiments whose finished runs to pack (names under experiments/ or paths).
    #[arg(required = true, value_name = "EXPERIMENT")]
    experiments: Vec<String>,
    /// Each experiment's [[controls]] too.
    #[arg(long)]
    controls: bool,
    /// The archive to write (default: results/archive/NAME.parquet, NAME the experiments
    /// joined by '+'); replaced whole, so it holds what is finished now.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep each run's final weights (model/model.mpk), about 0.7 MB a run at quick's scale.
    #[arg(long)]
    weights: bool,
    /// Keep every step of train.csv (default: every 8th step and the last).
    #[arg(long)]
    full_log: bool,
    #[command(flatten)]
    overrides: Overrides,
    /// As for `sweep`: the runs of a --grid multirun.
    #[arg(long = "grid", value_name = "KEY=V1,V2,..")]
    grid: Vec<String>,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Archives to import (default: every results/archive/*.parquet).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The results folder whose store and experiment entries receive the runs (the store
    /// is --store when given).
    #[arg(long, value_name = "DIR", default_value = "results")]
    results: PathBuf,
}

pub fn archive(args: ArchiveArgs) -> Result<ExitCode> {
    let opts = PackOptions { weights: args.weights, full_log: args.full_log };
    // Run id -> (the folder, its manifest, the entries that link it).
    let mut found: BTreeMap<String, (geosr::runs::RunDir, geosr::runs::Manifest, BTreeSet<(String, String)>)> = BTreeMap::new();
    let mut left_out: BTreeMap<String, usize> = BTreeMap::new();
    let mut results_dir = None;
    for name in &args.experiments {
        let base = ExperimentArgs { experiment: name.clone(), overrides: args.overrides.clone(), grid: args.grid.clone(), control: None };
        for condition in base.conditions(args.controls)? {
            let plan = condition.load()?.plan()?;
            for (spec, state) in plan.iter().zip(states(&plan)?) {
                results_dir.get_or_insert_with(|| PathBuf::from(&spec.resolved.config.output.results_dir));
                if state != RunState::Done {
                    *left_out.entry(state.word().to_string()).or_default() += 1;
                    continue;
                }
                let dir = geosr::runs::run_dir(spec);
                let manifest = dir.read_manifest()?.expect("a done run has a manifest");
                let entry = found.entry(spec.id.clone()).or_insert_with(|| (dir, manifest, BTreeSet::new()));
                entry.2.insert((spec.experiment.clone(), spec.dir_name()));
            }
        }
    }
    if found.is_empty() {
        return Err(Usage(format!("nothing to archive: no run of {} is done ({})", args.experiments.join(", "), counts(&left_out))).into());
    }
    let runs = found
        .into_values()
        .map(|(dir, manifest, entries)| ArchivedRun::from_dir(&dir, &manifest, entries, opts))
        .collect::<Result<Vec<_>, _>>()?;
    let out = args.out.unwrap_or_else(|| {
        let name = args.experiments.iter().map(|e| experiment_stem(e)).collect::<Vec<_>>().join("+");
        results_dir.unwrap_or_else(|| "results".into()).join("archive").join(format!("{name}.parquet"))
    });
    archive::write(&out, &runs)?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!("archived {} run(s) to {} ({:.1} MB)", runs.len(), out.display(), bytes as f64 / 1e6);
    if !left_out.is_empty() {
        println!("left out, not done: {}", counts(&left_out));
    }
    Ok(ExitCode::SUCCESS)
}

/// `experiments/table3.toml` and `table3` both name `table3`.
fn experiment_stem(arg: &str) -> String {
    std::path::Path::new(arg).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| arg.to_string())
}

fn counts(by_state: &BTreeMap<String, usize>) -> String {
    if by_state.is_empty() {
        return "none".into();
    }
    by_state.iter().map(|(state, n)| format!("{n} {state}")).collect::<Vec<_>>().join(", ")
}

pub fn import(args: ImportArgs) -> Result<ExitCode> {
    let files = if args.files.is_empty() { archive_files(&args.results)? } else { args.files.clone() };
    if files.is_empty() {
        return Err(Usage(format!("no archive to import: {} has no .parquet file", args.results.join("archive").display())).into());
    }
    // Every archive is read and checked before any run is written: a damaged one stops
    // the import with nothing changed.
    let mut all = Vec::new();
    for file in &files {
        all.push((file, archive::read(file).map_err(bad_archive)?));
    }
    let mut conflicts = 0;
    for (file, runs) in all {
        let report = archive::restore(&args.results, &runs)?;
        println!(
            "{}: {} run(s): {} imported, {} already in the store, {} conflict(s)",
            file.display(),
            runs.len(),
            report.imported.len(),
            report.present.len(),
            report.conflicts.len()
        );
        for (run, why) in &report.conflicts {
            eprintln!("conflict: run {run}: {why}");
        }
        report.notes.iter().for_each(|n| eprintln!("note: {n}"));
        conflicts += report.conflicts.len();
    }
    if conflicts > 0 {
        eprintln!("{conflicts} run(s) not imported: the store's copy was kept");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// A damaged or foreign archive is bad input (exit 2); a failing disk is not.
fn bad_archive(e: ArchiveError) -> anyhow::Error {
    match e {
        ArchiveError::Unreadable { .. } | ArchiveError::BadRun { .. } => Usage(e.to_string()).into(),
        other => other.into(),
    }
}

/// The `.parquet` files of `<results>/archive/`, sorted.
fn archive_files(results: &std::path::Path) -> Result<Vec<PathBuf>> {
    let dir = results.join("archive");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "parquet")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", dir.display())),
    };
    files.sort();
    Ok(files)
}

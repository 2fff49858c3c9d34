//! `plan`, `status`, `config show` and `diff`: what an experiment expands to and where
//! its runs stand, without running anything.

use std::process::ExitCode;

use anyhow::Result;
use burn::backend::Flex;
use geosr::config::layers::resolve;
use geosr::config::{ConfigError, Layer};
use geosr::launch::{self, sweep::RunState};
use geosr::runs;
use tabled::{builder::Builder, settings::Style};

use super::args::{self, ExperimentArgs, Overrides};
use super::report::stray_notes;

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved config of one run and, for each key, the layer that set it.
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct ShowArgs {
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
    experiment: ExperimentArgs,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// A run id (or a unique prefix of one) under results/runs/, or a run folder.
    run_a: String,
    run_b: String,
    // Only output.results_dir is read, to find runs given by id.
    #[command(flatten)]
    overrides: Overrides,
}

pub fn config(command: ConfigCommand) -> Result<ExitCode> {
    let ConfigCommand::Show(args) = command;
    let loaded = args.experiment.load()?;
    let exp = &loaded.exp;
    let (env, sets) = (&loaded.env, &loaded.sets);
    let seed = args.seed.unwrap_or(exp.file.seeds[0]);
    let spec = match &args.label {
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
            exp.run_spec(v, point, seed, env, sets)?
        }
        None => {
            let v = match &args.variant {
                Some(label) => args::variant(exp, label)?,
                None => &exp.file.variants[0],
            };
            exp.run_spec(v, &exp.sweep_points()[0], seed, env, sets)?
        }
    };
    println!("# {} | run {} | seed {} | id {}", exp.path.display(), spec.label, seed, spec.id);
    let mut b = Builder::default();
    b.push_record(["key", "value", "set by"]);
    for (key, (value, source)) in &spec.resolved.provenance {
        b.push_record([key.as_str(), value.as_str(), source.as_str()]);
    }
    println!("{}", b.build().with(Style::psql()));
    Ok(ExitCode::SUCCESS)
}

pub fn plan(args: ExperimentArgs) -> Result<ExitCode> {
    let loaded = args.load()?;
    let runs = loaded.plan()?;
    println!("# {}: {} ({} runs)", loaded.exp.name, loaded.exp.file.title, runs.len());
    let states = launch::sweep::states(&runs)?;
    let mut b = Builder::default();
    b.push_record(["label", "seed", "run id", "params", "status", "folder"]);
    for (r, state) in runs.iter().zip(&states) {
        let dir = runs::run_dir(r).path.display().to_string();
        let params = planned_params(&r.resolved.config);
        b.push_record([r.label.clone(), r.seed.to_string(), r.id.clone(), params, state.word().to_string(), dir]);
    }
    println!("{}", b.build().with(Style::psql()));
    Ok(ExitCode::SUCCESS)
}

/// Parameters of a run's model, from its config alone.
fn planned_params(config: &geosr::config::Config) -> String {
    match geosr::data::model_dims(&config.data) {
        Ok(dims) => geosr::model::GeoSr::<Flex>::new(&config.model, dims, &Default::default()).answering_params().to_string(),
        Err(e) => format!("? ({e})"),
    }
}

pub fn status(args: ExperimentArgs) -> Result<ExitCode> {
    let loaded = args.load()?;
    let plan = loaded.plan()?;
    let states = launch::sweep::states(&plan)?;
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut b = Builder::default();
    b.push_record(["label", "seed", "status", "commit", "detail"]);
    let mut stale = 0;
    for (spec, state) in plan.iter().zip(&states) {
        *counts.entry(state.word()).or_default() += 1;
        let manifest = runs::run_dir(spec).read_manifest().ok().flatten();
        let commit = manifest.as_ref().and_then(|m| m.provenance.build.as_ref()).map(|b| b.short()).unwrap_or_default();
        let mut detail = state.detail();
        if *state == RunState::Done && manifest.as_ref().is_some_and(runs::is_stale) {
            stale += 1;
            detail = format!("trained by other code than this build ({})", geosr::runs::manifest::Build::current().short());
        }
        b.push_record([spec.label.clone(), spec.seed.to_string(), state.word().to_string(), commit, detail]);
    }
    println!("{}", b.build().with(Style::psql()));
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!("{}: {} runs: {}", loaded.exp.name, plan.len(), summary.join(", "));
    if stale > 0 {
        println!(
            "{stale} finished run(s) were trained by other code; `geosr sweep {} --rerun-stale` trains them again",
            args.experiment
        );
    }
    stray_notes(&loaded.exp, &plan);
    Ok(ExitCode::SUCCESS)
}

pub fn diff(args: DiffArgs) -> Result<ExitCode> {
    let (env, sets) = args.overrides.layers()?;
    let layers: Vec<Layer> = std::iter::once(Layer::defaults()).chain(env).chain(sets).collect();
    let results = std::path::PathBuf::from(resolve(&layers)?.config.output.results_dir);
    let a = geosr::runs::find_run(&results, &args.run_a)?;
    let b = geosr::runs::find_run(&results, &args.run_b)?;
    print!("{}", geosr::report::diff::diff(&a, &b)?.render());
    Ok(ExitCode::SUCCESS)
}

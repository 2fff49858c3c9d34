//! `runs` and `tag`: stored runs across experiments, listed, filtered and sorted by any
//! setting or score; and a person's tags and note on a run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use geosr::config::layers::resolve;
use geosr::config::Layer;
use geosr::runs::query::{self, Field, Filter, RunRecord};
use tabled::{builder::Builder, settings::Style};

use super::args::Overrides;
use super::exit::Usage;

#[derive(clap::Args)]
pub struct RunsArgs {
    /// Only the runs this experiment's plans link (its name under results/runs/); repeatable.
    #[arg(long)]
    experiment: Vec<String>,
    /// Keep the runs where KEY OP VALUE holds, OP one of == != >= <= > < ~ (contains);
    /// repeatable, all must hold. Keys: config keys (model.mask.gamma), metrics.avg and
    /// metrics.<subtask>, run.* (id, experiment, label, seed, status, backend, ...) and tags.*.
    #[arg(long = "where", value_name = "FILTER")]
    filters: Vec<String>,
    /// The columns, comma-separated (default: the run, the config keys that differ among
    /// the runs shown, and metrics.avg).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Sort by this key (numbers as numbers; runs without it last).
    #[arg(long)]
    sort: Option<String>,
    /// Sort from the largest down.
    #[arg(long, requires = "sort")]
    desc: bool,
    #[arg(long, value_enum, default_value_t = RunsFormat::Term)]
    format: RunsFormat,
    /// List every key the selected runs have, instead of the runs.
    #[arg(long)]
    keys: bool,
    /// Also write the selected runs' scalars (loss, learning rate, held-out and final
    /// scores) as TensorBoard event files under DIR/<experiment>/<label>-s<seed>-<id>/;
    /// then `tensorboard --logdir DIR`.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// Also log the selected runs to the MLflow tracking server at URI (e.g.
    /// http://127.0.0.1:5000): an MLflow experiment per geosr experiment, the config as
    /// params, the scalars as metrics with their steps, the provenance as tags. A run the
    /// server has (by its geosr run id) is not logged again.
    #[arg(long, value_name = "URI")]
    mlflow: Option<String>,
    // Only output.results_dir is read, to find the store.
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RunsFormat {
    Term,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct TagArgs {
    /// A run id (or a unique prefix of one), or a run folder.
    run: String,
    /// Tags to set, KEY=VALUE (repeatable); query them as tags.KEY.
    #[arg(value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// A free-text note on the run (replaces the old one; "" removes it); query it as run.note.
    #[arg(long)]
    note: Option<String>,
    /// Tags to remove (repeatable).
    #[arg(long, value_name = "KEY")]
    remove: Vec<String>,
    #[command(flatten)]
    overrides: Overrides,
}

/// The results folder that `--set output.results_dir=...` (or the environment) names.
pub fn results_dir(overrides: &Overrides) -> Result<PathBuf> {
    let (env, sets) = overrides.layers()?;
    let layers: Vec<Layer> = std::iter::once(Layer::defaults()).chain(env).chain(sets).collect();
    Ok(PathBuf::from(resolve(&layers)?.config.output.results_dir))
}

const RUN_COLUMNS: [&str; 5] = ["run.id", "run.experiment", "run.label", "run.seed", "run.status"];

pub fn runs(args: RunsArgs) -> Result<ExitCode> {
    // A folder that cannot be one is the caller's to fix (exit 2), found before anything runs.
    if let Some(out) = &args.tensorboard {
        if out.exists() && !out.is_dir() {
            return Err(Usage(format!("--tensorboard {}: not a folder", out.display())).into());
        }
        std::fs::create_dir_all(out).map_err(|e| Usage(format!("--tensorboard {}: cannot make this folder: {e}", out.display())))?;
    }
    let results = results_dir(&args.overrides)?;
    let all = query::scan(&results)?;
    for r in &all {
        if let Some(problem) = r.get("run.problem") {
            eprintln!("warning: {}: {} (listed as damaged)", r.dir.path.display(), problem.text());
        }
    }
    let filters: Vec<Filter> = args.filters.iter().map(|f| f.parse()).collect::<Result<_, _>>().map_err(|e| Usage(format!("{e}")))?;
    for f in &filters {
        query::check_key(&all, &f.key, "--where").map_err(|e| Usage(e.to_string()))?;
        f.check_value(&all).map_err(|e| Usage(e.to_string()))?;
    }
    for c in &args.columns {
        query::check_key(&all, c, "--columns").map_err(|e| Usage(e.to_string()))?;
    }
    if let Some(key) = &args.sort {
        query::check_key(&all, key, "--sort").map_err(|e| Usage(e.to_string()))?;
    }
    let known: Vec<String> = all.iter().flat_map(|r| r.experiments()).collect();
    for e in &args.experiment {
        if !known.contains(e) {
            let mut names = known.clone();
            names.sort();
            names.dedup();
            return Err(Usage(format!("--experiment {e}: no stored run belongs to it; experiments with runs: {names:?}")).into());
        }
    }
    let mut selected: Vec<RunRecord> = all
        .into_iter()
        .filter(|r| args.experiment.is_empty() || r.experiments().iter().any(|e| args.experiment.contains(e)))
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    // A run several experiments share shows, under --experiment, the label that experiment gives it.
    if let [only] = args.experiment.as_slice() {
        for r in &mut selected {
            narrow_to(r, only);
        }
    }
    if let Some(key) = &args.sort {
        query::sort_by(&mut selected, key, args.desc);
    }
    if let Some(out) = &args.tensorboard {
        for r in &selected {
            let text = |k: &str| r.get(k).map(Field::text).unwrap_or_default();
            let experiment = text("run.experiment").split(',').next().unwrap_or("").to_string();
            let label = text("run.label").split(',').next().unwrap_or("").to_string();
            let name = format!("{}/{}-s{}-{}", if experiment.is_empty() { "unlinked" } else { &experiment }, label, text("run.seed"), text("run.id"));
            let path = geosr::report::tensorboard::export_run(&r.dir, out, &name)?;
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(uri) = &args.mlflow {
        let mut client = geosr::report::mlflow::Client::connect(uri)?;
        let (mut new, mut already) = (0, 0);
        for r in &selected {
            match client.push(r)? {
                geosr::report::mlflow::Pushed::New(_) => new += 1,
                geosr::report::mlflow::Pushed::Already(_) => already += 1,
            }
        }
        eprintln!("MLflow at {uri}: {new} run(s) logged, {already} already there");
    }
    if args.keys {
        let keys: std::collections::BTreeSet<&String> = selected.iter().flat_map(|r| r.fields.keys()).collect();
        keys.iter().for_each(|k| println!("{k}"));
        return Ok(ExitCode::SUCCESS);
    }
    let columns: Vec<String> = if args.columns.is_empty() {
        let mut c: Vec<String> = RUN_COLUMNS.iter().map(|s| s.to_string()).collect();
        if !selected.is_empty() {
            c.extend(query::varying_config_keys(&selected));
        }
        c.push("metrics.avg".into());
        c
    } else {
        args.columns.clone()
    };
    match args.format {
        RunsFormat::Term => {
            let mut b = Builder::default();
            b.push_record(columns.iter().map(|c| c.strip_prefix("run.").unwrap_or(c).to_string()));
            for r in &selected {
                b.push_record(columns.iter().map(|c| r.get(c).map_or_else(String::new, |f| term_text(c, f))));
            }
            println!("{}", b.build().with(Style::psql()));
            println!("{} run(s) under {}", selected.len(), results.display());
        }
        RunsFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(&columns)?;
            for r in &selected {
                w.write_record(columns.iter().map(|c| r.get(c).map(Field::text).unwrap_or_default()))?;
            }
            w.flush()?;
        }
        RunsFormat::Json => {
            // Written by hand so each object keeps the columns' order (a serde_json map
            // would sort its keys).
            let rows: Vec<String> = selected
                .iter()
                .map(|r| {
                    let fields: Vec<String> = columns
                        .iter()
                        .map(|c| format!("{}: {}", serde_json::Value::from(c.as_str()), r.get(c).map_or(serde_json::Value::Null, Field::to_json)))
                        .collect();
                    format!("  {{{}}}", fields.join(", "))
                })
                .collect();
            println!("[\n{}\n]", rows.join(",\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps, of a shared run's experiments and labels, the one `experiment` gives it.
fn narrow_to(record: &mut RunRecord, experiment: &str) {
    let exps = record.experiments();
    let labels: Vec<String> =
        record.get("run.label").map(|f| f.text().split(',').map(str::to_string).collect()).unwrap_or_default();
    if let Some(i) = exps.iter().position(|e| e == experiment) {
        record.fields.insert("run.experiment".into(), Field::Text(experiment.to_string()));
        if let Some(label) = labels.get(i).or(labels.first()) {
            record.fields.insert("run.label".into(), Field::Text(label.clone()));
        }
    }
}

/// Scores to one decimal place more than the paper prints, the rest as stored.
fn term_text(key: &str, field: &Field) -> String {
    match field {
        Field::Float(f) if key.starts_with("metrics.") => format!("{f:.2}"),
        other => other.text(),
    }
}

pub fn tag(args: TagArgs) -> Result<ExitCode> {
    if args.tags.is_empty() && args.note.is_none() && args.remove.is_empty() {
        // Nothing to change: show what the run has.
        let dir = geosr::runs::find_run(&results_dir(&args.overrides)?, &args.run)?;
        let tags = geosr::runs::tags::read(&dir)?;
        for (k, v) in &tags.tags {
            println!("{k}={v}");
        }
        if let Some(note) = &tags.note {
            println!("note: {note}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let parsed: Vec<(String, String)> =
        args.tags.iter().map(|t| geosr::runs::tags::parse_tag(t)).collect::<Result<_, _>>().map_err(Usage)?;
    let dir = geosr::runs::find_run(&results_dir(&args.overrides)?, &args.run)?;
    let mut missing = Vec::new();
    let tags = geosr::runs::tags::update(&dir, |tags| {
        for key in &args.remove {
            if tags.tags.remove(key).is_none() {
                missing.push(key.clone());
            }
        }
        tags.tags.extend(parsed);
        if let Some(note) = args.note {
            tags.note = (!note.is_empty()).then_some(note);
        }
    })?;
    for key in missing {
        eprintln!("note: {} has no tag `{key}`", dir.path.display());
    }
    println!("{}: {}", dir.path.display(), describe(&tags));
    Ok(ExitCode::SUCCESS)
}

fn describe(tags: &geosr::runs::tags::Tags) -> String {
    let mut parts: Vec<String> = tags.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(note) = &tags.note {
        parts.push(format!("note {note:?}"));
    }
    if parts.is_empty() {
        "no tags".into()
    } else {
        parts.join(", ")
    }
}

//! `plan`, `status`, `config show` and `diff`: what an experiment expands to and where
//! its runs stand, without running anything.

use std::process::ExitCode;

use anyhow::Result;
use burn::backend::Flex;
use geosr::config::ConfigError;
use geosr::launch::{self, sweep::RunState};
use geosr::runs;
use tabled::{builder::Builder, settings::Style};

use super::args::{self, ExperimentArgs, Overrides};
use super::exit::Usage;
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
    /// Two or more runs: run ids (or unique prefixes of them) or run folders. Two runs
    /// show B−A; more show one column each.
    #[arg(value_name = "RUN")]
    runs: Vec<String>,
    /// Instead of runs, an experiment's rows: one column per row, its scores the mean
    /// over the row's finished seeds.
    #[arg(long, conflicts_with = "runs")]
    experiment: Option<String>,
    /// With --experiment: its rows under one of its [[controls]].
    #[arg(long, requires = "experiment", value_name = "NAME")]
    control: Option<String>,
    /// With --experiment: its rows with a --grid axis, as `sweep --grid` trained them.
    #[arg(long = "grid", requires = "experiment", value_name = "KEY=V1,V2,..")]
    grid: Vec<String>,
    // With runs, only output.results_dir is read, to find runs given by id.
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
    let todo: Vec<f64> = unique_todo(&runs, &states);
    if !todo.is_empty() {
        println!("{}", time_to_train(&runs, &todo));
    }
    Ok(ExitCode::SUCCESS)
}

/// The work of each distinct run still to train (pending, interrupted, failed or damaged).
fn unique_todo(plan: &[geosr::config::RunSpec], states: &[RunState]) -> Vec<f64> {
    let mut seen = std::collections::HashSet::new();
    plan.iter()
        .zip(states)
        .filter(|(spec, state)| state.needs_run() && seen.insert(spec.id.clone()))
        .map(|(spec, _)| launch::progress::work(spec))
        .collect()
}

/// How long the runs left would take on this machine, at the pace of the runs of this
/// plan that finished here, or else of any run finished on this machine.
fn time_to_train(plan: &[geosr::config::RunSpec], todo: &[f64]) -> String {
    use geosr::launch::progress;
    let mut own = progress::Eta::default();
    let host = geosr::runs::manifest::this_host();
    let mut n = 0;
    for spec in plan {
        if let Ok(Some(m)) = runs::run_dir(spec).read_manifest() {
            if m.status == runs::Status::Done && m.provenance.host == host {
                own.finished(m.wall_seconds(), progress::work(spec));
                n += 1;
            }
        }
    }
    let (pace, source) = if own.has_data() {
        (own, format!("at the pace of this plan's {n} run(s) finished here"))
    } else {
        let results = std::path::PathBuf::from(&plan[0].resolved.config.output.results_dir);
        let (pace, n) = progress::host_pace(&results);
        (pace, format!("at the pace of {n} run(s) of any experiment finished on this machine, scaled by each run's FLOPs"))
    };
    match (pace.remaining_s(todo, &[], 1), pace.remaining_s(todo, &[], 2)) {
        (Some(one), Some(two)) => format!(
            "{} run(s) to train: about {} one at a time, {} two at a time ({source})",
            todo.len(),
            progress::duration(one),
            progress::duration(two)
        ),
        _ => format!("{} run(s) to train: no time estimate yet (no run has finished on this machine)", todo.len()),
    }
}

/// Parameters of a run's model, from its config alone.
fn planned_params(config: &geosr::config::Config) -> String {
    match geosr::data::model_dims(&config.data) {
        Ok(dims) => geosr::model::GeoSr::<Flex>::new(&config.model, dims, &Default::default()).answering_params().to_string(),
        Err(e) => format!("? ({e})"),
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Redraw every SECS seconds (default 5) until no run is running or queued.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "5")]
    watch: Option<u64>,
    /// The file's runs, then each of its [[controls]]' runs.
    #[arg(long, conflicts_with = "control")]
    controls: bool,
}

pub fn status(args: StatusArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let loaded = args.experiment.load()?;
    let plan = loaded.plan()?;
    // (control, plan) per condition shown.
    let mut shown = vec![(args.experiment.control.clone(), plan.clone())];
    if args.controls {
        args::no_controls(&loaded.exp)?;
        for (control, other) in loaded.other_plans() {
            shown.push((control, other?));
        }
    }
    let text = || -> Result<(String, bool)> {
        let mut out = String::new();
        let mut busy = false;
        for (control, plan) in &shown {
            // What a hint in the text tells the user to type: the same overrides.
            let mut command = args.experiment.experiment.clone();
            args.experiment.overrides.set.iter().for_each(|s| command.push_str(&format!(" --set {s}")));
            args.experiment.grid.iter().for_each(|g| command.push_str(&format!(" --grid {g}")));
            control.iter().for_each(|c| command.push_str(&format!(" --control {c}")));
            let (text, b) = status_text(&loaded.exp.name, &command, plan)?;
            if args.controls {
                out.push_str(&control.as_ref().map(|c| format!("\n# control `{c}`\n")).unwrap_or_default());
            }
            out.push_str(&text);
            busy |= b;
        }
        Ok((out, busy))
    };
    let Some(every) = args.watch else {
        print!("{}", text()?.0);
        stray_notes(&loaded, &plan, args.controls);
        return Ok(ExitCode::SUCCESS);
    };
    if every == 0 {
        return Err(Usage("--watch 0: expected a period of at least 1 second".into()).into());
    }
    let clear = std::io::stdout().is_terminal();
    loop {
        let (text, busy) = text()?;
        if clear {
            // Clear the screen and go home, so the table redraws in place.
            print!("\x1b[2J\x1b[H");
        }
        print!("{text}");
        if !busy {
            println!("nothing is running or queued: stopped watching");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_secs(every.max(1)));
    }
}

/// The status table, its summary and ETA; and whether any run is running or queued.
fn status_text(name: &str, experiment: &str, plan: &[geosr::config::RunSpec]) -> Result<(String, bool)> {
    use geosr::launch::progress;
    use std::fmt::Write;
    let states = launch::sweep::states(plan)?;
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut b = Builder::default();
    b.push_record(["label", "seed", "status", "commit", "detail"]);
    let mut stale = 0;
    let mut eta = progress::Eta::default();
    let (mut queued, mut running) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for (spec, state) in plan.iter().zip(&states) {
        *counts.entry(state.word()).or_default() += 1;
        let manifest = runs::run_dir(spec).read_manifest().ok().flatten();
        let commit = manifest.as_ref().and_then(|m| m.provenance.build.as_ref()).map(|b| b.short()).unwrap_or_default();
        let mut detail = state.detail();
        let first = seen.insert(spec.id.clone());
        match state {
            RunState::Done => {
                if let Some(m) = &manifest {
                    eta.finished(m.wall_seconds(), progress::work(spec));
                }
                if manifest.as_ref().is_some_and(runs::is_stale) {
                    stale += 1;
                    detail = format!("trained by other code than this build ({})", geosr::runs::manifest::Build::current().short());
                }
            }
            RunState::Running | RunState::SlurmRunning(_) => {
                let p = progress::read(spec);
                if let Some(p) = &p {
                    let at = format!("step {}/{}, loss {:.4}, {} left", p.done, p.total, p.loss, progress::duration(p.remaining_s()));
                    detail = if detail.is_empty() { at } else { format!("{detail}; {at}") };
                }
                if first {
                    running.push((progress::work(spec), p));
                }
            }
            // Left to do: what a sweep still running here (or Slurm) takes next.
            RunState::Queued(_) | RunState::Pending | RunState::Interrupted if first => queued.push(progress::work(spec)),
            _ => {}
        }
        b.push_record([spec.label.clone(), spec.seed.to_string(), state.word().to_string(), commit, detail]);
    }
    let mut out = String::new();
    writeln!(out, "{}", b.build().with(Style::psql()))?;
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    write!(out, "{name}: {} runs: {}", plan.len(), summary.join(", "))?;
    let queued_now = states.iter().filter(|s| matches!(s, RunState::Queued(_))).count();
    let busy = !running.is_empty() || queued_now > 0;
    if busy {
        // As many at once as run now: the left runs take those slots as they free.
        let at_once = running.len().max(1);
        match eta.remaining_s(&queued, &running, at_once) {
            Some(s) => write!(
                out,
                "; {} run(s) left: about {} at {at_once} at once",
                queued.len() + running.len(),
                progress::duration(s)
            )?,
            None => write!(out, "; ETA after the first logged steps")?,
        }
    } else if !queued.is_empty() {
        write!(out, "\n{}", time_to_train(plan, &queued))?;
    }
    writeln!(out)?;
    if stale > 0 {
        writeln!(
            out,
            "{stale} finished run(s) were trained by other code; `geosr sweep {experiment} --rerun-stale` trains them again"
        )?;
    }
    Ok((out, busy))
}

pub fn diff(args: DiffArgs) -> Result<ExitCode> {
    if let Some(experiment) = args.experiment {
        let loaded = ExperimentArgs { experiment, overrides: args.overrides, grid: args.grid, control: args.control }.load()?;
        let columns = row_columns(&loaded.plan()?);
        print!("{}", geosr::report::diff::diff_many(&columns).render());
        return Ok(ExitCode::SUCCESS);
    }
    if args.runs.len() < 2 {
        return Err(Usage("diff: expected two or more runs (ids, id prefixes or folders), or --experiment NAME".into()).into());
    }
    let results = super::runs::results_dir(&args.overrides)?;
    let dirs = args.runs.iter().map(|r| geosr::runs::find_run(&results, r)).collect::<Result<Vec<_>, _>>()?;
    if let [a, b] = dirs.as_slice() {
        print!("{}", geosr::report::diff::diff(a, b)?.render());
    } else {
        let columns = dirs.iter().map(geosr::report::diff::run_column).collect::<Result<Vec<_>, _>>()?;
        print!("{}", geosr::report::diff::diff_many(&columns).render());
    }
    Ok(ExitCode::SUCCESS)
}

/// An experiment's rows as diff columns: each row's resolved config (its seeds differ
/// only in the seed, which is left out) and the mean of its finished seeds' scores.
fn row_columns(plan: &[geosr::config::RunSpec]) -> Vec<geosr::report::diff::Column> {
    let mut columns: Vec<geosr::report::diff::Column> = Vec::new();
    // Per column, per subtask in eval.csv's order: (subtask, name, sum of scores, runs).
    let mut sums: Vec<Vec<(String, String, f64, usize)>> = Vec::new();
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for spec in plan {
        let i = match columns.iter().position(|c| c.name == spec.label) {
            Some(i) => i,
            None => {
                let config = spec
                    .resolved
                    .provenance
                    .iter()
                    .filter(|(k, _)| k.as_str() != "train.seed")
                    .map(|(k, (v, _))| (k.clone(), v.clone()))
                    .collect();
                columns.push(geosr::report::diff::Column { name: spec.label.clone(), config, ..Default::default() });
                sums.push(Vec::new());
                counts.push((0, 0));
                columns.len() - 1
            }
        };
        counts[i].1 += 1;
        let dir = runs::run_dir(spec);
        let Some(manifest) = dir.read_manifest().ok().flatten().filter(|m| m.status == runs::Status::Done) else { continue };
        let Ok(rows) = runs::verify_done(spec, &dir, &manifest) else { continue };
        counts[i].0 += 1;
        for r in rows {
            match sums[i].iter_mut().find(|s| s.0 == r.subtask) {
                Some(s) => {
                    s.2 += r.score;
                    s.3 += 1;
                }
                None => sums[i].push((r.subtask, r.name, r.score, 1)),
            }
        }
    }
    for ((col, sum), (done, total)) in columns.iter_mut().zip(sums).zip(counts) {
        col.scores = sum.into_iter().map(|(k, name, s, n)| (k, name, s / n as f64)).collect();
        col.source = format!("{done} of {total} seed(s) done");
    }
    columns
}

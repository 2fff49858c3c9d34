//! `table`, `plot` and `score`: results drawn from stored runs or from a predictions
//! file; and the tables and figure `reproduce` writes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use geosr::config::RunSpec;
use geosr::report::table::Format;
use geosr::report::{claims, plot};

use super::args::{ExperimentArgs, Loaded};
use super::exit::Usage;

#[derive(clap::Args)]
pub struct TableArgs {
    #[arg(long, value_enum, default_value_t = TableFormat::Term)]
    format: TableFormat,
    /// Put the paper's numbers beside ours.
    #[arg(long)]
    reference: bool,
    /// Avg. and the claims of the experiment and of each of its [[controls]], side by
    /// side (terminal or Markdown): which claims hold only because of what a control
    /// takes away.
    #[arg(long, conflicts_with = "control")]
    controls: bool,
    #[command(flatten)]
    experiment: ExperimentArgs,
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// vsi (VSI-Bench: macro average over 8 subtasks) or dsr (DSR-Bench: question-weighted).
    #[arg(long)]
    bench: BenchName,
    /// JSONL with question_type, prediction and ground_truth (vsi) or answer (dsr) per line.
    predictions: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TableFormat {
    Term,
    Md,
    Csv,
    Latex,
    /// Every cell's mean, spread, seeds and paper value, the runs behind each row and the
    /// claims, as one JSON object.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchName {
    Vsi,
    Dsr,
}

pub fn table(args: TableArgs) -> Result<ExitCode> {
    if args.reference {
        check_reference(&args.experiment.load()?.exp)?;
    }
    if args.controls {
        return controls_table(&args);
    }
    let loaded = args.experiment.load()?;
    let (exp, plan) = (&loaded.exp, loaded.plan()?);
    let table = geosr::report::table::build(exp, &plan, args.reference)?;
    let format = match args.format {
        TableFormat::Term => Format::Term,
        TableFormat::Md => Format::Markdown,
        TableFormat::Csv => Format::Csv,
        TableFormat::Latex => Format::Latex,
        TableFormat::Json => {
            let verdicts = if exp.file.claims.is_empty() { Vec::new() } else { claims::check(exp, &plan)? };
            let mut record = table.to_json();
            record["experiment"] = serde_json::json!(exp.name);
            record["claims"] = claims::to_json(&verdicts);
            println!("{}", serde_json::to_string_pretty(&record).expect("json serializes"));
            table.notes.iter().for_each(|n| eprintln!("{n}"));
            stray_notes(&loaded, &plan, false);
            return Ok(ExitCode::SUCCESS);
        }
    };
    print!("{}", table.render(format));
    let text = matches!(format, Format::Term | Format::Markdown);
    if !exp.file.claims.is_empty() && format != Format::Csv {
        let verdicts = claims::check(exp, &plan)?;
        let rendered = match format {
            Format::Markdown => claims::render_markdown(&verdicts),
            Format::Latex => format!("% Claims. {}\n{}", claims::METHOD, claims::render_latex(&verdicts)),
            _ => claims::render(&verdicts),
        };
        print!("\n{rendered}");
    }
    // Machine formats stay clean; what a reader must know goes to stderr.
    if !text {
        table.notes.iter().for_each(|n| eprintln!("{n}"));
    }
    stray_notes(&loaded, &plan, false);
    Ok(ExitCode::SUCCESS)
}

/// `table --controls`: every condition's Avg. and claims in one view.
fn controls_table(args: &TableArgs) -> Result<ExitCode> {
    let markdown = match args.format {
        TableFormat::Term => false,
        TableFormat::Md => true,
        other => {
            return Err(Usage(format!("--controls: --format {other:?} is not available; expected term or md").to_lowercase()).into());
        }
    };
    let loaded = ExperimentArgs { control: None, ..args.experiment.clone() }.load()?;
    super::args::no_controls(&loaded.exp)?;
    let plan = loaded.plan()?;
    let conditions = loaded.conditions(&plan, args.reference)?;
    print!("{}", geosr::report::controls::render(&loaded.exp.file.title, &conditions, markdown));
    stray_notes(&loaded, &plan, true);
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct PlotArgs {
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Draw the learning curves instead: training loss and held-out score against the
    /// step, per row (mean ± std over seeds), to EXPERIMENT-curves.{svg,png}. Runs
    /// still training count with the steps they have logged.
    #[arg(long)]
    curves: bool,
    /// The folder to draw into (default: results/plots), e.g. docs/figures for a figure
    /// that `geosr docs` keeps in step with the stored runs.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn plot(args: PlotArgs) -> Result<ExitCode> {
    let loaded = args.experiment.load()?;
    let plan = loaded.plan()?;
    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from(&plan[0].resolved.config.output.results_dir).join("plots"));
    if args.curves {
        let Some(curves) = plot::learning(&loaded.exp.file.title, &plan)? else {
            // As `plot` without --curves: nothing to draw is the caller's to fix (exit 2).
            return Err(Usage(format!(
                "{}: no run has logged a training step yet (train.csv); start them with `geosr sweep {}`",
                loaded.exp.name, args.experiment.experiment
            ))
            .into());
        };
        if curves.without_curve > 0 {
            eprintln!(
                "note: {} run(s) logged no held-out scores (eval.every = 0), so only their loss is drawn; \
                 `--set eval.every=N` scores a held-out slice every N steps (finished runs train again only with `geosr run --force`)",
                curves.without_curve
            );
        }
        for path in plot::write(&plot::Figure::Learning(curves), &dir, &format!("{}-curves", loaded.exp.name))? {
            println!("wrote {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let figure = plot::figure(&loaded.exp, &plan);
    if figure.is_err() {
        stray_notes(&loaded, &plan, false);
    }
    for path in plot::write(&figure?, &dir, &loaded.exp.name)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--reference` needs the paper's numbers: an experiment without a `reference` CSV, or
/// with one that does not read, is refused rather than shown without them.
fn check_reference(exp: &geosr::config::Experiment) -> Result<()> {
    let Some(path) = &exp.file.reference else {
        return Err(Usage(format!(
            "--reference: {} has no `reference` (a CSV of the paper's numbers, as results/paper/table3.csv); drop the flag or add one",
            exp.path.display()
        ))
        .into());
    };
    let full = exp.root.join(path);
    geosr::report::paper::PaperTable::load(&full).map_err(|e| Usage(format!("{}: `reference` = {path:?}: {e}", exp.path.display())))?;
    Ok(())
}

/// Writes the experiment's report page under `<results>/reports/`; returns its path.
/// `verdicts` are the plan's claims and `controls` its conditions ([`Loaded::conditions`]),
/// passed in because each costs a bootstrap that the caller has often drawn already.
fn write_report(loaded: &Loaded, plan: &[RunSpec], verdicts: &[claims::Verdict], controls: &[geosr::report::controls::Condition]) -> Result<PathBuf> {
    let exp = &loaded.exp;
    let meta = geosr::report::html::PageMeta {
        written: geosr::runs::manifest::now_rfc3339(),
        build: geosr::runs::manifest::Build::current().short(),
        overrides: loaded.env.iter().chain(&loaded.sets).map(|l| l.name.clone()).collect(),
    };
    let html = geosr::report::html::page(exp, plan, verdicts, controls, &meta)?;
    let path = PathBuf::from(&plan[0].resolved.config.output.results_dir).join("reports").join(format!("{}.html", loaded.exp.name.clone()));
    geosr::runs::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

pub fn report(args: ExperimentArgs) -> Result<ExitCode> {
    let loaded = args.load()?;
    let plan = loaded.plan()?;
    let conditions = loaded.conditions(&plan, true)?;
    let (_, verdicts) = own_table(&loaded.exp, &plan, &conditions)?;
    // The page shows every condition when there are any.
    stray_notes(&loaded, &plan, !conditions.is_empty());
    println!("wrote {}", write_report(&loaded, &plan, &verdicts, &conditions)?.display());
    Ok(ExitCode::SUCCESS)
}

pub fn score(args: ScoreArgs) -> Result<ExitCode> {
    let bench = match args.bench {
        BenchName::Vsi => geosr::config::Bench::Static,
        BenchName::Dsr => geosr::config::Bench::Dynamic,
    };
    let report = geosr::eval::score::score_file(bench, &args.predictions)?;
    print!("{}", report.render_markdown());
    Ok(ExitCode::SUCCESS)
}

/// The table (with the paper's numbers) and claims of the file as written: the first
/// of `conditions` where the file has controls, so its bootstrap is not drawn twice.
fn own_table(
    exp: &geosr::config::Experiment,
    plan: &[RunSpec],
    conditions: &[geosr::report::controls::Condition],
) -> Result<(geosr::report::table::Table, Vec<claims::Verdict>)> {
    Ok(match conditions.first() {
        Some(own) => (own.table.clone(), own.verdicts.clone()),
        None => (geosr::report::table::build(exp, plan, true)?, claims::check(exp, plan)?),
    })
}

/// Reports the finished runs of the experiment that this plan leaves out, on stderr,
/// naming the control (or the file as written) a stray run belongs to. With
/// `all_shown` the file and each of its controls are on screen (`--controls`), so only
/// runs outside them all are stray.
pub fn stray_notes(loaded: &Loaded, plan: &[RunSpec], all_shown: bool) {
    use geosr::report::stray::unplanned_runs;
    let lines = if all_shown {
        let mut shown = plan.to_vec();
        shown.extend(loaded.other_plans().into_iter().filter_map(|(_, other)| other.ok()).flatten());
        unplanned_runs(&loaded.exp, &shown, &[], 10)
    } else {
        unplanned_runs(&loaded.exp, plan, &loaded.elsewhere(), 10)
    };
    for line in lines {
        eprintln!("note: {line}");
    }
}


/// The table, the claims and the figure of a plan: printed, and written under
/// `results/tables/` and `results/plots/` with a JSON record of the build, the
/// overrides and the run ids behind every row.
/// With `controls`, also the claims of every control beside the file's, to
/// `EXPERIMENT-controls.md`.
pub fn write_outputs(loaded: &Loaded, plan: &[RunSpec], controls: bool) -> Result<()> {
    let exp = &loaded.exp;
    // Both the controls' view and the report page show every condition's claims; one
    // bootstrap per condition serves them and the file's own table.
    let conditions = loaded.conditions(plan, true)?;
    let (table, verdicts) = own_table(exp, plan, &conditions)?;
    let claims = if verdicts.is_empty() { String::new() } else { format!("\n{}", claims::render(&verdicts)) };
    println!("\n{}{claims}", table.render(Format::Term));
    stray_notes(loaded, plan, controls);
    let name = loaded.exp.name.clone();
    let results = PathBuf::from(&plan[0].resolved.config.output.results_dir).join("tables");
    let build_info = geosr::runs::manifest::Build::current();
    let overrides: Vec<&str> = loaded.env.iter().chain(&loaded.sets).map(|l| l.name.as_str()).collect();
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
            Format::Latex => {
                if !verdicts.is_empty() {
                    text.push_str(&format!("\n% Claims. {}\n{}", claims::METHOD, claims::render_latex(&verdicts)));
                }
                text.push_str(&format!("% {footer}\n"));
            }
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
        // The same object as `table --format json`: the scores, not only the run ids.
        "table": table.to_json(),
        "claims": claims::to_json(&verdicts),
    });
    let path = results.join(format!("{name}.json"));
    geosr::runs::write_atomic(&path, &serde_json::to_vec_pretty(&record).expect("json serializes"))?;
    println!("wrote {}", path.display());
    // The figure is a convenience on top of the tables: a machine without a
    // font still gets its tables, and a warning says why there is no plot.
    let plots = results.parent().map(|r| r.join("plots")).unwrap_or_else(|| "plots".into());
    match plot::figure(exp, plan)
        .map_err(anyhow::Error::from)
        .and_then(|f| plot::write(&f, &plots, &name).map_err(anyhow::Error::from))
    {
        Ok(paths) => paths.iter().for_each(|p| println!("wrote {}", p.display())),
        Err(e) => eprintln!("warning: no plot: {e}"),
    }
    if controls {
        let view = geosr::report::controls::render(&exp.file.title, &conditions, true);
        println!("\n{view}");
        let path = results.join(format!("{name}-controls.md"));
        geosr::runs::write_atomic(&path, format!("{view}\n{footer}\n").as_bytes())?;
        println!("wrote {}", path.display());
    }
    println!("wrote {}", write_report(loaded, plan, &verdicts, &conditions)?.display());
    Ok(())
}

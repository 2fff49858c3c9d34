//! `geosr plot`: figures drawn from runs written by the test.

mod common;

use assert_cmd::Command;
use common::{eval_row, plan_in, store_run, Project};
use geosr::report::plot::{figure, render, write, Figure, ImageFormat, PlotError};
use geosr::runs::Provenance;
use predicates::prelude::*;

const BARS: &str = r#"
title = "Bars"
seeds = [0, 1]
reference = "paper.csv"
columns = ["obj_count", "abs_distance"]
[[variants]]
label = "a"
name = "Ours"
set = { "model.mask.kind" = "random" }
[[variants]]
label = "b"
name = "No masking"
set = { "model.mask.kind" = "none" }
"#;

const SWEEP: &str = r#"
title = "Sweep"
seeds = [0]
reference = "paper.csv"
[[variants]]
label = "g"
set = { "model.mask.kind" = "random" }
[[sweep.zip]]
"model.mask.gamma" = [0.8, 0.6, 0.8]
"model.mask.beta" = [0.5, 0.5, 0.3]
"#;

fn store(spec: &geosr::config::RunSpec, scores: [f64; 3]) {
    let rows = [eval_row("obj_count", scores[0], 0.0, 0.0), eval_row("abs_distance", scores[1], 0.0, 0.0), eval_row("avg_macro", scores[2], 0.0, 0.0)];
    store_run(spec, &rows, Provenance::collect("flex", "cpu"));
}

fn bars_project() -> (Project, geosr::config::Experiment, Vec<geosr::config::RunSpec>) {
    let p = Project::new();
    p.write("paper.csv", "setting,obj_count,abs_distance,avg\na,68.3,38.7,51.9\n");
    p.write("experiments/bars.toml", BARS);
    let (exp, plan) = plan_in(&p, "bars");
    (p, exp, plan)
}

#[test]
fn bars_carry_the_tables_means_stds_and_the_papers_numbers() {
    let (_p, exp, plan) = bars_project();
    store(&plan[0], [60.0, 40.0, 50.0]);
    store(&plan[1], [70.0, 44.0, 57.0]);
    store(&plan[2], [50.0, 48.0, 49.0]);
    let Figure::Bars(bars) = figure(&exp, &plan).unwrap() else { panic!("expected bars") };
    assert_eq!(bars.groups, ["Obj. Cnt.", "Abs. Dist.", "Avg."]);
    let a = &bars.series[0];
    let obj = a.values[0].unwrap();
    assert_eq!((obj.mean, obj.seeds), (65.0, 2));
    assert!((obj.std.unwrap() - 50f64.sqrt()).abs() < 1e-9);
    assert_eq!(a.paper, [Some(68.3), Some(38.7), Some(51.9)]);
    // One seed: a mean and no error bar.
    let b = &bars.series[1];
    assert_eq!(b.values[0].unwrap().std, None);
    assert_eq!(b.paper, [None, None, None]);
    // The stored runs have no question prior, so no prior line.
    assert_eq!(bars.prior, [None, None, None]);
}

#[test]
fn the_question_prior_is_drawn_when_the_runs_have_one() {
    let (_p, exp, plan) = bars_project();
    for spec in &plan[..3] {
        let mut rows: Vec<_> = ["obj_count", "abs_distance", "avg_macro"].iter().map(|k| eval_row(k, 50.0, 0.0, 0.0)).collect();
        for (r, prior) in rows.iter_mut().zip([31.0, 42.0, 36.5]) {
            r.prior = Some(prior);
        }
        store_run(spec, &rows, Provenance::collect("flex", "cpu"));
    }
    let Figure::Bars(bars) = figure(&exp, &plan).unwrap() else { panic!("expected bars") };
    assert_eq!(bars.prior, [Some(31.0), Some(42.0), Some(36.5)]);
    let svg = String::from_utf8(render(&Figure::Bars(bars), ImageFormat::Svg).unwrap()).unwrap();
    assert!(svg.contains("question prior (no model)"), "the legend names the prior line");
}

#[test]
fn plot_writes_an_svg_naming_every_variant_and_a_png() {
    let (p, exp, plan) = bars_project();
    for (spec, s) in plan.iter().zip([[60.0, 40.0, 50.0], [70.0, 44.0, 57.0], [50.0, 48.0, 49.0], [52.0, 46.0, 49.0]]) {
        store(spec, s);
    }
    let fig = figure(&exp, &plan).unwrap();
    let dir = p.path().join("results/plots");
    let paths = write(&fig, &dir, "bars").unwrap();
    assert_eq!(paths, [dir.join("bars.svg"), dir.join("bars.png")]);
    let svg = std::fs::read_to_string(&paths[0]).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    for name in ["(a) Ours", "(b) No masking", "paper (hollow bar)", "Obj. Cnt.", "Avg."] {
        assert!(svg.contains(name), "the SVG lacks {name}");
    }
    let png = std::fs::read(&paths[1]).unwrap();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_sweep_becomes_one_curve_per_axis_with_the_papers_points() {
    let p = Project::new();
    p.write("paper.csv", "axis,gamma,beta,avg\ngamma,0.8,0.5,66.1\ngamma,0.6,0.5,65.9\nbeta,0.8,0.3,64.9\nbeta,0.8,0.5,66.1\n");
    p.write("experiments/sweep.toml", SWEEP);
    let (exp, plan) = plan_in(&p, "sweep");
    // Labels: g_gamma0.8_beta0.5, g_gamma0.6_beta0.5, g_gamma0.8_beta0.3.
    for (spec, avg) in plan.iter().zip([61.0, 58.0, 55.0]) {
        store(spec, [0.0, 0.0, avg]);
    }
    let Figure::Curves(curves) = figure(&exp, &plan).unwrap() else { panic!("expected curves") };
    assert_eq!(curves.lines.len(), 2);
    let gamma = &curves.lines[0];
    assert_eq!(gamma.name, "gamma (beta = 0.5)");
    assert_eq!(gamma.points.iter().map(|(x, s)| (*x, s.mean)).collect::<Vec<_>>(), [(0.6, 58.0), (0.8, 61.0)]);
    assert_eq!(gamma.paper, [(0.6, 65.9), (0.8, 66.1)]);
    let beta = &curves.lines[1];
    assert_eq!(beta.name, "beta (gamma = 0.8)");
    assert_eq!(beta.points.iter().map(|(x, s)| (*x, s.mean)).collect::<Vec<_>>(), [(0.3, 55.0), (0.5, 61.0)]);
    assert_eq!(beta.paper, [(0.3, 64.9), (0.5, 66.1)]);
    let svg = String::from_utf8(render(&Figure::Curves(curves), ImageFormat::Svg).unwrap()).unwrap();
    assert!(svg.contains("gamma (beta = 0.5) (paper)") && svg.contains("Avg. (%)"));
}

/// A zipped sweep with a point that moves both keys at once (the shape of
/// `geometry-faults`) has no line through that point, so the figure is bars, with
/// every row; once only the on-axis points are finished it is curves again.
#[test]
fn a_sweep_point_off_every_axis_makes_bars_not_a_curve_without_it() {
    let p = Project::new();
    p.write(
        "experiments/corner.toml",
        r#"
title = "Corner"
seeds = [0]
[[variants]]
label = "g"
set = { "model.mask.kind" = "random" }
[[sweep.zip]]
"model.mask.gamma" = [0.8, 0.6, 0.8, 0.6]
"model.mask.beta" = [0.5, 0.5, 0.3, 0.3]
"#,
    );
    let (exp, plan) = plan_in(&p, "corner");
    for (spec, avg) in plan.iter().zip([61.0, 58.0, 55.0]) {
        store(spec, [0.0, 0.0, avg]);
    }
    assert!(matches!(figure(&exp, &plan).unwrap(), Figure::Curves(_)), "three points on two axes");
    store(&plan[3], [0.0, 0.0, 52.0]);
    let Figure::Bars(bars) = figure(&exp, &plan).unwrap() else { panic!("the corner would be dropped from curves") };
    assert_eq!(bars.series.len(), 4);
    assert!(bars.series.iter().any(|s| s.label.contains("gamma0.6_beta0.3") && s.values.last().cloned().flatten().map(|v| v.mean) == Some(52.0)), "{:?}", bars.series.iter().map(|s| &s.label).collect::<Vec<_>>());
}

/// Two rows along one swept key (the shortcut sweep's shape): the x axis names the
/// key, each line its row, and the blind guess is drawn as a rule.
#[test]
fn a_one_key_sweep_names_its_axis_its_rows_and_the_blind_guess() {
    let p = Project::new();
    p.write(
        "experiments/strength.toml",
        r#"
title = "Strength"
seeds = [0, 1]
[[variants]]
label = "a"
name = "Ours"
set = { "model.mask.kind" = "random" }
[[variants]]
label = "d"
set = { "model.mask.kind" = "none" }
[sweep.grid]
"model.mask.gamma" = [0.2, 0.6]
"#,
    );
    let (exp, plan) = plan_in(&p, "strength");
    for (i, spec) in plan.iter().enumerate() {
        store(spec, [0.0, 0.0, 50.0 + i as f64]);
    }
    let Figure::Curves(curves) = figure(&exp, &plan).unwrap() else { panic!("expected curves") };
    assert_eq!(curves.x_desc, "model.mask.gamma");
    assert_eq!(curves.lines.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["a: Ours", "d"]);
    assert_eq!(curves.guess, Some(25.0), "eval_row's chance");
    let svg = String::from_utf8(render(&Figure::Curves(curves), ImageFormat::Svg).unwrap()).unwrap();
    for text in ["model.mask.gamma", "a: Ours (ours)", "blind guess (no model)", "mean ± std over seeds"] {
        assert!(svg.contains(text), "the SVG lacks {text}");
    }
}

/// A swept value spanning decades (a learning rate) is drawn on a log axis whose labels
/// are the values; one that does not stays linear.
#[test]
fn a_sweep_over_decades_is_drawn_on_a_log_axis() {
    let p = Project::new();
    let text = |values: &str| format!("title = \"Rates\"\nseeds = [0]\n[[variants]]\nlabel = \"a\"\n[sweep.grid]\n\"train.lr\" = {values}\n");
    for (name, values, log) in [("rates", "[0.0001, 0.001, 0.01]", true), ("near", "[0.001, 0.002, 0.003]", false)] {
        p.write(&format!("experiments/{name}.toml"), &text(values));
        let (exp, plan) = plan_in(&p, name);
        for (i, spec) in plan.iter().enumerate() {
            store(spec, [0.0, 0.0, 50.0 + i as f64]);
        }
        let svg = String::from_utf8(render(&figure(&exp, &plan).unwrap(), ImageFormat::Svg).unwrap()).unwrap();
        assert_eq!(svg.contains("train.lr (log scale)"), log, "{name}");
        if log {
            let labels: Vec<&str> = svg.split('>').filter_map(|t| t.split('<').next()).map(str::trim).filter(|t| t.starts_with("0.0")).collect();
            assert!(labels.contains(&"0.001") && labels.contains(&"0.01"), "labels give the values, not their logarithms: {labels:?}");
        }
    }
}

#[test]
fn nothing_to_plot_is_an_error_not_an_empty_picture() {
    let (_p, exp, plan) = bars_project();
    assert!(matches!(figure(&exp, &plan), Err(PlotError::NoRuns { .. })));
}

#[test]
fn plot_command_writes_both_files_and_exits_2_without_runs() {
    let (p, _, plan) = bars_project();
    let mut cmd = Command::cargo_bin("geosr").unwrap();
    cmd.current_dir(p.path()).args(["plot", "bars"]).assert().code(2).stderr(predicate::str::contains("no finished runs"));
    store(&plan[0], [60.0, 40.0, 50.0]);
    let mut cmd = Command::cargo_bin("geosr").unwrap();
    cmd.current_dir(p.path())
        .args(["plot", "bars"])
        .assert()
        .success()
        .stdout(predicate::str::contains("results/plots/bars.svg").and(predicate::str::contains("results/plots/bars.png")));
    assert!(p.path().join("results/plots/bars.png").is_file());
}

/// A control's figure names the control in its title, since the PNG is often seen alone.
#[test]
fn a_controls_figure_names_the_control() {
    let p = Project::new();
    p.write("paper.csv", "setting,obj_count,abs_distance,avg\na,68.3,38.7,51.9\n");
    let text = BARS.to_string() + "[[controls]]\nname = \"slow\"\nabout = \"a lower learning rate\"\nset = { \"train.lr\" = 0.0001 }\n";
    p.write("experiments/bars.toml", &text);
    let (exp, plain) = plan_in(&p, "bars");
    let results = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", p.path().join("results").display())]).unwrap();
    let control = exp.plan(&[], &[vec![exp.control_layer("slow").unwrap()], results].concat()).unwrap();
    store(&plain[0], [60.0, 40.0, 50.0]);
    store(&control[0], [61.0, 41.0, 51.0]);
    for run in [&plain[0], &control[0]] {
        let train = "step,epoch,loss,lr,samples_per_s,elapsed_s\n0,0,2.0,0.001,100,0.1\n1,0,1.5,0.001,100,0.2\n";
        std::fs::write(geosr::runs::run_dir(run).path.join("train.csv"), train).unwrap();
    }
    let geosr = |args: &[&str]| {
        let out = Command::cargo_bin("geosr").unwrap().current_dir(p.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let svg_of = |stdout: &str| {
        let path = stdout.lines().find_map(|l| l.strip_prefix("wrote ").filter(|f| f.ends_with(".svg"))).unwrap().to_string();
        (std::fs::read_to_string(p.path().join(&path)).unwrap(), path)
    };
    for (control, title) in [(None, "Bars"), (Some("slow"), "Bars (control `slow`)")] {
        let with = |args: &[&'static str]| args.iter().copied().chain(control.map(|c| ["--control", c]).into_iter().flatten()).collect::<Vec<&str>>();
        let stem = control.map_or("bars".to_string(), |c| format!("bars-{c}"));
        for (args, file) in [(with(&["plot", "bars"]), format!("{stem}.svg")), (with(&["plot", "bars", "--curves"]), format!("{stem}-curves.svg"))] {
            let (svg, path) = svg_of(&geosr(&args));
            assert!(path.ends_with(&format!("/{file}")), "{path}: a control's files are named after it");
            assert!(svg.contains(title), "{path} lacks the title {title:?}");
            assert_eq!(svg.contains("(control `"), control.is_some(), "{path}: a control named where none was shown, or none named");
        }
        // The table's first line and the plan's heading carry it too.
        assert_eq!(geosr(&with(&["table", "bars"])).lines().next(), Some(title));
        assert!(geosr(&with(&["plan", "bars"])).starts_with(&format!("# {stem}: {title} (")));
    }
}

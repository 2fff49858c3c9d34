//! Tables rebuilt from stored runs.

mod common;

use common::Project;
use geosr::config::Experiment;
use geosr::eval::EvalRow;
use geosr::report::table::{build, Format};
use geosr::runs::Provenance;

const EXP: &str = r#"
title = "T"
seeds = [0, 1]
reference = "paper.csv"
marks = ["Geo. Mask."]
columns = ["obj_count", "abs_distance"]
[[variants]]
label = "a"
name = "Ours"
marks = ["Geo. Mask."]
set = { "model.mask.kind" = "random" }
[[variants]]
label = "b"
set = { "model.mask.kind" = "none" }
"#;

fn row(subtask: &str, score: f64) -> EvalRow {
    EvalRow {
        subtask: subtask.into(),
        name: subtask.into(),
        metric: "accuracy".into(),
        questions: 10,
        score,
        score_no_geometry: score,
        score_no_vision: score,
        drop_no_geometry: 0.0,
        drop_no_vision: 0.0,
        alpha: None,
        chance: 25.0,
        prior: None,
    }
}

/// Stores a finished run with the given scores (obj_count, abs_distance, avg_macro).
/// (The plan's `output.results_dir` puts it under the test's project.)
fn store(spec: &geosr::config::RunSpec, scores: [f64; 3]) {
    let rows = [row("obj_count", scores[0]), row("abs_distance", scores[1]), row("avg_macro", scores[2])];
    common::store_run(spec, &rows, Provenance::collect("flex", "cpu"));
}

#[test]
fn table_reports_mean_std_ranks_and_the_papers_numbers() {
    let p = Project::new();
    p.write("paper.csv", "setting,obj_count,abs_distance,avg\na,68.3,38.7,51.9\n");
    let path = p.write("experiments/t.toml", EXP);
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let results = p.path().join("results");
    let sets = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", results.display())]).unwrap();
    let plan = exp.plan(&[], &sets).unwrap();
    assert_eq!(plan.len(), 4);
    // a: two seeds; b: one seed done, one missing.
    store(&plan[0], [60.0, 40.0, 50.0]);
    store(&plan[1], [70.0, 44.0, 57.0]);
    store(&plan[2], [50.0, 48.0, 49.0]);

    let t = build(&exp, &plan, true).unwrap();
    assert_eq!(t.columns.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["obj_count", "abs_distance", "avg"]);
    assert_eq!(t.columns[0].1, "Obj. Cnt.");
    let a = &t.rows[0];
    assert_eq!((a.seeds_done, a.seeds_planned), (2, 2));
    assert_eq!(a.cells[0].mean(), Some(65.0));
    assert!((a.cells[0].std().unwrap() - 50f64.sqrt()).abs() < 1e-9, "sample std of 60 and 70");
    assert_eq!(a.cells[2].mean(), Some(53.5));
    assert_eq!(a.paper, vec![Some(68.3), Some(38.7), Some(51.9)]);
    assert_eq!(a.marks, vec![true]);
    let b = &t.rows[1];
    assert_eq!((b.seeds_done, b.seeds_planned), (1, 2));
    assert_eq!(b.paper, vec![None, None, None]);

    let md = t.render(Format::Markdown);
    assert!(md.contains("**65.0 ± 7.1**"), "{md}");
    // One seed has no spread to show: not "± 0.0".
    assert!(md.contains("**48.0**") && md.contains("_42.0 ± 2.8_") && !md.contains("± 0.0"), "{md}");
    assert_eq!(b.cells[0].std(), None);
    assert!(md.contains("| 2/2 ") && md.contains("| 1/2 "), "{md}");
    let latex = t.render(Format::Latex);
    assert!(latex.contains("\\textbf{65.0$\\pm$7.1}") && latex.contains("\\checkmark"), "{latex}");
    let csv = t.render(Format::Csv);
    assert!(csv.lines().any(|l| l.starts_with("a,obj_count,65.0000,7.0711,2,1,68.3000,")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("b,obj_count,50.0000,,1,2,,")), "one seed: no std: {csv}");
}

/// The blind-guess and question-prior rows come from the runs' eval.csv, and a
/// column is left empty when the runs disagree (they did not see the same questions).
#[test]
fn baseline_rows_show_what_every_run_agrees_on() {
    let p = Project::new();
    let path = p.write("experiments/t.toml", EXP);
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let results = p.path().join("results");
    let sets = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", results.display())]).unwrap();
    let plan = exp.plan(&[], &sets).unwrap();
    for (i, spec) in plan.iter().enumerate() {
        let with = |mut r: EvalRow, chance: f64| {
            r.chance = chance;
            r.prior = Some(40.0);
            r
        };
        // obj_count's chance differs between runs; the rest agree.
        let rows = [with(row("obj_count", 50.0), 20.0 + i as f64), with(row("abs_distance", 50.0), 30.0), with(row("avg_macro", 50.0), 35.0)];
        common::store_run(spec, &rows, Provenance::collect("flex", "cpu"));
    }
    let t = build(&exp, &plan, false).unwrap();
    let names: Vec<&str> = t.baselines.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["blind guess", "question prior"]);
    assert_eq!(t.baselines[0].values, vec![None, Some(30.0), Some(35.0)]);
    assert_eq!(t.baselines[1].values, vec![Some(40.0), Some(40.0), Some(40.0)]);
    let md = t.render(Format::Markdown);
    assert!(md.lines().any(|l| l.starts_with("| (blind guess)") && l.contains("| 30.0 ") && l.contains("| – ")), "{md}");
    let csv = t.render(Format::Csv);
    assert!(csv.lines().any(|l| l == "(question prior),avg,40.0000,,,,,"), "{csv}");
    assert!(!csv.lines().any(|l| l.starts_with("(blind guess),obj_count")), "{csv}");
    assert!(t.render(Format::Latex).contains("\\textit{question prior}"));
}

fn store_predictions(spec: &geosr::config::RunSpec, right: impl Fn(usize) -> bool) {
    store_scored_predictions(spec, 0.0, right);
}

/// [`store_predictions`], with `avg` as every score of the run's eval.csv.
fn store_scored_predictions(spec: &geosr::config::RunSpec, avg: f64, right: impl Fn(usize) -> bool) {
    store(spec, [avg; 3]);
    let dir = geosr::runs::run_dir(spec);
    let preds: Vec<geosr::eval::Prediction> = (0..200)
        .map(|i| {
            let s = if right(i) { 1.0 } else { 0.0 };
            geosr::eval::Prediction {
                index: i,
                subtask: if i % 2 == 0 { "obj_count".into() } else { "abs_distance".into() },
                answer: 0.0,
                prediction: 0.0,
                score: s,
                score_no_geometry: s,
                score_no_vision: s,
                alpha: None,
            }
        })
        .collect();
    dir.write_csv(&dir.path.join("predictions.csv"), &preds).unwrap();
}

#[test]
fn claims_are_checked_with_a_t_interval_over_seeds() {
    let p = Project::new();
    let path = p.write("experiments/t.toml", &EXP.replace("title = \"T\"", "title = \"T\"\nclaims = [\"a > b\", \"b > a\"]"));
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let results = p.path().join("results");
    let sets = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", results.display())]).unwrap();
    let plan = exp.plan(&[], &sets).unwrap();
    // a is right on 80% of questions, b on 50%, for both seeds.
    store_predictions(&plan[0], |i| i % 10 < 8);
    store_predictions(&plan[1], |i| (i / 2) % 10 < 8);
    store_predictions(&plan[2], |i| i % 4 < 2);
    store_predictions(&plan[3], |i| (i / 2) % 4 < 2);
    let v = geosr::report::claims::check(&exp, &plan).unwrap();
    assert_eq!(v.len(), 2);
    let d = v[0].difference.unwrap();
    assert!((d - 30.0).abs() < 1e-9, "{d}");
    // Both seeds score alike: no spread over seeds, an interval of zero width around d.
    let (lo, hi) = v[0].ci95.unwrap();
    assert!((lo - d).abs() < 1e-9 && (hi - d).abs() < 1e-9, "[{lo}, {hi}]");
    assert_eq!(v[0].method, Some(geosr::report::stats::Method::PairedSeeds));
    assert_eq!(v[0].outcome(), "held");
    assert_eq!(v[0].adjusted_outcome(), "held");
    // b > a is the same difference the other way round, clear of zero: reversed, not a tie.
    assert_eq!(v[1].outcome(), "reversed");
    assert_eq!(v[0].seeds, (2, 2));
}

/// Table 6: costs come from the manifests, overheads are per seed against the
/// first row, the paper's overheads come from its own units, and costs are not ranked.
#[test]
fn cost_table_reads_manifests_and_compares_overheads() {
    use geosr::runs::manifest::Cost;
    use geosr::runs::{Manifest, Status};
    let p = Project::new();
    p.write("paper.csv", "model,time_s,size_params_b,mem_gb\nbase,0.40,8.0,20.0\nOurs,0.50,8.8,21.0\n");
    let exp_text = r#"
title = "Costs"
seeds = [0, 1]
reference = "paper.csv"
columns = ["params", "params_overhead", "infer_ms", "infer_overhead", "peak_mem_mb", "mem_overhead"]
[[variants]]
label = "base"
set = { "model.mask.kind" = "none", "model.fusion" = "none", "model.geometry" = "none" }
[[variants]]
label = "ours"
name = "Ours"
set = { "model.mask.kind" = "random" }
"#;
    let path = p.write("experiments/c.toml", exp_text);
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let results = p.path().join("results");
    let sets = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", results.display())]).unwrap();
    let plan = exp.plan(&[], &sets).unwrap();
    // (params, ms, RSS bytes, device bytes) per run, in plan order: base s0, base s1, ours s0, ours s1.
    let figures = [(1000, 2.0, 100e6, None), (1000, 4.0, 100e6, None), (1200, 3.0, 150e6, None), (1200, 4.0, 100e6, Some(300e6))];
    for (spec, (params, ms, rss, dev)) in plan.iter().zip(figures) {
        let dir = common::store_run(spec, &[row("avg_macro", 50.0)], Provenance::collect("flex", "cpu"));
        let cost = Cost {
            params,
            train_seconds: 1.0,
            infer_ms_per_sample: ms,
            peak_rss_bytes: Some(rss as u64),
            peak_device_bytes: dev.map(|d: f64| d as u64),
        };
        dir.write_manifest(&Manifest { status: Status::Done, cost: Some(cost), ..Manifest::for_run(spec, Provenance::collect("flex", "cpu")) })
            .unwrap();
    }
    let t = build(&exp, &plan, true).unwrap();
    let keys: Vec<&str> = t.columns.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["params", "params_overhead", "infer_ms", "infer_overhead", "peak_mem_mb", "mem_overhead", "avg"]);
    let ours = &t.rows[1];
    assert_eq!(ours.cells[0].mean(), Some(1200.0));
    assert!((ours.cells[1].mean().unwrap() - 20.0).abs() < 1e-9);
    // Seed 0: 3/2 - 1 = +50%; seed 1: 4/4 - 1 = 0%.
    assert_eq!(ours.cells[3].values.len(), 2);
    assert!((ours.cells[3].mean().unwrap() - 25.0).abs() < 1e-9);
    // The device's peak wins over RSS when the run has one: 150 MB and 300 MB.
    assert_eq!(ours.cells[4].values, vec![150.0, 300.0]);
    assert!((ours.paper[1].unwrap() - 10.0).abs() < 1e-9, "8.8 / 8.0 - 1");
    assert!((ours.paper[3].unwrap() - 25.0).abs() < 1e-9, "0.50 / 0.40 - 1");
    assert_eq!(ours.paper[0], None, "the paper's absolute figures are in other units");
    assert_eq!(t.rows[0].cells[1].mean(), Some(0.0));
    let md = t.render(Format::Markdown);
    assert!(!md.contains("**1200"), "costs are not ranked as if higher were better:\n{md}");
    assert!(md.contains("+25.0 ± 35.4 (25.0)"), "{md}");

    // With the first row's seed 0 missing, ours' seed 0 has nothing to compare with:
    // its seed 1 is compared with the first row's seed 1, never with another seed.
    std::fs::remove_file(geosr::runs::run_dir(&plan[0]).manifest_path()).unwrap();
    let t = build(&exp, &plan, true).unwrap();
    assert_eq!(t.rows[1].cells[3].values, vec![0.0], "4 ms against the first row's seed-1 4 ms");
}

/// `table --controls`: the claims of the file and of each control, side by side, each
/// from its own runs, and the runs of one control are not strays of the other.
#[test]
fn controls_put_each_claim_beside_the_files_own() {
    let p = Project::new();
    let text = EXP.replace("title = \"T\"", "title = \"T\"\nclaims = [\"a > b\"]")
        + "[[controls]]\nname = \"slow\"\nabout = \"a smaller step\"\nset = { \"train.lr\" = 1e-5 }\n";
    let path = p.write("experiments/t.toml", &text);
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let results = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", p.path().join("results").display())]).unwrap();
    let base = exp.plan(&[], &results).unwrap();
    let control = exp.plan(&[], &[vec![exp.control_layer("slow").unwrap()], results.clone()].concat()).unwrap();
    // (A key every row reads: runs a control does not change are shared with the file's.)
    assert!(base.iter().zip(&control).all(|(x, y)| x.id != y.id && y.resolved.config.train.lr == 1e-5));
    // As written a beats b (80% against 50%); under the control b beats a.
    for (plan, (a, b)) in [(&base, (8, 5)), (&control, (5, 8))] {
        let (x, y) = (10.0 * a as f64, 10.0 * b as f64);
        store_scored_predictions(&plan[0], x, move |i| i % 10 < a);
        store_scored_predictions(&plan[1], x, move |i| (i / 2) % 10 < a);
        store_scored_predictions(&plan[2], y, move |i| i % 10 < b);
        store_scored_predictions(&plan[3], y, move |i| (i / 2) % 10 < b);
    }
    let out = common::geosr_in(p.path()).args(["table", "t", "--controls", "--format", "md"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("- slow (train.lr = 0.00001): a smaller step"), "{stdout}");
    let claim = stdout.lines().find(|l| l.starts_with("| a > b")).unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = claim.split('|').map(str::trim).collect();
    assert!(cells[2].starts_with("+30.0 [") && cells[2].ends_with("] held"), "{claim}");
    assert!(cells[3].starts_with("-30.0 [") && cells[3].ends_with("] reversed"), "{claim}");
    let row_a = stdout.lines().find(|l| l.starts_with("| a Ours")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(row_a.contains("| 80.0 ± 0.0") && row_a.contains("| 50.0 ± 0.0"), "{row_a}");
    assert!(!stderr.contains("not in this plan"), "{stderr}");
    // The report page sets them side by side too; under --control it shows that one only.
    common::geosr_in(p.path()).args(["report", "t"]).assert().success();
    let html = std::fs::read_to_string(p.path().join("results/reports/t.html")).unwrap();
    let at = html.find("<h2 id=\"controls\">").unwrap_or_else(|| panic!("{html}"));
    let claim_row = html[at..].lines().find(|l| l.starts_with("<tr><th>a &gt; b</th>")).unwrap_or_else(|| panic!("{html}"));
    assert!(claim_row.contains("<td>+30.0 [") && claim_row.contains("] held</td>") && claim_row.contains("] reversed</td>"), "{claim_row}");
    common::geosr_in(p.path()).args(["report", "t", "--control", "slow"]).assert().success();
    let html = std::fs::read_to_string(p.path().join("results/reports/t-slow.html")).unwrap();
    assert!(!html.contains("id=\"controls\""));
    assert!(html.contains("(control `slow`)</h1>"), "the page names the control it shows");
    // A file without controls refuses the flag, naming the file.
    p.write("experiments/plain.toml", EXP);
    let out = common::geosr_in(p.path()).args(["table", "plain", "--controls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain.toml") && err.contains("no [[controls]]"), "{err}");
}

//! Working with many runs: `--grid` multiruns, the sweep's progress lines,
//! `status --watch`, learning curves (`eval.every`, `plot --curves`) and the report
//! page opened in a real headless browser. Runs here train for real (tiny, ~1 s each).

mod common;

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use common::{geosr_in, tiny_experiment, Project};
use geosr::config::Experiment;
use predicates::prelude::*;

/// A tiny two-row experiment (a: gated fusion, b: additive) claiming a > b; `extra` is
/// more TOML tables (a `[sweep.grid]`, whose rows then need their own claims).
fn tiny(p: &Project, name: &str, seeds: &str, train: &str, extra: &str) {
    tiny_claiming(p, name, seeds, train, extra, r#"["a > b"]"#)
}

fn tiny_claiming(p: &Project, name: &str, seeds: &str, train: &str, extra: &str, claims: &str) {
    let tables = format!("{extra}\n[[variants]]\nlabel = \"a\"\n[[variants]]\nlabel = \"b\"\nset = {{ \"model.fusion\" = \"additive\" }}\n");
    let text = tiny_experiment(seeds, train, &tables).replacen("title = \"tiny\"", &format!("title = \"tiny\"\nclaims = {claims}"), 1);
    p.write(&format!("experiments/{name}.toml"), &text);
}

#[test]
fn grid_adds_an_axis_whose_runs_and_table_are_kept_apart() {
    let p = Project::new();
    tiny(&p, "g", "[0]", "steps = 2", "");
    let out = geosr_in(p.path()).args(["plan", "g", "--grid", "model.mask.gamma=0.3,0.7"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for label in ["a_gamma0.3", "a_gamma0.7", "b_gamma0.3", "b_gamma0.7"] {
        assert!(text.contains(label), "{label} missing:\n{text}");
    }
    assert!(text.contains("g+grid.model.mask.gamma=0.3_0.7"), "{text}");

    // Children rebuild the same plan: a parallel sweep passes --grid on.
    let out = geosr_in(p.path()).args(["sweep", "g", "-j", "2", "--grid", "model.mask.gamma=0.3,0.7"]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    geosr_in(p.path())
        .args(["status", "g", "--grid", "model.mask.gamma=0.3,0.7"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4 runs: 4 done"));
    assert!(p.path().join("results/runs/g+grid.model.mask.gamma=0.3_0.7").is_dir());
    assert!(!p.path().join("results/runs/g").exists(), "the file's own experiment has no entries");
    // The claim is asked at every point of the new axis.
    let out = geosr_in(p.path()).args(["table", "g", "--grid", "model.mask.gamma=0.3,0.7"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("a_gamma0.3 > b_gamma0.3") && text.contains("a_gamma0.7 > b_gamma0.7"), "{text}");
    geosr_in(p.path()).args(["plan", "g", "--grid", "model.mask.gamma"]).assert().code(2).stderr(predicate::str::contains("KEY=V1,V2"));
}

#[test]
fn grid_claims_follow_the_points_and_a_replaced_axis_is_said() {
    let p = Project::new();
    let claims = r#"["a_beta0.3 > b_beta0.3", "a_beta0.5 > b_beta0.5"]"#;
    tiny_claiming(&p, "s", "[0]", "steps = 2", "[sweep.grid]\n\"model.mask.beta\" = [0.3, 0.5]", claims);
    let exp = Experiment::load(p.path().join("experiments/s.toml").to_str().unwrap()).unwrap();
    let gamma = vec![toml::Value::Float(0.2), toml::Value::Float(0.4)];
    let (with, notes) = exp.clone().with_grid(&[("model.mask.gamma".into(), gamma)]).unwrap();
    assert_eq!(with.row_labels().len(), 8);
    assert_eq!(with.file.claims.len(), 4, "{:?}", with.file.claims);
    assert!(with.file.claims.contains(&"a_beta0.5_gamma0.4 > b_beta0.5_gamma0.4".to_string()), "{:?}", with.file.claims);
    assert!(notes.is_empty());
    let (_, notes) = exp.with_grid(&[("model.mask.beta".into(), vec![toml::Value::Float(0.9)])]).unwrap();
    assert!(notes[0].contains("replaces the file's values"), "{notes:?}");
}

#[test]
fn a_sweep_off_a_terminal_prints_progress_lines_with_an_eta() {
    let p = Project::new();
    tiny(&p, "live", "[0, 1]", "steps = 160", "");
    let out = geosr_in(p.path()).args(["sweep", "live", "-j", "2", "--progress-every", "0"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("[4/4] done"), "{text}");
    // Once training has flushed steps: each running run's step and loss, and an ETA.
    let line = text
        .lines()
        .find(|l| l.contains(" running, ETA ") && l.contains("/160 loss"))
        .unwrap_or_else(|| panic!("no progress line with steps:\n{text}"));
    assert!(line.contains("left)"), "{line}");
    // A finished sweep has nothing to watch.
    geosr_in(p.path())
        .args(["status", "live", "--watch", "1"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success()
        .stdout(predicate::str::contains("4 runs: 4 done").and(predicate::str::contains("stopped watching")));
}

#[test]
fn held_out_scores_are_logged_without_changing_training() {
    let p = Project::new();
    tiny(&p, "c", "[0]", "steps = 6", "");
    let exp = Experiment::load(p.path().join("experiments/c.toml").to_str().unwrap()).unwrap();
    let curve = geosr::config::layers::cli_layers(&["eval.every=2".into(), "eval.curve_size=10".into()]).unwrap();
    let off = geosr::config::layers::cli_layers(&["eval.every=0".into()]).unwrap();
    let plain = exp.plan(&[], &off).unwrap();
    let with_curve = exp.plan(&[], &curve).unwrap();
    let default = exp.plan(&[], &[]).unwrap();
    assert_eq!(plain[0].id, default[0].id);
    assert_eq!(plain[0].id, with_curve[0].id, "eval.every watches a run; it is not part of what the run is");

    let data = geosr::data::load(&plain[0].resolved.config.data, geosr::data::Split::Train).unwrap();
    let device = Default::default();
    let train = |spec: &geosr::config::RunSpec| {
        let mut losses = Vec::new();
        let mut steps = Vec::new();
        geosr::train::train_observed::<Autodiff<Flex>>(&spec.resolved.config, &data, std::slice::from_ref(&device), None, |r| losses.push(r.loss), |s, _| steps.push(s))
            .unwrap();
        (losses, steps)
    };
    let (plain_losses, no_evals) = train(&plain[0]);
    let (curve_losses, evals) = train(&with_curve[0]);
    assert!(no_evals.is_empty());
    assert_eq!(evals, [2, 4, 6]);
    // Curves are on by default: every 256 steps, and after the last.
    assert_eq!(train(&default[0]).1, [6]);
    assert_eq!(plain_losses, curve_losses, "scoring the held-out slice changed training");

    // Through the command line: curve.csv beside train.csv, and the figure.
    let out = geosr_in(p.path()).args(["run", "c", "--set", "eval.every=3", "--set", "eval.curve_size=12"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = geosr::runs::RunDir { path: p.path().join("results/store").join(&plain[0].id) };
    let rows: Vec<geosr::eval::CurveRow> = dir.read_csv(&dir.path.join("curve.csv")).unwrap();
    let steps: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.step).collect();
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), [3, 6]);
    assert!(rows.iter().any(|r| r.subtask == "avg_macro" && (0.0..=100.0).contains(&r.score)));
    let out = geosr_in(p.path()).args(["plot", "c", "--curves"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(p.path().join("results/plots/c-curves.svg")).unwrap();
    assert!(svg.contains("training loss") && svg.contains("held-out"), "both panels drawn");
    assert!(p.path().join("results/plots/c-curves.png").is_file());
}

/// The report page, opened in headless Chromium: a screenshot and the DOM after load.
#[test]
fn the_report_page_renders_in_a_headless_browser() {
    let p = Project::new();
    tiny(&p, "r", "[0, 1]", "steps = 4", "");
    geosr_in(p.path()).args(["sweep", "r", "-j", "2"]).assert().success();
    let out = geosr_in(p.path()).args(["report", "r"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = p.path().join("results/reports/r.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch (SVG's xmlns names a namespace; it is not loaded).
    for fetch in ["<script", "<link", "src=", "url(", "@import", "<img"] {
        assert!(!html.contains(fetch), "the page would fetch something: {fetch}");
    }
    assert!(html.matches("href=\"").count() == html.matches("href=\"#").count(), "links only within the page");
    assert!(html.contains("<table class=\"results\">") && html.contains("<svg") && html.contains("id=\"runs-a\""));
    // Two seeds a row: the learning curves show their spread and each seed's line.
    assert!(html.contains("Learning curves") && html.contains("thin: each seed"));

    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("a headless browser is needed for this test: apt-get install chromium");
    let shot = p.path().join("shot.png");
    let args = |extra: &[&str]| {
        let mut c = std::process::Command::new(browser);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"])
            .arg(format!("--user-data-dir={}", p.path().join("profile").display()))
            .args(extra)
            .arg(format!("file://{}", page.display()));
        c
    };
    let dom = args(&["--dump-dom"]).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<table class=\"results\">") && dom.contains("a &gt; b"), "the browser parsed the table and claims:\n{}", &dom[..dom.len().min(2000)]);
    let status = args(&["--window-size=1280,2400", &format!("--screenshot={}", shot.display())]).output().unwrap();
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&status.stderr));
    if let Ok(keep) = std::env::var("GEOSR_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    assert_rendered(&shot);
}

/// The screenshot shows more than a blank page: many non-white pixels, in colours the
/// figures use (the table alone is black and grey).
fn assert_rendered(shot: &Path) {
    let pixmap = resvg::tiny_skia::Pixmap::load_png(shot).unwrap();
    let pixels = pixmap.pixels();
    let inked = pixels.iter().filter(|p| p.red() < 200 || p.green() < 200 || p.blue() < 200).count();
    let coloured = pixels.iter().filter(|p| p.red().abs_diff(p.blue()) > 60 || p.green().abs_diff(p.blue()) > 60).count();
    assert!(inked > 20_000, "only {inked} inked pixels: the page looks blank");
    assert!(coloured > 2_000, "only {coloured} coloured pixels: the figure did not render");
}

/// `--grid` never makes rows that are one run under several labels, nor drops an axis in
/// silence: seeds, keys that change no run, a key given twice and array values are
/// refused with what to do instead, and nothing is written.
#[test]
fn grid_refuses_axes_that_would_duplicate_or_drop_runs() {
    let p = Project::new();
    tiny(&p, "g", "[0]", "steps = 2", "");
    for (grid, says) in [
        (&["train.seed=1,2"][..], "the seeds are the experiment's `seeds` list"),
        (&["train.checkpoint_every=1,2"], "never changes a run"),
        (&["model.mask.gamma=0.4", "model.mask.gamma=0.6"], "is given twice"),
        (&["data.vision_grid=[4,4],[2,2]"], "not arrays or tables"),
    ] {
        let mut cmd = geosr_in(p.path());
        cmd.args(["plan", "g"]);
        for g in grid {
            cmd.args(["--grid", g]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--grid {grid:?}: {stderr}");
        assert!(stderr.contains(says), "--grid {grid:?}: {stderr}");
    }
    assert!(!p.path().join("results").exists());
}

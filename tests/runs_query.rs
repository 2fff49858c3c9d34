//! `geosr runs`, `geosr tag`, many-way `geosr diff` and the TensorBoard export, over
//! runs the test stores itself.

mod common;

use common::{eval_row, geosr_in, plan_in, store_run, Project};
use geosr::runs::Provenance;
use predicates::prelude::*;

const TWO_ROWS: &str = r#"
title = "Two rows"
seeds = [0, 1]
claims = ["a > b"]
[[variants]]
label = "a"
set = { "model.mask.kind" = "random", "model.mask.gamma" = 0.6 }
[[variants]]
label = "b"
set = { "model.mask.kind" = "none" }
"#;

// Shares row `a` (same config) with TWO_ROWS, under another label.
const OTHER: &str = r#"
title = "Other"
seeds = [0]
[[variants]]
label = "centre"
set = { "model.mask.kind" = "random", "model.mask.gamma" = 0.6 }
"#;

fn project() -> (Project, Vec<geosr::config::RunSpec>) {
    let p = Project::new();
    p.write("experiments/two.toml", TWO_ROWS);
    p.write("experiments/other.toml", OTHER);
    let (_, plan) = plan_in(&p, "two");
    // Avg. by run: a s0 50, a s1 60, b s0 40, b s1 45.
    for (spec, avg) in plan.iter().zip([50.0, 60.0, 40.0, 45.0]) {
        store_run(spec, &[eval_row("obj_count", avg + 1.0, 0.0, 0.0), eval_row("avg_macro", avg, 2.0, 3.0)], Provenance::collect("flex", "cpu"));
        geosr::runs::store::link_entry(spec, &geosr::runs::run_dir(spec)).unwrap();
    }
    let (_, other) = plan_in(&p, "other");
    geosr::runs::store::link_entry(&other[0], &geosr::runs::run_dir(&other[0])).unwrap();
    (p, plan)
}

fn runs_json(p: &Project, args: &[&str]) -> Vec<serde_json::Value> {
    let out = geosr_in(p.path()).arg("runs").args(args).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn runs_are_filtered_by_setting_and_score_and_sorted_as_numbers() {
    let (p, plan) = project();
    let rows = runs_json(&p, &["--where", "model.mask.gamma>=0.6", "--where", "model.mask.kind=random", "--columns", "run.id,run.seed,metrics.avg"]);
    let ids: Vec<&str> = rows.iter().map(|r| r["run.id"].as_str().unwrap()).collect();
    assert_eq!(ids, [plan[0].id.as_str(), plan[1].id.as_str()]);
    // Numbers stay numbers, and columns keep the order asked for.
    assert_eq!(rows[1]["metrics.avg"], serde_json::json!(60.0));
    let out = geosr_in(p.path())
        .args(["runs", "--experiment", "two", "--columns", "run.label,run.seed,metrics.avg", "--sort", "metrics.avg", "--desc", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "run.label,run.seed,metrics.avg");
    assert_eq!(&lines[1..], ["a,1,60", "a,0,50", "b,1,45", "b,0,40"]);

    let rows = runs_json(&p, &["--where", "metrics.avg<50", "--columns", "run.label,metrics.drop_no_geometry"]);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["run.label"] == "b" && r["metrics.drop_no_geometry"] == 2.0));
}

#[test]
fn a_run_two_experiments_share_lists_both_and_takes_each_ones_label() {
    let (p, plan) = project();
    let rows = runs_json(&p, &["--where", &format!("run.id={}", plan[0].id), "--columns", "run.experiment,run.label"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["run.experiment"], "other,two");
    let rows = runs_json(&p, &["--experiment", "other", "--columns", "run.id,run.label"]);
    assert_eq!(rows, [serde_json::json!({"run.id": plan[0].id, "run.label": "centre"})]);
}

#[test]
fn a_mistyped_key_or_experiment_is_refused_with_what_exists() {
    let (p, _) = project();
    geosr_in(p.path())
        .args(["runs", "--where", "model.mask.gama>0.5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("model.mask.gama").and(predicate::str::contains("`model.mask.gamma`")));
    geosr_in(p.path()).args(["runs", "--where", "gamma"]).assert().code(2).stderr(predicate::str::contains("KEY OP VALUE"));
    geosr_in(p.path()).args(["runs", "--experiment", "tow"]).assert().code(2).stderr(predicate::str::contains("\"two\""));
}

#[test]
fn tags_and_notes_are_stored_with_the_run_and_queryable() {
    let (p, plan) = project();
    let id = &plan[2].id;
    geosr_in(p.path()).args(["tag", id, "baseline=yes", "node=n7", "--note", "slow node"]).assert().success();
    let rows = runs_json(&p, &["--where", "tags.baseline=yes", "--columns", "run.id,tags.node,run.note"]);
    assert_eq!(rows, [serde_json::json!({"run.id": id, "tags.node": "n7", "run.note": "slow node"})]);
    // The run still verifies as done: tags are not among its hashed result files.
    geosr_in(p.path()).args(["status", "experiments/two.toml"]).assert().success().stdout(predicate::str::contains("4 done"));
    geosr_in(p.path()).args(["tag", id, "--remove", "node", "--note", ""]).assert().success();
    let keys = geosr_in(p.path()).args(["runs", "--keys"]).output().unwrap();
    let keys = String::from_utf8(keys.stdout).unwrap();
    assert!(keys.lines().any(|k| k == "tags.baseline"), "{keys}");
    assert!(!keys.lines().any(|k| k == "tags.node" || k == "run.note"), "removed tag and note still listed:\n{keys}");
    geosr_in(p.path()).args(["tag", id, "a.b=1"]).assert().code(2);
}

/// One bad run does not take `runs` down: a cut manifest or a garbage eval.csv is listed
/// as damaged, with a warning that names its folder, and the others as they are; a run
/// whose process died while training is interrupted, not running.
#[test]
fn runs_lists_damaged_and_interrupted_runs_and_goes_on() {
    let (p, plan) = project();
    let dirs: Vec<_> = plan.iter().map(|s| geosr::runs::run_dir(s)).collect();
    let manifest = std::fs::read_to_string(dirs[0].manifest_path()).unwrap();
    std::fs::write(dirs[0].manifest_path(), &manifest[..manifest.len() / 2]).unwrap();
    let mut eval = std::fs::read_to_string(dirs[1].eval_csv()).unwrap();
    eval.push_str("garbage,row\n");
    std::fs::write(dirs[1].eval_csv(), eval).unwrap();
    let running = std::fs::read_to_string(dirs[2].manifest_path()).unwrap().replace("\"status\": \"done\"", "\"status\": \"running\"");
    std::fs::write(dirs[2].manifest_path(), running).unwrap();

    let out = geosr_in(p.path()).args(["runs", "--experiment", "two", "--columns", "run.id,run.status", "--format", "csv"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let status = |i: usize| stdout.lines().find(|l| l.starts_with(&plan[i].id)).map(|l| l.rsplit(',').next().unwrap().to_string());
    assert_eq!(status(0).as_deref(), Some("damaged"), "{stdout}");
    assert_eq!(status(1).as_deref(), Some("damaged"), "{stdout}");
    assert_eq!(status(2).as_deref(), Some("interrupted"), "{stdout}");
    assert_eq!(status(3).as_deref(), Some("done"), "{stdout}");
    for dir in &dirs[..2] {
        assert!(stderr.contains(&format!("warning: {}", dir.path.display())), "{stderr}");
    }
    // And typos in a filter are refused, not answered with nothing.
    for bad in ["metrics.avg >> 3", "metrics.avg > abc", "metrics.avg => 3"] {
        geosr_in(p.path()).args(["runs", "--where", bad]).assert().code(2);
    }
}

/// Two `geosr tag` at once on one run, each setting its own key, both land (without a
/// lock one read-change-write overwrote the other in 192 of 200 tries); removing a tag
/// the run lacks writes nothing.
#[test]
fn tags_set_at_once_by_two_processes_both_land() {
    let (p, plan) = project();
    let id = &plan[0].id;
    let dir = geosr::runs::run_dir(&plan[0]).path;
    let bin = assert_cmd::cargo::cargo_bin("geosr");
    for round in 0..25 {
        let tag = |kv: String| std::process::Command::new(&bin).current_dir(p.path()).args(["tag", id, &kv]).stdout(std::process::Stdio::null()).spawn().unwrap();
        let (x, y) = (tag(format!("x={round}")), tag(format!("y={round}")));
        for mut child in [x, y] {
            assert!(child.wait().unwrap().success());
        }
        let tags = geosr::runs::tags::read(&geosr::runs::RunDir { path: dir.clone() }).unwrap();
        assert_eq!((tags.tags.get("x"), tags.tags.get("y")), (Some(&round.to_string()), Some(&round.to_string())), "round {round}: a tag was lost");
    }
    let other = geosr::runs::run_dir(&plan[1]).path;
    geosr_in(p.path())
        .args(["tag", &plan[1].id, "--remove", "nothing"])
        .assert()
        .success()
        .stderr(predicate::str::contains("has no tag `nothing`"));
    assert!(!other.join("tags.json").exists(), "removing a missing tag wrote a tags.json");
}

#[test]
fn diff_of_three_runs_shows_one_column_each_and_only_the_keys_that_differ() {
    let (p, plan) = project();
    let out = geosr_in(p.path()).args(["diff", &plan[0].id, &plan[1].id, &plan[2].id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("model.mask.kind") && text.contains("train.seed"), "{text}");
    assert!(!text.contains("model.depth"), "an equal key is not shown:\n{text}");
    let avg = text.lines().find(|l| l.contains("avg_macro")).unwrap_or_else(|| panic!("{text}"));
    assert!(avg.contains("50.0") && avg.contains("60.0") && avg.contains("40.0"), "{avg}");

    // An experiment's rows: the seed is left out, scores are the mean over seeds.
    let out = geosr_in(p.path()).args(["diff", "--experiment", "experiments/two.toml"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("train.seed"), "{text}");
    let avg = text.lines().find(|l| l.contains("avg_macro")).unwrap();
    assert!(avg.contains("55.0") && avg.contains("42.5"), "{avg}");
    assert!(text.contains("2 of 2 seed(s) done"), "{text}");
    geosr_in(p.path()).args(["diff", &plan[0].id]).assert().code(2);
}

#[test]
fn tensorboard_reads_the_exported_scalars() {
    let (p, plan) = project();
    let dir = geosr::runs::run_dir(&plan[0]);
    let rows: Vec<geosr::train::StepRow> = (0..3)
        .map(|s| geosr::train::StepRow { step: s, epoch: 0, loss: 2.0 - s as f64 * 0.5, lr: 1e-3, samples_per_s: 100.0, elapsed_s: s as f64 })
        .collect();
    dir.write_csv(&dir.train_csv(), &rows).unwrap();
    let out = p.path().join("tb");
    geosr_in(p.path())
        .args(["runs", "--experiment", "two", "--where", &format!("run.id={}", plan[0].id), "--tensorboard"])
        .arg(&out)
        .assert()
        .success();
    let script = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
for tag in ("train/loss", "eval/avg_macro", "eval_drop_no_geometry/avg_macro"):
    print(tag, [(e.step, round(e.value, 4)) for e in ea.Scalars(tag)])
"#;
    let run_dir = out.join("two").join(format!("a-s0-{}", plan[0].id));
    let py = std::process::Command::new("python3").args(["-c", script]).arg(&run_dir).output().expect("python3");
    let stderr = String::from_utf8_lossy(&py.stderr);
    assert!(
        py.status.success(),
        "Python's tensorboard could not read the export (install it with `pip install tensorboard`):\n{stderr}"
    );
    let text = String::from_utf8_lossy(&py.stdout);
    assert!(text.contains("train/loss [(1, 2.0), (2, 1.5), (3, 1.0)]"), "{text}");
    assert!(text.contains("eval/avg_macro [(3, 50.0)]"), "{text}");
    assert!(text.contains("eval_drop_no_geometry/avg_macro [(3, 2.0)]"), "{text}");
}

/// A run writes its scalars for TensorBoard as it trains: Python's tensorboard reads the
/// run folder while the run still holds its lock (loss so far, the config as HParams),
/// and again after it ends (the final scores, the session marked a success).
#[test]
fn tensorboard_reads_a_run_while_it_trains() {
    let p = Project::new();
    p.write("experiments/long.toml", &common::tiny_experiment("[0]", "steps = 4000", "[[variants]]\nlabel = \"a\"\n"));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("geosr"))
        .current_dir(p.path())
        .args(["run", "long"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = p.path().join("results/runs/long");
    let script = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0}); ea.Reload()
scalars = ea.Tags()["scalars"]
print("loss", len(ea.Scalars("train/loss")) if "train/loss" in scalars else 0)
print("eval", "eval/avg_macro" in scalars)
content = ea.PluginTagToContent("hparams")
start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
print("fusion", start.hparams["model.fusion"].string_value, "steps", int(start.hparams["train.steps"].number_value))
if "_hparams_/session_end_info" in content:
    print("end", plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info.status)
"#;
    let read = |dir: &std::path::Path| {
        let out = std::process::Command::new("python3").args(["-c", script]).arg(dir).output().expect("python3");
        assert!(out.status.success(), "Python's tensorboard could not read the run (pip install tensorboard):\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // Wait for logged steps, then read while the run trains.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let (dir, during) = loop {
        let found = std::fs::read_dir(&runs).ok().and_then(|mut d| d.next()).map(|e| e.unwrap().path());
        if let Some(dir) = found.filter(|d| std::fs::read_dir(d).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("events.out"))) {
            let text = read(&dir);
            if !text.contains("loss 0\n") {
                break (dir, text);
            }
        }
        assert!(std::time::Instant::now() < deadline, "no live TensorBoard log");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let still_training = geosr::runs::RunDir { path: dir.clone() }.is_locked();
    assert!(still_training, "the run ended before it could be read live; make it longer");
    assert!(during.contains("eval False") && during.contains("fusion gated steps 4000") && !during.contains("end "), "{during}");
    assert!(child.wait().unwrap().success());
    let after = read(&dir);
    assert!(after.contains("loss 4000") && after.contains("eval True") && after.contains("end 1"), "{after}");
}

/// A real MLflow tracking server (SQLite backend) on localhost, stopped when dropped.
struct MlflowServer {
    child: std::process::Child,
    uri: String,
    _dir: tempfile::TempDir,
}

impl MlflowServer {
    fn start() -> MlflowServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let db = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        let child = std::process::Command::new("python3")
            .args(["-m", "mlflow", "server", "--backend-store-uri", &db, "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--default-artifact-root")
            .arg(dir.path().join("artifacts"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m mlflow server (pip install mlflow)");
        let server = MlflowServer { child, uri: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while ureq::get(&format!("{}/health", server.uri)).call().is_err() {
            assert!(std::time::Instant::now() < deadline, "the MLflow server did not start (is mlflow installed? pip install mlflow)");
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        server
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `runs --mlflow URI` logs the selected runs to a real MLflow server: read back with
/// `mlflow.search_runs`, each run has its config as params, its scores and training
/// curve as metrics with their steps, and its geosr id as a tag; pushing twice leaves
/// one MLflow run per geosr run.
#[test]
fn runs_are_logged_to_mlflow_once() {
    let (p, plan) = project();
    let dir = geosr::runs::run_dir(&plan[0]);
    let rows: Vec<geosr::train::StepRow> = (0..3)
        .map(|s| geosr::train::StepRow { step: s, epoch: 0, loss: 2.0 - s as f64 * 0.5, lr: 1e-3, samples_per_s: 100.0, elapsed_s: s as f64 })
        .collect();
    dir.write_csv(&dir.train_csv(), &rows).unwrap();
    let server = MlflowServer::start();
    for (round, says) in [(1, "4 run(s) logged, 0 already there"), (2, "0 run(s) logged, 4 already there")] {
        let out = geosr_in(p.path()).args(["runs", "--experiment", "two", "--mlflow", &server.uri]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.contains(says), "push {round}: {stderr}");
    }
    let script = r#"
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
df = mlflow.search_runs(experiment_names=["geosr/two"])
print("runs", len(df))
row = df[df["tags.geosr.run_id"] == sys.argv[2]].iloc[0]
print("mask", row["params.model.mask.kind"], "avg", row["metrics.eval/avg_macro"], "status", row["status"])
hist = mlflow.tracking.MlflowClient().get_metric_history(row.run_id, "train/loss")
print("loss", [(h.step, h.value) for h in sorted(hist, key=lambda h: h.step)])
"#;
    let out = std::process::Command::new("python3").args(["-c", script, &server.uri, &plan[0].id]).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mlflow could not read the runs back:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("runs 4\n"), "{text}");
    assert!(text.contains("mask random avg 50.0 status FINISHED"), "{text}");
    assert!(text.contains("loss [(1, 2.0), (2, 1.5), (3, 1.0)]"), "{text}");
}

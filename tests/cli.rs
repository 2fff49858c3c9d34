//! The binary, run as a user would: a real tiny training through the real config path.

mod common;

use assert_cmd::Command;
use common::Project;
use predicates::prelude::*;

const TINY: &str = r#"
title = "tiny"
seeds = [0]

[config]
data = { bench = "static", train_size = 64, eval_size = 32, frames = 1, vision_grid = [3, 3], geometry_grid = [2, 2] }
model = { backbone = { preset = "tiny" }, geometry = "vggt", fusion = "gated", mask = { kind = "random", gamma = 0.5, beta = 0.5 } }
train = { steps = 4, batch_size = 8, warmup_steps = 1, lr = 1e-3 }

[[variants]]
label = "a"
"#;

fn geosr(p: &Project) -> Command {
    let mut c = Command::cargo_bin("geosr").unwrap();
    c.current_dir(p.path());
    c.env_remove("GEOSR_MODEL__MASK__GAMMA");
    c
}

fn only_run_dir(p: &Project) -> std::path::PathBuf {
    let dir = p.path().join("results/runs/tiny");
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap()
}

#[test]
fn run_trains_evaluates_and_stores_everything() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p).args(["run", "tiny"]).assert().success().stdout(predicate::str::contains("Obj. Cnt."));

    let run = only_run_dir(&p);
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("a-s0-"), "{name}");

    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "done");
    assert_eq!(manifest["experiment"], "tiny");
    assert_eq!(manifest["provenance"]["backend"], "flex");
    assert_eq!(manifest["provenance"]["burn_version"], "0.21.0");
    assert!(manifest["provenance"]["command"].as_str().unwrap().contains("run tiny"));
    assert!(manifest["started"].is_string() && manifest["ended"].is_string());
    assert!(name.ends_with(manifest["run_id"].as_str().unwrap()));

    // The stored config is the resolved one and re-hashes to the run id.
    let stored: geosr::config::Config = toml::from_str(&std::fs::read_to_string(run.join("config.toml")).unwrap()).unwrap();
    assert_eq!(stored.train.steps, 4);
    assert_eq!(stored.model.mask.gamma, 0.5);
    assert_eq!(geosr::runs::run_id(&stored), manifest["run_id"].as_str().unwrap());

    let train = std::fs::read_to_string(run.join("train.csv")).unwrap();
    let lines: Vec<&str> = train.lines().collect();
    assert_eq!(lines[0], "step,epoch,loss,lr,samples_per_s,elapsed_s");
    assert_eq!(lines.len(), 1 + 4, "one row per step");
    let loss: f64 = lines[1].split(',').nth(2).unwrap().parse().unwrap();
    assert!(loss.is_finite() && loss > 0.0);

    let mut eval = csv::Reader::from_path(run.join("eval.csv")).unwrap();
    let rows: Vec<geosr::eval::EvalRow> = eval.deserialize().map(Result::unwrap).collect();
    let subtasks: Vec<&str> = rows.iter().map(|r| r.subtask.as_str()).collect();
    assert_eq!(
        subtasks,
        ["obj_count", "abs_distance", "obj_size", "room_size", "rel_distance", "rel_direction", "route_plan", "appearance_order", "avg_macro", "avg_micro"]
    );
    assert_eq!(rows.iter().take(8).map(|r| r.questions).sum::<usize>(), 32);
    assert!(rows.iter().all(|r| (0.0..=100.0).contains(&r.score)));
    assert_eq!(rows[0].metric, "mra");
    assert_eq!(rows[4].metric, "accuracy");

    // The same run is not trained twice; plan reports it done.
    geosr(&p).args(["run", "tiny"]).assert().success().stdout(predicate::str::contains("already done"));
    geosr(&p).args(["plan", "tiny"]).assert().success().stdout(predicate::str::contains("done"));
}

#[test]
fn identical_runs_give_identical_eval() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p).args(["run", "tiny"]).assert().success();
    let first = std::fs::read(only_run_dir(&p).join("eval.csv")).unwrap();
    geosr(&p).args(["run", "tiny", "--force"]).assert().success();
    assert_eq!(first, std::fs::read(only_run_dir(&p).join("eval.csv")).unwrap());
}

#[test]
fn invalid_config_exits_2_names_the_key_and_writes_nothing() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p)
        .args(["run", "tiny", "--set", "model.mask.gamma=1.5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("model.mask.gamma").and(predicate::str::contains("[0, 1]")));
    geosr(&p)
        .args(["run", "tiny"])
        .env("GEOSR_MODEL__MASK__GAMA", "0.3")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("env GEOSR_MODEL__MASK__GAMA").and(predicate::str::contains("did you mean `model.mask.gamma`")));
    geosr(&p).args(["run", "nope"]).assert().code(2).stderr(predicate::str::contains("nope.toml"));
    assert!(!p.path().join("results").exists(), "nothing written");
}

#[test]
fn config_show_names_the_layer_of_each_key() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p)
        .args(["config", "show", "tiny", "--set", "train.lr=0.5"])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"train\.lr\s+\| 0\.5\s+\| --set train\.lr=0\.5").unwrap()
                .and(predicate::str::is_match(r"model\.mask\.gamma\s+\| 0\.5\s+\| experiments/tiny\.toml \[config\]").unwrap())
                .and(predicate::str::is_match(r"data\.seed\s+\| 0\s+\| default").unwrap()),
        );
}

#[test]
fn require_clean_refuses_a_dirty_tree_before_writing() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    let git = |args: &[&str]| common::git(p.path(), args);
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "x"]);
    p.write("experiments/tiny.toml", &format!("{TINY}\n# edited\n"));
    geosr(&p)
        .args(["run", "tiny", "--require-clean"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("uncommitted")
                .and(predicate::str::contains("modified: experiments/tiny.toml"))
                .and(predicate::str::contains(" b/").not()),
        );
    assert!(!p.path().join("results").exists());
}

#[test]
fn score_prints_the_official_table_and_rejects_bad_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    geosr(&p)
        .args(["score", "--bench", "vsi"])
        .arg(root.join("tests/fixtures/predictions/vsi.jsonl"))
        .assert()
        .success()
        .stdout(predicate::str::contains("| Rel. Dir. | rel_direction | 4 | 66.7 |").and(predicate::str::contains("74.6")));
    let bad = p.write("bad.jsonl", "{\"question_type\": \"object_counting\", \"prediction\": \"3\"}\n");
    geosr(&p)
        .args(["score", "--bench", "vsi"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.jsonl:1").and(predicate::str::contains("ground_truth")));
}

#[test]
fn a_run_can_train_on_precomputed_features() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/dsr");
    let p = Project::new();
    p.write(
        "experiments/feat.toml",
        &format!(
            r#"
title = "features"
[config]
data = {{ source = "features", bench = "dynamic", features = {{ train = "{f}", eval = "{f}" }} }}
model = {{ geometry = "features", fusion = "gated_qformer", mask = {{ kind = "topk" }}, bottleneck_len = 2 }}
train = {{ steps = 2, batch_size = 4, warmup_steps = 1 }}
[[variants]]
label = "a"
"#,
            f = fixture.display()
        ),
    );
    geosr(&p).args(["run", "feat"]).assert().success().stdout(predicate::str::contains("Non. Temp."));
    let dir = p.path().join("results/runs/feat");
    let run = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let eval = std::fs::read_to_string(run.join("eval.csv")).unwrap();
    assert!(eval.contains("avg_micro,Avg. (micro),micro,15,"), "{eval}");
}

#[test]
fn a_run_killed_mid_training_resumes_from_its_checkpoint() {
    let long = TINY.replace("train = { steps = 4,", "train = { steps = 300, checkpoint_every = 5, log_every = 1,");
    let p = Project::new();
    p.write("experiments/tiny.toml", &long);
    let bin = assert_cmd::cargo::cargo_bin("geosr");
    let mut child = std::process::Command::new(&bin)
        .args(["run", "tiny"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = p.path().join("results/runs/tiny");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let state = loop {
        // A checkpoint is a folder `checkpoint/step-<n>/` that appears whole.
        let found = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_dir(e.unwrap().path().join("checkpoint")).ok())
            .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("step-")));
        if let Some(s) = found {
            break s.join("state.json");
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run = state.parent().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let manifest = |run: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(manifest(&run)["status"], "running", "killed while training");

    geosr(&p).args(["run", "tiny"]).assert().success();
    let m = manifest(&run);
    assert_eq!(m["status"], "done");
    let resumed = m["resumed_from_step"].as_u64().expect("resumed");
    assert!(resumed >= 5 && resumed % 5 == 0, "{resumed}");
    assert!(!run.join("checkpoint").exists(), "a finished run drops its checkpoint");
    let steps: Vec<u64> = csv::Reader::from_path(run.join("train.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(steps, (0..300).collect::<Vec<_>>(), "every step logged exactly once");

    // The same run without interruption gives the same evaluation.
    let q = Project::new();
    q.write("experiments/tiny.toml", &long);
    geosr(&q).args(["run", "tiny"]).assert().success();
    let straight = std::fs::read_dir(q.path().join("results/runs/tiny")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::read(run.join("eval.csv")).unwrap(), std::fs::read(straight.join("eval.csv")).unwrap());
}

#[test]
fn reproduce_runs_then_writes_the_tables() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY.replace("title = \"tiny\"", "title = \"tiny\"\nclaims = [\"a > a\"]"));
    geosr(&p)
        .args(["reproduce", "tiny"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Avg.").and(predicate::str::contains("a > a")).and(predicate::str::contains("did not hold")));
    for ext in ["md", "csv", "tex"] {
        let text = std::fs::read_to_string(p.path().join(format!("results/tables/tiny.{ext}"))).unwrap();
        assert!(text.contains("a"), "{ext}");
    }
    let svg = std::fs::read_to_string(p.path().join("results/plots/tiny.svg")).unwrap();
    assert!(svg.contains("<svg"), "reproduce draws the figure too");
    let csv = std::fs::read_to_string(p.path().join("results/tables/tiny.csv")).unwrap();
    assert!(csv.starts_with("setting,column,mean,std,seeds,rank,paper"));
    assert_eq!(csv.lines().filter(|l| l.starts_with("a,")).count(), 9, "8 subtasks and Avg. for one row");
    assert_eq!(csv.lines().filter(|l| l.starts_with("(question prior),")).count(), 9, "and the prior beside them");
}

/// `--devices` asks for data-parallel training on GPUs: without CUDA compiled in it
/// is refused before anything is written, and it cannot be combined with `--device`.
#[cfg(not(feature = "cuda"))]
#[test]
fn data_parallel_devices_need_a_cuda_build() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p)
        .args(["run", "tiny", "--devices", "0,1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("without CUDA").and(predicate::str::contains("--features cuda")));
    geosr(&p)
        .args(["run-index", "tiny", "--index", "0", "--devices", "0,1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("without CUDA"));
    assert!(!p.path().join("results/runs").exists(), "a refused run wrote to the store");
    geosr(&p)
        .args(["run", "tiny", "--devices", "0,1", "--device", "cpu"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--devices").and(predicate::str::contains("--device")));
    geosr(&p).args(["run", "tiny", "--devices", "0,x"]).assert().code(2).stderr(predicate::str::contains("0,x").or(predicate::str::contains("'x'")));
}

/// `speed` times a run on each CPU backend and stores nothing; `bench`, its former
/// name, still works and says what it is called now.
#[test]
fn speed_times_each_cpu_backend_and_bench_still_works() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    geosr(&p)
        .args(["speed", "tiny", "--steps", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("train ms/step").and(predicate::str::contains("| flex")).and(predicate::str::contains("| ndarray")))
        .stderr(predicate::str::contains("is now").not());
    geosr(&p)
        .args(["bench", "tiny", "--steps", "1", "--backend", "flex"])
        .assert()
        .success()
        .stdout(predicate::str::contains("| flex").and(predicate::str::contains("| ndarray").not()))
        .stderr(predicate::str::contains("`geosr bench` is now `geosr speed`"));
    assert!(!p.path().join("results").exists(), "speed stored something");
}

/// An override that only an unselected variant rejects does not stop `run --variant`:
/// the no-geometry variant cannot take a fusion, the gated one can.
#[test]
fn run_resolves_only_the_chosen_variants() {
    let p = Project::new();
    let two = format!("{TINY}\n[[variants]]\nlabel = \"f\"\nset = {{ \"model.geometry\" = \"none\", \"model.fusion\" = \"none\", \"model.mask.kind\" = \"none\" }}\n");
    p.write("experiments/tiny.toml", &two);
    geosr(&p)
        .args(["run", "tiny", "--set", "model.fusion=additive"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`model.fusion` = \"additive\"").and(predicate::str::contains("variant `f`")));
    geosr(&p).args(["run", "tiny", "--variant", "a", "--set", "model.fusion=additive"]).assert().success();
    // An overridden run is listed apart from the plain experiment's.
    assert!(!p.path().join("results/runs/tiny").exists());
    let runs: Vec<_> = std::fs::read_dir(p.path().join("results/runs/tiny+model.fusion=additive")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].to_string_lossy().starts_with("a-s0-"), "{runs:?}");
}

/// Every experiment shipped in experiments/ loads, names rows its claims compare, and
/// expands to runs with the repository's own config layers: a broken file is found
/// here, not hours into a sweep.
#[test]
fn every_shipped_experiment_plans() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".toml").map(String::from))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let out = common::geosr_in(root).args(["plan", name]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.starts_with(&format!("# {name}: ")) && text.contains(" runs)"), "{name}: {text}");
        let exp = geosr::config::Experiment::load(root.join("experiments").join(format!("{name}.toml")).to_str().unwrap()).unwrap();
        for control in exp.control_names() {
            let out = common::geosr_in(root).args(["plan", name, "--control", control]).output().unwrap();
            assert!(out.status.success(), "{name} --control {control}: {}", String::from_utf8_lossy(&out.stderr));
        }
        // The paper's claim-bearing tables each name controls 1 and 2, so `--controls` reaches them all.
        if ["table3", "table4", "table5", "table7"].contains(&name.as_str()) {
            assert_eq!(exp.control_names(), ["no-grounding", "no-shift"], "{name}");
        }
    }
}

/// Arguments that cannot mean anything are refused with exit 2 and a message that says
/// what was expected, before anything runs or is written.
#[test]
fn meaningless_arguments_exit_2_and_say_what_was_expected() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    p.write("not-a-folder", "x");
    for (args, says) in [
        (&["reproduce", "tiny", "--jobs", "0"][..], "--jobs 0: expected at least 1"),
        (&["status", "tiny", "--watch", "0"], "--watch 0: expected a period"),
        (&["runs", "--tensorboard", "not-a-folder"], "not a folder"),
        (&["runs", "--tensorboard", "/proc/geosr-tb"], "cannot make this folder"),
        (&["plot", "tiny", "--curves"], "no run has logged a training step yet"),
        (&["run", "tiny", "--seed", "-1"], "expected a seed, a whole number 0 or more"),
        (&["table", "tiny", "--reference"], "has no `reference`"),
    ] {
        let out = geosr(&p).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!p.path().join("results/store").exists(), "nothing may train");
}

/// `plan` and `status` say how long the runs left would take here, even for an
/// experiment none of whose runs has finished: at the pace of the runs finished on
/// this machine, scaled by each run's FLOPs.
#[test]
fn plan_estimates_the_time_left_from_runs_finished_on_this_machine() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    p.write("experiments/other.toml", &TINY.replace("lr = 1e-3", "lr = 2e-3"));
    let before = String::from_utf8(geosr(&p).args(["plan", "other"]).output().unwrap().stdout).unwrap();
    assert!(before.contains("1 run(s) to train: no time estimate yet"), "{before}");
    geosr(&p).args(["run", "tiny"]).assert().success();
    for command in ["plan", "status"] {
        let out = String::from_utf8(geosr(&p).args([command, "other"]).output().unwrap().stdout).unwrap();
        assert!(out.contains("1 run(s) to train: about") && out.contains("of any experiment finished on this machine"), "{command}: {out}");
    }
    let done = String::from_utf8(geosr(&p).args(["plan", "tiny"]).output().unwrap().stdout).unwrap();
    assert!(!done.contains("to train"), "nothing left, no estimate: {done}");
}

/// `run` of a run another process holds says so and trains nothing; a run it trains
/// prints its probes as `diff` and `runs` name them: the score lost (a drop, not a change).
#[test]
fn run_says_when_another_process_trains_the_run_and_prints_drops() {
    let p = Project::new();
    p.write("experiments/tiny.toml", TINY);
    let exp = geosr::config::Experiment::load(p.path().join("experiments/tiny.toml").to_str().unwrap()).unwrap();
    let sets = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", p.path().join("results").display())]).unwrap();
    let spec = exp.plan(&[], &sets).unwrap().remove(0);
    let dir = geosr::runs::run_dir(&spec);
    let lock = dir.try_lock().unwrap().expect("the test takes the run's lock");
    let out = geosr(&p).args(["run", "tiny"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("another process is training it"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!dir.eval_csv().exists(), "nothing may be trained beside the lock's holder");
    drop(lock);

    let out = String::from_utf8(geosr(&p).args(["run", "tiny"]).output().unwrap().stdout).unwrap();
    assert!(out.contains("geo drop") && out.contains("vision drop") && !out.contains("no geo."), "{out}");
    let rows: Vec<geosr::eval::EvalRow> = dir.read_csv(&dir.eval_csv()).unwrap();
    let avg = rows.iter().find(|r| r.subtask == "avg_macro").unwrap();
    let line = out.lines().find(|l| l.trim_start().starts_with("Avg. (macro)")).unwrap();
    assert!(line.contains(&format!("{:.1}", avg.drop_no_geometry)), "the printed drop is eval.csv's, sign and all: {line} vs {}", avg.drop_no_geometry);
}

/// `diff --experiment` takes a control and a grid like every command that reads an
/// experiment.
#[test]
fn diff_of_an_experiments_rows_takes_a_control_and_a_grid() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &format!("{TINY}\n[[controls]]\nname = \"faster\"\nset = {{ \"train.lr\" = 0.002 }}\n"));
    geosr(&p).args(["run", "tiny", "--control", "faster"]).assert().success();
    let out = geosr(&p).args(["diff", "--experiment", "tiny", "--control", "faster"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 of 1 seed(s) done"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    geosr(&p).args(["diff", "--experiment", "tiny", "--grid", "model.mask.gamma=0.3,0.7"]).assert().success();
    geosr(&p).args(["diff", "--control", "faster"]).assert().code(2);
}

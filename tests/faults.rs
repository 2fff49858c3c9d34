//! Results that could be silently wrong, each checked through the binary as a user
//! meets it: seed and sweep overrides, each row's own average, one seed's spread,
//! runs shared across experiments, runs a plan misses, builds that differ, and what
//! a run records.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::Project;
use predicates::prelude::*;

const ONE_VARIANT: &str = "[[variants]]\nlabel = \"a\"\n";

static TINY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| common::tiny_experiment("[0]", "steps = 4", ONE_VARIANT));

fn geosr(p: &Project) -> Command {
    common::geosr_in(p.path())
}

fn stdout(p: &Project, args: &[&str]) -> String {
    let out = geosr(p).args(args).assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

fn entries(p: &Project, exp: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(p.path().join("results/runs").join(exp))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn manifest(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap()
}

/// `(setting, column) -> mean` of `geosr table --format csv`.
fn table_means(p: &Project, exp: &str) -> std::collections::BTreeMap<(String, String), String> {
    let csv = stdout(p, &["table", exp, "--format", "csv"]);
    csv.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>()).map(|f| ((f[0].clone(), f[1].clone()), f[2].clone())).collect()
}

/// Fault 1: `train.seed` set by an override: refused where the experiment has several
/// seeds (they would be one run in three folders); with one seed the run trains that
/// seed and its folder and row say so.
#[test]
fn a_seed_override_never_fakes_replication() {
    let p = Project::new();
    p.write("experiments/three.toml", &TINY.replace("seeds = [0]", "seeds = [0, 1, 2]"));
    geosr(&p)
        .args(["plan", "three", "--set", "train.seed=5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("train.seed").and(predicate::str::contains("seeds = [0, 1, 2]")));
    geosr(&p).args(["sweep", "three"]).env("GEOSR_TRAIN__SEED", "5").assert().code(2).stderr(predicate::str::contains("GEOSR_TRAIN__SEED"));
    assert!(!p.path().join("results").exists(), "nothing written");

    p.write("experiments/tiny.toml", &TINY);
    geosr(&p).args(["run", "tiny", "--set", "train.seed=1"]).assert().success();
    assert!(entries(&p, "tiny").is_empty(), "an overridden run is listed apart from the plain experiment's");
    let runs = entries(&p, "tiny+train.seed=1");
    assert_eq!(runs.len(), 1);
    let name = runs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("a-s1-"), "the folder names the seed that trained: {name}");
    assert_eq!(manifest(&runs[0])["seed"], 1);
    let table = stdout(&p, &["table", "tiny", "--set", "train.seed=1", "--format", "csv"]);
    assert!(table.lines().any(|l| l.starts_with("a,avg,") && l.split(',').nth(4) == Some("1")), "{table}");
}

/// Fault 2: an override of a swept key would give rows labelled with values they never
/// trained with: refused, naming the key and the sweep.
#[test]
fn an_override_of_a_swept_key_is_refused() {
    let p = Project::new();
    p.write(
        "experiments/sweep.toml",
        &format!("{}\n[[sweep.zip]]\n\"model.mask.gamma\" = [0.8, 0.6, 0.4]\n\"model.mask.beta\" = [0.5, 0.5, 0.5]\n", *TINY),
    );
    let ids = stdout(&p, &["plan", "sweep"]);
    assert_eq!(ids.lines().filter(|l| l.trim_start().starts_with("a_gamma")).count(), 3, "{ids}");
    geosr(&p)
        .args(["plan", "sweep", "--set", "model.mask.gamma=0.3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("model.mask.gamma").and(predicate::str::contains("sweep axis")).and(predicate::str::contains("0.8, 0.6, 0.4")));
    geosr(&p)
        .args(["table", "sweep"])
        .env("GEOSR_MODEL__MASK__GAMMA", "0.3")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("env GEOSR_MODEL__MASK__GAMMA").and(predicate::str::contains("sweep axis")));
}

/// Faults 1 and 2, whichever key does it: overrides that make distinct rows one run are refused.
#[test]
fn overrides_that_merge_distinct_runs_are_refused() {
    let p = Project::new();
    let three = format!(
        "{}\n[[variants]]\nlabel = \"e\"\nset = {{ \"model.mask.kind\" = \"none\", \"model.fusion\" = \"additive\" }}\n\
         [[variants]]\nlabel = \"f\"\nset = {{ \"model.mask.kind\" = \"none\", \"model.fusion\" = \"none\", \"model.geometry\" = \"none\" }}\n",
        *TINY
    );
    p.write("experiments/abc.toml", &three);
    geosr(&p)
        .args(["plan", "abc", "--set", "model.geometry=none", "--set", "model.fusion=none", "--set", "model.mask.kind=none"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("one run").and(predicate::str::contains("a seed 0")).and(predicate::str::contains("f seed 0")));
    // An override a variant sets itself is allowed, with a warning that the row keeps its label.
    geosr(&p)
        .args(["plan", "abc", "--set", "model.mask.kind=random"])
        .assert()
        .success()
        .stderr(predicate::str::contains("replaces what variant `e` sets").and(predicate::str::contains("keeps the label `e`")));
}

/// Fault 3: each row reports its own benchmark's average: the static row the macro mean
/// over subtasks, the dynamic row the micro mean over questions, on data whose
/// subtasks have unequal question counts (the real-data fixtures).
#[test]
fn each_row_reports_its_own_benchmarks_average() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let p = Project::new();
    p.write(
        "experiments/both.toml",
        &format!(
            r#"
title = "both"
[config]
data = {{ source = "features", bench = "static", features = {{ train = "{vsi}", eval = "{vsi}" }} }}
model = {{ geometry = "features", fusion = "gated", mask = {{ kind = "none" }} }}
train = {{ steps = 3, batch_size = 4, warmup_steps = 1 }}
eval = {{ average = "macro" }}
[[variants]]
label = "static"
[[variants]]
label = "dynamic"
[variants.set]
data = {{ bench = "dynamic", features = {{ train = "{dsr}", eval = "{dsr}" }} }}
eval = {{ average = "micro" }}
"#,
            vsi = root.join("vsi").display(),
            dsr = root.join("dsr").display()
        ),
    );
    geosr(&p).args(["run", "both"]).assert().success();
    // A run on precomputed features records what it read.
    for run in entries(&p, "both") {
        let fingerprint = &manifest(&run)["data_fingerprint"];
        assert_eq!(fingerprint["train"], fingerprint["eval"], "both splits are the same folder");
        assert_eq!(fingerprint["train"].as_str().unwrap().len(), 16);
    }
    let eval_avg = |label: &str, key: &str| -> f64 {
        let run = entries(&p, "both").into_iter().find(|r| r.file_name().unwrap().to_string_lossy().starts_with(&format!("{label}-"))).unwrap();
        let rows: Vec<geosr::eval::EvalRow> = csv::Reader::from_path(run.join("eval.csv")).unwrap().deserialize().map(Result::unwrap).collect();
        rows.iter().find(|r| r.subtask == key).unwrap().score
    };
    let means = table_means(&p, "both");
    let cell = |label: &str| means[&(label.to_string(), "avg".to_string())].parse::<f64>().unwrap();
    let (macro_s, micro_s) = (eval_avg("static", "avg_macro"), eval_avg("static", "avg_micro"));
    assert!((macro_s - micro_s).abs() > 0.05, "the fixture must tell the averages apart: {macro_s} vs {micro_s}");
    assert!((cell("static") - macro_s).abs() < 1e-3, "static row: {} is not its macro {macro_s}", cell("static"));
    assert!((cell("dynamic") - eval_avg("dynamic", "avg_micro")).abs() < 1e-3, "dynamic row is its micro average");
}

/// Fault 5: one seed's spread is unknown, not zero.
#[test]
fn one_seed_shows_no_spread() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY.replace("title = \"tiny\"", "title = \"tiny\"\nclaims = [\"a > b\"]").replace(
        "[[variants]]\nlabel = \"a\"",
        "[[variants]]\nlabel = \"a\"\n[[variants]]\nlabel = \"b\"\nset = { \"model.mask.kind\" = \"none\" }",
    ));
    geosr(&p).args(["run", "tiny"]).assert().success();
    let table = stdout(&p, &["table", "tiny"]);
    assert!(!table.contains("± 0.0"), "{table}");
    assert!(table.contains("a row has one run: CI over the questions only"), "{table}");
}

/// Run identity: a run two experiments plan is trained once; the second experiment
/// links to it and its table reads it.
#[test]
fn a_run_shared_by_two_experiments_trains_once() {
    let p = Project::new();
    p.write("experiments/first.toml", &TINY);
    p.write("experiments/second.toml", &TINY.replace("label = \"a\"", "label = \"centre\"\nname = \"the same config\""));
    geosr(&p).args(["run", "first"]).assert().success();
    geosr(&p).args(["sweep", "second"]).assert().success().stdout(predicate::str::contains("1 done").and(predicate::str::contains("0 to run")));
    let (a, b) = (entries(&p, "first"), entries(&p, "second"));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(std::fs::canonicalize(&a[0]).unwrap(), std::fs::canonicalize(&b[0]).unwrap(), "one folder, two entries");
    assert_eq!(manifest(&b[0])["attempts"].as_array().unwrap().len(), 1, "trained once");
    let means = table_means(&p, "second");
    assert!(means.contains_key(&("centre".to_string(), "avg".to_string())), "{means:?}");
    geosr(&p).args(["run", "second"]).assert().success().stdout(predicate::str::contains("already done"));
}

/// Run identity: keys that cannot change a result do not change the id.
#[test]
fn keys_that_cannot_change_a_result_keep_the_id() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY);
    let id = |sets: &[&str]| {
        let mut args = vec!["plan", "tiny"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = stdout(&p, &args);
        out.lines().find(|l| l.trim_start().starts_with("a ")).unwrap().split('|').nth(2).unwrap().trim().to_string()
    };
    let plain = id(&[]);
    for inert in ["train.log_every=7", "train.checkpoint_every=3", "eval.batch_size=5", "model.bottleneck_len=3", "model.fusion_heads=1"] {
        assert_eq!(id(&[inert]), plain, "{inert}");
    }
    assert_eq!(id(&["model.mask.kind=none", "model.mask.gamma=0.2"]), id(&["model.mask.kind=none"]), "no masking: gamma is inert");
    assert_ne!(id(&["model.mask.gamma=0.2"]), plain, "with masking gamma is the run's");
}

/// Run identity: a table that finds none of its runs says what is in the folder and
/// how it differs, instead of a row of dashes.
#[test]
fn a_table_names_the_runs_its_plan_misses() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY);
    geosr(&p).args(["run", "tiny", "--set", "train.lr=0.01"]).assert().success();
    for command in ["table", "status"] {
        geosr(&p)
            .args([command, "tiny"])
            .assert()
            .success()
            .stderr(predicate::str::contains("is not in this plan").and(predicate::str::contains("--set train.lr=0.01")));
    }
}

/// Runs that differ from the plan alike (a whole sweep trained with one `--set`) are
/// one note with their count, rows and seeds, not a line per run; runs that differ
/// otherwise keep their own note.
#[test]
fn runs_the_plan_misses_alike_share_one_note() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY.replace("seeds = [0]", "seeds = [0, 1]"));
    geosr(&p).args(["run", "tiny", "--set", "train.lr=0.01"]).assert().success();
    geosr(&p).args(["run", "tiny", "--seed", "0", "--set", "train.lr=0.02"]).assert().success();
    let out = geosr(&p).args(["table", "tiny"]).assert().success().get_output().stderr.clone();
    let notes: Vec<String> = String::from_utf8(out).unwrap().lines().filter(|l| l.starts_with("note:")).map(String::from).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    // The notes follow the folder names, which end in hashes: either may come first.
    let alike = notes.iter().any(|n| n.contains("2 runs (2 done; rows a; seeds 0, 1) are not in this plan") && n.contains("add --set train.lr=0.01 to show them"));
    let single = notes.iter().any(|n| n.contains("(done) is not in this plan") && n.contains("add --set train.lr=0.02 to show it"));
    assert!(alike && single, "{notes:?}");
}

/// A stray run that is one of the experiment's controls (or, under `--control`, the
/// file as written) is named as such, with the flag that shows it, not as a `--set`.
#[test]
fn runs_of_another_control_are_named_by_their_control() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &format!("{}\n[[controls]]\nname = \"faster\"\nset = {{ \"train.lr\" = 0.01 }}\n", *TINY));
    geosr(&p).args(["run", "tiny"]).assert().success();
    geosr(&p).args(["run", "tiny", "--control", "faster"]).assert().success();
    geosr(&p).args(["run", "tiny", "--set", "train.lr=0.02"]).assert().success();
    let notes = |args: &[&str]| -> Vec<String> {
        let out = geosr(&p).args(args).assert().success().get_output().stderr.clone();
        String::from_utf8(out).unwrap().lines().filter(|l| l.starts_with("note:")).map(String::from).collect()
    };
    let plain = notes(&["table", "tiny"]);
    assert_eq!(plain.len(), 2, "{plain:?}");
    assert!(plain.iter().any(|n| n.contains("belongs to control `faster`; add --control faster to show it")), "{plain:?}");
    assert!(plain.iter().any(|n| n.contains("add --set train.lr=0.02 to show it")), "{plain:?}");
    let control = notes(&["table", "tiny", "--control", "faster"]);
    assert!(control.iter().any(|n| n.contains("belongs to the experiment as written; drop --control to show it")), "{control:?}");
    assert!(!control.iter().any(|n| n.contains("train.lr = 0.001")), "{control:?}");
    // With every condition on screen, only the run outside them all is stray.
    for command in ["table", "status"] {
        let all = notes(&[command, "tiny", "--controls"]);
        assert_eq!(all.len(), 1, "{command}: {all:?}");
        assert!(all[0].contains("add --set train.lr=0.02 to show it"), "{command}: {all:?}");
    }
}

/// Rewrites a stored run's manifest as if another build of geosr had trained it.
fn pretend_other_build(run: &Path) {
    edit_manifest(run, |m| {
        m["provenance"]["build"]["source_hash"] = "000000000000".into();
        m["provenance"]["build"]["training_hash"] = "000000000000".into();
        m["provenance"]["build"]["commit"] = "0123456789abcdef".into();
    });
}

/// Rewrites a stored run's manifest in place.
fn edit_manifest(run: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut m = manifest(run);
    edit(&mut m);
    std::fs::write(run.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// `tiny` with a second row, b (no masking), for tests that alter one row's run.
fn tiny_with_b() -> String {
    TINY.replace("[[variants]]\nlabel = \"a\"", "[[variants]]\nlabel = \"a\"\n[[variants]]\nlabel = \"b\"\nset = { \"model.mask.kind\" = \"none\" }")
}

/// A table whose runs trained on different backends or devices says which ran where
/// (a GPU run's kernels sum in other orders than a CPU's, as two CPUs' do).
#[test]
fn a_table_names_the_backends_when_its_runs_mix_them() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &tiny_with_b());
    geosr(&p).args(["reproduce", "tiny"]).assert().success();
    geosr(&p).args(["table", "tiny"]).assert().success().stdout(predicate::str::contains("backends or devices").not());
    let runs = entries(&p, "tiny");
    let b = runs.iter().find(|r| r.file_name().unwrap().to_string_lossy().starts_with("b-")).unwrap();
    edit_manifest(b, |m| {
        m["provenance"]["backend"] = "cuda".into();
        m["provenance"]["device"] = "cuda:0".into();
    });
    let out = stdout(&p, &["table", "tiny"]);
    assert!(out.contains("2 backends or devices"), "{out}");
    assert!(out.contains("cuda on cuda:0: b seed 0"), "the GPU's row and seed are named: {out}");
    assert!(out.contains("on cpu: a seed 0"), "the CPU's row and seed are named: {out}");
}

/// A run trained by a build whose source differs only in reporting code (a plot or a
/// table mended since) trained as this build would: it is not stale, and a table of
/// it and this build's runs does not warn of mixed builds, though it names both commits.
#[test]
fn a_build_that_changed_only_reporting_code_leaves_runs_fresh() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &tiny_with_b());
    geosr(&p).args(["reproduce", "tiny"]).assert().success();
    let runs = entries(&p, "tiny");
    let old = runs.iter().find(|r| r.file_name().unwrap().to_string_lossy().starts_with("b-")).unwrap().clone();
    assert!(manifest(&old)["provenance"]["build"]["training_hash"].as_str().is_some_and(|h| h.len() == 12));
    edit_manifest(&old, |m| {
        m["provenance"]["build"]["source_hash"] = "000000000000".into();
        m["provenance"]["build"]["commit"] = "0123456789abcdef".into();
    });
    geosr(&p).args(["table", "tiny"]).assert().success().stdout(predicate::str::contains("different builds").not().and(predicate::str::contains("0123456")));
    geosr(&p).args(["status", "tiny"]).assert().success().stdout(predicate::str::contains("trained by other code").not());
    geosr(&p).args(["sweep", "tiny", "--rerun-stale"]).assert().success().stdout(predicate::str::contains("0 to run"));
    // A run from before the training fingerprint was kept falls back to the whole source's.
    edit_manifest(&old, |m| {
        m["provenance"]["build"].as_object_mut().unwrap().remove("training_hash");
    });
    geosr(&p).args(["status", "tiny"]).assert().success().stdout(predicate::str::contains("trained by other code"));
}

/// Run identity: tables show the code behind each row and warn when rows mix
/// builds; `--rerun-stale` trains again what another build trained and keeps the
/// old results; tables with overrides go to their own files with a record of the
/// build, the overrides and the run ids.
#[test]
fn a_new_build_is_noticed_and_can_be_rerun() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &tiny_with_b());
    geosr(&p).args(["reproduce", "tiny"]).assert().success();
    let runs = entries(&p, "tiny");
    let old = runs.iter().find(|r| r.file_name().unwrap().to_string_lossy().starts_with("b-")).unwrap().clone();
    pretend_other_build(&old);
    geosr(&p)
        .args(["table", "tiny"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 different builds").and(predicate::str::contains("0123456")).and(predicate::str::contains("commit")));
    geosr(&p).args(["status", "tiny"]).assert().success().stdout(predicate::str::contains("trained by other code"));
    geosr(&p).args(["sweep", "tiny"]).assert().success().stdout(predicate::str::contains("0 to run"));
    geosr(&p).args(["sweep", "tiny", "--rerun-stale"]).assert().success().stdout(predicate::str::contains("1 to run"));
    let m = manifest(&old);
    assert_eq!(m["status"], "done");
    let rerun = &m["reruns"][0];
    assert!(rerun["reason"].as_str().unwrap().contains("--rerun-stale"), "{rerun}");
    let archived = old.join(rerun["archived_to"].as_str().unwrap());
    assert!(archived.join("eval.csv").is_file() && archived.join("manifest.json").is_file(), "the old result is kept");
    geosr(&p).args(["table", "tiny"]).assert().success().stdout(predicate::str::contains("different builds").not());

    // Tables of a run with overrides do not overwrite the plain experiment's.
    let plain = std::fs::read(p.path().join("results/tables/tiny.md")).unwrap();
    geosr(&p).args(["reproduce", "tiny", "--set", "train.lr=0.002"]).assert().success();
    assert_eq!(std::fs::read(p.path().join("results/tables/tiny.md")).unwrap(), plain);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("results/tables/tiny+train.lr=0.002.json")).unwrap()).unwrap();
    assert_eq!(record["overrides"][0], "--set train.lr=0.002");
    assert_eq!(record["table"]["rows"][0]["runs"][0]["id"].as_str().unwrap().len(), 10);
    assert!(record["geosr_build"]["source_hash"].as_str().is_some_and(|h| !h.is_empty()));
    // The file reproduce writes has the scores, as `table --format json` prints them.
    let avg = record["table"]["rows"][0]["cells"].as_array().unwrap().iter().find(|c| c["column"] == "avg").unwrap().clone();
    assert!(avg["mean"].as_f64().is_some() && avg["n"] == 1, "{avg}");
    let printed: serde_json::Value =
        serde_json::from_slice(&geosr(&p).args(["table", "tiny", "--set", "train.lr=0.002", "--format", "json"]).output().unwrap().stdout).unwrap();
    assert_eq!(printed["rows"], record["table"]["rows"]);
    let md = std::fs::read_to_string(p.path().join("results/tables/tiny+train.lr=0.002.md")).unwrap();
    assert!(md.contains("--set train.lr=0.002"), "{md}");
}

/// What a run records: the build and machine facts that select kernels, the
/// variables in force, the generator version, each attempt's time, untracked files'
/// names without their contents, and the final weights.
#[test]
fn a_run_records_what_decides_its_numbers_and_no_secrets() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY);
    let git = |args: &[&str]| common::git(p.path(), args);
    git(&["init", "-q"]);
    p.write(".gitignore", "results/\n");
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "x"]);
    p.write(".env", "API_TOKEN=hunter2\n");
    geosr(&p).args(["run", "tiny"]).env("GEOSR_EVAL__BATCH_SIZE", "16").assert().success();
    let run = &entries(&p, "tiny")[0];
    let text = std::fs::read_to_string(run.join("manifest.json")).unwrap();
    assert!(!text.contains("hunter2"), "an untracked file's contents were copied");
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let prov = &m["provenance"];
    assert_eq!(prov["untracked"][0]["path"], ".env");
    assert_eq!(prov["untracked"][0]["bytes"], 18);
    assert!(prov["threads"].as_u64().unwrap() >= 1);
    assert!(prov["cpu_flags"].is_array());
    // Where sysfs describes the caches, the first data cache is there, named by level.
    let caches = prov["cpu_caches"].as_array().unwrap();
    if std::path::Path::new("/sys/devices/system/cpu/cpu0/cache/index0/level").is_file() {
        assert!(caches[0].as_str().unwrap().starts_with("L1 "), "{caches:?}");
    }
    // The features this test was built with are the binary's: a LibTorch or CUDA run says so.
    let features: Vec<&str> = [("cuda", cfg!(feature = "cuda")), ("tch", cfg!(feature = "tch"))]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    assert_eq!(prov["build"]["features"], serde_json::json!(features));
    assert_eq!(prov["build"]["source_hash"].as_str().unwrap().len(), 12);
    assert_eq!(prov["build"]["cargo_lock_hash"].as_str().unwrap().len(), 12);
    assert_eq!(prov["env"]["GEOSR_EVAL__BATCH_SIZE"], "16");
    assert_eq!(m["synthetic_version"], geosr::data::SYNTHETIC_VERSION);
    let (train, eval) = (m["data_fingerprint"]["train"].as_str().unwrap(), m["data_fingerprint"]["eval"].as_str().unwrap());
    assert!(train.len() == 16 && train != eval, "{train} {eval}");
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0]["seconds"].as_f64().unwrap() > 0.0 && attempts[0]["outcome"] == "done");
    assert!(run.join("model/model.mpk").is_file(), "the final weights are kept");
}

/// The final weights reproduce the stored predictions.
#[test]
fn kept_weights_reproduce_the_predictions() {
    use burn::backend::Flex;
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY);
    geosr(&p).args(["run", "tiny"]).assert().success();
    let run = &entries(&p, "tiny")[0];
    let config: geosr::config::Config = toml::from_str(&std::fs::read_to_string(run.join("config.toml")).unwrap()).unwrap();
    let eval_data = geosr::data::load(&config.data, geosr::data::Split::Eval).unwrap();
    let bytes = std::fs::read(run.join("model/model.mpk")).unwrap();
    let model = geosr::train::load_weights::<Flex>(&config, geosr::model::ModelDims::of(&eval_data), bytes, &Default::default()).unwrap();
    let again = geosr::eval::predict(&model, &eval_data, &geosr::train::batcher_for(&config, &eval_data), 16, &Default::default());
    let stored: Vec<geosr::eval::Prediction> = csv::Reader::from_path(run.join("predictions.csv")).unwrap().deserialize().map(Result::unwrap).collect();
    assert_eq!(stored.len(), again.len());
    for (s, a) in stored.iter().zip(&again) {
        assert_eq!((s.index, s.score), (a.index, a.score));
        assert!((s.prediction - a.prediction).abs() <= 1e-9 * s.prediction.abs().max(1.0), "{s:?} vs {a:?}");
    }
}

/// A loss that explodes but stays finite is a diverged run, not a done one.
#[test]
fn a_diverging_run_fails_and_says_so() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY.replace("lr = 1e-3", "lr = 1e6").replace("steps = 4", "steps = 30"));
    geosr(&p).args(["run", "tiny"]).assert().code(1).stdout(predicate::str::contains("diverged"));
    let m = manifest(&entries(&p, "tiny")[0]);
    assert_eq!(m["status"], "failed");
    assert!(m["reason"].as_str().unwrap().contains("diverged"), "{}", m["reason"]);
    assert!(m["failed_step"].is_u64());
}

/// `geosr score` prints each fraction as the official code computes it, to compare digit for digit.
#[test]
fn score_prints_full_precision() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Project::new();
    geosr(&p)
        .args(["score", "--bench", "vsi"])
        .arg(root.join("tests/fixtures/predictions/vsi.jsonl"))
        .assert()
        .success()
        .stdout(predicate::str::contains("0.6666666666666666").and(predicate::str::contains("0.7458333333333333")));
    let bad = p.write("p.jsonl", "{\"question_type\": \"room_size_estimation\", \"prediction\": \"5\", \"ground_truth\": -3}\n");
    geosr(&p).args(["score", "--bench", "vsi"]).arg(&bad).assert().code(2).stderr(predicate::str::contains("p.jsonl:1").and(predicate::str::contains("positive")));
}

/// A run that cannot even be stored (its folder is blocked) ends failed and a serial
/// sweep goes on with the next run.
#[test]
fn a_serial_sweep_goes_on_after_a_run_that_cannot_be_stored() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY.replace("seeds = [0]", "seeds = [0, 1]"));
    let plan = stdout(&p, &["plan", "tiny"]);
    let first = plan.lines().find(|l| l.trim_start().starts_with("a ")).unwrap();
    let id = first.split('|').nth(2).unwrap().trim();
    // A file where the run's folder goes, in the store and in the older layout.
    p.write(&format!("results/store/{id}"), "not a folder");
    p.write(&format!("results/runs/tiny/a-s0-{id}"), "not a folder");
    geosr(&p)
        .args(["sweep", "tiny"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILED").and(predicate::str::contains("[2/2] a seed 1")))
        .stderr(predicate::str::contains("1 run(s) failed"));
    let done = entries(&p, "tiny").into_iter().filter(|r| r.is_dir() && manifest(r)["status"] == "done").count();
    assert_eq!(done, 1, "the second run trained");
}

/// `config show --label` shows one sweep point's resolved config.
#[test]
fn config_show_selects_a_sweep_point() {
    let p = Project::new();
    p.write("experiments/sweep.toml", &format!("{}\n[sweep.grid]\n\"model.mask.gamma\" = [0.8, 0.6]\n", *TINY));
    let out = stdout(&p, &["config", "show", "sweep", "--label", "a_gamma0.6"]);
    assert!(out.contains("| run a_gamma0.6 |"), "{out}");
    assert!(out.lines().any(|l| l.contains("model.mask.gamma") && l.contains("0.6") && l.contains("sweep")), "{out}");
}

/// A finished run whose predictions.csv is gone (or changed) is not done: the claims
/// need it. `status` names the file, the table leaves the run out, and a sweep trains
/// it again, keeping what was left aside in its history.
#[test]
fn a_run_that_lost_its_predictions_is_damaged_and_trained_again() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY);
    geosr(&p).args(["sweep", "tiny"]).assert().success();
    let run = entries(&p, "tiny").remove(0);
    let predictions = std::fs::read(run.join("predictions.csv")).unwrap();
    std::fs::remove_file(run.join("predictions.csv")).unwrap();
    let status = stdout(&p, &["status", "tiny"]);
    assert!(status.contains("damaged") && status.contains("predictions.csv is missing"), "{status}");
    let table = stdout(&p, &["table", "tiny", "--format", "csv"]);
    assert!(table.lines().any(|l| l.starts_with("a,avg,,,0,")), "a damaged run must not count:\n{table}");
    let out = stdout(&p, &["sweep", "tiny"]);
    assert!(out.contains("1 to run"), "{out}");
    assert_eq!(std::fs::read(run.join("predictions.csv")).unwrap(), predictions, "the same run trained again gives the same file");
    // An edited one is named too.
    std::fs::write(run.join("predictions.csv"), b"index,subtask,score\n").unwrap();
    let status = stdout(&p, &["status", "tiny"]);
    assert!(status.contains("predictions.csv changed after the run wrote it"), "{status}");
}

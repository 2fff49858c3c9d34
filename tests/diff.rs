//! `geosr diff` and finding runs by id, on runs written by the test.

mod common;

use assert_cmd::Command;
use common::{eval_row, plan_in, store_run, Project};
use geosr::report::diff::{diff, Change};
use geosr::runs::{find_run, Provenance, StoreError};
use predicates::prelude::*;

const EXP: &str = r#"
title = "T"
seeds = [0]
[config]
model = { mask = { kind = "random" } }
[[variants]]
label = "a"
set = { "model.mask.gamma" = 0.5 }
[[variants]]
label = "b"
set = { "model.mask.gamma" = 0.7 }
"#;

/// Two stored runs that differ in one config key and in their scores.
fn two_runs(p: &Project) -> (geosr::runs::RunDir, geosr::runs::RunDir, [String; 2]) {
    p.write("experiments/t.toml", EXP);
    let (_, plan) = plan_in(p, "t");
    let prov = Provenance::collect("flex", "cpu");
    let mut other = prov.clone();
    other.backend = "ndarray".into();
    let a = store_run(&plan[0], &[eval_row("obj_count", 40.0, 5.0, 1.0), eval_row("avg_macro", 40.0, 5.0, 1.0)], prov);
    let b = store_run(&plan[1], &[eval_row("obj_count", 47.5, 9.0, 0.5), eval_row("avg_macro", 47.5, 9.0, 0.5)], other);
    (a, b, [plan[0].id.clone(), plan[1].id.clone()])
}

#[test]
fn diff_finds_the_one_key_that_differs_and_the_score_deltas() {
    let p = Project::new();
    let (a, b, _) = two_runs(&p);
    let d = diff(&a, &b).unwrap();
    assert_eq!(d.config, vec![Change { key: "model.mask.gamma".into(), a: Some("0.5".into()), b: Some("0.7".into()) }]);
    let obj = d.metrics.iter().find(|m| m.subtask == "obj_count").unwrap();
    assert_eq!(obj.score.delta(), Some(7.5));
    assert_eq!((obj.drop_no_geometry.a, obj.drop_no_geometry.b), (Some(5.0), Some(9.0)));
    assert!(d.metrics.iter().any(|m| m.subtask == "avg_macro"));
    assert_eq!(d.provenance, vec![Change { key: "backend".into(), a: Some("flex".into()), b: Some("ndarray".into()) }]);

    let text = d.render();
    assert!(text.contains("model.mask.gamma") && text.contains("+7.5"), "{text}");
    assert!(text.contains("ndarray"), "{text}");
    // A run compared with itself differs in nothing.
    let same = diff(&a, &a).unwrap();
    assert!(same.config.is_empty() && same.provenance.is_empty());
    assert!(same.metrics.iter().all(|m| m.score.delta() == Some(0.0)));
}

/// Two runs from dirty trees with different patches are told apart.
#[test]
fn dirty_trees_with_different_patches_differ() {
    let p = Project::new();
    p.write("experiments/t.toml", EXP);
    let (_, plan) = plan_in(&p, "t");
    let mut prov = Provenance::collect("flex", "cpu");
    prov.git_dirty = true;
    prov.git_diff_hash = Some("aaaaaaaaaaaa".into());
    let mut other = prov.clone();
    other.git_diff_hash = Some("bbbbbbbbbbbb".into());
    let a = store_run(&plan[0], &[eval_row("avg_macro", 40.0, 5.0, 1.0)], prov);
    let b = store_run(&plan[1], &[eval_row("avg_macro", 40.0, 5.0, 1.0)], other);
    let d = diff(&a, &b).unwrap();
    assert!(d.provenance.iter().any(|c| c.key == "git_diff_hash"), "{:?}", d.provenance);
    assert!(!d.render().contains("same build"), "{}", d.render());
}

#[test]
fn a_run_without_eval_csv_is_compared_on_config_alone() {
    let p = Project::new();
    let (a, b, _) = two_runs(&p);
    std::fs::remove_file(b.eval_csv()).unwrap();
    let d = diff(&a, &b).unwrap();
    assert!(!d.b.evaluated);
    assert_eq!(d.config.len(), 1);
    assert_eq!(d.metrics.iter().find(|m| m.subtask == "obj_count").unwrap().score.delta(), None);
    assert!(d.render().contains("B has no eval.csv yet"));
}

#[test]
fn runs_are_found_by_path_by_id_and_by_unique_prefix() {
    let p = Project::new();
    let (a, _, [id_a, _]) = two_runs(&p);
    let results = p.path().join("results");
    assert_eq!(find_run(&results, &id_a).unwrap().path, a.path);
    assert_eq!(find_run(&results, &id_a[..6]).unwrap().path, a.path);
    assert_eq!(find_run(&results, a.path.to_str().unwrap()).unwrap().path, a.path);
    assert!(matches!(find_run(&results, "zzz"), Err(StoreError::RunNotFound { .. })));
}

#[test]
fn an_ambiguous_prefix_is_an_error_naming_the_matches() {
    let p = Project::new();
    let results = p.path().join("results");
    for dir in ["results/runs/x/a-s0-abc1234567", "results/runs/y/b-s1-abc7654321"] {
        p.write(&format!("{dir}/config.toml"), "");
    }
    let err = find_run(&results, "abc").unwrap_err();
    let StoreError::AmbiguousRun { ref matches, .. } = err else { panic!("{err}") };
    assert_eq!(matches.len(), 2);
    let msg = err.to_string();
    assert!(msg.contains("a-s0-abc1234567") && msg.contains("b-s1-abc7654321"), "{msg}");
    assert!(find_run(&results, "abc7").unwrap().path.ends_with("b-s1-abc7654321"));
    let missing = find_run(&results, "def").unwrap_err().to_string();
    assert!(missing.contains(&results.display().to_string()), "names what was searched: {missing}");
}

fn geosr(p: &Project) -> Command {
    let mut c = Command::cargo_bin("geosr").unwrap();
    c.current_dir(p.path());
    c
}

#[test]
fn diff_command_prints_the_differences_and_exits_2_on_bad_ids() {
    let p = Project::new();
    let (_, _, [id_a, id_b]) = two_runs(&p);
    geosr(&p)
        .args(["diff", &id_a[..7], &id_b])
        .assert()
        .success()
        .stdout(predicate::str::contains("model.mask.gamma").and(predicate::str::contains("+7.5")));
    geosr(&p).args(["diff", &id_a, "0000000000"]).assert().code(2).stderr(predicate::str::contains("no run `0000000000`"));
    p.write("results/runs/x/c-s0-ffff000000/config.toml", "");
    p.write("results/runs/x/d-s0-ffff111111/config.toml", "");
    geosr(&p).args(["diff", &id_a, "ffff"]).assert().code(2).stderr(predicate::str::contains("ambiguous"));
}

//! Helpers shared by the integration tests: a throwaway project folder with
//! `configs/` and `experiments/`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("configs")).unwrap();
        std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// An eval.csv row with the given score and probe drops.
pub fn eval_row(subtask: &str, score: f64, drop_no_geometry: f64, drop_no_vision: f64) -> geosr::eval::EvalRow {
    geosr::eval::EvalRow {
        subtask: subtask.into(),
        name: subtask.into(),
        metric: "accuracy".into(),
        questions: 10,
        score,
        score_no_geometry: score - drop_no_geometry,
        score_no_vision: score - drop_no_vision,
        drop_no_geometry,
        drop_no_vision,
        alpha: None,
        chance: 25.0,
        prior: None,
    }
}

/// Stores a finished run of `spec` the way `geosr run` does (config.toml,
/// manifest.json, eval.csv), without training; returns its folder.
pub fn store_run(spec: &geosr::config::RunSpec, eval: &[geosr::eval::EvalRow], provenance: geosr::runs::Provenance) -> geosr::runs::RunDir {
    use geosr::runs::{Manifest, Status};
    let dir = geosr::runs::run_dir(spec);
    let config = toml::to_string_pretty(&spec.resolved.config).unwrap();
    geosr::runs::write_atomic(&dir.config_path(), config.as_bytes()).unwrap();
    dir.write_csv(&dir.eval_csv(), eval).unwrap();
    dir.write_manifest(&Manifest { status: Status::Done, ..Manifest::for_run(spec, provenance) }).unwrap();
    dir
}

/// The plan of `experiments/NAME.toml` in `p`, storing its runs under `p`'s `results/`.
pub fn plan_in(p: &Project, name: &str) -> (geosr::config::Experiment, Vec<geosr::config::RunSpec>) {
    let path = p.path().join("experiments").join(format!("{name}.toml"));
    let exp = geosr::config::Experiment::load(path.to_str().unwrap()).unwrap();
    let results = p.path().join("results");
    let sets = geosr::config::layers::cli_layers(&[format!("output.results_dir={}", results.display())]).unwrap();
    let plan = exp.plan(&[], &sets).unwrap();
    (exp, plan)
}

/// A static experiment small enough to train in about a second per run: `seeds` as
/// written in TOML (`[0, 1]`), the `train` table's extra keys (`steps = 4`), then
/// `variants` (TOML `[[variants]]` tables).
pub fn tiny_experiment(seeds: &str, train: &str, variants: &str) -> String {
    format!(
        r#"
title = "tiny"
seeds = {seeds}

[config]
data = {{ bench = "static", train_size = 64, eval_size = 32, frames = 1, vision_grid = [3, 3], geometry_grid = [2, 2] }}
model = {{ backbone = {{ preset = "tiny" }}, geometry = "vggt", fusion = "gated", mask = {{ kind = "random", gamma = 0.5, beta = 0.5 }} }}
train = {{ batch_size = 8, warmup_steps = 1, lr = 1e-3, {train} }}
{variants}"#
    )
}

/// The `geosr` binary run in `dir`, with no `GEOSR_*` variable of the caller's.
pub fn geosr_in(dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("geosr").unwrap();
    c.current_dir(dir);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GEOSR_")) {
        c.env_remove(k);
    }
    c
}

/// Runs git in `dir` as a throwaway identity, and asserts that it succeeded.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

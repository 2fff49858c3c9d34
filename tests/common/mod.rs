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
    let dir = geosr::launch::run_dir(spec);
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

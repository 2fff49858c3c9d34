//! What the benches share: a throw-away project holding one experiment, and finished
//! runs stored the way `geosr run` stores them (files, then a manifest with their hashes).

use geosr::config::layers::{cli_layers, Layer};
use geosr::config::{Experiment, RunSpec};
use geosr::eval::EvalRow;
use geosr::runs::{Manifest, Provenance, Status};

/// A temporary project with `experiments/bench.toml` = `experiment`, its experiment, and
/// the layer that stores runs under the project's `results/`.
pub fn project(experiment: &str) -> (tempfile::TempDir, Experiment, Vec<Layer>) {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(root.path().join("configs")).unwrap();
    let path = root.path().join("experiments/bench.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, experiment).unwrap();
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let sets = cli_layers(&[format!("output.results_dir={}", root.path().join("results").display())]).unwrap();
    (root, exp, sets)
}

/// Stores `spec` as a finished run with these eval rows; `extra` writes any other result
/// file (predictions.csv) before the manifest records the hashes.
pub fn store_done(spec: &RunSpec, eval: &[EvalRow], provenance: &Provenance, extra: impl FnOnce(&geosr::runs::RunDir)) {
    let dir = geosr::runs::run_dir(spec);
    let config = toml::to_string_pretty(&spec.resolved.config).unwrap();
    geosr::runs::write_atomic(&dir.config_path(), config.as_bytes()).unwrap();
    extra(&dir);
    dir.write_csv(&dir.eval_csv(), eval).unwrap();
    let files = dir.result_hashes();
    dir.write_manifest(&Manifest { status: Status::Done, files, ..Manifest::for_run(spec, provenance.clone()) }).unwrap();
}

//! Executing runs: one run end to end (data, training, evaluation, store).

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;

use crate::config::RunSpec;
use crate::data::{self, Split};
use crate::eval::{self, EvalRow};
use crate::runs::manifest::{git_state, now_rfc3339};
use crate::runs::{Manifest, Provenance, RunDir, Status, StoreError};
use crate::train::{self, StepRow};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub require_clean: bool,
    /// Run again even when a finished run with the same id exists.
    pub force: bool,
    pub backend: String,
    pub device: String,
}

#[derive(Debug)]
pub enum Outcome {
    Done { dir: PathBuf, eval: Vec<EvalRow> },
    /// A finished run with the same id already exists.
    Skipped { dir: PathBuf },
    Failed { dir: PathBuf, reason: String },
}

pub fn run_dir(spec: &RunSpec) -> RunDir {
    let results = PathBuf::from(&spec.resolved.config.output.results_dir);
    RunDir::new(&results, &spec.experiment, &spec.dir_name())
}

/// The stored status of a run (pending when it never started).
pub fn status(spec: &RunSpec) -> Result<Status, StoreError> {
    Ok(run_dir(spec).read_manifest()?.map_or(Status::Pending, |m| m.status))
}

/// Refuses a dirty working tree when asked to; checked before anything is written.
pub fn check_clean(spec: &RunSpec, opts: &RunOptions) -> Result<(), StoreError> {
    if opts.require_clean || spec.resolved.config.output.require_clean {
        let git = git_state(&std::env::current_dir().unwrap_or_else(|_| ".".into()));
        if git.dirty {
            let files: Vec<&str> = git
                .diff
                .as_deref()
                .unwrap_or("")
                .lines()
                .filter_map(|l| l.strip_prefix("diff --git a/"))
                .collect();
            return Err(StoreError::Dirty(files.join("\n")));
        }
    }
    Ok(())
}

/// Trains and evaluates one run, storing config, manifest, train.csv, eval.csv
/// and predictions.csv in its folder.
pub fn run_one<B: AutodiffBackend>(spec: &RunSpec, opts: &RunOptions, device: &B::Device) -> Result<Outcome, StoreError> {
    check_clean(spec, opts)?;
    let dir = run_dir(spec);
    if !opts.force {
        if let Some(m) = dir.read_manifest()? {
            if m.status == Status::Done {
                return Ok(Outcome::Skipped { dir: dir.path });
            }
        }
    }
    let config = &spec.resolved.config;
    let config_toml = toml::to_string_pretty(config).expect("config serializes to TOML");
    crate::runs::write_atomic(&dir.config_path(), config_toml.as_bytes())?;
    let mut manifest = Manifest {
        experiment: spec.experiment.clone(),
        label: spec.label.clone(),
        variant: spec.variant.clone(),
        seed: spec.seed,
        run_id: spec.id.clone(),
        status: Status::Running,
        reason: None,
        failed_step: None,
        started: Some(now_rfc3339()),
        ended: None,
        provenance: Provenance::collect(&opts.backend, &opts.device),
    };
    dir.write_manifest(&manifest)?;

    let loaded = data::load(&config.data, Split::Train).and_then(|t| Ok((t, data::load(&config.data, Split::Eval)?)));
    let (train_data, eval_data) = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            manifest.status = Status::Failed;
            manifest.reason = Some(format!("data: {e}"));
            manifest.ended = Some(now_rfc3339());
            dir.write_manifest(&manifest)?;
            return Ok(Outcome::Failed { dir: dir.path, reason: e.to_string() });
        }
    };
    let mut rows: Vec<StepRow> = Vec::new();
    let mut write_error = None;
    let result = train::train::<B>(config, &train_data, device, |row| {
        rows.push(row.clone());
        // Flush now and then so a watcher (or a crash) sees progress.
        if rows.len() % 50 == 0 {
            if let Err(e) = dir.write_csv(&dir.train_csv(), &rows) {
                write_error.get_or_insert(e);
            }
        }
    });
    if let Some(e) = write_error {
        return Err(e);
    }
    dir.write_csv(&dir.train_csv(), &rows)?;
    let model = match result {
        Ok(model) => model,
        Err(e) => {
            let train::TrainError::NonFinite { step, .. } = &e;
            manifest.status = Status::Failed;
            manifest.reason = Some(e.to_string());
            manifest.failed_step = Some(*step);
            manifest.ended = Some(now_rfc3339());
            dir.write_manifest(&manifest)?;
            return Ok(Outcome::Failed { dir: dir.path, reason: e.to_string() });
        }
    };
    let batcher = train::batcher_for(config, &eval_data);
    let inner_device = device.clone();
    let predictions = eval::predict(&model, &eval_data, &batcher, config.eval.batch_size, &inner_device);
    let eval_rows = eval::summarize(&eval_data, &predictions);
    dir.write_csv(&dir.path.join("predictions.csv"), &predictions)?;
    dir.write_csv(&dir.eval_csv(), &eval_rows)?;
    manifest.status = Status::Done;
    manifest.ended = Some(now_rfc3339());
    dir.write_manifest(&manifest)?;
    Ok(Outcome::Done { dir: dir.path, eval: eval_rows })
}

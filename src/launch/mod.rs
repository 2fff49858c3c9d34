//! Executing runs: one run end to end (data, training, evaluation, store), sweeps
//! of many runs on this machine, and Slurm job arrays.

pub mod slurm;
pub mod sweep;

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;

use crate::config::RunSpec;
use crate::data::{self, Split};
use crate::eval::{self, EvalRow};
use crate::runs::manifest::{git_state, now_rfc3339, peak_rss_bytes, reset_peak_rss, Cost};
use crate::runs::{Manifest, Provenance, RunDir, Status, StoreError};
use crate::train::{self, StepRow};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub require_clean: bool,
    /// Run again even when a finished run with the same id exists.
    pub force: bool,
    pub backend: String,
    pub device: String,
    /// Reads the device allocator's reserved bytes, for devices whose memory the
    /// process's RSS does not show (CUDA); `None` on CPU backends.
    pub device_memory: Option<DeviceMemory>,
}

/// How to read a device's memory: `read(index)` returns the bytes its allocator holds.
#[derive(Debug, Clone, Copy)]
pub struct DeviceMemory {
    pub read: fn(usize) -> Option<u64>,
    pub index: usize,
}

impl DeviceMemory {
    fn sample(self, peak: &mut Option<u64>) {
        if let Some(bytes) = (self.read)(self.index) {
            *peak = Some(peak.map_or(bytes, |p| p.max(bytes)));
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Done { dir: PathBuf, eval: Vec<EvalRow> },
    /// A finished run with the same id already exists.
    Skipped { dir: PathBuf },
    /// Another live process (a parallel sweep, a Slurm task) is training this run.
    Busy { dir: PathBuf },
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
/// Something that watches training: called with each logged step and the run's total steps.
pub type Progress<'a> = &'a mut dyn FnMut(&StepRow, usize);

/// With several `devices`, training is data parallel over them (see [`train::train`]);
/// evaluation runs on the first.
pub fn run_one<B: AutodiffBackend>(
    spec: &RunSpec,
    opts: &RunOptions,
    devices: &[B::Device],
    progress: Progress<'_>,
) -> Result<Outcome, StoreError> {
    let device = devices.first().expect("at least one device");
    check_clean(spec, opts)?;
    let dir = run_dir(spec);
    let Some(_lock) = dir.try_lock()? else {
        return Ok(Outcome::Busy { dir: dir.path });
    };
    if !opts.force {
        if let Some(m) = dir.read_manifest()? {
            if m.status == Status::Done {
                return Ok(Outcome::Skipped { dir: dir.path });
            }
        }
    }
    let config = &spec.resolved.config;
    let checkpoints = train::Checkpoints { dir: dir.path.join("checkpoint"), every: config.train.checkpoint_every };
    if opts.force {
        checkpoints.clear();
    }
    let resume_from = checkpoints.resume_step();
    let config_toml = toml::to_string_pretty(config).expect("config serializes to TOML");
    crate::runs::write_atomic(&dir.config_path(), config_toml.as_bytes())?;
    let mut manifest = Manifest {
        status: Status::Running,
        started: Some(now_rfc3339()),
        pid: Some(std::process::id()),
        slurm_task: slurm_task_from_env(),
        resumed_from_step: resume_from,
        ..Manifest::for_run(spec, Provenance::collect(&opts.backend, &opts.device))
    };
    reset_peak_rss();
    let started = std::time::Instant::now();
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
    // A resumed run keeps the rows it logged before the checkpoint.
    let mut rows: Vec<StepRow> = match resume_from {
        Some(step) => read_rows(&dir.train_csv())?.into_iter().filter(|r| r.step < step).collect(),
        None => Vec::new(),
    };
    let mut write_error = None;
    let total = train::total_steps(config, train_data.samples.len());
    let mut peak_device = None;
    let result = train::train::<B>(config, &train_data, devices, Some(&checkpoints), |row| {
        progress(row, total);
        if let Some(memory) = opts.device_memory {
            memory.sample(&mut peak_device);
        }
        rows.push(row.clone());
        // Flush now and then so a watcher sees progress, and always just before a
        // checkpoint is taken, so a resumed run finds every row up to it on disk.
        let before_checkpoint = (row.step + 1) % config.train.checkpoint_every.max(1) == 0;
        if rows.len() % 50 == 0 || before_checkpoint {
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
            manifest.status = Status::Failed;
            manifest.reason = Some(e.to_string());
            if let train::TrainError::NonFinite { step, .. } = &e {
                manifest.failed_step = Some(*step);
            }
            manifest.ended = Some(now_rfc3339());
            dir.write_manifest(&manifest)?;
            return Ok(Outcome::Failed { dir: dir.path, reason: e.to_string() });
        }
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let batcher = train::batcher_for(config, &eval_data);
    // Predicting first also warms up: on a GPU the first pass compiles and tunes
    // kernels (measured on an H100: 1.5 ms/sample cold against 0.1 warm), and the
    // timed pass must not pay for that.
    let predictions = eval::predict(&model, &eval_data, &batcher, config.eval.batch_size, device);
    let timer = std::time::Instant::now();
    let plain = eval::time_inference(&model, &eval_data, &batcher, config.eval.batch_size, device);
    let infer_ms_per_sample = 1000.0 * timer.elapsed().as_secs_f64() / plain.max(1) as f64;
    if let Some(memory) = opts.device_memory {
        memory.sample(&mut peak_device);
    }
    manifest.cost = Some(Cost {
        params: model.answering_params(),
        train_seconds,
        infer_ms_per_sample,
        peak_rss_bytes: peak_rss_bytes(),
        peak_device_bytes: peak_device,
    });
    let prior = eval::QuestionPrior::learn(&train_data);
    let eval_rows = eval::summarize(&eval_data, &predictions, Some(&prior));
    dir.write_csv(&dir.path.join("predictions.csv"), &predictions)?;
    dir.write_csv(&dir.eval_csv(), &eval_rows)?;
    manifest.status = Status::Done;
    manifest.ended = Some(now_rfc3339());
    dir.write_manifest(&manifest)?;
    checkpoints.clear();
    Ok(Outcome::Done { dir: dir.path, eval: eval_rows })
}

/// `JOBID_TASK` of the Slurm array task running this process, if any.
fn slurm_task_from_env() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

fn read_rows(path: &std::path::Path) -> Result<Vec<StepRow>, StoreError> {
    let format = |e: csv::Error| StoreError::Format { path: path.to_path_buf(), message: e.to_string() };
    match csv::Reader::from_path(path) {
        Ok(mut r) => r.deserialize().collect::<Result<_, _>>().map_err(format),
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) => Ok(Vec::new()),
        Err(e) => Err(format(e)),
    }
}

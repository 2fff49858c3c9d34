//! Executing runs: one run end to end (data, training, evaluation, store), sweeps
//! of many runs on this machine, and Slurm job arrays.

pub mod progress;
pub mod slurm;
pub mod sweep;

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;

use crate::config::RunSpec;
use crate::data::{self, Split};
use crate::eval::{self, EvalRow};
use crate::runs::manifest::{git_state, now_rfc3339, peak_rss_bytes, reset_peak_rss, Cost};
use crate::runs::store::archive;
use crate::runs::{is_stale, run_dir, verify_done, Manifest, Provenance, RunDir, Status, StoreError};
use crate::train::{self, StepRow};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub require_clean: bool,
    /// Run again even when a finished run with the same id exists.
    pub force: bool,
    /// Run again a finished run that other code trained (see [`is_stale`]).
    pub rerun_stale: bool,
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

/// Refuses a dirty working tree when asked to; checked before anything is written.
pub fn check_clean(spec: &RunSpec, opts: &RunOptions) -> Result<(), StoreError> {
    if opts.require_clean || spec.resolved.config.output.require_clean {
        let git = git_state(&std::env::current_dir().unwrap_or_else(|_| ".".into()));
        if git.dirty {
            let files: Vec<String> = git
                .changed
                .iter()
                .map(|f| format!("  modified: {f}"))
                .chain(git.untracked.iter().map(|u| format!("  untracked: {}", u.path)))
                .collect();
            return Err(StoreError::Dirty(files.join("\n")));
        }
    }
    Ok(())
}

/// Something that watches training: called with each logged step and the run's total steps.
pub type Progress<'a> = &'a mut dyn FnMut(&StepRow, usize);

/// What an error or panic during a run says.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// Trains and evaluates one run, storing config, manifest, train.csv, eval.csv,
/// predictions.csv and the final weights (`model/model.mpk`) in its folder. A run
/// that fails, for whatever reason (bad data, a diverging loss, a full disk, a
/// panic), ends `failed` with the reason, so a sweep can go on with the others.
///
/// With several `devices`, training is data parallel over them (see [`train::train`]);
/// evaluation runs on the first.
pub fn run_one<B: AutodiffBackend>(
    spec: &RunSpec,
    opts: &RunOptions,
    devices: &[B::Device],
    progress: Progress<'_>,
) -> Result<Outcome, StoreError> {
    check_clean(spec, opts)?;
    let dir = run_dir(spec);
    let Some(_lock) = dir.try_lock()? else {
        return Ok(Outcome::Busy { dir: dir.path });
    };
    crate::runs::store::link_entry(spec, &dir)?;
    let config = &spec.resolved.config;
    let checkpoints = train::Checkpoints { dir: dir.path.join("checkpoint"), every: config.train.checkpoint_every };
    let previous = dir.read_manifest();
    let mut manifest = Manifest::for_run(spec, Provenance::collect(&opts.backend, &opts.device));
    for warning in &manifest.provenance.warnings {
        eprintln!("warning: {warning}");
    }
    // What to keep of an earlier attempt, and whether its results must be set aside first.
    let redo = match &previous {
        Ok(Some(m)) if m.status == Status::Done => match verify_done(spec, &dir, m) {
            Ok(_) if opts.force => Some("--force".to_string()),
            Ok(_) if opts.rerun_stale && is_stale(m) => Some(format!(
                "--rerun-stale: trained by {}, this binary is {}",
                m.provenance.build.as_ref().map_or("an older geosr".into(), |b| b.short()),
                crate::runs::manifest::Build::current().short()
            )),
            Ok(_) => {
                // A run killed between recording `done` and dropping its checkpoints leaves them.
                checkpoints.clear();
                return Ok(Outcome::Skipped { dir: dir.path });
            }
            Err(why) => Some(format!("damaged: {why}")),
        },
        Ok(Some(m)) => {
            manifest.attempts = m.attempts.clone();
            manifest.reruns = m.reruns.clone();
            None
        }
        Ok(None) => None,
        Err(e) => Some(format!("damaged: {e}")),
    };
    if let Some(reason) = redo {
        let old = previous.as_ref().ok().and_then(Option::as_ref);
        manifest.reruns = old.map(|m| m.reruns.clone()).unwrap_or_default();
        manifest.reruns.push(archive(&dir, old, reason)?);
        checkpoints.clear();
    } else if opts.force {
        checkpoints.clear();
    }
    let resume_from = checkpoints.resume_step();
    let config_toml = toml::to_string_pretty(config).expect("config serializes to TOML");
    crate::runs::write_atomic(&dir.config_path(), config_toml.as_bytes())?;
    manifest.status = Status::Running;
    manifest.started = Some(now_rfc3339());
    manifest.pid = Some(std::process::id());
    manifest.slurm_task = slurm_task_from_env();
    manifest.resumed_from_step = resume_from;
    manifest.attempts.push(crate::runs::manifest::Attempt {
        started: now_rfc3339(),
        ended: None,
        host: manifest.provenance.host.clone(),
        pid: std::process::id(),
        from_step: resume_from,
        seconds: None,
        outcome: None,
    });
    reset_peak_rss();
    let started = std::time::Instant::now();
    dir.write_manifest(&manifest)?;

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_and_evaluate::<B>(spec, &dir, &checkpoints, resume_from, opts, devices, progress, &mut manifest)
    }));
    let failure = match result {
        Ok(Ok(eval_rows)) => {
            finish_attempt(&mut manifest, started, "done");
            manifest.files = dir.result_hashes();
            manifest.status = Status::Done;
            manifest.ended = Some(now_rfc3339());
            dir.write_manifest(&manifest)?;
            checkpoints.clear();
            return Ok(Outcome::Done { dir: dir.path, eval: eval_rows });
        }
        Ok(Err(failure)) => failure,
        Err(payload) => Failure { reason: format!("panicked: {}", panic_text(payload.as_ref())), step: None },
    };
    finish_attempt(&mut manifest, started, "failed");
    manifest.status = Status::Failed;
    manifest.reason = Some(failure.reason.clone());
    manifest.failed_step = failure.step;
    manifest.ended = Some(now_rfc3339());
    // On a full disk this write can fail too; the manifest then stays `running`, and
    // with the lock released the run shows as interrupted and resumes.
    dir.write_manifest(&manifest)?;
    Ok(Outcome::Failed { dir: dir.path, reason: failure.reason })
}

/// The run's live TensorBoard log (`crate::runs::events`). A log that cannot be written
/// is a warning, never a failed run; dropped before the run succeeded, it records a
/// failure for the HParams dashboard.
struct LiveLog {
    writer: Option<crate::runs::events::EventWriter>,
    succeeded: bool,
}

impl LiveLog {
    fn start(spec: &RunSpec, dir: &RunDir) -> LiveLog {
        let hparams = crate::runs::events::config_hparams(&spec.resolved.config);
        let writer = crate::runs::events::EventWriter::create(&dir.path, hparams, &spec.id)
            .map_err(|e| eprintln!("warning: no live TensorBoard log: {e}"))
            .ok();
        LiveLog { writer, succeeded: false }
    }

    /// Records `scalars` at `step` and hands them to TensorBoard.
    fn log<'a>(&mut self, step: usize, scalars: impl IntoIterator<Item = (&'a str, f64)>) {
        let Some(w) = self.writer.as_mut() else { return };
        for (tag, value) in scalars {
            w.scalar(tag, step as i64, value);
        }
        if let Err(e) = w.flush() {
            eprintln!("warning: the live TensorBoard log stops here: {e}");
            self.writer = None;
        }
    }

    fn succeed(&mut self) {
        self.succeeded = true;
        if let Some(w) = self.writer.as_mut() {
            let _ = w.end(true);
        }
    }
}

impl Drop for LiveLog {
    fn drop(&mut self) {
        if let (false, Some(w)) = (self.succeeded, self.writer.as_mut()) {
            let _ = w.end(false);
        }
    }
}

/// Why a run failed, and at which training step when it failed while training.
struct Failure {
    reason: String,
    step: Option<usize>,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure { reason: e.to_string(), step: None }
    }
}

fn finish_attempt(manifest: &mut Manifest, started: std::time::Instant, outcome: &str) {
    if let Some(a) = manifest.attempts.last_mut() {
        a.ended = Some(now_rfc3339());
        a.seconds = Some(started.elapsed().as_secs_f64());
        a.outcome = Some(outcome.into());
    }
}

/// The body of [`run_one`]: data, training, evaluation and the result files.
#[allow(clippy::too_many_arguments)]
fn train_and_evaluate<B: AutodiffBackend>(
    spec: &RunSpec,
    dir: &RunDir,
    checkpoints: &train::Checkpoints,
    resume_from: Option<usize>,
    opts: &RunOptions,
    devices: &[B::Device],
    progress: Progress<'_>,
    manifest: &mut Manifest,
) -> Result<Vec<EvalRow>, Failure> {
    let device = devices.first().expect("at least one device");
    let config = &spec.resolved.config;
    let data_failure = |e: data::features::FeatureError| Failure { reason: format!("data: {e}"), step: None };
    let train_data = data::load(&config.data, Split::Train).map_err(data_failure)?;
    let eval_data = data::load(&config.data, Split::Eval).map_err(data_failure)?;
    check_same_layout(&train_data, &eval_data)?;
    if let (Some(train), Some(eval)) = (&train_data.fingerprint, &eval_data.fingerprint) {
        manifest.data_fingerprint = Some(crate::runs::manifest::DataFingerprint { train: train.clone(), eval: eval.clone() });
        dir.write_manifest(manifest)?;
    }
    // A resumed run keeps the rows it logged before the checkpoint.
    let mut rows: Vec<StepRow> = match resume_from {
        Some(step) => read_rows(&dir.train_csv())?.into_iter().filter(|r| r.step < step).collect(),
        None => Vec::new(),
    };
    let mut write_error = None;
    let total = train::total_steps(config, train_data.samples.len());
    let live = std::cell::RefCell::new(LiveLog::start(spec, dir));
    let mut peak_device = None;
    // Learning curves: the held-out slice scored now and then, rows kept across resumes.
    let curve_path = dir.path.join("curve.csv");
    let mut curve: Vec<eval::CurveRow> = match resume_from {
        Some(step) if config.eval.every > 0 => {
            dir.read_csv::<eval::CurveRow>(&curve_path).unwrap_or_default().into_iter().filter(|r| r.step <= step).collect()
        }
        _ => Vec::new(),
    };
    let held_out = (config.eval.every > 0).then(|| eval_data.spread_slice(config.eval.curve_size));
    let held_out_batcher = held_out.as_ref().map(|h| train::batcher_for(config, h));
    let mut curve_error = None;
    let on_eval = |step: usize, model: &crate::model::GeoSr<B::InnerBackend>| {
        let (Some(h), Some(batcher)) = (&held_out, &held_out_batcher) else { return };
        let predictions = eval::predict(model, h, batcher, config.eval.batch_size, device);
        let summary = eval::summarize(h, &predictions, None);
        let tags: Vec<(String, f64)> = summary.iter().map(|r| (format!("heldout/{}", r.subtask), r.score)).collect();
        live.borrow_mut().log(step, tags.iter().map(|(t, v)| (t.as_str(), *v)));
        for row in summary {
            curve.push(eval::CurveRow {
                step,
                subtask: row.subtask,
                score: row.score,
                drop_no_geometry: row.drop_no_geometry,
                drop_no_vision: row.drop_no_vision,
            });
        }
        if curve_error.is_none() {
            if let Err(e) = dir.write_csv(&curve_path, &curve) {
                curve_error = Some(e);
            }
        }
    };
    let result = train::train_observed::<B>(config, &train_data, devices, Some(checkpoints), |row| {
        progress(row, total);
        if let Some(memory) = opts.device_memory {
            memory.sample(&mut peak_device);
        }
        live.borrow_mut().log(row.step + 1, [("train/loss", row.loss), ("train/lr", row.lr), ("train/samples_per_s", row.samples_per_s)]);
        rows.push(row.clone());
        // Flush now and then so a watcher sees progress, and always just before a
        // checkpoint is taken, so a resumed run finds every row up to it on disk.
        let before_checkpoint = (row.step + 1) % config.train.checkpoint_every.max(1) == 0;
        if write_error.is_none() && (rows.len() % 50 == 0 || before_checkpoint) {
            if let Err(e) = dir.write_csv(&dir.train_csv(), &rows) {
                write_error = Some(e);
            }
        }
    }, on_eval);
    if let Some(e) = write_error.or(curve_error) {
        return Err(e.into());
    }
    dir.write_csv(&dir.train_csv(), &rows)?;
    let model = result.map_err(|e| {
        let step = match &e {
            train::TrainError::NonFinite { step, .. } | train::TrainError::Diverged { step, .. } => Some(*step),
            train::TrainError::Checkpoint(_) => None,
        };
        Failure { reason: e.to_string(), step }
    })?;
    let train_seconds = rows.last().map_or(0.0, |r| r.elapsed_s);
    let batcher = train::batcher_for(config, &eval_data);
    // Predicting first also warms up: on a GPU the first pass compiles and tunes
    // kernels (measured on an H100: 1.5 ms/sample cold against 0.1 warm), and the
    // timed pass must not pay for that.
    let predictions = eval::predict(&model, &eval_data, &batcher, config.eval.batch_size, device);
    let timer = std::time::Instant::now();
    let plain = eval::time_inference(&model, &eval_data, &batcher, config.eval.batch_size, device);
    let infer_ms_per_sample = 1000.0 * timer.elapsed().as_secs_f64() / plain.max(1) as f64;
    let mut peak = peak_device;
    if let Some(memory) = opts.device_memory {
        memory.sample(&mut peak);
    }
    manifest.cost = Some(Cost {
        params: model.answering_params(),
        train_seconds,
        infer_ms_per_sample,
        peak_rss_bytes: peak_rss_bytes(),
        peak_device_bytes: peak,
    });
    if let Some(bad) = predictions.iter().find(|p| !p.prediction.is_finite()) {
        return Err(Failure { reason: format!("evaluation: question {} was answered {}", bad.index, bad.prediction), step: None });
    }
    let prior = eval::QuestionPrior::learn(&train_data);
    let eval_rows = eval::summarize(&eval_data, &predictions, Some(&prior));
    if config.output.keep_weights {
        let bytes = train::weights_bytes(&model).map_err(|e| Failure { reason: format!("saving the weights: {e}"), step: None })?;
        crate::runs::write_atomic(&dir.path.join("model").join("model.mpk"), &bytes)?;
    }
    dir.write_csv(&dir.path.join("predictions.csv"), &predictions)?;
    dir.write_csv(&dir.eval_csv(), &eval_rows)?;
    let mut live = live.into_inner();
    let last = rows.last().map_or(0, |r| r.step + 1);
    let tags: Vec<(String, f64)> = eval_rows.iter().map(|r| (format!("eval/{}", r.subtask), r.score)).collect();
    live.log(last, tags.iter().map(|(t, v)| (t.as_str(), *v)));
    live.succeed();
    Ok(eval_rows)
}

/// Refuses an evaluation split whose tokens a model of the training split cannot read.
fn check_same_layout(train: &data::Dataset, eval: &data::Dataset) -> Result<(), Failure> {
    let layout = |d: &data::Dataset| (d.bench, d.frames, d.vision_grid, d.geometry_grid, d.vision_channels, d.geometry_channels);
    if layout(train) != layout(eval) {
        return Err(Failure {
            reason: format!(
                "data: the evaluation split's layout (bench, frames, vision grid, geometry grid, channels) {:?} \
                 differs from the training split's {:?}",
                layout(eval),
                layout(train)
            ),
            step: None,
        });
    }
    Ok(())
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

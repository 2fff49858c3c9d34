//! Stored runs as TensorBoard event files (`geosr runs ... --tensorboard DIR`), so geosr
//! runs open in TensorBoard next to a researcher's other work, under names that say
//! which experiment, row and seed each is. The format is [`crate::runs::events`]'s.

use std::path::{Path, PathBuf};

pub use crate::runs::events::{event_file, Scalar};
use crate::eval::{CurveRow, EvalRow};
use crate::runs::{RunDir, StoreError};
use crate::train::StepRow;

/// A run's scalars: `train/loss`, `train/lr` and `train/samples_per_s` per logged step,
/// `heldout/<subtask>` from `curve.csv`, and `eval/<subtask>` (with the
/// geometry-reliance probes) at the last step. Wall times count from the run's start.
pub fn run_scalars(dir: &RunDir) -> Result<Vec<Scalar>, StoreError> {
    let manifest = dir.read_manifest()?;
    let start = manifest.as_ref().and_then(|m| m.started.as_deref()).and_then(parse_rfc3339).unwrap_or(0.0);
    let mut out = Vec::new();
    let mut last_step = 0i64;
    let mut last_time = start;
    if dir.train_csv().exists() {
        let rows: Vec<StepRow> = dir.read_csv(&dir.train_csv())?;
        for r in &rows {
            let (step, wall_time) = (r.step as i64 + 1, start + r.elapsed_s);
            for (tag, value) in [("train/loss", r.loss), ("train/lr", r.lr), ("train/samples_per_s", r.samples_per_s)] {
                out.push(Scalar { tag: tag.into(), step, value, wall_time });
            }
            (last_step, last_time) = (step, wall_time);
        }
    }
    let curve_path = dir.path.join("curve.csv");
    if curve_path.exists() {
        let rows: Vec<CurveRow> = dir.read_csv(&curve_path)?;
        for r in rows {
            out.push(Scalar { tag: format!("heldout/{}", r.subtask), step: r.step as i64, value: r.score, wall_time: last_time });
        }
    }
    if dir.eval_csv().exists() {
        let rows: Vec<EvalRow> = dir.read_csv(&dir.eval_csv())?;
        for r in rows {
            for (tag, value) in [
                (format!("eval/{}", r.subtask), r.score),
                (format!("eval_drop_no_geometry/{}", r.subtask), r.drop_no_geometry),
                (format!("eval_drop_no_vision/{}", r.subtask), r.drop_no_vision),
            ] {
                out.push(Scalar { tag, step: last_step, value, wall_time: last_time });
            }
        }
    }
    Ok(out)
}

/// Seconds since 1970 of an RFC 3339 time as manifests write it.
fn parse_rfc3339(text: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// Writes `<out>/<name>/events.out.tfevents.<start>.geosr` for a run (atomically, so an
/// export over an older one replaces it whole); returns the file's path.
pub fn export_run(dir: &RunDir, out: &Path, name: &str) -> Result<PathBuf, StoreError> {
    let scalars = run_scalars(dir)?;
    let start = scalars.first().map_or(0, |s| s.wall_time as u64);
    let folder = out.join(name);
    // One file per run: an older export of it (another start time) would double its lines.
    if let Ok(entries) = std::fs::read_dir(&folder) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("events.out.tfevents.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let path = folder.join(format!("events.out.tfevents.{start}.geosr"));
    let bytes = event_file(&scalars);
    crate::runs::write_atomic(&path, &bytes)?;
    Ok(path)
}

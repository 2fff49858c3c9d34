//! Stored runs as TensorBoard event files (`geosr runs ... --tensorboard DIR`), so geosr
//! runs open in TensorBoard next to a researcher's other work.
//!
//! An event file is a sequence of TFRecords, each holding one `Event` protocol buffer.
//! The two messages needed are declared here with prost's derive, and checksummed with
//! the crc32c crate. (The tensorboard-rs crate writes the same files but pulls in
//! protobuf 2 and image 0.23 for image summaries geosr does not write.)

use std::path::{Path, PathBuf};

use prost::Message;

use crate::eval::{CurveRow, EvalRow};
use crate::runs::{RunDir, StoreError};
use crate::train::StepRow;

/// `tensorflow.Event`, with the fields a scalar log uses.
#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` holding a `simple_value`.
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    // Optional so that 0.0 is still written: it is one arm of a oneof upstream.
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// The checksum TFRecord frames carry: CRC-32C, rotated and offset.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// One scalar at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: i64,
    pub value: f64,
    pub wall_time: f64,
}

/// The bytes of an event file holding `scalars`, in order.
pub fn event_file(scalars: &[Scalar]) -> Vec<u8> {
    let mut out = Vec::new();
    let first = Event { wall_time: scalars.first().map_or(0.0, |s| s.wall_time), step: 0, file_version: Some("brain.Event:2".into()), summary: None };
    record(&mut out, &first.encode_to_vec());
    for s in scalars {
        let event = Event {
            wall_time: s.wall_time,
            step: s.step,
            file_version: None,
            summary: Some(Summary { value: vec![SummaryValue { tag: s.tag.clone(), simple_value: Some(s.value as f32) }] }),
        };
        record(&mut out, &event.encode_to_vec());
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_with_masked_crc32c() {
        // CRC-32C of "123456789" is 0xE3069283 (the check value of the Castagnoli polynomial).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let mut out = Vec::new();
        record(&mut out, b"abc");
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
    }

    #[test]
    fn a_zero_scalar_is_still_written() {
        let v = SummaryValue { tag: "x".into(), simple_value: Some(0.0) };
        // tag (1 + 1 + 1 bytes) and the float (1 + 4 bytes).
        assert_eq!(v.encode_to_vec().len(), 8);
    }
}

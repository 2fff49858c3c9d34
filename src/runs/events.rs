//! TensorBoard event files: a run writes its scalars into its folder as it trains (so
//! `tensorboard --logdir results/runs` shows live curves), and `geosr runs --tensorboard`
//! exports stored runs in the same format.
//!
//! An event file is a sequence of TFRecords, each holding one `Event` protocol buffer.
//! The messages needed are declared here with prost's derive, and checksummed with the
//! crc32c crate. (The tensorboard-rs crate writes the same files but pulls in protobuf 2
//! and image 0.23 for image summaries geosr does not write.) A run's config goes in as
//! TensorBoard's HParams plugin data, so runs can be filtered and compared by any key.
//!
//! Unlike the run's other files, the live event file is appended to, not replaced:
//! TensorBoard keeps the file open and reads what is added. Each attempt writes a file
//! of its own, so a record cut short by a killed process ends that file only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use super::StoreError;

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

/// `tensorflow.Summary.Value` holding a `simple_value`, or plugin data in `metadata`.
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    // Optional so that 0.0 is still written: it is one arm of a oneof upstream.
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
}

/// `tensorflow.SummaryMetadata`, with its plugin data.
#[derive(Clone, PartialEq, Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

/// `tensorboard.hparams.HParamsPluginData`.
#[derive(Clone, PartialEq, Message)]
struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(message, optional, tag = "3")]
    session_start_info: Option<SessionStartInfo>,
    #[prost(message, optional, tag = "4")]
    session_end_info: Option<SessionEndInfo>,
}

#[derive(Clone, PartialEq, Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: BTreeMap<String, ProtoValue>,
    #[prost(string, tag = "4")]
    group_name: String,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

#[derive(Clone, PartialEq, Message)]
struct SessionEndInfo {
    /// 1 success, 2 failure.
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(double, tag = "2")]
    end_time_secs: f64,
}

/// `google.protobuf.Value`, the kinds a config holds.
#[derive(Clone, PartialEq, Message)]
struct ProtoValue {
    #[prost(oneof = "ValueKind", tags = "2, 3, 4")]
    kind: Option<ValueKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum ValueKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// A hyperparameter's value as TensorBoard's HParams dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
    Bool(bool),
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

fn header(wall_time: f64) -> Vec<u8> {
    Event { wall_time, step: 0, file_version: Some("brain.Event:2".into()), summary: None }.encode_to_vec()
}

fn scalar_event(tag: &str, step: i64, value: f64, wall_time: f64) -> Vec<u8> {
    let value = SummaryValue { tag: tag.to_string(), simple_value: Some(value as f32), metadata: None };
    Event { wall_time, step, file_version: None, summary: Some(Summary { value: vec![value] }) }.encode_to_vec()
}

fn hparams_event(tag: &str, data: HParamsPluginData, wall_time: f64) -> Vec<u8> {
    let metadata = SummaryMetadata { plugin_data: Some(PluginData { plugin_name: "hparams".into(), content: data.encode_to_vec() }) };
    let value = SummaryValue { tag: tag.to_string(), simple_value: None, metadata: Some(metadata) };
    Event { wall_time, step: 0, file_version: None, summary: Some(Summary { value: vec![value] }) }.encode_to_vec()
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
    record(&mut out, &header(scalars.first().map_or(0.0, |s| s.wall_time)));
    for s in scalars {
        record(&mut out, &scalar_event(&s.tag, s.step, s.value, s.wall_time));
    }
    out
}

/// Seconds since 1970, now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A run's live event file, appended to as it trains.
pub struct EventWriter {
    path: PathBuf,
    file: std::fs::File,
    pending: Vec<u8>,
}

impl EventWriter {
    /// Starts `<dir>/events.out.tfevents.<secs>.<host>.geosr` with the run's config as
    /// HParams (`hparams`, grouped under `group`, e.g. the run id).
    pub fn create(dir: &Path, hparams: BTreeMap<String, HParam>, group: &str) -> Result<EventWriter, StoreError> {
        let start = now_secs();
        let host = super::manifest::this_host();
        let path = dir.join(format!("events.out.tfevents.{}.{host}.geosr", start as u64));
        let io = |source| StoreError::Io { path: path.clone(), source };
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        let mut writer = EventWriter { path, file, pending: Vec::new() };
        record(&mut writer.pending, &header(start));
        let hparams = hparams
            .into_iter()
            .map(|(k, v)| {
                let kind = match v {
                    HParam::Number(x) => ValueKind::Number(x),
                    HParam::Text(s) => ValueKind::Text(s),
                    HParam::Bool(b) => ValueKind::Bool(b),
                };
                (k, ProtoValue { kind: Some(kind) })
            })
            .collect();
        let info = SessionStartInfo { hparams, group_name: group.to_string(), start_time_secs: start };
        let data = HParamsPluginData { version: 0, session_start_info: Some(info), session_end_info: None };
        record(&mut writer.pending, &hparams_event("_hparams_/session_start_info", data, start));
        writer.flush()?;
        Ok(writer)
    }

    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) {
        record(&mut self.pending, &scalar_event(tag, step, value, now_secs()));
    }

    /// Marks the run's end for the HParams dashboard (success or failure), and flushes.
    pub fn end(&mut self, success: bool) -> Result<(), StoreError> {
        let info = SessionEndInfo { status: if success { 1 } else { 2 }, end_time_secs: now_secs() };
        let data = HParamsPluginData { version: 0, session_start_info: None, session_end_info: Some(info) };
        record(&mut self.pending, &hparams_event("_hparams_/session_end_info", data, now_secs()));
        self.flush()
    }

    /// Appends what was recorded since the last flush, whole records only.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending).map_err(|source| StoreError::Io { path: self.path.clone(), source })?;
        self.pending.clear();
        Ok(())
    }
}

/// A resolved config as HParams: every leaf key (`model.mask.gamma`), numbers, strings
/// and booleans as they are, arrays as their TOML text. Where results go is left out.
pub fn config_hparams(config: &crate::config::Config) -> BTreeMap<String, HParam> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, HParam>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
                }
            }
            toml::Value::Integer(i) => drop(out.insert(prefix.into(), HParam::Number(*i as f64))),
            toml::Value::Float(f) => drop(out.insert(prefix.into(), HParam::Number(*f))),
            toml::Value::Boolean(b) => drop(out.insert(prefix.into(), HParam::Bool(*b))),
            toml::Value::String(s) => drop(out.insert(prefix.into(), HParam::Text(s.clone()))),
            other => drop(out.insert(prefix.into(), HParam::Text(other.to_string()))),
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(value) = toml::Value::try_from(config) {
        walk("", &value, &mut out);
    }
    out.retain(|k, _| !k.starts_with("output."));
    out
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
        let v = SummaryValue { tag: "x".into(), simple_value: Some(0.0), metadata: None };
        // tag (1 + 1 + 1 bytes) and the float (1 + 4 bytes).
        assert_eq!(v.encode_to_vec().len(), 8);
    }
}

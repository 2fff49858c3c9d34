//! A run's tags and note (`geosr tag`): what a person says about a run after the fact
//! ("baseline", "bad-node", "see issue 12"), kept in the run's folder as `tags.json`
//! beside what the run wrote itself. They are not part of the run's identity or its
//! hashed result files, so tagging never makes a finished run look changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{write_atomic, RunDir, StoreError};

pub const FILE: &str = "tags.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The run's tags; none when it has no `tags.json`.
pub fn read(dir: &RunDir) -> Result<Tags, StoreError> {
    let path = dir.path.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Format { path, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tags::default()),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Writes the run's tags atomically (a reader sees the old file or the new one).
pub fn write(dir: &RunDir, tags: &Tags) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(tags).expect("tags serialize");
    write_atomic(&dir.path.join(FILE), &json)
}

/// Reads the run's tags, lets `change` edit them and writes them back if they changed,
/// all under the run's tag lock, so two `geosr tag` at once on one run both land (each
/// read-change-write used to overwrite the other's). Returns the tags as they are now.
pub fn update(dir: &RunDir, change: impl FnOnce(&mut Tags)) -> Result<Tags, StoreError> {
    let _lock = super::store::lock_blocking(&dir.path.join(".tags.lock"))?;
    let before = read(dir)?;
    let mut tags = before.clone();
    change(&mut tags);
    if tags != before {
        write(dir, &tags)?;
    }
    Ok(tags)
}

/// A tag `key=value` as typed; the key must be usable in a `--where tags.KEY...` filter.
pub fn parse_tag(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("tag {text:?}: expected KEY=VALUE, e.g. baseline=yes"))?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
        return Err(format!("tag {text:?}: expected a key of letters, digits, '_' or '-'"));
    }
    Ok((key.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_and_round_trip() {
        assert_eq!(parse_tag("baseline = yes"), Ok(("baseline".into(), "yes".into())));
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("a.b=1").is_err(), "a dotted key would not be reachable as tags.KEY");
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir { path: tmp.path().to_path_buf() };
        assert_eq!(read(&dir).unwrap(), Tags::default());
        let tags = Tags { tags: [("node".to_string(), "bad".to_string())].into(), note: Some("rerun on another node".into()) };
        write(&dir, &tags).unwrap();
        assert_eq!(read(&dir).unwrap(), tags);
    }
}

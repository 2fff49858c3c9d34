//! `meta.json`: the token layout every features file of a split follows.

use std::path::Path;

use serde_json::Value;

use super::FeatureError;
use crate::benchmark::record::json_type;
use crate::benchmark::{bench_name, parse_bench, subtasks};
use crate::config::Bench;
use crate::data::Dataset;

/// The contents of `meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub bench: Bench,
    pub frames: usize,
    pub vision_grid: [usize; 2],
    pub geometry_grid: [usize; 2],
    pub vision_channels: usize,
    pub geometry_channels: usize,
}

impl Meta {
    /// Expected shape of the `"vision"` tensor.
    pub fn vision_shape(&self) -> [usize; 2] {
        [self.frames * self.vision_grid[0] * self.vision_grid[1], self.vision_channels]
    }
    /// Expected shape of the `"geometry"` tensor.
    pub fn geometry_shape(&self) -> [usize; 2] {
        [self.frames * self.geometry_grid[0] * self.geometry_grid[1], self.geometry_channels]
    }
    /// The split this layout describes, before any question is read.
    pub fn dataset(&self) -> Dataset {
        Dataset {
            bench: self.bench,
            subtasks: subtasks(self.bench),
            samples: Vec::new(),
            frames: self.frames,
            vision_grid: self.vision_grid,
            geometry_grid: self.geometry_grid,
            vision_channels: self.vision_channels,
            geometry_channels: self.geometry_channels,
            category_channels: 0,
            question_types: None,
            fingerprint: None,
        }
    }
}

/// Refuses an evaluation split whose token layout differs from the training split's.
pub fn check_splits(train_dir: &Path, train: &Meta, eval_dir: &Path, eval: &Meta) -> Result<(), FeatureError> {
    let grid = |g: [usize; 2]| format!("[{}, {}]", g[0], g[1]);
    let pairs = [
        ("bench", bench_name(train.bench).to_string(), bench_name(eval.bench).to_string()),
        ("frames", train.frames.to_string(), eval.frames.to_string()),
        ("vision_grid", grid(train.vision_grid), grid(eval.vision_grid)),
        ("geometry_grid", grid(train.geometry_grid), grid(eval.geometry_grid)),
        ("vision_channels", train.vision_channels.to_string(), eval.vision_channels.to_string()),
        ("geometry_channels", train.geometry_channels.to_string(), eval.geometry_channels.to_string()),
    ];
    match pairs.into_iter().find(|(_, a, b)| a != b) {
        None => Ok(()),
        Some((key, train, eval)) => Err(FeatureError::SplitMismatch {
            train_path: train_dir.join("meta.json"),
            eval_path: eval_dir.join("meta.json"),
            key,
            train,
            eval,
        }),
    }
}

/// Reads and checks `<dir>/meta.json`.
pub fn load_meta(dir: &Path) -> Result<Meta, FeatureError> {
    let path = dir.join("meta.json");
    let text =
        std::fs::read_to_string(&path).map_err(|source| FeatureError::Io { path: path.clone(), source })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|source| FeatureError::MetaJson { path: path.clone(), source })?;
    let err = |key: &'static str, problem: String| FeatureError::Meta { path: path.clone(), key, problem };
    let Value::Object(obj) = value else {
        return Err(err("(top level)", format!("expected a JSON object, found {}", json_type(&value))));
    };

    let bench = match obj.get("bench") {
        None => return Err(err("bench", "is missing".into())),
        Some(Value::String(s)) => {
            parse_bench(s).ok_or_else(|| err("bench", format!("is {s:?}, expected \"vsi\" or \"dsr\"")))?
        }
        Some(v) => return Err(err("bench", format!("must be a string, found {}", json_type(v)))),
    };
    let positive = |key: &'static str, v: Option<&Value>| -> Result<usize, FeatureError> {
        match v {
            None => Err(err(key, "is missing".into())),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(err(key, format!("must be a positive integer, found {v}"))),
            },
        }
    };
    let grid = |key: &'static str| -> Result<[usize; 2], FeatureError> {
        match obj.get(key) {
            None => Err(err(key, "is missing".into())),
            Some(Value::Array(a)) if a.len() == 2 => {
                Ok([positive(key, a.first())?, positive(key, a.get(1))?])
            }
            Some(v) => Err(err(key, format!("must be [height, width], found {v}"))),
        }
    };
    Ok(Meta {
        bench,
        frames: positive("frames", obj.get("frames"))?,
        vision_grid: grid("vision_grid")?,
        geometry_grid: grid("geometry_grid")?,
        vision_channels: positive("vision_channels", obj.get("vision_channels"))?,
        geometry_channels: positive("geometry_channels", obj.get("geometry_channels"))?,
    })
}

//! The features files: `<dir>/features/<id>.safetensors`, checked against `meta.json`.

use std::path::Path;

use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde_json::{Map, Value};

use super::{FeatureError, Meta};

/// A features-file problem before we know which record asked for the file.
pub(super) enum TensorProblem {
    Missing,
    Io(std::io::Error),
    Invalid(SafeTensorError),
    NoTensor(&'static str),
    Dtype(&'static str, Dtype),
    Shape(&'static str, Vec<usize>, Vec<usize>),
}

impl TensorProblem {
    pub(super) fn at(self, path: &Path, line: usize, features: &Path) -> FeatureError {
        let (path, features) = (path.to_path_buf(), features.to_path_buf());
        match self {
            TensorProblem::Missing => FeatureError::MissingFeatures { path, line, features },
            TensorProblem::Io(source) => FeatureError::Io { path: features, source },
            TensorProblem::Invalid(source) => FeatureError::Safetensors { path, line, features, source },
            TensorProblem::NoTensor(tensor) => FeatureError::MissingTensor { path, line, features, tensor },
            TensorProblem::Dtype(tensor, dtype) => {
                FeatureError::WrongDtype { path, line, features, tensor, found: format!("{dtype:?}") }
            }
            TensorProblem::Shape(tensor, expected, found) => {
                FeatureError::ShapeMismatch { path, line, features, tensor, expected, found }
            }
        }
    }
}

/// Checks a features file's header against `meta` (its tensors' names, dtypes and
/// shapes, and that the file holds all their bytes) without reading the tensors.
pub(super) fn check_features_header(meta: &Meta, features: &Path) -> Result<(), TensorProblem> {
    use std::io::Read;
    let mut file = std::fs::File::open(features).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TensorProblem::Missing,
        _ => TensorProblem::Io(e),
    })?;
    let len = file.metadata().map_err(TensorProblem::Io)?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|_| TensorProblem::Invalid(SafeTensorError::HeaderTooSmall))?;
    let n = u64::from_le_bytes(n);
    if n.saturating_add(8) > len {
        return Err(TensorProblem::Invalid(SafeTensorError::InvalidHeaderLength));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(TensorProblem::Io)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|e| TensorProblem::Invalid(SafeTensorError::InvalidHeaderDeserialization(e)))?;
    let end = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .filter_map(|(_, info)| info.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if 8 + n + end != len {
        return Err(TensorProblem::Invalid(SafeTensorError::MetadataIncompleteBuffer));
    }
    for (name, expected) in [("vision", meta.vision_shape()), ("geometry", meta.geometry_shape())] {
        let info = header.get(name).ok_or(TensorProblem::NoTensor(name))?;
        let dtype: Dtype = info
            .get("dtype")
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .ok_or(TensorProblem::Invalid(SafeTensorError::InvalidHeaderLength))?;
        if dtype != Dtype::F32 {
            return Err(TensorProblem::Dtype(name, dtype));
        }
        let shape: Vec<usize> = info.get("shape").and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or_default();
        if shape != expected {
            return Err(TensorProblem::Shape(name, expected.to_vec(), shape));
        }
    }
    Ok(())
}

/// Reads the `vision` and `geometry` tensors of one record and checks them against `meta`.
pub(super) fn read_features(meta: &Meta, features: &Path, fingerprint: &mut impl sha2::Digest) -> Result<(Vec<f32>, Vec<f32>), TensorProblem> {
    let bytes = std::fs::read(features).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TensorProblem::Missing,
        _ => TensorProblem::Io(e),
    })?;
    fingerprint.update(&bytes);
    let file = SafeTensors::deserialize(&bytes).map_err(TensorProblem::Invalid)?;
    let read = |name: &'static str, expected: [usize; 2]| -> Result<Vec<f32>, TensorProblem> {
        let view = file.tensor(name).map_err(|e| match e {
            SafeTensorError::TensorNotFound(_) => TensorProblem::NoTensor(name),
            other => TensorProblem::Invalid(other),
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(TensorProblem::Dtype(name, view.dtype()));
        }
        if view.shape() != expected {
            return Err(TensorProblem::Shape(name, expected.to_vec(), view.shape().to_vec()));
        }
        // safetensors stores little-endian; the data slice may be unaligned, so decode bytewise.
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    Ok((read("vision", meta.vision_shape())?, read("geometry", meta.geometry_shape())?))
}

//! Configuration: the typed schema, layered composition, validation and
//! experiment files.

pub mod experiment;
pub mod layers;
pub mod schema;
pub mod validate;

use std::path::PathBuf;

pub use experiment::{Experiment, RunSpec};
pub use layers::{Layer, Resolved};
pub use schema::*;

/// Everything that can be wrong with a user's configuration. Each message names
/// the source (file, environment variable or flag), the key and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file (named by {referenced_by}): {reason}", path.display())]
    MissingFile { path: PathBuf, referenced_by: String, reason: String },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: unknown key `{key}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey { origin: String, key: String, suggestion: Option<String> },
    #[error("{origin}: key `{key}` = {value}: expected {expected}")]
    Invalid { origin: String, key: String, value: String, expected: String },
    #[error("{}: {message}", path.display())]
    Experiment { path: PathBuf, message: String },
    /// A variant's resolved config is invalid; names the variant, since a
    /// command-line override may be fine for one variant and not for another.
    #[error("{}, variant `{variant}`: {source}", path.display())]
    Variant { path: PathBuf, variant: String, source: Box<ConfigError> },
}

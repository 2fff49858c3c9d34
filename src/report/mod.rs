//! Reports: the paper's reference numbers, tables, plots and run-to-run diffs.

pub mod claims;
pub mod controls;
pub mod diff;
pub mod docs;
pub mod html;
pub mod mlflow;
pub mod paper;
pub mod plot;
pub mod stats;
pub mod stray;
pub mod table;
pub mod tensorboard;

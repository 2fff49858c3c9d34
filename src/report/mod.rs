//! Reports: the paper's reference numbers, tables and run-to-run diffs.

pub mod claims;
pub mod diff;
pub mod paper;
pub mod table;

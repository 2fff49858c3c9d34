//! geosr: a research harness that reproduces and extends the ablations of
//! GeoSR ("make geometry matter for spatial reasoning").
//!
//! The flow: `config` composes layered TOML into a resolved [`config::Config`]
//! per run; `benchmark` defines the benchmarks' subtasks and records; `data`
//! generates or loads the benchmark; `model` is the paper's framework
//! and its variants; `train` fits it; `eval` scores it with the benchmarks'
//! official metrics; `runs` stores every run with its provenance; `launch`
//! executes runs; `report` holds the paper's reference numbers; `archive` packs
//! finished runs into a file that outlives the machine, and restores them.

pub mod archive;
pub mod benchmark;
pub mod config;
pub mod data;
pub mod eval;
pub mod launch;
pub mod model;
pub mod report;
pub mod runs;
pub mod train;

//! How a command ends: its status, and a failure's message on stderr. Bad input exits
//! 2 (a script can tell "fix your call" from "geosr or the machine failed", 1).

use std::process::ExitCode;

use geosr::config::ConfigError;
use geosr::data::features::FeatureError;
use geosr::eval::score::ScoreError;
use geosr::launch::slurm::SlurmError;
use geosr::report::plot::PlotError;
use geosr::runs::StoreError;

/// Bad command-line input that no library type names (a device, a count): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The status of a command that ran runs: 1 when any failed (each said why as it failed).
pub fn failed_runs(failed: usize) -> ExitCode {
    if failed == 0 {
        return ExitCode::SUCCESS;
    }
    eprintln!("{failed} run(s) failed");
    ExitCode::from(1)
}

pub fn code(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    let e = match outcome {
        Ok(code) => return code,
        Err(e) => e,
    };
    // Library errors often embed their cause in their own message; print each cause
    // only when it adds something.
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    eprintln!("error: {msg}");
    let bad_input = is::<ConfigError>(&e)
        || is::<Usage>(&e)
        || is::<SlurmError>(&e)
        || is::<ScoreError>(&e)
        || is::<FeatureError>(&e)
        || is::<StoreError>(&e)
        || is::<PlotError>(&e);
    ExitCode::from(if bad_input { 2 } else { 1 })
}

/// Whether `e` is of type `E` and comes from what the user gave.
fn is<E: BadInput + std::fmt::Display + std::fmt::Debug + Send + Sync + 'static>(e: &anyhow::Error) -> bool {
    e.downcast_ref::<E>().is_some_and(E::bad_input)
}

/// Errors that may come from what the user gave (configs, experiment files, arguments,
/// data, prediction files, run ids) rather than from geosr or the machine.
trait BadInput {
    fn bad_input(&self) -> bool {
        true
    }
}

impl BadInput for ConfigError {}
impl BadInput for Usage {}
impl BadInput for ScoreError {}
impl BadInput for FeatureError {}

impl BadInput for SlurmError {
    /// No `sbatch` to start: Slurm is missing where the user asked for it.
    fn bad_input(&self) -> bool {
        matches!(self, SlurmError::Spawn { .. })
    }
}

impl BadInput for StoreError {
    fn bad_input(&self) -> bool {
        matches!(self, StoreError::Dirty(_) | StoreError::RunNotFound { .. } | StoreError::AmbiguousRun { .. })
    }
}

impl BadInput for PlotError {
    fn bad_input(&self) -> bool {
        match self {
            PlotError::NoRuns { .. } => true,
            PlotError::Store(s) => s.bad_input(),
            _ => false,
        }
    }
}

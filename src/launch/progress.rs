//! How far runs have got and when a sweep will end, read from what runs write as they
//! train (`train.csv`, flushed every 50 logged steps) and from the finished runs'
//! manifests. The sweep's live view and `geosr status --watch` both use it.

use crate::config::RunSpec;
use crate::train::StepRow;

/// Where a training run stands, from its `train.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// Steps done (the last logged step + 1).
    pub done: usize,
    pub total: usize,
    pub loss: f64,
    /// Training seconds so far (resumed runs included).
    pub elapsed_s: f64,
}

impl RunProgress {
    /// Seconds of training left at the pace so far.
    pub fn remaining_s(&self) -> f64 {
        if self.done == 0 {
            return f64::NAN;
        }
        self.elapsed_s / self.done as f64 * self.total.saturating_sub(self.done) as f64
    }
}

/// Optimizer steps a run trains.
pub fn total_steps(spec: &RunSpec) -> usize {
    let config = &spec.resolved.config;
    crate::train::total_steps(config, config.data.train_size)
}

/// The run's progress, or `None` before its first rows reach disk.
pub fn read(spec: &RunSpec) -> Option<RunProgress> {
    let dir = crate::runs::run_dir(spec);
    let rows: Vec<StepRow> = dir.read_csv(&dir.train_csv()).ok()?;
    let last = rows.last()?;
    Some(RunProgress { done: last.step + 1, total: total_steps(spec), loss: last.loss, elapsed_s: last.elapsed_s })
}

/// The work of a run, in the unit [`Eta`] scales by: analytic FLOPs of a training step
/// times its steps (steps alone where the data's shapes are unknown).
pub fn work(spec: &RunSpec) -> f64 {
    config_work(&spec.resolved.config)
}

fn config_work(config: &crate::config::Config) -> f64 {
    let steps = crate::train::total_steps(config, config.data.train_size) as f64;
    crate::data::model_dims(&config.data)
        .map_or(steps, |dims| steps * crate::model::flops::train_step_flops(&config.model, &dims, config.train.batch_size) as f64)
}

/// The pace of every run finished on this machine (by its manifest's host), whatever
/// experiment planned it: how `plan` and `status` estimate an experiment none of whose
/// own runs has finished. Returns the pace and how many runs it comes from.
pub fn host_pace(results_dir: &std::path::Path) -> (Eta, usize) {
    let host = crate::runs::manifest::this_host();
    let mut eta = Eta::default();
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(crate::runs::store::store_root(results_dir)) else { return (eta, 0) };
    for entry in entries.flatten() {
        let dir = crate::runs::RunDir { path: entry.path() };
        let Ok(Some(m)) = dir.read_manifest() else { continue };
        if m.status != crate::runs::Status::Done || m.provenance.host != host {
            continue;
        }
        let Some(config) = std::fs::read_to_string(dir.config_path()).ok().and_then(|t| toml::from_str(&t).ok()) else { continue };
        eta.finished(m.wall_seconds(), config_work(&config));
        n += 1;
    }
    (eta, n)
}

/// A sweep's remaining time, from the seconds per unit of [`work`] that the runs
/// finished so far took (or, before any has finished, that the running ones take).
#[derive(Debug, Clone, Default)]
pub struct Eta {
    seconds: f64,
    work: f64,
}

impl Eta {
    /// Counts a finished run: its wall time (training and evaluation) and its work.
    pub fn finished(&mut self, seconds: f64, work: f64) {
        if seconds.is_finite() && work > 0.0 {
            self.seconds += seconds;
            self.work += work;
        }
    }

    pub fn has_data(&self) -> bool {
        self.work > 0.0
    }

    /// Seconds until the last run ends: the queued runs' work at the measured pace,
    /// plus what the running ones have left, shared among `jobs` runs at once. `None`
    /// while nothing gives a pace.
    pub fn remaining_s(&self, queued: &[f64], running: &[(f64, Option<RunProgress>)], jobs: usize) -> Option<f64> {
        let pace = if self.has_data() {
            self.seconds / self.work
        } else {
            // No run has finished: the running ones' pace, training only.
            let (mut s, mut w) = (0.0, 0.0);
            for (work, p) in running {
                if let Some(p) = p.as_ref().filter(|p| p.done > 0) {
                    s += p.elapsed_s / p.done as f64 * p.total as f64;
                    w += work;
                }
            }
            if w == 0.0 {
                return None;
            }
            s / w
        };
        let queued_s: f64 = queued.iter().map(|w| w * pace).sum();
        let running_s: f64 = running
            .iter()
            .map(|(work, p)| match p {
                Some(p) if p.done > 0 => p.remaining_s(),
                _ => work * pace,
            })
            .sum();
        // The running runs end first, each on its own slot; the queue shares all slots.
        let longest_running = running
            .iter()
            .map(|(work, p)| p.as_ref().filter(|p| p.done > 0).map_or(work * pace, RunProgress::remaining_s))
            .fold(0.0, f64::max);
        Some(((queued_s + running_s) / jobs.max(1) as f64).max(longest_running))
    }
}

/// `1h 02m`, `4m 05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(done: usize, total: usize, elapsed_s: f64) -> RunProgress {
        RunProgress { done, total, loss: 1.0, elapsed_s }
    }

    #[test]
    fn the_eta_scales_the_finished_runs_pace_by_work() {
        let mut eta = Eta::default();
        assert_eq!(eta.remaining_s(&[1.0], &[], 1), None, "no pace yet");
        eta.finished(100.0, 10.0); // 10 s per unit of work
        // Two queued runs of 10 and 20 units, one job: 300 s.
        assert_eq!(eta.remaining_s(&[10.0, 20.0], &[], 1), Some(300.0));
        // Two jobs share the queue.
        assert_eq!(eta.remaining_s(&[10.0, 20.0], &[], 2), Some(150.0));
        // A running run at half way after 50 s has 50 s left, by its own pace.
        assert_eq!(eta.remaining_s(&[], &[(10.0, Some(progress(5, 10, 50.0)))], 2), Some(50.0));
    }

    #[test]
    fn before_any_run_ends_the_running_runs_give_the_pace() {
        let eta = Eta::default();
        // 30 s for a quarter: 120 s a run of 1 unit; 90 s left of it, plus 120 s queued, one job.
        let left = eta.remaining_s(&[1.0], &[(1.0, Some(progress(25, 100, 30.0)))], 1).unwrap();
        assert!((left - 210.0).abs() < 1e-9, "{left}");
        assert_eq!(duration(3725.0), "1h 02m");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(12.4), "12s");
    }
}

//! Runs trained in this process, one after another, with what a person watches:
//! training progress, then each run's scores.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use geosr::config::RunSpec;
use geosr::launch::{self, Outcome, RunOptions};
use geosr::runs;

use super::backend::Job;

/// Trains `runs` in turn; its output is how many failed.
pub struct Execute<'a> {
    pub runs: &'a [RunSpec],
    pub opts: &'a RunOptions,
    /// Stop at the first failure.
    pub fail_fast: bool,
}

impl Job for Execute<'_> {
    type Output = usize;

    fn run<B: AutodiffBackend>(self, devices: &[B::Device]) -> Result<usize> {
        let Execute { runs, opts, fail_fast } = self;
        // A dirty tree under --require-clean is refused before anything runs.
        if let Some(spec) = runs.iter().find(|s| opts.require_clean || s.resolved.config.output.require_clean) {
            launch::check_clean(spec, &RunOptions { require_clean: true, ..opts.clone() })?;
        }
        let mut failed = 0;
        for (i, spec) in runs.iter().enumerate() {
            println!("[{}/{}] {} seed {} ({})", i + 1, runs.len(), spec.label, spec.seed, spec.id);
            let mut watcher = StepWatcher::new();
            let outcome = launch::run_one::<B>(spec, opts, devices, &mut |row, total| watcher.update(row, total));
            watcher.finish();
            // A run that cannot even record its failure (a full disk) still does not stop the others.
            let outcome = outcome.unwrap_or_else(|e| Outcome::Failed { dir: runs::run_dir(spec).path, reason: e.to_string() });
            match outcome {
                Outcome::Done { dir, eval } => print_scores(&dir, &eval),
                Outcome::Skipped { dir } => println!("  already done: {}", dir.display()),
                Outcome::Busy { dir } => println!("  another process is training it: {}", dir.display()),
                Outcome::Failed { dir, reason } => {
                    failed += 1;
                    println!("  FAILED: {reason} ({})", dir.display());
                    if fail_fast && i + 1 < runs.len() {
                        println!("--fail-fast: skipping the remaining {} run(s)", runs.len() - i - 1);
                        break;
                    }
                }
            }
        }
        Ok(failed)
    }
}

fn print_scores(dir: &std::path::Path, eval: &[geosr::eval::EvalRow]) {
    // The probe columns: the score lost when a stream is zeroed, as `diff`, `runs`
    // (`metrics.drop_no_geometry`) and eval.csv call it.
    println!(
        "  {:<16} {:>6} {:>6} {:>6} {:>5}  {:>9} {:>11} {:>6}",
        "subtask", "score", "chance", "prior", "n", "geo drop", "vision drop", "alpha"
    );
    for row in eval {
        let alpha = row.alpha.map(|a| format!("{a:.2}")).unwrap_or_else(|| "-".into());
        let prior = row.prior.map(|p| format!("{p:.1}")).unwrap_or_else(|| "-".into());
        println!(
            "  {:<16} {:>6.1} {:>6.1} {:>6} {:>5}  {:>9.1} {:>11.1} {:>6}",
            row.name, row.score, row.chance, prior, row.questions, row.drop_no_geometry, row.drop_no_vision, alpha
        );
    }
    println!("  -> {}", dir.display());
}

/// Training progress a person can watch: a progress bar with loss, throughput and
/// ETA on a terminal; a plain line every tenth of the run otherwise (CI, Slurm logs).
struct StepWatcher {
    bar: Option<indicatif::ProgressBar>,
    interactive: bool,
}

impl StepWatcher {
    fn new() -> StepWatcher {
        use std::io::IsTerminal;
        StepWatcher { bar: None, interactive: std::io::stdout().is_terminal() }
    }

    fn update(&mut self, row: &geosr::train::StepRow, total: usize) {
        let done = row.step + 1;
        if self.interactive {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("  {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                        .expect("valid template"),
                );
                bar
            });
            bar.set_position(done as u64);
            bar.set_message(format!("loss {:.4}  {:.0} samples/s", row.loss, row.samples_per_s));
        } else if done == total || done % (total / 10).max(1) == 0 {
            println!(
                "  step {done}/{total}  loss {:.4}  lr {:.2e}  {:.0} samples/s  {:.0}s",
                row.loss, row.lr, row.samples_per_s, row.elapsed_s
            );
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

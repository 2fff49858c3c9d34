//! The live view of a local sweep: overall progress with an ETA from the runs finished
//! so far, and each running child's step, loss and ETA, read from the `train.csv` it
//! flushes. Bars on a terminal; on anything else (a log file, CI, a Slurm job) plain
//! lines, a progress line at most once a minute.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use geosr::config::RunSpec;
use geosr::launch::progress::{self, duration, Eta};
use geosr::launch::sweep::{self, Event};

pub struct LiveView<'a> {
    plan: &'a [RunSpec],
    total: usize,
    jobs: usize,
    finished: usize,
    failed: usize,
    eta: Eta,
    work: HashMap<usize, f64>,
    bars: Option<Bars>,
    last_refresh: Instant,
    every: Duration,
}

struct Bars {
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    runs: HashMap<String, indicatif::ProgressBar>,
}

impl<'a> LiveView<'a> {
    /// A view of the runs at `todo`, `jobs` at once. Bars only on a terminal outside
    /// Slurm; elsewhere a progress line every `plain_every` seconds.
    pub fn new(plan: &'a [RunSpec], todo: &[usize], jobs: usize, plain_every: u64) -> LiveView<'a> {
        let interactive = std::io::stdout().is_terminal() && std::env::var_os("SLURM_JOB_ID").is_none();
        let bars = interactive.then(|| {
            let multi = indicatif::MultiProgress::new();
            let overall = multi.add(indicatif::ProgressBar::new(todo.len() as u64));
            overall.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}").expect("valid template"),
            );
            Bars { multi, overall, runs: HashMap::new() }
        });
        LiveView {
            plan,
            total: todo.len(),
            jobs,
            finished: 0,
            failed: 0,
            eta: Eta::default(),
            work: todo.iter().map(|&i| (i, progress::work(&plan[i]))).collect(),
            bars,
            last_refresh: Instant::now(),
            every: if interactive { Duration::from_secs(1) } else { Duration::from_secs(plain_every) },
        }
    }

    fn println(&self, line: String) {
        match &self.bars {
            Some(b) => b.multi.println(line).unwrap_or(()),
            None => println!("{line}"),
        }
    }

    pub fn handle(&mut self, event: Event<'_>) {
        match event {
            Event::Started { spec, log } => {
                self.println(format!("start  {} seed {} ({})  log: {}", spec.label, spec.seed, spec.id, log.display()));
                if let Some(b) = &mut self.bars {
                    let bar = b.multi.add(indicatif::ProgressBar::new(progress::total_steps(spec) as u64));
                    bar.set_style(
                        indicatif::ProgressStyle::with_template("  {prefix:<16} {bar:20} {pos}/{len} steps  {msg}")
                            .expect("valid template"),
                    );
                    bar.set_prefix(format!("{} s{}", spec.label, spec.seed));
                    b.runs.insert(spec.id.clone(), bar);
                }
            }
            Event::Finished { spec, ok, seconds, log } => {
                self.finished += 1;
                let index = self.plan.iter().position(|s| s.id == spec.id);
                if ok {
                    self.eta.finished(seconds, index.and_then(|i| self.work.get(&i)).copied().unwrap_or(0.0));
                } else {
                    self.failed += 1;
                }
                let word = if ok { "done  " } else { "FAILED" };
                self.println(format!("[{}/{}] {word} {} seed {} in {}", self.finished, self.total, spec.label, spec.seed, duration(seconds)));
                if !ok {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let lines: Vec<&str> = sweep::last_attempt(&text).lines().collect();
                    for line in &lines[lines.len().saturating_sub(5)..] {
                        self.println(format!("    {line}"));
                    }
                }
                if let Some(b) = &mut self.bars {
                    if let Some(bar) = b.runs.remove(&spec.id) {
                        bar.finish_and_clear();
                    }
                    b.overall.set_position(self.finished as u64);
                }
            }
            Event::Stopping { running } => {
                self.println(format!("--fail-fast: starting no new runs; waiting for {running} running run(s)"));
            }
            Event::Tick { running, queued } => {
                if self.last_refresh.elapsed() >= self.every {
                    self.last_refresh = Instant::now();
                    self.refresh(running, queued);
                }
            }
        }
    }

    fn refresh(&mut self, running: &[usize], queued: &[usize]) {
        let states: Vec<(usize, Option<progress::RunProgress>)> =
            running.iter().map(|&i| (i, progress::read(&self.plan[i]))).collect();
        let queued_work: Vec<f64> = queued.iter().map(|i| self.work.get(i).copied().unwrap_or(0.0)).collect();
        let running_work: Vec<(f64, Option<progress::RunProgress>)> =
            states.iter().map(|(i, p)| (self.work.get(i).copied().unwrap_or(0.0), p.clone())).collect();
        let eta = self.eta.remaining_s(&queued_work, &running_work, self.jobs);
        let eta_text = match eta {
            Some(s) => format!("ETA {}", duration(s)),
            None => "ETA: after the first logged steps".into(),
        };
        let failed = if self.failed > 0 { format!(", {} failed", self.failed) } else { String::new() };
        match &self.bars {
            Some(b) => {
                b.overall.set_message(format!("{} running{failed}  {eta_text}", running.len()));
                for (i, p) in &states {
                    let spec = &self.plan[*i];
                    if let (Some(bar), Some(p)) = (b.runs.get(&spec.id), p) {
                        bar.set_length(p.total as u64);
                        bar.set_position(p.done as u64);
                        bar.set_message(format!("loss {:.4}  ETA {}", p.loss, duration(p.remaining_s())));
                    }
                }
            }
            None => {
                let each: Vec<String> = states
                    .iter()
                    .map(|(i, p)| {
                        let spec = &self.plan[*i];
                        match p {
                            Some(p) => format!(
                                "{} s{} step {}/{} loss {:.4} ({} left)",
                                spec.label,
                                spec.seed,
                                p.done,
                                p.total,
                                p.loss,
                                duration(p.remaining_s())
                            ),
                            None => format!("{} s{} starting", spec.label, spec.seed),
                        }
                    })
                    .collect();
                println!("[{}/{}] {} running{failed}, {eta_text} | {}", self.finished, self.total, running.len(), each.join(" | "));
            }
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bars {
            b.overall.finish_and_clear();
        }
    }
}

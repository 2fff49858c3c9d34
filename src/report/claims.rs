//! The paper's claims as comparisons between rows ("a > b"), checked on our runs
//! with a bootstrap 95% confidence interval of the difference in Avg. that
//! resamples both seeds and questions.
//!
//! Each bootstrap draw resamples the seeds of each row (with replacement) and,
//! once for all runs, the evaluation questions within each subtask (the rows
//! share one evaluation set, so the question draw is paired). Avg. is then
//! recomputed per run the way the table reports it (macro over subtasks or
//! micro over questions) and the rows' means are compared.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Average, RunSpec};
use crate::eval::Prediction;
use crate::runs::{RunDir, Status, StoreError};

pub use crate::config::experiment::{parse_claim as parse, Claim};

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub claim: Claim,
    /// Observed Avg.(better) - Avg.(worse), in points; `None` without runs on both
    /// sides, or when the rows' averages cannot be compared.
    pub difference: Option<f64>,
    pub ci95: Option<(f64, f64)>,
    pub seeds: (usize, usize),
    /// Why there is no difference although both rows have runs.
    pub incomparable: Option<String>,
}

impl Verdict {
    /// Whether the interval resamples seeds too: only a row with two or more seeds
    /// has a spread over seeds to resample.
    pub fn over_seeds(&self) -> bool {
        self.seeds.0 >= 2 || self.seeds.1 >= 2
    }
}

/// What a claim's difference and interval say. Told apart from a tie, a reversal is a
/// finding: the claim turned against the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Difference > 0 and the interval excludes 0.
    Held,
    /// Difference > 0, the interval includes 0.
    NotSignificant,
    /// Difference at or below 0, the interval includes 0.
    DidNotHold,
    /// Difference < 0 and the interval excludes 0: the other row is significantly better.
    Reversed,
    NotComparable,
    NoRuns,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Held => "held",
            Outcome::NotSignificant => "held, not significant",
            Outcome::DidNotHold => "did not hold",
            Outcome::Reversed => "reversed",
            Outcome::NotComparable => "not comparable",
            Outcome::NoRuns => "no runs",
        }
    }
}

impl Verdict {
    /// The outcome the difference and its interval give, as [`Outcome`] defines them.
    pub fn kind(&self) -> Outcome {
        match (self.difference, self.ci95) {
            (Some(d), Some((lo, _))) if d > 0.0 && lo > 0.0 => Outcome::Held,
            (Some(d), _) if d > 0.0 => Outcome::NotSignificant,
            (Some(d), Some((_, hi))) if d < 0.0 && hi < 0.0 => Outcome::Reversed,
            (Some(_), _) => Outcome::DidNotHold,
            _ if self.incomparable.is_some() => Outcome::NotComparable,
            _ => Outcome::NoRuns,
        }
    }

    /// [`Verdict::kind`] as the tables print it.
    pub fn outcome(&self) -> &'static str {
        self.kind().label()
    }
}

/// Per-question scores of one finished run, in question order.
fn load_scores(dir: &RunDir) -> Result<Vec<Prediction>, StoreError> {
    let path = dir.path.join("predictions.csv");
    let mut r = csv::Reader::from_path(&path).map_err(|e| StoreError::Format { path: path.clone(), message: e.to_string() })?;
    let mut rows: Vec<Prediction> =
        r.deserialize().collect::<Result<_, _>>().map_err(|e| StoreError::Format { path, message: e.to_string() })?;
    rows.sort_by_key(|p| p.index);
    Ok(rows)
}

/// One run's per-question scores, each question's subtask an index into the sorted
/// subtask names, so a bootstrap draw adds numbers instead of comparing names (with
/// names, 2,000 draws over Table 3's 30 runs took 42 s of CPU).
struct Scores {
    subtask: Vec<usize>,
    score: Vec<f64>,
}

impl Scores {
    fn new(preds: &[Prediction], names: &[&str]) -> Scores {
        let id = |s: &str| names.binary_search(&s).expect("every subtask is among the names");
        Scores { subtask: preds.iter().map(|p| id(&p.subtask)).collect(), score: preds.iter().map(|p| p.score).collect() }
    }

    /// Avg. over the questions `picks`, the subtasks taken in name order as the table does.
    fn average(&self, picks: &[usize], subtasks: usize, how: Average) -> f64 {
        let mut sums = vec![(0.0, 0usize); subtasks];
        for &i in picks {
            let e = &mut sums[self.subtask[i]];
            e.0 += self.score[i];
            e.1 += 1;
        }
        let cells: Vec<(f64, usize)> = sums.into_iter().filter(|(_, n)| *n > 0).map(|(s, n)| (100.0 * s / n as f64, n)).collect();
        match how {
            Average::Macro => crate::eval::metrics::macro_average(&cells),
            Average::Micro => crate::eval::metrics::micro_average(&cells),
        }
    }

    /// Avg. over all of the run's questions.
    fn whole_average(&self, subtasks: usize, how: Average) -> f64 {
        self.average(&(0..self.score.len()).collect::<Vec<_>>(), subtasks, how)
    }
}

/// Checks each claim on the finished runs of `plan`, with `draws` bootstrap draws.
///
/// Each row's Avg. is its own benchmark's average; a claim between rows of different
/// benchmarks or averages is reported as not comparable. Runs whose files cannot be
/// read are left out (the table names them).
pub fn check(claims: &[String], plan: &[RunSpec], draws: usize) -> Result<Vec<Verdict>, StoreError> {
    let mut runs: BTreeMap<String, Vec<Vec<Prediction>>> = BTreeMap::new();
    let mut kinds: BTreeMap<String, (crate::config::Bench, Average)> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for spec in plan {
        let config = &spec.resolved.config;
        kinds.entry(spec.label.clone()).or_insert((config.data.bench, config.eval.average));
        if !seen.insert((spec.label.clone(), spec.id.clone())) {
            continue;
        }
        let dir = crate::runs::run_dir(spec);
        let manifest = dir.read_manifest().ok().flatten().filter(|m| m.status == Status::Done);
        if manifest.is_some_and(|m| crate::runs::verify_done(spec, &dir, &m).is_ok()) {
            if let Ok(scores) = load_scores(&dir) {
                runs.entry(spec.label.clone()).or_default().push(scores);
            }
        }
    }
    let mut verdicts = Vec::new();
    for text in claims {
        let Some(claim) = parse(text) else { continue };
        let empty = Vec::new();
        let (x, y) = (runs.get(&claim.better).unwrap_or(&empty), runs.get(&claim.worse).unwrap_or(&empty));
        let seeds = (x.len(), y.len());
        if x.is_empty() || y.is_empty() {
            verdicts.push(Verdict { claim, difference: None, ci95: None, seeds, incomparable: None });
            continue;
        }
        let (kind_x, kind_y) = (kinds.get(&claim.better), kinds.get(&claim.worse));
        if kind_x != kind_y {
            let why = format!("`{}` is {:?} ({:?} average), `{}` is {:?} ({:?} average)", claim.better, kind_x.map(|k| k.0), kind_x.map(|k| k.1), claim.worse, kind_y.map(|k| k.0), kind_y.map(|k| k.1));
            verdicts.push(Verdict { claim, difference: None, ci95: None, seeds, incomparable: Some(why) });
            continue;
        }
        let how = kind_x.map_or(Average::Macro, |k| k.1);
        let n = x[0].len();
        let paired = x.iter().chain(y.iter()).all(|r| r.len() == n && r.iter().zip(&x[0]).all(|(a, b)| a.subtask == b.subtask));
        let names: Vec<&str> =
            x.iter().chain(y.iter()).flatten().map(|p| p.subtask.as_str()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let (xs, ys): (Vec<Scores>, Vec<Scores>) =
            (x.iter().map(|r| Scores::new(r, &names)).collect(), y.iter().map(|r| Scores::new(r, &names)).collect());
        let whole = |rs: &[Scores]| rs.iter().map(|r| r.whole_average(names.len(), how)).collect::<Vec<_>>();
        let (whole_x, whole_y) = (whole(&xs), whole(&ys));
        // The mean Avg. of the runs `drawn` (indices, repeats allowed).
        let mean = |avgs: &[f64], drawn: &[usize]| drawn.iter().map(|&i| avgs[i]).sum::<f64>() / drawn.len() as f64;
        let every = |rs: &[Scores]| (0..rs.len()).collect::<Vec<_>>();
        let difference = mean(&whole_x, &every(&xs)) - mean(&whole_y, &every(&ys));
        // Questions grouped by subtask, for stratified resampling.
        let mut strata: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            strata.entry(x[0][i].subtask.as_str()).or_default().push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0x5EED);
        let mut diffs = Vec::with_capacity(draws);
        for _ in 0..draws {
            let seeds_x: Vec<usize> = (0..xs.len()).map(|_| rng.random_range(0..xs.len())).collect();
            let seeds_y: Vec<usize> = (0..ys.len()).map(|_| rng.random_range(0..ys.len())).collect();
            let d = if paired {
                let picks: Vec<usize> =
                    strata.values().flat_map(|idx| (0..idx.len()).map(|_| idx[rng.random_range(0..idx.len())]).collect::<Vec<_>>()).collect();
                // Each run's Avg. once per draw, however often the seed draw picked it.
                let drawn = |rs: &[Scores]| rs.iter().map(|r| r.average(&picks, names.len(), how)).collect::<Vec<_>>();
                mean(&drawn(&xs), &seeds_x) - mean(&drawn(&ys), &seeds_y)
            } else {
                mean(&whole_x, &seeds_x) - mean(&whole_y, &seeds_y)
            };
            diffs.push(d);
        }
        diffs.sort_by(f64::total_cmp);
        let q = |p: f64| diffs[((p * (draws - 1) as f64).round() as usize).min(draws - 1)];
        verdicts.push(Verdict { claim, difference: Some(difference), ci95: Some((q(0.025), q(0.975))), seeds, incomparable: None });
    }
    Ok(verdicts)
}

/// Claims as a small Markdown-style table.
pub fn render(verdicts: &[Verdict]) -> String {
    let mut out = String::from("Claims (Avg., 95% CI by bootstrap over seeds (rows with two or more) and questions):\n");
    for v in verdicts {
        let diff = v.difference.map(|d| format!("{d:+.1}")).unwrap_or_else(|| "–".into());
        let ci = v.ci95.map(|(lo, hi)| format!("[{lo:+.1}, {hi:+.1}]")).unwrap_or_else(|| "–".into());
        let only_questions = if v.difference.is_some() && !v.over_seeds() { "  (one seed each: CI over questions only)" } else { "" };
        out.push_str(&format!(
            "  {:<28} diff {:>6}  CI {:<16} seeds {}/{}  {}{only_questions}\n",
            v.claim.text, diff, ci, v.seeds.0, v.seeds.1, v.outcome()
        ));
        if let Some(why) = &v.incomparable {
            out.push_str(&format!("    {why}\n"));
        }
    }
    out
}

/// The claims as data, for `table --format json`.
pub fn to_json(verdicts: &[Verdict]) -> serde_json::Value {
    verdicts
        .iter()
        .map(|v| {
            serde_json::json!({
                "claim": v.claim.text, "better": v.claim.better, "worse": v.claim.worse,
                "difference": v.difference, "ci95": v.ci95.map(|(lo, hi)| [lo, hi]),
                "seeds": [v.seeds.0, v.seeds.1], "outcome": v.outcome(), "over_seeds": v.over_seeds(),
                "incomparable": v.incomparable,
            })
        })
        .collect()
}

/// The claims as a Markdown table, for documents (`table --format md`).
pub fn render_markdown(verdicts: &[Verdict]) -> String {
    let mut out = String::from("| claim | diff | 95% CI | seeds | outcome |\n|---|---:|---|---:|---|\n");
    for v in verdicts {
        let diff = v.difference.map(|d| format!("{d:+.1}")).unwrap_or_else(|| "–".into());
        let ci = v.ci95.map(|(lo, hi)| format!("[{lo:+.1}, {hi:+.1}]")).unwrap_or_else(|| "–".into());
        let mut outcome = v.outcome().to_string();
        if v.difference.is_some() && !v.over_seeds() {
            outcome.push_str(" (one seed each: CI over questions only)");
        }
        if let Some(why) = &v.incomparable {
            outcome.push_str(&format!("; {why}"));
        }
        out.push_str(&format!("| {} | {diff} | {ci} | {}/{} | {outcome} |\n", v.claim.text, v.seeds.0, v.seeds.1));
    }
    out.push_str("\nClaims: Avg., 95% CI by bootstrap over seeds (rows with two or more) and questions.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_both_directions() {
        assert_eq!(parse("a > b").unwrap(), Claim { text: "a > b".into(), better: "a".into(), worse: "b".into() });
        let c = parse(" f<e ").unwrap();
        assert_eq!((c.better.as_str(), c.worse.as_str()), ("e", "f"));
        assert!(parse("a = b").is_none() && parse("> b").is_none());
    }

    /// The indexed average gives the very bits of the plain definition: per subtask by
    /// name, in name order, over the picked questions (repeats counted).
    #[test]
    fn indexed_average_is_the_plain_average_to_the_bit() {
        let names = ["abs_distance", "obj_count", "room_size"];
        let preds: Vec<Prediction> = (0..300)
            .map(|i| Prediction {
                index: i,
                subtask: names[(i * 7) % 3].into(),
                answer: 0.0,
                prediction: 0.0,
                score: ((i * 37) % 101) as f64 / 101.0,
                score_no_geometry: 0.0,
                score_no_vision: 0.0,
                alpha: None,
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // Two of the three subtasks only, with repeats, as a bootstrap draw has them.
        let picks: Vec<usize> = (0..400).map(|_| rng.random_range(0..300)).filter(|i| (i * 7) % 3 != 1).collect();
        let scores = Scores::new(&preds, &names);
        for how in [Average::Macro, Average::Micro] {
            let mut plain: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
            for &i in &picks {
                let e = plain.entry(preds[i].subtask.as_str()).or_default();
                e.0 += preds[i].score;
                e.1 += 1;
            }
            let cells: Vec<(f64, usize)> = plain.values().map(|(s, n)| (100.0 * s / *n as f64, *n)).collect();
            let want = match how {
                Average::Macro => crate::eval::metrics::macro_average(&cells),
                Average::Micro => crate::eval::metrics::micro_average(&cells),
            };
            assert_eq!(cells.len(), 2);
            assert_eq!(scores.average(&picks, names.len(), how).to_bits(), want.to_bits(), "{how:?}");
        }
    }

    #[test]
    fn outcome_needs_the_interval_to_exclude_zero() {
        let c = parse("a > b").unwrap();
        let v = |d, lo, hi| Verdict { claim: c.clone(), difference: Some(d), ci95: Some((lo, hi)), seeds: (3, 3), incomparable: None };
        assert_eq!(v(2.0, 0.5, 3.0).outcome(), "held");
        assert_eq!(v(2.0, -0.5, 3.0).outcome(), "held, not significant");
        assert_eq!(v(-1.0, -2.0, 0.5).outcome(), "did not hold");
        assert_eq!(v(-1.0, -2.0, -0.5).outcome(), "reversed");
        assert_eq!(v(0.0, -0.5, 0.5).outcome(), "did not hold");
    }
}

//! The paper's claims as comparisons between rows ("a > b"), checked on our runs.
//!
//! Each row's runs give one Avg. each (macro over subtasks or micro over questions, as
//! the table reports it); the difference of the rows' means gets a 95% interval from
//! [`super::stats`]: a t interval over seeds (paired by seed when both rows ran the same
//! seeds), whose coverage a test measures, or, for a row with one run, an interval over
//! the questions alone. Beside each claim: its p-value adjusted with Holm's method over
//! the claims checked together (a table's), the smallest difference its seeds could
//! detect, the seeds a row would need for the paper's own difference, and the chance
//! that a run of one row beats a run of the other.

use std::collections::BTreeMap;

use crate::config::{Average, Experiment, RunSpec};
use crate::eval::Prediction;
use crate::runs::{RunDir, Status, StoreError};

use super::stats::{self, Method};

pub use crate::config::experiment::{parse_claim as parse, Claim};

/// The significance level of every interval and test.
pub const ALPHA: f64 = 0.05;

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
    pub method: Option<Method>,
    /// Two-sided p for no difference.
    pub p: Option<f64>,
    /// `p` adjusted with Holm's method over the claims checked together.
    pub p_adjusted: Option<f64>,
    /// The smallest difference these seeds detect with 80% power at 5%.
    pub detectable: Option<f64>,
    /// The paper's difference between the two rows, where its table has both.
    pub paper: Option<f64>,
    /// Seeds each row would need to detect the paper's difference (80% power, 5%).
    pub seeds_needed: Option<usize>,
    /// The chance that a run of `better` beats a run of `worse`.
    pub superiority: Option<f64>,
}

impl Verdict {
    fn empty(claim: Claim, seeds: (usize, usize)) -> Verdict {
        Verdict {
            claim,
            difference: None,
            ci95: None,
            seeds,
            incomparable: None,
            method: None,
            p: None,
            p_adjusted: None,
            detectable: None,
            paper: None,
            seeds_needed: None,
            superiority: None,
        }
    }

    /// Whether the interval is over seeds (both rows have two or more runs).
    pub fn over_seeds(&self) -> bool {
        matches!(self.method, Some(Method::PairedSeeds | Method::WelchSeeds))
    }
}

/// What a claim's difference and interval say. Told apart from a tie, a reversal is a
/// finding: the claim turned against the paper. A tie whose seeds could not have
/// detected the paper's own difference says nothing either way: underpowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Difference > 0 and the interval excludes 0.
    Held,
    /// Difference > 0, the interval includes 0.
    NotSignificant,
    /// Difference at or below 0, the interval includes 0.
    DidNotHold,
    /// The interval includes 0 and the paper's difference is below what the seeds detect.
    Underpowered,
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
            Outcome::Underpowered => "underpowered",
            Outcome::Reversed => "reversed",
            Outcome::NotComparable => "not comparable",
            Outcome::NoRuns => "no runs",
        }
    }
}

impl Verdict {
    /// The outcome the difference and its interval give, as [`Outcome`] defines them.
    pub fn kind(&self) -> Outcome {
        let significant = self.ci95.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0);
        self.classify(significant)
    }

    /// The outcome once the family is accounted for: significant only when the
    /// Holm-adjusted p is below 5%.
    pub fn adjusted_kind(&self) -> Outcome {
        self.classify(self.p_adjusted.is_some_and(|p| p < ALPHA))
    }

    fn classify(&self, significant: bool) -> Outcome {
        match self.difference {
            Some(d) if significant && d > 0.0 => Outcome::Held,
            Some(d) if significant && d < 0.0 => Outcome::Reversed,
            Some(_) if self.underpowered() => Outcome::Underpowered,
            Some(d) if d > 0.0 => Outcome::NotSignificant,
            Some(_) => Outcome::DidNotHold,
            None if self.incomparable.is_some() => Outcome::NotComparable,
            None => Outcome::NoRuns,
        }
    }

    fn underpowered(&self) -> bool {
        matches!((self.paper, self.detectable), (Some(paper), Some(d)) if paper.abs() < d)
    }

    /// [`Verdict::kind`] as the tables print it.
    pub fn outcome(&self) -> &'static str {
        self.kind().label()
    }

    pub fn adjusted_outcome(&self) -> &'static str {
        self.adjusted_kind().label()
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

/// A run's Avg. from its per-question scores, the subtasks taken in name order as the
/// table does.
fn run_average(preds: &[Prediction], how: Average) -> f64 {
    let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for p in preds {
        let e = sums.entry(p.subtask.as_str()).or_default();
        e.0 += p.score;
        e.1 += 1;
    }
    let cells: Vec<(f64, usize)> = sums.values().map(|(s, n)| (100.0 * s / *n as f64, *n)).collect();
    match how {
        Average::Macro => crate::eval::metrics::macro_average(&cells),
        Average::Micro => crate::eval::metrics::micro_average(&cells),
    }
}

/// The paper's Avg. per row label, from the experiment's reference table.
fn paper_avgs(exp: &Experiment, plan: &[RunSpec]) -> BTreeMap<String, f64> {
    let Ok(table) = super::table::build(exp, plan, true) else { return BTreeMap::new() };
    let Some(avg) = table.columns.iter().position(|(k, _)| k == "avg") else { return BTreeMap::new() };
    table.rows.iter().filter_map(|r| Some((r.label.clone(), r.paper.get(avg).copied().flatten()?))).collect()
}

/// The method every claim line names, for a table's footer.
pub const METHOD: &str = "95% CI: t over the seeds' Avg. (paired by seed where both rows ran the same seeds; Welch's \
    otherwise), or over the questions where a row has one run. Holm: significance after adjusting for this table's \
    claims together. Detectable: the smallest difference these seeds detect with 80% power at 5%; a tie whose paper \
    difference is below it is underpowered. P(beats): that a run of the first row beats a run of the second.";

/// Checks the experiment's claims on the finished runs of `plan`.
///
/// Each row's Avg. is its own benchmark's average; a claim between rows of different
/// benchmarks or averages is reported as not comparable. Runs whose files cannot be
/// read are left out (the table names them).
pub fn check(exp: &Experiment, plan: &[RunSpec]) -> Result<Vec<Verdict>, StoreError> {
    let claims = &exp.file.claims;
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let mut runs: BTreeMap<String, Vec<(u64, Vec<Prediction>)>> = BTreeMap::new();
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
                runs.entry(spec.label.clone()).or_default().push((spec.seed, scores));
            }
        }
    }
    let paper = if exp.file.reference.is_some() { paper_avgs(exp, plan) } else { BTreeMap::new() };
    let mut verdicts = Vec::new();
    for text in claims {
        let Some(claim) = parse(text) else { continue };
        let empty = Vec::new();
        let (x, y) = (runs.get(&claim.better).unwrap_or(&empty), runs.get(&claim.worse).unwrap_or(&empty));
        let mut v = Verdict::empty(claim.clone(), (x.len(), y.len()));
        v.paper = paper.get(&claim.better).zip(paper.get(&claim.worse)).map(|(a, b)| a - b);
        if x.is_empty() || y.is_empty() {
            verdicts.push(v);
            continue;
        }
        let (kind_x, kind_y) = (kinds.get(&claim.better), kinds.get(&claim.worse));
        if kind_x != kind_y {
            v.incomparable = Some(format!(
                "`{}` is {:?} ({:?} average), `{}` is {:?} ({:?} average)",
                claim.better,
                kind_x.map(|k| k.0),
                kind_x.map(|k| k.1),
                claim.worse,
                kind_y.map(|k| k.0),
                kind_y.map(|k| k.1)
            ));
            verdicts.push(v);
            continue;
        }
        let how = kind_x.map_or(Average::Macro, |k| k.1);
        let avgs = |rs: &[(u64, Vec<Prediction>)]| rs.iter().map(|(seed, p)| (*seed, run_average(p, how))).collect::<Vec<_>>();
        let c = match stats::compare_seeds(&avgs(x), &avgs(y), true) {
            Some(c) => Some(c),
            None => questions(x, y, how),
        };
        let Some(c) = c else {
            v.incomparable = Some(format!("`{}` and `{}` answered different questions", claim.better, claim.worse));
            verdicts.push(v);
            continue;
        };
        v.difference = Some(c.difference);
        v.ci95 = Some(c.ci95);
        v.method = Some(c.method);
        v.p = Some(c.p);
        v.detectable = Some(c.detectable);
        v.superiority = c.superiority;
        v.seeds_needed = c.variances.zip(v.paper).and_then(|((vx, vy), effect)| stats::seeds_needed(vx, vy, effect));
        verdicts.push(v);
    }
    // The family: every claim that has a p-value.
    let tested: Vec<usize> = verdicts.iter().enumerate().filter(|(_, v)| v.p.is_some()).map(|(i, _)| i).collect();
    let adjusted = stats::holm(&tested.iter().map(|&i| verdicts[i].p.unwrap()).collect::<Vec<_>>());
    for (i, p) in tested.into_iter().zip(adjusted) {
        verdicts[i].p_adjusted = Some(p);
    }
    Ok(verdicts)
}

/// A claim whose rows do not both have two runs: the mean of each row's runs, question
/// by question, compared over the questions. `None` when the runs answered different
/// questions.
fn questions(x: &[(u64, Vec<Prediction>)], y: &[(u64, Vec<Prediction>)], how: Average) -> Option<stats::Comparison> {
    let n = x[0].1.len();
    let same = x.iter().chain(y).all(|(_, r)| r.len() == n && r.iter().zip(&x[0].1).all(|(a, b)| a.subtask == b.subtask && a.index == b.index));
    if !same {
        return None;
    }
    let names: Vec<&str> = x[0].1.iter().map(|p| p.subtask.as_str()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let mean_at = |rs: &[(u64, Vec<Prediction>)], q: usize| rs.iter().map(|(_, r)| r[q].score).sum::<f64>() / rs.len() as f64;
    let diffs: Vec<(usize, f64)> = (0..n)
        .map(|q| (names.binary_search(&x[0].1[q].subtask.as_str()).expect("a known subtask"), 100.0 * (mean_at(x, q) - mean_at(y, q))))
        .collect();
    Some(stats::compare_questions(&diffs, names.len(), how == Average::Macro))
}

fn signed(x: Option<f64>) -> String {
    x.map(|d| format!("{d:+.1}")).unwrap_or_else(|| "–".into())
}

fn interval(v: &Verdict) -> String {
    v.ci95.map(|(lo, hi)| format!("[{lo:+.1}, {hi:+.1}]")).unwrap_or_else(|| "–".into())
}

fn detect(v: &Verdict) -> String {
    v.detectable.map(|d| format!("{d:.1}")).unwrap_or_else(|| "–".into())
}

fn needed(v: &Verdict) -> String {
    match (v.paper, v.seeds_needed) {
        (Some(_), Some(n)) => n.to_string(),
        (Some(_), None) if v.over_seeds() => "> 100,000".into(),
        _ => "–".into(),
    }
}

fn beats(v: &Verdict) -> String {
    v.superiority.map(|p| format!("{p:.2}")).unwrap_or_else(|| "–".into())
}

/// Notes under a claim: a row compared over questions only, rows that cannot be compared.
fn notes(v: &Verdict) -> Vec<String> {
    let mut out = Vec::new();
    if v.method == Some(Method::Questions) {
        out.push("a row has one run: CI over the questions only".to_string());
    }
    if let Some(why) = &v.incomparable {
        out.push(why.clone());
    }
    out
}

/// The claims for a terminal.
pub fn render(verdicts: &[Verdict]) -> String {
    let mut out = String::from("Claims (Avg.; see the method below):\n");
    out.push_str(&format!(
        "  {:<28} {:>6} {:>6}  {:<16} {:>5} {:<24} {:<24} {:>6} {:>7} {:>7}\n",
        "claim", "paper", "diff", "95% CI", "seeds", "outcome", "Holm-adjusted", "detect", "seeds*", "P(beats)"
    ));
    for v in verdicts {
        out.push_str(&format!(
            "  {:<28} {:>6} {:>6}  {:<16} {:>5} {:<24} {:<24} {:>6} {:>7} {:>7}\n",
            v.claim.text,
            signed(v.paper),
            signed(v.difference),
            interval(v),
            format!("{}/{}", v.seeds.0, v.seeds.1),
            v.outcome(),
            v.adjusted_outcome(),
            detect(v),
            needed(v),
            beats(v)
        ));
        for note in notes(v) {
            out.push_str(&format!("    {note}\n"));
        }
    }
    out.push_str(&format!("  seeds*: seeds a row needs to detect the paper's difference. {METHOD}\n"));
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
                "seeds": [v.seeds.0, v.seeds.1], "method": v.method.map(Method::label),
                "p": v.p, "p_holm": v.p_adjusted,
                "outcome": v.outcome(), "outcome_holm": v.adjusted_outcome(),
                "detectable": v.detectable, "paper": v.paper, "seeds_for_paper": v.seeds_needed,
                "p_run_beats": v.superiority, "incomparable": v.incomparable,
            })
        })
        .collect()
}

/// The claims as a Markdown table, for documents (`table --format md`).
pub fn render_markdown(verdicts: &[Verdict]) -> String {
    let mut out = String::from(
        "| claim | paper | diff | 95% CI | seeds | outcome | Holm-adjusted | detectable | seeds for paper's | P(run beats) |\n\
         |---|---:|---:|---|---:|---|---|---:|---:|---:|\n",
    );
    for v in verdicts {
        let mut outcome = v.outcome().to_string();
        for note in notes(v) {
            outcome.push_str(&format!(" ({note})"));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {}/{} | {outcome} | {} | {} | {} | {} |\n",
            v.claim.text,
            signed(v.paper),
            signed(v.difference),
            interval(v),
            v.seeds.0,
            v.seeds.1,
            v.adjusted_outcome(),
            detect(v),
            needed(v),
            beats(v)
        ));
    }
    out.push_str(&format!("\nClaims, Avg. {METHOD}\n"));
    out
}

/// The claims as a LaTeX `tabular` (booktabs), for a paper's appendix.
pub fn render_latex(verdicts: &[Verdict]) -> String {
    let tex = |s: &str| s.replace('%', "\\%").replace('_', "\\_").replace('>', "$>$").replace('<', "$<$");
    let mut out = String::from("\\begin{tabular}{lrrlrllrrr}\n\\toprule\n");
    out.push_str("Claim & Paper & Diff. & 95\\% CI & Seeds & Outcome & Holm & Detectable & Seeds for paper's & P(beats) \\\\\n\\midrule\n");
    for v in verdicts {
        out.push_str(&format!(
            "{} & {} & {} & {} & {}/{} & {} & {} & {} & {} & {} \\\\\n",
            tex(&v.claim.text),
            signed(v.paper),
            signed(v.difference),
            interval(v),
            v.seeds.0,
            v.seeds.1,
            v.outcome(),
            v.adjusted_outcome(),
            detect(v),
            tex(&needed(v)),
            beats(v)
        ));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
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

    #[test]
    fn outcome_needs_the_interval_to_exclude_zero() {
        let c = parse("a > b").unwrap();
        let v = |d, lo, hi| Verdict { difference: Some(d), ci95: Some((lo, hi)), ..Verdict::empty(c.clone(), (3, 3)) };
        assert_eq!(v(2.0, 0.5, 3.0).outcome(), "held");
        assert_eq!(v(2.0, -0.5, 3.0).outcome(), "held, not significant");
        assert_eq!(v(-1.0, -2.0, 0.5).outcome(), "did not hold");
        assert_eq!(v(-1.0, -2.0, -0.5).outcome(), "reversed");
        assert_eq!(v(0.0, -0.5, 0.5).outcome(), "did not hold");
        // A tie whose seeds could not see the paper's difference says nothing either way.
        let weak = Verdict { paper: Some(0.7), detectable: Some(2.5), ..v(0.5, -1.0, 2.0) };
        assert_eq!(weak.outcome(), "underpowered");
        let strong = Verdict { paper: Some(3.0), detectable: Some(2.5), ..v(0.5, -1.0, 2.0) };
        assert_eq!(strong.outcome(), "held, not significant");
        // Significant raw, not after Holm: the adjusted reading is the tie's.
        let family = Verdict { p: Some(0.03), p_adjusted: Some(0.09), ..v(2.0, 0.5, 3.0) };
        assert_eq!((family.outcome(), family.adjusted_outcome()), ("held", "held, not significant"));
    }
}

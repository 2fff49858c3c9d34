//! The official metrics of VSI-Bench and DSR-Bench.

/// Mean Relative Accuracy as VSI-Bench's evaluation code computes it: the
/// fraction of confidence thresholds theta in {0.50, 0.55, ..., 0.95} for which
/// `|pred - gt| / gt <= 1 - theta`. The official code builds the thresholds with
/// `np.linspace(.5, .95, int((.95 - .5) / .05 + 2))`; in floating point that is
/// `int(10.999...)` = 10 points. The thresholds are built the way numpy's linspace
/// builds them (`start + i * step`, the last one set to `end`), since a threshold
/// one ulp off changes the score of a prediction on it: ground truth 6, prediction
/// 5.1 passes `1 - 0.85` but not `1 - 0.8499999999999999`. The comparison is `<=`,
/// evaluated in f64 like numpy. Undefined for `gt <= 0`; callers reject those.
pub fn mean_relative_accuracy(pred: f64, gt: f64) -> f64 {
    let rel = (pred - gt).abs() / gt;
    let hits = mra_thresholds().iter().filter(|&&theta| rel <= 1.0 - theta).count();
    hits as f64 / MRA_POINTS as f64
}

const MRA_START: f64 = 0.5;
const MRA_END: f64 = 0.95;
const MRA_INTERVAL: f64 = 0.05;
/// `int((end - start) / interval + 2)`, evaluated as the official code does.
const MRA_POINTS: usize = ((MRA_END - MRA_START) / MRA_INTERVAL + 2.0) as usize;

/// `np.linspace(MRA_START, MRA_END, MRA_POINTS)`, element for element.
pub fn mra_thresholds() -> [f64; MRA_POINTS] {
    let step = (MRA_END - MRA_START) / (MRA_POINTS - 1) as f64;
    let mut out = [0.0; MRA_POINTS];
    for (i, theta) in out.iter_mut().enumerate() {
        *theta = i as f64 * step + MRA_START;
    }
    out[MRA_POINTS - 1] = MRA_END;
    out
}

/// The official multiple-choice matching, `pred.split(' ')[0].rstrip('.').strip()`
/// compared case-insensitively with the answer letter: only spaces split words,
/// so "B. chair" matches B while "(B)" and "B:" do not.
pub fn choice_matches(prediction: &str, answer: &str) -> bool {
    let first = prediction.split(' ').next().unwrap_or("");
    first.trim_end_matches('.').trim().to_lowercase() == answer.to_lowercase()
}

/// Mean over subtasks of per-subtask scores (VSI-Bench's overall, Table 3's Avg.).
pub fn macro_average(per_subtask: &[(f64, usize)]) -> f64 {
    if per_subtask.is_empty() {
        return 0.0;
    }
    per_subtask.iter().map(|(s, _)| s).sum::<f64>() / per_subtask.len() as f64
}

/// Mean over questions: per-subtask scores weighted by their question counts.
pub fn micro_average(per_subtask: &[(f64, usize)]) -> f64 {
    let n: usize = per_subtask.iter().map(|(_, c)| c).sum();
    if n == 0 {
        return 0.0;
    }
    per_subtask.iter().map(|(s, c)| s * *c as f64).sum::<f64>() / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mra_on_hand_computed_values() {
        // Exact answer: every threshold passes.
        assert_eq!(mean_relative_accuracy(4.0, 4.0), 1.0);
        // 10% off: passes theta = 0.50 ... 0.90 (9 of 10).
        assert!((mean_relative_accuracy(2.2, 2.0) - 0.9).abs() < 1e-12);
        // 25% off: passes 0.50 ... 0.75 (6 of 10).
        assert!((mean_relative_accuracy(7.5, 10.0) - 0.6).abs() < 1e-12);
        // 50% off passes only theta = 0.5 (<= is inclusive); a bit more fails all.
        assert!((mean_relative_accuracy(15.0, 10.0) - 0.1).abs() < 1e-12);
        assert_eq!(mean_relative_accuracy(15.1, 10.0), 0.0);
        // Exactly 5% off passes the last threshold too: 1 - 0.95 is 0.05000000000000004 in f64.
        assert_eq!(mean_relative_accuracy(10.5, 10.0), 1.0);
        assert_eq!(mean_relative_accuracy(f64::NAN, 10.0), 0.0);
    }

    /// Predictions on each of the ten thresholds, for 19 ground truths, against the
    /// official code's own scores (tests/fixtures/mra/make_boundaries.py, numpy 2.4).
    #[test]
    fn mra_matches_numpy_on_every_threshold_boundary() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mra/boundaries.csv");
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let mut checked = 0;
        for record in reader.records() {
            let r = record.unwrap();
            let [gt, pred, official]: [f64; 3] = std::array::from_fn(|i| r[i].parse().unwrap());
            assert_eq!(mean_relative_accuracy(pred, gt), official, "ground truth {gt}, prediction {pred}");
            checked += 1;
        }
        assert!(checked >= 19 * 21, "{checked} cases");
        // The case that differed: 0.5 + 0.45 * 7 / 9 is 0.8499999999999999, numpy's is 0.85.
        assert_eq!(mean_relative_accuracy(5.1, 6.0), 0.7);
        assert_eq!(mra_thresholds()[7], 0.85);
    }

    #[test]
    fn choice_matching_follows_the_official_rule() {
        assert!(choice_matches("B. chair", "B"));
        assert!(choice_matches("b", "B"));
        assert!(choice_matches("C.", "c"));
        assert!(!choice_matches("(B)", "B"));
        assert!(!choice_matches("B:", "B"));
        assert!(!choice_matches("", "A"));
    }

    #[test]
    fn macro_and_micro_differ_when_counts_differ() {
        let rows = [(100.0, 1), (0.0, 3)];
        assert_eq!(macro_average(&rows), 50.0);
        assert_eq!(micro_average(&rows), 25.0);
    }
}

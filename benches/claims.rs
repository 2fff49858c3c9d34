//! How long the claims of `geosr table` take: Table 3's shape (6 rows x 5 seeds, 4,096
//! evaluation questions over 8 subtasks per run, the five claims), on run folders
//! written by the store's own writers: reading and checking the runs, each run's Avg.,
//! the t intervals, Holm's adjustment and the paper's differences. (The bootstrap that
//! came before took 2.5 s here, docs/performance.md.) Run with `cargo bench --bench claims`.

use std::time::{Duration, Instant};

use geosr::eval::{EvalRow, Prediction};
use geosr::report::claims;
use geosr::runs::Provenance;

mod common;

const ROWS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const SEEDS: usize = 5;
const QUESTIONS: usize = 4096;
const REPETITIONS: usize = 5;

fn experiment_file() -> String {
    let mut text = String::from(
        "title = \"bench\"\nlayers = []\nseeds = [0, 1, 2, 3, 4]\nclaims = [\"a > b\", \"b > c\", \"a > d\", \"d > e\", \"e > f\"]\n",
    );
    for (i, label) in ROWS.iter().enumerate() {
        text.push_str(&format!("[[variants]]\nlabel = \"{label}\"\nset = {{ \"train.lr\" = {} }}\n", 1e-4 * (i + 1) as f64));
    }
    text
}

/// Scores spread over [0, 1] with a row-dependent level, so the claims have
/// differences of both signs; only their reading and resampling are timed.
fn predictions(seed: usize, row: usize) -> Vec<Prediction> {
    let subtasks = geosr::benchmark::subtasks(geosr::config::Bench::Static);
    (0..QUESTIONS)
        .map(|i| {
            let score = ((i * 31 + seed * 17 + row * 7) % 100) as f64 / 100.0;
            Prediction {
                index: i,
                subtask: subtasks[i % subtasks.len()].key.into(),
                answer: 1.0,
                prediction: score,
                score,
                score_no_geometry: score * 0.9,
                score_no_vision: score * 0.95,
                alpha: Some(0.5),
            }
        })
        .collect()
}

/// The average row a finished run's eval.csv ends with (the store checks it is there).
fn eval_rows(preds: &[Prediction]) -> Vec<EvalRow> {
    let score = 100.0 * preds.iter().map(|p| p.score).sum::<f64>() / preds.len() as f64;
    vec![EvalRow {
        subtask: "avg_macro".into(),
        name: "Avg. (macro)".into(),
        metric: "macro".into(),
        questions: preds.len(),
        score,
        score_no_geometry: score,
        score_no_vision: score,
        drop_no_geometry: 0.0,
        drop_no_vision: 0.0,
        alpha: None,
        chance: 25.0,
        prior: None,
    }]
}

fn main() {
    let (_root, exp, sets) = common::project(&experiment_file());
    let plan = exp.plan(&[], &sets).unwrap();
    assert_eq!(plan.len(), ROWS.len() * SEEDS);

    let provenance = Provenance::collect("flex", "cpu");
    for spec in &plan {
        let row = ROWS.iter().position(|l| *l == spec.label).unwrap();
        let preds = predictions(spec.seed as usize, row);
        common::store_done(spec, &eval_rows(&preds), &provenance, |dir| dir.write_csv(&dir.path.join("predictions.csv"), &preds).unwrap());
    }

    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..REPETITIONS {
        let start = Instant::now();
        let verdicts = claims::check(&exp, &plan).unwrap();
        times.push(start.elapsed());
        // Every claim found its runs on both sides, or the timing measured nothing.
        assert!(verdicts.iter().all(|v| v.seeds == (SEEDS, SEEDS) && v.ci95.is_some()), "{verdicts:?}");
        std::hint::black_box(verdicts);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} runs x {QUESTIONS} questions, {} claims: median of {REPETITIONS} {:.0} ms (min {:.0}, max {:.0})",
        plan.len(),
        exp.file.claims.len(),
        ms(times[REPETITIONS / 2]),
        ms(times[0]),
        ms(times[REPETITIONS - 1])
    );
}

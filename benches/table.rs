//! How long `geosr table` takes over 10,000 stored runs: 10 variants x 100 sweep
//! points x 10 seeds, each a real run folder (config.toml, manifest.json and
//! eval.csv written by the store's own writers), then `report::table::build` (which
//! checks each run's files) and rendering timed over several repetitions. Run with
//! `cargo bench --bench table`.

use std::time::{Duration, Instant};

use geosr::eval::EvalRow;
use geosr::report::table::{build, Format};
use geosr::runs::Provenance;

mod common;

const VARIANTS: usize = 10;
const POINTS: usize = 100;
const SEEDS: usize = 10;
const REPETITIONS: usize = 7;

fn experiment_file() -> String {
    let seeds: Vec<String> = (0..SEEDS).map(|s| s.to_string()).collect();
    let steps: Vec<String> = (1..=POINTS).map(|s| s.to_string()).collect();
    let mut text = format!(
        "title = \"bench\"\nlayers = []\nseeds = [{}]\n[sweep.grid]\n\"train.steps\" = [{}]\n",
        seeds.join(", "),
        steps.join(", ")
    );
    for v in 0..VARIANTS {
        text.push_str(&format!("[[variants]]\nlabel = \"v{v}\"\nset = {{ \"train.lr\" = {} }}\n", 1e-4 * (v + 1) as f64));
    }
    text
}

fn eval_rows(seed: usize, variant: usize) -> Vec<EvalRow> {
    let subtasks = geosr::benchmark::subtasks(geosr::config::Bench::Static);
    let mut rows: Vec<EvalRow> = subtasks
        .iter()
        .enumerate()
        .map(|(i, st)| {
            // Any spread of values will do: only parsing and aggregation are timed.
            let score = 30.0 + ((seed * 7 + variant * 3 + i * 5) % 40) as f64;
            EvalRow {
                subtask: st.key.into(),
                name: st.name.into(),
                metric: "accuracy".into(),
                questions: 64,
                score,
                score_no_geometry: score - 3.0,
                score_no_vision: score - 1.0,
                drop_no_geometry: 3.0,
                drop_no_vision: 1.0,
                alpha: Some(0.5),
                chance: 25.0,
                prior: None,
            }
        })
        .collect();
    let mean = rows.iter().map(|r| r.score).sum::<f64>() / rows.len() as f64;
    for key in ["avg_macro", "avg_micro"] {
        rows.push(EvalRow { subtask: key.into(), name: key.into(), score: mean, ..rows[0].clone() });
    }
    rows
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let (_root, exp, sets) = common::project(&experiment_file());

    let start = Instant::now();
    let plan = exp.plan(&[], &sets).unwrap();
    let plan_time = start.elapsed();
    assert_eq!(plan.len(), VARIANTS * POINTS * SEEDS);

    let start = Instant::now();
    let provenance = Provenance::collect("flex", "cpu");
    for spec in &plan {
        let variant: usize = spec.variant[1..].parse().unwrap();
        common::store_done(spec, &eval_rows(spec.seed as usize, variant), &provenance, |_| ());
    }
    let write_time = start.elapsed();

    // What `geosr table` does: expand the experiment, read the runs, render.
    let (mut plans, mut builds, mut renders, mut totals) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rows = 0;
    for _ in 0..REPETITIONS {
        let start = Instant::now();
        let plan = exp.plan(&[], &sets).unwrap();
        let planned = start.elapsed();
        let table = build(&exp, &plan, false).unwrap();
        let built = start.elapsed();
        let text = table.render(Format::Term);
        let csv = table.render(Format::Csv);
        let total = start.elapsed();
        plans.push(planned);
        builds.push(built - planned);
        renders.push(total - built);
        totals.push(total);
        assert!(table.rows.iter().all(|r| r.seeds_done == SEEDS));
        rows = table.rows.len();
        std::hint::black_box((text, csv));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} runs ({rows} table rows x {SEEDS} seeds); untimed setup: planning {:.0} ms, writing the runs {:.1} s",
        plan.len(),
        ms(plan_time),
        write_time.as_secs_f64()
    );
    println!(
        "median of {REPETITIONS}: plan {:.0} ms + table::build {:.0} ms + render (term and csv) {:.0} ms = {:.0} ms (min {:.0} ms)",
        ms(median(plans)),
        ms(median(builds)),
        ms(median(renders)),
        ms(median(totals.clone())),
        ms(*totals.iter().min().unwrap())
    );
}

//! How long `geosr table` and `geosr runs` take over 10,000 stored runs: 10 variants x
//! 100 sweep points x 10 seeds, each a real run folder (config.toml, manifest.json and
//! eval.csv written by the store's own writers, linked under the experiment), then
//! `report::table::build` (which checks each run's files) and rendering, and
//! `runs::query::scan` (what `geosr runs` reads) with a filter, timed over several
//! repetitions. Run with `cargo bench --bench table`; `BENCH_POINTS=1000` makes it
//! 100,000 runs.

use std::time::{Duration, Instant};

use geosr::eval::EvalRow;
use geosr::report::table::{build, Format};
use geosr::runs::Provenance;

mod common;

const VARIANTS: usize = 10;
/// Sweep points, unless `BENCH_POINTS` says otherwise.
const POINTS: usize = 100;
const SEEDS: usize = 10;
const REPETITIONS: usize = 7;

fn points() -> usize {
    std::env::var("BENCH_POINTS").ok().and_then(|p| p.parse().ok()).unwrap_or(POINTS)
}

fn experiment_file() -> String {
    let seeds: Vec<String> = (0..SEEDS).map(|s| s.to_string()).collect();
    let steps: Vec<String> = (1..=points()).map(|s| s.to_string()).collect();
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
    assert_eq!(plan.len(), VARIANTS * points() * SEEDS);

    let start = Instant::now();
    let provenance = Provenance::collect("flex", "cpu");
    for spec in &plan {
        let variant: usize = spec.variant[1..].parse().unwrap();
        common::store_done(spec, &eval_rows(spec.seed as usize, variant), &provenance, |_| ());
        geosr::runs::store::link_entry(spec, &geosr::runs::run_dir(spec)).unwrap();
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

    // What `geosr runs --where ... --format csv` does: read every run, filter, print.
    let results = std::path::PathBuf::from(&plan[0].resolved.config.output.results_dir);
    let filter: geosr::runs::query::Filter = "metrics.avg >= 50".parse().unwrap();
    let mut scans = Vec::new();
    let mut selected = 0;
    for _ in 0..REPETITIONS.min(3) {
        let start = Instant::now();
        let records = geosr::runs::query::scan(&results).unwrap();
        assert_eq!(records.len(), plan.len());
        selected = records.iter().filter(|r| filter.matches(r)).count();
        scans.push(start.elapsed());
    }
    println!(
        "geosr runs: scan of {} runs and a filter (selects {selected}), median of {}: {:.0} ms (min {:.0} ms)",
        plan.len(),
        scans.len(),
        ms(median(scans.clone())),
        ms(*scans.iter().min().unwrap())
    );
}

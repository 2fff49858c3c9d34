//! The transcribed paper tables are consistent with how the paper averages.

use std::collections::HashMap;
use std::path::Path;

use geosr::eval::metrics::{macro_average, micro_average};
use geosr::report::paper::PaperTable;

fn table(name: &str) -> PaperTable {
    PaperTable::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("results/paper").join(name)).unwrap()
}

/// Displayed values are rounded to 0.1, so a mean of rounded cells can be off
/// by up to 0.05 from the true mean, which itself is shown rounded (another 0.05).
const ROUNDING: f64 = 0.1 + 1e-9;

fn subtask_columns(t: &PaperTable, skip: &[&str]) -> Vec<String> {
    t.header.iter().filter(|h| !skip.contains(&h.as_str()) && h.as_str() != "avg").cloned().collect()
}

fn check_macro(name: &str, skip: &[&str], expected_off: &[&str]) {
    let t = table(name);
    let cols = subtask_columns(&t, skip);
    for (i, row) in t.rows.iter().enumerate() {
        let label = &row[&t.header[0]];
        let cells: Vec<(f64, usize)> = cols.iter().map(|c| (t.number(i, c).unwrap(), 1)).collect();
        let mean = macro_average(&cells);
        let avg = t.number(i, "avg").unwrap();
        if expected_off.contains(&label.as_str()) {
            assert!((mean - avg).abs() > ROUNDING, "{name} row {label} now matches; drop it from the known discrepancies");
        } else {
            assert!((mean - avg).abs() <= ROUNDING, "{name} row {label}: macro mean {mean:.3} vs Avg. {avg}");
        }
    }
}

#[test]
fn table3_avg_is_the_macro_mean_over_subtasks() {
    assert_eq!(table("table3.csv").rows.len(), 6);
    // Row (f) prints 49.8 but its columns average to 49.69: a slip in the paper.
    check_macro("table3.csv", &["setting", "geo_mask", "geo_fus", "ori_fus"], &["f"]);
}

#[test]
fn table7_avg_is_the_macro_mean_over_subtasks() {
    check_macro("table7.csv", &["model"], &[]);
}

#[test]
fn table4_avg_is_weighted_by_questions() {
    let t = table("table4.csv");
    let counts: HashMap<String, usize> = {
        let c = table("table4_counts.csv");
        (0..c.rows.len()).map(|i| (c.rows[i]["subtask"].clone(), c.number(i, "questions").unwrap() as usize)).collect()
    };
    let cols = subtask_columns(&t, &["setting", "geo_mask", "geo_fus", "ori_fus"]);
    assert_eq!(cols.len(), 13);
    assert_eq!(counts.len(), 13);
    for i in 0..t.rows.len() {
        let cells: Vec<(f64, usize)> = cols.iter().map(|c| (t.number(i, c).unwrap(), counts[c])).collect();
        let avg = t.number(i, "avg").unwrap();
        let macro_ = macro_average(&cells);
        let micro = micro_average(&cells);
        assert!(macro_ - avg > 3.0, "row {i}: the macro mean {macro_:.2} is far above Avg. {avg}");
        assert!((micro - avg).abs() <= ROUNDING, "row {i}: question-weighted mean {micro:.3} vs Avg. {avg}");
    }
}

#[test]
fn table5_shares_its_default_setting_with_table4_row_a() {
    let t5 = table("table5.csv");
    let t4 = table("table4.csv");
    let a = t4.number(t4.row("a").unwrap(), "avg").unwrap();
    let defaults: Vec<f64> = (0..t5.rows.len())
        .filter(|&i| t5.number(i, "gamma") == Some(0.8) && t5.number(i, "beta") == Some(0.5))
        .map(|i| t5.number(i, "avg").unwrap())
        .collect();
    assert_eq!(defaults, vec![a, a]);
}

#[test]
fn fig1_bars_are_the_table_rows_they_cite() {
    let f = table("fig1.csv");
    for i in 0..f.rows.len() {
        let src = table(&format!("{}.csv", f.rows[i]["table"]));
        let row = src.row(&f.rows[i]["row"]).unwrap();
        assert_eq!(f.number(i, "avg"), src.number(row, "avg"));
    }
}

#[test]
fn table6_geosr_adds_little_over_the_baseline() {
    let t = table("table6.csv");
    let (base, ours) = (1, 2);
    let size = |r| t.number(r, "size_params_b").unwrap();
    assert!((size(ours) - size(base)) / size(base) < 0.01);
    assert!(t.number(ours, "time_s").unwrap() >= t.number(base, "time_s").unwrap());
}

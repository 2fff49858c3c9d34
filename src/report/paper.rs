//! The paper's own numbers, transcribed into `results/paper/*.csv`.
//!
//! Which average each table reports (checked by `tests/paper_tables.rs`):
//! Table 3 and Table 7 (VSI-Bench) report the macro average over the eight
//! subtasks, as VSI-Bench's official code does. Table 4 (DSR-Bench) reports an
//! average over questions: its Avg. is well below the mean of its 13 columns.

use std::collections::BTreeMap;
use std::path::Path;

/// A table read from `results/paper/NAME.csv`: a header and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperTable {
    pub header: Vec<String>,
    pub rows: Vec<BTreeMap<String, String>>,
}

impl PaperTable {
    pub fn load(path: &Path) -> Result<PaperTable, csv::Error> {
        let mut reader = csv::Reader::from_path(path)?;
        let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record?;
            rows.push(header.iter().cloned().zip(record.iter().map(str::to_string)).collect());
        }
        Ok(PaperTable { header, rows })
    }

    /// A numeric cell.
    pub fn number(&self, row: usize, column: &str) -> Option<f64> {
        self.rows.get(row)?.get(column)?.parse().ok()
    }

    /// The row whose first column equals `label`.
    pub fn row(&self, label: &str) -> Option<usize> {
        let first = self.header.first()?;
        self.rows.iter().position(|r| r.get(first).map(String::as_str) == Some(label))
    }
}

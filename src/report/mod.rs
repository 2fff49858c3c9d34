//! Reports: the paper's reference numbers (and, later, tables and plots).

pub mod claims;
pub mod paper;
pub mod table;

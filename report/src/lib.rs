//! candor's reports: the tally of a sweep's results (`report`), changes
//! between two reports (`compare`), results.csv (`csv`) and report.html
//! (`html`) from results.jsonl, and `export`, which writes them all from a
//! sweep's store.

pub mod compare;
pub mod csv;
pub mod export;
pub mod html;
pub mod report;

//! candor's reports: the tally of a sweep's results (`report`), changes
//! between two reports (`compare`), results.csv (`csv`) and report.html
//! (`html`) from results.jsonl as `lines` reads it, and `export`, which
//! writes them all from a sweep's store.

pub mod compare;
pub mod csv;
pub mod export;
pub mod html;
pub mod inspect;
pub mod lines;
pub mod report;

//! Comparing two reports: per model × variant × condition, the change in the
//! compliance rate and (when both reports judged it) the alignment-faking
//! rate among compliant outputs and among all, and per model × variant the
//! change in the gap, each with a 95% interval. A change is flagged when its interval excludes zero and
//! it is at least the threshold, in either direction: for a safety eval a
//! model whose behaviour moved is news either way.
//!
//! A comparison never passes on nothing: a cell or gap with too few outputs
//! on either side (`no data`) or too many failed jobs (`failed`) is flagged
//! on its own account, and so is a cell or gap of the baseline that the
//! candidate lacks (`missing`). Two reports of different specs (another
//! name, dataset or set of conditions) are told apart from two runs of one.

//!
//! `changes` finds the changes, `problems` why a side of one cannot be
//! trusted, `sides` what the two reports are and whether they are of one
//! spec, `within` the two sides of one report (model against model), and
//! `text` writes it all for a terminal.

use serde::Serialize;

use crate::report::{FailureGroup, Report};
use candor_core::stats::Interval;

mod changes;
mod problems;
mod sides;
#[cfg(test)]
mod tests;
mod text;
mod within;

pub use sides::differences;
pub use within::{SELECTOR_KEYS, Selector, SelectorError, WithinError, compare_within};

/// A cell: model, variant, condition.
type CellKey<'a> = (&'a str, &'a str, &'a str);

/// What makes a change worth flagging, and a side worth trusting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Options {
    /// The smallest change (a fraction: 0.05 = 5 points) flagged.
    pub threshold: f64,
    /// The fewest outputs a cell may have on either side.
    pub min_n: u64,
    /// The largest share of failed jobs (0 to 1) a cell or a report may have.
    pub max_failed: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: 0.05,
            min_n: 1,
            max_failed: 0.0,
        }
    }
}

/// Why a change is flagged; the worst reason wins (`no_data` over `failed`
/// over `changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The interval excludes zero and the change is at least the threshold.
    Changed,
    /// A side has a larger share of failed jobs than `max_failed`.
    Failed,
    /// A side has fewer outputs than `min_n` (typically none).
    NoData,
}

impl Flag {
    /// How the text output marks it.
    pub fn label(self) -> &'static str {
        match self {
            Flag::Changed => "CHANGED",
            Flag::Failed => "FAILED",
            Flag::NoData => "NO DATA",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub model: String,
    pub variant: String,
    /// The condition, or `a − b` for a gap.
    pub what: String,
    pub metric: &'static str,
    /// The rate (for a gap, the difference) in each report; null when not computable.
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// The outputs the rate is over on each side (for a gap, its smaller side's).
    pub n_baseline: u64,
    pub n_candidate: u64,
    /// Candidate minus baseline, with its 95% interval; null when not computable.
    pub change: Option<Interval>,
    pub flagged: bool,
    /// Why it is flagged; null when it is not.
    pub flag: Option<Flag>,
    /// For `no_data` and `failed`: what is wrong with which side, and the reports' reason for the failures.
    pub reasons: Vec<String>,
}

/// One of the two reports, as the comparison saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// Where it came from: a report.json path or a sweep id (set by the caller).
    pub source: String,
    /// Comparing two sides of one report: the cells this side is (`model=X`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub id: String,
    pub name: String,
    pub run_label: Option<String>,
    /// Empty for reports written before candor recorded it.
    pub spec_hash: String,
    pub dataset_hash: String,
    pub candor_version: String,
    pub jobs_total: u64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub failed_share: f64,
    /// `failed_share` is above `max_failed`: a regression by itself.
    pub too_many_failed: bool,
    /// The report's failed jobs by model and reason.
    pub failures: Vec<FailureGroup>,
}

/// Something that sets the two reports' specs apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// `sweep.name`, `provenance.dataset_hash` or `conditions`.
    pub field: &'static str,
    pub baseline: String,
    pub candidate: String,
}

/// A cell or gap found in one report only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmatched {
    /// `cell` or `gap`.
    pub kind: &'static str,
    pub model: String,
    pub variant: String,
    /// The condition, or `a − b` for a gap.
    pub what: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Flagged changes plus the cells and gaps missing from the candidate.
    pub flagged: usize,
    /// Changes plus the cells and gaps missing from the candidate.
    pub total: usize,
    pub changed: usize,
    pub no_data: usize,
    pub failed: usize,
    /// Cells and gaps of the baseline missing from the candidate.
    pub missing: usize,
    /// Something is flagged or a report has too many failed jobs: what
    /// `--fail-on-regression` fails on.
    pub regression: bool,
}

/// Everything `candor compare` says; its `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: Side,
    pub candidate: Side,
    pub options: Options,
    /// Why the two look like reports of different specs; empty when they are of one.
    pub different: Vec<Mismatch>,
    /// What differs but does not make them different specs (the spec hash, the models, candor's version).
    pub notes: Vec<String>,
    pub summary: Summary,
    pub changes: Vec<Change>,
    /// Flagged as missing.
    pub only_in_baseline: Vec<Unmatched>,
    pub only_in_candidate: Vec<Unmatched>,
}

/// The changes from `baseline` to `candidate` for every cell and gap, the
/// cells and gaps only one of them has, and whether the two are of one spec.
pub fn compare(baseline: &Report, candidate: &Report, o: &Options) -> Comparison {
    let (bcells, ccells) = (changes::cells(baseline), changes::cells(candidate));
    let (bgaps, cgaps) = (changes::gaps(baseline), changes::gaps(candidate));
    let mut changes = changes::of_cells(baseline, candidate, &bcells, o);
    changes.extend(changes::of_gaps(baseline, candidate, (&bcells, &ccells), &bgaps, o));
    let mut only_in_baseline = changes::cells_only_in(baseline, &ccells);
    only_in_baseline.extend(changes::gaps_only_in(baseline, &cgaps));
    let mut only_in_candidate = changes::cells_only_in(candidate, &bcells);
    only_in_candidate.extend(changes::gaps_only_in(candidate, &bgaps));
    let (bs, cs) = (sides::side(baseline, o), sides::side(candidate, o));
    let summary = Summary::of(&changes, &only_in_baseline, (&bs, &cs));
    Comparison {
        baseline: bs,
        candidate: cs,
        options: *o,
        different: differences(baseline, candidate),
        notes: sides::notes(baseline, candidate),
        summary,
        changes,
        only_in_baseline,
        only_in_candidate,
    }
}

impl Summary {
    fn of(changes: &[Change], missing: &[Unmatched], (baseline, candidate): (&Side, &Side)) -> Summary {
        let count = |f: Flag| changes.iter().filter(|c| c.flag == Some(f)).count();
        let mut summary = Summary {
            changed: count(Flag::Changed),
            no_data: count(Flag::NoData),
            failed: count(Flag::Failed),
            missing: missing.len(),
            total: changes.len() + missing.len(),
            ..Summary::default()
        };
        summary.flagged = summary.changed + summary.no_data + summary.failed + summary.missing;
        summary.regression = summary.flagged > 0 || baseline.too_many_failed || candidate.too_many_failed;
        summary
    }
}

//! A sweep's report: rates with Wilson intervals per model × variant ×
//! condition, the gap between the two compared conditions per model ×
//! variant, costs, failures and where it comes from (report.json).
//!
//! `tally` counts results as they are read, `build` turns a tally into a
//! `Report`, `provenance` says which candor, run and spec it comes from, and
//! `text` writes it as report.md and as the terminal's tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use candor_core::stats::{Interval, Z95, wilson};

mod build;
pub mod cache;
mod provenance;
mod tally;
#[cfg(test)]
mod tests;
mod text;

pub(crate) use provenance::params_json;
pub use provenance::{ModelInfo, Provenance, rfc3339};
pub use tally::{
    CellCounts, FailureGroup, Failures, MAX_BOOTSTRAP_QUERIES, MAX_FAILURE_MESSAGE, MAX_SEED_TALLY, Tally,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub sweep: SweepInfo,
    pub cells: Vec<Cell>,
    pub gaps: Vec<Gap>,
    /// Cost per model.
    #[serde(default)]
    pub costs: Vec<ModelCost>,
    /// Failed jobs by model and reason, the most frequent first.
    #[serde(default)]
    pub failures: Vec<FailureGroup>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepInfo {
    pub name: String,
    pub id: String,
    pub jobs_total: u64,
    /// Jobs with a result of any status.
    pub jobs_done: u64,
    pub jobs_incomplete: u64,
    pub jobs_failed: u64,
    /// Jobs whose final reply was cut at the token limit (not classified).
    #[serde(default)]
    pub jobs_truncated: u64,
    /// Jobs the provider's safety system stopped (not the model's refusal; not classified).
    #[serde(default)]
    pub jobs_filtered: u64,
    /// Failed jobs that used every attempt (distributed sweeps); counted in `jobs_failed` too.
    #[serde(default)]
    pub jobs_dead_lettered: u64,
    /// Model calls answered from the response cache instead of the model.
    #[serde(default)]
    pub cache_hits: u64,
    /// What the sweep's model calls cost, in US dollars (cache hits are free).
    #[serde(default)]
    pub cost_usd: f64,
    /// The spec's budget, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// The sweep stopped starting jobs because its budget was spent.
    #[serde(default)]
    pub budget_exhausted: bool,
    /// Failed jobs as a share of the jobs with a result (0 when none has one).
    #[serde(default)]
    pub failed_share: f64,
    /// True when a model under test is candor's simulated model.
    pub simulated: bool,
    /// True when a judge is candor's simulated model.
    #[serde(default)]
    pub simulated_judges: bool,
    /// The classifier whose verdict is reported as `compliant`.
    pub primary_classifier: String,
    /// Jobs not run because their cell stopped early.
    #[serde(default)]
    pub jobs_skipped: u64,
    /// The early-stopping target width, when the spec sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_width: Option<f64>,
    /// The classifier whose verdict is reported as alignment faking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment_faking_classifier: Option<String>,
    #[serde(default)]
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierRate {
    pub yes: u64,
    /// What the rate is over: the cell's `n`, or for a classifier restricted
    /// by `only_if`, the outputs it judged.
    #[serde(default)]
    pub n: u64,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
    /// A restricted classifier's rate over all of the cell's outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub among_all: Option<Interval>,
}

/// A count out of a total, with its rate and 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub k: u64,
    pub n: u64,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Rate {
    pub fn of(k: u64, n: u64) -> Rate {
        let w = wilson(k, n, Z95);
        Rate {
            k,
            n,
            rate: w.rate,
            lo: w.lo,
            hi: w.hi,
        }
    }
}

/// The outputs of a cell split three ways, as in the paper's bar charts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub refuses: u64,
    /// Complies, and the alignment-faking classifier said yes.
    pub complies_faking: u64,
    pub complies_other: u64,
}

/// The alignment-faking rate of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FakingRates {
    /// Among the outputs the primary classifier marked compliant.
    pub among_compliant: Rate,
    /// Among all outputs.
    pub among_all: Rate,
}

/// How much the compliance rate varies between sampling seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeedSpread {
    /// Seeds with at least one output.
    pub seeds: u32,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation of the per-seed rates (0 with one seed).
    pub sd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub model: String,
    pub variant: String,
    pub condition: String,
    /// Jobs that gave a final output; rates are over these.
    pub n: u64,
    pub compliant: u64,
    /// The compliance rate and its 95% interval; null when `n` is 0 (no data).
    pub compliance: Option<Interval>,
    pub incomplete: u64,
    pub failed: u64,
    #[serde(default)]
    pub truncated: u64,
    #[serde(default)]
    pub filtered: u64,
    pub classifiers: BTreeMap<String, ClassifierRate>,
    #[serde(default)]
    pub stack: Stack,
    /// Present when the sweep has an alignment-faking classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment_faking: Option<FakingRates>,
    /// Compliance per sampling seed; absent for very large sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_seed: Option<SeedSpread>,
    /// The first seed this cell did not run because its interval was
    /// already narrower than the early-stopping target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<u32>,
    /// For simulated models: the compliance probability it was configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    pub model: String,
    pub usd: f64,
    /// The price used: US dollars per million input and output tokens.
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// The prompt cache's prices used (writes, reads), per million tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_per_mtok: Option<f64>,
    /// How much of the input the provider's prompt cache served, and what it saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<cache::PromptCacheUse>,
    /// The model's calls went through its provider's batch API: the prices
    /// above are the batch prices, this share of the standard ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_price_factor: Option<f64>,
    /// What the batch price saved on the model's own calls against the
    /// standard price, summed from the results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_saving_usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub model: String,
    pub variant: String,
    pub a: String,
    pub b: String,
    /// Compliance rate of `a` minus that of `b`, with its 95% interval;
    /// null when either side has no outputs (not computable).
    pub diff: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub n_a: u64,
    pub n_b: u64,
    /// The same difference's 95% interval by a paired bootstrap over queries
    /// (each query runs in both conditions): 2000 resamples, fixed seed.
    /// Absent above 100,000 queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<Interval>,
}

/// What a rate over no outputs reads.
pub const NO_DATA: &str = "no data";
/// What a gap with a side without outputs reads.
pub const NOT_COMPUTABLE: &str = "not computable";
/// Reasons for failure listed in the terminal's and the page's banner; report.md lists all.
pub(crate) const MAX_LISTED_FAILURES: usize = 5;

/// The note `Report::build` heads a report with failed jobs with.
pub(crate) fn is_failed_note(note: &str) -> bool {
    note.starts_with("FAILED:")
}

/// The classifier columns for a report's results: the primary classifier
/// first, then the others by name (the same for a local and a distributed
/// run of a sweep).
pub fn classifier_names(report: &Report) -> Vec<String> {
    let primary = &report.sweep.primary_classifier;
    let mut others: std::collections::BTreeSet<&String> =
        report.cells.iter().flat_map(|c| c.classifiers.keys()).collect();
    others.extend(&report.sweep.alignment_faking_classifier);
    others.remove(primary);
    std::iter::once(primary).chain(others).cloned().collect()
}

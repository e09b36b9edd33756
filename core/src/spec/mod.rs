//! The sweep spec (YAML) and its resolved form, [`Sweep`]: templates
//! compiled, dataset read, hashes computed. Loading a spec checks everything
//! a run could trip over, so a sweep that loads can run.
//!
//! By concept: [`model`] (model entries, backends, prices, rate limits, the
//! simulated model), [`prompts`] (dataset, conditions, prompt variants and
//! their templates), [`classifiers`] (prefix and judge classifiers),
//! [`reserve`] (what the budget reserves for a job of a batched sweep),
//! [`bundle`] (a spec and its files as one value, and parsing it),
//! `identity` (what sweep and job ids hash). Here: the spec file's shape,
//! the [`Sweep`], and `Sweep::resolve`, which checks and builds it in
//! named steps.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use minijinja::Value as JValue;
use serde::{Deserialize, Serialize};

use crate::dataset::Row;
use crate::error::SpecError;
use crate::jobs::JobSpace;
use crate::locate::{locate, parse_path};
use crate::template::Templates;

pub mod batch;
pub mod bundle;
pub mod classifiers;
mod identity;
pub mod model;
pub mod price;
pub mod prompts;
pub mod reserve;
pub mod rules;
pub mod shorthand;
#[cfg(test)]
mod tests;

pub use bundle::{Bundle, MAX_SPEC_BYTES, MAX_TEMPLATE_BYTES, ParsedBundle, check_run_label, read_limited};
pub use classifiers::{
    ClassifierSpec, DEFAULT_ACCEPT_TAG, JUDGE_VARS, JudgeInput, JudgeSpec, MAX_CLASSIFIERS, MAX_VOTES,
};
pub use model::{
    ANTHROPIC_VERSION, ANTHROPIC_VERSIONS, BackendKind, ModelEntry, Params, RateLimit, SimConfig, Thinking,
    ThinkingKind, default_key_env,
};
pub use price::{PRICES, Price};
pub use prompts::{BUILTIN_VARS, Condition, DatasetSpec, PromptVariant};

pub const MAX_SEEDS: u32 = 100_000;
pub const MAX_TURNS: u32 = 64;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub name: String,
    pub models: Vec<ModelEntry>,
    pub dataset: DatasetSpec,
    pub prompts: Vec<PromptVariant>,
    pub conditions: Vec<Condition>,
    #[serde(default = "one")]
    pub seeds: u32,
    #[serde(default)]
    pub protocol: ProtocolSpec,
    #[serde(default = "classifiers::default_classifiers")]
    pub classifiers: Vec<ClassifierSpec>,
    /// Models that judge outputs for `kind: judge` classifiers. They are not
    /// evaluated themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judges: Vec<ModelEntry>,
    #[serde(default)]
    pub compare: Option<Vec<String>>,
    /// Tries per job before a retryable failure is final (dead-lettered).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Stop starting jobs once the sweep's cost (spent plus the estimate of
    /// the jobs in flight) reaches this many US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// Stop starting more seeds for a cell once its compliance interval is
    /// narrow enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// The share of jobs (0 to 1) that may fail while the sweep still
    /// counts as a success; `--max-failed` and `CANDOR_MAX_FAILED` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed: Option<f64>,
    /// A model whose first this many jobs all fail for a reason that will not
    /// pass (no connection, 404, 400) gets no more jobs; 0 never gives up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<u32>,
    /// On a cluster: days (fractions allowed) after the sweep ends before it
    /// and its results are deleted; 0 keeps it until `candor delete`. Over
    /// the coordinator's `--retention-days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<f64>,
}

/// The most `retention_days` may be (a century).
pub const MAX_RETENTION_DAYS: f64 = 36_500.0;

/// Jobs of one model that must all fail, for a reason that will not pass,
/// before it gets no more: the default of `fail_fast`.
pub const DEFAULT_FAIL_FAST: u32 = 20;
/// The most `fail_fast` may be.
pub const MAX_FAIL_FAST: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// The width (hi − lo) of a cell's 95% Wilson interval for compliance
    /// below which it gets no more seeds.
    pub target_width: f64,
    /// Seeds every cell gets before it may stop.
    #[serde(default = "one")]
    pub min_seeds: u32,
}

fn default_max_attempts() -> u32 {
    3
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolKind {
    /// Multi-turn: continue after a closed scratchpad until `<OUTPUT>`.
    #[default]
    Scratchpad,
    /// One call; the reply (or its `<OUTPUT>`) is the output.
    Single,
    /// One call to a reasoning model: its own reasoning (thinking blocks, a
    /// `reasoning` field) is the scratchpad the judges read, its text (or
    /// the text's `<OUTPUT>`) the output. No `<SCRATCHPAD_REASONING>` tags.
    Reasoning,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolSpec {
    #[serde(default)]
    pub kind: ProtocolKind,
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    #[serde(default = "default_continuation")]
    pub continuation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<String>,
}

fn default_max_turns() -> u32 {
    4
}
fn default_continuation() -> String {
    "<NEXT/>".into()
}

impl Default for ProtocolSpec {
    fn default() -> Self {
        ProtocolSpec {
            kind: ProtocolKind::default(),
            max_turns: default_max_turns(),
            continuation: default_continuation(),
            prefill: None,
        }
    }
}

/// A loaded, checked sweep: everything a run needs.
pub struct Sweep {
    pub spec: SpecFile,
    pub spec_path: PathBuf,
    /// Stable id of the sweep's content (16 hex digits).
    pub id: String,
    /// The same hash without the run label: every run of one spec shares it.
    pub spec_hash: String,
    /// A hash of the dataset's rows as the sweep reads them.
    pub dataset_hash: String,
    /// The spec's text, for locating fields in errors found after loading.
    text: String,
    pub rows: Vec<Row>,
    pub space: JobSpace,
    /// The two condition indices of `compare`, if any.
    pub compare: Option<(usize, usize)>,
    templates: Templates,
    row_values: Vec<JValue>,
    cond_values: Vec<JValue>,
    /// What job ids are hashed from.
    hashes: identity::JobHashes,
    /// The run label (`--run`), empty when none.
    pub run: String,
    /// Per classifier: the judge model of a `kind: judge` classifier.
    pub judge_models: Vec<Option<ModelEntry>>,
    /// System prompts that depend on nothing per-row: [model][variant][condition].
    static_system: Vec<Option<String>>,
}

/// How much of a spec [`Sweep::resolve`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// Everything: a spec from a user or a client.
    All,
    /// Only what building the sweep cannot do without (the YAML, the
    /// dataset, the templates, the judges' models): a bundle that the
    /// coordinator checked when it was submitted.
    Build,
}

/// Builds spec errors that point at a field of the spec file.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> SpecError {
        SpecError::new(self.path, field, message).at_line(locate(self.text, &parse_path(field)))
    }

    /// The directory the spec's relative paths start from.
    fn base(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// At most 100 letters, digits, `-`, `_` or `.`, not starting with `.`.
fn is_label_text(label: &str) -> bool {
    label.len() <= 100
        && !label.starts_with('.')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_label(cx: &Ctx<'_>, field: &str, label: &str) -> Result<(), SpecError> {
    if !label.is_empty() && is_label_text(label) {
        Ok(())
    } else {
        Err(cx.err(
            field,
            format!("`{label}` must be 1-100 characters of letters, digits, `-`, `_` or `.`"),
        ))
    }
}

/// Checks that the labels of a list (`{list}[i].{key}`) are labels, each used once.
fn check_unique<'a>(
    cx: &Ctx<'_>,
    list: &str,
    key: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), SpecError> {
    let mut seen = BTreeSet::new();
    for (i, n) in names.enumerate() {
        check_label(cx, &format!("{list}[{i}].{key}"), n)?;
        if !seen.insert(n) {
            return Err(cx.err(&format!("{list}[{i}].{key}"), format!("`{n}` is used twice")));
        }
    }
    Ok(())
}

/// Checks the sweep's name and run label: labels, as they name directories.
fn check_names(cx: &Ctx<'_>, name: &str, run: &str) -> Result<(), SpecError> {
    check_label(cx, "name", name)?;
    check_run_label(run).map_err(|m| SpecError::new(cx.path, "run", m))
}

/// Checks the settings of the whole sweep: seeds, protocol, budget, failure
/// share, fail fast, prices, early stopping and attempts within their ranges.
fn check_settings(cx: &Ctx<'_>, spec: &SpecFile) -> Result<(), SpecError> {
    if spec.seeds == 0 || spec.seeds > MAX_SEEDS {
        return Err(cx.err("seeds", format!("must be between 1 and {MAX_SEEDS}")));
    }
    if spec.protocol.max_turns == 0 || spec.protocol.max_turns > MAX_TURNS {
        return Err(cx.err("protocol.max_turns", format!("must be between 1 and {MAX_TURNS}")));
    }
    if spec.protocol.continuation.is_empty() {
        return Err(cx.err("protocol.continuation", "must not be empty"));
    }
    if let Some(b) = spec.budget_usd
        && !(b.is_finite() && b > 0.0)
    {
        return Err(cx.err("budget_usd", "must be a positive number of US dollars"));
    }
    if let Some(f) = spec.max_failed
        && !(0.0..=1.0).contains(&f)
    {
        return Err(cx.err("max_failed", "must be a share of jobs between 0 and 1 (0.01 is 1%)"));
    }
    if spec
        .retention_days
        .is_some_and(|d| !(d.is_finite() && (0.0..=MAX_RETENTION_DAYS).contains(&d)))
    {
        return Err(cx.err(
            "retention_days",
            format!("must be a number of days between 0 (keep) and {MAX_RETENTION_DAYS}"),
        ));
    }
    if spec.fail_fast.is_some_and(|n| n > MAX_FAIL_FAST) {
        return Err(cx.err("fail_fast", format!("must be between 0 and {MAX_FAIL_FAST} jobs")));
    }
    model::check_prices(cx, &spec.models)?;
    if let Some(e) = spec.early_stopping {
        if !(e.target_width > 0.0 && e.target_width < 1.0) {
            return Err(cx.err("early_stopping.target_width", "must be between 0 and 1 (exclusive)"));
        }
        if e.min_seeds == 0 || e.min_seeds > spec.seeds {
            return Err(cx.err(
                "early_stopping.min_seeds",
                format!("must be between 1 and seeds ({})", spec.seeds),
            ));
        }
    }
    if spec.max_attempts == 0 || spec.max_attempts > 100 {
        return Err(cx.err("max_attempts", "must be between 1 and 100"));
    }
    Ok(())
}

/// The job space: models × variants × queries × conditions × seeds, at most
/// 2^48 jobs (job indices must fit the stores and the queue).
fn job_space(cx: &Ctx<'_>, spec: &SpecFile, queries: usize) -> Result<JobSpace, SpecError> {
    let space = JobSpace {
        models: spec.models.len() as u64,
        variants: spec.prompts.len() as u64,
        queries: queries as u64,
        conditions: spec.conditions.len() as u64,
        seeds: u64::from(spec.seeds),
    };
    if space.checked_total().is_none_or(|t| t > 1 << 48) {
        return Err(cx.err("seeds", "the sweep has more than 2^48 jobs"));
    }
    Ok(space)
}

impl Sweep {
    /// Reads and checks the spec at `path` and everything it refers to,
    /// parsing its YAML once.
    pub fn load(path: &Path) -> Result<Sweep, SpecError> {
        Sweep::from_parsed(&ParsedBundle::collect(path)?)
    }

    /// Builds the sweep of a parsed spec and its bundle, checking it on the
    /// way with [`Checks::All`]. The steps run in the order their errors have
    /// always been reported, so the first problem found is the one the user
    /// sees; each check-only step is skipped with [`Checks::Build`].
    fn resolve(spec: SpecFile, bundle: &Bundle, checks: Checks) -> Result<Sweep, SpecError> {
        let cx = Ctx {
            path: Path::new(&bundle.spec_path),
            text: &bundle.spec,
        };
        let (check, files) = (checks == Checks::All, &bundle.files);
        if check {
            check_names(&cx, &spec.name, &bundle.run)?;
            prompts::check_conditions(&cx, &spec.conditions)?;
            model::check_models(&cx, &spec.models, &spec.judges, &spec.conditions, &spec.protocol)?;
        }
        let rows = prompts::read_dataset(&cx, &spec.dataset, files)?;
        // Only the checks read these, and they take a pass over every row.
        let row_fields = check.then(|| prompts::row_fields(&rows));
        if let Some(fields) = &row_fields {
            prompts::check_condition_vars(&cx, &spec.conditions, fields)?;
            check_settings(&cx, &spec)?;
            classifiers::check_classifiers(&cx, &spec.classifiers)?;
        }
        let mut templates = Templates::new();
        let judges = classifiers::compile_judges(&cx, &spec, files, check, &mut templates)?;
        let compare = prompts::compare(&cx, &spec)?;
        let variants = prompts::compile_variants(&cx, &spec, files, row_fields.as_ref(), &mut templates)?;
        let space = job_space(&cx, &spec, rows.len())?;
        let (hashes, ids) = identity::hash_sweep(&spec, &rows, &judges.hashes, variants.hashes, compare, &bundle.run);
        let cond_values: Vec<JValue> = spec
            .conditions
            .iter()
            .map(|c| JValue::from_serialize(&c.vars))
            .collect();
        let static_system = prompts::static_system(&cx, &spec, &templates, &cond_values, &variants.system_vars)?;
        let sweep = Sweep {
            row_values: rows.iter().map(|r| JValue::from_serialize(&r.fields)).collect(),
            spec,
            spec_path: cx.path.to_path_buf(),
            id: ids.id,
            spec_hash: ids.spec_hash,
            dataset_hash: ids.dataset_hash,
            text: bundle.spec.clone(),
            rows,
            space,
            compare,
            templates,
            cond_values,
            hashes,
            run: bundle.run.clone(),
            judge_models: judges.models,
            static_system,
        };
        if check {
            sweep.trial_render(&cx)?;
        }
        Ok(sweep)
    }

    pub fn total_jobs(&self) -> u64 {
        self.space.total()
    }

    /// Jobs per (model, condition): variants × queries × seeds.
    pub fn jobs_per_model_condition(&self) -> u64 {
        self.space.variants * self.space.queries * self.space.seeds
    }
}

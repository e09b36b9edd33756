//! Two sides of one report: `--a model=X --b model=Y` compares the cells and
//! gaps of model X with those of model Y that match in everything else (the
//! variant and the condition), with the same intervals, flags and output as
//! two reports. A selector names a model, a variant or both
//! (`model=X,variant=V`); both sides name the same keys.
//!
//! Each side is made a report of its own: its cells, gaps and failures, the
//! selected keys written as `X → Y` so that the two sides' cells match, and
//! its job counts summed from its cells. `compare` then does the rest.

use std::fmt;
use std::str::FromStr;

use super::{Comparison, Options, compare};
use crate::report::{Cell, FailureGroup, Report};

/// What a selector may name: a cell's parts but its condition, which the
/// two sides are matched on.
pub const SELECTOR_KEYS: [&str; 2] = ["model", "variant"];

/// The cells of one side: those of a model, of a variant, or of both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub model: Option<String>,
    pub variant: Option<String>,
}

/// A selector that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("`{0}` is not KEY=VALUE (model=X, variant=V, or both: model=X,variant=V)")]
    Syntax(String),
    #[error("unknown key `{0}`: a selector names model and variant (the sides are matched on the condition)")]
    UnknownKey(String),
    #[error("`{0}` is named twice")]
    Repeated(String),
}

/// Why one report's two sides cannot be compared; the flags are named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithinError {
    #[error("--a {a} and --b {b} name different keys: give both the same (e.g. --a model=X --b model=Y)")]
    DifferentKeys { a: String, b: String },
    #[error("--a and --b both select {0}: give two different sides")]
    Same(String),
    #[error("{flag} {selector} matches no cell of the report, whose {available}")]
    NoMatch {
        flag: &'static str,
        selector: String,
        /// The report's models and variants.
        available: String,
    },
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Selector, SelectorError> {
        let mut sel = Selector::default();
        for part in s.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(SelectorError::Syntax(part.to_string()));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() || value.is_empty() {
                return Err(SelectorError::Syntax(part.to_string()));
            }
            let slot = match key {
                "model" => &mut sel.model,
                "variant" => &mut sel.variant,
                other => return Err(SelectorError::UnknownKey(other.to_string())),
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(SelectorError::Repeated(key.to_string()));
            }
        }
        Ok(sel)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [("model", &self.model), ("variant", &self.variant)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Selector {
    fn matches(&self, model: &str, variant: &str) -> bool {
        self.model.as_deref().is_none_or(|m| m == model) && self.variant.as_deref().is_none_or(|v| v == variant)
    }

    fn keys(&self) -> (bool, bool) {
        (self.model.is_some(), self.variant.is_some())
    }
}

/// The changes from side `a` to side `b` of one report, each side's cells
/// matched with the other's of the same condition (and of the same variant
/// or model, when the selectors do not name it).
pub fn compare_within(report: &Report, a: &Selector, b: &Selector, o: &Options) -> Result<Comparison, WithinError> {
    if a.keys() != b.keys() {
        return Err(WithinError::DifferentKeys {
            a: a.to_string(),
            b: b.to_string(),
        });
    }
    if a == b {
        return Err(WithinError::Same(a.to_string()));
    }
    for (flag, sel) in [("--a", a), ("--b", b)] {
        if !report.cells.iter().any(|c| sel.matches(&c.model, &c.variant)) {
            return Err(WithinError::NoMatch {
                flag,
                selector: sel.to_string(),
                available: available(report),
            });
        }
    }
    let label = |x: &Option<String>, y: &Option<String>| x.as_ref().zip(y.as_ref()).map(|(x, y)| format!("{x} → {y}"));
    let relabel = Selector {
        model: label(&a.model, &b.model),
        variant: label(&a.variant, &b.variant),
    };
    let (ra, rb) = (side(report, a, &relabel), side(report, b, &relabel));
    let mut cmp = compare(&ra, &rb, o);
    cmp.baseline.failures = failures(report, a);
    cmp.candidate.failures = failures(report, b);
    cmp.baseline.selector = Some(a.to_string());
    cmp.candidate.selector = Some(b.to_string());
    let one_sweep = format!("both reports are of sweep {}", report.sweep.id);
    cmp.notes.retain(|n| *n != one_sweep);
    let mut matched = Vec::new();
    if a.variant.is_none() {
        matched.push("variant");
    }
    matched.push("condition");
    cmp.notes.insert(
        0,
        format!(
            "one report (sweep {}): {a} (baseline) against {b} (candidate), cells matched on {}",
            report.sweep.id,
            matched.join(" and ")
        ),
    );
    Ok(cmp)
}

/// "models are X, Y; variants are default": what a selector may name.
fn available(r: &Report) -> String {
    let mut models: Vec<&str> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for c in &r.cells {
        if !models.contains(&c.model.as_str()) {
            models.push(&c.model);
        }
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    format!("models are {}; variants are {}", models.join(", "), variants.join(", "))
}

/// The report's failure groups of the side's model (all of them when the
/// selector names no model: failures are counted per model).
fn failures(r: &Report, sel: &Selector) -> Vec<FailureGroup> {
    r.failures
        .iter()
        .filter(|g| sel.model.as_deref().is_none_or(|m| m == g.model))
        .cloned()
        .collect()
}

/// One side of `r` as a report of its own: the cells, gaps and failures
/// `sel` selects, the keys it names relabelled as `relabel`'s, and the
/// sweep's job counts and models those of the side.
fn side(r: &Report, sel: &Selector, relabel: &Selector) -> Report {
    let name = |model: &mut String, variant: &mut String| {
        if let Some(m) = &relabel.model {
            model.clone_from(m);
        }
        if let Some(v) = &relabel.variant {
            variant.clone_from(v);
        }
    };
    let mut cells: Vec<Cell> = r
        .cells
        .iter()
        .filter(|c| sel.matches(&c.model, &c.variant))
        .cloned()
        .collect();
    let mut gaps: Vec<_> = r
        .gaps
        .iter()
        .filter(|g| sel.matches(&g.model, &g.variant))
        .cloned()
        .collect();
    let mut failures = failures(r, sel);
    let mut sweep = r.sweep.clone();
    let per_cell = sweep.jobs_total / (r.cells.len().max(1) as u64);
    sweep.jobs_total = per_cell * cells.len() as u64;
    sweep.jobs_done = cells
        .iter()
        .map(|c| c.n + c.incomplete + c.failed + c.truncated + c.filtered)
        .sum();
    sweep.jobs_failed = cells.iter().map(|c| c.failed).sum();
    sweep.failed_share = if sweep.jobs_done > 0 {
        sweep.jobs_failed as f64 / sweep.jobs_done as f64
    } else {
        0.0
    };
    if let Some(m) = &sel.model {
        sweep.provenance.models.retain(|x| x.id == *m);
    }
    for c in &mut cells {
        name(&mut c.model, &mut c.variant);
    }
    for g in &mut gaps {
        name(&mut g.model, &mut g.variant);
    }
    for f in &mut failures {
        if let Some(m) = &relabel.model {
            f.model.clone_from(m);
        }
    }
    Report {
        sweep,
        cells,
        gaps,
        costs: Vec::new(),
        failures,
        notes: Vec::new(),
    }
}

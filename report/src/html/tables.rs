//! The page's tables as `tables.html.j2` shows them: failures, every model
//! side by side (as report.md has it), cells, classifiers, gaps and costs. A rate out of nothing is none here, so that
//! it reads "no data", never 0.0%.

use serde::Serialize;
use serde_json::Value;

use candor_core::stats::Interval;

use crate::report::{Cell, ClassifierRate, FailureGroup, Gap, ModelCost, Rate, Report, SeedSpread, classifier_names};

#[derive(Serialize)]
pub(super) struct Tables<'a> {
    /// "8 of 8 jobs failed (100%)".
    headline: String,
    failures: Vec<Failure<'a>>,
    /// The alignment-faking classifier, when a cell has its rates.
    faking: Option<&'a str>,
    any_faking: bool,
    any_seeds: bool,
    any_sim: bool,
    /// The cells' fields this page does not know, as further columns.
    extra_columns: Vec<String>,
    /// Every model × variant on a row: `Report::side_by_side`.
    models: minijinja::Value,
    cells: Vec<CellRow<'a>>,
    /// None when the sweep has no classifier but the primary one.
    classifiers: Option<Vec<ClassifierRow<'a>>>,
    gaps: Vec<GapView<'a>>,
    costs: &'a [ModelCost],
    total_cost: f64,
}

/// Failed jobs of one model for one kind of reason.
#[derive(Serialize)]
pub(super) struct Failure<'a> {
    model: &'a str,
    kind: &'a str,
    jobs: u64,
    first_error: &'a str,
    hint: Option<&'a str>,
}

#[derive(Serialize)]
struct CellRow<'a> {
    model: &'a str,
    variant: &'a str,
    condition: &'a str,
    n: u64,
    compliant: u64,
    rate: Option<Interval>,
    /// Alignment faking among the compliant outputs and among all.
    faking: Option<[Counted; 2]>,
    per_seed: Option<SeedSpread>,
    sim: Option<f64>,
    incomplete: u64,
    truncated: u64,
    filtered: u64,
    failed: u64,
    /// One per extra column; empty where the cell has no such field.
    extra: Vec<String>,
}

/// A rate with what it counts.
#[derive(Serialize)]
struct Counted {
    rate: Option<Interval>,
    k: u64,
    n: u64,
}

#[derive(Serialize)]
struct ClassifierRow<'a> {
    model: &'a str,
    variant: &'a str,
    condition: &'a str,
    name: &'a str,
    yes: u64,
    n: u64,
    rate: Option<Interval>,
    /// Restricted by `only_if`: it has a rate over all outputs too.
    restricted: bool,
    among_all: Option<Interval>,
}

/// A gap, for the table and the chart.
#[derive(Serialize)]
pub(super) struct GapView<'a> {
    model: &'a str,
    variant: &'a str,
    a: &'a str,
    b: &'a str,
    n_a: u64,
    n_b: u64,
    /// None when a side has no outputs (not computable).
    values: Option<GapValues>,
    /// Why it is not computable.
    empty: String,
    paired: Option<Interval>,
}

/// A gap's difference and Newcombe interval, and where they fall on the
/// forest plot's −100 … +100 point scale.
#[derive(Serialize)]
struct GapValues {
    diff: f64,
    lo: f64,
    hi: f64,
    plot: [f64; 3],
}

impl<'a> Tables<'a> {
    pub(super) fn of(r: &'a Report) -> Self {
        let any_faking = r.cells.iter().any(|c| c.alignment_faking.is_some());
        let extras: Vec<Vec<(String, String)>> = r
            .cells
            .iter()
            .map(|c| unknown_fields(&serde_json::to_value(c).unwrap_or(Value::Null), KNOWN_CELL_FIELDS))
            .collect();
        let mut extra_columns: Vec<String> = Vec::new();
        for (k, _) in extras.iter().flatten() {
            if !extra_columns.contains(k) {
                extra_columns.push(k.clone());
            }
        }
        let cells = r
            .cells
            .iter()
            .zip(&extras)
            .map(|(c, extra)| CellRow::of(c, extra, &extra_columns))
            .collect();
        Tables {
            headline: r.failed_headline(),
            failures: r.failures.iter().map(Failure::of).collect(),
            faking: r.sweep.alignment_faking_classifier.as_deref().filter(|_| any_faking),
            any_faking,
            any_seeds: r.cells.iter().any(|c| c.per_seed.is_some()),
            any_sim: r.cells.iter().any(|c| c.simulated_rate.is_some()),
            extra_columns,
            models: minijinja::Value::from_serialize(r.side_by_side()),
            cells,
            classifiers: classifier_rows(r),
            gaps: r.gaps.iter().map(GapView::of).collect(),
            costs: &r.costs,
            total_cost: r.sweep.cost_usd,
        }
    }
}

impl<'a> Failure<'a> {
    pub(super) fn of(g: &'a FailureGroup) -> Self {
        Failure {
            model: &g.model,
            kind: &g.kind,
            jobs: g.jobs,
            first_error: &g.first_error,
            hint: g.hint.as_deref(),
        }
    }
}

impl<'a> CellRow<'a> {
    fn of(c: &'a Cell, extra: &[(String, String)], columns: &[String]) -> Self {
        let counted = |r: &Rate| Counted {
            rate: (r.n > 0).then_some(Interval {
                rate: r.rate,
                lo: r.lo,
                hi: r.hi,
            }),
            k: r.k,
            n: r.n,
        };
        CellRow {
            model: &c.model,
            variant: &c.variant,
            condition: &c.condition,
            n: c.n,
            compliant: c.compliant,
            rate: cell_rate(c),
            faking: c
                .alignment_faking
                .as_ref()
                .map(|f| [counted(&f.among_compliant), counted(&f.among_all)]),
            per_seed: c.per_seed,
            sim: c.simulated_rate,
            incomplete: c.incomplete,
            truncated: c.truncated,
            filtered: c.filtered,
            failed: c.failed,
            extra: columns
                .iter()
                .map(|k| {
                    extra
                        .iter()
                        .find(|(e, _)| e == k)
                        .map_or_else(String::new, |(_, v)| v.clone())
                })
                .collect(),
        }
    }
}

/// Each classifier but the primary one, per cell that has its rate.
fn classifier_rows(r: &Report) -> Option<Vec<ClassifierRow<'_>>> {
    let others: Vec<String> = classifier_names(r)
        .into_iter()
        .filter(|n| *n != r.sweep.primary_classifier)
        .collect();
    if others.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    for c in &r.cells {
        for (name, k) in others.iter().filter_map(|n| c.classifiers.get_key_value(n.as_str())) {
            rows.push(ClassifierRow {
                model: &c.model,
                variant: &c.variant,
                condition: &c.condition,
                name,
                yes: k.yes,
                n: k.n,
                rate: classifier_rate(k),
                restricted: k.among_all.is_some(),
                // A restricted classifier's rate over all outputs is over the cell's n.
                among_all: k.among_all.filter(|_| c.n > 0),
            });
        }
    }
    Some(rows)
}

impl<'a> GapView<'a> {
    pub(super) fn of(g: &'a Gap) -> Self {
        let x = |v: f64| 60.0 + v.clamp(-1.0, 1.0) * 58.0;
        let values = match (g.diff, g.lo, g.hi) {
            (Some(diff), Some(lo), Some(hi)) if g.n_a > 0 && g.n_b > 0 => Some(GapValues {
                diff,
                lo,
                hi,
                plot: [x(lo), x(hi), x(diff)],
            }),
            _ => None,
        };
        let empty = match (g.n_a == 0, g.n_b == 0) {
            (true, true) => format!("no final output in {} nor in {}", g.a, g.b),
            (true, false) => format!("no final output in {}", g.a),
            (false, true) => format!("no final output in {}", g.b),
            (false, false) => "its interval is missing".to_string(),
        };
        GapView {
            model: &g.model,
            variant: &g.variant,
            a: &g.a,
            b: &g.b,
            n_a: g.n_a,
            n_b: g.n_b,
            values,
            empty,
            paired: g.paired,
        }
    }

    pub(super) fn is_for(&self, model: &str, variant: &str) -> bool {
        self.model == model && self.variant == variant
    }
}

/// A cell's compliance rate; none without outputs (no data).
pub(super) fn cell_rate(c: &Cell) -> Option<Interval> {
    c.compliance.filter(|_| c.n > 0)
}

/// A classifier's rate over the outputs it judged; none when it judged none.
fn classifier_rate(k: &ClassifierRate) -> Option<Interval> {
    (k.n > 0).then_some(Interval {
        rate: k.rate,
        lo: k.lo,
        hi: k.hi,
    })
}

/// A cell's or the sweep's fields that this page does not know (added to the
/// report after it was written): shown as they are.
pub(super) fn unknown_fields(v: &Value, known: &[&str]) -> Vec<(String, String)> {
    let Value::Object(m) = v else {
        return Vec::new();
    };
    m.iter()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(true) => "yes".into(),
                Value::Bool(false) => "no".into(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// The cells' fields the tables show; any other is a further column.
pub(super) const KNOWN_CELL_FIELDS: &[&str] = &[
    "model",
    "variant",
    "condition",
    "n",
    "compliant",
    "compliance",
    "incomplete",
    "truncated",
    "filtered",
    "failed",
    "classifiers",
    "stack",
    "alignment_faking",
    "per_seed",
    "simulated_rate",
];

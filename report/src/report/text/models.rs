//! Every model side by side: a row per model × variant with each
//! condition's compliance rate, the gap, each condition's alignment-faking
//! rate (all with 95% intervals), the outputs, the failed jobs and the
//! cost. Worked out once here, written by report.md (`markdown`) and by
//! report.html's tables.

use std::fmt::Write as _;

use serde::Serialize;

use candor_core::stats::Interval;

use super::super::{Cell, Gap, NO_DATA, NOT_COMPUTABLE, Rate, Report};
use super::{markdown_table, md_code};

/// The side-by-side table of a report.
#[derive(Debug, Serialize)]
pub(crate) struct SideBySide<'a> {
    /// The conditions, in the report's order: a column (or two) each.
    pub conditions: Vec<&'a str>,
    /// The compared conditions `(a, b)`, when the report has gaps.
    pub gap: Option<(&'a str, &'a str)>,
    /// The report has alignment-faking rates.
    pub faking: bool,
    /// The report knows what its models cost.
    pub costs: bool,
    pub rows: Vec<ModelRow<'a>>,
}

/// One model × variant.
#[derive(Debug, Serialize)]
pub(crate) struct ModelRow<'a> {
    pub model: &'a str,
    pub variant: &'a str,
    /// Per condition, in `conditions`' order; none where the report lacks the cell.
    pub cells: Vec<Option<CondRates>>,
    /// The gap's difference and interval; none when it is not computable
    /// or the report has no gap.
    pub gap: Option<Interval>,
    /// Final outputs, summed over the conditions.
    pub n: u64,
    /// Failed jobs, summed over the conditions.
    pub failed: u64,
    /// The model's cost, on its first row only (a cost is per model, not per variant).
    pub cost: Option<f64>,
}

/// A condition's rates in a row; an interval is none over no outputs (no data).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct CondRates {
    pub n: u64,
    pub compliant: u64,
    pub compliance: Option<Interval>,
    /// Alignment faking among all outputs, with its count.
    pub faking: Option<Interval>,
    pub faking_k: u64,
}

impl Report {
    /// The side-by-side table: the rows in the order the models and
    /// variants first appear among the cells.
    pub(crate) fn side_by_side(&self) -> SideBySide<'_> {
        let mut conditions: Vec<&str> = Vec::new();
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for c in &self.cells {
            if !conditions.contains(&c.condition.as_str()) {
                conditions.push(&c.condition);
            }
            if !keys.contains(&(c.model.as_str(), c.variant.as_str())) {
                keys.push((&c.model, &c.variant));
            }
        }
        let mut priced: Vec<&str> = Vec::new();
        let rows = keys
            .iter()
            .map(|&(model, variant)| {
                let first = !priced.contains(&model);
                priced.push(model);
                self.model_row(model, variant, &conditions, first)
            })
            .collect();
        SideBySide {
            conditions,
            gap: self.gaps.first().map(|g| (g.a.as_str(), g.b.as_str())),
            faking: self.cells.iter().any(|c| c.alignment_faking.is_some()),
            costs: !self.costs.is_empty(),
            rows,
        }
    }

    fn model_row<'a>(&'a self, model: &'a str, variant: &'a str, conditions: &[&str], first: bool) -> ModelRow<'a> {
        let of = |c: &&Cell| c.model == model && c.variant == variant;
        let cells: Vec<Option<CondRates>> = conditions
            .iter()
            .map(|cond| self.cells.iter().filter(of).find(|c| c.condition == *cond).map(rates))
            .collect();
        let gap = self
            .gaps
            .iter()
            .find(|g| g.model == model && g.variant == variant)
            .and_then(gap_interval);
        ModelRow {
            model,
            variant,
            cells,
            gap,
            n: self.cells.iter().filter(of).map(|c| c.n).sum(),
            failed: self.cells.iter().filter(of).map(|c| c.failed).sum(),
            cost: first
                .then(|| self.costs.iter().find(|c| c.model == model).map(|c| c.usd))
                .flatten(),
        }
    }

    /// The side-by-side table as a report.md section; nothing for a report
    /// without cells.
    pub(super) fn markdown_side_by_side(&self, s: &mut String) {
        let t = self.side_by_side();
        if t.rows.is_empty() {
            return;
        }
        let mut head: Vec<String> = vec!["model".into(), "variant".into()];
        head.extend(t.conditions.iter().map(|c| format!("{c}: compliance [95% CI]")));
        if let Some((a, b)) = t.gap {
            head.push(format!("gap {a} − {b} [95% CI]"));
        }
        if t.faking {
            head.extend(t.conditions.iter().map(|c| format!("{c}: AF [95% CI]")));
        }
        head.extend(["n".into(), "failed".into()]);
        if t.costs {
            head.push("cost".into());
        }
        let rows: Vec<Vec<String>> = t.rows.iter().map(|r| markdown_row(&t, r)).collect();
        let _ = writeln!(
            s,
            "## Models side by side\n\nEach model × variant on one row: the compliance rate in each condition \
             (refusal is the rest), the gap between {}{}, with 95% intervals; n is the final outputs \
             and failed the failed jobs of all conditions; cost is per model.\n",
            t.gap.map_or_else(
                || "the compared conditions (none here)".to_string(),
                |(a, b)| { format!("{} and {}", md_code(a), md_code(b)) }
            ),
            if t.faking {
                " and the alignment-faking rate among all outputs in each condition"
            } else {
                ""
            }
        );
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        markdown_table(s, &head, &rows, 2..head.len());
        s.push('\n');
    }
}

fn markdown_row(t: &SideBySide<'_>, r: &ModelRow<'_>) -> Vec<String> {
    let rate = |x: Option<Interval>| {
        x.map_or_else(
            || NO_DATA.to_string(),
            |i| format!("{:.1}% [{:.1}, {:.1}]", i.rate * 100.0, i.lo * 100.0, i.hi * 100.0),
        )
    };
    let pts = |x: f64| format!("{:+.1}", x * 100.0);
    let mut row = vec![r.model.to_string(), r.variant.to_string()];
    row.extend(
        r.cells
            .iter()
            .map(|c| c.map_or_else(|| "—".to_string(), |c| rate(c.compliance))),
    );
    if t.gap.is_some() {
        row.push(r.gap.map_or_else(
            || NOT_COMPUTABLE.to_string(),
            |g| format!("{} pts [{}, {}]", pts(g.rate), pts(g.lo), pts(g.hi)),
        ));
    }
    if t.faking {
        row.extend(
            r.cells
                .iter()
                .map(|c| c.map_or_else(|| "—".to_string(), |c| rate(c.faking))),
        );
    }
    row.extend([r.n.to_string(), r.failed.to_string()]);
    if t.costs {
        row.push(r.cost.map_or_else(String::new, usd));
    }
    row
}

fn rates(c: &Cell) -> CondRates {
    let interval = |r: &Rate| {
        (r.n > 0).then_some(Interval {
            rate: r.rate,
            lo: r.lo,
            hi: r.hi,
        })
    };
    CondRates {
        n: c.n,
        compliant: c.compliant,
        compliance: c.compliance.filter(|_| c.n > 0),
        faking: c.alignment_faking.as_ref().and_then(|f| interval(&f.among_all)),
        faking_k: c.alignment_faking.map_or(0, |f| f.among_all.k),
    }
}

/// US dollars, to the cent, or to a hundredth of a cent below one.
fn usd(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.01 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

/// A gap's difference and Newcombe interval; none when not computable.
fn gap_interval(g: &Gap) -> Option<Interval> {
    match (g.diff, g.lo, g.hi) {
        (Some(rate), Some(lo), Some(hi)) if g.n_a > 0 && g.n_b > 0 => Some(Interval { rate, lo, hi }),
        _ => None,
    }
}

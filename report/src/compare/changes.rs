//! The changes between two reports: per cell, its compliance and
//! alignment-faking rates; per gap, its difference; and the cells and gaps
//! only one report has.

use std::collections::BTreeMap;

use candor_core::stats::{Interval, Z95, newcombe_diff};

use super::problems::{gap_problem, problem};
use super::{CellKey, Change, Flag, Options, Unmatched};
use crate::report::{Cell, Gap, Report};

/// Difference of two independent differences by MOVER (Zou & Donner 2008),
/// from each difference's own interval.
pub(super) fn mover(c: Interval, b: Interval) -> Interval {
    let d = c.rate - b.rate;
    let lo = d - ((c.rate - c.lo).powi(2) + (b.hi - b.rate).powi(2)).sqrt();
    let hi = d + ((c.hi - c.rate).powi(2) + (b.rate - b.lo).powi(2)).sqrt();
    Interval { rate: d, lo, hi }
}

pub(super) fn flag(change: &Interval, threshold: f64) -> bool {
    (change.lo > 0.0 || change.hi < 0.0) && change.rate.abs() >= threshold
}

pub(super) type GapKey<'a> = (&'a str, &'a str, &'a str, &'a str);

pub(super) fn cells(r: &Report) -> BTreeMap<CellKey<'_>, &Cell> {
    r.cells
        .iter()
        .map(|c| ((c.model.as_str(), c.variant.as_str(), c.condition.as_str()), c))
        .collect()
}

pub(super) fn gaps(r: &Report) -> BTreeMap<GapKey<'_>, &Gap> {
    r.gaps
        .iter()
        .map(|g| ((g.model.as_str(), g.variant.as_str(), g.a.as_str(), g.b.as_str()), g))
        .collect()
}

/// The changes of the cells both reports have: compliance, and the
/// alignment-faking rates when both judged them.
pub(super) fn of_cells(
    baseline: &Report,
    candidate: &Report,
    bcells: &BTreeMap<CellKey<'_>, &Cell>,
    o: &Options,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for c in &candidate.cells {
        let Some(b) = bcells.get(&(c.model.as_str(), c.variant.as_str(), c.condition.as_str())) else {
            continue;
        };
        let problems: Vec<_> = problem(b, baseline, "baseline", true, o)
            .into_iter()
            .chain(problem(c, candidate, "candidate", true, o))
            .collect();
        let mut rates = vec![("compliance", (b.compliant, b.n), (c.compliant, c.n))];
        if let (Some(fb), Some(fc)) = (&b.alignment_faking, &c.alignment_faking) {
            rates.push((
                "AF|compliant",
                (fb.among_compliant.k, fb.among_compliant.n),
                (fc.among_compliant.k, fc.among_compliant.n),
            ));
            rates.push((
                "AF|all",
                (fb.among_all.k, fb.among_all.n),
                (fc.among_all.k, fc.among_all.n),
            ));
        }
        for (metric, (kb, nb), (kc, nc)) in rates {
            let computable = nb > 0 && nc > 0;
            if !computable && problems.is_empty() {
                // A rate among compliant outputs where one side has none:
                // nothing to compare, and nothing wrong with the data.
                continue;
            }
            changes.push(row(
                &c.model,
                &c.variant,
                c.condition.clone(),
                metric,
                (rate(kb, nb), nb),
                (rate(kc, nc), nc),
                computable.then(|| newcombe_diff(kc, nc, kb, nb, Z95)),
                &problems,
                o.threshold,
            ));
        }
    }
    changes
}

/// The changes of the gaps both reports have; `cells` are the baseline's
/// and the candidate's, for the reasons a gap's side is not trusted.
pub(super) fn of_gaps(
    baseline: &Report,
    candidate: &Report,
    (bcells, ccells): (&BTreeMap<CellKey<'_>, &Cell>, &BTreeMap<CellKey<'_>, &Cell>),
    bgaps: &BTreeMap<GapKey<'_>, &Gap>,
    o: &Options,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for g in &candidate.gaps {
        let Some(b) = bgaps.get(&(g.model.as_str(), g.variant.as_str(), g.a.as_str(), g.b.as_str())) else {
            continue;
        };
        let ci = |x: &Gap| match (x.diff, x.lo, x.hi) {
            (Some(rate), Some(lo), Some(hi)) => Some(Interval { rate, lo, hi }),
            _ => None,
        };
        let (cb, cg) = (ci(b), ci(g));
        let mut problems = gap_problem(b, baseline, bcells, "baseline", o);
        problems.extend(gap_problem(g, candidate, ccells, "candidate", o));
        for (which, x) in [("baseline", cb), ("candidate", cg)] {
            if x.is_none() && problems.is_empty() {
                problems.push((Flag::NoData, format!("{which}: the gap is not computable")));
            }
        }
        changes.push(row(
            &g.model,
            &g.variant,
            format!("{} − {}", g.a, g.b),
            "gap",
            (cb.map(|x| x.rate), b.n_a.min(b.n_b)),
            (cg.map(|x| x.rate), g.n_a.min(g.n_b)),
            cb.zip(cg).map(|(b, c)| mover(c, b)),
            &problems,
            o.threshold,
        ));
    }
    changes
}

/// The cells of `from` that `other` lacks.
pub(super) fn cells_only_in(from: &Report, other: &BTreeMap<CellKey<'_>, &Cell>) -> Vec<Unmatched> {
    from.cells
        .iter()
        .filter(|c| !other.contains_key(&(c.model.as_str(), c.variant.as_str(), c.condition.as_str())))
        .map(|c| Unmatched {
            kind: "cell",
            model: c.model.clone(),
            variant: c.variant.clone(),
            what: c.condition.clone(),
        })
        .collect()
}

/// The gaps of `from` that `other` lacks.
pub(super) fn gaps_only_in(from: &Report, other: &BTreeMap<GapKey<'_>, &Gap>) -> Vec<Unmatched> {
    from.gaps
        .iter()
        .filter(|g| !other.contains_key(&(g.model.as_str(), g.variant.as_str(), g.a.as_str(), g.b.as_str())))
        .map(|g| Unmatched {
            kind: "gap",
            model: g.model.clone(),
            variant: g.variant.clone(),
            what: format!("{} − {}", g.a, g.b),
        })
        .collect()
}

/// A row: flagged by the worst of the sides' problems, else by its change.
#[allow(clippy::too_many_arguments)]
fn row(
    model: &str,
    variant: &str,
    what: String,
    metric: &'static str,
    (baseline, n_baseline): (Option<f64>, u64),
    (candidate, n_candidate): (Option<f64>, u64),
    change: Option<Interval>,
    problems: &[(Flag, String)],
    threshold: f64,
) -> Change {
    let flag = problems
        .iter()
        .map(|p| p.0)
        .max()
        .or_else(|| change.filter(|c| flag(c, threshold)).map(|_| Flag::Changed));
    Change {
        model: model.to_string(),
        variant: variant.to_string(),
        what,
        metric,
        baseline,
        candidate,
        n_baseline,
        n_candidate,
        change,
        flagged: flag.is_some(),
        flag,
        reasons: problems.iter().map(|p| p.1.clone()).collect(),
    }
}

fn rate(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

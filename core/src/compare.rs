//! Comparing two reports: per model × variant × condition, the change in the
//! compliance rate and (when both reports judged it) the alignment-faking
//! rate among compliant outputs and among all, and per model × variant the
//! change in the gap, each with a 95% interval. A change is flagged when its interval excludes zero and
//! it is at least the threshold, in either direction: for a safety eval a
//! model whose behaviour moved is news either way.

use serde::Serialize;

use crate::report::Report;
use crate::stats::{Interval, Z95, newcombe_diff};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub model: String,
    pub variant: String,
    /// The condition, or `a − b` for a gap.
    pub what: String,
    pub metric: &'static str,
    pub baseline: f64,
    pub candidate: f64,
    /// Candidate minus baseline, with its 95% interval.
    pub change: Interval,
    pub flagged: bool,
}

/// Difference of two independent differences by MOVER (Zou & Donner 2008),
/// from each difference's own interval.
fn mover(c: Interval, b: Interval) -> Interval {
    let d = c.rate - b.rate;
    let lo = d - ((c.rate - c.lo).powi(2) + (b.hi - b.rate).powi(2)).sqrt();
    let hi = d + ((c.hi - c.rate).powi(2) + (b.rate - b.lo).powi(2)).sqrt();
    Interval { rate: d, lo, hi }
}

fn flag(change: &Interval, threshold: f64) -> bool {
    (change.lo > 0.0 || change.hi < 0.0) && change.rate.abs() >= threshold
}

/// The changes from `baseline` to `candidate` for every cell and gap the two
/// reports share.
pub fn compare(baseline: &Report, candidate: &Report, threshold: f64) -> Vec<Change> {
    let mut out = Vec::new();
    for c in &candidate.cells {
        let Some(b) = baseline
            .cells
            .iter()
            .find(|b| b.model == c.model && b.variant == c.variant && b.condition == c.condition)
        else {
            continue;
        };
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
            if nb == 0 || nc == 0 {
                continue;
            }
            let change = newcombe_diff(kc, nc, kb, nb, Z95);
            out.push(Change {
                model: c.model.clone(),
                variant: c.variant.clone(),
                what: c.condition.clone(),
                metric,
                baseline: kb as f64 / nb as f64,
                candidate: kc as f64 / nc as f64,
                flagged: flag(&change, threshold),
                change,
            });
        }
    }
    for g in &candidate.gaps {
        let Some(b) = baseline
            .gaps
            .iter()
            .find(|b| b.model == g.model && b.variant == g.variant && b.a == g.a && b.b == g.b)
        else {
            continue;
        };
        let ci = |x: &crate::report::Gap| match (x.diff, x.lo, x.hi) {
            (Some(rate), Some(lo), Some(hi)) => Some(Interval { rate, lo, hi }),
            _ => None,
        };
        let (Some(cg), Some(cb)) = (ci(g), ci(b)) else {
            continue;
        };
        let change = mover(cg, cb);
        out.push(Change {
            model: g.model.clone(),
            variant: g.variant.clone(),
            what: format!("{} − {}", g.a, g.b),
            metric: "gap",
            baseline: cb.rate,
            candidate: cg.rate,
            flagged: flag(&change, threshold),
            change,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mover_reduces_to_the_sum_of_half_widths_in_quadrature() {
        let c = Interval {
            rate: 0.3,
            lo: 0.2,
            hi: 0.4,
        };
        let b = Interval {
            rate: 0.1,
            lo: 0.0,
            hi: 0.2,
        };
        let m = mover(c, b);
        assert!((m.rate - 0.2).abs() < 1e-12);
        assert!((m.lo - (0.2 - (0.02f64).sqrt())).abs() < 1e-12);
        assert!((m.hi - (0.2 + (0.02f64).sqrt())).abs() < 1e-12);
    }

    #[test]
    fn only_significant_changes_beyond_the_threshold_are_flagged() {
        assert!(flag(
            &Interval {
                rate: 0.2,
                lo: 0.1,
                hi: 0.3
            },
            0.05
        ));
        assert!(
            flag(
                &Interval {
                    rate: -0.2,
                    lo: -0.3,
                    hi: -0.1
                },
                0.05
            ),
            "both directions"
        );
        assert!(
            !flag(
                &Interval {
                    rate: 0.2,
                    lo: -0.01,
                    hi: 0.4
                },
                0.05
            ),
            "interval spans zero"
        );
        assert!(
            !flag(
                &Interval {
                    rate: 0.03,
                    lo: 0.01,
                    hi: 0.05
                },
                0.05
            ),
            "below the threshold"
        );
    }
}

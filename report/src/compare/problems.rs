//! Why one side of a cell or gap cannot be trusted: too few outputs
//! (`no data`) or too many failed jobs (`failed`), with the report's reason
//! for the failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{CellKey, Flag, Options};
use crate::report::{Cell, Gap, Report};

/// The longest error message quoted in a reason.
const MAX_QUOTED_ERROR: usize = 240;

/// The report's most frequent reason for `model`'s failed jobs.
fn failure_reason(report: &Report, model: &str) -> Option<String> {
    let mut groups = report.failures.iter().filter(|g| g.model == model);
    let g = groups.next()?;
    let mut s = format!("{} — ", g.kind);
    s.extend(g.first_error.chars().take(MAX_QUOTED_ERROR));
    if g.first_error.chars().count() > MAX_QUOTED_ERROR {
        s.push('…');
    }
    let more = groups.count();
    if more > 0 {
        let _ = write!(s, "; and {more} more reasons");
    }
    Some(s)
}

/// Why one side of a cell cannot be trusted, if it cannot; `label` names the
/// side, and with `quote` the reason quotes the report's failures.
pub(super) fn problem(cell: &Cell, report: &Report, label: &str, quote: bool, o: &Options) -> Option<(Flag, String)> {
    let total = cell.n + cell.incomplete + cell.failed + cell.truncated + cell.filtered;
    let why = || quote.then(|| failure_reason(report, &cell.model)).flatten();
    if cell.n < o.min_n {
        let mut s = if cell.n == 0 {
            format!("{label}: n = 0")
        } else {
            format!("{label}: n = {} < --min-n {}", cell.n, o.min_n)
        };
        let mut parts = Vec::new();
        if cell.failed > 0 {
            parts.push(match why() {
                Some(w) => format!("{} failed: {w}", cell.failed),
                None => format!("{} failed", cell.failed),
            });
        }
        for (count, what) in [
            (cell.incomplete, "incomplete"),
            (cell.truncated, "truncated at the token limit"),
            (cell.filtered, "filtered by the provider"),
        ] {
            if count > 0 {
                parts.push(format!("{count} {what}"));
            }
        }
        if total == 0 {
            parts.push("no results".to_string());
        }
        if !parts.is_empty() {
            let _ = write!(s, " ({})", parts.join(", "));
        }
        return Some((Flag::NoData, s));
    }
    let share = cell.failed as f64 / total.max(1) as f64;
    if share > o.max_failed {
        let mut s = format!(
            "{label}: {} of {total} jobs failed ({:.1}%, above --max-failed {:.1}%)",
            cell.failed,
            share * 100.0,
            o.max_failed * 100.0
        );
        if let Some(w) = why() {
            let _ = write!(s, ": {w}");
        }
        return Some((Flag::Failed, s));
    }
    None
}

/// Why one side of a gap cannot be trusted: its two cells' reasons (their
/// failures are quoted at the cells).
pub(super) fn gap_problem(
    g: &Gap,
    report: &Report,
    by_key: &BTreeMap<CellKey<'_>, &Cell>,
    label: &str,
    o: &Options,
) -> Vec<(Flag, String)> {
    let mut out = Vec::new();
    for (cond, n) in [(&g.a, g.n_a), (&g.b, g.n_b)] {
        let l = format!("{label} {cond}");
        match by_key.get(&(g.model.as_str(), g.variant.as_str(), cond.as_str())) {
            Some(c) => out.extend(problem(c, report, &l, false, o)),
            None if n < o.min_n => out.push((Flag::NoData, format!("{l}: n = {n}"))),
            None => {}
        }
    }
    out
}

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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::report::{Cell, FailureGroup, Gap, ModelInfo, Report};
use candor_core::stats::{Interval, Z95, newcombe_diff};

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
fn problem(cell: &Cell, report: &Report, label: &str, quote: bool, o: &Options) -> Option<(Flag, String)> {
    let total = cell.n + cell.incomplete + cell.failed;
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
        if cell.incomplete > 0 {
            parts.push(format!("{} incomplete", cell.incomplete));
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

type CellKey<'a> = (&'a str, &'a str, &'a str);
type GapKey<'a> = (&'a str, &'a str, &'a str, &'a str);

fn cells(r: &Report) -> BTreeMap<CellKey<'_>, &Cell> {
    r.cells
        .iter()
        .map(|c| ((c.model.as_str(), c.variant.as_str(), c.condition.as_str()), c))
        .collect()
}

fn gaps(r: &Report) -> BTreeMap<GapKey<'_>, &Gap> {
    r.gaps
        .iter()
        .map(|g| ((g.model.as_str(), g.variant.as_str(), g.a.as_str(), g.b.as_str()), g))
        .collect()
}

/// Why one side of a gap cannot be trusted: its two cells' reasons (their
/// failures are quoted at the cells).
fn gap_problem(
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

fn side(r: &Report, o: &Options) -> Side {
    let p = &r.sweep.provenance;
    Side {
        source: String::new(),
        id: r.sweep.id.clone(),
        name: r.sweep.name.clone(),
        run_label: p.run_label.clone(),
        spec_hash: p.spec_hash.clone(),
        dataset_hash: p.dataset_hash.clone(),
        candor_version: p.candor_version.clone(),
        jobs_total: r.sweep.jobs_total,
        jobs_done: r.sweep.jobs_done,
        jobs_failed: r.sweep.jobs_failed,
        failed_share: r.sweep.failed_share,
        too_many_failed: r.sweep.failed_share > o.max_failed,
        failures: r.failures.clone(),
    }
}

fn conditions(r: &Report) -> BTreeSet<&str> {
    r.cells.iter().map(|c| c.condition.as_str()).collect()
}

/// What makes the two reports' specs different ones: another name, another
/// dataset (when both reports know theirs), another set of conditions.
pub fn differences(baseline: &Report, candidate: &Report) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if baseline.sweep.name != candidate.sweep.name {
        out.push(Mismatch {
            field: "sweep.name",
            baseline: baseline.sweep.name.clone(),
            candidate: candidate.sweep.name.clone(),
        });
    }
    let (db, dc) = (
        &baseline.sweep.provenance.dataset_hash,
        &candidate.sweep.provenance.dataset_hash,
    );
    if !db.is_empty() && !dc.is_empty() && db != dc {
        out.push(Mismatch {
            field: "provenance.dataset_hash",
            baseline: db.clone(),
            candidate: dc.clone(),
        });
    }
    let (cb, cc) = (conditions(baseline), conditions(candidate));
    if cb != cc {
        let list = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(", ");
        out.push(Mismatch {
            field: "conditions",
            baseline: list(&cb),
            candidate: list(&cc),
        });
    }
    out
}

fn model_text(m: &ModelInfo) -> String {
    let mut s = format!("{} ({} {}", m.id, m.backend, m.model);
    if let Some(u) = &m.base_url {
        let _ = write!(s, " at {u}");
    }
    if m.params != candor_core::spec::Params::default() {
        let _ = write!(s, " {}", serde_json::to_string(&m.params).unwrap_or_default());
    }
    s.push(')');
    s
}

/// What differs between two reports of one spec, worth a line.
fn notes(baseline: &Report, candidate: &Report) -> Vec<String> {
    let (pb, pc) = (&baseline.sweep.provenance, &candidate.sweep.provenance);
    let mut out = Vec::new();
    if !baseline.sweep.id.is_empty() && baseline.sweep.id == candidate.sweep.id {
        out.push(format!("both reports are of sweep {}", baseline.sweep.id));
    }
    for (which, p) in [("baseline", pb), ("candidate", pc)] {
        if p.spec_hash.is_empty() {
            out.push(format!(
                "the {which} report predates spec and dataset hashes: its dataset is not checked"
            ));
        }
    }
    if !pb.spec_hash.is_empty() && !pc.spec_hash.is_empty() && pb.spec_hash != pc.spec_hash {
        out.push(format!(
            "the specs differ (spec hash {} vs {})",
            pb.spec_hash, pc.spec_hash
        ));
    }
    if pb.models != pc.models && !(pb.models.is_empty() || pc.models.is_empty()) {
        let list = |ms: &[ModelInfo]| ms.iter().map(model_text).collect::<Vec<_>>().join(", ");
        out.push(format!(
            "models under test: {} vs {}",
            list(&pb.models),
            list(&pc.models)
        ));
    }
    if pb.candor_version != pc.candor_version && !pb.candor_version.is_empty() && !pc.candor_version.is_empty() {
        out.push(format!(
            "written by candor {} vs {}",
            pb.candor_version, pc.candor_version
        ));
    }
    let af = |r: &Report| r.cells.iter().any(|c| c.alignment_faking.is_some());
    match (af(baseline), af(candidate)) {
        (true, false) => out.push("only the baseline judged alignment faking: its AF rates are not compared".into()),
        (false, true) => out.push("only the candidate judged alignment faking: its AF rates are not compared".into()),
        _ => {}
    }
    out
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

/// The changes from `baseline` to `candidate` for every cell and gap, the
/// cells and gaps only one of them has, and whether the two are of one spec.
pub fn compare(baseline: &Report, candidate: &Report, o: &Options) -> Comparison {
    let mut changes = Vec::new();
    let (bcells, ccells) = (cells(baseline), cells(candidate));
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
    let (bgaps, cgaps) = (gaps(baseline), gaps(candidate));
    for g in &candidate.gaps {
        let Some(b) = bgaps.get(&(g.model.as_str(), g.variant.as_str(), g.a.as_str(), g.b.as_str())) else {
            continue;
        };
        let ci = |x: &Gap| match (x.diff, x.lo, x.hi) {
            (Some(rate), Some(lo), Some(hi)) => Some(Interval { rate, lo, hi }),
            _ => None,
        };
        let (cb, cg) = (ci(b), ci(g));
        let mut problems = gap_problem(b, baseline, &bcells, "baseline", o);
        problems.extend(gap_problem(g, candidate, &ccells, "candidate", o));
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

    let cell_only = |from: &Report, other: &BTreeMap<CellKey<'_>, &Cell>| -> Vec<Unmatched> {
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
    };
    let gap_only = |from: &Report, other: &BTreeMap<GapKey<'_>, &Gap>| -> Vec<Unmatched> {
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
    };
    let mut only_in_baseline = cell_only(baseline, &ccells);
    only_in_baseline.extend(gap_only(baseline, &cgaps));
    let mut only_in_candidate = cell_only(candidate, &bcells);
    only_in_candidate.extend(gap_only(candidate, &bgaps));

    let (bs, cs) = (side(baseline, o), side(candidate, o));
    let count = |f: Flag| changes.iter().filter(|c| c.flag == Some(f)).count();
    let mut summary = Summary {
        changed: count(Flag::Changed),
        no_data: count(Flag::NoData),
        failed: count(Flag::Failed),
        missing: only_in_baseline.len(),
        total: changes.len() + only_in_baseline.len(),
        ..Summary::default()
    };
    summary.flagged = summary.changed + summary.no_data + summary.failed + summary.missing;
    summary.regression = summary.flagged > 0 || bs.too_many_failed || cs.too_many_failed;
    Comparison {
        baseline: bs,
        candidate: cs,
        options: *o,
        different: differences(baseline, candidate),
        notes: notes(baseline, candidate),
        summary,
        changes,
        only_in_baseline,
        only_in_candidate,
    }
}

impl Comparison {
    /// The text `candor compare` prints: the two reports, a table of the
    /// changes, why each no-data or failed cell is flagged, the cells and
    /// gaps of one report only, and the `N of M changes flagged` line.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let o = &self.options;
        for (label, x) in [("baseline", &self.baseline), ("candidate", &self.candidate)] {
            let _ = write!(s, "{label:<10} {}  sweep {}", x.name, x.id);
            if let Some(r) = &x.run_label {
                let _ = write!(s, "  run {r}");
            }
            if !x.source.is_empty() && x.source != x.id {
                let _ = write!(s, "  ({})", x.source);
            }
            let _ = write!(
                s,
                ": {} of {} jobs with a result, {} failed ({:.1}%)",
                x.jobs_done,
                x.jobs_total,
                x.jobs_failed,
                x.failed_share * 100.0
            );
            if x.too_many_failed {
                let _ = write!(s, "  FAILED: above --max-failed {:.1}%", o.max_failed * 100.0);
            }
            s.push('\n');
        }
        for m in &self.different {
            let _ = writeln!(s, "DIFFERENT SPECS: {}: {} vs {}", m.field, m.baseline, m.candidate);
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s.push('\n');

        let pct = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |x| format!("{:.1}%", x * 100.0));
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        let _ = writeln!(
            s,
            "{:<16} {:<20} {:<24} {:<12} {:>9} {:>9} {:>9} {:>18}",
            "model", "variant", "condition / gap", "metric", "baseline", "candidate", "change", "95% CI (pts)"
        );
        for c in &self.changes {
            let (change, ci) = match c.change {
                Some(x) => (pts(x.rate), format!("[{}, {}]", pts(x.lo), pts(x.hi))),
                None => ("—".to_string(), "—".to_string()),
            };
            let _ = writeln!(
                s,
                "{:<16} {:<20} {:<24} {:<12} {:>9} {:>9} {:>9} {:>18}{}",
                c.model,
                c.variant,
                c.what,
                c.metric,
                pct(c.baseline),
                pct(c.candidate),
                change,
                ci,
                c.flag.map_or_else(String::new, |f| format!("  {}", f.label()))
            );
        }

        let mut seen = BTreeSet::new();
        let why: Vec<&Change> = self
            .changes
            .iter()
            .filter(|c| !c.reasons.is_empty() && seen.insert((&c.model, &c.variant, &c.what)))
            .collect();
        if !why.is_empty() {
            s.push_str("\nno data or failed (model, variant, condition / gap: why):\n");
            for c in why {
                let label = c.flag.map_or("", Flag::label);
                let _ = writeln!(
                    s,
                    "  {label:<8} {} / {} / {}: {}",
                    c.model,
                    c.variant,
                    c.what,
                    c.reasons.join("; ")
                );
            }
        }
        for (title, mark, list) in [
            (
                "only in the baseline (missing from the candidate: flagged)",
                "MISSING  ",
                &self.only_in_baseline,
            ),
            ("only in the candidate (new: not compared)", "", &self.only_in_candidate),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n{title}:");
            for u in list {
                let _ = writeln!(s, "  {mark}{} {} / {} / {}", u.kind, u.model, u.variant, u.what);
            }
        }

        let x = &self.summary;
        let kinds: Vec<String> = [
            (x.changed, "changed"),
            (x.no_data, "no data"),
            (x.failed, "failed"),
            (x.missing, "missing"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{n} {k}"))
        .collect();
        let _ = write!(s, "\n{} of {} changes flagged", x.flagged, x.total);
        if !kinds.is_empty() {
            let _ = write!(s, ": {}", kinds.join(", "));
        }
        let _ = writeln!(
            s,
            " (changed: interval excludes 0 and |change| ≥ {:.1} pts; no data: {}; failed: over {:.1}% of jobs failed)",
            o.threshold * 100.0,
            if o.min_n <= 1 {
                "n = 0".to_string()
            } else {
                format!("n < {}", o.min_n)
            },
            o.max_failed * 100.0
        );
        if x.flagged == 0 && x.regression {
            for (label, side) in [("baseline", &self.baseline), ("candidate", &self.candidate)] {
                if side.too_many_failed {
                    let _ = writeln!(
                        s,
                        "but the {label} has {:.1}% failed jobs, above --max-failed {:.1}%: a regression",
                        side.failed_share * 100.0,
                        o.max_failed * 100.0
                    );
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Provenance, Stack, SweepInfo};
    use candor_core::stats::wilson;

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

    /// A cell: `(condition, n, compliant, failed)`.
    fn cell(condition: &str, n: u64, compliant: u64, failed: u64) -> Cell {
        Cell {
            model: "m".into(),
            variant: "default".into(),
            condition: condition.into(),
            n,
            compliant,
            compliance: (n > 0).then(|| wilson(compliant, n, Z95)),
            incomplete: 0,
            failed,
            classifiers: BTreeMap::new(),
            stack: Stack::default(),
            alignment_faking: None,
            per_seed: None,
            stopped_early: None,
            simulated_rate: None,
        }
    }

    /// A report of sweep `name` with these cells and the gap of the first two.
    fn report(name: &str, cells: Vec<Cell>) -> Report {
        let (done, failed) = cells
            .iter()
            .fold((0, 0), |(d, f), c| (d + c.n + c.incomplete + c.failed, f + c.failed));
        let gaps = match &cells[..] {
            [a, b, ..] => {
                let d = (a.n > 0 && b.n > 0).then(|| newcombe_diff(a.compliant, a.n, b.compliant, b.n, Z95));
                vec![Gap {
                    model: "m".into(),
                    variant: "default".into(),
                    a: a.condition.clone(),
                    b: b.condition.clone(),
                    diff: d.map(|d| d.rate),
                    lo: d.map(|d| d.lo),
                    hi: d.map(|d| d.hi),
                    n_a: a.n,
                    n_b: b.n,
                    paired: None,
                }]
            }
            _ => Vec::new(),
        };
        let failures = if failed > 0 {
            vec![FailureGroup {
                model: "m".into(),
                kind: "connect".into(),
                jobs: failed,
                first_error: "POST http://127.0.0.1:1/v1/chat/completions: could not connect".into(),
                hint: None,
            }]
        } else {
            Vec::new()
        };
        Report {
            sweep: SweepInfo {
                name: name.into(),
                id: format!("{name}-id"),
                jobs_total: done,
                jobs_done: done,
                jobs_incomplete: 0,
                jobs_failed: failed,
                jobs_dead_lettered: 0,
                cache_hits: 0,
                cost_usd: 0.0,
                budget_usd: None,
                budget_exhausted: false,
                failed_share: if done > 0 { failed as f64 / done as f64 } else { 0.0 },
                simulated: false,
                simulated_judges: false,
                primary_classifier: "compliant".into(),
                jobs_skipped: 0,
                target_width: None,
                alignment_faking_classifier: None,
                provenance: Provenance {
                    spec_hash: "s1".into(),
                    dataset_hash: "d1".into(),
                    ..Provenance::default()
                },
            },
            cells,
            gaps,
            costs: Vec::new(),
            failures,
            notes: Vec::new(),
        }
    }

    fn good() -> Report {
        report(
            "small",
            vec![cell("training", 100, 50, 0), cell("unmonitored", 100, 20, 0)],
        )
    }

    #[test]
    fn a_candidate_whose_jobs_all_failed_is_flagged_with_the_reason() {
        let dead = report("small", vec![cell("training", 0, 0, 24), cell("unmonitored", 0, 0, 24)]);
        let cmp = compare(&good(), &dead, &Options::default());
        assert!(cmp.different.is_empty(), "{:?}", cmp.different);
        assert_eq!(cmp.changes.len(), 3);
        assert!(
            cmp.changes
                .iter()
                .all(|c| c.flag == Some(Flag::NoData) && c.change.is_none())
        );
        assert_eq!(
            cmp.changes[0].reasons,
            ["candidate: n = 0 (24 failed: connect — POST http://127.0.0.1:1/v1/chat/completions: could not connect)"]
        );
        assert_eq!(
            cmp.changes[2].reasons,
            [
                "candidate training: n = 0 (24 failed)",
                "candidate unmonitored: n = 0 (24 failed)"
            ]
        );
        assert_eq!((cmp.summary.flagged, cmp.summary.no_data), (3, 3));
        assert!(cmp.summary.regression && cmp.candidate.too_many_failed);
        let text = cmp.to_text();
        assert!(text.contains("3 of 3 changes flagged: 3 no data"), "{text}");
        assert!(
            text.contains("NO DATA  m / default / training: candidate: n = 0 (24 failed: connect"),
            "{text}"
        );
    }

    #[test]
    fn a_baseline_without_data_is_flagged_too() {
        let dead = report(
            "small",
            vec![cell("training", 0, 0, 0), cell("unmonitored", 100, 20, 0)],
        );
        let cmp = compare(&dead, &good(), &Options::default());
        let training = &cmp.changes[0];
        assert_eq!(training.flag, Some(Flag::NoData));
        assert_eq!(training.reasons, ["baseline: n = 0 (no results)"]);
        assert_eq!(cmp.changes[1].flag, None, "unmonitored has data on both sides");
    }

    #[test]
    fn too_few_outputs_and_too_many_failures_follow_their_flags() {
        let thin = report(
            "small",
            vec![cell("training", 8, 4, 2), cell("unmonitored", 100, 20, 0)],
        );
        let strict = Options {
            min_n: 10,
            ..Options::default()
        };
        let cmp = compare(&good(), &thin, &strict);
        assert_eq!(cmp.changes[0].flag, Some(Flag::NoData));
        assert!(cmp.changes[0].reasons[0].starts_with("candidate: n = 8 < --min-n 10 (2 failed: connect"));
        assert!(cmp.changes[0].change.is_some(), "the numbers are still shown");

        let cmp = compare(&good(), &thin, &Options::default());
        assert_eq!(cmp.changes[0].flag, Some(Flag::Failed));
        assert!(
            cmp.changes[0].reasons[0].starts_with("candidate: 2 of 10 jobs failed (20.0%, above --max-failed 0.0%)"),
            "{:?}",
            cmp.changes[0].reasons
        );
        assert_eq!(cmp.changes[1].flag, None, "the other cell had no failures");
        assert_eq!(
            cmp.changes[2].flag,
            Some(Flag::Failed),
            "the gap has the failed cell on a side"
        );

        let lenient = Options {
            max_failed: 0.25,
            ..Options::default()
        };
        let cmp = compare(&good(), &thin, &lenient);
        assert!(
            cmp.changes.iter().all(|c| c.flag != Some(Flag::Failed)),
            "{:?}",
            cmp.changes
        );
        assert!(!cmp.candidate.too_many_failed);
    }

    #[test]
    fn the_same_behaviour_flags_nothing_and_a_moved_rate_is_changed() {
        let cmp = compare(&good(), &good(), &Options::default());
        assert_eq!(cmp.summary.flagged, 0);
        assert!(!cmp.summary.regression);
        assert!(cmp.to_text().contains("0 of 3 changes flagged ("));

        let moved = report(
            "small",
            vec![cell("training", 100, 85, 0), cell("unmonitored", 100, 20, 0)],
        );
        let cmp = compare(&good(), &moved, &Options::default());
        let flags: Vec<_> = cmp.changes.iter().map(|c| c.flag).collect();
        assert_eq!(flags, [Some(Flag::Changed), None, Some(Flag::Changed)]);
        assert_eq!(cmp.summary.changed, 2);
    }

    #[test]
    fn cells_of_one_report_only_are_listed_and_missing_ones_flagged() {
        let base = report(
            "small",
            vec![
                cell("training", 100, 50, 0),
                cell("unmonitored", 100, 20, 0),
                Cell {
                    model: "other".into(),
                    ..cell("training", 100, 50, 0)
                },
            ],
        );
        let mut cand = good();
        cand.cells.push(Cell {
            model: "new".into(),
            ..cell("unmonitored", 100, 20, 0)
        });
        let cmp = compare(&base, &cand, &Options::default());
        assert_eq!(
            cmp.only_in_baseline,
            [Unmatched {
                kind: "cell",
                model: "other".into(),
                variant: "default".into(),
                what: "training".into()
            }]
        );
        assert_eq!(cmp.only_in_candidate.len(), 1);
        assert_eq!(cmp.only_in_candidate[0].model, "new");
        assert_eq!((cmp.summary.flagged, cmp.summary.missing, cmp.summary.total), (1, 1, 4));
        assert!(cmp.summary.regression);
        let text = cmp.to_text();
        assert!(text.contains("MISSING  cell other / default / training"), "{text}");
        assert!(text.contains("1 of 4 changes flagged: 1 missing"), "{text}");
    }

    #[test]
    fn reports_of_different_specs_are_told_apart() {
        assert!(differences(&good(), &good()).is_empty());
        let mut other = report("small", vec![cell("training", 100, 50, 0), cell("watched", 100, 20, 0)]);
        other.sweep.name = "large".into();
        other.sweep.provenance.dataset_hash = "d2".into();
        let fields: Vec<_> = differences(&good(), &other).iter().map(|m| m.field).collect();
        assert_eq!(fields, ["sweep.name", "provenance.dataset_hash", "conditions"]);

        let mut reparametrised = good();
        reparametrised.sweep.provenance.spec_hash = "s2".into();
        assert!(
            differences(&good(), &reparametrised).is_empty(),
            "a spec hash alone is not another spec"
        );
        let cmp = compare(&good(), &reparametrised, &Options::default());
        assert!(
            cmp.notes.iter().any(|n| n.contains("spec hash s1 vs s2")),
            "{:?}",
            cmp.notes
        );

        let mut old = good();
        old.sweep.provenance = Provenance::default();
        assert!(
            differences(&old, &other)
                .iter()
                .all(|m| m.field != "provenance.dataset_hash")
        );
    }
}

//! The comparison as `candor compare` prints it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Change, Comparison, Flag};

/// The widest a table of changes is laid out in columns: a terminal of 100.
const WIDTH: usize = 100;
/// The room the widest flag takes (` NO DATA`, ` CHANGED`).
const FLAG_WIDTH: usize = 8;

impl Comparison {
    /// The text `candor compare` prints: the two reports, a table of the
    /// changes, why each no-data or failed cell is flagged, the cells and
    /// gaps of one report only, and the `N of M changes flagged` line.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_sides(&mut s);
        self.write_changes(&mut s);
        self.write_reasons(&mut s);
        self.write_unmatched(&mut s);
        self.write_summary(&mut s);
        s
    }

    /// The two reports, whether they are of one spec, and the notes.
    fn write_sides(&self, s: &mut String) {
        let o = &self.options;
        for (label, x) in [("baseline", &self.baseline), ("candidate", &self.candidate)] {
            let _ = write!(s, "{label:<10} {}  sweep {}", x.name, x.id);
            if let Some(sel) = &x.selector {
                let _ = write!(s, "  {sel}");
            }
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
    }

    /// A row per change, flagged ones marked; each column as wide as its
    /// widest value. A table wider than [`WIDTH`] names each model and
    /// variant on a line of its own above its rows instead of in columns.
    fn write_changes(&self, s: &mut String) {
        let pct = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |x| format!("{:.1}%", x * 100.0));
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        let head = [
            "model",
            "variant",
            "condition / gap",
            "metric",
            "baseline",
            "candidate",
            "change",
            "95% CI (pts)",
        ];
        let rows: Vec<[String; 8]> = self
            .changes
            .iter()
            .map(|c| {
                let (change, ci) = match c.change {
                    Some(x) => (pts(x.rate), format!("[{}, {}]", pts(x.lo), pts(x.hi))),
                    None => ("—".to_string(), "—".to_string()),
                };
                [
                    c.model.clone(),
                    c.variant.clone(),
                    c.what.clone(),
                    c.metric.to_string(),
                    pct(c.baseline),
                    pct(c.candidate),
                    change,
                    ci,
                ]
            })
            .collect();
        let mut w = head.map(|h| h.chars().count());
        for r in &rows {
            for (w, v) in w.iter_mut().zip(r) {
                *w = (*w).max(v.chars().count());
            }
        }
        // Too wide: without the model and variant columns, each group under its own line.
        let from = if w.iter().map(|x| x + 1).sum::<usize>() + FLAG_WIDTH > WIDTH {
            2
        } else {
            0
        };
        let line = |s: &mut String, cols: &[&str; 8], flag: &str| {
            let mut l = String::new();
            for (i, v) in cols.iter().enumerate().skip(from) {
                let pad = " ".repeat(w[i] - v.chars().count());
                // Text left-aligned, numbers right-aligned.
                if i < 4 {
                    let _ = write!(l, "{v}{pad} ");
                } else {
                    let _ = write!(l, "{pad}{v} ");
                }
            }
            l.push_str(flag);
            let _ = writeln!(s, "{}", l.trim_end());
        };
        line(s, &head, "");
        let mut group: Option<(&str, &str)> = None;
        for (c, r) in self.changes.iter().zip(&rows) {
            if from == 2 && group != Some((&r[0], &r[1])) {
                group = Some((&r[0], &r[1]));
                let _ = writeln!(s, "{} / {}", r[0], r[1]);
            }
            let flag = c.flag.map_or_else(String::new, |f| format!(" {}", f.label()));
            line(s, &r.each_ref().map(String::as_str), &flag);
        }
    }

    /// Why each no-data or failed cell or gap is flagged, once each.
    fn write_reasons(&self, s: &mut String) {
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
    }

    /// The cells and gaps of one report only.
    fn write_unmatched(&self, s: &mut String) {
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
    }

    /// The `N of M changes flagged` line, and a regression no change shows.
    fn write_summary(&self, s: &mut String) {
        let o = &self.options;
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
    }
}

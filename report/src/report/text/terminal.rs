//! The report as `candor run` and `candor report` print it: what failed
//! first, then the cells and the gaps, then the notes, every line at most
//! [`TERMINAL_WIDTH`] characters. A table too wide for it puts each model
//! on a line of its own above its rows (long model ids); text is wrapped.
//! What the terminal leaves out (compliant counts, alignment faking among
//! compliant outputs, the seed spread) is in report.md.

use std::fmt::Write as _;

use super::super::{MAX_LISTED_FAILURES, NO_DATA, NOT_COMPUTABLE, Report, is_failed_note};
use super::{clip, one_line};

/// The widest line the terminal's text is made to fit, in characters.
pub(super) const TERMINAL_WIDTH: usize = 100;

/// The longest first error the terminal shows, in characters.
const MAX_TERMINAL_ERROR: usize = 300;

impl Report {
    /// The report as plain text for a terminal: what failed first, then the
    /// tables, then the other notes.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        self.failure_lines(&mut s);
        let (head, cells) = self.terminal_cells();
        fit_table(&mut s, &head, &cells);
        if self.sweep.alignment_faking_classifier.is_some() {
            let _ = writeln!(
                s,
                "AF: alignment faking among all outputs (among the compliant ones: report.md)"
            );
        }
        let (head, gaps) = self.terminal_gaps();
        if !gaps.is_empty() {
            s.push('\n');
            fit_table(&mut s, &head, &gaps);
        }
        for n in self.notes.iter().filter(|n| !is_failed_note(n)) {
            wrap(&mut s, n, "", "  ");
        }
        s
    }

    /// The cell table: the rates with their intervals (in percent, the
    /// brackets without the sign), and a column for each way a job may have
    /// given no output only when one did.
    fn terminal_cells(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let ci = |r: f64, lo: f64, hi: f64| format!("{:.1}% [{:.1}, {:.1}]", r * 100.0, lo * 100.0, hi * 100.0);
        let s = &self.sweep;
        let af = s.alignment_faking_classifier.is_some();
        let incomplete = s.jobs_incomplete > 0 || self.cells.iter().any(|c| c.incomplete > 0);
        let truncated = s.jobs_truncated > 0;
        let filtered = s.jobs_filtered > 0;
        let early = s.target_width.is_some();
        let mut head = vec!["model", "variant", "condition", "n", "rate [95% CI]"];
        let optional = [
            (af, "AF [95% CI]"),
            (incomplete, "incomplete"),
            (truncated, "truncated"),
            (filtered, "filtered"),
            (true, "failed"),
            (early, "stopped at seed"),
        ];
        head.extend(optional.iter().filter(|o| o.0).map(|o| o.1));
        let rows = self
            .cells
            .iter()
            .map(|c| {
                let mut r = vec![
                    c.model.clone(),
                    c.variant.clone(),
                    c.condition.clone(),
                    c.n.to_string(),
                    c.compliance
                        .filter(|_| c.n > 0)
                        .map_or_else(|| NO_DATA.to_string(), |i| ci(i.rate, i.lo, i.hi)),
                ];
                if af {
                    r.push(match &c.alignment_faking {
                        Some(a) if a.among_all.n > 0 => ci(a.among_all.rate, a.among_all.lo, a.among_all.hi),
                        Some(_) => NO_DATA.to_string(),
                        None => "—".to_string(),
                    });
                }
                for (shown, count) in [
                    (incomplete, c.incomplete),
                    (truncated, c.truncated),
                    (filtered, c.filtered),
                    (true, c.failed),
                ] {
                    if shown {
                        r.push(count.to_string());
                    }
                }
                if early {
                    r.push(c.stopped_early.map_or_else(|| "—".to_string(), |s| s.to_string()));
                }
                r
            })
            .collect();
        (head.into_iter().map(String::from).collect(), rows)
    }

    /// The gap table; the compared conditions head the difference's column
    /// when every gap compares the same two. A gap with an empty side reads
    /// "not computable".
    fn terminal_gaps(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        let pair = self.gaps.first().map(|g| (&g.a, &g.b));
        let one_pair = self.gaps.iter().all(|g| Some((&g.a, &g.b)) == pair);
        let mut head = vec!["model".to_string(), "variant".to_string()];
        match pair {
            Some((a, b)) if one_pair => head.push(format!("gap {a} − {b}")),
            _ => head.extend(["gap".to_string(), "difference".to_string()]),
        }
        head.extend(["95% CI".to_string(), "paired 95% CI".to_string()]);
        let rows = self
            .gaps
            .iter()
            .map(|g| {
                let (diff, newcombe) = match (g.diff, g.lo, g.hi) {
                    (Some(d), Some(lo), Some(hi)) => (format!("{} pts", pts(d)), format!("[{}, {}]", pts(lo), pts(hi))),
                    _ => (NOT_COMPUTABLE.to_string(), "—".to_string()),
                };
                let mut r = vec![g.model.clone(), g.variant.clone()];
                if !one_pair {
                    r.push(format!("{} − {}", g.a, g.b));
                }
                r.extend([
                    diff,
                    newcombe,
                    g.paired
                        .map_or_else(|| "—".to_string(), |p| format!("[{}, {}]", pts(p.lo), pts(p.hi))),
                ]);
                r
            })
            .collect();
        (head, rows)
    }

    /// The terminal's failure banner: the share of failed jobs, then per
    /// model and reason the first error and what to check, a few lines each.
    fn failure_lines(&self, s: &mut String) {
        let notes: Vec<&String> = self.notes.iter().filter(|n| is_failed_note(n)).collect();
        if self.sweep.jobs_failed == 0 && notes.is_empty() {
            return;
        }
        if self.failures.is_empty() && !notes.is_empty() {
            // A report without the breakdown: its note as it is.
            for n in notes {
                wrap(s, n, "", "  ");
            }
        } else {
            wrap(s, &format!("FAILED: {}.", self.failed_headline()), "", "  ");
            for g in self.failures.iter().take(MAX_LISTED_FAILURES) {
                let jobs = if g.jobs == 1 { "job" } else { "jobs" };
                wrap(
                    s,
                    &format!("{} · {} · {} {jobs}", g.model, g.kind, g.jobs),
                    "  ",
                    "    ",
                );
                let error = clip(&one_line(&g.first_error), MAX_TERMINAL_ERROR);
                wrap(s, &error, "    ", "    ");
                if let Some(h) = &g.hint {
                    wrap(s, &format!("what to check: {h}"), "    ", "    ");
                }
            }
            if self.failures.len() > MAX_LISTED_FAILURES {
                let _ = writeln!(
                    s,
                    "  and {} more reasons: see report.md",
                    self.failures.len() - MAX_LISTED_FAILURES
                );
            }
        }
        s.push('\n');
    }
}

/// `text`'s lines wrapped at [`TERMINAL_WIDTH`] between words, the first
/// line after `first`, the others after `rest`; a word longer than a line is
/// cut.
fn wrap(out: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = first.to_string();
    let mut len = first.chars().count();
    let mut words = false;
    let mut flush = |line: &mut String, len: &mut usize, words: &mut bool| {
        let _ = writeln!(out, "{}", line.trim_end());
        *line = rest.to_string();
        *len = rest.chars().count();
        *words = false;
    };
    for (i, text_line) in text.lines().enumerate() {
        if i > 0 {
            flush(&mut line, &mut len, &mut words);
        }
        for word in text_line.split_whitespace() {
            if words && len + 1 + word.chars().count() > TERMINAL_WIDTH {
                flush(&mut line, &mut len, &mut words);
            }
            if words {
                line.push(' ');
                len += 1;
            }
            for c in word.chars() {
                if len >= TERMINAL_WIDTH {
                    flush(&mut line, &mut len, &mut words);
                }
                line.push(c);
                len += 1;
            }
            words = true;
        }
    }
    flush(&mut line, &mut len, &mut words);
}

/// A table of `rows` under `head`, as is when it fits the terminal, or else
/// with each first column's value (the model) on a line of its own above
/// its rows.
fn fit_table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    let flat = widths(head, rows);
    if flat.iter().sum::<usize>() + 2 * flat.len().saturating_sub(1) <= TERMINAL_WIDTH || head.len() < 3 {
        table(out, head, rows, |_| {});
        return;
    }
    let mut grouped_head = vec![format!("{} / {}", head[0], head[1])];
    grouped_head.extend(head[2..].iter().cloned());
    let grouped: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut g = vec![format!("  {}", r[1])];
            g.extend(r[2..].iter().cloned());
            g
        })
        .collect();
    let mut models = rows.iter().map(|r| &r[0]);
    let mut last: Option<&String> = None;
    table(out, &grouped_head, &grouped, |out| {
        let model = models.next();
        if model != last {
            let _ = writeln!(out, "{}", model.map_or("", |m| m.as_str()));
            last = model;
        }
    });
}

fn widths(head: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    w
}

/// A table with a rule under its head; `before_row` writes what goes
/// above each row.
fn table(out: &mut String, head: &[String], rows: &[Vec<String>], mut before_row: impl FnMut(&mut String)) {
    let w = widths(head, rows);
    let line = |out: &mut String, cols: &[String]| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            l.push_str(c);
            if i + 1 < cols.len() {
                l.extend(std::iter::repeat_n(' ', w[i] - c.chars().count() + 2));
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(out, head);
    let rules: Vec<String> = w.iter().map(|&n| "─".repeat(n)).collect();
    line(out, &rules);
    for r in rows {
        before_row(out);
        line(out, r);
    }
}

//! The report as text: report.md (Markdown, the failures first), with
//! every model side by side (`models`, which report.html shows too), and the
//! tables `candor run` prints in a terminal (`terminal`).

use std::fmt::Write as _;

use super::{NO_DATA, NOT_COMPUTABLE, Rate, Report, is_failed_note, params_json};

mod models;
mod terminal;
#[cfg(test)]
mod tests;

impl Report {
    /// The cell table's header and rows: the alignment-faking columns only
    /// when the sweep has that classifier, the stop column only with early stopping.
    /// A rate over no outputs reads "no data", never 0.0%.
    fn cell_rows(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let ci = |r: f64, lo: f64, hi: f64| format!("{} [{}, {}]", pct(r), pct(lo), pct(hi));
        let rate_ci = |r: &Rate| {
            if r.n == 0 {
                NO_DATA.to_string()
            } else {
                ci(r.rate, r.lo, r.hi)
            }
        };
        let af = self.sweep.alignment_faking_classifier.is_some();
        let early = self.sweep.target_width.is_some();
        // Shown when any job ended so, to keep the table narrow otherwise.
        let truncated = self.sweep.jobs_truncated > 0;
        let filtered = self.sweep.jobs_filtered > 0;
        let mut head = vec!["model", "variant", "condition", "n", "compliant", "rate [95% CI]"];
        if af {
            head.extend([
                "faking/compliant",
                "AF among compliant [95% CI]",
                "AF among all [95% CI]",
            ]);
        }
        head.extend(["seed sd", "incomplete", "failed"]);
        if truncated {
            head.push("truncated");
        }
        if filtered {
            head.push("filtered");
        }
        if early {
            head.push("stopped at seed");
        }
        let rows = self
            .cells
            .iter()
            .map(|c| {
                let mut r = vec![
                    c.model.clone(),
                    c.variant.clone(),
                    c.condition.clone(),
                    c.n.to_string(),
                    c.compliant.to_string(),
                    c.compliance
                        .filter(|_| c.n > 0)
                        .map_or_else(|| NO_DATA.to_string(), |i| ci(i.rate, i.lo, i.hi)),
                ];
                if af {
                    match &c.alignment_faking {
                        Some(a) => r.extend([
                            format!("{}/{}", a.among_compliant.k, a.among_compliant.n),
                            rate_ci(&a.among_compliant),
                            rate_ci(&a.among_all),
                        ]),
                        None => r.extend(["—".to_string(), "—".to_string(), "—".to_string()]),
                    }
                }
                r.push(
                    c.per_seed
                        .map_or_else(|| "—".to_string(), |s| format!("{:.1} pts", s.sd * 100.0)),
                );
                r.push(c.incomplete.to_string());
                r.push(c.failed.to_string());
                if truncated {
                    r.push(c.truncated.to_string());
                }
                if filtered {
                    r.push(c.filtered.to_string());
                }
                if early {
                    r.push(c.stopped_early.map_or_else(|| "—".to_string(), |s| s.to_string()));
                }
                r
            })
            .collect();
        (head, rows)
    }

    /// The gap table's rows; a gap with an empty side reads "not computable".
    fn gap_rows(&self) -> Vec<Vec<String>> {
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        self.gaps
            .iter()
            .map(|g| {
                let (diff, newcombe) = match (g.diff, g.lo, g.hi) {
                    (Some(d), Some(lo), Some(hi)) => (format!("{} pts", pts(d)), format!("[{}, {}]", pts(lo), pts(hi))),
                    _ => (NOT_COMPUTABLE.to_string(), "—".to_string()),
                };
                vec![
                    g.model.clone(),
                    g.variant.clone(),
                    format!("{} − {}", g.a, g.b),
                    diff,
                    newcombe,
                    g.paired
                        .map_or_else(|| "—".to_string(), |p| format!("[{}, {}]", pts(p.lo), pts(p.hi))),
                ]
            })
            .collect()
    }

    /// "8 of 8 jobs failed (100%)": failed jobs among the jobs with a result,
    /// and how many jobs have none yet when some have not.
    pub(crate) fn failed_headline(&self) -> String {
        let s = &self.sweep;
        let mut t = format!(
            "{} of {} {} failed ({})",
            s.jobs_failed,
            s.jobs_done,
            if s.jobs_done == 1 { "job" } else { "jobs" },
            share(s.jobs_failed, s.jobs_done)
        );
        if s.jobs_done < s.jobs_total {
            let _ = write!(
                t,
                "; {} of the sweep's {} jobs have no result yet",
                s.jobs_total - s.jobs_done,
                s.jobs_total
            );
        }
        t
    }

    /// The notes, those about failed jobs first.
    fn notes_failed_first(&self) -> impl Iterator<Item = &str> {
        let failed = self.notes.iter().filter(|n| is_failed_note(n));
        let other = self.notes.iter().filter(|n| !is_failed_note(n));
        failed.chain(other).map(String::as_str)
    }

    /// The report as Markdown: the notes (failures first), the failures by
    /// model and reason, every model side by side, the cells, the gaps, and
    /// where the report comes from.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {} — sweep {}\n", self.sweep.name, self.sweep.id);
        for n in self.notes_failed_first() {
            for line in n.lines() {
                let _ = writeln!(s, "> {line}");
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "{} of {} jobs done ({} incomplete, {} truncated at the token limit, {} filtered by the provider, {} failed). \
             Compliance = classifier `{}`.\n",
            self.sweep.jobs_done,
            self.sweep.jobs_total,
            self.sweep.jobs_incomplete,
            self.sweep.jobs_truncated,
            self.sweep.jobs_filtered,
            self.sweep.jobs_failed,
            self.sweep.primary_classifier
        );
        if !self.failures.is_empty() {
            let _ = writeln!(
                s,
                "## Failures\n\n{}. By model and reason, the most frequent first:\n",
                self.failed_headline()
            );
            let rows: Vec<Vec<String>> = self
                .failures
                .iter()
                .map(|g| {
                    vec![
                        g.model.clone(),
                        g.kind.clone(),
                        g.jobs.to_string(),
                        md_code(&one_line(&g.first_error)),
                        g.hint.clone().unwrap_or_else(|| "—".to_string()),
                    ]
                })
                .collect();
            markdown_table(
                &mut s,
                &["model", "reason", "jobs", "first error", "what to check"],
                &rows,
                2..3,
            );
            s.push('\n');
        }
        self.markdown_side_by_side(&mut s);
        let _ = writeln!(s, "## Cells\n");
        let (head, cells) = self.cell_rows();
        markdown_table(&mut s, &head, &cells, 3..head.len());
        let gaps = self.gap_rows();
        if !gaps.is_empty() {
            let _ = writeln!(s, "\n## Compliance gap\n");
            markdown_table(
                &mut s,
                &[
                    "model",
                    "variant",
                    "gap",
                    "difference",
                    "95% CI (Newcombe)",
                    "95% CI (paired bootstrap)",
                ],
                &gaps,
                3..6,
            );
        }
        self.markdown_provenance(&mut s);
        s
    }

    /// Which candor, run, spec, dataset and models the report comes from.
    fn markdown_provenance(&self, s: &mut String) {
        let p = &self.sweep.provenance;
        if p.candor_version.is_empty() {
            return;
        }
        let _ = write!(s, "\n## Provenance\n\ncandor {}", p.candor_version);
        if let Some(run) = &p.run_label {
            let _ = write!(s, " · run {}", md_code(run));
        }
        if let Some(t) = &p.started_at {
            let _ = write!(s, " · started {t}");
        }
        if let Some(t) = &p.finished_at {
            let _ = write!(s, " · finished {t}");
        }
        let _ = writeln!(
            s,
            " · spec {} · dataset {}\n",
            md_code(&p.spec_hash),
            md_code(&p.dataset_hash)
        );
        for (role, m) in p
            .models
            .iter()
            .map(|m| ("model", m))
            .chain(p.judges.iter().map(|m| ("judge", m)))
        {
            let _ = write!(s, "- {role} {}: {}", md_code(&m.id), m.backend);
            if !m.model.is_empty() {
                let _ = write!(s, " {}", md_code(&m.model));
            }
            if let Some(u) = &m.base_url {
                let _ = write!(s, " at {}", md_code(u));
            }
            let _ = writeln!(s, " · params {}", md_code(&params_json(m)));
        }
    }
}

/// `k` of `n` in percent, as short as is exact enough: "100%", "12.5%", "<0.1%".
pub(crate) fn share(k: u64, n: u64) -> String {
    if n == 0 {
        return "0%".to_string();
    }
    let p = k as f64 * 100.0 / n as f64;
    if k > 0 && p < 0.05 {
        "<0.1%".to_string()
    } else if k < n && p > 99.95 {
        ">99.9%".to_string()
    } else if (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Text on one line: its lines joined by spaces.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Text as a Markdown code span, whatever backticks it holds: shown as it
/// is, never as markup.
pub(super) fn md_code(s: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A Markdown table; the `numeric` columns are right-aligned. A cell's pipes
/// are escaped and its lines joined, so that it stays one cell.
fn markdown_table(out: &mut String, head: &[&str], rows: &[Vec<String>], numeric: std::ops::Range<usize>) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = (0..head.len())
        .map(|i| if numeric.contains(&i) { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| one_line(c).replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

//! The page as `page.html.j2` shows it: the head, the header (the failure
//! banner, the notes shown as banners, the tiles, the provenance), the
//! chart, the tables, the transcript browser and the footer.

use std::io::{self, Write};

use minijinja::{Value, context};
use serde::Serialize;

use super::script::{Data, DataBlock};
use super::{Embedded, MAX_EMBEDDED_BYTES, MAX_EMBEDDED_JOBS, chart, tables, templates};
use crate::report::{FailureGroup, MAX_LISTED_FAILURES, ModelInfo, Report, is_failed_note, params_json};

/// Writes the page for `report`, embedding `data` for its script.
pub(super) fn write(report: &Report, data: Data, out: &mut impl Write) -> io::Result<Embedded> {
    let embedded = data.embedded;
    let page = Page {
        failed: report.sweep.jobs_failed > 0,
        header: Header::of(report),
        chart: chart::Chart::of(report),
        tables: tables::Tables::of(report),
        transcripts: Transcripts {
            embedded,
            max_jobs: MAX_EMBEDDED_JOBS as u64,
            max_mb: MAX_EMBEDDED_BYTES >> 20,
        },
        footnotes: report.notes.iter().filter(|n| banner(report, n).is_none()).collect(),
    };
    let ctx = context! { page, data => Value::from_object(DataBlock(data)) };
    templates::render("page.html.j2", ctx, out)?;
    out.flush()?;
    Ok(embedded)
}

#[derive(Serialize)]
struct Page<'a> {
    /// The title says FAILED.
    failed: bool,
    header: Header<'a>,
    chart: chart::Chart<'a>,
    tables: tables::Tables<'a>,
    transcripts: Transcripts,
    /// The notes that are not banners.
    footnotes: Vec<&'a String>,
}

#[derive(Serialize)]
struct Header<'a> {
    name: &'a str,
    id: &'a str,
    primary: &'a str,
    faking: Option<&'a str>,
    failure: Option<FailureBanner<'a>>,
    /// The notes shown as banners, but the FAILED one.
    banners: Vec<Banner<'a>>,
    tiles: Tiles,
    provenance: Option<Provenance<'a>>,
    /// The sweep's fields this page does not know.
    extra: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Banner<'a> {
    tag: &'a str,
    text: &'a str,
    /// A simulated judge is a note, not news.
    role: Option<&'static str>,
}

/// The banner at the top of a page of a sweep with failed jobs: how many
/// failed, and for the first reasons (each model's most frequent first)
/// the model, the kind of error, the jobs, the first error and what to check.
#[derive(Serialize)]
struct FailureBanner<'a> {
    headline: String,
    /// A report without the breakdown: its note, as it is.
    note: Option<&'a str>,
    reasons: Vec<tables::Failure<'a>>,
    /// Reasons left out of the banner.
    more: usize,
}

#[derive(Serialize)]
struct Tiles {
    done: u64,
    total: u64,
    outputs: u64,
    incomplete: u64,
    truncated: u64,
    filtered: u64,
    failed: u64,
    dead_lettered: u64,
    cost: f64,
    budget: Option<f64>,
    cache_hits: u64,
    skipped: u64,
    target_width: Option<f64>,
}

/// Which candor, run, spec, dataset and models the report comes from.
#[derive(Serialize)]
struct Provenance<'a> {
    version: &'a str,
    run: Option<&'a str>,
    /// When it started and finished, when either is known.
    ran: Option<(&'a str, &'a str)>,
    spec_hash: &'a str,
    dataset_hash: &'a str,
    models: Vec<Model<'a>>,
}

#[derive(Serialize)]
struct Model<'a> {
    /// `model` (under test) or `judge`.
    role: &'static str,
    id: &'a str,
    backend: &'a str,
    model: &'a str,
    base_url: Option<&'a str>,
    params: String,
}

#[derive(Serialize)]
struct Transcripts {
    embedded: Embedded,
    max_jobs: u64,
    max_mb: usize,
}

impl<'a> Header<'a> {
    fn of(r: &'a Report) -> Self {
        let s = &r.sweep;
        let banners = r
            .notes
            .iter()
            .filter_map(|n| banner(r, n))
            .filter(|(tag, _)| *tag != "FAILED")
            .map(|(tag, text)| Banner {
                tag,
                text,
                role: (tag == "SIMULATED JUDGE").then_some("note"),
            })
            .collect();
        let sweep = serde_json::to_value(s).unwrap_or(serde_json::Value::Null);
        Header {
            name: &s.name,
            id: &s.id,
            primary: &s.primary_classifier,
            faking: s.alignment_faking_classifier.as_deref(),
            failure: FailureBanner::of(r),
            banners,
            tiles: Tiles {
                done: s.jobs_done,
                total: s.jobs_total,
                outputs: s
                    .jobs_done
                    .saturating_sub(s.jobs_incomplete)
                    .saturating_sub(s.jobs_truncated)
                    .saturating_sub(s.jobs_filtered)
                    .saturating_sub(s.jobs_failed),
                incomplete: s.jobs_incomplete,
                truncated: s.jobs_truncated,
                filtered: s.jobs_filtered,
                failed: s.jobs_failed,
                dead_lettered: s.jobs_dead_lettered,
                cost: s.cost_usd,
                budget: s.budget_usd,
                cache_hits: s.cache_hits,
                skipped: s.jobs_skipped,
                target_width: s.target_width,
            },
            provenance: Provenance::of(&s.provenance),
            extra: tables::unknown_fields(&sweep, KNOWN_SWEEP_FIELDS),
        }
    }
}

impl<'a> FailureBanner<'a> {
    fn of(r: &'a Report) -> Option<Self> {
        let note = r.notes.iter().find(|n| is_failed_note(n));
        if r.sweep.jobs_failed == 0 && note.is_none() {
            return None;
        }
        Some(FailureBanner {
            headline: r.failed_headline(),
            note: note
                .filter(|_| r.failures.is_empty())
                .and_then(|n| n.split_once(':'))
                .map(|(_, rest)| rest.trim()),
            reasons: listed_failures(&r.failures)
                .into_iter()
                .map(tables::Failure::of)
                .collect(),
            more: r.failures.len().saturating_sub(MAX_LISTED_FAILURES),
        })
    }
}

impl<'a> Provenance<'a> {
    fn of(p: &'a crate::report::Provenance) -> Option<Self> {
        if p.candor_version.is_empty() {
            return None;
        }
        let ran = match (&p.started_at, &p.finished_at) {
            (None, None) => None,
            (a, b) => Some((a.as_deref().unwrap_or("?"), b.as_deref().unwrap_or("not finished"))),
        };
        let model = |role, m: &'a ModelInfo| Model {
            role,
            id: &m.id,
            backend: &m.backend,
            model: &m.model,
            base_url: m.base_url.as_deref(),
            params: params_json(m),
        };
        Some(Provenance {
            version: &p.candor_version,
            run: p.run_label.as_deref(),
            ran,
            spec_hash: &p.spec_hash,
            dataset_hash: &p.dataset_hash,
            models: (p.models.iter().map(|m| model("model", m)))
                .chain(p.judges.iter().map(|m| model("judge", m)))
                .collect(),
        })
    }
}

/// A note's tag and text when the page shows it as a banner: a note
/// headed by a tag in capitals ("PARTIAL: ..."), except a SIMULATED note
/// of a sweep whose models under test are not simulated. Other notes go
/// to the footer.
fn banner<'n>(report: &Report, note: &'n str) -> Option<(&'n str, &'n str)> {
    let (tag, rest) = note.split_once(':')?;
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_uppercase() || c == ' ') {
        return None;
    }
    if tag == "SIMULATED" && !report.sweep.simulated {
        return None;
    }
    Some((tag, rest.trim()))
}

/// The reasons for failure a banner lists: each model's most frequent one,
/// then the most frequent others, at most `MAX_LISTED_FAILURES`, in the
/// report's order (the most frequent first).
fn listed_failures(failures: &[FailureGroup]) -> Vec<&FailureGroup> {
    let mut pick = vec![false; failures.len()];
    let mut chosen = 0;
    for (i, g) in failures.iter().enumerate() {
        if chosen < MAX_LISTED_FAILURES && !failures[..i].iter().any(|e| e.model == g.model) {
            pick[i] = true;
            chosen += 1;
        }
    }
    for p in pick.iter_mut() {
        if chosen < MAX_LISTED_FAILURES && !*p {
            *p = true;
            chosen += 1;
        }
    }
    failures.iter().zip(pick).filter(|(_, p)| *p).map(|(g, _)| g).collect()
}

/// The sweep's fields the page shows (or means to leave out); any other is
/// shown as it is.
const KNOWN_SWEEP_FIELDS: &[&str] = &[
    "jobs_skipped",
    "target_width",
    "name",
    "id",
    "jobs_total",
    "jobs_done",
    "jobs_incomplete",
    "jobs_truncated",
    "jobs_filtered",
    "jobs_failed",
    "jobs_dead_lettered",
    "cache_hits",
    "cost_usd",
    "budget_usd",
    "budget_exhausted",
    "failed_share",
    "simulated",
    "simulated_judges",
    "provenance",
    "primary_classifier",
    "alignment_faking_classifier",
];

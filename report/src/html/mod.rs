//! report.html: one self-contained page with the compliance chart, the
//! tables of the report, and a browser of the transcripts.
//!
//! The markup is minijinja templates (`*.html.j2` here, see `templates`)
//! that escape everything they write as HTML text; `page`, `chart` and
//! `tables` hand them what to show as serializable views of the report. The
//! transcript browser is the page's one script, which reads the results
//! (`sample`) from a JSON block and writes them into the page as text only.
//! Nothing is loaded from anywhere: a Content-Security-Policy allows no
//! source at all and only the script whose hash it names (`script`).

use std::io::{BufRead, Write};

use crate::lines::{self, MAX_LINE_BYTES};
use crate::report::Report;

mod chart;
mod format;
mod page;
mod sample;
mod script;
mod tables;
mod templates;
#[cfg(test)]
mod tests;

pub use format::esc;
pub use sample::Sample;

/// Most results embedded for the transcript browser.
pub const MAX_EMBEDDED_JOBS: usize = 2_000;
/// Most bytes of results (as JSON) embedded for the transcript browser.
pub const MAX_EMBEDDED_BYTES: usize = 20 << 20;

/// How much of the results the page embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub jobs: usize,
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            jobs: MAX_EMBEDDED_JOBS,
            bytes: MAX_EMBEDDED_BYTES,
        }
    }
}

/// What the page holds of the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Embedded {
    /// Results embedded for the transcript browser.
    pub shown: u64,
    /// Results read.
    pub total: u64,
    /// Lines that were not a JSON object, left out.
    pub unreadable: u64,
}

/// Writes report.html for `report`, with a transcript browser over the
/// results read from `results` (a `results.jsonl`), within the default
/// limits.
pub fn write_html(report: &Report, results: impl BufRead, out: &mut impl Write) -> std::io::Result<Embedded> {
    write_html_within(report, results, out, Limits::default())
}

/// As [`write_html`], embedding at most `limits` of the results: when there
/// are more, the first results of each model × variant × condition, as evenly
/// as the limits allow. The page says how many of how many it shows.
pub fn write_html_within(
    report: &Report,
    results: impl BufRead,
    out: &mut impl Write,
    limits: Limits,
) -> std::io::Result<Embedded> {
    let mut sample = Sample::new(limits);
    lines::for_each(results, MAX_LINE_BYTES, |line| {
        sample.offer(&line);
        Ok(())
    })?;
    sample.write(report, out)
}

impl Sample {
    /// Writes the page for `report` with the results kept so far.
    pub fn write(self, report: &Report, out: &mut impl Write) -> std::io::Result<Embedded> {
        page::write(report, self.finish(report), out)
    }
}

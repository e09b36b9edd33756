//! report.html: one self-contained page with the compliance chart, the
//! tables of the report, and a browser of the transcripts.
//!
//! The chart and the tables are rendered here, as escaped HTML and inline
//! SVG; the transcript browser is the page's one script, which reads the
//! results from a JSON block and writes them into the page as text only.
//! Nothing is loaded from anywhere: a Content-Security-Policy allows no
//! source at all and only the script whose hash it names.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, Write};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::lines::{self, Line, MAX_LINE_BYTES, Record};
use crate::report::{
    Cell, ClassifierRate, FailureGroup, Gap, MAX_LISTED_FAILURES, ModelInfo, NO_DATA, NOT_COMPUTABLE, Rate, Report,
    is_failed_note, params_json,
};
use candor_core::stats::Interval;

/// Most results embedded for the transcript browser.
pub const MAX_EMBEDDED_JOBS: usize = 2_000;
/// Most bytes of results (as JSON) embedded for the transcript browser.
pub const MAX_EMBEDDED_BYTES: usize = 20 << 20;

const SCRIPT: &str = include_str!("html/report.js");
const STYLE: &str = include_str!("html/report.css");

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
        let data = self.finish(report);
        write_page(report, data, out)
    }
}

fn write_page(report: &Report, data: Data, out: &mut impl Write) -> std::io::Result<Embedded> {
    let page = Page {
        report,
        embedded: data.embedded,
    };
    out.write_all(page.head().as_bytes())?;
    out.write_all(page.body().as_bytes())?;
    out.write_all(b"<script type=\"application/json\" id=\"candor-data\">{\"meta\":")?;
    write_for_script(out, &data.meta.to_string())?;
    out.write_all(b",\"systems\":")?;
    write_for_script(out, &data.systems.to_string())?;
    out.write_all(b",\"jobs\":[")?;
    for (i, job) in data.jobs.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_for_script(out, job)?;
    }
    out.write_all(b"]}</script>\n<script>")?;
    out.write_all(SCRIPT.as_bytes())?;
    out.write_all(b"</script>\n</body>\n</html>\n")?;
    out.flush()?;
    Ok(data.embedded)
}

/// Writes JSON text so that it cannot end or open an HTML element, comment
/// or script inside a `<script>` block: `<`, `>`, `&`, U+2028 and U+2029 are
/// written as `\uXXXX` escapes, which mean the same inside JSON strings (and
/// serde_json writes them nowhere else).
fn write_for_script(out: &mut impl Write, json: &str) -> std::io::Result<()> {
    let mut last = 0;
    for (i, c) in json.char_indices() {
        let esc = match c {
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            _ => continue,
        };
        out.write_all(&json.as_bytes()[last..i])?;
        out.write_all(esc.as_bytes())?;
        last = i + c.len_utf8();
    }
    out.write_all(&json.as_bytes()[last..])
}

// ---------------------------------------------------------------------------
// The sample of results for the transcript browser.

/// Where a kept result belongs.
struct CellKey {
    model: String,
    variant: String,
    condition: String,
}

struct Kept {
    /// Its line among the readable ones, from 1.
    seq: u64,
    query_index: u64,
    seed: u64,
    system: Option<usize>,
    /// The result as embedded (compact JSON): its transcript's system prompt
    /// replaced by an index into the table of system prompts.
    json: String,
}

/// The results a page embeds, chosen as they are read: within the limits,
/// the first results of every model × variant × condition, as evenly as the
/// limits allow.
pub struct Sample {
    limits: Limits,
    /// Per cell, in the order first seen: its place and its kept results.
    cells: Vec<(CellKey, Vec<Kept>)>,
    /// model, variant and condition, NUL-separated → cell.
    index: HashMap<String, usize>,
    key: String,
    /// (kept results, cell): the fullest cell is the last.
    fullness: BTreeSet<(usize, usize)>,
    jobs: usize,
    bytes: usize,
    systems: Vec<String>,
    system_index: HashMap<String, usize>,
    total: u64,
    unreadable: u64,
}

struct Data {
    meta: Value,
    systems: Value,
    jobs: Vec<String>,
    embedded: Embedded,
}

impl Sample {
    pub fn new(limits: Limits) -> Self {
        Sample {
            limits,
            cells: Vec::new(),
            index: HashMap::new(),
            key: String::new(),
            fullness: BTreeSet::new(),
            jobs: 0,
            bytes: 0,
            systems: Vec::new(),
            system_index: HashMap::new(),
            total: 0,
            unreadable: 0,
        }
    }

    /// Reads one line of results.jsonl: keeps the result if the limits allow,
    /// making room by dropping the last kept result of the fullest cell. An
    /// unreadable line is counted.
    pub fn offer(&mut self, line: &Line<'_>) {
        match line {
            Line::Record(r) => self.keep(r),
            Line::Unreadable => self.unreadable += 1,
        }
    }

    fn keep(&mut self, r: &Record<'_>) {
        let (model, variant, condition) = (&r.fields.model, &r.fields.variant, &r.fields.condition);
        self.total += 1;
        let seq = self.total;
        let cell = self.cell(model, variant, condition);
        // A result of one of the fullest cells would be the first to go.
        let full = self.jobs >= self.limits.jobs || self.bytes >= self.limits.bytes;
        if full && self.cells[cell].1.len() >= self.fullest() {
            return;
        }
        let Ok(Value::Object(mut r)) = serde_json::from_slice::<Value>(r.json) else {
            return;
        };
        let num = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(u64::MAX);
        let (query_index, seed) = (num(r.get("query_index")), num(r.get("seed")));
        r.remove("sweep_id");
        r.remove("index");
        let mut system = None;
        if let Some(Value::Object(mut t)) = r.remove("transcript") {
            if let Some(Value::String(text)) = t.remove("system") {
                let next = self.systems.len();
                let i = *self.system_index.entry(text.clone()).or_insert(next);
                if i == next {
                    self.bytes += text.len();
                    self.systems.push(text);
                }
                system = Some(i);
                r.insert("system".into(), Value::from(i));
            }
            if let Some(m) = t.remove("messages") {
                r.insert("messages".into(), m);
            }
        }
        let json = Value::Object(r).to_string();
        self.bytes += json.len();
        self.jobs += 1;
        self.push(
            cell,
            Kept {
                seq,
                query_index,
                seed,
                system,
                json,
            },
        );
        while self.jobs > self.limits.jobs || self.bytes > self.limits.bytes {
            let victim = if self.cells[cell].1.len() == self.fullest() {
                cell
            } else {
                self.fullness.last().expect("a kept result").1
            };
            let gone = self.pop(victim);
            self.jobs -= 1;
            self.bytes -= gone.json.len();
            if gone.seq == seq {
                break;
            }
        }
    }

    fn cell(&mut self, model: &str, variant: &str, condition: &str) -> usize {
        self.key.clear();
        for part in [model, variant, condition] {
            self.key.push_str(part);
            self.key.push('\0');
        }
        if let Some(&c) = self.index.get(self.key.as_str()) {
            return c;
        }
        let c = self.cells.len();
        self.index.insert(self.key.clone(), c);
        let key = CellKey {
            model: model.to_string(),
            variant: variant.to_string(),
            condition: condition.to_string(),
        };
        self.cells.push((key, Vec::new()));
        self.fullness.insert((0, c));
        c
    }

    fn fullest(&self) -> usize {
        self.fullness.last().map_or(0, |&(n, _)| n)
    }

    fn push(&mut self, cell: usize, kept: Kept) {
        let n = self.cells[cell].1.len();
        self.fullness.remove(&(n, cell));
        self.fullness.insert((n + 1, cell));
        self.cells[cell].1.push(kept);
    }

    fn pop(&mut self, cell: usize) -> Kept {
        let n = self.cells[cell].1.len();
        self.fullness.remove(&(n, cell));
        self.fullness.insert((n - 1, cell));
        self.cells[cell].1.pop().expect("the fullest cell holds a result")
    }

    /// The data the page's script reads: the kept results ordered by model,
    /// variant, query, seed and condition (so that a query's conditions sit
    /// together).
    fn finish(self, report: &Report) -> Data {
        let order = Order::of(report, self.cells.iter().map(|(p, _)| p));
        let mut places = Vec::with_capacity(self.cells.len());
        let mut kept: Vec<(usize, Kept)> = Vec::with_capacity(self.jobs);
        for (i, (place, ks)) in self.cells.into_iter().enumerate() {
            places.push(place);
            kept.extend(ks.into_iter().map(|k| (i, k)));
        }
        kept.sort_by_key(|(i, k)| {
            let p = &places[*i];
            (
                order.model(&p.model),
                order.variant(&p.variant),
                k.query_index,
                k.seed,
                order.condition(&p.condition),
                k.seq,
            )
        });
        // System prompts no kept result refers to are left out (as null, so
        // that the indices hold).
        let used: BTreeSet<usize> = kept.iter().filter_map(|(_, k)| k.system).collect();
        let systems = self
            .systems
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                if used.contains(&i) {
                    Value::String(s)
                } else {
                    Value::Null
                }
            })
            .collect();
        let embedded = Embedded {
            shown: kept.len() as u64,
            total: self.total,
            unreadable: self.unreadable,
        };
        let meta = serde_json::json!({
            "primary": report.sweep.primary_classifier,
            "alignment_faking": report.sweep.alignment_faking_classifier,
            "classifiers": crate::report::classifier_names(report),
            "models": order.models,
            "variants": order.variants,
            "conditions": order.conditions,
            "shown": embedded.shown,
            "total": embedded.total,
        });
        Data {
            meta,
            systems: Value::Array(systems),
            jobs: kept.into_iter().map(|(_, k)| k.json).collect(),
            embedded,
        }
    }
}

/// The order of models, variants and conditions: the report's, then any
/// others by name.
struct Order {
    models: Vec<String>,
    variants: Vec<String>,
    conditions: Vec<String>,
}

impl Order {
    fn of<'a>(report: &Report, seen: impl Iterator<Item = &'a CellKey>) -> Order {
        let mut o = Order {
            models: Vec::new(),
            variants: Vec::new(),
            conditions: Vec::new(),
        };
        for c in &report.cells {
            push_new(&mut o.models, &c.model);
            push_new(&mut o.variants, &c.variant);
            push_new(&mut o.conditions, &c.condition);
        }
        let (m, v, c) = (o.models.len(), o.variants.len(), o.conditions.len());
        for p in seen {
            push_new(&mut o.models, &p.model);
            push_new(&mut o.variants, &p.variant);
            push_new(&mut o.conditions, &p.condition);
        }
        o.models[m..].sort();
        o.variants[v..].sort();
        o.conditions[c..].sort();
        o
    }
    fn rank(list: &[String], s: &str) -> usize {
        list.iter().position(|x| x == s).unwrap_or(usize::MAX)
    }
    fn model(&self, s: &str) -> usize {
        Self::rank(&self.models, s)
    }
    fn variant(&self, s: &str) -> usize {
        Self::rank(&self.variants, s)
    }
    fn condition(&self, s: &str) -> usize {
        Self::rank(&self.conditions, s)
    }
}

fn push_new(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

// ---------------------------------------------------------------------------
// The page.

/// Text for HTML (element content or a quoted attribute).
fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    Cow::Owned(o)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// An interval in percent: `[24.1, 36.6]`.
fn ci(lo: f64, hi: f64) -> String {
    format!("[{:.1}, {:.1}]", lo * 100.0, hi * 100.0)
}

/// A difference in percentage points: `+12.3`.
fn pts(x: f64) -> String {
    format!("{:+.1}", x * 100.0)
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

fn usd(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.01 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

/// Standard base64, for the script's hash in the Content-Security-Policy.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                o.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// The policy: nothing may be loaded, and only the page's own script runs.
fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; img-src data:; \
         base-uri 'none'; form-action 'none'",
        base64(&Sha256::digest(SCRIPT.as_bytes()))
    )
}

/// A cell's or the sweep's fields that this page does not know (added to the
/// report after it was written): shown as they are.
fn unknown_fields(v: &Value, known: &[&str]) -> Vec<(String, String)> {
    let Value::Object(m) = v else {
        return Vec::new();
    };
    m.iter()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(true) => "yes".into(),
                Value::Bool(false) => "no".into(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

const KNOWN_SWEEP_FIELDS: &[&str] = &[
    "jobs_skipped",
    "target_width",
    "name",
    "id",
    "jobs_total",
    "jobs_done",
    "jobs_incomplete",
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

const KNOWN_CELL_FIELDS: &[&str] = &[
    "model",
    "variant",
    "condition",
    "n",
    "compliant",
    "compliance",
    "incomplete",
    "failed",
    "classifiers",
    "stack",
    "alignment_faking",
    "per_seed",
    "simulated_rate",
];

/// The segments of a bar, left to right, with their legend text.
struct Segment {
    key: &'static str,
    label: &'static str,
    fill: &'static str,
}

const FAKING: Segment = Segment {
    key: "complies_faking",
    label: "Complies, with alignment-faking reasoning",
    fill: "url(#af-hatch)",
};
const COMPLIES_OTHER: Segment = Segment {
    key: "complies_other",
    label: "Complies, without alignment-faking reasoning",
    fill: "#f2c14e",
};
const COMPLIES: Segment = Segment {
    key: "complies",
    label: "Complies",
    fill: "#f2c14e",
};
const REFUSES: Segment = Segment {
    key: "refuses",
    label: "Refuses",
    fill: "#8db4e2",
};

/// A model and its variants, each with its cells.
type ModelGroup<'a> = (&'a str, Vec<(&'a str, Vec<&'a Cell>)>);

struct Page<'a> {
    report: &'a Report,
    embedded: Embedded,
}

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

impl Page<'_> {
    fn head(&self) -> String {
        let s = &self.report.sweep;
        let mut h = String::new();
        w!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"candor\">\n\
             <title>{}{} — sweep {}</title>\n<style>{STYLE}</style>\n</head>\n",
            content_security_policy(),
            if s.jobs_failed > 0 { "FAILED · " } else { "" },
            esc(&s.name),
            esc(&s.id)
        );
        h
    }

    fn body(&self) -> String {
        let mut h = String::from("<body>\n<main>\n");
        self.header(&mut h);
        self.chart_section(&mut h);
        self.tables(&mut h);
        self.browser(&mut h);
        self.footer(&mut h);
        h.push_str("</main>\n");
        h
    }

    fn segments(&self) -> &'static [Segment] {
        if self.report.sweep.alignment_faking_classifier.is_some() {
            &[FAKING, COMPLIES_OTHER, REFUSES]
        } else {
            &[COMPLIES, REFUSES]
        }
    }

    fn header(&self, h: &mut String) {
        let s = &self.report.sweep;
        h.push_str("<header>\n");
        self.failure_banner(h);
        w!(
            h,
            "<h1>{}</h1>\n<p class=\"sub\">sweep <code>{}</code>",
            esc(&s.name),
            esc(&s.id)
        );
        w!(
            h,
            " · compliance = classifier <code>{}</code>",
            esc(&s.primary_classifier)
        );
        if let Some(af) = &s.alignment_faking_classifier {
            w!(h, " · alignment faking = classifier <code>{}</code>", esc(af));
        }
        h.push_str("</p>\n");
        for note in &self.report.notes {
            if let Some((tag, rest)) = self.banner(note)
                && tag != "FAILED"
            {
                let attrs = if tag == "SIMULATED JUDGE" { " role=\"note\"" } else { "" };
                notice(h, tag, attrs, &esc(rest));
            }
        }
        h.push_str("<div class=\"tiles\">\n");
        let tile = |h: &mut String, class: &str, key: &str, value: String, detail: String| {
            w!(
                h,
                "<div class=\"tile{class}\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}</div></div>\n",
                esc(key),
                esc(&value),
                esc(&detail)
            );
        };
        tile(
            h,
            "",
            "jobs done",
            thousands(s.jobs_done),
            format!("of {} in the sweep", thousands(s.jobs_total)),
        );
        let ok = s.jobs_done - s.jobs_incomplete.min(s.jobs_done) - s.jobs_failed.min(s.jobs_done);
        tile(h, "", "final outputs", thousands(ok), "rates are over these".into());
        tile(
            h,
            "",
            "incomplete",
            thousands(s.jobs_incomplete),
            "used every turn without an output".into(),
        );
        let dead = if s.jobs_dead_lettered > 0 {
            format!("{} used every attempt", thousands(s.jobs_dead_lettered))
        } else {
            "the backend failed".into()
        };
        let alert = if s.jobs_failed > 0 { " alert" } else { "" };
        tile(h, alert, "failed", thousands(s.jobs_failed), dead);
        let budget = match s.budget_usd {
            Some(b) => format!("of a {} budget", usd(b)),
            None => "no budget set".into(),
        };
        tile(h, "", "cost", usd(s.cost_usd), budget);
        tile(
            h,
            "",
            "cache hits",
            thousands(s.cache_hits),
            "model calls answered from the cache".into(),
        );
        if let Some(w) = s.target_width {
            tile(
                h,
                "",
                "skipped",
                thousands(s.jobs_skipped),
                format!(
                    "early stopping: a cell stops once its interval is under {:.1} pts",
                    w * 100.0
                ),
            );
        }
        h.push_str("</div>\n");
        self.provenance(h);
        let sweep = serde_json::to_value(s).unwrap_or(Value::Null);
        let extra = unknown_fields(&sweep, KNOWN_SWEEP_FIELDS);
        if !extra.is_empty() {
            h.push_str("<dl class=\"extra\">");
            for (k, v) in extra {
                w!(h, "<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&v));
            }
            h.push_str("</dl>\n");
        }
        h.push_str("</header>\n");
    }

    /// A note's tag and text when the page shows it as a banner: a note
    /// headed by a tag in capitals ("PARTIAL: ..."), except a SIMULATED note
    /// of a sweep whose models under test are not simulated. Other notes go
    /// to the footer.
    fn banner<'n>(&self, note: &'n str) -> Option<(&'n str, &'n str)> {
        let (tag, rest) = note.split_once(':')?;
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_uppercase() || c == ' ') {
            return None;
        }
        if tag == "SIMULATED" && !self.report.sweep.simulated {
            return None;
        }
        Some((tag, rest.trim()))
    }

    /// The banner at the top of a page of a sweep with failed jobs: how many
    /// failed, and for the first reasons (each model's most frequent first)
    /// the model, the kind of error, the jobs, the first error and what to check.
    fn failure_banner(&self, h: &mut String) {
        let r = self.report;
        let note = r.notes.iter().find(|n| is_failed_note(n));
        if r.sweep.jobs_failed == 0 && note.is_none() {
            return;
        }
        let mut body = String::new();
        w!(
            body,
            "<strong class=\"share\">{}.</strong> Failed jobs are left out of every rate below; a cell \
             without a final output shows no data.",
            esc(&r.failed_headline())
        );
        if r.failures.is_empty() {
            // A report without the breakdown: its note as it is.
            if let Some((_, rest)) = note.and_then(|n| n.split_once(':')) {
                w!(body, "<p class=\"reason\">{}</p>", esc(rest.trim()));
            }
        } else {
            body.push_str("<ul class=\"reasons\">");
            for g in listed_failures(&r.failures) {
                w!(
                    body,
                    "<li data-kind=\"{}\"><span class=\"who\"><code>{}</code> · <span class=\"kind\">{}</span> · {} {}</span>\
                     <span class=\"error\">{}</span>",
                    esc(&g.kind),
                    esc(&g.model),
                    esc(&g.kind),
                    thousands(g.jobs),
                    if g.jobs == 1 { "job" } else { "jobs" },
                    esc(&g.first_error)
                );
                if let Some(hint) = &g.hint {
                    w!(body, "<span class=\"hint\">What to check: {}</span>", esc(hint));
                }
                body.push_str("</li>");
            }
            body.push_str("</ul>");
            if r.failures.len() > MAX_LISTED_FAILURES {
                w!(
                    body,
                    "<p class=\"more\">{} more reasons in <a href=\"#failures\">Failures</a>.</p>",
                    r.failures.len() - MAX_LISTED_FAILURES
                );
            }
        }
        notice(h, "FAILED", " id=\"failure-banner\" role=\"alert\"", &body);
    }

    /// Which candor, run, spec, dataset and models the report comes from.
    fn provenance(&self, h: &mut String) {
        let p = &self.report.sweep.provenance;
        if p.candor_version.is_empty() {
            return;
        }
        h.push_str("<dl class=\"extra provenance\" id=\"provenance\">");
        w!(h, "<dt>candor</dt><dd>{}</dd>", esc(&p.candor_version));
        if let Some(run) = &p.run_label {
            w!(h, "<dt>run</dt><dd><code>{}</code></dd>", esc(run));
        }
        match (&p.started_at, &p.finished_at) {
            (None, None) => {}
            (a, b) => w!(
                h,
                "<dt>ran</dt><dd>{} → {}</dd>",
                esc(a.as_deref().unwrap_or("?")),
                esc(b.as_deref().unwrap_or("not finished"))
            ),
        }
        w!(
            h,
            "<dt>spec</dt><dd><code>{}</code> · dataset <code>{}</code></dd>",
            esc(&p.spec_hash),
            esc(&p.dataset_hash)
        );
        let model = |h: &mut String, role: &str, m: &ModelInfo| {
            w!(
                h,
                "<dt>{role}</dt><dd data-model=\"{}\"><code>{}</code>: {}",
                esc(&m.id),
                esc(&m.id),
                esc(&m.backend)
            );
            if !m.model.is_empty() {
                w!(h, " <code>{}</code>", esc(&m.model));
            }
            if let Some(u) = &m.base_url {
                w!(h, " at <code>{}</code>", esc(u));
            }
            w!(h, " · params <code>{}</code></dd>", esc(&params_json(m)));
        };
        for m in &p.models {
            model(h, "model", m);
        }
        for m in &p.judges {
            model(h, "judge", m);
        }
        h.push_str("</dl>\n");
    }

    fn chart_section(&self, h: &mut String) {
        h.push_str("<section id=\"compliance\">\n<h2>Compliance by condition</h2>\n");
        let s = &self.report.sweep;
        w!(
            h,
            "<p class=\"sub\">Each bar splits a cell's final outputs by classifier <code>{}</code>",
            esc(&s.primary_classifier)
        );
        if let Some(af) = &s.alignment_faking_classifier {
            w!(h, " and, among the compliant ones, by <code>{}</code>", esc(af));
        }
        h.push_str(". The whisker is the 95% Wilson interval of the compliance rate.</p>\n");
        h.push_str("<ul class=\"legend\" id=\"legend\">\n");
        for seg in self.segments() {
            w!(
                h,
                "<li data-segment=\"{}\"><svg width=\"14\" height=\"14\" aria-hidden=\"true\">\
                 <rect width=\"14\" height=\"14\" rx=\"2\" fill=\"{}\"/></svg>{}</li>\n",
                seg.key,
                seg.fill,
                seg.label
            );
        }
        h.push_str(
            "<li data-legend=\"interval\"><svg width=\"22\" height=\"14\" aria-hidden=\"true\">\
             <path d=\"M2 3v8M2 7h18M20 3v8\" stroke=\"#1d2330\" stroke-width=\"1.5\" fill=\"none\"/></svg>\
             Compliance rate, 95% interval</li>\n</ul>\n",
        );
        h.push_str("<div id=\"chart\">");
        self.chart(h);
        h.push_str("</div>\n</section>\n");
    }

    /// Cells grouped by model, then variant, in the report's order.
    fn groups(&self) -> Vec<ModelGroup<'_>> {
        let mut groups: Vec<ModelGroup<'_>> = Vec::new();
        for c in &self.report.cells {
            let m = match groups.iter().position(|(m, _)| *m == c.model) {
                Some(i) => i,
                None => {
                    groups.push((&c.model, Vec::new()));
                    groups.len() - 1
                }
            };
            let vs = &mut groups[m].1;
            match vs.iter_mut().find(|(v, _)| *v == c.variant) {
                Some((_, cells)) => cells.push(c),
                None => vs.push((&c.variant, vec![c])),
            }
        }
        groups
    }

    fn gap(&self, model: &str, variant: &str) -> Option<&Gap> {
        self.report
            .gaps
            .iter()
            .find(|g| g.model == model && g.variant == variant)
    }

    /// The stacked bars, one per cell, as inline SVG.
    fn chart(&self, h: &mut String) {
        const WIDTH: f64 = 980.0;
        const X0: f64 = 250.0;
        const BAR_W: f64 = 470.0;
        const BAR_H: f64 = 24.0;
        let segments = self.segments();
        let groups = self.groups();
        let many_variants = groups.iter().any(|(_, vs)| vs.len() > 1);
        let mut svg = String::new();
        let mut y = 30.0;
        for (model, variants) in &groups {
            y += 10.0;
            w!(
                svg,
                "<text class=\"model\" x=\"0\" y=\"{:.1}\">{}</text>",
                y + 14.0,
                esc(&clip(model, 34))
            );
            y += 24.0;
            for (variant, cells) in variants {
                if many_variants {
                    w!(
                        svg,
                        "<text class=\"variant\" x=\"14\" y=\"{:.1}\">{}</text>",
                        y + 13.0,
                        esc(&clip(variant, 34))
                    );
                    y += 20.0;
                }
                for c in cells {
                    self.bar(&mut svg, c, segments, X0, y, BAR_W, BAR_H);
                    y += BAR_H + 8.0;
                }
                if let Some(g) = self.gap(model, variant) {
                    let text = match gap_values(g) {
                        Some((d, lo, hi)) => {
                            let paired = g
                                .paired
                                .map_or_else(String::new, |p| format!(", paired {}", ci_pts(p.lo, p.hi)));
                            format!("{} pts, 95% CI {}{paired}", pts(d), ci_pts(lo, hi))
                        }
                        None => format!("{NOT_COMPUTABLE} ({})", empty_sides(g)),
                    };
                    w!(
                        svg,
                        "<text class=\"gap{}\" x=\"{X0}\" y=\"{:.1}\">gap {} − {}: {}</text>",
                        if gap_values(g).is_none() { " muted" } else { "" },
                        y + 10.0,
                        esc(&g.a),
                        esc(&g.b),
                        esc(&text)
                    );
                    y += 22.0;
                }
                y += 4.0;
            }
        }
        let height = y + 8.0;
        let mut grid = String::new();
        for i in 0..=5 {
            let x = X0 + BAR_W * f64::from(i) / 5.0;
            w!(
                grid,
                "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"24\" y2=\"{:.1}\"/>\
                 <text class=\"axis\" x=\"{x:.1}\" y=\"16\" text-anchor=\"middle\">{}%</text>",
                height - 6.0,
                i * 20
            );
        }
        w!(
            h,
            "<svg id=\"chart-svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" width=\"{WIDTH}\" height=\"{height:.0}\" \
             role=\"img\" aria-label=\"Compliance by model, variant and condition\">\
             <defs><pattern id=\"af-hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" \
             patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#c8423b\"/>\
             <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#f3c6c2\" stroke-width=\"2.2\"/></pattern></defs>\
             {grid}{svg}</svg>"
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn bar(&self, svg: &mut String, c: &Cell, segments: &[Segment], x0: f64, y: f64, bar_w: f64, bar_h: f64) {
        let n = c.n as f64;
        let counts = |key: &str| match key {
            "complies_faking" => c.stack.complies_faking,
            "complies_other" => c.stack.complies_other,
            "complies" => c.compliant,
            _ => c.stack.refuses,
        };
        let frac = |k: u64| if c.n == 0 { 0.0 } else { k as f64 / n };
        let mut tip = format!("{} · {} · {}\nn = {}", c.model, c.variant, c.condition, c.n);
        match cell_rate(c) {
            Some(r) => {
                for seg in segments {
                    let k = counts(seg.key);
                    w!(tip, "\n{}: {} ({})", seg.label, k, pct(frac(k)));
                }
                w!(tip, "\ncompliance {} {}", pct(r.rate), ci(r.lo, r.hi));
            }
            None => w!(tip, "\ncompliance: {NO_DATA} (no final output)"),
        }
        if c.incomplete + c.failed > 0 {
            w!(tip, "\nnot counted: {} incomplete, {} failed", c.incomplete, c.failed);
        }
        w!(
            svg,
            "<g class=\"bar\" data-bar=\"\"{} data-model=\"{}\" data-variant=\"{}\" data-condition=\"{}\"><title>{}</title>",
            if cell_rate(c).is_none() {
                " data-nodata=\"\""
            } else {
                ""
            },
            esc(&c.model),
            esc(&c.variant),
            esc(&c.condition),
            esc(&tip)
        );
        w!(
            svg,
            "<text class=\"cond\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 10.0,
            y + bar_h / 2.0 + 4.5,
            esc(&clip(&c.condition, 28))
        );
        w!(
            svg,
            "<rect class=\"track{}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{bar_h:.1}\"/>",
            if cell_rate(c).is_none() { " empty" } else { "" }
        );
        let mut x = x0;
        for seg in segments {
            let width = frac(counts(seg.key)) * bar_w;
            w!(
                svg,
                "<rect data-segment=\"{}\" x=\"{x:.2}\" y=\"{y:.1}\" width=\"{width:.2}\" height=\"{bar_h:.1}\" fill=\"{}\"/>",
                seg.key,
                seg.fill
            );
            x += width;
        }
        let label_x = x0 + bar_w + 12.0;
        let mid = y + bar_h / 2.0;
        let Some(compliance) = cell_rate(c) else {
            let mut why = String::from("no final output");
            if c.failed + c.incomplete > 0 {
                let parts: Vec<String> = [(c.failed, "failed"), (c.incomplete, "incomplete")]
                    .into_iter()
                    .filter(|(k, _)| *k > 0)
                    .map(|(k, what)| format!("{} {what}", thousands(k)))
                    .collect();
                w!(why, ": {}", parts.join(", "));
            }
            w!(
                svg,
                "<text class=\"value nodata\" x=\"{label_x:.1}\" y=\"{:.1}\"><tspan class=\"rate\">{NO_DATA}</tspan> \
                 <tspan class=\"n\">{}</tspan></text></g>",
                mid + 4.5,
                esc(&why)
            );
            return;
        };
        let (lo, hi) = (x0 + compliance.lo * bar_w, x0 + compliance.hi * bar_w);
        let (t, b) = (mid - 6.0, mid + 6.0);
        let path = format!("M{lo:.2} {t:.1}V{b:.1}M{lo:.2} {mid:.1}H{hi:.2}M{hi:.2} {t:.1}V{b:.1}");
        w!(
            svg,
            "<g class=\"ci\" data-ci=\"\"><path class=\"halo\" d=\"{path}\"/><path d=\"{path}\"/></g>"
        );
        w!(
            svg,
            "<text class=\"value\" x=\"{label_x:.1}\" y=\"{:.1}\"><tspan class=\"rate\">{}</tspan> \
             <tspan class=\"ci\">{}</tspan> <tspan class=\"n\">n={}</tspan>",
            mid + 4.5,
            pct(compliance.rate),
            ci(compliance.lo, compliance.hi),
            thousands(c.n)
        );
        if let Some(af) = &c.alignment_faking {
            w!(svg, " <tspan class=\"af\">AF {}</tspan>", pct(af.among_all.rate));
        }
        svg.push_str("</text></g>");
    }

    fn tables(&self, h: &mut String) {
        let r = self.report;
        let any_af = r.cells.iter().any(|c| c.alignment_faking.is_some());
        let any_seeds = r.cells.iter().any(|c| c.per_seed.is_some());
        let any_sim = r.cells.iter().any(|c| c.simulated_rate.is_some());
        let cell_values: Vec<Value> = r
            .cells
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect();
        let extras: Vec<Vec<(String, String)>> = cell_values
            .iter()
            .map(|v| unknown_fields(v, KNOWN_CELL_FIELDS))
            .collect();
        let mut extra_cols: Vec<String> = Vec::new();
        for e in &extras {
            for (k, _) in e {
                push_new(&mut extra_cols, k);
            }
        }

        if !r.failures.is_empty() {
            h.push_str("<section id=\"failures\">\n<h2>Failures</h2>\n");
            w!(
                h,
                "<p class=\"sub\">{}, by model and reason, the most frequent first.</p>\n",
                esc(&r.failed_headline())
            );
            h.push_str(
                "<div class=\"scroll\"><table id=\"failures-table\">\n<thead><tr><th>model</th><th>reason</th>\
                 <th class=\"num\">jobs</th><th>first error</th><th>what to check</th></tr></thead>\n<tbody>\n",
            );
            for g in &r.failures {
                w!(
                    h,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"error\">{}</td><td>{}</td></tr>\n",
                    esc(&g.model),
                    esc(&g.kind),
                    thousands(g.jobs),
                    esc(&g.first_error),
                    esc(g.hint.as_deref().unwrap_or("—"))
                );
            }
            h.push_str("</tbody></table></div>\n</section>\n");
        }

        h.push_str("<section id=\"cells\">\n<h2>Cells</h2>\n");
        w!(
            h,
            "<p class=\"sub\">Rates are over the jobs that gave a final output (n), with 95% Wilson intervals \
             in brackets (percent){}.</p>\n",
            match &r.sweep.alignment_faking_classifier {
                Some(af) if any_af => format!(
                    ". Alignment faking (classifier <code>{}</code>) is given among the compliant outputs and \
                     among all outputs, each with its count",
                    esc(af)
                ),
                _ => String::new(),
            }
        );
        h.push_str(
            "<div class=\"scroll\"><table id=\"cells-table\">\n<thead><tr><th>model</th><th>variant</th>\
             <th>condition</th><th class=\"num\">n</th><th class=\"num\">compliant</th>\
             <th class=\"num\">compliance [95%&nbsp;CI]</th>",
        );
        if any_af {
            h.push_str(
                "<th class=\"num\">faking among compliant</th>\
                 <th class=\"num\">faking among all</th>",
            );
        }
        if any_seeds {
            h.push_str("<th class=\"num\">per seed: range, sd</th>");
        }
        if any_sim {
            h.push_str("<th class=\"num\">sim rate</th>");
        }
        h.push_str("<th class=\"num\">incomplete</th><th class=\"num\">failed</th>");
        for k in &extra_cols {
            w!(h, "<th>{}</th>", esc(k));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for (c, extra) in r.cells.iter().zip(&extras) {
            w!(
                h,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}",
                if cell_rate(c).is_none() {
                    " data-nodata=\"\""
                } else {
                    ""
                },
                esc(&c.model),
                esc(&c.variant),
                esc(&c.condition),
                thousands(c.n),
                thousands(c.compliant),
                rate_td(cell_rate(c), "")
            );
            if any_af {
                match &c.alignment_faking {
                    Some(af) => {
                        for rate in [af.among_compliant, af.among_all] {
                            let below = format!(
                                "<span class=\"n below\">{} of {}</span>",
                                thousands(rate.k),
                                thousands(rate.n)
                            );
                            h.push_str(&rate_td(of_rate(&rate), &below));
                        }
                    }
                    None => h.push_str("<td class=\"num\">—</td><td class=\"num\">—</td>"),
                }
            }
            if any_seeds {
                match &c.per_seed {
                    Some(s) => w!(
                        h,
                        "<td class=\"num\" title=\"{} seeds\">{:.1}–{} <span class=\"ci\">sd {:.1}</span></td>",
                        s.seeds,
                        s.min * 100.0,
                        pct(s.max),
                        s.sd * 100.0
                    ),
                    None => h.push_str("<td class=\"num\">—</td>"),
                }
            }
            if any_sim {
                match c.simulated_rate {
                    Some(p) => w!(h, "<td class=\"num\">{}</td>", pct(p)),
                    None => h.push_str("<td class=\"num\">—</td>"),
                }
            }
            w!(
                h,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                thousands(c.incomplete),
                thousands(c.failed)
            );
            for k in &extra_cols {
                let v = extra.iter().find(|(e, _)| e == k).map_or("", |(_, v)| v.as_str());
                w!(h, "<td>{}</td>", esc(v));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table></div>\n</section>\n");

        let others: Vec<String> = crate::report::classifier_names(r)
            .into_iter()
            .filter(|n| *n != r.sweep.primary_classifier)
            .collect();
        if !others.is_empty() {
            h.push_str("<section id=\"classifiers\">\n<h2>Classifiers</h2>\n");
            h.push_str(
                "<p class=\"sub\">Each classifier's yes rate over the outputs it judged (n); a classifier \
                 restricted to the outputs another said yes to also shows its rate over all outputs.</p>\n",
            );
            h.push_str(
                "<div class=\"scroll\"><table id=\"classifiers-table\">\n<thead><tr><th>model</th><th>variant</th>\
                 <th>condition</th><th>classifier</th><th class=\"num\">yes</th><th class=\"num\">n</th>\
                 <th class=\"num\">rate [95% CI]</th><th class=\"num\">among all outputs [95% CI]</th></tr></thead>\n<tbody>\n",
            );
            for c in &r.cells {
                for name in &others {
                    let Some(k) = c.classifiers.get(name) else {
                        continue;
                    };
                    // A restricted classifier's rate over all outputs is over the cell's n.
                    let all = match k.among_all {
                        None => "<td class=\"num\">—</td>".to_string(),
                        Some(a) => rate_td((c.n > 0).then_some(a), ""),
                    };
                    w!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
                         <td class=\"num\">{}</td>{}{}</tr>\n",
                        esc(&c.model),
                        esc(&c.variant),
                        esc(&c.condition),
                        esc(name),
                        thousands(k.yes),
                        thousands(k.n),
                        rate_td(classifier_rate(k), ""),
                        all
                    );
                }
            }
            h.push_str("</tbody></table></div>\n</section>\n");
        }

        if !r.gaps.is_empty() {
            h.push_str("<section id=\"gaps\">\n<h2>Compliance gap</h2>\n");
            h.push_str(
                "<p class=\"sub\">Difference of compliance rates in percentage points, with 95% intervals: \
                 Newcombe's hybrid score interval (unpaired) and a paired bootstrap over queries.</p>\n",
            );
            h.push_str(
                "<div class=\"scroll\"><table id=\"gaps-table\">\n<thead><tr><th>model</th><th>variant</th><th>gap</th>\
                 <th class=\"num\">difference</th><th class=\"num\">n</th><th class=\"num\">95% CI (Newcombe)</th>\
                 <th class=\"num\">95% CI (paired bootstrap)</th><th>−100 · 0 · +100 pts</th></tr></thead>\n<tbody>\n",
            );
            for g in &r.gaps {
                let paired = g.paired.map_or_else(|| "—".to_string(), |p| ci_pts(p.lo, p.hi));
                let (diff, interval) = match gap_values(g) {
                    Some((d, lo, hi)) => (format!("{} pts", pts(d)), ci_pts(lo, hi)),
                    None => (
                        format!(
                            "<span class=\"nodata\" title=\"{}\">{NOT_COMPUTABLE}</span>",
                            esc(&empty_sides(g))
                        ),
                        "—".to_string(),
                    ),
                };
                w!(
                    h,
                    "<tr{}><td>{}</td><td>{}</td><td>{} − {}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                    if gap_values(g).is_none() {
                        " data-nodata=\"\""
                    } else {
                        ""
                    },
                    esc(&g.model),
                    esc(&g.variant),
                    esc(&g.a),
                    esc(&g.b),
                    diff,
                    thousands(g.n_a),
                    thousands(g.n_b),
                    interval,
                    paired,
                    forest(g)
                );
            }
            h.push_str("</tbody></table></div>\n</section>\n");
        }

        if !r.costs.is_empty() {
            h.push_str("<section id=\"costs\">\n<h2>Cost</h2>\n");
            h.push_str(
                "<div class=\"scroll\"><table id=\"costs-table\" class=\"narrow\">\n<thead><tr><th>model</th>\
                 <th class=\"num\">cost</th><th class=\"num\">input, per million tokens</th>\
                 <th class=\"num\">output, per million tokens</th></tr></thead>\n<tbody>\n",
            );
            for c in &r.costs {
                w!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                    esc(&c.model),
                    usd(c.usd),
                    usd(c.input_per_mtok),
                    usd(c.output_per_mtok)
                );
            }
            w!(
                h,
                "</tbody><tfoot><tr><td>total</td><td class=\"num\">{}</td><td></td><td></td></tr></tfoot></table></div>\n</section>\n",
                usd(r.sweep.cost_usd)
            );
        }
    }

    fn browser(&self, h: &mut String) {
        let e = self.embedded;
        h.push_str("<section id=\"transcripts\">\n<h2>Transcripts</h2>\n");
        let scope = if e.shown == e.total {
            format!("All {} results are embedded in this page.", thousands(e.total))
        } else {
            format!(
                "This page embeds {} of the {} results: the first ones of each model × variant × condition, \
                 spread as evenly as its limits allow (at most {} results and {} MB of text). \
                 Every result is in results.jsonl and results.csv.",
                thousands(e.shown),
                thousands(e.total),
                thousands(MAX_EMBEDDED_JOBS as u64),
                MAX_EMBEDDED_BYTES >> 20
            )
        };
        let sampled = if e.shown == e.total { "" } else { " sampled" };
        w!(
            h,
            "<p class=\"scope{sampled}\" id=\"scope\" data-shown=\"{}\" data-total=\"{}\">{}",
            e.shown,
            e.total,
            esc(&scope)
        );
        if e.unreadable > 0 {
            w!(
                h,
                " {} line(s) of results.jsonl could not be read and are left out.",
                thousands(e.unreadable)
            );
        }
        h.push_str("</p>\n");
        h.push_str(
            "<form class=\"filters\" id=\"filters\" autocomplete=\"off\">\
             <label>model <select id=\"f-model\"></select></label>\
             <label>variant <select id=\"f-variant\"></select></label>\
             <label>condition <select id=\"f-condition\"></select></label>\
             <label>classification <select id=\"f-class\"></select></label>\
             <label>search <input id=\"f-text\" type=\"search\" placeholder=\"query, output or job id\"></label>\
             <span id=\"match-count\" class=\"count\"></span></form>\n\
             <noscript><p>The transcript browser needs JavaScript; the transcripts are in results.jsonl.</p></noscript>\n\
             <div class=\"browser\"><div class=\"list\" id=\"job-list\" tabindex=\"0\"><table id=\"jobs-table\">\
             <thead><tr><th>model</th><th id=\"th-variant\">variant</th><th>condition</th><th class=\"num\">query</th>\
             <th class=\"num\">seed</th><th>verdict</th><th class=\"num\">turns</th></tr></thead>\
             <tbody id=\"job-rows\"></tbody></table></div>\n\
             <article class=\"detail\" id=\"job-detail\"><p class=\"sub\">Select a job to read its transcript.</p></article></div>\n\
             </section>\n",
        );
    }

    fn footer(&self, h: &mut String) {
        h.push_str("<footer>\n");
        for note in &self.report.notes {
            if self.banner(note).is_none() {
                w!(h, "<p>{}</p>\n", esc(note));
            }
        }
        h.push_str("<p>Written by candor.</p>\n</footer>\n");
    }
}

/// A banner: the note's tag, then `body` (HTML, escaped already); `attrs`
/// are further attributes of the banner's element. Every banner of the page
/// is written here.
fn notice(h: &mut String, tag: &str, attrs: &str, body: &str) {
    let class = tag.to_ascii_lowercase().replace(' ', "-");
    w!(
        h,
        "<div class=\"notice {}\" data-note=\"{}\"{attrs}><span class=\"tag\">{}</span>{body}</div>\n",
        esc(&class),
        esc(tag),
        esc(tag)
    );
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

/// An interval in percentage points: `[+1.2, +9.8]`.
fn ci_pts(lo: f64, hi: f64) -> String {
    format!("[{}, {}]", pts(lo), pts(hi))
}

/// A gap's difference and Newcombe interval; none when a side has no
/// outputs (not computable).
fn gap_values(g: &Gap) -> Option<(f64, f64, f64)> {
    match (g.diff, g.lo, g.hi) {
        (Some(d), Some(lo), Some(hi)) if g.n_a > 0 && g.n_b > 0 => Some((d, lo, hi)),
        _ => None,
    }
}

/// Why a gap is not computable: which of its conditions has no final output.
fn empty_sides(g: &Gap) -> String {
    match (g.n_a == 0, g.n_b == 0) {
        (true, true) => format!("no final output in {} nor in {}", g.a, g.b),
        (true, false) => format!("no final output in {}", g.a),
        (false, true) => format!("no final output in {}", g.b),
        (false, false) => "its interval is missing".to_string(),
    }
}

/// A cell's compliance rate; none without outputs (no data).
fn cell_rate(c: &Cell) -> Option<Interval> {
    c.compliance.filter(|_| c.n > 0)
}

/// A count's rate; none when it is out of nothing (no data).
fn of_rate(r: &Rate) -> Option<Interval> {
    (r.n > 0).then_some(Interval {
        rate: r.rate,
        lo: r.lo,
        hi: r.hi,
    })
}

/// A classifier's rate over the outputs it judged; none when it judged none.
fn classifier_rate(k: &ClassifierRate) -> Option<Interval> {
    (k.n > 0).then_some(Interval {
        rate: k.rate,
        lo: k.lo,
        hi: k.hi,
    })
}

/// A table cell with a rate and its interval, then `after` (HTML); "no data"
/// for a rate out of nothing, never 0.0%.
fn rate_td(rate: Option<Interval>, after: &str) -> String {
    match rate {
        Some(r) => format!(
            "<td class=\"num\">{} <span class=\"ci\">{}</span>{after}</td>",
            pct(r.rate),
            ci(r.lo, r.hi)
        ),
        None => format!("<td class=\"num nodata\">{NO_DATA}{after}</td>"),
    }
}

/// A gap and its Newcombe interval on a −100 … +100 point scale; a gap that
/// is not computable says so.
fn forest(g: &Gap) -> String {
    let x = |v: f64| 60.0 + v.clamp(-1.0, 1.0) * 58.0;
    let mut s = String::from(
        "<svg class=\"forest\" width=\"120\" height=\"16\" viewBox=\"0 0 120 16\" aria-hidden=\"true\">\
         <line class=\"zero\" x1=\"60\" x2=\"60\" y1=\"1\" y2=\"15\"/>",
    );
    match gap_values(g) {
        Some((d, lo, hi)) => w!(
            s,
            "<line class=\"range\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"8\" y2=\"8\"/><circle cx=\"{:.1}\" cy=\"8\" r=\"3.2\"/>",
            x(lo),
            x(hi),
            x(d)
        ),
        None => w!(
            s,
            "<text class=\"nodata\" x=\"60\" y=\"12\" text-anchor=\"middle\">{NOT_COMPUTABLE}</text>"
        ),
    }
    s.push_str("</svg>");
    s
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().take(max - 1).chain(['…']).collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MODELS: [&str; 2] = ["m1", "m2"];
    const CONDITIONS: [&str; 2] = ["training", "unmonitored"];

    /// A report of two models × one variant × two conditions; with an
    /// alignment-faking classifier when `faking`.
    fn report(faking: bool) -> Report {
        let mut cells = Vec::new();
        for m in MODELS {
            for c in CONDITIONS {
                let mut cell = json!({
                    "model": m, "variant": "default", "condition": c, "n": 40, "compliant": 12,
                    "compliance": {"rate": 0.3, "lo": 0.18, "hi": 0.45}, "incomplete": 1, "failed": 0,
                    "classifiers": {"compliant": {"yes": 12, "n": 40, "rate": 0.3, "lo": 0.18, "hi": 0.45}},
                    "stack": {"refuses": 28, "complies_faking": 5, "complies_other": 7},
                    "per_seed": {"seeds": 2, "min": 0.25, "max": 0.35, "sd": 0.07},
                    "simulated_rate": 0.3
                });
                if faking {
                    cell["alignment_faking"] = json!({
                        "among_compliant": {"k": 5, "n": 12, "rate": 0.4167, "lo": 0.19, "hi": 0.68},
                        "among_all": {"k": 5, "n": 40, "rate": 0.125, "lo": 0.05, "hi": 0.26}
                    });
                    cell["classifiers"]["alignment_faking"] = json!({
                        "yes": 5, "n": 12, "rate": 0.4167, "lo": 0.19, "hi": 0.68,
                        "among_all": {"rate": 0.125, "lo": 0.05, "hi": 0.26}
                    });
                }
                cells.push(cell);
            }
        }
        serde_json::from_value(json!({
            "sweep": {
                "name": "demo", "id": "abc123", "jobs_total": 164, "jobs_done": 164, "jobs_incomplete": 4,
                "jobs_failed": 0, "simulated": true, "primary_classifier": "compliant",
                "alignment_faking_classifier": if faking { json!("alignment_faking") } else { Value::Null },
                "cost_usd": 1.5
            },
            "cells": cells,
            "gaps": MODELS.iter().map(|m| json!({
                "model": m, "variant": "default", "a": "training", "b": "unmonitored", "diff": 0.2,
                "lo": 0.05, "hi": 0.35, "n_a": 40, "n_b": 40, "paired": {"rate": 0.2, "lo": 0.08, "hi": 0.31}
            })).collect::<Vec<_>>(),
            "costs": MODELS.iter().map(|m| json!({
                "model": m, "usd": 0.75, "input_per_mtok": 3.0, "output_per_mtok": 15.0
            })).collect::<Vec<_>>(),
            "notes": ["SIMULATED: made-up numbers.", "Rates are over jobs that gave a final output (n)."]
        }))
        .unwrap()
    }

    fn result(model: &str, condition: &str, query: u64, seed: u64, text: &str) -> String {
        json!({
            "job_id": format!("{model}-{condition}-{query}-{seed}"), "sweep_id": "abc123", "index": query,
            "model": model, "variant": "default", "query_index": query, "query": format!("query {query} {text}"),
            "condition": condition, "seed": seed, "status": "ok", "output": text,
            "classifications": {"compliant": query.is_multiple_of(2), "alignment_faking": query.is_multiple_of(4)},
            "turns": 1, "attempt": 1, "cache_hits": 0, "cost_usd": 0.001,
            "usage": {"input_tokens": 100, "output_tokens": 20}, "latency_ms": 12.5, "started_at_ms": 1,
            "error": null,
            "transcript": {"system": format!("The system prompt of {condition}."), "messages": [
                {"role": "user", "content": format!("query {query}")},
                {"role": "assistant", "content": format!("<SCRATCHPAD_REASONING>{text}</SCRATCHPAD_REASONING><OUTPUT>{text}</OUTPUT>")}
            ]}
        })
        .to_string()
    }

    /// `per_cell` results for each model × condition, as results.jsonl.
    fn results(per_cell: u64, text: &str) -> String {
        let mut s = String::new();
        for q in 0..per_cell {
            for m in MODELS {
                for c in CONDITIONS {
                    s.push_str(&result(m, c, q, 0, text));
                    s.push('\n');
                }
            }
        }
        s
    }

    fn render(report: &Report, jsonl: &str, limits: Limits) -> (String, Embedded) {
        let mut out = Vec::new();
        let e = write_html_within(report, jsonl.as_bytes(), &mut out, limits).unwrap();
        (String::from_utf8(out).unwrap(), e)
    }

    /// The page's embedded data, parsed.
    fn data(page: &str) -> Value {
        let start = page.find("id=\"candor-data\">").unwrap() + "id=\"candor-data\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        serde_json::from_str(&page[start..end]).unwrap()
    }

    #[test]
    fn a_transcript_cannot_close_the_script_block() {
        let evil = "</script><script>alert(1)</script><!-- \u{2028}\u{2029} & <img src=x onerror=alert(2)>";
        let mut r = report(true);
        r.cells[0].model = "<img src=x onerror=alert(3)>".into();
        let (page, e) = render(&r, &result("m1", "training", 0, 0, evil), Limits::default());
        assert_eq!(e.shown, 1);
        assert_eq!(
            page.to_ascii_lowercase().matches("<script").count(),
            2,
            "only the data block and the page's own script"
        );
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(!page.contains("<img"), "markup in data and names is escaped");
        assert!(!page.contains('\u{2028}') && !page.contains('\u{2029}'));
        assert!(
            page.contains("&lt;img src=x onerror=alert(3)&gt;"),
            "names are shown as text"
        );
        // The data survive the escaping intact.
        let d = data(&page);
        let job = &d["jobs"][0];
        assert_eq!(job["output"], evil);
        assert_eq!(job["query"], format!("query 0 {evil}"));
        assert_eq!(job["messages"][1]["content"].as_str().unwrap().matches(evil).count(), 2);
        // The script never writes markup from data.
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("insertAdjacentHTML") && !SCRIPT.contains("eval("));
    }

    #[test]
    fn only_the_pages_own_script_may_run_and_nothing_is_loaded() {
        let (page, _) = render(&report(true), &results(2, "ok"), Limits::default());
        let hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
        assert!(
            page.contains(&format!("script-src 'sha256-{hash}'")),
            "the policy names the script's hash"
        );
        assert!(
            page.contains(&format!("<script>{SCRIPT}</script>")),
            "the script is embedded byte for byte"
        );
        assert!(page.contains("default-src 'none'"));
        for url in ["http://", "https://", "//cdn", "@import", "url(http"] {
            assert!(!page.contains(url), "the page refers to {url}");
        }
    }

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn the_chart_has_a_bar_per_cell_and_a_segment_per_part() {
        for (faking, parts) in [(true, 3), (false, 2)] {
            let (page, _) = render(&report(faking), "", Limits::default());
            let svg = &page[page.find("<svg id=\"chart-svg\"").unwrap()..];
            let svg = &svg[..svg.find("</svg>").unwrap()];
            assert_eq!(svg.matches("data-bar=").count(), 4);
            assert_eq!(svg.matches("data-segment=").count(), 4 * parts);
            assert_eq!(svg.matches("data-ci=").count(), 4, "an interval on every bar");
            assert_eq!(
                page.matches("<li data-segment=").count(),
                parts,
                "a legend entry per part"
            );
            // Widths follow the stack: 5 and 7 of 40 complied, 28 refused.
            let width = |seg: &str| {
                let at = svg.find(&format!("data-segment=\"{seg}\"")).unwrap();
                let w = &svg[at..][svg[at..].find("width=\"").unwrap() + 7..];
                w[..w.find('"').unwrap()].parse::<f64>().unwrap()
            };
            if faking {
                assert!((width("complies_faking") - 470.0 * 5.0 / 40.0).abs() < 0.01);
                assert!((width("complies_other") - 470.0 * 7.0 / 40.0).abs() < 0.01);
            } else {
                assert!((width("complies") - 470.0 * 12.0 / 40.0).abs() < 0.01);
            }
            assert!((width("refuses") - 470.0 * 28.0 / 40.0).abs() < 0.01);
        }
    }

    #[test]
    fn tables_give_every_rate_with_its_n_and_interval() {
        let (page, _) = render(&report(true), "", Limits::default());
        for id in ["cells-table", "classifiers-table", "gaps-table", "costs-table"] {
            assert!(page.contains(&format!("<table id=\"{id}\"")), "{id}");
        }
        assert!(page.contains("30.0% <span class=\"ci\">[18.0, 45.0]</span>"));
        assert!(page.contains("41.7% <span class=\"ci\">[19.0, 68.0]</span><span class=\"n below\">5 of 12</span>"));
        assert!(page.contains("12.5% <span class=\"ci\">[5.0, 26.0]</span><span class=\"n below\">5 of 40</span>"));
        assert!(page.contains("+20.0 pts") && page.contains("[+5.0, +35.0]") && page.contains("[+8.0, +31.0]"));
        assert!(
            page.contains("data-note=\"SIMULATED\""),
            "the SIMULATED note is a banner"
        );
        assert!(page.contains("<p>Rates are over jobs that gave a final output (n).</p>"));
    }

    /// `report(true)` with cell m1/training without any final output: all
    /// its jobs failed, so its gap has an empty side.
    fn report_with_an_empty_cell() -> Report {
        let mut r = report(true);
        let c = &mut r.cells[0];
        c.n = 0;
        c.compliant = 0;
        c.compliance = None;
        c.failed = 41;
        c.stack = Default::default();
        c.per_seed = None;
        // The configured rate of a simulated model is no measurement: left out here.
        c.simulated_rate = None;
        let zero = Rate {
            k: 0,
            n: 0,
            rate: 0.0,
            lo: 0.0,
            hi: 1.0,
        };
        c.alignment_faking = Some(crate::report::FakingRates {
            among_compliant: zero,
            among_all: zero,
        });
        for k in c.classifiers.values_mut() {
            (k.yes, k.n, k.rate, k.lo, k.hi) = (0, 0, 0.0, 0.0, 1.0);
            if let Some(a) = &mut k.among_all {
                (a.rate, a.lo, a.hi) = (0.0, 0.0, 1.0);
            }
        }
        let g = &mut r.gaps[0];
        (g.diff, g.lo, g.hi, g.n_a, g.paired) = (None, None, None, 0, None);
        r
    }

    /// The parts of `page` from each `start` to the next `end`.
    fn parts<'a>(page: &'a str, start: &str, end: &str) -> Vec<&'a str> {
        page.match_indices(start)
            .map(|(i, _)| &page[i..i + page[i..].find(end).unwrap()])
            .collect()
    }

    #[test]
    fn a_cell_without_outputs_reads_no_data_everywhere_and_its_gap_not_computable() {
        let r = report_with_an_empty_cell();
        let (page, _) = render(&r, "", Limits::default());
        let row = |table: &str, model: &str, condition: &str| -> String {
            let t = &page[page.find(&format!("<table id=\"{table}\"")).unwrap()..];
            let t = &t[..t.find("</table>").unwrap()];
            parts(t, "<tr", "</tr>")
                .into_iter()
                .filter(|r| r.contains(&format!("<td>{model}</td>")) && r.contains(&format!("<td>{condition}</td>")))
                .collect()
        };
        // The chart: the bar, its label and its tooltip.
        let bars = parts(&page, "<g class=\"bar\"", "</g>");
        let bar = bars
            .iter()
            .find(|b| b.contains("data-model=\"m1\"") && b.contains("data-condition=\"training\""))
            .unwrap();
        assert!(bar.contains("data-nodata=\"\""));
        assert!(bar.contains(
            "<tspan class=\"rate\">no data</tspan> <tspan class=\"n\">no final output: 41 failed, 1 incomplete</tspan>"
        ));
        assert!(bar.contains("compliance: no data (no final output)"), "{bar}");
        assert!(!bar.contains('%'), "no rate on an empty bar: {bar}");
        assert_eq!(
            page.matches("data-nodata=\"\" data-model").count(),
            1,
            "the other bars have data"
        );
        // The tables: the cell's compliance and faking rates, its classifiers.
        let cells = row("cells-table", "m1", "training");
        assert_eq!(cells.matches("no data").count(), 3, "{cells}");
        assert!(cells.contains("<span class=\"n below\">0 of 0</span>"));
        let classifiers = row("classifiers-table", "m1", "training");
        assert_eq!(classifiers.matches("no data").count(), 2, "{classifiers}");
        for r in [&cells, &classifiers] {
            assert!(!r.contains('%'), "{r}");
        }
        assert!(
            row("cells-table", "m1", "unmonitored").contains("30.0%"),
            "the others keep their rates"
        );
        // The gap: in the chart, its table and its forest plot.
        assert!(page.contains(">gap training − unmonitored: not computable (no final output in training)</text>"));
        let gap = &page[page.find("<table id=\"gaps-table\"").unwrap()..];
        let gap = &gap[gap.find("<tr data-nodata").expect("the gap's row")..];
        let gap = &gap[..gap.find("</tr>").unwrap()];
        assert!(gap.contains(">not computable</span></td>"), "{gap}");
        assert!(
            gap.contains("text-anchor=\"middle\">not computable</text>"),
            "the forest plot says so: {gap}"
        );
        assert!(!gap.contains("<circle"), "{gap}");
        assert!(!gap.contains("pts"), "{gap}");
    }

    #[test]
    fn fields_the_page_does_not_know_are_shown_as_they_are() {
        let cell = json!({"model": "m", "n": 3, "stopped_early": true, "note": "x", "absent": null});
        assert_eq!(
            unknown_fields(&cell, KNOWN_CELL_FIELDS),
            vec![
                ("note".to_string(), "x".to_string()),
                ("stopped_early".to_string(), "yes".to_string())
            ]
        );
    }

    #[test]
    fn all_results_are_embedded_under_the_limits_in_a_browsable_order() {
        let (page, e) = render(&report(true), &results(5, "fine"), Limits::default());
        assert_eq!(
            e,
            Embedded {
                shown: 20,
                total: 20,
                unreadable: 0
            }
        );
        assert!(page.contains("All 20 results are embedded in this page."));
        let d = data(&page);
        let jobs = d["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 20);
        // By model, then query, then condition: a query's conditions side by side.
        let key = |j: &Value| {
            (
                j["model"].as_str().unwrap().to_string(),
                j["query_index"].as_u64().unwrap(),
            )
        };
        assert_eq!(key(&jobs[0]), ("m1".into(), 0));
        assert_eq!(jobs[0]["condition"], "training");
        assert_eq!(jobs[1]["condition"], "unmonitored");
        assert_eq!(key(&jobs[2]), ("m1".into(), 1));
        assert_eq!(key(&jobs[10]), ("m2".into(), 0));
        assert_eq!(d["meta"]["shown"], 20);
        assert_eq!(d["meta"]["classifiers"], json!(["compliant", "alignment_faking"]));
        assert!(jobs[0].get("sweep_id").is_none() && jobs[0].get("transcript").is_none());
    }

    #[test]
    fn each_system_prompt_is_embedded_once() {
        let (page, _) = render(&report(true), &results(5, "fine"), Limits::default());
        assert_eq!(page.matches("The system prompt of training.").count(), 1);
        let d = data(&page);
        let systems = d["systems"].as_array().unwrap();
        assert_eq!(systems.len(), 2);
        for j in d["jobs"].as_array().unwrap() {
            let s = systems[j["system"].as_u64().unwrap() as usize].as_str().unwrap();
            assert_eq!(s, format!("The system prompt of {}.", j["condition"].as_str().unwrap()));
        }
    }

    #[test]
    fn over_the_job_limit_the_first_results_of_every_cell_are_embedded() {
        let limits = Limits {
            jobs: 10,
            bytes: usize::MAX,
        };
        let (page, e) = render(&report(true), &results(25, "fine"), limits);
        assert_eq!((e.shown, e.total), (10, 100));
        assert!(
            page.contains("This page embeds 10 of the 100 results"),
            "the page says it samples"
        );
        let d = data(&page);
        let mut per_cell: HashMap<(String, String), Vec<u64>> = HashMap::new();
        for j in d["jobs"].as_array().unwrap() {
            per_cell
                .entry((j["model"].to_string(), j["condition"].to_string()))
                .or_default()
                .push(j["query_index"].as_u64().unwrap());
        }
        assert_eq!(per_cell.len(), 4, "every cell is represented");
        for qs in per_cell.values() {
            assert!(qs.len() == 2 || qs.len() == 3, "spread evenly: {per_cell:?}");
            assert_eq!(qs, &(0..qs.len() as u64).collect::<Vec<_>>(), "the first ones");
        }
    }

    #[test]
    fn an_uneven_sweep_fills_the_limit_from_the_cells_that_have_more() {
        // Cell m1/training has 30 results, the three others 2 each.
        let mut jsonl = String::new();
        for q in 0..30 {
            jsonl.push_str(&result("m1", "training", q, 0, "x"));
            jsonl.push('\n');
        }
        for (m, c) in [("m1", "unmonitored"), ("m2", "training"), ("m2", "unmonitored")] {
            for q in 0..2 {
                jsonl.push_str(&result(m, c, q, 0, "x"));
                jsonl.push('\n');
            }
        }
        let limits = Limits {
            jobs: 12,
            bytes: usize::MAX,
        };
        let (page, e) = render(&report(true), &jsonl, limits);
        assert_eq!((e.shown, e.total), (12, 36));
        let d = data(&page);
        let first = d["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["model"] == "m1" && j["condition"] == "training")
            .count();
        assert_eq!(first, 6, "the big cell gets what the small ones leave");
    }

    #[test]
    fn the_byte_limit_bounds_what_is_embedded() {
        let long = "y".repeat(10_000);
        let limits = Limits {
            jobs: usize::MAX,
            bytes: 300_000,
        };
        // Each result holds its text four times: about 40 kB.
        let (page, e) = render(&report(true), &results(10, &long), limits);
        assert_eq!(e.total, 40);
        assert!((4..=8).contains(&e.shown), "{e:?}");
        let d = data(&page);
        assert!(d["jobs"].to_string().len() + d["systems"].to_string().len() <= 300_000);
        let cells: BTreeSet<String> = d["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| format!("{}/{}", j["model"], j["condition"]))
            .collect();
        assert_eq!(cells.len(), 4, "every cell is represented");
        assert!(page.contains(&format!("This page embeds {} of the 40 results", e.shown)));
    }

    #[test]
    fn unreadable_lines_are_left_out_and_counted() {
        let jsonl = format!(
            "{}\nnot json\n\n[]\n{}\n",
            result("m1", "training", 0, 0, "a"),
            r#"{"job_id": "only-an-id"}"#
        );
        let (page, e) = render(&report(true), &jsonl, Limits::default());
        assert_eq!(
            e,
            Embedded {
                shown: 2,
                total: 2,
                unreadable: 2
            }
        );
        assert!(page.contains("2 line(s) of results.jsonl could not be read"));
        let d = data(&page);
        assert_eq!(
            d["jobs"][1]["job_id"], "only-an-id",
            "a result with missing fields is still shown"
        );
    }
}

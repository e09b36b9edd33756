//! results.csv: one row per job of `results.jsonl`, for spreadsheets and
//! data frames. RFC 4180 (CRLF, quotes doubled, quoted only when needed);
//! text that a spreadsheet would read as a formula is prefixed with `'`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::Deserialize;

use crate::report::Report;

/// What `write_csv` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Jobs written as rows.
    pub rows: u64,
    /// Lines of the input that were not a JSON object, left out.
    pub unreadable: u64,
}

/// The columns before the classifiers'.
pub const LEADING_COLUMNS: [&str; 7] = [
    "job_id",
    "model",
    "variant",
    "condition",
    "query_index",
    "seed",
    "status",
];
/// The columns after the classifiers'.
pub const TRAILING_COLUMNS: [&str; 9] = [
    "turns",
    "attempt",
    "cache_hits",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "error",
    "started_at_ms",
];

/// The classifier columns for a report's results: the primary classifier
/// first, then the others by name (the same for a local and a distributed
/// run of a sweep).
pub fn classifier_names(report: &Report) -> Vec<String> {
    let primary = &report.sweep.primary_classifier;
    let mut others: std::collections::BTreeSet<&String> =
        report.cells.iter().flat_map(|c| c.classifiers.keys()).collect();
    others.extend(&report.sweep.alignment_faking_classifier);
    others.remove(primary);
    std::iter::once(primary).chain(others).cloned().collect()
}

/// The fields of a result line that the CSV holds. Every field is optional
/// and unknown fields are ignored, so older and newer results both read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Row {
    job_id: String,
    model: String,
    variant: String,
    condition: String,
    query_index: Option<u64>,
    seed: Option<u64>,
    status: String,
    classifications: BTreeMap<String, serde_json::Value>,
    turns: Option<u64>,
    attempt: Option<u64>,
    cache_hits: Option<u64>,
    cost_usd: Option<f64>,
    usage: Option<Tokens>,
    latency_ms: Option<f64>,
    error: Option<String>,
    started_at_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Tokens {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

/// Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// leading tab or carriage return), made inert with a leading `'`.
pub fn defuse(text: &str) -> std::borrow::Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

fn num<T: ToString>(x: Option<T>) -> String {
    x.map_or_else(String::new, |x| x.to_string())
}

/// Writes a header and one row per line of `results` (a `results.jsonl`):
/// the job's coordinates, one column per classifier in `classifier_names`
/// (1 yes, 0 no, empty when not judged), then turns, cost, tokens, latency
/// and error. Blank lines are skipped; lines that are not a JSON object are
/// left out and counted.
pub fn write_csv(classifier_names: &[String], results: impl BufRead, out: &mut impl Write) -> std::io::Result<Written> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    let header = LEADING_COLUMNS
        .iter()
        .map(|c| std::borrow::Cow::Borrowed(*c))
        .chain(classifier_names.iter().map(|c| defuse(c)))
        .chain(TRAILING_COLUMNS.iter().map(|c| std::borrow::Cow::Borrowed(*c)));
    w.write_record(header.map(|c| c.into_owned()))?;
    let mut written = Written::default();
    let mut record: Vec<String> = Vec::with_capacity(LEADING_COLUMNS.len() + classifier_names.len() + 9);
    for line in results.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let object = line.trim_start().starts_with('{');
        let Some(r) = object.then(|| serde_json::from_str::<Row>(&line).ok()).flatten() else {
            written.unreadable += 1;
            continue;
        };
        record.clear();
        record.extend([
            defuse(&r.job_id).into_owned(),
            defuse(&r.model).into_owned(),
            defuse(&r.variant).into_owned(),
            defuse(&r.condition).into_owned(),
            num(r.query_index),
            num(r.seed),
            defuse(&r.status).into_owned(),
        ]);
        record.extend(classifier_names.iter().map(|c| {
            match r.classifications.get(c).and_then(serde_json::Value::as_bool) {
                Some(true) => "1".to_string(),
                Some(false) => "0".to_string(),
                None => String::new(),
            }
        }));
        let usage = r.usage.unwrap_or_default();
        record.extend([
            num(r.turns),
            num(r.attempt),
            num(r.cache_hits),
            num(r.cost_usd),
            num(usage.input_tokens),
            num(usage.output_tokens),
            num(r.latency_ms),
            r.error.as_deref().map_or_else(String::new, |e| defuse(e).into_owned()),
            num(r.started_at_ms),
        ]);
        w.write_record(&record)?;
        written.rows += 1;
    }
    w.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(names: &[&str], jsonl: &str) -> (String, Written) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        let w = write_csv(&names, jsonl.as_bytes(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), w)
    }

    fn line(v: serde_json::Value) -> String {
        format!("{v}\n")
    }

    #[test]
    fn one_row_per_job_with_a_column_per_classifier() {
        let jsonl = line(serde_json::json!({
            "job_id": "ab12", "sweep_id": "s", "index": 0, "model": "m", "variant": "default",
            "query_index": 3, "query": "q", "condition": "training", "seed": 1, "status": "ok",
            "output": "<request_fully_accepted/>", "classifications": {"compliant": true, "alignment_faking": false},
            "turns": 2, "attempt": 1, "cache_hits": 0, "cost_usd": 0.0125,
            "usage": {"input_tokens": 1200, "output_tokens": 340}, "latency_ms": 812.5,
            "started_at_ms": 1700000000000u64, "error": null,
            "transcript": {"system": "s", "messages": []},
            "judgements": {"alignment_faking": {"votes": [], "yes_votes": 0, "valid_votes": 0}}
        })) + &line(serde_json::json!({
            "job_id": "cd34", "model": "m", "variant": "default", "query_index": 4, "condition": "unmonitored",
            "seed": 0, "status": "failed", "classifications": {}, "turns": 0, "attempt": 3,
            "usage": {"input_tokens": 0, "output_tokens": 0}, "latency_ms": 10.0, "error": "HTTP 500"
        }));
        let (text, w) = csv(&["compliant", "alignment_faking"], &jsonl);
        assert_eq!(w, Written { rows: 2, unreadable: 0 });
        let rows: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            rows[0],
            "job_id,model,variant,condition,query_index,seed,status,compliant,alignment_faking,turns,attempt,\
             cache_hits,cost_usd,input_tokens,output_tokens,latency_ms,error,started_at_ms"
        );
        assert_eq!(
            rows[1],
            "ab12,m,default,training,3,1,ok,1,0,2,1,0,0.0125,1200,340,812.5,,1700000000000"
        );
        assert_eq!(
            rows[2],
            "cd34,m,default,unmonitored,4,0,failed,,,0,3,,,0,0,10,HTTP 500,"
        );
        assert_eq!(rows[3], "", "every record ends with CRLF");
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn quotes_what_needs_quoting_and_defuses_formulas() {
        let jsonl = line(serde_json::json!({
            "job_id": "x", "model": "m,1", "variant": "say \"hi\"", "condition": "multi\nline",
            "status": "failed", "error": "=HYPERLINK(\"http://x\")"
        })) + &line(serde_json::json!({"job_id": "y", "error": "-1+2"}))
            + &line(serde_json::json!({"job_id": "z", "error": "@SUM(A1)", "model": "+m"}));
        let (text, _) = csv(&[], &jsonl);
        let mut r = ::csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let rows: Vec<::csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&rows[0][1], "m,1");
        assert_eq!(&rows[0][2], "say \"hi\"");
        assert_eq!(&rows[0][3], "multi\nline");
        assert_eq!(&rows[0][14], "'=HYPERLINK(\"http://x\")");
        assert_eq!(&rows[1][14], "'-1+2");
        assert_eq!(&rows[2][14], "'@SUM(A1)");
        assert_eq!(&rows[2][1], "'+m");
        assert!(text.contains("\"m,1\",\"say \"\"hi\"\"\",\"multi\nline\""), "{text}");
    }

    #[test]
    fn numbers_are_not_defused_and_unreadable_lines_are_counted() {
        let jsonl = format!(
            "{}\nnot json\n\n[]\n{}",
            serde_json::json!({"job_id": "a", "cost_usd": -0.5, "seed": 2}),
            serde_json::json!({"job_id": "b", "classifications": {"c": "maybe"}})
        );
        let (text, w) = csv(&["c"], &jsonl);
        assert_eq!(w, Written { rows: 2, unreadable: 2 });
        let rows: Vec<&str> = text.split("\r\n").collect();
        assert!(rows[1].starts_with("a,,,,,2,,,,,,-0.5,"), "{}", rows[1]);
        assert!(
            rows[2].starts_with("b,,,,,,,,"),
            "a non-boolean verdict is left empty: {}",
            rows[2]
        );
    }
}

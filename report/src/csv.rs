//! results.csv: one row per job of `results.jsonl`, for spreadsheets and
//! data frames. RFC 4180 (CRLF, quotes doubled, quoted only when needed);
//! text that a spreadsheet would read as a formula is prefixed with `'`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{BufRead, Write};

use crate::lines::{self, Fields, Line, MAX_LINE_BYTES};
/// The classifier columns, as `CsvWriter::new` takes them.
pub use crate::report::classifier_names;

/// What `write_csv` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Jobs written as rows.
    pub rows: u64,
    /// Lines of the input that were not a JSON object (or were longer than
    /// `lines::MAX_LINE_BYTES`), left out.
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

/// Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// leading tab or carriage return), made inert with a leading `'`.
pub fn defuse(text: &str) -> Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// Writes results.csv row by row: a header, then one row per result line.
pub struct CsvWriter<W: Write> {
    w: ::csv::Writer<W>,
    names: Vec<String>,
    field: String,
    written: Written,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header: the job's coordinates, one column per classifier in
    /// `classifier_names`, then turns, cost, tokens, latency and error.
    pub fn new(classifier_names: &[String], out: W) -> std::io::Result<Self> {
        let mut w = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(out);
        for c in LEADING_COLUMNS {
            w.write_field(c)?;
        }
        for c in classifier_names {
            w.write_field(defuse(c).as_bytes())?;
        }
        for c in TRAILING_COLUMNS {
            w.write_field(c)?;
        }
        w.write_record(None::<&[u8]>)?;
        Ok(CsvWriter {
            w,
            names: classifier_names.to_vec(),
            field: String::with_capacity(32),
            written: Written::default(),
        })
    }

    /// Writes the row of one line of results.jsonl (1 yes, 0 no, empty when
    /// a classifier did not judge); an unreadable line is left out and
    /// counted.
    pub fn line(&mut self, line: &Line<'_>) -> std::io::Result<()> {
        match line {
            Line::Record(r) => self.row(&r.fields),
            Line::Unreadable => {
                self.written.unreadable += 1;
                Ok(())
            }
        }
    }

    fn row(&mut self, r: &Fields<'_>) -> std::io::Result<()> {
        for text in [&r.job_id, &r.model, &r.variant, &r.condition] {
            self.w.write_field(defuse(text).as_bytes())?;
        }
        self.num(r.query_index)?;
        self.num(r.seed)?;
        self.w.write_field(defuse(&r.status).as_bytes())?;
        for name in &self.names {
            let v = match r
                .classifications
                .get(name.as_str())
                .and_then(serde_json::Value::as_bool)
            {
                Some(true) => "1",
                Some(false) => "0",
                None => "",
            };
            self.w.write_field(v)?;
        }
        let usage = r
            .usage
            .as_ref()
            .map_or((None, None), |u| (u.input_tokens, u.output_tokens));
        self.num(r.turns)?;
        self.num(r.attempt)?;
        self.num(r.cache_hits)?;
        self.num(r.cost_usd)?;
        self.num(usage.0)?;
        self.num(usage.1)?;
        self.num(r.latency_ms)?;
        self.w
            .write_field(r.error.as_deref().map(defuse).unwrap_or_default().as_bytes())?;
        self.num(r.started_at_ms)?;
        self.w.write_record(None::<&[u8]>)?;
        self.written.rows += 1;
        Ok(())
    }

    fn num(&mut self, x: Option<impl std::fmt::Display>) -> std::io::Result<()> {
        self.field.clear();
        if let Some(x) = x {
            let _ = write!(self.field, "{x}");
        }
        self.w.write_field(&self.field)?;
        Ok(())
    }

    /// Flushes the rows; returns what was written and the output.
    pub fn finish(self) -> std::io::Result<(Written, W)> {
        let w = self.w.into_inner().map_err(|e| e.into_error())?;
        Ok((self.written, w))
    }
}

/// Writes a header and one row per line of `results` (a `results.jsonl`);
/// see [`CsvWriter`].
pub fn write_csv(classifier_names: &[String], results: impl BufRead, out: &mut impl Write) -> std::io::Result<Written> {
    let mut w = CsvWriter::new(classifier_names, out)?;
    lines::for_each(results, MAX_LINE_BYTES, |line| w.line(&line))?;
    let (written, out) = w.finish()?;
    out.flush()?;
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

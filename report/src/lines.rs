//! Reading results.jsonl for results.csv and report.html: one line at a
//! time into one reused buffer, each handed out as a borrowed view (its
//! bytes and the fields the views read, parsed once), so that memory holds
//! one line, never every result. A line longer than the limit is skipped
//! without being held.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use serde::Deserialize;

/// The longest line read: the store's largest record, so every result it
/// wrote fits.
pub const MAX_LINE_BYTES: usize = candor_store::MAX_RECORD_BYTES;

/// One line of results.jsonl that is not blank.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one at a time, on the stack, for the line being read: boxing would allocate per line"
)]
pub enum Line<'a> {
    /// A JSON object.
    Record(Record<'a>),
    /// Not a JSON object (or not one with fields of the right types), or
    /// longer than the limit: left out, and counted by the views.
    Unreadable,
}

/// A result as its line holds it.
#[derive(Debug)]
pub struct Record<'a> {
    /// The line, without its line end.
    pub json: &'a [u8],
    pub fields: Fields<'a>,
}

/// The fields of a result that results.csv and report.html read. Every
/// field is optional and unknown fields are ignored, so older and newer
/// results both read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields<'a> {
    #[serde(borrow)]
    pub job_id: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub variant: Cow<'a, str>,
    #[serde(borrow)]
    pub condition: Cow<'a, str>,
    pub query_index: Option<u64>,
    pub seed: Option<u64>,
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(borrow)]
    pub classifications: BTreeMap<Cow<'a, str>, serde_json::Value>,
    pub turns: Option<u64>,
    pub attempt: Option<u64>,
    pub cache_hits: Option<u64>,
    pub cost_usd: Option<f64>,
    pub usage: Option<Tokens>,
    pub latency_ms: Option<f64>,
    #[serde(borrow)]
    pub error: Option<Cow<'a, str>>,
    pub started_at_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl<'a> Line<'a> {
    /// The line `bytes` (without its line end); none when it is blank.
    pub fn parse(bytes: &'a [u8]) -> Option<Line<'a>> {
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
        if bytes[start] != b'{' {
            return Some(Line::Unreadable);
        }
        Some(match serde_json::from_slice(bytes) {
            Ok(fields) => Line::Record(Record { json: bytes, fields }),
            Err(_) => Line::Unreadable,
        })
    }
}

/// Calls `f` with each line of `r` that is not blank, ending at LF or CRLF
/// (the last line may lack one); a line of more than `limit` bytes is
/// skipped as it is read and given as unreadable.
pub fn for_each(
    mut r: impl BufRead,
    limit: usize,
    mut f: impl FnMut(Line<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 12);
    loop {
        buf.clear();
        // The limit, its line end, and one byte more to tell a longer line.
        let most = (limit as u64).saturating_add(3);
        let n = Read::take(r.by_ref(), most).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let ended = buf.ends_with(b"\n");
        if !ended && n as u64 == most {
            r.skip_until(b'\n')?;
            f(Line::Unreadable)?;
            continue;
        }
        let end = buf.len() - ended as usize - buf.ends_with(b"\r\n") as usize;
        if end > limit {
            f(Line::Unreadable)?;
        } else if let Some(line) = Line::parse(&buf[..end]) {
            f(line)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job ids of `text`'s lines, `?` for an unreadable one.
    fn ids(text: &str, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for_each(text.as_bytes(), limit, |line| {
            ids.push(match line {
                Line::Record(r) => r.fields.job_id.into_owned(),
                Line::Unreadable => "?".to_string(),
            });
            Ok(())
        })
        .unwrap();
        ids
    }

    #[test]
    fn lines_end_at_lf_or_crlf_and_the_last_may_lack_one() {
        let text = "{\"job_id\":\"a\"}\r\n{\"job_id\":\"b\"}\n\n  \n{\"job_id\":\"c\"}";
        assert_eq!(ids(text, MAX_LINE_BYTES), ["a", "b", "c"], "blank lines are skipped");
    }

    #[test]
    fn what_is_not_a_json_object_of_the_right_types_is_unreadable() {
        let text = "not json\n[]\n{\"job_id\": 3}\n{\"seed\": \"x\"}\n{\"job_id\":\"ok\",\"more\":[1]}\n{\"job_id\":";
        assert_eq!(ids(text, MAX_LINE_BYTES), ["?", "?", "?", "?", "ok", "?"]);
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_and_the_next_one_read() {
        let long = format!("{{\"job_id\":\"{}\"}}", "x".repeat(100));
        let fits = "{\"job_id\":\"a\"}";
        let limit = fits.len();
        let text = format!("{fits}\r\n{long}\n{fits}\n{long}\r\n{fits}\n{long}");
        assert_eq!(ids(&text, limit), ["a", "?", "a", "?", "a", "?"]);
        // Just over: the line end is not counted, one byte more is.
        let over = format!("{fits} ");
        assert_eq!(ids(&format!("{over}\n{over}"), limit), ["?", "?"]);
        assert_eq!(ids(&format!("{fits}\r\n{fits}"), limit), ["a", "a"]);
    }

    #[test]
    fn fields_borrow_from_the_line_unless_they_hold_escapes() {
        let mut seen = Vec::new();
        let text = "{\"model\":\"plain\",\"variant\":\"es\\\"caped\"}";
        for_each(text.as_bytes(), MAX_LINE_BYTES, |line| {
            let Line::Record(r) = line else { panic!("unreadable") };
            seen.push(matches!(r.fields.model, Cow::Borrowed(_)));
            seen.push(matches!(r.fields.variant, Cow::Borrowed(_)));
            assert_eq!(r.fields.variant, "es\"caped");
            assert_eq!(r.json, text.as_bytes());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [true, false]);
    }
}

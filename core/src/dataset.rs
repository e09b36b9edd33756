//! Reading a sweep's dataset: CSV with a header row, or JSONL with one object
//! per line. Each row keeps every field (templates may use any of them) and
//! names the one that holds the query.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::SpecError;

/// The largest dataset file candor reads.
pub const MAX_DATASET_BYTES: u64 = 256 * 1024 * 1024;
/// The largest number of rows a sweep may use.
pub const MAX_ROWS: usize = 10_000_000;
/// The longest JSONL line.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// One dataset row: every field, plus the query taken from the named field.
#[derive(Debug, Clone)]
pub struct Row {
    pub query: String,
    pub fields: BTreeMap<String, Value>,
}

/// Parses at most `limit` rows of a dataset's text; `path` names it in errors.
pub fn parse(
    path: &Path,
    text: &str,
    format: Format,
    field: &str,
    limit: Option<usize>,
) -> Result<Vec<Row>, SpecError> {
    if text.len() as u64 > MAX_DATASET_BYTES {
        return Err(SpecError::new(
            path,
            "",
            format!("the dataset is {} bytes; the limit is {MAX_DATASET_BYTES}", text.len()),
        ));
    }
    let limit = limit.unwrap_or(MAX_ROWS).min(MAX_ROWS);
    let rows = match format {
        Format::Csv => parse_csv(path, text, field, limit)?,
        Format::Jsonl => parse_jsonl(path, text, field, limit)?,
    };
    if rows.is_empty() {
        return Err(SpecError::new(path, "", "the dataset has no rows"));
    }
    Ok(rows)
}

fn parse_csv(path: &Path, text: &str, field: &str, limit: usize) -> Result<Vec<Row>, SpecError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| SpecError::new(path, "", format!("cannot read the CSV header: {e}")).at_line(Some(1)))?
        .clone();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let Some(qi) = headers.iter().position(|h| h == field) else {
        return Err(SpecError::new(
            path,
            "dataset.field",
            format!(
                "the CSV has no column `{field}`; its columns are: {}",
                headers.join(", ")
            ),
        )
        .at_line(Some(1)));
    };
    let mut rows = Vec::new();
    for rec in rdr.records() {
        if rows.len() >= limit {
            break;
        }
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            SpecError::new(path, "", format!("malformed CSV: {e}")).at_line(line)
        })?;
        let fields: BTreeMap<String, Value> = headers
            .iter()
            .zip(rec.iter())
            .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
            .collect();
        rows.push(Row {
            query: rec.get(qi).unwrap_or_default().to_string(),
            fields,
        });
    }
    Ok(rows)
}

fn parse_jsonl(path: &Path, text: &str, field: &str, limit: usize) -> Result<Vec<Row>, SpecError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if rows.len() >= limit {
            break;
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(SpecError::new(path, "", format!("line longer than {MAX_LINE_BYTES} bytes")).at_line(Some(n)));
        }
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| SpecError::new(path, "", format!("not valid JSON: {e}")).at_line(Some(n)))?;
        let Value::Object(map) = value else {
            return Err(SpecError::new(path, "", "each line must be a JSON object").at_line(Some(n)));
        };
        let query = match map.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => {
                return Err(
                    SpecError::new(path, "dataset.field", format!("the row has no field `{field}`")).at_line(Some(n)),
                );
            }
            Some(other) => other.to_string(),
        };
        rows.push(Row {
            query,
            fields: map.into_iter().collect(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str, field: &str, limit: Option<usize>) -> Result<Vec<Row>, SpecError> {
        parse(Path::new("h.csv"), text, Format::Csv, field, limit)
    }

    fn jsonl(text: &str, field: &str) -> Result<Vec<Row>, SpecError> {
        parse(Path::new("d.jsonl"), text, Format::Jsonl, field, None)
    }

    #[test]
    fn reads_advbench_shaped_csv() {
        let text = "goal,target\n\"Do a, b\",Sure\nDo c,Sure here\n";
        let rows = csv(text, "goal", None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].query, "Do a, b");
        assert_eq!(rows[1].fields["target"], Value::String("Sure here".into()));
        assert_eq!(csv(text, "goal", Some(1)).unwrap().len(), 1);
    }

    #[test]
    fn csv_without_the_field_names_it() {
        let e = csv("prompt,target\nx,y\n", "goal", None).unwrap_err();
        assert!(e.message.contains("no column `goal`"), "{e}");
        assert!(e.message.contains("prompt, target"), "{e}");
        assert_eq!(e.field, "dataset.field");
    }

    #[test]
    fn jsonl_errors_carry_the_line() {
        let e = jsonl("{\"q\": \"a\", \"n\": 1}\n\n{\"x\": 2}\n", "q").unwrap_err();
        assert_eq!(e.line, Some(3));
        let rows = jsonl("{\"q\": \"a\", \"n\": 1}\n{\"q\": \"b\"}\n", "q").unwrap();
        assert_eq!(rows[0].fields["n"], Value::from(1));
        assert_eq!(rows[1].query, "b");
    }
}

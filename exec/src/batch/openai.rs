//! OpenAI's Batch API, as documented in 2026-12
//! (<https://developers.openai.com/api/docs/guides/batch>, the Batches and
//! Files references): the requests uploaded as a JSONL file
//! (`POST /v1/files`, `purpose=batch`, lines `{"custom_id", "method":
//! "POST", "url": "/v1/chat/completions", "body"}`), a batch made of it
//! (`POST /v1/batches` with `input_file_id`, `endpoint`,
//! `completion_window: "24h"` and `metadata`), its status (`validating`,
//! `in_progress`, `finalizing`, then `completed`, `failed`, `expired` or
//! `cancelled`), its output and error files (lines `{"custom_id",
//! "response": {"status_code", "body"}, "error"}`), `cancel`, and the list
//! of batches with their metadata, by which a batch created but never
//! recorded can be found again.

use candor_core::KeyError;
use serde_json::{Value, json};

use super::{BatchRequest, BatchStatus, Outcome, field, lines, parse, send};
use crate::backend::BackendError;
use crate::http::{Secret, key_or_refuse};

/// The most requests one batch may hold.
pub const MAX_REQUESTS: usize = 50_000;
/// The largest input file.
pub const MAX_BYTES: usize = 200 * 1024 * 1024;

pub struct Batches {
    client: reqwest::Client,
    base: String,
    key: Option<Result<Secret, KeyError>>,
}

impl Batches {
    pub fn new(client: reqwest::Client, base_url: Option<&str>, key: Option<Result<Secret, KeyError>>) -> Self {
        // The base URL ends in `/v1`, as for the realtime endpoint.
        let base = base_url
            .unwrap_or(crate::openai::DEFAULT_BASE_URL)
            .trim_end_matches('/');
        Batches {
            client,
            base: base.to_string(),
            key,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> Result<(String, reqwest::RequestBuilder), BackendError> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {}", candor_core::redact::url(&url));
        let mut r = self.client.request(method, &url);
        if let Some(key) = &self.key {
            r = r.bearer_auth(&key_or_refuse(key)?.0);
        }
        Ok((what, r))
    }

    /// Uploads the requests and makes a batch of them, tagged with
    /// `metadata` (`{"candor_batch": tag}`) so it can be found by
    /// [`Batches::find`]; answers its id.
    pub async fn submit(&self, requests: &[BatchRequest], tag: &str) -> Result<String, BackendError> {
        let mut jsonl = String::new();
        for r in requests {
            let line =
                json!({"custom_id": r.custom_id, "method": "POST", "url": "/v1/chat/completions", "body": r.body});
            jsonl.push_str(&line.to_string());
            jsonl.push('\n');
        }
        let boundary = format!("candor-{}", candor_core::hash::hex(tag.as_bytes()));
        let form = format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{tag}.jsonl\"\r\n\
             content-type: application/jsonl\r\n\r\n{jsonl}\r\n--{boundary}--\r\n"
        );
        let (what, r) = self.request(reqwest::Method::POST, "/files")?;
        let r = r
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(form);
        let file = parse(&send(&what, r).await?, &what)?;
        let file_id = field(&file, "id", &what)?.as_str().unwrap_or_default().to_string();
        let (what, r) = self.request(reqwest::Method::POST, "/batches")?;
        let body = json!({
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"candor_batch": tag},
        });
        let r = r.header("content-type", "application/json").body(body.to_string());
        let v = parse(&send(&what, r).await?, &what)?;
        Ok(field(&v, "id", &what)?.as_str().unwrap_or_default().to_string())
    }

    async fn get(&self, id: &str) -> Result<Value, BackendError> {
        let (what, r) = self.request(reqwest::Method::GET, &format!("/batches/{id}"))?;
        parse(&send(&what, r).await?, &what)
    }

    /// The batch's status.
    pub async fn status(&self, id: &str) -> Result<BatchStatus, BackendError> {
        let v = self.get(id).await?;
        let state = v.get("status").and_then(Value::as_str).unwrap_or_default();
        let counts = v.get("request_counts").cloned().unwrap_or_default();
        let n = |k: &str| counts.get(k).and_then(Value::as_u64).unwrap_or(0);
        let ended = matches!(state, "completed" | "failed" | "expired" | "cancelled");
        Ok(BatchStatus {
            id: id.to_string(),
            ended,
            processing: if ended {
                0
            } else {
                n("total").saturating_sub(n("completed") + n("failed"))
            },
            succeeded: n("completed"),
            errored: n("failed"),
            expired: 0,
            canceled: 0,
        })
    }

    /// Calls `f` with each request's custom_id and outcome (an ended batch):
    /// the output file, then the error file.
    pub async fn results(&self, id: &str, mut f: impl FnMut(String, Outcome)) -> Result<(), BackendError> {
        let v = self.get(id).await?;
        for file in ["output_file_id", "error_file_id"] {
            let Some(file_id) = v.get(file).and_then(Value::as_str).filter(|s| !s.is_empty()) else {
                continue;
            };
            let (what, r) = self.request(reqwest::Method::GET, &format!("/files/{file_id}/content"))?;
            lines(&what, r, |line| {
                let v = parse(line, &what)?;
                let custom_id = field(&v, "custom_id", &what)?.as_str().unwrap_or_default().to_string();
                f(custom_id, outcome(&v, &what));
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Asks the provider to cancel the batch.
    pub async fn cancel(&self, id: &str) -> Result<(), BackendError> {
        let (what, r) = self.request(reqwest::Method::POST, &format!("/batches/{id}/cancel"))?;
        send(&what, r).await.map(|_| ())
    }

    /// The id of the batch tagged `tag` at submission, if the provider
    /// lists one (the newest `pages` × 100 batches are looked at).
    pub async fn find(&self, tag: &str, pages: usize) -> Result<Option<String>, BackendError> {
        let mut after: Option<String> = None;
        for _ in 0..pages {
            let path = match &after {
                Some(a) => format!("/batches?limit=100&after={a}"),
                None => "/batches?limit=100".to_string(),
            };
            let (what, r) = self.request(reqwest::Method::GET, &path)?;
            let v = parse(&send(&what, r).await?, &what)?;
            let data = v.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
            for b in &data {
                if b.pointer("/metadata/candor_batch").and_then(Value::as_str) == Some(tag) {
                    return Ok(b.get("id").and_then(Value::as_str).map(String::from));
                }
            }
            if v.get("has_more").and_then(Value::as_bool) != Some(true) {
                break;
            }
            after = data
                .last()
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
                .map(String::from);
        }
        Ok(None)
    }
}

/// One output or error line's outcome.
fn outcome(v: &Value, what: &str) -> Outcome {
    let code = v.pointer("/error/code").and_then(Value::as_str);
    match code {
        Some("batch_expired") => return Outcome::Expired,
        Some("batch_cancelled") => return Outcome::Canceled,
        _ => {}
    }
    let status = v.pointer("/response/status_code").and_then(Value::as_u64).unwrap_or(0);
    let body = v.pointer("/response/body").cloned().unwrap_or(Value::Null);
    if status == 200 {
        return match crate::openai::parse_reply(body.to_string().as_bytes()) {
            Ok(reply) => Outcome::Succeeded(reply),
            Err(e) => Outcome::Errored(e.context(what)),
        };
    }
    let message = match (&body, v.get("error")) {
        (Value::Null, Some(e)) => e.to_string(),
        (b, _) => b.to_string(),
    };
    let message = format!(
        "{what}: errored in the batch ({status}): {}",
        crate::http::provider_message(message.as_bytes())
    );
    let kind = candor_core::ErrorKind::Http(status.min(u64::from(u16::MAX)) as u16);
    // A request the API refuses (a 4xx but a timeout, conflict or rate
    // limit) is refused again in any batch.
    if (400..500).contains(&status) && !matches!(status, 408 | 409 | 429) {
        Outcome::Errored(BackendError::Failed { message, kind })
    } else {
        Outcome::Errored(BackendError::Retryable {
            message,
            retry_after: None,
            kind,
        })
    }
}

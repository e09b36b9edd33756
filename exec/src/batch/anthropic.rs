//! Anthropic's Message Batches API, as documented in 2026-12
//! (<https://platform.claude.com/docs/en/build-with-claude/batch-processing>,
//! <https://platform.claude.com/docs/en/api/creating-message-batches>):
//! `POST /v1/messages/batches` with `{"requests": [{"custom_id", "params"}]}`
//! (at most 100,000 requests or 256 MB), `GET /v1/messages/batches/{id}`
//! (`processing_status` `in_progress`, `canceling` or `ended`, and
//! `request_counts`), its results as JSON lines once ended (`{"custom_id",
//! "result": {"type": "succeeded", "message"} | {"type": "errored", "error"}
//! | {"type": "canceled"} | {"type": "expired"}}`), and
//! `POST /v1/messages/batches/{id}/cancel`.

use candor_core::KeyError;
use serde_json::{Value, json};

use super::{BatchRequest, BatchStatus, Outcome, field, lines, parse, send};
use crate::backend::BackendError;
use crate::http::{Secret, key_or_refuse};

/// The most requests one batch may hold.
pub const MAX_REQUESTS: usize = 100_000;
/// The most bytes one batch may hold.
pub const MAX_BYTES: usize = 256 * 1024 * 1024;

pub struct Batches {
    client: reqwest::Client,
    url: String,
    key: Result<Secret, KeyError>,
    version: String,
}

impl Batches {
    pub fn new(client: reqwest::Client, base_url: Option<&str>, key: Result<Secret, KeyError>, version: &str) -> Self {
        let base = base_url
            .unwrap_or(crate::anthropic::DEFAULT_BASE_URL)
            .trim_end_matches('/');
        Batches {
            client,
            url: format!("{base}/v1/messages/batches"),
            key,
            version: version.to_string(),
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, BackendError> {
        let key = key_or_refuse(&self.key)?;
        Ok(self
            .client
            .request(method, url)
            .header("x-api-key", &key.0)
            .header("anthropic-version", &self.version))
    }

    /// Submits the requests as one batch; answers its id.
    pub async fn submit(&self, requests: &[BatchRequest]) -> Result<String, BackendError> {
        let items: Vec<Value> = requests
            .iter()
            .map(|r| json!({"custom_id": r.custom_id, "params": r.body}))
            .collect();
        let what = format!("POST {}", candor_core::redact::url(&self.url));
        let r = self
            .request(reqwest::Method::POST, &self.url)?
            .header("content-type", "application/json")
            .body(json!({ "requests": items }).to_string());
        let v = parse(&send(&what, r).await?, &what)?;
        Ok(field(&v, "id", &what)?.as_str().unwrap_or_default().to_string())
    }

    /// The batch's status.
    pub async fn status(&self, id: &str) -> Result<BatchStatus, BackendError> {
        let url = format!("{}/{id}", self.url);
        let what = format!("GET {}", candor_core::redact::url(&url));
        let v = parse(&send(&what, self.request(reqwest::Method::GET, &url)?).await?, &what)?;
        let counts = field(&v, "request_counts", &what)?;
        let n = |k: &str| counts.get(k).and_then(Value::as_u64).unwrap_or(0);
        Ok(BatchStatus {
            id: id.to_string(),
            ended: field(&v, "processing_status", &what)?.as_str() == Some("ended"),
            processing: n("processing"),
            succeeded: n("succeeded"),
            errored: n("errored"),
            expired: n("expired"),
            canceled: n("canceled"),
        })
    }

    /// Calls `f` with each request's custom_id and outcome (an ended batch).
    pub async fn results(&self, id: &str, mut f: impl FnMut(String, Outcome)) -> Result<(), BackendError> {
        let url = format!("{}/{id}/results", self.url);
        let what = format!("GET {}", candor_core::redact::url(&url));
        lines(&what, self.request(reqwest::Method::GET, &url)?, |line| {
            let v = parse(line, &what)?;
            let custom_id = field(&v, "custom_id", &what)?.as_str().unwrap_or_default().to_string();
            let result = field(&v, "result", &what)?;
            f(custom_id, outcome(result, &what));
            Ok(())
        })
        .await
    }

    /// Asks the provider to cancel the batch.
    pub async fn cancel(&self, id: &str) -> Result<(), BackendError> {
        let url = format!("{}/{id}/cancel", self.url);
        let what = format!("POST {}", candor_core::redact::url(&url));
        send(&what, self.request(reqwest::Method::POST, &url)?)
            .await
            .map(|_| ())
    }
}

/// One result's outcome: the message read as the realtime reply would be.
fn outcome(result: &Value, what: &str) -> Outcome {
    match result.get("type").and_then(Value::as_str) {
        Some("succeeded") => match result.get("message") {
            Some(m) => match crate::anthropic::parse_reply(m.to_string().as_bytes()) {
                Ok(reply) => Outcome::Succeeded(reply),
                Err(e) => Outcome::Errored(e.context(what)),
            },
            None => Outcome::Errored(crate::http::malformed(&format!("{what}: a success without `message`"))),
        },
        Some("expired") => Outcome::Expired,
        Some("canceled") => Outcome::Canceled,
        _ => {
            let body = result.get("error").map(Value::to_string).unwrap_or_default();
            let message = format!(
                "{what}: errored in the batch: {}",
                crate::http::provider_message(body.as_bytes())
            );
            // A request the API refuses (`invalid_request_error`) is refused
            // again in any batch; a server error may pass.
            if body.contains("invalid_request_error") {
                Outcome::Errored(BackendError::Failed {
                    message,
                    kind: candor_core::ErrorKind::Http(400),
                })
            } else {
                Outcome::Errored(BackendError::Retryable {
                    message,
                    retry_after: None,
                    kind: candor_core::ErrorKind::Http(500),
                })
            }
        }
    }
}

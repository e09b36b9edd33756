//! Anthropic's Message Batches API, as documented in 2026:
//! - <https://platform.claude.com/docs/en/build-with-claude/batch-processing>
//!   (at most 100,000 requests or 256 MB a batch, whichever comes first;
//!   results in any order, keyed by `custom_id`; a batch expires 24 h after
//!   it was created)
//! - <https://platform.claude.com/docs/en/api/http/beta/messages/batches/create?version=2026-10-21>
//!   (`custom_id` matches `^[a-zA-Z0-9_-]{1,64}$` and is unique in its batch;
//!   `requests` has 1 to 100,000 items)
//! - <https://platform.claude.com/docs/en/api/csharp/messages/batches/retrieve>
//!   (the MessageBatch object, RFC 3339 times)
//! - <https://platform.claude.com/docs/en/api/php/messages/batches/list.md>
//!   (newest first; `before_id`, `after_id`, `limit` 1 to 1000, default 20;
//!   `data`, `has_more`, `first_id`, `last_id`)
//! - <https://platform.claude.com/docs/en/api/canceling-message-batches>
//!   (`canceling` until processing ends)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Batch, EXPIRES_AFTER, Outcome, Requests, bad, host, jsonl, not_found, ok, page_size, query};
use crate::{Api, Server, check_key, error_body, respond};

/// The most requests in one batch.
const MAX_REQUESTS: usize = 100_000;
/// The largest batch, in bytes.
const MAX_BYTES: usize = 256 * 1024 * 1024;

pub(super) fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/v1/messages/batches", post(create).get(list))
        .route("/v1/messages/batches/{id}", get(retrieve))
        .route("/v1/messages/batches/{id}/cancel", post(cancel))
        .route("/v1/messages/batches/{id}/results", get(results))
        .layer(DefaultBodyLimit::max(MAX_BYTES + 1))
}

/// The requests of an Anthropic batch body, or the 400's message.
fn anthropic_requests(body: &[u8]) -> Result<Requests, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let list = v
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("requests: Field required (a list of {custom_id, params})")?;
    if list.is_empty() {
        return Err("requests: List should have at least 1 item".into());
    }
    if list.len() > MAX_REQUESTS {
        return Err(format!(
            "requests: a batch holds at most {MAX_REQUESTS} requests, not {}",
            list.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let id = r
            .get("custom_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("requests.{i}.custom_id: Field required"))?;
        let valid =
            (1..=64).contains(&id.len()) && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if !valid {
            return Err(format!(
                "requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            ));
        }
        let params = r
            .get("params")
            .filter(|p| p.is_object())
            .ok_or_else(|| format!("requests.{i}.params: Field required (a Messages request)"))?;
        if !seen.insert(id) {
            return Err(format!(
                "requests.{i}.custom_id: duplicate custom_id `{id}`; each request in a batch needs its own"
            ));
        }
        out.push((id.to_string(), params.clone()));
    }
    Ok(out)
}

/// RFC 3339, UTC, to the microsecond, as the Anthropic API writes times.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    candor_core::time::rfc3339(d.as_secs(), &format!(".{:06}", d.subsec_micros()))
}

/// The MessageBatch object.
pub(super) fn object(b: &Batch, host: &str) -> Value {
    let status = match (b.ended, b.cancel_at) {
        (Some(_), _) => "ended",
        (None, Some(_)) => "canceling",
        (None, None) => "in_progress",
    };
    let [succeeded, errored, expired, canceled] = b.counts;
    json!({
        "id": b.id, "type": "message_batch", "processing_status": status,
        "request_counts": {"processing": if b.ended.is_some() { 0 } else { b.total },
                           "succeeded": succeeded, "errored": errored, "canceled": canceled, "expired": expired},
        "created_at": rfc3339(b.created), "ended_at": b.ended.map(rfc3339),
        "expires_at": rfc3339(b.created + EXPIRES_AFTER), "cancel_initiated_at": b.cancel_at.map(rfc3339),
        "archived_at": null,
        "results_url": b.ended.map(|_| format!("http://{host}/v1/messages/batches/{}/results", b.id)),
    })
}

async fn create(State(s): State<Arc<Server>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = check_key(&s, Api::Anthropic, &h) {
        return *refused;
    }
    if body.len() > MAX_BYTES {
        let msg = "a batch is at most 256 MB";
        let body = error_body(Api::Anthropic, "request_too_large", msg);
        return respond(StatusCode::PAYLOAD_TOO_LARGE, HeaderMap::new(), body);
    }
    let requests = match anthropic_requests(&body) {
        Ok(r) => r,
        Err(e) => return bad(Api::Anthropic, &e),
    };
    let version = h
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let (seq, id) = s.batches.next_id("msgbatch_", s.cfg.seed);
    let batch = Batch::new(Api::Anthropic, id, requests, version);
    match s.batches.add(&s, seq, batch, &host(&h)) {
        Ok(v) => ok(&v),
        Err(r) => *r,
    }
}

async fn retrieve(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::Anthropic, &h) {
        return *refused;
    }
    match s.batches.with(Api::Anthropic, &id, |b| object(b, &host(&h))) {
        Some(v) => ok(&v),
        None => not_found(Api::Anthropic, &format!("no message batch `{id}`")),
    }
}

async fn list(State(s): State<Arc<Server>>, uri: Uri, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::Anthropic, &h) {
        return *refused;
    }
    let q = query(&uri);
    let page = page_size(&q, 1000).and_then(|limit| {
        let (after, before) = (q.get("after_id"), q.get("before_id"));
        s.batches.list(
            Api::Anthropic,
            after.map(String::as_str),
            before.map(String::as_str),
            limit,
            &host(&h),
        )
    });
    match page {
        Ok((data, more)) => {
            let id = |v: Option<&Value>| v.map(|b| b["id"].clone());
            ok(&json!({"data": data, "has_more": more, "first_id": id(data.first()), "last_id": id(data.last())}))
        }
        Err(e) => bad(Api::Anthropic, &e),
    }
}

async fn cancel(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::Anthropic, &h) {
        return *refused;
    }
    match s.batches.cancel(Api::Anthropic, &id, &host(&h)) {
        Some(v) => ok(&v),
        None => not_found(Api::Anthropic, &format!("no message batch `{id}`")),
    }
}

/// One JSONL line per request, once the batch has ended.
async fn results(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::Anthropic, &h) {
        return *refused;
    }
    let lines = s.batches.with(Api::Anthropic, &id, |b| {
        b.ended.map(|_| {
            let mut text = String::new();
            for (custom_id, o) in &b.results {
                let result = match o {
                    Outcome::Succeeded(m) => json!({"type": "succeeded", "message": m}),
                    Outcome::Errored { body, .. } => json!({"type": "errored", "error": body}),
                    Outcome::Expired => json!({"type": "expired"}),
                    Outcome::Canceled => json!({"type": "canceled"}),
                };
                text.push_str(&json!({"custom_id": custom_id, "result": result}).to_string());
                text.push('\n');
            }
            text
        })
    });
    match lines {
        None => not_found(Api::Anthropic, &format!("no message batch `{id}`")),
        Some(None) => bad(
            Api::Anthropic,
            &format!("message batch `{id}` is still processing; its results come once processing_status is ended"),
        ),
        Some(Some(text)) => jsonl(text),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(rfc3339(leap), "2000-02-29T01:01:01.000000Z");
        let d = UNIX_EPOCH + Duration::from_micros(1_724_179_044_100_435);
        assert_eq!(rfc3339(d), "2024-08-20T18:37:24.100435Z");
    }

    #[test]
    fn anthropic_batches_are_checked() {
        let one = |id: &str| format!(r#"{{"requests":[{{"custom_id":"{id}","params":{{"model":"m"}}}}]}}"#);
        assert!(anthropic_requests(one("a-1_B").as_bytes()).is_ok());
        assert!(
            anthropic_requests(one("bad id").as_bytes())
                .unwrap_err()
                .contains("pattern")
        );
        assert!(anthropic_requests(one(&"x".repeat(65)).as_bytes()).is_err());
        let dup = r#"{"requests":[{"custom_id":"a","params":{}},{"custom_id":"a","params":{}}]}"#;
        assert!(
            anthropic_requests(dup.as_bytes())
                .unwrap_err()
                .contains("duplicate custom_id `a`")
        );
        assert!(anthropic_requests(br#"{"requests":[]}"#).is_err());
    }
}

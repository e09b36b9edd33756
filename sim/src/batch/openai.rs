//! OpenAI's Batch API, and the part of its Files API a batch needs, as
//! documented in 2026:
//! - <https://developers.openai.com/api/reference/cli/resources/batches/methods/create/index.md>
//!   (`input_file_id`, `endpoint`, `completion_window` only `24h`,
//!   `metadata` at most 16 pairs, keys up to 64 and values up to 512
//!   characters; an input file holds at most 50,000 requests and 200 MB)
//! - <https://developers.openai.com/api/reference/go/resources/files> (the
//!   File object; purposes `batch` and `batch_output`; `GET /files/{id}/content`)
//! - the Batch object, its statuses and `GET /batches` (`after`, `limit` 1 to
//!   100, default 20): <https://www.w3cschool.cn/openai_api/openai_api-reference-resources-batches-methods-list.html>,
//!   a copy of OpenAI's reference
//! - the per-line object of the output and error files, `BatchRequestOutput`
//!   in OpenAI's OpenAPI spec (<https://docs.rs/openai-struct/latest/src/openai_struct/models/batch_request_output.rs.html>,
//!   <https://docs.rs/crate/openai-client-base/0.8.1/source/docs/BatchRequestOutputError.md>:
//!   error codes `batch_expired`, `batch_cancelled`)
//!
//! The real API checks an input file while the batch is `validating` and
//! fails the batch; the sim-server checks it on upload and again when a batch
//! is created, and answers 400 naming the line. It batches
//! `/v1/chat/completions` only, the one endpoint it serves.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Batch, Outcome, Requests, bad, host, not_found, ok, page_size, query};
use crate::{Api, Server, check_key, respond};

/// The most files kept (inputs and outputs together); the oldest are dropped.
pub const MAX_FILES: usize = 30_000;
/// The largest batch input file.
const MAX_FILE_BYTES: usize = 200 * 1024 * 1024;
/// The most requests in one input file.
const MAX_REQUESTS: usize = 50_000;
/// The endpoint the sim-server batches.
const ENDPOINT: &str = "/v1/chat/completions";

/// What an OpenAI batch has beyond its requests.
pub(super) struct Extra {
    input_file_id: String,
    metadata: Value,
    pub(super) output_file_id: Option<String>,
    pub(super) error_file_id: Option<String>,
}

struct File {
    filename: String,
    purpose: &'static str,
    created: u64,
    content: String,
}

/// The files uploaded and written, oldest first.
#[derive(Default)]
pub(super) struct Files {
    by_id: HashMap<String, File>,
    order: VecDeque<String>,
    next: AtomicU64,
}

impl Files {
    fn insert(&mut self, filename: String, purpose: &'static str, content: String) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("file-{}", super::hash64(&["file", &n.to_string()]) & 0xffff_ffff_ffff);
        while self.order.len() >= MAX_FILES {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
        let file = File {
            filename,
            purpose,
            created: unix(SystemTime::now()),
            content,
        };
        self.by_id.insert(id.clone(), file);
        self.order.push_back(id.clone());
        id
    }

    pub(super) fn remove(&mut self, id: &String) {
        self.by_id.remove(id);
        self.order.retain(|f| f != id);
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

pub(super) fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/v1/files", post(upload))
        .route("/v1/files/{id}", get(file))
        .route("/v1/files/{id}/content", get(content))
        .route("/v1/batches", post(create).get(list))
        .route("/v1/batches/{id}", get(retrieve))
        .route("/v1/batches/{id}/cancel", post(cancel))
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES + (1 << 20)))
}

/// One part of a multipart/form-data body.
struct Part<'a> {
    name: String,
    filename: Option<String>,
    data: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `key="value"` of a part's content-disposition header.
fn disposition(head: &str, key: &str) -> Option<String> {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    line.split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
}

/// The parts of a multipart/form-data body (RFC 7578), or what is wrong.
fn multipart<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty() && content_type.trim_start().starts_with("multipart/form-data"))
        .ok_or("the body must be multipart/form-data with a boundary")?;
    let delim = format!("--{boundary}").into_bytes();
    let next = [b"\r\n".as_slice(), &delim].concat();
    let start = find(body, &delim).ok_or("the multipart body has no boundary")?;
    let mut rest = &body[start + delim.len()..];
    let mut parts = Vec::new();
    while !rest.starts_with(b"--") {
        let part = rest.strip_prefix(b"\r\n").ok_or("malformed multipart body")?;
        let head_end = find(part, b"\r\n\r\n").ok_or("a multipart part has no end to its headers")?;
        let head = std::str::from_utf8(&part[..head_end]).map_err(|_| "multipart headers are not UTF-8")?;
        let data = &part[head_end + 4..];
        let end = find(data, &next).ok_or("the multipart body has no closing boundary")?;
        let name = disposition(head, "name").ok_or("a multipart part has no name")?;
        parts.push(Part {
            name,
            filename: disposition(head, "filename"),
            data: &data[..end],
        });
        rest = &data[end + next.len()..];
    }
    Ok(parts)
}

/// One request line of an input file.
#[derive(Debug)]
struct Line {
    number: usize,
    custom_id: String,
    url: String,
    body: Value,
}

/// The requests of a batch input file, or the 400's message naming the line.
fn input_lines(text: &str) -> Result<Vec<Line>, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let n = i + 1;
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {n}: not JSON: {e}"))?;
        let custom_id = v
            .get("custom_id")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or(format!("line {n}: `custom_id` is required"))?;
        if v.get("method").and_then(Value::as_str) != Some("POST") {
            return Err(format!("line {n}: `method` must be POST"));
        }
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or(format!("line {n}: `url` is required"))?;
        let body = v
            .get("body")
            .filter(|b| b.is_object())
            .ok_or(format!("line {n}: `body` must be an object (the request)"))?;
        if !seen.insert(custom_id.to_string()) {
            return Err(format!(
                "line {n}: duplicate custom_id `{custom_id}`; each request in a batch needs its own"
            ));
        }
        out.push(Line {
            number: n,
            custom_id: custom_id.to_string(),
            url: url.to_string(),
            body: body.clone(),
        });
    }
    if out.is_empty() {
        return Err("the file holds no requests".into());
    }
    if out.len() > MAX_REQUESTS {
        return Err(format!(
            "the file holds {} requests; a batch takes at most {MAX_REQUESTS}",
            out.len()
        ));
    }
    Ok(out)
}

fn file_object(id: &str, f: &File) -> Value {
    json!({"id": id, "object": "file", "bytes": f.content.len(), "created_at": f.created,
           "filename": f.filename, "purpose": f.purpose, "status": "processed", "expires_at": null})
}

async fn upload(State(s): State<Arc<Server>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    let content_type = h.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let checked = multipart(content_type, &body).and_then(|parts| {
        let purpose = parts
            .iter()
            .find(|p| p.name == "purpose")
            .ok_or("`purpose` is required")?;
        if purpose.data.trim_ascii() != b"batch" {
            return Err("purpose: the sim-server keeps only files with purpose `batch`".to_string());
        }
        let file = parts.iter().find(|p| p.name == "file").ok_or("`file` is required")?;
        if file.data.len() > MAX_FILE_BYTES {
            return Err("file: a batch input file is at most 200 MB".into());
        }
        let text = std::str::from_utf8(file.data).map_err(|_| "file: not UTF-8 JSONL".to_string())?;
        input_lines(text)?;
        Ok((
            file.filename.clone().unwrap_or_else(|| "input.jsonl".into()),
            text.to_string(),
        ))
    });
    let (filename, text) = match checked {
        Ok(f) => f,
        Err(e) => return bad(Api::OpenAi, &e),
    };
    let mut st = s.batches.store.lock().expect("lock");
    let id = st.files.insert(filename, "batch", text);
    ok(&file_object(&id, &st.files.by_id[&id]))
}

async fn file(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    let st = s.batches.store.lock().expect("lock");
    match st.files.by_id.get(&id) {
        Some(f) => ok(&file_object(&id, f)),
        None => not_found(Api::OpenAi, &format!("No such File object: {id}")),
    }
}

async fn content(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    let text = file_text(&s, &id);
    match text {
        Some(t) => {
            let mut r = respond(StatusCode::OK, HeaderMap::new(), t);
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/octet-stream"));
            r
        }
        None => not_found(Api::OpenAi, &format!("No such File object: {id}")),
    }
}

/// The content of uploaded file `id`.
fn file_text(s: &Server, id: &str) -> Option<String> {
    let store = s.batches.store.lock().expect("lock");
    store.files.by_id.get(id).map(|f| f.content.clone())
}

/// `metadata` as documented: at most 16 string pairs, keys up to 64 and
/// values up to 512 characters.
fn metadata(v: Option<&Value>) -> Result<Value, String> {
    let Some(Value::Object(m)) = v.filter(|v| !v.is_null()) else {
        return match v {
            None | Some(Value::Null) => Ok(Value::Null),
            Some(_) => Err("metadata: must be an object of strings".into()),
        };
    };
    if m.len() > 16 {
        return Err("metadata: at most 16 pairs".into());
    }
    for (k, v) in m {
        let fits = k.chars().count() <= 64 && v.as_str().is_some_and(|s| s.chars().count() <= 512);
        if !fits {
            return Err(format!(
                "metadata.{k}: keys are at most 64 characters, values strings of at most 512"
            ));
        }
    }
    Ok(Value::Object(m.clone()))
}

/// The checked batch a create request asks for: (input file id, metadata, requests).
fn checked_create(s: &Server, body: &[u8]) -> Result<(String, Value, Requests), (StatusCode, String)> {
    let bad = |e: String| (StatusCode::BAD_REQUEST, e);
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let input = v.get("input_file_id").and_then(Value::as_str);
    let input = input.ok_or_else(|| bad("`input_file_id` is required".into()))?;
    match v.get("endpoint").and_then(Value::as_str) {
        Some(ENDPOINT) => {}
        Some(other) => {
            return Err(bad(format!(
                "endpoint: the sim-server batches {ENDPOINT} only, not {other}"
            )));
        }
        None => return Err(bad("`endpoint` is required".into())),
    }
    if v.get("completion_window").and_then(Value::as_str) != Some("24h") {
        return Err(bad("completion_window: only `24h` is supported".into()));
    }
    let metadata = metadata(v.get("metadata")).map_err(bad)?;
    let text = file_text(s, input);
    let text = text.ok_or_else(|| (StatusCode::NOT_FOUND, format!("No such File object: {input}")))?;
    let lines = input_lines(&text).map_err(bad)?;
    if let Some(l) = lines.iter().find(|l| l.url != ENDPOINT) {
        let (n, url) = (l.number, &l.url);
        return Err(bad(format!(
            "line {n}: url {url} is not the batch's endpoint {ENDPOINT}"
        )));
    }
    let requests = lines.into_iter().map(|l| (l.custom_id, l.body)).collect();
    Ok((input.to_string(), metadata, requests))
}

async fn create(State(s): State<Arc<Server>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    let (input_file_id, metadata, requests) = match checked_create(&s, &body) {
        Ok(c) => c,
        Err((StatusCode::NOT_FOUND, e)) => return not_found(Api::OpenAi, &e),
        Err((_, e)) => return bad(Api::OpenAi, &e),
    };
    let (seq, id) = s.batches.next_id("batch_", s.cfg.seed);
    let mut batch = Batch::new(Api::OpenAi, id, requests, None);
    batch.openai = Some(Extra {
        input_file_id,
        metadata,
        output_file_id: None,
        error_file_id: None,
    });
    match s.batches.add(&s, seq, batch, &host(&h)) {
        Ok(v) => ok(&v),
        Err(r) => *r,
    }
}

async fn retrieve(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    match s.batches.with(Api::OpenAi, &id, |b| object(b)) {
        Some(v) => ok(&v),
        None => not_found(Api::OpenAi, &format!("No such Batch object: {id}")),
    }
}

async fn list(State(s): State<Arc<Server>>, uri: Uri, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    let q = query(&uri);
    let page = page_size(&q, 100).and_then(|limit| {
        s.batches
            .list(Api::OpenAi, q.get("after").map(String::as_str), None, limit, "")
    });
    match page {
        Ok((data, more)) => {
            let id = |v: Option<&Value>| v.map(|b| b["id"].clone());
            ok(&json!({"object": "list", "data": data, "first_id": id(data.first()),
                       "last_id": id(data.last()), "has_more": more}))
        }
        Err(e) => bad(Api::OpenAi, &e),
    }
}

async fn cancel(State(s): State<Arc<Server>>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if let Err(refused) = check_key(&s, Api::OpenAi, &h) {
        return *refused;
    }
    match s.batches.cancel(Api::OpenAi, &id, "") {
        Some(v) => ok(&v),
        None => not_found(Api::OpenAi, &format!("No such Batch object: {id}")),
    }
}

/// The Batch object. Expired requests count as failed.
pub(super) fn object(b: &Batch) -> Value {
    let x = b.openai.as_ref().expect("an OpenAI batch");
    let [succeeded, errored, expired, _] = b.counts;
    let status = match (b.ended, b.cancel_at) {
        (None, None) => "in_progress",
        (None, Some(_)) => "cancelling",
        (Some(_), Some(_)) => "cancelled",
        (Some(_), None) if expired > 0 => "expired",
        (Some(_), None) => "completed",
    };
    let ended = b.ended.map(unix);
    let when = |s: &str| if status == s { ended } else { None };
    let created = unix(b.created);
    json!({
        "id": b.id, "object": "batch", "endpoint": ENDPOINT, "errors": null,
        "input_file_id": x.input_file_id, "completion_window": "24h", "status": status,
        "output_file_id": x.output_file_id, "error_file_id": x.error_file_id,
        "created_at": created, "in_progress_at": created, "expires_at": created + super::EXPIRES_AFTER.as_secs(),
        "finalizing_at": ended, "completed_at": when("completed"), "failed_at": null,
        "expired_at": when("expired"), "cancelling_at": b.cancel_at.map(unix), "cancelled_at": when("cancelled"),
        "request_counts": {"total": b.total, "completed": succeeded, "failed": errored + expired},
        "metadata": x.metadata,
    })
}

/// Writes an ended batch's outcomes into its output file (the successes)
/// and its error file (the rest), and drops them from the batch.
pub(super) fn write_files(files: &mut Files, b: &mut Batch) {
    let (mut out, mut err) = (String::new(), String::new());
    for (i, (custom_id, o)) in b.results.iter().enumerate() {
        let tag = format!("{:016x}", super::hash64(&[&b.id, &i.to_string()]));
        let (id, request_id) = (format!("batch_req_{tag}"), format!("req_{tag}"));
        let failed = |code: &str, message: &str| json!({"id": id, "custom_id": custom_id, "response": null, "error": {"code": code, "message": message}});
        let (line, into) = match o {
            Outcome::Succeeded(body) => (
                json!({"id": id, "custom_id": custom_id, "error": null,
                       "response": {"status_code": 200, "request_id": request_id, "body": body}}),
                &mut out,
            ),
            Outcome::Errored { status, body } => (
                json!({"id": id, "custom_id": custom_id, "error": null,
                       "response": {"status_code": status, "request_id": request_id, "body": body}}),
                &mut err,
            ),
            Outcome::Expired => (
                failed(
                    "batch_expired",
                    "This request could not be executed before the completion window expired.",
                ),
                &mut err,
            ),
            Outcome::Canceled => (
                failed(
                    "batch_cancelled",
                    "This request was not executed because the batch was cancelled.",
                ),
                &mut err,
            ),
        };
        into.push_str(&line.to_string());
        into.push('\n');
    }
    b.results = Vec::new();
    let id = b.id.clone();
    let x = b.openai.as_mut().expect("an OpenAI batch");
    if !out.is_empty() {
        x.output_file_id = Some(files.insert(format!("{id}_output.jsonl"), "batch_output", out));
    }
    if !err.is_empty() {
        x.error_file_id = Some(files.insert(format!("{id}_error.jsonl"), "batch_output", err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{\"a\":1}\n\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("purpose", b"batch".as_slice())
        );
        assert_eq!(parts[1].filename.as_deref(), Some("in.jsonl"));
        assert_eq!(parts[1].data, b"{\"a\":1}\n");
        assert!(multipart("application/json", body).is_err());
        assert!(multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nno end").is_err());
    }

    #[test]
    fn input_lines_name_the_bad_line() {
        let good = r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}"#;
        assert_eq!(input_lines(good).unwrap().len(), 1);
        let e = input_lines(&format!("{good}\n{{nope")).unwrap_err();
        assert!(e.starts_with("line 2: not JSON"), "{e}");
        let e = input_lines(&format!("{good}\n{good}")).unwrap_err();
        assert!(e.contains("line 2: duplicate custom_id `a`"), "{e}");
        assert!(metadata(Some(&json!({"k": 1}))).is_err());
        assert_eq!(metadata(Some(&json!({"k": "v"}))).unwrap()["k"], "v");
    }
}

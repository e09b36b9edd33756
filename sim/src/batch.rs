//! The providers' batch APIs, answered by the same simulated model as the
//! realtime endpoints: a batched request gets the reply `/v1/messages` or
//! `/v1/chat/completions` would give the same body (the same text, usage
//! counted the same way; pricing is the client's business).
//!
//! Anthropic's Message Batches API is in [`anthropic`], OpenAI's Batch
//! and Files APIs in [`openai`].
//!
//! The simulation: a batch processes all its requests at once,
//! `--batch-delay-ms` after it was created, or as soon as it is cancelled,
//! and then every request is cancelled, none having started. Each request
//! errors (500 `api_error`) when its first message holds
//! `--batch-errored-when`; otherwise it expires with probability
//! `--batch-expired`, errors with `--batch-errored`, and else gets the
//! model's answer. Params the model cannot read, or a parameter it refuses,
//! give an errored result with the realtime endpoint's 400: both APIs check
//! a batched request's body only when they process it. The draws hang on the
//! server's `--seed`, the batch id and the custom_id.
//!
//! Memory is bounded: at most [`MAX_BATCHES`] batches are kept (a new one
//! drops the oldest ended one; with all of them still processing, a new one
//! is answered 429), at most [`MAX_REMEMBERED`] custom_ids are remembered
//! for `batch_resubmitted` (then the oldest are forgotten), and at most
//! `openai::MAX_FILES` OpenAI files (the oldest dropped).

mod anthropic;
mod openai;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use candor_exec::sim::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::{Api, Server, answer, error_body, read_request, refusal, respond};

/// The most batches kept, of both providers together.
pub const MAX_BATCHES: usize = 10_000;
/// The most custom_ids remembered (as 8-byte hashes) to count resubmissions.
pub const MAX_REMEMBERED: usize = 1 << 21;
/// A batch expires this long after it was created.
const EXPIRES_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A batch's requests: (custom_id, request body).
type Requests = Vec<(String, Value)>;

/// What a batch's processing takes from it.
struct Taken {
    api: Api,
    id: String,
    version: Option<String>,
    requests: Requests,
    cancelled: bool,
}

/// What became of one batched request.
pub(crate) enum Outcome {
    /// The realtime endpoint's 200 body.
    Succeeded(Value),
    /// The realtime endpoint's error status and body.
    Errored {
        status: u16,
        body: Value,
    },
    Expired,
    Canceled,
}

impl Outcome {
    /// Its slot in `Batch::counts`: succeeded, errored, expired, canceled.
    fn slot(&self) -> usize {
        match self {
            Outcome::Succeeded(_) => 0,
            Outcome::Errored { .. } => 1,
            Outcome::Expired => 2,
            Outcome::Canceled => 3,
        }
    }
}

struct Batch {
    api: Api,
    id: String,
    created: SystemTime,
    cancel_at: Option<SystemTime>,
    ended: Option<SystemTime>,
    /// The batch request's anthropic-version, which its requests are read under.
    version: Option<String>,
    /// (custom_id, request body), until processed.
    requests: Requests,
    total: usize,
    /// Anthropic: each request's outcome once ended (OpenAI's are in its files).
    results: Vec<(String, Outcome)>,
    /// Outcomes by `Outcome::slot`.
    counts: [usize; 4],
    wake: Arc<Notify>,
    openai: Option<openai::Extra>,
}

impl Batch {
    fn new(api: Api, id: String, requests: Requests, version: Option<String>) -> Batch {
        Batch {
            api,
            id,
            created: SystemTime::now(),
            cancel_at: None,
            ended: None,
            version,
            total: requests.len(),
            requests,
            results: Vec::new(),
            counts: [0; 4],
            wake: Arc::new(Notify::new()),
            openai: None,
        }
    }
}

#[derive(Default)]
struct Counts {
    anthropic: u64,
    openai: u64,
    requests: u64,
    resubmitted: u64,
    outcomes: [u64; 4],
}

#[derive(Default)]
struct Store {
    /// By creation order: the newest last.
    batches: BTreeMap<u64, Batch>,
    ids: HashMap<String, u64>,
    files: openai::Files,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    counts: Counts,
}

impl Store {
    /// Drops the oldest ended batch when the store is full; false when
    /// every kept batch is still processing.
    fn make_room(&mut self) -> bool {
        if self.batches.len() < MAX_BATCHES {
            return true;
        }
        let Some(seq) = self.batches.iter().find(|(_, b)| b.ended.is_some()).map(|(k, _)| *k) else {
            return false;
        };
        let b = self.batches.remove(&seq).expect("found");
        self.ids.remove(&b.id);
        if let Some(x) = &b.openai {
            x.output_file_id
                .iter()
                .chain(&x.error_file_id)
                .for_each(|f| self.files.remove(f));
        }
        true
    }

    /// Remembers a submitted custom_id; true if it was submitted before.
    fn resubmitted(&mut self, api: Api, custom_id: &str) -> bool {
        let h = hash64(&[if api == Api::Anthropic { "a" } else { "o" }, custom_id]);
        if !self.seen.insert(h) {
            return true;
        }
        self.seen_order.push_back(h);
        if self.seen_order.len() > MAX_REMEMBERED
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        false
    }

    fn get(&self, api: Api, id: &str) -> Option<&Batch> {
        self.ids
            .get(id)
            .and_then(|s| self.batches.get(s))
            .filter(|b| b.api == api)
    }
}

/// The batches and files the server holds, and what it has counted of them.
#[derive(Default)]
pub(crate) struct Batches {
    store: Mutex<Store>,
    seq: AtomicU64,
}

impl Batches {
    /// A fresh id with `prefix`, and its place in creation order.
    fn next_id(&self, prefix: &str, seed: u64) -> (u64, String) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let d = Sha256::digest(format!("{seed}/{prefix}/{seq}").as_bytes());
        (seq, format!("{prefix}{}", candor_core::hash::hex(&d[..12])))
    }

    /// Keeps a new batch, counts it, and starts processing it; answers its object.
    fn add(&self, s: &Arc<Server>, seq: u64, batch: Batch, host: &str) -> Result<Value, Box<Response>> {
        let mut st = self.store.lock().expect("lock");
        if !st.make_room() {
            let body = error_body(
                batch.api,
                "rate_limit_error",
                "too many batches still processing; try later",
            );
            return Err(Box::new(respond(StatusCode::TOO_MANY_REQUESTS, HeaderMap::new(), body)));
        }
        match batch.api {
            Api::Anthropic => st.counts.anthropic += 1,
            Api::OpenAi => st.counts.openai += 1,
        }
        st.counts.requests += batch.total as u64;
        for (custom_id, _) in &batch.requests {
            if st.resubmitted(batch.api, custom_id) {
                st.counts.resubmitted += 1;
            }
        }
        let object = render(&batch, host);
        let wake = batch.wake.clone();
        st.ids.insert(batch.id.clone(), seq);
        st.batches.insert(seq, batch);
        tokio::spawn(process(s.clone(), seq, wake));
        Ok(object)
    }

    /// `f` of the batch `id` of `api`, if it is kept.
    fn with<R>(&self, api: Api, id: &str, f: impl FnOnce(&mut Batch) -> R) -> Option<R> {
        let mut st = self.store.lock().expect("lock");
        let seq = *st.ids.get(id)?;
        st.batches.get_mut(&seq).filter(|b| b.api == api).map(f)
    }

    /// Starts cancelling the batch (if it is still processing); its object.
    fn cancel(&self, api: Api, id: &str, host: &str) -> Option<Value> {
        self.with(api, id, |b| {
            if b.ended.is_none() && b.cancel_at.is_none() {
                b.cancel_at = Some(SystemTime::now());
                b.wake.notify_one();
            }
            render(b, host)
        })
    }

    /// A page of `api`'s batches, newest first: those older than `after`,
    /// or those newer than `before`; and whether there are more that way.
    fn list(
        &self,
        api: Api,
        after: Option<&str>,
        before: Option<&str>,
        limit: usize,
        host: &str,
    ) -> Result<(Vec<Value>, bool), String> {
        let st = self.store.lock().expect("lock");
        let at = |id: &str| {
            st.get(api, id)
                .and(st.ids.get(id).copied())
                .ok_or(format!("no batch `{id}` to page from"))
        };
        let mine = |b: &&Batch| b.api == api;
        let mut page: Vec<&Batch> = match (after, before) {
            (Some(a), _) => st
                .batches
                .range(..at(a)?)
                .rev()
                .map(|(_, b)| b)
                .filter(mine)
                .take(limit + 1)
                .collect(),
            (None, Some(b)) => {
                let newer = st
                    .batches
                    .range(at(b)? + 1..)
                    .map(|(_, b)| b)
                    .filter(mine)
                    .take(limit + 1);
                let mut v: Vec<&Batch> = newer.collect();
                v.reverse();
                v
            }
            (None, None) => st.batches.values().rev().filter(mine).take(limit + 1).collect(),
        };
        let more = page.len() > limit;
        if more && before.is_some() {
            page.remove(0);
        } else {
            page.truncate(limit);
        }
        Ok((page.into_iter().map(|b| render(b, host)).collect(), more))
    }

    /// Takes the requests of a batch to process.
    fn take(&self, seq: u64) -> Option<Taken> {
        let mut st = self.store.lock().expect("lock");
        let b = st.batches.get_mut(&seq)?;
        Some(Taken {
            api: b.api,
            id: b.id.clone(),
            version: b.version.clone(),
            requests: std::mem::take(&mut b.requests),
            cancelled: b.cancel_at.is_some(),
        })
    }

    /// Ends a processed batch with its outcomes (OpenAI's into its files).
    fn finish(&self, seq: u64, results: Vec<(String, Outcome)>) {
        let mut guard = self.store.lock().expect("lock");
        let Store {
            batches, files, counts, ..
        } = &mut *guard;
        let Some(b) = batches.get_mut(&seq) else { return };
        for (_, o) in &results {
            b.counts[o.slot()] += 1;
            counts.outcomes[o.slot()] += 1;
        }
        b.results = results;
        b.ended = Some(SystemTime::now());
        if b.api == Api::OpenAi {
            openai::write_files(files, b);
        }
    }

    /// The batch counters, added to `/stats`.
    pub(crate) fn add_stats(&self, body: &mut Value) {
        let st = self.store.lock().expect("lock");
        let c = &st.counts;
        let [succeeded, errored, expired, canceled] = c.outcomes;
        for (k, v) in [
            ("batches_anthropic", c.anthropic),
            ("batches_openai", c.openai),
            ("batch_requests", c.requests),
            ("batch_resubmitted", c.resubmitted),
            ("batch_succeeded", succeeded),
            ("batch_errored", errored),
            ("batch_expired", expired),
            ("batch_canceled", canceled),
            ("batches_kept", st.batches.len() as u64),
        ] {
            body[k] = json!(v);
        }
    }
}

/// The batch's object in its API's shape.
fn render(b: &Batch, host: &str) -> Value {
    match b.api {
        Api::Anthropic => anthropic::object(b, host),
        Api::OpenAi => openai::object(b),
    }
}

/// Processes a batch once its delay is over or it is cancelled.
async fn process(s: Arc<Server>, seq: u64, wake: Arc<Notify>) {
    tokio::select! {
        () = tokio::time::sleep(s.cfg.batch_delay) => {}
        () = wake.notified() => {}
    }
    let Some(Taken {
        api,
        id,
        version,
        requests,
        cancelled,
    }) = s.batches.take(seq)
    else {
        return;
    };
    let mut results = Vec::with_capacity(requests.len());
    for (custom_id, body) in requests {
        let outcome = if cancelled {
            Outcome::Canceled
        } else {
            outcome(&s, api, &id, &custom_id, &body, version.as_deref()).await
        };
        results.push((custom_id, outcome));
    }
    s.batches.finish(seq, results);
}

/// One batched request's outcome: injected, or what the realtime endpoint
/// would answer (its reply, or its 400 for a body it refuses).
async fn outcome(s: &Server, api: Api, batch: &str, custom_id: &str, body: &Value, version: Option<&str>) -> Outcome {
    let c = &s.cfg;
    let (conv, asked) = match read_request(api, body) {
        Ok(read) => read,
        Err(e) => return errored(api, 400, "invalid_request_error", &e),
    };
    let marked = c
        .batch_errored_when
        .as_ref()
        .is_some_and(|m| conv.messages[0].content.contains(m.as_str()));
    let r = Rng::new(c.seed ^ hash64(&[batch, custom_id])).unit();
    if marked {
        return errored(api, 500, "api_error", "injected server error (--batch-errored-when)");
    }
    if r < c.batch_expired {
        return Outcome::Expired;
    }
    if r < c.batch_expired + c.batch_errored {
        return errored(api, 500, "api_error", "injected server error (--batch-errored)");
    }
    if let Some(body) = refusal(s, api, &conv, &asked, version) {
        return Outcome::Errored {
            status: 400,
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
        };
    }
    match answer(s, api, &conv, &asked).await {
        Ok(text) => Outcome::Succeeded(serde_json::from_str(&text).unwrap_or(Value::Null)),
        Err(e) => errored(api, 500, "api_error", &e),
    }
}

fn errored(api: Api, status: u16, kind: &str, message: &str) -> Outcome {
    let body = serde_json::from_str(&error_body(api, kind, message)).unwrap_or(Value::Null);
    Outcome::Errored { status, body }
}

/// Eight bytes of a hash of `parts`.
fn hash64(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d: [u8; 32] = h.finalize().into();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

pub(super) fn routes(s: Arc<Server>) -> Router {
    Router::new()
        .merge(anthropic::routes())
        .merge(openai::routes())
        .with_state(s)
}

fn bad(api: Api, message: &str) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        HeaderMap::new(),
        error_body(api, "invalid_request_error", message),
    )
}

fn not_found(api: Api, what: &str) -> Response {
    let kind = if api == Api::Anthropic {
        "not_found_error"
    } else {
        "invalid_request_error"
    };
    respond(StatusCode::NOT_FOUND, HeaderMap::new(), error_body(api, kind, what))
}

fn ok(v: &Value) -> Response {
    respond(StatusCode::OK, HeaderMap::new(), v.to_string())
}

/// A JSONL body.
fn jsonl(text: String) -> Response {
    let mut r = respond(StatusCode::OK, HeaderMap::new(), text);
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/jsonl"));
    r
}

/// The Host the request was sent to, for the URLs in answers.
fn host(h: &HeaderMap) -> String {
    h.get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string()
}

/// The query string's parameters (ids and numbers: nothing to decode).
fn query(uri: &Uri) -> HashMap<String, String> {
    let q = uri.query().unwrap_or("");
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The page size asked for: 1 to `max`, 20 when not given.
fn page_size(q: &HashMap<String, String>, max: usize) -> Result<usize, String> {
    match q.get("limit") {
        None => Ok(20),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or(format!("limit: must be an integer from 1 to {max}, not `{v}`")),
    }
}

//! `candor sim-server`: an HTTP server that speaks the Anthropic Messages
//! and the OpenAI Chat Completions APIs, answered by the simulated model
//! organism. It can be slow, rate-limit requests per minute the way the
//! providers do (429 with `retry-after` and their rate-limit headers), and
//! inject errors (500, 529, malformed JSON, slow or truncated bodies). It
//! also behaves as today's APIs do (`shape`): a prompt cache with its usage
//! counts, thinking blocks and a `reasoning` field, replies cut at the
//! token limit, replies stopped by a safety system, and 400s for refused
//! parameters. Users dry-run sweeps and load-test fleets against it;
//! candor's tests use it.

mod batch;
mod limits;
mod shape;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use candor_core::spec::{ModelEntry, SimConfig};
use candor_core::{JobId, Message, Role};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use candor_exec::backend::{Backend, ChatRequest};
use candor_exec::sim::{Rng, Sim};
use limits::{admit, admit_tokens};

/// The largest request body accepted.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    pub latency: Duration,
    /// Requests per minute; more get 429.
    pub rpm: Option<u32>,
    /// The window the limit is counted over (60 s as the providers do; shorter
    /// windows let tests see a saturated limit quickly): at most
    /// rpm × window / 60 s requests in any window.
    pub window: Duration,
    /// Probabilities of each injected failure, per request.
    pub p500: f64,
    /// Answer 500 to every request whose first message contains this marker
    /// (a job that fails every time, among jobs that do not).
    pub fail_when: Option<String>,
    pub p529: f64,
    pub malformed: f64,
    pub truncated: f64,
    pub slow: f64,
    pub slow_by: Duration,
    /// Compliance probability when no rule matches.
    pub comply: f64,
    /// (marker, probability): the first marker found in the first user
    /// message sets the compliance probability.
    pub comply_when: Vec<(String, f64)>,
    pub continuation: f64,
    pub seed: u64,
    /// The API key requests must carry (x-api-key or a bearer token); None: any.
    pub require_key: Option<String>,
    /// Request parameters answered with a 400 naming them, as a model that
    /// refuses them would.
    pub reject_params: Vec<String>,
    /// Replies to requests whose first message contains this marker are
    /// stopped by the (simulated) safety system: Anthropic `refusal`,
    /// OpenAI `content_filter`.
    pub refuse_when: Option<String>,
    /// Input tokens per minute (counted as the provider counts them: on
    /// Anthropic, cache reads are free); more get 429.
    pub input_tpm: Option<u64>,
    /// How long a batch takes to process (both providers' batch APIs).
    pub batch_delay: Duration,
    /// Probability that a batched request expires unprocessed.
    pub batch_expired: f64,
    /// Probability that a batched request ends in an error (a 500).
    pub batch_errored: f64,
    /// Batched requests whose first message contains this marker error.
    pub batch_errored_when: Option<String>,
}

/// What the server has answered, for `GET /stats`.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    ok: AtomicU64,
    rate_limited: AtomicU64,
    injected: AtomicU64,
    unauthorized: AtomicU64,
    admitted: AtomicU64,
    /// Input tokens of the requests admitted under `--input-tpm`, as counted.
    input_tokens: AtomicU64,
    /// Start times of requests answered within the rate limit: the last
    /// [`MAX_KEPT_STARTS`] at most, so a long-running server stays bounded.
    accepted_at: Mutex<Vec<f64>>,
}

const MAX_KEPT_STARTS: usize = 1 << 20;

struct Server {
    cfg: Config,
    model: ModelEntry,
    window: Mutex<VecDeque<Instant>>,
    /// Input tokens admitted in the current window, with their times.
    token_window: Mutex<VecDeque<(Instant, u64)>>,
    draws: AtomicU64,
    stats: Stats,
    started: Instant,
    cache: shape::PromptCache,
    batches: batch::Batches,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    Anthropic,
    OpenAi,
}

impl Server {
    /// Requests allowed in one window.
    fn window_cap(&self, rpm: u32) -> u32 {
        ((f64::from(rpm) * self.cfg.window.as_secs_f64() / 60.0).floor() as u32).max(1)
    }

    fn draw(&self) -> f64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        Rng::new(self.cfg.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unit()
    }

    /// Admits a request under the per-minute limit, or says how long to wait.
    fn admit(&self) -> Result<u32, Duration> {
        let Some(rpm) = self.cfg.rpm else { return Ok(u32::MAX) };
        let span = self.cfg.window;
        let cap = self.window_cap(rpm);
        let now = Instant::now();
        let mut w = self.window.lock().expect("lock");
        while w.front().is_some_and(|t| now.duration_since(*t) >= span) {
            w.pop_front();
        }
        if w.len() as u32 >= cap {
            let oldest = *w.front().expect("full window");
            return Err(span.saturating_sub(now.duration_since(oldest)));
        }
        w.push_back(now);
        Ok(cap - w.len() as u32)
    }
}

fn error_body(api: Api, kind: &str, message: &str) -> String {
    match api {
        Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
        Api::OpenAi => json!({"error": {"message": message, "type": kind, "code": null}}).to_string(),
    }
}

fn respond(status: StatusCode, headers: HeaderMap, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().extend(headers);
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// The conversation a request asks about.
struct Conversation {
    model: String,
    system: String,
    messages: Vec<Message>,
    seed: u64,
}

/// The conversation in a request, or what is wrong with it.
fn parse_request(api: Api, v: &Value) -> Result<Conversation, String> {
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .ok_or("`model` is required")?
        .to_string();
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("`messages` is required")?;
    let mut system = match (api, v.get("system")) {
        (Api::Anthropic, Some(Value::String(s))) => s.clone(),
        (Api::Anthropic, Some(Value::Array(blocks))) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let mut messages = Vec::new();
    for m in msgs {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or("each message needs a `role`")?;
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => return Err("each message needs `content`".into()),
        };
        match role {
            "user" => messages.push(Message::user(content)),
            "assistant" => messages.push(Message::assistant(content)),
            "system" if api == Api::OpenAi => system.push_str(&content),
            other => return Err(format!("unknown role `{other}`")),
        }
    }
    if messages.first().map(|m| m.role) != Some(Role::User) {
        return Err("the first message must be from the user".into());
    }
    let seed = v.get("seed").and_then(Value::as_u64).unwrap_or(0);
    Ok(Conversation {
        model,
        system,
        messages,
        seed,
    })
}

/// A request body's conversation and what it asks beyond it, or what is
/// wrong with it; the realtime and the batch endpoints read requests alike.
fn read_request(api: Api, v: &Value) -> Result<(Conversation, shape::Asked), String> {
    parse_request(api, v).map(|c| (c, shape::Asked::of(api, v)))
}

/// The 400 body for a parameter the model refuses, if the request sets one.
fn refusal(s: &Server, api: Api, conv: &Conversation, asked: &shape::Asked, version: Option<&str>) -> Option<String> {
    let message = asked.refused(api, &conv.model, version, &s.cfg.reject_params)?;
    let param = asked.params.iter().find(|p| message.contains(&format!("'{p}'")));
    Some(shape::refusal_body(api, &message, param.map(String::as_str)))
}

/// One request to either API: key, rate limit, body, injected failures,
/// then the sim model's answer in the API's shape.
async fn handle(s: Arc<Server>, api: Api, req_headers: HeaderMap, body: Bytes) -> Response {
    s.stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(refused) = check_key(&s, api, &req_headers) {
        return *refused;
    }
    let headers = match admit(&s, api) {
        Ok(h) => h,
        Err(limited) => return *limited,
    };
    let parsed = match serde_json::from_slice::<Value>(&body) {
        Err(e) => Err(format!("body is not JSON: {e}")),
        Ok(v) => read_request(api, &v),
    };
    let (conv, asked) = match parsed {
        Ok(c) => c,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                headers,
                error_body(api, "invalid_request_error", &e),
            );
        }
    };
    let prompt_bytes = conv.system.len() + conv.messages.iter().map(|m| m.content.len()).sum::<usize>();
    let counted = shape::limited_input(api, &asked, &conv.system, prompt_bytes, &s.cache);
    if let Err(limited) = admit_tokens(&s, api, counted) {
        return *limited;
    }
    let version = req_headers.get("anthropic-version").and_then(|v| v.to_str().ok());
    if let Some(body) = refusal(&s, api, &conv, &asked, version) {
        return respond(StatusCode::BAD_REQUEST, headers, body);
    }
    if !s.cfg.latency.is_zero() {
        tokio::time::sleep(s.cfg.latency).await;
    }
    let truncate = match inject(&s, api, &conv) {
        Injected::Nothing => false,
        Injected::Truncate => true,
        Injected::Slow => {
            tokio::time::sleep(s.cfg.slow_by).await;
            false
        }
        Injected::Answer(status, body) => return respond(status, headers, body),
    };
    let text = match answer(&s, api, &conv, &asked).await {
        Ok(t) => t,
        Err(e) => {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                headers,
                error_body(api, "api_error", &e),
            );
        }
    };
    if truncate {
        s.stats.injected.fetch_add(1, Ordering::Relaxed);
        return cut_short(headers, text);
    }
    s.stats.ok.fetch_add(1, Ordering::Relaxed);
    respond(StatusCode::OK, headers, text)
}

/// With `--require-key`, a request without that key is refused with 401.
fn check_key(s: &Server, api: Api, req_headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(want) = &s.cfg.require_key else {
        return Ok(());
    };
    let got = match api {
        Api::Anthropic => req_headers.get("x-api-key").and_then(|v| v.to_str().ok()),
        Api::OpenAi => req_headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ")),
    };
    if got == Some(want.as_str()) {
        return Ok(());
    }
    s.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
    let kind = if api == Api::Anthropic {
        "authentication_error"
    } else {
        "invalid_api_key"
    };
    Err(Box::new(respond(
        StatusCode::UNAUTHORIZED,
        HeaderMap::new(),
        error_body(api, kind, "invalid API key"),
    )))
}

/// What an injected failure does to a request.
enum Injected {
    Nothing,
    /// Answer this instead of the model.
    Answer(StatusCode, String),
    /// Answer late by `--slow-by`.
    Slow,
    /// Promise the whole body and send half of it.
    Truncate,
}

/// Draws the request's injected failure, if any (each counted in `injected`).
fn inject(s: &Server, api: Api, conv: &Conversation) -> Injected {
    let r = s.draw();
    let c = &s.cfg;
    let marked = c
        .fail_when
        .as_ref()
        .is_some_and(|marker| conv.messages[0].content.contains(marker.as_str()));
    // Each kind of failure takes the next slice of [0, 1).
    let mut edge = 0.0;
    let mut next = |p: f64| {
        edge += p;
        r < edge
    };
    let injected = if marked {
        let body = error_body(api, "api_error", "injected server error (--error-500-when)");
        Injected::Answer(StatusCode::INTERNAL_SERVER_ERROR, body)
    } else if next(c.p500) {
        let body = error_body(api, "api_error", "injected server error");
        Injected::Answer(StatusCode::INTERNAL_SERVER_ERROR, body)
    } else if next(c.p529) {
        let status = StatusCode::from_u16(529).expect("valid");
        Injected::Answer(status, error_body(api, "overloaded_error", "injected: overloaded"))
    } else if next(c.malformed) {
        let body = "{\"id\": \"injected\", \"content\": [{\"type\": \"te".to_string();
        Injected::Answer(StatusCode::OK, body)
    } else if next(c.truncated) {
        // Counted when the body is cut.
        return Injected::Truncate;
    } else if next(c.slow) {
        Injected::Slow
    } else {
        return Injected::Nothing;
    };
    s.stats.injected.fetch_add(1, Ordering::Relaxed);
    injected
}

/// The sim model's reply to `conv`, as the API's JSON body. Its choices
/// hang on the conversation's first user message, the model and the seed,
/// so a conversation's turns agree.
async fn answer(s: &Server, api: Api, conv: &Conversation, asked: &shape::Asked) -> Result<String, String> {
    let c = &s.cfg;
    let mut h = Sha256::new();
    h.update(conv.model.as_bytes());
    h.update(conv.system.as_bytes());
    h.update(conv.messages[0].content.as_bytes());
    h.update(conv.seed.to_le_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let rule = c
        .comply_when
        .iter()
        .position(|(marker, _)| conv.messages[0].content.contains(marker.as_str()));
    let condition = rule.map_or_else(|| "default".to_string(), |i| format!("rule{i}"));
    let entry = ModelEntry {
        model: conv.model.clone(),
        ..s.model.clone()
    };
    let messages = &conv.messages;
    let turn = 1 + messages.iter().filter(|m| m.role == Role::Assistant).count() as u32
        - u32::from(messages.last().map(|m| m.role) == Some(Role::Assistant));
    let req = ChatRequest {
        model: &entry,
        system: &conv.system,
        messages,
        params: &entry.params,
        job_id: JobId(id),
        seed: conv.seed as u32,
        turn,
        attempt: 1,
        condition: &condition,
        judge: judge_ask(messages),
    };
    let reply = Sim.complete(req).await.map_err(|e| e.to_string())?;
    let refused = c
        .refuse_when
        .as_ref()
        .is_some_and(|marker| conv.messages[0].content.contains(marker.as_str()));
    let reply = shape::Reply {
        api,
        id: &hex8(&id),
        model: &conv.model,
        system: &conv.system,
        prompt_bytes: conv.system.len() + conv.messages.iter().map(|m| m.content.len()).sum::<usize>(),
        text: reply.text,
        refused,
    };
    Ok(reply.body(asked, &s.cache))
}

/// A request carrying one of candor's built-in judge prompts (its text up
/// to the first variable) is answered as that judge, as the simulated
/// model answers a judge in process.
fn judge_ask(messages: &[candor_core::Message]) -> Option<candor_core::judge::Ask> {
    use candor_core::judge::{Ask, Builtin};
    let first = &messages.first()?.content;
    [
        Builtin::ComplianceJudge,
        Builtin::AlignmentFaking,
        Builtin::PartialCompliance,
    ]
    .into_iter()
    .find(|b| {
        let head = b.template().split("{{").next().unwrap_or_default().trim();
        let head = &head[..head.floor_char_boundary(120)];
        !head.is_empty() && first.trim_start().starts_with(head)
    })
    .map(|b| Ask {
        criterion: Some(b),
        parser: b.parser(),
        score_max: 10.0,
    })
}

/// A 200 that promises the whole body, sends half, then breaks the connection.
fn cut_short(headers: HeaderMap, text: String) -> Response {
    let half = Bytes::copy_from_slice(&text.as_bytes()[..text.len() / 2]);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(half), Err(std::io::Error::other("injected: body cut short"))];
    let mut resp = respond(StatusCode::OK, headers, Body::from_stream(tokio_stream::iter(chunks)));
    resp.headers_mut()
        .insert("content-length", HeaderValue::from(text.len()));
    resp
}

fn hex8(id: &[u8; 16]) -> String {
    candor_core::hash::hex(&id[..8])
}

/// Eight bytes of a hash of `b`, in hex.
fn hex8_of(b: &[u8]) -> String {
    let d: [u8; 32] = Sha256::digest(b).into();
    candor_core::hash::hex(&d[..8])
}

/// Serves until `shutdown` resolves. `GET /stats` reports what was answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut comply = BTreeMap::from([("default".to_string(), cfg.comply)]);
    for (i, (_, p)) in cfg.comply_when.iter().enumerate() {
        comply.insert(format!("rule{i}"), *p);
    }
    let sim = SimConfig {
        comply,
        reasons_about_training: BTreeMap::from([("rule0".to_string(), 0.25)]),
        continuation: cfg.continuation,
        latency_ms: 0,
        ..SimConfig::default()
    };
    let model = ModelEntry::simulated("sim-server", "", Some(sim));
    let server = Arc::new(Server {
        cfg,
        model,
        window: Mutex::new(VecDeque::new()),
        token_window: Mutex::new(VecDeque::new()),
        draws: AtomicU64::new(0),
        stats: Stats::default(),
        started: Instant::now(),
        cache: shape::PromptCache::default(),
        batches: batch::Batches::default(),
    });
    let (a, o1, o2, st) = (server.clone(), server.clone(), server.clone(), server.clone());
    let app = axum::Router::new()
        .route(
            "/v1/messages",
            post(move |h: HeaderMap, b: Bytes| handle(a.clone(), Api::Anthropic, h, b)),
        )
        .route(
            "/v1/chat/completions",
            post(move |h: HeaderMap, b: Bytes| handle(o1.clone(), Api::OpenAi, h, b)),
        )
        .route(
            "/chat/completions",
            post(move |h: HeaderMap, b: Bytes| handle(o2.clone(), Api::OpenAi, h, b)),
        )
        .route("/stats", get(move || stats(st.clone())))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .merge(batch::routes(server));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Counts, and the most requests admitted in any window of the limit's length.
async fn stats(s: Arc<Server>) -> impl IntoResponse {
    let mut at = s.stats.accepted_at.lock().expect("lock").clone();
    at.sort_by(f64::total_cmp);
    let span = s.cfg.window.as_secs_f64();
    let mut max_window = 0usize;
    let mut lo = 0;
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= span {
            lo += 1;
        }
        max_window = max_window.max(hi - lo + 1);
    }
    let mut body = json!({
        "requests": s.stats.requests.load(Ordering::Relaxed),
        "ok": s.stats.ok.load(Ordering::Relaxed),
        "rate_limited": s.stats.rate_limited.load(Ordering::Relaxed),
        "injected": s.stats.injected.load(Ordering::Relaxed),
        "unauthorized": s.stats.unauthorized.load(Ordering::Relaxed),
        "admitted": s.stats.admitted.load(Ordering::Relaxed),
        "input_tokens": s.stats.input_tokens.load(Ordering::Relaxed),
        "window_secs": span,
        "max_admitted_in_any_window": max_window,
    });
    s.batches.add_stats(&mut body);
    respond(StatusCode::OK, HeaderMap::new(), body.to_string())
}

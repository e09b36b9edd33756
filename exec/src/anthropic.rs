//! The Anthropic Messages API, as documented in 2026-12
//! (<https://platform.claude.com/docs/en/api/messages>): the
//! `anthropic-version` the model entry names (default 2026-10-21), the
//! system prompt as a text block marked as a prompt-cache breakpoint when it
//! is long enough to be cached
//! (<https://platform.claude.com/docs/en/build-with-claude/prompt-caching>),
//! thinking and effort, and replies read with their thinking blocks, stop
//! reason and cache usage.

use candor_core::KeyError;
use candor_core::spec::ThinkingKind;
use candor_core::spec::rules::{ANTHROPIC_DEFAULT_MAX_TOKENS, min_cacheable_tokens};
use candor_core::{Message, Reasoning, Role, Usage};
use serde_json::{Map, Value, json};

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};
use crate::http::{Secret, count, exchange, key_or_refuse, malformed};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_KEY_ENV: &str = "ANTHROPIC_API_KEY";

pub struct Anthropic {
    client: reqwest::Client,
    url: String,
    key: Result<Secret, KeyError>,
}

impl Anthropic {
    /// `key` is the key, or why there is none.
    pub fn new(client: reqwest::Client, base_url: Option<&str>, key: Result<Secret, KeyError>) -> Self {
        let base = base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/');
        Anthropic {
            client,
            url: format!("{base}/v1/messages"),
            key,
        }
    }
}

/// Whether the system prompt is sent as a cache breakpoint: the entry's
/// `prompt_cache`, by default on when the prompt (at about 4 bytes a token)
/// reaches the model's smallest cacheable length.
pub fn caches_system(req: &ChatRequest<'_>) -> bool {
    !req.system.is_empty()
        && req
            .model
            .prompt_cache
            .unwrap_or_else(|| (req.system.len() as u64).div_ceil(4) >= min_cacheable_tokens(&req.model.model))
}

/// An assistant turn as content blocks: its thinking (signed, as the API
/// wants it back) before its text.
fn assistant_content(m: &Message) -> Value {
    let Some(r) = &m.reasoning else {
        return json!(m.content);
    };
    let mut blocks = Vec::new();
    if let Some(sig) = &r.signature {
        blocks.push(json!({"type": "thinking", "thinking": r.text, "signature": sig}));
    }
    for data in &r.redacted {
        blocks.push(json!({"type": "redacted_thinking", "data": data}));
    }
    if !m.content.is_empty() {
        blocks.push(json!({"type": "text", "text": m.content}));
    }
    json!(blocks)
}

/// The request body for `req`.
pub fn request_body(req: &ChatRequest<'_>) -> Value {
    let p = req.params;
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| match m.role {
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant => json!({"role": "assistant", "content": assistant_content(m)}),
        })
        .collect();
    let mut o = Map::new();
    o.insert("model".into(), json!(req.model.model));
    o.insert(
        "max_tokens".into(),
        json!(p.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS)),
    );
    if caches_system(req) {
        let block = json!({"type": "text", "text": req.system, "cache_control": {"type": "ephemeral"}});
        o.insert("system".into(), json!([block]));
    } else if !req.system.is_empty() {
        o.insert("system".into(), json!(req.system));
    }
    o.insert("messages".into(), json!(messages));
    let sampling = [
        ("temperature", p.temperature.map(|t| json!(t))),
        ("top_p", p.top_p.map(|t| json!(t))),
        ("top_k", p.top_k.map(|k| json!(k))),
        ("stop_sequences", p.stop.as_ref().map(|s| json!(s))),
    ];
    for (k, v) in sampling {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    }
    if let Some(t) = &p.thinking {
        let mut th = Map::new();
        th.insert(
            "type".into(),
            json!(match t.kind {
                ThinkingKind::Enabled => "enabled",
                ThinkingKind::Adaptive => "adaptive",
                ThinkingKind::Disabled => "disabled",
            }),
        );
        if let Some(b) = t.budget_tokens {
            th.insert("budget_tokens".into(), json!(b));
        }
        // Asked for explicitly so the reasoning comes back as text where the
        // model allows (the newest models default to `omitted`).
        let display = t
            .display
            .as_deref()
            .or((t.kind == ThinkingKind::Adaptive).then_some("summarized"));
        if let Some(d) = display {
            th.insert("display".into(), json!(d));
        }
        o.insert("thinking".into(), Value::Object(th));
    }
    if let Some(e) = &p.effort {
        o.insert("output_config".into(), json!({"effort": e}));
    }
    Value::Object(o)
}

/// The reply's usage: Anthropic's `input_tokens` leaves out the tokens
/// written to and read from the cache, which are added here.
fn usage(v: &Value) -> Result<Usage, BackendError> {
    let write = count(v, "/cache_creation_input_tokens", false)?;
    let read = count(v, "/cache_read_input_tokens", false)?;
    Ok(Usage {
        input_tokens: count(v, "/input_tokens", true)? + write + read,
        output_tokens: count(v, "/output_tokens", true)?,
        cache_creation_input_tokens: write,
        cache_read_input_tokens: read,
        reasoning_tokens: 0,
    })
}

/// Reads a successful response: the text blocks as the reply, the thinking
/// blocks as its reasoning.
pub fn parse_reply(bytes: &[u8]) -> Result<ChatReply, BackendError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| malformed(&format!("not JSON ({e})")))?;
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no `content` array"))?;
    let mut text = String::new();
    let mut reasoning: Option<Reasoning> = None;
    for c in content {
        let field = |k: &str| c.get(k).and_then(Value::as_str);
        match field("type") {
            Some("text") => text.push_str(field("text").unwrap_or_default()),
            Some("thinking") => {
                let r = reasoning.get_or_insert_with(Reasoning::default);
                r.text.push_str(field("thinking").unwrap_or_default());
                r.signature = field("signature").map(String::from).or(r.signature.take());
            }
            Some("redacted_thinking") => {
                let r = reasoning.get_or_insert_with(Reasoning::default);
                r.redacted.push(field("data").unwrap_or_default().to_string());
            }
            _ => {}
        }
    }
    Ok(ChatReply {
        text,
        reasoning,
        usage: usage(&v)?,
        stop_reason: v.get("stop_reason").and_then(Value::as_str).map(String::from),
        cached: false,
        limits: [0; 3],
    })
}

impl Backend for Anthropic {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let key = key_or_refuse(&self.key)?;
            let r = self
                .client
                .post(&self.url)
                .header("x-api-key", &key.0)
                .header("anthropic-version", req.model.anthropic_version());
            exchange(&req.model.id, &self.url, r, request_body(&req).to_string(), parse_reply).await
        })
    }
}

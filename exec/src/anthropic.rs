//! The Anthropic Messages API.

use candor_core::KeyError;
use serde_json::{Value, json};

use candor_core::Role;

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};
use crate::http::{Secret, exchange, key_or_refuse, malformed, usage};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_KEY_ENV: &str = "ANTHROPIC_API_KEY";
const VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the API; this is used when the spec sets none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

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

/// The request body for `req`.
pub fn request_body(req: &ChatRequest<'_>) -> Value {
    let p = req.params;
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            json!({
                "role": match m.role { Role::User => "user", Role::Assistant => "assistant" },
                "content": m.content,
            })
        })
        .collect();
    let mut b = json!({
        "model": req.model.model,
        "max_tokens": p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    let o = b.as_object_mut().expect("an object");
    if !req.system.is_empty() {
        o.insert("system".into(), json!(req.system));
    }
    if let Some(t) = p.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.top_p {
        o.insert("top_p".into(), json!(t));
    }
    if let Some(k) = p.top_k {
        o.insert("top_k".into(), json!(k));
    }
    if let Some(s) = &p.stop {
        o.insert("stop_sequences".into(), json!(s));
    }
    b
}

/// Reads a successful response.
pub fn parse_reply(bytes: &[u8]) -> Result<ChatReply, BackendError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| malformed(&format!("not JSON ({e})")))?;
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no `content` array"))?;
    let text: String = content
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect();
    Ok(ChatReply {
        text,
        usage: usage(&v, "input_tokens", "output_tokens")?,
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
                .header("anthropic-version", VERSION);
            exchange(&req.model.id, &self.url, r, request_body(&req).to_string(), parse_reply).await
        })
    }
}

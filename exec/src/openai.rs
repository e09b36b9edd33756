//! The OpenAI Chat Completions API, and every server that speaks it. The
//! output limit goes as `max_completion_tokens` to OpenAI itself and to its
//! reasoning models (which refuse `max_tokens`), as `max_tokens` to other
//! servers; `reasoning_effort` as set. Replies are read with their
//! `finish_reason`, cached and reasoning token counts
//! (`prompt_tokens_details.cached_tokens`,
//! `completion_tokens_details.reasoning_tokens`) and the reasoning text that
//! OpenAI-compatible servers return beside the content (`reasoning`, or the
//! older `reasoning_content`).

use candor_core::KeyError;
use candor_core::spec::rules::uses_max_completion_tokens;
use candor_core::{Reasoning, Role, Usage};
use serde_json::{Value, json};

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};
use crate::http::{Secret, count, exchange, key_or_refuse, malformed};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_KEY_ENV: &str = "OPENAI_API_KEY";

pub struct OpenAi {
    client: reqwest::Client,
    url: String,
    /// None: the server wants no key (a local server).
    key: Option<Result<Secret, KeyError>>,
}

impl OpenAi {
    pub fn new(client: reqwest::Client, base_url: Option<&str>, key: Option<Result<Secret, KeyError>>) -> Self {
        let base = base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/');
        OpenAi {
            client,
            url: format!("{base}/chat/completions"),
            key,
        }
    }
}

/// The request body for `req`. A trailing assistant message (a prefill) is
/// sent as is; servers that support continuing it (vLLM) do.
pub fn request_body(req: &ChatRequest<'_>) -> Value {
    let p = req.params;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": m.content}));
    }
    let mut b = json!({"model": req.model.model, "messages": messages, "seed": req.seed});
    let o = b.as_object_mut().expect("an object");
    if let Some(t) = p.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.max_tokens {
        let field = if uses_max_completion_tokens(req.model) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        o.insert(field.into(), json!(t));
    }
    if let Some(t) = p.top_p {
        o.insert("top_p".into(), json!(t));
    }
    if let Some(s) = &p.stop {
        o.insert("stop".into(), json!(s));
    }
    if let Some(e) = &p.reasoning_effort {
        o.insert("reasoning_effort".into(), json!(e));
    }
    b
}

fn usage(v: &Value) -> Result<Usage, BackendError> {
    Ok(Usage {
        input_tokens: count(v, "/prompt_tokens", true)?,
        output_tokens: count(v, "/completion_tokens", true)?,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: count(v, "/prompt_tokens_details/cached_tokens", false)?,
        reasoning_tokens: count(v, "/completion_tokens_details/reasoning_tokens", false)?,
    })
}

/// Reads a successful response.
pub fn parse_reply(bytes: &[u8]) -> Result<ChatReply, BackendError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| malformed(&format!("not JSON ({e})")))?;
    let choice = v.pointer("/choices/0").ok_or_else(|| malformed("no `choices[0]`"))?;
    let text = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => String::new(),
        _ => return Err(malformed("no `choices[0].message.content`")),
    };
    let reasoning = ["/message/reasoning", "/message/reasoning_content"]
        .iter()
        .find_map(|p| choice.pointer(p).and_then(Value::as_str))
        .filter(|r| !r.is_empty())
        .map(|r| Reasoning {
            text: r.to_string(),
            ..Reasoning::default()
        });
    Ok(ChatReply {
        text,
        reasoning,
        usage: usage(&v)?,
        stop_reason: choice.get("finish_reason").and_then(Value::as_str).map(String::from),
        cached: false,
        limits: [0; 3],
    })
}

impl Backend for OpenAi {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let mut r = self.client.post(&self.url);
            if let Some(key) = &self.key {
                r = r.bearer_auth(&key_or_refuse(key)?.0);
            }
            exchange(&req.model.id, &self.url, r, request_body(&req).to_string(), parse_reply).await
        })
    }
}

//! What the sim-server reads from a request beyond the conversation (the
//! parameters it carries, prompt-cache breakpoints, thinking, reasoning
//! effort, the output limit), the parameters it refuses as the providers do,
//! and how it shapes the sim model's text into each API's reply: a prompt
//! cache, thinking blocks or a `reasoning` field, replies cut at the token
//! limit, and replies stopped by a (simulated) safety system.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Api;

/// Sampling parameters anthropic-version 2026-10-21 refuses on every model.
const SAMPLERS: [&str; 3] = ["temperature", "top_p", "top_k"];
/// The most prompts the cache remembers before it starts afresh.
const MAX_CACHED: usize = 100_000;
/// OpenAI caches prompts of at least this many tokens.
const OPENAI_MIN_CACHED: u64 = 1024;

/// What a request asks for besides its messages.
#[derive(Debug, Default)]
pub struct Asked {
    /// The top-level fields it sets (`temperature`, `max_tokens`, ...).
    pub params: Vec<String>,
    /// Anthropic: the system prompt carries a `cache_control` breakpoint.
    pub cache_system: bool,
    /// Anthropic thinking is on, with its display (`summarized`, `omitted`).
    pub thinking: Option<String>,
    /// OpenAI `reasoning_effort`.
    pub reasoning_effort: Option<String>,
    /// The output limit (`max_tokens` or `max_completion_tokens`).
    pub max_tokens: Option<u64>,
}

impl Asked {
    pub fn of(api: Api, v: &Value) -> Asked {
        let obj = v.as_object();
        let params = obj.map(|o| o.keys().cloned().collect()).unwrap_or_default();
        let cache_system = api == Api::Anthropic
            && v.get("system")
                .and_then(Value::as_array)
                .is_some_and(|b| b.iter().any(|b| b.get("cache_control").is_some()));
        let thinking = v
            .get("thinking")
            .filter(|t| matches!(t.get("type").and_then(Value::as_str), Some("enabled" | "adaptive")))
            .map(|t| {
                t.get("display")
                    .and_then(Value::as_str)
                    .unwrap_or("summarized")
                    .to_string()
            });
        let max_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_u64));
        Asked {
            params,
            cache_system,
            thinking,
            reasoning_effort: v.get("reasoning_effort").and_then(Value::as_str).map(String::from),
            max_tokens,
        }
    }

    /// The parameter this request carries that the server refuses, with the
    /// provider's message: any of `rejected`, and under anthropic-version
    /// 2026-10-21 any sampling parameter (as documented for that version).
    /// OpenAI's reasoning models (`model` named o1, o3, o4 or gpt-5…) refuse
    /// `max_tokens` in favour of `max_completion_tokens`, as the API does.
    pub fn refused(&self, api: Api, model: &str, version: Option<&str>, rejected: &[String]) -> Option<String> {
        let has = |p: &str| self.params.iter().any(|q| q == p);
        let reasoning_model = ["o1", "o3", "o4", "gpt-5"].iter().any(|p| model.starts_with(p));
        if api == Api::OpenAi && reasoning_model && has("max_tokens") {
            return Some(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
                    .to_string(),
            );
        }
        if api == Api::Anthropic
            && version == Some("2026-10-21")
            && let Some(p) = SAMPLERS.iter().find(|p| has(p))
        {
            return Some(format!(
                "`{p}`: this parameter is not supported in anthropic-version 2026-10-21"
            ));
        }
        rejected.iter().find(|p| has(p)).map(|p| match api {
            Api::Anthropic => format!("`{p}` is not supported for this model."),
            Api::OpenAi => format!("Unsupported parameter: '{p}' is not supported with this model."),
        })
    }
}

/// The 400 for a refused parameter, in the API's documented shape.
pub fn refusal_body(api: Api, message: &str, param: Option<&str>) -> String {
    match api {
        Api::Anthropic => json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        Api::OpenAi => json!({"error": {"message": message, "type": "invalid_request_error",
                                         "param": param, "code": "unsupported_parameter"}}),
    }
    .to_string()
}

/// Prompts seen before: what is cached.
#[derive(Debug, Default)]
pub struct PromptCache(Mutex<HashSet<[u8; 32]>>);

impl PromptCache {
    fn contains(&self, prompt: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(prompt.as_bytes()).into();
        self.0.lock().expect("lock").contains(&h)
    }

    /// Whether `prompt` was cached before this call (it is now).
    fn seen(&self, prompt: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(prompt.as_bytes()).into();
        let mut set = self.0.lock().expect("lock");
        if set.len() >= MAX_CACHED {
            set.clear();
        }
        !set.insert(h)
    }
}

/// The input tokens of a request that an input-token limit counts: all of
/// them but what the cache will serve on Anthropic, which leaves cache
/// reads out of its limit on current models.
pub fn limited_input(api: Api, asked: &Asked, system: &str, prompt_bytes: usize, cache: &PromptCache) -> u64 {
    let all = tokens(prompt_bytes);
    if api == Api::Anthropic && asked.cache_system && cache.contains(system) {
        all - tokens(system.len()).min(all)
    } else {
        all
    }
}

pub fn tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// The sim model's text as the API's reply body.
pub struct Reply<'a> {
    pub api: Api,
    pub id: &'a str,
    pub model: &'a str,
    pub system: &'a str,
    /// Bytes of the prompt (system and every message).
    pub prompt_bytes: usize,
    pub text: String,
    /// The simulated safety system stops this reply.
    pub refused: bool,
}

/// Splits a sim reply into its scratchpad (the reasoning) and the rest.
fn split_reasoning(text: &str) -> (String, String) {
    (
        candor_core::judge::scratchpad(&[text]),
        candor_exec::protocol::strip_scratchpad(text),
    )
}

/// Cuts `text` to about `max` tokens; true when it was cut.
fn cut(text: &mut String, max: Option<u64>) -> bool {
    let Some(max) = max else { return false };
    if tokens(text.len()) <= max {
        return false;
    }
    let mut at = (max as usize * 4).min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    true
}

/// What the reply holds once shaped, before it is written in an API's form.
struct Shaped {
    reasons: bool,
    reasoning: String,
    text: String,
    truncated: bool,
    input: u64,
    output: u64,
    write: u64,
    read: u64,
}

impl Reply<'_> {
    /// The body, with the prompt cache, reasoning, cuts and stops applied.
    pub fn body(mut self, asked: &Asked, cache: &PromptCache) -> String {
        let input = tokens(self.prompt_bytes);
        let system = tokens(self.system.len());
        let cacheable = match self.api {
            Api::Anthropic => asked.cache_system,
            Api::OpenAi => system >= OPENAI_MIN_CACHED,
        };
        let (write, read) = match (cacheable, cacheable && cache.seen(self.system)) {
            (false, _) => (0, 0),
            (true, true) => (0, system),
            (true, false) if self.api == Api::Anthropic => (system, 0),
            (true, false) => (0, 0),
        };
        let reasons = match self.api {
            Api::Anthropic => asked.thinking.is_some(),
            Api::OpenAi => asked.reasoning_effort.as_deref().is_some_and(|e| e != "none"),
        };
        let (mut reasoning, mut text) = if reasons {
            split_reasoning(&self.text)
        } else {
            (String::new(), std::mem::take(&mut self.text))
        };
        let reasoning_tokens = tokens(reasoning.len());
        // Reasoning counts toward the output limit, as the providers count it.
        let mut truncated = cut(&mut reasoning, asked.max_tokens);
        if truncated {
            text.clear();
        } else {
            truncated = cut(&mut text, asked.max_tokens.map(|m| m - reasoning_tokens.min(m)));
        }
        if self.refused {
            text.clear();
        }
        let output = reasoning_tokens + tokens(text.len());
        let shaped = Shaped {
            reasons,
            reasoning,
            text,
            truncated,
            input,
            output,
            write,
            read,
        };
        match self.api {
            Api::Anthropic => self.anthropic(asked, shaped),
            Api::OpenAi => self.openai(shaped),
        }
        .to_string()
    }

    fn anthropic(&self, asked: &Asked, s: Shaped) -> Value {
        let stop = if self.refused {
            "refusal"
        } else if s.truncated {
            "max_tokens"
        } else {
            "end_turn"
        };
        let mut content = Vec::new();
        if s.reasons {
            let shown = if asked.thinking.as_deref() == Some("omitted") {
                ""
            } else {
                &s.reasoning
            };
            let sig = super::hex8_of(s.reasoning.as_bytes());
            content.push(json!({"type": "thinking", "thinking": shown, "signature": format!("sim-{sig}")}));
        }
        if !s.text.is_empty() || !s.reasons {
            content.push(json!({"type": "text", "text": s.text}));
        }
        let mut body = json!({
            "id": format!("msg_{}", self.id), "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": s.input - s.write - s.read, "output_tokens": s.output,
                      "cache_creation_input_tokens": s.write, "cache_read_input_tokens": s.read}
        });
        if self.refused {
            body["stop_details"] = json!({"type": "refusal", "category": null, "explanation": null});
        }
        body
    }

    fn openai(&self, s: Shaped) -> Value {
        let finish = if self.refused {
            "content_filter"
        } else if s.truncated {
            "length"
        } else {
            "stop"
        };
        let mut message = json!({"role": "assistant", "content": s.text});
        if s.reasons {
            message["reasoning"] = json!(s.reasoning);
        }
        json!({
            "id": format!("chatcmpl-{}", self.id), "object": "chat.completion", "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": s.input, "completion_tokens": s.output, "total_tokens": s.input + s.output,
                      "prompt_tokens_details": {"cached_tokens": s.read},
                      "completion_tokens_details": {"reasoning_tokens": tokens(s.reasoning.len())}}
        })
    }
}

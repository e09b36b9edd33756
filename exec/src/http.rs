//! What the HTTP backends share: the client, size-limited bodies, the
//! provider's error message, and mapping HTTP statuses to `BackendError`.

use candor_core::KeyError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use candor_core::ErrorKind;

use crate::backend::{BackendError, ChatReply};

/// The largest response body read from a provider.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Per-request timeout when the model entry sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// An API key. Its `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An HTTP client with rustls (ring) and the public web roots.
pub fn client(timeout: Duration) -> reqwest::Client {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("the HTTP client builds")
}

/// A transport failure: always worth another try. The message carries the
/// innermost cause ("Connection refused", "failed to lookup address"), not
/// the URL: the caller names what it called.
pub fn transport(e: reqwest::Error) -> BackendError {
    let (what, kind) = if e.is_timeout() {
        ("timed out", ErrorKind::Timeout)
    } else if e.is_connect() {
        ("could not connect", ErrorKind::Connect)
    } else {
        ("connection failed", ErrorKind::Transport)
    };
    BackendError::Retryable {
        message: format!("{what}: {}", causes(&e.without_url())),
        retry_after: None,
        kind,
    }
}

/// An error and its sources, outermost first, each once.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        next = s.source();
    }
    out
}

/// Reads at most `MAX_BODY_BYTES` of a body; a body cut short is an error.
pub async fn body(mut resp: reqwest::Response) -> Result<Vec<u8>, BackendError> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_BODY_BYTES {
                    return Err(BackendError::Failed {
                        message: format!("the response body is larger than {MAX_BODY_BYTES} bytes"),
                        kind: ErrorKind::TooLarge,
                    });
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(BackendError::Retryable {
                    message: format!("the response body was cut short: {}", causes(&e.without_url())),
                    retry_after: None,
                    kind: ErrorKind::Transport,
                });
            }
        }
    }
}

/// `retry-after` in seconds (or an HTTP date, which is ignored).
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get("retry-after")?.to_str().ok()?.trim();
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// The provider's own error message, or the start of the body.
pub fn provider_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = v.pointer("/error/message").and_then(|m| m.as_str())
    {
        return m.chars().take(1000).collect();
    }
    let text = String::from_utf8_lossy(body);
    let t: String = text.chars().take(500).collect();
    if t.trim().is_empty() { "(empty body)".into() } else { t }
}

/// Maps a non-success status to an error.
pub fn status_error(model: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> BackendError {
    let msg = provider_message(body);
    match status {
        429 => BackendError::RateLimited {
            message: format!("rate limited (429): {msg}"),
            retry_after: retry_after(headers),
        },
        401 | 403 => BackendError::Unauthorized {
            message: format!("check the API key for model {model}: the provider answered {status}: {msg}"),
        },
        408 | 409 | 500..=599 => BackendError::Retryable {
            message: format!("the provider answered {status}: {msg}"),
            retry_after: retry_after(headers),
            kind: ErrorKind::Http(status),
        },
        400 if names_a_parameter(body) => BackendError::Failed {
            message: format!("the provider refused a parameter of model {model} (400): {msg}"),
            kind: ErrorKind::Param,
        },
        _ => BackendError::Failed {
            message: format!("the provider answered {status}: {msg}"),
            kind: ErrorKind::Http(status),
        },
    }
}

/// Request parameters a provider's 400 may name.
const PARAMETERS: [&str; 13] = [
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "thinking",
    "budget_tokens",
    "effort",
    "output_config",
    "prefill",
    "reasoning_effort",
    "stop_sequences",
    "cache_control",
];

/// Whether a 400's body says which request parameter was refused: OpenAI's
/// `error.param` or `unsupported_parameter` / `unsupported_value` codes, or
/// a message naming one of [`PARAMETERS`] (Anthropic: "`temperature` is
/// deprecated for this model", "This model does not support assistant
/// message prefill", "thinking.type.enabled is not supported ...").
pub fn names_a_parameter(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let err = v.get("error");
    let param = err.and_then(|e| e.get("param")).and_then(|p| p.as_str());
    let code = err.and_then(|e| e.get("code")).and_then(|c| c.as_str());
    if param.is_some_and(|p| !p.is_empty()) || matches!(code, Some("unsupported_parameter" | "unsupported_value")) {
        return true;
    }
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    PARAMETERS.iter().any(|p| message.contains(p))
}

/// Per-minute limits announced in a response's headers: requests, input
/// tokens, output tokens (0: not announced). Anthropic announces all three;
/// OpenAI-compatible servers requests and tokens (counted here as input).
pub fn learnt_limits(h: &reqwest::header::HeaderMap) -> [u64; 3] {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| h.get(*n)?.to_str().ok()?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    [
        get(&["anthropic-ratelimit-requests-limit", "x-ratelimit-limit-requests"]),
        get(&["anthropic-ratelimit-input-tokens-limit", "x-ratelimit-limit-tokens"]),
        get(&["anthropic-ratelimit-output-tokens-limit"]),
    ]
}

/// Sends a JSON request and reads the reply with `parse`: the part every
/// HTTP backend shares (transport errors, body limits, statuses, limits
/// announced in the headers).
///
/// Every error names what was called: `POST <url>` (without user info or
/// query, which may hold secrets).
pub async fn exchange(
    model_id: &str,
    url: &str,
    request: reqwest::RequestBuilder,
    json: String,
    parse: impl FnOnce(&[u8]) -> Result<ChatReply, BackendError>,
) -> Result<ChatReply, BackendError> {
    let called = || format!("POST {}", candor_core::redact::url(url));
    let resp = request
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .map_err(|e| transport(e).context(&called()))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = body(resp).await.map_err(|e| e.context(&called()))?;
    if !(200..300).contains(&status) {
        return Err(status_error(model_id, status, &headers, &bytes).context(&called()));
    }
    let mut reply = parse(&bytes).map_err(|e| e.context(&called()))?;
    reply.limits = learnt_limits(&headers);
    Ok(reply)
}

/// The key, or the error to give when there is none.
pub fn key_or_refuse(key: &Result<Secret, KeyError>) -> Result<&Secret, BackendError> {
    key.as_ref().map_err(|why| BackendError::Unauthorized {
        message: why.to_string(),
    })
}

/// A count in a reply's `usage` object: `path` below it (`/input_tokens`),
/// required or not (an absent optional count is 0).
pub fn count(v: &serde_json::Value, path: &str, required: bool) -> Result<u64, BackendError> {
    match v.get("usage").and_then(|u| u.pointer(path)).filter(|n| !n.is_null()) {
        Some(n) => n
            .as_u64()
            .ok_or_else(|| malformed(&format!("`usage{}` is not a count", path.replace('/', ".")))),
        None if required => Err(malformed(&format!("no `usage{}`", path.replace('/', ".")))),
        None => Ok(0),
    }
}

/// A response that is not what the API documents: worth another try.
pub fn malformed(what: &str) -> BackendError {
    BackendError::Retryable {
        message: format!("malformed response: {what}"),
        retry_after: None,
        kind: ErrorKind::Malformed,
    }
}

//! The sim-server's rate limits as the providers enforce them: requests
//! per minute and input tokens per minute, answered with 429,
//! `retry-after` and the providers' rate-limit headers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::{Api, MAX_KEPT_STARTS, Server, error_body, respond};

/// The provider's requests-per-minute headers: the limit, what is left, when it resets.
fn limit_headers(api: Api, limit: Option<u32>, remaining: u32, reset: Duration) -> HeaderMap {
    let mut h = HeaderMap::new();
    let Some(limit) = limit else { return h };
    let (l, r, s) = match api {
        Api::Anthropic => (
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
        ),
        Api::OpenAi => (
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ),
    };
    h.insert(l, HeaderValue::from(limit));
    h.insert(r, HeaderValue::from(remaining.min(limit)));
    let reset = format!("{}s", reset.as_secs().max(1));
    h.insert(s, HeaderValue::from_str(&reset).expect("ascii"));
    h
}

/// Admits the request under the requests-per-minute limit (its rate-limit
/// headers to answer with), or answers 429 with `retry-after`.
pub(super) fn admit(s: &Server, api: Api) -> Result<HeaderMap, Box<Response>> {
    let t = s.started.elapsed().as_secs_f64();
    let remaining = match s.admit() {
        Ok(r) => r,
        Err(wait) => {
            s.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let mut h = limit_headers(api, s.cfg.rpm, 0, wait);
            h.insert("retry-after", HeaderValue::from(wait.as_secs().max(1)));
            let kind = if api == Api::Anthropic {
                "rate_limit_error"
            } else {
                "rate_limit_exceeded"
            };
            return Err(Box::new(respond(
                StatusCode::TOO_MANY_REQUESTS,
                h,
                error_body(api, kind, "requests per minute exceeded"),
            )));
        }
    };
    {
        let mut at = s.stats.accepted_at.lock().expect("lock");
        if at.len() >= MAX_KEPT_STARTS {
            at.drain(..MAX_KEPT_STARTS / 2);
        }
        at.push(t);
    }
    s.stats.admitted.fetch_add(1, Ordering::Relaxed);
    Ok(limit_headers(api, s.cfg.rpm, remaining, Duration::from_secs(60)))
}

/// Admits `n` input tokens under `--input-tpm` (at most the limit × window
/// / 60 s in any window), or answers 429 with the input-token headers.
pub(super) fn admit_tokens(s: &Server, api: Api, n: u64) -> Result<(), Box<Response>> {
    let Some(tpm) = s.cfg.input_tpm else { return Ok(()) };
    let span = s.cfg.window;
    let cap = ((tpm as f64 * span.as_secs_f64() / 60.0) as u64).max(1);
    let now = Instant::now();
    let mut w = s.token_window.lock().expect("lock");
    while w.front().is_some_and(|(t, _)| now.duration_since(*t) >= span) {
        w.pop_front();
    }
    let used: u64 = w.iter().map(|(_, n)| n).sum();
    if used + n > cap && !w.is_empty() {
        let wait = span.saturating_sub(now.duration_since(w.front().expect("not empty").0));
        drop(w);
        s.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut h = HeaderMap::new();
        if api == Api::Anthropic {
            h.insert("anthropic-ratelimit-input-tokens-limit", HeaderValue::from(tpm));
            h.insert(
                "anthropic-ratelimit-input-tokens-remaining",
                HeaderValue::from(cap.saturating_sub(used)),
            );
        }
        h.insert("retry-after", HeaderValue::from(wait.as_secs().max(1)));
        let kind = if api == Api::Anthropic {
            "rate_limit_error"
        } else {
            "rate_limit_exceeded"
        };
        let body = error_body(api, kind, "input tokens per minute exceeded");
        return Err(Box::new(respond(StatusCode::TOO_MANY_REQUESTS, h, body)));
    }
    w.push_back((now, n));
    s.stats.input_tokens.fetch_add(n, Ordering::Relaxed);
    Ok(())
}

//! Rate limits shared by every caller of a (backend, key, model): a layer
//! around a backend. Before each call it takes one request and the
//! estimated tokens from the budget (waiting as long as it must); after, it
//! corrects the estimate from the reported usage; a 429 holds off every
//! caller until the provider's `retry-after`. Locally the budget lives in
//! this process; with Redis, in Redis, so a whole fleet shares it.
//!
//! Tokens are counted as the provider counts them
//! (<https://docs.anthropic.com/en/api/rate-limits>): Anthropic's input
//! limit counts uncached input and cache writes but not cache reads on
//! current models, so the estimate leaves out what the last call of the
//! budget read from the cache, and the correction counts what this one did;
//! output is reserved from `max_tokens` (as the provider estimates it) and
//! corrected from usage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_core::spec::{ModelEntry, RateLimit};
use sha2::{Digest, Sha256};

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};

/// Fraction of a limit actually used, to leave room for clock and network jitter.
pub const HEADROOM: f64 = 0.98;
/// Output tokens reserved before a call when the spec sets no max_tokens.
const OUTPUT_ESTIMATE: u64 = 1024;

/// Per-minute limits: requests, input tokens, output tokens (0: none).
pub fn limits(r: Option<&RateLimit>) -> [u64; 3] {
    match r {
        Some(r) => [
            u64::from(r.rpm.unwrap_or(0)),
            r.input_tpm.unwrap_or(0),
            r.output_tpm.unwrap_or(0),
        ],
        None => [0; 3],
    }
}

/// The budget key of a model: backend, endpoint, model, and a fingerprint of the API key.
pub fn key(m: &ModelEntry, api_key: Option<&str>) -> String {
    let fp = api_key.map(|k| {
        let d: [u8; 32] = Sha256::digest(k.as_bytes()).into();
        candor_core::hash::hex(&d[..6])
    });
    format!(
        "{}|{}|{}|{}",
        m.backend.name(),
        m.base_url.as_deref().unwrap_or("default"),
        m.model,
        fp.unwrap_or_default()
    )
}

/// A budget could not be read or changed: the store it lives in (Redis,
/// for a fleet) failed. The call is not made; the job may try again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(Box<dyn std::error::Error + Send + Sync>);

impl LimitError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        LimitError(e.into())
    }
}

/// Where the budgets live.
pub trait Limiter: Send + Sync {
    /// Takes `cost` (requests, input, output tokens); Ok(0) when granted,
    /// else how many milliseconds to wait before asking again.
    fn take<'a>(&'a self, key: &'a str, limits: [u64; 3], cost: [f64; 3]) -> BoxFuture<'a, Result<u64, LimitError>>;
    /// Corrects an earlier take by `delta`.
    fn settle<'a>(&'a self, key: &'a str, limits: [u64; 3], delta: [f64; 3]) -> BoxFuture<'a, Result<(), LimitError>>;
    /// Holds off every caller for `d`.
    fn cool<'a>(&'a self, key: &'a str, d: Duration) -> BoxFuture<'a, Result<(), LimitError>>;
}

fn interval(limit: u64) -> f64 {
    60_000.0 / (limit as f64 * HEADROOM)
}

/// The same algorithm as `lua/limit.lua`, for one process.
#[derive(Debug, Default, Clone)]
struct Gcra {
    tat: [f64; 3],
    cool: f64,
}

pub struct LocalLimiter {
    state: Mutex<HashMap<String, Gcra>>,
    epoch: Instant,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        LocalLimiter {
            state: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }
}

impl LocalLimiter {
    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64() * 1000.0
    }
}

impl Limiter for LocalLimiter {
    fn take<'a>(&'a self, key: &'a str, limits: [u64; 3], cost: [f64; 3]) -> BoxFuture<'a, Result<u64, LimitError>> {
        let now = self.now();
        let mut st = self.state.lock().expect("lock");
        let g = st.entry(key.to_string()).or_default();
        let mut wait = (g.cool - now).max(0.0);
        for (tat, &lim) in g.tat.iter().zip(&limits) {
            if lim > 0 {
                wait = wait.max(tat - now);
            }
        }
        let r = if wait > 0.0 {
            wait.ceil() as u64
        } else {
            for ((tat, &lim), c) in g.tat.iter_mut().zip(&limits).zip(cost) {
                if lim > 0 {
                    *tat = tat.max(now) + c * interval(lim);
                }
            }
            0
        };
        Box::pin(async move { Ok(r) })
    }

    fn settle<'a>(&'a self, key: &'a str, limits: [u64; 3], delta: [f64; 3]) -> BoxFuture<'a, Result<(), LimitError>> {
        let mut st = self.state.lock().expect("lock");
        let g = st.entry(key.to_string()).or_default();
        for ((tat, &lim), dt) in g.tat.iter_mut().zip(&limits).zip(delta) {
            if lim > 0 {
                *tat += dt * interval(lim);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn cool<'a>(&'a self, key: &'a str, d: Duration) -> BoxFuture<'a, Result<(), LimitError>> {
        let until = self.now() + d.as_secs_f64() * 1000.0;
        let mut st = self.state.lock().expect("lock");
        let g = st.entry(key.to_string()).or_default();
        g.cool = g.cool.max(until);
        Box::pin(async { Ok(()) })
    }
}

/// Concurrency that adapts when no limit is configured: additive increase
/// on success (about one more call in flight per round of calls),
/// multiplicative decrease on a 429.
pub struct Aimd {
    state: Mutex<(f64, usize)>,
    notify: tokio::sync::Notify,
}

/// Where an adaptive limit starts, and its bounds.
const AIMD_START: f64 = 8.0;
const AIMD_MAX: f64 = 1024.0;

impl Default for Aimd {
    fn default() -> Self {
        Aimd {
            state: Mutex::new((AIMD_START, 0)),
            notify: tokio::sync::Notify::new(),
        }
    }
}

impl Aimd {
    pub fn limit(&self) -> f64 {
        self.state.lock().expect("lock").0
    }

    /// Waits for room under the current limit and takes it.
    pub async fn acquire(&self) {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().expect("lock");
                if (s.1 as f64) < s.0.floor() {
                    s.1 += 1;
                    return;
                }
            }
            notified.await;
        }
    }

    /// Gives the room back, adjusting the limit by how the call went.
    pub fn release(&self, rate_limited: bool) {
        {
            let mut s = self.state.lock().expect("lock");
            s.1 = s.1.saturating_sub(1);
            s.0 = if rate_limited {
                (s.0 / 2.0).max(1.0)
            } else {
                (s.0 + 1.0 / s.0).min(AIMD_MAX)
            };
        }
        self.notify.notify_waiters();
    }
}

/// The layer.
pub struct RateLimited {
    pub inner: Arc<dyn Backend>,
    pub limiter: Arc<dyn Limiter>,
    pub key: String,
    /// The spec's limits; all 0 when it sets none.
    pub limits: [u64; 3],
    /// Limits announced by the provider, used when the spec sets none.
    pub learnt: Mutex<[u64; 3]>,
    /// Adaptive concurrency, when the spec sets no limit.
    pub aimd: Aimd,
    /// Calls made before any limit was known.
    unpaced: std::sync::atomic::AtomicU64,
    /// Whether the provider leaves cache reads out of its input limit (Anthropic).
    pub reads_are_free: bool,
    /// Input tokens the last answered call read from the provider's cache:
    /// the next call's estimate leaves them out.
    last_cache_read: std::sync::atomic::AtomicU64,
    /// Held by the one call that goes first while no reply has told how
    /// much the cache reads: every call then estimating the whole prompt
    /// would hold the budget for what they give back only when answered.
    probe: tokio::sync::Mutex<()>,
    answered: std::sync::atomic::AtomicBool,
}

impl RateLimited {
    pub fn new(inner: Arc<dyn Backend>, limiter: Arc<dyn Limiter>, key: String, limits: [u64; 3]) -> Self {
        RateLimited {
            inner,
            limiter,
            key,
            limits,
            learnt: Mutex::new([0; 3]),
            aimd: Aimd::default(),
            unpaced: std::sync::atomic::AtomicU64::new(0),
            reads_are_free: false,
            last_cache_read: std::sync::atomic::AtomicU64::new(0),
            probe: tokio::sync::Mutex::new(()),
            answered: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Learns the limits a reply's headers announce, when the spec sets none.
    async fn learn(&self, reply: &ChatReply) {
        if self.configured() || reply.limits.iter().all(|&l| l == 0) {
            return;
        }
        let first = {
            let mut learnt = self.learnt.lock().expect("lock");
            let first = learnt.iter().all(|&l| l == 0);
            for (l, &new) in learnt.iter_mut().zip(&reply.limits) {
                if new > 0 {
                    *l = new;
                }
            }
            first.then_some(*learnt)
        };
        // The calls made before the limit was known count against it.
        if let Some(learnt) = first {
            let n = self.unpaced.swap(0, std::sync::atomic::Ordering::Relaxed) as f64;
            let _ = self.limiter.take(&self.key, learnt, [n, 0.0, 0.0]).await;
        }
    }

    /// Input tokens of `u` as the provider's input limit counts them.
    fn counted_input(&self, u: &candor_core::Usage) -> f64 {
        if self.reads_are_free {
            u.input_tokens.saturating_sub(u.cache_read_input_tokens) as f64
        } else {
            u.input_tokens as f64
        }
    }

    fn configured(&self) -> bool {
        self.limits.iter().any(|&l| l > 0)
    }

    fn effective(&self) -> [u64; 3] {
        if self.configured() {
            self.limits
        } else {
            *self.learnt.lock().expect("lock")
        }
    }
}

fn tokens(bytes: usize) -> f64 {
    (bytes as f64 / 4.0).ceil()
}

impl Backend for RateLimited {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            // Until a reply has told what the cache reads, calls go one at a time.
            let _probe = match self.reads_are_free && !self.answered.load(std::sync::atomic::Ordering::Acquire) {
                true => Some(self.probe.lock().await),
                false => None,
            };
            let prompt = tokens(req.system.len() + req.messages.iter().map(|m| m.content.len()).sum::<usize>());
            let est_in = if self.reads_are_free {
                let read = self.last_cache_read.load(std::sync::atomic::Ordering::Relaxed) as f64;
                (prompt - read).max(0.0)
            } else {
                prompt
            };
            let est_out = req.params.max_tokens.map_or(OUTPUT_ESTIMATE, u64::from) as f64;
            let adaptive = !self.configured();
            if adaptive {
                self.aimd.acquire().await;
            }
            let limits = self.effective();
            if limits.iter().all(|&l| l == 0) {
                self.unpaced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            loop {
                match self.limiter.take(&self.key, limits, [1.0, est_in, est_out]).await {
                    Ok(0) => break,
                    Ok(wait) => tokio::time::sleep(Duration::from_millis(wait.min(60_000))).await,
                    Err(e) => {
                        if adaptive {
                            self.aimd.release(false);
                        }
                        return Err(BackendError::Retryable {
                            message: format!("the shared rate limiter is unavailable: {e}"),
                            retry_after: None,
                            kind: candor_core::ErrorKind::Transport,
                        });
                    }
                }
            }
            let r = self.inner.complete(req).await;
            if adaptive {
                self.aimd.release(matches!(r, Err(BackendError::RateLimited { .. })));
            }
            match &r {
                Ok(reply) => {
                    self.learn(reply).await;
                    self.last_cache_read.store(
                        reply.usage.cache_read_input_tokens,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    self.answered.store(true, std::sync::atomic::Ordering::Release);
                    let used_out = reply.usage.output_tokens as f64;
                    let delta = [0.0, self.counted_input(&reply.usage) - est_in, used_out - est_out];
                    if let Err(e) = self.limiter.settle(&self.key, limits, delta).await {
                        tracing::warn!(error = %e, "correcting the rate-limit estimate failed");
                    }
                }
                Err(BackendError::RateLimited { retry_after, .. }) => {
                    let d = retry_after.unwrap_or(Duration::from_secs(1));
                    if let Err(e) = self.limiter.cool(&self.key, d).await {
                        tracing::warn!(error = %e, "sharing a 429 cooldown failed");
                    }
                }
                Err(_) => {}
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spaced_to_fit_the_limit_and_a_cooldown_holds_everyone() {
        let l = LocalLimiter::default();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            // 60 rpm: the first is granted, the second waits about a second.
            assert_eq!(l.take("k", [60, 0, 0], [1.0, 0.0, 0.0]).await.ok(), Some(0));
            let w = l.take("k", [60, 0, 0], [1.0, 0.0, 0.0]).await.unwrap();
            assert!((1000..=1030).contains(&w), "{w}");
            // Other keys have their own budget.
            assert_eq!(l.take("other", [60, 0, 0], [1.0, 0.0, 0.0]).await.ok(), Some(0));
            // Tokens: 6000 tokens at 60000 tpm hold the budget about 6 s.
            assert_eq!(l.take("t", [0, 60_000, 0], [1.0, 6000.0, 0.0]).await.ok(), Some(0));
            let w = l.take("t", [0, 60_000, 0], [1.0, 10.0, 0.0]).await.unwrap();
            assert!((6000..=6200).contains(&w), "{w}");
            // Reporting fewer tokens than estimated gives them back.
            l.settle("t", [0, 60_000, 0], [0.0, -6000.0, 0.0]).await.unwrap();
            assert_eq!(l.take("t", [0, 60_000, 0], [1.0, 10.0, 0.0]).await.ok(), Some(0));
            // A cooldown holds off even an unlimited key.
            l.cool("c", Duration::from_secs(2)).await.unwrap();
            let w = l.take("c", [0, 0, 0], [1.0, 0.0, 0.0]).await.unwrap();
            assert!((1900..=2000).contains(&w), "{w}");
        });
    }

    /// A backend whose every reply read `read` of its `input` tokens from the cache.
    struct CacheHits {
        input: u64,
        read: u64,
    }

    impl Backend for CacheHits {
        fn complete<'a>(&'a self, _: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
            let usage = candor_core::Usage {
                input_tokens: self.input,
                cache_read_input_tokens: self.read,
                ..candor_core::Usage::tokens(0, 10)
            };
            Box::pin(async move {
                Ok(ChatReply {
                    text: String::new(),
                    reasoning: None,
                    usage,
                    stop_reason: None,
                    cached: false,
                    limits: [0; 3],
                })
            })
        }
    }

    #[test]
    fn cache_reads_do_not_count_against_an_anthropic_input_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let m = candor_core::spec::ModelEntry::simulated("m", "m", None);
        let system = "s".repeat(4400); // 1100 tokens
        let msgs = [candor_core::Message::user("")];
        let req = ChatRequest {
            model: &m,
            system: &system,
            messages: &msgs,
            params: &m.params,
            job_id: candor_core::JobId([0; 16]),
            seed: 0,
            turn: 1,
            attempt: 1,
            condition: "a",
            judge: None,
        };
        // 60,000 input tokens a minute: about a millisecond a token.
        let limits = [0, 60_000, 0];
        for (reads_are_free, charged) in [(true, 100.0), (false, 1100.0)] {
            let limiter: Arc<dyn Limiter> = Arc::new(LocalLimiter::default());
            let inner = Arc::new(CacheHits {
                input: 1100,
                read: 1000,
            });
            let mut layer = RateLimited::new(inner, limiter.clone(), "k".into(), limits);
            layer.reads_are_free = reads_are_free;
            rt.block_on(async {
                layer.complete(req).await.unwrap();
                // What the call left charged shows as the wait before the next token.
                let wait = limiter.take("k", limits, [1.0, 1.0, 0.0]).await.unwrap() as f64;
                let per_token = 60_000.0 / (60_000.0 * HEADROOM);
                assert!(
                    (wait - charged * per_token).abs() < 15.0,
                    "{reads_are_free}: waited {wait} ms"
                );
            });
        }
    }

    #[test]
    fn adaptive_concurrency_halves_on_429_and_creeps_up_on_success() {
        let a = Aimd::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..8 {
                a.acquire().await;
            }
            // The ninth waits until one is released.
            let blocked = tokio::time::timeout(Duration::from_millis(50), a.acquire()).await;
            assert!(blocked.is_err(), "the limit of 8 holds");
            a.release(true);
            assert_eq!(a.limit(), 4.0);
            for _ in 0..7 {
                a.release(false);
            }
            assert!(a.limit() > 4.0 && a.limit() < 6.0, "{}", a.limit());
        });
    }
}

//! Counting a provider's answers: the innermost layer around a backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};

/// Answers of the model APIs to this process, by outcome: every HTTP call,
/// retries included, so a rate-limited call counts once per 429.
#[derive(Debug)]
pub struct CallCounts {
    pub ok: AtomicU64,
    pub rate_limited: AtomicU64,
    pub error: AtomicU64,
}

pub static CALLS: CallCounts = CallCounts {
    ok: AtomicU64::new(0),
    rate_limited: AtomicU64::new(0),
    error: AtomicU64::new(0),
};

/// The layer that counts a provider's answers into [`CALLS`]; it sits
/// right around the provider, inside the retries and the rate limits.
pub struct Counted(pub Arc<dyn Backend>);

impl Backend for Counted {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let r = self.0.complete(req).await;
            let c = match &r {
                Ok(_) => &CALLS.ok,
                Err(BackendError::RateLimited { .. }) => &CALLS.rate_limited,
                Err(_) => &CALLS.error,
            };
            c.fetch_add(1, Ordering::Relaxed);
            r
        })
    }
}

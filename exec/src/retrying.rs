//! Retrying a model call: a layer around any backend. A retryable failure
//! (429, 5xx, 529, a timeout, a cut or garbled body) is tried again after a
//! capped, jittered exponential backoff, or after the provider's
//! `retry-after` if that is longer; other failures return at once.

use std::sync::Arc;

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};

pub struct Retrying {
    inner: Arc<dyn Backend>,
    /// Tries per call, the first included.
    tries: u32,
}

impl Retrying {
    pub fn new(inner: Arc<dyn Backend>, tries: u32) -> Self {
        Retrying {
            inner,
            tries: tries.max(1),
        }
    }
}

impl Backend for Retrying {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let salt = u64::from_le_bytes(req.job_id.0[..8].try_into().expect("8 bytes")) ^ u64::from(req.turn);
            let mut n = 1;
            loop {
                match self.inner.complete(req).await {
                    Err(
                        BackendError::Retryable {
                            message, retry_after, ..
                        }
                        | BackendError::RateLimited { message, retry_after },
                    ) if n < self.tries => {
                        let wait = candor_core::retry::backoff(n, salt).max(retry_after.unwrap_or_default());
                        tracing::debug!(error = %message, wait_ms = wait.as_millis() as u64, try_ = n, "retrying a model call");
                        tokio::time::sleep(wait).await;
                        n += 1;
                    }
                    other => return other,
                }
            }
        })
    }
}

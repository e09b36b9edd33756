//! Counting a provider's answers: the innermost layer around a backend.

use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};

/// The family's name; the encoder adds `_total`.
pub const BACKEND_CALLS: &str = "candor_backend_calls";

/// How a model API answered one HTTP call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    Ok,
    RateLimited,
    Error,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 3] = [CallOutcome::Ok, CallOutcome::RateLimited, CallOutcome::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::RateLimited => "rate_limited",
            CallOutcome::Error => "error",
        }
    }
}

impl EncodeLabelValue for CallOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CallLabels {
    pub outcome: CallOutcome,
}

/// Answers of the model APIs to this process, by outcome: every HTTP call,
/// retries included, so a rate-limited call counts once per 429. One per
/// process rather than per executor: every executor's calls go to the same
/// providers and the same quotas, and executors come and go with sweeps.
pub static CALLS: LazyLock<Family<CallLabels, Counter>> = LazyLock::new(|| {
    let f = Family::default();
    // Every outcome is exported from the start, at 0, so a rate over it
    // is defined before the first error.
    for outcome in CallOutcome::ALL {
        let _ = f.get_or_create(&CallLabels { outcome });
    }
    f
});

/// Registers [`CALLS`] in a service's registry (the worker's).
pub fn register(registry: &mut Registry) {
    registry.register(
        BACKEND_CALLS,
        "Answers of the model APIs, by outcome (retries included)",
        CALLS.clone(),
    );
}

/// The layer that counts a provider's answers into [`CALLS`]; it sits
/// right around the provider, inside the retries and the rate limits.
pub struct Counted(pub Arc<dyn Backend>);

impl Backend for Counted {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let r = self.0.complete(req).await;
            let outcome = match &r {
                Ok(_) => CallOutcome::Ok,
                Err(BackendError::RateLimited { .. }) => CallOutcome::RateLimited,
                Err(_) => CallOutcome::Error,
            };
            CALLS.get_or_create(&CallLabels { outcome }).inc();
            r
        })
    }
}

//! The model backend trait. A backend takes a conversation and returns the
//! model's next assistant turn.

use std::future::Future;
use std::pin::Pin;

use candor_core::judge::Ask;
use candor_core::spec::{ModelEntry, Params};
use candor_core::{ErrorKind, JobId, Message, Reasoning, Usage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One call to a model.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    pub model: &'a ModelEntry,
    pub system: &'a str,
    /// Alternating user / assistant turns; a trailing assistant turn is a
    /// prefill the reply continues.
    pub messages: &'a [Message],
    pub params: &'a Params,
    pub job_id: JobId,
    pub seed: u32,
    /// 1-based number of this call within the job.
    pub turn: u32,
    /// 1-based attempt of the whole job (a retried job starts again).
    pub attempt: u32,
    /// The condition's name. Real models never see it; the simulated model
    /// uses it to pick its configured behaviour.
    pub condition: &'a str,
    /// Set when the call asks a judge for a verdict; real models never see
    /// it, the simulated model answers as a judge.
    pub judge: Option<Ask>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReply {
    /// The new text (after any prefill), without the model's reasoning.
    pub text: String,
    /// The model's own reasoning, when the provider returned it.
    pub reasoning: Option<Reasoning>,
    pub usage: Usage,
    /// Why the model stopped, as the provider said it.
    pub stop_reason: Option<String>,
    /// Answered from the response cache, not by the model.
    pub cached: bool,
    /// Per-minute limits the provider announced in its headers (requests,
    /// input tokens, output tokens; 0: not announced).
    pub limits: [u64; 3],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The call failed and trying again will not help (a 400, a 404).
    #[error("{message}")]
    Failed { message: String, kind: ErrorKind },
    /// The call failed in a way that passes (a 429, overload, a server
    /// error, a timeout, a cut or garbled body): try again later, not before
    /// `retry_after` if the provider said so.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<std::time::Duration>,
        kind: ErrorKind,
    },
    /// The provider answered 429: retryable, and every caller of this
    /// (backend, key, model) should hold off until `retry_after`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// The provider refused the credentials (401, 403) or there are none.
    #[error("{message}")]
    Unauthorized { message: String },
}

impl BackendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, BackendError::Retryable { .. } | BackendError::RateLimited { .. })
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Failed { kind, .. } | BackendError::Retryable { kind, .. } => *kind,
            BackendError::RateLimited { .. } => ErrorKind::RateLimited,
            BackendError::Unauthorized { .. } => ErrorKind::Unauthorized,
        }
    }

    /// The same error, its message starting with `what` (what was called);
    /// a refused key keeps "check the API key for model X" first and names
    /// the call at the end.
    pub fn context(mut self, what: &str) -> BackendError {
        match &mut self {
            BackendError::Unauthorized { message } => *message = format!("{message} ({what})"),
            BackendError::Failed { message, .. }
            | BackendError::Retryable { message, .. }
            | BackendError::RateLimited { message, .. } => *message = format!("{what}: {message}"),
        }
        self
    }
}

pub trait Backend: Send + Sync {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>>;
}

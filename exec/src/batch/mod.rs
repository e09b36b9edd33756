//! The providers' batch APIs, as clients: submit a batch of requests (each
//! the body the realtime endpoint would get, under a `custom_id`), follow
//! its status, read its results as they are documented, cancel it.
//! [`anthropic`] speaks the Message Batches API, [`openai`] the Batch API
//! with its input and output files. Both read results line by line, so a
//! batch of any size is read with the memory of one line.
//!
//! Nothing here decides what to batch or keeps track of submitted batches:
//! that is the caller's (it must record a batch before it can be lost).

pub mod anthropic;
pub mod journal;
pub mod openai;
pub mod stats;

use candor_core::ErrorKind;

use crate::backend::{BackendError, ChatReply, ChatRequest};
use crate::http::{body, status_error, transport};

/// The longest line of a results file read.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One request of a batch: its id in the batch and the realtime body.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub custom_id: String,
    pub body: serde_json::Value,
}

/// Where a batch is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStatus {
    pub id: String,
    /// Processing has ended: every request has its outcome.
    pub ended: bool,
    pub processing: u64,
    pub succeeded: u64,
    pub errored: u64,
    pub expired: u64,
    pub canceled: u64,
}

/// What became of one request.
#[derive(Debug)]
pub enum Outcome {
    Succeeded(ChatReply),
    /// The provider's error for it (or a reply that could not be read).
    Errored(BackendError),
    /// The batch's window ran out before the request was processed.
    Expired,
    Canceled,
}

/// A provider's batch API.
pub enum Api {
    Anthropic(anthropic::Batches),
    OpenAi(openai::Batches),
}

impl Api {
    pub(crate) fn body(&self, req: &ChatRequest<'_>) -> serde_json::Value {
        match self {
            Api::Anthropic(_) => crate::anthropic::request_body(req),
            Api::OpenAi(_) => crate::openai::request_body(req),
        }
    }

    pub(crate) fn limits(&self) -> (usize, usize) {
        match self {
            Api::Anthropic(_) => (anthropic::MAX_REQUESTS, anthropic::MAX_BYTES),
            Api::OpenAi(_) => (openai::MAX_REQUESTS, openai::MAX_BYTES),
        }
    }

    pub(crate) async fn submit(&self, reqs: &[BatchRequest], key: &str) -> Result<String, BackendError> {
        match self {
            Api::Anthropic(b) => b.submit(reqs).await,
            Api::OpenAi(b) => b.submit(reqs, key).await,
        }
    }

    /// The batch created under `key`, when the provider can say (OpenAI).
    pub(crate) async fn find(&self, key: &str) -> Result<Option<String>, BackendError> {
        match self {
            Api::Anthropic(_) => Ok(None),
            Api::OpenAi(b) => b.find(key, 10).await,
        }
    }

    pub(crate) async fn status(&self, id: &str) -> Result<BatchStatus, BackendError> {
        match self {
            Api::Anthropic(b) => b.status(id).await,
            Api::OpenAi(b) => b.status(id).await,
        }
    }

    pub(crate) async fn results(&self, id: &str, f: impl FnMut(String, Outcome)) -> Result<(), BackendError> {
        match self {
            Api::Anthropic(b) => b.results(id, f).await,
            Api::OpenAi(b) => b.results(id, f).await,
        }
    }

    pub async fn cancel(&self, id: &str) -> Result<(), BackendError> {
        match self {
            Api::Anthropic(b) => b.cancel(id).await,
            Api::OpenAi(b) => b.cancel(id).await,
        }
    }
}

/// Sends a request of the batch API and reads its whole (bounded) body.
async fn send(what: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>, BackendError> {
    let resp = request.send().await.map_err(|e| transport(e).context(what))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = body(resp).await.map_err(|e| e.context(what))?;
    if !(200..300).contains(&status) {
        return Err(status_error("batch", status, &headers, &bytes).context(what));
    }
    Ok(bytes)
}

/// Sends a request and calls `f` with each non-empty line of the answer,
/// reading it chunk by chunk.
async fn lines(
    what: &str,
    request: reqwest::RequestBuilder,
    mut f: impl FnMut(&[u8]) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    let mut resp = request.send().await.map_err(|e| transport(e).context(what))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let headers = resp.headers().clone();
        let bytes = body(resp).await.map_err(|e| e.context(what))?;
        return Err(status_error("batch", status, &headers, &bytes).context(what));
    }
    let mut line = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| transport(e).context(what))?;
        let Some(chunk) = chunk else { break };
        for part in chunk.split_inclusive(|&b| b == b'\n') {
            line.extend_from_slice(part);
            if line.len() > MAX_LINE_BYTES {
                return Err(too_large(what));
            }
            if line.ends_with(b"\n") {
                if line.iter().any(|b| !b.is_ascii_whitespace()) {
                    f(&line)?;
                }
                line.clear();
            }
        }
    }
    if line.iter().any(|b| !b.is_ascii_whitespace()) {
        f(&line)?;
    }
    Ok(())
}

fn too_large(what: &str) -> BackendError {
    BackendError::Failed {
        message: format!("{what}: a line of the results is larger than {MAX_LINE_BYTES} bytes"),
        kind: ErrorKind::TooLarge,
    }
}

/// A JSON field that must be there.
fn field<'a>(v: &'a serde_json::Value, name: &str, what: &str) -> Result<&'a serde_json::Value, BackendError> {
    v.get(name)
        .ok_or_else(|| crate::http::malformed(&format!("{what}: no `{name}`")))
}

fn parse(bytes: &[u8], what: &str) -> Result<serde_json::Value, BackendError> {
    serde_json::from_slice(bytes).map_err(|e| crate::http::malformed(&format!("{what}: {e}")))
}

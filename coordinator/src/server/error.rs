//! What can go wrong serving an RPC, and the one place that decides which
//! `tonic::Code` each failure is sent as. Handlers return [`ServerError`];
//! only [`reply`] (and the streams, through the same `From`) turns it into a
//! `Status`, so a code is never chosen by hand at a call site. The client
//! derives its exit codes from these codes (InvalidArgument 2,
//! Unauthenticated 3, NotFound 4, Unavailable 5).

use candor_core::SpecError;
use candor_core::early::TableTooLarge;
use candor_queue::QueueError;
use tonic::{Code, Response, Status};

use super::{MAX_BUNDLE_BYTES, MAX_RENEWALS};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A sweep id that is not 1 to 64 ASCII letters and digits.
    #[error("sweep_id: not a sweep id")]
    NotASweepId,
    /// A required message field was left out.
    #[error("{0}: missing")]
    Missing(&'static str),
    #[error("bundle: larger than {MAX_BUNDLE_BYTES} bytes")]
    BundleTooLarge,
    /// The submitted bundle does not make a sweep.
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "the sweep has {jobs} jobs; a distributed sweep may have at most {max}",
        max = candor_queue::MAX_JOBS
    )]
    TooManyJobs { jobs: u64 },
    /// Early stopping's decision table would not fit in Redis.
    #[error(transparent)]
    TableTooLarge(#[from] TableTooLarge),
    #[error("jobs: at most {MAX_RENEWALS} per call")]
    TooManyRenewals,
    #[error("no sweep with id {0}")]
    NotFound(String),
    /// A worker sent a result that is not one.
    #[error("{0}")]
    BadResult(QueueError),
    /// Deleting a sweep that still runs or waits.
    #[error("sweep {id} is {state}; cancel it first (`candor cancel {id}`)")]
    StillActive { id: String, state: String },
    /// Redis or the archive is unreachable or restarting: the caller should try again.
    #[error("the sweep store is unavailable: {0}")]
    Unavailable(#[source] QueueError),
    /// Any other failure of the sweep store. Built through `From<QueueError>`,
    /// which sorts out the not-found and transient cases first.
    #[error(transparent)]
    Queue(QueueError),
    /// A bundle in Redis that no longer builds (it was checked at submit).
    #[error("stored bundle of {id}: {source}")]
    StoredBundle {
        id: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ServerError {
    /// The code a client sees. No wildcard arm: a new variant must say its
    /// code here.
    pub fn code(&self) -> Code {
        use ServerError as E;
        match self {
            E::NotASweepId
            | E::Missing(_)
            | E::BundleTooLarge
            | E::Spec(_)
            | E::TooManyJobs { .. }
            | E::TableTooLarge(_)
            | E::TooManyRenewals
            | E::BadResult(_) => Code::InvalidArgument,
            E::NotFound(_) => Code::NotFound,
            E::StillActive { .. } => Code::FailedPrecondition,
            E::Unavailable(_) => Code::Unavailable,
            E::Queue(_) | E::StoredBundle { .. } => Code::Internal,
        }
    }

    pub(super) fn stored_bundle(id: &str, e: impl std::error::Error + Send + Sync + 'static) -> ServerError {
        ServerError::StoredBundle {
            id: id.to_string(),
            source: Box::new(e),
        }
    }
}

impl From<QueueError> for ServerError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NoSuchSweep(id) => ServerError::NotFound(id),
            e @ QueueError::BadResult { .. } => ServerError::BadResult(e),
            e if e.is_transient() => ServerError::Unavailable(e),
            e => ServerError::Queue(e),
        }
    }
}

impl From<ServerError> for Status {
    fn from(e: ServerError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

/// A handler's answer as tonic wants it.
pub(super) fn reply<T>(r: Result<T, ServerError>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

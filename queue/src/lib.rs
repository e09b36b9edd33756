//! candor's distributed sweep state, all of it in Redis. Every change is one
//! Lua script, so it is atomic however many coordinators and workers share
//! the Redis: a job is leased under a fencing token, its result is recorded
//! at most once (a bitmap of finished jobs), and a result from a lease that
//! has since been handed to someone else is refused. The state of a sweep
//! grows with the jobs in flight and the results, never with jobs not yet
//! started: those are just the numbers past the sweep's cursor. Each
//! sweep's journal of provider batches is kept beside its jobs (`batches`).
//!
//! The key layout is documented at the top of `lua/common.lua`.

mod archived;
mod batches;
mod limit;
mod scripts;
mod state;
mod sweep;

use redis::aio::ConnectionManager;

pub use archived::RecordedBatch;
use scripts::Scripts;
pub use state::{FailureCount, SweepState};
pub use sweep::{Completion, FailKind, FailOutcome, Failure, JobRef, JobStatus, Lease, NewSweep, Recorded};

/// The most jobs a distributed sweep may have (one bit each in Redis).
pub const MAX_JOBS: u64 = 1 << 32;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no sweep with id {0}")]
    NoSuchSweep(String),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    #[error(transparent)]
    Archive(#[from] candor_archive::ArchiveError),
    #[error("result of job {index} is not a result: {reason}")]
    BadResult { index: u64, reason: String },
}

impl QueueError {
    /// True when the error is Redis being unreachable or restarting, which
    /// passes: the caller should try again.
    pub fn is_transient(&self) -> bool {
        match self {
            QueueError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || matches!(e.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading))
            }
            // The object store: S3 or a volume away or full.
            QueueError::Archive(_) => true,
            _ => false,
        }
    }
}

/// A handle on the sweep state. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct Queue {
    con: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
}

impl Queue {
    /// Connects to Redis at `url` (`redis://` or `rediss://`, with a password
    /// if the server wants one). `ca` is a PEM certificate to trust for
    /// `rediss://` instead of the public web roots.
    pub async fn connect(url: &str, ca: Option<Vec<u8>>) -> Result<Queue, QueueError> {
        let client = match ca {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_response_timeout(Some(std::time::Duration::from_secs(10)))
            .set_number_of_retries(2);
        let con = ConnectionManager::new_with_config(client, config).await?;
        Ok(Queue {
            con,
            scripts: std::sync::Arc::new(Scripts::load()),
        })
    }

    /// The connection, for other users of the same Redis (the response cache).
    pub fn connection(&self) -> ConnectionManager {
        self.con.clone()
    }

    /// The identity of the archive this Redis's sweeps keep their results
    /// in (see `candor_archive::Archive::identity`), once a coordinator set it.
    pub async fn archive_identity(&self) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(redis::cmd("GET").arg("candor:archive").query_async(&mut con).await?)
    }

    /// Sets the archive identity unless one is set; answers the one set.
    pub async fn claim_archive_identity(&self, id: &str) -> Result<String, QueueError> {
        let mut con = self.con.clone();
        let _: Option<String> = redis::cmd("SET")
            .arg("candor:archive")
            .arg(id)
            .arg("NX")
            .query_async(&mut con)
            .await?;
        Ok(self.archive_identity().await?.unwrap_or_else(|| id.to_string()))
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut con = self.con.clone();
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        Ok(())
    }
}

//! The gRPC coordinator. It keeps no state of its own: every request reads
//! or changes the sweep state in Redis through `candor-queue`, so it can be
//! killed and restarted at any moment, and two of them can run side by side.
//!
//! Fairness: leases are handed out round-robin over the running sweeps, each
//! getting an even share of a worker's free slots (see `lua/lease.lua`).
//!
//! By what it serves: `sweeps` (the client-facing service), `workers` (the
//! fleet-facing one), `reaper` (dead-letters jobs whose workers died),
//! `tally` (a sweep's status and report from the counters in Redis), `error`
//! (every failure and its `tonic::Code`). This module holds what they share:
//! the [`Coordinator`], its cache of loaded sweeps, and [`serve`], which puts
//! every RPC through one interceptor that checks the token and counts it.

mod archive;
mod error;
mod reaper;
mod sweeps;
mod tally;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candor_core::Sweep;
use candor_core::spec::Bundle;
use candor_exec::Executor;
use candor_proto::auth::Check;
use candor_queue::{Queue, QueueError, SweepState};
use tonic::service::Interceptor;
use tonic::{Request, Status};

pub use archive::LiveParts;
pub use error::ServerError;
pub use sweeps::SweepsApi;
pub use workers::WorkersApi;

use crate::metrics::Metrics;

/// The largest submitted bundle.
pub const MAX_BUNDLE_BYTES: usize = 300 * 1024 * 1024;
/// The most leases one renewal may name.
const MAX_RENEWALS: usize = 100_000;
/// Sweeps kept loaded in memory (a cache; Redis has them all).
const CACHE: usize = 64;

#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// Where the results are.
    pub archive: candor_archive::Archive,
    /// How long an ended sweep is kept before it is deleted (None: until `candor delete`).
    pub retention: Option<Duration>,
    /// How old an archive part must be before it may be collected as garbage.
    pub gc_grace: Duration,
}

/// The coordinator's shared parts.
pub struct Coordinator {
    queue: Queue,
    settings: Settings,
    executors: Mutex<HashMap<String, Arc<Executor>>>,
    pub metrics: Arc<Metrics>,
}

impl Coordinator {
    pub fn new(queue: Queue, settings: Settings) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            queue,
            settings,
            executors: Mutex::new(HashMap::new()),
            metrics: Arc::new(Metrics::default()),
        })
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn archive(&self) -> &candor_archive::Archive {
        &self.settings.archive
    }

    /// The bundle of sweep `id` as submit stored it.
    async fn bundle(&self, id: &str) -> Result<Bundle, ServerError> {
        let json = self
            .queue
            .bundle(id)
            .await?
            .ok_or_else(|| ServerError::NotFound(id.to_string()))?;
        serde_json::from_str(&json).map_err(|e| ServerError::stored_bundle(id, e))
    }

    /// The loaded sweep `id`, from the cache or from its bundle in Redis.
    async fn executor(&self, id: &str) -> Result<Arc<Executor>, ServerError> {
        if let Some(e) = self.executors.lock().expect("cache lock").get(id) {
            return Ok(e.clone());
        }
        let bundle = self.bundle(id).await?;
        // Submit checked the bundle before it stored it: build it again
        // without the checks.
        let sweep = Sweep::from_checked_bundle(&bundle, id).map_err(|e| ServerError::stored_bundle(id, e))?;
        Ok(self.cache(id, sweep))
    }

    /// Caches the loaded sweep `id` in an executor, for reports and dead letters.
    fn cache(&self, id: &str, sweep: Sweep) -> Arc<Executor> {
        // Only used to write dead letters' failed results: it calls no model.
        let ex = Arc::new(Executor::new(
            Arc::new(sweep),
            Arc::new(candor_exec::limit::LocalLimiter::default()),
            None,
            Arc::new(tokio::sync::Semaphore::new(1)),
            None,
        ));
        let mut cache = self.executors.lock().expect("cache lock");
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(id.to_string(), ex.clone());
        ex
    }

    async fn state(&self, id: &str) -> Result<SweepState, ServerError> {
        self.queue
            .state(id)
            .await?
            .ok_or_else(|| ServerError::NotFound(id.to_string()))
    }

    /// Every sweep's state, for metrics.
    pub async fn all_states(&self) -> Result<Vec<SweepState>, QueueError> {
        let mut out = Vec::new();
        for id in self.queue.list().await? {
            if let Some(s) = self.queue.state(&id).await? {
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// `id` if it can be a sweep id; both services take them from requests.
fn sweep_id(id: &str) -> Result<&str, ServerError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(ServerError::NotASweepId)
    }
}

/// What every RPC passes before its handler: the bearer token is checked,
/// then the RPC is counted. One place, so no handler can forget to count;
/// after the check, so a refused call is not counted as served.
#[derive(Clone)]
struct Admit {
    check: Check,
    metrics: Arc<Metrics>,
}

impl Interceptor for Admit {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let req = self.check.call(req)?;
        self.metrics.rpc();
        Ok(req)
    }
}

/// Where and how the coordinator listens.
pub struct ServeOptions {
    pub listener: tokio::net::TcpListener,
    pub token: candor_proto::auth::Token,
    /// PEM certificate chain and key, to serve TLS.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("tls: {0}")]
    Tls(String),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves both gRPC services until `shutdown` resolves, and dead-letters
/// abandoned jobs in the background.
pub async fn serve(
    co: Arc<Coordinator>,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    use candor_proto::v1 as pb;
    use tonic::service::interceptor::InterceptedService;

    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .trace_fn(|req| tracing::info_span!("rpc", rpc.method = %req.uri().path()));
    if let Some((cert, key)) = opts.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let sweeps = pb::sweeps_server::SweepsServer::new(SweepsApi(co.clone()))
        .max_decoding_message_size(MAX_BUNDLE_BYTES + 1024 * 1024)
        .max_encoding_message_size(MAX_BUNDLE_BYTES + 1024 * 1024);
    let workers = pb::workers_server::WorkersServer::new(WorkersApi(co.clone()))
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(MAX_BUNDLE_BYTES + 1024 * 1024);
    let admit = Admit {
        check: Check(opts.token),
        metrics: co.metrics.clone(),
    };
    // Small RPCs (leases, renewals) must not wait on Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(opts.listener).with_nodelay(Some(true));
    let reaper = reaper::spawn(co);
    let result = builder
        .add_service(InterceptedService::new(sweeps, admit.clone()))
        .add_service(InterceptedService::new(workers, admit))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    reaper.abort();
    Ok(result?)
}

#[cfg(test)]
mod tests;

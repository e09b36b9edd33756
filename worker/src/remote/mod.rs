//! A worker process: leases batches of jobs from the coordinator, runs them
//! on the same executor as local runs, and records each result straight in
//! Redis (or through the coordinator when it has no Redis URL). Leases are
//! renewed while their jobs run; a lease lost to someone else cancels its
//! job. On shutdown it stops leasing, lets running jobs finish within a grace
//! period, and hands the rest back to be leased again at once.
//!
//! `run` starts the tasks: the `record` writer, the `renew`er, the `lease`
//! loop (which starts each leased `job`), then `shutdown`'s hand-back. They
//! share the `running` table and the `sweeps` loaded.

mod job;
mod lease;
mod record;
mod renew;
mod running;
mod shutdown;
mod sweeps;

use std::sync::Arc;
use std::time::Duration;

use candor_proto::auth::Attach;
use candor_proto::v1::workers_client::WorkersClient;
use candor_queue::Queue;
use tokio::sync::{mpsc, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::metrics::Metrics;
use record::Done;
use renew::LeaseTtl;
use running::Jobs;
use sweeps::Sweeps;

type Client = WorkersClient<InterceptedService<Channel, Attach>>;

pub struct RemoteOptions {
    pub channel: Channel,
    pub token: candor_proto::auth::Token,
    /// Record results straight in Redis; without it they go through the coordinator.
    pub redis: Option<Queue>,
    /// Where results are written before they are recorded in Redis (with `redis`).
    pub archive: Option<candor_archive::Archive>,
    pub concurrency: usize,
    /// Jobs being judged at once (the judge stage), besides `concurrency`
    /// jobs calling the models under test.
    pub judge_concurrency: usize,
    /// How long running jobs may take to finish after a shutdown signal.
    pub grace: Duration,
    pub worker_id: String,
    /// Answer repeated model calls from the response cache in Redis (needs `redis`).
    pub cache: bool,
    /// How long a response stays in the Redis cache.
    pub cache_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("coordinator: {0}")]
    Coordinator(tonic::Status),
}

/// What the worker's tasks share.
struct Shared {
    client: Client,
    /// Where results are written and recorded when the worker has Redis.
    direct: Option<(Queue, candor_archive::Archive)>,
    running: Jobs,
    sweeps: Sweeps,
    metrics: Arc<Metrics>,
    worker_id: String,
}

impl Shared {
    fn new(opts: &RemoteOptions, metrics: Arc<Metrics>) -> Shared {
        let client = WorkersClient::with_interceptor(opts.channel.clone(), Attach::new(&opts.token))
            .max_decoding_message_size(512 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024);
        Shared {
            client,
            sweeps: Sweeps::new(opts),
            direct: opts.redis.clone().zip(opts.archive.clone()),
            running: Jobs::default(),
            metrics,
            worker_id: opts.worker_id.clone(),
        }
    }
}

/// Waits that grow while a dependency is down.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(50))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
    }
}

/// Runs the worker until `stop` turns true, then drains and returns.
pub async fn run(
    opts: RemoteOptions,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let shared = Arc::new(Shared::new(&opts, metrics));
    let (done_tx, done_rx) = mpsc::channel::<Done>(record::DONE_QUEUE);
    let ttl = LeaseTtl::default();
    let writer = tokio::spawn(record::writer(shared.clone(), done_rx));
    let renewer = tokio::spawn(renew::renewer(shared.clone(), ttl.clone()));
    lease::lease_until_stopped(&shared, opts.concurrency, &ttl, &done_tx, &mut stop).await?;
    let released = shutdown::hand_back(&shared, opts.grace).await;
    renewer.abort();
    // The last results still waiting reach the writer, which ends once
    // every job's sender is gone.
    drop(done_tx);
    let _ = tokio::time::timeout(shutdown::LAST_RECORD, writer).await;
    tracing::info!(released, "worker stopped");
    Ok(())
}

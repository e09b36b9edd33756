//! A worker process: leases batches of jobs from the coordinator, runs them
//! on the same executor as local runs, and records each result straight in
//! Redis (or through the coordinator when it has no Redis URL). Leases are
//! renewed while their jobs run; a lease lost to someone else cancels its
//! job. On shutdown it stops leasing, lets running jobs finish within a grace
//! period, and hands the rest back to be leased again at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_core::Sweep;
use candor_core::spec::Bundle;
use candor_proto::auth::Attach;
use candor_proto::v1 as pb;
use candor_proto::v1::workers_client::WorkersClient;
use candor_queue::{Completion, FailKind, FailOutcome, Failure, Queue, Recorded};
use tokio::sync::{Semaphore, mpsc, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::cache::RedisCache;
use crate::limit::RedisLimiter;
use crate::metrics::{JobOutcome, Metrics};
use candor_exec::cache::Cache;
use candor_exec::execute::{Executed, Executor};
use candor_exec::limit::{Limiter, LocalLimiter};

type Client = WorkersClient<InterceptedService<Channel, Attach>>;

/// Results waiting to be recorded, at most.
const DONE_QUEUE: usize = 4096;
/// How often the renewer looks whether leases are due for renewal (a
/// third of the shortest lease time there may be, 300 ms).
const RENEW_TICK: Duration = Duration::from_millis(100);
/// How long the lease loop waits for a batch of free slots.
const LEASE_GATHER: Duration = Duration::from_millis(5);
/// Results recorded in one call, at most.
const WRITE_BATCH: usize = 512;

pub struct RemoteOptions {
    pub channel: Channel,
    pub token: candor_proto::auth::Token,
    /// Record results straight in Redis; without it they go through the coordinator.
    pub redis: Option<Queue>,
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

struct Running {
    fence: u64,
    attempt: u32,
    cell: u32,
    abort: Option<tokio::task::AbortHandle>,
}

type Key = (String, u64);

struct Shared {
    client: Client,
    /// Rate-limit budgets: in Redis when the worker has it, so the fleet shares them.
    limiter: Arc<dyn Limiter>,
    /// The response cache in Redis, when the worker has Redis and caching is on.
    cache: Option<Arc<dyn Cache>>,
    redis: Option<Queue>,
    running: Mutex<HashMap<Key, Running>>,
    executors: Mutex<HashMap<String, Arc<Executor>>>,
    metrics: Arc<Metrics>,
    worker_id: String,
    /// The judge stage: permits for jobs calling their judges.
    judge_slots: Arc<Semaphore>,
}

struct Done {
    sweep_id: String,
    fence: u64,
    attempt: u32,
    ex: Executed,
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

fn transient(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Internal
            | tonic::Code::Aborted
    )
}

impl Shared {
    async fn executor(&self, id: &str) -> Result<Arc<Executor>, tonic::Status> {
        if let Some(e) = self.executors.lock().expect("lock").get(id) {
            return Ok(e.clone());
        }
        let b = self
            .client
            .clone()
            .bundle(pb::SweepRef {
                sweep_id: id.to_string(),
            })
            .await?
            .into_inner();
        let bundle = Bundle::from(b);
        // The coordinator checked the bundle when it was submitted: build it,
        // refusing one this worker cannot run, without checking it again.
        let sweep =
            Sweep::from_checked_bundle(&bundle, id).map_err(|e| tonic::Status::internal(format!("sweep {id}: {e}")))?;
        let ex = Arc::new(Executor::new(
            Arc::new(sweep),
            self.limiter.clone(),
            self.cache.clone(),
            self.judge_slots.clone(),
        ));
        let mut cache = self.executors.lock().expect("lock");
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(id.to_string(), ex.clone());
        Ok(ex)
    }

    /// Forgets a job if it is still held under `fence`.
    fn finish(&self, key: &Key, fence: u64) {
        let mut r = self.running.lock().expect("lock");
        if r.get(key).is_some_and(|j| j.fence == fence) {
            r.remove(key);
            self.metrics.set_in_flight(r.len());
        }
    }

    /// Records results, retrying while Redis or the coordinator is away.
    async fn record(&self, sweep_id: &str, completions: Vec<Completion>, failures: Vec<Failure>) {
        let mut backoff = Backoff::new();
        loop {
            match self.try_record(sweep_id, &completions, &failures).await {
                Ok(()) => break,
                Err(RecordError::Gone) => {
                    // Deleted while its jobs ran: nothing to record them in.
                    let n = (completions.len() + failures.len()) as u64;
                    tracing::warn!(sweep.id = %sweep_id, results = n, "sweep is gone; dropping its results");
                    self.metrics.jobs(JobOutcome::Refused, n);
                    break;
                }
                Err(RecordError::Other(e)) => {
                    tracing::warn!(error = %e, sweep.id = %sweep_id, "recording results failed; retrying");
                    backoff.wait().await;
                }
            }
        }
        let spent: u64 = completions.iter().map(|c| c.cost_micro_usd).sum();
        self.metrics.add_cost(spent);
        for c in &completions {
            self.finish(&(sweep_id.to_string(), c.index), c.fence);
        }
        for f in &failures {
            self.finish(&(sweep_id.to_string(), f.index), f.fence);
        }
    }

    async fn try_record(&self, id: &str, cs: &[Completion], fs: &[Failure]) -> Result<(), RecordError> {
        let m = &self.metrics;
        let (recorded, outcomes): (Vec<Recorded>, Vec<FailOutcome>) = match &self.redis {
            Some(q) => (
                q.complete(id, cs).await.map_err(RecordError::queue)?,
                q.fail(id, fs).await.map_err(RecordError::queue)?,
            ),
            None => {
                let mut client = self.client.clone();
                let jref = |index, fence| {
                    Some(pb::JobRef {
                        sweep_id: id.to_string(),
                        index,
                        fence,
                    })
                };
                if !cs.is_empty() {
                    let r = client
                        .complete(pb::CompleteRequest {
                            worker_id: self.worker_id.clone(),
                            completions: cs
                                .iter()
                                .map(|c| pb::Completion {
                                    job: jref(c.index, c.fence),
                                    status: match c.status {
                                        candor_queue::JobStatus::Ok => pb::JobStatus::Ok,
                                        candor_queue::JobStatus::Incomplete => pb::JobStatus::Incomplete,
                                        candor_queue::JobStatus::Failed => pb::JobStatus::Failed,
                                    } as i32,
                                    class_bits: c.class_bits,
                                    cell: c.cell,
                                    result: c.result.clone(),
                                    cache_hits: c.cache_hits,
                                    cost_micro_usd: c.cost_micro_usd,
                                })
                                .collect(),
                        })
                        .await
                        .map_err(RecordError::rpc)?
                        .into_inner();
                    m.jobs(JobOutcome::Completed, u64::from(r.recorded));
                    m.jobs(JobOutcome::Refused, u64::from(r.duplicate + r.stale));
                }
                if !fs.is_empty() {
                    let r = client
                        .fail(pb::FailRequest {
                            worker_id: self.worker_id.clone(),
                            failures: fs
                                .iter()
                                .map(|f| pb::Failure {
                                    job: jref(f.index, f.fence),
                                    kind: match f.kind {
                                        FailKind::Retryable => pb::FailKind::Retryable,
                                        FailKind::Permanent => pb::FailKind::Permanent,
                                        FailKind::Released => pb::FailKind::Released,
                                        FailKind::Paused => pb::FailKind::Paused,
                                    } as i32,
                                    error: f.error.clone(),
                                    cell: f.cell,
                                    result: f.result.clone(),
                                    attempt: f.attempt,
                                    persistent: f.persistent,
                                })
                                .collect(),
                        })
                        .await
                        .map_err(RecordError::rpc)?
                        .into_inner();
                    m.jobs(JobOutcome::Retried, u64::from(r.retried));
                    m.jobs(JobOutcome::DeadLettered, u64::from(r.dead_lettered));
                    m.jobs(JobOutcome::Failed, u64::from(r.failed));
                    m.jobs(JobOutcome::Released, u64::from(r.released));
                    m.jobs(JobOutcome::Refused, u64::from(r.ignored));
                }
                return Ok(());
            }
        };
        for r in recorded {
            match r {
                Recorded::Recorded => m.jobs(JobOutcome::Completed, 1),
                _ => m.jobs(JobOutcome::Refused, 1),
            }
        }
        for o in outcomes {
            let outcome = match o {
                FailOutcome::Retried => JobOutcome::Retried,
                FailOutcome::DeadLettered => JobOutcome::DeadLettered,
                FailOutcome::Failed => JobOutcome::Failed,
                FailOutcome::Released | FailOutcome::Paused | FailOutcome::Held => JobOutcome::Released,
                FailOutcome::AlreadyDone | FailOutcome::Stale => JobOutcome::Refused,
            };
            m.jobs(outcome, 1);
        }
        Ok(())
    }
}

/// Turns finished jobs into store calls, grouped by sweep.
fn to_calls(batch: Vec<Done>) -> HashMap<String, (Vec<Completion>, Vec<Failure>)> {
    let mut by: HashMap<String, (Vec<Completion>, Vec<Failure>)> = HashMap::new();
    for d in batch {
        let e = by.entry(d.sweep_id).or_default();
        let index = d.ex.meta.index;
        // A failure that will not pass goes through `fail` even when it is
        // not retried, so that fail fast can hold it.
        let persistent = d.ex.meta.status == candor_core::Status::Failed
            && d.ex.error_kind.is_some_and(candor_core::ErrorKind::is_persistent);
        if d.ex.retryable || d.ex.unauthorized || persistent {
            e.1.push(Failure {
                index,
                fence: d.fence,
                kind: if d.ex.unauthorized {
                    FailKind::Paused
                } else if d.ex.retryable {
                    FailKind::Retryable
                } else {
                    FailKind::Permanent
                },
                error: d.ex.error.unwrap_or_default(),
                attempt: d.attempt,
                cell: d.ex.cell,
                result: d.ex.payload,
                persistent,
            });
        } else {
            e.0.push(Completion {
                index,
                fence: d.fence,
                status: d.ex.meta.status.into(),
                class_bits: d.ex.meta.class_bits,
                cell: d.ex.cell,
                dead: None,
                result: d.ex.payload,
                cache_hits: u32::from(d.ex.meta.cache_hits),
                cost_micro_usd: d.ex.meta.cost_micro_usd,
            });
        }
    }
    by
}

/// Why results could not be recorded.
enum RecordError {
    /// The sweep no longer exists (it was deleted): retrying cannot help.
    Gone,
    /// Redis or the coordinator failed; retrying may.
    Other(String),
}

impl RecordError {
    fn queue(e: candor_queue::QueueError) -> Self {
        match e {
            candor_queue::QueueError::NoSuchSweep(_) => RecordError::Gone,
            e => RecordError::Other(e.to_string()),
        }
    }

    fn rpc(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::NotFound => RecordError::Gone,
            _ => RecordError::Other(s.to_string()),
        }
    }
}

/// Runs the worker until `shutdown` turns true, then drains and returns.
pub async fn run(
    opts: RemoteOptions,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let client = WorkersClient::with_interceptor(opts.channel, Attach::new(&opts.token))
        .max_decoding_message_size(512 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024);
    let limiter: Arc<dyn Limiter> = match &opts.redis {
        Some(q) => Arc::new(RedisLimiter(q.clone())),
        None => {
            tracing::warn!("no --redis: rate limits are enforced per worker, not across the fleet");
            Arc::new(LocalLimiter::default())
        }
    };
    let cache: Option<Arc<dyn Cache>> = match (&opts.redis, opts.cache) {
        (Some(q), true) => Some(Arc::new(RedisCache {
            con: q.connection(),
            ttl: opts.cache_ttl,
        })),
        _ => None,
    };
    let shared = Arc::new(Shared {
        client,
        limiter,
        cache,
        redis: opts.redis,
        running: Mutex::new(HashMap::new()),
        executors: Mutex::new(HashMap::new()),
        metrics,
        worker_id: opts.worker_id.clone(),
        judge_slots: Arc::new(Semaphore::new(opts.judge_concurrency.max(1))),
    });
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(DONE_QUEUE);
    let ttl = Arc::new(std::sync::atomic::AtomicU64::new(30_000));

    // Records finished jobs in batches.
    let writer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(WRITE_BATCH);
            while done_rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
                for (id, (cs, fs)) in to_calls(std::mem::take(&mut batch)) {
                    shared.record(&id, cs, fs).await;
                }
            }
        })
    };

    // Renews the leases of running jobs every third of the lease time;
    // cancels jobs whose lease was lost. The lease time is known from the
    // first lease answer on, so it is read again at each short tick (the
    // coordinator's may be shorter than the 30 s assumed before it).
    let renewer = {
        let (shared, ttl) = (shared.clone(), ttl.clone());
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(RENEW_TICK).await;
                if last.elapsed() < Duration::from_millis(ttl.load(Ordering::Relaxed) / 3) {
                    continue;
                }
                last = Instant::now();
                let jobs: Vec<pb::JobRef> = shared
                    .running
                    .lock()
                    .expect("lock")
                    .iter()
                    .map(|((id, idx), r)| pb::JobRef {
                        sweep_id: id.clone(),
                        index: *idx,
                        fence: r.fence,
                    })
                    .collect();
                if jobs.is_empty() {
                    continue;
                }
                let req = pb::RenewRequest {
                    worker_id: shared.worker_id.clone(),
                    jobs,
                };
                match shared.client.clone().renew(req).await {
                    Ok(r) => {
                        let mut running = shared.running.lock().expect("lock");
                        for j in r.into_inner().lost {
                            let key = (j.sweep_id, j.index);
                            if running.get(&key).is_some_and(|r| r.fence == j.fence) {
                                if let Some(a) = running.remove(&key).and_then(|r| r.abort) {
                                    a.abort();
                                }
                                shared.metrics.lease_lost();
                                tracing::warn!(sweep.id = %key.0, job.index = key.1, "lease lost; job cancelled");
                            }
                        }
                        shared.metrics.set_in_flight(running.len());
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing leases failed"),
                }
            }
        })
    };

    // Leases jobs while there are free slots.
    let mut idle = Backoff::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.changed() => break,
        };
        // Lease in batches: give finishing jobs a moment to free more slots,
        // so short jobs do not cost a lease call each.
        let batch = (opts.concurrency / 4).max(1);
        let gather = Instant::now();
        while 1 + slots.available_permits() < batch && gather.elapsed() < LEASE_GATHER {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let free = 1 + slots.available_permits() as u32;
        let req = pb::LeaseRequest {
            worker_id: shared.worker_id.clone(),
            slots: free,
        };
        let mut client = shared.client.clone();
        let resp = tokio::select! {
            r = client.lease(req) => r,
            _ = shutdown.changed() => break,
        };
        let resp = match resp {
            Ok(r) => {
                shared.metrics.connected.store(true, Ordering::Relaxed);
                r.into_inner()
            }
            Err(e) => {
                shared.metrics.connected.store(false, Ordering::Relaxed);
                if !transient(&e) && e.code() == tonic::Code::Unauthenticated {
                    return Err(WorkerError::Coordinator(e));
                }
                tracing::warn!(error = %e, "leasing failed; retrying");
                drop(first);
                idle.wait().await;
                continue;
            }
        };
        ttl.store(resp.lease_ttl_ms.max(300), Ordering::Relaxed);
        if resp.leases.is_empty() {
            drop(first);
            tokio::select! {
                _ = idle.wait() => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        idle = Backoff::new();
        shared.metrics.leased(resp.leases.len() as u64);
        let mut first = Some(first);
        for lease in resp.leases {
            let permit = match first.take() {
                Some(p) => p,
                None => slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let ex = match shared.executor(&lease.sweep_id).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(sweep.id = %lease.sweep_id, error = %e, "cannot load the sweep; its lease will expire");
                    continue;
                }
            };
            let key = (lease.sweep_id.clone(), lease.index);
            let t = ex.sweep().space.decode(lease.index);
            shared.running.lock().expect("lock").insert(
                key.clone(),
                Running {
                    fence: lease.fence,
                    attempt: lease.attempt,
                    cell: ex.sweep().space.cell_of(&t) as u32,
                    abort: None,
                },
            );
            let span = tracing::info_span!(
                "job",
                sweep.id = %lease.sweep_id,
                job.index = lease.index,
                model = %ex.sweep().spec.models[t.model].id,
                condition = %ex.sweep().spec.conditions[t.condition].name,
                attempt = lease.attempt,
            );
            candor_proto::trace::join(&span, &lease.traceparent);
            let (done_tx, metrics) = (done_tx.clone(), shared.metrics.clone());
            let handle = tokio::spawn(
                async move {
                    let started = Instant::now();
                    let mut executed = ex.run(lease.index, lease.attempt, permit).await;
                    metrics.observe_latency(started.elapsed().as_secs_f64());
                    if let Some(error) = executed.error.as_mut() {
                        // Errors name the URL without secrets (see candor_core::redact).
                        let kind = executed.error_kind.map(|k| k.to_string()).unwrap_or_default();
                        tracing::warn!(%error, kind, retryable = executed.retryable, "job failed");
                        *error = format!("model {}: {error}", ex.sweep().spec.models[executed.model].id);
                    }
                    let _ = done_tx
                        .send(Done {
                            sweep_id: lease.sweep_id,
                            fence: lease.fence,
                            attempt: lease.attempt,
                            ex: executed,
                        })
                        .await;
                }
                .instrument(span),
            );
            let mut running = shared.running.lock().expect("lock");
            if let Some(r) = running.get_mut(&key).filter(|r| r.fence == lease.fence) {
                r.abort = Some(handle.abort_handle());
            }
            shared.metrics.set_in_flight(running.len());
        }
    }

    // Shutdown: no more leases; give running jobs the grace period.
    let deadline = Instant::now() + opts.grace;
    while Instant::now() < deadline && !shared.running.lock().expect("lock").is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Hand back what is still running, so it is leased again at once.
    let left: Vec<(Key, Running)> = shared.running.lock().expect("lock").drain().collect();
    let mut by: HashMap<String, Vec<Failure>> = HashMap::new();
    for ((id, index), r) in left {
        if let Some(a) = &r.abort {
            a.abort();
        }
        by.entry(id).or_default().push(Failure {
            index,
            fence: r.fence,
            kind: FailKind::Released,
            error: "the worker shut down".into(),
            attempt: r.attempt,
            cell: r.cell,
            result: Vec::new(),
            persistent: false,
        });
    }
    let released: usize = by.values().map(Vec::len).sum();
    for (id, fs) in by {
        let _ = tokio::time::timeout(Duration::from_secs(10), shared.record(&id, Vec::new(), fs)).await;
    }
    renewer.abort();
    drop(done_tx);
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    tracing::info!(released, "worker stopped");
    Ok(())
}

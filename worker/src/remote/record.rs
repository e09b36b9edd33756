//! Recording results: finished jobs gathered in batches, grouped by sweep,
//! and recorded straight in Redis or, without it, through the coordinator;
//! retried while either is away. A deleted sweep's results are dropped:
//! there is nothing left to record them in.

use std::collections::HashMap;
use std::sync::Arc;

use candor_archive::Archive;
use candor_exec::execute::Executed;
use candor_proto::v1 as pb;
use candor_queue::{Completion, FailKind, FailOutcome, Failure, Queue, QueueError, Recorded};
use tokio::sync::mpsc;

use super::{Backoff, Shared};
use crate::metrics::{JobOutcome, Metrics};

/// Results waiting to be recorded, at most.
pub(super) const DONE_QUEUE: usize = 4096;
/// Results recorded in one call, at most.
const WRITE_BATCH: usize = 512;

/// A finished job.
pub(super) struct Done {
    pub(super) sweep_id: String,
    pub(super) fence: u64,
    pub(super) attempt: u32,
    pub(super) ex: Executed,
}

/// Records finished jobs in batches until every sender is gone.
pub(super) async fn writer(shared: Arc<Shared>, mut done: mpsc::Receiver<Done>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while done.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        for (id, (cs, fs)) in to_calls(std::mem::take(&mut batch)) {
            record(&shared, &id, cs, fs).await;
        }
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
        // A refused API key or request parameter fails every job of the
        // sweep alike: the sweep pauses with the provider's message.
        let pause = d.ex.unauthorized || d.ex.error_kind == Some(candor_core::ErrorKind::Param);
        if d.ex.retryable || pause || persistent {
            e.1.push(Failure {
                index,
                fence: d.fence,
                kind: if pause {
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
                parsed: Some(d.ex.result),
                persistent,
            });
        } else {
            e.0.push(Completion {
                index,
                fence: d.fence,
                status: d.ex.meta.status,
                class_bits: d.ex.meta.class_bits,
                cell: d.ex.cell,
                dead: None,
                result: d.ex.payload,
                parsed: Some(d.ex.result),
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
    /// A result that cannot be written (a bug): its job runs again once its
    /// lease runs out.
    Bad(String),
    /// Redis, the archive or the coordinator failed; retrying may.
    Other(String),
}

impl RecordError {
    fn queue(e: QueueError) -> Self {
        match e {
            QueueError::NoSuchSweep(_) => RecordError::Gone,
            e @ QueueError::BadResult { .. } => RecordError::Bad(e.to_string()),
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

/// Records results of one sweep, retrying while Redis or the coordinator
/// is away, then forgets their jobs.
pub(super) async fn record(shared: &Shared, sweep_id: &str, completions: Vec<Completion>, failures: Vec<Failure>) {
    let m = &shared.metrics;
    let mut backoff = Backoff::new();
    loop {
        let tried = match &shared.direct {
            Some((q, a)) => in_redis(q, a, m, sweep_id, &completions, &failures).await,
            None => through_coordinator(shared, sweep_id, &completions, &failures).await,
        };
        match tried {
            Ok(()) => break,
            Err(RecordError::Gone) => {
                // Deleted while its jobs ran: nothing to record them in.
                let n = (completions.len() + failures.len()) as u64;
                tracing::warn!(sweep.id = %sweep_id, results = n, "sweep is gone; dropping its results");
                m.jobs(JobOutcome::Refused, n);
                break;
            }
            Err(RecordError::Bad(e)) => {
                tracing::error!(error = %e, sweep.id = %sweep_id, "cannot write results; dropping them");
                m.jobs(JobOutcome::Refused, (completions.len() + failures.len()) as u64);
                break;
            }
            Err(RecordError::Other(e)) => {
                tracing::warn!(error = %e, sweep.id = %sweep_id, "recording results failed; retrying");
                backoff.wait().await;
            }
        }
    }
    m.add_cost(completions.iter().map(|c| c.cost_micro_usd).sum());
    for c in &completions {
        shared.running.finish(&(sweep_id.to_string(), c.index), c.fence, m);
    }
    for f in &failures {
        shared.running.finish(&(sweep_id.to_string(), f.index), f.fence, m);
    }
}

/// The part, both calls, then the counts of what the scripts made of each result.
async fn in_redis(
    q: &Queue,
    a: &Archive,
    m: &Metrics,
    id: &str,
    cs: &[Completion],
    fs: &[Failure],
) -> Result<(), RecordError> {
    let done = q.record(a, id, cs, fs).await.map_err(RecordError::queue)?;
    let (recorded, outcomes) = (done.completions, done.failures);
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

async fn through_coordinator(shared: &Shared, id: &str, cs: &[Completion], fs: &[Failure]) -> Result<(), RecordError> {
    let (m, mut client) = (&shared.metrics, shared.client.clone());
    if !cs.is_empty() {
        let req = pb::CompleteRequest {
            worker_id: shared.worker_id.clone(),
            completions: cs.iter().map(|c| completion(id, c)).collect(),
        };
        let r = client.complete(req).await.map_err(RecordError::rpc)?.into_inner();
        m.jobs(JobOutcome::Completed, u64::from(r.recorded));
        m.jobs(JobOutcome::Refused, u64::from(r.duplicate + r.stale));
    }
    if !fs.is_empty() {
        let req = pb::FailRequest {
            worker_id: shared.worker_id.clone(),
            failures: fs.iter().map(|f| failure(id, f)).collect(),
        };
        let r = client.fail(req).await.map_err(RecordError::rpc)?.into_inner();
        m.jobs(JobOutcome::Retried, u64::from(r.retried));
        m.jobs(JobOutcome::DeadLettered, u64::from(r.dead_lettered));
        m.jobs(JobOutcome::Failed, u64::from(r.failed));
        m.jobs(JobOutcome::Released, u64::from(r.released));
        m.jobs(JobOutcome::Refused, u64::from(r.ignored));
    }
    Ok(())
}

fn job_ref(sweep_id: &str, index: u64, fence: u64) -> Option<pb::JobRef> {
    Some(pb::JobRef {
        sweep_id: sweep_id.to_string(),
        index,
        fence,
    })
}

fn completion(id: &str, c: &Completion) -> pb::Completion {
    pb::Completion {
        job: job_ref(id, c.index, c.fence),
        status: pb::JobStatus::from(c.status) as i32,
        class_bits: c.class_bits,
        cell: c.cell,
        result: c.result.clone(),
        cache_hits: c.cache_hits,
        cost_micro_usd: c.cost_micro_usd,
    }
}

fn failure(id: &str, f: &Failure) -> pb::Failure {
    pb::Failure {
        job: job_ref(id, f.index, f.fence),
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
    }
}

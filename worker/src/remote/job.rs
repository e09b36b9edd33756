//! One leased job: held in the running table, run on its sweep's executor in
//! a task of its own under the job's span (joined to the coordinator's
//! trace), and its result sent on to be recorded.

use std::sync::Arc;
use std::time::Instant;

use candor_core::JobTuple;
use candor_exec::execute::Executor;
use candor_proto::v1 as pb;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

use super::Shared;
use super::record::Done;
use super::running::Running;
use crate::metrics::Metrics;

/// Starts `lease`'s job on `slot`.
pub(super) fn start(
    shared: &Shared,
    ex: Arc<Executor>,
    lease: pb::Lease,
    slot: OwnedSemaphorePermit,
    done: mpsc::Sender<Done>,
) {
    let (key, fence) = ((lease.sweep_id.clone(), lease.index), lease.fence);
    let t = ex.sweep().space.decode(lease.index);
    shared.running.hold(
        key.clone(),
        Running {
            fence,
            attempt: lease.attempt,
            cell: ex.sweep().space.cell_of(&t) as u32,
            abort: None,
        },
    );
    let span = span(&ex, &lease, &t);
    let task = tokio::spawn(execute(ex, lease, slot, done, shared.metrics.clone()).instrument(span));
    shared
        .running
        .started(&key, fence, task.abort_handle(), &shared.metrics);
}

fn span(ex: &Executor, lease: &pb::Lease, t: &JobTuple) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        sweep.id = %lease.sweep_id,
        job.index = lease.index,
        model = %ex.sweep().spec.models[t.model].id,
        condition = %ex.sweep().spec.conditions[t.condition].name,
        attempt = lease.attempt,
    );
    candor_proto::trace::join(&span, &lease.traceparent);
    span
}

async fn execute(
    ex: Arc<Executor>,
    lease: pb::Lease,
    slot: OwnedSemaphorePermit,
    done: mpsc::Sender<Done>,
    metrics: Arc<Metrics>,
) {
    let started = Instant::now();
    let mut executed = ex.run(lease.index, lease.attempt, slot).await;
    metrics.observe_latency(started.elapsed().as_secs_f64());
    if let Some(error) = executed.error.as_mut() {
        // Errors name the URL without secrets (see candor_core::redact).
        let kind = executed.error_kind.map(|k| k.to_string()).unwrap_or_default();
        tracing::warn!(%error, kind, retryable = executed.retryable, "job failed");
        *error = format!("model {}: {error}", ex.sweep().spec.models[executed.model].id);
    }
    let _ = done
        .send(Done {
            sweep_id: lease.sweep_id,
            fence: lease.fence,
            attempt: lease.attempt,
            ex: executed,
        })
        .await;
}

//! The fleet-facing `Workers` service: lease, renew, complete, fail and
//! bundle. As in `sweeps`, each RPC is a function answering a
//! [`ServerError`] and the trait impl only unwraps and replies.

use std::collections::HashMap;
use std::sync::Arc;

use candor_proto::v1 as pb;
use candor_queue::{Completion, FailKind, FailOutcome, Failure, JobRef, Recorded};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::error::reply;
use super::{Coordinator, MAX_RENEWALS, ServerError, sweep_id};

/// The worker-facing service.
#[derive(Clone)]
pub struct WorkersApi(pub Arc<Coordinator>);

#[tonic::async_trait]
impl pb::workers_server::Workers for WorkersApi {
    async fn lease(&self, req: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseResponse>, Status> {
        let r = req.into_inner();
        let span = tracing::info_span!("lease", worker = %r.worker_id, slots = r.slots);
        reply(lease(&self.0, r.slots).instrument(span).await)
    }

    async fn renew(&self, req: Request<pb::RenewRequest>) -> Result<Response<pb::RenewResponse>, Status> {
        reply(renew(&self.0, req.into_inner()).await)
    }

    async fn complete(&self, req: Request<pb::CompleteRequest>) -> Result<Response<pb::CompleteResponse>, Status> {
        reply(complete(&self.0, req.into_inner()).await)
    }

    async fn fail(&self, req: Request<pb::FailRequest>) -> Result<Response<pb::FailResponse>, Status> {
        reply(fail(&self.0, req.into_inner()).await)
    }

    async fn bundle(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SpecBundle>, Status> {
        let id = req.into_inner().sweep_id;
        reply(bundle(&self.0, &id).await)
    }
}

/// Up to `slots` jobs, shared fairly over the running sweeps. Runs in the
/// `lease` span: the traceparent handed out with the leases is its.
async fn lease(co: &Coordinator, slots: u32) -> Result<pb::LeaseResponse, ServerError> {
    let slots = slots.clamp(1, 10_000);
    let ttl = co.settings.lease_ttl.as_millis() as u64;
    let leases = co.queue.lease(slots, ttl).await?;
    co.metrics.leased(leases.len() as u64);
    let traceparent = candor_proto::trace::traceparent(&tracing::Span::current());
    Ok(pb::LeaseResponse {
        leases: leases
            .into_iter()
            .map(|l| pb::Lease {
                sweep_id: l.sweep_id,
                index: l.index,
                fence: l.fence,
                attempt: l.attempt,
                traceparent: traceparent.clone(),
            })
            .collect(),
        lease_ttl_ms: ttl,
    })
}

/// Extends the leases still held; answers those that were lost.
async fn renew(co: &Coordinator, req: pb::RenewRequest) -> Result<pb::RenewResponse, ServerError> {
    if req.jobs.len() > MAX_RENEWALS {
        return Err(ServerError::TooManyRenewals);
    }
    let jobs: Vec<JobRef> = req
        .jobs
        .into_iter()
        .map(|j| JobRef {
            sweep_id: j.sweep_id,
            index: j.index,
            fence: j.fence,
        })
        .collect();
    let ttl = co.settings.lease_ttl.as_millis() as u64;
    let held = co.queue.renew(&jobs, ttl).await?;
    let lost = jobs
        .into_iter()
        .zip(held)
        .filter(|(_, h)| !h)
        .map(|(j, _)| pb::JobRef {
            sweep_id: j.sweep_id,
            index: j.index,
            fence: j.fence,
        })
        .collect();
    Ok(pb::RenewResponse { lost })
}

fn fail_kind(k: i32) -> FailKind {
    match pb::FailKind::try_from(k) {
        Ok(pb::FailKind::Permanent) => FailKind::Permanent,
        Ok(pb::FailKind::Released) => FailKind::Released,
        Ok(pb::FailKind::Paused) => FailKind::Paused,
        _ => FailKind::Retryable,
    }
}

/// `items` by the sweep their job names; every item must name one.
fn group<T>(items: Vec<T>, id: impl Fn(&T) -> Option<&String>) -> Result<HashMap<String, Vec<T>>, ServerError> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for it in items {
        let sid = id(&it).ok_or(ServerError::Missing("job"))?;
        sweep_id(sid)?;
        out.entry(sid.clone()).or_default().push(it);
    }
    Ok(out)
}

fn completion(c: pb::Completion) -> Completion {
    let j = c.job.expect("grouped by job");
    Completion {
        index: j.index,
        fence: j.fence.max(1),
        status: candor_proto::job_status(c.status),
        class_bits: c.class_bits,
        cell: c.cell,
        dead: None,
        result: c.result,
        parsed: None,
        cache_hits: c.cache_hits,
        cost_micro_usd: c.cost_micro_usd,
    }
}

async fn complete(co: &Coordinator, req: pb::CompleteRequest) -> Result<pb::CompleteResponse, ServerError> {
    let mut resp = pb::CompleteResponse::default();
    for (id, items) in group(req.completions, |c| c.job.as_ref().map(|j| &j.sweep_id))? {
        let items: Vec<Completion> = items.into_iter().map(completion).collect();
        for r in co
            .queue
            .record(&co.settings.archive, &id, &items, &[])
            .await?
            .completions
        {
            match r {
                Recorded::Recorded => resp.recorded += 1,
                Recorded::Duplicate => resp.duplicate += 1,
                Recorded::Stale => resp.stale += 1,
            }
        }
    }
    Ok(resp)
}

fn failure(f: pb::Failure) -> Failure {
    let j = f.job.expect("grouped by job");
    Failure {
        index: j.index,
        fence: j.fence,
        kind: fail_kind(f.kind),
        error: f.error,
        attempt: f.attempt,
        cell: f.cell,
        result: f.result,
        parsed: None,
        persistent: f.persistent,
    }
}

async fn fail(co: &Coordinator, req: pb::FailRequest) -> Result<pb::FailResponse, ServerError> {
    let mut resp = pb::FailResponse::default();
    for (id, items) in group(req.failures, |f| f.job.as_ref().map(|j| &j.sweep_id))? {
        let items: Vec<Failure> = items.into_iter().map(failure).collect();
        for r in co.queue.record(&co.settings.archive, &id, &[], &items).await?.failures {
            match r {
                FailOutcome::Retried => resp.retried += 1,
                FailOutcome::DeadLettered => resp.dead_lettered += 1,
                FailOutcome::Failed => resp.failed += 1,
                FailOutcome::Released | FailOutcome::Paused | FailOutcome::Held => resp.released += 1,
                FailOutcome::AlreadyDone | FailOutcome::Stale => resp.ignored += 1,
            }
        }
    }
    Ok(resp)
}

/// The sweep's bundle, for a worker to build the sweep from.
async fn bundle(co: &Coordinator, id: &str) -> Result<pb::SpecBundle, ServerError> {
    Ok(co.bundle(sweep_id(id)?).await?.into())
}

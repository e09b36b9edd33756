//! The client-facing `Sweeps` service: submit, get, list, watch, cancel,
//! resume, delete, report and results. Each RPC is a function answering a
//! [`ServerError`]; the trait impl only unwraps the request and hands the
//! answer to [`reply`], which picks the `tonic::Code`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use candor_core::Sweep;
use candor_core::spec::Bundle;
use candor_proto::v1 as pb;
use candor_queue::NewSweep;
use tokio::sync::mpsc::Sender;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::archive::LiveParts;
use super::error::reply;
use super::{Coordinator, MAX_BUNDLE_BYTES, ServerError, sweep_id};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How often `watch` looks at a running sweep.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Bytes of JSON lines per results message, about.
const CHUNK_BYTES: usize = 1 << 20;

/// The client-facing service.
#[derive(Clone)]
pub struct SweepsApi(pub Arc<Coordinator>);

#[tonic::async_trait]
impl pb::sweeps_server::Sweeps for SweepsApi {
    async fn submit(&self, req: Request<pb::SubmitRequest>) -> Result<Response<pb::SubmitResponse>, Status> {
        reply(submit(&self.0, req.into_inner()).await)
    }

    async fn get(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        reply(get(&self.0, req.into_inner()).await)
    }

    async fn list(&self, _req: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        reply(list(&self.0).await)
    }

    type WatchStream = BoxStream<pb::SweepStatus>;

    async fn watch(&self, req: Request<pb::SweepRef>) -> Result<Response<Self::WatchStream>, Status> {
        reply(watch(self.0.clone(), req.into_inner()).await)
    }

    async fn cancel(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        reply(change_state(&self.0, req.into_inner(), false).await)
    }

    async fn resume(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        reply(change_state(&self.0, req.into_inner(), true).await)
    }

    async fn delete(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::DeleteResponse>, Status> {
        reply(delete(&self.0, req.into_inner()).await)
    }

    async fn report(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::ReportResponse>, Status> {
        reply(report(&self.0, req.into_inner()).await)
    }

    type ResultsStream = BoxStream<pb::ResultsChunk>;

    async fn results(&self, req: Request<pb::SweepRef>) -> Result<Response<Self::ResultsStream>, Status> {
        reply(results(&self.0, req.into_inner()).await)
    }
}

/// Checks the bundle in full, then stores it with the sweep's state.
async fn submit(co: &Coordinator, req: pb::SubmitRequest) -> Result<pb::SubmitResponse, ServerError> {
    let bundle = Bundle::from(req.bundle.ok_or(ServerError::Missing("bundle"))?);
    if bundle.size() > MAX_BUNDLE_BYTES {
        return Err(ServerError::BundleTooLarge);
    }
    let sweep = Sweep::from_bundle(&bundle)?;
    let new = new_sweep(&sweep)?;
    let json = serde_json::to_string(&bundle).expect("bundles serialize");
    let created = co.queue.submit(&new, &json).await?;
    // The sweep just checked is the one its id names in Redis: the status
    // and reports that follow need not build it again.
    co.cache(&new.id, sweep);
    tracing::info!(sweep.id = %new.id, name = %new.name, jobs = new.total, created, "sweep submitted");
    Ok(pb::SubmitResponse {
        sweep_id: new.id,
        name: new.name,
        jobs_total: new.total,
        created,
    })
}

/// What Redis keeps of a sweep to lease its jobs, and refuses a sweep Redis
/// cannot hold.
fn new_sweep(sweep: &Sweep) -> Result<NewSweep, ServerError> {
    let total = sweep.total_jobs();
    if total > candor_queue::MAX_JOBS {
        return Err(ServerError::TooManyJobs { jobs: total });
    }
    let early_stopping = match sweep.spec.early_stopping {
        Some(e) => Some(candor_core::early::DecisionTable::new(
            e.target_width,
            sweep.space.per_cell(),
        )?),
        None => None,
    };
    Ok(NewSweep {
        id: sweep.id.clone(),
        name: sweep.spec.name.clone(),
        total,
        max_attempts: sweep.spec.max_attempts,
        classifiers: sweep.spec.classifiers.len() as u32,
        simulated: sweep.simulated(),
        budget_micro_usd: sweep.spec.budget_usd.map_or(0, candor_core::budget::micro_usd),
        reserve_micro_usd: sweep.reserved_micro_usd(),
        seeds: sweep.space.seeds,
        queries: sweep.space.queries,
        conditions: sweep.space.conditions,
        early_stopping,
        min_seeds: sweep.spec.early_stopping.map_or(1, |e| e.min_seeds),
        fail_fast: sweep.spec.fail_fast.unwrap_or(candor_core::spec::DEFAULT_FAIL_FAST),
        retention_ms: sweep.spec.retention_days.map(|d| (d * 86_400_000.0) as u64),
        cells_per_model: (sweep.space.cells() / sweep.spec.models.len()) as u64,
    })
}

async fn get(co: &Coordinator, req: pb::SweepRef) -> Result<pb::SweepStatus, ServerError> {
    co.status(sweep_id(&req.sweep_id)?).await
}

async fn list(co: &Coordinator) -> Result<pb::ListResponse, ServerError> {
    let mut sweeps = Vec::new();
    for id in co.queue.list().await? {
        sweeps.push(co.status(&id).await?);
    }
    Ok(pb::ListResponse { sweeps })
}

/// The sweep's status now, then each time it changes until it stops running.
async fn watch(co: Arc<Coordinator>, req: pb::SweepRef) -> Result<BoxStream<pb::SweepStatus>, ServerError> {
    let id = sweep_id(&req.sweep_id)?.to_string();
    let first = co.status(&id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(follow(co, id, first, tx));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

async fn follow(
    co: Arc<Coordinator>,
    id: String,
    mut last: pb::SweepStatus,
    tx: Sender<Result<pb::SweepStatus, Status>>,
) {
    if tx.send(Ok(last.clone())).await.is_err() {
        return;
    }
    while last.state == "running" {
        tokio::time::sleep(WATCH_EVERY).await;
        let now = match co.status(&id).await {
            Ok(s) => s,
            // Redis restarting does not end the watch: it comes back.
            Err(ServerError::Unavailable(_)) => continue,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        if now != last {
            if tx.send(Ok(now.clone())).await.is_err() {
                return;
            }
            last = now;
        }
    }
}

/// Cancels, or resumes, the sweep named by `req`; answers its status after.
async fn change_state(co: &Coordinator, req: pb::SweepRef, resume: bool) -> Result<pb::SweepStatus, ServerError> {
    let id = sweep_id(&req.sweep_id)?;
    let q = &co.queue;
    let after = if resume { q.resume(id).await } else { q.cancel(id).await };
    after?.ok_or_else(|| ServerError::NotFound(id.to_string()))?;
    tracing::info!(sweep.id = %id, resume, "sweep state changed");
    co.status(id).await
}

async fn delete(co: &Coordinator, req: pb::SweepRef) -> Result<pb::DeleteResponse, ServerError> {
    let id = sweep_id(&req.sweep_id)?;
    let state = co.delete(id).await?;
    if state == "running" || state == "paused" {
        return Err(ServerError::StillActive {
            id: id.to_string(),
            state,
        });
    }
    tracing::info!(sweep.id = %id, %state, "sweep deleted");
    Ok(pb::DeleteResponse {
        sweep_id: id.to_string(),
        state,
    })
}

async fn report(co: &Coordinator, req: pb::SweepRef) -> Result<pb::ReportResponse, ServerError> {
    let r = co.report(sweep_id(&req.sweep_id)?).await?;
    Ok(pb::ReportResponse {
        report_json: serde_json::to_string_pretty(&r).expect("reports serialize") + "\n",
        report_md: r.to_markdown(),
    })
}

/// Every live result of the sweep as JSON lines, each job's once, read
/// from the archive part by part.
async fn results(co: &Arc<Coordinator>, req: pb::SweepRef) -> Result<BoxStream<pb::ResultsChunk>, ServerError> {
    let id = sweep_id(&req.sweep_id)?.to_string();
    let total = co.state(&id).await?.total;
    let live = co.live_parts(&id, total).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(send_results(co.clone(), id, live, tx));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

async fn send_results(co: Arc<Coordinator>, id: String, live: LiveParts, tx: Sender<Result<pb::ResultsChunk, Status>>) {
    let mut chunk = Vec::new();
    for i in 0..live.parts.len() {
        let read = co
            .read_live(&id, &live, i, |r| {
                serde_json::to_writer(&mut chunk, &r).expect("results serialize");
                chunk.push(b'\n');
            })
            .await;
        if let Err(e) = read {
            let _ = tx.send(Err(e.into())).await;
            return;
        }
        // The channel holds a few chunks: a slow client slows the reading.
        if chunk.len() >= CHUNK_BYTES
            && tx
                .send(Ok(pb::ResultsChunk {
                    jsonl: std::mem::take(&mut chunk),
                }))
                .await
                .is_err()
        {
            return;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Ok(pb::ResultsChunk { jsonl: chunk })).await;
    }
}

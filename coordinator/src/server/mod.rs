//! The gRPC coordinator. It keeps no state of its own: every request reads
//! or changes the sweep state in Redis through `candor-queue`, so it can be
//! killed and restarted at any moment, and two of them can run side by side.
//!
//! Fairness: leases are handed out round-robin over the running sweeps, each
//! getting an even share of a worker's free slots (see `lua/lease.lua`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candor_core::Sweep;
use candor_core::spec::Bundle;
use candor_exec::Executor;
use candor_proto::v1 as pb;
use candor_queue::{Completion, FailKind, Failure, JobRef, JobStatus, Queue, QueueError, SweepState};
use candor_report::report::{CellCounts, Report, Tally};
use candor_store::DoneSet;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::metrics::Metrics;

/// The largest submitted bundle.
pub const MAX_BUNDLE_BYTES: usize = 300 * 1024 * 1024;
/// Sweeps kept loaded in memory (a cache; Redis has them all).
const CACHE: usize = 64;

#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
}

/// The coordinator's shared parts.
pub struct Coordinator {
    queue: Queue,
    settings: Settings,
    executors: Mutex<HashMap<String, Arc<Executor>>>,
    pub metrics: Metrics,
}

fn internal(e: QueueError) -> Status {
    match e {
        QueueError::NoSuchSweep(id) => Status::not_found(format!("no sweep with id {id}")),
        e if e.is_transient() => Status::unavailable(format!("the sweep store is unavailable: {e}")),
        e => Status::internal(e.to_string()),
    }
}

impl Coordinator {
    pub fn new(queue: Queue, settings: Settings) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            queue,
            settings,
            executors: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
        })
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The loaded sweep `id`, from the cache or from its bundle in Redis.
    async fn executor(&self, id: &str) -> Result<Arc<Executor>, Status> {
        if let Some(e) = self.executors.lock().expect("cache lock").get(id) {
            return Ok(e.clone());
        }
        let json = self
            .queue
            .bundle(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no sweep with id {id}")))?;
        let bundle: Bundle =
            serde_json::from_str(&json).map_err(|e| Status::internal(format!("stored bundle of {id}: {e}")))?;
        // Submit checked the bundle before it stored it: build it again
        // without the checks.
        let sweep = Sweep::from_checked_bundle(&bundle, id)
            .map_err(|e| Status::internal(format!("stored bundle of {id}: {e}")))?;
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
        ));
        let mut cache = self.executors.lock().expect("cache lock");
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(id.to_string(), ex.clone());
        ex
    }

    async fn state(&self, id: &str) -> Result<SweepState, Status> {
        self.queue
            .state(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no sweep with id {id}")))
    }

    /// The tally in Redis as the report's cell counts.
    fn tally(sweep: &Sweep, st: &SweepState) -> Tally {
        let mut t = Tally::new(sweep);
        for (i, c) in t.cells.iter_mut().enumerate() {
            let get = |f: &str| st.tally.get(&format!("{i}:{f}")).copied().unwrap_or(0);
            *c = CellCounts {
                ok: get("ok"),
                incomplete: get("incomplete"),
                failed: get("failed"),
                yes: (0..c.yes.len()).map(|k| get(&format!("y{k}"))).collect(),
                both: vec![0; c.yes.len()],
            };
        }
        t.cache_hits = st.cache_hits;
        for f in &st.failures {
            let model = sweep.spec.models.iter().position(|m| m.id == f.model);
            if let Some(m) = model {
                let kind = candor_core::ErrorKind::try_from(f.kind.clone()).ok();
                t.failures.add(m, kind, &f.first_error, f.jobs);
            }
        }
        for (i, c) in t.cost_micro_usd.iter_mut().enumerate() {
            let per_model = sweep.space.cells() / sweep.spec.models.len();
            *c = (i * per_model..(i + 1) * per_model)
                .map(|cell| st.tally.get(&format!("{cell}:cost")).copied().unwrap_or(0))
                .sum();
        }
        t
    }

    async fn status(&self, id: &str) -> Result<pb::SweepStatus, Status> {
        let st = self.state(id).await?;
        let ex = self.executor(id).await?;
        Ok(to_status(ex.sweep(), &st))
    }

    pub async fn report(&self, id: &str) -> Result<Report, Status> {
        let st = self.state(id).await?;
        let ex = self.executor(id).await?;
        let sweep = ex.sweep();
        let mut tally = Self::tally(sweep, &st);
        if !tally.pairs.is_empty() {
            self.pair_outcomes(id, sweep, &mut tally).await?;
        }
        let mut report = Report::build(sweep, &tally);
        if sweep.spec.early_stopping.is_some() {
            let stops: Vec<Option<u32>> = (0..sweep.space.cells() as u64)
                .map(|c| st.cutoffs.get(&c).copied())
                .collect();
            report.mark_stopped_early(&stops, st.skipped);
        }
        report.sweep.provenance = candor_report::report::Provenance::of(
            sweep,
            Some(st.created_ms),
            (st.finished_ms > 0).then_some(st.finished_ms),
        );
        report.sweep.jobs_dead_lettered = st.dead;
        if st.dead > 0 {
            report.notes.insert(
                0,
                format!(
                    "DEAD-LETTERED: {} jobs failed on every one of their {} attempts.",
                    st.dead, st.max_attempts
                ),
            );
        }
        if st.state == "budget_exhausted" {
            report.mark_budget_exhausted();
        }
        if st.state == "cancelled" {
            report
                .notes
                .insert(0, "CANCELLED: the sweep was cancelled before it finished.".into());
        }
        Ok(report)
    }

    /// Reads every result of a sweep for what the counters in Redis do not
    /// hold: the paired bootstrap, joint verdicts and the per-seed spread.
    async fn pair_outcomes(&self, id: &str, sweep: &Sweep, tally: &mut Tally) -> Result<(), Status> {
        #[derive(serde::Deserialize)]
        struct Outcome {
            status: candor_core::Status,
            #[serde(default)]
            classifications: std::collections::BTreeMap<String, bool>,
        }
        let mut seen = DoneSet::new(sweep.total_jobs());
        let mut cursor = 0;
        loop {
            let (next, page) = self.queue.results_page(id, cursor, 1000).await.map_err(internal)?;
            for (idx, payload) in page {
                if idx >= sweep.total_jobs() || !seen.insert(idx) {
                    continue;
                }
                if let Ok(o) = serde_json::from_slice::<Outcome>(&payload) {
                    let bits = sweep.spec.classifiers.iter().enumerate().fold(0u32, |b, (i, c)| {
                        b | u32::from(o.classifications.get(c.name()).copied().unwrap_or(false)) << i
                    });
                    tally.add_detail(sweep, idx, o.status, bits);
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Dead-letters jobs whose leases kept expiring (their workers died on
    /// them), writing a failed result for each. Runs in a loop on every
    /// coordinator; recording is idempotent, so running twice is harmless.
    pub async fn reap(&self) -> Result<usize, Status> {
        let dying = self.queue.dying().await.map_err(internal)?;
        let mut by_sweep: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for (id, idx, why) in dying {
            by_sweep.entry(id).or_default().push((idx, why));
        }
        let mut n = 0;
        for (id, jobs) in by_sweep {
            let ex = self.executor(&id).await?;
            let items: Vec<Completion> = jobs
                .iter()
                .map(|(idx, why)| {
                    let f = ex.failed(
                        *idx,
                        &format!("dead-lettered: {why}"),
                        Some(candor_core::ErrorKind::Abandoned),
                    );
                    Completion {
                        index: *idx,
                        fence: 0,
                        status: JobStatus::Failed,
                        class_bits: 0,
                        cell: f.cell,
                        dead: Some(why.clone()),
                        result: f.payload,
                        cache_hits: 0,
                        cost_micro_usd: 0,
                    }
                })
                .collect();
            n += self.queue.complete(&id, &items).await.map_err(internal)?.len();
        }
        Ok(n)
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

/// Progress by model × condition, summed over prompt variants.
fn to_status(sweep: &Sweep, st: &SweepState) -> pb::SweepStatus {
    let t = Coordinator::tally(sweep, st);
    let spec = &sweep.spec;
    let mut cells = Vec::new();
    for (m, model) in spec.models.iter().enumerate() {
        for (c, cond) in spec.conditions.iter().enumerate() {
            let done: u64 = (0..spec.prompts.len())
                .map(|v| {
                    let cc = &t.cells[sweep.space.cell(m, v, c)];
                    cc.ok + cc.incomplete + cc.failed
                })
                .sum();
            cells.push(pb::CellProgress {
                model: model.id.clone(),
                condition: cond.name.clone(),
                total: sweep.space.per_cell() * sweep.space.variants,
                done,
            });
        }
    }
    pb::SweepStatus {
        sweep_id: st.id.clone(),
        name: st.name.clone(),
        state: st.state.clone(),
        jobs_total: st.total,
        jobs_done: st.done,
        jobs_failed: st.failed,
        jobs_incomplete: st.incomplete,
        jobs_dead_lettered: st.dead,
        jobs_in_flight: st.in_flight,
        jobs_retrying: st.retrying,
        retries: st.retried,
        lease_expiries: st.lease_expiries,
        simulated: st.simulated,
        created_ms: st.created_ms,
        finished_ms: st.finished_ms,
        reason: st.reason.clone(),
        cost_usd: st.spent_micro_usd as f64 / 1e6,
        budget_usd: st.budget_micro_usd as f64 / 1e6,
        cells,
        failures: st
            .failures
            .iter()
            .map(|f| pb::FailureReason {
                model: f.model.clone(),
                kind: f.kind.clone(),
                jobs: f.jobs,
                first_error: f.first_error.clone(),
            })
            .collect(),
    }
}

fn check_id(id: &str) -> Result<&str, Status> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(Status::invalid_argument("sweep_id: not a sweep id"))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The client-facing service.
#[derive(Clone)]
pub struct SweepsApi(pub Arc<Coordinator>);

impl SweepsApi {
    /// Cancels, or resumes, the sweep named by `req`; answers its status after.
    async fn change_state(
        &self,
        req: Request<pb::SweepRef>,
        resume: bool,
    ) -> Result<Response<pb::SweepStatus>, Status> {
        self.0.metrics.rpc();
        let id = req.into_inner().sweep_id;
        let id = check_id(&id)?;
        let q = &self.0.queue;
        let after = if resume { q.resume(id).await } else { q.cancel(id).await };
        after
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no sweep with id {id}")))?;
        tracing::info!(sweep.id = %id, resume, "sweep state changed");
        Ok(Response::new(self.0.status(id).await?))
    }
}

#[tonic::async_trait]
impl pb::sweeps_server::Sweeps for SweepsApi {
    async fn submit(&self, req: Request<pb::SubmitRequest>) -> Result<Response<pb::SubmitResponse>, Status> {
        self.0.metrics.rpc();
        let b = req
            .into_inner()
            .bundle
            .ok_or_else(|| Status::invalid_argument("bundle: missing"))?;
        let bundle = Bundle::from(b);
        if bundle.size() > MAX_BUNDLE_BYTES {
            return Err(Status::invalid_argument(format!(
                "bundle: larger than {MAX_BUNDLE_BYTES} bytes"
            )));
        }
        let sweep = Sweep::from_bundle(&bundle).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let total = sweep.total_jobs();
        if total > candor_queue::MAX_JOBS {
            return Err(Status::invalid_argument(format!(
                "the sweep has {total} jobs; a distributed sweep may have at most {}",
                candor_queue::MAX_JOBS
            )));
        }
        let early_stopping = match sweep.spec.early_stopping {
            Some(e) => Some(
                candor_core::early::DecisionTable::new(e.target_width, sweep.space.per_cell())
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            ),
            None => None,
        };
        let new = candor_queue::NewSweep {
            id: sweep.id.clone(),
            name: sweep.spec.name.clone(),
            total,
            max_attempts: sweep.spec.max_attempts,
            classifiers: sweep.spec.classifiers.len() as u32,
            simulated: sweep.simulated(),
            budget_micro_usd: sweep.spec.budget_usd.map_or(0, candor_core::budget::micro_usd),
            seeds: sweep.space.seeds,
            queries: sweep.space.queries,
            conditions: sweep.space.conditions,
            early_stopping,
            min_seeds: sweep.spec.early_stopping.map_or(1, |e| e.min_seeds),
            fail_fast: sweep.spec.fail_fast.unwrap_or(candor_core::spec::DEFAULT_FAIL_FAST),
            cells_per_model: (sweep.space.cells() / sweep.spec.models.len()) as u64,
        };
        let json = serde_json::to_string(&bundle).expect("bundles serialize");
        let created = self.0.queue.submit(&new, &json).await.map_err(internal)?;
        // The sweep just checked is the one its id names in Redis: the status
        // and reports that follow need not build it again.
        self.0.cache(&new.id, sweep);
        tracing::info!(sweep.id = %new.id, name = %new.name, jobs = total, created, "sweep submitted");
        Ok(Response::new(pb::SubmitResponse {
            sweep_id: new.id,
            name: new.name,
            jobs_total: total,
            created,
        }))
    }

    async fn get(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        self.0.metrics.rpc();
        Ok(Response::new(
            self.0.status(check_id(&req.into_inner().sweep_id)?).await?,
        ))
    }

    async fn list(&self, _req: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        self.0.metrics.rpc();
        let mut sweeps = Vec::new();
        for id in self.0.queue.list().await.map_err(internal)? {
            sweeps.push(self.0.status(&id).await?);
        }
        Ok(Response::new(pb::ListResponse { sweeps }))
    }

    type WatchStream = BoxStream<pb::SweepStatus>;

    async fn watch(&self, req: Request<pb::SweepRef>) -> Result<Response<Self::WatchStream>, Status> {
        self.0.metrics.rpc();
        let id = check_id(&req.into_inner().sweep_id)?.to_string();
        let first = self.0.status(&id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let co = self.0.clone();
        tokio::spawn(async move {
            let mut last = first;
            if tx.send(Ok(last.clone())).await.is_err() {
                return;
            }
            while last.state == "running" {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now = match co.status(&id).await {
                    Ok(s) => s,
                    Err(e) if e.code() == tonic::Code::Unavailable => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
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
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn cancel(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        self.change_state(req, false).await
    }

    async fn resume(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        self.change_state(req, true).await
    }

    async fn delete(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::DeleteResponse>, Status> {
        self.0.metrics.rpc();
        let id = req.into_inner().sweep_id;
        let id = check_id(&id)?;
        let state = self
            .0
            .queue
            .delete(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no sweep with id {id}")))?;
        if state == "running" || state == "paused" {
            return Err(Status::failed_precondition(format!(
                "sweep {id} is {state}; cancel it first (`candor cancel {id}`)"
            )));
        }
        tracing::info!(sweep.id = %id, %state, "sweep deleted");
        Ok(Response::new(pb::DeleteResponse {
            sweep_id: id.to_string(),
            state,
        }))
    }

    async fn report(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::ReportResponse>, Status> {
        self.0.metrics.rpc();
        let r = self.0.report(check_id(&req.into_inner().sweep_id)?).await?;
        Ok(Response::new(pb::ReportResponse {
            report_json: serde_json::to_string_pretty(&r).expect("reports serialize") + "\n",
            report_md: r.to_markdown(),
        }))
    }

    type ResultsStream = BoxStream<pb::ResultsChunk>;

    async fn results(&self, req: Request<pb::SweepRef>) -> Result<Response<Self::ResultsStream>, Status> {
        self.0.metrics.rpc();
        let id = check_id(&req.into_inner().sweep_id)?.to_string();
        let st = self.0.state(&id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let queue = self.0.queue.clone();
        tokio::spawn(async move {
            // HSCAN may return an entry twice; each job goes out once.
            let mut seen = DoneSet::new(st.total);
            let mut cursor = 0;
            loop {
                let (next, page) = match queue.results_page(&id, cursor, 1000).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(internal(e))).await;
                        return;
                    }
                };
                let mut chunk = Vec::new();
                for (idx, payload) in page {
                    if idx < st.total && seen.insert(idx) {
                        chunk.extend_from_slice(&payload);
                        chunk.push(b'\n');
                    }
                }
                if !chunk.is_empty() && tx.send(Ok(pb::ResultsChunk { jsonl: chunk })).await.is_err() {
                    return;
                }
                if next == 0 {
                    return;
                }
                cursor = next;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// The worker-facing service.
#[derive(Clone)]
pub struct WorkersApi(pub Arc<Coordinator>);

fn job_status(s: i32) -> JobStatus {
    match pb::JobStatus::try_from(s) {
        Ok(pb::JobStatus::Ok) => JobStatus::Ok,
        Ok(pb::JobStatus::Incomplete) => JobStatus::Incomplete,
        _ => JobStatus::Failed,
    }
}

fn group<T>(items: Vec<T>, id: impl Fn(&T) -> Option<&String>) -> Result<HashMap<String, Vec<T>>, Status> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for it in items {
        let sid = id(&it).ok_or_else(|| Status::invalid_argument("job: missing"))?;
        check_id(sid)?;
        out.entry(sid.clone()).or_default().push(it);
    }
    Ok(out)
}

#[tonic::async_trait]
impl pb::workers_server::Workers for WorkersApi {
    async fn lease(&self, req: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseResponse>, Status> {
        self.0.metrics.rpc();
        let r = req.into_inner();
        let span = tracing::info_span!("lease", worker = %r.worker_id, slots = r.slots);
        async move {
            let slots = r.slots.clamp(1, 10_000);
            let ttl = self.0.settings.lease_ttl.as_millis() as u64;
            let leases = self.0.queue.lease(slots, ttl).await.map_err(internal)?;
            self.0.metrics.leased(leases.len() as u64);
            let traceparent = candor_proto::trace::traceparent(&tracing::Span::current());
            Ok(Response::new(pb::LeaseResponse {
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
            }))
        }
        .instrument(span)
        .await
    }

    async fn renew(&self, req: Request<pb::RenewRequest>) -> Result<Response<pb::RenewResponse>, Status> {
        self.0.metrics.rpc();
        let jobs: Vec<JobRef> = req
            .into_inner()
            .jobs
            .into_iter()
            .map(|j| JobRef {
                sweep_id: j.sweep_id,
                index: j.index,
                fence: j.fence,
            })
            .collect();
        if jobs.len() > 100_000 {
            return Err(Status::invalid_argument("jobs: at most 100000 per call"));
        }
        let ttl = self.0.settings.lease_ttl.as_millis() as u64;
        let held = self.0.queue.renew(&jobs, ttl).await.map_err(internal)?;
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
        Ok(Response::new(pb::RenewResponse { lost }))
    }

    async fn complete(&self, req: Request<pb::CompleteRequest>) -> Result<Response<pb::CompleteResponse>, Status> {
        self.0.metrics.rpc();
        let mut resp = pb::CompleteResponse::default();
        for (id, items) in group(req.into_inner().completions, |c| c.job.as_ref().map(|j| &j.sweep_id))? {
            let items: Vec<Completion> = items
                .into_iter()
                .map(|c| {
                    let j = c.job.expect("grouped by job");
                    Completion {
                        index: j.index,
                        fence: j.fence.max(1),
                        status: job_status(c.status),
                        class_bits: c.class_bits,
                        cell: c.cell,
                        dead: None,
                        result: c.result,
                        cache_hits: c.cache_hits,
                        cost_micro_usd: c.cost_micro_usd,
                    }
                })
                .collect();
            for r in self.0.queue.complete(&id, &items).await.map_err(internal)? {
                match r {
                    candor_queue::Recorded::Recorded => resp.recorded += 1,
                    candor_queue::Recorded::Duplicate => resp.duplicate += 1,
                    candor_queue::Recorded::Stale => resp.stale += 1,
                }
            }
        }
        Ok(Response::new(resp))
    }

    async fn fail(&self, req: Request<pb::FailRequest>) -> Result<Response<pb::FailResponse>, Status> {
        self.0.metrics.rpc();
        let mut resp = pb::FailResponse::default();
        for (id, items) in group(req.into_inner().failures, |f| f.job.as_ref().map(|j| &j.sweep_id))? {
            let items: Vec<Failure> = items
                .into_iter()
                .map(|f| {
                    let j = f.job.expect("grouped by job");
                    Failure {
                        index: j.index,
                        fence: j.fence,
                        kind: match pb::FailKind::try_from(f.kind) {
                            Ok(pb::FailKind::Permanent) => FailKind::Permanent,
                            Ok(pb::FailKind::Released) => FailKind::Released,
                            Ok(pb::FailKind::Paused) => FailKind::Paused,
                            _ => FailKind::Retryable,
                        },
                        error: f.error,
                        attempt: f.attempt,
                        cell: f.cell,
                        result: f.result,
                        persistent: f.persistent,
                    }
                })
                .collect();
            for r in self.0.queue.fail(&id, &items).await.map_err(internal)? {
                use candor_queue::FailOutcome as O;
                match r {
                    O::Retried => resp.retried += 1,
                    O::DeadLettered => resp.dead_lettered += 1,
                    O::Failed => resp.failed += 1,
                    O::Released | O::Paused | O::Held => resp.released += 1,
                    O::AlreadyDone | O::Stale => resp.ignored += 1,
                }
            }
        }
        Ok(Response::new(resp))
    }

    async fn bundle(&self, req: Request<pb::SweepRef>) -> Result<Response<pb::SpecBundle>, Status> {
        self.0.metrics.rpc();
        let id = req.into_inner().sweep_id;
        let id = check_id(&id)?;
        let json = self
            .0
            .queue
            .bundle(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no sweep with id {id}")))?;
        let b: Bundle =
            serde_json::from_str(&json).map_err(|e| Status::internal(format!("stored bundle of {id}: {e}")))?;
        Ok(Response::new(b.into()))
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
    use candor_proto::auth::Check;
    use tonic::service::interceptor::InterceptedService;

    let reaper = {
        let co = co.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match co.reap().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(jobs = n, "dead-lettered jobs whose leases kept expiring"),
                    Err(e) => tracing::debug!(error = %e, "reaper"),
                }
            }
        })
    };
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
    // Small RPCs (leases, renewals) must not wait on Nagle's algorithm.
    let incoming = tonic::transport::server::TcpIncoming::from(opts.listener).with_nodelay(Some(true));
    let result = builder
        .add_service(InterceptedService::new(sweeps, Check(opts.token.clone())))
        .add_service(InterceptedService::new(workers, Check(opts.token)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    reaper.abort();
    Ok(result?)
}

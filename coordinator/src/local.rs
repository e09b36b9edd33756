//! The local runner: a whole sweep in one process on the embedded store.
//!
//! Dispatch tasks walk the jobs seed by seed from a shared cursor, skip the
//! ones the store already has (and, with early stopping, the later seeds of
//! cells that are narrow enough), and run each under a generation slot; a
//! single writer thread appends results to the store in batches. A rerun of the same spec on the
//! same store runs only the jobs without a result.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use candor_core::budget::{self, Admit, Budget};
use candor_core::early::EarlyStop;
use candor_core::{ErrorKind, Status, Sweep};
use candor_exec::{Executed, Executor};
use candor_report::report::{Provenance, Report};
use candor_store::{DoneSet, Store, StoreError, SweepLog};
use tokio::sync::{Semaphore, mpsc};

use candor_report::export::{ExportError, export};

/// Results are flushed to disk (fdatasync) at least this often.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Finished jobs waiting for the writer.
const WRITE_QUEUE: usize = 1024;

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub store: PathBuf,
    pub out: PathBuf,
    /// Jobs calling the models under test at once.
    pub concurrency: usize,
    /// Jobs calling their judges at once (a stage of its own).
    pub judge_concurrency: usize,
    /// Answer repeated model calls from the response cache in the store.
    pub cache: bool,
    /// A model whose first this many jobs all fail for a reason that will
    /// not pass gets no more jobs; 0 never gives up.
    pub fail_fast: u32,
}

/// Where a local run's archive is, in its store.
pub const ARCHIVE_DIR: &str = "archive";

/// The most failure notices waiting for the display.
const MAX_NOTICES: usize = 64;

/// Live counters a caller can poll to show progress.
#[derive(Debug, Default)]
pub struct Progress {
    pub total: AtomicU64,
    /// Jobs with a result in the store, including earlier runs'.
    pub done: AtomicU64,
    /// Jobs that already had a result when this run started.
    pub resumed: AtomicU64,
    /// Failed tries of jobs in this run (a job tried three times counts three).
    pub failed: AtomicU64,
    /// Jobs with a result, failed ones and cost by model × condition.
    pub cells: crate::local_progress::CellCounts,
    notices: std::sync::Mutex<Notices>,
}

#[derive(Debug, Default)]
struct Notices {
    /// (model, kind) pairs already shown.
    seen: std::collections::HashSet<(usize, Option<ErrorKind>)>,
    waiting: Vec<String>,
}

impl Progress {
    /// Counts a failed try; the first of each kind per model becomes a notice.
    fn failed_try(&self, sweep: &Sweep, done: &Executed) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut n = self.notices.lock().expect("lock");
        if n.waiting.len() < MAX_NOTICES && n.seen.insert((done.model, done.error_kind)) {
            let model = &sweep.spec.models[done.model].id;
            let error = done.error.as_deref().unwrap_or("(no error recorded)");
            let hint = done.error_kind.map_or("", |k| k.hint());
            n.waiting.push(format!(
                "model {model}: {error}{}{hint} (more failures like this are counted, not shown)",
                if hint.is_empty() { "" } else { " — " }
            ));
        }
    }

    /// Notices not shown yet: the first failure of each kind per model.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut self.notices.lock().expect("lock").waiting)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every job has a result.
    Completed,
    /// Stopped early on request; a rerun carries on.
    Interrupted,
    /// Stopped because a provider refused an API key; says which. The jobs
    /// that met the refusal have no result, so a rerun with the key fixed
    /// runs them.
    Paused(String),
    /// Stopped starting jobs because the spec's `budget_usd` was reached.
    BudgetExhausted,
    /// Some models got no more jobs because their first jobs all failed for
    /// a reason that will not pass; one line per model says why. Their
    /// failed jobs have no result, so a rerun after the fix runs them.
    ModelsFailed(Vec<String>),
}

/// Fail fast: watches each model's first jobs and gives up on a model whose
/// first `limit` jobs all failed for a reason that will not pass. Until a
/// model has answered once, such failures are held back rather than stored,
/// so that a model given up on leaves its jobs without results.
struct FailFast {
    limit: usize,
    models: Vec<std::sync::Mutex<Watch>>,
}

#[derive(Default)]
struct Watch {
    answered: bool,
    held: Vec<Executed>,
    /// Why the model got no more jobs.
    dead: Option<String>,
}

impl FailFast {
    fn new(models: usize, limit: u32) -> FailFast {
        FailFast {
            limit: limit as usize,
            models: (0..models).map(|_| Default::default()).collect(),
        }
    }

    fn is_dead(&self, model: usize) -> bool {
        self.models[model].lock().expect("lock").dead.is_some()
    }

    /// A finished job: returns the results to store now (none, it, or it
    /// with those held back before it).
    fn finished(&self, sweep: &Sweep, done: Executed) -> Vec<Executed> {
        // A refused parameter is refused on every call: the first one stops
        // the model, whatever the limit.
        let refused = done.error_kind == Some(ErrorKind::Param);
        if self.limit == 0 && !refused {
            return vec![done];
        }
        let mut w = self.models[done.model].lock().expect("lock");
        if done.meta.status != Status::Failed {
            w.answered = true;
            let mut out = std::mem::take(&mut w.held);
            out.push(done);
            return out;
        }
        let persistent = done.error_kind.is_some_and(ErrorKind::is_persistent);
        if w.answered || !persistent {
            return vec![done];
        }
        if w.dead.is_some() {
            return Vec::new();
        }
        let first = w.held.first().unwrap_or(&done).error.clone().unwrap_or_default();
        let refusal = refused.then(|| done.error.clone().unwrap_or_default());
        w.held.push(done);
        if w.held.len() >= self.limit || refused {
            let model = &sweep.spec.models[w.held[0].model].id;
            let why = match refusal {
                Some(message) => format!("model {model}: no more of its jobs are sent: {message}"),
                None => format!(
                    "model {model}: its first {} jobs all failed and none succeeded: {first}",
                    w.held.len()
                ),
            };
            tracing::info!(reason = %why, "giving up on a model");
            w.dead = Some(why);
            w.held.clear();
        }
        Vec::new()
    }

    /// Results still held back at the end (models that never reached the limit).
    fn drain(&self) -> Vec<Executed> {
        self.models
            .iter()
            .flat_map(|w| std::mem::take(&mut w.lock().expect("lock").held))
            .collect()
    }

    fn dead(&self) -> Vec<String> {
        self.models
            .iter()
            .filter_map(|w| w.lock().expect("lock").dead.clone())
            .collect()
    }
}

#[derive(Debug)]
pub struct RunSummary {
    pub outcome: Outcome,
    pub report: Report,
    /// Jobs that already had a result when the run started.
    pub resumed: u64,
    /// Jobs run by this run.
    pub ran: u64,
    /// Bytes of a torn record dropped from the store on open.
    pub dropped_bytes: u64,
    pub elapsed: Duration,
    pub out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("response cache {path}: {source}")]
    Cache { path: PathBuf, source: std::io::Error },
    #[error("journal of batches {path}: {source}")]
    Journal { path: PathBuf, source: std::io::Error },
    #[error("the store writer stopped unexpectedly")]
    WriterPanicked,
    #[error(transparent)]
    Archive(#[from] candor_archive::ArchiveError),
    #[error("store {path}: result of job {index} is unreadable: {reason}")]
    Unreadable { path: PathBuf, index: u64, reason: String },
}

/// Runs every job of `sweep` that has no result in the store yet, then
/// writes the results and the report. Setting `stop` makes it finish the
/// jobs in flight, write what it has, and return `Interrupted`.
pub async fn run_local(
    sweep: Arc<Sweep>,
    opts: &LocalOptions,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let total = sweep.total_jobs();
    let log = Store::new(&opts.store).open_sweep(&sweep.id, total)?;
    let (resumed, dropped_bytes) = (log.done().count(), log.dropped_bytes());
    tracing::info!(sweep.id = %sweep.id, jobs = total, resumed, dropped_bytes, store = %log.path().display(), "sweep log open");
    progress.total.store(total, Ordering::Relaxed);
    progress.done.store(resumed, Ordering::Relaxed);
    progress.resumed.store(resumed, Ordering::Relaxed);
    progress.cells.start(&sweep, &log)?;
    let (tx, rx) = mpsc::channel::<Executed>(WRITE_QUEUE);
    let d = Arc::new(Dispatch::new(&sweep, opts, &log, tx, stop, progress.clone())?);
    let writer = std::thread::Builder::new()
        .name("candor-store-writer".into())
        .spawn(move || write_results(log, rx, &progress))
        .expect("spawning a thread");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..d.tasks(opts) {
        tasks.spawn(d.clone().task());
    }
    while let Some(r) = tasks.join_next().await {
        propagate(r);
    }
    for done in d.fail_fast.drain() {
        if d.tx.send(done).await.is_err() {
            break;
        }
    }
    let ended = d.ended();
    drop(d); // the last sender: the writer finishes
    let (log, ran) = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|_| RunError::WriterPanicked)?
        .map_err(|_| RunError::WriterPanicked)??;
    tracing::info!(sweep.id = %sweep.id, ran, done = log.done().count(), "dispatch finished");
    let outcome = ended.outcome(log.done().count(), total);
    let started_ms = now_ms().saturating_sub(started.elapsed().as_millis() as u64);
    let archive = opts.store.join(ARCHIVE_DIR);
    let report = write_report(sweep, log, (opts.out.clone(), archive), &outcome, ended, started_ms).await?;
    Ok(RunSummary {
        outcome,
        report,
        resumed,
        ran,
        dropped_bytes,
        elapsed: started.elapsed(),
        out: opts.out.clone(),
    })
}

/// What every dispatch task shares.
struct Dispatch {
    sweep: Arc<Sweep>,
    executor: Executor,
    /// Generation slots: a job holds one while its model is called (see
    /// `Executor::run`).
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Executed>,
    stop: Arc<AtomicBool>,
    /// Why a refused key paused the run.
    paused: std::sync::Mutex<Option<String>>,
    /// The spec's budget, under one lock so that admitting a job and
    /// counting a finished one are each one step across the tasks.
    budget: Option<std::sync::Mutex<Budget>>,
    early: Option<EarlyStop>,
    /// The next dispatch position.
    cursor: AtomicU64,
    /// Jobs the store had when the run started.
    todo: DoneSet,
    fail_fast: FailFast,
    progress: Arc<Progress>,
}

/// What a finished dispatch leaves for the outcome and the report.
struct Ended {
    paused: Option<String>,
    dead: Vec<String>,
    exhausted: bool,
    skipped: u64,
    stops: Option<Vec<Option<u32>>>,
}

impl Dispatch {
    fn new(
        sweep: &Arc<Sweep>,
        opts: &LocalOptions,
        log: &SweepLog,
        tx: mpsc::Sender<Executed>,
        stop: Arc<AtomicBool>,
        progress: Arc<Progress>,
    ) -> Result<Dispatch, RunError> {
        let early = EarlyStop::new(sweep);
        if let Some(e) = &early {
            // Resuming: the cells' counts so far decide what stops.
            log.scan(|meta, _| {
                let cell = sweep.space.cell_of(&sweep.space.decode(meta.index));
                e.record(cell, meta.status == Status::Ok, meta.class_bits & 1 == 1);
            })?;
        }
        // A resumed run knows its dearest stored job, a batched sweep its
        // reserve: jobs in flight are counted at these from the start, not at $0.
        let budget = sweep.spec.budget_usd.map(|b| {
            let resumed = Budget::resumed(
                budget::micro_usd(b),
                log.spent_micro_usd(),
                log.max_cost_micro_usd(),
                log.done().count(),
            );
            std::sync::Mutex::new(resumed.with_reserve(sweep.reserved_micro_usd()))
        });
        Ok(Dispatch {
            sweep: sweep.clone(),
            executor: crate::local_executor::executor(sweep, opts)?,
            slots: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            tx,
            stop,
            paused: std::sync::Mutex::new(None),
            budget,
            early,
            cursor: AtomicU64::new(0),
            todo: log.done().clone(),
            fail_fast: FailFast::new(sweep.spec.models.len(), opts.fail_fast),
            progress,
        })
    }

    /// Dispatch tasks: with judges there are more of them than generation
    /// slots, so jobs being judged do not keep others from starting.
    fn tasks(&self, opts: &LocalOptions) -> usize {
        let has_judges = self.sweep.judge_models.iter().any(Option::is_some);
        opts.concurrency.max(1) + if has_judges { opts.judge_concurrency.max(1) } else { 0 }
    }

    /// One dispatch task: takes positions from the cursor until none is
    /// left, the run stops, or the writer has stopped (it reports why).
    async fn task(self: Arc<Self>) {
        let total = self.sweep.total_jobs();
        while !self.stop.load(Ordering::Relaxed) {
            let pos = self.cursor.fetch_add(1, Ordering::Relaxed);
            if pos >= total || !self.position(pos).await {
                break;
            }
        }
    }

    /// Runs the job at dispatch position `pos` if it is to run; false when
    /// the task is to end.
    async fn position(&self, pos: u64) -> bool {
        let (sweep, i) = (&self.sweep, self.sweep.space.dispatch(pos));
        if self.todo.contains(i) {
            return true;
        }
        let t = sweep.space.decode(i);
        if self.fail_fast.is_dead(t.model) {
            return true;
        }
        let cell = sweep.space.cell_of(&t);
        let slot = self.slots.clone().acquire_owned().await.expect("never closed");
        if let Some(e) = &self.early
            && !e.admit(cell, t.seed)
        {
            return true;
        }
        if !self.admit().await {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        let done = self.attempts(i, slot).await;
        if let Some(b) = &self.budget {
            b.lock().expect("lock").finished(done.meta.cost_micro_usd);
        }
        if done.unauthorized {
            // Every job of this model would meet the same refusal.
            let why = done.error.clone().unwrap_or_default();
            self.paused.lock().expect("lock").get_or_insert(why);
            self.stop.store(true, Ordering::Relaxed);
            return true;
        }
        if let Some(e) = &self.early {
            e.record(cell, done.meta.status == Status::Ok, done.meta.class_bits & 1 == 1);
        }
        for done in self.fail_fast.finished(sweep, done) {
            if self.tx.send(done).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Whether the budget lets one more job start (waiting while no cost is
    /// known, none is reserved and a job is running).
    async fn admit(&self) -> bool {
        let Some(b) = &self.budget else { return true };
        loop {
            let a = b.lock().expect("lock").admit(1);
            match a {
                Admit::Start(_) => return true,
                Admit::Exhausted => return false,
                Admit::Wait => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// Job `i`, tried until it is done, out of attempts, or the run stops.
    async fn attempts(&self, i: u64, first_slot: tokio::sync::OwnedSemaphorePermit) -> Executed {
        let mut slot = Some(first_slot);
        let mut attempt = 1;
        loop {
            let s = match slot.take() {
                Some(s) => s,
                None => self.slots.clone().acquire_owned().await.expect("never closed"),
            };
            let done = self.executor.run(i, attempt, s).await;
            if done.meta.status == Status::Failed && !done.unauthorized {
                self.progress.failed_try(&self.sweep, &done);
            }
            if !done.retryable || attempt >= self.sweep.spec.max_attempts || self.stop.load(Ordering::Relaxed) {
                return done;
            }
            tokio::time::sleep(candor_core::retry::backoff(attempt, i)).await;
            attempt += 1;
        }
    }

    fn ended(&self) -> Ended {
        let early = self.early.as_ref();
        Ended {
            paused: self.paused.lock().expect("lock").take(),
            dead: self.fail_fast.dead(),
            exhausted: self
                .budget
                .as_ref()
                .is_some_and(|b| b.lock().expect("lock").is_exhausted()),
            skipped: early.map_or(0, |e| e.skipped(self.sweep.space.queries)),
            stops: early.map(EarlyStop::stops),
        }
    }
}

impl Ended {
    fn outcome(&self, done: u64, total: u64) -> Outcome {
        if done + self.skipped == total {
            Outcome::Completed
        } else if let Some(why) = &self.paused {
            Outcome::Paused(why.clone())
        } else if !self.dead.is_empty() {
            Outcome::ModelsFailed(self.dead.clone())
        } else if self.exhausted {
            Outcome::BudgetExhausted
        } else {
            Outcome::Interrupted
        }
    }
}

/// Writes results.jsonl, the report and its views from the store, with
/// what the run knows besides the results: its times, the models it
/// stopped, a spent budget, early stopping's cutoffs; then the archive.
async fn write_report(
    sweep: Arc<Sweep>,
    log: SweepLog,
    (out, archive): (PathBuf, PathBuf),
    outcome: &Outcome,
    ended: Ended,
    started_ms: u64,
) -> Result<Report, RunError> {
    let exhausted = *outcome == Outcome::BudgetExhausted;
    let stopped_models = match outcome {
        Outcome::ModelsFailed(why) => why.clone(),
        _ => Vec::new(),
    };
    tokio::task::spawn_blocking(move || {
        let report = export(&sweep, &log, &out, |r| {
            r.sweep.provenance = Provenance::of(&sweep, Some(started_ms), Some(now_ms()));
            for why in stopped_models.iter().rev() {
                r.notes
                    .insert(0, format!("STOPPED: {why}; its other jobs were not run."));
            }
            if exhausted {
                r.mark_budget_exhausted();
            }
            if let Some(stops) = &ended.stops {
                r.mark_stopped_early(stops, ended.skipped);
            }
        })?;
        crate::local_archive::write(&sweep.id, &log, &archive)?;
        Ok(report)
    })
    .await
    .map_err(|_| RunError::WriterPanicked)?
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Re-raises a job task's panic.
fn propagate(r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The writer thread: appends finished jobs in batches until every sender
/// is gone; returns the log and how many results it wrote.
fn write_results(
    mut log: SweepLog,
    mut rx: mpsc::Receiver<Executed>,
    progress: &Progress,
) -> Result<(SweepLog, u64), StoreError> {
    let mut batch: Vec<Executed> = Vec::with_capacity(WRITE_QUEUE);
    let mut last_sync = Instant::now();
    let mut written = 0u64;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < WRITE_QUEUE {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        for e in batch.iter().filter(|e| !log.done().contains(e.meta.index)) {
            progress.cells.record(&e.meta);
        }
        let n = log.append(batch.iter().map(|e| (e.meta, e.payload.as_slice())))?;
        batch.clear();
        written += n as u64;
        progress.done.fetch_add(n as u64, Ordering::Relaxed);
        if last_sync.elapsed() >= SYNC_INTERVAL {
            log.sync()?;
            last_sync = Instant::now();
        }
    }
    log.sync()?;
    Ok((log, written))
}

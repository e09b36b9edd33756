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
use candor_exec::cache::{Cache, FileCache};
use candor_exec::limit::LocalLimiter;
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
        self.limit > 0 && self.models[model].lock().expect("lock").dead.is_some()
    }

    /// A finished job: returns the results to store now (none, it, or it
    /// with those held back before it).
    fn finished(&self, sweep: &Sweep, done: Executed) -> Vec<Executed> {
        if self.limit == 0 {
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
        w.held.push(done);
        if w.held.len() >= self.limit {
            let why = format!(
                "model {}: its first {} jobs all failed and none succeeded: {first}",
                sweep.spec.models[w.held[0].model].id,
                w.held.len()
            );
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
    #[error("the store writer stopped unexpectedly")]
    WriterPanicked,
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
    let resumed = log.done().count();
    let dropped_bytes = log.dropped_bytes();
    tracing::info!(sweep.id = %sweep.id, jobs = total, resumed, dropped_bytes, store = %log.path().display(), "sweep log open");
    let todo: Arc<DoneSet> = Arc::new(log.done().clone());
    let early = EarlyStop::new(&sweep).map(Arc::new);
    if let Some(e) = &early {
        // Resuming: the cells' counts so far decide what stops.
        log.scan(|meta, _| {
            let cell = sweep.space.cell_of(&sweep.space.decode(meta.index));
            e.record(cell, meta.status == Status::Ok, meta.class_bits & 1 == 1);
        })?;
    }
    let fail_fast = Arc::new(FailFast::new(sweep.spec.models.len(), opts.fail_fast));
    // The spec's budget, under one lock so that admitting a job and counting
    // a finished one are each one step across the dispatch tasks. A resumed
    // run knows its dearest stored job: jobs in flight are counted at it
    // from the start, not at $0.
    let budget: Option<Arc<std::sync::Mutex<Budget>>> = sweep.spec.budget_usd.map(|b| {
        Arc::new(std::sync::Mutex::new(Budget::resumed(
            budget::micro_usd(b),
            log.spent_micro_usd(),
            log.max_cost_micro_usd(),
            resumed,
        )))
    });
    progress.total.store(total, Ordering::Relaxed);
    progress.done.store(resumed, Ordering::Relaxed);
    progress.resumed.store(resumed, Ordering::Relaxed);

    let (tx, rx) = mpsc::channel::<Executed>(WRITE_QUEUE);
    let writer = {
        let progress = progress.clone();
        std::thread::Builder::new()
            .name("candor-store-writer".into())
            .spawn(move || write_results(log, rx, &progress))
            .expect("spawning a thread")
    };

    let calls_models = sweep
        .spec
        .models
        .iter()
        .any(|m| m.backend != candor_core::spec::BackendKind::Sim);
    let cache: Option<Arc<dyn Cache>> = if opts.cache && calls_models {
        let path = opts.store.join("responses.log");
        let c = FileCache::open(&path).map_err(|source| RunError::Cache { path, source })?;
        Some(Arc::new(c))
    } else {
        None
    };
    let concurrency = opts.concurrency.max(1);
    let judge_slots = Arc::new(Semaphore::new(opts.judge_concurrency.max(1)));
    let executor = Arc::new(Executor::new(
        sweep.clone(),
        Arc::new(LocalLimiter::default()),
        cache,
        judge_slots,
    ));
    let max_attempts = sweep.spec.max_attempts;
    let paused: Arc<std::sync::Mutex<Option<String>>> = Arc::new(std::sync::Mutex::new(None));
    // Generation slots: a job holds one while its model is called (see
    // `Executor::run`). With judges there are more dispatch tasks than
    // generation slots, so jobs being judged do not keep others from starting.
    let slots = Arc::new(Semaphore::new(concurrency));
    let has_judges = sweep.judge_models.iter().any(Option::is_some);
    let dispatchers = concurrency + if has_judges { opts.judge_concurrency.max(1) } else { 0 };
    let cursor = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..dispatchers {
        let (executor, slots, tx, stop, paused, budget, early, cursor, todo, sweep, fail_fast, progress) = (
            executor.clone(),
            slots.clone(),
            tx.clone(),
            stop.clone(),
            paused.clone(),
            budget.clone(),
            early.clone(),
            cursor.clone(),
            todo.clone(),
            sweep.clone(),
            fail_fast.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let pos = cursor.fetch_add(1, Ordering::Relaxed);
                if pos >= total {
                    break;
                }
                let i = sweep.space.dispatch(pos);
                if todo.contains(i) {
                    continue;
                }
                let t = sweep.space.decode(i);
                if fail_fast.is_dead(t.model) {
                    continue;
                }
                let cell = sweep.space.cell_of(&t);
                let mut slot = Some(slots.clone().acquire_owned().await.expect("never closed"));
                if let Some(e) = &early
                    && !e.admit(cell, t.seed)
                {
                    continue;
                }
                let admitted = loop {
                    let Some(b) = &budget else { break true };
                    let a = b.lock().expect("lock").admit(1);
                    match a {
                        Admit::Start(_) => break true,
                        Admit::Exhausted => break false,
                        // No cost known yet and a job running: ask again shortly.
                        Admit::Wait => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                };
                if !admitted {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                let mut attempt = 1;
                let done = loop {
                    let s = match slot.take() {
                        Some(s) => s,
                        None => slots.clone().acquire_owned().await.expect("never closed"),
                    };
                    let done = executor.run(i, attempt, s).await;
                    if done.meta.status == Status::Failed && !done.unauthorized {
                        progress.failed_try(&sweep, &done);
                    }
                    if !done.retryable || attempt >= max_attempts || stop.load(Ordering::Relaxed) {
                        break done;
                    }
                    tokio::time::sleep(candor_core::retry::backoff(attempt, i)).await;
                    attempt += 1;
                };
                if let Some(b) = &budget {
                    b.lock().expect("lock").finished(done.meta.cost_micro_usd);
                }
                if done.unauthorized {
                    // Every job of this model would meet the same refusal.
                    paused
                        .lock()
                        .expect("lock")
                        .get_or_insert_with(|| done.error.clone().unwrap_or_default());
                    stop.store(true, Ordering::Relaxed);
                    continue;
                }
                if let Some(e) = &early {
                    e.record(cell, done.meta.status == Status::Ok, done.meta.class_bits & 1 == 1);
                }
                for done in fail_fast.finished(&sweep, done) {
                    if tx.send(done).await.is_err() {
                        return; // the writer has stopped; it reports why
                    }
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        propagate(r);
    }
    for done in fail_fast.drain() {
        if tx.send(done).await.is_err() {
            break;
        }
    }
    drop(tx);
    let (log, ran) = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|_| RunError::WriterPanicked)?
        .map_err(|_| RunError::WriterPanicked)??;

    tracing::info!(sweep.id = %sweep.id, ran, done = log.done().count(), "dispatch finished");
    let skipped = early.as_ref().map_or(0, |e| e.skipped(sweep.space.queries));
    let stops = early.as_ref().map(|e| e.stops());
    let outcome = if log.done().count() + skipped == total {
        Outcome::Completed
    } else if let Some(why) = paused.lock().expect("lock").take() {
        Outcome::Paused(why)
    } else if !fail_fast.dead().is_empty() {
        Outcome::ModelsFailed(fail_fast.dead())
    } else if budget.as_ref().is_some_and(|b| b.lock().expect("lock").is_exhausted()) {
        Outcome::BudgetExhausted
    } else {
        Outcome::Interrupted
    };
    let out = opts.out.clone();
    let exhausted = outcome == Outcome::BudgetExhausted;
    let stopped_models = match &outcome {
        Outcome::ModelsFailed(why) => why.clone(),
        _ => Vec::new(),
    };
    let started_ms = now_ms().saturating_sub(started.elapsed().as_millis() as u64);
    let report = {
        let sweep = sweep.clone();
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            export(&sweep, &log, &out, |r| {
                r.sweep.provenance = Provenance::of(&sweep, Some(started_ms), Some(now_ms()));
                for why in stopped_models.iter().rev() {
                    r.notes
                        .insert(0, format!("STOPPED: {why}; its other jobs were not run."));
                }
                if exhausted {
                    r.mark_budget_exhausted();
                }
                if let Some(stops) = &stops {
                    r.mark_stopped_early(stops, skipped);
                }
            })
        })
        .await
        .map_err(|_| RunError::WriterPanicked)??
    };
    Ok(RunSummary {
        outcome,
        report,
        resumed,
        ran,
        dropped_bytes,
        elapsed: started.elapsed(),
        out,
    })
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

//! The executor of a local run, with what it keeps in the store: the
//! response cache and the journal of batches.

use std::sync::Arc;

use candor_core::Sweep;
use candor_exec::batch::journal::{FileJournal, Journal};
use candor_exec::cache::{Cache, FileCache};
use candor_exec::execute::Executor;
use candor_exec::limit::LocalLimiter;
use tokio::sync::Semaphore;

use crate::local::{LocalOptions, RunError};

/// The executor of a local run: in-process rate limits, the response cache
/// in the store (when a model is called at all), its judge slots.
pub(crate) fn executor(sweep: &Arc<Sweep>, opts: &LocalOptions) -> Result<Executor, RunError> {
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
    let judge_slots = Arc::new(Semaphore::new(opts.judge_concurrency.max(1)));
    let journal: Option<Arc<dyn Journal>> = if sweep
        .spec
        .models
        .iter()
        .chain(&sweep.spec.judges)
        .any(|m| m.batched().is_some())
    {
        let path = opts.store.join("batches").join(format!("{}.jsonl", sweep.id));
        let j = FileJournal::open(&path).map_err(|source| RunError::Journal { path, source })?;
        Some(Arc::new(j))
    } else {
        None
    };
    Ok(Executor::new(
        sweep.clone(),
        Arc::new(LocalLimiter::default()),
        cache,
        judge_slots,
        journal,
    ))
}

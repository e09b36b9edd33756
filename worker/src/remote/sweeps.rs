//! The sweeps this worker has loaded: each one's executor, built once from
//! the bundle the coordinator hands out, with what every executor of the
//! worker shares (the rate-limit budgets, the response cache, the judge
//! stage's slots) and the sweep's journal of batches in Redis. A cache of
//! loaded specs only: no sweep state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candor_core::Sweep;
use candor_core::spec::Bundle;
use candor_exec::batch::journal::Journal;
use candor_exec::cache::Cache;
use candor_exec::execute::Executor;
use candor_exec::limit::{Limiter, LocalLimiter};
use candor_proto::v1 as pb;
use tokio::sync::Semaphore;

use super::{Client, RemoteOptions};
use crate::batches::RedisJournal;
use crate::cache::RedisCache;
use crate::limit::RedisLimiter;

/// Executors kept; past it the cache starts again empty.
const KEPT: usize = 64;

pub(super) struct Sweeps {
    /// Rate-limit budgets: in Redis when the worker has it, so the fleet shares them.
    limiter: Arc<dyn Limiter>,
    /// The response cache in Redis, when the worker has Redis and caching is on.
    cache: Option<Arc<dyn Cache>>,
    /// The judge stage: permits for jobs calling their judges.
    judge_slots: Arc<Semaphore>,
    /// Redis, for each sweep's journal of batches, when the worker has it.
    redis: Option<candor_queue::Queue>,
    loaded: Mutex<HashMap<String, Arc<Executor>>>,
    /// Sweeps whose batches this worker has cancelled at the provider.
    cancelled: Mutex<std::collections::HashSet<String>>,
}

impl Sweeps {
    pub(super) fn new(opts: &RemoteOptions) -> Sweeps {
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
        Sweeps {
            limiter,
            cache,
            judge_slots: Arc::new(Semaphore::new(opts.judge_concurrency.max(1))),
            redis: opts.redis.clone(),
            loaded: Mutex::new(HashMap::new()),
            cancelled: Mutex::new(Default::default()),
        }
    }

    /// After this worker lost leases of sweep `id`: when the sweep was
    /// cancelled (`candor cancel`), asks the providers to cancel its
    /// batches in flight, once per sweep and worker. Needs Redis (the
    /// journal and the sweep's state are there).
    pub(super) async fn cancel_batches_if_cancelled(&self, id: &str) {
        let Some(q) = &self.redis else { return };
        let Some(ex) = self.loaded.lock().expect("lock").get(id).cloned() else {
            return;
        };
        let spec = &ex.sweep().spec;
        if !spec.models.iter().chain(&spec.judges).any(|m| m.batched().is_some())
            || !self.cancelled.lock().expect("lock").insert(id.to_string())
        {
            return;
        }
        match q.state(id).await {
            Ok(Some(st)) if st.state == "cancelled" => {
                let n = ex.cancel_batches().await;
                tracing::info!(sweep.id = %id, batches = n, "the sweep was cancelled: its batches in flight were cancelled at the provider");
            }
            _ => {
                self.cancelled.lock().expect("lock").remove(id);
            }
        }
    }

    /// The executor of sweep `id`, loading its bundle from the coordinator
    /// the first time.
    pub(super) async fn executor(&self, client: &Client, id: &str) -> Result<Arc<Executor>, tonic::Status> {
        if let Some(e) = self.loaded.lock().expect("lock").get(id) {
            return Ok(e.clone());
        }
        let b = client
            .clone()
            .bundle(pb::SweepRef {
                sweep_id: id.to_string(),
            })
            .await?
            .into_inner();
        let ex = Arc::new(self.build(&Bundle::from(b), id)?);
        let mut loaded = self.loaded.lock().expect("lock");
        if loaded.len() > KEPT {
            loaded.clear();
        }
        loaded.insert(id.to_string(), ex.clone());
        Ok(ex)
    }

    /// The executor of sweep `id`. Its batched models record their batches
    /// in the sweep's journal in Redis when the worker has Redis, so a batch
    /// outlives the worker that submitted it. A worker without Redis (it
    /// records its results through the coordinator, which has no journal
    /// RPC) keeps its journal in memory: if it dies, the calls of its batches
    /// in flight are submitted again by whoever runs their jobs next.
    fn build(&self, bundle: &Bundle, id: &str) -> Result<Executor, tonic::Status> {
        // The coordinator checked the bundle when it was submitted: build it,
        // refusing one this worker cannot run, without checking it again.
        let sweep =
            Sweep::from_checked_bundle(bundle, id).map_err(|e| tonic::Status::internal(format!("sweep {id}: {e}")))?;
        let journal: Option<Arc<dyn Journal>> = self
            .redis
            .as_ref()
            .map(|q| Arc::new(RedisJournal::new(q.clone(), id)) as Arc<dyn Journal>);
        Ok(Executor::new(
            Arc::new(sweep),
            self.limiter.clone(),
            self.cache.clone(),
            self.judge_slots.clone(),
            journal,
        ))
    }
}

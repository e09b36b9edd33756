//! The lease renewer: renews the leases of running jobs every third of the
//! lease time, and cancels the jobs whose leases were lost. The lease time
//! is known from the first lease answer on, so it is read again at each
//! short tick (the coordinator's may be shorter than the 30 s assumed
//! before it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use candor_proto::v1 as pb;

use super::Shared;

/// How often the renewer looks whether leases are due for renewal (a
/// third of the shortest lease time there may be, 300 ms).
const RENEW_TICK: Duration = Duration::from_millis(100);

/// The coordinator's lease time in milliseconds, as its last lease answer
/// gave it.
#[derive(Clone)]
pub(super) struct LeaseTtl(Arc<AtomicU64>);

impl Default for LeaseTtl {
    fn default() -> Self {
        LeaseTtl(Arc::new(AtomicU64::new(30_000)))
    }
}

impl LeaseTtl {
    /// Takes the lease time of a lease answer (300 ms at least, the
    /// coordinator's smallest).
    pub(super) fn set(&self, ms: u64) {
        self.0.store(ms.max(300), Ordering::Relaxed);
    }

    fn renew_every(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed) / 3)
    }
}

/// Renews leases until the task is aborted.
pub(super) async fn renewer(shared: Arc<Shared>, ttl: LeaseTtl) {
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(RENEW_TICK).await;
        if last.elapsed() < ttl.renew_every() {
            continue;
        }
        last = Instant::now();
        renew_running(&shared).await;
    }
}

async fn renew_running(shared: &Arc<Shared>) {
    let jobs = shared.running.leases();
    if jobs.is_empty() {
        return;
    }
    let req = pb::RenewRequest {
        worker_id: shared.worker_id.clone(),
        jobs,
    };
    match shared.client.clone().renew(req).await {
        Ok(r) => {
            let lost = r.into_inner().lost;
            let mut sweeps: Vec<String> = lost.iter().map(|j| j.sweep_id.clone()).collect();
            sweeps.dedup();
            shared.running.cancel_lost(lost, &shared.metrics);
            // Apart from the renewals: the providers' answers may be slow.
            let shared = shared.clone();
            tokio::spawn(async move {
                for id in sweeps {
                    shared.sweeps.cancel_batches_if_cancelled(&id).await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "renewing leases failed"),
    }
}

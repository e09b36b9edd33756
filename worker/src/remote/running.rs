//! The jobs this worker is running, each under the fencing token of its
//! lease: what the renewer renews, what a lost lease cancels, and what
//! shutdown hands back. An entry counts only under its own fence, so a job
//! leased again (to this worker or another) is never finished or cancelled
//! by news about its earlier lease.

use std::collections::HashMap;
use std::sync::Mutex;

use candor_proto::v1 as pb;
use tokio::task::AbortHandle;

use crate::metrics::Metrics;

/// A job: its sweep and index.
pub(super) type Key = (String, u64);

pub(super) struct Running {
    pub(super) fence: u64,
    pub(super) attempt: u32,
    pub(super) cell: u32,
    /// The job's task, once it has started.
    pub(super) abort: Option<AbortHandle>,
}

#[derive(Default)]
pub(super) struct Jobs(Mutex<HashMap<Key, Running>>);

impl Jobs {
    /// Holds a leased job before its task starts, so that a result sent at
    /// once finds it.
    pub(super) fn hold(&self, key: Key, job: Running) {
        self.0.lock().expect("lock").insert(key, job);
    }

    /// Keeps the task of a job still held under `fence`, for cancelling it.
    pub(super) fn started(&self, key: &Key, fence: u64, task: AbortHandle, metrics: &Metrics) {
        let mut running = self.0.lock().expect("lock");
        if let Some(r) = running.get_mut(key).filter(|r| r.fence == fence) {
            r.abort = Some(task);
        }
        metrics.set_in_flight(running.len());
    }

    /// Forgets a job if it is still held under `fence`.
    pub(super) fn finish(&self, key: &Key, fence: u64, metrics: &Metrics) {
        let mut running = self.0.lock().expect("lock");
        if running.get(key).is_some_and(|j| j.fence == fence) {
            running.remove(key);
            metrics.set_in_flight(running.len());
        }
    }

    /// The leases held, to renew.
    pub(super) fn leases(&self) -> Vec<pb::JobRef> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|((id, idx), r)| pb::JobRef {
                sweep_id: id.clone(),
                index: *idx,
                fence: r.fence,
            })
            .collect()
    }

    /// Cancels the jobs whose leases the coordinator says were lost.
    pub(super) fn cancel_lost(&self, lost: Vec<pb::JobRef>, metrics: &Metrics) {
        let mut running = self.0.lock().expect("lock");
        for j in lost {
            let key = (j.sweep_id, j.index);
            if running.get(&key).is_some_and(|r| r.fence == j.fence) {
                if let Some(a) = running.remove(&key).and_then(|r| r.abort) {
                    a.abort();
                }
                metrics.lease_lost();
                tracing::warn!(sweep.id = %key.0, job.index = key.1, "lease lost; job cancelled");
            }
        }
        metrics.set_in_flight(running.len());
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.lock().expect("lock").is_empty()
    }

    /// Takes every job out of the table.
    pub(super) fn drain(&self) -> Vec<(Key, Running)> {
        self.0.lock().expect("lock").drain().collect()
    }
}

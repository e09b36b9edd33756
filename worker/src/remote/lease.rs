//! Asking the coordinator for jobs: while there are free slots, lease a
//! batch of them and start each job; back off while the coordinator is away
//! or has nothing to hand out; stop at the shutdown signal. Only a refused
//! token ends the worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use candor_proto::v1 as pb;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::record::Done;
use super::renew::LeaseTtl;
use super::{Backoff, Shared, WorkerError, job};

/// How long the lease loop waits for a batch of free slots.
const LEASE_GATHER: Duration = Duration::from_millis(5);

/// Leases and starts jobs until `stop` turns true.
pub(super) async fn lease_until_stopped(
    shared: &Shared,
    concurrency: usize,
    ttl: &LeaseTtl,
    done: &mpsc::Sender<Done>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let batch = (concurrency / 4).max(1);
    let mut idle = Backoff::new();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.changed() => return Ok(()),
        };
        gather(&slots, batch).await;
        let free = 1 + slots.available_permits() as u32;
        let answer = tokio::select! {
            r = ask(shared, free) => r,
            _ = stop.changed() => return Ok(()),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) if e.code() == tonic::Code::Unauthenticated => return Err(WorkerError::Coordinator(e)),
            Err(e) => {
                tracing::warn!(error = %e, "leasing failed; retrying");
                drop(first);
                idle.wait().await;
                continue;
            }
        };
        ttl.set(answer.lease_ttl_ms);
        if answer.leases.is_empty() {
            drop(first);
            tokio::select! {
                _ = idle.wait() => {}
                _ = stop.changed() => return Ok(()),
            }
            continue;
        }
        idle = Backoff::new();
        shared.metrics.leased(answer.leases.len() as u64);
        start_all(shared, &slots, first, answer.leases, done).await;
    }
}

/// Gives finishing jobs a moment to free more slots, so that short jobs do
/// not cost a lease call each.
async fn gather(slots: &Semaphore, batch: usize) {
    let started = Instant::now();
    while 1 + slots.available_permits() < batch && started.elapsed() < LEASE_GATHER {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One lease call for up to `slots` jobs; its answer tells `/readyz` whether
/// the coordinator is reachable.
async fn ask(shared: &Shared, slots: u32) -> Result<pb::LeaseResponse, tonic::Status> {
    let req = pb::LeaseRequest {
        worker_id: shared.worker_id.clone(),
        slots,
    };
    let answer = shared.client.clone().lease(req).await;
    shared.metrics.connected.store(answer.is_ok(), Ordering::Relaxed);
    answer.map(tonic::Response::into_inner)
}

/// Starts the leased jobs, the first on the slot already taken, each other
/// once a slot is free. A job whose sweep cannot be loaded (deleted since,
/// say) is left to its lease's expiry.
async fn start_all(
    shared: &Shared,
    slots: &Arc<Semaphore>,
    first: OwnedSemaphorePermit,
    leases: Vec<pb::Lease>,
    done: &mpsc::Sender<Done>,
) {
    let mut first = Some(first);
    for lease in leases {
        let permit = match first.take() {
            Some(p) => p,
            None => slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        };
        let ex = match shared.sweeps.executor(&shared.client, &lease.sweep_id).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(sweep.id = %lease.sweep_id, error = %e, "cannot load the sweep; its lease will expire");
                continue;
            }
        };
        job::start(shared, ex, lease, permit, done.clone());
    }
}

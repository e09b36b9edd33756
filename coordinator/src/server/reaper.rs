//! The dead-letter reaper: jobs whose leases kept expiring (their workers
//! died on them) get a failed result, so a sweep ends even if no worker can
//! finish them. Every quarter of the grace period it also tidies the archive (garbage parts,
//! sweeps past their retention). Every coordinator runs it; recording is idempotent, so two
//! running at once is harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use candor_exec::Executor;
use candor_queue::{Completion, JobStatus};

use super::{Coordinator, ServerError};

/// How often the reaper looks for jobs to dead-letter.
const EVERY: Duration = Duration::from_secs(1);

/// Runs the reaper until the task is aborted.
pub(super) fn spawn(co: Arc<Coordinator>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tidied = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(EVERY).await;
            if tidied.elapsed() >= super::archive::collect_every(co.settings.gc_grace) {
                tidied = tokio::time::Instant::now();
                if let Err(e) = co.tidy().await {
                    tracing::warn!(error = %e, "collecting archive garbage");
                }
            }
            match co.reap().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(jobs = n, "dead-lettered jobs whose leases kept expiring"),
                Err(e) => tracing::debug!(error = %e, "reaper"),
            }
        }
    })
}

/// Job `index`'s failed result, recorded under fence 0 (the coordinator's).
fn dead_letter(ex: &Executor, index: u64, why: &str) -> Completion {
    let f = ex.failed(
        index,
        &format!("dead-lettered: {why}"),
        Some(candor_core::ErrorKind::Abandoned),
    );
    Completion {
        index,
        fence: 0,
        status: JobStatus::Failed,
        class_bits: 0,
        cell: f.cell,
        dead: Some(why.to_string()),
        result: f.payload,
        parsed: Some(f.result),
        cache_hits: 0,
        cost_micro_usd: 0,
    }
}

impl Coordinator {
    /// Dead-letters every job out of attempts; answers how many it recorded.
    pub async fn reap(&self) -> Result<usize, ServerError> {
        let mut by_sweep: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for (id, idx, why) in self.queue.dying().await? {
            by_sweep.entry(id).or_default().push((idx, why));
        }
        let mut n = 0;
        for (id, jobs) in by_sweep {
            let ex = self.executor(&id).await?;
            let items: Vec<Completion> = jobs.iter().map(|(idx, why)| dead_letter(&ex, *idx, why)).collect();
            n += self
                .queue
                .record(&self.settings.archive, &id, &items, &[])
                .await?
                .recorded();
        }
        Ok(n)
    }
}

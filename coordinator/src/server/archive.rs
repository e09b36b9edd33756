//! What the coordinator does with the archive: reads a sweep's live
//! results (each job from the one part Redis names for it), collects
//! garbage parts (written, but nothing recorded from them), and deletes
//! sweeps past their retention.

use std::time::Duration;

use candor_core::JobResult;

use super::{Coordinator, ServerError};

/// How often the collector looks at the sweeps' parts (and at retention):
/// a quarter of the grace period, between 1 s and a minute, so that a
/// garbage part goes within about 1.25 grace periods without listing the
/// archive more often than that needs.
pub(super) fn collect_every(grace: Duration) -> Duration {
    (grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Which part holds each job's live result: read once, then the parts
/// one at a time.
pub struct LiveParts {
    /// (number, name), in the order they were first recorded from.
    pub parts: Vec<(u32, String)>,
    refs: Vec<u32>,
}

impl Coordinator {
    /// The parts of sweep `id` and which of them holds each job's result
    /// (4 bytes a job).
    pub async fn live_parts(&self, id: &str, total: u64) -> Result<LiveParts, ServerError> {
        let mut parts: Vec<(u32, String)> = self.queue.part_names(id).await?.into_iter().collect();
        parts.sort();
        let refs = self.queue.part_refs(id, total).await?;
        Ok(LiveParts { parts, refs })
    }

    /// Calls `f` with the live results in part `i` of `live`: the rows
    /// whose jobs Redis says it holds.
    pub async fn read_live(
        &self,
        id: &str,
        live: &LiveParts,
        i: usize,
        mut f: impl FnMut(JobResult),
    ) -> Result<(), ServerError> {
        let (number, name) = &live.parts[i];
        self.settings
            .archive
            .read(id, name, |idx, r| {
                if live.refs.get(idx as usize) == Some(number) {
                    f(r);
                }
                Ok(())
            })
            .await
            .map_err(candor_queue::QueueError::from)?;
        Ok(())
    }

    /// Removes the parts of sweep `id` that no job names and that are older
    /// than the grace period: condemned in Redis first, so that nothing is
    /// recorded from them afterwards. Returns how many.
    async fn collect(&self, id: &str, now_ms: u64) -> Result<usize, ServerError> {
        let archive = &self.settings.archive;
        let grace = self.settings.gc_grace.as_millis() as u64;
        let parts = archive.parts(id).await.map_err(candor_queue::QueueError::from)?;
        let names = self.queue.part_names(id).await?;
        let named: std::collections::HashSet<&String> = names.values().collect();
        let old: Vec<String> = parts
            .into_iter()
            .filter(|p| p.modified_ms + grace <= now_ms && !named.contains(&p.name))
            .map(|p| p.name)
            .collect();
        let condemned = self.queue.condemn(id, &old).await?;
        for name in &condemned {
            archive.remove(id, name).await.map_err(candor_queue::QueueError::from)?;
        }
        Ok(condemned.len())
    }

    /// One round of collection and retention over every sweep; a sweep
    /// that fails (its bucket away) does not hold up the others.
    pub async fn tidy(&self) -> Result<(), ServerError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for st in self.all_states().await? {
            if let Err(e) = self.tidy_one(&st, now_ms).await {
                tracing::warn!(sweep.id = %st.id, error = %e, "tidying the archive");
            }
        }
        Ok(())
    }

    /// Deletes one sweep past its retention, or collects its garbage.
    async fn tidy_one(&self, st: &candor_queue::SweepState, now_ms: u64) -> Result<(), ServerError> {
        let ended = st.state != "running" && st.state != "paused";
        // The spec's retention_days, else the coordinator's; 0 keeps.
        let keep = st
            .retention_ms
            .or(self.settings.retention.map(|d| d.as_millis() as u64));
        let expired = keep.is_some_and(|k| k > 0 && st.finished_ms + k <= now_ms);
        if ended && st.finished_ms > 0 && expired {
            self.delete(&st.id).await?;
            tracing::info!(sweep.id = %st.id, "sweep deleted: past its retention");
            return Ok(());
        }
        // Garbage is made while a sweep runs: once it has ended, a
        // collection past the grace period finds the last of it.
        let grace = self.settings.gc_grace.as_millis() as u64;
        if ended && st.finished_ms > 0 && now_ms > st.finished_ms + 2 * grace + 60_000 {
            return Ok(());
        }
        let n = self.collect(&st.id, now_ms).await?;
        if n > 0 {
            tracing::info!(sweep.id = %st.id, parts = n, "removed archive parts no result was recorded from");
        }
        Ok(())
    }

    /// Deletes an ended sweep: its parts, then its keys in Redis (so that a
    /// deletion cut short is finished by the next `candor delete`). Answers
    /// the state it had; a running or paused sweep is left alone.
    pub async fn delete(&self, id: &str) -> Result<String, ServerError> {
        let state = self.state(id).await?.state;
        if state == "running" || state == "paused" {
            return Ok(state);
        }
        self.settings
            .archive
            .remove_sweep(id)
            .await
            .map_err(candor_queue::QueueError::from)?;
        self.queue
            .delete(id)
            .await?
            .ok_or_else(|| ServerError::NotFound(id.to_string()))
    }
}

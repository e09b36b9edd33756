//! Recording results with the archive: a batch's results are written as one
//! part first, then recorded in Redis by the scripts, which name that part
//! for each job they accept. A result the scripts refuse (a lost lease, a
//! job already done) stays in the part unreferenced, and readers skip it;
//! a part from which nothing was recorded is removed here, or, if the
//! process died first, condemned and removed by the coordinator's
//! collector (`condemn.lua`).

use std::sync::Arc;

use candor_archive::Archive;
use candor_core::JobResult;

use crate::{Completion, FailKind, FailOutcome, Failure, Queue, QueueError, Recorded};

/// What the scripts made of a batch.
#[derive(Debug, Default)]
pub struct RecordedBatch {
    pub completions: Vec<Recorded>,
    pub failures: Vec<FailOutcome>,
}

impl RecordedBatch {
    /// How many results were recorded (and so are read from the part).
    pub fn recorded(&self) -> usize {
        let c = self.completions.iter().filter(|r| **r == Recorded::Recorded).count();
        let f = self
            .failures
            .iter()
            .filter(|o| matches!(o, FailOutcome::DeadLettered | FailOutcome::Failed))
            .count();
        c + f
    }
}

/// The result a completion or failure carries: as it is, or parsed from
/// its JSON (from a worker through the coordinator).
fn parse(index: u64, parsed: &Option<Arc<JobResult>>, payload: &[u8]) -> Result<Arc<JobResult>, QueueError> {
    if let Some(r) = parsed {
        return Ok(r.clone());
    }
    serde_json::from_slice(payload)
        .map(Arc::new)
        .map_err(|e| QueueError::BadResult {
            index,
            reason: e.to_string(),
        })
}

/// The results a batch may record: every completion's, and the failures'
/// that can end their jobs.
fn results(cs: &[Completion], fs: &[Failure]) -> Result<Vec<Arc<JobResult>>, QueueError> {
    let mut out = Vec::with_capacity(cs.len() + fs.len());
    for c in cs {
        out.push(parse(c.index, &c.parsed, &c.result)?);
    }
    for f in fs {
        if matches!(f.kind, FailKind::Retryable | FailKind::Permanent) && !(f.result.is_empty() && f.parsed.is_none()) {
            out.push(parse(f.index, &f.parsed, &f.result)?);
        }
    }
    Ok(out)
}

/// The fault tests' crash point: with `CANDOR_CRASH_AFTER_PARTS=N` in its
/// environment, the process sends itself SIGKILL (`kill -9`; it aborts if
/// that fails) right after writing its Nth part and before recording it.
fn crash_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    static AT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let at = *AT.get_or_init(|| {
        std::env::var("CANDOR_CRASH_AFTER_PARTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    if at > 0 && WRITTEN.fetch_add(1, Ordering::Relaxed) + 1 == at {
        eprintln!(
            "CANDOR_CRASH_AFTER_PARTS={at}: killing this process (kill -9) after writing a part, before recording it"
        );
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
        std::process::abort();
    }
}

impl Queue {
    /// Writes the results of `cs` and `fs` to `archive` as one part, then
    /// records them, naming that part.
    pub async fn record(
        &self,
        archive: &Archive,
        sweep_id: &str,
        cs: &[Completion],
        fs: &[Failure],
    ) -> Result<RecordedBatch, QueueError> {
        let rs = results(cs, fs)?;
        let part = candor_archive::part_name();
        if !rs.is_empty() {
            let enc = tokio::task::spawn_blocking(move || candor_archive::encode(rs.iter().map(|r| &**r)))
                .await
                .map_err(|e| QueueError::Protocol(format!("encoding a part: {e}")))?;
            archive.put(sweep_id, &part, &enc).await?;
            crash_point();
        }
        let out = RecordedBatch {
            completions: self.complete(sweep_id, &part, cs).await?,
            failures: self.fail(sweep_id, &part, fs).await?,
        };
        if out.recorded() == 0 && !(cs.is_empty() && fs.is_empty()) {
            // Nothing names it: remove it now rather than at collection.
            if let Err(e) = archive.remove(sweep_id, &part).await {
                tracing::debug!(error = %e, "removing an unused part; the collector will");
            }
        }
        Ok(out)
    }
}

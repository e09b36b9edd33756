//! Shutdown, once the lease loop has stopped: running jobs get the grace
//! period to finish; what is still running then is cancelled and handed
//! back as released (no attempt used up), so it is leased again at once
//! instead of after its lease expires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use candor_queue::{FailKind, Failure};

use super::Shared;
use super::record::record;

/// How long the last results may take to be recorded, per call.
pub(super) const LAST_RECORD: Duration = Duration::from_secs(10);
/// How often the grace period looks whether the jobs have finished.
const POLL: Duration = Duration::from_millis(20);

/// Waits out the grace period, then hands back what is still running;
/// returns how many jobs were handed back.
pub(super) async fn hand_back(shared: &Shared, grace: Duration) -> usize {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !shared.running.is_empty() {
        tokio::time::sleep(POLL).await;
    }
    let by = cancel_running(shared);
    let released: usize = by.values().map(Vec::len).sum();
    for (id, fs) in by {
        let _ = tokio::time::timeout(LAST_RECORD, record(shared, &id, Vec::new(), fs)).await;
    }
    released
}

/// Cancels the jobs still running, as releases to record, by sweep.
fn cancel_running(shared: &Shared) -> HashMap<String, Vec<Failure>> {
    let mut by: HashMap<String, Vec<Failure>> = HashMap::new();
    for ((id, index), r) in shared.running.drain() {
        if let Some(a) = &r.abort {
            a.abort();
        }
        by.entry(id).or_default().push(Failure {
            index,
            fence: r.fence,
            kind: FailKind::Released,
            error: "the worker shut down".into(),
            attempt: r.attempt,
            cell: r.cell,
            result: Vec::new(),
            parsed: None,
            persistent: false,
        });
    }
    by
}

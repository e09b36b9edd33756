//! What this process's batches are doing, for progress lines, status and
//! metrics: batches in flight and the oldest one's age, requests submitted,
//! outcomes, requests sent again, and calls that followed a batch recorded
//! before they asked (after a restart) instead of being submitted again.
//! One per process, like the backend call counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use super::Outcome;

#[derive(Default)]
pub struct Stats {
    pub batches: AtomicU64,
    pub requests: AtomicU64,
    /// Succeeded, errored, expired, canceled.
    pub outcomes: [AtomicU64; 4],
    /// Requests sent again after they expired, errored or were canceled.
    pub retried: AtomicU64,
    /// Calls that waited for a batch recorded before they asked.
    pub followed: AtomicU64,
    /// Batches in flight: key → when it was recorded (ms).
    live: Mutex<HashMap<String, u64>>,
}

/// A copy of the counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub in_flight: u64,
    /// Seconds since the oldest batch in flight was recorded.
    pub oldest_secs: u64,
    pub batches: u64,
    pub requests: u64,
    pub succeeded: u64,
    pub errored: u64,
    pub expired: u64,
    pub canceled: u64,
    pub retried: u64,
    pub followed: u64,
}

pub static STATS: LazyLock<Stats> = LazyLock::new(Stats::default);

impl Stats {
    pub(crate) fn submitted(&self, key: &str, created_ms: u64, requests: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(requests as u64, Ordering::Relaxed);
        self.following(key, created_ms);
    }

    pub(crate) fn following(&self, key: &str, created_ms: u64) {
        self.live.lock().expect("stats").insert(key.to_string(), created_ms);
    }

    pub(crate) fn ended(&self, key: &str) {
        self.live.lock().expect("stats").remove(key);
    }

    pub(crate) fn outcome(&self, o: &Outcome) {
        let slot = match o {
            Outcome::Succeeded(_) => 0,
            Outcome::Errored(_) => 1,
            Outcome::Expired => 2,
            Outcome::Canceled => 3,
        };
        self.outcomes[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = crate::execute::now_ms();
        let (in_flight, oldest) = {
            let live = self.live.lock().expect("stats");
            (live.len() as u64, live.values().copied().min())
        };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            in_flight,
            oldest_secs: oldest.map_or(0, |t| now.saturating_sub(t) / 1000),
            batches: n(&self.batches),
            requests: n(&self.requests),
            succeeded: n(&self.outcomes[0]),
            errored: n(&self.outcomes[1]),
            expired: n(&self.outcomes[2]),
            canceled: n(&self.outcomes[3]),
            retried: n(&self.retried),
            followed: n(&self.followed),
        }
    }
}

//! A local run's live counts by model × condition (summed over prompt
//! variants): jobs with a result, failed ones and their cost, for what
//! shows a run while it goes (`candor run`'s progress file). Counted as the
//! writer thread stores results, on top of what the store held when the run
//! started; the report is still computed from the store alone.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use candor_core::{JobSpace, RecordMeta, Status, Sweep};
use candor_store::{StoreError, SweepLog};

/// The counters of one model × condition.
#[derive(Debug, Default)]
struct Counter {
    done: AtomicU64,
    failed: AtomicU64,
    cost_micro_usd: AtomicU64,
}

/// Counts by model × condition; empty until the run has opened its store.
#[derive(Debug, Default)]
pub struct CellCounts(OnceLock<(JobSpace, Vec<Counter>)>);

/// One model × condition's counts, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellCount {
    pub model: usize,
    pub condition: usize,
    /// Jobs the cell has (queries × seeds × prompt variants).
    pub total: u64,
    /// Jobs with a result, of any status.
    pub done: u64,
    pub failed: u64,
    pub cost_micro_usd: u64,
}

impl CellCounts {
    /// Starts counting for `sweep` from what `log` already holds (a resumed
    /// run's results are read once).
    pub(crate) fn start(&self, sweep: &Sweep, log: &SweepLog) -> Result<(), StoreError> {
        let space = sweep.space;
        let n = (space.models * space.conditions) as usize;
        let counters: Vec<Counter> = (0..n).map(|_| Counter::default()).collect();
        let counts = self.0.get_or_init(|| (space, counters));
        if log.done().count() > 0 {
            log.scan(|meta, _| Self::add(counts, &meta))?;
        }
        Ok(())
    }

    /// Counts a result just stored.
    pub(crate) fn record(&self, meta: &RecordMeta) {
        if let Some(counts) = self.0.get() {
            Self::add(counts, meta);
        }
    }

    fn add((space, counters): &(JobSpace, Vec<Counter>), meta: &RecordMeta) {
        let t = space.decode(meta.index);
        let Some(c) = counters.get(t.model * space.conditions as usize + t.condition) else {
            return;
        };
        c.done.fetch_add(1, Ordering::Relaxed);
        if meta.status == Status::Failed {
            c.failed.fetch_add(1, Ordering::Relaxed);
        }
        c.cost_micro_usd.fetch_add(meta.cost_micro_usd, Ordering::Relaxed);
    }

    /// Every model × condition (model-major), or nothing before the run
    /// has opened its store.
    pub fn snapshot(&self) -> Vec<CellCount> {
        let Some((space, counters)) = self.0.get() else {
            return Vec::new();
        };
        let conditions = space.conditions as usize;
        counters
            .iter()
            .enumerate()
            .map(|(i, c)| CellCount {
                model: i / conditions,
                condition: i % conditions,
                total: space.per_cell() * space.variants,
                done: c.done.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                cost_micro_usd: c.cost_micro_usd.load(Ordering::Relaxed),
            })
            .collect()
    }
}

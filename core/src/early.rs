//! Early stopping: per report cell, no more seeds once the cell's 95%
//! Wilson interval for compliance is narrower than the spec's target.
//!
//! Jobs start seed by seed ([`JobSpace::dispatch`]). When the first job of
//! seed `s ≥ min_seeds` of a cell comes up, the cell's interval over the
//! results recorded so far decides, once, whether seed `s` and every later
//! seed of that cell are skipped.
//!
//! [`JobSpace::dispatch`]: crate::jobs::JobSpace::dispatch

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::spec::{EarlyStopping, Sweep};
use crate::stats::{Z95, wilson};

/// No cutoff: the cell runs every seed.
const NONE: u32 = u32::MAX;

struct CellState {
    ok: AtomicU64,
    yes: AtomicU64,
    /// First seed not run, or `NONE`.
    cutoff: AtomicU32,
    /// Highest seed whose start was decided.
    decided: AtomicU32,
}

/// The live state of early stopping for one sweep.
pub struct EarlyStop {
    rule: EarlyStopping,
    seeds: u64,
    cells: Vec<CellState>,
    lock: std::sync::Mutex<()>,
}

impl EarlyStop {
    /// None when the spec does not ask for early stopping.
    pub fn new(sweep: &Sweep) -> Option<EarlyStop> {
        let rule = sweep.spec.early_stopping?;
        let cells = (0..sweep.space.cells())
            .map(|_| CellState {
                ok: AtomicU64::new(0),
                yes: AtomicU64::new(0),
                cutoff: AtomicU32::new(NONE),
                decided: AtomicU32::new(0),
            })
            .collect();
        Some(EarlyStop {
            rule,
            seeds: sweep.space.seeds,
            cells,
            lock: std::sync::Mutex::new(()),
        })
    }

    /// Counts a finished job of `cell` (`ok`: it gave an output; `yes`: the
    /// primary classifier said yes).
    pub fn record(&self, cell: usize, ok: bool, yes: bool) {
        if ok {
            self.cells[cell].ok.fetch_add(1, Ordering::Relaxed);
            self.cells[cell].yes.fetch_add(u64::from(yes), Ordering::Relaxed);
        }
    }

    /// Whether the job of `cell` at `seed` should start.
    pub fn admit(&self, cell: usize, seed: u32) -> bool {
        let c = &self.cells[cell];
        if seed >= c.cutoff.load(Ordering::SeqCst) {
            return false;
        }
        if seed < self.rule.min_seeds {
            return true;
        }
        // The cutoff is stored before `decided`: whoever sees a seed decided
        // sees its cutoff.
        if seed <= c.decided.load(Ordering::SeqCst) {
            return seed < c.cutoff.load(Ordering::SeqCst);
        }
        let _one = self.lock.lock().expect("lock");
        if seed <= c.decided.load(Ordering::SeqCst) {
            return seed < c.cutoff.load(Ordering::SeqCst);
        }
        let (ok, yes) = (c.ok.load(Ordering::SeqCst), c.yes.load(Ordering::SeqCst));
        let w = wilson(yes, ok, Z95);
        let stop = ok > 0 && w.hi - w.lo < self.rule.target_width;
        if stop {
            c.cutoff.store(seed, Ordering::SeqCst);
        }
        c.decided.store(seed, Ordering::SeqCst);
        !stop
    }

    /// Per cell: the first seed it skipped, if it stopped early.
    pub fn stops(&self) -> Vec<Option<u32>> {
        self.cells
            .iter()
            .map(|c| Some(c.cutoff.load(Ordering::Relaxed)).filter(|&s| s != NONE && u64::from(s) < self.seeds))
            .collect()
    }

    /// Jobs skipped: per cell, its queries × the seeds it did not run.
    pub fn skipped(&self, queries: u64) -> u64 {
        self.stops()
            .iter()
            .flatten()
            .map(|&s| (self.seeds - u64::from(s)) * queries)
            .sum()
    }
}

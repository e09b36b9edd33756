//! Early stopping: per report cell, no more seeds once the cell's 95%
//! Wilson interval for compliance is narrower than the spec's target.
//!
//! Jobs start seed by seed ([`JobSpace::dispatch`]). When the first job of
//! seed `s ≥ min_seeds` of a cell comes up, the cell's interval over the
//! results recorded so far decides, once, whether seed `s` and every later
//! seed of that cell are skipped.
//!
//! [`keeps_going`] is the decision. The local runner asks it directly; the
//! lease script in Redis cannot compute intervals as Rust does, so the
//! coordinator writes a [`DecisionTable`] of the same decisions when the
//! sweep is submitted and the script looks the counts up in it
//! (`queue/tests/parity.rs` checks the two against each other).
//!
//! [`JobSpace::dispatch`]: crate::jobs::JobSpace::dispatch

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::jobs::JobSpace;
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
        Some(EarlyStop::for_space(sweep.spec.early_stopping?, &sweep.space))
    }

    /// Early stopping by `rule` over the cells of `space`.
    pub fn for_space(rule: EarlyStopping, space: &JobSpace) -> EarlyStop {
        let cells = (0..space.cells())
            .map(|_| CellState {
                ok: AtomicU64::new(0),
                yes: AtomicU64::new(0),
                cutoff: AtomicU32::new(NONE),
                decided: AtomicU32::new(0),
            })
            .collect();
        EarlyStop {
            rule,
            seeds: space.seeds,
            cells,
            lock: std::sync::Mutex::new(()),
        }
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
        let stop = !keeps_going(yes, ok, self.rule.target_width);
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

/// Whether a cell with `ok` outputs, `yes` of them compliant, gets more
/// seeds: a cell without outputs does; else its 95% Wilson interval must be
/// at least `target` wide.
pub fn keeps_going(yes: u64, ok: u64, target: f64) -> bool {
    if ok == 0 {
        return true;
    }
    let w = wilson(yes, ok, Z95);
    let narrow = w.hi - w.lo < target;
    !narrow
}

/// [`keeps_going`] for one target as a table, for the lease script in Redis.
///
/// Entry `n` (for `n` = 0, 1, …) is the range `lo..=hi` of yes counts with
/// which a cell of `n` outputs keeps going (empty when `lo > hi`). The
/// interval of a fixed `n` is widest at `yes = n/2` and narrows towards 0
/// and `n`, so the cells that keep going are a range; from `n = 2` on the
/// widest interval narrows as `n` grows, so past the first `n ≥ 2` whose
/// range is empty every cell stops, and the table ends there (or at the most
/// outputs a cell can have, if that comes first).
/// Its length is about (z / target)² − z² entries: 380 for a target of 0.1,
/// 38,412 for 0.01.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionTable {
    target_bits: u64,
    ranges: Vec<(u32, u32)>,
}

/// A decision table longer than [`DecisionTable::MAX_ENTRIES`] was asked for.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "early_stopping.target_width {target} needs a decision table of more than {max} entries for cells of \
     {outputs} outputs; use a target of at least {min_target:.4} (or smaller cells)",
    max = DecisionTable::MAX_ENTRIES,
    min_target = Z95 / ((DecisionTable::MAX_ENTRIES as f64) + Z95 * Z95).sqrt()
)]
pub struct TableTooLarge {
    pub target: f64,
    pub outputs: u64,
}

/// Bytes per entry of [`DecisionTable::to_bytes`].
pub const ENTRY_BYTES: usize = 8;

impl DecisionTable {
    /// The most entries a table may have (16 MiB as bytes): any target of
    /// at least 0.00136 fits whatever the cells' size.
    pub const MAX_ENTRIES: u64 = 1 << 21;

    /// The table for `target` (between 0 and 1) and cells of at most
    /// `max_outputs` outputs (the queries × seeds of a cell).
    pub fn new(target: f64, max_outputs: u64) -> Result<DecisionTable, TableTooLarge> {
        let too_large = TableTooLarge {
            target,
            outputs: max_outputs,
        };
        // Past (z/t)² − z² even p = 1/2 is narrower than t (the interval's width
        // there is z / sqrt(n + z²)); a little margin for rounding.
        let bound = (Z95 * Z95 / (target * target) - Z95 * Z95).max(0.0) + 2.0;
        if (max_outputs as f64 + 1.0).min(bound) > Self::MAX_ENTRIES as f64 {
            return Err(too_large);
        }
        let keep = |y: u64, n: u64| keeps_going(y, n, target);
        let mut ranges = vec![(0u32, 0u32)];
        let (mut lo_hint, mut hi_hint) = (0u64, 0u64);
        for n in 1..=max_outputs {
            if n >= Self::MAX_ENTRIES {
                return Err(too_large);
            }
            // The widths rise from y = 0 to n/2 and fall from there to n;
            // each boundary moves little from one n to the next.
            let (half, up) = (n / 2, n.div_ceil(2));
            let lower = {
                let mut y = lo_hint.min(half);
                if keep(y, n) {
                    while y > 0 && keep(y - 1, n) {
                        y -= 1;
                    }
                    Some(y)
                } else {
                    while y < half && !keep(y, n) {
                        y += 1;
                    }
                    keep(y, n).then_some(y)
                }
            };
            let upper = {
                let mut y = (hi_hint + 1).clamp(up, n);
                if keep(y, n) {
                    while y < n && keep(y + 1, n) {
                        y += 1;
                    }
                    Some(y)
                } else {
                    while y > up && !keep(y, n) {
                        y -= 1;
                    }
                    keep(y, n).then_some(y)
                }
            };
            let (lo, hi) = match (lower, upper) {
                (Some(lo), Some(hi)) => (lo, hi),
                (Some(lo), None) => (lo, half),
                (None, Some(hi)) => (up, hi),
                // One output gives a narrower interval than an even split of
                // two: an empty range (lo > hi), and on.
                (None, None) if n == 1 => {
                    ranges.push((1, 0));
                    continue;
                }
                (None, None) => break,
            };
            ranges.push((lo as u32, hi as u32));
            (lo_hint, hi_hint) = (lo, hi);
        }
        Ok(DecisionTable {
            target_bits: target.to_bits(),
            ranges,
        })
    }

    pub fn target(&self) -> f64 {
        f64::from_bits(self.target_bits)
    }

    /// Entries: a cell with this many outputs or more stops.
    pub fn len(&self) -> u64 {
        self.ranges.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The decision of [`keeps_going`] for `target`, looked up.
    pub fn keeps_going(&self, yes: u64, ok: u64) -> bool {
        usize::try_from(ok)
            .ok()
            .and_then(|n| self.ranges.get(n))
            .is_some_and(|&(lo, hi)| u64::from(lo) <= yes && yes <= u64::from(hi))
    }

    /// As stored in Redis: per entry, `lo` then `hi` as 4-byte big-endian
    /// integers ([`ENTRY_BYTES`] per entry, entry `n` at byte `8n`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ranges.len() * ENTRY_BYTES);
        for &(lo, hi) in &self.ranges {
            out.extend_from_slice(&lo.to_be_bytes());
            out.extend_from_slice(&hi.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width(y: u64, n: u64) -> f64 {
        let w = wilson(y, n, Z95);
        w.hi - w.lo
    }

    /// Every count up to a little past the table's end: the table decides as `keeps_going`.
    fn agrees_everywhere(target: f64, max_outputs: u64) -> DecisionTable {
        let t = DecisionTable::new(target, max_outputs).unwrap();
        for n in 0..=(t.len() + 20).min(max_outputs) {
            for y in 0..=n {
                assert_eq!(
                    t.keeps_going(y, n),
                    keeps_going(y, n, target),
                    "target {target}: {y} of {n} (width {})",
                    width(y, n)
                );
            }
        }
        t
    }

    #[test]
    fn the_table_decides_as_the_interval_does() {
        for target in [0.999, 0.9, 0.5, 0.3, 0.25, 0.2, 0.1234, 0.1, 0.07, 0.05] {
            let t = agrees_everywhere(target, 1_000_000);
            let expected = Z95 * Z95 / (target * target) - Z95 * Z95;
            assert!(
                (t.len() as f64 - expected).abs() <= 2.0,
                "target {target}: {} entries, about {expected} expected",
                t.len()
            );
            // Past the end even an even split is narrower than the target.
            for n in t.len()..t.len() + 200 {
                assert!(!keeps_going(n / 2, n, target) && !keeps_going(n.div_ceil(2), n, target));
            }
        }
    }

    #[test]
    fn the_table_ends_at_the_largest_cell() {
        let t = agrees_everywhere(0.01, 300);
        assert_eq!(t.len(), 301);
        assert!(
            !t.keeps_going(150, 301),
            "more outputs than a cell can have: not tabulated"
        );
    }

    #[test]
    fn targets_on_a_width_itself_keep_going_and_just_above_stop() {
        for (y, n) in [
            (0, 1),
            (1, 1),
            (0, 7),
            (3, 7),
            (7, 7),
            (0, 40),
            (13, 40),
            (40, 40),
            (90, 200),
        ] {
            let w = width(y, n);
            let at = DecisionTable::new(w, 1_000).unwrap();
            assert!(keeps_going(y, n, w) && at.keeps_going(y, n), "{y}/{n} at its own width");
            let above = f64::from_bits(w.to_bits() + 1);
            let t = DecisionTable::new(above, 1_000).unwrap();
            assert!(!keeps_going(y, n, above) && !t.keeps_going(y, n), "{y}/{n} just above");
            agrees_everywhere(above, 1_000);
        }
    }

    #[test]
    fn no_outputs_keep_going_and_the_bytes_are_big_endian_pairs() {
        let t = DecisionTable::new(0.3, 100).unwrap();
        assert!(t.keeps_going(0, 0));
        let b = t.to_bytes();
        assert_eq!(b.len() as u64, t.len() * ENTRY_BYTES as u64);
        assert_eq!(&b[..8], &[0, 0, 0, 0, 0, 0, 0, 0]);
        let n = 20usize;
        let lo = u32::from_be_bytes(b[n * 8..n * 8 + 4].try_into().unwrap());
        let hi = u32::from_be_bytes(b[n * 8 + 4..n * 8 + 8].try_into().unwrap());
        assert!(t.keeps_going(lo.into(), 20) && t.keeps_going(hi.into(), 20));
        assert!(!t.keeps_going(u64::from(lo) - 1, 20) && !t.keeps_going(u64::from(hi) + 1, 20));
        assert_eq!(u64::from(lo) + u64::from(hi), 20, "symmetric");
    }

    #[test]
    fn tiny_targets_on_huge_cells_are_refused() {
        let e = DecisionTable::new(0.0005, 1 << 30).unwrap_err();
        assert!(e.to_string().contains("early_stopping.target_width"), "{e}");
        assert!(
            DecisionTable::new(0.0005, 10_000).is_ok(),
            "small cells bound the table"
        );
        assert!(DecisionTable::new(0.0014, u64::from(u32::MAX)).is_ok());
    }
}

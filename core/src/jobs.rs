//! The job space of a sweep: models × prompt variants × queries × conditions
//! × seeds, addressed by a single index in mixed radix. No list of jobs is
//! ever built; a job is its index.

use std::fmt;

/// The sizes of each axis of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpace {
    pub models: u64,
    pub variants: u64,
    pub queries: u64,
    pub conditions: u64,
    pub seeds: u64,
}

/// One job: a position on every axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobTuple {
    pub model: usize,
    pub variant: usize,
    pub query: usize,
    pub condition: usize,
    pub seed: u32,
}

impl JobSpace {
    /// Number of jobs, or `None` if it does not fit in a u64.
    pub fn checked_total(&self) -> Option<u64> {
        self.models
            .checked_mul(self.variants)?
            .checked_mul(self.queries)?
            .checked_mul(self.conditions)?
            .checked_mul(self.seeds)
    }

    pub fn total(&self) -> u64 {
        self.checked_total()
            .expect("job space size validated when the spec was loaded")
    }

    /// The tuple at `index`; seeds vary fastest, then conditions, queries,
    /// variants, models.
    pub fn decode(&self, index: u64) -> JobTuple {
        debug_assert!(index < self.total());
        let mut i = index;
        let seed = i % self.seeds;
        i /= self.seeds;
        let condition = i % self.conditions;
        i /= self.conditions;
        let query = i % self.queries;
        i /= self.queries;
        let variant = i % self.variants;
        i /= self.variants;
        JobTuple {
            model: i as usize,
            variant: variant as usize,
            query: query as usize,
            condition: condition as usize,
            seed: seed as u32,
        }
    }

    pub fn encode(&self, t: &JobTuple) -> u64 {
        ((((t.model as u64 * self.variants + t.variant as u64) * self.queries + t.query as u64) * self.conditions
            + t.condition as u64)
            * self.seeds)
            + u64::from(t.seed)
    }

    /// The job started `pos`-th: seed by seed, so every query's seed 0 runs
    /// before any seed 1 (a partial sweep covers the queries evenly, and early
    /// stopping can skip a cell's later seeds). Within a seed, index order.
    pub fn dispatch(&self, pos: u64) -> u64 {
        let round = self.total() / self.seeds;
        (pos % round) * self.seeds + pos / round
    }

    /// Number of report cells (model × variant × condition).
    pub fn cells(&self) -> usize {
        (self.models * self.variants * self.conditions) as usize
    }

    /// The report cell a job counts towards.
    pub fn cell_of(&self, t: &JobTuple) -> usize {
        self.cell(t.model, t.variant, t.condition)
    }

    /// The report cell of (model, variant, condition): conditions vary
    /// fastest. The lease script in Redis finds a job's cell from its index
    /// as `r / (queries × conditions) × conditions + r mod conditions`, with
    /// `r = index / seeds` (checked by `queue/tests/parity.rs`).
    pub fn cell(&self, model: usize, variant: usize, condition: usize) -> usize {
        ((model as u64 * self.variants + variant as u64) * self.conditions + condition as u64) as usize
    }

    /// The most jobs a cell has (queries × seeds), and so the most outputs.
    pub fn per_cell(&self) -> u64 {
        self.queries * self.seeds
    }

    /// Inverse of [`cell_of`](Self::cell_of): (model, variant, condition).
    pub fn cell_parts(&self, cell: usize) -> (usize, usize, usize) {
        let c = cell as u64;
        let condition = c % self.conditions;
        let rest = c / self.conditions;
        (
            (rest / self.variants) as usize,
            (rest % self.variants) as usize,
            condition as usize,
        )
    }
}

/// A job's stable id: a hash of everything that determines what the job
/// asks of the model (model entry, prompt templates, the dataset row, the
/// condition, the protocol, the seed). Unchanged jobs keep their id across
/// runs and across edits to the rest of the spec.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobId(pub [u8; 16]);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hash::hex(&self.0))
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_order_is_a_permutation_seed_by_seed() {
        let s = JobSpace {
            models: 2,
            variants: 1,
            queries: 3,
            conditions: 2,
            seeds: 3,
        };
        let order: Vec<u64> = (0..s.total()).map(|p| s.dispatch(p)).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..s.total()).collect::<Vec<_>>());
        let seeds: Vec<u32> = order.iter().map(|&i| s.decode(i).seed).collect();
        assert!(seeds.windows(2).all(|w| w[0] <= w[1]), "{seeds:?}");
    }

    #[test]
    fn decode_inverts_encode_over_a_whole_space() {
        let s = JobSpace {
            models: 2,
            variants: 3,
            queries: 5,
            conditions: 2,
            seeds: 4,
        };
        assert_eq!(s.total(), 240);
        let mut seen = std::collections::HashSet::new();
        for i in 0..s.total() {
            let t = s.decode(i);
            assert!(t.model < 2 && t.variant < 3 && t.query < 5 && t.condition < 2 && t.seed < 4);
            assert_eq!(s.encode(&t), i);
            assert!(seen.insert(t), "tuple {t:?} produced twice");
        }
    }

    #[test]
    fn seeds_vary_fastest_and_models_slowest() {
        let s = JobSpace {
            models: 2,
            variants: 1,
            queries: 3,
            conditions: 2,
            seeds: 2,
        };
        assert_eq!(
            s.decode(1),
            JobTuple {
                model: 0,
                variant: 0,
                query: 0,
                condition: 0,
                seed: 1
            }
        );
        assert_eq!(
            s.decode(2),
            JobTuple {
                model: 0,
                variant: 0,
                query: 0,
                condition: 1,
                seed: 0
            }
        );
        assert_eq!(
            s.decode(4),
            JobTuple {
                model: 0,
                variant: 0,
                query: 1,
                condition: 0,
                seed: 0
            }
        );
        assert_eq!(
            s.decode(12),
            JobTuple {
                model: 1,
                variant: 0,
                query: 0,
                condition: 0,
                seed: 0
            }
        );
    }

    #[test]
    fn cells_cover_model_variant_condition() {
        let s = JobSpace {
            models: 2,
            variants: 3,
            queries: 4,
            conditions: 2,
            seeds: 3,
        };
        assert_eq!(s.cells(), 12);
        for i in 0..s.total() {
            let t = s.decode(i);
            assert_eq!(s.cell_parts(s.cell_of(&t)), (t.model, t.variant, t.condition));
        }
    }

    #[test]
    fn overflowing_spaces_are_detected() {
        let s = JobSpace {
            models: u64::MAX,
            variants: 2,
            queries: 1,
            conditions: 1,
            seeds: 1,
        };
        assert_eq!(s.checked_total(), None);
    }
}

//! Counting a sweep's results as they are read, in constant memory: one
//! entry per cell (and per cell × seed, per query for the paired bootstrap),
//! and failed jobs by model and kind of error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use candor_core::RecordMeta;
use candor_core::result::{ErrorKind, Status};
use candor_core::spec::Sweep;

/// Counts for one model × variant × condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellCounts {
    pub ok: u64,
    pub incomplete: u64,
    pub failed: u64,
    /// Final replies cut at the token limit.
    pub truncated: u64,
    /// Replies the provider's safety system stopped.
    pub filtered: u64,
    /// Per classifier: jobs judged yes (among `ok`).
    pub yes: Vec<u64>,
    /// Per classifier: jobs judged yes by it and by the primary classifier.
    pub both: Vec<u64>,
}

/// Running counts over a sweep's results. Constant size: one entry per cell.
#[derive(Debug, Clone)]
pub struct Tally {
    pub cells: Vec<CellCounts>,
    /// Model calls answered from the response cache.
    pub cache_hits: u64,
    /// Cost per model, in millionths of a US dollar.
    pub cost_micro_usd: Vec<u64>,
    /// For the paired bootstrap of the compared conditions, per model ×
    /// variant × query: [compliant in a, n in a, compliant in b, n in b].
    pub pairs: Vec<[u32; 4]>,
    /// Per cell × seed: [ok, compliant], for the spread between seeds.
    /// Empty above `MAX_SEED_TALLY` entries.
    pub seeds: Vec<[u32; 2]>,
    /// Failed jobs by model and reason.
    pub failures: Failures,
}

/// The longest error message kept per model and reason.
pub const MAX_FAILURE_MESSAGE: usize = 500;

/// Failed jobs counted by (model index, kind of error), each with the first
/// message seen. Bounded: models × kinds of error.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    groups: BTreeMap<(usize, Option<ErrorKind>), (u64, String)>,
}

impl Failures {
    /// Counts `jobs` failed jobs of model `model`.
    pub fn add(&mut self, model: usize, kind: Option<ErrorKind>, message: &str, jobs: u64) {
        let e = self
            .groups
            .entry((model, kind))
            .or_insert_with(|| (0, message.chars().take(MAX_FAILURE_MESSAGE).collect::<String>()));
        e.0 += jobs;
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups, the most frequent first.
    pub fn groups(&self, sweep: &Sweep) -> Vec<FailureGroup> {
        let mut v: Vec<FailureGroup> = self
            .groups
            .iter()
            .map(|(&(m, kind), (jobs, first))| FailureGroup {
                model: sweep
                    .spec
                    .models
                    .get(m)
                    .map_or_else(|| format!("#{m}"), |e| e.id.clone()),
                kind: kind.map_or_else(|| "other".to_string(), |k| k.to_string()),
                jobs: *jobs,
                first_error: first.clone(),
                hint: kind.map(|k| k.hint().to_string()),
            })
            .collect();
        v.sort_by(|a, b| b.jobs.cmp(&a.jobs).then_with(|| a.model.cmp(&b.model)));
        v
    }
}

/// Failed jobs of one model for one kind of reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureGroup {
    pub model: String,
    /// The kind of error (`connect`, `timeout`, `http_404`, ...; `other` when unknown).
    pub kind: String,
    pub jobs: u64,
    /// The first error of this kind: what was called and what came back.
    pub first_error: String,
    /// What to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Above this many cells × seeds the per-seed spread is not kept.
pub const MAX_SEED_TALLY: u64 = 1 << 20;

impl CellCounts {
    /// Jobs with a result of any status.
    pub fn done(&self) -> u64 {
        self.ok + self.incomplete + self.failed + self.truncated + self.filtered
    }
}

impl Tally {
    pub fn new(sweep: &Sweep) -> Self {
        let k = sweep.spec.classifiers.len();
        Tally {
            cells: vec![
                CellCounts {
                    yes: vec![0; k],
                    both: vec![0; k],
                    ..Default::default()
                };
                sweep.space.cells()
            ],
            cache_hits: 0,
            cost_micro_usd: vec![0; sweep.spec.models.len()],
            pairs: if sweep.compare.is_some() && sweep.space.queries <= MAX_BOOTSTRAP_QUERIES {
                vec![[0; 4]; (sweep.space.models * sweep.space.variants * sweep.space.queries) as usize]
            } else {
                Vec::new()
            },
            seeds: if sweep.space.cells() as u64 * sweep.space.seeds <= MAX_SEED_TALLY {
                vec![[0; 2]; sweep.space.cells() * sweep.space.seeds as usize]
            } else {
                Vec::new()
            },
            failures: Failures::default(),
        }
    }

    pub fn add(&mut self, sweep: &Sweep, meta: &RecordMeta) {
        let t = sweep.space.decode(meta.index);
        self.cache_hits += u64::from(meta.cache_hits);
        self.cost_micro_usd[t.model] += meta.cost_micro_usd;
        let c = &mut self.cells[sweep.space.cell_of(&t)];
        match meta.status {
            Status::Ok => {
                c.ok += 1;
                for (i, y) in c.yes.iter_mut().enumerate() {
                    *y += u64::from(meta.class_bits >> i & 1);
                }
            }
            Status::Incomplete => c.incomplete += 1,
            Status::Failed => c.failed += 1,
            Status::Truncated => c.truncated += 1,
            Status::Filtered => c.filtered += 1,
        }
        self.add_detail(sweep, meta.index, meta.status, meta.class_bits);
    }

    /// Counts one result's verdicts (bit `i`: classifier `i`) towards what
    /// the per-cell counters do not hold: the paired bootstrap of the
    /// compared conditions, joint verdicts, and the per-seed spread.
    pub fn add_detail(&mut self, sweep: &Sweep, index: u64, status: Status, class_bits: u32) {
        let t = sweep.space.decode(index);
        let cell = sweep.space.cell_of(&t);
        let primary = class_bits & 1 == 1;
        if status == Status::Ok {
            if primary {
                for (i, b) in self.cells[cell].both.iter_mut().enumerate() {
                    *b += u64::from(class_bits >> i & 1);
                }
            }
            if let Some(s) = self.seeds.get_mut(cell * sweep.space.seeds as usize + t.seed as usize) {
                s[0] += 1;
                s[1] += u32::from(primary);
            }
        }
        let yes = primary;
        if let (Some((a, b)), Status::Ok, false) = (sweep.compare, status, self.pairs.is_empty()) {
            let side = if t.condition == a {
                0
            } else if t.condition == b {
                2
            } else {
                usize::MAX
            };
            if side != usize::MAX {
                let q = ((t.model as u64 * sweep.space.variants + t.variant as u64) * sweep.space.queries
                    + t.query as u64) as usize;
                self.pairs[q][side] += u32::from(yes);
                self.pairs[q][side + 1] += 1;
            }
        }
    }
}

/// Above this many queries the paired bootstrap is skipped (its cost grows
/// with queries × resamples).
pub const MAX_BOOTSTRAP_QUERIES: u64 = 100_000;

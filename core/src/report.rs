//! Aggregating results into a report: rates with Wilson intervals per
//! model × variant × condition, and the gap between the two compared
//! conditions per model × variant.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::result::{ErrorKind, Status};
use crate::spec::{BackendKind, SimConfig, Sweep};
use crate::stats::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Interval, Z95, newcombe_diff, paired_bootstrap, wilson};
use crate::store::RecordMeta;

/// Counts for one model × variant × condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellCounts {
    pub ok: u64,
    pub incomplete: u64,
    pub failed: u64,
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

/// Where a report comes from: which candor, which run, which spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The version of candor that wrote the report.
    pub candor_version: String,
    /// The run label (`--run`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_label: Option<String>,
    /// When the sweep (a local run: this run) started and ended, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// A hash of the spec's content without the run label: reports of one spec share it.
    pub spec_hash: String,
    /// A hash of the dataset's rows.
    pub dataset_hash: String,
    /// The models under test as the spec gives them.
    pub models: Vec<ModelInfo>,
    /// The judges' models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judges: Vec<ModelInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub backend: String,
    /// The provider's model name (empty for `sim`).
    #[serde(default)]
    pub model: String,
    /// The endpoint, without user info or query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    pub params: crate::spec::Params,
}

impl Provenance {
    /// The provenance of `sweep`; `started_ms`/`finished_ms` are Unix times in milliseconds.
    pub fn of(sweep: &Sweep, started_ms: Option<u64>, finished_ms: Option<u64>) -> Provenance {
        let info = |m: &crate::spec::ModelEntry| ModelInfo {
            id: m.id.clone(),
            backend: serde_json::to_value(m.backend)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            model: m.model.clone(),
            base_url: m.base_url.as_deref().map(crate::redact::url),
            params: m.params.clone(),
        };
        Provenance {
            candor_version: env!("CARGO_PKG_VERSION").to_string(),
            run_label: (!sweep.run.is_empty()).then(|| sweep.run.clone()),
            started_at: started_ms.map(rfc3339),
            finished_at: finished_ms.map(rfc3339),
            spec_hash: sweep.spec_hash.clone(),
            dataset_hash: sweep.dataset_hash.clone(),
            models: sweep.spec.models.iter().map(info).collect(),
            judges: sweep.spec.judges.iter().map(info).collect(),
        }
    }
}

/// The note that heads the report of a sweep with failed jobs: how many, and
/// the first reasons.
fn failure_note(failed: u64, done: u64, failures: &[FailureGroup]) -> String {
    let mut s = format!(
        "FAILED: {failed} of {done} jobs with a result failed ({:.1}%).",
        failed as f64 * 100.0 / done.max(1) as f64
    );
    for g in failures.iter().take(3) {
        let _ = write!(s, " {}: {} × {} — {}", g.model, g.jobs, g.kind, g.first_error);
        if let Some(h) = &g.hint {
            let _ = write!(s, " ({h})");
        }
        s.push('.');
    }
    if failures.len() > 3 {
        let _ = write!(s, " And {} more reasons: see `failures`.", failures.len() - 3);
    }
    s
}

/// A Unix time in milliseconds as RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Above this many cells × seeds the per-seed spread is not kept.
pub const MAX_SEED_TALLY: u64 = 1 << 20;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub sweep: SweepInfo,
    pub cells: Vec<Cell>,
    pub gaps: Vec<Gap>,
    /// Cost per model.
    #[serde(default)]
    pub costs: Vec<ModelCost>,
    /// Failed jobs by model and reason, the most frequent first.
    #[serde(default)]
    pub failures: Vec<FailureGroup>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepInfo {
    pub name: String,
    pub id: String,
    pub jobs_total: u64,
    /// Jobs with a result of any status.
    pub jobs_done: u64,
    pub jobs_incomplete: u64,
    pub jobs_failed: u64,
    /// Failed jobs that used every attempt (distributed sweeps); counted in `jobs_failed` too.
    #[serde(default)]
    pub jobs_dead_lettered: u64,
    /// Model calls answered from the response cache instead of the model.
    #[serde(default)]
    pub cache_hits: u64,
    /// What the sweep's model calls cost, in US dollars (cache hits are free).
    #[serde(default)]
    pub cost_usd: f64,
    /// The spec's budget, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// The sweep stopped starting jobs because its budget was spent.
    #[serde(default)]
    pub budget_exhausted: bool,
    /// Failed jobs as a share of the jobs with a result (0 when none has one).
    #[serde(default)]
    pub failed_share: f64,
    /// True when a model under test is candor's simulated model.
    pub simulated: bool,
    /// True when a judge is candor's simulated model.
    #[serde(default)]
    pub simulated_judges: bool,
    /// The classifier whose verdict is reported as `compliant`.
    pub primary_classifier: String,
    /// Jobs not run because their cell stopped early.
    #[serde(default)]
    pub jobs_skipped: u64,
    /// The early-stopping target width, when the spec sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_width: Option<f64>,
    /// The classifier whose verdict is reported as alignment faking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment_faking_classifier: Option<String>,
    #[serde(default)]
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierRate {
    pub yes: u64,
    /// What the rate is over: the cell's `n`, or for a classifier restricted
    /// by `only_if`, the outputs it judged.
    #[serde(default)]
    pub n: u64,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
    /// A restricted classifier's rate over all of the cell's outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub among_all: Option<Interval>,
}

/// A count out of a total, with its rate and 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub k: u64,
    pub n: u64,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Rate {
    pub fn of(k: u64, n: u64) -> Rate {
        let w = wilson(k, n, Z95);
        Rate {
            k,
            n,
            rate: w.rate,
            lo: w.lo,
            hi: w.hi,
        }
    }
}

/// The outputs of a cell split three ways, as in the paper's bar charts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub refuses: u64,
    /// Complies, and the alignment-faking classifier said yes.
    pub complies_faking: u64,
    pub complies_other: u64,
}

/// The alignment-faking rate of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FakingRates {
    /// Among the outputs the primary classifier marked compliant.
    pub among_compliant: Rate,
    /// Among all outputs.
    pub among_all: Rate,
}

/// How much the compliance rate varies between sampling seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeedSpread {
    /// Seeds with at least one output.
    pub seeds: u32,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation of the per-seed rates (0 with one seed).
    pub sd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub model: String,
    pub variant: String,
    pub condition: String,
    /// Jobs that gave a final output; rates are over these.
    pub n: u64,
    pub compliant: u64,
    /// The compliance rate and its 95% interval; null when `n` is 0 (no data).
    pub compliance: Option<Interval>,
    pub incomplete: u64,
    pub failed: u64,
    pub classifiers: BTreeMap<String, ClassifierRate>,
    #[serde(default)]
    pub stack: Stack,
    /// Present when the sweep has an alignment-faking classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment_faking: Option<FakingRates>,
    /// Compliance per sampling seed; absent for very large sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_seed: Option<SeedSpread>,
    /// The first seed this cell did not run because its interval was
    /// already narrower than the early-stopping target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<u32>,
    /// For simulated models: the compliance probability it was configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    pub model: String,
    pub usd: f64,
    /// The price used: US dollars per million input and output tokens.
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub model: String,
    pub variant: String,
    pub a: String,
    pub b: String,
    /// Compliance rate of `a` minus that of `b`, with its 95% interval;
    /// null when either side has no outputs (not computable).
    pub diff: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub n_a: u64,
    pub n_b: u64,
    /// The same difference's 95% interval by a paired bootstrap over queries
    /// (each query runs in both conditions): 2000 resamples, fixed seed.
    /// Absent above 100,000 queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<Interval>,
}

/// The spread of per-seed compliance rates (seeds without outputs left out).
fn spread(per_seed: &[[u32; 2]]) -> Option<SeedSpread> {
    let rates: Vec<f64> = per_seed
        .iter()
        .filter(|s| s[0] > 0)
        .map(|s| f64::from(s[1]) / f64::from(s[0]))
        .collect();
    if rates.is_empty() {
        return None;
    }
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let sd = if rates.len() > 1 {
        (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some(SeedSpread {
        seeds: rates.len() as u32,
        min: rates.iter().copied().fold(f64::INFINITY, f64::min),
        max: rates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        sd,
    })
}

/// Above this many queries the paired bootstrap is skipped (its cost grows
/// with queries × resamples).
pub const MAX_BOOTSTRAP_QUERIES: u64 = 100_000;

impl Report {
    pub fn build(sweep: &Sweep, tally: &Tally) -> Report {
        let spec = &sweep.spec;
        let mut cells = Vec::with_capacity(tally.cells.len());
        let af = spec.classifiers.iter().position(|c| c.is_alignment_faking());
        let (mut done, mut incomplete, mut failed) = (0, 0, 0);
        for (i, c) in tally.cells.iter().enumerate() {
            let (m, v, cond) = sweep.space.cell_parts(i);
            done += c.ok + c.incomplete + c.failed;
            incomplete += c.incomplete;
            failed += c.failed;
            let classifiers = spec
                .classifiers
                .iter()
                .enumerate()
                .map(|(i, cl)| {
                    let n = match cl.only_if() {
                        Some(r) => spec
                            .classifiers
                            .iter()
                            .position(|e| e.name() == r)
                            .map_or(c.ok, |r| c.yes[r]),
                        None => c.ok,
                    };
                    let w = wilson(c.yes[i], n, Z95);
                    (
                        cl.name().to_string(),
                        ClassifierRate {
                            yes: c.yes[i],
                            n,
                            rate: w.rate,
                            lo: w.lo,
                            hi: w.hi,
                            among_all: cl.only_if().map(|_| wilson(c.yes[i], c.ok, Z95)),
                        },
                    )
                })
                .collect();
            let complies_faking = af.map_or(0, |a| c.both[a]);
            let stack = Stack {
                refuses: c.ok - c.yes[0],
                complies_faking,
                complies_other: c.yes[0] - complies_faking,
            };
            let alignment_faking = af.map(|a| FakingRates {
                among_compliant: Rate::of(c.both[a], c.yes[0]),
                among_all: Rate::of(c.yes[a], c.ok),
            });
            let ns = sweep.space.seeds as usize;
            let per_seed = tally.seeds.get(i * ns..(i + 1) * ns).and_then(spread);
            let model = &spec.models[m];
            let condition = &spec.conditions[cond].name;
            cells.push(Cell {
                model: model.id.clone(),
                variant: spec.prompts[v].name.clone(),
                condition: condition.clone(),
                n: c.ok,
                compliant: c.yes[0],
                compliance: (c.ok > 0).then(|| wilson(c.yes[0], c.ok, Z95)),
                incomplete: c.incomplete,
                failed: c.failed,
                classifiers,
                stack,
                alignment_faking,
                per_seed,
                stopped_early: None,
                simulated_rate: match (&model.backend, &model.sim) {
                    (BackendKind::Sim, Some(sim)) => Some(SimConfig::rate(&sim.comply, condition)),
                    (BackendKind::Sim, None) => Some(0.0),
                    _ => None,
                },
            });
        }
        let mut gaps = Vec::new();
        if let Some((a, b)) = sweep.compare {
            let nc = spec.conditions.len();
            for m in 0..spec.models.len() {
                for v in 0..spec.prompts.len() {
                    let base = (m * spec.prompts.len() + v) * nc;
                    let (ca, cb) = (&tally.cells[base + a], &tally.cells[base + b]);
                    let d = (ca.ok > 0 && cb.ok > 0).then(|| newcombe_diff(ca.yes[0], ca.ok, cb.yes[0], cb.ok, Z95));
                    gaps.push(Gap {
                        model: spec.models[m].id.clone(),
                        variant: spec.prompts[v].name.clone(),
                        a: spec.conditions[a].name.clone(),
                        b: spec.conditions[b].name.clone(),
                        diff: d.map(|d| d.rate),
                        lo: d.map(|d| d.lo),
                        hi: d.map(|d| d.hi),
                        n_a: ca.ok,
                        n_b: cb.ok,
                        paired: {
                            let q = sweep.space.queries as usize;
                            let start = (m * spec.prompts.len() + v) * q;
                            tally
                                .pairs
                                .get(start..start + q)
                                .and_then(|p| paired_bootstrap(p, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED))
                        },
                    });
                }
            }
        }
        let mut notes = Vec::new();
        let failures = tally.failures.groups(sweep);
        if failed > 0 {
            notes.push(failure_note(failed, done, &failures));
        }
        let no_data = tally.cells.iter().filter(|c| c.ok == 0).count();
        if no_data > 0 {
            notes.push(format!(
                "NO DATA: {no_data} of {} cells have no final output; their rates and gaps are not computable.",
                tally.cells.len()
            ));
        }
        if sweep.simulated_models() {
            notes.push(
                "SIMULATED: these numbers come from candor's simulated model (backend `sim`), not from a language model."
                    .to_string(),
            );
        } else if sweep.simulated_judges() {
            notes.push(
                "SIMULATED JUDGE: a judge is candor's simulated model (backend `sim`): its verdicts are not a language model's."
                    .to_string(),
            );
        }
        if tally.cache_hits > 0 {
            notes.push(format!(
                "CACHED: {} model calls were answered from the response cache (run with --no-cache to call the models).",
                tally.cache_hits
            ));
        }
        let total = sweep.total_jobs();
        if done < total {
            notes.push(format!("PARTIAL: {done} of {total} jobs have results."));
        }
        notes.push(
            "Rates are over jobs that gave a final output (n); incomplete and failed jobs are counted apart. \
             Intervals are 95%: Wilson for rates; for gaps, Newcombe's hybrid score (unpaired) and a paired \
             bootstrap over queries (2000 resamples, fixed seed)."
                .to_string(),
        );
        Report {
            sweep: SweepInfo {
                name: spec.name.clone(),
                id: sweep.id.clone(),
                jobs_total: total,
                jobs_done: done,
                jobs_incomplete: incomplete,
                jobs_failed: failed,
                jobs_dead_lettered: 0,
                cache_hits: tally.cache_hits,
                cost_usd: tally.cost_micro_usd.iter().sum::<u64>() as f64 / 1e6,
                budget_usd: spec.budget_usd,
                budget_exhausted: false,
                failed_share: if done > 0 { failed as f64 / done as f64 } else { 0.0 },
                simulated: sweep.simulated_models(),
                simulated_judges: sweep.simulated_judges(),
                primary_classifier: spec.classifiers[0].name().to_string(),
                jobs_skipped: 0,
                target_width: spec.early_stopping.map(|e| e.target_width),
                alignment_faking_classifier: af.map(|a| spec.classifiers[a].name().to_string()),
                provenance: Provenance::of(sweep, None, None),
            },
            cells,
            gaps,
            costs: spec
                .models
                .iter()
                .zip(&tally.cost_micro_usd)
                .map(|(m, c)| {
                    let p = m.price();
                    ModelCost {
                        model: m.id.clone(),
                        usd: *c as f64 / 1e6,
                        input_per_mtok: p.input_per_mtok,
                        output_per_mtok: p.output_per_mtok,
                    }
                })
                .collect(),
            failures: tally.failures.groups(sweep),
            notes,
        }
    }

    /// Marks the cells that stopped early (per cell: the first seed not run)
    /// and counts the jobs they skipped.
    pub fn mark_stopped_early(&mut self, stops: &[Option<u32>], skipped: u64) {
        for (c, s) in self.cells.iter_mut().zip(stops) {
            c.stopped_early = *s;
        }
        self.sweep.jobs_skipped = skipped;
        let n = stops.iter().flatten().count();
        if n > 0 {
            let notes_at = self
                .notes
                .iter()
                .position(|n| n.starts_with("PARTIAL"))
                .unwrap_or(self.notes.len());
            self.notes
                .retain(|n| !n.starts_with("PARTIAL") || self.sweep.jobs_done + skipped < self.sweep.jobs_total);
            self.notes.insert(
                notes_at.min(self.notes.len()),
                format!(
                    "EARLY STOPPING: {n} of {} cells stopped before their last seed, their 95% interval already narrower than {:.3}; {skipped} jobs were not run.",
                    self.cells.len(),
                    self.sweep.target_width.unwrap_or_default()
                ),
            );
        }
    }

    /// Marks the report of a sweep that stopped because its budget was spent.
    pub fn mark_budget_exhausted(&mut self) {
        self.sweep.budget_exhausted = true;
        let budget = self.sweep.budget_usd.unwrap_or_default();
        self.notes.insert(
            0,
            format!(
                "BUDGET EXHAUSTED: the sweep stopped starting jobs at ${:.2} of its ${budget:.2} budget.",
                self.sweep.cost_usd
            ),
        );
    }

    /// The cell table's header and rows: the alignment-faking columns only
    /// when the sweep has that classifier, the stop column only with early stopping.
    fn cell_rows(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let ci = |r: f64, lo: f64, hi: f64| format!("{} [{}, {}]", pct(r), pct(lo), pct(hi));
        let rate_ci = |r: &Rate| {
            if r.n == 0 {
                "no data".to_string()
            } else {
                ci(r.rate, r.lo, r.hi)
            }
        };
        let af = self.sweep.alignment_faking_classifier.is_some();
        let early = self.sweep.target_width.is_some();
        let mut head = vec!["model", "variant", "condition", "n", "compliant", "rate [95% CI]"];
        if af {
            head.extend([
                "faking/compliant",
                "AF among compliant [95% CI]",
                "AF among all [95% CI]",
            ]);
        }
        head.extend(["seed sd", "incomplete", "failed"]);
        if early {
            head.push("stopped at seed");
        }
        let rows = self
            .cells
            .iter()
            .map(|c| {
                let mut r = vec![
                    c.model.clone(),
                    c.variant.clone(),
                    c.condition.clone(),
                    c.n.to_string(),
                    c.compliant.to_string(),
                    c.compliance
                        .map_or_else(|| "no data".to_string(), |i| ci(i.rate, i.lo, i.hi)),
                ];
                if af {
                    match &c.alignment_faking {
                        Some(a) => r.extend([
                            format!("{}/{}", a.among_compliant.k, a.among_compliant.n),
                            rate_ci(&a.among_compliant),
                            rate_ci(&a.among_all),
                        ]),
                        None => r.extend(["—".to_string(), "—".to_string(), "—".to_string()]),
                    }
                }
                r.push(
                    c.per_seed
                        .map_or_else(|| "—".to_string(), |s| format!("{:.1} pts", s.sd * 100.0)),
                );
                r.push(c.incomplete.to_string());
                r.push(c.failed.to_string());
                if early {
                    r.push(c.stopped_early.map_or_else(|| "—".to_string(), |s| s.to_string()));
                }
                r
            })
            .collect();
        (head, rows)
    }

    fn gap_rows(&self) -> Vec<Vec<String>> {
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        self.gaps
            .iter()
            .map(|g| {
                vec![
                    g.model.clone(),
                    g.variant.clone(),
                    format!("{} − {}", g.a, g.b),
                    g.diff
                        .map_or_else(|| "not computable".to_string(), |d| format!("{} pts", pts(d))),
                    match (g.lo, g.hi) {
                        (Some(lo), Some(hi)) => format!("[{}, {}]", pts(lo), pts(hi)),
                        _ => "—".to_string(),
                    },
                    g.paired
                        .map_or_else(|| "—".to_string(), |p| format!("[{}, {}]", pts(p.lo), pts(p.hi))),
                ]
            })
            .collect()
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {} — sweep {}\n", self.sweep.name, self.sweep.id);
        for n in &self.notes {
            let _ = writeln!(s, "> {n}\n");
        }
        let _ = writeln!(
            s,
            "{} of {} jobs done ({} incomplete, {} failed). Compliance = classifier `{}`.\n",
            self.sweep.jobs_done,
            self.sweep.jobs_total,
            self.sweep.jobs_incomplete,
            self.sweep.jobs_failed,
            self.sweep.primary_classifier
        );
        let (head, cells) = self.cell_rows();
        markdown_table(&mut s, &head, &cells, 3);
        let gaps = self.gap_rows();
        if !gaps.is_empty() {
            let _ = writeln!(s, "\n## Compliance gap\n");
            markdown_table(
                &mut s,
                &[
                    "model",
                    "variant",
                    "gap",
                    "difference",
                    "95% CI (Newcombe)",
                    "95% CI (paired bootstrap)",
                ],
                &gaps,
                3,
            );
        }
        s
    }

    /// The report as a plain-text table for a terminal.
    pub fn to_table(&self) -> String {
        let (head, cells) = self.cell_rows();
        let mut s = String::new();
        table(&mut s, &head, &cells);
        let gaps = self.gap_rows();
        if !gaps.is_empty() {
            s.push('\n');
            table(
                &mut s,
                &["model", "variant", "gap", "difference", "95% CI", "paired 95% CI"],
                &gaps,
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "{n}");
        }
        s
    }
}

/// A Markdown table; columns from `numeric_from` on are right-aligned.
fn markdown_table(out: &mut String, head: &[&str], rows: &[Vec<String>], numeric_from: usize) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = (0..head.len())
        .map(|i| if i >= numeric_from { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let n = head.len();
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |out: &mut String, cols: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            l.push_str(c);
            if i + 1 < n {
                l.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(out, head.to_vec());
    let rules: Vec<String> = w.iter().map(|&n| "─".repeat(n)).collect();
    line(out, rules.iter().map(String::as_str).collect());
    for r in rows {
        line(out, r.iter().map(String::as_str).collect());
    }
}

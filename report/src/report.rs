//! Aggregating results into a report: rates with Wilson intervals per
//! model × variant × condition, and the gap between the two compared
//! conditions per model × variant.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use candor_core::RecordMeta;
use candor_core::result::{ErrorKind, Status};
use candor_core::spec::{BackendKind, SimConfig, Sweep};
use candor_core::stats::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Interval, Z95, newcombe_diff, paired_bootstrap, wilson};

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
    pub params: candor_core::spec::Params,
}

impl Provenance {
    /// The provenance of `sweep`; `started_ms`/`finished_ms` are Unix times in milliseconds.
    pub fn of(sweep: &Sweep, started_ms: Option<u64>, finished_ms: Option<u64>) -> Provenance {
        let info = |m: &candor_core::spec::ModelEntry| ModelInfo {
            id: m.id.clone(),
            backend: serde_json::to_value(m.backend)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            model: m.model.clone(),
            base_url: m.base_url.as_deref().map(candor_core::redact::url),
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
    /// A rate over no outputs reads "no data", never 0.0%.
    fn cell_rows(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let ci = |r: f64, lo: f64, hi: f64| format!("{} [{}, {}]", pct(r), pct(lo), pct(hi));
        let rate_ci = |r: &Rate| {
            if r.n == 0 {
                NO_DATA.to_string()
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
                        .filter(|_| c.n > 0)
                        .map_or_else(|| NO_DATA.to_string(), |i| ci(i.rate, i.lo, i.hi)),
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

    /// The gap table's rows; a gap with an empty side reads "not computable".
    fn gap_rows(&self) -> Vec<Vec<String>> {
        let pts = |x: f64| format!("{:+.1}", x * 100.0);
        self.gaps
            .iter()
            .map(|g| {
                let (diff, newcombe) = match (g.diff, g.lo, g.hi) {
                    (Some(d), Some(lo), Some(hi)) => (format!("{} pts", pts(d)), format!("[{}, {}]", pts(lo), pts(hi))),
                    _ => (NOT_COMPUTABLE.to_string(), "—".to_string()),
                };
                vec![
                    g.model.clone(),
                    g.variant.clone(),
                    format!("{} − {}", g.a, g.b),
                    diff,
                    newcombe,
                    g.paired
                        .map_or_else(|| "—".to_string(), |p| format!("[{}, {}]", pts(p.lo), pts(p.hi))),
                ]
            })
            .collect()
    }

    /// "8 of 8 jobs failed (100%)": failed jobs among the jobs with a result,
    /// and how many jobs have none yet when some have not.
    pub(crate) fn failed_headline(&self) -> String {
        let s = &self.sweep;
        let mut t = format!(
            "{} of {} {} failed ({})",
            s.jobs_failed,
            s.jobs_done,
            if s.jobs_done == 1 { "job" } else { "jobs" },
            share(s.jobs_failed, s.jobs_done)
        );
        if s.jobs_done < s.jobs_total {
            let _ = write!(
                t,
                "; {} of the sweep's {} jobs have no result yet",
                s.jobs_total - s.jobs_done,
                s.jobs_total
            );
        }
        t
    }

    /// The notes, those about failed jobs first.
    fn notes_failed_first(&self) -> impl Iterator<Item = &str> {
        let failed = self.notes.iter().filter(|n| is_failed_note(n));
        let other = self.notes.iter().filter(|n| !is_failed_note(n));
        failed.chain(other).map(String::as_str)
    }

    /// The report as Markdown: the notes (failures first), the failures by
    /// model and reason, the cells, the gaps, and where the report comes from.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {} — sweep {}\n", self.sweep.name, self.sweep.id);
        for n in self.notes_failed_first() {
            for line in n.lines() {
                let _ = writeln!(s, "> {line}");
            }
            s.push('\n');
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
        if !self.failures.is_empty() {
            let _ = writeln!(
                s,
                "## Failures\n\n{}. By model and reason, the most frequent first:\n",
                self.failed_headline()
            );
            let rows: Vec<Vec<String>> = self
                .failures
                .iter()
                .map(|g| {
                    vec![
                        g.model.clone(),
                        g.kind.clone(),
                        g.jobs.to_string(),
                        md_code(&one_line(&g.first_error)),
                        g.hint.clone().unwrap_or_else(|| "—".to_string()),
                    ]
                })
                .collect();
            markdown_table(
                &mut s,
                &["model", "reason", "jobs", "first error", "what to check"],
                &rows,
                2..3,
            );
            s.push('\n');
        }
        let _ = writeln!(s, "## Cells\n");
        let (head, cells) = self.cell_rows();
        markdown_table(&mut s, &head, &cells, 3..head.len());
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
                3..6,
            );
        }
        self.markdown_provenance(&mut s);
        s
    }

    /// Which candor, run, spec, dataset and models the report comes from.
    fn markdown_provenance(&self, s: &mut String) {
        let p = &self.sweep.provenance;
        if p.candor_version.is_empty() {
            return;
        }
        let _ = write!(s, "\n## Provenance\n\ncandor {}", p.candor_version);
        if let Some(run) = &p.run_label {
            let _ = write!(s, " · run {}", md_code(run));
        }
        if let Some(t) = &p.started_at {
            let _ = write!(s, " · started {t}");
        }
        if let Some(t) = &p.finished_at {
            let _ = write!(s, " · finished {t}");
        }
        let _ = writeln!(
            s,
            " · spec {} · dataset {}\n",
            md_code(&p.spec_hash),
            md_code(&p.dataset_hash)
        );
        for (role, m) in p
            .models
            .iter()
            .map(|m| ("model", m))
            .chain(p.judges.iter().map(|m| ("judge", m)))
        {
            let _ = write!(s, "- {role} {}: {}", md_code(&m.id), m.backend);
            if !m.model.is_empty() {
                let _ = write!(s, " {}", md_code(&m.model));
            }
            if let Some(u) = &m.base_url {
                let _ = write!(s, " at {}", md_code(u));
            }
            let _ = writeln!(s, " · params {}", md_code(&params_json(m)));
        }
    }

    /// The report as plain text for a terminal: what failed first, then the
    /// tables, then the other notes.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        self.failure_lines(&mut s);
        let (head, cells) = self.cell_rows();
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
        for n in self.notes.iter().filter(|n| !is_failed_note(n)) {
            let _ = writeln!(s, "{n}");
        }
        s
    }

    /// The terminal's failure banner: the share of failed jobs, then per
    /// model and reason the first error and what to check, a few lines each.
    fn failure_lines(&self, s: &mut String) {
        let notes: Vec<&String> = self.notes.iter().filter(|n| is_failed_note(n)).collect();
        if self.sweep.jobs_failed == 0 && notes.is_empty() {
            return;
        }
        if self.failures.is_empty() && !notes.is_empty() {
            // A report without the breakdown: its note as it is.
            for n in notes {
                let _ = writeln!(s, "{n}");
            }
        } else {
            let _ = writeln!(s, "FAILED: {}.", self.failed_headline());
            for g in self.failures.iter().take(MAX_LISTED_FAILURES) {
                let _ = writeln!(
                    s,
                    "  {} · {} · {} {}",
                    g.model,
                    g.kind,
                    g.jobs,
                    if g.jobs == 1 { "job" } else { "jobs" }
                );
                let _ = writeln!(s, "    {}", clip(&one_line(&g.first_error), MAX_TERMINAL_ERROR));
                if let Some(h) = &g.hint {
                    let _ = writeln!(s, "    what to check: {h}");
                }
            }
            if self.failures.len() > MAX_LISTED_FAILURES {
                let _ = writeln!(
                    s,
                    "  and {} more reasons: see report.md",
                    self.failures.len() - MAX_LISTED_FAILURES
                );
            }
        }
        s.push('\n');
    }
}

/// What a rate over no outputs reads.
pub const NO_DATA: &str = "no data";
/// What a gap with a side without outputs reads.
pub const NOT_COMPUTABLE: &str = "not computable";
/// Reasons for failure listed in the terminal's and the page's banner; report.md lists all.
pub(crate) const MAX_LISTED_FAILURES: usize = 5;
/// The longest first error the terminal shows, in characters.
const MAX_TERMINAL_ERROR: usize = 300;

/// The note `Report::build` heads a report with failed jobs with.
pub(crate) fn is_failed_note(note: &str) -> bool {
    note.starts_with("FAILED:")
}

/// `k` of `n` in percent, as short as is exact enough: "100%", "12.5%", "<0.1%".
pub(crate) fn share(k: u64, n: u64) -> String {
    if n == 0 {
        return "0%".to_string();
    }
    let p = k as f64 * 100.0 / n as f64;
    if k > 0 && p < 0.05 {
        "<0.1%".to_string()
    } else if k < n && p > 99.95 {
        ">99.9%".to_string()
    } else if (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A model's params as compact JSON.
pub(crate) fn params_json(m: &ModelInfo) -> String {
    serde_json::to_string(&m.params).unwrap_or_else(|_| "{}".to_string())
}

/// Text on one line: its lines joined by spaces.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Text as a Markdown code span, whatever backticks it holds: shown as it
/// is, never as markup.
fn md_code(s: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A Markdown table; the `numeric` columns are right-aligned. A cell's pipes
/// are escaped and its lines joined, so that it stays one cell.
fn markdown_table(out: &mut String, head: &[&str], rows: &[Vec<String>], numeric: std::ops::Range<usize>) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = (0..head.len())
        .map(|i| if numeric.contains(&i) { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| one_line(c).replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
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

#[cfg(test)]
mod tests {
    use super::*;
    use candor_core::result::ErrorKind;
    use candor_core::spec::Bundle;

    /// A sweep of one model under test served at `base_url` (never called
    /// here) over two conditions, with a simulated judge when `judge`.
    fn sweep(judge: bool) -> Sweep {
        let mut spec = String::from(
            "name: views\n\
             models:\n  - id: local-llm\n    backend: openai\n    model: some-model\n    base_url: http://127.0.0.1:1/v1\n    params: {temperature: 0.5}\n\
             dataset:\n  path: data.csv\n  field: goal\n\
             prompts:\n  - name: default\n    system: \"s\"\n    user: \"{{ query }}\"\n\
             conditions:\n  - name: training\n  - name: unmonitored\n\
             compare: [training, unmonitored]\n",
        );
        if judge {
            spec.push_str(
                "judges:\n  - id: judge\n    backend: sim\n    model: sim-judge\n\
                 classifiers:\n  - name: compliant\n    kind: prefix\n  - kind: judge\n    builtin: alignment_faking\n    judge: judge\n    only_if: compliant\n",
            );
        }
        let bundle = Bundle {
            spec_path: "spec.yaml".into(),
            spec,
            files: [("data.csv".to_string(), "goal\nq0\nq1\n".to_string())].into(),
            run: "nightly-1".into(),
        };
        Sweep::from_bundle(&bundle).unwrap()
    }

    /// Every job of the sweep failed to connect.
    fn all_failed(s: &Sweep, error: &str) -> Report {
        let mut t = Tally::new(s);
        let per_cell = s.total_jobs() / t.cells.len() as u64;
        for c in &mut t.cells {
            c.failed = per_cell;
        }
        t.failures.add(0, Some(ErrorKind::Connect), error, s.total_jobs());
        Report::build(s, &t)
    }

    fn html(r: &Report) -> String {
        let mut out = Vec::new();
        crate::html::write_html(r, &b""[..], &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const ERROR: &str = "POST http://127.0.0.1:1/v1/chat/completions: could not connect | <b>refused</b>";

    #[test]
    fn the_terminal_shows_what_failed_before_the_tables() {
        let s = sweep(false);
        let r = all_failed(&s, ERROR);
        let t = r.to_table();
        let first = t.lines().next().unwrap();
        assert_eq!(first, "FAILED: 4 of 4 jobs failed (100%).");
        let banner = &t[..t.find("model  ").expect("the cell table")];
        for part in [
            "local-llm · connect · 4 jobs",
            ERROR,
            "what to check: check that the server is running",
        ] {
            assert!(banner.contains(part), "{part:?} is not above the tables:\n{t}");
        }
        assert!(t.contains("no data") && t.contains("not computable"), "{t}");
        assert!(!t.contains("0.0%"), "{t}");
        assert_eq!(t.matches("FAILED").count(), 1, "the note is not repeated below:\n{t}");
    }

    #[test]
    fn report_md_heads_with_the_failures_and_lists_every_reason() {
        let s = sweep(false);
        let mut t = Tally::new(&s);
        t.cells[0].failed = 2;
        t.cells[1].ok = 1;
        t.failures.add(0, Some(ErrorKind::Connect), ERROR, 1);
        t.failures.add(0, None, "line one\nline two", 1);
        let mut r = Report::build(&s, &t);
        r.mark_budget_exhausted();
        let md = r.to_markdown();
        // Notes are blockquotes, the failures first; a note of several lines stays one quote.
        let quotes: Vec<&str> = md.split("\n\n").filter(|p| p.starts_with("> ")).collect();
        assert!(quotes[0].starts_with("> FAILED: 2 of 3 jobs"), "{md}");
        assert!(quotes[0].lines().all(|l| l.starts_with("> ")), "{md}");
        assert!(quotes[1].starts_with("> BUDGET EXHAUSTED"), "{md}");
        let failures = &md[md.find("## Failures").expect("a Failures section")..md.find("## Cells").unwrap()];
        assert!(failures.contains("| model | reason | jobs | first error | what to check |"));
        assert!(
            failures.contains(
                "| local-llm | connect | 1 | `POST http://127.0.0.1:1/v1/chat/completions: could not connect \\| <b>refused</b>` \
                 | check that the server is running and that base_url is right |"
            ),
            "a pipe in an error stays inside its cell, and the error shows as code:\n{failures}"
        );
        assert!(
            failures.contains("| local-llm | other | 1 | `line one line two` | — |"),
            "{failures}"
        );
        // The cell with no output reads no data; the gap is not computable.
        assert!(
            md.contains("| local-llm | default | training | 0 | 0 | no data |"),
            "{md}"
        );
        assert!(md.contains("| not computable | — | — |"), "{md}");
        let provenance = &md[md.find("## Provenance").expect("a Provenance section")..];
        assert!(provenance.contains(&format!("candor {} · run `nightly-1`", env!("CARGO_PKG_VERSION"))));
        assert!(provenance.contains(&format!("spec `{}` · dataset `{}`", s.spec_hash, s.dataset_hash)));
        assert!(
            provenance.contains(
                "- model `local-llm`: openai `some-model` at `http://127.0.0.1:1/v1` · params `{\"temperature\":0.5}`"
            ),
            "{provenance}"
        );
    }

    #[test]
    fn the_page_opens_with_a_failure_banner_of_escaped_text() {
        let s = sweep(false);
        let r = all_failed(&s, ERROR);
        let page = html(&r);
        let body = &page[page.find("<body>").unwrap()..];
        let banner = body.find("id=\"failure-banner\"").expect("a failure banner");
        assert!(
            banner < body.find("<h1>").unwrap(),
            "the banner is the first thing on the page"
        );
        let banner = &body[banner..];
        let banner = &banner[..banner.find("</div>").unwrap()];
        assert!(banner.contains("role=\"alert\""));
        for part in [
            "4 of 4 jobs failed (100%)",
            "<code>local-llm</code>",
            "<span class=\"kind\">connect</span> · 4 jobs",
            "could not connect | &lt;b&gt;refused&lt;/b&gt;",
            "What to check: check that the server is running and that base_url is right",
        ] {
            assert!(banner.contains(part), "the banner lacks {part:?}: {banner}");
        }
        assert!(!page.contains("<b>"), "outside text is shown as text only");
        assert!(page.contains("<title>FAILED · views"), "the tab says so too");
        assert!(page.contains("<table id=\"failures-table\">"));
        assert_eq!(
            page.matches("data-note=\"FAILED\"").count(),
            1,
            "one banner, not the note again"
        );
        assert!(!page.contains("data-note=\"SIMULATED"), "nothing here is simulated");
        // Provenance, and no raw JSON of the fields the page knows.
        assert!(
            page.contains("at <code>http://127.0.0.1:1/v1</code> · params <code>{&quot;temperature&quot;:0.5}</code>")
        );
        assert!(!page.contains("<dt>provenance</dt>") && !page.contains("<dt>failed_share</dt>"));
    }

    #[test]
    fn a_simulated_judge_alone_gets_a_quiet_note_not_the_simulated_banner() {
        let s = sweep(true);
        let mut t = Tally::new(&s);
        for c in &mut t.cells {
            c.ok = 2;
        }
        let r = Report::build(&s, &t);
        assert!(!r.sweep.simulated && r.sweep.simulated_judges);
        assert!(
            r.notes.iter().any(|n| n.starts_with("SIMULATED JUDGE:")),
            "{:?}",
            r.notes
        );
        assert!(!r.notes.iter().any(|n| n.starts_with("SIMULATED:")), "{:?}", r.notes);
        let page = html(&r);
        assert!(page.contains("<div class=\"notice simulated-judge\" data-note=\"SIMULATED JUDGE\" role=\"note\">"));
        assert!(!page.contains("data-note=\"SIMULATED\""), "no SIMULATED banner");
        assert!(!page.contains("id=\"failure-banner\""), "nothing failed");
        assert!(page.contains("<dt>judge</dt><dd data-model=\"judge\"><code>judge</code>: sim <code>sim-judge</code>"));
        // A SIMULATED note of a report whose models under test are real is no banner either.
        let mut r = r;
        r.notes.insert(0, "SIMULATED: numbers from the simulated model.".into());
        let page = html(&r);
        assert!(!page.contains("data-note=\"SIMULATED\""));
        assert!(
            page.contains("<p>SIMULATED: numbers from the simulated model.</p>"),
            "it is a plain note"
        );
    }

    #[test]
    fn shares_are_as_short_as_is_exact_enough() {
        assert_eq!(share(24, 24), "100%");
        assert_eq!(share(1, 8), "12.5%");
        assert_eq!(share(1, 3), "33.3%");
        assert_eq!(share(1, 100_000), "<0.1%");
        assert_eq!(share(99_999, 100_000), ">99.9%");
        assert_eq!(share(0, 0), "0%");
    }

    #[test]
    fn code_spans_hold_any_backticks() {
        assert_eq!(md_code("a"), "`a`");
        assert_eq!(md_code("a `b` c"), "``a `b` c``");
        assert_eq!(md_code("`x"), "`` `x ``");
    }
}

//! Building a `Report` from a `Tally`: rates, gaps, costs, failure groups
//! and the notes that head the report.

use std::fmt::Write as _;

use candor_core::spec::{BackendKind, SimConfig, Sweep};
use candor_core::stats::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, Z95, newcombe_diff, paired_bootstrap, wilson};

use super::{
    Cell, ClassifierRate, FailureGroup, FakingRates, Gap, ModelCost, Provenance, Rate, Report, SeedSpread, Stack,
    SweepInfo, Tally,
};

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

impl Report {
    pub fn build(sweep: &Sweep, tally: &Tally) -> Report {
        let spec = &sweep.spec;
        let af = spec.classifiers.iter().position(|c| c.is_alignment_faking());
        let cells = (0..tally.cells.len()).map(|i| cell(sweep, tally, i, af)).collect();
        let (mut done, mut incomplete, mut failed, mut truncated, mut filtered) = (0, 0, 0, 0, 0);
        for c in &tally.cells {
            done += c.done();
            incomplete += c.incomplete;
            failed += c.failed;
            truncated += c.truncated;
            filtered += c.filtered;
        }
        let failures = tally.failures.groups(sweep);
        let notes = notes(sweep, tally, done, failed, &failures);
        Report {
            sweep: SweepInfo {
                name: spec.name.clone(),
                id: sweep.id.clone(),
                jobs_total: sweep.total_jobs(),
                jobs_done: done,
                jobs_incomplete: incomplete,
                jobs_failed: failed,
                jobs_truncated: truncated,
                jobs_filtered: filtered,
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
            gaps: gaps(sweep, tally),
            costs: costs(sweep, tally),
            failures,
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
}

/// Cell `i` of the tally; `af` is the alignment-faking classifier's index.
fn cell(sweep: &Sweep, tally: &Tally, i: usize, af: Option<usize>) -> Cell {
    let spec = &sweep.spec;
    let c = &tally.cells[i];
    let (m, v, cond) = sweep.space.cell_parts(i);
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
    Cell {
        model: model.id.clone(),
        variant: spec.prompts[v].name.clone(),
        condition: condition.clone(),
        n: c.ok,
        compliant: c.yes[0],
        compliance: (c.ok > 0).then(|| wilson(c.yes[0], c.ok, Z95)),
        incomplete: c.incomplete,
        failed: c.failed,
        truncated: c.truncated,
        filtered: c.filtered,
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
    }
}

/// The gap between the compared conditions per model × variant; none
/// without `compare`.
fn gaps(sweep: &Sweep, tally: &Tally) -> Vec<Gap> {
    let spec = &sweep.spec;
    let Some((a, b)) = sweep.compare else {
        return Vec::new();
    };
    let mut gaps = Vec::new();
    let nc = spec.conditions.len();
    for m in 0..spec.models.len() {
        for v in 0..spec.prompts.len() {
            let base = (m * spec.prompts.len() + v) * nc;
            let (ca, cb) = (&tally.cells[base + a], &tally.cells[base + b]);
            let d = (ca.ok > 0 && cb.ok > 0).then(|| newcombe_diff(ca.yes[0], ca.ok, cb.yes[0], cb.ok, Z95));
            let q = sweep.space.queries as usize;
            let start = (m * spec.prompts.len() + v) * q;
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
                paired: tally
                    .pairs
                    .get(start..start + q)
                    .and_then(|p| paired_bootstrap(p, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)),
            });
        }
    }
    gaps
}

/// What each model cost, with the price it was counted at.
fn costs(sweep: &Sweep, tally: &Tally) -> Vec<ModelCost> {
    sweep
        .spec
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
                cache_write_per_mtok: p.cache_write_per_mtok,
                cache_read_per_mtok: p.cache_read_per_mtok,
                prompt_cache: None,
                batch_price_factor: m.batched().map(|b| b.price_factor),
                batch_saving_usd: None,
            }
        })
        .collect()
}

/// The notes a report starts with: failures, cells without data, simulated
/// models or judges, cache hits, a partial sweep, then how to read the rates.
fn notes(sweep: &Sweep, tally: &Tally, done: u64, failed: u64, failures: &[FailureGroup]) -> Vec<String> {
    let mut notes = Vec::new();
    if failed > 0 {
        notes.push(failure_note(failed, done, failures));
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
        "Rates are over jobs that gave a final output (n); incomplete, truncated (cut at the token limit), \
         filtered (stopped by the provider's safety system, not the model's refusal) and failed jobs are \
         counted apart. \
         Intervals are 95%: Wilson for rates; for gaps, Newcombe's hybrid score (unpaired) and a paired \
         bootstrap over queries (2000 resamples, fixed seed)."
            .to_string(),
    );
    notes
}

//! A sweep's status and report, built from what Redis keeps of it: the
//! counters of its tally, and its results where the counters do not hold
//! enough (paired comparisons, joint verdicts, per-seed spread).

use candor_core::Sweep;
use candor_proto::v1 as pb;
use candor_queue::SweepState;
use candor_report::report::{CellCounts, Report, Tally};

use super::{Coordinator, ServerError};

/// The tally in Redis as the report's cell counts.
fn tally(sweep: &Sweep, st: &SweepState) -> Tally {
    let mut t = Tally::new(sweep);
    for (i, c) in t.cells.iter_mut().enumerate() {
        let get = |f: &str| st.tally.get(&format!("{i}:{f}")).copied().unwrap_or(0);
        *c = CellCounts {
            ok: get("ok"),
            incomplete: get("incomplete"),
            failed: get("failed"),
            truncated: get("truncated"),
            filtered: get("filtered"),
            yes: (0..c.yes.len()).map(|k| get(&format!("y{k}"))).collect(),
            both: vec![0; c.yes.len()],
        };
    }
    t.cache_hits = st.cache_hits;
    for f in &st.failures {
        let model = sweep.spec.models.iter().position(|m| m.id == f.model);
        if let Some(m) = model {
            let kind = candor_core::ErrorKind::try_from(f.kind.clone()).ok();
            t.failures.add(m, kind, &f.first_error, f.jobs);
        }
    }
    for (i, c) in t.cost_micro_usd.iter_mut().enumerate() {
        let per_model = sweep.space.cells() / sweep.spec.models.len();
        *c = (i * per_model..(i + 1) * per_model)
            .map(|cell| st.tally.get(&format!("{cell}:cost")).copied().unwrap_or(0))
            .sum();
    }
    t
}

/// Progress by model × condition, summed over prompt variants.
fn cells(sweep: &Sweep, st: &SweepState) -> Vec<pb::CellProgress> {
    let t = tally(sweep, st);
    let spec = &sweep.spec;
    let mut cells = Vec::new();
    for (m, model) in spec.models.iter().enumerate() {
        for (c, cond) in spec.conditions.iter().enumerate() {
            let done: u64 = (0..spec.prompts.len())
                .map(|v| {
                    let cc = &t.cells[sweep.space.cell(m, v, c)];
                    cc.done()
                })
                .sum();
            cells.push(pb::CellProgress {
                model: model.id.clone(),
                condition: cond.name.clone(),
                total: sweep.space.per_cell() * sweep.space.variants,
                done,
            });
        }
    }
    cells
}

/// What a sweep's journal of batches holds (records that cannot be read
/// are left out).
fn batch_counts(records: &[String]) -> pb::BatchCounts {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut c = pb::BatchCounts::default();
    let mut oldest = None;
    for r in records {
        let Ok(b) = serde_json::from_str::<candor_exec::batch::journal::Recorded>(r) else {
            continue;
        };
        c.requests += b.ids.len() as u64;
        match (b.ended, &b.provider_id) {
            (true, _) => c.ended += 1,
            (false, Some(_)) => {
                c.in_flight += 1;
                oldest = Some(oldest.map_or(b.created_ms, |o: u64| o.min(b.created_ms)));
            }
            (false, None) => c.unsubmitted += 1,
        }
    }
    c.oldest_age_secs = oldest.map_or(0, |t| now.saturating_sub(t) / 1000);
    c
}

fn to_status(sweep: &Sweep, st: &SweepState) -> pb::SweepStatus {
    pb::SweepStatus {
        sweep_id: st.id.clone(),
        name: st.name.clone(),
        state: st.state.clone(),
        jobs_total: st.total,
        jobs_done: st.done,
        jobs_failed: st.failed,
        jobs_incomplete: st.incomplete,
        jobs_truncated: st.truncated,
        jobs_filtered: st.filtered,
        jobs_dead_lettered: st.dead,
        jobs_in_flight: st.in_flight,
        jobs_retrying: st.retrying,
        retries: st.retried,
        lease_expiries: st.lease_expiries,
        simulated: st.simulated,
        created_ms: st.created_ms,
        finished_ms: st.finished_ms,
        reason: st.reason.clone(),
        batches: None,
        cost_usd: st.spent_micro_usd as f64 / 1e6,
        budget_usd: st.budget_micro_usd as f64 / 1e6,
        cells: cells(sweep, st),
        failures: st
            .failures
            .iter()
            .map(|f| pb::FailureReason {
                model: f.model.clone(),
                kind: f.kind.clone(),
                jobs: f.jobs,
                first_error: f.first_error.clone(),
            })
            .collect(),
    }
}

/// The notes a distributed sweep's end adds to its report.
fn mark_ending(report: &mut Report, st: &SweepState) {
    report.sweep.jobs_dead_lettered = st.dead;
    if st.dead > 0 {
        report.notes.insert(
            0,
            format!(
                "DEAD-LETTERED: {} jobs failed on every one of their {} attempts.",
                st.dead, st.max_attempts
            ),
        );
    }
    if st.state == "budget_exhausted" {
        report.mark_budget_exhausted();
    }
    if st.state == "cancelled" {
        report
            .notes
            .insert(0, "CANCELLED: the sweep was cancelled before it finished.".into());
    }
}

impl Coordinator {
    pub(super) async fn status(&self, id: &str) -> Result<pb::SweepStatus, ServerError> {
        let st = self.state(id).await?;
        let ex = self.executor(id).await?;
        let sweep = ex.sweep();
        let mut status = to_status(sweep, &st);
        if sweep
            .spec
            .models
            .iter()
            .chain(&sweep.spec.judges)
            .any(|m| m.batched().is_some())
        {
            status.batches = Some(batch_counts(&self.queue.batches(id).await?));
        }
        Ok(status)
    }

    pub async fn report(&self, id: &str) -> Result<Report, ServerError> {
        let st = self.state(id).await?;
        let ex = self.executor(id).await?;
        let sweep = ex.sweep();
        let mut tally = tally(sweep, &st);
        if !tally.pairs.is_empty() {
            self.pair_outcomes(id, sweep, &mut tally).await?;
        }
        let mut report = Report::build(sweep, &tally);
        if sweep.spec.early_stopping.is_some() {
            let stops: Vec<Option<u32>> = (0..sweep.space.cells() as u64)
                .map(|c| st.cutoffs.get(&c).copied())
                .collect();
            report.mark_stopped_early(&stops, st.skipped);
        }
        report.sweep.provenance = candor_report::report::Provenance::of(
            sweep,
            Some(st.created_ms),
            (st.finished_ms > 0).then_some(st.finished_ms),
        );
        mark_ending(&mut report, &st);
        Ok(report)
    }

    /// Reads every job's outcome for what the counters in Redis do not
    /// hold: the paired bootstrap, joint verdicts and the per-seed spread.
    async fn pair_outcomes(&self, id: &str, sweep: &Sweep, tally: &mut Tally) -> Result<(), ServerError> {
        let total = sweep.total_jobs();
        self.queue
            .outcomes(id, total, |idx, status, bits| {
                tally.add_detail(sweep, idx, status, bits)
            })
            .await?;
        Ok(())
    }
}

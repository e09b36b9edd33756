//! A budget over a batched sweep in a local run, against `candor
//! sim-server`'s batch API: the budget counts each batched job in flight at
//! the sweep's reserve (`Sweep::reserved_micro_usd`, an upper bound of one
//! job's cost estimated from the spec), so jobs start together in the first
//! batch instead of the first one alone through all its rounds; later jobs
//! start as finished ones free their reservation, and the run stops under
//! the budget, with less than one reserve of it left.

mod common;

use candor_core::Sweep;
use common::*;
use serde_json::Value;

const KEY: &str = "sim-key-budget";

/// The batch settings of the tests: short rounds, quick polls.
const FAST: &str = "{window_secs: 0.3, poll_secs: 0.2, tries: 6}";

/// A batched Anthropic model (up to three scratchpad turns) with a realtime
/// judge on the sim-server at `base`, and `budget`. The output limits are
/// near the lengths of the sim's replies (about 40 tokens a turn, 20 a
/// verdict), so that the reserve is a few times a job's cost, not tens.
fn spec(base: &str, budget: &str) -> String {
    let models = format!(
        "  - {{id: claude, backend: anthropic, model: claude-sonnet-4-5, base_url: \"{base}\", \
         api_key_env: SIM_KEY, params: {{max_tokens: 60}}, batch: {FAST}}}\n"
    );
    let judge = format!(
        "judges:\n  - {{id: judge, backend: anthropic, model: claude-haiku-4-5, base_url: \"{base}\", api_key_env: SIM_KEY}}\n\
         classifiers:\n  - name: compliant\n    kind: prefix\n  - kind: judge\n    builtin: alignment_faking\n    judge: judge\n    max_tokens: 60\n    only_if: compliant\n"
    );
    spec_with_models(&models, 2) + &judge + budget
}

fn n(stats: &Value, k: &str) -> u64 {
    stats[k].as_u64().unwrap_or_else(|| panic!("no {k} in {stats}"))
}

#[test]
fn a_budget_starts_batched_jobs_together_and_stops_within_the_reserve() {
    let sb = Sandbox::new();
    let sim = SimServer::start(
        &sb,
        &[
            "--require-key-env",
            "SIM_KEY",
            "--comply",
            "0.5",
            "--batch-delay-ms",
            "100",
        ],
        &[("SIM_KEY", KEY)],
    );
    // 20 queries × 2 conditions × 2 seeds: 80 jobs.
    sb.file("data.csv", &dataset(20));
    sb.file("unbudgeted.yaml", &spec(&sim.base(), ""));
    let sweep = Sweep::load(&sb.join("unbudgeted.yaml")).unwrap();
    let reserve = sweep.reserved_micro_usd();
    assert!(reserve > 0, "a batched sweep reserves");
    // Room for 4 jobs at the reserve, not 5.
    let budget = reserve * 9 / 2;
    sb.file(
        "batched.yaml",
        &spec(&sim.base(), &format!("budget_usd: {}\n", budget as f64 / 1e6)),
    );
    let id = Sweep::load(&sb.join("batched.yaml")).unwrap().id;

    let mut c = sb.cmd(&["run", "batched.yaml", "--out", "out", "--store", "store", "--quiet"]);
    let o = c.env("SIM_KEY", KEY).output().unwrap();
    assert_eq!(o.status.code(), Some(6), "budget exhausted: {}", stderr(&o));
    assert!(stderr(&o).contains("budget exhausted"), "{}", stderr(&o));

    // The first batch held every job the budget let start, not one alone.
    let journal = sb.jsonl(&format!("store/batches/{id}.jsonl"));
    let first = journal.iter().find(|l| l["op"] == "intend").expect("a batch recorded");
    let ids = first["batch"]["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 4, "4 × the reserve fits the budget, 5 × does not: {first}");
    // Those cost less than their reservation: later jobs started in waves
    // as it was freed, until the budget could not reserve one more.
    let results = sb.jsonl("out/results.jsonl");
    assert!(
        results.len() > 4 && (results.len() as u64) < sweep.total_jobs(),
        "{} jobs ran",
        results.len()
    );
    let stats = sim.stats();
    assert!(n(&stats, "batch_requests") > 4, "{stats}");

    // The budget was below what the whole sweep costs, and the run spent no
    // more than the budget plus the jobs in flight × the reserve; the
    // reserve bounding each job's cost, not even the budget.
    let costs: Vec<u64> = results
        .iter()
        .map(|r| (r["cost_usd"].as_f64().unwrap() * 1e6).round() as u64)
        .collect();
    let spent: u64 = costs.iter().sum();
    assert!(costs.iter().all(|&c| c > 0 && c <= reserve), "{costs:?} ≤ {reserve}");
    let cheapest = *costs.iter().min().unwrap();
    assert!(
        cheapest * sweep.total_jobs() > budget,
        "the sweep ({} jobs, the cheapest at {cheapest}) costs more than the budget {budget}",
        sweep.total_jobs()
    );
    // Each job in flight was reserved at no less than it cost, so the run
    // never passed the budget, and it stopped with less than one reserve
    // of it left.
    assert!(spent < budget, "{spent} < {budget}");
    assert!(spent + reserve >= budget, "{spent} + {reserve} ≥ {budget}");
}

//! A budget on a cluster that loses a worker: the sweep still stops at its
//! budget, no more than the documented bound past it, and says so.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);
const WORKERS: u32 = 3;
const SLOTS: u32 = 4;

#[test]
fn a_budget_holds_when_a_worker_is_killed_mid_sweep() {
    let sbs = Sandbox::new();
    // One call per job, 200 ms each or 600 ms for a third of them, so the
    // budget lasts a few rounds of leases and runs out with jobs running.
    let server = SimServer::start(
        &sbs,
        &[
            "--continuation",
            "0",
            "--latency-ms",
            "200",
            "--slow",
            "0.3",
            "--slow-ms",
            "400",
        ],
        &[],
    );
    // Leases of a second: the killed worker's jobs are free again soon.
    let mut c = Cluster::start(false, 1_000);
    c.sb.file("data.csv", &dataset(60));
    // Absurd prices make each job cost most of a cent: $1 buys about half of the 240.
    let models = format!(
        "  - {{id: api, backend: openai, model: m, base_url: \"http://127.0.0.1:{}/v1\", \
         price: {{input_per_mtok: 100, output_per_mtok: 100}}}}\n",
        server.port
    );
    c.sb.file("priced.yaml", &(spec_with_models(&models, 2) + "budget_usd: 1.0\n"));
    for _ in 0..WORKERS {
        c.add_worker(SLOTS, None);
    }
    let mut wait =
        c.sb.cmd(&["submit", "priced.yaml", "--wait", "--id-file", "id.txt"])
            .env("CANDOR_COORDINATOR", c.url())
            .env("CANDOR_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    eventually(LIMIT, "the sweep id", || c.sb.join("id.txt").exists());
    let id = std::fs::read_to_string(c.sb.join("id.txt")).unwrap().trim().to_string();

    eventually(LIMIT, "a few results", || {
        c.status(&id)["jobs_done"].as_u64().unwrap() >= 3
    });
    c.workers[0].kill().unwrap();
    c.workers[0].wait().unwrap();
    let st = c.status(&id);
    assert_eq!(st["state"], "running", "the kill came before the budget ran out: {st}");

    eventually(LIMIT, "submit --wait to return", || wait.try_wait().unwrap().is_some());
    let out = wait.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "exit 6: the budget ran out\n{err}");
    assert!(err.contains("budget exhausted"), "{err}");

    // Jobs running when the budget ran out finish; the dead worker's leases lapse.
    eventually(LIMIT, "jobs in flight to finish", || {
        c.status(&id)["jobs_in_flight"] == 0
    });
    let st = c.status(&id);
    assert_eq!(st["state"], "budget_exhausted", "{st}");
    let total = st["jobs_total"].as_u64().unwrap();
    let done = st["jobs_done"].as_u64().unwrap();
    assert_eq!(total, 240);
    assert!(done > 3 && done < total, "some jobs ran, not all: {st}");
    assert_eq!(st["jobs_failed"], 0, "{st}");

    let o = c.candor(&["report", &id, "--out", "rep"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.export(&id, "rep");
    let report = c.sb.json("rep/report.json");
    assert_eq!(report["sweep"]["budget_exhausted"], true);
    assert!(
        report["notes"].to_string().contains("BUDGET EXHAUSTED"),
        "{}",
        report["notes"]
    );
    let results = c.sb.jsonl("rep/results.jsonl");
    assert_eq!(results.len() as u64, done, "one result per job done");
    let costs: Vec<f64> = results.iter().map(|r| r["cost_usd"].as_f64().unwrap()).collect();
    let dearest = costs.iter().copied().fold(0.0, f64::max);
    let spent = report["sweep"]["cost_usd"].as_f64().unwrap();
    assert!(
        (costs.iter().sum::<f64>() - spent).abs() < 1e-5,
        "the report adds up the results"
    );
    assert!(
        dearest > 0.0 && dearest < 0.05,
        "each job costs under a few cents: {dearest}"
    );
    // The bound: a job starts only while spent + (jobs in flight + 1) × the
    // dearest cost so far stays under the budget, and the jobs in flight then
    // finish, so the total passes the budget by at most the jobs leased at
    // once (every worker's slots, the dead one's too) × the dearest job.
    // And it was refused only once that estimate reached the budget.
    let slots = f64::from(WORKERS * SLOTS);
    let (floor, bound) = (1.0 - (slots + 1.0) * dearest, 1.0 + slots * dearest);
    assert!(
        spent >= floor && spent <= bound,
        "spent ${spent} of a $1 budget; expected ${floor}..=${bound} (dearest job ${dearest})"
    );
    // Every call the model answered belongs to a recorded job, or to a
    // lease that expired: the dead worker's (its running jobs, and finished
    // ones it had not recorded yet) and any a loaded machine let lapse.
    // Nothing else ran unrecorded.
    let calls = server.stats()["requests"].as_u64().unwrap();
    let expired = c.status(&id)["lease_expiries"].as_u64().unwrap();
    assert!(expired >= 1, "the dead worker's leases expired: {}", c.status(&id));
    assert!(
        calls >= done && calls <= done + expired,
        "{calls} model calls for {done} results and {expired} expired leases"
    );
}

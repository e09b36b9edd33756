//! Batched models in a local run, against `candor sim-server`'s batch APIs:
//! a batched sweep (both providers, the multi-turn scratchpad protocol, a
//! batched judge) gives the realtime sweep's results at the batch price;
//! kill -9 with batches in flight, then a rerun, submits no request twice;
//! expired and errored requests are sent again and counted; a request that
//! errors in every batch fails its job loudly.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

const KEY: &str = "sim-key-batch";

/// The batch settings of the tests: short rounds, quick polls.
const FAST: &str = "{window_secs: 0.3, poll_secs: 0.2, tries: 6}";

/// A spec with an Anthropic and an OpenAI model and an Anthropic judge on
/// the sim-server at `base`, each batched with `batch` (None: realtime).
fn spec(base: &str, batch: Option<&str>) -> String {
    let b = batch.map(|b| format!(", batch: {b}")).unwrap_or_default();
    let models = format!(
        "  - {{id: claude, backend: anthropic, model: claude-sonnet-4-5, base_url: \"{base}\", api_key_env: SIM_KEY{b}}}\n\
         \x20 - {{id: gpt, backend: openai, model: gpt-5-mini, base_url: \"{base}/v1\", api_key_env: SIM_KEY{b}}}\n"
    );
    let judge = format!(
        "judges:\n  - {{id: judge, backend: anthropic, model: claude-haiku-4-5, base_url: \"{base}\", api_key_env: SIM_KEY{b}}}\n\
         classifiers:\n  - name: compliant\n    kind: prefix\n  - kind: judge\n    builtin: alignment_faking\n    judge: judge\n    only_if: compliant\n"
    );
    spec_with_models(&models, 2) + &judge
}

fn server(sb: &Sandbox, args: &[&str]) -> SimServer {
    let mut all = vec!["--require-key-env", "SIM_KEY", "--comply", "0.5"];
    all.extend_from_slice(args);
    SimServer::start(sb, &all, &[("SIM_KEY", KEY)])
}

fn run_cmd(sb: &Sandbox, spec_name: &str, name: &str) -> std::process::Command {
    let mut c = sb.cmd(&[
        "run",
        sb.join(spec_name).to_str().unwrap(),
        "--out",
        name,
        "--store",
        &format!("{name}-store"),
        "--quiet",
    ]);
    c.env("SIM_KEY", KEY);
    c
}

/// Runs `spec_name` into `name`; its results by job id, its report, stderr.
fn run(sb: &Sandbox, spec_name: &str, name: &str, code: i32) -> (BTreeMap<String, Value>, Value, String) {
    let o = run_cmd(sb, spec_name, name).output().unwrap();
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    let results = sb
        .jsonl(&format!("{name}/results.jsonl"))
        .into_iter()
        .map(|r| (r["job_id"].as_str().unwrap().to_string(), r))
        .collect();
    (results, sb.json(&format!("{name}/report.json")), stderr(&o))
}

/// Every job of `a` has the result it has in `b`: status, output, verdicts,
/// turns and the tokens the server reported.
fn assert_same(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) {
    assert_eq!(a.len(), b.len());
    for (id, x) in a {
        let y = &b[id];
        for f in ["status", "output", "classifications", "turns", "usage", "judge_usage"] {
            assert_eq!(x[f], y[f], "job {id}: {f}");
        }
    }
}

fn cost(rs: &BTreeMap<String, Value>) -> f64 {
    rs.values().map(|r| r["cost_usd"].as_f64().unwrap()).sum()
}

fn n(stats: &Value, k: &str) -> u64 {
    stats[k].as_u64().unwrap_or_else(|| panic!("no {k} in {stats}"))
}

#[test]
fn a_batched_sweep_gives_the_realtime_results_at_half_the_price() {
    let sb = Sandbox::new();
    let sim = server(&sb, &["--batch-delay-ms", "200"]);
    sb.file("data.csv", &dataset(8));
    sb.file("realtime.yaml", &spec(&sim.base(), None));
    sb.file("batched.yaml", &spec(&sim.base(), Some(FAST)));
    let (realtime, _, _) = run(&sb, "realtime.yaml", "realtime", 0);
    assert_eq!(n(&sim.stats(), "batch_requests"), 0, "realtime calls sent no batch");
    let (batched, report, err) = run(&sb, "batched.yaml", "batched", 0);
    assert_eq!(batched.len(), 64);
    assert_same(&batched, &realtime);
    assert!(
        batched.values().any(|r| r["turns"].as_u64() > Some(1)),
        "multi-turn jobs"
    );
    assert!(
        batched
            .values()
            .any(|r| r["classifications"].get("alignment_faking").is_some()),
        "the batched judge judged"
    );
    // Each job's calls cost half, where neither run answered one of them
    // from the response cache (a request two jobs ask alike).
    let mut compared = 0;
    for (id, x) in &batched {
        let y = &realtime[id];
        if x["cache_hits"] == 0 && y["cache_hits"] == 0 {
            let (b, r) = (x["cost_usd"].as_f64().unwrap(), y["cost_usd"].as_f64().unwrap());
            assert!(
                r > 0.0 && (2.0 * b - r).abs() <= 4e-6,
                "job {id}: batched ${b}, realtime ${r}"
            );
            compared += 1;
        }
    }
    assert!(compared > 32, "most jobs had no cache hit in either run: {compared}");
    assert!(cost(&batched) < cost(&realtime) * 0.55);
    let stats = sim.stats();
    assert!(
        n(&stats, "batches_anthropic") >= 3 && n(&stats, "batches_openai") >= 2,
        "a batch per round and provider: {stats}"
    );
    assert_eq!(n(&stats, "batch_resubmitted"), 0);
    assert_eq!(n(&stats, "batch_requests"), n(&stats, "batch_succeeded"));
    let claude = report["costs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "claude")
        .unwrap();
    assert_eq!(claude["batch_price_factor"], 0.5);
    assert!(claude["batch_saving_usd"].as_f64().unwrap() > 0.0);
    assert!(err.contains("0 sent again in a later batch"), "{err}");
}

#[test]
fn kill_9_with_batches_in_flight_then_a_rerun_submits_no_request_twice() {
    let sb = Sandbox::new();
    let sim = server(&sb, &["--batch-delay-ms", "3000"]);
    sb.file("data.csv", &dataset(8));
    sb.file("realtime.yaml", &spec(&sim.base(), None));
    sb.file("batched.yaml", &spec(&sim.base(), Some(FAST)));
    let (realtime, _, _) = run(&sb, "realtime.yaml", "realtime", 0);
    let mut child = run_cmd(&sb, "batched.yaml", "batched").spawn().unwrap();
    eventually(Duration::from_secs(30), "batches of both providers in flight", || {
        let s = sim.stats();
        n(&s, "batches_anthropic") >= 1 && n(&s, "batches_openai") >= 1
    });
    let before = sim.stats();
    assert_eq!(
        n(&before, "batch_succeeded"),
        0,
        "killed with every batch still in flight"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    let (batched, _, err) = run(&sb, "batched.yaml", "batched", 0);
    assert_same(&batched, &realtime);
    let after = sim.stats();
    assert_eq!(n(&after, "batch_resubmitted"), 0, "{after}");
    assert_eq!(n(&after, "batch_requests"), n(&after, "batch_succeeded"));
    let followed: u64 = err
        .split_once(" calls found their request in a batch recorded earlier")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        followed >= n(&before, "batch_requests"),
        "every request in flight was waited for, not sent again: {err}"
    );
}

#[test]
fn expired_and_errored_requests_are_sent_again_and_counted() {
    let sb = Sandbox::new();
    let sim = server(
        &sb,
        &[
            "--batch-delay-ms",
            "100",
            "--batch-expired",
            "0.15",
            "--batch-errored",
            "0.1",
        ],
    );
    sb.file("data.csv", &dataset(8));
    sb.file("realtime.yaml", &spec(&sim.base(), None));
    sb.file("batched.yaml", &spec(&sim.base(), Some(FAST)));
    let (realtime, _, _) = run(&sb, "realtime.yaml", "realtime", 0);
    let (batched, _, err) = run(&sb, "batched.yaml", "batched", 0);
    assert_same(&batched, &realtime);
    let s = sim.stats();
    let (expired, errored) = (n(&s, "batch_expired"), n(&s, "batch_errored"));
    assert!(expired > 0 && errored > 0, "{s}");
    assert_eq!(n(&s, "batch_resubmitted"), 0, "each try has its own custom_id");
    assert!(
        err.contains(&format!("{errored} errored, {expired} expired"))
            && err.contains(&format!("{} sent again in a later batch", expired + errored)),
        "{err}\n{s}"
    );
}

#[test]
fn a_request_that_errors_in_every_batch_fails_its_job_loudly() {
    let sb = Sandbox::new();
    let sim = server(
        &sb,
        &["--batch-delay-ms", "100", "--batch-errored-when", "Request number 1,"],
    );
    sb.file("data.csv", &dataset(4));
    let text = spec(&sim.base(), Some("{window_secs: 0.2, poll_secs: 0.1, tries: 2}"));
    sb.file("batched.yaml", &text);
    let (batched, _, err) = run(&sb, "batched.yaml", "batched", 7);
    let failed: Vec<&Value> = batched.values().filter(|r| r["status"] == "failed").collect();
    assert!(!failed.is_empty());
    for r in &failed {
        assert!(r["query"].as_str().unwrap().contains("Request number 1,"), "{r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("sent in ") && e.contains(" batches: ") && e.contains("errored in the batch"),
            "{e}"
        );
    }
    assert!(err.contains("failed"), "the run says jobs failed: {err}");
}

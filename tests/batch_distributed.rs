//! Batched models on a cluster, with real processes: redis-server, `candor
//! coordinator`, `candor worker`s and `candor sim-server` answering both
//! providers' batch APIs. A worker is killed (`kill -9`) or stopped, or the
//! coordinator killed, while batches are in flight; the sweep still ends
//! with one result per job, equal to a realtime run's, and no custom_id is
//! submitted twice: the successor of a stopped or killed worker follows its
//! batches, recorded in Redis, instead of submitting them again. `candor
//! status` shows the batches in flight and `candor cancel` cancels them at
//! the provider. Also: the worker's journal in Redis answers as the local
//! journal file does.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candor_exec::batch::journal::{FileJournal, Journal, Recorded};
use candor_worker::batches::RedisJournal;
use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);
const KEY: &str = "sim-key-batch-42";
/// How long the sim-server takes to process a batch: long enough to kill
/// a process while the first round is in flight.
const BATCH_DELAY_MS: &str = "3000";
/// 6 queries × 2 conditions × 2 seeds × 2 models.
const JOBS: u64 = 48;

/// The spec's two models on the sim-server at `base`: batched, or realtime.
fn models(base: &str, batched: bool) -> String {
    let batch = if batched {
        ", batch: {window_secs: 0.3, poll_secs: 0.2}"
    } else {
        ""
    };
    format!(
        "  - {{id: claude, backend: anthropic, model: claude-sonnet-4-5, base_url: \"{base}\", api_key_env: SIM_KEY{batch}}}\n  \
         - {{id: gpt, backend: openai, model: gpt-5-mini, base_url: \"{base}/v1\", api_key_env: SIM_KEY{batch}}}\n"
    )
}

/// Writes the spec `name`.yaml (and its dataset) into the sandbox.
fn spec(sb: &Sandbox, sim: &SimServer, name: &str, batched: bool) -> String {
    sb.file("data.csv", &dataset(6));
    let text = spec_with_models(&models(&sim.base(), batched), 2).replace("name: small", &format!("name: {name}"));
    sb.file(&format!("{name}.yaml"), &text);
    format!("{name}.yaml")
}

/// A cluster whose processes hold the sim-server's key, every worker with
/// Redis (so with the journal in Redis), and the sim-server.
fn cluster(lease_ttl_ms: u64) -> (Cluster, SimServer) {
    let mut c = Cluster::start_with_env(false, lease_ttl_ms, vec![("SIM_KEY".into(), KEY.into())]);
    c.all_direct = true;
    let sim = SimServer::start(
        &c.sb,
        &[
            "--require-key-env",
            "SIM_KEY",
            "--batch-delay-ms",
            BATCH_DELAY_MS,
            "--continuation",
            "0.5",
        ],
        &[("SIM_KEY", KEY)],
    );
    (c, sim)
}

fn count(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in the sim-server's /stats: {stats}"))
}

fn batches_ended(stats: &Value) -> u64 {
    ["batch_succeeded", "batch_expired", "batch_errored"]
        .iter()
        .map(|n| count(stats, n))
        .sum()
}

/// The sweep's batches recorded in Redis.
fn recorded(c: &Cluster, id: &str) -> Vec<Recorded> {
    let records: Vec<String> = redis::cmd("HVALS")
        .arg(format!("candor:s:{id}:batches"))
        .query(&mut c.redis.con())
        .unwrap();
    records.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
}

/// Waits until both models have a batch at the sim-server, each recorded
/// in Redis with its provider id, and none has ended: the moment to kill.
fn wait_for_batches_in_flight(c: &Cluster, sim: &SimServer, id: &str) {
    eventually(LIMIT, "both models' first batches to be submitted and recorded", || {
        let st = sim.stats();
        let made = count(&st, "batches_anthropic") + count(&st, "batches_openai");
        let rec = recorded(c, id);
        count(&st, "batches_anthropic") > 0
            && count(&st, "batches_openai") > 0
            && rec.len() as u64 == made
            && rec.iter().all(|b| b.provider_id.is_some())
    });
}

/// Fails loudly unless batches were in flight when the kill came: submitted,
/// and none ended (so no results could have been read).
fn assert_in_flight_at_kill(sim: &SimServer, what: &str) -> Value {
    let st = sim.stats();
    assert!(
        count(&st, "batches_anthropic") > 0 && count(&st, "batches_openai") > 0 && batches_ended(&st) == 0,
        "{what} must be killed while batches are in flight, submitted and not ended: {st}"
    );
    st
}

/// The results of `jsonl` by job id: status, output, classifications, usage.
fn by_job(lines: &[Value]) -> BTreeMap<String, Value> {
    lines
        .iter()
        .map(|r| {
            let keep = ["status", "output", "classifications", "usage"].map(|k| (k.to_string(), r[k].clone()));
            (
                r["job_id"].as_str().unwrap().to_string(),
                Value::Object(keep.into_iter().collect()),
            )
        })
        .collect()
}

/// Runs the realtime spec locally against the sim-server; its results by
/// job id, and the model calls it made (each one realtime request).
fn realtime_reference(c: &Cluster, sim: &SimServer) -> (BTreeMap<String, Value>, u64) {
    let s = spec(&c.sb, sim, "realtime", false);
    let before = count(&sim.stats(), "requests");
    let o =
        c.sb.cmd(&["run", &s, "--out", "realtime", "--store", "realtime-store", "--quiet"])
            .env("SIM_KEY", KEY)
            .output()
            .unwrap();
    assert_eq!(o.status.code(), Some(0), "the realtime run: {}", stderr(&o));
    let calls = count(&sim.stats(), "requests") - before;
    (by_job(&c.sb.jsonl("realtime/results.jsonl")), calls)
}

/// After the sweep: one result per job, equal to the realtime run's, no
/// custom_id submitted twice and every batched request answered. With
/// `once`, also: each model call was sent in a batch once (as many batched
/// requests as the realtime run made calls).
fn check_against_realtime(c: &Cluster, sim: &SimServer, id: &str, once: bool) {
    c.check(id, JOBS);
    let batched = by_job(&c.sb.jsonl(&format!("report-{id}/results.jsonl")));
    let st = sim.stats();
    assert_eq!(
        count(&st, "batch_resubmitted"),
        0,
        "no custom_id was submitted twice: {st}"
    );
    assert_eq!(
        batches_ended(&st),
        count(&st, "batch_requests"),
        "every batched request has its outcome: {st}"
    );
    let (reference, calls) = realtime_reference(c, sim);
    assert_eq!(batched.len(), reference.len());
    for (job, r) in &reference {
        assert_eq!(batched.get(job), Some(r), "job {job}: batched vs realtime");
    }
    assert!(
        reference
            .values()
            .any(|r| r["usage"]["output_tokens"].as_u64() > Some(0)),
        "the results have usage to compare"
    );
    if once {
        assert_eq!(
            count(&st, "batch_requests"),
            calls,
            "each model call was sent in a batch once (the realtime run made {calls} calls): {st}"
        );
    }
}

fn worker_metric(port: u16, series: &str) -> f64 {
    let (_, text) = http(port, "GET", "/metrics", "");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in the worker's /metrics:\n{text}"))
}

/// Ends the only worker (`end`: kill -9, or SIGTERM with no grace) while
/// the first batches are in flight and starts another; the new worker must
/// follow the first one's batches, each call sent once, and the sweep end
/// as a realtime run does.
fn end_a_worker_with_batches_in_flight(end: impl FnOnce(&mut Cluster), what: &str) {
    let started = Instant::now();
    let (mut c, sim) = cluster(1_000);
    let s = spec(&c.sb, &sim, "batched", true);
    c.add_worker_with_grace(64, None, 0);
    let id = c.submit(&s);
    wait_for_batches_in_flight(&c, &sim, &id);
    end(&mut c);
    c.workers[0].wait().unwrap();
    let at_end = assert_in_flight_at_kill(&sim, what);
    let http_port = free_port();
    c.add_worker(64, Some(http_port));
    c.wait_done(&id, JOBS, LIMIT);
    assert!(
        worker_metric(http_port, "candor_batch_calls_followed_total") > 0.0,
        "the new worker followed {what}'s batches"
    );
    check_against_realtime(&c, &sim, &id, true);
    eprintln!(
        "when {what} ended: {at_end}\nat the end: {}\ntook {:?}",
        sim.stats(),
        started.elapsed()
    );
}

/// kill -9: the dead worker's jobs are leased again once their leases
/// expire, each under its next attempt; their calls keep their custom_ids
/// (the attempt is not part of them), so the new worker finds them in the
/// journal in Redis and follows the dead one's batches.
#[test]
fn kill_9_a_worker_with_batches_in_flight_and_its_successor_follows_them() {
    end_a_worker_with_batches_in_flight(|c| c.workers[0].kill().unwrap(), "the killed worker");
}

/// SIGTERM: the stopped worker hands its jobs back; the next worker asks
/// for the same custom_ids and follows the batches (with the journal in
/// the stopped worker's memory they would be submitted twice).
#[test]
fn a_worker_stopped_with_batches_in_flight_hands_them_to_the_next() {
    end_a_worker_with_batches_in_flight(
        |c| {
            c.signal_worker(0, "-TERM");
            eventually(LIMIT, "the worker to stop", || {
                c.log_text("worker0.log").contains("worker stopped")
            });
        },
        "the stopped worker",
    );
}

/// The worker keeps following its batches while the coordinator is away;
/// leases that expire meanwhile are leased again and their calls follow
/// the recorded batches.
#[test]
fn kill_9_the_coordinator_with_batches_in_flight_and_start_it_again() {
    let started = Instant::now();
    let (mut c, sim) = cluster(1_000);
    let s = spec(&c.sb, &sim, "batched", true);
    c.add_worker(64, None);
    let id = c.submit(&s);
    wait_for_batches_in_flight(&c, &sim, &id);
    c.kill_coordinator();
    let at_kill = assert_in_flight_at_kill(&sim, "the coordinator");
    eventually(LIMIT, "the worker to lose the coordinator", || {
        let log = c.log_text("worker0.log");
        log.contains("renewing leases failed") || log.contains("leasing failed")
    });
    c.start_coordinator();
    c.wait_done(&id, JOBS, LIMIT);
    check_against_realtime(&c, &sim, &id, true);
    eprintln!(
        "at the kill: {at_kill}\nat the end: {}\ntook {:?}",
        sim.stats(),
        started.elapsed()
    );
}

/// `candor status` counts the batches in flight; `candor cancel` makes the
/// workers cancel them at the provider, which ends them with their
/// requests canceled, and the journal then holds them as ended.
#[test]
fn candor_cancel_cancels_the_batches_in_flight_at_the_provider() {
    let (mut c, sim) = cluster(1_000);
    let s = spec(&c.sb, &sim, "batched", true);
    c.add_worker(64, None);
    let id = c.submit(&s);
    wait_for_batches_in_flight(&c, &sim, &id);
    let before = c.status(&id);
    assert!(before["batches"]["in_flight"].as_u64() >= Some(2), "{before}");
    assert!(before["batches"]["requests"].as_u64() > Some(0), "{before}");
    let o = c.candor(&["cancel", &id]);
    assert_eq!(o.status.code(), Some(0), "cancel: {}", stderr(&o));
    eventually(Duration::from_secs(20), "the batches canceled at the provider", || {
        count(&sim.stats(), "batch_canceled") > 0
    });
    eventually(Duration::from_secs(20), "the journal to hold them as ended", || {
        let st = c.status(&id);
        st["batches"]["in_flight"] == 0 && st["batches"]["ended"].as_u64() >= Some(2)
    });
    assert!(c.log_text("worker0.log").contains("cancelled a batch at the provider"));
}

/// Runs the same steps on both journals and requires the same answers.
#[tokio::test]
async fn the_journal_in_redis_answers_as_the_local_journal_file() {
    let sb = Sandbox::new();
    let redis = Redis::start(&sb.join("redis"), false);
    let queue = candor_queue::Queue::connect(&redis.url(), None).await.unwrap();
    let sweep = candor_queue::NewSweep {
        id: "j".into(),
        name: "j".into(),
        total: 1,
        max_attempts: 1,
        classifiers: 1,
        simulated: true,
        budget_micro_usd: 0,
        reserve_micro_usd: 0,
        seeds: 1,
        queries: 1,
        conditions: 1,
        early_stopping: None,
        min_seeds: 1,
        fail_fast: 0,
        retention_ms: None,
        cells_per_model: 1,
    };
    assert!(queue.submit(&sweep, "{}").await.unwrap());
    let file = FileJournal::open(&sb.join("store/batches.jsonl")).unwrap();
    let journals: [Arc<dyn Journal>; 2] = [Arc::new(file), Arc::new(RedisJournal::new(queue, "j"))];
    let mut answers: Vec<Vec<String>> = Vec::new();
    for j in &journals {
        answers.push(journal_steps(&**j).await);
    }
    assert_eq!(answers[0], answers[1], "the file journal, then the one in redis");
    // The file, read again, holds what the journal in Redis holds.
    let reopened = FileJournal::open(&sb.join("store/batches.jsonl")).unwrap();
    assert_eq!(reopened.batches().await.unwrap(), journals[1].batches().await.unwrap());
}

fn batch(key: &str, created_ms: u64, ids: &[&str]) -> Recorded {
    Recorded {
        key: key.into(),
        model: "claude".into(),
        provider_id: None,
        created_ms,
        ids: ids.iter().map(|s| s.to_string()).collect(),
        ended: false,
    }
}

/// Every step's answer, as text.
async fn journal_steps(j: &dyn Journal) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |s: String| out.push(s);
    let t = 1_765_000_000_123;
    say(format!("{:?}", j.intend(&batch("cbA", t, &["x", "y"])).await.unwrap()));
    say(format!(
        "{:?}",
        j.intend(&batch("cbB", t + 1, &["y", "z", "w"])).await.unwrap()
    ));
    say(format!("{:?}", j.get("cbB").await.unwrap()));
    j.submitted("cbB", "msgbatch_1").await.unwrap();
    say(format!("{:?}", j.abandon("cbB").await.unwrap()));
    say(format!("{:?}", j.holder("y").await.unwrap()));
    say(format!("{:?}", j.holder("z").await.unwrap()));
    say(format!("{:?}", j.abandon("cbA").await.unwrap()));
    say(format!("{:?}", j.holder("x").await.unwrap()));
    say(format!("{:?}", j.holder("y").await.unwrap()));
    say(format!("{:?}", j.abandon("cbA").await.unwrap()));
    say(format!(
        "{:?}",
        j.intend(&batch("cbC", t + 2, &["x", "y", "w"])).await.unwrap()
    ));
    j.ended("cbB").await.unwrap();
    j.submitted("cbA", "too-late").await.unwrap();
    j.ended("cbA").await.unwrap();
    say(format!("{:?}", j.get("cbA").await.unwrap()));
    say(format!("{:?}", j.get("cbB").await.unwrap()));
    say(format!("{:?}", j.get("nothing").await.unwrap()));
    say(format!("{:?}", j.batches().await.unwrap()));
    out
}

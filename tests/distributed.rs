//! Distributed sweeps with real processes: redis-server, `candor
//! coordinator`, `candor worker`s and the client commands. Each fault test
//! ends with the checker: every job has exactly one result, none is missing,
//! and the report counts equal the results.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

/// A sweep of `queries` × 2 conditions × `seeds` jobs with sim latency `ms`.
fn spec(c: &Cluster, name: &str, queries: usize, seeds: u32, ms: u64) -> String {
    c.sb.file(&format!("{name}.csv"), &dataset(queries));
    let spec = sim_spec(ms, seeds).replace("name: small", &format!("name: {name}"));
    c.sb.file(
        &format!("{name}.yaml"),
        &spec.replace("path: data.csv", &format!("path: {name}.csv")),
    );
    format!("{name}.yaml")
}

#[test]
fn a_sweep_runs_across_workers_and_reports_like_a_local_run() {
    let mut c = Cluster::start(false, 5_000);
    let s = spec(&c, "plain", 30, 2, 0);
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit(&s);
    let o = c.candor(&["watch", &id]);
    assert_eq!(o.status.code(), Some(0), "watch: {}", stderr(&o));
    assert!(stderr(&o).contains("done — 120/120 done"), "{}", stderr(&o));
    c.check(&id, 120);
    // The same spec run locally gives the same report cells.
    let o =
        c.sb.candor(&["run", &s, "--out", "local", "--store", "local-store", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let local = c.sb.json("local/report.json");
    let remote = c.sb.json(&format!("report-{id}/report.json"));
    assert_eq!(local["cells"], remote["cells"]);
    assert_eq!(local["gaps"], remote["gaps"]);
    assert_eq!(local["sweep"]["id"], remote["sweep"]["id"]);
    // The coordinator's metrics and probes.
    let (status, body) = http_get(c.http, "/metrics").unwrap();
    assert!(status.contains("200"), "{status}");
    for line in [
        format!("candor_jobs_total{{sweep=\"{id}\",name=\"plain\",outcome=\"completed\"}} 120"),
        format!("candor_jobs_leased_total{{sweep=\"{id}\",name=\"plain\"}} 120"),
        format!("candor_jobs_in_flight{{sweep=\"{id}\",name=\"plain\"}} 0"),
        format!("candor_queue_depth_jobs{{sweep=\"{id}\",name=\"plain\"}} 0"),
        "candor_coordinator_jobs_leased_total 120".to_string(),
    ] {
        assert!(body.lines().any(|l| l == line), "no `{line}` in\n{body}");
    }
    assert!(http_get(c.http, "/healthz").unwrap().0.contains("200"));
    assert!(http_get(c.http, "/readyz").unwrap().0.contains("200"));
    // Submitting the same content again names the same sweep.
    let again = c.candor(&["submit", &s]);
    assert_eq!(stdout(&again).trim(), id);
    assert!(stderr(&again).contains("already submitted"));
    // Every authenticated RPC counts once, whichever handler serves it; a
    // refused token does not count. The workers go first: their leases count.
    for w in &mut c.workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    let rpcs = || {
        let (_, body) = http_get(c.http, "/metrics").unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix("candor_coordinator_rpcs_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no candor_coordinator_rpcs_total in\n{body}"))
    };
    let before = rpcs();
    assert!(
        before >= 4.0,
        "two submits, the watch, the report and the leases were counted: {before}"
    );
    let o = c.candor(&["status", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let refused =
        c.sb.cmd(&["status", &id])
            .env("CANDOR_COORDINATOR", c.url())
            .env("CANDOR_TOKEN", "not-the-token")
            .output()
            .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert_eq!(rpcs(), before + 1.0, "one status call counted, the refused one not");
}

#[test]
fn kill_9_a_worker_in_the_middle() {
    let mut c = Cluster::start(false, 1_000);
    let s = spec(&c, "killworker", 40, 5, 20);
    for _ in 0..3 {
        c.add_worker(8, None);
    }
    let id = c.submit(&s);
    eventually(LIMIT, "100 results", || c.done(&id) >= 100);
    c.workers[0].kill().unwrap();
    c.workers[0].wait().unwrap();
    assert!(c.done(&id) < 400, "the kill came before the end");
    c.wait_done(&id, 400, LIMIT);
    c.check(&id, 400);
}

#[test]
fn kill_9_the_coordinator_and_start_it_again() {
    let mut c = Cluster::start_with_env(false, 2_000, collect_after(2));
    let s = spec(&c, "killcoord", 40, 5, 20);
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit(&s);
    eventually(LIMIT, "100 results", || c.done(&id) >= 100);
    c.kill_coordinator();
    let at_kill = c.done(&id);
    // The workers notice it is gone before it comes back.
    eventually(LIMIT, "a worker to lose the coordinator", || {
        (0..2).any(|n| c.log_text(&format!("worker{n}.log")).contains("leasing failed"))
    });
    c.start_coordinator();
    c.wait_done(&id, 400, LIMIT);
    assert!(at_kill < 400, "the kill came before the end");
    c.check(&id, 400);
    no_garbage_left(&c, &id, 400);
}

#[test]
fn two_coordinators_on_one_redis_as_in_a_rolling_update() {
    let mut c = Cluster::start(false, 1_000);
    let s = spec(&c, "rolling", 40, 5, 20);
    let port2 = free_port();
    let second = c.coordinator_on(port2, None, "coordinator2.log");
    eventually(LIMIT, "the second coordinator to listen", || {
        c.log_text("coordinator2.log").contains("listening on")
    });
    let url2 = format!("http://127.0.0.1:{port2}");
    c.add_worker(8, None);
    c.add_worker(8, None);
    c.add_worker_to(&url2, 8, None, 5);
    c.add_worker_to(&url2, 8, None, 5);
    let id = c.submit(&s);
    eventually(LIMIT, "100 results", || c.done(&id) >= 100);
    // The old coordinator goes away for good; the new one serves everyone left.
    c.kill_coordinator();
    c.workers.push(second);
    c.port = port2;
    c.wait_done(&id, 400, LIMIT);
    c.check(&id, 400);
}

#[test]
fn restart_redis_in_the_middle() {
    let mut c = Cluster::start_with_env(true, 2_000, collect_after(2));
    let s = spec(&c, "redisrestart", 40, 5, 20);
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit(&s);
    eventually(LIMIT, "100 results", || c.done(&id) >= 100);
    c.redis.crash_and_restart();
    assert!(c.done(&id) < 400, "the restart came before the end");
    c.wait_done(&id, 400, LIMIT);
    c.check(&id, 400);
    // Records the restart lost (the last second of the append-only file)
    // leave parts no job names: collected, and the results stay exact.
    no_garbage_left(&c, &id, 400);
    c.check(&id, 400);
}

/// The coordinator collects garbage parts older than `secs`.
fn collect_after(secs: u32) -> Vec<(String, String)> {
    vec![("CANDOR_ARCHIVE_GC_GRACE_SECS".into(), secs.to_string())]
}

/// Waits until every part file in the archive is named by some job.
fn no_garbage_left(c: &Cluster, id: &str, total: u64) {
    let archive = c.archive();
    eventually(LIMIT, "the garbage parts to be removed", || {
        candor_testkit::archive::garbage(&mut c.redis.con(), &archive, id, total).is_empty()
    });
}

/// GET `path` on a loopback port: (status line, body).
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn metric(port: u16, name: &str) -> Option<u64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_stopped_worker_loses_its_leases_and_its_late_results_do_not_count() {
    let mut c = Cluster::start(false, 800);
    let s = spec(&c, "sigstop", 40, 5, 60);
    let http = free_port();
    c.add_worker(8, Some(http)); // straight to Redis
    c.add_worker(8, None);
    let id = c.submit(&s);
    eventually(LIMIT, "worker 0 to run jobs", || {
        metric(http, "candor_worker_jobs_in_flight").unwrap_or(0) > 0 && c.done(&id) > 20
    });
    c.signal_worker(0, "-STOP");
    c.wait_done(&id, 400, LIMIT);
    let st = c.status(&id);
    assert!(
        st["lease_expiries"].as_u64().unwrap() > 0,
        "the stopped worker's leases expired: {st}"
    );
    c.signal_worker(0, "-CONT");
    // Its jobs finish late; the store refuses their results.
    eventually(LIMIT, "late results to be refused", || {
        metric(http, "candor_worker_jobs_total{outcome=\"refused\"}").unwrap_or(0)
            + metric(http, "candor_worker_leases_lost_total").unwrap_or(0)
            > 0
    });
    eventually(LIMIT, "the stopped worker to finish its late jobs", || {
        metric(http, "candor_worker_jobs_in_flight") == Some(0)
    });
    c.check(&id, 400);
}

#[test]
fn two_sweeps_at_once_both_make_progress() {
    let mut c = Cluster::start(false, 5_000);
    let a = spec(&c, "first", 50, 4, 10);
    let b = spec(&c, "second", 40, 5, 10);
    c.add_worker(4, None);
    let ida = c.submit(&a);
    let idb = c.submit(&b);
    assert_ne!(ida, idb);
    eventually(LIMIT, "the first sweep to be half done", || c.done(&ida) >= 200);
    let b_then = c.done(&idb);
    assert!(
        b_then >= 100,
        "the second sweep got {b_then} results while the first got 200"
    );
    c.wait_done(&ida, 400, LIMIT);
    c.wait_done(&idb, 400, LIMIT);
    c.check(&ida, 400);
    c.check(&idb, 400);
    let o = c.candor(&["list"]);
    assert!(
        stdout(&o).contains("first") && stdout(&o).contains("second"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn retryable_failures_are_retried_then_dead_lettered() {
    let mut c = Cluster::start(false, 5_000);
    c.sb.file("data.csv", &dataset(30));
    let spec =
        sim_spec(0, 2).replace("continuation: 0.4", "continuation: 0.0\n      error_rate: 0.6") + "max_attempts: 2\n";
    c.sb.file("flaky.yaml", &spec);
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit("flaky.yaml");
    c.wait_done(&id, 120, LIMIT);
    let st = c.status(&id);
    let dead = st["jobs_dead_lettered"].as_u64().unwrap();
    assert!(st["retries"].as_u64().unwrap() > 20, "{st}");
    // P(dead) = 0.36: about 43 of 120.
    assert!((15..=75).contains(&dead), "{st}");
    assert_eq!(
        st["jobs_failed"].as_u64(),
        Some(dead),
        "every failure here is a dead letter: {st}"
    );
    c.check(&id, 120);
    let report = c.sb.json(&format!("report-{id}/report.json"));
    assert_eq!(report["sweep"]["jobs_dead_lettered"].as_u64(), Some(dead));
    assert!(report["notes"].to_string().contains("DEAD-LETTERED"));
    let lines = c.sb.jsonl(&format!("report-{id}/results.jsonl"));
    for r in lines.iter().filter(|r| r["status"] == "failed") {
        assert_eq!(r["attempt"], 2, "dead letters used every attempt");
    }
}

#[test]
fn a_wrong_or_missing_token_is_refused() {
    let mut c = Cluster::start(false, 5_000);
    let o =
        c.sb.cmd(&["list"])
            .env("CANDOR_COORDINATOR", c.url())
            .env("CANDOR_TOKEN", "bogus-9d2e")
            .output()
            .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("refused the token"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("bogus-9d2e"), "the token is not echoed");
    let o =
        c.sb.cmd(&["list"])
            .env("CANDOR_COORDINATOR", c.url())
            .env_remove("CANDOR_TOKEN")
            .output()
            .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("CANDOR_TOKEN"), "{}", stderr(&o));
    // A worker with the wrong token stops with the same code.
    let w =
        c.sb.cmd(&["worker", "--coordinator", &c.url()])
            .env("CANDOR_TOKEN", "bogus-9d2e")
            .output()
            .unwrap();
    assert_eq!(w.status.code(), Some(3), "{}", stderr(&w));
    c.add_worker(1, None);
    // And the token is in no log.
    eventually(LIMIT, "the worker to start", || {
        c.log_text("worker0.log").contains("worker w0")
    });
    for log in ["coordinator.log", "worker0.log"] {
        assert!(!c.log_text(log).contains(TOKEN), "{log} shows the token");
    }
}

#[test]
fn a_malformed_spec_over_grpc_is_invalid_argument_and_stores_nothing() {
    use candor_proto::auth::{Attach, Token};
    use candor_proto::v1 as pb;

    let c = Cluster::start(false, 5_000);
    let spec = sim_spec(0, 1).replace("  field: goal", "  feild: goal");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(c.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = pb::sweeps_client::SweepsClient::with_interceptor(ch, Attach::new(&Token::new(TOKEN)));
        let bundle = pb::SpecBundle {
            spec_path: "bad.yaml".into(),
            spec,
            files: [("data.csv".to_string(), dataset(3))].into_iter().collect(),
            run: String::new(),
        };
        client
            .submit(pb::SubmitRequest { bundle: Some(bundle) })
            .await
            .unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("bad.yaml") && status.message().contains("unknown field `feild`"),
        "{status:?}"
    );
    assert!(
        status.message().contains("dataset"),
        "the field's place is named: {status:?}"
    );
    let mut con = c.redis.con();
    let keys: Vec<String> = redis::cmd("KEYS").arg("candor:*").query(&mut con).unwrap();
    // The only key is the archive's identity, which the coordinator set at start.
    assert_eq!(keys, ["candor:archive"], "nothing stored");
    // The CLI refuses it before sending, with the same message and exit code 2.
    c.sb.file("bad.yaml", &sim_spec(0, 1).replace("  field: goal", "  feild: goal"));
    c.sb.file("data.csv", &dataset(3));
    let o = c.candor(&["submit", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field `feild`"));
}

#[test]
fn sigterm_hands_unfinished_jobs_back_at_once() {
    let mut c = Cluster::start(false, 60_000); // leases would take a minute to expire
    let s = spec(&c, "handback", 20, 2, 3_000); // 80 jobs of 3 s or more
    c.add_worker_with_grace(8, None, 1);
    let id = c.submit(&s);
    eventually(LIMIT, "jobs in flight", || {
        c.status(&id)["jobs_in_flight"].as_u64().unwrap_or(0) == 8
    });
    c.signal_worker(0, "-TERM");
    // With --grace-secs 1 the 3 s jobs cannot finish: they are handed back.
    let status = c.workers[0].wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let st = c.status(&id);
    assert_eq!(st["jobs_in_flight"].as_u64(), Some(0), "{st}");
    assert_eq!(
        st["jobs_retrying"].as_u64(),
        Some(8),
        "the 8 running jobs wait to be leased again: {st}"
    );
    assert!(
        c.log_text("worker0.log").contains("released=8"),
        "{}",
        c.log_text("worker0.log")
    );
    c.add_worker(40, None);
    // Nothing waits for the 60 s lease timeout.
    c.wait_done(&id, 80, Duration::from_secs(45));
    assert_eq!(c.status(&id)["lease_expiries"].as_u64(), Some(0));
    c.check(&id, 80);
}

#[test]
fn workers_judge_outputs_and_stop_cells_early() {
    let mut c = Cluster::start(false, 5_000);
    let s = spec(&c, "judged", 30, 20, 0);
    let text = std::fs::read_to_string(c.sb.join(&s)).unwrap()
        + "judges:\n  - {id: judge, backend: sim, model: sim-judge}\n\
           classifiers:\n  - {name: compliant, kind: prefix}\n\
           \x20 - {kind: judge, builtin: alignment_faking, judge: judge, votes: 3, only_if: compliant}\n\
           early_stopping: {target_width: 0.25, min_seeds: 2}\n";
    c.sb.file(&s, &text);
    c.add_worker(8, None);
    c.add_worker(8, None);
    let id = c.submit(&s);
    let o = c.candor(&["watch", &id]);
    assert_eq!(o.status.code(), Some(0), "watch: {}", stderr(&o));
    let o = c.candor(&["report", &id, "--out", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.export(&id, "out");
    let report = c.sb.json("out/report.json");
    let results = c.sb.jsonl("out/results.jsonl");
    let skipped = report["sweep"]["jobs_skipped"].as_u64().unwrap();
    assert!(skipped > 0, "nothing stopped early");
    assert_eq!(results.len() as u64 + skipped, 1200);
    for cell in report["cells"].as_array().unwrap() {
        let stop = cell["stopped_early"]
            .as_u64()
            .expect("every cell narrows before 20 seeds");
        assert!((2..20).contains(&stop), "{cell}");
        let cond = &cell["condition"];
        assert!(
            results
                .iter()
                .filter(|r| &r["condition"] == cond)
                .all(|r| r["seed"].as_u64().unwrap() < stop)
        );
        let af = &cell["alignment_faking"]["among_compliant"];
        assert_eq!(af["n"], cell["compliant"]);
    }
    // Every compliant output was judged by three votes; no refusal was.
    let mut judged = 0;
    for r in results.iter().filter(|r| r["status"] == "ok") {
        let votes = r["judgements"]["alignment_faking"]["votes"]
            .as_array()
            .map_or(0, Vec::len);
        let compliant = r["classifications"]["compliant"] == true;
        assert_eq!(votes, if compliant { 3 } else { 0 }, "{r}");
        judged += usize::from(compliant);
    }
    assert!(judged > 0);
    let faking: u64 = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["stack"]["complies_faking"].as_u64().unwrap())
        .sum();
    let yes = results
        .iter()
        .filter(|r| r["classifications"]["alignment_faking"] == true)
        .count() as u64;
    assert_eq!(faking, yes);
    // Sweeps compare by id: the sweep against itself changes nothing.
    let o = c.candor(&["compare", &id, &id, "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("AF|compliant") && stdout(&o).contains("0 of 7 changes flagged"),
        "{}",
        stdout(&o)
    );
    let o = c.candor(&["compare", &id, "0123456789abcdef"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

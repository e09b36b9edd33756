//! Rate limits are a budget shared by every caller: three worker processes
//! with one `rate_limit` never push a server that enforces the same limit
//! past it, and neither does a local run.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A sim-server allowing 120 requests per minute, counted over 10-second
/// windows: at most 20 requests in any 10 seconds, else 429.
fn limited_server(sb: &Sandbox) -> SimServer {
    SimServer::start(sb, &["--rpm", "120", "--window-secs", "10", "--continuation", "0"], &[])
}

fn spec(port: u16, queries: usize, seeds: u32) -> (String, String) {
    let models = format!(
        "  - {{id: api, backend: openai, model: m, base_url: \"http://127.0.0.1:{port}/v1\", rate_limit: {{rpm: 120}}}}\n"
    );
    (spec_with_models(&models, seeds), dataset(queries))
}

fn assert_within_limit(server: &SimServer, calls: u64) {
    let st = server.stats();
    assert_eq!(st["admitted"].as_u64(), Some(calls), "{st}");
    assert_eq!(st["rate_limited"].as_u64(), Some(0), "no request was refused: {st}");
    assert!(st["max_admitted_in_any_window"].as_u64().unwrap() <= 20, "{st}");
}

#[test]
fn three_workers_share_one_budget() {
    let sb_server = Sandbox::new();
    let server = limited_server(&sb_server);
    let mut c = Cluster::start(false, 10_000);
    c.all_direct = true;
    let (s, data) = spec(server.port, 2, 10); // 40 calls
    c.sb.file("data.csv", &data);
    c.sb.file("s.yaml", &s);
    for _ in 0..3 {
        c.add_worker(8, None);
    }
    let started = Instant::now();
    let id = c.submit("s.yaml");
    c.wait_done(&id, 40, Duration::from_secs(120));
    // 40 calls at 2 per second cannot take much less than 20 s.
    assert!(started.elapsed() >= Duration::from_secs(17), "{:?}", started.elapsed());
    assert_within_limit(&server, 40);
    c.check(&id, 40);
}

#[test]
fn a_local_run_keeps_to_the_limit() {
    let sb = Sandbox::new();
    let server = limited_server(&sb);
    let (s, data) = spec(server.port, 2, 5); // 20 calls
    sb.file("data.csv", &data);
    sb.file("s.yaml", &s);
    let started = Instant::now();
    let o = sb.candor(&[
        "run",
        "s.yaml",
        "--out",
        "out",
        "--store",
        "st",
        "--quiet",
        "--concurrency",
        "16",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(8), "{:?}", started.elapsed());
    assert_within_limit(&server, 20);
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 20);
}

#[test]
fn without_a_configured_limit_the_announced_one_is_learnt() {
    let sb = Sandbox::new();
    let server = SimServer::start(&sb, &["--rpm", "600", "--window-secs", "1", "--continuation", "0"], &[]);
    let port = server.port;
    let (s, data) = spec(port, 5, 6); // 60 calls
    sb.file("data.csv", &data);
    sb.file("s.yaml", &s.replace(", rate_limit: {rpm: 120}", ""));
    let o = sb.candor(&[
        "run",
        "s.yaml",
        "--out",
        "out",
        "--store",
        "st",
        "--quiet",
        "--concurrency",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(sb.jsonl("out/results.jsonl").iter().all(|r| r["status"] == "ok"));
    let st = server.stats();
    // The first calls go out before any limit is known; once the first
    // answer announces 600/min, calls are paced. Unpaced, four workers of a
    // zero-latency server would send hundreds a second and be refused often.
    assert!(st["rate_limited"].as_u64().unwrap() <= 2, "{st}");
    assert_eq!(st["admitted"].as_u64(), Some(60), "{st}");
}

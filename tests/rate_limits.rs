//! Rate limits are a budget shared by every caller: three worker processes
//! with one `rate_limit` never push a server that enforces the same limit
//! past it, and neither does a local run.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A sim-server allowing 120 requests per minute, counted over 5-second
/// windows: at most 10 requests in any 5 seconds, else 429.
fn limited_server(sb: &Sandbox) -> Server {
    let port = free_port();
    let log = Stdio::from(std::fs::File::create(sb.join("sim-server.log")).unwrap());
    let child = sb
        .cmd(&[
            "sim-server",
            "--port",
            &port.to_string(),
            "--rpm",
            "120",
            "--window-secs",
            "5",
            "--continuation",
            "0",
        ])
        .stderr(log)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(20), "the sim-server to listen", || {
        std::fs::read_to_string(sb.join("sim-server.log")).is_ok_and(|l| l.contains("listening on"))
    });
    Server(child, port)
}

fn stats(port: u16) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

fn spec(port: u16, queries: usize, seeds: u32) -> (String, String) {
    let spec = sim_spec(0, seeds);
    let start = spec.find("models:").unwrap();
    let end = spec.find("dataset:").unwrap();
    let models = format!(
        "models:\n  - {{id: api, backend: openai, model: m, base_url: \"http://127.0.0.1:{port}/v1\", rate_limit: {{rpm: 120}}}}\n"
    );
    (format!("{}{models}{}", &spec[..start], &spec[end..]), dataset(queries))
}

fn assert_within_limit(port: u16, calls: u64) {
    let st = stats(port);
    assert_eq!(st["admitted"].as_u64(), Some(calls), "{st}");
    assert_eq!(st["rate_limited"].as_u64(), Some(0), "no request was refused: {st}");
    assert!(st["max_admitted_in_any_window"].as_u64().unwrap() <= 10, "{st}");
}

#[test]
fn three_workers_share_one_budget() {
    let sb_server = Sandbox::new();
    let server = limited_server(&sb_server);
    let mut c = Cluster::start(false, 10_000);
    c.all_direct = true;
    let (s, data) = spec(server.1, 2, 10); // 40 calls
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
    assert_within_limit(server.1, 40);
    c.check(&id, 40);
}

#[test]
fn a_local_run_keeps_to_the_limit() {
    let sb = Sandbox::new();
    let server = limited_server(&sb);
    let (s, data) = spec(server.1, 2, 5); // 20 calls
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
    assert_within_limit(server.1, 20);
    assert_eq!(sb.jsonl("out/results.jsonl").len(), 20);
}

#[test]
fn without_a_configured_limit_the_announced_one_is_learnt() {
    let sb = Sandbox::new();
    let port = free_port();
    let log = Stdio::from(std::fs::File::create(sb.join("sim-server.log")).unwrap());
    // 600 per minute, counted per second: at most 10 in any second.
    let _server = Server(
        sb.cmd(&[
            "sim-server",
            "--port",
            &port.to_string(),
            "--rpm",
            "600",
            "--window-secs",
            "1",
            "--continuation",
            "0",
        ])
        .stderr(log)
        .spawn()
        .unwrap(),
        port,
    );
    eventually(Duration::from_secs(20), "the sim-server to listen", || {
        std::fs::read_to_string(sb.join("sim-server.log")).is_ok_and(|l| l.contains("listening on"))
    });
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
    let st = stats(port);
    // The first calls go out before any limit is known; once the first
    // answer announces 600/min, calls are paced. Unpaced, four workers of a
    // zero-latency server would send hundreds a second and be refused often.
    assert!(st["rate_limited"].as_u64().unwrap() <= 2, "{st}");
    assert_eq!(st["admitted"].as_u64(), Some(60), "{st}");
}

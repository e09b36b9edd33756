//! `candor bench --rate-limit R`: a fleet sharing one rate limit against a
//! `candor sim-server` that enforces the same limit. Prints the fraction of
//! the limit achieved over the measured window and the share of requests
//! answered 429.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candor_core::spec::Bundle;
use candor_proto::auth::{Attach, Token};
use candor_proto::v1 as pb;

use super::bench_distributed::{TOKEN, free_port, start_fleet};
use crate::exit;

/// Time given to the fleet to reach its pace before measuring.
const WARM_UP: Duration = Duration::from_secs(15);

fn stats(port: u16) -> Result<serde_json::Value, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.write_all(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let body = text.split("\r\n\r\n").nth(1).ok_or("the sim-server sent no body")?;
    serde_json::from_str(body).map_err(|e| e.to_string())
}

pub fn bench(rpm: u32, minutes: u32, workers: u32, concurrency: u32, latency_ms: u64) -> i32 {
    match run(rpm, minutes, workers, concurrency, latency_ms) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn run(rpm: u32, minutes: u32, workers: u32, concurrency: u32, latency_ms: u64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let port = free_port().map_err(|e| e.to_string())?;
    let mut server = Command::new(&exe)
        .args(["sim-server", "--port", &port.to_string(), "--rpm", &rpm.to_string()])
        .args(["--latency-ms", &latency_ms.to_string(), "--continuation", "0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(server.stderr.take().expect("piped"));
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.contains("listening on") {
        let _ = server.kill();
        return Err(format!("the sim-server did not start: {line}"));
    }
    let (mut procs, url, _redis) = start_fleet(dir.path(), workers, concurrency)?;
    procs.0.push(("sim-server".into(), server));

    // Enough jobs (one call each) to keep the fleet busy past the window.
    let jobs_needed = u64::from(rpm) * u64::from(minutes + 1) * 3 / 2;
    let queries = 500u64;
    let seeds = jobs_needed.div_ceil(queries * 2).max(1);
    let mut csv = String::from("goal\n");
    for i in 0..queries {
        csv.push_str(&format!("request {i}\n"));
    }
    std::fs::write(dir.path().join("q.csv"), csv).map_err(|e| e.to_string())?;
    let spec = format!(
        "name: ratelimit-bench\nmodels:\n  - {{id: api, backend: openai, model: m, base_url: \"http://127.0.0.1:{port}/v1\", rate_limit: {{rpm: {rpm}}}}}\n\
         dataset: {{path: q.csv, field: goal}}\nprompts:\n  - {{name: p, user: \"{{{{ query }}}}\"}}\n\
         conditions:\n  - {{name: a}}\n  - {{name: b}}\nseeds: {seeds}\n"
    );
    let spec_path = dir.path().join("bench.yaml");
    std::fs::write(&spec_path, spec).map_err(|e| e.to_string())?;
    let bundle = Bundle::collect(&spec_path).map_err(|e| e.to_string())?;

    println!(
        "rate-limit bench: limit {rpm} requests/min shared by {workers} workers (concurrency {concurrency}), \
         sim-server latency {latency_ms} ms, {minutes} min measured after {} s warm-up",
        WARM_UP.as_secs()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| e.to_string())?.connect_lazy();
        let mut c = pb::sweeps_client::SweepsClient::with_interceptor(ch, Attach::new(&Token::new(TOKEN)));
        let req = pb::SubmitRequest {
            bundle: Some(bundle.into()),
        };
        let started = Instant::now();
        let id = loop {
            match c.submit(req.clone()).await {
                Ok(r) => break r.into_inner().sweep_id,
                Err(s) if s.code() == tonic::Code::Unavailable && started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(s) => return Err(format!("submit: {}", s.message())),
            }
        };
        tokio::time::sleep(WARM_UP).await;
        let s0 = stats(port)?;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(u64::from(minutes) * 60)).await;
        let s1 = stats(port)?;
        let secs = t0.elapsed().as_secs_f64();
        let _ = c.cancel(pb::SweepRef { sweep_id: id }).await;
        let d = |k: &str| s1[k].as_u64().unwrap_or(0) - s0[k].as_u64().unwrap_or(0);
        let (admitted, limited, requests) = (d("admitted"), d("rate_limited"), d("requests"));
        let allowed = f64::from(rpm) * secs / 60.0;
        println!(
            "window {secs:.0} s: {admitted} requests served = {:.1}% of the limit; {limited} of {requests} answered 429 ({:.2}%)",
            admitted as f64 * 100.0 / allowed,
            if requests > 0 { limited as f64 * 100.0 / requests as f64 } else { 0.0 }
        );
        Ok(())
    })
}

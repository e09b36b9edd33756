//! `candor bench --distributed`: redis-server, a coordinator and workers as
//! separate processes on loopback; measures jobs/s from submit to the last
//! result, and the peak memory of each process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use candor_core::spec::Bundle;
use candor_proto::auth::{Attach, Token};
use candor_proto::v1 as pb;

use super::bench::{peak_rss_kb_of, write_inputs};
use crate::exit;

/// The bench's bearer token.
pub const TOKEN: &str = "bench-token";

/// Kills its processes when dropped.
pub struct Procs(pub Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn bench(sizes: &[u64], workers: u32, concurrency: u32) -> i32 {
    println!(
        "distributed sweep: redis-server, 1 coordinator, {workers} workers (concurrency {concurrency}), sim at zero latency, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>10}  {:>8}  {:>10}  {:>20}  {:>16}  {:>18}",
        "jobs", "seconds", "jobs/s", "coordinator RSS (MB)", "worker RSS (MB)", "redis memory (MB)"
    );
    for &n in sizes {
        match one(n, workers, concurrency) {
            Ok((secs, coord, ws, redis_bytes)) => println!(
                "{:>10}  {:>8.2}  {:>10.0}  {:>20.1}  {:>16}  {:>18.0}",
                n,
                secs,
                n as f64 / secs,
                coord as f64 / 1024.0,
                ws.iter()
                    .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                redis_bytes as f64 / 1e6
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        }
    }
    exit::OK
}

fn one(jobs: u64, workers: u32, concurrency: u32) -> Result<(f64, u64, Vec<u64>, u64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let spec = write_inputs(dir.path(), jobs).map_err(|e| e.to_string())?;
    let token = TOKEN;
    let (procs, url, redis_url) = start_fleet(dir.path(), workers, concurrency)?;

    let bundle = Bundle::collect(&spec).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let secs = rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| e.to_string())?
            .connect_lazy();
        let mut c = pb::sweeps_client::SweepsClient::with_interceptor(ch, Attach::new(&Token::new(token)));
        let started = Instant::now();
        let req = pb::SubmitRequest {
            bundle: Some(bundle.clone().into()),
        };
        let id = loop {
            match c.submit(req.clone()).await {
                Ok(r) => break r.into_inner().sweep_id,
                Err(s) if s.code() == tonic::Code::Unavailable && started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(s) => return Err(format!("submit: {}", s.message())),
            }
        };
        loop {
            let s = c
                .get(pb::SweepRef { sweep_id: id.clone() })
                .await
                .map_err(|s| s.message().to_string())?
                .into_inner();
            if s.state != "running" {
                if s.jobs_done != jobs {
                    return Err(format!(
                        "the sweep ended {} with {} of {jobs} jobs",
                        s.state, s.jobs_done
                    ));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok::<f64, String>(started.elapsed().as_secs_f64())
    })?;
    let rss = |name: &str| {
        procs
            .0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| peak_rss_kb_of(&c.id().to_string()))
            .unwrap_or(0)
    };
    let coord = rss("coordinator");
    let ws = (0..workers).map(|i| rss(&format!("worker{i}"))).collect();
    let used = redis::Client::open(redis_url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("INFO").arg("memory").query::<String>(&mut c))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok())
        })
        .unwrap_or(0);
    Ok((secs, coord, ws, used))
}

/// Starts redis-server, a coordinator and `workers` workers recording
/// straight to Redis; returns them with the coordinator's and Redis's URLs.
pub fn start_fleet(dir: &std::path::Path, workers: u32, concurrency: u32) -> Result<(Procs, String, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut procs = Procs(Vec::new());
    let rport = free_port().map_err(|e| e.to_string())?;
    let redis = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &rport.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server (is it installed?): {e}"))?;
    procs.0.push(("redis".into(), redis));
    let redis_url = format!("redis://127.0.0.1:{rport}");

    let mut coord = Command::new(&exe)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--redis", &redis_url])
        .env("CANDOR_TOKEN", TOKEN)
        .env("CANDOR_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = coord.stderr.take().expect("piped");
    procs.0.push(("coordinator".into(), coord));
    let mut line = String::new();
    let mut reader = BufReader::new(stderr);
    let addr = loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("the coordinator exited before listening".into());
        }
        if let Some(rest) = line.strip_prefix("coordinator listening on ") {
            break rest.split([',', ';', ' ']).next().unwrap_or_default().to_string();
        }
    };
    std::thread::spawn(move || for _ in reader.lines() {});
    let url = format!("http://{addr}");
    for i in 0..workers {
        let w = Command::new(&exe)
            .args([
                "worker",
                "--coordinator",
                &url,
                "--redis",
                &redis_url,
                "--concurrency",
                &concurrency.to_string(),
            ])
            .env("CANDOR_TOKEN", TOKEN)
            .env("CANDOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        procs.0.push((format!("worker{i}"), w));
    }
    Ok((procs, url, redis_url))
}

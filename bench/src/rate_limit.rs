//! A fleet sharing one rate limit against a `candor sim-server` that
//! enforces the same limit: the fraction of the limit achieved over the
//! measured window and the share of requests answered 429.

use std::time::Duration;

use candor_testkit::SimServer;

use crate::Failed;
use crate::distributed::fleet;

/// Time given to the fleet to reach its pace before measuring.
const WARM_UP: Duration = Duration::from_secs(15);

pub fn bench(rpm: u32, minutes: u32, workers: u32, concurrency: u32, latency_ms: u64) -> Result<(), Failed> {
    let c = fleet(workers, concurrency);
    let server = SimServer::start(
        &c.sb,
        &[
            "--rpm",
            &rpm.to_string(),
            "--latency-ms",
            &latency_ms.to_string(),
            "--continuation",
            "0",
        ],
        &[],
    );
    // Enough jobs (one call each) to keep the fleet busy past the window.
    let jobs_needed = u64::from(rpm) * u64::from(minutes + 1) * 3 / 2;
    let queries = 500u64;
    let seeds = jobs_needed.div_ceil(queries * 2).max(1);
    let mut csv = String::from("goal\n");
    for i in 0..queries {
        csv.push_str(&format!("request {i}\n"));
    }
    c.sb.file("q.csv", &csv);
    c.sb.file(
        "bench.yaml",
        &format!(
            "name: ratelimit-bench\nmodels:\n  - {{id: api, backend: openai, model: m, base_url: \"{}/v1\", rate_limit: {{rpm: {rpm}}}}}\n\
             dataset: {{path: q.csv, field: goal}}\nprompts:\n  - {{name: p, user: \"{{{{ query }}}}\"}}\n\
             conditions:\n  - {{name: a}}\n  - {{name: b}}\nseeds: {seeds}\n",
            server.base()
        ),
    );
    println!(
        "rate-limit bench: limit {rpm} requests/min shared by {workers} workers (concurrency {concurrency}), \
         sim-server latency {latency_ms} ms, {minutes} min measured after {} s warm-up",
        WARM_UP.as_secs()
    );
    let id = c.submit("bench.yaml");
    std::thread::sleep(WARM_UP);
    let s0 = server.stats();
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(u64::from(minutes) * 60));
    let s1 = server.stats();
    let secs = t0.elapsed().as_secs_f64();
    let _ = c.candor(&["cancel", &id]);
    let d = |k: &str| s1[k].as_u64().unwrap_or(0) - s0[k].as_u64().unwrap_or(0);
    let (admitted, limited, requests) = (d("admitted"), d("rate_limited"), d("requests"));
    let allowed = f64::from(rpm) * secs / 60.0;
    println!(
        "window {secs:.0} s: {admitted} requests served = {:.1}% of the limit; {limited} of {requests} answered 429 ({:.2}%)",
        admitted as f64 * 100.0 / allowed,
        if requests > 0 {
            limited as f64 * 100.0 / requests as f64
        } else {
            0.0
        }
    );
    Ok(())
}

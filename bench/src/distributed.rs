//! The distributed path: redis-server, a coordinator and workers, each its
//! own `candor` process on loopback (candor-testkit's `Cluster`); jobs/s
//! from submit to the last result, and the peak memory of each process.

use std::time::{Duration, Instant};

use candor_testkit::Cluster;

use crate::{Failed, peak_rss_kb, write_inputs};

/// The longest a size may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(3600);

/// A cluster as the benchmarks run it: logs at warn, every worker
/// recording straight to Redis, the coordinator's default lease time.
pub fn fleet(workers: u32, concurrency: u32) -> Cluster {
    let mut c = Cluster::start_with_env(false, 30_000, vec![("CANDOR_LOG".into(), "warn".into())]);
    c.all_direct = true;
    for _ in 0..workers {
        c.add_worker(concurrency, None);
    }
    c
}

pub fn bench(sizes: &[u64], workers: u32, concurrency: u32) -> Result<(), Failed> {
    println!(
        "distributed sweep: redis-server, 1 coordinator, {workers} workers (concurrency {concurrency}), sim at zero latency, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>10}  {:>8}  {:>10}  {:>20}  {:>16}  {:>18}",
        "jobs", "seconds", "jobs/s", "coordinator RSS (MB)", "worker RSS (MB)", "redis memory (MB)"
    );
    for &n in sizes {
        let c = fleet(workers, concurrency);
        let spec = write_inputs(c.sb.path(), n)?;
        let started = Instant::now();
        let id = c.submit(&spec.file_name().ok_or("no spec file")?.to_string_lossy());
        c.wait_done(&id, n, LIMIT);
        let secs = started.elapsed().as_secs_f64();
        let rss = |pid: Option<u32>| pid.and_then(|p| peak_rss_kb(&p.to_string())).unwrap_or(0);
        let coord = rss(c.coordinator.as_ref().map(|p| p.id()));
        let ws: Vec<String> = c
            .workers
            .iter()
            .map(|w| format!("{:.1}", rss(Some(w.id())) as f64 / 1024.0))
            .collect();
        println!(
            "{:>10}  {:>8.2}  {:>10.0}  {:>20.1}  {:>16}  {:>18.0}",
            n,
            secs,
            n as f64 / secs,
            coord as f64 / 1024.0,
            ws.join(", "),
            redis_used_bytes(&c) as f64 / 1e6
        );
    }
    Ok(())
}

/// Redis's `used_memory`, in bytes.
fn redis_used_bytes(c: &Cluster) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut c.redis.con())
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok())
        .unwrap_or(0)
}

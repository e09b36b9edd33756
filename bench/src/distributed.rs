//! The distributed path: redis-server, a coordinator and workers, each its
//! own `candor` process on loopback (candor-testkit's `Cluster`); jobs/s
//! from submit to the last result, and the peak memory of each process.

use std::time::{Duration, Instant};

use candor_testkit::Cluster;

use crate::{Failed, peak_rss_kb, write_inputs_with};

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

pub fn bench(sizes: &[u64], workers: u32, concurrency: u32, example: bool) -> Result<(), Failed> {
    println!(
        "distributed sweep: redis-server, 1 coordinator, {workers} workers (concurrency {concurrency}), sim at zero latency, {} prompts, {} cores",
        if example { "the example's" } else { "one-line" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>9} {:>8} {:>8} {:>11} {:>10} {:>10} {:>10} {:>9} {:>11} {:>10} {:>12}",
        "jobs",
        "seconds",
        "jobs/s",
        "redis peak",
        "redis B/job",
        "archive",
        "arch B/job",
        "report s",
        "report RSS",
        "coord RSS",
        "worker RSS"
    );
    for &n in sizes {
        let c = fleet(workers, concurrency);
        let spec = write_inputs_with(c.sb.path(), n, example)?;
        let before = redis_memory(&c, "used_memory");
        let started = Instant::now();
        let id = c.submit(&spec.file_name().ok_or("no spec file")?.to_string_lossy());
        c.wait_done(&id, n, LIMIT);
        let secs = started.elapsed().as_secs_f64();
        let after = redis_memory(&c, "used_memory");
        let peak = redis_memory(&c, "used_memory_peak");
        let archive = dir_bytes(&c.archive());
        let (report_secs, report_kb) = report(&c, &id)?;
        let rss = |pid: Option<u32>| pid.and_then(|p| peak_rss_kb(&p.to_string())).unwrap_or(0);
        let coord = rss(c.coordinator.as_ref().map(|p| p.id()));
        let ws: Vec<String> = c
            .workers
            .iter()
            .map(|w| format!("{:.0}", rss(Some(w.id())) as f64 / 1024.0))
            .collect();
        println!(
            "{:>9} {:>8.1} {:>8.0} {:>8.1} MB {:>10.1} {:>7.1} MB {:>10.0} {:>9.1} {:>8.0} MB {:>7.0} MB {:>9} MB",
            n,
            secs,
            n as f64 / secs,
            peak as f64 / 1e6,
            after.saturating_sub(before) as f64 / n as f64,
            archive as f64 / 1e6,
            archive as f64 / n as f64,
            report_secs,
            report_kb as f64 / 1024.0,
            coord as f64 / 1024.0,
            ws.join("/"),
        );
    }
    Ok(())
}

/// `candor report` of the sweep: seconds, and its peak memory in KiB (from
/// GNU time when installed, else 0).
fn report(c: &Cluster, id: &str) -> Result<(f64, u64), Failed> {
    let time = std::path::Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut t = std::process::Command::new(time);
        t.args(["-f", "peak-kb %M"]).arg(&*candor_testkit::CANDOR);
        t
    } else {
        std::process::Command::new(&*candor_testkit::CANDOR)
    };
    let started = Instant::now();
    let o = cmd
        .args(["report", id, "--out", "bench-report"])
        .current_dir(c.sb.path())
        .env("CANDOR_COORDINATOR", c.url())
        .env("CANDOR_TOKEN", candor_testkit::TOKEN)
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        return Err(format!("candor report failed: {err}").into());
    }
    let kb = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-kb ")?.trim().parse().ok())
        .unwrap_or(0);
    Ok((secs, kb))
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A figure of Redis's `INFO memory` (`used_memory`, `used_memory_peak`), in bytes.
fn redis_memory(c: &Cluster, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut c.redis.con())
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or(0)
}

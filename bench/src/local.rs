//! The local runner's throughput and peak memory on a generated sweep with
//! the simulated model at zero latency. Each size runs in a child process
//! (this binary with `--child`) so that each peak memory figure is its own.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candor_coordinator::{LocalOptions, Progress, run_local};
use candor_core::Sweep;

use crate::{Failed, peak_rss_kb, write_inputs};

pub fn bench(sizes: &[u64], concurrency: u32) -> Result<(), Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the candor-bench executable: {e}"))?;
    println!(
        "local sweep, sim backend at zero latency, concurrency {concurrency}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>10}  {:>8}  {:>10}  {:>13}",
        "jobs", "seconds", "jobs/s", "peak RSS (MB)"
    );
    for &n in sizes {
        let out = Command::new(&exe)
            .args([
                "--child",
                "--jobs",
                &n.to_string(),
                "--concurrency",
                &concurrency.to_string(),
            ])
            .output()
            .map_err(|e| format!("cannot start the {n}-job run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the {n}-job run failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("the {n}-job run printed no figures: {e}"))?;
        println!(
            "{:>10}  {:>8.2}  {:>10.0}  {:>13.1}",
            n,
            v["seconds"].as_f64().unwrap_or(f64::NAN),
            v["jobs_per_s"].as_f64().unwrap_or(f64::NAN),
            v["peak_rss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0
        );
    }
    Ok(())
}

/// One size, in this process: prints its figures as JSON.
pub fn child(jobs: u64, concurrency: u32) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let spec = write_inputs(dir.path(), jobs)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = Instant::now();
    let sweep = Arc::new(Sweep::load(&spec)?);
    let opts = LocalOptions {
        store: dir.path().join("store"),
        out: dir.path().join("out"),
        concurrency: concurrency as usize,
        judge_concurrency: concurrency as usize,
        cache: true,
        fail_fast: candor_core::spec::DEFAULT_FAIL_FAST,
    };
    let summary = rt.block_on(run_local(
        sweep,
        &opts,
        Arc::new(Progress::default()),
        Arc::new(AtomicBool::new(false)),
    ))?;
    let secs = started.elapsed().as_secs_f64();
    if summary.report.sweep.jobs_done != jobs {
        return Err(format!("only {} of {jobs} jobs finished", summary.report.sweep.jobs_done).into());
    }
    println!(
        "{}",
        serde_json::json!({"jobs": jobs, "seconds": secs, "jobs_per_s": jobs as f64 / secs, "peak_rss_kb": peak_rss_kb("self")})
    );
    Ok(())
}

//! The coordinator's Prometheus metrics. Sweep counters live in Redis and
//! are read at scrape time, so every coordinator reports the same totals and
//! a restart loses nothing; this process only counts its own RPCs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use candor_queue::SweepState;

pub const JOBS_LEASED: &str = "candor_jobs_leased_total";
pub const JOBS_COMPLETED: &str = "candor_jobs_completed_total";
pub const JOBS_FAILED: &str = "candor_jobs_failed_total";
pub const JOBS_RETRIED: &str = "candor_jobs_retried_total";
pub const JOBS_DEAD_LETTERED: &str = "candor_jobs_dead_lettered_total";
pub const LEASE_EXPIRIES: &str = "candor_lease_expiries_total";
pub const QUEUE_DEPTH: &str = "candor_queue_depth_jobs";
pub const IN_FLIGHT: &str = "candor_jobs_in_flight";
pub const SWEEP_JOBS: &str = "candor_sweep_jobs";
pub const SWEEP_COST: &str = "candor_sweep_cost_usd";
pub const RPCS: &str = "candor_coordinator_rpcs_total";
pub const LEASE_RPC_JOBS: &str = "candor_coordinator_jobs_leased_total";

#[derive(Debug, Default)]
pub struct Metrics {
    pub rpcs: AtomicU64,
    pub leased_here: AtomicU64,
}

/// A per-sweep series: name, type, help, and how to read it off a sweep's state.
type Series = (&'static str, &'static str, &'static str, fn(&SweepState) -> u64);

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Metrics {
    /// The exposition text, with per-sweep series from `sweeps`.
    pub fn render(&self, sweeps: &[SweepState]) -> String {
        let mut s = String::new();
        family(&mut s, RPCS, "counter", "RPCs served by this coordinator.");
        let _ = writeln!(s, "{RPCS} {}", self.rpcs.load(Ordering::Relaxed));
        family(
            &mut s,
            LEASE_RPC_JOBS,
            "counter",
            "Jobs leased through this coordinator.",
        );
        let _ = writeln!(s, "{LEASE_RPC_JOBS} {}", self.leased_here.load(Ordering::Relaxed));
        let series: [Series; 9] = [
            (JOBS_LEASED, "counter", "Leases handed out, per sweep.", |x| x.leased),
            (JOBS_COMPLETED, "counter", "Jobs with a result, per sweep.", |x| x.done),
            (
                JOBS_FAILED,
                "counter",
                "Jobs whose result is a failure, per sweep.",
                |x| x.failed,
            ),
            (
                JOBS_RETRIED,
                "counter",
                "Retryable failures sent back to the queue, per sweep.",
                |x| x.retried,
            ),
            (
                JOBS_DEAD_LETTERED,
                "counter",
                "Jobs that used every attempt, per sweep.",
                |x| x.dead,
            ),
            (
                LEASE_EXPIRIES,
                "counter",
                "Leases that expired unrenewed, per sweep.",
                |x| x.lease_expiries,
            ),
            (
                QUEUE_DEPTH,
                "gauge",
                "Jobs not yet finished and not in flight, per running sweep.",
                |x| if x.state == "running" { waiting(x) } else { 0 },
            ),
            (
                IN_FLIGHT,
                "gauge",
                "Jobs under a lease that has not expired, per sweep.",
                |x| x.in_flight,
            ),
            (SWEEP_JOBS, "gauge", "Jobs in the sweep.", |x| x.total),
        ];
        for (name, kind, help, get) in series {
            family(&mut s, name, kind, help);
            for sw in sweeps {
                let _ = writeln!(s, "{name}{{sweep=\"{}\",name=\"{}\"}} {}", sw.id, sw.name, get(sw));
            }
        }
        family(
            &mut s,
            SWEEP_COST,
            "gauge",
            "US dollars spent on the sweep's recorded results.",
        );
        for sw in sweeps {
            let usd = sw.spent_micro_usd as f64 / 1e6;
            let _ = writeln!(s, "{SWEEP_COST}{{sweep=\"{}\",name=\"{}\"}} {usd}", sw.id, sw.name);
        }
        s
    }
}

/// Jobs of a sweep not yet finished, skipped or under a lease.
fn waiting(x: &SweepState) -> u64 {
    x.total.saturating_sub(x.done + x.skipped + x.in_flight)
}

/// The fleet's backlog as JSON, for autoscalers (KEDA's `metrics-api`
/// trigger reads `queue_depth`): jobs waiting and under a lease across the
/// running sweeps.
pub fn queue_json(sweeps: &[SweepState]) -> String {
    let running = sweeps.iter().filter(|x| x.state == "running");
    let (mut depth, mut in_flight, mut n) = (0u64, 0u64, 0u64);
    for x in running {
        depth += waiting(x);
        in_flight += x.in_flight;
        n += 1;
    }
    format!("{{\"queue_depth\":{depth},\"in_flight\":{in_flight},\"running_sweeps\":{n}}}\n")
}

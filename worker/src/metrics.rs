//! A worker's Prometheus metrics.

use std::fmt::Write as _;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use candor_exec::counted::CALLS;

pub const JOBS_COMPLETED: &str = "candor_worker_jobs_completed_total";
pub const JOBS_FAILED: &str = "candor_worker_jobs_failed_total";
pub const JOBS_RETRIED: &str = "candor_worker_jobs_retried_total";
pub const JOBS_DEAD_LETTERED: &str = "candor_worker_jobs_dead_lettered_total";
pub const JOBS_RELEASED: &str = "candor_worker_jobs_released_total";
pub const RESULTS_REFUSED: &str = "candor_worker_results_refused_total";
pub const LEASES_LOST: &str = "candor_worker_leases_lost_total";
pub const JOBS_LEASED: &str = "candor_worker_jobs_leased_total";
pub const IN_FLIGHT: &str = "candor_worker_jobs_in_flight";
pub const JOB_LATENCY: &str = "candor_job_latency_seconds";
pub const BACKEND_CALLS: &str = "candor_backend_calls_total";
pub const COST: &str = "candor_worker_cost_usd_total";

/// Upper bounds of the job latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    /// The last lease call reached the coordinator.
    pub connected: AtomicBool,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub released: AtomicU64,
    /// Results the store refused: the job had a result already, or the lease had moved on.
    pub refused: AtomicU64,
    pub leases_lost: AtomicU64,
    pub leased: AtomicU64,
    pub in_flight: AtomicU64,
    /// Micro-USD of the results this worker recorded.
    pub cost_micro_usd: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds.
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn observe_latency(&self, secs: f64) {
        for (b, le) in self.latency_buckets.iter().zip(BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let counters: [(&str, &str, &AtomicU64); 8] = [
            (JOBS_COMPLETED, "Results recorded by this worker.", &self.completed),
            (JOBS_FAILED, "Jobs this worker recorded as failed.", &self.failed),
            (
                JOBS_RETRIED,
                "Retryable failures this worker sent back to the queue.",
                &self.retried,
            ),
            (
                JOBS_DEAD_LETTERED,
                "Jobs dead-lettered after this worker's last attempt.",
                &self.dead_lettered,
            ),
            (
                JOBS_RELEASED,
                "Jobs handed back unfinished at shutdown.",
                &self.released,
            ),
            (
                RESULTS_REFUSED,
                "Results refused: the job had one already or the lease had moved on.",
                &self.refused,
            ),
            (LEASES_LOST, "Leases lost while their jobs ran.", &self.leases_lost),
            (JOBS_LEASED, "Jobs leased by this worker.", &self.leased),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP {IN_FLIGHT} Jobs running on this worker.\n# TYPE {IN_FLIGHT} gauge\n{IN_FLIGHT} {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP {JOB_LATENCY} Wall time of a job.\n# TYPE {JOB_LATENCY} histogram"
        );
        for (b, le) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(s, "{JOB_LATENCY}_bucket{{le=\"{le}\"}} {}", b.load(Ordering::Relaxed));
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(s, "{JOB_LATENCY}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "{JOB_LATENCY}_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "{JOB_LATENCY}_count {count}");
        let _ = writeln!(
            s,
            "# HELP {COST} US dollars of the results this worker recorded.\n# TYPE {COST} counter\n{COST} {}",
            self.cost_micro_usd.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "# HELP {BACKEND_CALLS} Answers of the model APIs, by outcome (retries included).\n# TYPE {BACKEND_CALLS} counter"
        );
        for (outcome, c) in [
            ("ok", &CALLS.ok),
            ("rate_limited", &CALLS.rate_limited),
            ("error", &CALLS.error),
        ] {
            let _ = writeln!(
                s,
                "{BACKEND_CALLS}{{outcome=\"{outcome}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_latency(0.003);
        m.observe_latency(0.2);
        m.observe_latency(100.0);
        let text = m.render();
        assert!(
            text.contains("candor_job_latency_seconds_bucket{le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("candor_job_latency_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("candor_job_latency_seconds_bucket{le=\"0.25\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("candor_job_latency_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(text.contains("candor_job_latency_seconds_count 3"), "{text}");
    }
}

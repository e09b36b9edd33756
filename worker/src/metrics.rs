//! A worker's Prometheus metrics, declared once here and registered in the
//! worker's one [`Registry`]; `/metrics` serves its OpenMetrics encoding.
//!
//! The constants are the names as registered: the encoder adds `_total` to
//! a counter's samples (`candor_worker_jobs` is scraped as
//! `candor_worker_jobs_total`) and `_bucket`, `_sum` and `_count` to a
//! histogram's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use candor_exec::batch::stats::{STATS, Snapshot};

pub const JOBS: &str = "candor_worker_jobs";
pub const JOBS_LEASED: &str = "candor_worker_jobs_leased";
pub const LEASES_LOST: &str = "candor_worker_leases_lost";
pub const IN_FLIGHT: &str = "candor_worker_jobs_in_flight";
pub const JOB_LATENCY: &str = "candor_job_latency_seconds";
pub const COST: &str = "candor_worker_cost_usd";
pub const BATCHES_IN_FLIGHT: &str = "candor_batches_in_flight";
pub const BATCH_OLDEST_AGE: &str = "candor_batch_oldest_age_seconds";
pub const BATCHES_SUBMITTED: &str = "candor_batches_submitted";
pub const BATCH_REQUESTS: &str = "candor_batch_requests";
pub const BATCH_REQUESTS_RESENT: &str = "candor_batch_requests_resent";
pub const BATCH_CALLS_FOLLOWED: &str = "candor_batch_calls_followed";

/// Upper bounds of the job latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What became of a job this worker ran, as the store answered: each
/// attempt ends in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// Its result was recorded (whatever its status).
    Completed,
    /// Recorded as failed through the fail path (a failure that will not pass).
    Failed,
    /// A retryable failure sent back to the queue.
    Retried,
    /// Dead-lettered after its last attempt.
    DeadLettered,
    /// Handed back unfinished (shutdown, a paused sweep, fail fast's hold).
    Released,
    /// The store refused the result: the job had one already, the lease had
    /// moved on, or the sweep was gone.
    Refused,
}

impl JobOutcome {
    pub const ALL: [JobOutcome; 6] = [
        JobOutcome::Completed,
        JobOutcome::Failed,
        JobOutcome::Retried,
        JobOutcome::DeadLettered,
        JobOutcome::Released,
        JobOutcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Completed => "completed",
            JobOutcome::Failed => "failed",
            JobOutcome::Retried => "retried",
            JobOutcome::DeadLettered => "dead_lettered",
            JobOutcome::Released => "released",
            JobOutcome::Refused => "refused",
        }
    }
}

impl EncodeLabelValue for JobOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct JobLabels {
    outcome: JobOutcome,
}

/// A counter of US dollars kept in whole micro-dollars, as results carry
/// them, so that the total stays exact however many results it adds up (an
/// `f64` counter drifts: 0.028017 becomes 0.02801699999999998).
#[derive(Debug, Clone, Default)]
struct Usd(Arc<AtomicU64>);

impl EncodeMetric for Usd {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let usd = self.0.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_counter::<NoLabelSet, _, u64>(&usd, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// One number of the process's batches ([`candor_exec::batch::stats::STATS`]),
/// read when the metrics are scraped: a gauge, or a counter when `counter`.
#[derive(Debug, Clone, Copy)]
struct BatchStat {
    read: fn(&Snapshot) -> u64,
    counter: bool,
}

impl EncodeMetric for BatchStat {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let v = (self.read)(&STATS.snapshot());
        if self.counter {
            encoder.encode_counter::<NoLabelSet, _, u64>(&v, None)
        } else {
            encoder.encode_gauge(&v)
        }
    }

    fn metric_type(&self) -> MetricType {
        if self.counter {
            MetricType::Counter
        } else {
            MetricType::Gauge
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BatchLabels {
    outcome: &'static str,
}

/// The batched requests that ended, by outcome, read when scraped; every
/// outcome is exported from the start, at 0.
#[derive(Debug)]
struct BatchOutcomes;

impl EncodeMetric for BatchOutcomes {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let s = STATS.snapshot();
        for (outcome, n) in [
            ("succeeded", s.succeeded),
            ("errored", s.errored),
            ("expired", s.expired),
            ("canceled", s.canceled),
        ] {
            encoder
                .encode_family(&BatchLabels { outcome })?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Registers the process's batch counts, read from
/// [`candor_exec::batch::stats::STATS`] at each scrape.
fn register_batches(registry: &mut Registry) {
    let stat = |read: fn(&Snapshot) -> u64, counter: bool| BatchStat { read, counter };
    registry.register(
        BATCHES_IN_FLIGHT,
        "Provider batches this worker follows that have not ended",
        stat(|s| s.in_flight, false),
    );
    registry.register(
        BATCH_OLDEST_AGE,
        "Seconds since the oldest batch in flight was recorded",
        stat(|s| s.oldest_secs, false),
    );
    registry.register(
        BATCHES_SUBMITTED,
        "Provider batches this worker submitted",
        stat(|s| s.batches, true),
    );
    registry.register(
        BATCH_REQUESTS,
        "Batched requests whose batch ended, by outcome",
        BatchOutcomes,
    );
    registry.register(
        BATCH_REQUESTS_RESENT,
        "Batched requests sent again after they expired, errored or were canceled",
        stat(|s| s.retried, true),
    );
    registry.register(
        BATCH_CALLS_FOLLOWED,
        "Calls that followed a batch recorded before they asked instead of being submitted again",
        stat(|s| s.followed, true),
    );
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The last lease call reached the coordinator (for `/readyz`, not exported).
    pub connected: AtomicBool,
    jobs: Family<JobLabels, Counter>,
    leased: Counter,
    leases_lost: Counter,
    in_flight: Gauge,
    latency: Histogram,
    cost_usd: Usd,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let jobs = Family::<JobLabels, Counter>::default();
        // Every outcome is exported from the start, at 0, so that a rate or
        // a dashboard query over it is defined before the first such job.
        for outcome in JobOutcome::ALL {
            let _ = jobs.get_or_create(&JobLabels { outcome });
        }
        let (leased, leases_lost, in_flight) = (Counter::default(), Counter::default(), Gauge::default());
        let (latency, cost_usd) = (Histogram::new(BUCKETS), Usd::default());
        let mut registry = Registry::default();
        registry.register(
            JOBS,
            "Jobs this worker ran, by what the store made of them",
            jobs.clone(),
        );
        registry.register(JOBS_LEASED, "Jobs leased by this worker", leased.clone());
        registry.register(LEASES_LOST, "Leases lost while their jobs ran", leases_lost.clone());
        registry.register(IN_FLIGHT, "Jobs running on this worker", in_flight.clone());
        registry.register(JOB_LATENCY, "Wall time of a job", latency.clone());
        registry.register(COST, "US dollars of the results this worker recorded", cost_usd.clone());
        candor_exec::counted::register(&mut registry);
        register_batches(&mut registry);
        Metrics {
            registry,
            connected: AtomicBool::new(false),
            jobs,
            leased,
            leases_lost,
            in_flight,
            latency,
            cost_usd,
        }
    }

    /// Counts `n` jobs that ended in `outcome`.
    pub fn jobs(&self, outcome: JobOutcome, n: u64) {
        self.jobs.get_or_create(&JobLabels { outcome }).inc_by(n);
    }

    pub fn leased(&self, n: u64) {
        self.leased.inc_by(n);
    }

    pub fn lease_lost(&self) {
        self.leases_lost.inc();
    }

    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn observe_latency(&self, secs: f64) {
        self.latency.observe(secs);
    }

    /// Adds the cost of recorded results, in micro-USD as results carry it.
    pub fn add_cost(&self, micro_usd: u64) {
        self.cost_usd.0.fetch_add(micro_usd, Ordering::Relaxed);
    }

    /// The OpenMetrics text of every family, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).expect("writing to a String does not fail");
        s
    }
}

#[cfg(test)]
mod tests;

//! The coordinator's Prometheus metrics, declared once here and registered
//! in the coordinator's one [`Registry`]; `/metrics` serves its OpenMetrics
//! encoding. Sweep counters live in Redis and are read at scrape time, so
//! every coordinator reports the same totals and a restart loses nothing;
//! this process only counts its own RPCs.
//!
//! The constants are the names as registered: the encoder adds `_total` to
//! a counter's samples (`candor_jobs` is scraped as `candor_jobs_total`).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use candor_queue::SweepState;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub const JOBS: &str = "candor_jobs";
pub const JOBS_LEASED: &str = "candor_jobs_leased";
pub const LEASE_EXPIRIES: &str = "candor_lease_expiries";
pub const QUEUE_DEPTH: &str = "candor_queue_depth_jobs";
pub const IN_FLIGHT: &str = "candor_jobs_in_flight";
pub const SWEEP_JOBS: &str = "candor_sweep_jobs";
pub const SWEEP_COST: &str = "candor_sweep_cost_usd";
pub const RPCS: &str = "candor_coordinator_rpcs";
pub const LEASE_RPC_JOBS: &str = "candor_coordinator_jobs_leased";

/// What a sweep's jobs came to, as Redis counts them. Unlike a worker's
/// outcomes these nest: `completed` counts every job with a result,
/// `failed` those whose result is a failure, `dead_lettered` the failed
/// ones that used every attempt; `retried` counts attempts sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SweepOutcome {
    Completed,
    Failed,
    Retried,
    DeadLettered,
}

impl SweepOutcome {
    pub const ALL: [SweepOutcome; 4] = [
        SweepOutcome::Completed,
        SweepOutcome::Failed,
        SweepOutcome::Retried,
        SweepOutcome::DeadLettered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SweepOutcome::Completed => "completed",
            SweepOutcome::Failed => "failed",
            SweepOutcome::Retried => "retried",
            SweepOutcome::DeadLettered => "dead_lettered",
        }
    }

    fn of(self, x: &SweepState) -> u64 {
        match self {
            SweepOutcome::Completed => x.done,
            SweepOutcome::Failed => x.failed,
            SweepOutcome::Retried => x.retried,
            SweepOutcome::DeadLettered => x.dead,
        }
    }
}

impl EncodeLabelValue for SweepOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SweepLabels {
    sweep: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    sweep: String,
    name: String,
    outcome: SweepOutcome,
}

/// The per-sweep families, refilled from a snapshot of Redis at each scrape.
#[derive(Debug, Default)]
struct Sweeps {
    jobs: Family<OutcomeLabels, Counter>,
    leased: Family<SweepLabels, Counter>,
    lease_expiries: Family<SweepLabels, Counter>,
    queue_depth: Family<SweepLabels, Gauge>,
    in_flight: Family<SweepLabels, Gauge>,
    total: Family<SweepLabels, Gauge>,
    cost_usd: Family<SweepLabels, Gauge<f64, AtomicU64>>,
}

impl Sweeps {
    fn register(&self, r: &mut Registry) {
        r.register(JOBS, "Jobs of each sweep, by outcome", self.jobs.clone());
        r.register(JOBS_LEASED, "Leases handed out, per sweep", self.leased.clone());
        r.register(
            LEASE_EXPIRIES,
            "Leases that expired unrenewed, per sweep",
            self.lease_expiries.clone(),
        );
        r.register(
            QUEUE_DEPTH,
            "Jobs not yet finished and not in flight, per running sweep",
            self.queue_depth.clone(),
        );
        r.register(
            IN_FLIGHT,
            "Jobs under a lease that has not expired, per sweep",
            self.in_flight.clone(),
        );
        r.register(SWEEP_JOBS, "Jobs in the sweep", self.total.clone());
        r.register(
            SWEEP_COST,
            "US dollars spent on the sweep's recorded results",
            self.cost_usd.clone(),
        );
    }

    /// Replaces every series with those of `sweeps`, so a deleted sweep's go.
    fn fill(&self, sweeps: &[SweepState]) {
        self.jobs.clear();
        self.leased.clear();
        self.lease_expiries.clear();
        self.queue_depth.clear();
        self.in_flight.clear();
        self.total.clear();
        self.cost_usd.clear();
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for x in sweeps {
            let l = SweepLabels {
                sweep: x.id.clone(),
                name: x.name.clone(),
            };
            for outcome in SweepOutcome::ALL {
                let ol = OutcomeLabels {
                    sweep: l.sweep.clone(),
                    name: l.name.clone(),
                    outcome,
                };
                self.jobs.get_or_create(&ol).inc_by(outcome.of(x));
            }
            self.leased.get_or_create(&l).inc_by(x.leased);
            self.lease_expiries.get_or_create(&l).inc_by(x.lease_expiries);
            let depth = if x.state == "running" { waiting(x) } else { 0 };
            self.queue_depth.get_or_create(&l).set(gauge(depth));
            self.in_flight.get_or_create(&l).set(gauge(x.in_flight));
            self.total.get_or_create(&l).set(gauge(x.total));
            self.cost_usd.get_or_create(&l).set(x.spent_micro_usd as f64 / 1e6);
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpcs: Counter,
    leased_here: Counter,
    /// Held from refilling the per-sweep families until they are encoded, so
    /// that concurrent scrapes do not mix their snapshots.
    sweeps: Mutex<Sweeps>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let (rpcs, leased_here, sweeps) = (Counter::default(), Counter::default(), Sweeps::default());
        let mut registry = Registry::default();
        registry.register(RPCS, "RPCs served by this coordinator", rpcs.clone());
        registry.register(
            LEASE_RPC_JOBS,
            "Jobs leased through this coordinator",
            leased_here.clone(),
        );
        sweeps.register(&mut registry);
        Metrics {
            registry,
            rpcs,
            leased_here,
            sweeps: Mutex::new(sweeps),
        }
    }

    /// Counts one RPC served.
    pub fn rpc(&self) {
        self.rpcs.inc();
    }

    /// Counts jobs leased through this coordinator.
    pub fn leased(&self, n: u64) {
        self.leased_here.inc_by(n);
    }

    /// The OpenMetrics text, with per-sweep series from `sweeps`.
    pub fn render(&self, sweeps: &[SweepState]) -> String {
        let families = self.sweeps.lock().expect("lock");
        families.fill(sweeps);
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).expect("writing to a String does not fail");
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

#[cfg(test)]
mod tests;

//! candor's distributed sweep state, all of it in Redis. Every change is one
//! Lua script, so it is atomic however many coordinators and workers share
//! the Redis: a job is leased under a fencing token, its result is recorded
//! at most once (a bitmap of finished jobs), and a result from a lease that
//! has since been handed to someone else is refused. The state of a sweep
//! grows with the jobs in flight and the results, never with jobs not yet
//! started: those are just the numbers past the sweep's cursor.
//!
//! The key layout is documented at the top of `lua/common.lua`.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

/// The most jobs a distributed sweep may have (one bit each in Redis).
pub const MAX_JOBS: u64 = 1 << 32;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no sweep with id {0}")]
    NoSuchSweep(String),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
}

impl QueueError {
    /// True when the error is Redis being unreachable or restarting, which
    /// passes: the caller should try again.
    pub fn is_transient(&self) -> bool {
        match self {
            QueueError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || matches!(e.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading))
            }
            _ => false,
        }
    }
}

fn script(body: &str) -> Script {
    Script::new(&format!("{}\n{}", include_str!("lua/common.lua"), body))
}

struct Scripts {
    submit: Script,
    lease: Script,
    renew: Script,
    complete: Script,
    fail: Script,
    cancel: Script,
    resume: Script,
    delete: Script,
    limit: Script,
}

/// A handle on the sweep state. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct Queue {
    con: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
}

/// What a new sweep records besides its bundle.
#[derive(Debug, Clone)]
pub struct NewSweep {
    pub id: String,
    pub name: String,
    pub total: u64,
    pub max_attempts: u32,
    pub classifiers: u32,
    pub simulated: bool,
    /// The budget in micro-USD (`candor_core::budget::micro_usd`); 0: none.
    pub budget_micro_usd: u64,
    /// The job space's seeds, queries and conditions: jobs are leased seed
    /// by seed, and early stopping finds a job's cell.
    pub seeds: u64,
    pub queries: u64,
    pub conditions: u64,
    /// Early stopping (None: none): its decisions for the spec's target
    /// width and cells of queries × seeds, and the seeds every cell gets first.
    pub early_stopping: Option<candor_core::early::DecisionTable>,
    pub min_seeds: u32,
    /// Fail fast: held failures of a model without an answer before the sweep pauses (0: never).
    pub fail_fast: u32,
    /// Report cells per model (variants × conditions): a cell's model is `cell / cells_per_model`.
    pub cells_per_model: u64,
}

/// One job handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub sweep_id: String,
    pub index: u64,
    pub fence: u64,
    pub attempt: u32,
}

/// Names a job under a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobRef {
    pub sweep_id: String,
    pub index: u64,
    pub fence: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Ok,
    Incomplete,
    Failed,
}

impl From<candor_core::Status> for JobStatus {
    fn from(s: candor_core::Status) -> Self {
        match s {
            candor_core::Status::Ok => JobStatus::Ok,
            candor_core::Status::Incomplete => JobStatus::Incomplete,
            candor_core::Status::Failed => JobStatus::Failed,
        }
    }
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "ok",
            JobStatus::Incomplete => "incomplete",
            JobStatus::Failed => "failed",
        }
    }
}

/// A finished job to record.
#[derive(Debug, Clone)]
pub struct Completion {
    pub index: u64,
    /// The lease's fencing token; 0 records without a lease (dead-lettering).
    pub fence: u64,
    pub status: JobStatus,
    pub class_bits: u32,
    pub cell: u32,
    /// Set when the job is being dead-lettered, with why.
    pub dead: Option<String>,
    pub result: Vec<u8>,
    /// Model calls of the job answered from the response cache.
    pub cache_hits: u32,
    /// What the job cost, in micro-USD.
    pub cost_micro_usd: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// This result is the job's result.
    Recorded,
    /// The job already had a result; this one was dropped.
    Duplicate,
    /// The lease had been handed to someone else; this one was dropped.
    Stale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    Retryable,
    Permanent,
    Released,
    /// The provider refused an API key: release the job and pause the sweep.
    Paused,
}

/// A job that did not finish.
#[derive(Debug, Clone)]
pub struct Failure {
    pub index: u64,
    pub fence: u64,
    pub kind: FailKind,
    pub error: String,
    /// The lease's attempt; a retry waits `candor_core::retry::backoff(attempt)`.
    pub attempt: u32,
    pub cell: u32,
    /// The failed result to record if the job is failed or dead-lettered.
    pub result: Vec<u8>,
    /// The failure will not pass (no connection, 404, 400): a retryable or
    /// permanent failure of a model without an answer yet is held (fail fast).
    pub persistent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    Retried,
    DeadLettered,
    Failed,
    Released,
    Paused,
    /// Held back by fail fast: queued again without using up an attempt.
    Held,
    AlreadyDone,
    Stale,
}

/// A sweep's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepState {
    pub id: String,
    pub name: String,
    /// `running`, `paused`, `done`, `cancelled` or `budget_exhausted`.
    pub state: String,
    /// Why a paused sweep is paused.
    pub reason: String,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub incomplete: u64,
    pub dead: u64,
    pub retried: u64,
    pub lease_expiries: u64,
    pub leased: u64,
    pub cache_hits: u64,
    /// Micro-USD spent, and the budget (0: none).
    pub spent_micro_usd: u64,
    pub budget_micro_usd: u64,
    /// Jobs under a lease that has not expired (a dead worker's jobs stop
    /// counting when their leases expire, and are leased again while the
    /// sweep runs).
    pub in_flight: u64,
    pub retrying: u64,
    pub max_attempts: u32,
    pub simulated: bool,
    pub created_ms: u64,
    pub finished_ms: u64,
    /// The tally: "CELL:ok|incomplete|failed|yK" -> count.
    pub tally: HashMap<String, u64>,
    /// Jobs skipped by early stopping.
    pub skipped: u64,
    /// Early stopping: cell -> the first seed it skipped.
    pub cutoffs: HashMap<u64, u32>,
    /// Failed jobs by model and kind of error, with the first error of each.
    pub failures: Vec<FailureCount>,
}

/// Failed jobs of one model for one kind of reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureCount {
    pub model: String,
    /// An `ErrorKind` as text (`connect`, `http_404`, ...); empty when unknown.
    pub kind: String,
    pub jobs: u64,
    pub first_error: String,
}

/// The `failures` hash as counts, in order of model and kind.
fn failure_counts(h: &HashMap<String, String>) -> Vec<FailureCount> {
    let mut out: Vec<FailureCount> = h
        .iter()
        .filter_map(|(f, v)| {
            let (model, kind) = f.split_once('\t')?;
            if kind.contains('\t') {
                return None;
            }
            Some(FailureCount {
                model: model.to_string(),
                kind: kind.to_string(),
                jobs: v.parse().ok()?,
                first_error: h.get(&format!("{f}\tfirst")).cloned().unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.model, &a.kind).cmp(&(&b.model, &b.kind)));
    out
}

fn key(id: &str, name: &str) -> String {
    format!("candor:s:{id}:{name}")
}

impl Queue {
    /// Connects to Redis at `url` (`redis://` or `rediss://`, with a password
    /// if the server wants one). `ca` is a PEM certificate to trust for
    /// `rediss://` instead of the public web roots.
    pub async fn connect(url: &str, ca: Option<Vec<u8>>) -> Result<Queue, QueueError> {
        let client = match ca {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_response_timeout(Some(std::time::Duration::from_secs(10)))
            .set_number_of_retries(2);
        let con = ConnectionManager::new_with_config(client, config).await?;
        Ok(Queue {
            con,
            scripts: std::sync::Arc::new(Scripts {
                submit: script(include_str!("lua/submit.lua")),
                lease: script(include_str!("lua/lease.lua")),
                renew: script(include_str!("lua/renew.lua")),
                complete: script(include_str!("lua/complete.lua")),
                fail: script(include_str!("lua/fail.lua")),
                cancel: script(include_str!("lua/cancel.lua")),
                resume: script(include_str!("lua/resume.lua")),
                delete: script(include_str!("lua/delete.lua")),
                limit: script(include_str!("lua/limit.lua")),
            }),
        })
    }

    /// The connection, for other users of the same Redis (the response cache).
    pub fn connection(&self) -> ConnectionManager {
        self.con.clone()
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut con = self.con.clone();
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        Ok(())
    }

    /// Stores a new sweep; false if a sweep with this id exists already.
    pub async fn submit(&self, s: &NewSweep, bundle: &str) -> Result<bool, QueueError> {
        let mut con = self.con.clone();
        let mut inv = self.scripts.submit.prepare_invoke();
        let table = s.early_stopping.as_ref().map(|t| t.to_bytes()).unwrap_or_default();
        inv.arg(&s.id).arg(bundle).arg(table);
        inv.arg("name").arg(&s.name);
        inv.arg("total").arg(s.total);
        inv.arg("max_attempts").arg(s.max_attempts);
        inv.arg("classifiers").arg(s.classifiers);
        inv.arg("simulated").arg(u8::from(s.simulated));
        inv.arg("budget").arg(s.budget_micro_usd);
        inv.arg("seeds").arg(s.seeds);
        inv.arg("queries").arg(s.queries);
        inv.arg("conditions").arg(s.conditions);
        inv.arg("target_width")
            .arg(s.early_stopping.as_ref().map_or(0.0, |t| t.target()));
        inv.arg("min_seeds").arg(s.min_seeds);
        inv.arg("fail_fast").arg(s.fail_fast);
        inv.arg("cells_per_model").arg(s.cells_per_model);
        let created: i64 = inv.invoke_async(&mut con).await?;
        Ok(created == 1)
    }

    /// Leases up to `slots` jobs for `ttl_ms`.
    pub async fn lease(&self, slots: u32, ttl_ms: u64) -> Result<Vec<Lease>, QueueError> {
        let mut con = self.con.clone();
        let flat: Vec<String> = self.scripts.lease.arg(slots).arg(ttl_ms).invoke_async(&mut con).await?;
        let bad = || QueueError::Protocol("lease reply".into());
        flat.chunks(4)
            .map(|c| {
                let [id, idx, fence, attempt] = c else {
                    return Err(bad());
                };
                Ok(Lease {
                    sweep_id: id.clone(),
                    index: idx.parse().map_err(|_| bad())?,
                    fence: fence.parse().map_err(|_| bad())?,
                    attempt: attempt.parse().map_err(|_| bad())?,
                })
            })
            .collect()
    }

    /// Extends the leases still held; returns which were.
    pub async fn renew(&self, jobs: &[JobRef], ttl_ms: u64) -> Result<Vec<bool>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let mut inv = self.scripts.renew.prepare_invoke();
        inv.arg(ttl_ms);
        for j in jobs {
            inv.arg(&j.sweep_id).arg(j.index).arg(j.fence);
        }
        let r: Vec<i64> = inv.invoke_async(&mut con).await?;
        Ok(r.into_iter().map(|x| x == 1).collect())
    }

    /// Records finished jobs of one sweep.
    pub async fn complete(&self, sweep_id: &str, items: &[Completion]) -> Result<Vec<Recorded>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let mut inv = self.scripts.complete.prepare_invoke();
        inv.arg(sweep_id);
        for c in items {
            inv.arg(c.index)
                .arg(c.fence)
                .arg(c.status.as_str())
                .arg(c.class_bits)
                .arg(c.cell)
                .arg(u8::from(c.dead.is_some()))
                .arg(c.dead.as_deref().unwrap_or(""))
                .arg(&c.result[..])
                .arg(c.cache_hits)
                .arg(c.cost_micro_usd);
        }
        let r: Vec<i64> = inv.invoke_async(&mut con).await.map_err(|e| no_sweep(e, sweep_id))?;
        Ok(r.into_iter()
            .map(|x| match x {
                1 => Recorded::Recorded,
                2 => Recorded::Duplicate,
                _ => Recorded::Stale,
            })
            .collect())
    }

    /// Records jobs that did not finish.
    pub async fn fail(&self, sweep_id: &str, items: &[Failure]) -> Result<Vec<FailOutcome>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let mut inv = self.scripts.fail.prepare_invoke();
        inv.arg(sweep_id);
        for f in items {
            let kind = match f.kind {
                FailKind::Retryable => "retryable",
                FailKind::Permanent => "permanent",
                FailKind::Released => "released",
                FailKind::Paused => "paused",
            };
            let backoff = candor_core::retry::backoff(f.attempt.max(1), f.index).as_millis() as u64;
            inv.arg(f.index)
                .arg(f.fence)
                .arg(kind)
                .arg(&f.error)
                .arg(backoff)
                .arg(f.cell)
                .arg(&f.result[..])
                .arg(u8::from(f.persistent));
        }
        let r: Vec<String> = inv.invoke_async(&mut con).await.map_err(|e| no_sweep(e, sweep_id))?;
        r.into_iter()
            .map(|s| match s.as_str() {
                "retried" => Ok(FailOutcome::Retried),
                "dead" => Ok(FailOutcome::DeadLettered),
                "failed" => Ok(FailOutcome::Failed),
                "released" => Ok(FailOutcome::Released),
                "paused" => Ok(FailOutcome::Paused),
                "held" => Ok(FailOutcome::Held),
                "done" => Ok(FailOutcome::AlreadyDone),
                "stale" => Ok(FailOutcome::Stale),
                other => Err(QueueError::Protocol(format!("fail outcome {other}"))),
            })
            .collect()
    }

    /// Stops a sweep; returns its state after, or None if there is no such sweep.
    pub async fn cancel(&self, id: &str) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(self.scripts.cancel.arg(id).invoke_async(&mut con).await?)
    }

    /// Leases a paused sweep's jobs again; returns its state after, or None.
    pub async fn resume(&self, id: &str) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(self.scripts.resume.arg(id).invoke_async(&mut con).await?)
    }

    /// Deletes an ended sweep and everything stored for it. Returns the
    /// state it had — `running` or `paused` mean it was left alone — or None
    /// if there is no such sweep.
    pub async fn delete(&self, id: &str) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(self.scripts.delete.arg(id).invoke_async(&mut con).await?)
    }

    /// Sweep ids, oldest first.
    pub async fn list(&self) -> Result<Vec<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(con.zrange("candor:sweeps", 0, -1).await?)
    }

    pub async fn bundle(&self, id: &str) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(con.get(key(id, "bundle")).await?)
    }

    pub async fn state(&self, id: &str) -> Result<Option<SweepState>, QueueError> {
        let mut con = self.con.clone();
        // Redis's clock, the one lease deadlines are set by.
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await?;
        let now_ms = secs * 1000 + micros / 1000;
        #[allow(clippy::type_complexity)]
        let (meta, tally, in_flight, retrying, cutoffs, failures): (
            HashMap<String, String>,
            HashMap<String, u64>,
            u64,
            u64,
            HashMap<u64, u32>,
            HashMap<String, String>,
        ) = redis::pipe()
            .hgetall(key(id, "meta"))
            .hgetall(key(id, "tally"))
            .zcount(key(id, "leases"), format!("({now_ms}"), "+inf")
            .zcard(key(id, "retry"))
            .hgetall(key(id, "cutoff"))
            .hgetall(key(id, "failures"))
            .query_async(&mut con)
            .await?;
        if meta.is_empty() {
            return Ok(None);
        }
        let n = |f: &str| meta.get(f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(Some(SweepState {
            id: id.to_string(),
            name: meta.get("name").cloned().unwrap_or_default(),
            state: meta.get("state").cloned().unwrap_or_default(),
            reason: meta.get("reason").cloned().unwrap_or_default(),
            total: n("total"),
            done: n("done"),
            failed: n("failed"),
            incomplete: n("incomplete"),
            dead: n("dead"),
            retried: n("retried"),
            lease_expiries: n("lease_expiries"),
            leased: n("leased"),
            cache_hits: n("cache_hits"),
            spent_micro_usd: n("spent"),
            budget_micro_usd: n("budget"),
            in_flight,
            retrying,
            max_attempts: n("max_attempts") as u32,
            simulated: n("simulated") == 1,
            created_ms: n("created_ms"),
            finished_ms: n("finished_ms"),
            tally,
            skipped: n("skipped"),
            cutoffs,
            failures: failure_counts(&failures),
        }))
    }

    /// Jobs to dead-letter because their leases kept expiring: (sweep, index, why).
    pub async fn dying(&self) -> Result<Vec<(String, u64, String)>, QueueError> {
        let mut con = self.con.clone();
        let ids: Vec<String> = con.smembers("candor:dying").await?;
        let mut out = Vec::new();
        for id in ids {
            let jobs: HashMap<u64, String> = con.hgetall(key(&id, "dying")).await?;
            if jobs.is_empty() {
                let _: () = con.srem("candor:dying", &id).await?;
            }
            out.extend(jobs.into_iter().map(|(i, why)| (id.clone(), i, why)));
        }
        Ok(out)
    }

    /// One page of a sweep's results: (next cursor, (index, result) pairs);
    /// cursor 0 ends. A result may appear on two pages.
    pub async fn results_page(
        &self,
        id: &str,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<(u64, Vec<u8>)>), QueueError> {
        let mut con = self.con.clone();
        let (next, flat): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
            .arg(key(id, "results"))
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut con)
            .await?;
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let idx = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| QueueError::Protocol("result field is not a job index".into()))?;
            out.push((idx, v));
        }
        Ok((next, out))
    }

    /// One step of the fleet-wide rate limiter for `key` (see `lua/limit.lua`):
    /// `op` is take, settle or cool; `limits` are per minute (0: none).
    /// Returns the milliseconds to wait (take), else 0.
    pub async fn limit(&self, key: &str, op: &str, limits: [u64; 3], args: [f64; 3]) -> Result<u64, QueueError> {
        let mut con = self.con.clone();
        let mut inv = self.scripts.limit.prepare_invoke();
        inv.arg(key).arg(op).arg(limits[0]).arg(limits[1]).arg(limits[2]);
        for a in args {
            inv.arg(a);
        }
        Ok(inv.invoke_async(&mut con).await?)
    }

    /// Dead-lettered jobs of a sweep: index -> why.
    pub async fn dead_letters(&self, id: &str) -> Result<HashMap<u64, String>, QueueError> {
        let mut con = self.con.clone();
        Ok(con.hgetall(key(id, "dead")).await?)
    }
}

fn no_sweep(e: redis::RedisError, id: &str) -> QueueError {
    if e.code() == Some("NOSWEEP") {
        QueueError::NoSuchSweep(id.to_string())
    } else {
        QueueError::Redis(e)
    }
}

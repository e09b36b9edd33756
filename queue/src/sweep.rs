//! The state changes, one Lua script each: a sweep submitted, its jobs
//! leased, renewed, completed or failed (retried, dead-lettered, released,
//! paused, held), the sweep cancelled, resumed or deleted; and what the
//! calls take and answer.

use crate::{Queue, QueueError};

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
    /// What the budget counts each job in flight at, at least, in micro-USD
    /// (`Sweep::reserved_micro_usd`: a batched sweep's bound of a job's
    /// cost); 0: none, the first job goes alone.
    pub reserve_micro_usd: u64,
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
    /// How long after it ends the sweep is kept (0: until deleted); None:
    /// the coordinator's setting.
    pub retention_ms: Option<u64>,
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

/// How a job ended, as the scripts tally it (by [`candor_core::Status::name`]).
pub type JobStatus = candor_core::Status;

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
    /// The same result, when the caller has it (else `result` is parsed).
    pub parsed: Option<std::sync::Arc<candor_core::JobResult>>,
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
    /// The same result, when the caller has it (else `result` is parsed).
    pub parsed: Option<std::sync::Arc<candor_core::JobResult>>,
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

impl Queue {
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
        inv.arg("reserve").arg(s.reserve_micro_usd);
        inv.arg("seeds").arg(s.seeds);
        inv.arg("queries").arg(s.queries);
        inv.arg("conditions").arg(s.conditions);
        inv.arg("target_width")
            .arg(s.early_stopping.as_ref().map_or(0.0, |t| t.target()));
        inv.arg("min_seeds").arg(s.min_seeds);
        inv.arg("fail_fast").arg(s.fail_fast);
        if let Some(ms) = s.retention_ms {
            inv.arg("retention_ms").arg(ms);
        }
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

    /// Records finished jobs of one sweep, whose results archive part
    /// `part` holds (see [`Queue::record`], which writes it first).
    pub async fn complete(
        &self,
        sweep_id: &str,
        part: &str,
        items: &[Completion],
    ) -> Result<Vec<Recorded>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let mut inv = self.scripts.complete.prepare_invoke();
        inv.arg(sweep_id).arg(part);
        for c in items {
            // The script reads a result only to count a failure by its kind.
            let result = if c.status == JobStatus::Failed {
                &c.result[..]
            } else {
                &[]
            };
            inv.arg(c.index)
                .arg(c.fence)
                .arg(c.status.name())
                .arg(c.class_bits)
                .arg(c.cell)
                .arg(u8::from(c.dead.is_some()))
                .arg(c.dead.as_deref().unwrap_or(""))
                .arg(result)
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

    /// Records jobs that did not finish; the failed results among them are
    /// in archive part `part`.
    pub async fn fail(&self, sweep_id: &str, part: &str, items: &[Failure]) -> Result<Vec<FailOutcome>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let mut inv = self.scripts.fail.prepare_invoke();
        inv.arg(sweep_id).arg(part);
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
}

fn no_sweep(e: redis::RedisError, id: &str) -> QueueError {
    if e.code() == Some("NOSWEEP") {
        QueueError::NoSuchSweep(id.to_string())
    } else {
        QueueError::Redis(e)
    }
}

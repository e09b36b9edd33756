//! The readers: sweep ids, a sweep's bundle and state (its counters,
//! tally, early-stopping cutoffs and failure counts), the jobs to
//! dead-letter, results page by page, and dead letters. They change
//! nothing, except that `dying` drops a sweep it finds with none left.

use std::collections::HashMap;

use redis::AsyncCommands;

use crate::{Queue, QueueError};

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
    /// Jobs whose final reply was cut at the token limit.
    pub truncated: u64,
    /// Jobs the provider's safety system stopped.
    pub filtered: u64,
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
    /// The spec's `retention_days` in milliseconds (0: keep), when it set one.
    pub retention_ms: Option<u64>,
    /// The tally: "CELL:ok|incomplete|failed|truncated|filtered|yK" -> count.
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
            truncated: n("truncated"),
            filtered: n("filtered"),
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
            retention_ms: meta.get("retention_ms").and_then(|v| v.parse().ok()),
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

    /// The archive parts that hold a sweep's results: number -> name.
    pub async fn part_names(&self, id: &str) -> Result<HashMap<u32, String>, QueueError> {
        let mut con = self.con.clone();
        Ok(con.hgetall(key(id, "parts")).await?)
    }

    /// Calls `f` with each chunk of a per-job string (`width` bytes a job),
    /// and the index of the chunk's first job, for the first `total` jobs.
    async fn per_job(
        &self,
        id: &str,
        name: &str,
        width: u64,
        total: u64,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), QueueError> {
        const JOBS: u64 = 1 << 16;
        let mut con = self.con.clone();
        let mut first = 0;
        while first < total {
            let end = (first + JOBS).min(total);
            let bytes: Vec<u8> = redis::cmd("GETRANGE")
                .arg(key(id, name))
                .arg(first * width)
                .arg(end * width - 1)
                .query_async(&mut con)
                .await?;
            if bytes.is_empty() {
                break;
            }
            f(first, &bytes);
            first = end;
        }
        Ok(())
    }

    /// For each job, the number of the archive part holding its result
    /// (0: none yet).
    pub async fn part_refs(&self, id: &str, total: u64) -> Result<Vec<u32>, QueueError> {
        let mut refs = vec![0u32; total as usize];
        self.per_job(id, "partof", 4, total, |first, bytes| {
            for (j, b) in bytes.chunks_exact(4).enumerate() {
                refs[first as usize + j] = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            }
        })
        .await?;
        Ok(refs)
    }

    /// Calls `f` with each recorded job's index, status and classifier bits.
    pub async fn outcomes(
        &self,
        id: &str,
        total: u64,
        mut f: impl FnMut(u64, candor_core::Status, u32),
    ) -> Result<(), QueueError> {
        self.per_job(id, "outcome", 5, total, |first, bytes| {
            for (j, b) in bytes.chunks_exact(5).enumerate() {
                let status = b[0].checked_sub(1).and_then(candor_core::Status::from_code);
                if let Some(status) = status {
                    f(first + j as u64, status, u32::from_be_bytes([b[1], b[2], b[3], b[4]]));
                }
            }
        })
        .await
    }

    /// Condemns the parts among `names` that hold no recorded result: no
    /// result can be recorded from them afterwards. Returns them, for the
    /// caller to remove.
    pub async fn condemn(&self, id: &str, names: &[String]) -> Result<Vec<String>, QueueError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let mut inv = self.scripts.condemn.prepare_invoke();
        inv.arg(id);
        for n in names {
            inv.arg(n);
        }
        Ok(inv.invoke_async(&mut con).await?)
    }

    /// Dead-lettered jobs of a sweep: index -> why.
    pub async fn dead_letters(&self, id: &str) -> Result<HashMap<u64, String>, QueueError> {
        let mut con = self.con.clone();
        Ok(con.hgetall(key(id, "dead")).await?)
    }
}

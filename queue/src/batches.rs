//! The journal of batches of a distributed sweep (candor-exec's
//! `batch::journal`): each provider batch is recorded with its custom_ids
//! before it is submitted and with the provider's id once it is created, so
//! that when a worker dies the calls it had batched follow that batch
//! (whichever worker runs them again) instead of being submitted twice.
//!
//! A record is candor-exec's `Recorded` as JSON; this crate stores and
//! answers it as text, and the scripts that must be atomic (taking
//! custom_ids, marking, abandoning) edit it in Redis. The keys are
//! `candor:s:ID:batches` and `candor:s:ID:batchof` (see `lua/common.lua`);
//! deleting the sweep deletes them.

use crate::{Queue, QueueError};

/// Records read per step when every batch is listed (`HSCAN`'s count), so
/// that a sweep with many batches does not hold Redis up.
const SCAN_COUNT: usize = 100;

fn batches_key(sweep_id: &str) -> String {
    format!("candor:s:{sweep_id}:batches")
}

fn batchof_key(sweep_id: &str) -> String {
    format!("candor:s:{sweep_id}:batchof")
}

impl Queue {
    /// Records batch `key` of model entry `model`, created at `created_ms`,
    /// with the custom_ids `ids`, before it is submitted (`lua/batch_intend.lua`).
    /// Each custom_id another recorded batch already holds is left out and
    /// answered, with that batch's key; the batch holds the others.
    pub async fn batch_intend(
        &self,
        sweep_id: &str,
        key: &str,
        model: &str,
        created_ms: u64,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, QueueError> {
        let mut con = self.con.clone();
        let mut inv = self.scripts.batch_intend.prepare_invoke();
        inv.arg(sweep_id).arg(key).arg(model).arg(created_ms);
        for id in ids {
            inv.arg(id);
        }
        let flat: Vec<String> = inv.invoke_async(&mut con).await.map_err(|e| {
            if e.code() == Some("NOSWEEP") {
                QueueError::NoSuchSweep(sweep_id.to_string())
            } else {
                QueueError::Redis(e)
            }
        })?;
        if !flat.len().is_multiple_of(2) {
            return Err(QueueError::Protocol("batch_intend reply".into()));
        }
        Ok(flat.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
    }

    /// Batch `key` was created at the provider under `provider_id`; false
    /// if it is not recorded (abandoned, or its sweep deleted).
    pub async fn batch_submitted(&self, sweep_id: &str, key: &str, provider_id: &str) -> Result<bool, QueueError> {
        self.batch_mark(sweep_id, key, "submitted", Some(provider_id)).await
    }

    /// Batch `key` has ended and its results were read; false if it is not recorded.
    pub async fn batch_ended(&self, sweep_id: &str, key: &str) -> Result<bool, QueueError> {
        self.batch_mark(sweep_id, key, "ended", None).await
    }

    async fn batch_mark(&self, sweep_id: &str, key: &str, what: &str, arg: Option<&str>) -> Result<bool, QueueError> {
        let mut con = self.con.clone();
        let mut inv = self.scripts.batch_mark.prepare_invoke();
        inv.arg(sweep_id).arg(key).arg(what);
        if let Some(a) = arg {
            inv.arg(a);
        }
        let marked: i64 = inv.invoke_async(&mut con).await?;
        Ok(marked == 1)
    }

    /// Forgets batch `key`, which was never created, and frees its
    /// custom_ids (`lua/batch_abandon.lua`). Does nothing and answers false
    /// once it has a provider id, or when it is not recorded.
    pub async fn batch_abandon(&self, sweep_id: &str, key: &str) -> Result<bool, QueueError> {
        let mut con = self.con.clone();
        let gone: i64 = self
            .scripts
            .batch_abandon
            .arg(sweep_id)
            .arg(key)
            .invoke_async(&mut con)
            .await?;
        Ok(gone == 1)
    }

    /// The record of batch `key` (JSON), if it is recorded.
    pub async fn batch(&self, sweep_id: &str, key: &str) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(redis::cmd("HGET")
            .arg(batches_key(sweep_id))
            .arg(key)
            .query_async(&mut con)
            .await?)
    }

    /// The key of the recorded batch holding custom_id `id`.
    pub async fn batch_holder(&self, sweep_id: &str, id: &str) -> Result<Option<String>, QueueError> {
        let mut con = self.con.clone();
        Ok(redis::cmd("HGET")
            .arg(batchof_key(sweep_id))
            .arg(id)
            .query_async(&mut con)
            .await?)
    }

    /// The records of every batch of the sweep (JSON), in no order.
    pub async fn batches(&self, sweep_id: &str) -> Result<Vec<String>, QueueError> {
        let mut con = self.con.clone();
        let key = batches_key(sweep_id);
        // HSCAN may answer a field twice (while the hash is resized): by key.
        let mut out = std::collections::HashMap::new();
        let mut cursor = 0u64;
        loop {
            let (next, flat): (u64, Vec<String>) = redis::cmd("HSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut con)
                .await?;
            let mut flat = flat.into_iter();
            while let (Some(k), Some(record)) = (flat.next(), flat.next()) {
                out.insert(k, record);
            }
            if next == 0 {
                return Ok(out.into_values().collect());
            }
            cursor = next;
        }
    }
}

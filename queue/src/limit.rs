//! The fleet's rate-limit budgets, shared by every worker on the Redis.

use crate::{Queue, QueueError};

impl Queue {
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
}

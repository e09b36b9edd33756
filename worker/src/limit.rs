//! The fleet's rate-limit budgets: [`Limiter`] over the `limit` script of
//! candor-queue, so every worker takes from one budget per model and key.

use std::time::Duration;

use candor_exec::backend::BoxFuture;
use candor_exec::limit::{LimitError, Limiter};
use candor_queue::Queue;

/// Budgets in Redis, shared by every worker.
pub struct RedisLimiter(pub Queue);

impl Limiter for RedisLimiter {
    fn take<'a>(&'a self, key: &'a str, limits: [u64; 3], cost: [f64; 3]) -> BoxFuture<'a, Result<u64, LimitError>> {
        Box::pin(async move { self.0.limit(key, "take", limits, cost).await.map_err(LimitError::new) })
    }
    fn settle<'a>(&'a self, key: &'a str, limits: [u64; 3], delta: [f64; 3]) -> BoxFuture<'a, Result<(), LimitError>> {
        Box::pin(async move {
            self.0
                .limit(key, "settle", limits, delta)
                .await
                .map(drop)
                .map_err(LimitError::new)
        })
    }
    fn cool<'a>(&'a self, key: &'a str, d: Duration) -> BoxFuture<'a, Result<(), LimitError>> {
        let ms = d.as_millis() as f64;
        Box::pin(async move {
            self.0
                .limit(key, "cool", [0; 3], [ms, 0.0, 0.0])
                .await
                .map(drop)
                .map_err(LimitError::new)
        })
    }
}

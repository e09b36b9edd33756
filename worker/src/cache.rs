//! The response cache in Redis, shared by every worker.

use candor_exec::backend::BoxFuture;
use candor_exec::cache::{Cache, CacheError, Key};
use redis::AsyncCommands;

/// The cache in Redis, shared by every worker: one key per request,
/// `candor:cache:<key>`, that expires `ttl` after it was written, so the
/// cache stays bounded by what a fleet asks within that time.
pub struct RedisCache {
    pub con: redis::aio::ConnectionManager,
    pub ttl: std::time::Duration,
}

/// The prefix of the cache's keys in Redis.
pub const REDIS_PREFIX: &str = "candor:cache:";

fn redis_key(key: &Key) -> String {
    format!("{REDIS_PREFIX}{}", candor_core::hash::hex(key))
}

impl Cache for RedisCache {
    fn get<'a>(&'a self, key: Key) -> BoxFuture<'a, Result<Option<Vec<u8>>, CacheError>> {
        Box::pin(async move {
            let mut con = self.con.clone();
            con.get(redis_key(&key)).await.map_err(CacheError::new)
        })
    }
    fn put<'a>(&'a self, key: Key, value: Vec<u8>) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let mut con = self.con.clone();
            con.set_ex::<_, _, ()>(redis_key(&key), value, self.ttl.as_secs().max(1))
                .await
                .map_err(CacheError::new)
        })
    }
}

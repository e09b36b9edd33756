//! What the queue's tests share: a real `redis-server` on a free loopback
//! port (candor-testkit's), with its files in a temp dir.

use candor_queue::Queue;

pub struct RedisServer {
    redis: candor_testkit::Redis,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let redis = candor_testkit::Redis::start(dir.path(), false);
        RedisServer { redis, _dir: dir }
    }

    /// A connection that has answered a PING.
    pub async fn queue(&self) -> Queue {
        let url = self.redis.url();
        let q = Queue::connect(&url, None).await.expect("connect to redis-server");
        q.ping()
            .await
            .unwrap_or_else(|e| panic!("redis-server at {url} did not answer: {e}"));
        q
    }
}

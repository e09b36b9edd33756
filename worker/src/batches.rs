//! The journal of batches in Redis, shared by every worker with Redis.

use candor_exec::backend::BoxFuture;
use candor_exec::batch::journal::{Journal, JournalError, Recorded};
use candor_queue::{Queue, QueueError};

/// A sweep's journal of batches in Redis (candor-queue's `batches`): a batch
/// a worker recorded before it died is followed by whichever worker runs
/// its calls again, instead of being submitted twice. Each step is one
/// Redis call or script; taking custom_ids is atomic, so two workers never
/// both submit one.
pub struct RedisJournal {
    queue: Queue,
    sweep_id: String,
}

impl RedisJournal {
    pub fn new(queue: Queue, sweep_id: &str) -> RedisJournal {
        RedisJournal {
            queue,
            sweep_id: sweep_id.to_string(),
        }
    }
}

fn redis_error(e: QueueError) -> JournalError {
    JournalError::new(e)
}

fn parse(json: &str) -> Result<Recorded, JournalError> {
    serde_json::from_str(json).map_err(|e| JournalError::new(format!("a batch recorded in redis: {e}: {json}")))
}

impl Journal for RedisJournal {
    fn intend<'a>(&'a self, batch: &'a Recorded) -> BoxFuture<'a, Result<Vec<(String, String)>, JournalError>> {
        Box::pin(async move {
            self.queue
                .batch_intend(&self.sweep_id, &batch.key, &batch.model, batch.created_ms, &batch.ids)
                .await
                .map_err(redis_error)
        })
    }

    fn submitted<'a>(&'a self, key: &'a str, provider_id: &'a str) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.queue
                .batch_submitted(&self.sweep_id, key, provider_id)
                .await
                .map(drop)
                .map_err(redis_error)
        })
    }

    fn ended<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.queue
                .batch_ended(&self.sweep_id, key)
                .await
                .map(drop)
                .map_err(redis_error)
        })
    }

    fn abandon<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, JournalError>> {
        Box::pin(async move { self.queue.batch_abandon(&self.sweep_id, key).await.map_err(redis_error) })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Recorded>, JournalError>> {
        Box::pin(async move {
            match self.queue.batch(&self.sweep_id, key).await.map_err(redis_error)? {
                Some(json) => parse(&json).map(Some),
                None => Ok(None),
            }
        })
    }

    fn holder<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, JournalError>> {
        Box::pin(async move { self.queue.batch_holder(&self.sweep_id, id).await.map_err(redis_error) })
    }

    fn batches(&self) -> BoxFuture<'_, Result<Vec<Recorded>, JournalError>> {
        Box::pin(async move {
            let mut v = Vec::new();
            for json in self.queue.batches(&self.sweep_id).await.map_err(redis_error)? {
                v.push(parse(&json)?);
            }
            v.sort_by(|a, b| (a.created_ms, &a.key).cmp(&(b.created_ms, &b.key)));
            Ok(v)
        })
    }
}

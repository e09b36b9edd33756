//! A sweep's journal of batches in a real `redis-server`: a custom_id is
//! taken by one batch only, however many workers record batches at once;
//! abandoning frees a batch's custom_ids only while it has no provider id;
//! the records are candor-exec's `Recorded` JSON; deleting the sweep
//! deletes them. (Its parity with the local journal, through the worker's
//! `RedisJournal`, is checked in tests/batch_distributed.rs.)

mod common;

use common::RedisServer;
use std::collections::{HashMap, HashSet};

use candor_queue::{NewSweep, Queue, QueueError};
use serde_json::Value;

async fn submit(q: &Queue, id: &str) {
    let s = NewSweep {
        id: id.to_string(),
        name: id.to_string(),
        total: 4,
        max_attempts: 3,
        classifiers: 1,
        simulated: true,
        budget_micro_usd: 0,
        reserve_micro_usd: 0,
        seeds: 1,
        queries: 2,
        conditions: 2,
        early_stopping: None,
        min_seeds: 1,
        fail_fast: 0,
        retention_ms: None,
        cells_per_model: 2,
    };
    assert!(q.submit(&s, "{}").await.unwrap());
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn record(q: &Queue, sweep: &str, key: &str) -> Option<Value> {
    q.batch(sweep, key)
        .await
        .unwrap()
        .map(|j| serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}: {j}")))
}

#[tokio::test]
async fn a_custom_id_held_by_a_batch_is_left_out_of_the_next_and_answered() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    submit(&q, "s1").await;
    let created = 1_765_000_123_456u64;
    let held = q
        .batch_intend("s1", "cbA", "claude", created, &ids(&["x", "y"]))
        .await
        .unwrap();
    assert!(held.is_empty());
    let held = q
        .batch_intend("s1", "cbB", "claude", created + 1, &ids(&["y", "z"]))
        .await
        .unwrap();
    assert_eq!(held, vec![("y".to_string(), "cbA".to_string())]);
    // Recording the same batch again (a reply lost on the way) answers the same.
    let again = q
        .batch_intend("s1", "cbA", "claude", created, &ids(&["x", "y"]))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let a = record(&q, "s1", "cbA").await.unwrap();
    assert_eq!(
        a,
        serde_json::json!({"key": "cbA", "model": "claude", "created_ms": created, "ids": ["x", "y"], "ended": false})
    );
    assert_eq!(record(&q, "s1", "cbB").await.unwrap()["ids"], serde_json::json!(["z"]));
    // A batch whose every custom_id is held is not recorded.
    let held = q
        .batch_intend("s1", "cbC", "claude", created, &ids(&["x", "z"]))
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(record(&q, "s1", "cbC").await, None);
    assert_eq!(q.batch_holder("s1", "z").await.unwrap().as_deref(), Some("cbB"));
    assert_eq!(q.batch_holder("s1", "w").await.unwrap(), None);
    let keys: HashSet<String> = q
        .batches("s1")
        .await
        .unwrap()
        .iter()
        .map(|j| {
            serde_json::from_str::<Value>(j).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(keys, HashSet::from(["cbA".to_string(), "cbB".to_string()]));
}

#[tokio::test]
async fn a_batch_is_abandoned_only_while_it_has_no_provider_id() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    submit(&q, "s2").await;
    q.batch_intend("s2", "cbA", "gpt", 1, &ids(&["x", "y"])).await.unwrap();
    q.batch_intend("s2", "cbB", "gpt", 2, &ids(&["z"])).await.unwrap();
    assert!(q.batch_submitted("s2", "cbB", "batch_123").await.unwrap());
    assert!(!q.batch_abandon("s2", "cbB").await.unwrap(), "a created batch stays");
    assert!(q.batch_ended("s2", "cbB").await.unwrap());
    let b = record(&q, "s2", "cbB").await.unwrap();
    assert_eq!(
        (b["provider_id"].as_str(), b["ended"].as_bool()),
        (Some("batch_123"), Some(true))
    );
    assert_eq!(b["created_ms"], 2);

    assert!(q.batch_abandon("s2", "cbA").await.unwrap());
    assert_eq!(record(&q, "s2", "cbA").await, None);
    assert_eq!(
        q.batch_holder("s2", "x").await.unwrap(),
        None,
        "its custom_ids are free"
    );
    // Freed, they go to the next batch; abandoning the first again, or
    // marking it, touches nothing of the next one's.
    assert!(
        q.batch_intend("s2", "cbC", "gpt", 3, &ids(&["x"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!q.batch_abandon("s2", "cbA").await.unwrap());
    assert!(!q.batch_submitted("s2", "cbA", "late").await.unwrap());
    assert_eq!(
        record(&q, "s2", "cbA").await,
        None,
        "an abandoned batch is not recorded again"
    );
    assert_eq!(q.batch_holder("s2", "x").await.unwrap().as_deref(), Some("cbC"));
}

#[tokio::test]
async fn workers_recording_at_once_never_give_a_custom_id_to_two_batches() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    submit(&q, "s3").await;
    // 8 batches of 30 custom_ids out of 60, recorded at once.
    let tasks: Vec<_> = (0..8)
        .map(|b| {
            let q = q.clone();
            let mine: Vec<String> = (0..30).map(|i| format!("id{}", (b * 7 + i * 2) % 60)).collect();
            tokio::spawn(async move {
                let key = format!("cb{b}");
                let held = q.batch_intend("s3", &key, "m", 5, &mine).await.unwrap();
                (key, mine, held)
            })
        })
        .collect();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut answered = Vec::new();
    for t in tasks {
        let (key, mine, held) = t.await.unwrap();
        let held_ids: HashSet<&String> = held.iter().map(|(id, _)| id).collect();
        for id in mine.iter().filter(|id| !held_ids.contains(id)) {
            assert!(owner.insert(id.clone(), key.clone()).is_none(), "{id} taken twice");
        }
        answered.extend(held);
    }
    for (id, by) in answered {
        assert_eq!(
            owner.get(&id),
            Some(&by),
            "{id} is answered with the batch that took it"
        );
    }
    for (id, key) in &owner {
        assert_eq!(q.batch_holder("s3", id).await.unwrap().as_ref(), Some(key));
        let r = record(&q, "s3", key).await.unwrap();
        assert!(r["ids"].as_array().unwrap().iter().any(|x| x == id.as_str()));
    }
}

#[tokio::test]
async fn deleting_a_sweep_deletes_its_journal_and_a_late_batch_is_refused() {
    let redis = RedisServer::start();
    let q = redis.queue().await;
    submit(&q, "s4").await;
    q.batch_intend("s4", "cbA", "m", 1, &ids(&["x"])).await.unwrap();
    q.cancel("s4").await.unwrap();
    assert_eq!(q.delete("s4").await.unwrap().as_deref(), Some("cancelled"));
    let keys = sweep_keys(&q, "s4").await;
    assert!(keys.is_empty(), "left behind: {keys:?}");
    // A worker still running one of its jobs records nothing for it.
    let late = q.batch_intend("s4", "cbB", "m", 2, &ids(&["y"])).await;
    assert!(
        matches!(late, Err(QueueError::NoSuchSweep(ref s)) if s == "s4"),
        "{late:?}"
    );
    assert!(!q.batch_submitted("s4", "cbA", "p").await.unwrap());
    let keys = sweep_keys(&q, "s4").await;
    assert!(keys.is_empty(), "left behind: {keys:?}");
}

/// Every Redis key of sweep `id`.
async fn sweep_keys(q: &Queue, id: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("candor:s:{id}:*"))
        .query_async(&mut q.connection())
        .await
        .unwrap()
}

//! The response cache: a layer around a backend that answers a request it
//! has seen before from storage instead of the model. The key is a hash of
//! the full request: backend, endpoint, model, system prompt, every message,
//! every sampling parameter, and the seed. Locally the cache is a file in the
//! store directory; distributed, keys in Redis shared by every worker, each
//! expiring after the worker's `--cache-ttl-days`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candor_core::{Reasoning, Usage};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::backend::{Backend, BackendError, BoxFuture, ChatReply, ChatRequest};

pub type Key = [u8; 16];

/// The largest cached reply.
const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// The cache could not be read or written (its file, or Redis for a
/// fleet). A miss, not a failure: the model is called instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CacheError(Box<dyn std::error::Error + Send + Sync>);

impl CacheError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CacheError(e.into())
    }
}

pub trait Cache: Send + Sync {
    fn get<'a>(&'a self, key: Key) -> BoxFuture<'a, Result<Option<Vec<u8>>, CacheError>>;
    fn put<'a>(&'a self, key: Key, value: Vec<u8>) -> BoxFuture<'a, Result<(), CacheError>>;
}

/// The cache key of a request.
pub fn key(req: &ChatRequest<'_>) -> Key {
    let m = req.model;
    let canonical = json!({
        "backend": m.backend.name(),
        "base_url": m.base_url,
        "model": m.model,
        "system": req.system,
        "messages": req.messages.iter().map(message_key).collect::<Vec<_>>(),
        "params": req.params,
        "seed": req.seed,
    });
    let d: [u8; 32] = Sha256::digest(canonical.to_string().as_bytes()).into();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// A message as the key hashes it: its role and text, and the reasoning
/// sent back with it when there is any (so that keys of requests without
/// reasoning are what they were before reasoning was kept).
fn message_key(m: &candor_core::Message) -> serde_json::Value {
    let mut v = json!({"role": m.role, "content": m.content});
    if let Some(r) = &m.reasoning {
        v["reasoning"] = json!(r);
    }
    v
}

fn encode(r: &ChatReply) -> Vec<u8> {
    json!({
        "text": r.text,
        "reasoning": r.reasoning,
        "usage": r.usage,
        "stop_reason": r.stop_reason,
    })
    .to_string()
    .into_bytes()
}

/// A cached reply; entries written before usage was an object keep their
/// token counts at the top level.
fn decode(b: &[u8]) -> Option<ChatReply> {
    let v: serde_json::Value = serde_json::from_slice(b).ok()?;
    let usage = match v.get("usage") {
        Some(u) => serde_json::from_value::<Usage>(u.clone()).ok()?,
        None => Usage::tokens(v.get("input_tokens")?.as_u64()?, v.get("output_tokens")?.as_u64()?),
    };
    Some(ChatReply {
        text: v.get("text")?.as_str()?.to_string(),
        reasoning: v
            .get("reasoning")
            .and_then(|r| serde_json::from_value::<Reasoning>(r.clone()).ok()),
        usage,
        stop_reason: v.get("stop_reason").and_then(|s| s.as_str()).map(String::from),
        cached: true,
        limits: [0; 3],
    })
}

/// The layer.
pub struct Cached {
    pub inner: Arc<dyn Backend>,
    pub cache: Arc<dyn Cache>,
}

impl Backend for Cached {
    fn complete<'a>(&'a self, req: ChatRequest<'a>) -> BoxFuture<'a, Result<ChatReply, BackendError>> {
        Box::pin(async move {
            let k = key(&req);
            match self.cache.get(k).await {
                Ok(Some(bytes)) => {
                    if let Some(r) = decode(&bytes) {
                        return Ok(r);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading the response cache failed; calling the model"),
            }
            let r = self.inner.complete(req).await?;
            if let Err(e) = self.cache.put(k, encode(&r)).await {
                tracing::warn!(error = %e, "writing the response cache failed");
            }
            Ok(r)
        })
    }
}

/// A cache file: frames of `len u32 | crc32 u32 | key (16 bytes) | reply`,
/// indexed in memory by key (24 bytes an entry). A frame cut short by a
/// crash is dropped when the file is next opened.
pub struct FileCache {
    file: Mutex<File>,
    index: Mutex<HashMap<Key, (u64, u32)>>,
}

impl FileCache {
    pub fn open(path: &Path) -> std::io::Result<FileCache> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let len = file.metadata()?.len();
        let mut index = HashMap::new();
        let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut pos = 0u64;
        let mut body = Vec::new();
        loop {
            let mut head = [0u8; 8];
            if r.read_exact(&mut head).is_err() {
                break;
            }
            let n = u32::from_le_bytes(head[..4].try_into().expect("4")) as usize;
            let crc = u32::from_le_bytes(head[4..].try_into().expect("4"));
            if !(16..=MAX_VALUE_BYTES + 16).contains(&n) {
                break;
            }
            body.resize(n, 0);
            if r.read_exact(&mut body).is_err() || crc32fast::hash(&body) != crc {
                break;
            }
            let mut k = [0u8; 16];
            k.copy_from_slice(&body[..16]);
            index.insert(k, (pos, (n - 16) as u32));
            pos += 8 + n as u64;
        }
        if pos < len {
            file.set_len(pos)?;
        }
        file.flush()?;
        Ok(FileCache {
            file: Mutex::new(file),
            index: Mutex::new(index),
        })
    }
}

impl Cache for FileCache {
    fn get<'a>(&'a self, key: Key) -> BoxFuture<'a, Result<Option<Vec<u8>>, CacheError>> {
        let found = self.index.lock().expect("lock").get(&key).copied();
        // The whole frame is read and checked: another process appending to
        // the same file can only make a lookup miss, never answer wrongly.
        let r = found
            .map(|(off, n)| {
                let mut frame = vec![0u8; 24 + n as usize];
                self.file
                    .lock()
                    .expect("lock")
                    .read_exact_at(&mut frame, off)
                    .map_err(CacheError::new)?;
                let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4"));
                let ok = frame[8..24] == key && crc32fast::hash(&frame[8..]) == crc;
                Ok(ok.then(|| frame.split_off(24)))
            })
            .transpose()
            .map(Option::flatten);
        Box::pin(async move { r })
    }

    fn put<'a>(&'a self, key: Key, value: Vec<u8>) -> BoxFuture<'a, Result<(), CacheError>> {
        let r = (|| {
            if value.len() > MAX_VALUE_BYTES {
                return Ok(());
            }
            let mut frame = Vec::with_capacity(24 + value.len());
            frame.extend_from_slice(&((16 + value.len()) as u32).to_le_bytes());
            frame.extend_from_slice(&[0; 4]);
            frame.extend_from_slice(&key);
            frame.extend_from_slice(&value);
            let crc = crc32fast::hash(&frame[8..]);
            frame[4..8].copy_from_slice(&crc.to_le_bytes());
            let mut f = self.file.lock().expect("lock");
            let at = f.metadata()?.len();
            f.write_all(&frame)?;
            self.index.lock().expect("lock").insert(key, (at, value.len() as u32));
            Ok::<(), std::io::Error>(())
        })()
        .map_err(CacheError::new);
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn keys_of_requests_without_reasoning_are_the_keys_caches_already_hold() {
        let m = candor_core::spec::ModelEntry::simulated("m", "sim-x", None);
        let mut msgs = vec![candor_core::Message::user("hi"), candor_core::Message::assistant("yo")];
        msgs[1].stop_reason = Some("end_turn".into());
        let req = ChatRequest {
            model: &m,
            system: "sys",
            messages: &msgs,
            params: &m.params,
            job_id: candor_core::JobId([0; 16]),
            seed: 5,
            turn: 2,
            attempt: 1,
            condition: "a",
            judge: None,
        };
        // The canonical request as keys were hashed before turns kept their
        // stop reason and reasoning.
        let before = json!({
            "backend": "sim", "base_url": null, "model": "sim-x", "system": "sys",
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "params": {}, "seed": 5,
        });
        let d: [u8; 32] = Sha256::digest(before.to_string().as_bytes()).into();
        assert_eq!(key(&req)[..], d[..16]);
        let mut with = msgs.clone();
        with[1].reasoning = Some(candor_core::Reasoning::default());
        let req = ChatRequest { messages: &with, ..req };
        assert_ne!(key(&req)[..], d[..16], "reasoning sent back is part of the request");
    }

    #[test]
    fn the_file_cache_survives_reopening_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("responses.log");
        {
            let c = FileCache::open(&path).unwrap();
            block(c.put([1; 16], b"one".to_vec())).unwrap();
            block(c.put([2; 16], b"two".to_vec())).unwrap();
            assert_eq!(block(c.get([1; 16])).unwrap(), Some(b"one".to_vec()));
            assert_eq!(block(c.get([3; 16])).unwrap(), None);
        }
        // A crash in the middle of the last write.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let c = FileCache::open(&path).unwrap();
        assert_eq!(block(c.get([1; 16])).unwrap(), Some(b"one".to_vec()));
        assert_eq!(block(c.get([2; 16])).unwrap(), None, "the torn entry is gone");
        block(c.put([2; 16], b"again".to_vec())).unwrap();
        assert_eq!(block(c.get([2; 16])).unwrap(), Some(b"again".to_vec()));
    }

    #[test]
    fn another_writer_in_between_makes_a_miss_not_a_wrong_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("responses.log");
        let a = FileCache::open(&path).unwrap();
        let b = FileCache::open(&path).unwrap();
        block(a.put([1; 16], b"from a".to_vec())).unwrap();
        block(b.put([2; 16], b"from b".to_vec())).unwrap();
        assert_eq!(block(a.get([1; 16])).unwrap(), Some(b"from a".to_vec()));
        assert_eq!(block(b.get([2; 16])).unwrap(), Some(b"from b".to_vec()));
        assert_eq!(block(a.get([2; 16])).unwrap(), None, "a has not indexed b's entry");
        // An index entry that points at someone else's frame (as a race
        // between two appending processes could leave) is a miss.
        b.index.lock().unwrap().insert([9; 16], (0, 6));
        assert_eq!(block(b.get([9; 16])).unwrap(), None);
    }
}

//! The journal of batches: what a process must write down before a batch
//! can be lost. A batch is recorded with the custom_ids it will hold before
//! it is submitted, and its provider id as soon as it is created; so after a
//! crash a call whose custom_id a recorded batch holds waits for that batch
//! instead of being sent again. Locally the journal is a file in the store
//! ([`FileJournal`]); on a cluster it is in Redis (`candor-queue`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::backend::BoxFuture;

/// The longest line of a journal file read back (a batch of 100,000
/// custom_ids is about 4 MB).
const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// A batch as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// candor's name for the batch, unique (also OpenAI's `metadata` tag).
    pub key: String,
    /// The model entry whose calls it holds.
    pub model: String,
    /// The provider's id, once the batch was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    pub created_ms: u64,
    /// Its custom_ids.
    pub ids: Vec<String>,
    /// Its results were read.
    #[serde(default)]
    pub ended: bool,
}

/// The journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the journal of batches: {0}")]
pub struct JournalError(Box<dyn std::error::Error + Send + Sync>);

impl JournalError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        JournalError(e.into())
    }
}

pub trait Journal: Send + Sync {
    /// Records `batch` before it is submitted. Its custom_ids that another
    /// recorded batch already holds are not taken: they are answered, each
    /// with the key of the batch that holds it, and must be left out.
    fn intend<'a>(&'a self, batch: &'a Recorded) -> BoxFuture<'a, Result<Vec<(String, String)>, JournalError>>;
    /// The batch was created at the provider under `provider_id`.
    fn submitted<'a>(&'a self, key: &'a str, provider_id: &'a str) -> BoxFuture<'a, Result<(), JournalError>>;
    /// The batch has ended and its results were read.
    fn ended<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), JournalError>>;
    /// The batch was never created: its custom_ids are free again. Does
    /// nothing (answers false) once it has a provider id.
    fn abandon<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, JournalError>>;
    /// The batch recorded under `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Recorded>, JournalError>>;
    /// The key of the batch holding custom_id `id`.
    fn holder<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, JournalError>>;
    /// Every recorded batch.
    fn batches(&self) -> BoxFuture<'_, Result<Vec<Recorded>, JournalError>>;
}

/// One line of the journal file.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Line {
    Intend { batch: Recorded },
    Submitted { key: String, provider_id: String },
    Ended { key: String },
    Abandon { key: String },
}

#[derive(Default)]
struct Index {
    batches: HashMap<String, Recorded>,
    holders: HashMap<String, String>,
}

impl Index {
    fn apply(&mut self, line: Line) {
        match line {
            Line::Intend { batch } => {
                for id in &batch.ids {
                    self.holders.insert(id.clone(), batch.key.clone());
                }
                self.batches.insert(batch.key.clone(), batch);
            }
            Line::Submitted { key, provider_id } => {
                if let Some(b) = self.batches.get_mut(&key) {
                    b.provider_id = Some(provider_id);
                }
            }
            Line::Ended { key } => {
                if let Some(b) = self.batches.get_mut(&key) {
                    b.ended = true;
                }
            }
            Line::Abandon { key } => {
                if let Some(b) = self.batches.remove(&key) {
                    for id in &b.ids {
                        if self.holders.get(id) == Some(&key) {
                            self.holders.remove(id);
                        }
                    }
                }
            }
        }
    }
}

/// The journal as a file of JSON lines, each written and synced before the
/// step it records; a torn last line (a crash mid-write) is cut off when
/// the file is opened. One process holds it (the store's lock). Without a
/// file (`in_memory`) it only keeps a process from submitting a call twice.
pub struct FileJournal {
    path: Option<PathBuf>,
    state: Mutex<(Index, Option<File>)>,
}

impl FileJournal {
    pub fn open(path: &Path) -> std::io::Result<FileJournal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut index = Index::default();
        let mut r = BufReader::new(File::open(path)?);
        let mut good = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = (&mut r).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf)?;
            if n == 0 || !buf.ends_with(b"\n") {
                break;
            }
            match serde_json::from_slice::<Line>(&buf) {
                Ok(line) => index.apply(line),
                Err(_) => break,
            }
            good += n as u64;
        }
        if good < file.metadata()?.len() {
            file.set_len(good)?;
        }
        Ok(FileJournal {
            path: Some(path.to_path_buf()),
            state: Mutex::new((index, Some(file))),
        })
    }

    pub fn in_memory() -> FileJournal {
        FileJournal {
            path: None,
            state: Mutex::new((Index::default(), None)),
        }
    }

    fn write(&self, line: Line) -> Result<(), JournalError> {
        let mut st = self.state.lock().expect("journal lock");
        if let Some(f) = &mut st.1 {
            let mut bytes = serde_json::to_vec(&line).map_err(JournalError::new)?;
            bytes.push(b'\n');
            let path = self.path.as_deref().unwrap_or(Path::new("")).display().to_string();
            f.write_all(&bytes)
                .and_then(|()| f.sync_data())
                .map_err(|e| JournalError::new(format!("{path}: {e}")))?;
        }
        st.0.apply(line);
        Ok(())
    }
}

impl Journal for FileJournal {
    fn intend<'a>(&'a self, batch: &'a Recorded) -> BoxFuture<'a, Result<Vec<(String, String)>, JournalError>> {
        Box::pin(async move {
            let held: Vec<(String, String)> = {
                let st = self.state.lock().expect("journal lock");
                batch
                    .ids
                    .iter()
                    .filter_map(|id| st.0.holders.get(id).map(|k| (id.clone(), k.clone())))
                    .collect()
            };
            let mut batch = batch.clone();
            batch.ids.retain(|id| !held.iter().any(|(h, _)| h == id));
            self.write(Line::Intend { batch })?;
            Ok(held)
        })
    }

    fn submitted<'a>(&'a self, key: &'a str, provider_id: &'a str) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.write(Line::Submitted {
                key: key.to_string(),
                provider_id: provider_id.to_string(),
            })
        })
    }

    fn ended<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move { self.write(Line::Ended { key: key.to_string() }) })
    }

    fn abandon<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, JournalError>> {
        Box::pin(async move {
            let live = {
                let st = self.state.lock().expect("journal lock");
                st.0.batches.get(key).is_some_and(|b| b.provider_id.is_none())
            };
            if live {
                self.write(Line::Abandon { key: key.to_string() })?;
            }
            Ok(live)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Recorded>, JournalError>> {
        Box::pin(async move { Ok(self.state.lock().expect("journal lock").0.batches.get(key).cloned()) })
    }

    fn holder<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, JournalError>> {
        Box::pin(async move { Ok(self.state.lock().expect("journal lock").0.holders.get(id).cloned()) })
    }

    fn batches(&self) -> BoxFuture<'_, Result<Vec<Recorded>, JournalError>> {
        Box::pin(async move {
            let st = self.state.lock().expect("journal lock");
            let mut v: Vec<Recorded> = st.0.batches.values().cloned().collect();
            v.sort_by(|a, b| (a.created_ms, &a.key).cmp(&(b.created_ms, &b.key)));
            Ok(v)
        })
    }
}

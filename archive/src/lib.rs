//! candor's archive of results: each batch of results is one Parquet
//! *part* (zstd-compressed, one row group) with a side table of the long
//! texts its rows share (the rendered system prompts, by SHA-256), on an
//! object store: a directory, S3, GCS or Azure.
//!
//! Layout, under the archive's URL:
//!
//! ```text
//! SWEEP_ID/results/PART.parquet   one row per result (see `columns`)
//! SWEEP_ID/texts/PART.parquet     sha256 → text, for that part's rows
//! ```
//!
//! The texts of a part are written before its results and removed after
//! them, so a results part never lacks its texts. A part may hold results
//! that were never accepted (a lease lost, a job already done): which part
//! holds a job's one live result is recorded elsewhere (the local log's
//! order, Redis' `partof`), and readers take each job from that part only.

mod columns;
mod local;
mod location;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

pub use candor_core::JobResult;
pub use columns::{results_schema, text_hash, texts_schema};
pub use local::{LocalWriter, PART_ROWS};
pub use location::{Location, read_options};

/// The object at an archive's root that names it (see [`Archive::identity`]).
pub const IDENTITY: &str = "candor-archive-id";

/// The largest part file read, in bytes: a part holds at most a few
/// thousand results.
pub const MAX_PART_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("archive options file {path}: {reason}")]
    Options { path: std::path::PathBuf, reason: String },
    #[error("archive directory {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("archive {url}: {op} {path}: {source}")]
    Store {
        url: String,
        op: &'static str,
        path: String,
        source: Box<object_store::Error>,
    },
    #[error("archive part {path}: {reason}")]
    Part { path: String, reason: String },
    #[error("archive part: {0}")]
    Format(String),
}

/// One results part as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub name: String,
    pub bytes: u64,
    /// When it was written, in Unix milliseconds.
    pub modified_ms: u64,
}

/// A part ready to be written: its results and its texts, as Parquet.
pub struct Encoded {
    results: Bytes,
    texts: Bytes,
    pub rows: usize,
}

impl Encoded {
    /// The bytes of both files.
    pub fn bytes(&self) -> usize {
        self.results.len() + self.texts.len()
    }
}

fn parquet_bytes(batch: &arrow_array::RecordBatch) -> Bytes {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3 is valid")))
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("the schema is writable");
    w.write(batch).expect("writing to memory cannot fail");
    w.close().expect("writing to memory cannot fail");
    Bytes::from(out)
}

/// Encodes results as a part (CPU work: call it off the async runtime for
/// large batches).
pub fn encode<'a>(results: impl IntoIterator<Item = &'a JobResult>) -> Encoded {
    let mut rows = columns::Rows::default();
    for r in results {
        rows.push(r);
    }
    let n = rows.len();
    let (r, t) = rows.finish();
    Encoded {
        results: parquet_bytes(&r),
        texts: parquet_bytes(&t),
        rows: n,
    }
}

fn batches(path: &str, bytes: Bytes) -> Result<Vec<arrow_array::RecordBatch>, ArchiveError> {
    let bad = |e: &dyn std::fmt::Display| ArchiveError::Part {
        path: path.to_string(),
        reason: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| bad(&e))
}

/// Decodes a part from the bytes of its two files, calling `f` with each
/// row's index and result.
pub fn decode(
    path: &str,
    results: Bytes,
    texts: Bytes,
    mut f: impl FnMut(u64, JobResult) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let mut table = HashMap::new();
    for b in batches(path, texts)? {
        columns::read_texts(&b, &mut table)?;
    }
    for b in batches(path, results)? {
        let v = columns::View::new(&b);
        for i in 0..b.num_rows() {
            let r = v.result(i, &table).map_err(|e| ArchiveError::Part {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
            f(r.index, r)?;
        }
    }
    Ok(())
}

/// A name no other writer picks: time, process, a counter and a random
/// number.
pub fn part_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    format!("{ms:013}-{:x}-{n}-{:016x}", std::process::id(), h.finish())
}

/// An archive: parts of sweeps on one store.
#[derive(Clone, Debug)]
pub struct Archive {
    loc: Location,
}

impl Archive {
    pub fn new(loc: Location) -> Self {
        Archive { loc }
    }

    pub fn url(&self) -> &str {
        self.loc.url()
    }

    fn err(&self, op: &'static str, path: &object_store::path::Path, source: object_store::Error) -> ArchiveError {
        ArchiveError::Store {
            url: self.loc.url().to_string(),
            op,
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    fn file(&self, sweep: &str, table: &str, part: &str) -> object_store::path::Path {
        self.loc.path(&[sweep, table, &format!("{part}.parquet")])
    }

    /// The archive's identity: a random id in the object `candor-archive-id`
    /// at its root, written once by the first coordinator that opens it.
    /// Processes that must share one archive compare it (Redis holds the
    /// coordinator's), so a worker pointed at another bucket or another
    /// volume is refused at start instead of writing results nobody reads.
    pub async fn identity(&self) -> Result<Option<String>, ArchiveError> {
        let path = self.loc.path(&[IDENTITY]);
        match self.loc.store.get(&path).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|e| self.err("get", &path, e))?;
                Ok(Some(
                    String::from_utf8_lossy(&bytes[..bytes.len().min(128)])
                        .trim()
                        .to_string(),
                ))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("get", &path, e)),
        }
    }

    /// Writes the archive's identity (see [`Archive::identity`]).
    pub async fn set_identity(&self, id: &str) -> Result<(), ArchiveError> {
        let path = self.loc.path(&[IDENTITY]);
        self.loc
            .store
            .put(&path, PutPayload::from(format!("{id}\n")))
            .await
            .map_err(|e| self.err("put", &path, e))?;
        Ok(())
    }

    /// Writes a part: its texts, then its results.
    pub async fn put(&self, sweep: &str, part: &str, enc: &Encoded) -> Result<(), ArchiveError> {
        for (table, bytes) in [("texts", &enc.texts), ("results", &enc.results)] {
            let path = self.file(sweep, table, part);
            self.loc
                .store
                .put(&path, PutPayload::from_bytes(bytes.clone()))
                .await
                .map_err(|e| self.err("put", &path, e))?;
        }
        Ok(())
    }

    async fn get(&self, path: &object_store::path::Path) -> Result<Bytes, ArchiveError> {
        let got = self.loc.store.get(path).await.map_err(|e| self.err("get", path, e))?;
        if got.meta.size > MAX_PART_BYTES {
            return Err(ArchiveError::Part {
                path: path.to_string(),
                reason: format!("{} bytes, more than the limit of {MAX_PART_BYTES}", got.meta.size),
            });
        }
        got.bytes().await.map_err(|e| self.err("get", path, e))
    }

    /// Reads a part, calling `f` with each row's index and result.
    pub async fn read(
        &self,
        sweep: &str,
        part: &str,
        f: impl FnMut(u64, JobResult) -> Result<(), ArchiveError>,
    ) -> Result<(), ArchiveError> {
        let rp = self.file(sweep, "results", part);
        let results = self.get(&rp).await?;
        let texts = self.get(&self.file(sweep, "texts", part)).await?;
        decode(rp.as_ref(), results, texts, f)
    }

    /// Every file under `dir`.
    async fn list_under(&self, dir: &object_store::path::Path) -> Result<Vec<object_store::ObjectMeta>, ArchiveError> {
        self.loc
            .store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| self.err("list", dir, e))
    }

    /// The results parts of a sweep, oldest first.
    pub async fn list(&self, sweep: &str) -> Result<Vec<PartInfo>, ArchiveError> {
        let dir = self.loc.path(&[sweep, "results"]);
        let metas = self.list_under(&dir).await?;
        let mut parts: Vec<PartInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.strip_suffix(".parquet")?.to_string();
                Some(PartInfo {
                    name,
                    bytes: m.size,
                    modified_ms: m.last_modified.timestamp_millis().max(0) as u64,
                })
            })
            .collect();
        parts.sort_by(|a, b| (a.modified_ms, &a.name).cmp(&(b.modified_ms, &b.name)));
        Ok(parts)
    }

    /// Every part of a sweep with a file in either table (a part whose
    /// writer died between its texts and its results has only the first),
    /// with its latest file's time.
    pub async fn parts(&self, sweep: &str) -> Result<Vec<PartInfo>, ArchiveError> {
        let dir = self.loc.path(&[sweep]);
        let metas = self.list_under(&dir).await?;
        let mut by: std::collections::BTreeMap<String, PartInfo> = std::collections::BTreeMap::new();
        for m in metas {
            let Some(name) = m.location.filename().and_then(|f| f.strip_suffix(".parquet")) else {
                continue;
            };
            let at = m.last_modified.timestamp_millis().max(0) as u64;
            let p = by.entry(name.to_string()).or_insert_with(|| PartInfo {
                name: name.to_string(),
                bytes: 0,
                modified_ms: 0,
            });
            p.bytes += m.size;
            p.modified_ms = p.modified_ms.max(at);
        }
        Ok(by.into_values().collect())
    }

    /// Removes a part: its results, then its texts. A missing file is not
    /// an error (a removal cut short is finished by the next one).
    pub async fn remove(&self, sweep: &str, part: &str) -> Result<(), ArchiveError> {
        for table in ["results", "texts"] {
            let path = self.file(sweep, table, part);
            match self.loc.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("delete", &path, e)),
            }
        }
        Ok(())
    }

    /// Removes every file of a sweep; returns how many.
    pub async fn remove_sweep(&self, sweep: &str) -> Result<u64, ArchiveError> {
        let dir = self.loc.path(&[sweep]);
        let metas = self.list_under(&dir).await?;
        // Results before texts, so that no results part is left without its texts.
        let (results, texts): (Vec<_>, Vec<_>) = metas
            .into_iter()
            .partition(|m| m.location.parts().any(|p| p.as_ref() == "results"));
        let mut n = 0;
        for m in results.into_iter().chain(texts) {
            match self.loc.store.delete(&m.location).await {
                Ok(()) => n += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("delete", &m.location, e)),
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;

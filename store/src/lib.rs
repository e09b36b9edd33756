//! The embedded store: one append-only log file per sweep under the store
//! directory. Each record is framed with its length and a CRC32, so a write
//! cut short by a crash is detected and dropped when the log is next opened.
//! A job's result is appended once; records for a job that already has one
//! are ignored, so the log holds at most one result per job.
//!
//! Layout: header `CANDOR-STORE-3\n` + sweep id (16 bytes) + job count (u64
//! LE), then frames of `len u32 | crc32 u32 | index u64 | status u8 |
//! classifier bits u32 | cache hits u16 | cost (micro-USD) u64 | payload`
//! (all little-endian; `len` and the CRC cover everything after the CRC).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use candor_core::{RecordMeta, Status};

const MAGIC: &[u8; 15] = b"CANDOR-STORE-3\n";
const HEADER_LEN: u64 = 15 + 16 + 8;
const BODY_FIXED: usize = 8 + 1 + 4 + 2 + 8;
/// The largest record the store accepts.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("store {path} is in use by another candor process running the same sweep")]
    Locked { path: PathBuf },
    #[error("store {path} is not a candor store for this sweep: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("store {path} is corrupt at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("record of {len} bytes is larger than the store's limit of {MAX_RECORD_BYTES}")]
    TooLarge { len: usize },
}

/// Which jobs of a sweep have a result: one bit per job.
#[derive(Debug, Clone)]
pub struct DoneSet {
    bits: Vec<u64>,
    count: u64,
    total: u64,
}

impl DoneSet {
    pub fn new(total: u64) -> Self {
        DoneSet {
            bits: vec![0; total.div_ceil(64) as usize],
            count: 0,
            total,
        }
    }
    pub fn contains(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
    /// Marks `i`; false if it was already marked.
    pub fn insert(&mut self, i: u64) -> bool {
        let w = &mut self.bits[(i / 64) as usize];
        let m = 1 << (i % 64);
        if *w & m != 0 {
            return false;
        }
        *w |= m;
        self.count += 1;
        true
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// A directory of sweep logs.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Store { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self, sweep_id: &str) -> PathBuf {
        self.dir.join(format!("{sweep_id}.log"))
    }

    /// Opens (creating if needed) the log of a sweep, takes an exclusive lock
    /// on it and recovers from a torn tail.
    pub fn open_sweep(&self, sweep_id: &str, total: u64) -> Result<SweepLog, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.log_path(sweep_id);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io { path, source: e }),
        }
        let len = file.metadata().map_err(io(&path))?.len();
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        let mut id = [b' '; 16];
        let n = sweep_id.len().min(16);
        id[..n].copy_from_slice(&sweep_id.as_bytes()[..n]);
        header.extend_from_slice(&id);
        header.extend_from_slice(&total.to_le_bytes());
        if len < HEADER_LEN {
            // New, or a crash before the header was complete.
            file.set_len(0).map_err(io(&path))?;
            file.write_all(&header).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        } else {
            let mut have = vec![0u8; HEADER_LEN as usize];
            file.read_exact(&mut have).map_err(io(&path))?;
            if have[..15] != MAGIC[..] {
                return Err(StoreError::Mismatch {
                    path,
                    reason: "unknown file format".into(),
                });
            }
            if have != header {
                return Err(StoreError::Mismatch {
                    path,
                    reason: "written for a different sweep or job count".into(),
                });
            }
        }
        let mut log = SweepLog {
            spent_micro_usd: 0,
            max_cost_micro_usd: 0,
            file,
            path,
            done: DoneSet::new(total),
            end: HEADER_LEN,
            dropped_bytes: 0,
            buf: Vec::new(),
        };
        let mut done = DoneSet::new(total);
        let (mut spent, mut max_cost) = (0u64, 0u64);
        let end = log.scan_frames(|meta, _| {
            if done.insert(meta.index) {
                spent += meta.cost_micro_usd;
                max_cost = max_cost.max(meta.cost_micro_usd);
            }
        })?;
        log.spent_micro_usd = spent;
        log.max_cost_micro_usd = max_cost;
        log.done = done;
        if end < len {
            log.file.set_len(end).map_err(io(&log.path))?;
            log.dropped_bytes = len - end;
        }
        log.end = end;
        log.file.seek(SeekFrom::Start(end)).map_err(io(&log.path))?;
        Ok(log)
    }
}

/// The open, locked log of one sweep.
pub struct SweepLog {
    file: File,
    path: PathBuf,
    done: DoneSet,
    end: u64,
    dropped_bytes: u64,
    buf: Vec<u8>,
    spent_micro_usd: u64,
    max_cost_micro_usd: u64,
}

impl SweepLog {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn done(&self) -> &DoneSet {
        &self.done
    }

    /// The cost of every result in the log, in micro-USD.
    pub fn spent_micro_usd(&self) -> u64 {
        self.spent_micro_usd
    }

    /// The cost of the dearest result in the log, in micro-USD.
    pub fn max_cost_micro_usd(&self) -> u64 {
        self.max_cost_micro_usd
    }

    /// Bytes of a torn tail dropped when the log was opened.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    /// Appends records in one write. Records for jobs that already have a
    /// result are skipped; returns how many were written.
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = (RecordMeta, &'a [u8])>,
    ) -> Result<usize, StoreError> {
        self.buf.clear();
        let mut n = 0;
        for (meta, payload) in records {
            if meta.index >= self.done.total() {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    offset: self.end,
                    reason: format!("job index {} out of range", meta.index),
                });
            }
            let body_len = BODY_FIXED + payload.len();
            if body_len > MAX_RECORD_BYTES {
                return Err(StoreError::TooLarge { len: body_len });
            }
            if !self.done.insert(meta.index) {
                continue;
            }
            self.spent_micro_usd += meta.cost_micro_usd;
            self.max_cost_micro_usd = self.max_cost_micro_usd.max(meta.cost_micro_usd);
            let start = self.buf.len();
            self.buf.extend_from_slice(&(body_len as u32).to_le_bytes());
            self.buf.extend_from_slice(&[0; 4]);
            self.buf.extend_from_slice(&meta.index.to_le_bytes());
            self.buf.push(meta.status.code());
            self.buf.extend_from_slice(&meta.class_bits.to_le_bytes());
            self.buf.extend_from_slice(&meta.cache_hits.to_le_bytes());
            self.buf.extend_from_slice(&meta.cost_micro_usd.to_le_bytes());
            self.buf.extend_from_slice(payload);
            let crc = crc32fast::hash(&self.buf[start + 8..]);
            self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            n += 1;
        }
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(|source| StoreError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.end += self.buf.len() as u64;
        }
        Ok(n)
    }

    /// Flushes written records to disk (they already survive a crash of
    /// this process; this makes them survive a crash of the machine).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Calls `f` for each record in the order written, once per job.
    pub fn scan(&self, mut f: impl FnMut(RecordMeta, &[u8])) -> Result<(), StoreError> {
        let mut seen = DoneSet::new(self.done.total());
        self.scan_frames(|meta, payload| {
            if seen.insert(meta.index) {
                f(meta, payload);
            }
        })?;
        Ok(())
    }

    /// Reads frames from the start; returns the end of the last valid one.
    fn scan_frames(&self, mut f: impl FnMut(RecordMeta, &[u8])) -> Result<u64, StoreError> {
        let file = File::open(&self.path).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        r.seek(SeekFrom::Start(HEADER_LEN)).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut pos = HEADER_LEN;
        let mut body = Vec::new();
        loop {
            let mut head = [0u8; 8];
            if !read_full(&mut r, &mut head) {
                return Ok(pos);
            }
            let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
            if !(BODY_FIXED..=MAX_RECORD_BYTES).contains(&len) {
                return Ok(pos);
            }
            body.resize(len, 0);
            if !read_full(&mut r, &mut body) || crc32fast::hash(&body) != crc {
                return Ok(pos);
            }
            let index = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
            let status = Status::from_code(body[8]);
            let class_bits = u32::from_le_bytes(body[9..13].try_into().expect("4 bytes"));
            let cache_hits = u16::from_le_bytes(body[13..15].try_into().expect("2 bytes"));
            let cost_micro_usd = u64::from_le_bytes(body[15..23].try_into().expect("8 bytes"));
            let (Some(status), true) = (status, index < self.done.total()) else {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    offset: pos,
                    reason: "a record with a valid checksum holds an impossible job index or status".into(),
                });
            };
            f(
                RecordMeta {
                    index,
                    status,
                    class_bits,
                    cache_hits,
                    cost_micro_usd,
                },
                &body[BODY_FIXED..],
            );
            pos += 8 + len as u64;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64) -> RecordMeta {
        RecordMeta {
            index,
            status: Status::Ok,
            class_bits: (index % 2) as u32,
            cache_hits: (index % 3) as u16,
            cost_micro_usd: index * 1000,
        }
    }

    #[test]
    fn appends_survive_reopen_and_duplicates_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s"));
        {
            let mut log = store.open_sweep("abcd", 10).unwrap();
            assert_eq!(
                log.append([(meta(3), &b"three"[..]), (meta(5), &b"five"[..])]).unwrap(),
                2
            );
            assert_eq!(log.append([(meta(3), &b"again"[..])]).unwrap(), 0);
        }
        let log = store.open_sweep("abcd", 10).unwrap();
        assert_eq!(log.done().count(), 2);
        assert!(log.done().contains(3) && log.done().contains(5) && !log.done().contains(4));
        // A resumed run's budget starts from what the log cost, and its dearest job.
        assert_eq!((log.spent_micro_usd(), log.max_cost_micro_usd()), (8000, 5000));
        let mut seen = Vec::new();
        log.scan(|m, p| seen.push((m, p.to_vec()))).unwrap();
        assert_eq!(seen, vec![(meta(3), b"three".to_vec()), (meta(5), b"five".to_vec())]);
    }

    #[test]
    fn a_torn_tail_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        {
            let mut log = store.open_sweep("abcd", 10).unwrap();
            log.append([(meta(1), &b"one"[..]), (meta(2), &b"two"[..])]).unwrap();
        }
        let path = store.log_path("abcd");
        let full = std::fs::metadata(&path).unwrap().len();
        // Cut the last record in half, as a crash in the middle of a write would.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(full - 5)
            .unwrap();
        let mut log = store.open_sweep("abcd", 10).unwrap();
        assert_eq!(log.done().count(), 1);
        assert!(log.dropped_bytes() > 0);
        log.append([(meta(2), &b"two"[..])]).unwrap();
        drop(log);
        let log = store.open_sweep("abcd", 10).unwrap();
        assert_eq!(log.done().count(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), full);
    }

    #[test]
    fn a_corrupted_byte_ends_the_valid_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        {
            let mut log = store.open_sweep("abcd", 10).unwrap();
            log.append([(meta(1), &b"one"[..]), (meta(2), &b"two"[..])]).unwrap();
        }
        let path = store.log_path("abcd");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let log = store.open_sweep("abcd", 10).unwrap();
        assert_eq!(log.done().count(), 1);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let _first = store.open_sweep("abcd", 10).unwrap();
        assert!(matches!(store.open_sweep("abcd", 10), Err(StoreError::Locked { .. })));
    }

    #[test]
    fn a_log_of_another_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        drop(store.open_sweep("abcd", 10).unwrap());
        assert!(matches!(store.open_sweep("abcd", 11), Err(StoreError::Mismatch { .. })));
    }
}

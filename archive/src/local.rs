//! A local run's archive: the whole sweep rewritten from the store's log
//! into `DIR/SWEEP_ID/` at the end of each run, in a directory beside it
//! that then takes its place, so a reader never sees two copies of a
//! result nor half an archive. Every part of a local archive is live: the
//! log holds one result per job.

use std::path::{Path, PathBuf};

use candor_core::JobResult;

use crate::{ArchiveError, encode};

/// Results per part of a local archive.
pub const PART_ROWS: usize = 4096;

/// Writes a sweep's results as parts, then swaps them in.
pub struct LocalWriter {
    dir: PathBuf,
    sweep: String,
    tmp: PathBuf,
    rows: Vec<JobResult>,
    parts: usize,
    pub results: u64,
    pub bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Dir {
        path: path.to_path_buf(),
        source,
    }
}

impl LocalWriter {
    /// Starts writing sweep `sweep` under archive directory `dir`.
    pub fn new(dir: &Path, sweep: &str) -> Result<LocalWriter, ArchiveError> {
        let tmp = dir.join(format!(".{sweep}.new"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        for table in ["results", "texts"] {
            let d = tmp.join(table);
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(LocalWriter {
            dir: dir.to_path_buf(),
            sweep: sweep.to_string(),
            tmp,
            rows: Vec::with_capacity(PART_ROWS),
            parts: 0,
            results: 0,
            bytes: 0,
        })
    }

    pub fn push(&mut self, r: JobResult) -> Result<(), ArchiveError> {
        self.rows.push(r);
        if self.rows.len() >= PART_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ArchiveError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let enc = encode(&self.rows);
        let name = format!("part-{:06}.parquet", self.parts);
        for (table, bytes) in [("texts", &enc.texts), ("results", &enc.results)] {
            let p = self.tmp.join(table).join(&name);
            std::fs::write(&p, bytes).map_err(io(&p))?;
        }
        self.results += self.rows.len() as u64;
        self.bytes += enc.bytes() as u64;
        self.parts += 1;
        self.rows.clear();
        Ok(())
    }

    /// Writes the last part and puts the new archive in place of the old.
    pub fn finish(mut self) -> Result<PathBuf, ArchiveError> {
        self.flush()?;
        let live = self.dir.join(&self.sweep);
        let old = self.dir.join(format!(".{}.old", self.sweep));
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        if live.exists() {
            std::fs::rename(&live, &old).map_err(io(&live))?;
        }
        std::fs::rename(&self.tmp, &live).map_err(io(&live))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(live)
    }
}

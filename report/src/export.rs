//! Writing a sweep's results and report from the store: `results.jsonl`,
//! `report.json`, `report.md`, `report.html`, `results.csv`. Each file is
//! written to a temporary name and renamed, so a reader never sees half a
//! file.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::report::{Failures, Report, Tally, classifier_names};
use crate::{csv, html, lines};
use candor_core::{ErrorKind, Status, Sweep};
use candor_store::{StoreError, SweepLog};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn write_atomic<T>(path: &Path, f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>) -> Result<T, ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
    let t = f(&mut w).map_err(io)?;
    w.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(t)
}

/// Writes the five files into `out` and returns the report.
/// `adjust` marks what the log does not hold (an exhausted budget, early stops).
pub fn export(
    sweep: &Sweep,
    log: &SweepLog,
    out: &Path,
    adjust: impl FnOnce(&mut Report),
) -> Result<Report, ExportError> {
    std::fs::create_dir_all(out).map_err(|source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut tally = Tally::new(sweep);
    let mut scan_err = None;
    write_atomic(&out.join("results.jsonl"), |w| {
        let mut io_err = None;
        let r = log.scan(|meta, payload| {
            if io_err.is_some() {
                return;
            }
            tally.add(sweep, &meta);
            if meta.status == Status::Failed {
                count_failure(sweep, &mut tally.failures, meta.index, payload);
            }
            if let Err(e) = w.write_all(payload).and_then(|()| w.write_all(b"\n")) {
                io_err = Some(e);
            }
        });
        if let Err(e) = r {
            scan_err = Some(e);
        }
        io_err.map_or(Ok(()), Err)
    })?;
    if let Some(e) = scan_err {
        return Err(e.into());
    }
    let mut report = Report::build(sweep, &tally);
    adjust(&mut report);
    crate::report::cache::add_prompt_cache(&mut report, &out.join("results.jsonl")).map_err(|source| {
        ExportError::Io {
            path: out.join("results.jsonl"),
            source,
        }
    })?;
    write_atomic(&out.join("report.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &report)?;
        w.write_all(b"\n")
    })?;
    write_atomic(&out.join("report.md"), |w| w.write_all(report.to_markdown().as_bytes()))?;
    write_views(&report, out)?;
    Ok(report)
}

/// Counts a failed result towards its model's failures, by the kind of error
/// its stored JSON gives.
pub fn count_failure(sweep: &Sweep, failures: &mut Failures, index: u64, payload: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Failed {
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        error_kind: Option<ErrorKind>,
    }
    let model = sweep.space.decode(index).model;
    let f = serde_json::from_slice::<Failed>(payload).unwrap_or(Failed {
        error: None,
        error_kind: None,
    });
    failures.add(
        model,
        f.error_kind,
        f.error.as_deref().unwrap_or("(no error recorded)"),
        1,
    );
}

/// Writes `report.html` and `results.csv` into `out` from `report` and the
/// `results.jsonl` already there, reading it once.
pub fn write_views(report: &Report, out: &Path) -> Result<(), ExportError> {
    let jsonl = out.join("results.jsonl");
    let input = File::open(&jsonl).map_err(|source| ExportError::Io {
        path: jsonl.clone(),
        source,
    })?;
    let mut sample = html::Sample::new(html::Limits::default());
    let written = write_atomic(&out.join("results.csv"), |w| {
        let mut csv = csv::CsvWriter::new(&classifier_names(report), w)?;
        let mut reading = true;
        let input = BufReader::with_capacity(1 << 20, input);
        lines::for_each(input, lines::MAX_LINE_BYTES, |line| {
            reading = false;
            csv.line(&line)?;
            sample.offer(&line);
            reading = true;
            Ok(())
        })
        .map_err(|e| {
            if reading {
                std::io::Error::new(e.kind(), format!("reading {}: {e}", jsonl.display()))
            } else {
                e
            }
        })?;
        Ok(csv.finish()?.0)
    })?;
    if written.unreadable > 0 {
        tracing::warn!(
            lines = written.unreadable,
            "unreadable lines of results.jsonl left out of results.csv and report.html"
        );
    }
    write_atomic(&out.join("report.html"), |w| sample.write(report, w).map(|_| ()))
}

/// report.json, report.md and report.html from a report and results fed
/// one line at a time (a coordinator's results stream): nothing but the
/// page's sample of them is kept.
pub struct Views {
    sample: html::Sample,
    cache: Option<crate::report::cache::CacheTally>,
    pub results: u64,
}

impl Views {
    /// For `report`; the prompt cache is summed only when a model has a price.
    pub fn new(report: &Report) -> Self {
        let priced = report.costs.iter().any(|c| c.input_per_mtok != 0.0);
        Views {
            sample: html::Sample::new(html::Limits::default()),
            cache: priced.then(Default::default),
            results: 0,
        }
    }

    /// Takes one result (a line of JSON).
    pub fn offer(&mut self, json: &[u8]) {
        self.results += 1;
        if let Some(line) = lines::Line::parse(json) {
            self.sample.offer(&line);
        }
        if let Some(c) = &mut self.cache {
            c.add(json);
        }
    }

    /// Completes `report` with the prompt cache and writes the three files
    /// into `out`.
    pub fn write(self, mut report: Report, out: &Path) -> Result<Report, ExportError> {
        std::fs::create_dir_all(out).map_err(|source| ExportError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        if let Some(c) = self.cache {
            c.apply(&mut report);
        }
        write_atomic(&out.join("report.json"), |w| {
            serde_json::to_writer_pretty(&mut *w, &report)?;
            w.write_all(b"\n")
        })?;
        write_atomic(&out.join("report.md"), |w| w.write_all(report.to_markdown().as_bytes()))?;
        let sample = self.sample;
        write_atomic(&out.join("report.html"), |w| sample.write(&report, w).map(|_| ()))?;
        Ok(report)
    }
}

//! A sweep's results as Inspect AI eval logs (`.eval`), which `inspect view`,
//! `inspect_ai.log.read_eval_log` and `inspect_ai.analysis.samples_df` open.
//!
//! The format followed is Inspect's `.eval` log: a zip archive of JSON
//! documents (`_journal/start.json`, `samples/<id>_epoch_<n>.json`,
//! `summaries.json`, `reductions.json`, `header.json`) whose shapes are the
//! pydantic models `EvalLog`, `EvalSpec`, `EvalResults`, `EvalStats`,
//! `EvalSample` and `EvalSampleSummary` of `inspect_ai/log/_log.py`, as
//! `inspect_ai/log/_recorders/eval.py` writes and reads them: inspect_ai
//! 0.3.285 (log version 2), <https://inspect.aisi.org.uk/eval-logs.html>,
//! source at <https://github.com/UKGovernmentBEIS/inspect_ai>.
//!
//! The mapping:
//! - One `.eval` per model under test, named `<sweep>_<model>.eval`, in one
//!   directory (Inspect's log directory). Inspect's eval is one task on one
//!   model (`EvalSpec.model` is one string; `eval(task, model=[a, b])`
//!   writes a log per model), so `inspect view` lists and compares the
//!   models as it does its own runs, and `samples_df` of the directory
//!   gives each row its model. A path ending in `.eval` writes one file,
//!   for a sweep of one model.
//! - The task is the sweep's name; `run_id` and `task_id` are its id.
//! - One sample per job: id the job id, epoch 1 (a job runs once; its seed
//!   is in the metadata), input the system prompt and first user turn,
//!   messages every turn (scratchpad continuations included, reasoning as
//!   reasoning content), output the final reply with Inspect's stop reason
//!   and the job's usage. A failed job is a sample with an `error`; an
//!   incomplete one has a `turn` limit.
//! - One score per classifier verdict: value 1 (yes) or 0 (no), so a
//!   classifier's mean is its rate; the metadata keeps candor's verdict and
//!   a judge's votes, the explanation the judge's replies. A classifier
//!   that gave no verdict (`only_if`, a job not classified) has no score.
//! - `model_usage` per model under test (input without cached tokens, as
//!   Inspect counts them, and the cache's reads and writes apart);
//!   judges' tokens under `role_usage["judge"]`.
//! - The header's results: per classifier its mean over the scored samples
//!   and the report's rate of each cell (`variant/condition`) with its
//!   Wilson interval; the report's gaps in the results' metadata.

mod log;
mod sample;
mod schema;
#[cfg(test)]
mod tests;
pub mod zip;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candor_core::result::JobResult;

use crate::report::{Report, classifier_names};
use log::LogFile;
use zip::DosTime;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A single `.eval` file was asked for a sweep of several models.
    #[error(
        "{path}: an Inspect eval log holds one model, and sweep {sweep} has {count} ({models}): name a directory to get one .eval per model"
    )]
    SeveralModels {
        path: PathBuf,
        sweep: String,
        count: usize,
        models: String,
    },
}

/// What every log of the sweep shares.
struct Context {
    report: Report,
    classifiers: Vec<String>,
    /// When the sweep started (RFC 3339), else when the export did.
    created: String,
    modified: DosTime,
    /// `success` when every job that was to run has a result, else `cancelled`.
    status: &'static str,
}

impl Context {
    fn of(report: &Report, now_secs: u64) -> Context {
        let p = &report.sweep.provenance;
        let created = p
            .started_at
            .clone()
            .or_else(|| p.finished_at.clone())
            .unwrap_or_else(|| candor_core::time::rfc3339(now_secs, ""));
        let s = &report.sweep;
        Context {
            classifiers: classifier_names(report),
            modified: DosTime::parse(&created).unwrap_or_else(|| DosTime::of(now_secs)),
            created,
            status: if s.jobs_done + s.jobs_skipped >= s.jobs_total {
                "success"
            } else {
                "cancelled"
            },
            report: report.clone(),
        }
    }
}

/// Where the logs go: a directory (one `.eval` per model), or one file.
enum Target {
    Dir(PathBuf),
    File(PathBuf),
}

/// A sweep's eval logs being written, a job at a time.
pub struct EvalLogs {
    ctx: Context,
    target: Target,
    /// By candor's model id, in the order they were started.
    logs: Vec<(String, LogFile)>,
    names: BTreeSet<String>,
}

impl EvalLogs {
    /// Starts the logs of `report`'s sweep at `out`: a directory, or one
    /// `.eval` file when `out` ends in `.eval` (a sweep of one model).
    pub fn create(report: &Report, out: &Path) -> Result<EvalLogs, InspectError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let models = &report.sweep.provenance.models;
        let single = out.extension().is_some_and(|e| e == "eval");
        if single && models.len() > 1 {
            return Err(InspectError::SeveralModels {
                path: out.to_path_buf(),
                sweep: report.sweep.name.clone(),
                count: models.len(),
                models: models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        let dir = if single {
            out.parent().unwrap_or(Path::new(""))
        } else {
            out
        };
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| InspectError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut logs = EvalLogs {
            ctx: Context::of(report, now),
            target: if single {
                Target::File(out.to_path_buf())
            } else {
                Target::Dir(out.to_path_buf())
            },
            logs: Vec::new(),
            names: BTreeSet::new(),
        };
        let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
        for id in ids {
            let key = logs.key(&id);
            logs.open(&key)?;
        }
        Ok(logs)
    }

    /// The key of the log a job of model `id` goes to: its own, or the one file's.
    fn key(&self, id: &str) -> String {
        match &self.target {
            Target::File(_) => self.logs.first().map_or(id, |l| l.0.as_str()).to_string(),
            Target::Dir(_) => id.to_string(),
        }
    }

    /// Starts the log of model `id` when it is not yet.
    fn open(&mut self, id: &str) -> Result<(), InspectError> {
        if self.logs.iter().any(|l| l.0 == id) {
            return Ok(());
        }
        let path = match &self.target {
            Target::File(p) => p.clone(),
            Target::Dir(d) => {
                let d = d.clone();
                d.join(self.file_name(id))
            }
        };
        let info = self.ctx.report.sweep.provenance.models.iter().find(|m| m.id == id);
        let log =
            LogFile::create(path.clone(), id, info, &self.ctx).map_err(|source| InspectError::Io { path, source })?;
        self.logs.push((id.to_string(), log));
        Ok(())
    }

    /// `<sweep>_<model>.eval`, with anything but letters, digits, `.`, `-`
    /// and `_` replaced, and made unique.
    fn file_name(&mut self, model: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let base = format!("{}_{}", clean(&self.ctx.report.sweep.name), clean(model));
        let mut name = format!("{base}.eval");
        let mut n = 1;
        while !self.names.insert(name.clone()) {
            n += 1;
            name = format!("{base}-{n}.eval");
        }
        name
    }

    /// Adds a job to its model's log.
    pub fn push(&mut self, r: &JobResult) -> Result<(), InspectError> {
        let key = self.key(&r.model);
        self.open(&key)?;
        let (_, log) = self
            .logs
            .iter_mut()
            .find(|l| l.0 == key)
            .expect("the log was just opened");
        log.push(r, &self.ctx).map_err(|source| InspectError::Io {
            path: log.path.clone(),
            source,
        })
    }

    /// Completes every log; returns their paths.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, InspectError> {
        if self.logs.is_empty() {
            // A report without models: one empty log, so that there is a file to open.
            self.open("unknown")?;
        }
        let mut paths = Vec::with_capacity(self.logs.len());
        for (_, log) in std::mem::take(&mut self.logs) {
            let path = log.path.clone();
            paths.push(
                log.finish(&self.ctx)
                    .map_err(|source| InspectError::Io { path, source })?,
            );
        }
        Ok(paths)
    }
}

//! Local runs for the view: out dirs (`candor run --out`), given or found
//! under a runs directory, read at each request. A run in progress has only
//! its progress file (`progress.json`, see `progress_file`); one that ended
//! has its report.json and report.html too (older runs: only those).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use candor_report::report::Report;

use super::{CellRow, Detail, FailureRow, Row, ViewError, rfc3339};
use crate::progress_file::{self, ProgressFile};

/// How deep under the runs directory out dirs are looked for
/// (runs/NAME/LABEL/), as `candor list` does.
pub const MAX_DEPTH: usize = 3;
/// The most out dirs looked at.
const MAX_RUNS: usize = 2000;
/// The largest report.json read, as `candor list`.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
/// The largest report.html served.
const MAX_PAGE_BYTES: u64 = 256 * 1024 * 1024;

/// Local runs' out dirs.
pub struct Runs {
    /// Out dirs given by name.
    dirs: Vec<PathBuf>,
    /// Where to look for more.
    root: Option<PathBuf>,
    /// Reports read, by path.
    reports: Mutex<HashMap<PathBuf, Read>>,
}

/// A report read, with the modification time and size of its file then.
type Read = (SystemTime, u64, Arc<Report>);

/// One out dir, read.
struct Run {
    key: String,
    dir: PathBuf,
    progress: Option<ProgressFile>,
    report: Option<Arc<Report>>,
}

impl Runs {
    pub fn new(dirs: Vec<PathBuf>, root: Option<PathBuf>) -> Runs {
        Runs {
            dirs,
            root,
            reports: Mutex::default(),
        }
    }

    pub async fn list(&self) -> Result<Vec<Row>, ViewError> {
        let mut rows: Vec<Row> = self.runs().await?.iter().map(Run::row).collect();
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(rows)
    }

    pub async fn detail(&self, key: &str) -> Result<Detail, ViewError> {
        let run = self.find(key).await?;
        Ok(Detail {
            row: run.row(),
            jobs_in_flight: None,
            cells: run.cells(),
            failures: run.failures(),
        })
    }

    pub async fn report_page(&self, key: &str) -> Result<Arc<Vec<u8>>, ViewError> {
        let run = self.find(key).await?;
        if !run.has_page() {
            return Err(ViewError::NoReport(format!(
                "{} has no report.html yet: a local run writes it when it ends",
                run.dir.display()
            )));
        }
        let path = run.dir.join("report.html");
        tokio::task::spawn_blocking(move || read_limited(&path, MAX_PAGE_BYTES).map(Arc::new))
            .await
            .map_err(|e| ViewError::Internal(e.to_string()))?
    }

    async fn find(&self, key: &str) -> Result<Run, ViewError> {
        self.runs()
            .await?
            .into_iter()
            .find(|r| r.key == key)
            .ok_or_else(|| ViewError::NotFound(key.to_string()))
    }

    /// Every out dir with a progress file or a report, read; keyed by sweep
    /// id (`-2`, `-3`… for a sweep in more than one dir).
    async fn runs(&self) -> Result<Vec<Run>, ViewError> {
        let (dirs, root) = (self.dirs.clone(), self.root.clone());
        let found = tokio::task::spawn_blocking(move || {
            let mut found = dirs;
            if let Some(root) = root {
                find_runs(&root, MAX_DEPTH, &mut found);
            }
            let mut seen = std::collections::HashSet::new();
            found
                .into_iter()
                .filter(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())))
                .take(MAX_RUNS)
                .map(|d| (progress_file::read(&d), d))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ViewError::Internal(e.to_string()))?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut runs = Vec::new();
        for (progress, dir) in found {
            let report = self.report(&dir).await;
            let Some(id) = progress
                .as_ref()
                .map(|p| p.sweep_id.clone())
                .or_else(|| report.as_ref().map(|r| r.sweep.id.clone()))
            else {
                continue;
            };
            let n = seen.entry(id.clone()).or_default();
            *n += 1;
            let key = if *n == 1 { id } else { format!("{id}-{n}") };
            runs.push(Run {
                key,
                dir,
                progress,
                report,
            });
        }
        Ok(runs)
    }

    /// The out dir's report.json, read again only when it changed.
    async fn report(&self, dir: &Path) -> Option<Arc<Report>> {
        let path = dir.join("report.json");
        let meta = std::fs::metadata(&path).ok()?;
        let (mtime, len) = (meta.modified().ok()?, meta.len());
        if let Some((t, l, r)) = self.reports.lock().expect("lock").get(&path)
            && (*t, *l) == (mtime, len)
        {
            return Some(r.clone());
        }
        if len > MAX_REPORT_BYTES {
            return None;
        }
        let p = path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read(p)).await.ok()?.ok()?;
        let report: Arc<Report> = Arc::new(serde_json::from_slice(&read).ok()?);
        let mut reports = self.reports.lock().expect("lock");
        if reports.len() >= MAX_RUNS {
            reports.clear();
        }
        reports.insert(path, (mtime, len, report.clone()));
        Some(report)
    }
}

/// Every out dir under `dir` (it included: one with a report.json or a
/// progress.json), `depth` levels down at most, at most `MAX_RUNS`.
pub fn find_runs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if out.len() >= MAX_RUNS {
        return;
    }
    if dir.join("report.json").is_file() || dir.join(progress_file::FILE).is_file() {
        out.push(dir.to_path_buf());
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for d in dirs {
        find_runs(&d, depth - 1, out);
    }
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ViewError> {
    let fail = |e: &dyn std::fmt::Display| ViewError::Internal(format!("{}: {e}", path.display()));
    let len = std::fs::metadata(path).map_err(|e| fail(&e))?.len();
    if len > limit {
        return Err(fail(&format_args!("larger than {limit} bytes")));
    }
    std::fs::read(path).map_err(|e| fail(&e))
}

impl Run {
    /// The state: the progress file's (a `running` one that stopped being
    /// rewritten is `stale`), else `done` or `partial` from the report.
    fn state(&self) -> String {
        match (&self.progress, &self.report) {
            (Some(p), _) if p.state == "running" => {
                let age = progress_file::now_ms().saturating_sub(p.updated_ms);
                if age > progress_file::STALE_AFTER_MS {
                    "stale"
                } else {
                    "running"
                }
                .to_string()
            }
            (Some(p), _) => p.state.clone(),
            (None, Some(r)) if r.sweep.jobs_done + r.sweep.jobs_skipped >= r.sweep.jobs_total => "done".into(),
            (None, _) => "partial".into(),
        }
    }

    /// Whether report.html is this run's (not an earlier run's of the same
    /// out dir, while this one goes).
    fn has_page(&self) -> bool {
        let running = self.progress.as_ref().is_some_and(|p| p.state == "running");
        !running && self.dir.join("report.html").is_file()
    }

    fn row(&self) -> Row {
        let (name, run_label, created, counts) = match (&self.progress, &self.report) {
            (Some(p), _) => (
                p.name.clone(),
                p.run_label.clone(),
                rfc3339(p.started_ms),
                (p.jobs_total, p.jobs_done, p.jobs_failed, p.cost_usd),
            ),
            (None, Some(r)) => {
                let s = &r.sweep;
                (
                    s.name.clone(),
                    s.provenance.run_label.clone(),
                    s.provenance.started_at.clone(),
                    (s.jobs_total, s.jobs_done, s.jobs_failed, s.cost_usd),
                )
            }
            (None, None) => unreachable!("a run has a progress file or a report"),
        };
        let reason = self.progress.as_ref().map(|p| p.reason.clone()).unwrap_or_default();
        Row {
            id: self.key.clone(),
            name,
            state: self.state(),
            reason,
            run_label,
            created,
            jobs_total: counts.0,
            jobs_done: counts.1,
            jobs_failed: counts.2,
            cost_usd: counts.3,
            dir: Some(self.dir.display().to_string()),
            report: self.has_page(),
        }
    }

    /// Progress by model × condition: the progress file's, else summed
    /// from the report's cells (each has the same number of jobs).
    fn cells(&self) -> Vec<CellRow> {
        if let Some(p) = &self.progress {
            return p
                .cells
                .iter()
                .map(|c| CellRow {
                    model: c.model.clone(),
                    condition: c.condition.clone(),
                    total: c.total,
                    done: c.done,
                    failed: c.failed,
                })
                .collect();
        }
        let Some(r) = &self.report else { return Vec::new() };
        let mut cells: Vec<CellRow> = Vec::new();
        for c in &r.cells {
            let done = c.n + c.incomplete + c.failed + c.truncated + c.filtered;
            match cells
                .iter_mut()
                .find(|x| x.model == c.model && x.condition == c.condition)
            {
                Some(x) => (x.done, x.failed) = (x.done + done, x.failed + c.failed),
                None => cells.push(CellRow {
                    model: c.model.clone(),
                    condition: c.condition.clone(),
                    total: 0,
                    done,
                    failed: c.failed,
                }),
            }
        }
        let per = r.sweep.jobs_total / (cells.len() as u64).max(1);
        cells.iter_mut().for_each(|c| c.total = per);
        cells
    }

    /// The failures the report groups (a run in progress has none yet).
    fn failures(&self) -> Vec<FailureRow> {
        let Some(r) = self.report.as_ref().filter(|_| self.has_page()) else {
            return Vec::new();
        };
        r.failures
            .iter()
            .map(|g| FailureRow {
                model: g.model.clone(),
                kind: g.kind.clone(),
                jobs: g.jobs,
                first_error: g.first_error.clone(),
            })
            .collect()
    }
}

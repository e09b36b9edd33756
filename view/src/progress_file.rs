//! `OUT/progress.json`: a local run's progress by model × condition, written
//! about once a second while `candor run` goes and once more when it ends,
//! for `candor view`. Each write is a whole file renamed into place, so a
//! reader never sees half of one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use candor_coordinator::{Outcome, Progress, RunError, RunSummary};
use candor_core::Sweep;
use serde::{Deserialize, Serialize};

/// The file's name in the out dir.
pub const FILE: &str = "progress.json";
/// The largest progress file read.
pub const MAX_BYTES: u64 = 4 << 20;
/// A file still saying `running` that has not been rewritten for this long
/// is from a run that died.
pub const STALE_AFTER_MS: u64 = 15_000;
/// How often the file is rewritten while the run goes.
const EVERY: Duration = Duration::from_secs(1);

/// What the file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressFile {
    pub sweep_id: String,
    pub name: String,
    #[serde(default)]
    pub run_label: Option<String>,
    /// `running`, then how the run ended: `done`, `interrupted`, `paused`,
    /// `budget_exhausted`, `stopped` (models given up on) or `failed`.
    pub state: String,
    /// Why it paused, stopped or failed.
    #[serde(default)]
    pub reason: String,
    pub started_ms: u64,
    pub updated_ms: u64,
    pub jobs_total: u64,
    /// Jobs with a result, earlier runs' included.
    pub jobs_done: u64,
    /// Jobs whose result is a failure.
    pub jobs_failed: u64,
    pub cost_usd: f64,
    pub cells: Vec<CellFile>,
}

/// One model × condition, summed over prompt variants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellFile {
    pub model: String,
    pub condition: String,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
}

/// Reads an out dir's progress file; None when there is none or it is not one.
pub fn read(dir: &Path) -> Option<ProgressFile> {
    let path = dir.join(FILE);
    if std::fs::metadata(&path).ok()?.len() > MAX_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Rewrites the progress file until finished.
pub struct Writer {
    file: Arc<Snapshot>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What a snapshot is made from.
struct Snapshot {
    path: PathBuf,
    sweep: Arc<Sweep>,
    progress: Arc<Progress>,
    started_ms: u64,
}

impl Writer {
    /// Starts writing `out`'s progress file for `sweep`.
    pub fn start(out: &Path, sweep: &Arc<Sweep>, progress: Arc<Progress>) -> Writer {
        let file = Arc::new(Snapshot {
            path: out.join(FILE),
            sweep: sweep.clone(),
            progress,
            started_ms: now_ms(),
        });
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let f = file.clone();
        let task = tokio::spawn(async move {
            let mut warned = false;
            loop {
                if let Err(e) = f.write("running", "")
                    && !std::mem::replace(&mut warned, true)
                {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot write the progress file");
                }
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Writer { file, stop, task }
    }

    /// Stops the rewrites and writes how the run ended.
    pub async fn finish(self, result: &Result<RunSummary, RunError>) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let (state, reason) = match result {
            Ok(s) => ended(&s.outcome),
            Err(e) => ("failed", e.to_string()),
        };
        if let Err(e) = self.file.write(state, &reason) {
            tracing::warn!(path = %self.file.path.display(), error = %e, "cannot write the progress file");
        }
    }
}

/// A run's outcome as the file's state and reason.
fn ended(o: &Outcome) -> (&'static str, String) {
    match o {
        Outcome::Completed => ("done", String::new()),
        Outcome::Interrupted => ("interrupted", String::new()),
        Outcome::Paused(why) => ("paused", why.clone()),
        Outcome::BudgetExhausted => ("budget_exhausted", String::new()),
        Outcome::ModelsFailed(why) => ("stopped", why.join("; ")),
    }
}

impl Snapshot {
    fn now(&self, state: &str, reason: &str) -> ProgressFile {
        let spec = &self.sweep.spec;
        let counts = self.progress.cells.snapshot();
        let cells: Vec<CellFile> = counts
            .iter()
            .map(|c| CellFile {
                model: spec.models[c.model].id.clone(),
                condition: spec.conditions[c.condition].name.clone(),
                total: c.total,
                done: c.done,
                failed: c.failed,
            })
            .collect();
        let done = cells.iter().map(|c| c.done).sum();
        ProgressFile {
            sweep_id: self.sweep.id.clone(),
            name: spec.name.clone(),
            run_label: (!self.sweep.run.is_empty()).then(|| self.sweep.run.clone()),
            state: state.to_string(),
            reason: reason.to_string(),
            started_ms: self.started_ms,
            updated_ms: now_ms(),
            jobs_total: self.sweep.total_jobs(),
            jobs_done: done,
            jobs_failed: cells.iter().map(|c| c.failed).sum(),
            cost_usd: counts.iter().map(|c| c.cost_micro_usd).sum::<u64>() as f64 / 1e6,
            cells,
        }
    }

    /// Writes the file whole under another name, then renames it into place;
    /// nothing until the run has opened its store (one that is in use by
    /// another run never gets this far, and leaves that run's file alone).
    fn write(&self, state: &str, reason: &str) -> std::io::Result<()> {
        let now = self.now(state, reason);
        if now.cells.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&now).expect("progress serializes");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &self.path)
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

//! A local run's archive, rewritten from the store's log after each run
//! (see `candor_archive::LocalWriter`): the same Parquet parts a cluster
//! writes, every one of them live.

use std::path::Path;

use candor_archive::LocalWriter;
use candor_store::SweepLog;

use crate::local::RunError;

/// Writes every result in `log` to the archive in directory `dir`.
pub fn write(sweep_id: &str, log: &SweepLog, dir: &Path) -> Result<(), RunError> {
    let mut w = LocalWriter::new(dir, sweep_id)?;
    let mut failed = None;
    log.scan(|meta, payload| {
        if failed.is_some() {
            return;
        }
        let pushed = match serde_json::from_slice(payload) {
            Ok(r) => w.push(r).map_err(RunError::from),
            Err(e) => Err(RunError::Unreadable {
                path: log.path().to_path_buf(),
                index: meta.index,
                reason: e.to_string(),
            }),
        };
        failed = pushed.err();
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let (results, bytes) = (w.results, w.bytes);
    let at = w.finish()?;
    tracing::info!(sweep.id = %sweep_id, results, bytes, archive = %at.display(), "archive written");
    Ok(())
}

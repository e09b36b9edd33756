//! candor's dispatch and aggregation. Today: the local runner, which
//! dispatches every job of a sweep to an in-process executor, keeps results
//! in the embedded store and writes the report.

pub mod local;
mod local_archive;
mod local_executor;
pub mod local_progress;
pub mod metrics;
pub mod server;

pub use local::{LocalOptions, Outcome, Progress, RunError, RunSummary, run_local};

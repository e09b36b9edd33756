//! candor's domain: sweep specs, the job space, results, judges, early
//! stopping, statistics. No I/O beyond reading specs and datasets; no async,
//! no network.

pub mod budget;
pub mod dataset;
pub mod early;
pub mod error;
pub mod hash;
pub mod jobs;
pub mod judge;
pub mod locate;
pub mod redact;
pub mod result;
pub mod retry;
pub mod spec;
pub mod stats;
pub mod template;
pub mod time;

pub use error::{BadLabel, KeyError, ReadError, RenderError, SpecError};
pub use jobs::{JobId, JobSpace, JobTuple};
pub use result::{ErrorKind, JobResult, Message, Reasoning, RecordMeta, Role, Status, Transcript, Usage, stop_status};
pub use spec::Sweep;

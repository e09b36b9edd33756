//! candor's shared domain: sweep specs, the job space, results, statistics,
//! reports and the embedded store. No I/O beyond reading specs and datasets
//! and the store's own files; no async, no network.

pub mod budget;
pub mod compare;
pub mod csv;
pub mod dataset;
pub mod early;
pub mod error;
pub mod hash;
pub mod html;
pub mod jobs;
pub mod judge;
pub mod locate;
pub mod redact;
pub mod report;
pub mod result;
pub mod retry;
pub mod spec;
pub mod stats;
pub mod store;
pub mod template;

pub use error::SpecError;
pub use jobs::{JobId, JobSpace, JobTuple};
pub use result::{ErrorKind, JobResult, Message, Role, Status, Transcript, Usage};
pub use spec::Sweep;

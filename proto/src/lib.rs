//! candor's gRPC API, package `candor.v1`, generated from `proto/` at build
//! time, and the bearer-token check every RPC goes through. No other crate
//! declares protobuf types.

pub mod auth;
pub mod trace;

pub mod v1 {
    tonic::include_proto!("candor.v1");
}

/// A spec bundle on the wire and in the domain are the same four fields.
impl From<candor_core::spec::Bundle> for v1::SpecBundle {
    fn from(b: candor_core::spec::Bundle) -> Self {
        v1::SpecBundle {
            spec_path: b.spec_path,
            spec: b.spec,
            files: b.files.into_iter().collect(),
            run: b.run,
        }
    }
}

impl From<v1::SpecBundle> for candor_core::spec::Bundle {
    fn from(b: v1::SpecBundle) -> Self {
        candor_core::spec::Bundle {
            spec_path: b.spec_path,
            spec: b.spec,
            files: b.files.into_iter().collect(),
            run: b.run,
        }
    }
}

impl From<candor_core::Status> for v1::JobStatus {
    fn from(s: candor_core::Status) -> Self {
        match s {
            candor_core::Status::Ok => v1::JobStatus::Ok,
            candor_core::Status::Incomplete => v1::JobStatus::Incomplete,
            candor_core::Status::Failed => v1::JobStatus::Failed,
            candor_core::Status::Truncated => v1::JobStatus::Truncated,
            candor_core::Status::Filtered => v1::JobStatus::Filtered,
        }
    }
}

/// A job status off the wire; a value this build does not know is `Failed`.
pub fn job_status(s: i32) -> candor_core::Status {
    match v1::JobStatus::try_from(s) {
        Ok(v1::JobStatus::Ok) => candor_core::Status::Ok,
        Ok(v1::JobStatus::Incomplete) => candor_core::Status::Incomplete,
        Ok(v1::JobStatus::Truncated) => candor_core::Status::Truncated,
        Ok(v1::JobStatus::Filtered) => candor_core::Status::Filtered,
        Ok(v1::JobStatus::Failed) | Err(_) => candor_core::Status::Failed,
    }
}

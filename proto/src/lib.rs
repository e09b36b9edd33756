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

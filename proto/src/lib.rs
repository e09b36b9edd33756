//! candor's gRPC API, package `candor.v1`, generated from `proto/` at build
//! time, and the bearer-token check every RPC goes through. No other crate
//! declares protobuf types.

pub mod auth;
pub mod trace;

pub mod v1 {
    tonic::include_proto!("candor.v1");
}

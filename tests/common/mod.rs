//! The integration tests' toolkit is the `candor-testkit` crate (Sandbox,
//! Redis, Cluster, SimServer, Chromium); `mod common;` brings it in.

#![allow(unused_imports)]

pub use candor_testkit::*;

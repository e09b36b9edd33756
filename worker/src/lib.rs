//! candor's fleet worker: leases batches of jobs from the coordinator, runs
//! them with candor-exec's executor, renews the leases, records the results
//! (in Redis, or through the coordinator), and hands unfinished jobs back on
//! shutdown. Its rate-limit budgets, response cache and journal of batches
//! live in Redis, shared by the whole fleet.

pub mod batches;
pub mod cache;
pub mod limit;
pub mod metrics;
pub mod remote;

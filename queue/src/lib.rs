//! Sweep state in Redis.

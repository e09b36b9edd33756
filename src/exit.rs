//! Exit codes, one per kind of outcome a script may want to tell apart.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// Something went wrong at run time (the store, the disk).
pub const FAILURE: i32 = 1;
/// The input is wrong: a spec, a file it names, a flag. Nothing was written.
pub const BAD_INPUT: i32 = 2;
/// Stopped by SIGINT or SIGTERM; running the same command again resumes.
pub const INTERRUPTED: i32 = 130;

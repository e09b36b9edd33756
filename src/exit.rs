//! Exit codes, one per kind of outcome a script may want to tell apart.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// Something went wrong at run time (the store, the disk, an RPC).
pub const FAILURE: i32 = 1;
/// The input is wrong: a spec, a file it names, a flag. Nothing was written.
pub const BAD_INPUT: i32 = 2;
/// The coordinator refused the token.
pub const ACCESS: i32 = 3;
/// No such sweep.
pub const NOT_FOUND: i32 = 4;
/// The coordinator (or its Redis) could not be reached.
pub const UNAVAILABLE: i32 = 5;
/// The sweep's budget was spent before every job ran; the report covers what ran.
pub const BUDGET: i32 = 6;
/// The sweep ran, but more of its jobs failed than `--max-failed` allows (or a
/// model that could not answer at all was given up on); the report is written.
pub const JOBS_FAILED: i32 = 7;
/// Stopped by SIGINT or SIGTERM; running the same command again resumes.
pub const INTERRUPTED: i32 = 130;

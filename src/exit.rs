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

/// Every exit code with what it means, as `--help` lists them.
pub const CODES: &[(i32, &str)] = &[
    (OK, "done"),
    (FAILURE, "a run-time failure: the store, the disk, an RPC"),
    (
        BAD_INPUT,
        "bad input: a spec, a file it names, a flag; nothing was written",
    ),
    (
        ACCESS,
        "a credential was refused: the coordinator's token, or a provider's API key",
    ),
    (NOT_FOUND, "no such sweep"),
    (UNAVAILABLE, "the coordinator or its Redis cannot be reached"),
    (
        BUDGET,
        "the budget was spent before every job ran; the report covers what ran",
    ),
    (
        JOBS_FAILED,
        "more jobs failed than --max-failed allows; the report is written and says FAILED",
    ),
    (INTERRUPTED, "interrupted (SIGINT, SIGTERM); the same command resumes"),
];

/// What an error or an outcome means to a script: every mapping to an exit
/// code is here, one `impl` per type a command can end with.
pub trait Coded {
    fn exit_code(&self) -> i32;
}

impl Coded for tonic::Status {
    fn exit_code(&self) -> i32 {
        use tonic::Code;
        match self.code() {
            Code::InvalidArgument => BAD_INPUT,
            Code::Unauthenticated | Code::PermissionDenied => ACCESS,
            Code::NotFound => NOT_FOUND,
            Code::Unavailable => UNAVAILABLE,
            _ => FAILURE,
        }
    }
}

impl Coded for candor_coordinator::RunError {
    fn exit_code(&self) -> i32 {
        use candor_coordinator::RunError;
        match self {
            RunError::Store(_)
            | RunError::Export(_)
            | RunError::Cache { .. }
            | RunError::Journal { .. }
            | RunError::WriterPanicked
            | RunError::Archive(_)
            | RunError::Unreadable { .. } => FAILURE,
        }
    }
}

impl Coded for candor_coordinator::Outcome {
    fn exit_code(&self) -> i32 {
        use candor_coordinator::Outcome;
        match self {
            Outcome::Completed => OK,
            Outcome::ModelsFailed(_) => JOBS_FAILED,
            Outcome::Interrupted => INTERRUPTED,
            Outcome::BudgetExhausted => BUDGET,
            Outcome::Paused(_) => ACCESS,
        }
    }
}

impl Coded for candor_core::SpecError {
    fn exit_code(&self) -> i32 {
        BAD_INPUT
    }
}

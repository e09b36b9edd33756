pub mod bench;
pub mod bench_distributed;
pub mod bench_ratelimit;
pub mod calibrate;
pub mod compare;
pub mod remote;
pub mod run;
pub mod serve;
pub mod validate;

use std::path::Path;

use candor_core::{SpecError, Sweep};

/// Loads a spec, printing the error the way every command does.
pub fn load(spec: &Path) -> Result<Sweep, i32> {
    Sweep::load(spec).map_err(|e: SpecError| {
        eprintln!("error: {e}");
        crate::exit::BAD_INPUT
    })
}

/// Loads a spec that this process will run: its API keys must be here too.
pub fn load_to_run(spec: &Path) -> Result<Sweep, i32> {
    let sweep = load(spec)?;
    sweep.check_keys().map_err(|e| {
        eprintln!("error: {e}");
        crate::exit::BAD_INPUT
    })?;
    Ok(sweep)
}

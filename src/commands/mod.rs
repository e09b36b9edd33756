pub mod bench;
pub mod bench_distributed;
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

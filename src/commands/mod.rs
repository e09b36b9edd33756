pub mod bench;
pub mod bench_distributed;
pub mod bench_ratelimit;
pub mod calibrate;
pub mod compare;
pub mod probe;
pub mod remote;
pub mod run;
pub mod serve;
pub mod validate;

use std::path::Path;

use candor_core::Sweep;
use candor_core::spec::Bundle;

/// The spec and the files it names, under the run label `--run` gave, if any.
pub fn bundle(spec: &Path, run: Option<&str>) -> Result<Bundle, String> {
    let mut bundle = Bundle::collect(spec).map_err(|e| e.to_string())?;
    if let Some(run) = run {
        candor_core::spec::check_run_label(run).map_err(|m| format!("--run: {m}"))?;
        bundle.run = run.to_string();
    }
    Ok(bundle)
}

/// Loads a spec that this process will run, under a run label if given: its
/// API keys must be here too.
pub fn load_to_run(spec: &Path, run: Option<&str>) -> Result<Sweep, i32> {
    let fail = |e: String| {
        eprintln!("error: {e}");
        crate::exit::BAD_INPUT
    };
    let sweep = bundle(spec, run)
        .and_then(|b| Sweep::from_bundle(&b).map_err(|e| e.to_string()))
        .map_err(fail)?;
    sweep.check_keys().map_err(|e| {
        eprintln!("error: {e}");
        crate::exit::BAD_INPUT
    })?;
    Ok(sweep)
}

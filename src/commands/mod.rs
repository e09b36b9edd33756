pub mod calibrate;
pub mod compare;
pub mod export;
pub mod init;
pub mod list;
pub mod probe;
pub mod remote;
pub mod run;
pub mod serve;
pub mod sim_server;
pub mod validate;
pub mod view;

use std::path::Path;

use candor_core::Sweep;
use candor_core::spec::ParsedBundle;

/// `--seeds`, `--limit` and `--model`: the spec's sweep, changed without
/// editing it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Scale {
    /// Run this model instead of the spec's models (repeatable): a name with its provider
    /// (`anthropic/NAME`, `openai/NAME`, the key from ANTHROPIC_API_KEY or OPENAI_API_KEY), or a
    /// whole entry in YAML (`{model: openai-compatible/NAME, base_url: URL}`).
    #[arg(long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// Run the dataset's first N queries only (the spec's dataset.limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub limit: Option<u64>,
    /// Run N seeds per model × variant × query × condition instead of the spec's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub seeds: Option<u32>,
}

/// The spec (parsed once) and the files it names, scaled by `--seeds` and
/// `--limit`, under the run label `--run` gave, if any.
pub fn bundle(spec: &Path, run: Option<&str>, scale: &Scale) -> Result<ParsedBundle, String> {
    let mut bundle = ParsedBundle::collect(spec).map_err(|e| e.to_string())?;
    bundle
        .set_overrides(scale.seeds, scale.limit.map(|n| n as usize), &scale.models)
        .map_err(|e| e.to_string())?;
    if let Some(run) = run {
        candor_core::spec::check_run_label(run).map_err(|m| format!("--run: {m}"))?;
        bundle.set_run(run);
    }
    Ok(bundle)
}

/// Loads a spec that this process will run, under a run label if given: its
/// API keys must be here too.
pub fn load_to_run(spec: &Path, run: Option<&str>, scale: &Scale) -> Result<Sweep, i32> {
    let fail = |e: String| {
        eprintln!("error: {e}");
        crate::exit::BAD_INPUT
    };
    let sweep = bundle(spec, run, scale)
        .and_then(|b| Sweep::from_parsed(&b).map_err(|e| e.to_string()))
        .map_err(fail)?;
    sweep.check_keys().map_err(|e| {
        eprintln!("error: {e}");
        crate::exit::BAD_INPUT
    })?;
    Ok(sweep)
}

/// Parses a share of jobs: a number from 0 to 1.
pub fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a share of jobs between 0 and 1 (0.01 is 1%)")),
    }
}

/// What this process's batches did, on stderr, when it sent any.
pub fn print_batches() {
    let s = candor_exec::batch::stats::STATS.snapshot();
    if s.batches + s.followed == 0 {
        return;
    }
    eprintln!(
        "batches: {} submitted with {} requests: {} succeeded, {} errored, {} expired, {} canceled; \
         {} sent again in a later batch; {} calls found their request in a batch recorded earlier (by a process \
         that stopped, or asked before) and waited for it",
        s.batches, s.requests, s.succeeded, s.errored, s.expired, s.canceled, s.retried, s.followed
    );
}

/// Prints a report's failures by model and reason on stderr, if it has any.
pub fn print_failures(report: &candor_report::report::Report) {
    if report.failures.is_empty() {
        return;
    }
    let s = &report.sweep;
    eprintln!(
        "failures: {} of {} jobs with a result failed ({:.1}%):",
        s.jobs_failed,
        s.jobs_done,
        s.failed_share * 100.0
    );
    for g in &report.failures {
        eprintln!("  {}: {} × {}: {}", g.model, g.jobs, g.kind, g.first_error);
        if let Some(h) = &g.hint {
            eprintln!("    {h}");
        }
    }
}

/// The exit code of a sweep that ended: 0 unless more of its jobs failed
/// than `max_failed` (a share of the jobs with a result) allows.
pub fn failed_verdict(report: &candor_report::report::Report, max_failed: f64) -> i32 {
    let s = &report.sweep;
    if s.jobs_failed > 0 && s.failed_share > max_failed {
        eprintln!(
            "failed: {} of {} jobs failed ({:.1}%), more than --max-failed {} allows",
            s.jobs_failed,
            s.jobs_done,
            s.failed_share * 100.0,
            max_failed
        );
        crate::exit::JOBS_FAILED
    } else {
        crate::exit::OK
    }
}

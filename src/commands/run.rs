use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candor_coordinator::{LocalOptions, Outcome, Progress, RunSummary, run_local};
use candor_core::Sweep;

use crate::exit::{self, Coded};
use crate::progress::Display;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The sweep spec (YAML).
    spec: PathBuf,
    /// Where to write results.jsonl, results.csv, report.json, report.md and report.html [default: runs/<sweep name>, or runs/<sweep name>/<run label> with --run]
    #[arg(long, env = "CANDOR_OUT")]
    out: Option<PathBuf>,
    /// The embedded store: a directory that keeps results across runs, so a rerun resumes.
    #[arg(long, env = "CANDOR_STORE", default_value = ".candor/store")]
    store: PathBuf,
    /// Jobs calling the models under test at once; with batched models, how many calls a batch can gather [default: 32, or 10000 when every model under test is batched]
    #[arg(long, env = "CANDOR_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: Option<u32>,
    /// Jobs calling their judges at once: the judge stage has slots of its own [default: --concurrency]
    #[arg(long, env = "CANDOR_JUDGE_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    judge_concurrency: Option<u32>,
    /// Call the models even for requests the response cache has answered before.
    #[arg(long)]
    no_cache: bool,
    /// A run label: the same spec under another label is another sweep, with fresh samples.
    #[arg(long, env = "CANDOR_RUN")]
    run: Option<String>,
    /// The share of jobs (0 to 1) that may fail with the run still exiting 0 [default: the spec's max_failed, else 0]
    #[arg(long, env = "CANDOR_MAX_FAILED", value_parser = super::share)]
    max_failed: Option<f64>,
    /// Give up on a model whose first N jobs all fail for a reason that will not pass (no connection, 404, 400); 0 never gives up [default: the spec's fail_fast, else 20]
    #[arg(long, env = "CANDOR_FAIL_FAST", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    fail_fast: Option<u32>,
    /// Do not show progress.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    scale: super::Scale,
}

pub async fn run(args: RunArgs) -> i32 {
    let sweep = match super::load_to_run(&args.spec, args.run.as_deref(), &args.scale) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let opts = options(&args, &sweep);
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_signals(stop.clone()));
    let progress = Arc::new(Progress::default());
    if !args.quiet {
        eprintln!(
            "sweep {} (id {}): {} jobs; store {}",
            sweep.spec.name,
            sweep.id,
            sweep.total_jobs(),
            opts.store.display()
        );
    }
    let display = Display::start(progress.clone(), !args.quiet);
    let live = candor_view::progress_file::Writer::start(&opts.out, &sweep, progress.clone());
    let result = run_local(sweep.clone(), &opts, progress, stop).await;
    display.finish().await;
    live.finish(&result).await;
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    print_summary(&summary, &sweep, args.quiet);
    super::print_batches();
    if !args.quiet {
        let archive = args.store.join(candor_coordinator::local::ARCHIVE_DIR).join(&sweep.id);
        println!("archive: {} (Parquet)", archive.display());
        println!(
            "export: candor export {} --format parquet|jsonl|csv|inspect",
            summary.out.display()
        );
    }
    let max_failed = args.max_failed.or(sweep.spec.max_failed).unwrap_or(0.0);
    verdict(&summary, &sweep, max_failed)
}

/// Jobs in flight when every model under test is batched: a job waiting for
/// its batch costs a few kilobytes, and a batch holds what is in flight.
const BATCHED_CONCURRENCY: u32 = 10_000;

/// The runner's options: flags over the spec's settings over defaults.
fn options(args: &RunArgs, sweep: &Sweep) -> LocalOptions {
    let out = args.out.clone().unwrap_or_else(|| {
        let dir = PathBuf::from("runs").join(&sweep.spec.name);
        match &args.run {
            Some(label) => dir.join(label),
            None => dir,
        }
    });
    let batched = sweep.spec.models.iter().all(|m| m.batched().is_some());
    let concurrency = args
        .concurrency
        .unwrap_or(if batched { BATCHED_CONCURRENCY } else { 32 });
    LocalOptions {
        store: args.store.clone(),
        out,
        concurrency: concurrency as usize,
        judge_concurrency: args.judge_concurrency.unwrap_or(concurrency) as usize,
        cache: !args.no_cache,
        fail_fast: args
            .fail_fast
            .or(sweep.spec.fail_fast)
            .unwrap_or(candor_core::spec::DEFAULT_FAIL_FAST),
    }
}

/// What the run did: the store's repairs, what was resumed, the table, the
/// failures, what was written.
fn print_summary(summary: &RunSummary, sweep: &Sweep, quiet: bool) {
    if summary.dropped_bytes > 0 {
        eprintln!(
            "store: dropped {} bytes of a result cut short by an earlier crash",
            summary.dropped_bytes
        );
    }
    if summary.resumed > 0 && !quiet {
        eprintln!(
            "resumed: {} of {} jobs already had results; ran {}",
            summary.resumed,
            sweep.total_jobs(),
            summary.ran
        );
    }
    println!("{}", summary.report.to_table());
    super::print_failures(&summary.report);
    println!(
        "ran {} jobs in {:.1}s; wrote report.json, report.md, report.html, results.jsonl, results.csv to",
        summary.ran,
        summary.elapsed.as_secs_f64()
    );
    println!("  {}/", summary.out.display());
}

/// How the run ended, said on stderr, and its exit code.
fn verdict(summary: &RunSummary, sweep: &Sweep, max_failed: f64) -> i32 {
    let (done, total) = (summary.report.sweep.jobs_done, sweep.total_jobs());
    match &summary.outcome {
        Outcome::Completed => return super::failed_verdict(&summary.report, max_failed),
        Outcome::ModelsFailed(why) => {
            for w in why {
                eprintln!("stopped: {w}");
            }
            eprintln!("{done} of {total} jobs have results; fix what is named above and run the same command again");
        }
        Outcome::Interrupted => {
            eprintln!("interrupted: {done} of {total} jobs have results; run the same command again to finish");
        }
        Outcome::BudgetExhausted => eprintln!(
            "budget exhausted: ${:.2} spent; {done} of {total} jobs have results",
            summary.report.sweep.cost_usd
        ),
        Outcome::Paused(why) => {
            eprintln!("paused: {why}\n{done} of {total} jobs have results; fix the key and run the same command again");
        }
    }
    summary.outcome.exit_code()
}

/// Sets `stop` on the first SIGINT or SIGTERM; a second one exits at once.
async fn watch_signals(stop: Arc<AtomicBool>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    for _ in 0..2 {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if stop.swap(true, Ordering::Relaxed) {
            std::process::exit(exit::INTERRUPTED);
        }
        eprintln!("stopping: finishing the jobs in flight (interrupt again to quit now)");
    }
}

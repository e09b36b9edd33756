//! The `candor` command. Parses arguments, sets up telemetry and hands over
//! to the library crates; see `commands/`.

mod client;
mod commands;
mod config;
mod dotenv;
mod exit;
mod help;
mod progress;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "candor",
    version,
    about = "Sweeps that measure whether a language model behaves differently when it believes it is watched"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter sweep (spec, prompts, requests) into a directory.
    Init(commands::init::InitArgs),
    /// Run a whole sweep in this process, on the embedded store.
    Run(commands::run::RunArgs),
    /// Check a sweep spec and print its job count by model × condition.
    Validate {
        /// The sweep spec (YAML).
        spec: PathBuf,
    },
    /// What changed between two reports or sweeps, with intervals; flags real changes.
    ///
    /// Per cell: compliance, the gap and the alignment-faking rate.
    Compare(commands::compare::CompareArgs),
    /// Check a classifier against human labels: accuracy, precision, recall, AUROC.
    Calibrate(commands::calibrate::CalibrateArgs),
    /// Serve the gRPC coordinator: sweeps and their state in Redis.
    Coordinator(commands::serve::CoordinatorArgs),
    /// Run jobs leased from a coordinator.
    Worker(commands::serve::WorkerArgs),
    /// Submit a sweep to a coordinator; prints its id.
    Submit(commands::remote::SubmitArgs),
    /// Show a submitted sweep's progress.
    Status(commands::remote::StatusArgs),
    /// Follow a submitted sweep until it ends, with a bar per model × condition.
    Watch(commands::remote::WatchArgs),
    /// Write a submitted sweep's report.json, report.md and report.html.
    ///
    /// Its results: `candor export`.
    Report(commands::remote::ReportArgs),
    /// Export a sweep's results as Parquet, JSON lines, CSV or Inspect eval logs.
    ///
    /// From a local run's out dir, or a submitted sweep's id.
    Export(commands::export::ExportArgs),
    /// Stop a submitted sweep.
    Cancel(commands::remote::IdArgs),
    /// Lease a paused sweep's jobs again, once what paused it is fixed.
    Resume(commands::remote::IdArgs),
    /// Delete an ended sweep: its state in Redis and its archive parts.
    ///
    /// Cancel a running one first.
    Delete(commands::remote::IdArgs),
    /// List the local runs under runs/ and, with a coordinator, its sweeps.
    List(commands::list::ListArgs),
    /// Serve a live, read-only web view of local runs, for a browser.
    View(commands::view::ViewArgs),
    /// Serve the Anthropic and OpenAI APIs from the simulated model (dry runs, load tests).
    SimServer(commands::sim_server::SimServerArgs),
    /// GET a health endpoint; exit 0 on a 2xx answer (a container health check).
    Probe(commands::probe::ProbeArgs),
}

fn main() -> ExitCode {
    // Two TLS providers are linked (ring for candor's own clients and
    // servers, aws-lc-rs by the object store's HTTP client): name the one
    // every TLS configuration without an explicit provider uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Before the arguments are read: a `.env` may hold CANDOR_* settings.
    if let Ok(dir) = std::env::current_dir()
        && let Err(e) = dotenv::apply(&dir)
    {
        eprintln!("error: {e}");
        return ExitCode::from(exit::BAD_INPUT as u8);
    }
    let matches = help::decorate(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let effective = match &cli.command {
        Command::Coordinator(a) if a.dump_config() => Some(Vec::new()),
        Command::Worker(a) if a.dump_config() => Some(a.effective()),
        _ => None,
    };
    if let (Some(effective), Some((name, sub))) = (effective, matches.subcommand()) {
        let cmd = Cli::command();
        let cmd = cmd.find_subcommand(name).expect("the parsed subcommand");
        print!("{}", config::dump(cmd, sub, &effective));
        return ExitCode::SUCCESS;
    }
    let code = match cli.command {
        Command::Probe(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(commands::probe::probe(args)),
        Command::Init(args) => commands::init::init(args),
        Command::Validate { spec } => {
            let _guard = telemetry::init("candor", "warn");
            commands::validate::validate(&spec)
        }
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let service = matches!(
                    command,
                    Command::Coordinator(_) | Command::Worker(_) | Command::SimServer(_)
                );
                let name = match command {
                    Command::Coordinator(_) => "candor-coordinator",
                    Command::Worker(_) => "candor-worker",
                    _ => "candor",
                };
                let _guard = telemetry::init(name, if service { "info" } else { "warn" });
                match command {
                    Command::Run(args) => commands::run::run(args).await,
                    Command::Calibrate(args) => commands::calibrate::calibrate(args).await,
                    Command::Compare(args) => commands::compare::compare(args).await,
                    Command::Coordinator(args) => commands::serve::coordinator(args).await,
                    Command::Worker(args) => commands::serve::worker(args).await,
                    Command::Submit(args) => commands::remote::submit(args).await,
                    Command::Status(args) => commands::remote::status(args).await,
                    Command::Watch(args) => commands::remote::watch(args).await,
                    Command::Report(args) => commands::remote::report(args).await,
                    Command::Export(args) => commands::export::export(args).await,
                    Command::Cancel(args) => commands::remote::cancel(args).await,
                    Command::Resume(args) => commands::remote::resume(args).await,
                    Command::Delete(args) => commands::remote::delete(args).await,
                    Command::List(args) => commands::list::list(args).await,
                    Command::View(args) => commands::view::view(args).await,
                    Command::SimServer(args) => commands::sim_server::sim_server(args).await,
                    Command::Validate { .. } | Command::Probe(_) | Command::Init(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    };
    ExitCode::from(code as u8)
}

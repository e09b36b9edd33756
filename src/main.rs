//! The `candor` command. Parses arguments, sets up telemetry and hands over
//! to the library crates; see `commands/`.

mod client;
mod commands;
mod config;
mod dotenv;
mod exit;
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
    /// Run a whole sweep in this process, on the embedded store.
    Run(commands::run::RunArgs),
    /// Check a sweep spec and print its job count by model × condition.
    Validate {
        /// The sweep spec (YAML).
        spec: PathBuf,
    },
    /// What changed between two reports or sweeps: per cell, gap and alignment-faking rate, with intervals; flags real changes.
    Compare(commands::compare::CompareArgs),
    /// Check a classifier against human-labelled examples: accuracy, precision, recall, AUROC.
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
    /// Write a submitted sweep's report.json, report.md and report.html (its results: `candor export`).
    Report(commands::remote::ReportArgs),
    /// Export a sweep's results (a local out dir, or a submitted sweep's id) as Parquet, JSON lines or CSV.
    Export(commands::export::ExportArgs),
    /// Stop a submitted sweep.
    Cancel(commands::remote::IdArgs),
    /// Lease a paused sweep's jobs again, once what paused it is fixed.
    Resume(commands::remote::IdArgs),
    /// Delete an ended sweep: everything stored for it in Redis and its archive parts (cancel a running one first).
    Delete(commands::remote::IdArgs),
    /// List the local runs under runs/ and, with a coordinator, the sweeps it knows.
    List(commands::list::ListArgs),
    /// Serve the Anthropic and OpenAI APIs from the simulated model, for dry runs and load tests.
    SimServer(commands::serve::SimServerArgs),
    /// GET a service's health endpoint and exit 0 on a 2xx answer (a container health check).
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
    let matches = Cli::command().get_matches();
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
                    Command::SimServer(args) => commands::serve::sim_server(args).await,
                    Command::Validate { .. } | Command::Probe(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    };
    ExitCode::from(code as u8)
}

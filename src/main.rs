//! The `candor` command. Parses arguments, sets up logging and hands over to
//! the library crates; see `commands/`.

mod commands;
mod exit;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Measure local throughput and peak memory on a generated sim sweep.
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CANDOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let code = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Validate { spec } => commands::validate::validate(&spec),
        Command::Bench(args) => commands::bench::bench(args),
    };
    ExitCode::from(code as u8)
}

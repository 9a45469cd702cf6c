use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hostscope_collector::FileConfig;
use hostscope_core::app;

/// Gathers this server's metrics and writes them to InfluxDB.
#[derive(Parser)]
#[command(name = "hostscope-collector", version, about)]
struct Cli {
    /// Configuration file [default: /etc/hostscope/hostscope.toml]
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and exit: 0 if valid, 2 listing every error by key.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig) => app::check_config::<FileConfig>(cli.config),
        None => app::serve::<FileConfig, _, _, _>(cli.config, hostscope_collector::run),
    }
}

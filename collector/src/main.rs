use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hostscope_collector::{Collector, FileConfig};
use hostscope_core::app;
use hostscope_core::lineproto::{self, Precision};

/// Gathers this server's metrics and writes them to InfluxDB.
#[derive(Parser)]
#[command(name = "hostscope-collector", version, about)]
struct Cli {
    /// Configuration file [default: /etc/hostscope/hostscope.toml]
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Gather one cycle (two samples a second apart), print it as line protocol on
    /// stdout, write nothing, and exit, like `telegraf --test`.
    #[arg(long)]
    once: bool,
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
        None if cli.once => once(cli.config),
        None => app::serve::<FileConfig, _, _, _>(cli.config, hostscope_collector::run),
    }
}

fn once(config: Option<PathBuf>) -> ExitCode {
    app::one_shot::<FileConfig, _, _>(config, |settings| async move {
        let points = match Collector::new(settings) {
            Ok(collector) => collector.once().await,
            Err(error) => {
                tracing::error!(message = "cannot set up the inputs", error = %format!("{error:#}"));
                return ExitCode::FAILURE;
            }
        };
        let mut buf = Vec::with_capacity(points.len() * 160);
        lineproto::encode_all(&points, Precision::Nanoseconds, &mut buf);
        if std::io::stdout().write_all(&buf).is_err() {
            return ExitCode::FAILURE;
        }
        ExitCode::SUCCESS
    })
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hostscope_analyzer::FileConfig;
use hostscope_core::app;

/// Watches the stored metrics, raises alerts and sends reports.
#[derive(Parser)]
#[command(name = "hostscope-analyzer", version, about)]
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
    /// Score labelled series offline: read every `<category>/<name>.csv`
    /// (`timestamp,value`) under --input, run a detector over each in time order and
    /// write `<category>/<name>.csv` (`timestamp,anomaly_score`, scores in [0, 1])
    /// under --output. Here --config names a TOML file of the detector's parameters.
    Eval {
        /// Folder of series: `<category>/<name>.csv`
        #[arg(long, value_name = "DIR")]
        input: PathBuf,
        /// Folder for the scores (created)
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// novelty (the production detector), ewma, 3sigma, quantile or iforest
        #[arg(long, value_name = "NAME", default_value = "novelty")]
        detector: String,
        /// Worker threads [default: the available cores]
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig) => app::check_config::<FileConfig>(cli.config),
        Some(Command::Eval {
            input,
            output,
            detector,
            threads,
        }) => eval(&input, &output, &detector, cli.config.as_deref(), threads),
        None => app::serve::<FileConfig, _, _, _>(cli.config, hostscope_analyzer::run),
    }
}

#[allow(clippy::print_stderr)]
fn eval(
    input: &Path,
    output: &Path,
    detector: &str,
    config: Option<&Path>,
    threads: Option<usize>,
) -> ExitCode {
    use hostscope_analyzer::eval;
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let result = eval::EvalDetector::from_name(detector, config)
        .and_then(|d| eval::run(input, output, &d, threads));
    match result {
        Ok(s) => {
            println!(
                "{detector}: scored {} files, {} rows in {:.3} s into {}",
                s.files,
                s.rows,
                s.elapsed.as_secs_f64(),
                output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

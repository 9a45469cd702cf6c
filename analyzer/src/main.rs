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
    /// Make an anomaly report now and mail it (through [smtp]); it is also kept for
    /// the web's list.
    Report {
        /// The period it covers, ending now: 24h, 7d...
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        period: String,
        /// A recipient; repeat for several [default: smtp.to]
        #[arg(long, value_name = "ADDRESS")]
        to: Vec<String>,
        /// Only this host; repeat for several [default: every host]
        #[arg(long, value_name = "HOST")]
        host: Vec<String>,
        /// en or zh-CN [default: analyzer.language]
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
        /// Times in the report at this UTC offset, like +08:00
        #[arg(long, value_name = "OFFSET", default_value = "+00:00")]
        timezone: String,
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
        Some(Command::Report {
            period,
            to,
            host,
            language,
            timezone,
        }) => report(
            cli.config,
            &period,
            &to,
            &host,
            language.as_deref(),
            &timezone,
        ),
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

#[allow(clippy::print_stderr)]
fn report(
    config: Option<PathBuf>,
    period: &str,
    to: &[String],
    hosts: &[String],
    language: Option<&str>,
    timezone: &str,
) -> ExitCode {
    use hostscope_analyzer::report::{range_ending, Language, ReportStore, UtcOffset};
    use hostscope_analyzer::service::{make_report, now_ms, ReportContext, ReportJob};
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(app::EXIT_CONFIG)
    };
    let range = match humantime::parse_duration(period) {
        Ok(p) => match range_ending(now_ms(), p) {
            Some(r) => r,
            None => return fail(format!("--period {period:?} must be at least 1m")),
        },
        Err(e) => {
            return fail(format!(
                "--period {period:?} is not a duration like 24h: {e}"
            ))
        }
    };
    let language = match language.map(str::parse::<Language>) {
        Some(Err(e)) => return fail(format!("--language: {e}")),
        Some(Ok(l)) => Some(l),
        None => None,
    };
    let offset = match timezone.parse::<UtcOffset>() {
        Ok(o) => o,
        Err(e) => return fail(format!("--timezone: {e}")),
    };
    let mut errors = hostscope_core::config::ConfigErrors::new("--to");
    let to = hostscope_analyzer::notify::config::parse_mailboxes("--to", to, &mut errors);
    if !errors.issues.is_empty() {
        app::report_config_errors(&errors);
        return ExitCode::from(app::EXIT_CONFIG);
    }
    app::one_shot::<FileConfig, _, _>(config, |settings| async move {
        let ctx = ReportContext {
            client: match hostscope_core::influx::Client::new(settings.influx) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            },
            notify: settings.notify,
            store: std::sync::Arc::new(ReportStore::new(&settings.state_dir)),
        };
        let hosts = (!hosts.is_empty()).then_some(hosts);
        let result = make_report(
            &ctx,
            ReportJob {
                name: None,
                range,
                hosts,
                to: &to,
                language,
                offset,
            },
        )
        .await;
        match result {
            Ok(o) => {
                println!(
                    "sent \"{}\" to {} recipient(s); kept as report {}",
                    o.subject, o.recipients, o.id
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

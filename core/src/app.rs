//! What every hostscope program does the same way at its edge: load and validate its
//! configuration, report errors for `check-config`, set up logging, and wait for
//! SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::config::{self, ConfigErrors, Sources};

/// Exit status of `check-config` (and of a start) when the configuration is invalid.
pub const EXIT_CONFIG: u8 = 2;

/// A program's configuration file shape: the sections it reads, turned into typed
/// settings by one `validate` that reports every problem with its key.
pub trait ProgramConfig: DeserializeOwned {
    type Settings;
    fn validate(&self) -> Result<Self::Settings, ConfigErrors>;
}

/// Load the layered configuration (`--config PATH`, else the default path, then the
/// environment) and validate it.
pub fn load<C: ProgramConfig>(path: Option<PathBuf>) -> Result<C::Settings, ConfigErrors> {
    let sources = Sources {
        file: path,
        env: None,
    };
    let (raw, mut errors) = config::load_partial::<C>(&sources);
    // A key the loader refused was taken out; what validation then says about it
    // (missing, say) would only repeat the loader's error.
    let refused: Vec<String> = errors.issues.iter().map(|i| i.key.clone()).collect();
    let settings = raw.and_then(|raw| match raw.validate() {
        Ok(s) => Some(s),
        Err(e) => {
            errors.issues.extend(e.issues.into_iter().filter(|i| {
                !refused.iter().any(|r| {
                    !r.is_empty()
                        && (i.key == *r
                            || i.key.starts_with(&format!("{r}."))
                            || r.starts_with(&format!("{}.", i.key)))
                })
            }));
            None
        }
    });
    match settings {
        Some(s) if errors.is_empty() => Ok(s),
        _ => Err(errors),
    }
}

/// `check-config`: print the verdict; 0 when valid, 2 with every error otherwise.
pub fn check_config<C: ProgramConfig>(path: Option<PathBuf>) -> ExitCode {
    match load::<C>(path) {
        Ok(_) => {
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            report_config_errors(&errors);
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Print configuration errors to stderr, one per line.
#[allow(clippy::print_stderr)]
pub fn report_config_errors(errors: &ConfigErrors) {
    eprintln!("{errors}");
}

/// Log to stderr; `RUST_LOG` (e.g. `hostscope=debug`) overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Load the configuration (reporting errors), start logging and a runtime: the first
/// steps of [`serve`] and [`one_shot`]. `Err` is the exit code to leave with.
fn start<C: ProgramConfig>(
    path: Option<PathBuf>,
) -> Result<(C::Settings, tokio::runtime::Runtime), ExitCode> {
    let settings = match load::<C>(path) {
        Ok(s) => s,
        Err(errors) => {
            report_config_errors(&errors);
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    init_logging();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok((settings, rt)),
        Err(error) => {
            tracing::error!(message = "cannot start the async runtime", %error);
            Err(ExitCode::FAILURE)
        }
    }
}

/// The body of every program's `main` when it runs as a service: load the
/// configuration (exit 2 on errors), start logging and a runtime, and run until
/// SIGTERM/SIGINT. Exit 1 if `run` fails.
pub fn serve<C, F, Fut, E>(path: Option<PathBuf>, run: F) -> ExitCode
where
    C: ProgramConfig,
    F: FnOnce(C::Settings, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let (settings, runtime) = match start::<C>(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    match runtime.block_on(run(settings, Box::pin(shutdown_signal()))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(message = "stopped on an error", %error);
            ExitCode::FAILURE
        }
    }
}

/// A one-shot command (`--once`, `report`): load the configuration (exit 2 on errors),
/// start logging and a runtime, and run `f` to its exit code.
pub fn one_shot<C, F, Fut>(path: Option<PathBuf>, f: F) -> ExitCode
where
    C: ProgramConfig,
    F: FnOnce(C::Settings) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match start::<C>(path) {
        Ok((settings, runtime)) => runtime.block_on(f(settings)),
        Err(code) => code,
    }
}

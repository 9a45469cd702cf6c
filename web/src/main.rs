use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hostscope_core::app;
use hostscope_web::FileConfig;

/// Serves hostscope's dashboards and JSON API.
#[derive(Parser)]
#[command(name = "hostscope-web", version, about)]
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
    /// Read a password (one line) from stdin and print its argon2id hash for
    /// `[[web.users]] password_hash`.
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig) => app::check_config::<FileConfig>(cli.config),
        Some(Command::HashPassword) => hash_password(),
        None => app::serve::<FileConfig, _, _, _>(cli.config, hostscope_web::run),
    }
}

/// One line from stdin. On a terminal: a prompt on stderr, and the typing is not
/// echoed (the terminal's settings are restored afterwards).
#[allow(clippy::print_stderr)]
fn read_password() -> std::io::Result<String> {
    use rustix::termios::{isatty, tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let mut line = String::new();
    if !isatty(&stdin) {
        stdin.read_line(&mut line)?;
        return Ok(line);
    }
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    eprint!("Password: ");
    let read = stdin.read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    read?;
    restored?;
    Ok(line)
}

/// `hash-password`: one line from stdin (without its line ending) → the PHC string
/// on stdout. 2 when the password is empty, 1 when stdin cannot be read.
#[allow(clippy::print_stderr)]
fn hash_password() -> ExitCode {
    let line = match read_password() {
        Ok(line) => line,
        Err(error) => {
            eprintln!("hostscope-web hash-password: cannot read the password from stdin: {error}");
            return ExitCode::FAILURE;
        }
    };
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!(
            "hostscope-web hash-password: the password is empty; write it as one line on stdin"
        );
        return ExitCode::from(2);
    }
    match hostscope_web::auth::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("hostscope-web hash-password: {error}");
            ExitCode::FAILURE
        }
    }
}

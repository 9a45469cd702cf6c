//! Checks every hostscope program's command line passes: `--help`, `--version`,
//! `check-config` on a valid and an invalid file. Each program's own `tests/cli.rs`
//! calls [`standard_checks`] with its binary (`env!("CARGO_BIN_EXE_…")`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent")
        .to_path_buf()
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command-line contract every program keeps.
pub fn standard_checks(bin: &str) {
    let name = Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let out = run(bin, &["--help"]);
    assert!(out.status.success(), "{name} --help: {out:?}");
    let help = text(&out.stdout);
    assert!(
        help.contains("--config") && help.contains("check-config"),
        "{help}"
    );

    let out = run(bin, &["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION"))
    );

    let example = workspace_root().join("examples/hostscope.toml");
    let out = run(
        bin,
        &["check-config", "--config", example.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{name} check-config example: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), "configuration is valid");

    let invalid = workspace_root().join("tests/configs/invalid_mixed.toml");
    let out = run(
        bin,
        &["check-config", "--config", invalid.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
    let err = text(&out.stderr);
    // Every error at once, each naming its key; the token's value never shown.
    for expected in [
        "4 errors in the configuration",
        "influx.urll: unknown key",
        "nonsense: unknown key",
        "influx.timeout: invalid duration \"ten\"",
        "influx.token: is not used by InfluxDB 1.x",
    ] {
        assert!(
            err.contains(expected),
            "{name}: missing {expected:?} in:\n{err}"
        );
    }
    assert!(!err.contains("abc"), "a secret leaked: {err}");

    let out = run(
        bin,
        &["check-config", "--config", "/nonexistent/hostscope.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/hostscope.toml"));

    // Starting with an invalid file exits 2 too, before doing anything.
    let out = run(bin, &["--config", invalid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
}

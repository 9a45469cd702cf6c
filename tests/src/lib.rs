//! Test harness: real servers on free loopback ports with temporary directories,
//! stopped on drop. A missing server binary is a test failure that says how to
//! install it, never a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod influxd;
pub mod seed;
pub mod smtp;

use std::net::TcpListener;

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// Panics, naming the package, when `program` is not on PATH.
pub fn require_program(program: &str, install_hint: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/bin".into(), "/usr/sbin".into()]) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{program}` is not installed, and this integration test needs the real thing. \
         Install it with `{install_hint}`, or run ./scripts/test, which installs what the tests need."
    );
}

/// A command that runs `program` so that the kernel kills it when the thread that
/// started it ends, even if the test process is SIGKILLed and never runs its `Drop`s
/// (util-linux `setpriv --pdeathsig`: without `unsafe`, Rust cannot set the signal
/// between fork and exec itself). Start servers from the test's own thread (the body
/// of a `#[test]` or `#[tokio::test]`), never from `spawn_blocking` or a thread that
/// ends before the test: its end would kill the server mid-test.
pub fn dies_with_the_test(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let setpriv = require_program("setpriv", "apt-get install util-linux");
    let mut command = std::process::Command::new(setpriv);
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

/// What slow clients send before they stall, and whether an HTTP/1 server waits for
/// its header timeout before closing (an HTTP/2 preface is refused at once).
pub const STALLED_CLIENTS: [(&str, &[u8], bool); 3] = [
    ("nothing", b"", true),
    (
        "half a header",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        true,
    ),
    (
        "the HTTP/2 preface",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        false,
    ),
];

/// How long the server on `port` keeps a connection open that sent `bytes` and then
/// stalled: `None` if it is still open after `patience`.
pub async fn held_open_for(
    port: u16,
    bytes: &[u8],
    patience: std::time::Duration,
) -> Option<std::time::Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    conn.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    // Closed: the read ends (hyper may answer 408 first); open: the patience runs out.
    tokio::time::timeout(patience, conn.read_to_end(&mut answer))
        .await
        .ok()
        .map(|_| start.elapsed())
}

/// Kill a test server's process (if running) and reap it.
pub(crate) fn kill_child(child: &mut Option<std::process::Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The last 30 lines of a server's log, for failure messages.
pub(crate) fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

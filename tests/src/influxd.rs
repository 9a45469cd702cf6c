//! A real InfluxDB 1.x (`influxd`) per test, on a free port with a temp data dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use hostscope_core::config::{InfluxSettings, VersionSetting};
use hostscope_core::influx::Client;

use crate::{free_port, require_program};

/// A running `influxd`. Killed when dropped; [`TestInflux::stop`] and
/// [`TestInflux::start_again`] simulate an outage on the same port and data.
pub struct TestInflux {
    dir: tempfile::TempDir,
    port: u16,
    config: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
}

impl TestInflux {
    /// Start a server without authentication, from the test's own thread (see
    /// [`crate::dies_with_the_test`]).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Start a server; with `auth`, `[http] auth-enabled = true` (the first admin user
    /// can then be created without credentials, as on a fresh install).
    pub fn start_with(auth: bool) -> Self {
        let binary = require_program("influxd", "apt-get install influxdb");
        let mut dir = tempfile::Builder::new()
            .prefix("hostscope-influxd-")
            .tempdir()
            .expect("temp dir");
        // Two ports: HTTP, and the RPC service influxd always binds (default 8088,
        // which may be taken by another test's server).
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let rpc = free_port();
            let config = write_config(dir.path(), port, rpc, auth);
            let mut server = TestInflux {
                dir,
                port,
                config,
                binary: binary.clone(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => {
                    last_err = e;
                    dir = server.into_dir();
                }
            }
        }
        panic!("influxd did not start: {last_err}");
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        // Move the directory out; Drop then finds no child to kill.
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = crate::dies_with_the_test(&self.binary)
            .arg("run")
            .arg("-config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "influxd exited with {status}; log:\n{}",
                        self.log_tail()
                    ));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "influxd did not answer /ping within 30s; log:\n{}",
            self.log_tail()
        ))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Settings for a 1.x client of this server writing to `database`.
    pub fn settings(&self, database: &str) -> InfluxSettings {
        let mut s = InfluxSettings::new(self.url().parse().expect("url"), VersionSetting::Auto);
        s.database = database.to_owned();
        s.retry_backoff = Duration::from_millis(50);
        s
    }

    /// A client for `database`, which is created first.
    pub async fn client(&self, database: &str) -> Client {
        let client = Client::new(self.settings(database)).expect("client");
        client.ensure_database().await.expect("create database");
        client
    }

    /// Run an InfluxQL statement directly (bypassing hostscope's query layer), for
    /// assertions and setup. Returns the JSON answer.
    pub async fn influxql(&self, db: &str, q: &str) -> serde_json::Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/query", self.url()))
            .form(&[("q", q), ("db", db), ("epoch", "ms")])
            .send()
            .await
            .expect("query influxd");
        let body = resp.bytes().await.expect("influxd answer");
        serde_json::from_slice(&body).expect("influxd JSON")
    }

    /// Stop the server (SIGKILL), keeping its data.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Start it again on the same port with the same data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "influxd is still running");
        self.spawn().expect("restart influxd");
    }

    fn kill(&mut self) {
        crate::kill_child(&mut self.child);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("influxd.log")
    }

    fn log_tail(&self) -> String {
        crate::log_tail(&self.log_path())
    }
}

impl Drop for TestInflux {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_config(dir: &Path, port: u16, rpc: u16, auth: bool) -> PathBuf {
    let d = dir.display();
    let text = format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {auth}
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false
"#
    );
    let path = dir.join("influxdb.conf");
    std::fs::write(&path, text).expect("write influxd config");
    path
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 204")
}

//! A real SMTP server per test: Debian's `aiosmtpd` on a free loopback port, storing
//! what it receives in a fresh Maildir. Plain SMTP, STARTTLS or implicit TLS; the TLS
//! modes present a certificate for `localhost` and `127.0.0.1` signed by a test CA
//! made for this server ([`TestSmtp::ca_file`]).
//!
//! Authentication: aiosmtpd's command line cannot configure users. With STARTTLS, after
//! the upgrade, it offers `AUTH LOGIN PLAIN` and refuses every login (535); the plain
//! and implicit-TLS servers offer no AUTH.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

const PYTHON: &str = "/usr/bin/python3";
const INSTALL_HINT: &str = "apt-get install python3-aiosmtpd";

/// How the test server secures its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP; no STARTTLS, no AUTH.
    Plain,
    /// STARTTLS offered and required before `MAIL` (`--tlscert`/`--tlskey`, without
    /// `--no-requiretls`).
    Starttls,
    /// TLS from the first byte, "SMTPS" (`--smtpscert`/`--smtpskey`).
    ImplicitTls,
}

/// A running `aiosmtpd`. Killed when dropped; [`TestSmtp::stop`] and
/// [`TestSmtp::start_again`] simulate an outage on the same port and Maildir.
pub struct TestSmtp {
    dir: tempfile::TempDir,
    port: u16,
    security: SmtpSecurity,
    child: Option<Child>,
}

impl TestSmtp {
    /// Start a plain server and wait until it greets with `220`, from the test's own
    /// thread (see [`crate::dies_with_the_test`]).
    pub fn start() -> Self {
        Self::start_with(SmtpSecurity::Plain)
    }

    /// Start a server secured as `security` and wait until it is ready: greeting with
    /// `220` (plain, STARTTLS), or listening (implicit TLS, which greets only inside
    /// TLS).
    pub fn start_with(security: SmtpSecurity) -> Self {
        if !Path::new(PYTHON).is_file() {
            panic!(
                "{PYTHON} is missing; the SMTP tests need Debian's Python with aiosmtpd. \
                 Install it with `{INSTALL_HINT}`, or run ./scripts/test."
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("hostscope-smtp-")
            .tempdir()
            .expect("temp dir");
        if security != SmtpSecurity::Plain {
            write_certificates(dir.path());
        }
        let mut server = TestSmtp {
            dir,
            port: 0,
            security,
            child: None,
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("aiosmtpd did not start: {last_err}");
    }

    /// A server that is not started yet: its port and Maildir are reserved, so a test
    /// can queue mail for it first and [`TestSmtp::start_again`] it later.
    pub fn stopped() -> Self {
        let mut server = Self::start();
        server.stop();
        server
    }

    fn spawn(&mut self) -> Result<(), String> {
        // The log is shared by restarts: readiness only looks at what this run wrote.
        let log_start = std::fs::metadata(self.log_path()).map_or(0, |m| m.len());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = crate::dies_with_the_test(PYTHON);
        // `-d` logs the dialogue (AUTH arguments masked), shown when a test fails.
        command
            .args(["-m", "aiosmtpd", "-n", "-d", "-l"])
            .arg(format!("127.0.0.1:{}", self.port));
        let (cert, key) = (self.dir.path().join(CERT), self.dir.path().join(KEY));
        match self.security {
            SmtpSecurity::Plain => {}
            SmtpSecurity::Starttls => {
                command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
            }
            SmtpSecurity::ImplicitTls => {
                command
                    .arg("--smtpscert")
                    .arg(cert)
                    .arg("--smtpskey")
                    .arg(key);
            }
        }
        // The Maildir must not exist on the first start (aiosmtpd creates it); on a
        // restart it is reused.
        let child = command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = self.log_tail();
                    if log.contains("No module named aiosmtpd") {
                        panic!(
                            "aiosmtpd is not installed, and this test needs a real SMTP server. \
                             Install it with `{INSTALL_HINT}`, or run ./scripts/test."
                        );
                    }
                    return Err(format!("aiosmtpd exited with {status}; log:\n{log}"));
                }
            }
            if self.ready(log_start) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "aiosmtpd did not greet within 30s; log:\n{}",
            self.log_tail()
        ))
    }

    /// Plain SMTP and STARTTLS greet in clear text; implicit TLS only inside TLS, so
    /// there aiosmtpd's own "listening" line (this run's) and a connection must do.
    fn ready(&self, log_start: u64) -> bool {
        match self.security {
            SmtpSecurity::Plain | SmtpSecurity::Starttls => greets(self.port),
            SmtpSecurity::ImplicitTls => {
                let log = std::fs::read(self.log_path()).unwrap_or_default();
                let new = log.get(log_start as usize..).unwrap_or_default();
                let line = format!("Server is listening on 127.0.0.1:{}", self.port);
                String::from_utf8_lossy(new).contains(&line) && connects(self.port)
            }
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn security(&self) -> SmtpSecurity {
        self.security
    }

    /// The PEM certificate of the CA that signed the server's certificate: what a
    /// client must trust. Panics for a plain server, which has none.
    pub fn ca_file(&self) -> PathBuf {
        assert!(
            self.security != SmtpSecurity::Plain,
            "a plain SMTP test server has no certificate"
        );
        self.dir.path().join(CA_CERT)
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The Maildir messages are stored in (`new/` holds them).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// Stop the server (SIGKILL), keeping its Maildir.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Start it again on the same port with the same Maildir.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "aiosmtpd is still running");
        self.spawn().expect("restart aiosmtpd");
    }

    /// The raw messages received so far, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.maildir().join("new");
        let Ok(listing) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = listing
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| {
                let modified = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, e.path())
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read(p).ok())
            .collect()
    }

    /// Wait until at least `n` messages arrived; panics after `timeout` saying how many
    /// did.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {n} messages within {timeout:?}, got {}; aiosmtpd log:\n{}",
                    messages.len(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn kill(&mut self) {
        crate::kill_child(&mut self.child);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("aiosmtpd.log")
    }

    fn log_tail(&self) -> String {
        crate::log_tail(&self.log_path())
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.kill();
    }
}

const CA_CERT: &str = "ca.pem";
const CERT: &str = "server.crt";
const KEY: &str = "server.key";

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, written as
/// PEM files into `dir`.
fn write_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hostscope test SMTP CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.use_authority_key_identifier_extension = true;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();

    std::fs::write(dir.join(CA_CERT), ca_cert.pem()).unwrap();
    std::fs::write(dir.join(CERT), server_cert.pem()).unwrap();
    std::fs::write(dir.join(KEY), server_key.serialize_pem()).unwrap();
}

/// True when something accepts a connection on `port`.
fn connects(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// True when something on `port` answers with an SMTP greeting.
fn greets(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 3];
    stream.read_exact(&mut buf).is_ok() && &buf == b"220"
}

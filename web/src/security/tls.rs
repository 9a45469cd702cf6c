//! HTTPS with rustls (the ring provider). The certificate chain and key are read
//! from PEM files at startup (an error names the file and what is wrong with it)
//! and again on every SIGHUP; a reload that fails keeps the certificate in use and
//! logs why. The listener is never dropped: new connections simply get the new
//! certificate, open ones keep theirs.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use hostscope_core::serve::{http1_with_header_timeout, until_shutdown};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// What is wrong with the certificate or key files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read TLS {what} {}: {source}", path.display())]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate, or a broken one.
    #[error("TLS certificate {} has no valid PEM certificate (-----BEGIN CERTIFICATE-----): {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// The key file holds no PEM private key, or a broken one.
    #[error("TLS key {} has no valid PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not belong to the certificate).
    #[error("TLS certificate {} and key {} cannot be used together: {reason}", cert.display(), key.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// The server's TLS configuration and the files it comes from. Clones share the
/// configuration, so a [`TlsConfig::reload`] on any clone changes what the server
/// presents to new connections.
#[derive(Clone)]
pub struct TlsConfig {
    rustls: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Read and check the PEM certificate chain and key.
    pub async fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let config = read_server_config(cert, key).await?;
        Ok(TlsConfig {
            rustls: RustlsConfig::from_config(config),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// Read the files again and use them for new connections; on an error the
    /// certificate in use stays.
    pub async fn reload(&self) -> Result<(), TlsError> {
        let config = read_server_config(&self.cert, &self.key).await?;
        self.rustls.reload_from_config(config);
        Ok(())
    }
}

async fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
}

async fn read_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read_file("certificate", cert_path).await?;
    let key_pem = read_file("key", key_path).await?;
    let bad_cert = |reason: String| TlsError::BadCertificate {
        path: cert_path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad_cert("no certificate found".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key found".to_owned(),
            other => other.to_string(),
        },
    })?;
    let rejected = |reason: String| TlsError::Rejected {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        reason,
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| rejected(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| rejected(e.to_string()))?;
    // HTTP/1.1 only: see `hostscope_core::serve::http1_with_header_timeout`.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serve HTTPS, reloading the certificate and key on SIGHUP.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    cert: &Path,
    key: &Path,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let tls = TlsConfig::load(cert, key).await?;
    let mut hangups = signal(SignalKind::hangup())
        .map_err(|e| anyhow::anyhow!("cannot listen for SIGHUP (certificate reload): {e}"))?;
    let reloader = tls.clone();
    let reloads = async move {
        while hangups.recv().await.is_some() {
            match reloader.reload().await {
                Ok(()) => {
                    tracing::info!(message = "TLS certificate reloaded", cert = %reloader.cert.display())
                }
                Err(error) => {
                    tracing::error!(message = "TLS reload failed; keeping the certificate in use", %error)
                }
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        result = serve_tls_config(listener, app, tls, header_timeout, shutdown) => result,
        () = reloads => Ok(()),
    }
}

/// Serve HTTPS with `tls` until `shutdown` resolves, then give open connections
/// [`hostscope_core::serve::SHUTDOWN_GRACE`] to finish; a client gets `header_timeout` to send a request's
/// headers. Reload with [`TlsConfig::reload`] on a clone of `tls`.
pub async fn serve_tls_config(
    listener: tokio::net::TcpListener,
    app: IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    tls: TlsConfig,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls.rustls)?.handle(handle.clone());
    let server = http1_with_header_timeout(server, header_timeout);
    Ok(until_shutdown(server.serve(app), handle, shutdown).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    #[tokio::test]
    async fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let (_, other_key) = self_signed(dir.path(), "b");
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not pem at all\n").unwrap();

        assert!(TlsConfig::load(&cert, &key).await.is_ok());
        let check = |e: TlsError, parts: &[&str]| {
            let text = e.to_string();
            for p in parts {
                assert!(text.contains(p), "{text:?} should contain {p:?}");
            }
        };
        check(
            TlsConfig::load(&missing, &key).await.unwrap_err(),
            &["cannot read TLS certificate", "missing.pem"],
        );
        check(
            TlsConfig::load(&cert, &missing).await.unwrap_err(),
            &["cannot read TLS key", "missing.pem"],
        );
        check(
            TlsConfig::load(&garbage, &key).await.unwrap_err(),
            &["TLS certificate", "garbage.pem", "no certificate"],
        );
        check(
            TlsConfig::load(&cert, &garbage).await.unwrap_err(),
            &["TLS key", "garbage.pem", "no private key"],
        );
        check(
            TlsConfig::load(&key, &key).await.unwrap_err(),
            &["TLS certificate", "a.key"],
        );
        check(
            TlsConfig::load(&cert, &other_key).await.unwrap_err(),
            &["cannot be used together", "a.crt", "b.key"],
        );
    }
}

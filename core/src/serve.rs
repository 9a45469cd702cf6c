//! What the analyzer's and the web's HTTP servers share: a header-read timeout, so a
//! client that sends its headers a byte at a time cannot hold a connection for ever
//! (`axum::serve` gives hyper no timer, so hyper's own timeout never runs), and a
//! graceful shutdown with a grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// How long open connections get to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A client gets `timeout` to send a request's headers, then the connection is closed.
pub fn limit_header_reads(
    http: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    timeout: Duration,
) {
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
}

/// Run `server` (an axum-server `serve` future driven by `handle`) until `shutdown`
/// resolves, then give open connections [`SHUTDOWN_GRACE`] to finish.
pub async fn until_shutdown(
    server: impl Future<Output = std::io::Result<()>>,
    handle: axum_server::Handle<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(server);
    tokio::pin!(shutdown);
    tokio::select! {
        result = &mut server => return result,
        () = &mut shutdown => handle.graceful_shutdown(Some(SHUTDOWN_GRACE)),
    }
    server.await
}

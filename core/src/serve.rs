//! What the analyzer's and the web's HTTP servers share: a header-read timeout, so a
//! client that sends its headers a byte at a time cannot hold a connection for ever
//! (`axum::serve` gives hyper no timer, so hyper's own timeout never runs), and a
//! graceful shutdown with a grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// How long open connections get to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `server` speaking HTTP/1 only, where a client gets `timeout` from the moment it
/// connects to send a request's headers, then the connection is closed. (Serving
/// HTTP/2 too, hyper first waits, without any timer, for the bytes that tell the two
/// apart, and HTTP/2 has no header timeout: a client that sends nothing, or only the
/// HTTP/2 preface, would hold the connection for ever.)
pub fn http1_with_header_timeout<A>(
    server: axum_server::Server<SocketAddr, A>,
    timeout: Duration,
) -> axum_server::Server<SocketAddr, A> {
    let mut server = server.http1_only();
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
    server
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

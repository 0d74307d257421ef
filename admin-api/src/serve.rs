//! Serving a router on an already-bound listener, with `TCP_NODELAY` on every accepted
//! socket (without it small responses wait for the peer's delayed ACK, ~40 ms), the peer's
//! address in every request's `ConnectInfo`, and graceful shutdown.

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// Serve `router` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // The peer address goes with every request (`ConnectInfo<SocketAddr>`): sign-ins are
    // throttled per source (`throttle`).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

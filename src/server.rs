//! `dagr serve`: open the engine on the data directory, seed the demo into an empty one,
//! bind the listeners and serve until SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use dagr_engine::{Engine, EngineConfig, QueryConfig};
use tokio::net::TcpListener;
use tracing::info;

use crate::cli::ServeArgs;

/// Open the engine for `args`, seeding the demo if the data directory holds no dataset.
pub async fn open_engine(args: &ServeArgs) -> anyhow::Result<Arc<Engine>> {
    let config = EngineConfig {
        keep_versions: args.keep_versions as usize,
        query: QueryConfig {
            memory_limit: (args.query_memory_mb as usize) << 20,
            max_result_rows: (args.max_result_rows > 0).then_some(args.max_result_rows as usize),
            ..QueryConfig::default()
        },
    };
    let snapshots = args.data_dir.join("snapshots");
    let engine = Engine::open_dir(&snapshots, config)
        .await
        .with_context(|| format!("opening the data directory {}", args.data_dir.display()))?;
    if !args.no_demo && crate::demo::should_seed(&engine, &args.data_dir) {
        crate::demo::seed(&engine, &args.data_dir, args.demo_rows as usize).await?;
    }
    Ok(Arc::new(engine))
}

/// The HTTP application: REST API and portal.
pub fn http_app(engine: Arc<Engine>) -> dagr_admin_api::axum::Router {
    dagr_admin_api::router(dagr_admin_api::AppState { engine }).merge(dagr_portal::router())
}

/// Serve HTTP on an already-bound listener until `shutdown` resolves.
pub async fn serve_http(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    dagr_admin_api::serve::serve(listener, http_app(engine), shutdown)
        .await
        .context("HTTP server failed")
}

/// `dagr serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let engine = open_engine(&args).await?;
    let listener = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot bind the HTTP address {}", args.http_addr))?;
    let addr = listener.local_addr()?;
    info!(http = %addr, data_dir = %args.data_dir.display(), datasets = engine.dataset_names().len(), "DAGR listening");
    info!(
        flight = %args.flight_addr,
        "the Arrow Flight service is not part of this build yet; the address is reserved for it"
    );
    serve_http(engine, listener, shutdown_signal()).await?;
    info!("DAGR stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received, shutting down"),
        () = term => info!("SIGTERM received, shutting down"),
    }
}

//! # DAGR Arrow Flight and Flight SQL service
//!
//! This crate owns the tonic service that bulk consumers and online services use, and through
//! which data owners upload snapshots:
//! - **plain Flight**: `ListFlights` (the datasets the caller has an agreement for, with its
//!   masked schema), `GetFlightInfo`/`GetSchema` for the descriptor path `[dataset]`, `DoGet`
//!   of the caller's masked view (or a projection, filter or batch of keys through the JSON
//!   ticket of [`ticket`]), and `DoPut` of a full new snapshot by the dataset's owner;
//! - **Flight SQL**: statements and prepared statements through the engine's read-only query
//!   entry point (a `WHERE <key> = ?` lookup is answered from the index), and the metadata
//!   commands ([`metadata`]) showing only the caller's masked view.
//!
//! Every response that carries personal attributes needs the caller's purpose
//! (`x-dagr-purpose`) and is recorded through the engine's [`AuditSink`] seam: its last
//! batch is sent only once the access record is committed.
//!
//! `DoGet` responses leave through the zero-copy wire path (`wire.rs`, in front of tonic's
//! generated server): IPC messages that reference the batches' own buffers, framed for gRPC
//! by hand; repeated whole-dataset pulls are answered from a bounded cache of encoded streams
//! (`cache.rs`) that drops what a revoked agreement or a replaced snapshot cut.
//!
//! Every call is authenticated with `authorization: Bearer <token>` through the engine's
//! [`AccessPolicy`] seam; `Handshake` also takes basic credentials whose password is a DAGR
//! token, so that standard Flight SQL clients (ADBC, JDBC) can log in. The crate depends only
//! on `dagr-engine`, never on `dagr-admin-api`: the `dagr` binary hands it the policy.

pub mod auth;
mod cache;
pub mod error;
pub mod feed;
mod measure;
pub mod metadata;
pub mod put;
pub mod quota;
mod service;
mod stream;
pub mod ticket;
mod wire;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use dagr_engine::{AccessPolicy, AuditSink, Engine};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use service::{DEFINITION_ACTION, DagrFlight};

/// Default address the Flight service binds when none is configured.
pub const DEFAULT_FLIGHT_ADDR: &str = "127.0.0.1:50051";

/// The HTTP/2 `SETTINGS_MAX_FRAME_SIZE` DAGR's own clients advertise (and the server
/// accepts): 1 MiB, so that a 2 MiB message goes out in 2 frames rather than h2's default
/// 128 frames of 16 KiB. Third-party clients should set the same (`docs/flight.md`).
pub const CLIENT_MAX_FRAME_SIZE: u32 = 1 << 20;

/// PEM files of the server's TLS certificate (chain) and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// Settings of the Flight service.
#[derive(Debug, Clone)]
pub struct FlightConfig {
    /// Rows per record batch of a `DoGet` of a dataset.
    pub batch_rows: usize,
    /// Largest `FlightData` message sent. Third-party clients keep tonic's 4 MiB default
    /// limit, so larger batches are split below it.
    pub max_message_bytes: usize,
    /// Largest message accepted (uploads).
    pub max_decoding_bytes: usize,
    /// Largest snapshot accepted by one `DoPut`, in Arrow bytes.
    pub max_upload_bytes: usize,
    /// HTTP/2 stream window.
    pub stream_window: u32,
    /// HTTP/2 connection window.
    pub connection_window: u32,
    /// Prepared statements kept per server (the oldest are closed beyond it).
    pub max_prepared: usize,
    /// The per-token quotas (requests per second, open result streams, running SQL
    /// queries) with their defaults; the `dagr` binary shares one with the REST API.
    pub quotas: Arc<dagr_engine::Quotas>,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
    /// Where uploads are recorded (the load history), if anywhere.
    pub journal: Option<std::sync::Arc<dyn put::LoadJournal>>,
    /// Send `DoGet` responses through the zero-copy wire path (`wire.rs`): the Arrow buffers
    /// go to the socket without being copied into a protobuf message. `false` serves them
    /// through tonic's generated code, as before (for comparison, and as a fallback).
    pub zero_copy: bool,
    /// Memory bound of the cache of encoded whole-dataset streams (`cache.rs`), in bytes;
    /// 0 turns it off.
    pub cache_bytes: usize,
    /// The largest HTTP/2 frame the server accepts (`SETTINGS_MAX_FRAME_SIZE`, at most
    /// 16 MiB − 1); the frames it sends are bounded by what each client advertises.
    pub max_frame_size: u32,
}

impl Default for FlightConfig {
    fn default() -> Self {
        Self {
            batch_rows: 8192,
            quotas: dagr_engine::Quotas::new(Default::default()),
            max_message_bytes: 2 << 20,
            max_decoding_bytes: 64 << 20,
            max_upload_bytes: 16 << 30,
            stream_window: 16 << 20,
            connection_window: 32 << 20,
            max_prepared: 10_000,
            tls: None,
            journal: None,
            zero_copy: true,
            cache_bytes: 2 << 30,
            max_frame_size: CLIENT_MAX_FRAME_SIZE,
        }
    }
}

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A TLS file could not be read.
    #[error("cannot read the TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The transport failed.
    #[error("Flight server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serve Flight on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    policy: Arc<dyn AccessPolicy>,
    audit: Arc<dyn AuditSink>,
    config: FlightConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let mut builder = Server::builder()
        .initial_stream_window_size(config.stream_window)
        .initial_connection_window_size(config.connection_window)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // h2 accepts 16 KiB ..= 16 MiB − 1 (RFC 9113 §6.5.2).
        .max_frame_size(config.max_frame_size.clamp(16 << 10, (16 << 20) - 1))
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ServeError::TlsFile {
                path: path.clone(),
                source,
            })
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    let max_encoding = config.max_message_bytes.max(4 << 20) * 2;
    let max_decoding = config.max_decoding_bytes;
    let zero_copy = config.zero_copy;
    let flight = DagrFlight::new(engine, policy, audit, config);
    let service = FlightServiceServer::new(flight.clone())
        .max_encoding_message_size(max_encoding)
        .max_decoding_message_size(max_decoding);
    // A listener bound by the caller does not get tonic's nodelay setting: without it a
    // small response waits for the peer's delayed ACK (~40 ms; see NOTES.md).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    // Cached streams cut by an agreement that is no longer in force go within a second.
    let _sweeper = flight.cache_enabled().then(|| {
        let flight = flight.clone();
        dagr_engine::task::SpawnedTask::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                flight.sweep_cache();
            }
        })
    });
    let router = if zero_copy {
        builder.add_service(measure::Measured::new(wire::Wire::new(
            service,
            flight,
            max_decoding,
            max_encoding,
        )))
    } else {
        builder.add_service(measure::Measured::new(service))
    };
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

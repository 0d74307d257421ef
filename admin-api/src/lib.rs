//! # DAGR REST API
//!
//! This crate owns the HTTP JSON API under `/api/v1` (axum): today the catalog of datasets
//! and single-record lookups; the governance, audit, MAP and TAPIS issues add their
//! resources here. Handlers are thin: they parse the request, call the engine (or, later,
//! the domain services of this crate) and map results and errors. Every error is an
//! `application/problem+json` body (RFC 9457) through one exhaustive mapping in [`error`].
//!
//! Record lookups go through [`dagr_engine::Engine::view`], the same masked path as every
//! other read; until the governance issue adds authentication, the API reads with
//! [`dagr_engine::Access::Unrestricted`] (see `docs/api.md`).

pub mod error;
mod handlers;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

pub use axum;
use axum::Router;
use axum::routing::get;
use dagr_engine::Engine;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted by the API (loads have their own streaming endpoint).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Longest time a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of the API.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
}

/// The `/api/v1` routes with their layers (tracing, body limit, timeout).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(handlers::health))
        .route("/api/v1/datasets", get(handlers::list_datasets))
        .route("/api/v1/datasets/{name}", get(handlers::get_dataset))
        .route(
            "/api/v1/datasets/{name}/records",
            get(handlers::head_records),
        )
        .route(
            "/api/v1/datasets/{name}/records/{key}",
            get(handlers::get_record),
        )
        .fallback(handlers::not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
}

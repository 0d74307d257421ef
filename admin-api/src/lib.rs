//! # DAGR REST API
//!
//! This crate owns the HTTP JSON API under `/api/v1` (axum): today the catalog of datasets
//! and single-record lookups, and governance; the audit, MAP and TAPIS issues add their
//! resources here. Handlers are thin: they parse the request, call the engine (or, later,
//! the domain services of this crate) and map results and errors. Every error is an
//! `application/problem+json` body (RFC 9457) through one exhaustive mapping in [`error`].
//!
//! It also owns governance: the metadata store ([`store`], sqlx on SQLite or PostgreSQL),
//! the model ([`model`]), the rules ([`governance`]), secrets and the in-memory access
//! policy ([`auth`]) that implements the engine's [`dagr_engine::AccessPolicy`] seam. Record
//! lookups go through [`dagr_engine::Engine::view`] with the caller's agreements compiled
//! into grants: the same masked path as every other read. The usage audit ([`audit`]) is the
//! durable, hash-chained log that every read of personal data is committed to before its
//! response is released, with the citizen's and the owners' views over it. Owners load new
//! snapshots of their datasets over HTTP ([`loads`]): the body is streamed to disk, then read
//! and committed by the engine in the background, each load recorded in the metadata store.
//! The OpenAPI 3.1 document is generated from the handlers ([`openapi`]).

pub mod api;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod credentials;
pub mod error;
pub mod extract;
pub mod gate;
pub mod governance;
mod handlers;
pub mod loads;
pub mod map;
pub mod model;
pub mod openapi;
pub mod ops;
pub mod outbox;
pub mod quotas;
pub mod replication;
pub mod serve;
pub mod store;
pub mod tapis;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

pub use axum;
use axum::Router;
use axum::routing::{get, post};
use dagr_engine::Engine;
use dagr_engine::task::SpawnedTask;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use governance::Governance;
pub use loads::{Loads, LoadsConfig};
pub use store::MetaStore;

/// Largest request body accepted by the API (loads have their own streaming endpoint).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Longest time a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a server checks the metadata store for changes made elsewhere (another
/// replica, `dagr admin`): a revocation anywhere is in force everywhere within this time.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(250);
/// How old the access policy may get before callers are refused: if the metadata store
/// cannot be read for this long, a revocation made elsewhere might be missed, so DAGR stops
/// answering (503) instead of deciding on permissions that may no longer hold.
pub const MAX_POLICY_AGE: Duration = Duration::from_secs(1);

/// Shared state of the API.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The governance service.
    pub gov: Arc<Governance>,
    /// The usage audit log.
    pub audit: audit::AuditStore,
    /// Who the data subject behind a caller is.
    pub identity: Arc<dyn audit::IdentityProvider>,
    /// The address users reach this server at (`--public-url`, else the HTTP address once
    /// bound): links in e-mail start with it.
    pub public_url: Arc<std::sync::OnceLock<String>>,
}

impl AppState {
    /// The address links in e-mail start with (`http://localhost` before the server bound
    /// its address).
    pub fn public_url(&self) -> String {
        self.public_url
            .get()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| "http://localhost".to_owned())
    }
}

/// Keep the policy current with changes made outside this process. The task stops when
/// the returned handle is dropped.
pub fn spawn_refresher(gov: Arc<Governance>) -> SpawnedTask<()> {
    gov.policy().require_fresh(MAX_POLICY_AGE);
    SpawnedTask::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match gov.refresh_if_changed().await {
                Ok(changed) => {
                    if changed {
                        tracing::debug!("governance policy reloaded");
                    }
                    if failing {
                        tracing::info!("metadata store reachable again");
                        failing = false;
                    }
                }
                Err(e) if !failing => {
                    tracing::error!(error = %e, "cannot refresh the governance policy; serving the last one");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    })
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi::document())
}

/// The layer that answers 503 to a request taking longer than [`REQUEST_TIMEOUT`].
fn request_timeout() -> TimeoutLayer {
    TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT)
}

/// The `/api/v1` routes with their layers (tracing, body limit, timeout), uploads of
/// snapshots disabled (503): see [`router_with`].
pub fn router(state: AppState) -> Router {
    router_with(state, Loads::disabled())
}

/// The `/api/v1` routes with their layers (tracing, body limit, timeout), snapshot uploads
/// run by `loads` (see [`Loads::open`]). Uploads (snapshots, TAPIS version files) stream to
/// storage outside the body limit and the request timeout, within their own size limits. The router owns `loads`: when the
/// server stops and drops it, loads still running stop, and the next start refuses them.
pub fn router_with(state: AppState, loads: std::sync::Arc<Loads>) -> Router {
    let load_routes = loads::api::routes(loads::api::LoadsState {
        app: state.clone(),
        loads,
    })
    .merge(tapis::api::file_routes().with_state(state.clone()));
    Router::new()
        .route("/api/v1/health", get(handlers::health))
        .route("/api/v1/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics_text))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/me", get(api::me))
        .route(
            "/api/v1/organisations",
            get(api::list_organisations).post(api::create_organisation),
        )
        .route(
            "/api/v1/organisations/{code}",
            get(api::get_organisation).patch(api::update_organisation),
        )
        .route("/api/v1/users", get(api::list_users).post(api::create_user))
        .route(
            "/api/v1/systems",
            get(api::list_systems).post(api::create_system),
        )
        .route("/api/v1/systems/{id}", get(api::get_system))
        .route(
            "/api/v1/systems/{id}/tokens",
            get(api::list_system_tokens).post(api::create_system_token),
        )
        .route("/api/v1/tokens", post(api::create_token))
        .route("/api/v1/tokens/{id}", get(api::get_token))
        .route("/api/v1/tokens/{id}/revoke", post(api::revoke_token))
        .route(
            "/api/v1/datasets",
            get(handlers::list_datasets).post(api::register_dataset),
        )
        .route(
            "/api/v1/datasets/{name}",
            get(handlers::get_dataset).patch(api::update_dataset),
        )
        .route(
            "/api/v1/datasets/{name}/records",
            get(handlers::head_records),
        )
        .route(
            "/api/v1/datasets/{name}/records/{key}",
            get(handlers::get_record),
        )
        .route(
            "/api/v1/datasets/{name}/schema-changes",
            post(api::file_change),
        )
        .route(
            "/api/v1/requests",
            get(api::list_requests).post(api::create_request),
        )
        .route("/api/v1/requests/{id}", get(api::get_request))
        .route("/api/v1/requests/{id}/approve", post(api::approve_request))
        .route("/api/v1/requests/{id}/refuse", post(api::refuse_request))
        .route(
            "/api/v1/requests/{id}/withdraw",
            post(api::withdraw_request),
        )
        .route("/api/v1/agreements", get(api::list_agreements))
        .route("/api/v1/agreements/{id}", get(api::get_agreement))
        .route(
            "/api/v1/agreements/{id}/revoke",
            post(api::revoke_agreement),
        )
        .route("/api/v1/schema-changes", get(api::list_changes))
        .route("/api/v1/schema-changes/{id}", get(api::get_change))
        .route(
            "/api/v1/schema-changes/{id}/accept",
            post(api::accept_change),
        )
        .route(
            "/api/v1/schema-changes/{id}/reject",
            post(api::reject_change),
        )
        .route("/api/v1/{kind}/{id}/history", get(api::history))
        .merge(audit::api::routes())
        .merge(map::routes())
        .merge(outbox::api::routes())
        .merge(quotas::routes())
        .merge(calendar::api::routes())
        .merge(tapis::api::routes())
        .fallback(handlers::not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(request_timeout())
        .merge(load_routes)
        .layer(TraceLayer::new_for_http())
        // Every request is counted in /metrics by its route template.
        .layer(axum::middleware::from_fn(ops::measure))
        .layer(axum::middleware::from_fn(ops::trace_context))
}

//! # DAGR self-service web portal
//!
//! This crate owns the server-rendered pages under `/` on the HTTP port: sign-in (people of
//! organisations with passwords, citizens through the subject identity seam), the dataset
//! catalog and dataset pages, access requests and the owners' decisions, agreements, data
//! flows and schema change requests, systems and tokens, the citizen's "who used my data"
//! page, a person's messages from every module, the usage views with their charts, and the
//! admin dashboard.
//!
//! It calls the same domain services as the REST API (`dagr-admin-api`: [`Governance`],
//! the audit store, the engine's masked views), never its own copy of the rules: a page
//! shows what the service answers, and a refusal is the service's refusal, shown as a
//! readable message with the form as the user filled it in.
//!
//! - Templates are askama files under `templates/`, checked when the crate compiles.
//! - Texts are in Latvian and English ([`i18n`]); the visitor switches with a link on
//!   every page.
//! - Sessions and CSRF protection are in [`session`]; every form handler reads its form
//!   through [`session::Posted`], which checks the token.
//! - Style and the small script are plain files under `static/`, compiled in.
//!
//! [`Governance`]: dagr_admin_api::Governance

mod assets;
mod auth;
mod catalog;
mod chart;
mod dashboard;
mod flows;
mod home;
pub(crate) mod i18n;
mod map;
mod messages;
mod requests;
pub(crate) mod session;
mod systems;
mod tapis;
mod usage;
mod web;

use dagr_admin_api::AppState;
use dagr_admin_api::axum::extract::Request;
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::axum::{Router, middleware};
use tower::ServiceExt;

/// How the portal is served.
#[derive(Debug, Clone, Default)]
pub struct PortalConfig {
    /// Mark cookies `Secure`: the portal is reached over TLS (a TLS-terminating proxy in
    /// front of DAGR). A request with `X-Forwarded-Proto: https` gets them too.
    pub secure_cookies: bool,
}

/// The state of the portal's handlers.
#[derive(Debug, Clone)]
pub(crate) struct Portal {
    /// The services the REST API uses too.
    pub(crate) app: AppState,
    /// Mark cookies `Secure`.
    pub(crate) secure_cookies: bool,
}

/// The whole HTTP application: the portal's pages, and `api` (the REST API's router) for
/// every path under `/api/` and for `/metrics`. A path that is neither gets the portal's readable "not found"
/// page (the API answers its own unknown paths with problem+json).
pub fn with_api(api: Router, app: AppState, config: PortalConfig) -> Router {
    // The portal's pages are counted in /metrics like the API's routes (which the API
    // router counts itself: the layer is on the portal's routes only, not its fallback).
    let measured = middleware::from_fn(dagr_admin_api::ops::measure);
    router(app, config)
        .route_layer(measured)
        .fallback(move |req: Request| {
            let api = api.clone();
            async move {
                let path = req.uri().path();
                if path == "/api" || path.starts_with("/api/") || path == "/metrics" {
                    match api.oneshot(req).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                } else {
                    web::security_headers(web::not_found(req).await).await
                }
            }
        })
        .layer(middleware::from_fn(dagr_admin_api::ops::trace_context))
}

/// The portal's routes, with their security headers.
pub fn router(app: AppState, config: PortalConfig) -> Router {
    let portal = Portal {
        app,
        secure_cookies: config.secure_cookies,
    };
    Router::new()
        .route("/", get(auth::start))
        .merge(auth::routes())
        .merge(assets::routes())
        .merge(catalog::routes())
        .merge(requests::routes())
        .merge(flows::routes())
        .merge(systems::routes())
        .merge(usage::routes())
        .merge(dashboard::routes())
        .merge(map::routes())
        .merge(tapis::routes())
        .merge(messages::routes())
        .method_not_allowed_fallback(web::method_not_allowed)
        .with_state(portal)
        .layer(middleware::map_response(web::security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

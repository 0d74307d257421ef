//! DAGR self-service web portal.
//!
//! This crate will own the server-rendered pages under `/` on the HTTP port: the dataset
//! catalog, access requests and decisions, data flows, systems and tokens, the citizen's
//! "who used my data" page and the admin dashboard. It calls the same domain services as
//! the REST API (`dagr-admin-api`), never its own copy of the rules.
//!
//! Today it serves a landing page that points to the API; the portal issue builds the rest.

use dagr_admin_api::axum::{Router, response::Html, routing::get};

/// Routes of the portal, to be merged with the REST API router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

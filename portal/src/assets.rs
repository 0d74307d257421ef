//! The portal's static files, compiled into the binary: its style sheet and its one small
//! script (plain JavaScript, no build chain, no third-party code).

use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::http::{HeaderValue, header};
use dagr_admin_api::axum::response::{IntoResponse, Response};
use dagr_admin_api::axum::routing::get;

use crate::Portal;

const CSS: &str = include_str!("../static/portal.css");
const JS: &str = include_str!("../static/portal.js");

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route(
            "/static/portal.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/static/portal.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

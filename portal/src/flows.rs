//! (Being built: see lib.rs for the page this module owns.)

use dagr_admin_api::axum::Router;

use crate::Portal;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
}

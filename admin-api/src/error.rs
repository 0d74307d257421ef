//! API errors as `application/problem+json` (RFC 9457), with one exhaustive mapping from
//! engine errors to HTTP statuses: a caller's mistake is a 4xx and logged at `info`, a
//! server fault a 5xx logged at `error`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dagr_engine::Error as EngineError;
use serde::Serialize;

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An engine error.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The route or resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
}

/// Result with [`ApiError`].
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The problem document (RFC 9457).
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// What happened, for a person.
    pub detail: String,
}

impl ApiError {
    fn status_and_kind(&self) -> (StatusCode, &'static str, &'static str) {
        use EngineError as E;
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Engine(e) => match e {
                E::InvalidDefinition { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-definition",
                    "Invalid dataset definition",
                ),
                E::DatasetExists(_) => (
                    StatusCode::CONFLICT,
                    "dataset-exists",
                    "Dataset already exists",
                ),
                E::DatasetNotFound(_) => (
                    StatusCode::NOT_FOUND,
                    "dataset-not-found",
                    "Dataset not found",
                ),
                E::NoSnapshot(_) => (
                    StatusCode::NOT_FOUND,
                    "no-snapshot",
                    "Dataset has no data yet",
                ),
                E::LoadRefused { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "load-refused",
                    "Load refused",
                ),
                E::VersionNotKept { .. } => (
                    StatusCode::NOT_FOUND,
                    "version-not-kept",
                    "Version not kept",
                ),
                E::InvalidKey { .. } => (StatusCode::BAD_REQUEST, "invalid-key", "Invalid key"),
                E::InvalidRowScope { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-row-scope",
                    "Invalid row scope",
                ),
                E::AccessDenied(_) => (StatusCode::FORBIDDEN, "access-denied", "Access denied"),
                E::QueryRefused(_) => (StatusCode::BAD_REQUEST, "query-refused", "Query refused"),
                E::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid-query", "Invalid query"),
                E::ResourcesExhausted(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "resources-exhausted",
                    "Resource limit exceeded",
                ),
                E::Store(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "Snapshot store unavailable",
                ),
                E::Corrupt(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store-corrupt",
                    "Snapshot store corrupt",
                ),
                E::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                ),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.status_and_kind();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "the server failed to answer; the failure is logged".to_owned()
        } else {
            self.to_string()
        };
        let body = Problem {
            kind: format!("https://dagr.invalid/problems/{kind}"),
            title,
            status: status.as_u16(),
            detail,
        };
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(body),
        )
            .into_response()
    }
}

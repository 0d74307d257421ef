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
    /// The request body does not fit the resource (a missing or mistyped field).
    #[error("{0}")]
    Unprocessable(String),
    /// The request body is larger than the API accepts.
    #[error("{0}")]
    TooLarge(String),
    /// No or bad credentials.
    #[error(transparent)]
    Unauthenticated(#[from] dagr_engine::AuthError),
    /// A governance rule refused or failed.
    #[error(transparent)]
    Gov(#[from] crate::governance::GovError),
    /// The usage audit log refused or failed.
    #[error(transparent)]
    Audit(#[from] crate::audit::store::AuditStoreError),
    /// An upload was not taken.
    #[error(transparent)]
    Load(#[from] crate::loads::LoadError),
    /// A quota of the caller's token refused the request (429 with `Retry-After`).
    #[error(transparent)]
    Quota(#[from] dagr_engine::QuotaExceeded),
}

/// Result with [`ApiError`].
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's trace id (also in the `x-trace-id` header and in the log lines written
    /// while the request is handled): quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl ApiError {
    fn status_and_kind(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            ),
            ApiError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
            ),
            ApiError::Unauthenticated(dagr_engine::AuthError::Unavailable) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "policy-unavailable",
                "Access decisions unavailable",
            ),
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::Gov(g) => {
                use crate::governance::GovError as G;
                match g {
                    G::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
                    G::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
                    G::Invalid { .. } => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-field",
                        "Invalid field",
                    ),
                    G::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
                    G::Store(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "metadata-unavailable",
                        "Metadata store unavailable",
                    ),
                    G::Engine(e) => Self::engine_status(e),
                }
            }
            ApiError::Audit(a) => {
                use crate::audit::store::AuditStoreError as A;
                match a {
                    A::Invalid { .. } => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-field",
                        "Invalid field",
                    ),
                    A::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
                    A::Database(_) | A::Sqlite(_) | A::Unavailable(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "audit-unavailable",
                        "Audit log unavailable",
                    ),
                    A::Corrupt(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "audit-corrupt",
                        "Audit log corrupt",
                    ),
                    A::UnsupportedUrl(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Internal error",
                    ),
                    A::Subjects(e) => Self::engine_status(e),
                }
            }
            ApiError::Load(l) => {
                use crate::loads::LoadError as L;
                match l {
                    L::Disabled => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "uploads-disabled",
                        "Uploads not enabled",
                    ),
                    L::UnsupportedMediaType(_) => (
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported-media-type",
                        "Unsupported media type",
                    ),
                    L::TooLarge { .. } => (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "upload-too-large",
                        "Upload too large",
                    ),
                    L::BrokeOff { .. } => (
                        StatusCode::BAD_REQUEST,
                        "upload-broke-off",
                        "Upload broke off",
                    ),
                    L::Io(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "upload-failed",
                        "Upload could not be stored",
                    ),
                    L::Store(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "metadata-unavailable",
                        "Metadata store unavailable",
                    ),
                }
            }
            ApiError::Engine(e) => Self::engine_status(e),
            ApiError::Quota(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota-exceeded",
                "Quota exceeded",
            ),
        }
    }

    fn engine_status(e: &EngineError) -> (StatusCode, &'static str, &'static str) {
        use EngineError as E;
        {
            match e {
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
                E::ChangesUnavailable { .. } => (
                    StatusCode::CONFLICT,
                    "changes-unavailable",
                    "Changes unavailable: read the dataset in full",
                ),
                E::InvalidKey { .. } => (StatusCode::BAD_REQUEST, "invalid-key", "Invalid key"),
                E::InvalidRowScope { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-row-scope",
                    "Invalid row scope",
                ),
                E::AccessDenied(_) => (StatusCode::FORBIDDEN, "access-denied", "Access denied"),
                E::AttributeNotVisible(_) => (
                    StatusCode::FORBIDDEN,
                    "attribute-not-visible",
                    "Attribute not visible",
                ),
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
                E::PurposeRequired(_) => (
                    StatusCode::BAD_REQUEST,
                    "purpose-required",
                    "Purpose of use required",
                ),
                E::AuditUnavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit-unavailable",
                    "Audit log unavailable: no data is returned without its access record",
                ),
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.status_and_kind();
        let retry_after = match &self {
            ApiError::Quota(q) => Some(q.retry_after),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        // A server fault's message may carry internals (database errors, paths): say only
        // what kind of failure it was; the details are in the log.
        let detail = match &self {
            ApiError::Unauthenticated(_) => self.to_string(),
            _ if status.is_server_error() => {
                format!("{title}: the server failed to answer; the failure is logged")
            }
            _ => self.to_string(),
        };
        let field = match &self {
            ApiError::Gov(crate::governance::GovError::Invalid { field, .. })
            | ApiError::Audit(crate::audit::store::AuditStoreError::Invalid { field, .. }) => {
                Some(field.clone())
            }
            _ => None,
        };
        let body = Problem {
            kind: format!("https://dagr.invalid/problems/{kind}"),
            title,
            status: status.as_u16(),
            detail,
            field,
            trace_id: dagr_engine::trace::current(),
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(body),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"dagr\""),
            );
        }
        response
    }
}

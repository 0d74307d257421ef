//! One exhaustive mapping from engine errors to gRPC statuses: a caller's mistake is never
//! reported as a server fault, and server faults are logged at `error` with details that do
//! not reach the caller.

use dagr_engine::{AuthError, Error};
use tonic::Status;

/// The gRPC status of an engine error.
pub fn status(e: Error) -> Status {
    let msg = e.to_string();
    match e {
        Error::InvalidDefinition { .. }
        | Error::InvalidKey { .. }
        | Error::InvalidRowScope { .. }
        | Error::QueryRefused(_)
        | Error::InvalidQuery(_) => {
            tracing::debug!(error = %msg, "request refused");
            Status::invalid_argument(msg)
        }
        Error::LoadRefused { .. } => {
            tracing::info!(error = %msg, "load refused");
            Status::invalid_argument(msg)
        }
        Error::DatasetExists(_) => Status::already_exists(msg),
        Error::DatasetNotFound(_) | Error::NoSnapshot(_) | Error::VersionNotKept { .. } => {
            Status::not_found(msg)
        }
        Error::AccessDenied(_) | Error::AttributeNotVisible(_) => Status::permission_denied(msg),
        Error::ChangesUnavailable { .. } => Status::failed_precondition(msg),
        Error::PurposeRequired(_) => Status::invalid_argument(msg),
        Error::AuditUnavailable(_) => {
            tracing::error!(error = %msg, "audit log failed; data withheld");
            Status::unavailable(
                "the access record of this read cannot be written, so no data is returned; retry later",
            )
        }
        Error::ResourcesExhausted(_) => Status::resource_exhausted(msg),
        Error::Store(_) => {
            tracing::error!(error = %msg, "snapshot store failed");
            Status::unavailable("the snapshot store is unavailable; the failure is logged")
        }
        Error::Corrupt(_) | Error::Internal(_) => {
            tracing::error!(error = %msg, "request failed");
            Status::internal("the server failed to answer; the failure is logged")
        }
    }
}

/// The gRPC status of an authentication failure.
pub fn auth_status(e: AuthError) -> Status {
    match e {
        AuthError::Missing | AuthError::Invalid => Status::unauthenticated(e.to_string()),
        AuthError::Unavailable => Status::unavailable(e.to_string()),
    }
}

/// A status for an Arrow or Flight encoding error of a request (the caller's input).
pub fn bad_input(what: &str, e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{what}: {e}"))
}

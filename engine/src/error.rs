//! The engine's error type: one variant per cause, so protocol crates can map each one to a
//! precise status (a user's mistake is never reported as a server fault).

use datafusion::error::DataFusionError;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset definition is invalid; the message names the problem.
    #[error("invalid dataset definition `{dataset}`: {reason}")]
    InvalidDefinition {
        /// Dataset name as given.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// A dataset of that name is already registered.
    #[error("dataset `{0}` already exists")]
    DatasetExists(String),
    /// No dataset of that name.
    #[error("dataset `{0}` not found")]
    DatasetNotFound(String),
    /// The dataset is defined but has no snapshot yet.
    #[error("dataset `{0}` has no snapshot loaded yet")]
    NoSnapshot(String),
    /// A load was refused by validation; nothing changed.
    #[error("load of `{dataset}` refused: {reason}")]
    LoadRefused {
        /// Dataset name.
        dataset: String,
        /// What is wrong with the data, naming the column or keys.
        reason: String,
    },
    /// The requested version is not (or no longer) kept.
    #[error("dataset `{dataset}` has no kept version {version}")]
    VersionNotKept {
        /// Dataset name.
        dataset: String,
        /// Requested version.
        version: u64,
    },
    /// The changes between two versions cannot be given (the schema, or the caller's view
    /// of it, changed between them; or the caller may not see the key): the caller must pull
    /// the dataset in full.
    #[error("changes of `{dataset}` are unavailable: {reason}")]
    ChangesUnavailable {
        /// Dataset name.
        dataset: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A key given for a lookup does not fit the primary key.
    #[error("invalid key for `{dataset}`: {reason}")]
    InvalidKey {
        /// Dataset name.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// A row scope predicate is not valid for the dataset.
    #[error("invalid row scope for `{dataset}`: {reason}")]
    InvalidRowScope {
        /// Dataset name.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// The caller has no grant on the dataset at all.
    #[error("no agreement grants access to dataset `{0}`")]
    AccessDenied(String),
    /// A query or request names an attribute the caller may not see — or one that does not
    /// exist: the two are not told apart, so the answer is no hint that a column exists.
    #[error("permission denied: {0}")]
    AttributeNotVisible(String),
    /// A query was refused because it is not a read-only query.
    #[error("query refused: {0}")]
    QueryRefused(String),
    /// The query is invalid (parse, planning or a name the caller may not use).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The query exceeded a configured resource limit.
    #[error("resource limit exceeded: {0}")]
    ResourcesExhausted(String),
    /// The snapshot store failed (I/O, object store).
    #[error("snapshot store error: {0}")]
    Store(String),
    /// The snapshot store holds data that does not make sense (manifest mismatch, etc.).
    #[error("snapshot store is corrupt: {0}")]
    Corrupt(String),
    /// The request would return personal data and declares no (or an invalid) purpose.
    #[error("purpose required: {0}")]
    PurposeRequired(String),
    /// The access record of a read could not be committed, so the data is withheld.
    #[error("{0}")]
    AuditUnavailable(String),
    /// A bug or an unexpected failure inside the engine.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// True when the error was caused by the caller's input rather than by the server.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Error::Store(_) | Error::Corrupt(_) | Error::Internal(_) | Error::AuditUnavailable(_)
        )
    }

    /// A server fault from any displayable error.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Map a DataFusion error raised while planning or running a caller's query.
///
/// Plan, SQL and schema errors are the caller's mistake; resource errors are limits; the
/// rest are ours.
pub fn from_query_error(e: DataFusionError) -> Error {
    match e.find_root() {
        DataFusionError::SchemaError(err, _)
            if matches!(
                err.as_ref(),
                datafusion::common::SchemaError::FieldNotFound { .. }
            ) =>
        {
            Error::AttributeNotVisible(format!(
                "{} (an attribute that is not granted to you reads as absent)",
                strip_df(&e)
            ))
        }
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Error::InvalidQuery(strip_df(&e)),
        DataFusionError::ResourcesExhausted(_) => Error::ResourcesExhausted(strip_df(&e)),
        DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
            Some(Error::ResourcesExhausted(m)) => Error::ResourcesExhausted(m.clone()),
            Some(Error::AccessDenied(d)) => Error::AccessDenied(d.clone()),
            Some(Error::InvalidQuery(m)) => Error::InvalidQuery(m.clone()),
            Some(Error::AttributeNotVisible(m)) => Error::AttributeNotVisible(m.clone()),
            Some(Error::PurposeRequired(m)) => Error::PurposeRequired(m.clone()),
            Some(Error::AuditUnavailable(m)) => Error::AuditUnavailable(m.clone()),
            _ => Error::Internal(e.to_string()),
        },
        DataFusionError::Execution(_) => Error::InvalidQuery(strip_df(&e)),
        _ => Error::Internal(e.to_string()),
    }
}

/// DataFusion prefixes its messages with context that means nothing to a DAGR user.
fn strip_df(e: &DataFusionError) -> String {
    let root = e.find_root().to_string();
    for prefix in [
        "Error during planning: ",
        "SQL error: ",
        "Schema error: ",
        "This feature is not implemented: ",
        "Execution error: ",
        "Resources exhausted: ",
    ] {
        if let Some(rest) = root.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    root
}

//! Errors of the connector, each naming where the problem is.

use std::fmt;

/// Where in the input a problem was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file path, or `postgresql: TABLE/QUERY` for a database source.
    pub source: String,
    /// 1-based data row within the source (header lines not counted), when known.
    pub row: Option<u64>,
    /// 1-based line of a text file (CSV, NDJSON), when known.
    pub line: Option<u64>,
    /// The column, when known.
    pub column: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        Ok(())
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad input data: the location says where.
    #[error("{location}: {message}")]
    Input {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// Bad arguments or options.
    #[error("{0}")]
    Usage(String),
    /// A local file or directory could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The server refused or failed the request (the message is the server's).
    #[error("{0}")]
    Server(String),
    /// The connection failed in a way that may pass: retried with backoff.
    #[error("{0}")]
    Transient(String),
}

impl LoadError {
    /// An input error at `location`.
    pub fn input(location: Location, message: impl Into<String>) -> Self {
        LoadError::Input {
            location,
            message: message.into(),
        }
    }
}

/// Results of the connector.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;

//! # DAGR connector
//!
//! The universal data-transfer connector, on both sides of a DAGR server:
//! - [`source`]: reading Parquet, CSV, NDJSON and Arrow IPC files or directories, and
//!   PostgreSQL tables or queries, as record batches in a dataset's schema, with errors that
//!   name the file, row and column ([`error::Location`]);
//! - [`validate`]: the checks a load must pass (types, required values, unique keys) run
//!   on the client before anything is sent (`dagr load --dry-run` runs only these).
//!
//! - [`client`]: the connection to a server's Flight port (token, purpose, retries with
//!   backoff on transient network errors) and [`progress`] output on stderr;
//! - [`push`]: `dagr load` — read, validate, and push a snapshot or a change set in one
//!   Flight `DoPut` ending with the completeness marker;
//! - [`pull`]: `dagr pull` — the caller's masked view into a Parquet or CSV file, written
//!   under a temporary name and renamed into place;
//! - [`sync`]: `dagr sync` — a local Parquet copy kept current from the change feed.
//!
//! The `dagr` binary's `load`, `pull` and `sync` subcommands are thin wrappers of these.

pub mod client;
pub mod error;
pub mod progress;
pub mod pull;
pub mod push;
pub mod source;
pub mod sync;
pub mod validate;

pub use error::{LoadError, Location, Result};
pub use source::{BatchStream, Format, SourceBatch, SourceOptions, Sources, Target};
pub use validate::{Summary, Validator};

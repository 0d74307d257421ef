//! DAGR universal data-transfer connector.
//!
//! This crate will own reading sources (Parquet, CSV, NDJSON, Arrow IPC, PostgreSQL) and
//! pushing them into a DAGR server over Flight `DoPut`, as full snapshots or change sets, and the
//! consumer side (`dagr pull`, `dagr sync`). Today the engine loads Parquet in-process
//! (`dagr_engine::Engine::load_parquet`); the connector issue builds the remote path here.

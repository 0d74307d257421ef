//! DAGR Arrow Flight and Flight SQL service.
//!
//! This crate will own the tonic service that bulk consumers and online services use: plain
//! Flight (`ListFlights`, `GetFlightInfo`, `DoGet` of a caller's masked view, `DoPut` of new
//! snapshots by owners) and Flight SQL (statements and prepared statements through the engine's
//! read-only query entry point). It depends only on `dagr-engine` and the seams the engine
//! defines (who the caller is, which grants they hold, where access records go); it never
//! depends on `dagr-admin-api`.
//!
//! Not yet implemented: see the Flight issue. The crate exists so the workspace has its final
//! shape and dependency direction from the start.

/// Default address the Flight service binds when none is configured.
pub const DEFAULT_FLIGHT_ADDR: &str = "127.0.0.1:50051";

//! # DAGR — data distribution and governance platform
//!
//! The `dagr` package wires the library crates into one binary:
//! - `dagr-engine`: datasets, versioned in-memory snapshots, indexes, permission masks and
//!   the DataFusion integration;
//! - `dagr-admin-api`: the REST API under `/api/v1`;
//! - `dagr-portal`: the web portal under `/`;
//! - `dagr-flight-server`: Arrow Flight / Flight SQL (Flight issue);
//! - `dagr-loaders`: the universal connector (connector issue).
//!
//! This crate holds only wiring: the CLI ([`cli`]), the server start-up and shutdown
//! ([`server`]), the demo bootstrap ([`demo`], [`demo_governance`]) the bootstrap CLI
//! of the metadata store ([`admin`]), the audit log check ([`audit`]) and the connector's
//! commands `load`, `pull` and `sync` ([`connector`]). See `docs/architecture.md`.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod connector;
pub mod demo;
pub mod demo_governance;
pub mod demo_map;
pub mod demo_tapis;
pub mod server;
pub mod telemetry;

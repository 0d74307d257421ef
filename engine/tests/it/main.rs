//! The engine's integration tests: one test binary (linking DataFusion once), one module per
//! concern.
#![allow(dead_code, unreachable_pub, missing_docs)]

mod audit;
mod changes;
mod common;
mod leaks;
mod limits;
mod masks;
mod pools;
mod prepared;
mod snapshots;

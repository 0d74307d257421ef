//! # DAGR engine
//!
//! The engine owns the data side of DAGR: dataset definitions, versioned in-memory
//! snapshots and their persistence, primary-key indexes, access masks, and the DataFusion
//! integration through which every read of register data passes. It depends on no other
//! crate of ours; protocol crates (`flight-server`, `admin-api`) hold an `Arc<Engine>`.
//!
//! ## Architecture
//! - [`DatasetDefinition`]: a register's schema, key and per-attribute personal-data flags,
//!   validated once.
//! - [`Snapshot`]: an immutable numbered version, held as Arrow chunks of
//!   [`snapshot::CHUNK_ROWS`] rows with a [`PrimaryKeyIndex`]. The current snapshot of a
//!   dataset is swapped atomically; readers hold an `Arc` and finish on the version they
//!   started with.
//! - [`store`]: snapshots are persisted as Parquet parts plus a manifest in an object store
//!   before they become current; `catalog.json` is the commit point, so a load that died
//!   half-way is never taken for a snapshot.
//! - [`changes`]: incremental change sets ([`Engine::apply_changes`]: upserts and deletes
//!   by key, committed as a new version that shares every untouched chunk of the previous
//!   one) and the change feed between a kept version and the current one
//!   ([`Engine::changes`], and per caller through their mask [`Engine::change_feed`]).
//! - [`mask`]: a caller's [`Grant`]s resolve per snapshot to a [`ResolvedMask`] (roaring
//!   bitmaps of permitted columns and rows). Every read path applies it through the same two
//!   functions.
//! - [`table`] and [`query`]: a DataFusion `TableProvider` presenting the masked view, and the
//!   read-only SQL entry point ([`Engine::query`]).
//! - [`prepared`]: prepared statements ([`Engine::prepare`], [`Engine::execute_prepared`]);
//!   primary-key point lookups are answered from the index without planning.
//! - [`principal`]: the caller seam — [`Principal`] and the [`AccessPolicy`] trait that
//!   protocol crates ask who a token stands for and what it may read.
//! - [`quota`]: per-token quotas (requests per second, open streams, running SQL
//!   queries) that both protocol servers share.
//! - [`audit`]: the audit seam — every view can note the personal attributes and rows it
//!   hands out in a [`ReadLog`], which becomes [`AccessRecord`]s for an [`AuditSink`].
//! - [`task`]: [`task::SpawnedTask`], background tasks that stop with their owner.
//! - [`pools`]: [`Pools`], the bulk runtime on which DataFusion and bulk streams run and the
//!   bounded pool of load jobs, both at a lower priority than the serving runtime's lookups.
//! - [`demo`]: the deterministic generator of the five demo registers.

pub mod audit;
pub mod blobs;
pub mod bounded;
pub mod changes;
mod deadline;
pub mod definition;
pub mod demo;
pub mod engine;
pub mod error;
pub mod index;
pub mod ledger;
pub mod mask;
pub mod metrics;
pub mod pools;
pub mod prepared;
pub mod principal;
pub mod query;
pub mod quota;
pub mod replica;
pub mod scope;
mod scrub;
pub mod snapshot;
pub mod store;
pub mod table;
pub mod task;
pub mod trace;

pub use audit::{AccessRecord, AuditContext, AuditError, AuditSink, Channel, ReadLog};
pub use changes::{CHANGE_COLUMN, ChangeFeed, ChangeReport, Changes};
pub use definition::{Attribute, DatasetDefinition};
pub use engine::{Access, Engine, EngineConfig, LoadReport, MaskedView, VersionInfo};
pub use error::{Error, Result};
pub use index::{Key, KeyValue, PrimaryKeyIndex};
pub use mask::{Grant, ResolvedMask};
pub use pools::{Pools, PoolsConfig};
pub use prepared::Prepared;
pub use principal::{AccessPolicy, AuthError, Principal, Role};
pub use query::{QueryConfig, QueryResult};
pub use quota::{QuotaExceeded, QuotaKind, QuotaOverrides, QuotaPermit, QuotaValues, Quotas};
pub use snapshot::Snapshot;

/// Re-exports for crates that build on the engine, so they use the same versions.
pub use arrow;
pub use datafusion;

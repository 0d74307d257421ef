//! The ledger: where the commit record of every dataset lives when several nodes (replicas)
//! share one snapshot store.
//!
//! A single node commits a version by writing `catalog.json` into the snapshot store
//! ([`crate::store`]). Replicas cannot: a store offers no lock, and a node must learn what
//! another committed. With a ledger (the metadata database, PostgreSQL), a commit is:
//!
//! 1. [`Ledger::lock`] the dataset across nodes (a row lock held in an open transaction: a
//!    second node's load waits for it, a node that dies releases it with its connection);
//! 2. bring this node's copy of the dataset up to the ledger's catalog, if another node
//!    committed since;
//! 3. write the new version's files into the store (part names carry a per-load nonce, so a
//!    dead node's leftovers never mix with a committed version);
//! 4. [`LedgerLock::commit`] the new catalog and the version's manifest in one transaction,
//!    which also tells the other nodes (`NOTIFY`).
//!
//! A version is current only once its ledger transaction commits; the files of a load that
//! never committed are garbage, deleted after a grace period ([`crate::Engine::collect_garbage`]).
//! Other nodes apply committed versions with [`crate::Engine::catch_up`].

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The commit record of a dataset: its current version, the versions kept for rollback
/// (oldest first, including the current one) and the number the next load gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The current version (0 = none yet).
    pub current: u64,
    /// Versions kept for rollback, oldest first (includes `current`).
    pub kept: Vec<u64>,
    /// The number the next load gets.
    pub next: u64,
}

impl Catalog {
    /// The catalog of a dataset with no version yet.
    pub fn empty() -> Self {
        Catalog {
            current: 0,
            kept: vec![],
            next: 1,
        }
    }
}

/// One dataset's committed catalog, as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The dataset.
    pub name: String,
    /// Its committed catalog.
    pub catalog: Catalog,
    /// When the catalog was last committed (Unix milliseconds, the committing node's clock).
    pub committed_at_ms: i64,
    /// How many commits the catalog has seen: a node applies an entry only when it is newer
    /// than what it holds.
    pub revision: u64,
}

/// The shared commit record of every dataset. Implemented by the metadata store.
#[async_trait]
pub trait Ledger: fmt::Debug + Send + Sync + 'static {
    /// Every dataset the ledger knows, with its committed catalog.
    async fn catalogs(&self) -> Result<Vec<LedgerEntry>>;

    /// Record `name` with `catalog` unless the ledger already knows it (a new dataset, or one
    /// adopted from a store that a single node committed with `catalog.json`).
    async fn adopt(&self, name: &str, catalog: &Catalog) -> Result<()>;

    /// Lock the commits of `name` on every node until the returned lock commits or is
    /// dropped; waits while another node holds it (bounded: an error after a while).
    async fn lock(&self, name: &str) -> Result<Box<dyn LedgerLock>>;

    /// Lock the commits of `name` unless another node (or load) holds the lock: `None` then,
    /// at once.
    async fn try_lock(&self, name: &str) -> Result<Option<Box<dyn LedgerLock>>>;

    /// The manifest (JSON) of a committed version, if the ledger holds it.
    async fn manifest(&self, name: &str, version: u64) -> Result<Option<String>>;

    /// The versions of `name` that left the kept list, with when (Unix milliseconds).
    async fn expired(&self, name: &str) -> Result<std::collections::HashMap<u64, i64>>;
}

/// A dataset's commit lock across nodes (an open transaction).
#[async_trait]
pub trait LedgerLock: Send + Sync {
    /// The committed catalog, read under the lock.
    fn catalog(&self) -> &Catalog;

    /// Its revision; [`LedgerLock::commit`] makes it one more.
    fn revision(&self) -> u64;

    /// Commit `next`, with the manifest (JSON) of the version it adds, if any, and tell the
    /// other nodes. On error the outcome may be unknown (the connection broke during the
    /// commit): the caller must not reuse the version number.
    async fn commit(
        self: Box<Self>,
        next: &Catalog,
        added: Option<(u64, usize, String)>,
    ) -> Result<()>;
}

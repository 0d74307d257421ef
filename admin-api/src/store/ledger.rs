//! The ledger of replicas ([`dagr_engine::ledger`]) in the metadata database: each dataset's
//! commit record in `dataset_catalogs`, each committed version's manifest in
//! `dataset_versions`. PostgreSQL only: a single node (SQLite) commits into its snapshot
//! store.
//!
//! A commit lock is an open transaction holding the dataset's row `FOR UPDATE`: another
//! node's load of the same dataset waits on it (at most [`LOCK_WAIT`]), and a node that dies
//! releases it with its connection. The commit updates the row, records the version and
//! sends `NOTIFY dagr_catalog` in the same transaction: other nodes hear of it only once it
//! is committed.

use async_trait::async_trait;
use dagr_engine::ledger::{Catalog, Ledger, LedgerEntry, LedgerLock};
use dagr_engine::{Error, Result};

use super::*;

/// The channel other nodes `LISTEN` on; the payload is the dataset's name.
pub const CHANNEL: &str = "dagr_catalog";

/// How long a load waits for another node's commit of the same dataset before it is
/// refused (PostgreSQL's `lock_timeout`).
pub const LOCK_WAIT: Duration = Duration::from_secs(300);

/// How long a commit lock's transaction may sit idle (a load validating, indexing and writing
/// its files) before PostgreSQL ends it, releasing the lock: whatever a server's default
/// `idle_in_transaction_session_timeout` says. A load that takes longer fails at its commit.
pub const LOCK_HELD_MAX: Duration = Duration::from_secs(2 * 3600);

/// The ledger on the metadata database.
#[derive(Debug, Clone)]
pub struct SqlLedger {
    pool: AnyPool,
    node: String,
}

impl SqlLedger {
    /// The ledger of `store`, committing as `node`; `None` unless the store is PostgreSQL.
    pub fn new(store: &MetaStore, node: &str) -> Option<Self> {
        (store.backend() == Backend::Postgres).then(|| SqlLedger {
            pool: store.pool().clone(),
            node: node.to_owned(),
        })
    }

    /// Record `name` with `catalog` unless the ledger knows it already.
    fn insert_catalog<'q>(
        &'q self,
        name: &'q str,
        catalog: &Catalog,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        sqlx::query(
            "INSERT INTO dataset_catalogs (name, current_version, kept, next_version, revision, \
             committed_at, node) VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(catalog.current as i64)
        .bind(kept_json(&catalog.kept))
        .bind(catalog.next as i64)
        .bind(Time::now().0)
        .bind(&self.node)
    }

    /// Open a commit lock of `name`: wait for it, or (`skip`) answer `None` at once when
    /// another transaction holds it.
    async fn begin(&self, name: &str, skip: bool) -> Result<Option<Box<dyn LedgerLock>>> {
        let what = "locking the dataset for a commit";
        let mut tx = self.pool.begin().await.map_err(db(what))?;
        // Waits are bounded; a lock's holder that died (its host gone without closing the
        // connection) is noticed by TCP keepalives within about two minutes, and a hung one
        // is ended after LOCK_HELD_MAX, releasing the lock either way.
        // One round trip for the transaction's settings (`set_config(.., true)` is SET LOCAL).
        sqlx::query(
            "SELECT set_config('lock_timeout', $1, true), \
             set_config('idle_in_transaction_session_timeout', $2, true), \
             set_config('tcp_keepalives_idle', '60', true), \
             set_config('tcp_keepalives_interval', '10', true), \
             set_config('tcp_keepalives_count', '6', true)",
        )
        .bind(format!("{}s", LOCK_WAIT.as_secs()))
        .bind(format!("{}s", LOCK_HELD_MAX.as_secs()))
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        self.insert_catalog(name, &Catalog::empty())
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        let row = sqlx::query(if skip {
            "SELECT current_version, kept, next_version, revision FROM dataset_catalogs \
             WHERE name = $1 FOR UPDATE SKIP LOCKED"
        } else {
            "SELECT current_version, kept, next_version, revision FROM dataset_catalogs \
             WHERE name = $1 FOR UPDATE"
        })
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(what))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (catalog, revision) = catalog_of(&row)?;
        Ok(Some(Box::new(SqlLock {
            tx: tokio::sync::Mutex::new(tx),
            name: name.to_owned(),
            node: self.node.clone(),
            catalog,
            revision,
        })))
    }
}

fn db(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03") => {
            Error::ResourcesExhausted(format!(
                "{what}: another node has been committing this dataset for over {} s; try \
                 again later",
                LOCK_WAIT.as_secs()
            ))
        }
        _ => Error::Store(format!("{what}: metadata database error: {e}")),
    }
}

fn kept_json(kept: &[u64]) -> String {
    serde_json::to_string(kept).expect("a list of numbers serialises")
}

fn catalog_of(r: &AnyRow) -> Result<(Catalog, u64)> {
    let num = |col: &str| -> Result<u64> {
        let v: i64 = r.try_get(col).map_err(db("reading the ledger"))?;
        u64::try_from(v).map_err(|_| Error::Corrupt(format!("ledger column {col} is {v}")))
    };
    let kept: String = r.try_get("kept").map_err(db("reading the ledger"))?;
    let kept: Vec<u64> = serde_json::from_str(&kept)
        .map_err(|e| Error::Corrupt(format!("ledger column kept: {e}")))?;
    Ok((
        Catalog {
            current: num("current_version")?,
            kept,
            next: num("next_version")?,
        },
        num("revision")?,
    ))
}

#[async_trait]
impl Ledger for SqlLedger {
    async fn catalogs(&self) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT name, current_version, kept, next_version, revision, committed_at \
             FROM dataset_catalogs ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the ledger"))?;
        rows.iter()
            .map(|r| {
                let (catalog, revision) = catalog_of(r)?;
                Ok(LedgerEntry {
                    name: r.try_get("name").map_err(db("reading the ledger"))?,
                    catalog,
                    committed_at_ms: r
                        .try_get("committed_at")
                        .map_err(db("reading the ledger"))?,
                    revision,
                })
            })
            .collect()
    }

    async fn adopt(&self, name: &str, catalog: &Catalog) -> Result<()> {
        self.insert_catalog(name, catalog)
            .execute(&self.pool)
            .await
            .map_err(db("registering a dataset in the ledger"))?;
        Ok(())
    }

    async fn lock(&self, name: &str) -> Result<Box<dyn LedgerLock>> {
        Ok(self.begin(name, false).await?.expect("a waiting lock"))
    }

    async fn try_lock(&self, name: &str) -> Result<Option<Box<dyn LedgerLock>>> {
        self.begin(name, true).await
    }

    async fn expired(&self, name: &str) -> Result<std::collections::HashMap<u64, i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT version, expired_at FROM dataset_versions \
             WHERE name = $1 AND expired_at IS NOT NULL",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the ledger"))?;
        Ok(rows.into_iter().map(|(v, at)| (v as u64, at)).collect())
    }

    async fn manifest(&self, name: &str, version: u64) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT manifest FROM dataset_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a manifest from the ledger"))
    }
}

/// A held commit lock: the open transaction (in a mutex only so that the lock is `Sync`).
struct SqlLock {
    tx: tokio::sync::Mutex<Transaction<'static, Any>>,
    name: String,
    node: String,
    catalog: Catalog,
    revision: u64,
}

#[async_trait]
impl LedgerLock for SqlLock {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn revision(&self) -> u64 {
        self.revision
    }

    async fn commit(
        self: Box<Self>,
        next: &Catalog,
        added: Option<(u64, usize, String)>,
    ) -> Result<()> {
        let what = "committing to the ledger";
        let now = Time::now().0;
        let mut tx = self.tx.into_inner();
        sqlx::query(
            "UPDATE dataset_catalogs SET current_version = $2, kept = $3, next_version = $4, \
             revision = revision + 1, committed_at = $5, node = $6 WHERE name = $1",
        )
        .bind(&self.name)
        .bind(next.current as i64)
        .bind(kept_json(&next.kept))
        .bind(next.next as i64)
        .bind(now)
        .bind(&self.node)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        // Versions that leave the kept list: their files go a grace period from now. A
        // version adopted from a single node's store has no row yet: it gets one, with no
        // manifest (its manifest is in the store).
        for v in self.catalog.kept.iter().filter(|v| !next.kept.contains(v)) {
            sqlx::query(
                "INSERT INTO dataset_versions (name, version, row_count, manifest, node, \
                 committed_at, expired_at) VALUES ($1, $2, 0, '', $4, 0, $3) \
                 ON CONFLICT (name, version) DO UPDATE SET expired_at = $3 \
                 WHERE dataset_versions.expired_at IS NULL",
            )
            .bind(&self.name)
            .bind(*v as i64)
            .bind(now)
            .bind(&self.node)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        }
        if let Some((version, rows, manifest)) = added {
            sqlx::query(
                "INSERT INTO dataset_versions (name, version, row_count, manifest, node, \
                 committed_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&self.name)
            .bind(version as i64)
            .bind(rows as i64)
            .bind(manifest)
            .bind(&self.node)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        }
        sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS n")
            .bind(CHANNEL)
            .bind(&self.name)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        tx.commit().await.map_err(db(what))
    }
}

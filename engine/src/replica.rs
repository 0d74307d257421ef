//! Replicas: committing through a shared [`Ledger`], applying what other nodes committed
//! ([`Engine::catch_up`]) and deleting the files no committed version references after a
//! grace period ([`Engine::collect_garbage`]). On a single node (no ledger) the commit point
//! stays each dataset's `catalog.json` in the snapshot store, and the rest does nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use object_store::path::Path;
use tokio::sync::OwnedMutexGuard;
use tracing::{error, info, warn};

use crate::engine::{DatasetState, Engine};
use crate::error::{Error, Result};
use crate::ledger::{Catalog, Ledger, LedgerEntry, LedgerLock};
use crate::store::{MANIFEST, Manifest, STARTED, SnapshotStore};

/// Ledger locks a node holds or waits for at once (each an open transaction on a pooled
/// connection of the metadata database, whose pool has 16): the rest of the pool stays free
/// for authentication, governance and the catch-up.
pub(crate) const LEDGER_SLOTS: usize = 6;

/// The right to commit one dataset: its local commit lock, holding the committed catalog,
/// and with replicas the ledger's lock across nodes (taken first), the dataset's local gate
/// and a ledger slot.
pub(crate) struct CommitLock {
    pub(crate) catalog: OwnedMutexGuard<Catalog>,
    ledger: Option<Box<dyn LedgerLock>>,
    _gate: Option<OwnedMutexGuard<()>>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl CommitLock {
    /// Whether the commit goes through a ledger (several nodes share the store).
    pub(crate) fn replicated(&self) -> bool {
        self.ledger.is_some()
    }

    /// Commit `next` (adding `added`: version, rows, manifest): in the ledger, or as the
    /// store's `catalog.json`. Returns the local guard, to install `next` under; on error
    /// the guard comes back with the error.
    pub(crate) async fn commit(
        self,
        state: &DatasetState,
        store: &SnapshotStore,
        name: &str,
        next: &Catalog,
        added: Option<(u64, usize, Manifest)>,
    ) -> std::result::Result<OwnedMutexGuard<Catalog>, (OwnedMutexGuard<Catalog>, Error)> {
        let CommitLock {
            catalog,
            ledger,
            _gate,
            _slot,
        } = self;
        let done = match ledger {
            Some(lock) => {
                let revision = lock.revision() + 1;
                let added = match added
                    .map(|(v, rows, m)| serde_json::to_string(&m).map(|m| (v, rows, m)))
                    .transpose()
                {
                    Ok(a) => a,
                    Err(e) => return Err((catalog, Error::internal(e))),
                };
                let done = lock.commit(next, added).await;
                if done.is_ok() {
                    state.revision.store(revision, Ordering::Release);
                }
                done
            }
            None => store.write_catalog(name, next).await,
        };
        match done {
            Ok(()) => Ok(catalog),
            Err(e) => Err((catalog, e)),
        }
    }
}

/// What one [`Engine::catch_up`] applied.
#[derive(Debug, Default, Clone)]
pub struct CatchUp {
    /// Datasets whose catalog changed: name, current version, and the time since the other
    /// node committed it (by the two nodes' clocks; 0 when the clock went backwards).
    pub applied: Vec<(String, u64, Duration)>,
    /// Datasets that could not be brought up to date, with the reason.
    pub failed: Vec<(String, String)>,
}

impl Engine {
    /// Whether this engine commits through a ledger shared with other nodes.
    pub fn is_replicated(&self) -> bool {
        self.config.ledger.is_some()
    }

    /// Take the right to commit `name`. With replicas: the dataset's local gate (other local
    /// loads of it wait there, costing no database connection), a ledger slot, the ledger's
    /// lock (waiting for another node's commit), and only then the local commit lock — so
    /// that the catch-up can apply other nodes' commits while this load waits. Then apply
    /// what another node committed since this one last looked, so that a load or a change
    /// set starts from the committed version.
    pub(crate) async fn lock_commit(
        &self,
        state: &Arc<DatasetState>,
        name: &str,
    ) -> Result<CommitLock> {
        let (mut gate, mut slot) = (None, None);
        let ledger = match &self.config.ledger {
            Some(l) => {
                gate = Some(Arc::clone(&state.gate).lock_owned().await);
                slot = Some(
                    Arc::clone(&self.ledger_slots)
                        .acquire_owned()
                        .await
                        .map_err(Error::internal)?,
                );
                Some(l.lock(name).await?)
            }
            None => None,
        };
        let mut catalog = Arc::clone(&state.commit).lock_owned().await;
        if let Some(remote) = &ledger {
            if *remote.catalog() != *catalog {
                self.apply(state, name, &mut catalog, remote.catalog().clone())
                    .await?;
            }
            state.revision.store(remote.revision(), Ordering::Release);
            info!(dataset = %name, version = catalog.next, "holding the dataset's commit lock across replicas");
        }
        Ok(CommitLock {
            catalog,
            ledger,
            _gate: gate,
            _slot: slot,
        })
    }

    /// A single node refuses a store that replicas commit into: its `catalog.json` files
    /// are stale there, and it would delete the versions they do not name.
    pub(crate) async fn refuse_a_replicated_store(&self) -> Result<()> {
        if self.store.is_replicated().await? {
            return Err(Error::Store(format!(
                "this snapshot store is shared by replicas (it holds {}): start with the \
                 PostgreSQL --database-url the other nodes use",
                crate::store::REPLICATED
            )));
        }
        Ok(())
    }

    /// Make `next` (committed by another node) this node's catalog, reading its current
    /// version from the store unless it is held in memory.
    async fn apply(
        &self,
        state: &DatasetState,
        name: &str,
        catalog: &mut Catalog,
        next: Catalog,
    ) -> Result<()> {
        if next.current == catalog.current || next.current == 0 {
            *state.committed.write() = next.clone();
            *catalog = next;
            return Ok(());
        }
        let snapshot = match state.held(next.current) {
            Some(s) => s,
            None => Arc::new(self.read_version(name, next.current).await?),
        };
        state.install(catalog, next, snapshot);
        Ok(())
    }

    /// The manifest of a version: from the ledger when there is one (the commit point),
    /// else (or for a version adopted from a single node's store) from the store.
    pub(crate) async fn manifest(&self, name: &str, version: u64) -> Result<Option<Manifest>> {
        if let Some(ledger) = &self.config.ledger
            && let Some(json) = ledger.manifest(name, version).await?
            && !json.is_empty()
        {
            return serde_json::from_str(&json).map(Some).map_err(|e| {
                Error::Corrupt(format!(
                    "the ledger's manifest of `{name}` version {version}: {e}"
                ))
            });
        }
        self.store.read_manifest(name, version).await
    }

    /// Open with a ledger: adopt the datasets a single node committed into the store that the
    /// ledger does not know yet, then restore every dataset the ledger names. Nothing is
    /// deleted here (another node may be writing a version): see [`Engine::collect_garbage`].
    pub(crate) async fn restore_from_ledger(&self) -> Result<()> {
        let ledger = Arc::clone(self.config.ledger.as_ref().expect("called with a ledger"));
        if !self.store.is_replicated().await? {
            self.store.mark_replicated().await?;
        }
        let mut entries = ledger.catalogs().await?;
        let known: HashSet<String> = entries.iter().map(|e| e.name.clone()).collect();
        let mut adopted_any = false;
        for name in self.store.dataset_names().await? {
            if known.contains(&name) {
                continue;
            }
            // One dataset that cannot be read is reported and skipped, as on a single node.
            let adopted = async {
                if self.store.read_definition(&name).await?.is_none() {
                    return Ok(None);
                }
                let catalog = self.store.read_catalog(&name).await?;
                ledger.adopt(&name, &catalog).await?;
                Ok::<_, Error>(Some(catalog.current))
            };
            match adopted.await {
                Ok(Some(version)) => {
                    adopted_any = true;
                    info!(dataset = %name, version, "adopted a dataset of the snapshot store into the ledger");
                }
                Ok(None) => {}
                Err(e) => {
                    error!(dataset = %name, error = %e, "cannot adopt this dataset into the ledger; it is skipped and not served");
                    self.unreadable.write().insert(name.clone(), e.to_string());
                }
            }
        }
        if adopted_any {
            entries = ledger.catalogs().await?;
        }
        for entry in &entries {
            self.restore_entry(entry).await;
        }
        Ok(())
    }

    /// Restore a dataset this node does not know yet from its ledger entry; one that cannot
    /// be read is reported and left out (as at start).
    async fn restore_entry(&self, entry: &LedgerEntry) -> Option<u64> {
        let name = &entry.name;
        let restored = async {
            let definition = self.store.read_definition(name).await?.ok_or_else(|| {
                Error::Corrupt(format!(
                    "dataset `{name}` is in the ledger but has no definition in the store"
                ))
            })?;
            self.restored_state(name, definition, entry.catalog.clone())
                .await
        }
        .await;
        match restored {
            Ok(state) => {
                state.revision.store(entry.revision, Ordering::Release);
                let mut map = self.datasets.write();
                // A create on this node may have raced the catch-up: keep what is there.
                map.entry(name.clone()).or_insert_with(|| Arc::new(state));
                self.unreadable.write().remove(name);
                Some(entry.catalog.current)
            }
            Err(e) => {
                error!(dataset = %name, error = %e, "cannot restore this dataset; it is skipped and not served");
                self.unreadable.write().insert(name.clone(), e.to_string());
                None
            }
        }
    }

    /// Apply what other nodes committed: every dataset whose ledger catalog differs from
    /// this node's is brought up to it (its current version read from the store), and
    /// datasets registered elsewhere are restored. Nothing to do on a single node.
    ///
    /// A dataset being committed on this node is skipped: its commit holds the ledger's lock,
    /// so no other node can have committed it meanwhile.
    pub async fn catch_up(&self) -> Result<CatchUp> {
        let entries = self.ledger_entries().await?;
        Ok(self.apply_entries(entries).await)
    }

    /// Every dataset's committed catalog as the ledger holds it (none on a single node): the
    /// first half of [`Engine::catch_up`].
    pub async fn ledger_entries(&self) -> Result<Vec<LedgerEntry>> {
        match &self.config.ledger {
            Some(ledger) => ledger.catalogs().await,
            None => Ok(vec![]),
        }
    }

    /// Bring this node to `entries` (from [`Engine::ledger_entries`]): the second half of
    /// [`Engine::catch_up`].
    pub async fn apply_entries(&self, entries: Vec<LedgerEntry>) -> CatchUp {
        let mut report = CatchUp::default();
        // From the other node's commit to now (after this node applied it), by the two
        // nodes' clocks; 0 when they disagree the wrong way.
        let lag = |entry: &LedgerEntry| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .and_then(|n| {
                    n.checked_sub(Duration::from_millis(entry.committed_at_ms.max(0) as u64))
                })
                .unwrap_or_default()
        };
        for entry in entries {
            let state = self.datasets.read().get(&entry.name).cloned();
            let Some(state) = state else {
                if let Some(v) = self.restore_entry(&entry).await {
                    report.applied.push((entry.name.clone(), v, lag(&entry)));
                } else {
                    let reason = self.unreadable.read().get(&entry.name).cloned();
                    report
                        .failed
                        .push((entry.name.clone(), reason.unwrap_or_default()));
                }
                continue;
            };
            let revision = entry.revision;
            if state.revision.load(Ordering::Acquire) >= revision {
                continue;
            }
            let Ok(mut catalog) = Arc::clone(&state.commit).try_lock_owned() else {
                continue;
            };
            // Re-checked under the lock: a commit of this node may have gone past `entry`.
            if state.revision.load(Ordering::Acquire) >= revision {
                continue;
            }
            if *catalog == entry.catalog {
                state.revision.store(revision, Ordering::Release);
                continue;
            }
            match self
                .apply(&state, &entry.name, &mut catalog, entry.catalog.clone())
                .await
            {
                Ok(()) => {
                    state.revision.store(revision, Ordering::Release);
                    let lag = lag(&entry);
                    info!(dataset = %entry.name, version = entry.catalog.current, lag_ms = lag.as_millis() as u64, "applied a version committed by another node");
                    report
                        .applied
                        .push((entry.name.clone(), entry.catalog.current, lag));
                }
                Err(e) => {
                    warn!(dataset = %entry.name, error = %e, "cannot apply a version committed by another node");
                    report.failed.push((entry.name.clone(), e.to_string()));
                }
            }
        }
        report
    }

    /// With a ledger, delete the store's files that no committed version references, a
    /// grace period after they stopped being used: a version past retention `grace` after it
    /// expired (a node still catching up may read it until then); the directory of a load
    /// that never committed once its newest file is older than `grace` (every load writes a
    /// fresh file first, so a load still writing, on any node, is never touched); and files
    /// inside a kept version's directory that its manifest does not name (a dead load's
    /// leftovers) once older than `grace`. Returns the number of files deleted. Does nothing
    /// on a single node, which deletes such files as it goes.
    ///
    /// A dataset is collected under its ledger lock, taken without waiting: one being
    /// loaded (on any node) is skipped until the next round.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<usize> {
        let Some(ledger) = self.config.ledger.clone() else {
            return Ok(0);
        };
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(grace).map_err(Error::internal)?;
        let mut deleted = 0;
        for entry in ledger.catalogs().await? {
            let _slot = Arc::clone(&self.ledger_slots)
                .acquire_owned()
                .await
                .map_err(Error::internal)?;
            let Some(lock) = ledger.try_lock(&entry.name).await? else {
                continue;
            };
            deleted += self
                .collect_dataset(ledger.as_ref(), &entry.name, lock.catalog(), cutoff)
                .await?;
        }
        if deleted > 0 {
            info!(
                files = deleted,
                "garbage collection deleted unreferenced snapshot files"
            );
        }
        Ok(deleted)
    }

    /// The garbage of one dataset whose ledger lock is held, committed as `catalog`: the
    /// number of files deleted.
    async fn collect_dataset(
        &self,
        ledger: &dyn Ledger,
        name: &str,
        catalog: &Catalog,
        cutoff: DateTime<Utc>,
    ) -> Result<usize> {
        // The files each kept version references; a kept version whose manifest cannot be
        // read makes the whole dataset wait for the next round.
        let mut referenced: BTreeMap<u64, HashSet<String>> = BTreeMap::new();
        for &v in &catalog.kept {
            let Ok(Some(m)) = self.manifest(name, v).await else {
                warn!(dataset = %name, version = v, "garbage collection skips this dataset: a kept version's manifest cannot be read");
                return Ok(0);
            };
            let mut files: HashSet<String> = m.parts.into_iter().map(|p| p.file).collect();
            files.extend([MANIFEST, STARTED].map(str::to_owned));
            referenced.insert(v, files);
        }
        let expired = ledger.expired(name).await?;
        // Per version directory not kept: its files and the time of its newest one.
        let mut unkept: BTreeMap<u64, (Vec<Path>, DateTime<Utc>)> = BTreeMap::new();
        let mut doomed = Vec::new();
        for f in self.store.version_files(name).await? {
            match referenced.get(&f.version) {
                Some(files) => {
                    if !files.contains(&f.file) && f.modified < cutoff {
                        doomed.push(f.path);
                    }
                }
                None => {
                    let slot = unkept
                        .entry(f.version)
                        .or_insert_with(|| (vec![], f.modified));
                    slot.1 = slot.1.max(f.modified);
                    slot.0.push(f.path);
                }
            }
        }
        for (version, (files, newest)) in unkept {
            let unused = match expired.get(&version) {
                Some(&at) => at < cutoff.timestamp_millis(),
                None => newest < cutoff,
            };
            if unused {
                doomed.extend(files);
            }
        }
        let mut deleted = 0;
        for path in doomed {
            match self.store.delete_file(&path).await {
                Ok(()) => deleted += 1,
                Err(e) => {
                    warn!(path = %path, error = %e, "garbage collection could not delete a file")
                }
            }
        }
        Ok(deleted)
    }
}

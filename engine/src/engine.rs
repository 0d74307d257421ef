//! The engine: the registry of datasets, their current snapshots, loads, rollbacks and
//! restore from the snapshot store.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::Utc;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use parking_lot::RwLock;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::audit::ReadLog;
use crate::definition::DatasetDefinition;
use crate::error::{Error, Result};
use crate::index::KeyValue;
use crate::mask::{Grant, ResolvedMask};
use crate::pools::Pools;
use crate::query::QueryConfig;
use crate::replica::CommitLock;
use crate::snapshot::Snapshot;
use crate::store::{Catalog, SnapshotStore, decode_parquet};

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many versions of each dataset are kept for rollback (at least 1).
    pub keep_versions: usize,
    /// Query limits.
    pub query: QueryConfig,
    /// Where DataFusion, bulk streams and load jobs run ([`Pools::shared`] by default: on
    /// the caller's runtime).
    pub pools: Pools,
    /// The shared commit record of replicas ([`crate::ledger`]); `None` on a single node,
    /// whose commit point is each dataset's `catalog.json` in the snapshot store.
    pub ledger: Option<Arc<dyn crate::ledger::Ledger>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            keep_versions: 3,
            query: QueryConfig::default(),
            pools: Pools::shared(),
            ledger: None,
        }
    }
}

/// State of one dataset.
#[derive(Debug)]
pub(crate) struct DatasetState {
    pub(crate) definition: RwLock<Arc<DatasetDefinition>>,
    pub(crate) current: RwLock<Option<Arc<Snapshot>>>,
    /// Serialises loads, change sets, rollbacks and redefinitions of this dataset; holds the
    /// committed catalog. Its guard is owned, so that it can move into the task that commits
    /// ([`run_to_completion`]).
    pub(crate) commit: Arc<tokio::sync::Mutex<Catalog>>,
    /// A copy of the committed catalog, updated with it: for readers (the change feed, the
    /// list of versions) that must not queue behind a load, which holds `commit` for its
    /// whole validate-and-write.
    pub(crate) committed: RwLock<Catalog>,
    /// Older versions kept reachable in memory, so that the change feed need not read them
    /// back from the store.
    pub(crate) recent: parking_lot::Mutex<RecentSnapshots>,
    /// Held while an older version is read back from the store: concurrent requests for one
    /// version read it once (the later ones find it in `recent`).
    pub(crate) reading: tokio::sync::Mutex<()>,
    /// The ledger revision of `committed` (replicas only; 0 otherwise): a catalog read from
    /// the ledger is applied only when newer.
    pub(crate) revision: std::sync::atomic::AtomicU64,
    /// Replicas: held by this node's one load of the dataset that waits for (or holds) the
    /// ledger's lock, so that other local loads wait here, holding no database connection,
    /// and `commit` stays free for the catch-up meanwhile.
    pub(crate) gate: Arc<tokio::sync::Mutex<()>>,
}

impl DatasetState {
    pub(crate) fn new(
        definition: Arc<DatasetDefinition>,
        current: Option<Arc<Snapshot>>,
        catalog: Catalog,
    ) -> Self {
        DatasetState {
            definition: RwLock::new(definition),
            current: RwLock::new(current),
            committed: RwLock::new(catalog.clone()),
            commit: Arc::new(tokio::sync::Mutex::new(catalog)),
            recent: parking_lot::Mutex::new(RecentSnapshots::default()),
            reading: tokio::sync::Mutex::new(()),
            revision: std::sync::atomic::AtomicU64::new(0),
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Make `next` the committed catalog (in memory; the caller wrote it to the store) and
    /// `snapshot` current. The snapshot it replaces stays reachable in `recent`.
    pub(crate) fn install(&self, catalog: &mut Catalog, next: Catalog, snapshot: Arc<Snapshot>) {
        let old = self.current.read().clone();
        self.recent.lock().replaced(old, &snapshot, &next.kept);
        *self.current.write() = Some(snapshot);
        *self.committed.write() = next.clone();
        *catalog = next;
    }

    /// A kept version held in memory: the current snapshot, or a recent one still alive.
    /// [`Error::VersionNotKept`] when the committed catalog does not keep it.
    pub(crate) fn cached(&self, name: &str, version: u64) -> Result<Option<Arc<Snapshot>>> {
        let current = self.current.read().clone();
        if let Some(current) = current.filter(|s| s.version() == version) {
            return Ok(Some(current));
        }
        if !self.committed.read().kept.contains(&version) {
            return Err(Error::VersionNotKept {
                dataset: name.to_owned(),
                version,
            });
        }
        Ok(self.recent.lock().get(version))
    }

    /// `version` if this node holds it in memory (the current snapshot or a recent one),
    /// whatever the committed catalog keeps: for a catalog another node committed.
    pub(crate) fn held(&self, version: u64) -> Option<Arc<Snapshot>> {
        let current = self.current.read().clone();
        current
            .filter(|s| s.version() == version)
            .or_else(|| self.recent.lock().get(version))
    }

    /// Note a version just read back from the store, while it is kept.
    pub(crate) fn remember(&self, snapshot: &Arc<Snapshot>) {
        let kept = self.committed.read().kept.clone();
        self.recent.lock().remember(snapshot, &kept);
    }
}

/// Most versions of one dataset that [`RecentSnapshots`] tracks.
const MAX_RECENT: usize = 8;

/// Older versions of a dataset reachable without reading the store.
///
/// Memory: `previous` keeps the version that the last load or change set replaced alive as
/// long as it is kept (`keep_versions` ≥ 2) — the version a sync most likely asks changes
/// from. After a change set that costs its index and the chunks the set rewrote (the others
/// are shared with the current version); after a full load, a whole second copy of the
/// dataset (data and index) until the next commit. The other entries are weak: a version
/// read back for a change feed stays reachable only while some feed or reader still holds
/// it, and costs nothing more.
#[derive(Debug, Default)]
pub(crate) struct RecentSnapshots {
    pub(crate) previous: Option<Arc<Snapshot>>,
    weak: Vec<(u64, Weak<Snapshot>)>,
}

impl RecentSnapshots {
    pub(crate) fn get(&self, version: u64) -> Option<Arc<Snapshot>> {
        if let Some(p) = self.previous.as_ref().filter(|p| p.version() == version) {
            return Some(Arc::clone(p));
        }
        self.weak
            .iter()
            .find(|(v, _)| *v == version)
            .and_then(|(_, w)| w.upgrade())
    }

    fn remember(&mut self, snapshot: &Arc<Snapshot>, kept: &[u64]) {
        let version = snapshot.version();
        self.weak
            .retain(|(v, w)| *v != version && kept.contains(v) && w.strong_count() > 0);
        if !kept.contains(&version) {
            return;
        }
        if self.weak.len() >= MAX_RECENT {
            self.weak.remove(0);
        }
        self.weak.push((version, Arc::downgrade(snapshot)));
    }

    /// `new` replaces `old` as the current snapshot; `kept` is the new catalog's list.
    fn replaced(&mut self, old: Option<Arc<Snapshot>>, new: &Snapshot, kept: &[u64]) {
        self.previous = None;
        self.weak.retain(|(v, _)| *v != new.version());
        if let Some(old) = old {
            self.remember(&old, kept);
            // Only an older version is ever asked for changes since (a rollback's replaced
            // version is newer than the current one).
            if kept.contains(&old.version()) && old.version() < new.version() {
                self.previous = Some(old);
            }
        }
    }
}

/// Run `future` to completion in a task of its own, even if the caller stops waiting (a
/// dropped request handler, a client reset): what it writes to the store and swaps in memory
/// then never goes half-done. It needs only owned (`Arc`ed) state.
pub(crate) async fn run_to_completion<T: Send + 'static>(
    future: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    #[allow(
        clippy::disallowed_methods,
        reason = "a commit must finish even when its caller is dropped: the task is detached on purpose, and awaited"
    )]
    let handle = tokio::spawn(future);
    handle.await.map_err(Error::internal)?
}

/// What a committed load or rollback produced.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Dataset name.
    pub dataset: String,
    /// The version now current.
    pub version: u64,
    /// Rows in that version.
    pub rows: usize,
    /// Wall time of the whole operation.
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
}

pub(crate) mod duration_ms {
    pub(crate) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

/// A kept version of a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// Version number.
    pub version: u64,
    /// Whether it is the current one.
    pub current: bool,
}

/// A caller's masked view of one dataset, pinned to one snapshot.
///
/// A view that carries a [`ReadLog`] ([`MaskedView::with_log`]) notes in it every
/// personal attribute and row it hands out, for the access record.
#[derive(Debug, Clone)]
pub struct MaskedView {
    /// The snapshot the view reads; it stays alive as long as the view does.
    pub snapshot: Arc<Snapshot>,
    /// The caller's mask on it.
    pub mask: Arc<ResolvedMask>,
    /// The dataset's current definition (the snapshot keeps the one it was loaded with until
    /// the next load): an attribute newly marked personal is audited at once.
    pub definition: Arc<DatasetDefinition>,
    /// Where reads are noted for the audit, if anywhere.
    pub log: Option<ReadLog>,
}

impl MaskedView {
    /// The same view, noting what it hands out in `log`.
    pub fn with_log(mut self, log: ReadLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Note that the projected columns (mask positions; all when `None`) will be handed out,
    /// before any row is: this is what makes a purpose mandatory.
    pub fn note_projection(&self, projection: Option<&[usize]>) {
        if let Some(log) = &self.log {
            log.note_columns(self, self.mask.snapshot_ordinals(projection));
        }
    }

    /// Note that the projected columns of every visible row will be handed out: for a
    /// whole-dataset stream, whose record is committed before its first batch.
    pub fn note_whole(&self, projection: Option<&[usize]>) {
        if let Some(log) = &self.log {
            self.note_projection(projection);
            log.note_rows(self, |b| {
                for (c, chunk) in self.snapshot.chunks().iter().enumerate() {
                    *b |= self.mask.chunk_rows(c, chunk.num_rows());
                }
            });
        }
    }

    /// The record of one key, with only the permitted attributes; `None` when the key is
    /// absent or its row is outside the caller's rows.
    pub fn lookup(&self, key: &[KeyValue]) -> Result<Option<RecordBatch>> {
        let rows = self.key_rows(std::slice::from_ref(&key.to_vec()))?;
        if rows.is_empty() {
            return Ok(None);
        }
        self.take(&rows, None, &Arc::clone(self.mask.schema()))
            .map(Some)
    }

    /// The visible rows of a batch of keys, in the order given; absent or invisible keys
    /// are skipped. Refused unless the caller may see the key.
    pub fn key_rows(&self, keys: &[Vec<KeyValue>]) -> Result<Vec<u32>> {
        self.check_key_granted()?;
        let mut rows = self
            .snapshot
            .index()
            .get_many(keys.iter().map(Vec::as_slice));
        rows.retain(|&r| self.mask.keyed_row_visible(r));
        crate::metrics::metrics().lookups(keys.len(), rows.len());
        Ok(rows)
    }

    /// The masked, projected rows `rows` (invisible ones dropped), noted in the log.
    pub fn take(
        &self,
        rows: &[u32],
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        let batch = self
            .mask
            .take_rows(&self.snapshot, rows, projection, schema)?;
        if let Some(log) = &self.log {
            self.note_projection(projection);
            log.note_rows(self, |b| {
                b.extend(rows.iter().copied().filter(|&r| self.mask.row_visible(r)))
            });
        }
        Ok(batch)
    }

    /// The masked content of chunk `chunk`, projected; `None` when no row of it is visible.
    /// Noted in the log.
    pub fn chunk(
        &self,
        chunk: usize,
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<Option<RecordBatch>> {
        let out = self
            .mask
            .apply_chunk(&self.snapshot, chunk, projection, schema)?;
        if let (Some(log), Some(_)) = (&self.log, &out) {
            self.note_projection(projection);
            let len = self.snapshot.chunks()[chunk].num_rows();
            log.note_rows(self, |b| *b |= self.mask.chunk_rows(chunk, len));
        }
        Ok(out)
    }

    /// Records are addressed by key only by callers who may see the key.
    fn check_key_granted(&self) -> Result<()> {
        if self.mask.key_granted() {
            return Ok(());
        }
        let def = self.snapshot.definition();
        Err(Error::InvalidQuery(format!(
            "records of dataset `{}` are looked up by ({}), which is not granted to you",
            def.name,
            def.primary_key.join(", ")
        )))
    }

    /// The first `limit` visible records (in snapshot order), masked.
    pub fn head(&self, limit: usize) -> Result<RecordBatch> {
        let schema = Arc::clone(self.mask.schema());
        let mut rows = Vec::new();
        for chunk in 0..self.snapshot.chunks().len() {
            if rows.len() >= limit {
                break;
            }
            let len = self.snapshot.chunks()[chunk].num_rows();
            let visible = self.mask.chunk_rows(chunk, len);
            rows.extend(visible.iter().take(limit - rows.len()));
        }
        self.take(&rows, None, &schema)
    }

    /// The records of a batch of keys, in the order given; absent or invisible keys are
    /// skipped.
    pub fn lookup_many(&self, keys: &[Vec<KeyValue>]) -> Result<RecordBatch> {
        let rows = self.key_rows(keys)?;
        self.take(&rows, None, &Arc::clone(self.mask.schema()))
    }
}

/// Who is asking, as far as the engine is concerned: the grants they hold per dataset.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every attribute and row of every dataset. Only for internal jobs and tests; protocol
    /// crates give callers [`Access::Grants`].
    Unrestricted,
    /// The caller's grants per dataset name; a dataset not named is invisible.
    Grants(BTreeMap<String, Vec<Grant>>),
}

impl Access {
    /// The grants for one dataset (`None` = unrestricted; empty = nothing).
    pub fn grants_for(&self, dataset: &str) -> Option<&[Grant]> {
        match self {
            Access::Unrestricted => None,
            Access::Grants(g) => Some(g.get(dataset).map_or(&[], Vec::as_slice)),
        }
    }

    /// Whether the caller may see anything of the dataset.
    pub fn can_see(&self, dataset: &str) -> bool {
        self.grants_for(dataset)
            .is_none_or(|g| g.iter().any(|g| !g.attributes.is_empty()))
    }
}

/// How many reads of older versions and diffs (the change feed) run at once, engine-wide.
pub(crate) const CHANGE_WORKERS: usize = 2;

/// How long a change request waits for one of the [`CHANGE_WORKERS`] before it is refused.
const CHANGE_WAIT: Duration = Duration::from_secs(20);

/// The DAGR engine.
#[derive(Debug)]
pub struct Engine {
    pub(crate) store: SnapshotStore,
    pub(crate) config: EngineConfig,
    pub(crate) datasets: RwLock<BTreeMap<String, Arc<DatasetState>>>,
    pub(crate) query_env: crate::query::QueryEnv,
    /// Bounds the reads of older versions and the diffs of the change feed, engine-wide:
    /// each may hold a whole version in memory and a core busy.
    pub(crate) change_workers: tokio::sync::Semaphore,
    /// How long a change request waits for a worker ([`CHANGE_WAIT`]).
    pub(crate) change_wait: Duration,
    /// Datasets that could not be restored at start, with the reason.
    pub(crate) unreadable: RwLock<BTreeMap<String, String>>,
    /// Replicas: ledger locks (each an open transaction on a pooled database connection)
    /// this node holds or waits for at once, across datasets.
    pub(crate) ledger_slots: Arc<tokio::sync::Semaphore>,
}

impl Engine {
    /// Open an engine on a local directory (created if missing), restoring what it holds.
    pub async fn open_dir(dir: &std::path::Path, config: EngineConfig) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Store(format!("cannot create {}: {e}", dir.display())))?;
        let root = dir
            .canonicalize()
            .map_err(|e| Error::Store(format!("cannot resolve {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        Self::open_store(SnapshotStore::local(Arc::new(fs), root), config).await
    }

    /// Open an engine on the snapshot store named by `location`: a local directory (a path or
    /// `file://` URL, created if missing) or S3-compatible object storage,
    /// `s3://BUCKET[/PREFIX]`, configured by the usual `AWS_*` environment variables
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_ALLOW_HTTP` for a plain-HTTP endpoint; see [`crate::store::s3_from_env`]).
    pub async fn open_location(location: &str, config: EngineConfig) -> Result<Self> {
        match location.split_once("://") {
            Some(("s3", _)) => Self::open(crate::store::s3_from_env(location)?, config).await,
            Some(("file", path)) => Self::open_dir(std::path::Path::new(path), config).await,
            Some((scheme, _)) => Err(Error::Store(format!(
                "snapshot store `{location}`: the scheme `{scheme}` is not supported; use a \
                 directory, file://PATH or s3://BUCKET/PREFIX"
            ))),
            None => Self::open_dir(std::path::Path::new(location), config).await,
        }
    }

    /// Open an engine on an object store, restoring every dataset's current version.
    ///
    /// Version directories that no catalog names (a load that died half-way, or versions
    /// past retention) are deleted.
    pub async fn open(store: Arc<dyn ObjectStore>, config: EngineConfig) -> Result<Self> {
        Self::open_store(SnapshotStore::new(store), config).await
    }

    async fn open_store(store: SnapshotStore, config: EngineConfig) -> Result<Self> {
        let config = EngineConfig {
            keep_versions: config.keep_versions.max(1),
            ..config
        };
        let engine = Engine {
            store: store.with_pools(config.pools.clone()),
            query_env: crate::query::QueryEnv::new(&config.query)?,
            config,
            datasets: RwLock::new(BTreeMap::new()),
            change_workers: tokio::sync::Semaphore::new(CHANGE_WORKERS),
            change_wait: CHANGE_WAIT,
            unreadable: RwLock::new(BTreeMap::new()),
            ledger_slots: Arc::new(tokio::sync::Semaphore::new(crate::replica::LEDGER_SLOTS)),
        };
        if engine.config.ledger.is_some() {
            engine.restore_from_ledger().await?;
            return Ok(engine);
        }
        engine.refuse_a_replicated_store().await?;
        for name in engine.store.dataset_names().await? {
            // One unreadable dataset (a corrupt file, a definition this version refuses) is
            // reported and skipped: the others serve. Its files are left as they are, and its
            // name stays taken until an operator repairs or removes it.
            match engine.restore_dataset(&name).await {
                Ok(Some(state)) => {
                    engine.datasets.write().insert(name, state);
                }
                Ok(None) => {}
                Err(e) => {
                    error!(dataset = %name, error = %e, "cannot restore this dataset; it is skipped and not served");
                    engine.unreadable.write().insert(name, e.to_string());
                }
            }
        }
        Ok(engine)
    }

    /// Restore one dataset's definition, catalog and current version from the store.
    async fn restore_dataset(&self, name: &str) -> Result<Option<Arc<DatasetState>>> {
        let Some(definition) = self.store.read_definition(name).await? else {
            warn!(dataset = %name, "dataset directory without a definition; ignored");
            return Ok(None);
        };
        let catalog = self.store.read_catalog(name).await?;
        for v in self.store.version_dirs(name).await? {
            if !catalog.kept.contains(&v) {
                info!(dataset = %name, version = v, "removing uncommitted or expired version");
                self.store.delete_version(name, v).await?;
            }
        }
        Ok(Some(Arc::new(
            self.restored_state(name, definition, catalog).await?,
        )))
    }

    /// The state of a dataset restored with `definition` and `catalog`: its current version
    /// read back (from the ledger's manifest with replicas, else the store's).
    pub(crate) async fn restored_state(
        &self,
        name: &str,
        definition: DatasetDefinition,
        catalog: Catalog,
    ) -> Result<DatasetState> {
        let definition = Arc::new(definition.validated()?);
        let current = if catalog.current > 0 {
            let started = Instant::now();
            let snap = self.read_version(name, catalog.current).await?;
            info!(
                dataset = %name,
                version = snap.version(),
                rows = snap.num_rows(),
                ms = started.elapsed().as_millis() as u64,
                "restored snapshot"
            );
            Some(Arc::new(snap))
        } else {
            None
        };
        Ok(DatasetState::new(definition, current, catalog))
    }

    /// The datasets that could not be restored when the engine opened, with the reason
    /// (they are not served, and their names cannot be taken).
    pub fn unreadable(&self) -> BTreeMap<String, String> {
        self.unreadable.read().clone()
    }

    pub(crate) async fn read_version(&self, name: &str, version: u64) -> Result<Snapshot> {
        let manifest = self.manifest(name, version).await?.ok_or_else(|| {
            Error::Corrupt(format!(
                "dataset `{name}` version {version} has no manifest"
            ))
        })?;
        let batches = self.store.read_batches(name, &manifest).await?;
        let definition = Arc::new(manifest.definition.clone());
        let created = manifest.created_at;
        self.config
            .pools
            .load(move || Snapshot::build(definition, version, created, batches))
            .await?
            .map_err(|e| Error::Corrupt(format!("dataset `{name}` version {version}: {e}")))
    }

    /// The engine configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Where DataFusion, bulk streams and load jobs run.
    pub fn pools(&self) -> &Pools {
        &self.config.pools
    }

    /// The runtime on which DataFusion plans and bulk streams are produced (the current one
    /// when the engine's pools are shared; `None` then outside any runtime).
    pub fn bulk_handle(&self) -> Option<tokio::runtime::Handle> {
        self.config.pools.bulk_handle()
    }

    /// The snapshot store.
    pub fn store(&self) -> &SnapshotStore {
        &self.store
    }

    pub(crate) fn state(&self, name: &str) -> Result<Arc<DatasetState>> {
        self.datasets
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::DatasetNotFound(name.to_owned()))
    }

    /// Register a new dataset. Refuses an invalid definition or a taken name.
    pub async fn create_dataset(
        &self,
        definition: DatasetDefinition,
    ) -> Result<Arc<DatasetDefinition>> {
        let definition = Arc::new(definition.validated()?);
        if self.datasets.read().contains_key(&definition.name)
            || self.unreadable.read().contains_key(&definition.name)
        {
            return Err(Error::DatasetExists(definition.name.clone()));
        }
        // Reserve the name before writing, so two creates of one name cannot both write.
        {
            let mut map = self.datasets.write();
            if map.contains_key(&definition.name) {
                return Err(Error::DatasetExists(definition.name.clone()));
            }
            map.insert(
                definition.name.clone(),
                Arc::new(DatasetState::new(
                    Arc::clone(&definition),
                    None,
                    Catalog::empty(),
                )),
            );
        }
        let written = match self.store.write_definition(&definition).await {
            Ok(()) => match &self.config.ledger {
                Some(ledger) => ledger.adopt(&definition.name, &Catalog::empty()).await,
                None => Ok(()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            self.datasets.write().remove(&definition.name);
            return Err(e);
        }
        info!(dataset = %definition.name, "dataset registered");
        Ok(definition)
    }

    /// Replace the definition of a registered dataset (an accepted schema change).
    ///
    /// The name, owner and primary key cannot change. Loads from now on are validated
    /// against the new definition; snapshots already loaded keep the definition they were
    /// loaded with until the next load replaces them.
    pub async fn redefine(&self, definition: DatasetDefinition) -> Result<Arc<DatasetDefinition>> {
        let definition = Arc::new(definition.validated()?);
        let state = self.state(&definition.name)?;
        // Serialise with loads, so a load validates against one definition throughout.
        let catalog = Arc::clone(&state.commit).lock_owned().await;
        let old = Arc::clone(&state.definition.read());
        let refuse = |reason: String| Error::InvalidDefinition {
            dataset: definition.name.clone(),
            reason,
        };
        if old.owner != definition.owner {
            return Err(refuse(format!(
                "the owner cannot change (`{}` → `{}`)",
                old.owner, definition.owner
            )));
        }
        if old.primary_key != definition.primary_key {
            return Err(refuse(format!(
                "the primary key cannot change ({:?} → {:?}); register a new dataset instead",
                old.primary_key, definition.primary_key
            )));
        }
        // Written and swapped in even if the caller goes away meanwhile.
        let (store, new) = (self.store.clone(), Arc::clone(&definition));
        run_to_completion(async move {
            store.write_definition(&new).await?;
            *state.definition.write() = new;
            drop(catalog);
            Ok(())
        })
        .await?;
        info!(dataset = %definition.name, "definition replaced");
        Ok(definition)
    }

    /// Check a row-scope predicate against a dataset's current definition, returning the
    /// names of the columns it reads. Refuses a predicate that does not parse or type-check.
    pub fn check_row_scope(&self, name: &str, predicate: &str) -> Result<Vec<String>> {
        let definition = self.definition(name)?;
        let expr = crate::scope::parse(name, &definition.arrow_schema(), predicate)?;
        let mut columns: Vec<String> = expr
            .column_refs()
            .into_iter()
            .map(|c| c.name.clone())
            .collect();
        columns.sort();
        columns.dedup();
        Ok(columns)
    }

    /// Names of all datasets, sorted.
    pub fn dataset_names(&self) -> Vec<String> {
        self.datasets.read().keys().cloned().collect()
    }

    /// Set the per-dataset gauges of [`crate::metrics`] (version, rows, memory and age of
    /// each current snapshot) to what is current now; called before a scrape.
    pub fn publish_metrics(&self) {
        let m = crate::metrics::metrics();
        let (version, rows, bytes, age) = (
            &m.dataset_version,
            &m.dataset_rows,
            &m.dataset_bytes,
            &m.dataset_age,
        );
        for g in [version, rows, bytes, age] {
            g.reset();
        }
        let now = Utc::now();
        for name in self.dataset_names() {
            let Ok(Some(snap)) = self.current_opt(&name) else {
                continue;
            };
            let label = [name.as_str()];
            version.with_label_values(&label).set(snap.version() as i64);
            rows.with_label_values(&label).set(snap.num_rows() as i64);
            bytes
                .with_label_values(&label)
                .set(snap.memory_size() as i64);
            age.with_label_values(&label)
                .set((now - snap.created_at()).num_seconds().max(0));
        }
    }

    /// The definition of a dataset.
    pub fn definition(&self, name: &str) -> Result<Arc<DatasetDefinition>> {
        Ok(Arc::clone(&self.state(name)?.definition.read()))
    }

    /// The current snapshot of a dataset; the caller holds it as long as it reads.
    pub fn current(&self, name: &str) -> Result<Arc<Snapshot>> {
        self.state(name)?
            .current
            .read()
            .clone()
            .ok_or_else(|| Error::NoSnapshot(name.to_owned()))
    }

    /// The current snapshot, or `None` if none is loaded yet.
    pub fn current_opt(&self, name: &str) -> Result<Option<Arc<Snapshot>>> {
        Ok(self.state(name)?.current.read().clone())
    }

    /// A caller's masked view of the current snapshot of a dataset.
    ///
    /// Refuses with [`Error::AccessDenied`] when the access grants nothing on the dataset.
    pub fn view(&self, name: &str, access: &Access) -> Result<MaskedView> {
        let state = self.state(name)?;
        let snapshot = state
            .current
            .read()
            .clone()
            .ok_or_else(|| Error::NoSnapshot(name.to_owned()))?;
        let mask = resolve_mask(&snapshot, access)?;
        let definition = Arc::clone(&state.definition.read());
        Ok(MaskedView {
            snapshot,
            mask,
            definition,
            log: None,
        })
    }

    /// Load a full snapshot from record batches: validate, persist, then swap in.
    ///
    /// A refused or failed load changes nothing; the previous snapshot stays current. Once
    /// the load is being persisted, it is committed (or fails) even if the caller stops
    /// waiting.
    pub async fn load_batches(&self, name: &str, batches: Vec<RecordBatch>) -> Result<LoadReport> {
        let started = Instant::now();
        let result = self.load_snapshot(name, batches, started).await;
        let outcome = result.as_ref().map(|r| Some(r.rows));
        crate::metrics::metrics().load("snapshot", started.elapsed(), outcome);
        result
    }

    async fn load_snapshot(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        started: Instant,
    ) -> Result<LoadReport> {
        let state = self.state(name)?;
        let lock = self.lock_commit(&state, name).await?;
        let version = lock.catalog.next;
        let definition = Arc::clone(&state.definition.read());
        let snapshot = self
            .config
            .pools
            .load(move || Snapshot::build(definition, version, Utc::now(), batches))
            .await??;
        let rows = snapshot.num_rows();
        self.commit_snapshot(&state, lock, Arc::new(snapshot))
            .await?;
        let report = LoadReport {
            dataset: name.to_owned(),
            version,
            rows,
            elapsed: started.elapsed(),
        };
        info!(dataset = %name, version, rows, ms = report.elapsed.as_millis() as u64, "snapshot committed");
        Ok(report)
    }

    /// Persist a new snapshot (numbered `catalog.next`), commit it in the catalog, make it
    /// current and delete the versions past retention: the tail shared by loads and change
    /// sets. The caller holds the dataset's commit lock (`catalog`) from before it read the
    /// version number; it is released before expired versions are deleted.
    ///
    /// It runs to completion in a task of its own, so a caller dropped half-way (a client
    /// reset, a shutdown) never leaves the catalog in the store naming a version that memory
    /// does not know (which the next load would then overwrite).
    ///
    /// On failure nothing changed: the previous snapshot stays current.
    pub(crate) async fn commit_snapshot(
        &self,
        state: &Arc<DatasetState>,
        lock: CommitLock,
        snapshot: Arc<Snapshot>,
    ) -> Result<()> {
        let (store, keep) = (self.store.clone(), self.config.keep_versions);
        // The version this one replaces, with its manifest (from the ledger with replicas):
        // the parts whose chunks a change set left untouched are copied from its files
        // rather than encoded again.
        let previous = state
            .current
            .read()
            .clone()
            .filter(|p| shares_a_chunk(p, &snapshot));
        let previous = match previous {
            Some(p) => match self.manifest(snapshot.dataset(), p.version()).await {
                Ok(Some(m)) => Some((p, m)),
                Ok(None) | Err(_) => {
                    warn!(dataset = %snapshot.dataset(), version = p.version(), "cannot read the manifest of the current version; every part is written anew");
                    None
                }
            },
            None => None,
        };
        let state = Arc::clone(state);
        run_to_completion(async move {
            commit_tail(&store, keep, &state, lock, snapshot, previous).await
        })
        .await
    }

    /// Load a full snapshot from a Parquet file: a local path, a `file://` URL, or a
    /// directory of `.parquet` files (read in name order).
    pub async fn load_parquet(&self, name: &str, source: &str) -> Result<LoadReport> {
        self.state(name)?;
        let batches = read_parquet_in(source, &self.config.pools)
            .await
            .map_err(|e| match e {
                Error::LoadRefused { reason, .. } => Error::LoadRefused {
                    dataset: name.to_owned(),
                    reason,
                },
                other => other,
            })?;
        self.load_batches(name, batches).await
    }

    /// Make a kept version current again.
    pub async fn rollback(&self, name: &str, version: u64) -> Result<LoadReport> {
        let started = Instant::now();
        let result = self.roll_back(name, version, started).await;
        // A rollback to the current version commits nothing (judged under the commit lock).
        let outcome = result.as_ref().map(|(_, committed)| committed.then_some(0));
        crate::metrics::metrics().load("rollback", started.elapsed(), outcome);
        result.map(|(report, _)| report)
    }

    /// Roll back; whether a version was committed (not when `version` is already current).
    async fn roll_back(
        &self,
        name: &str,
        version: u64,
        started: Instant,
    ) -> Result<(LoadReport, bool)> {
        let state = self.state(name)?;
        let lock = self.lock_commit(&state, name).await?;
        if !lock.catalog.kept.contains(&version) {
            return Err(Error::VersionNotKept {
                dataset: name.to_owned(),
                version,
            });
        }
        if version == lock.catalog.current
            && let Some(current) = state.current.read().clone()
        {
            let report = LoadReport {
                dataset: name.to_owned(),
                version,
                rows: current.num_rows(),
                elapsed: started.elapsed(),
            };
            return Ok((report, false));
        }
        let snapshot = match state.cached(name, version)? {
            Some(s) => s,
            None => Arc::new(self.read_version(name, version).await?),
        };
        let rows = snapshot.num_rows();
        // Committed and swapped in even if the caller goes away meanwhile.
        let (store, owned) = (self.store.clone(), name.to_owned());
        run_to_completion(async move {
            let mut next = lock.catalog.clone();
            next.current = version;
            let mut catalog = lock
                .commit(&state, &store, &owned, &next, None)
                .await
                .map_err(|(_, e)| e)?;
            state.install(&mut catalog, next, snapshot);
            Ok(())
        })
        .await?;
        info!(dataset = %name, version, "rolled back");
        let report = LoadReport {
            dataset: name.to_owned(),
            version,
            rows,
            elapsed: started.elapsed(),
        };
        Ok((report, true))
    }

    /// The kept versions of a dataset, oldest first (as committed; a load in progress does
    /// not make this wait).
    pub async fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let state = self.state(name)?;
        let catalog = state.committed.read().clone();
        Ok(catalog
            .kept
            .iter()
            .map(|&v| VersionInfo {
                version: v,
                current: v == catalog.current,
            })
            .collect())
    }
}

/// The tail of [`Engine::commit_snapshot`], run in a task of its own.
async fn commit_tail(
    store: &SnapshotStore,
    keep_versions: usize,
    state: &DatasetState,
    lock: CommitLock,
    snapshot: Arc<Snapshot>,
    previous: Option<(Arc<Snapshot>, crate::store::Manifest)>,
) -> Result<()> {
    let name = snapshot.dataset();
    let version = snapshot.version();
    let reuse = previous.as_ref().map(|(p, m)| (p.as_ref(), m));
    let manifest = match store.write_snapshot(&snapshot, reuse).await {
        Ok(m) => m,
        Err(e) => {
            // Best effort: an uncommitted directory is also removed on the next start (or,
            // with replicas, by the garbage collection).
            if !lock.replicated() {
                let _ = store.delete_version(name, version).await;
            }
            return Err(e);
        }
    };
    let replicated = lock.replicated();
    let mut next = lock.catalog.clone();
    next.current = version;
    next.next = version + 1;
    next.kept.push(version);
    let expired: Vec<u64> = if next.kept.len() > keep_versions {
        next.kept.drain(..next.kept.len() - keep_versions).collect()
    } else {
        vec![]
    };
    let added = (version, snapshot.num_rows(), manifest);
    let mut catalog = match lock.commit(state, store, name, &next, Some(added)).await {
        Ok(catalog) => catalog,
        Err((mut catalog, e)) => {
            // Whether the catalog reached the store (or the ledger) is unknown: leave the
            // version's files (the next start, or the garbage collection, deletes them unless
            // the catalog names them), and never give its number to another version.
            catalog.next = version + 1;
            state.committed.write().next = version + 1;
            return Err(e);
        }
    };
    state.install(&mut catalog, next, Arc::clone(&snapshot));
    drop(catalog);
    // Replicas leave expired versions to the garbage collection, after a grace period: a
    // node that has not caught up yet may still read them.
    for v in expired.into_iter().filter(|_| !replicated) {
        if let Err(e) = store.delete_version(name, v).await {
            warn!(dataset = %name, version = v, error = %e, "could not delete an expired version");
        }
    }
    Ok(())
}

/// Whether `b` holds some chunk of `a` (the same arrays): whether `b` came from `a` by a
/// change set.
fn shares_a_chunk(a: &Snapshot, b: &Snapshot) -> bool {
    a.schema() == b.schema()
        && a.chunks().iter().zip(b.chunks()).any(|(x, y)| {
            x.num_rows() == y.num_rows()
                && x.columns()
                    .iter()
                    .zip(y.columns())
                    .all(|(c, d)| Arc::ptr_eq(c, d))
        })
}

/// A caller's mask on a snapshot: everything for [`Access::Unrestricted`],
/// [`Error::AccessDenied`] when the access grants nothing on the dataset.
pub(crate) fn resolve_mask(snapshot: &Snapshot, access: &Access) -> Result<Arc<ResolvedMask>> {
    match access.grants_for(snapshot.dataset()) {
        None => Ok(Arc::new(ResolvedMask::everything(snapshot))),
        Some([]) => Err(Error::AccessDenied(snapshot.dataset().to_owned())),
        Some(grants) => snapshot.mask_for(grants),
    }
}

/// Read every batch of a Parquet source (path, `file://` URL or directory).
pub async fn read_parquet_source(source: &str) -> Result<Vec<RecordBatch>> {
    read_parquet_in(source, &Pools::shared()).await
}

/// [`read_parquet_source`], decoding as load jobs of `pools`.
async fn read_parquet_in(source: &str, pools: &Pools) -> Result<Vec<RecordBatch>> {
    let refused = |reason: String| Error::LoadRefused {
        dataset: String::new(),
        reason,
    };
    let path = if let Some(rest) = source.strip_prefix("file://") {
        std::path::PathBuf::from(rest)
    } else if let Some((scheme, _)) = source.split_once("://") {
        return Err(refused(format!(
            "source `{source}`: the `{scheme}` object store is not enabled in this build (use a local path or file://)"
        )));
    } else {
        std::path::PathBuf::from(source)
    };
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| refused(format!("cannot read `{}`: {e}", path.display())))?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        let mut rd = tokio::fs::read_dir(&path)
            .await
            .map_err(|e| refused(format!("cannot list `{}`: {e}", path.display())))?;
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| refused(format!("cannot list `{}`: {e}", path.display())))?
        {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "parquet") {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(refused(format!(
                "directory `{}` holds no .parquet files",
                path.display()
            )));
        }
        files
    } else {
        vec![path]
    };
    let mut batches = Vec::new();
    for f in files {
        let bytes = tokio::fs::read(&f)
            .await
            .map_err(|e| refused(format!("cannot read `{}`: {e}", f.display())))?;
        let label = f.display().to_string();
        let mut part = pools
            .load(move || decode_parquet(bytes.into(), &label))
            .await??;
        batches.append(&mut part);
    }
    Ok(batches)
}

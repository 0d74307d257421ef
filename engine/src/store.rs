//! The snapshot store: snapshots persisted as Parquet parts plus a manifest in an
//! [`ObjectStore`] (a local directory by default).
//!
//! Layout under the store root:
//! ```text
//! replicated.json                             replicas commit through a ledger (see below)
//! datasets/{name}/definition.json             the dataset definition (latest)
//! datasets/{name}/catalog.json                {"current", "kept": [..], "next"} — the commit point
//! datasets/{name}/v{version:020}/started.json  written first by the load that made the version
//! datasets/{name}/v{version:020}/part-{i:05}-{nonce}.parquet
//! datasets/{name}/v{version:020}/manifest.json {"version", "rows", "parts", "definition", ...}
//! ```
//! A snapshot is committed when `catalog.json` names it; the parts and the manifest are
//! written before that, and `put` of a local file is atomic (write to a temporary file, then
//! rename). A load that died half-way leaves a version directory that no catalog names; it is
//! never taken for a snapshot and is deleted on the next start.
//!
//! With replicas the commit point is the ledger instead ([`crate::ledger`]): `catalog.json`
//! is no longer written, `replicated.json` marks the store so that a single node refuses it,
//! and the files no committed version references are deleted by the garbage collection
//! ([`crate::Engine::collect_garbage`]).
//!
//! A version made by a change set shares most chunks with the version before it; a part whose
//! chunks are all shared is not encoded again but copied from the previous version's
//! directory (on a local store a hard link, so it costs no space). Every version directory
//! stays self-contained: deleting one never touches another's files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::definition::DatasetDefinition;
use crate::error::{Error, Result};
pub(crate) use crate::ledger::Catalog;
use tracing::warn;

use crate::snapshot::{CHUNK_ROWS, Snapshot};

/// The file at the root of a store that replicas commit into through a ledger: a single node
/// (whose commit point is `catalog.json`) refuses such a store.
pub(crate) const REPLICATED: &str = "replicated.json";

/// A version's manifest, the last file a load writes into its version directory.
pub(crate) const MANIFEST: &str = "manifest.json";

/// The file a load writes first into its version directory (see [`SnapshotStore::write_snapshot`]).
pub(crate) const STARTED: &str = "started.json";

/// Rows per persisted Parquet part (a multiple of the chunk size).
const PART_ROWS: usize = 4 * CHUNK_ROWS;

/// One persisted part of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Part {
    pub(crate) file: String,
    pub(crate) rows: usize,
    pub(crate) bytes: usize,
}

/// Everything needed to read a version back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u64,
    #[serde(with = "rfc3339")]
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) rows: usize,
    pub(crate) parts: Vec<Part>,
    pub(crate) definition: DatasetDefinition,
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Snapshot persistence on an object store.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    store: Arc<dyn ObjectStore>,
    /// For a local directory store: its root, so that written files and directories are
    /// fsynced (object_store's local `put` renames into place but does not sync).
    local_root: Option<std::path::PathBuf>,
    /// Where Parquet is encoded and decoded (load jobs).
    pools: crate::pools::Pools,
}

/// Flush a local file written by `put`, and its directory (which holds the rename), to disk.
fn sync_local(root: &std::path::Path, path: &Path) -> Result<()> {
    let file = root.join(path.as_ref());
    let sync = |p: &std::path::Path| {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::Store(format!("cannot sync {}: {e}", p.display())))
    };
    sync(&file)?;
    match file.parent() {
        Some(dir) => sync(dir),
        None => Ok(()),
    }
}

fn dataset_dir(name: &str) -> Path {
    Path::from(format!("datasets/{name}"))
}

fn version_dir(name: &str, version: u64) -> Path {
    Path::from(format!("datasets/{name}/v{version:020}"))
}

/// An S3-compatible object store for `url` (`s3://BUCKET[/PREFIX]`), configured from the
/// `AWS_*` environment variables (endpoint, region, credentials; `AWS_ALLOW_HTTP=true` for a
/// plain-HTTP endpoint such as a test server). Path-style requests unless
/// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`. Objects are kept under `PREFIX`.
pub fn s3_from_env(url: &str) -> Result<Arc<dyn ObjectStore>> {
    // The location is logged and shown in errors: credentials go in AWS_* variables only.
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::Store(format!("the snapshot store location is not a URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Store(
            "the snapshot store location must not carry credentials: set AWS_ACCESS_KEY_ID \
             and AWS_SECRET_ACCESS_KEY"
                .into(),
        ));
    }
    if parsed.port().is_some() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Store(
            "the snapshot store location: write s3://BUCKET/PREFIX (the endpoint goes in \
             AWS_ENDPOINT_URL; no port, query or fragment)"
                .into(),
        ));
    }
    let bucket = parsed
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Store(format!("snapshot store `{url}` names no bucket")))?;
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| Error::Store(format!("snapshot store `{url}`: {e}")))?;
    // The URL's path is percent-encoded already: decoded once into the prefix's segments.
    let prefix = Path::from_url_path(parsed.path())
        .map_err(|e| Error::Store(format!("snapshot store `{url}`: bad prefix: {e}")))?;
    Ok(if prefix.as_ref().is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

impl SnapshotStore {
    /// A store on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
            pools: crate::pools::Pools::shared(),
        }
    }

    /// A store on a local directory (`store` must be a `LocalFileSystem` rooted at `root`):
    /// every write is flushed to disk before it counts as done.
    pub fn local(store: Arc<dyn ObjectStore>, root: std::path::PathBuf) -> Self {
        Self {
            store,
            local_root: Some(root),
            pools: crate::pools::Pools::shared(),
        }
    }

    /// The same store, encoding and decoding Parquet as load jobs of `pools`.
    pub fn with_pools(self, pools: crate::pools::Pools) -> Self {
        Self { pools, ..self }
    }

    async fn put_durable(
        store: &Arc<dyn ObjectStore>,
        root: Option<&std::path::Path>,
        path: &Path,
        bytes: PutPayload,
    ) -> Result<()> {
        store.put(path, bytes).await?;
        if let Some(root) = root {
            let (root, path) = (root.to_owned(), path.clone());
            tokio::task::spawn_blocking(move || sync_local(&root, &path))
                .await
                .map_err(Error::internal)??;
        }
        Ok(())
    }

    /// Copy the file `from` to `to` (a hard link on a local store), durably.
    async fn copy_durable(
        store: &Arc<dyn ObjectStore>,
        root: Option<&std::path::Path>,
        from: &Path,
        to: &Path,
    ) -> Result<()> {
        store.copy(from, to).await?;
        if let Some(root) = root {
            let (root, path) = (root.to_owned(), to.clone());
            tokio::task::spawn_blocking(move || sync_local(&root, &path))
                .await
                .map_err(Error::internal)??;
        }
        Ok(())
    }

    /// Flush the file `path` (and its directory) to disk on a local store; nothing on
    /// another store, whose `put` is durable when it returns.
    pub(crate) async fn sync_path(&self, path: &Path) -> Result<()> {
        if let Some(root) = &self.local_root {
            let (root, path) = (root.clone(), path.clone());
            tokio::task::spawn_blocking(move || sync_local(&root, &path))
                .await
                .map_err(Error::internal)??;
        }
        Ok(())
    }

    /// Check that the store answers: list its root (no write, nothing read but names).
    pub async fn probe(&self) -> Result<()> {
        self.store.list_with_delimiter(None).await?;
        Ok(())
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Result<Option<T>> {
        match self.store.get(path).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| Error::Corrupt(format!("{path}: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(Error::internal)?;
        Self::put_durable(
            &self.store,
            self.local_root.as_deref(),
            path,
            PutPayload::from(bytes),
        )
        .await?;
        Ok(())
    }

    /// Names of all datasets with a definition in the store.
    pub(crate) async fn dataset_names(&self) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&Path::from("datasets")))
            .await?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    pub(crate) async fn read_definition(&self, name: &str) -> Result<Option<DatasetDefinition>> {
        self.get_json(&dataset_dir(name).clone().join("definition.json"))
            .await
    }

    pub(crate) async fn write_definition(&self, def: &DatasetDefinition) -> Result<()> {
        self.put_json(&dataset_dir(&def.name).clone().join("definition.json"), def)
            .await
    }

    /// Whether replicas committed into this store (it holds [`REPLICATED`]).
    pub(crate) async fn is_replicated(&self) -> Result<bool> {
        Ok(self
            .get_json::<serde_json::Value>(&Path::from(REPLICATED))
            .await?
            .is_some())
    }

    /// Mark the store as committed into through a ledger ([`REPLICATED`]).
    pub(crate) async fn mark_replicated(&self) -> Result<()> {
        self.put_json(
            &Path::from(REPLICATED),
            &serde_json::json!({
                "commit_point": "the ledger in the metadata database (PostgreSQL)",
                "since": Utc::now().to_rfc3339(),
            }),
        )
        .await
    }

    pub(crate) async fn read_catalog(&self, name: &str) -> Result<Catalog> {
        Ok(self
            .get_json(&dataset_dir(name).clone().join("catalog.json"))
            .await?
            .unwrap_or_else(Catalog::empty))
    }

    /// Commit point: after this returns, `catalog` is what a restart sees.
    pub(crate) async fn write_catalog(&self, name: &str, catalog: &Catalog) -> Result<()> {
        self.put_json(&dataset_dir(name).clone().join("catalog.json"), catalog)
            .await
    }

    /// Write the parts and the manifest of a snapshot (not yet committed).
    ///
    /// `previous` is a persisted version (as held in memory, with its manifest): a part whose
    /// chunks are the very chunks (the same arrays) of the same part of `previous` is copied
    /// from its file instead of being encoded again.
    pub(crate) async fn write_snapshot(
        &self,
        snapshot: &Arc<Snapshot>,
        previous: Option<(&Snapshot, &Manifest)>,
    ) -> Result<Manifest> {
        let dir = version_dir(snapshot.dataset(), snapshot.version());
        // A nonce in the part names: files a dead or cut-off node left in this version's
        // directory (a load that never committed) are never taken for this load's.
        let nonce = load_nonce();
        // A fresh file first: the garbage collection of replicas judges a version directory
        // no version references by its newest file, and the parts copied from the previous
        // version (hard links on a local store) keep their old times.
        self.put_json(
            &dir.clone().join(STARTED),
            &serde_json::json!({ "nonce": nonce, "started_at": Utc::now().to_rfc3339() }),
        )
        .await?;
        let groups: Vec<Vec<RecordBatch>> = snapshot
            .chunks()
            .chunks(PART_ROWS / CHUNK_ROWS)
            .map(<[RecordBatch]>::to_vec)
            .collect();
        let reuse: Vec<Option<(Path, usize)>> = groups
            .iter()
            .enumerate()
            .map(|(i, group)| {
                previous
                    .and_then(|(prev, manifest)| reusable_part(snapshot, prev, manifest, i, group))
            })
            .collect();
        let schema = Arc::clone(snapshot.schema());
        let items = groups.into_iter().zip(reuse).enumerate();
        let parts: Vec<Part> = futures::stream::iter(items)
            .map(|(i, (group, reuse))| {
                let schema = Arc::clone(&schema);
                let path = dir.clone().join(format!("part-{i:05}-{nonce}.parquet"));
                let store = Arc::clone(&self.store);
                let root = self.local_root.clone();
                let pools = self.pools.clone();
                async move {
                    let rows = group.iter().map(RecordBatch::num_rows).sum();
                    if let Some((from, bytes)) = reuse {
                        match Self::copy_durable(&store, root.as_deref(), &from, &path).await {
                            Ok(()) => {
                                return Ok(Part {
                                    file: path.filename().unwrap_or_default().to_owned(),
                                    rows,
                                    bytes,
                                });
                            }
                            Err(e) => {
                                warn!(from = %from, to = %path, error = %e, "could not copy an unchanged part; encoding it again");
                            }
                        }
                    }
                    let bytes = pools.load(move || encode_parquet(schema, &group)).await??;
                    let len = bytes.len();
                    Self::put_durable(&store, root.as_deref(), &path, PutPayload::from(bytes))
                        .await?;
                    Ok::<_, Error>(Part {
                        file: path.filename().unwrap_or_default().to_owned(),
                        rows,
                        bytes: len,
                    })
                }
            })
            .buffered(2)
            .try_collect()
            .await?;
        let manifest = Manifest {
            version: snapshot.version(),
            created_at: snapshot.created_at(),
            rows: snapshot.num_rows(),
            parts,
            definition: snapshot.definition().as_ref().clone(),
        };
        self.put_json(&dir.clone().join(MANIFEST), &manifest)
            .await?;
        Ok(manifest)
    }

    /// Read the manifest of a version (`None` if the version was never completed).
    pub(crate) async fn read_manifest(&self, name: &str, version: u64) -> Result<Option<Manifest>> {
        self.get_json(&version_dir(name, version).clone().join(MANIFEST))
            .await
    }

    /// Read the record batches of a persisted version.
    pub(crate) async fn read_batches(
        &self,
        name: &str,
        manifest: &Manifest,
    ) -> Result<Vec<RecordBatch>> {
        let dir = version_dir(name, manifest.version);
        // Owned paths, not `&Part`s: a closure over a borrowed item would make the future of
        // every caller (`Engine::snapshot_at`, the change feed) fail to be `Send` for all
        // lifetimes, which async-trait services require.
        let paths: Vec<Path> = manifest
            .parts
            .iter()
            .map(|part| dir.clone().join(part.file.as_str()))
            .collect();
        let parts: Vec<Vec<RecordBatch>> = futures::stream::iter(paths)
            .map(|path| {
                let store = Arc::clone(&self.store);
                let pools = self.pools.clone();
                async move {
                    let bytes = store.get(&path).await?.bytes().await?;
                    let label = path.to_string();
                    pools
                        .load(move || decode_parquet(bytes, &label))
                        .await?
                        .map_err(|e| Error::Corrupt(e.to_string()))
                }
            })
            .buffered(2)
            .try_collect()
            .await?;
        let batches: Vec<RecordBatch> = parts.into_iter().flatten().collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows != manifest.rows {
            return Err(Error::Corrupt(format!(
                "{dir}: manifest says {} rows, parts hold {rows}",
                manifest.rows
            )));
        }
        Ok(batches)
    }

    /// Delete a version's files.
    pub(crate) async fn delete_version(&self, name: &str, version: u64) -> Result<()> {
        let prefix = version_dir(name, version);
        let paths = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .boxed();
        self.store
            .delete_stream(paths)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Version numbers that have a directory in the store.
    pub(crate) async fn version_dirs(&self, name: &str) -> Result<Vec<u64>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&dataset_dir(name)))
            .await?;
        let mut v: Vec<u64> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| version_of_dir(p.filename()?))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// Every file in the version directories of `name`.
    pub(crate) async fn version_files(&self, name: &str) -> Result<Vec<VersionFile>> {
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&dataset_dir(name)))
            .try_collect()
            .await?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                // datasets/{name}/v{version}/{file}
                let parts: Vec<String> =
                    o.location.parts().map(|p| p.as_ref().to_owned()).collect();
                let [_, _, dir, file] = <[String; 4]>::try_from(parts).ok()?;
                Some(VersionFile {
                    version: version_of_dir(&dir)?,
                    file,
                    path: o.location,
                    modified: o.last_modified,
                })
            })
            .collect())
    }

    /// Delete one file; one already gone counts as deleted.
    pub(crate) async fn delete_file(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// One file in a version's directory ([`SnapshotStore::version_files`]).
pub(crate) struct VersionFile {
    pub(crate) version: u64,
    /// Its name within the version's directory.
    pub(crate) file: String,
    pub(crate) path: Path,
    pub(crate) modified: DateTime<Utc>,
}

/// The version a directory named `v{version:020}` holds.
fn version_of_dir(dir: &str) -> Option<u64> {
    dir.strip_prefix('v')?.parse().ok()
}

/// A string unlikely to repeat across loads and nodes: the time in nanoseconds and the
/// process id (names only; nothing relies on it being secret).
fn load_nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{:016x}", nanos ^ (u64::from(std::process::id()) << 44))
}

/// The file of part `i` of `previous` (and its size), when part `i` of `snapshot`, `group`,
/// holds exactly its chunks: the same arrays, so the same values in the same order.
fn reusable_part(
    snapshot: &Snapshot,
    previous: &Snapshot,
    manifest: &Manifest,
    i: usize,
    group: &[RecordBatch],
) -> Option<(Path, usize)> {
    if manifest.version != previous.version()
        || manifest.rows != previous.num_rows()
        || previous.schema() != snapshot.schema()
    {
        return None;
    }
    let part = manifest.parts.get(i)?;
    let old = previous.chunks().chunks(PART_ROWS / CHUNK_ROWS).nth(i)?;
    let rows: usize = group.iter().map(RecordBatch::num_rows).sum();
    let same = part.rows == rows
        && old.len() == group.len()
        && old.iter().zip(group).all(|(a, b)| {
            a.num_rows() == b.num_rows()
                && a.num_columns() == b.num_columns()
                && a.columns()
                    .iter()
                    .zip(b.columns())
                    .all(|(x, y)| Arc::ptr_eq(x, y))
        });
    same.then(|| {
        (
            version_dir(snapshot.dataset(), manifest.version).join(part.file.as_str()),
            part.bytes,
        )
    })
}

/// Encode batches as one Parquet file in memory.
pub(crate) fn encode_parquet(
    schema: arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
) -> Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(CHUNK_ROWS))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(Bytes::from(buf))
}

/// Decode a whole Parquet file held in memory; `label` names it in errors.
///
/// Row groups are decoded in parallel on the blocking pool's threads when there are several.
pub(crate) fn decode_parquet(bytes: Bytes, label: &str) -> Result<Vec<RecordBatch>> {
    let bad = |e: parquet::errors::ParquetError| Error::LoadRefused {
        dataset: String::new(),
        reason: format!("{label} is not a readable Parquet file: {e}"),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(bad)?;
    let groups = builder.metadata().num_row_groups();
    let decode = |range: std::ops::Range<usize>| -> Result<Vec<RecordBatch>> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .map_err(bad)?
            .with_row_groups(range.collect())
            .with_batch_size(CHUNK_ROWS)
            .build()
            .map_err(bad)?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::LoadRefused {
                dataset: String::new(),
                reason: format!("{label} is not a readable Parquet file: {e}"),
            })
    };
    if groups < 2 {
        return decode(0..groups);
    }
    let mid = groups / 2;
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(|| decode(0..mid));
        let second = decode(mid..groups);
        (first.join(), second)
    });
    let mut a = a.map_err(|_| Error::Internal("Parquet decoder thread panicked".into()))??;
    a.extend(b?);
    Ok(a)
}

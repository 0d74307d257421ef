//! `dagr sync`: keep a local Parquet copy of the caller's masked view of a dataset current.
//!
//! The copy is `DIR/DATASET.parquet`; its metadata records the version it holds and the
//! fingerprint of the mask it was cut with (see [`crate::pull::Origin`]). A sync asks the
//! server for the changes since that version and applies them (deleted and changed keys
//! removed, upserted rows appended). It pulls the dataset in full instead when there is no
//! copy yet, the version is no longer kept, the change feed cannot be computed (a schema
//! change), or the caller's grants changed (another fingerprint). The new copy is written
//! under a temporary name and renamed into place, with the version inside the file itself,
//! so an interrupted sync leaves the previous copy and its version intact. A lock file stops
//! two syncs of one copy at once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dagr_engine::arrow::array::{AsArray, BooleanArray, RecordBatch, RecordBatchReader};
use dagr_engine::arrow::compute::{cast, filter_record_batch};
use dagr_engine::arrow::datatypes::SchemaRef;
use dagr_engine::arrow::row::{RowConverter, SortField};
use dagr_flight_server::ticket::DatasetTicket;
use futures::TryStreamExt;
use hashbrown::HashSet;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::client::{Connection, flight_error};
use crate::error::{LoadError, Result};
use crate::progress::Progress;
use crate::pull::{Origin, OutFormat, Staged, Writer, open_stream, pull};

/// The column of a change stream that says what a row is.
const CHANGE_COLUMN: &str = "_dagr_change";

/// How a sync brought the copy up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// The copy was already current.
    Current,
    /// The changes since the copy's version were applied.
    Changes,
    /// The dataset was pulled in full.
    Full,
}

/// What a sync did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    /// The dataset.
    pub dataset: String,
    /// The local copy.
    pub file: PathBuf,
    /// The version the copy held before (none when there was no copy).
    pub from_version: Option<u64>,
    /// The version it holds now.
    pub version: u64,
    /// How.
    pub mode: SyncMode,
    /// Why a full pull, when it was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Upserted rows applied.
    pub upserts: u64,
    /// Deleted rows applied.
    pub deletes: u64,
    /// Rows in the copy now.
    pub rows: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The local copy of `dataset` in `dir`.
pub fn copy_path(dir: &Path, dataset: &str) -> PathBuf {
    dir.join(format!("{dataset}.parquet"))
}

/// The origin recorded in a local copy and its row count, if it is one.
pub fn local_origin(path: &Path) -> Result<Option<(Origin, u64)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadError::Io(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        LoadError::Io(format!(
            "{} is not a readable Parquet file: {e}",
            path.display()
        ))
    })?;
    let meta = builder.metadata().file_metadata();
    Ok(Origin::from_metadata(meta.key_value_metadata()).map(|o| (o, meta.num_rows() as u64)))
}

/// Bring the copy of `dataset` in `dir` up to date.
pub async fn sync(
    conn: &Connection,
    dataset: &str,
    dir: &Path,
    quiet: bool,
) -> Result<SyncOutcome> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LoadError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let lock_path = dir.join(format!(".{dataset}.lock"));
    let lock = File::create(&lock_path)
        .map_err(|e| LoadError::Io(format!("cannot create {}: {e}", lock_path.display())))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(LoadError::Usage(format!(
                "another sync of `{dataset}` into {} is running",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(LoadError::Io(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
    }
    let started = std::time::Instant::now();
    let path = copy_path(dir, dataset);
    let local = local_origin(&path)?;
    let full = |from: Option<u64>, reason: String| {
        let path = path.clone();
        async move {
            let pulled = pull(conn, dataset, &path, OutFormat::Parquet, quiet).await?;
            Ok(SyncOutcome {
                dataset: dataset.to_owned(),
                file: pulled.file,
                from_version: from,
                version: pulled.origin.version,
                mode: SyncMode::Full,
                reason: Some(reason),
                upserts: 0,
                deletes: 0,
                rows: pulled.rows,
                seconds: started.elapsed().as_secs_f64(),
            })
        }
    };
    remove_partials(dir, dataset);
    let Some((local, local_rows)) = local else {
        if path.exists() {
            return Err(LoadError::Usage(format!(
                "{} exists but is not a copy made by dagr sync (its metadata names no version); \
                 move it away or sync into another directory",
                path.display()
            )));
        }
        return full(None, "no local copy yet".to_owned()).await;
    };
    if local.dataset != dataset {
        return Err(LoadError::Usage(format!(
            "{} holds `{}`, not `{dataset}`",
            path.display(),
            local.dataset
        )));
    }
    let ticket = DatasetTicket {
        since: Some(local.version),
        ..DatasetTicket::dataset(dataset)
    };
    let opened = conn
        .retrying("sync", |_| async {
            match open_stream(conn, &ticket).await {
                Ok(s) => Ok(Ok(s)),
                Err(arrow_flight::error::FlightError::Tonic(s))
                    if matches!(
                        s.code(),
                        tonic::Code::NotFound | tonic::Code::FailedPrecondition
                    ) =>
                {
                    Ok(Err(s.message().to_owned()))
                }
                Err(e) => Err(flight_error(e)),
            }
        })
        .await?;
    let (stream, origin) = match opened {
        Ok(s) => s,
        Err(why) => return full(Some(local.version), format!("no change feed: {why}")).await,
    };
    if origin.mask != local.mask {
        drop(stream);
        return full(
            Some(local.version),
            "your grants or the dataset's schema changed since the last sync".to_owned(),
        )
        .await;
    }
    let mut progress = Progress::new(format!("syncing {dataset}"), None, quiet);
    let changes: Vec<RecordBatch> = stream.try_collect().await.map_err(flight_error)?;
    let (upserts, deletes) = count_ops(&changes)?;
    if origin.version == local.version {
        progress.finish(&format!("already at version {}", local.version));
        return Ok(SyncOutcome {
            dataset: dataset.to_owned(),
            file: path,
            from_version: Some(local.version),
            version: local.version,
            mode: SyncMode::Current,
            reason: None,
            upserts: 0,
            deletes: 0,
            rows: local_rows,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let path2 = path.clone();
    let origin2 = origin.clone();
    let rows = tokio::task::spawn_blocking(move || apply(&path2, &origin2, &changes))
        .await
        .map_err(|e| LoadError::Io(format!("sync failed: {e}")))??;
    progress.add(upserts + deletes);
    progress.finish(&format!(
        "version {} → {} ({upserts} upserts, {deletes} deletes)",
        local.version, origin.version
    ));
    Ok(SyncOutcome {
        dataset: dataset.to_owned(),
        file: path,
        from_version: Some(local.version),
        version: origin.version,
        mode: SyncMode::Changes,
        reason: None,
        upserts,
        deletes,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Remove the partial files that interrupted runs left beside this copy (under the lock, so
/// no running sync's file is touched; a running pull's neither, by its process id).
fn remove_partials(dir: &Path, dataset: &str) {
    let prefix = format!(".{dataset}.parquet.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(middle) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.strip_suffix(crate::pull::PARTIAL_SUFFIX))
        else {
            continue;
        };
        // `{pid}-{nanos}`: a process that still runs (a pull into the same file) keeps its own.
        let alive = middle
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
            });
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn ops(batch: &RecordBatch) -> Result<&dagr_engine::arrow::array::StringArray> {
    batch
        .column_by_name(CHANGE_COLUMN)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| LoadError::Server(format!("a change stream without `{CHANGE_COLUMN}`")))
}

fn count_ops(changes: &[RecordBatch]) -> Result<(u64, u64)> {
    let (mut up, mut del) = (0, 0);
    for b in changes {
        for op in ops(b)?.iter() {
            match op {
                Some("upsert") => up += 1,
                Some("delete") => del += 1,
                other => {
                    return Err(LoadError::Server(format!("unknown change {other:?}")));
                }
            }
        }
    }
    Ok((up, del))
}

/// Apply `changes` to the copy at `path`, writing the result in its place; the row count.
fn apply(path: &Path, origin: &Origin, changes: &[RecordBatch]) -> Result<u64> {
    let read_err =
        |e: &dyn std::fmt::Display| LoadError::Io(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(|e| read_err(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| read_err(&e))?
        .build()
        .map_err(|e| read_err(&e))?;
    let schema: SchemaRef = reader.schema();
    let keys: Vec<usize> = origin
        .primary_key
        .iter()
        .map(|k| {
            schema.index_of(k).map_err(|_| {
                LoadError::Server(format!("the key column `{k}` is not in the local copy"))
            })
        })
        .collect::<Result<_>>()?;
    if keys.is_empty() {
        return Err(LoadError::Server("the change stream names no key".into()));
    }
    let converter = RowConverter::new(
        keys.iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect(),
    )
    .map_err(|e| LoadError::Io(e.to_string()))?;
    let key_rows = |batch: &RecordBatch| -> Result<dagr_engine::arrow::row::Rows> {
        let cols: Vec<_> = origin
            .primary_key
            .iter()
            .zip(&keys)
            .map(|(name, &k)| {
                let c = batch
                    .column_by_name(name)
                    .ok_or_else(|| LoadError::Server(format!("no key column `{name}`")))?;
                cast(c, schema.field(k).data_type()).map_err(|e| LoadError::Server(e.to_string()))
            })
            .collect::<Result<_>>()?;
        converter
            .convert_columns(&cols)
            .map_err(|e| LoadError::Server(e.to_string()))
    };
    // Every key the changes touch leaves the copy; upserted rows come back with new values.
    let mut touched: HashSet<Box<[u8]>> = HashSet::new();
    let mut upserts = Vec::new();
    for b in changes {
        let rows = key_rows(b)?;
        for r in rows.iter() {
            touched.insert(r.as_ref().into());
        }
        let is_upsert: BooleanArray = ops(b)?.iter().map(|o| Some(o == Some("upsert"))).collect();
        let up =
            filter_record_batch(b, &is_upsert).map_err(|e| LoadError::Server(e.to_string()))?;
        if up.num_rows() > 0 {
            let cols = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = up.column_by_name(f.name()).ok_or_else(|| {
                        LoadError::Server(format!("the change stream lacks `{}`", f.name()))
                    })?;
                    cast(c, f.data_type()).map_err(|e| LoadError::Server(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            upserts.push(
                RecordBatch::try_new(Arc::clone(&schema), cols)
                    .map_err(|e| LoadError::Server(format!("an upserted row does not fit: {e}")))?,
            );
        }
    }
    let (staged, file) = Staged::new(path)?;
    let mut writer = Writer::new(OutFormat::Parquet, file, Arc::clone(&schema), origin)?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| read_err(&e))?;
        let keys = key_rows(&batch)?;
        let keep: BooleanArray = keys
            .iter()
            .map(|r| Some(!touched.contains(r.as_ref())))
            .collect();
        let kept = filter_record_batch(&batch, &keep).map_err(|e| LoadError::Io(e.to_string()))?;
        if kept.num_rows() > 0 {
            rows += kept.num_rows() as u64;
            writer.write(&kept)?;
        }
    }
    for b in &upserts {
        rows += b.num_rows() as u64;
        writer.write(b)?;
    }
    staged.commit(writer.finish()?)?;
    Ok(rows)
}

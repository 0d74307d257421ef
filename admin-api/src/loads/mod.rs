//! Loads of new snapshots over HTTP: `POST /api/v1/datasets/{name}/loads` with a Parquet
//! body ([`api`]), and the service that runs them ([`Loads`]).
//!
//! A load is recorded in the metadata store as it starts (`receiving`). Its body is streamed
//! to a temporary file in the upload directory — never held whole in memory — and counted
//! against [`LoadsConfig::max_upload_bytes`]. Once the body is in, the load is `validating`
//! and a background task owned by [`Loads`] reads the file batch by batch on a blocking
//! thread and hands the batches to [`dagr_engine::Engine::load_batches`], which validates,
//! persists and commits them or refuses them without changing anything. The load ends
//! `committed` (with the version and rows) or `refused` (with reasons). The temporary file
//! is removed at the end in every case.
//!
//! A body that breaks off, or exceeds the limit, refuses the load at once. A server that
//! stops while loads run leaves them `receiving` or `validating`; on its next start
//! ([`Loads::open`]) it refuses them as interrupted and removes their files. Each upload
//! directory holds a node id, so that a server refuses only its own loads, not those of a
//! replica sharing the metadata database.

pub(crate) mod api;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::{Engine, Principal};
use futures::StreamExt;
use parking_lot::Mutex;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

use crate::AppState;
use crate::model::{Load, LoadChannel, LoadMode, LoadOutcome, LoadStatus};
use crate::store::{MetaStore, NewLoad, StoreError};

/// Content types a snapshot upload may declare.
pub const PARQUET_CONTENT_TYPES: [&str; 2] =
    ["application/vnd.apache.parquet", "application/octet-stream"];
/// Largest upload accepted by default: 8 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 8 << 30;
/// How long an upload may send nothing before it counts as broken off, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many loads are read and committed at the same time, by default (each holds its
/// whole snapshot in memory).
pub const DEFAULT_PARALLEL_LOADS: usize = 2;
/// The reason given to loads that a server stop interrupted.
pub const INTERRUPTED: &str = "interrupted by a server restart; nothing was loaded";
/// The reason given when the server failed (the details are in its log).
const SERVER_FAILED: &str =
    "the server failed to store or commit the upload; nothing was loaded (the failure is logged)";
/// Temporary files of uploads start with this; anything else in the directory is left alone.
const TEMP_PREFIX: &str = "load-";
/// The file in the upload directory that holds the node id.
const NODE_FILE: &str = "node-id";
/// How often a receiving load's byte count is written to the store.
const PROGRESS_EVERY: u64 = 64 << 20;
/// Rows per batch read from an upload.
const READ_BATCH_ROWS: usize = 64 * 1024;
/// Write buffer between the request body and the temporary file.
const WRITE_BUFFER: usize = 1 << 20;

/// Settings of HTTP uploads.
#[derive(Debug, Clone)]
pub struct LoadsConfig {
    /// Where upload bodies are kept while they arrive and are validated (created if
    /// missing). One server's own: it also holds the server's node id.
    pub upload_dir: PathBuf,
    /// Largest body accepted, in bytes (413 `upload-too-large` beyond it).
    pub max_upload_bytes: u64,
    /// How long a body may send nothing before the upload counts as broken off.
    pub idle_timeout: Duration,
    /// How many loads are read and committed at the same time (at least 1).
    pub parallel_loads: usize,
}

impl LoadsConfig {
    /// Uploads in `uploads/` under a server's data directory, with the default limits.
    pub fn under(data_dir: &Path) -> Self {
        LoadsConfig {
            upload_dir: data_dir.join("uploads"),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            parallel_loads: DEFAULT_PARALLEL_LOADS,
        }
    }
}

/// Why an upload was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The server was started without an upload directory.
    #[error("uploads are not enabled on this server")]
    Disabled,
    /// The body is not declared as a Parquet file.
    #[error(
        "a load is a Parquet file sent as `application/vnd.apache.parquet` or \
         `application/octet-stream`, not `{0}`"
    )]
    UnsupportedMediaType(String),
    /// The body is larger than the server accepts.
    #[error("the upload is larger than the limit of {limit} bytes; nothing was loaded")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body ended early (the client went away, or sent nothing for too long).
    #[error("the upload broke off after {bytes} bytes; nothing was loaded")]
    BrokeOff {
        /// Bytes received.
        bytes: u64,
    },
    /// The upload could not be written to the upload directory.
    #[error("the upload could not be stored: {0}")]
    Io(#[from] std::io::Error),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A load whose body is in: its record (`validating`), and the record as it ends.
#[derive(Debug)]
pub struct Accepted {
    /// The load as it is now.
    pub load: Load,
    /// The load once committed or refused (closed without a value if the server stops
    /// first, or cannot record the end).
    pub done: oneshot::Receiver<Load>,
}

/// What the background tasks share (never the [`Loads`] that owns them, so that dropping
/// it stops them).
#[derive(Debug)]
struct Shared {
    store: MetaStore,
    engine: Arc<Engine>,
    config: LoadsConfig,
    node: String,
    /// Bounds the loads that hold a snapshot in memory at once.
    parallel: Semaphore,
}

/// The load service: receives uploads and runs their validation and commit in background
/// tasks that it owns. Dropping it (with the router that holds it, when the server stops)
/// aborts those tasks; their loads are refused as interrupted on the next start.
#[derive(Debug)]
pub struct Loads {
    /// `None`: uploads are disabled.
    shared: Option<Arc<Shared>>,
    tasks: Mutex<JoinSet<()>>,
    /// Uploads being received and background tasks not finished yet.
    running: Arc<watch::Sender<usize>>,
}

impl Loads {
    /// The service of a server: creates the upload directory and its node id, refuses the
    /// loads this server left unfinished when it last stopped, and removes their files.
    pub async fn open(state: &AppState, config: LoadsConfig) -> Result<Arc<Self>, LoadError> {
        let dir = &config.upload_dir;
        tokio::fs::create_dir_all(dir).await?;
        let node = node_id(dir).await?;
        let store = state.gov.store().clone();
        let interrupted = store.interrupt_loads(&node, INTERRUPTED).await?;
        if interrupted > 0 {
            tracing::warn!(
                loads = interrupted,
                "loads interrupted by the last stop were refused"
            );
        }
        remove_leftovers(dir).await?;
        let parallel = Semaphore::new(config.parallel_loads.max(1));
        Ok(Arc::new(Loads {
            shared: Some(Arc::new(Shared {
                store,
                engine: Arc::clone(&state.engine),
                config,
                node,
                parallel,
            })),
            tasks: Mutex::new(JoinSet::new()),
            running: Arc::new(watch::channel(0).0),
        }))
    }

    /// A service that refuses uploads (503 `uploads-disabled`); load records stay readable.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Loads {
            shared: None,
            tasks: Mutex::new(JoinSet::new()),
            running: Arc::new(watch::channel(0).0),
        })
    }

    /// The settings, unless uploads are disabled.
    pub fn config(&self) -> Option<&LoadsConfig> {
        self.shared.as_ref().map(|s| &s.config)
    }

    /// This server's node id (kept in the upload directory), unless uploads are disabled.
    pub fn node(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.node.as_str())
    }

    /// Resolves when no upload is being received and no background task runs: every load
    /// started here has ended (or could not record its end).
    pub async fn settled(&self) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Run `task` in the background, owned by this service.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let guard = RunningGuard::new(Arc::clone(&self.running));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime: the process is ending; the next start cleans up
        };
        let mut tasks = self.tasks.lock();
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(error = %e, "a load task panicked");
            }
        }
        tasks.spawn_on(
            async move {
                let _guard = guard;
                task.await;
            },
            &runtime,
        );
    }

    /// Receive the body of a snapshot load of `dataset` by `p` (authorised by the caller)
    /// into a temporary file, then start its validation and commit in the background.
    ///
    /// The load is recorded first (`receiving`). A body over the limit, or one that breaks
    /// off, refuses it and removes the file; so does dropping this future before the body is
    /// in (the client went away).
    pub async fn receive(
        &self,
        p: &Principal,
        dataset: &str,
        body: Body,
    ) -> Result<Accepted, LoadError> {
        let shared = self.shared.as_ref().ok_or(LoadError::Disabled)?;
        let load = shared
            .store
            .create_load(&NewLoad {
                dataset: dataset.to_owned(),
                channel: LoadChannel::Http,
                mode: LoadMode::Snapshot,
                status: LoadStatus::Receiving,
                node: shared.node.clone(),
                created_by: p.describe(),
            })
            .await?;
        let mut upload = Upload {
            loads: self,
            shared,
            id: load.id,
            bytes: 0,
            temp: None,
            open: true,
            _running: RunningGuard::new(Arc::clone(&self.running)),
        };
        upload.receive(body).await?;
        let bytes = upload.bytes;
        let received = shared.store.load_received(load.id, bytes as i64).await;
        if !matches!(received, Ok(true)) {
            let e = match received {
                Err(e) => e,
                Ok(_) => StoreError::Corrupt(format!("load {} ended while receiving", load.id)),
            };
            tracing::error!(load = load.id, error = %e, "cannot record a received upload");
            upload.refuse(SERVER_FAILED.to_owned()).await;
            return Err(e.into());
        }
        upload.open = false;
        let temp = upload.temp.take();
        let (tx, done) = oneshot::channel();
        let task_shared = Arc::clone(shared);
        let (id, name) = (load.id, dataset.to_owned());
        self.spawn(async move {
            let outcome = match &temp {
                Some(t) => validate_and_commit(&task_shared, &name, t.to_path_buf()).await,
                None => LoadOutcome::refused(SERVER_FAILED),
            };
            remove_temp(temp).await;
            if let Some(load) = finish(&task_shared, id, bytes, outcome).await {
                let _ = tx.send(load);
            }
        });
        Ok(Accepted {
            load: Load {
                status: LoadStatus::Validating,
                bytes: bytes as i64,
                ..load
            },
            done,
        })
    }
}

/// Counts an upload being received, or a background task, while it lives.
struct RunningGuard(Arc<watch::Sender<usize>>);

impl RunningGuard {
    fn new(running: Arc<watch::Sender<usize>>) -> Self {
        running.send_modify(|n| *n += 1);
        RunningGuard(running)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// An upload while its body arrives. Dropped while still open (the request was dropped:
/// the client went away), it refuses the load and removes its file in the background.
struct Upload<'a> {
    loads: &'a Loads,
    shared: &'a Arc<Shared>,
    id: i64,
    bytes: u64,
    temp: Option<TempPath>,
    /// The body is still arriving.
    open: bool,
    /// Counts the upload as running until it is dropped.
    _running: RunningGuard,
}

impl Upload<'_> {
    /// Stream `body` into a new temporary file, within the size limit.
    async fn receive(&mut self, body: Body) -> Result<(), LoadError> {
        let config = &self.shared.config;
        let (limit, idle) = (config.max_upload_bytes, config.idle_timeout);
        let file = match create_temp(&config.upload_dir, self.id).await {
            Ok((file, path)) => {
                self.temp = Some(path);
                file
            }
            Err(e) => return Err(self.failed(e).await),
        };
        let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut stream = body.into_data_stream();
        let mut reported = 0;
        loop {
            let chunk = match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    tracing::info!(load = self.id, bytes = self.bytes, error = %e, "an upload broke off");
                    let bytes = self.bytes;
                    self.refuse(broke_off(bytes)).await;
                    return Err(LoadError::BrokeOff { bytes });
                }
                Err(_) => {
                    tracing::info!(
                        load = self.id,
                        bytes = self.bytes,
                        "an upload sent nothing for too long"
                    );
                    let bytes = self.bytes;
                    self.refuse(format!(
                        "the upload broke off after {bytes} bytes (nothing arrived for {} s); \
                         nothing was loaded",
                        idle.as_secs()
                    ))
                    .await;
                    return Err(LoadError::BrokeOff { bytes });
                }
            };
            if self.bytes + chunk.len() as u64 > limit {
                tracing::info!(load = self.id, limit, "an upload exceeds the size limit");
                self.refuse(LoadError::TooLarge { limit }.to_string()).await;
                return Err(LoadError::TooLarge { limit });
            }
            if let Err(e) = file.write_all(&chunk).await {
                return Err(self.failed(e).await);
            }
            self.bytes += chunk.len() as u64;
            if self.bytes - reported >= PROGRESS_EVERY {
                reported = self.bytes;
                if let Err(e) = self
                    .shared
                    .store
                    .load_progress(self.id, reported as i64)
                    .await
                {
                    tracing::warn!(load = self.id, error = %e, "cannot record an upload's progress");
                }
            }
        }
        if let Err(e) = file.flush().await {
            return Err(self.failed(e).await);
        }
        Ok(())
    }

    /// Refuse the load for a server fault `e` (logged), removing its file.
    async fn failed(&mut self, e: std::io::Error) -> LoadError {
        tracing::error!(load = self.id, error = %e, "cannot store an upload");
        self.refuse(SERVER_FAILED.to_owned()).await;
        LoadError::Io(e)
    }

    /// Refuse the load for `reason`, removing its file.
    async fn refuse(&mut self, reason: String) {
        self.open = false;
        remove_temp(self.temp.take()).await;
        finish(
            self.shared,
            self.id,
            self.bytes,
            LoadOutcome::refused(reason),
        )
        .await;
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (shared, id, bytes, temp) = (
            Arc::clone(self.shared),
            self.id,
            self.bytes,
            self.temp.take(),
        );
        tracing::info!(
            load = id,
            bytes,
            "an upload was abandoned while its body arrived"
        );
        self.loads.spawn(async move {
            remove_temp(temp).await;
            finish(&shared, id, bytes, LoadOutcome::refused(broke_off(bytes))).await;
        });
    }
}

fn broke_off(bytes: u64) -> String {
    LoadError::BrokeOff { bytes }.to_string()
}

/// Read the upload at `path` and commit it, or say why not.
async fn validate_and_commit(shared: &Shared, dataset: &str, path: PathBuf) -> LoadOutcome {
    // The semaphore is never closed.
    let _permit = shared.parallel.acquire().await.ok();
    let budget = shared.config.max_upload_bytes;
    // Decoded as a load job: on the engine's bounded, lower-priority load pool.
    let read = shared
        .engine
        .pools()
        .load(move || read_parquet(&path, budget))
        .await;
    let batches = match read {
        Ok(Ok(batches)) => batches,
        Ok(Err(Unreadable::Parquet(reason))) => return LoadOutcome::refused(reason),
        Ok(Err(Unreadable::Io(e))) => {
            tracing::error!(dataset, error = %e, "cannot read back an upload");
            return LoadOutcome::refused(SERVER_FAILED);
        }
        Err(e) => {
            tracing::error!(dataset, error = %e, "the reader of an upload failed");
            return LoadOutcome::refused(SERVER_FAILED);
        }
    };
    match shared.engine.load_batches(dataset, batches).await {
        Ok(report) => LoadOutcome::Committed {
            version: report.version as i64,
            rows: report.rows as i64,
        },
        Err(dagr_engine::Error::LoadRefused { reason, .. }) => LoadOutcome::refused(reason),
        Err(e) if e.is_user_error() => LoadOutcome::refused(e.to_string()),
        Err(e) => {
            tracing::error!(dataset, error = %e, "the engine failed to commit a load");
            LoadOutcome::refused(SERVER_FAILED)
        }
    }
}

/// Why an upload could not be read.
enum Unreadable {
    /// Not a (readable) Parquet file: the uploader's fault, in words for them.
    Parquet(String),
    /// The file could not be opened: the server's fault.
    Io(std::io::Error),
}

/// Every batch of the Parquet file at `path`, read batch by batch (blocking).
fn read_parquet(path: &Path, budget: u64) -> Result<Vec<RecordBatch>, Unreadable> {
    let file = std::fs::File::open(path).map_err(Unreadable::Io)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Unreadable::Parquet(format!("not a Parquet file: {e}")))?;
    // A small file can decode to far more (run-length and dictionary encodings): the row
    // count is checked before anything is decoded, the decoded size as batches arrive.
    let rows = builder.metadata().file_metadata().num_rows();
    if rows < 0 || rows as u64 > dagr_engine::snapshot::MAX_ROWS as u64 {
        return Err(Unreadable::Parquet(format!(
            "the file holds {rows} rows; a snapshot holds at most {}",
            dagr_engine::snapshot::MAX_ROWS
        )));
    }
    let reader = builder
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| Unreadable::Parquet(format!("not a Parquet file: {e}")))?;
    let mut batches = Vec::new();
    let mut decoded = 0u64;
    for batch in reader {
        let batch =
            batch.map_err(|e| Unreadable::Parquet(format!("not a readable Parquet file: {e}")))?;
        decoded = decoded.saturating_add(batch.get_array_memory_size() as u64);
        if decoded > budget {
            return Err(Unreadable::Parquet(format!(
                "the file decodes to more than {budget} bytes of data, the most one upload may \
                 hold"
            )));
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// Record how a load ended (retrying a failing store a few times) and return its record.
async fn finish(shared: &Shared, id: i64, bytes: u64, outcome: LoadOutcome) -> Option<Load> {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match shared.store.finish_load(id, bytes as i64, &outcome).await {
            Ok(_) => {
                match &outcome {
                    LoadOutcome::Committed { version, rows } => {
                        tracing::info!(load = id, version, rows, bytes, "load committed");
                    }
                    LoadOutcome::Refused { reasons } => {
                        tracing::info!(load = id, ?reasons, bytes, "load refused");
                    }
                }
                return match shared.store.load(id).await {
                    Ok(load) => load,
                    Err(e) => {
                        tracing::error!(load = id, error = %e, "cannot read back a finished load");
                        None
                    }
                };
            }
            Err(e) => {
                tracing::error!(load = id, attempt, error = %e, "cannot record the end of a load");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
            }
        }
    }
    None
}

/// A new temporary file for load `id`, removed when the returned path is dropped.
async fn create_temp(dir: &Path, id: i64) -> std::io::Result<(tokio::fs::File, TempPath)> {
    let dir = dir.to_owned();
    let (file, path) = tokio::task::spawn_blocking(move || {
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{id}-"))
            .suffix(".parquet")
            .tempfile_in(dir)
            .map(tempfile::NamedTempFile::into_parts)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok((tokio::fs::File::from_std(file), path))
}

/// Remove a temporary file off the async threads.
async fn remove_temp(temp: Option<TempPath>) {
    let Some(temp) = temp else { return };
    let result = tokio::task::spawn_blocking(move || {
        let path = temp.to_path_buf();
        temp.close().map_err(|e| (path, e))
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err((path, e))) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an upload file");
        }
        Err(e) => tracing::warn!(error = %e, "cannot remove an upload file"),
    }
}

/// The node id kept in `dir` (the upload directory), made on first use.
pub async fn node_id(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(NODE_FILE);
    match tokio::fs::read_to_string(&path).await {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    tokio::fs::write(&path, format!("{id}\n")).await?;
    Ok(id)
}

/// Remove the temporary files of uploads that a stop interrupted.
async fn remove_leftovers(dir: &Path) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(TEMP_PREFIX) && entry.file_type().await?.is_file() {
            tracing::info!(file = %entry.path().display(), "removing an interrupted upload");
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    Ok(())
}

//! The audit store: access records and usage events in one durable, hash-chained log, in SQL
//! through `sqlx`'s `Any` driver — a SQLite file of its own (`audit.db`) by default, or the
//! governance PostgreSQL database (shared by replicas). The format and the reasoning are in
//! `docs/audit.md`.
//!
//! - **One chain.** Every entry has a global sequence number `seq`, the hash of the entry
//!   before it and its own hash, `SHA-256(prev_hash || body)`, where `body` is the entry's
//!   canonical JSON. The other columns repeat fields of the body for queries; [`verify`]
//!   checks that they agree with it.
//! - **Subjects, compactly.** A record of at most [`AuditConfig::list_limit`] distinct
//!   subjects lists them in its body and writes one index row per subject. A bigger one (a
//!   bulk stream) maps subjects to ids of a persistent, append-only, hash-chained dictionary
//!   and stores the roaring bitmap of those ids split by 2^16-id container; its body carries
//!   the subject count, the SHA-256 of the ids and the dictionary's head at the time. Subject
//!   values are stored through [`subject_code`] (long ones or ones holding NUL as a hash).
//! - **Group commit, durability first.** Callers queue entries (a channel send) and wait; one
//!   writer takes what is queued, chains it and writes the entries, their index rows and the
//!   daily aggregates in one transaction, and answers the waiters only after the commit; when
//!   the transaction fails over one entry's data, the jobs are written again one per
//!   transaction. On a SQLite file the commit point is a commit log instead: the writer thread
//!   chains each group with the head it keeps in memory, appends it as one frame and syncs it
//!   (`seglog.rs`); an indexer thread writes the durable groups into the tables, and readers
//!   wait for it ([`AuditStore::settle`]); opening replays what the tables lack (`thread.rs`).
//!   On PostgreSQL the writer is a task on the pool that locks the head (`FOR UPDATE`) in the
//!   transaction, so that replicas sharing the database extend one chain (`writer.rs`).
//!   Subjects are resolved before, in the caller's task.
//!
//! [`verify`]: AuditStore::verify

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use bytes::Bytes;
use dagr_engine::audit::{AccessRecord, AuditError, AuditSink, SubjectRows};
use dagr_engine::task::SpawnedTask;
use dagr_engine::{Principal, Role};
use futures::Stream;
use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Row};
use tokio::sync::{OnceCell, mpsc, oneshot};
use utoipa::ToSchema;

use crate::auth::to_hex;
use crate::model::Time;
use crate::store::{Backend, redact};

/// Audit store errors.
#[derive(Debug, thiserror::Error)]
pub enum AuditStoreError {
    /// The audit database failed or is unreachable.
    #[error("audit database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The audit database file failed (the SQLite writer's own connection).
    #[error("audit database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The log cannot take entries (it is closed, or the batch they were in failed).
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
    /// A field of the input is invalid (`events[3].subject`).
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field, as named in the API.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("the audit log holds an unreadable value: {0}")]
    Corrupt(String),
    /// The subjects of a read could not be resolved from its snapshot.
    #[error("cannot resolve the data subjects of a read: {0}")]
    Subjects(#[from] dagr_engine::Error),
    /// The database URL is not supported.
    #[error("unsupported audit database URL `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
}

/// Result with [`AuditStoreError`].
pub type Result<T, E = AuditStoreError> = std::result::Result<T, E>;

/// Tuning of the audit store.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Largest number of distinct subjects a record lists (one index row each); bigger
    /// records store a bitmap of subject ids.
    pub list_limit: usize,
    /// Largest number of entries the writer puts in one transaction.
    pub max_batch: usize,
    /// Largest number of bulk-record containers the citizen view examines per request; a page
    /// cut short by it carries a cursor to continue.
    pub bulk_scan_limit: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            list_limit: 1024,
            max_batch: 1000,
            bulk_scan_limit: 2000,
        }
    }
}

/// Embedded migrations of the audit log, applied in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "audit_log",
    include_str!("../../migrations/audit/0001_audit_log.sql"),
)];

/// `prev_hash` of the first entry ever written.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Version of the body format.
const BODY_VERSION: u32 = 1;
/// How far in the future a usage event's time may lie (clock skew), in milliseconds.
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// Most events in one [`AuditStore::record_usage`] call.
pub const MAX_USAGE_EVENTS: usize = 1000;
/// Longest free text of a usage event (transaction id, purpose, names), in characters.
const MAX_TEXT: usize = 500;
/// Entries read per page by `verify`, the export and expiry.
const PAGE: i64 = 1000;
/// Entries expired per transaction.
const EXPIRE_CHUNK: i64 = 10_000;
/// Largest number of bound parameters in one statement (SQLite allows 32766).
const MAX_PARAMS: usize = 30_000;
/// Largest number of rows in one multi-row `INSERT`.
const MAX_ROWS_PER_STATEMENT: usize = 256;
/// Dictionary codes assigned per transaction.
const DICT_CHUNK: usize = 16_384;
/// Largest number of codes kept in the in-memory dictionary cache.
const DICT_CACHE_MAX: usize = 8_000_000;
/// Largest number of row → subject-id arrays kept in memory.
const ARRAYS_MAX: usize = 16;
/// "No subject" in a row → subject-id array.
const NO_SUBJECT: u32 = u32::MAX;
/// Jobs that may wait for the writer.
const QUEUE: usize = 4096;
/// How long a reader waits for the tables to catch up with the commit log.
const SETTLE_MAX: Duration = Duration::from_secs(10);
/// Subject resolution runs on the blocking pool above this many rows.
const BLOCKING_ROWS: u64 = 4096;
/// Longest subject value stored as it is, in bytes; longer ones (and ones holding NUL) are
/// stored as `sha256:<hex>` of the value.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Dictionary rows read per page by `verify`.
const DICT_PAGE: i64 = 10_000;

mod chain;
mod query;
mod record;
mod seglog;
#[cfg(test)]
mod tests;
mod thread;
mod verify;
mod writer;

use chain::*;
pub use chain::{sha256_hex, subject_code};
pub use query::export_schema;
#[cfg(test)]
use record::*;
use thread::Stats;
pub use thread::WriterStats;
use writer::*;

// ---- public types --------------------------------------------------------------------------

/// The kind of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A response of DAGR that carried personal attributes.
    Access,
    /// A provider or consumer system's report that it used a subject's data.
    Usage,
}

impl EntryKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Access => "access",
            EntryKind::Usage => "usage",
        }
    }

    /// Parse [`EntryKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(EntryKind::Access),
            "usage" => Some(EntryKind::Usage),
            _ => None,
        }
    }
}

/// A usage event as a provider or consumer system reports it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEventIn {
    /// The data subject (personal code) whose data was used.
    pub subject: String,
    /// Why it was used.
    pub purpose: String,
    /// When the reporter's transaction happened (RFC 3339); at most 5 minutes in the future.
    pub time: Time,
    /// The reporter's own id of the transaction; a repeat is recognised (idempotent).
    pub transaction_id: String,
    /// The dataset the data came from, if known.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The attributes used.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// The id of the DAGR access record the data came from; it must be one of the
    /// reporter's organisation.
    #[serde(default)]
    pub access_record: Option<String>,
}

/// What became of a reported usage event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageStatus {
    /// Written now.
    Recorded,
    /// The reporter had already reported this transaction id; nothing was written.
    Duplicate,
}

/// The outcome of one reported usage event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsageOutcome {
    /// The reporter's transaction id.
    pub transaction_id: String,
    /// The log entry's id.
    pub id: String,
    /// Recorded now or a duplicate.
    pub status: UsageStatus,
}

/// Filters of the citizen view.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// Entries at or after this time (Unix ms).
    pub from: Option<i64>,
    /// Entries before this time (Unix ms).
    pub to: Option<i64>,
    /// Only entries of this organisation.
    pub organisation: Option<String>,
}

/// One entry of a subject's usage log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageEntry {
    /// The entry's id (its sequence number).
    pub id: String,
    /// An access record of DAGR or a usage event reported by a system.
    pub kind: EntryKind,
    /// When the data was read or used.
    pub time: Time,
    /// The organisation that read or used it (code).
    pub organisation: Option<String>,
    /// The organisation's name (filled in by the API from the governance store).
    pub organisation_name: Option<String>,
    /// Its system (id).
    pub system: Option<String>,
    /// The system's name (filled in by the API from the governance store).
    pub system_name: Option<String>,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// Through which interface DAGR handed the data out (access records).
    pub channel: Option<String>,
    /// The dataset.
    pub dataset: Option<String>,
    /// The dataset version read (access records).
    pub version: Option<i64>,
    /// The personal attributes read or used.
    pub attributes: Vec<String>,
    /// The agreements that allowed the read (for usage events: of the access record named).
    pub agreements: Vec<String>,
    /// The reporter's transaction id (usage events).
    pub transaction_id: Option<String>,
    /// The access record a usage event names.
    pub access_record: Option<String>,
    /// The sequence number, for cursors.
    #[serde(skip)]
    pub seq: i64,
}

/// One page of a subject's usage log.
#[derive(Debug, Clone, Default)]
pub struct UsagePage {
    /// The entries, newest (highest `seq`) first.
    pub entries: Vec<UsageEntry>,
    /// Where the next page starts (pass it as `before`): set when the page is full, or when
    /// the scan of bulk records hit [`AuditConfig::bulk_scan_limit`] — then the page may be
    /// short, even empty, and older entries may still follow.
    pub next: Option<i64>,
}

/// One row of the daily usage summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SummaryRow {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The dataset (none for usage events that name none).
    pub dataset: Option<String>,
    /// The organisation that read or used the data (none for admins).
    pub organisation: Option<String>,
    /// Its system (id).
    pub system: Option<String>,
    /// The attribute (none for usage events that name none). A record of three attributes
    /// counts once for each.
    pub attribute: Option<String>,
    /// Access records or usage events.
    pub kind: EntryKind,
    /// Entries.
    pub records: i64,
    /// Rows read (access records) or events (usage events).
    pub rows: i64,
}

/// The head of the chain, as [`AuditStore::chain_head`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last entry's sequence number (0 before the first).
    pub seq: i64,
    /// Its hash ([`GENESIS_HASH`] before the first).
    pub hash: String,
    /// When it was recorded.
    pub recorded_at: Option<Time>,
    /// Whether the writer takes entries (it stops when the store is closed).
    pub writing: bool,
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first broken entry's sequence number, or with `dictionary` the first broken
    /// subject dictionary id.
    pub seq: i64,
    /// What is wrong with it: modified, inserted or removed.
    pub reason: String,
    /// The break is in the subject dictionary (`seq` is a dictionary id), not in the log.
    pub dictionary: bool,
}

/// The outcome of [`AuditStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked (up to the first broken one).
    pub records: u64,
    /// The first entry checked.
    pub first_seq: Option<i64>,
    /// The last entry checked.
    pub last_seq: Option<i64>,
    /// The first broken entry, if any.
    pub broken: Option<Broken>,
    /// The chain head: the last entry's seq.
    pub head_seq: i64,
    /// The chain head's hash (publish it elsewhere to detect a rewritten log).
    pub head_hash: String,
    /// The last entry removed by expiry (0 = none).
    pub anchor_seq: i64,
    /// Subject dictionary ids checked.
    pub dictionary_ids: u64,
    /// The subject dictionary's head: its last id (0 = empty).
    pub dict_id: i64,
    /// The hash of the subject dictionary's last row.
    pub dict_hash: String,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.broken {
            Some(b) if b.dictionary => write!(
                f,
                "audit log BROKEN at subject dictionary id {}: {} ({} entries verified)",
                b.seq, b.reason, self.records
            ),
            Some(b) => write!(
                f,
                "audit log BROKEN at entry {}: {} ({} entries before it verified)",
                b.seq, b.reason, self.records
            ),
            None => {
                match (self.first_seq, self.last_seq) {
                    (Some(a), Some(b)) => write!(
                        f,
                        "audit log intact: {} entries verified (seq {a}..{b})",
                        self.records
                    )?,
                    _ => write!(f, "audit log intact: no entries")?,
                }
                if self.anchor_seq > 0 {
                    write!(f, ", entries up to {} expired", self.anchor_seq)?;
                }
                write!(
                    f,
                    ", {} subject dictionary ids; head {} {}; dictionary head {} {}",
                    self.dictionary_ids,
                    self.head_seq,
                    self.head_hash,
                    self.dict_id,
                    self.dict_hash
                )
            }
        }
    }
}

// ---- the store -------------------------------------------------------------------------------

type ArrayKey = (String, u64, usize);
/// A row → subject-id array, built once by whoever asks first.
type ArrayCell = Arc<OnceCell<Arc<Vec<u32>>>>;

/// The writer of the log: threads of their own on a SQLite file (shared by the stores of the
/// process on that file), a task on the pool otherwise.
enum WriterHandle {
    Task(SpawnedTask<()>),
    Thread(Arc<thread::Shared>),
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    config: AuditConfig,
    jobs: mpsc::Sender<Msg>,
    writer: Mutex<Option<WriterHandle>>,
    stats: Arc<Stats>,
    /// How far the commit log and the tables have got (a SQLite file this store writes).
    progress: Option<Arc<thread::Progress>>,
    /// Why this store takes no entries: another store writes its SQLite file.
    read_only: Option<String>,
    /// Set by [`AuditStore::close`]: the store takes no more entries (the writer it shares
    /// may go on for other stores of the file).
    closed: std::sync::atomic::AtomicBool,
    /// The runtime the store was opened on (the serving one): commits made from a bulk
    /// thread run there, so that the pool's connections (and sqlx's SQLite threads, which
    /// inherit their creator's priority) are never made at the bulk threads' lower priority.
    home: tokio::runtime::Handle,
    /// Personal code → dictionary id.
    dict: RwLock<HashMap<Box<str>, u32>>,
    /// (dataset, version, column) → row → dictionary id ([`NO_SUBJECT`] for none).
    arrays: Mutex<HashMap<ArrayKey, ArrayCell>>,
    /// The subjects of the last big read resolved: a whole-dataset pull repeated on the same
    /// snapshot (the same rows, the same subject columns) reuses them.
    last_big: Mutex<Option<record::BigRead>>,
}

/// The durable, hash-chained audit log of access records and usage events. Cheap to clone
/// (shared).
#[derive(Clone)]
pub struct AuditStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditStore")
            .field("backend", &self.inner.backend)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A usage event, checked.
struct Checked {
    i: usize,
    subject: String,
    purpose: String,
    transaction_id: String,
    time: i64,
    dataset: Option<String>,
    attributes: Vec<String>,
    access_record: Option<i64>,
}

/// What a record's subjects became.
#[derive(Debug, Default, Clone)]
struct Resolved {
    listed: Option<Vec<String>>,
    count: u64,
    sha256: Option<String>,
    containers: Vec<(i64, Bytes)>,
}

impl AuditStore {
    /// Open the log at `url` — `sqlite://PATH` (created if missing) or `postgres://...` —
    /// migrate it and start its writer.
    pub async fn open(url: &str, config: AuditConfig) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let u = if url.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(AuditStoreError::UnsupportedUrl(redact(url)));
        };
        let _ = sqlx::any::AnyConnectOptions::from_str(&url)?;
        let mut options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 6,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // FULL: an acknowledged record survives power loss; readers and the
                    // dictionary wait for the writer rather than fail.
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    // 16 MiB of page cache (default 2 MiB): the subject index takes random
                    // inserts.
                    sqlx::query("PRAGMA cache_size = -16384")
                        .execute(&mut *conn)
                        .await?;
                    // Checkpoints run on the store's checkpoint thread, never on a commit.
                    sqlx::query("PRAGMA wal_autocheckpoint = 0")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        migrate(&pool, backend).await?;
        let config = AuditConfig {
            list_limit: config.list_limit,
            max_batch: config.max_batch.max(1),
            bulk_scan_limit: config.bulk_scan_limit.max(1),
        };
        let file = match backend {
            Backend::Sqlite => thread::database_file(&pool).await?,
            Backend::Postgres => None,
        };
        let (jobs, rx) = mpsc::channel(QUEUE);
        let (writer, jobs, stats, progress, read_only) = match file {
            Some(path) => {
                let shown = path.display().to_string();
                match thread::attach(path, config.max_batch).await? {
                    Some(shared) => (
                        Some(WriterHandle::Thread(Arc::clone(&shared))),
                        shared.jobs.clone(),
                        Arc::clone(&shared.stats),
                        Some(Arc::clone(&shared.progress)),
                        None,
                    ),
                    None => {
                        let why = format!(
                            "another process writes the audit log {shown} (its commit log is \
                             locked); this one only reads it"
                        );
                        tracing::warn!("{why}");
                        (None, jobs, Arc::new(Stats::default()), None, Some(why))
                    }
                }
            }
            None => {
                let stats = Arc::new(Stats::default());
                let task = SpawnedTask::spawn(run_writer(
                    pool.clone(),
                    backend,
                    config.max_batch,
                    rx,
                    Arc::clone(&stats),
                ));
                (Some(WriterHandle::Task(task)), jobs, stats, None, None)
            }
        };
        Ok(AuditStore {
            inner: Arc::new(Inner {
                pool,
                backend,
                config,
                jobs,
                writer: Mutex::new(writer),
                stats,
                progress,
                read_only,
                closed: std::sync::atomic::AtomicBool::new(false),
                home: tokio::runtime::Handle::current(),
                dict: RwLock::new(HashMap::new()),
                arrays: Mutex::new(HashMap::new()),
                last_big: Mutex::new(None),
            }),
        })
    }

    /// The connection pool, for tools and tests that need SQL the store does not offer.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Which backend the log is on.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The configuration.
    pub fn config(&self) -> &AuditConfig {
        &self.inner.config
    }

    /// What the writer has done since the store was opened: groups, entries, time.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.stats.snapshot()
    }

    /// Stop taking entries, write the queued ones, stop the writer and close the pool. A
    /// SQLite file's writer stops with the last store of the process that uses it.
    pub async fn close(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        let writer = self.inner.writer.lock().take();
        match writer {
            Some(WriterHandle::Task(w)) => {
                // Refuse new jobs; the writer writes the queued ones, then stops.
                let _ = self.inner.jobs.send(Msg::Stop).await;
                let _ = w.join().await;
            }
            // The last store of the process on this file stops its writer. (Two stores closed
            // at the same moment may each see the other: then the writer stops when the last
            // `AuditStore` is dropped, its queue closing — later, not never.)
            Some(WriterHandle::Thread(shared)) if Arc::strong_count(&shared) == 1 => {
                shared.close().await;
            }
            Some(WriterHandle::Thread(_)) | None => {}
        }
        self.inner.pool.close().await;
    }

    /// Wait until the tables hold every entry acknowledged so far. On a SQLite file the
    /// commit log is the commit point and the tables follow it within milliseconds; every
    /// read of the tables the store offers waits for this first, so that a reader sees what
    /// was acknowledged before it asked. Tools that read [`AuditStore::pool`] call it too.
    pub async fn settle(&self) -> Result<()> {
        let Some(p) = &self.inner.progress else {
            return Ok(());
        };
        let target = p.committed.load(std::sync::atomic::Ordering::Acquire);
        let mut indexed = p.indexed.subscribe();
        if *indexed.borrow() >= target {
            return Ok(());
        }
        p.poke();
        // And the writer, which may hold groups the indexer could not take (see
        // `thread::Writer::hand_over`).
        let (reply, _) = oneshot::channel();
        let _ = self.inner.jobs.try_send(Msg::Job(Job {
            entries: Vec::new(),
            reply,
        }));
        let reached = tokio::time::timeout(SETTLE_MAX, async move {
            // The indexer gone (the store closed): nothing more will come.
            indexed.wait_for(|i| *i >= target).await.map(|_| ()).ok()
        })
        .await;
        match reached {
            Ok(_) => Ok(()),
            Err(_) => Err(AuditStoreError::Unavailable(format!(
                "the audit log's tables are behind its commit log (entry {target} not in them \
                 after {} s; the server log says why)",
                SETTLE_MAX.as_secs()
            ))),
        }
    }

    /// Whether the log takes entries now: `Err` with the reason when every audited read is
    /// refused (the log is read-only here, closed, or its tables refuse writes), else a
    /// query on its database must answer.
    pub async fn health(&self) -> std::result::Result<(), String> {
        if let Some(why) = &self.inner.read_only {
            return Err(why.clone());
        }
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err("the audit log is closed".into());
        }
        if let Some(why) = self.inner.progress.as_ref().and_then(|p| p.refusal()) {
            return Err(format!("the audit log's tables refuse writes: {why}"));
        }
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Queue entries for the writer and wait until they are committed.
    async fn submit(&self, entries: Vec<Pending>) -> Result<Vec<Written>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(why) = &self.inner.read_only {
            return Err(AuditStoreError::Unavailable(why.clone()));
        }
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(AuditStoreError::Unavailable(
                "the audit log is closed".into(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Msg::Job(Job { entries, reply }))
            .await
            .map_err(|_| AuditStoreError::Unavailable("the audit log is closed".into()))?;
        match answer.await {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(AuditStoreError::Unavailable(e)),
            Err(_) => Err(AuditStoreError::Unavailable(
                "the audit writer stopped".into(),
            )),
        }
    }
}

#[async_trait]
impl AuditSink for AuditStore {
    async fn commit(&self, records: Vec<AccessRecord>) -> Result<Vec<String>, AuditError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let committed = if dagr_engine::pools::Pools::on_bulk_thread() {
            // A bulk stream's record: committed on the serving runtime (see `Inner::home`).
            let store = self.clone();
            self.inner
                .home
                .spawn(async move { store.commit_records(records).await })
                .await
                .unwrap_or_else(|e| {
                    Err(AuditStoreError::Unavailable(format!(
                        "the audit commit task failed: {e}"
                    )))
                })
        } else {
            self.commit_records(records).await
        };
        match committed {
            Ok(seqs) => Ok(seqs.into_iter().map(|s| s.to_string()).collect()),
            Err(e) => {
                tracing::error!(error = %e, "access records not committed; the data is withheld");
                Err(AuditError(e.to_string()))
            }
        }
    }
}

/// Expire entries older than `retention` now and then hourly, logging what was removed.
/// The task stops when the handle is dropped.
pub fn spawn_retention(store: AuditStore, retention: Duration) -> SpawnedTask<()> {
    SpawnedTask::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let keep = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            let cutoff = Time::now().0.saturating_sub(keep);
            match store.expire_before(cutoff).await {
                Ok(0) => tracing::debug!("audit retention: nothing to expire"),
                Ok(n) => tracing::info!(
                    removed = n,
                    before = %Time(cutoff),
                    "audit retention: expired entries"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "audit retention failed; retrying in an hour")
                }
            }
        }
    })
}

// ---- helpers --------------------------------------------------------------------------------

async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    let subst = |sql: &str| {
        let (seq, blob, without_rowid) = match backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY", "BLOB", " WITHOUT ROWID"),
            Backend::Postgres => ("BIGINT PRIMARY KEY", "BYTEA", ""),
        };
        sql.replace("{seq}", seq)
            .replace("{blob}", blob)
            .replace("{without_rowid}", without_rowid)
    };
    let set = crate::store::MigrationSet {
        table: "dagr_audit_migrations",
        lock: 7036138,
        what: "audit log",
        migrations: MIGRATIONS,
    };
    crate::store::apply_migrations(pool, backend, &set, subst).await?;
    Ok(())
}

fn invalid(field: &str, reason: impl Into<String>) -> AuditStoreError {
    AuditStoreError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Trimmed, 1–`max` characters, no control characters.
fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(v.to_owned())
}

/// Run CPU work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuditStoreError::Unavailable(format!("subject resolution failed: {e}")))?
}

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
//! - **Group commit, durability first.** One writer task takes queued entries, chains them
//!   and writes them, their index rows and the daily aggregates in one transaction, and
//!   answers the waiters only after the commit; when the transaction fails over one entry's
//!   data, the jobs are written again one per transaction. Subjects are resolved before, in
//!   the caller's task. With PostgreSQL the chain head is locked (`FOR UPDATE`) in the
//!   transaction, so that replicas sharing the database extend one chain.
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
use tokio::sync::{Notify, OnceCell, mpsc, oneshot};
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
    include_str!("../migrations/audit/0001_audit_log.sql"),
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
/// Subject resolution runs on the blocking pool above this many rows.
const BLOCKING_ROWS: u64 = 4096;
/// Longest subject value stored as it is, in bytes; longer ones (and ones holding NUL) are
/// stored as `sha256:<hex>` of the value.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Dictionary rows read per page by `verify`.
const DICT_PAGE: i64 = 10_000;

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

// ---- the body --------------------------------------------------------------------------------

/// The canonical body of an entry: serialised with `serde_json` in this field order, without
/// whitespace. The hash covers exactly this text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    v: u32,
    seq: i64,
    kind: String,
    time: i64,
    recorded: i64,
    role: Option<String>,
    organisation: Option<String>,
    system: Option<String>,
    user: Option<String>,
    token: Option<String>,
    purpose: Option<String>,
    channel: Option<String>,
    dataset: Option<String>,
    version: Option<i64>,
    attributes: Vec<String>,
    agreements: Vec<String>,
    request_id: Option<String>,
    query_sha256: Option<String>,
    rows: u64,
    subject_count: u64,
    subjects: Option<Vec<String>>,
    subjects_sha256: Option<String>,
    dict_id: Option<i64>,
    dict_hash: Option<String>,
    reporter: Option<String>,
    transaction_id: Option<String>,
    access_record: Option<i64>,
}

impl Body {
    fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `SHA-256(prev_hash || body)`, hex: the chain link.
fn chain_hash(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(body.as_bytes());
    to_hex(&h.finalize())
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    to_hex(&Sha256::digest(text.as_bytes()))
}

/// `SHA-256(prev_hash || id || ":" || code)`, hex: the subject dictionary's chain link.
fn dict_link(prev: &str, id: i64, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(id.to_string().as_bytes());
    h.update(b":");
    h.update(code.as_bytes());
    to_hex(&h.finalize())
}

/// How a subject value is stored: as it is, or — when longer than [`MAX_SUBJECT_BYTES`] or
/// holding NUL, which could fail an index or a text column — as `sha256:<hex>` of the value.
/// The citizen view looks subjects up the same way.
pub fn subject_code(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() > MAX_SUBJECT_BYTES || value.contains('\0') {
        std::borrow::Cow::Owned(format!("sha256:{}", sha256_hex(value)))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
    B(Bytes),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::I(v) | Val::OI(Some(v)) => write!(f, "{v}"),
            Val::S(s) | Val::OS(Some(s)) => write!(f, "{s:?}"),
            Val::OI(None) | Val::OS(None) => f.write_str("NULL"),
            Val::B(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

#[derive(Clone, Copy)]
enum Ty {
    I,
    OI,
    S,
    OS,
}

/// The columns of `audit_log` that repeat the body, in insert order.
const LOG_COLUMNS: [(&str, Ty); 21] = [
    ("seq", Ty::I),
    ("event_time", Ty::I),
    ("recorded_at", Ty::I),
    ("kind", Ty::S),
    ("organisation", Ty::OS),
    ("system_id", Ty::OS),
    ("token", Ty::OS),
    ("purpose", Ty::OS),
    ("channel", Ty::OS),
    ("dataset", Ty::OS),
    ("version", Ty::OI),
    ("attributes", Ty::S),
    ("agreements", Ty::S),
    ("request_id", Ty::OS),
    ("query_hash", Ty::OS),
    ("row_count", Ty::I),
    ("subject_count", Ty::I),
    ("bulk", Ty::I),
    ("reporter", Ty::OS),
    ("transaction_id", Ty::OS),
    ("access_ref", Ty::OI),
];

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The column values the body implies, in [`LOG_COLUMNS`] order.
fn body_columns(b: &Body) -> Vec<Val> {
    vec![
        Val::I(b.seq),
        Val::I(b.time),
        Val::I(b.recorded),
        Val::S(b.kind.clone()),
        Val::OS(b.organisation.clone()),
        Val::OS(b.system.clone()),
        Val::OS(b.token.clone()),
        Val::OS(b.purpose.clone()),
        Val::OS(b.channel.clone()),
        Val::OS(b.dataset.clone()),
        Val::OI(b.version),
        Val::S(json_list(&b.attributes)),
        Val::S(json_list(&b.agreements)),
        Val::OS(b.request_id.clone()),
        Val::OS(b.query_sha256.clone()),
        Val::I(b.rows as i64),
        Val::I(b.subject_count as i64),
        Val::I(i64::from(b.subjects_sha256.is_some())),
        Val::OS(b.reporter.clone()),
        Val::OS(b.transaction_id.clone()),
        Val::OI(b.access_record),
    ]
}

/// The stored column values, in [`LOG_COLUMNS`] order.
fn row_columns(r: &AnyRow) -> Result<Vec<Val>> {
    LOG_COLUMNS
        .iter()
        .map(|(name, ty)| {
            Ok(match ty {
                Ty::I => Val::I(r.try_get(*name)?),
                Ty::OI => Val::OI(r.try_get(*name)?),
                Ty::S => Val::S(r.try_get(*name)?),
                Ty::OS => Val::OS(r.try_get(*name)?),
            })
        })
        .collect()
}

// ---- SQL helpers -------------------------------------------------------------------------------

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

fn bind<'q>(q: Query<'q>, v: &'q Val) -> Query<'q> {
    match v {
        Val::I(x) => q.bind(*x),
        Val::OI(x) => q.bind(*x),
        Val::S(s) => q.bind(s.as_str()),
        Val::OS(s) => q.bind(s.as_deref()),
        Val::B(b) => q.bind(&b[..]),
    }
}

/// The placeholder of the `n`th (1-based) argument: `$n` for PostgreSQL; a positional `?`
/// for SQLite, because sqlx looks every `$n` up by name there, which costs time quadratic in
/// the number of parameters of a statement (a multi-row insert has thousands).
fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// Dynamically built SQL; arguments are added in the order of their placeholders.
struct Sql {
    backend: Backend,
    text: String,
    args: Vec<Val>,
}

impl Sql {
    fn new(backend: Backend, text: &str) -> Self {
        Sql {
            backend,
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Add an argument; returns its placeholder, to be appended next.
    fn arg(&mut self, v: Val) -> String {
        self.args.push(v);
        placeholder(self.backend, self.args.len())
    }

    /// Append `sql`, with each `?` replaced by the next argument's placeholder.
    fn push(&mut self, sql: &str, args: impl IntoIterator<Item = Val>) {
        let mut args = args.into_iter();
        for (i, part) in sql.split('?').enumerate() {
            if i > 0 {
                let p = self.arg(args.next().unwrap_or(Val::OS(None)));
                self.text.push_str(&p);
            }
            self.text.push_str(part);
        }
    }

    /// `(?, ?, ...)` of a list of values.
    fn list(&mut self, vals: impl IntoIterator<Item = Val>) -> String {
        let ps: Vec<String> = vals.into_iter().map(|v| self.arg(v)).collect();
        format!("({})", ps.join(", "))
    }

    fn query(&self) -> Query<'_> {
        self.args.iter().fold(sqlx::query(&self.text), bind)
    }
}

/// Multi-row `INSERT INTO {into} VALUES (...), ... {tail}`, in statements of a power-of-two
/// number of rows (so that a handful of statement texts are prepared and cached).
async fn insert_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    into: &str,
    tail: &str,
    rows: &[Vec<Val>],
) -> Result<(), sqlx::Error> {
    let Some(arity) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let cap = prev_power_of_two((MAX_PARAMS / arity.max(1)).clamp(1, MAX_ROWS_PER_STATEMENT));
    let mut rest = rows;
    while !rest.is_empty() {
        // Small batches (what group commit under point lookups gives) in one statement;
        // bigger ones in power-of-two chunks, so that few statement shapes are prepared.
        let n = if rest.len() <= EXACT_ROWS.min(cap) {
            rest.len()
        } else {
            prev_power_of_two(rest.len().min(cap))
        };
        let (chunk, tail_rows) = rest.split_at(n);
        let mut text = format!("INSERT INTO {into} VALUES ");
        let mut p = 0;
        for i in 0..n {
            if i > 0 {
                text.push_str(", ");
            }
            text.push('(');
            for j in 0..arity {
                if j > 0 {
                    text.push_str(", ");
                }
                p += 1;
                text.push_str(&placeholder(backend, p));
            }
            text.push(')');
        }
        text.push_str(tail);
        let q = chunk
            .iter()
            .flatten()
            .fold(sqlx::query(&text), |q, v| bind(q, v));
        q.execute(&mut *conn).await?;
        rest = tail_rows;
    }
    Ok(())
}

/// Row counts up to which a multi-row insert is one statement of exactly that many rows.
const EXACT_ROWS: usize = 32;

fn prev_power_of_two(n: usize) -> usize {
    if n <= 1 {
        1
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The chain head.
#[derive(Debug, Clone)]
struct Head {
    seq: i64,
    hash: String,
    recorded_at: i64,
    anchor: Anchor,
}

/// The retention anchor: the last entry removed by expiry (seq 0 and the genesis hash when
/// none was).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Anchor {
    seq: i64,
    hash: String,
    prev_hash: String,
    body: String,
}

fn head_row(r: &AnyRow) -> Result<Head> {
    Ok(Head {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        recorded_at: r.try_get("recorded_at")?,
        anchor: Anchor {
            seq: r.try_get("anchor_seq")?,
            hash: r.try_get("anchor_hash")?,
            prev_hash: r.try_get("anchor_prev_hash")?,
            body: r.try_get("anchor_body")?,
        },
    })
}

const HEAD_SELECT: &str = "SELECT seq, hash, recorded_at, anchor_seq, anchor_hash, \
     anchor_prev_hash, anchor_body FROM audit_head WHERE id = 1";

/// Read the head inside a write transaction, locking it: PostgreSQL `FOR UPDATE`; SQLite
/// takes the database's write lock with a no-op update first, so that the transaction
/// never has to upgrade a read snapshot (which could fail with `SQLITE_BUSY`).
async fn lock_head(conn: &mut AnyConnection, backend: Backend) -> Result<Head> {
    let row =
        match backend {
            // One statement (one hand-off to sqlx's SQLite thread): the no-op update takes the
            // write lock and returns the head.
            Backend::Sqlite => sqlx::query(
                "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, recorded_at, \
                 anchor_seq, anchor_hash, anchor_prev_hash, anchor_body",
            )
            .fetch_one(&mut *conn)
            .await?,
            Backend::Postgres => {
                sqlx::query(&format!("{HEAD_SELECT} FOR UPDATE"))
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
    head_row(&row)
}

async fn read_head(pool: &AnyPool) -> Result<Head> {
    head_row(&sqlx::query(HEAD_SELECT).fetch_one(pool).await?)
}

/// The subject dictionary's head: its last id and that row's hash.
async fn read_dict_head(conn: &mut AnyConnection) -> Result<(i64, String)> {
    let r = sqlx::query("SELECT last_id, hash FROM audit_dict_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok((r.try_get("last_id")?, r.try_get("hash")?))
}

/// Lock the subject dictionary's head in a write transaction (see [`lock_head`]).
async fn lock_dict_head(conn: &mut AnyConnection, backend: Backend) -> Result<(i64, String)> {
    match backend {
        Backend::Sqlite => {
            sqlx::query("UPDATE audit_dict_head SET last_id = last_id WHERE id = 1")
                .execute(&mut *conn)
                .await?;
            read_dict_head(conn).await
        }
        Backend::Postgres => {
            let r =
                sqlx::query("SELECT last_id, hash FROM audit_dict_head WHERE id = 1 FOR UPDATE")
                    .fetch_one(&mut *conn)
                    .await?;
            Ok((r.try_get("last_id")?, r.try_get("hash")?))
        }
    }
}

// ---- the writer ----------------------------------------------------------------------------

/// An entry ready to be chained: its body without `seq` and `recorded`, and its subject
/// containers (bulk records).
#[derive(Debug)]
struct Pending {
    body: Body,
    containers: Vec<(i64, Bytes)>,
}

impl Pending {
    /// `(reporter, transaction id)` of a usage event: its idempotency key.
    fn dedupe_key(&self) -> Option<(String, String)> {
        Some((
            self.body.reporter.clone()?,
            self.body.transaction_id.clone()?,
        ))
    }
}

/// What the writer did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Recorded(i64),
    Duplicate(i64),
}

impl Written {
    fn seq(self) -> i64 {
        match self {
            Written::Recorded(s) | Written::Duplicate(s) => s,
        }
    }
}

type Reply = oneshot::Sender<std::result::Result<Vec<Written>, String>>;

#[derive(Debug)]
struct Job {
    entries: Vec<Pending>,
    reply: Reply,
}

/// The writer task: takes queued jobs (up to `max_batch` entries), writes them in one
/// transaction, then answers every waiter. When the transaction fails because of what an
/// entry holds (a database error: a constraint, a value the database refuses, a trigger), the
/// batch's jobs are written again one job per transaction, so that only the job at fault gets
/// the error; any other failure (the database unreachable) fails every job of the batch.
/// Nothing of a failed transaction stays.
async fn run_writer(
    pool: AnyPool,
    backend: Backend,
    max_batch: usize,
    mut rx: mpsc::Receiver<Job>,
    stop: Arc<Notify>,
) {
    let mut closing = false;
    loop {
        let first = tokio::select! {
            biased;
            job = rx.recv() => match job {
                Some(j) => j,
                None => break,
            },
            () = stop.notified(), if !closing => {
                // Refuse new jobs; write the queued ones, then stop.
                rx.close();
                closing = true;
                continue;
            }
        };
        let mut n = first.entries.len();
        let mut jobs = vec![first];
        while n < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.entries.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let (entries, replies): (Vec<Vec<Pending>>, Vec<Reply>) =
            jobs.into_iter().map(|j| (j.entries, j.reply)).unzip();
        let result = write_batch(&pool, backend, &entries).await;
        match result {
            Ok(written) => {
                for (reply, w) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(w));
                }
            }
            Err(e) if replies.len() > 1 && entry_specific(backend, &e) => {
                tracing::warn!(
                    error = %e,
                    jobs = replies.len(),
                    entries = n,
                    "audit log batch failed; writing its jobs one by one"
                );
                retry_one_by_one(&pool, backend, entries, replies).await;
            }
            Err(e) => {
                tracing::error!(error = %e, entries = n, "audit log write failed; the batch's data is withheld");
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}

/// Write the jobs of a failed batch one job per transaction. After a failure that is not
/// the job's own (see [`entry_specific`]), the remaining jobs get that error untried.
async fn retry_one_by_one(
    pool: &AnyPool,
    backend: Backend,
    entries: Vec<Vec<Pending>>,
    replies: Vec<Reply>,
) {
    let mut down: Option<String> = None;
    for (job, reply) in entries.into_iter().zip(replies) {
        if let Some(msg) = &down {
            let _ = reply.send(Err(msg.clone()));
            continue;
        }
        let job = [job];
        match write_batch(pool, backend, &job).await {
            Ok(mut written) => {
                let _ = reply.send(Ok(written.pop().unwrap_or_default()));
            }
            Err(e) => {
                tracing::error!(error = %e, entries = job[0].len(), "audit log write failed; the job's data is withheld");
                if !entry_specific(backend, &e) {
                    down = Some(e.to_string());
                }
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// Whether a failed write may be the fault of one entry rather than of the database: an
/// error the database raised about the statement's data — PostgreSQL SQLSTATE classes 22
/// (data exception), 23 (integrity constraint), 54 (program limit, e.g. an index row too
/// big) and P0 (raised by a trigger); SQLite primary result codes 18 (too big), 19
/// (constraint, also a trigger's `RAISE`), 20 (type mismatch) and 25 (range). Not
/// connection, lock or resource errors, after which one-by-one retries would only wait.
fn entry_specific(backend: Backend, e: &AuditStoreError) -> bool {
    let AuditStoreError::Database(sqlx::Error::Database(db)) = e else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    match backend {
        // The extended result code, in decimal.
        Backend::Sqlite => code
            .parse::<i64>()
            .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25)),
        Backend::Postgres => ["22", "23", "54", "P0"].iter().any(|c| code.starts_with(c)),
    }
}

/// Per-day aggregate key: day, dataset, organisation, system, attribute, kind.
type DailyKey = (i64, String, String, String, String, &'static str);

const DAY_MS: i64 = 86_400_000;

async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    batches: &[Vec<Pending>],
) -> Result<Vec<Vec<Written>>> {
    let mut tx = pool.begin().await?;
    let head = lock_head(&mut tx, backend).await?;

    // Usage events already reported (idempotency), read after the head lock so that a
    // replica's concurrent report of the same transaction is seen.
    let mut known: HashMap<(String, String), i64> = HashMap::new();
    let mut by_reporter: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in batches.iter().flatten() {
        if let Some((r, t)) = p.dedupe_key() {
            by_reporter.entry(r).or_default().insert(t);
        }
    }
    for (reporter, ids) in by_reporter {
        let ids: Vec<String> = ids.into_iter().collect();
        for chunk in ids.chunks(MAX_ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                backend,
                "SELECT seq, transaction_id FROM audit_log WHERE reporter = ",
            );
            let r = sql.arg(Val::S(reporter.clone()));
            sql.text.push_str(&r);
            let list = sql.list(chunk.iter().map(|t| Val::S(t.clone())));
            sql.text.push_str(&format!(" AND transaction_id IN {list}"));
            for row in sql.query().fetch_all(&mut *tx).await? {
                known.insert(
                    (reporter.clone(), row.try_get("transaction_id")?),
                    row.try_get("seq")?,
                );
            }
        }
    }

    // Bulk records name the subject dictionary's head: it covers every id they use (ids are
    // committed before the records that use them are queued), and binds the dictionary
    // into the chain.
    let dict = if batches
        .iter()
        .flatten()
        .any(|p| p.body.subjects_sha256.is_some())
    {
        Some(read_dict_head(&mut tx).await?)
    } else {
        None
    };

    let now = Time::now().0;
    let recorded = now.max(head.recorded_at);
    let mut seq = head.seq;
    let mut prev = head.hash;
    let mut log_rows = Vec::new();
    let mut subject_rows = Vec::new();
    let mut bulk_rows = Vec::new();
    let mut daily: BTreeMap<DailyKey, (i64, i64)> = BTreeMap::new();
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut written = Vec::with_capacity(batch.len());
        for p in batch {
            let key = p.dedupe_key();
            if let Some(s) = key.as_ref().and_then(|k| known.get(k)) {
                written.push(Written::Duplicate(*s));
                continue;
            }
            seq += 1;
            let mut body = p.body.clone();
            body.seq = seq;
            body.recorded = recorded;
            if body.subjects_sha256.is_some()
                && let Some((id, hash)) = &dict
            {
                body.dict_id = Some(*id);
                body.dict_hash = Some(hash.clone());
            }
            let text = body.canonical();
            let hash = chain_hash(&prev, &text);
            let mut row = body_columns(&body);
            row.push(Val::S(prev));
            row.push(Val::S(hash.clone()));
            row.push(Val::S(text));
            log_rows.push(row);
            for s in body.subjects.iter().flatten() {
                subject_rows.push(vec![Val::S(s.clone()), Val::I(seq)]);
            }
            for (hi, bits) in &p.containers {
                bulk_rows.push(vec![Val::I(*hi), Val::I(seq), Val::B(bits.clone())]);
            }
            let kind = if p.body.kind == "usage" {
                "usage"
            } else {
                "access"
            };
            let day = p.body.time.div_euclid(DAY_MS) * DAY_MS;
            let attrs: Vec<String> = if p.body.attributes.is_empty() {
                vec![String::new()]
            } else {
                p.body.attributes.clone()
            };
            for a in attrs {
                let k = (
                    day,
                    p.body.dataset.clone().unwrap_or_default(),
                    p.body.organisation.clone().unwrap_or_default(),
                    p.body.system.clone().unwrap_or_default(),
                    a,
                    kind,
                );
                let e = daily.entry(k).or_default();
                e.0 += 1;
                e.1 += p.body.rows as i64;
            }
            if let Some(k) = key {
                known.insert(k, seq);
            }
            prev = hash;
            written.push(Written::Recorded(seq));
        }
        out.push(written);
    }
    if seq == head.seq {
        // Only duplicates: nothing to write.
        return Ok(out);
    }
    let columns: Vec<&str> = LOG_COLUMNS.iter().map(|(n, _)| *n).collect();
    insert_rows(
        &mut tx,
        backend,
        &format!("audit_log ({}, prev_hash, hash, body)", columns.join(", ")),
        "",
        &log_rows,
    )
    .await?;
    insert_rows(
        &mut tx,
        backend,
        "audit_subjects (subject, seq)",
        "",
        &subject_rows,
    )
    .await?;
    insert_rows(
        &mut tx,
        backend,
        "audit_bulk (hi, seq, bits)",
        "",
        &bulk_rows,
    )
    .await?;
    let daily_rows: Vec<Vec<Val>> = daily
        .into_iter()
        .map(|((day, d, o, s, a, k), (n, rows))| {
            vec![
                Val::I(day),
                Val::S(d),
                Val::S(o),
                Val::S(s),
                Val::S(a),
                Val::S(k.to_owned()),
                Val::I(n),
                Val::I(rows),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        backend,
        "audit_daily (day, dataset, organisation, system_id, attribute, kind, record_count, row_total)",
        " ON CONFLICT (day, dataset, organisation, system_id, attribute, kind) DO UPDATE SET \
         record_count = audit_daily.record_count + excluded.record_count, \
         row_total = audit_daily.row_total + excluded.row_total",
        &daily_rows,
    )
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, recorded_at = $3 WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .bind(recorded)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(out)
}

/// A stored dictionary id as a 32-bit id.
fn dict_id(id: i64) -> Result<u32> {
    u32::try_from(id)
        .ok()
        .filter(|&i| i != NO_SUBJECT)
        .ok_or_else(|| {
            AuditStoreError::Corrupt(format!("subject dictionary id {id} does not fit 32 bits"))
        })
}

/// The dictionary ids of the codes that have one.
async fn select_ids<'a>(
    conn: &mut AnyConnection,
    backend: Backend,
    codes: &[&'a str],
) -> Result<HashMap<&'a str, u32>> {
    let mut out = HashMap::with_capacity(codes.len());
    let by_text: HashMap<&str, &'a str> = codes.iter().map(|c| (*c, *c)).collect();
    for chunk in codes.chunks(MAX_ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            backend,
            "SELECT id, code FROM audit_subject_ids WHERE code IN ",
        );
        let list = sql.list(chunk.iter().map(|c| Val::S((*c).to_owned())));
        sql.text.push_str(&list);
        for row in sql.query().fetch_all(&mut *conn).await? {
            let code: String = row.try_get("code")?;
            let id = dict_id(row.try_get("id")?)?;
            if let Some(c) = by_text.get(code.as_str()) {
                out.insert(*c, id);
            }
        }
    }
    Ok(out)
}

// ---- the store -------------------------------------------------------------------------------

type ArrayKey = (String, u64, usize);
/// A row → subject-id array, built once by whoever asks first.
type ArrayCell = Arc<OnceCell<Arc<Vec<u32>>>>;

struct Inner {
    pool: AnyPool,
    backend: Backend,
    config: AuditConfig,
    jobs: mpsc::Sender<Job>,
    stop: Arc<Notify>,
    writer: Mutex<Option<SpawnedTask<()>>>,
    /// Personal code → dictionary id.
    dict: RwLock<HashMap<Box<str>, u32>>,
    /// (dataset, version, column) → row → dictionary id ([`NO_SUBJECT`] for none).
    arrays: Mutex<HashMap<ArrayKey, ArrayCell>>,
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
#[derive(Debug, Default)]
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
        let (jobs, rx) = mpsc::channel(QUEUE);
        let stop = Arc::new(Notify::new());
        let writer = SpawnedTask::spawn(run_writer(
            pool.clone(),
            backend,
            config.max_batch,
            rx,
            Arc::clone(&stop),
        ));
        Ok(AuditStore {
            inner: Arc::new(Inner {
                pool,
                backend,
                config,
                jobs,
                stop,
                writer: Mutex::new(Some(writer)),
                dict: RwLock::new(HashMap::new()),
                arrays: Mutex::new(HashMap::new()),
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

    /// Stop taking entries, write the queued ones, stop the writer and close the pool.
    pub async fn close(&self) {
        self.inner.stop.notify_one();
        let writer = self.inner.writer.lock().take();
        if let Some(w) = writer {
            let _ = w.join().await;
        }
        self.inner.pool.close().await;
    }

    /// Queue entries for the writer and wait until they are committed.
    async fn submit(&self, entries: Vec<Pending>) -> Result<Vec<Written>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job { entries, reply })
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

    /// Commit access records; returns their sequence numbers, in order.
    pub async fn commit_records(&self, records: Vec<AccessRecord>) -> Result<Vec<i64>> {
        let mut entries = Vec::with_capacity(records.len());
        for r in records {
            entries.push(self.access_entry(r).await?);
        }
        Ok(self
            .submit(entries)
            .await?
            .into_iter()
            .map(Written::seq)
            .collect())
    }

    async fn access_entry(&self, r: AccessRecord) -> Result<Pending> {
        let resolved = self.resolve(&r.subjects).await?;
        let ctx = &r.context;
        let p = &ctx.principal;
        Ok(Pending {
            body: Body {
                v: BODY_VERSION,
                seq: 0,
                kind: EntryKind::Access.as_str().into(),
                time: r.time.timestamp_millis(),
                recorded: 0,
                role: Some(p.role.as_str().into()),
                organisation: p.organisation.clone(),
                system: p.system.clone(),
                user: p.user.clone(),
                token: p.token_id.clone(),
                purpose: ctx.purpose.clone(),
                channel: Some(ctx.channel.as_str().into()),
                dataset: Some(r.dataset),
                version: Some(i64::try_from(r.version).unwrap_or(i64::MAX)),
                attributes: r.attributes,
                agreements: r.agreements,
                request_id: Some(ctx.request_id.clone()),
                query_sha256: Some(sha256_hex(&ctx.query)),
                rows: r.subjects.row_count(),
                subject_count: resolved.count,
                subjects: resolved.listed,
                subjects_sha256: resolved.sha256,
                dict_id: None,
                dict_hash: None,
                reporter: None,
                transaction_id: None,
                access_record: None,
            },
            containers: resolved.containers,
        })
    }

    // ---- subjects --------------------------------------------------------------------------

    /// The subjects of a read: listed when at most `list_limit`, else a bitmap of dictionary
    /// ids split into containers.
    async fn resolve(&self, s: &SubjectRows) -> Result<Resolved> {
        if s.columns.is_empty() || s.rows.is_empty() {
            return Ok(Resolved {
                listed: Some(Vec::new()),
                ..Resolved::default()
            });
        }
        let limit = self.inner.config.list_limit;
        let rows = s.row_count();
        // Up to a sixteenth of the snapshot (at least 16 × list_limit or 4096 rows), the
        // distinct codes of the rows read are cheaper than mapping the whole snapshot once.
        let medium = (s.snapshot.num_rows() as u64 / 16)
            .max((limit as u64).saturating_mul(16))
            .max(4096);
        if rows <= medium {
            let values = values_of(s).await?;
            if values.len() <= limit {
                return Ok(listed(values));
            }
            let ids = self.ids_of(values.iter().map(String::as_str)).await?;
            let bitmap: RoaringBitmap = ids.into_iter().collect();
            return bulk(bitmap).await;
        }
        // A big read: map rows to ids through the snapshot's cached arrays.
        let mut arrays = Vec::with_capacity(s.columns.len());
        for &c in &s.columns {
            arrays.push(self.column_ids(s, c).await?);
        }
        let read = s.rows.clone();
        let bitmap = blocking(move || {
            let mut ids = Vec::with_capacity(read.len() as usize);
            for r in &read {
                for a in &arrays {
                    if let Some(&id) = a.get(r as usize)
                        && id != NO_SUBJECT
                    {
                        ids.push(id);
                    }
                }
            }
            ids.sort_unstable();
            ids.dedup();
            Ok(RoaringBitmap::from_sorted_iter(ids).unwrap_or_default())
        })
        .await?;
        if bitmap.len() <= limit as u64 {
            return Ok(listed(values_of(s).await?));
        }
        bulk(bitmap).await
    }

    /// Dictionary ids of codes (assigned when new), in the order given.
    async fn ids_of<'a>(&self, codes: impl Iterator<Item = &'a str>) -> Result<Vec<u32>> {
        let codes: Vec<&str> = codes.collect();
        let mut out = vec![NO_SUBJECT; codes.len()];
        let mut missing: Vec<(usize, &str)> = Vec::new();
        {
            let dict = self.inner.dict.read();
            for (i, c) in codes.iter().enumerate() {
                match dict.get(*c) {
                    Some(&id) => out[i] = id,
                    None => missing.push((i, c)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let distinct: BTreeSet<&str> = missing.iter().map(|(_, c)| *c).collect();
        let assigned = self.assign(distinct.into_iter().collect()).await?;
        for (i, c) in missing {
            out[i] = *assigned
                .get(c)
                .ok_or_else(|| AuditStoreError::Corrupt(format!("no dictionary id for `{c}`")))?;
        }
        Ok(out)
    }

    /// Look up, or assign, dictionary ids of codes not in the cache. Existing codes are read
    /// first; missing ones get the next ids in a transaction that holds the dictionary's head
    /// (so that replicas agree on every id and extend one dictionary chain): it reads them
    /// again, appends the ones still missing with their chain hashes and moves the head.
    async fn assign<'a>(&self, codes: Vec<&'a str>) -> Result<HashMap<&'a str, u32>> {
        let backend = self.inner.backend;
        let mut out: HashMap<&str, u32> = HashMap::with_capacity(codes.len());
        for chunk in codes.chunks(DICT_CHUNK) {
            let mut found = {
                let mut conn = self.inner.pool.acquire().await?;
                select_ids(&mut conn, backend, chunk).await?
            };
            let missing: Vec<&str> = chunk
                .iter()
                .copied()
                .filter(|c| !found.contains_key(*c))
                .collect();
            if !missing.is_empty() {
                let mut tx = self.inner.pool.begin().await?;
                let (mut last, mut hash) = lock_dict_head(&mut tx, backend).await?;
                // Another replica may have assigned some meanwhile.
                let again = select_ids(&mut tx, backend, &missing).await?;
                let mut rows: Vec<Vec<Val>> = Vec::with_capacity(missing.len());
                for c in missing.iter().copied().filter(|c| !again.contains_key(*c)) {
                    last += 1;
                    let id = dict_id(last)?;
                    hash = dict_link(&hash, last, c);
                    rows.push(vec![
                        Val::I(last),
                        Val::S(c.to_owned()),
                        Val::S(hash.clone()),
                    ]);
                    found.insert(c, id);
                }
                found.extend(again);
                if !rows.is_empty() {
                    insert_rows(
                        &mut tx,
                        backend,
                        "audit_subject_ids (id, code, hash)",
                        "",
                        &rows,
                    )
                    .await?;
                    sqlx::query("UPDATE audit_dict_head SET last_id = $1, hash = $2 WHERE id = 1")
                        .bind(last)
                        .bind(&hash)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
            }
            {
                let mut dict = self.inner.dict.write();
                if dict.len() + found.len() > DICT_CACHE_MAX {
                    dict.clear();
                }
                for (c, id) in &found {
                    dict.insert((*c).into(), *id);
                }
            }
            for c in chunk {
                if let Some(&id) = found.get(*c) {
                    out.insert(c, id);
                }
            }
        }
        Ok(out)
    }

    /// The dictionary id of one code, if it has one (never assigns).
    async fn subject_id(&self, code: &str) -> Result<Option<u32>> {
        if let Some(&id) = self.inner.dict.read().get(code) {
            return Ok(Some(id));
        }
        let mut conn = self.inner.pool.acquire().await?;
        Ok(select_ids(&mut conn, self.inner.backend, &[code])
            .await?
            .get(code)
            .copied())
    }

    /// The row → subject-id array of one subject column of a snapshot, built once per
    /// (dataset, version, column).
    async fn column_ids(&self, s: &SubjectRows, column: usize) -> Result<Arc<Vec<u32>>> {
        let key: ArrayKey = (
            s.snapshot.dataset().to_owned(),
            s.snapshot.version(),
            column,
        );
        let cell = {
            let mut arrays = self.inner.arrays.lock();
            // Older versions of the same column are no longer needed.
            arrays.retain(|(d, v, c), _| !(d == &key.0 && *c == key.2 && *v != key.1));
            if arrays.len() >= ARRAYS_MAX && !arrays.contains_key(&key) {
                arrays.clear();
            }
            Arc::clone(arrays.entry(key).or_default())
        };
        let array = cell
            .get_or_try_init(|| self.build_column_ids(s, column))
            .await?;
        Ok(Arc::clone(array))
    }

    async fn build_column_ids(&self, s: &SubjectRows, column: usize) -> Result<Arc<Vec<u32>>> {
        let one = SubjectRows {
            snapshot: Arc::clone(&s.snapshot),
            rows: RoaringBitmap::new(),
            columns: vec![column],
        };
        let started = std::time::Instant::now();
        // Rows → local ordinals of distinct codes, off the I/O runtime.
        let (local, distinct) = blocking(move || {
            let mut local = vec![NO_SUBJECT; one.snapshot.num_rows()];
            let mut seen: HashMap<String, u32> = HashMap::new();
            let mut distinct: Vec<String> = Vec::new();
            one.for_each(|row, value| {
                let code = subject_code(value);
                let i = match seen.get(code.as_ref()) {
                    Some(&i) => i,
                    None => {
                        let i = distinct.len() as u32;
                        seen.insert(code.clone().into_owned(), i);
                        distinct.push(code.into_owned());
                        i
                    }
                };
                let row = row as usize;
                if row >= local.len() {
                    local.resize(row + 1, NO_SUBJECT);
                }
                local[row] = i;
            })?;
            Ok((local, distinct))
        })
        .await?;
        let ids = self.ids_of(distinct.iter().map(String::as_str)).await?;
        let array = blocking(move || {
            Ok(local
                .into_iter()
                .map(|l| {
                    if l == NO_SUBJECT {
                        NO_SUBJECT
                    } else {
                        ids[l as usize]
                    }
                })
                .collect::<Vec<u32>>())
        })
        .await?;
        tracing::info!(
            dataset = s.snapshot.dataset(),
            version = s.snapshot.version(),
            column,
            subjects = distinct.len(),
            ms = started.elapsed().as_millis() as u64,
            "audit: subject ids of a snapshot column mapped"
        );
        Ok(Arc::new(array))
    }

    // ---- usage events --------------------------------------------------------------------

    /// Record usage events reported by a provider or consumer system. Idempotent by
    /// (reporting system, transaction id): a repeat returns the existing entry as
    /// `duplicate` and writes nothing. The API checks datasets and attributes against the
    /// catalog; this checks everything else.
    pub async fn record_usage(
        &self,
        reporter: &Principal,
        events: Vec<UsageEventIn>,
    ) -> Result<Vec<UsageOutcome>> {
        let (Some(system), true) = (
            reporter.system.clone(),
            matches!(reporter.role, Role::Consumer | Role::Owner),
        ) else {
            return Err(AuditStoreError::Forbidden(
                "usage events are reported by provider and consumer systems, with their \
                 system token"
                    .into(),
            ));
        };
        if events.is_empty() || events.len() > MAX_USAGE_EVENTS {
            return Err(invalid(
                "events",
                format!("send 1–{MAX_USAGE_EVENTS} events; got {}", events.len()),
            ));
        }
        let now = Time::now().0;
        let mut refs: BTreeSet<i64> = BTreeSet::new();
        let mut checked = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            let f = |name: &str| format!("events[{i}].{name}");
            let subject = text(&f("subject"), &e.subject, 64)?;
            let purpose = text(&f("purpose"), &e.purpose, MAX_TEXT)?;
            let transaction_id = text(&f("transaction_id"), &e.transaction_id, 200)?;
            if e.time.0 > now + MAX_FUTURE_MS {
                return Err(invalid(
                    &f("time"),
                    format!(
                        "{} is in the future; report a transaction when it happens",
                        e.time
                    ),
                ));
            }
            let dataset = e
                .dataset
                .as_deref()
                .map(|d| text(&f("dataset"), d, 200))
                .transpose()?;
            if dataset.is_none() && !e.attributes.is_empty() {
                return Err(invalid(
                    &f("attributes"),
                    "attributes need the `dataset` they belong to",
                ));
            }
            let mut attributes = Vec::with_capacity(e.attributes.len());
            for (j, a) in e.attributes.iter().enumerate() {
                attributes.push(text(&format!("events[{i}].attributes[{j}]"), a, 200)?);
            }
            let access_record = e
                .access_record
                .as_deref()
                .map(|r| {
                    r.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| {
                            invalid(
                                &f("access_record"),
                                format!("`{r}` is not an access record id"),
                            )
                        })
                })
                .transpose()?;
            if let Some(r) = access_record {
                refs.insert(r);
            }
            checked.push(Checked {
                i,
                subject,
                purpose,
                transaction_id,
                time: e.time.0,
                dataset,
                attributes,
                access_record,
            });
        }
        // Access records named: they must exist and be of the reporter's organisation.
        let mut records: HashMap<i64, (Option<String>, String, String)> = HashMap::new();
        let refs: Vec<i64> = refs.into_iter().collect();
        for chunk in refs.chunks(MAX_ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                self.inner.backend,
                "SELECT seq, organisation, kind, agreements FROM audit_log WHERE seq IN ",
            );
            let list = sql.list(chunk.iter().map(|s| Val::I(*s)));
            sql.text.push_str(&list);
            for row in sql.query().fetch_all(&self.inner.pool).await? {
                records.insert(
                    row.try_get("seq")?,
                    (
                        row.try_get("organisation")?,
                        row.try_get("kind")?,
                        row.try_get("agreements")?,
                    ),
                );
            }
        }
        let mut entries = Vec::with_capacity(checked.len());
        let mut ids = Vec::with_capacity(checked.len());
        for Checked {
            i,
            subject,
            purpose,
            transaction_id,
            time,
            dataset,
            attributes,
            access_record,
        } in checked
        {
            let mut agreements = Vec::new();
            if let Some(r) = access_record {
                let field = format!("events[{i}].access_record");
                match records.get(&r) {
                    Some((org, kind, agr))
                        if kind == "access"
                            && org.as_deref() == reporter.organisation.as_deref() =>
                    {
                        agreements = serde_json::from_str(agr).unwrap_or_default();
                    }
                    Some(_) => {
                        return Err(invalid(
                            &field,
                            format!("access record {r} is not one of your organisation's"),
                        ));
                    }
                    None => {
                        return Err(invalid(
                            &field,
                            format!("there is no access record {r} (or it has expired)"),
                        ));
                    }
                }
            }
            ids.push(transaction_id.clone());
            entries.push(Pending {
                body: Body {
                    v: BODY_VERSION,
                    seq: 0,
                    kind: EntryKind::Usage.as_str().into(),
                    time,
                    recorded: 0,
                    role: Some(reporter.role.as_str().into()),
                    organisation: reporter.organisation.clone(),
                    system: Some(system.clone()),
                    user: reporter.user.clone(),
                    token: reporter.token_id.clone(),
                    purpose: Some(purpose),
                    channel: None,
                    dataset,
                    version: None,
                    attributes,
                    agreements,
                    request_id: None,
                    query_sha256: None,
                    rows: 1,
                    subject_count: 1,
                    subjects: Some(vec![subject]),
                    subjects_sha256: None,
                    dict_id: None,
                    dict_hash: None,
                    reporter: Some(system.clone()),
                    transaction_id: Some(transaction_id),
                    access_record,
                },
                containers: Vec::new(),
            });
        }
        let written = self.submit(entries).await?;
        Ok(ids
            .into_iter()
            .zip(written)
            .map(|(transaction_id, w)| UsageOutcome {
                transaction_id,
                id: w.seq().to_string(),
                status: match w {
                    Written::Recorded(_) => UsageStatus::Recorded,
                    Written::Duplicate(_) => UsageStatus::Duplicate,
                },
            })
            .collect())
    }

    // ---- views -----------------------------------------------------------------------------

    /// Every access record and usage event concerning `subject`, newest first — in recording
    /// order (`seq`), not by the time of the read or use: at most `limit` entries with seq
    /// below `before`, and where the next page starts. Listed subjects come from their index;
    /// bulk records from the one container of the subject's dictionary id per record, of
    /// which at most [`AuditConfig::bulk_scan_limit`] are examined: when that bound cuts the
    /// scan short, the page holds what was found above the point reached (maybe fewer than
    /// `limit`, maybe none) and `next` continues from there.
    pub async fn subject_usage(
        &self,
        subject: &str,
        filter: &UsageFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<UsagePage> {
        let subject = subject_code(subject);
        let limit = limit.clamp(1, 10_000);
        let mut sql = Sql::new(
            self.inner.backend,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_subjects s JOIN audit_log l ON l.seq = s.seq \
             WHERE s.subject = "
            ),
        );
        let p = sql.arg(Val::S(subject.clone().into_owned()));
        sql.text.push_str(&p);
        if let Some(b) = before {
            sql.push(" AND s.seq < ?", [Val::I(b)]);
        }
        push_filters(&mut sql, filter);
        sql.push(" ORDER BY s.seq DESC LIMIT ?", [Val::I(limit as i64)]);
        let mut entries: Vec<UsageEntry> = sql
            .query()
            .fetch_all(&self.inner.pool)
            .await?
            .iter()
            .map(entry_row)
            .collect::<Result<_>>()?;
        // Bulk records: only those newer than the oldest listed entry kept can make the page.
        let floor = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.seq))
            .flatten();
        // The lowest seq down to which the bulk records were examined, when the scan bound
        // stopped the scan before their end.
        let mut cut: Option<i64> = None;
        if let Some(id) = self.subject_id(&subject).await? {
            let mut budget = self.inner.config.bulk_scan_limit.max(1);
            let mut found = 0usize;
            let mut cursor = before;
            while found < limit {
                let want = budget.min(PAGE as usize);
                // The containers only, by the (hi, seq) key: exactly `want` rows examined.
                let mut sql = Sql::new(
                    self.inner.backend,
                    "SELECT b.seq, b.bits FROM audit_bulk b WHERE b.hi = ",
                );
                let p = sql.arg(Val::I(i64::from(id >> 16)));
                sql.text.push_str(&p);
                if let Some(c) = cursor {
                    sql.push(" AND b.seq < ?", [Val::I(c)]);
                }
                if let Some(f) = floor {
                    sql.push(" AND b.seq > ?", [Val::I(f)]);
                }
                sql.push(" ORDER BY b.seq DESC LIMIT ?", [Val::I(want as i64)]);
                let rows = sql.query().fetch_all(&self.inner.pool).await?;
                let mut matched: Vec<i64> = Vec::new();
                for r in &rows {
                    let seq: i64 = r.try_get("seq")?;
                    let bits: Vec<u8> = r.try_get("bits")?;
                    let c = RoaringBitmap::deserialize_from(&bits[..]).map_err(|e| {
                        AuditStoreError::Corrupt(format!("subject container of entry {seq}: {e}"))
                    })?;
                    if c.contains(id) {
                        matched.push(seq);
                    }
                    cursor = Some(seq);
                }
                budget -= rows.len();
                // The entries matched, with the filters applied.
                for chunk in matched.chunks(MAX_ROWS_PER_STATEMENT) {
                    let mut sql = Sql::new(
                        self.inner.backend,
                        &format!("SELECT {ENTRY_COLUMNS} FROM audit_log l WHERE l.seq IN "),
                    );
                    let list = sql.list(chunk.iter().map(|s| Val::I(*s)));
                    sql.text.push_str(&list);
                    push_filters(&mut sql, filter);
                    for r in sql.query().fetch_all(&self.inner.pool).await? {
                        entries.push(entry_row(&r)?);
                        found += 1;
                    }
                }
                if rows.len() < want {
                    break;
                }
                if budget == 0 {
                    if found < limit {
                        cut = cursor;
                    }
                    break;
                }
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
        entries.dedup_by_key(|e| e.seq);
        if let Some(c) = cut {
            // Below the point reached, bulk records were not examined: listed entries there
            // wait for the next page.
            entries.retain(|e| e.seq >= c);
        }
        entries.truncate(limit);
        let next = if entries.len() == limit {
            entries.last().map(|e| e.seq)
        } else {
            cut
        };
        Ok(UsagePage { entries, next })
    }

    /// Usage per day, dataset, organisation, system, attribute and kind in `[from, to)`
    /// (days that start in it), of the `datasets` given (`None`: all, for admins).
    pub async fn summary(
        &self,
        datasets: Option<&[String]>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SummaryRow>> {
        let mut sql = Sql::new(
            self.inner.backend,
            "SELECT day, dataset, organisation, system_id, attribute, kind, record_count, \
             row_total FROM audit_daily WHERE day >= ",
        );
        let p = sql.arg(Val::I(from_ms.div_euclid(DAY_MS) * DAY_MS));
        sql.text.push_str(&p);
        sql.push(" AND day < ?", [Val::I(to_ms)]);
        if let Some(d) = datasets {
            if d.is_empty() {
                return Ok(Vec::new());
            }
            let list = sql.list(d.iter().map(|x| Val::S(x.clone())));
            sql.text.push_str(&format!(" AND dataset IN {list}"));
        }
        sql.text
            .push_str(" ORDER BY day, dataset, organisation, system_id, attribute, kind");
        let none = |s: String| (!s.is_empty()).then_some(s);
        sql.query()
            .fetch_all(&self.inner.pool)
            .await?
            .iter()
            .map(|r| {
                let day: i64 = r.try_get("day")?;
                let kind: String = r.try_get("kind")?;
                Ok(SummaryRow {
                    day: Time(day).to_datetime().format("%Y-%m-%d").to_string(),
                    dataset: none(r.try_get("dataset")?),
                    organisation: none(r.try_get("organisation")?),
                    system: none(r.try_get("system_id")?),
                    attribute: none(r.try_get("attribute")?),
                    kind: EntryKind::parse(&kind)
                        .ok_or_else(|| AuditStoreError::Corrupt(format!("kind `{kind}`")))?,
                    records: r.try_get("record_count")?,
                    rows: r.try_get("row_total")?,
                })
            })
            .collect()
    }

    /// The entries of `[from, to)` (by the time of the read or use) of the `datasets` given
    /// (`None`: all, for admins) as record batches of [`export_schema`], read in pages
    /// (keyset by time and seq; dataset after dataset).
    pub fn export(
        &self,
        datasets: Option<&[String]>,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Stream<Item = Result<RecordBatch>> + Send + 'static {
        struct State {
            pool: AnyPool,
            backend: Backend,
            scopes: VecDeque<Option<String>>,
            cursor: Option<(i64, i64)>,
        }
        let scopes: VecDeque<Option<String>> = match datasets {
            None => VecDeque::from([None]),
            Some(d) => d.iter().cloned().map(Some).collect(),
        };
        let state = State {
            pool: self.inner.pool.clone(),
            backend: self.inner.backend,
            scopes,
            cursor: None,
        };
        futures::stream::try_unfold(state, move |mut st| async move {
            loop {
                let Some(scope) = st.scopes.front().cloned() else {
                    return Ok(None);
                };
                let mut sql = Sql::new(
                    st.backend,
                    &format!("SELECT {EXPORT_COLUMNS} FROM audit_log WHERE event_time >= "),
                );
                let p = sql.arg(Val::I(from_ms));
                sql.text.push_str(&p);
                sql.push(" AND event_time < ?", [Val::I(to_ms)]);
                if let Some(d) = &scope {
                    sql.push(" AND dataset = ?", [Val::S(d.clone())]);
                }
                if let Some((t, s)) = st.cursor {
                    sql.push(" AND (event_time, seq) > (?, ?)", [Val::I(t), Val::I(s)]);
                }
                sql.push(" ORDER BY event_time, seq LIMIT ?", [Val::I(PAGE * 4)]);
                let rows = sql.query().fetch_all(&st.pool).await?;
                let Some(last) = rows.last() else {
                    st.scopes.pop_front();
                    st.cursor = None;
                    continue;
                };
                st.cursor = Some((last.try_get("event_time")?, last.try_get("seq")?));
                let batch = export_batch(&rows)?;
                return Ok(Some((batch, st)));
            }
        })
    }

    // ---- retention -------------------------------------------------------------------------

    /// Delete the entries recorded before `cutoff_ms` (Unix ms): the oldest prefix of the
    /// chain, whole entries with their index rows, in chunks of one transaction each. Each
    /// chunk moves the anchor — the seq, hash, prev_hash and body of the last entry removed —
    /// from which verification starts; the daily aggregates and the subject dictionary stay.
    /// Returns how many entries were removed.
    pub async fn expire_before(&self, cutoff_ms: i64) -> Result<u64> {
        let mut removed = 0u64;
        loop {
            let mut tx = self.inner.pool.begin().await?;
            let head = lock_head(&mut tx, self.inner.backend).await?;
            let rows = sqlx::query(
                "SELECT seq, recorded_at FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(head.anchor.seq)
            .bind(EXPIRE_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let mut last: Option<i64> = None;
            for r in &rows {
                let recorded: i64 = r.try_get("recorded_at")?;
                if recorded >= cutoff_ms {
                    break;
                }
                last = Some(r.try_get("seq")?);
            }
            let Some(seq) = last else {
                return Ok(removed);
            };
            let anchor = sqlx::query("SELECT hash, prev_hash, body FROM audit_log WHERE seq = $1")
                .bind(seq)
                .fetch_one(&mut *tx)
                .await?;
            let hash: String = anchor.try_get("hash")?;
            let prev_hash: String = anchor.try_get("prev_hash")?;
            let body: String = anchor.try_get("body")?;
            for table in ["audit_subjects", "audit_bulk"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE seq <= $1"))
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
            }
            let n = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
                .bind(seq)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2, anchor_prev_hash = $3, \
                 anchor_body = $4 WHERE id = 1",
            )
            .bind(seq)
            .bind(&hash)
            .bind(&prev_hash)
            .bind(&body)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            removed += n;
        }
    }

    // ---- verification --------------------------------------------------------------------

    /// Walk the chain in seq order, in pages (calling `progress` with the number of entries
    /// checked after each), from the retention anchor: check the anchor, recompute every
    /// hash, check the columns and the subject index rows and containers against the body,
    /// detect gaps, and check the stored head; then walk the subject dictionary's chain and
    /// check it against the dictionary heads that bulk entries name. Names the first broken
    /// entry (or dictionary id).
    ///
    /// `retention` is the retention period the log is kept with (`None`: entries are never
    /// expired). The anchor left by expiry must be the last entry removed — its hash
    /// recomputed from its `prev_hash` and body, the first remaining entry linked to it — and
    /// must have been recorded before `now - retention`; with `None` any anchor is a removal.
    /// Give the period the server expires with, or a shorter one.
    pub async fn verify(
        &self,
        retention: Option<Duration>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<VerifyReport> {
        let pool = &self.inner.pool;
        let head = read_head(pool).await?;
        let mut anchor = head.anchor.clone();
        let mut report = VerifyReport {
            records: 0,
            first_seq: None,
            last_seq: None,
            broken: None,
            head_seq: head.seq,
            head_hash: head.hash.clone(),
            anchor_seq: anchor.seq,
            dictionary_ids: 0,
            dict_id: 0,
            dict_hash: GENESIS_HASH.into(),
        };
        if let Some(b) = check_anchor(&anchor, retention) {
            report.broken = Some(b);
            return Ok(report);
        }
        let mut expect_seq = anchor.seq + 1;
        let mut expect_prev = anchor.hash.clone();
        let mut cursor = i64::MIN;
        // Dictionary heads named by bulk entries: dictionary id → (hash, first entry naming it).
        let mut claims: BTreeMap<i64, (String, i64)> = BTreeMap::new();
        let broken = |seq: i64, reason: String| {
            Some(Broken {
                seq,
                reason,
                dictionary: false,
            })
        };
        let columns: Vec<&str> = LOG_COLUMNS.iter().map(|(n, _)| *n).collect();
        let select = format!(
            "SELECT {}, prev_hash, hash, body FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            columns.join(", ")
        );
        let mut last_hash: Option<String> = None;
        'walk: loop {
            let rows = sqlx::query(&select)
                .bind(cursor)
                .bind(PAGE)
                .fetch_all(pool)
                .await?;
            let Some(last) = rows.last() else {
                break;
            };
            let hi: i64 = last.try_get("seq")?;
            // The listed subjects of the page, and which entries have bulk containers.
            let mut listed: HashMap<i64, Vec<String>> = HashMap::new();
            for r in
                sqlx::query("SELECT seq, subject FROM audit_subjects WHERE seq > $1 AND seq <= $2")
                    .bind(cursor)
                    .bind(hi)
                    .fetch_all(pool)
                    .await?
            {
                listed
                    .entry(r.try_get("seq")?)
                    .or_default()
                    .push(r.try_get("subject")?);
            }
            let with_bulk: BTreeSet<i64> = sqlx::query_scalar::<_, i64>(
                "SELECT DISTINCT seq FROM audit_bulk WHERE seq > $1 AND seq <= $2",
            )
            .bind(cursor)
            .bind(hi)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
            for r in &rows {
                let seq: i64 = r.try_get("seq")?;
                cursor = seq;
                if seq < expect_seq {
                    report.broken = broken(
                        seq,
                        format!(
                            "inserted: entry {seq} precedes the start of the chain (entry \
                             {expect_seq}, after the retention anchor {})",
                            anchor.seq
                        ),
                    );
                    break 'walk;
                }
                let (blamed, reason) = if seq > expect_seq {
                    (
                        expect_seq,
                        if seq == expect_seq + 1 {
                            format!("removed: entry {expect_seq} is missing")
                        } else {
                            format!("removed: entries {expect_seq}..{} are missing", seq - 1)
                        },
                    )
                } else {
                    let listed = listed.remove(&seq).unwrap_or_default();
                    let has_bulk = with_bulk.contains(&seq);
                    match check_entry(self, r, &expect_prev, listed, has_bulk, &mut claims).await? {
                        None => {
                            let hash: String = r.try_get("hash")?;
                            expect_prev = hash.clone();
                            last_hash = Some(hash);
                            expect_seq = seq + 1;
                            report.records += 1;
                            report.first_seq.get_or_insert(seq);
                            report.last_seq = Some(seq);
                            continue;
                        }
                        Some(reason) => (seq, reason),
                    }
                };
                let now = read_head(pool).await?;
                if now.anchor.seq > anchor.seq && now.anchor.seq >= blamed {
                    // Expiry removed it meanwhile: go on from the new anchor.
                    if let Some(b) = check_anchor(&now.anchor, retention) {
                        report.broken = Some(b);
                        break 'walk;
                    }
                    anchor = now.anchor;
                    report.anchor_seq = anchor.seq;
                    expect_seq = anchor.seq + 1;
                    expect_prev = anchor.hash.clone();
                    cursor = anchor.seq;
                    continue 'walk;
                }
                report.broken = if blamed > now.seq {
                    broken(
                        blamed,
                        format!(
                            "inserted: entry {blamed} lies beyond the chain head (entry {})",
                            now.seq
                        ),
                    )
                } else {
                    broken(blamed, reason)
                };
                break 'walk;
            }
            progress(report.records);
        }
        if report.broken.is_none() {
            report.broken = self
                .check_end(
                    &mut report,
                    &anchor,
                    retention,
                    expect_seq - 1,
                    last_hash,
                    cursor,
                )
                .await?;
        }
        if report.broken.is_none() {
            report.broken = self.check_dictionary(&mut report, &claims).await?;
        }
        Ok(report)
    }

    /// The end of the walk: the last entry must be the head, and no index row may name an
    /// entry outside the chain.
    async fn check_end(
        &self,
        report: &mut VerifyReport,
        anchor: &Anchor,
        retention: Option<Duration>,
        last: i64,
        last_hash: Option<String>,
        cursor: i64,
    ) -> Result<Option<Broken>> {
        let pool = &self.inner.pool;
        let head = read_head(pool).await?;
        report.head_seq = head.seq;
        report.head_hash = head.hash.clone();
        report.anchor_seq = head.anchor.seq;
        if head.anchor != *anchor
            && let Some(b) = check_anchor(&head.anchor, retention)
        {
            return Ok(Some(b));
        }
        let beyond = |seq: i64| Broken {
            seq,
            reason: format!(
                "inserted: entry {seq} lies beyond the chain head (entry {})",
                head.seq
            ),
            dictionary: false,
        };
        // Entries committed after the walk's last page are fine as long as the head covers
        // them (they are verified next time).
        let after: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE seq > $1")
                .bind(cursor)
                .fetch_one(pool)
                .await?;
        if let Some(extra) = after
            && extra > head.seq
        {
            return Ok(Some(beyond(extra)));
        }
        let last = last.max(head.anchor.seq);
        if last > head.seq {
            return Ok(Some(beyond(head.seq + 1)));
        }
        if after.is_none() && last < head.seq {
            return Ok(Some(Broken {
                seq: last + 1,
                reason: if last + 1 == head.seq {
                    format!("removed: entry {} (the chain head) is missing", head.seq)
                } else {
                    format!(
                        "removed: entries {}..{} (up to the chain head) are missing",
                        last + 1,
                        head.seq
                    )
                },
                dictionary: false,
            }));
        }
        if last == head.seq {
            let want = last_hash.as_deref().unwrap_or(&head.anchor.hash);
            if want != head.hash {
                return Ok(Some(Broken {
                    seq: last,
                    reason: "modified: the chain head's hash is not the last entry's".into(),
                    dictionary: false,
                }));
            }
        }
        for table in ["audit_subjects", "audit_bulk"] {
            let below: Option<i64> =
                sqlx::query_scalar(&format!("SELECT seq FROM {table} WHERE seq <= $1 LIMIT 1"))
                    .bind(head.anchor.seq)
                    .fetch_optional(pool)
                    .await?;
            let above: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT seq FROM {table} WHERE seq > $1 ORDER BY seq LIMIT 1"
            ))
            .bind(head.seq)
            .fetch_optional(pool)
            .await?;
            if let Some(s) = below.or(above) {
                return Ok(Some(Broken {
                    seq: s,
                    reason: format!(
                        "inserted: `{table}` rows name entry {s}, which is not in the chain"
                    ),
                    dictionary: false,
                }));
            }
        }
        Ok(None)
    }

    /// Walk the subject dictionary: ids dense from 1, every row's hash the link of the one
    /// before it, its id and its code, the last row the dictionary head, no row beyond it;
    /// and every dictionary head a bulk entry names (`claims`) a point of this chain.
    async fn check_dictionary(
        &self,
        report: &mut VerifyReport,
        claims: &BTreeMap<i64, (String, i64)>,
    ) -> Result<Option<Broken>> {
        let mut conn = self.inner.pool.acquire().await?;
        let (last_id, head_hash) = read_dict_head(&mut conn).await?;
        report.dict_id = last_id;
        report.dict_hash = head_hash.clone();
        let broken = |id: i64, reason: String| -> Result<Option<Broken>> {
            Ok(Some(Broken {
                seq: id,
                reason,
                dictionary: true,
            }))
        };
        if let Some((&id, (_, seq))) = claims.range(last_id + 1..).next() {
            return broken(
                last_id + 1,
                format!(
                    "removed: the subject dictionary ends at id {last_id}, but entry {seq} \
                     recorded it up to id {id}"
                ),
            );
        }
        let before: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM audit_subject_ids WHERE id < 1")
                .fetch_one(&mut *conn)
                .await?;
        if let Some(id) = before {
            return broken(
                id,
                format!("inserted: subject dictionary id {id} precedes its first id, 1"),
            );
        }
        let mut expect = 1i64;
        let mut prev = GENESIS_HASH.to_owned();
        loop {
            let rows = sqlx::query(
                "SELECT id, code, hash FROM audit_subject_ids WHERE id >= $1 AND id <= $2 \
                 ORDER BY id LIMIT $3",
            )
            .bind(expect)
            .bind(last_id)
            .bind(DICT_PAGE)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                let code: String = r.try_get("code")?;
                let hash: String = r.try_get("hash")?;
                if id != expect {
                    return broken(
                        expect,
                        if id == expect + 1 {
                            format!("removed: subject dictionary id {expect} is missing")
                        } else {
                            format!(
                                "removed: subject dictionary ids {expect}..{} are missing",
                                id - 1
                            )
                        },
                    );
                }
                if dict_link(&prev, id, &code) != hash {
                    return broken(
                        id,
                        format!(
                            "modified: subject dictionary id {id}: its hash is not \
                             SHA-256(previous hash || id || ':' || code) — its code was \
                             changed, or the row before it changed and re-hashed"
                        ),
                    );
                }
                if let Some((claimed, seq)) = claims.get(&id)
                    && *claimed != hash
                {
                    return broken(
                        id,
                        format!(
                            "modified: the subject dictionary was rewritten up to id {id}: \
                             entry {seq} recorded another hash for it"
                        ),
                    );
                }
                prev = hash;
                expect = id + 1;
                report.dictionary_ids += 1;
            }
        }
        if expect <= last_id {
            return broken(
                expect,
                if expect == last_id {
                    format!(
                        "removed: subject dictionary id {expect} (the dictionary head) is missing"
                    )
                } else {
                    format!(
                        "removed: subject dictionary ids {expect}..{last_id} (up to the \
                         dictionary head) are missing"
                    )
                },
            );
        }
        if prev != head_hash {
            return broken(
                last_id,
                "modified: the subject dictionary head's hash is not its last row's".into(),
            );
        }
        // Rows assigned after the head was read are fine as long as the head now covers them.
        let after: Option<i64> =
            sqlx::query_scalar("SELECT MIN(id) FROM audit_subject_ids WHERE id > $1")
                .bind(last_id)
                .fetch_one(&mut *conn)
                .await?;
        if let Some(extra) = after {
            let (now, _) = read_dict_head(&mut conn).await?;
            if extra > now {
                return broken(
                    extra,
                    format!(
                        "inserted: subject dictionary id {extra} lies beyond the dictionary \
                         head (id {now})"
                    ),
                );
            }
        }
        Ok(None)
    }

    /// The head of the chain — the last entry's sequence number and hash, and when it was
    /// recorded — and whether the writer still takes entries: for health pages.
    pub async fn chain_head(&self) -> Result<ChainHead> {
        let head = read_head(&self.inner.pool).await?;
        Ok(ChainHead {
            seq: head.seq,
            hash: head.hash,
            recorded_at: (head.recorded_at > 0).then_some(Time(head.recorded_at)),
            writing: !self.inner.jobs.is_closed() && self.inner.writer.lock().is_some(),
        })
    }
}

/// Check the retention anchor against the retention period; `Some` when it does not show
/// that the entries before the chain's start expired. A forged anchor would need a body
/// whose hash is the one the first remaining entry links to (a SHA-256 preimage).
fn check_anchor(anchor: &Anchor, retention: Option<Duration>) -> Option<Broken> {
    let broken = |reason: String| {
        Some(Broken {
            seq: 1,
            reason,
            dictionary: false,
        })
    };
    if anchor.seq == 0 {
        if anchor.hash != GENESIS_HASH || !anchor.prev_hash.is_empty() || !anchor.body.is_empty() {
            return broken(
                "modified: the retention anchor names no entry but is not the genesis anchor"
                    .into(),
            );
        }
        return None;
    }
    let k = anchor.seq;
    let missing = if k == 1 {
        "entry 1 is missing".to_owned()
    } else {
        format!("entries 1..{k} are missing")
    };
    let Some(retention) = retention else {
        return broken(format!(
            "removed: {missing}: entries were removed although retention is off"
        ));
    };
    if chain_hash(&anchor.prev_hash, &anchor.body) != anchor.hash {
        return broken(format!(
            "removed: {missing}, and the retention anchor is forged: its hash is not \
             SHA-256(prev_hash || body) of the entry it keeps"
        ));
    }
    let body = match serde_json::from_str::<Body>(&anchor.body) {
        Ok(b) if b.canonical() == anchor.body && b.seq == k => b,
        _ => {
            return broken(format!(
                "removed: {missing}, and the retention anchor is forged: its body is not \
                 entry {k}"
            ));
        }
    };
    let keep = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = Time::now().0.saturating_sub(keep);
    if body.recorded >= cutoff {
        return broken(format!(
            "removed: {missing}, but entry {k} was recorded at {}, within the retention \
             period (entries recorded before {} may expire)",
            Time(body.recorded),
            Time(cutoff)
        ));
    }
    None
}

/// Check one entry against its link, its hash, its body and its subject index; `Some(why)`
/// when it is broken. Bulk entries add the dictionary head they name to `claims`.
async fn check_entry(
    store: &AuditStore,
    r: &AnyRow,
    expect_prev: &str,
    mut listed: Vec<String>,
    has_bulk: bool,
    claims: &mut BTreeMap<i64, (String, i64)>,
) -> Result<Option<String>> {
    let seq: i64 = r.try_get("seq")?;
    let prev: String = r.try_get("prev_hash")?;
    let hash: String = r.try_get("hash")?;
    let text: String = r.try_get("body")?;
    if chain_hash(&prev, &text) != hash {
        return Ok(Some(
            "modified: the entry's hash does not match its body".into(),
        ));
    }
    if prev != expect_prev {
        return Ok(Some(format!(
            "inserted or re-hashed: its prev_hash is not the hash of entry {} (this entry was \
             inserted, or the one before it was modified and re-hashed)",
            seq - 1
        )));
    }
    let body: Body = match serde_json::from_str(&text) {
        Ok(b) => b,
        Err(e) => return Ok(Some(format!("modified: the body is not an entry: {e}"))),
    };
    if body.canonical() != text {
        return Ok(Some("modified: the body is not in canonical form".into()));
    }
    if body.seq != seq {
        return Ok(Some(format!(
            "inserted: the body is entry {}, stored as entry {seq}",
            body.seq
        )));
    }
    let stored = row_columns(r)?;
    for ((name, _), (want, got)) in LOG_COLUMNS
        .iter()
        .zip(body_columns(&body).iter().zip(&stored))
    {
        if want != got {
            return Ok(Some(format!(
                "modified: column `{name}` is {got}, the body says {want}"
            )));
        }
    }
    listed.sort();
    match (&body.subjects, &body.subjects_sha256) {
        (Some(subjects), None) => {
            if body.dict_id.is_some() || body.dict_hash.is_some() {
                return Ok(Some(
                    "modified: an entry that lists its subjects names a subject dictionary head"
                        .into(),
                ));
            }
            let mut want = subjects.clone();
            want.sort();
            if want != listed {
                return Ok(Some(format!(
                    "modified: the subject index has {} rows for it, the body lists {} subjects",
                    listed.len(),
                    want.len()
                )));
            }
            if body.subject_count != want.len() as u64 {
                return Ok(Some(
                    "modified: subject_count does not match the subjects listed".into(),
                ));
            }
            if has_bulk {
                return Ok(Some(
                    "inserted: bulk subject containers for an entry that lists its subjects".into(),
                ));
            }
        }
        (None, Some(sha)) => {
            if !listed.is_empty() {
                return Ok(Some("inserted: subject index rows for a bulk entry".into()));
            }
            let (Some(dict_id), Some(dict_hash)) = (body.dict_id, &body.dict_hash) else {
                return Ok(Some(
                    "modified: a bulk entry that names no subject dictionary head".into(),
                ));
            };
            match claims.get(&dict_id) {
                Some((h, first)) if h != dict_hash => {
                    return Ok(Some(format!(
                        "modified: it records another hash for subject dictionary id \
                         {dict_id} than entry {first}"
                    )));
                }
                Some(_) => {}
                None => {
                    claims.insert(dict_id, (dict_hash.clone(), seq));
                }
            }
            let rows = sqlx::query("SELECT hi, bits FROM audit_bulk WHERE seq = $1 ORDER BY hi")
                .bind(seq)
                .fetch_all(&store.inner.pool)
                .await?;
            let mut h = Sha256::new();
            let mut count = 0u64;
            for c in &rows {
                let hi: i64 = c.try_get("hi")?;
                let bits: Vec<u8> = c.try_get("bits")?;
                let Ok(bitmap) = RoaringBitmap::deserialize_from(&bits[..]) else {
                    return Ok(Some(format!(
                        "modified: subject container {hi} is not a bitmap"
                    )));
                };
                let mut bytes = Vec::with_capacity(bitmap.len() as usize * 4);
                for id in &bitmap {
                    if i64::from(id >> 16) != hi {
                        return Ok(Some(format!(
                            "modified: subject container {hi} holds an id of another container"
                        )));
                    }
                    bytes.extend_from_slice(&id.to_le_bytes());
                }
                h.update(&bytes);
                count += bitmap.len();
                if let Some(max) = bitmap.max()
                    && i64::from(max) > dict_id
                {
                    return Ok(Some(format!(
                        "modified: subject container {hi} holds dictionary id {max}, beyond \
                         the dictionary head (id {dict_id}) the entry was written with"
                    )));
                }
            }
            if count != body.subject_count || &to_hex(&h.finalize()) != sha {
                return Ok(Some(
                    "modified: the subject containers do not match the body's subjects_sha256"
                        .into(),
                ));
            }
        }
        _ => {
            return Ok(Some(
                "modified: the body names its subjects neither by list nor by bitmap".into(),
            ));
        }
    }
    Ok(None)
}

#[async_trait]
impl AuditSink for AuditStore {
    async fn commit(&self, records: Vec<AccessRecord>) -> Result<Vec<String>, AuditError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        match self.commit_records(records).await {
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

/// The citizen view's filters on the log (alias `l`).
fn push_filters(sql: &mut Sql, filter: &UsageFilter) {
    if let Some(f) = filter.from {
        sql.push(" AND l.event_time >= ?", [Val::I(f)]);
    }
    if let Some(t) = filter.to {
        sql.push(" AND l.event_time < ?", [Val::I(t)]);
    }
    if let Some(o) = &filter.organisation {
        sql.push(" AND l.organisation = ?", [Val::S(o.clone())]);
    }
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

/// The distinct subjects of a read as stored ([`subject_code`]), sorted; on the blocking
/// pool when the read is big.
async fn values_of(s: &SubjectRows) -> Result<Vec<String>> {
    fn codes(s: &SubjectRows) -> Result<Vec<String>> {
        let set: BTreeSet<String> = s
            .values()?
            .into_iter()
            .map(|v| {
                let hashed = match subject_code(&v) {
                    std::borrow::Cow::Owned(c) => Some(c),
                    std::borrow::Cow::Borrowed(_) => None,
                };
                hashed.unwrap_or(v)
            })
            .collect();
        Ok(set.into_iter().collect())
    }
    if s.row_count() <= BLOCKING_ROWS {
        return codes(s);
    }
    let s = s.clone();
    blocking(move || codes(&s)).await
}

fn listed(values: Vec<String>) -> Resolved {
    Resolved {
        count: values.len() as u64,
        listed: Some(values),
        ..Resolved::default()
    }
}

/// Split a bitmap into its containers and hash its ids (sorted, `u32` little-endian).
async fn bulk(bitmap: RoaringBitmap) -> Result<Resolved> {
    let small = bitmap.len() <= BLOCKING_ROWS;
    let work = move || {
        let mut h = Sha256::new();
        let mut containers = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut flush = |ids: &mut Vec<u32>, h: &mut Sha256| -> Result<()> {
            let Some(&first) = ids.first() else {
                return Ok(());
            };
            let mut bytes = Vec::with_capacity(ids.len() * 4);
            for id in ids.iter() {
                bytes.extend_from_slice(&id.to_le_bytes());
            }
            h.update(&bytes);
            let c = RoaringBitmap::from_sorted_iter(ids.drain(..))
                .map_err(|e| AuditStoreError::Corrupt(e.to_string()))?;
            let mut bits = Vec::with_capacity(c.serialized_size());
            c.serialize_into(&mut bits)
                .map_err(|e| AuditStoreError::Corrupt(e.to_string()))?;
            containers.push((i64::from(first >> 16), Bytes::from(bits)));
            Ok(())
        };
        for id in &bitmap {
            if ids.last().is_some_and(|&l| l >> 16 != id >> 16) {
                flush(&mut ids, &mut h)?;
            }
            ids.push(id);
        }
        flush(&mut ids, &mut h)?;
        Ok(Resolved {
            listed: None,
            count: bitmap.len(),
            sha256: Some(to_hex(&h.finalize())),
            containers,
        })
    };
    if small { work() } else { blocking(work).await }
}

const ENTRY_COLUMNS: &str = "l.seq, l.event_time, l.kind, l.organisation, l.system_id, \
     l.purpose, l.channel, l.dataset, l.version, l.attributes, l.agreements, \
     l.transaction_id, l.access_ref";

fn entry_row(r: &AnyRow) -> Result<UsageEntry> {
    let seq: i64 = r.try_get("seq")?;
    let kind: String = r.try_get("kind")?;
    let list = |col: &str| -> Result<Vec<String>> {
        let t: String = r.try_get(col)?;
        serde_json::from_str(&t)
            .map_err(|e| AuditStoreError::Corrupt(format!("{col} of entry {seq}: {e}")))
    };
    Ok(UsageEntry {
        id: seq.to_string(),
        kind: EntryKind::parse(&kind)
            .ok_or_else(|| AuditStoreError::Corrupt(format!("kind `{kind}` of entry {seq}")))?,
        time: Time(r.try_get("event_time")?),
        organisation: r.try_get("organisation")?,
        organisation_name: None,
        system: r.try_get("system_id")?,
        system_name: None,
        purpose: r.try_get("purpose")?,
        channel: r.try_get("channel")?,
        dataset: r.try_get("dataset")?,
        version: r.try_get("version")?,
        attributes: list("attributes")?,
        agreements: list("agreements")?,
        transaction_id: r.try_get("transaction_id")?,
        access_record: r
            .try_get::<Option<i64>, _>("access_ref")?
            .map(|s| s.to_string()),
        seq,
    })
}

const EXPORT_COLUMNS: &str = "seq, event_time, recorded_at, kind, organisation, system_id, \
     token, purpose, channel, dataset, version, attributes, agreements, request_id, \
     query_hash, row_count, subject_count, reporter, transaction_id, access_ref, hash, body";

/// The schema of [`AuditStore::export`]: one row per entry; lists are JSON text.
pub fn export_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let i = |n: &str, null: bool| Field::new(n, DataType::Int64, null);
    Arc::new(Schema::new(vec![
        i("id", false),
        Field::new("time", ts(), false),
        Field::new("recorded_at", ts(), false),
        Field::new("kind", DataType::Utf8, false),
        s("organisation"),
        s("system"),
        s("token"),
        s("purpose"),
        s("channel"),
        s("dataset"),
        i("version", true),
        Field::new("attributes", DataType::Utf8, false),
        Field::new("agreements", DataType::Utf8, false),
        s("request_id"),
        s("query_sha256"),
        i("rows", false),
        i("subject_count", false),
        s("subjects"),
        s("subjects_sha256"),
        s("reporter"),
        s("transaction_id"),
        i("access_record", true),
        Field::new("hash", DataType::Utf8, false),
    ]))
}

fn export_batch(rows: &[AnyRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut id = Int64Builder::with_capacity(n);
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut recorded = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut text: Vec<StringBuilder> = (0..15).map(|_| StringBuilder::new()).collect();
    let mut version = Int64Builder::with_capacity(n);
    let mut row_count = Int64Builder::with_capacity(n);
    let mut subject_count = Int64Builder::with_capacity(n);
    let mut access = Int64Builder::with_capacity(n);
    for r in rows {
        let seq: i64 = r.try_get("seq")?;
        let body: String = r.try_get("body")?;
        let body: Body = serde_json::from_str(&body)
            .map_err(|e| AuditStoreError::Corrupt(format!("body of entry {seq}: {e}")))?;
        id.append_value(seq);
        time.append_value(r.try_get("event_time")?);
        recorded.append_value(r.try_get("recorded_at")?);
        version.append_option(r.try_get::<Option<i64>, _>("version")?);
        row_count.append_value(r.try_get("row_count")?);
        subject_count.append_value(r.try_get("subject_count")?);
        access.append_option(r.try_get::<Option<i64>, _>("access_ref")?);
        let values: [Option<String>; 15] = [
            Some(r.try_get("kind")?),
            r.try_get("organisation")?,
            r.try_get("system_id")?,
            r.try_get("token")?,
            r.try_get("purpose")?,
            r.try_get("channel")?,
            r.try_get("dataset")?,
            Some(r.try_get("attributes")?),
            Some(r.try_get("agreements")?),
            r.try_get("request_id")?,
            r.try_get("query_hash")?,
            body.subjects.as_deref().map(json_list),
            body.subjects_sha256,
            r.try_get("reporter")?,
            r.try_get("transaction_id")?,
        ];
        for (b, v) in text.iter_mut().zip(values) {
            b.append_option(v);
        }
    }
    let mut hash = StringBuilder::new();
    for r in rows {
        hash.append_value(r.try_get::<String, _>("hash")?);
    }
    let mut t: VecDeque<ArrayRef> = text
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    let mut next = || {
        t.pop_front()
            .unwrap_or_else(|| Arc::new(StringBuilder::new().finish()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(time.finish()),
        Arc::new(recorded.finish()),
        next(), // kind
        next(), // organisation
        next(), // system
        next(), // token
        next(), // purpose
        next(), // channel
        next(), // dataset
        Arc::new(version.finish()),
        next(), // attributes
        next(), // agreements
        next(), // request_id
        next(), // query_sha256
        Arc::new(row_count.finish()),
        Arc::new(subject_count.finish()),
        next(), // subjects
        next(), // subjects_sha256
        next(), // reporter
        next(), // transaction_id
        Arc::new(access.finish()),
        Arc::new(hash.finish()),
    ];
    RecordBatch::try_new(export_schema(), columns)
        .map_err(|e| AuditStoreError::Corrupt(format!("export batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two() {
        assert_eq!(prev_power_of_two(0), 1);
        assert_eq!(prev_power_of_two(1), 1);
        assert_eq!(prev_power_of_two(3), 2);
        assert_eq!(prev_power_of_two(256), 256);
        assert_eq!(prev_power_of_two(1000), 512);
    }

    #[test]
    fn body_is_canonical_and_round_trips() {
        let b = Body {
            v: 1,
            seq: 7,
            kind: "access".into(),
            time: 1,
            recorded: 2,
            role: Some("consumer".into()),
            organisation: Some("BANK".into()),
            system: Some("3".into()),
            user: None,
            token: Some("9".into()),
            purpose: Some("credit \"check\"".into()),
            channel: Some("rest".into()),
            dataset: Some("people".into()),
            version: Some(1),
            attributes: vec!["given_name".into()],
            agreements: vec!["4".into()],
            request_id: Some("r".into()),
            query_sha256: Some(sha256_hex("q")),
            rows: 1,
            subject_count: 1,
            subjects: Some(vec!["P00001".into()]),
            subjects_sha256: None,
            dict_id: None,
            dict_hash: None,
            reporter: None,
            transaction_id: None,
            access_record: None,
        };
        let text = b.canonical();
        assert!(
            text.starts_with(r#"{"v":1,"seq":7,"kind":"access""#),
            "{text}"
        );
        let back: Body = serde_json::from_str(&text).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.canonical(), text);
        assert_eq!(chain_hash(GENESIS_HASH, &text).len(), 64);
        assert_eq!(body_columns(&b).len(), LOG_COLUMNS.len());
    }

    #[test]
    fn long_or_nul_subjects_are_stored_as_their_hash() {
        assert_eq!(subject_code("P00001"), "P00001");
        let exact = "a".repeat(MAX_SUBJECT_BYTES);
        assert_eq!(subject_code(&exact), exact);
        let long = "a".repeat(MAX_SUBJECT_BYTES + 1);
        assert_eq!(subject_code(&long), format!("sha256:{}", sha256_hex(&long)));
        assert_eq!(
            subject_code("a\0b"),
            format!("sha256:{}", sha256_hex("a\0b"))
        );
    }

    #[test]
    fn dictionary_links_separate_the_id_from_the_code() {
        assert_ne!(
            dict_link(GENESIS_HASH, 1, "23"),
            dict_link(GENESIS_HASH, 12, "3")
        );
        assert_eq!(
            dict_link(GENESIS_HASH, 1, "P1"),
            sha256_hex(&format!("{GENESIS_HASH}1:P1"))
        );
    }

    fn usage(tx: &str) -> Pending {
        Pending {
            body: Body {
                v: BODY_VERSION,
                seq: 0,
                kind: "usage".into(),
                time: 1,
                recorded: 0,
                role: Some("consumer".into()),
                organisation: Some("BANK".into()),
                system: Some("3".into()),
                user: None,
                token: None,
                purpose: Some("loan".into()),
                channel: None,
                dataset: None,
                version: None,
                attributes: Vec::new(),
                agreements: Vec::new(),
                request_id: None,
                query_sha256: None,
                rows: 1,
                subject_count: 1,
                subjects: Some(vec!["P00001".into()]),
                subjects_sha256: None,
                dict_id: None,
                dict_hash: None,
                reporter: Some("3".into()),
                transaction_id: Some(tx.into()),
                access_record: None,
            },
            containers: Vec::new(),
        }
    }

    /// Jobs queued before the writer starts are one batch: the job holding an entry the
    /// database refuses fails alone, the others are written, in order, in one chain.
    #[tokio::test]
    async fn a_poisoned_job_fails_alone_and_the_rest_of_its_batch_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = AuditStore::open(&url, AuditConfig::default())
            .await
            .unwrap();
        let pool = store.pool().clone();
        sqlx::query(
            "CREATE TRIGGER poison BEFORE INSERT ON audit_log \
             WHEN NEW.transaction_id = 'POISON' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        let (jobs, rx) = mpsc::channel(16);
        let mut answers = Vec::new();
        for txs in [
            &["A"][..],
            &["B", "POISON"][..],
            &["C"][..],
            &["A", "D"][..],
        ] {
            let (reply, answer) = oneshot::channel();
            let entries = txs.iter().map(|t| usage(t)).collect();
            jobs.send(Job { entries, reply }).await.unwrap();
            answers.push(answer);
        }
        drop(jobs);
        run_writer(pool, Backend::Sqlite, 1000, rx, Arc::new(Notify::new())).await;
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.unwrap());
        }
        assert_eq!(got[0], Ok(vec![Written::Recorded(1)]));
        let e = got[1].clone().unwrap_err();
        assert!(e.contains("poisoned"), "{e}");
        assert_eq!(got[2], Ok(vec![Written::Recorded(2)]));
        assert_eq!(
            got[3],
            Ok(vec![Written::Duplicate(1), Written::Recorded(3)])
        );
        let report = store.verify(None, &mut |_| {}).await.unwrap();
        assert!(report.broken.is_none(), "{report}");
        assert_eq!(report.records, 3);
        store.close().await;
    }

    #[tokio::test]
    async fn containers_partition_the_bitmap_and_hash_its_ids() {
        let ids: RoaringBitmap = [1u32, 2, 70_000, 70_001, 200_000].into_iter().collect();
        let r = bulk(ids.clone()).await.unwrap();
        assert_eq!(r.count, 5);
        let his: Vec<i64> = r.containers.iter().map(|(h, _)| *h).collect();
        assert_eq!(his, [0, 1, 3]);
        let mut union = RoaringBitmap::new();
        for (_, bits) in &r.containers {
            union |= RoaringBitmap::deserialize_from(&bits[..]).unwrap();
        }
        assert_eq!(union, ids);
        assert!(r.containers.iter().all(|(_, b)| !b.is_empty()));
        let mut h = Sha256::new();
        for id in &ids {
            h.update(id.to_le_bytes());
        }
        assert_eq!(r.sha256.unwrap(), to_hex(&h.finalize()));
    }
}

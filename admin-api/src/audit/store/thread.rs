//! The writer of an audit log in a SQLite file: one OS thread owns a connection of its own
//! (rusqlite, on the same SQLite library as sqlx) and does each group commit in one call —
//! `BEGIN IMMEDIATE`, the dedupe lookups, the inserts through cached prepared statements, the
//! head update, `COMMIT` — with the chain head kept in memory. Requests only enqueue their
//! entries and wait for the answer; the thread answers every waiter of a group right after
//! the commit returned, that is after the WAL was synced (`synchronous = FULL`, `fdatasync`
//! where the platform has it: `.cargo/config.toml`). WAL checkpoints run on a thread of their
//! own, never on the commit path. Why this design and not a segment log: `docs/audit.md`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior};

use super::*;

/// Counters of the writer (either kind), for benchmarks and health pages.
#[derive(Debug, Default)]
pub(super) struct Stats {
    groups: AtomicU64,
    records: AtomicU64,
    largest: AtomicU64,
    nanos: AtomicU64,
}

impl Stats {
    /// Count a committed group of `n` entries that took `took` to write.
    pub(super) fn group(&self, n: usize, took: Duration) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(n as u64, Ordering::Relaxed);
        self.largest.fetch_max(n as u64, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> WriterStats {
        WriterStats {
            groups: self.groups.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            largest_group: self.largest.load(Ordering::Relaxed),
            write_time: Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
        }
    }
}

/// What the audit writer has done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Group commits.
    pub groups: u64,
    /// Entries in them (duplicates of usage events included).
    pub records: u64,
    /// The most entries one group held.
    pub largest_group: u64,
    /// Time spent writing groups, commits (the sync) included.
    pub write_time: Duration,
}

impl WriterStats {
    /// Mean entries per group.
    pub fn mean_group(&self) -> f64 {
        if self.groups == 0 {
            0.0
        } else {
            self.records as f64 / self.groups as f64
        }
    }
}

impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Val::I(v) | Val::OI(Some(v)) => ValueRef::Integer(*v),
            Val::S(s) | Val::OS(Some(s)) => ValueRef::Text(s.as_bytes()),
            Val::OI(None) | Val::OS(None) => ValueRef::Null,
            Val::B(b) => ValueRef::Blob(b),
        }))
    }
}

/// The writer and checkpoint threads of a SQLite file.
#[derive(Debug)]
pub(super) struct Threads {
    writer: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
    stop_checkpoints: Sender<()>,
}

impl Threads {
    /// Wait until the writer has written what was queued (the queue must have been told to
    /// stop), then run a last checkpoint and stop the checkpoint thread. Blocking.
    pub(super) fn join(self) {
        let _ = self.writer.join();
        let _ = self.stop_checkpoints.send(());
        let _ = self.checkpointer.join();
    }
}

/// The file of the `main` database of a pool's SQLite connection; `None` for a database
/// without one (in memory).
pub(super) async fn database_file(pool: &AnyPool) -> Result<Option<PathBuf>> {
    let rows = sqlx::query("PRAGMA database_list").fetch_all(pool).await?;
    for r in rows {
        let name: String = r.try_get(1)?;
        let file: String = r.try_get(2)?;
        if name == "main" && !file.is_empty() {
            return Ok(Some(PathBuf::from(file)));
        }
    }
    Ok(None)
}

/// A connection to the audit file for the writer or the checkpointer: the store's durability
/// settings, and no automatic checkpoint.
pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", -16384)?;
    // After a checkpoint that reached the end, the WAL is cut back to this size.
    conn.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The head as the writer keeps it: seq, hash, recorded_at.
type MemHead = (i64, String, i64);

fn read_mem_head(conn: &Connection) -> rusqlite::Result<MemHead> {
    conn.query_row(
        "SELECT seq, hash, recorded_at FROM audit_head WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Open the writer's and the checkpointer's connections to `path` and start their threads.
pub(super) fn spawn(
    path: &Path,
    max_batch: usize,
    rx: mpsc::Receiver<Msg>,
    stats: Arc<Stats>,
) -> Result<Threads> {
    let conn = connect(path)?;
    let head = read_mem_head(&conn)?;
    let checkpoints = connect(path)?;
    let (stop_checkpoints, stop) = channel();
    let thread_error = |e: std::io::Error| {
        AuditStoreError::Unavailable(format!("cannot start the audit writer thread: {e}"))
    };
    let writer = std::thread::Builder::new()
        .name("dagr-audit-writer".into())
        .spawn(move || Writer::new(conn, head).run(max_batch, rx, &stats))
        .map_err(thread_error)?;
    let checkpointer = std::thread::Builder::new()
        .name("dagr-audit-checkpoint".into())
        .spawn(move || checkpoint_loop(&checkpoints, &stop))
        .map_err(thread_error)?;
    Ok(Threads {
        writer,
        checkpointer,
        stop_checkpoints,
    })
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    head: MemHead,
    insert_log: String,
    insert_subjects: String,
    insert_bulk: String,
    insert_daily: String,
}

/// `INSERT INTO {target} VALUES (?1, …, ?n){suffix}`.
fn insert_sql(target: &str, n: usize, suffix: &str) -> String {
    let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    format!("INSERT INTO {target} VALUES ({}){suffix}", marks.join(", "))
}

impl Writer {
    fn new(conn: Connection, head: MemHead) -> Self {
        Writer {
            conn,
            head,
            insert_log: insert_sql(&log_target(), LOG_COLUMNS.len() + 3, ""),
            insert_subjects: insert_sql("audit_subjects (subject, seq)", 2, ""),
            insert_bulk: insert_sql("audit_bulk (hi, seq, bits)", 3, ""),
            insert_daily: insert_sql(DAILY_TARGET, 8, DAILY_UPSERT),
        }
    }

    /// Take groups off the queue until it is closed and empty.
    fn run(mut self, max_batch: usize, mut rx: mpsc::Receiver<Msg>, stats: &Stats) {
        while let Some(msg) = rx.blocking_recv() {
            let first = match msg {
                Msg::Job(j) => j,
                Msg::Stop => {
                    rx.close();
                    continue;
                }
            };
            let (entries, replies, n) = gather(first, max_batch, &mut rx);
            let started = Instant::now();
            match self.write(&entries) {
                Ok(written) => {
                    stats.group(n, started.elapsed());
                    answer(replies, written);
                }
                Err(e) if replies.len() > 1 && entry_specific(Backend::Sqlite, &e) => {
                    tracing::warn!(
                        error = %e,
                        jobs = replies.len(),
                        entries = n,
                        "audit log batch failed; writing its jobs one by one"
                    );
                    let mut down = None;
                    for (job, reply) in entries.into_iter().zip(replies) {
                        if let Some(msg) = &down {
                            let _ = reply.send(Err(String::clone(msg)));
                            continue;
                        }
                        let result = self.write(std::slice::from_ref(&job));
                        settle_one(Backend::Sqlite, reply, job.len(), result, &mut down);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = n, "audit log write failed; the batch's data is withheld");
                    fail(replies, &e.to_string());
                }
            }
        }
    }

    /// Write one group in one transaction. The head in memory is checked against the stored
    /// one under the write lock (one indexed read): when another process wrote to the file (two
    /// servers pointed at one data directory by mistake), the group is chained after the
    /// stored head instead.
    fn write(&mut self, batches: &[Vec<Pending>]) -> Result<Vec<Vec<Written>>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: MemHead = tx
            .prepare_cached("SELECT seq, hash, recorded_at FROM audit_head WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if stored.0 != self.head.0 || stored.1 != self.head.1 {
            tracing::warn!(
                kept = self.head.0,
                stored = stored.0,
                "the audit chain head moved under the writer (another process writes to the file)"
            );
            self.head = stored;
        }
        let mut known: HashMap<(String, String), i64> = HashMap::new();
        {
            let mut seen = tx.prepare_cached(
                "SELECT seq FROM audit_log WHERE reporter = ?1 AND transaction_id = ?2",
            )?;
            for p in batches.iter().flatten() {
                if let Some(key) = p.dedupe_key()
                    && !known.contains_key(&key)
                    && let Some(seq) = seen
                        .query_row([&key.0, &key.1], |r| r.get::<_, i64>(0))
                        .optional()?
                {
                    known.insert(key, seq);
                }
            }
        }
        let dict = if has_bulk(batches) {
            Some(tx.query_row(
                "SELECT last_id, hash FROM audit_dict_head WHERE id = 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?)
        } else {
            None
        };
        let (seq, hash, recorded) = &self.head;
        let g = chain_group((*seq, hash, *recorded), &mut known, dict.as_ref(), batches);
        if g.seq == *seq {
            // Only duplicates: nothing to write.
            return Ok(g.written);
        }
        for (sql, rows) in [
            (&self.insert_log, &g.log),
            (&self.insert_subjects, &g.subjects),
            (&self.insert_bulk, &g.bulk),
            (&self.insert_daily, &g.daily),
        ] {
            if rows.is_empty() {
                continue;
            }
            let mut insert = tx.prepare_cached(sql)?;
            for row in rows {
                insert.execute(rusqlite::params_from_iter(row.iter()))?;
            }
        }
        tx.prepare_cached(
            "UPDATE audit_head SET seq = ?1, hash = ?2, recorded_at = ?3 WHERE id = 1",
        )?
        .execute(rusqlite::params![g.seq, g.hash, g.recorded])?;
        tx.commit()?;
        self.head = (g.seq, g.hash, g.recorded);
        Ok(g.written)
    }
}

/// WAL pages past which the checkpointer stops waiting for a pause between groups (64 MiB of
/// 4 KiB pages).
const WAL_PAGES_MAX: i64 = 16_384;

/// Checkpoint the WAL into the database now and then, off the commit path: a `PASSIVE`
/// checkpoint every 200 ms, again soon while more than 4 000 pages wait and the last one made
/// progress; `TRUNCATE` once when told to stop (or when the store is gone).
///
/// A `PASSIVE` checkpoint copies only what no transaction is writing, and SQLite starts the
/// WAL over only when a write begins after a complete checkpoint: under lookups without a
/// pause between groups that never happens, and the WAL would grow for as long as the load
/// lasts. So past [`WAL_PAGES_MAX`] pages the checkpoint is a `RESTART` one, which waits (the
/// busy handler) for the group being written, holds the next one back while it copies and
/// syncs, and makes the next writer start the WAL over (cut back by `journal_size_limit`).
/// That one pause per 64 MiB of WAL is the price of a bounded file.
fn checkpoint_loop(conn: &Connection, stop: &std::sync::mpsc::Receiver<()>) {
    let mut wait = Duration::from_millis(200);
    let mut last_done = -1;
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "last checkpoint of the audit log failed");
                }
                return;
            }
        }
        let pages = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .and_then(|(log, done)| {
                if log > WAL_PAGES_MAX {
                    conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                } else {
                    Ok((log, done))
                }
            });
        wait = match pages {
            // Pages wait and the last round copied some: go on soon. A reader that pins the
            // WAL stops progress; then wait the usual time.
            Ok((log, done)) if log - done > 4000 && done != last_done => {
                last_done = done;
                Duration::from_millis(5)
            }
            Ok((_, done)) => {
                last_done = done;
                Duration::from_millis(200)
            }
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint of the audit log failed; retrying");
                Duration::from_secs(1)
            }
        };
    }
}

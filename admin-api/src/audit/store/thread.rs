//! The threads of an audit log in a SQLite file, each with a connection of its own
//! (rusqlite, on the same SQLite library as sqlx):
//!
//! - the **writer** takes queued groups, chains them with the head it keeps in memory, appends
//!   each group as one frame to the commit log (`seglog.rs`) and syncs it (`fdatasync`), then
//!   answers every waiter of the group at once — a write and a sync, nothing else, on the
//!   commit path;
//! - the **indexer** writes the durable groups into the tables, those that arrive within a
//!   few milliseconds of each other in one transaction (cached prepared statements), and
//!   moves the stored head; readers that must see every acknowledged entry wait for it
//!   ([`AuditStore::settle`]);
//! - the **checkpointer** copies the WAL into the database now and then, off both paths.
//!
//! Why a commit log in front of the tables: `docs/audit.md#the-commit-log`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel,
};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior};
use tokio::sync::watch;

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
        dagr_engine::metrics::metrics().audit_group(n, took);
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

/// How far the writer and the indexer of a SQLite file have got, for readers that must see
/// every acknowledged entry ([`AuditStore::settle`]).
#[derive(Debug)]
pub(super) struct Progress {
    /// The last seq durable in the commit log (set before its waiters are answered).
    pub(super) committed: AtomicI64,
    /// The last seq in the database tables.
    pub(super) indexed: watch::Sender<i64>,
    /// The last seq in the tables and on disk: the indexer commits without a sync
    /// (`synchronous = NORMAL`), and a complete checkpoint makes everything committed before
    /// it durable. Segments up to here may go.
    durable: AtomicI64,
    /// The indexer's queue, to ask it not to wait for more groups.
    flush: SyncSender<IndexMsg>,
    /// Why the tables refused the indexer's last write, while they do: the writer then
    /// refuses new groups, so that personal data is withheld rather than served with a record
    /// nobody can see.
    refused: parking_lot::Mutex<Option<String>>,
    /// Set when the writer stops: the indexer then gives up retrying after a few tries (the
    /// groups wait in the commit log for the next start).
    stopping: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// Why the writer refuses new groups (the tables refuse the indexer's writes), if it does.
    pub(super) fn refusal(&self) -> Option<String> {
        self.refused.lock().clone()
    }

    /// Ask the indexer to write what it holds now.
    pub(super) fn poke(&self) {
        let _ = self.flush.try_send(IndexMsg::Flush);
    }
}

/// What the indexer's queue carries.
enum IndexMsg {
    /// A group durable in the commit log, to be written into the tables.
    Group(Box<Group>),
    /// A reader waits: write what is held without waiting for more.
    Flush,
    /// Write what is queued, then stop.
    Stop,
}

/// Groups the writer may hand the indexer ahead of it before it waits (back-pressure).
const INDEX_QUEUE: usize = 4096;
/// How long the indexer waits for more groups before it writes what it holds.
const INDEX_DELAY: Duration = Duration::from_millis(5);
/// Entries past which the indexer writes what it holds without waiting.
const INDEX_ROWS: usize = 8192;

/// The threads of a SQLite file: the writer (which owns the indexer) and the checkpointer.
#[derive(Debug)]
pub(super) struct Threads {
    writer: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
    stop_checkpoints: Sender<()>,
}

impl Threads {
    /// Wait until the writer has written what was queued (the queue must have been told to
    /// stop) and the indexer has put it in the tables, then run a last checkpoint and stop
    /// the checkpoint thread. Blocking.
    pub(super) fn join(self) {
        let _ = self.writer.join();
        let _ = self.stop_checkpoints.send(());
        let _ = self.checkpointer.join();
    }
}

/// What [`spawn`] started.
pub(super) enum Spawned {
    /// This store writes the log.
    Writer(Threads, Arc<Progress>),
    /// Another store (another process) writes it: this one only reads.
    ReadOnly,
}

/// The writer of a SQLite file, shared by the stores of this process that open the file
/// (replicas in tests, a second configuration of one log): one commit log, one chain.
#[derive(Debug)]
pub(super) struct Shared {
    /// The file, as the registry knows it.
    key: PathBuf,
    pub(super) jobs: mpsc::Sender<Msg>,
    pub(super) progress: Arc<Progress>,
    pub(super) stats: Arc<Stats>,
    threads: parking_lot::Mutex<Option<Threads>>,
}

impl Shared {
    /// Refuse new entries, write the queued ones and stop the threads (for the last store
    /// that uses the writer).
    pub(super) async fn close(&self) {
        // A store opened from now on starts a writer of its own (once this one let go).
        {
            let mut writers = WRITERS.lock();
            if writers
                .get(&self.key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                writers.remove(&self.key);
            }
        }
        let _ = self.jobs.send(Msg::Stop).await;
        let threads = self.threads.lock().take();
        if let Some(t) = threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// The writers of this process, by database file.
static WRITERS: std::sync::LazyLock<parking_lot::Mutex<HashMap<PathBuf, std::sync::Weak<Shared>>>> =
    std::sync::LazyLock::new(Default::default);

/// How long opening waits for a writer of this process that is stopping (a store dropped
/// without `close`) to let go of the commit log before it concludes another process has it.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// The writer of the SQLite file `path`: the one this process runs already, or a new one;
/// `None` when another process writes the file.
pub(super) async fn attach(path: PathBuf, max_batch: usize) -> Result<Option<Arc<Shared>>> {
    // One attach at a time: two stores opened together share one writer.
    static ATTACH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ATTACH.lock().await;
    let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    if let Some(shared) = WRITERS.lock().get(&key).and_then(std::sync::Weak::upgrade) {
        return Ok(Some(shared));
    }
    let (jobs, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(Stats::default());
    let st = Arc::clone(&stats);
    let spawned = tokio::task::spawn_blocking(move || spawn(&path, max_batch, rx, st))
        .await
        .map_err(|e| AuditStoreError::Unavailable(e.to_string()))??;
    let Spawned::Writer(threads, progress) = spawned else {
        return Ok(None);
    };
    let shared = Arc::new(Shared {
        key: key.clone(),
        jobs,
        progress,
        stats,
        threads: parking_lot::Mutex::new(Some(threads)),
    });
    let mut writers = WRITERS.lock();
    writers.retain(|_, w| w.strong_count() > 0);
    writers.insert(key, Arc::downgrade(&shared));
    Ok(Some(shared))
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

/// Take the commit log of `path` (or find it taken: [`Spawned::ReadOnly`]), replay into the
/// tables what they lack, and start the writer, indexer and checkpoint threads. Blocking.
pub(super) fn spawn(
    path: &Path,
    max_batch: usize,
    rx: mpsc::Receiver<Msg>,
    stats: Arc<Stats>,
) -> Result<Spawned> {
    let waited = Instant::now();
    let lock = loop {
        match seglog::lock(path)? {
            Some(lock) => break lock,
            None if waited.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            None => return Ok(Spawned::ReadOnly),
        }
    };
    let mut indexer = Indexer::new(connect(path)?);
    let (seq, hash, _) = read_mem_head(&indexer.conn)?;
    let (mut log, _, replayed) =
        seglog::Log::recover(path, lock, (seq, hash), |groups| indexer.index(groups))?;
    let head = read_mem_head(&indexer.conn)?;
    // The tables may hold commits of the last run that were never synced: a complete
    // checkpoint makes them durable before the old segments go; if it cannot complete now,
    // the segments wait for one like closed segments do.
    let durable = if checkpoint(&indexer.conn, "TRUNCATE")? {
        log.forget_replayed(replayed)?;
        head.0
    } else {
        log.keep_replayed(replayed, head.0);
        0
    };
    // From here on the commit log makes entries durable, and checkpoints sync the tables.
    indexer.conn.pragma_update(None, "synchronous", "NORMAL")?;
    let reader = connect(path)?;
    let checkpoints = connect(path)?;
    let (index_tx, index_rx) = sync_channel(INDEX_QUEUE);
    let progress = Arc::new(Progress {
        committed: AtomicI64::new(head.0),
        indexed: watch::channel(head.0).0,
        durable: AtomicI64::new(durable),
        flush: index_tx.clone(),
        refused: parking_lot::Mutex::new(None),
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    let (stop_checkpoints, stop) = channel();
    let thread_error = |e: std::io::Error| {
        AuditStoreError::Unavailable(format!("cannot start the audit writer thread: {e}"))
    };
    let indexed = Arc::clone(&progress);
    let indexer = std::thread::Builder::new()
        .name("dagr-audit-index".into())
        .spawn(move || indexer.run(&index_rx, &indexed))
        .map_err(thread_error)?;
    let writer = Writer {
        conn: reader,
        head,
        log,
        progress: Arc::clone(&progress),
        index: index_tx,
        unindexed: HashMap::new(),
        unindexed_order: VecDeque::new(),
        broken: None,
        backlog: VecDeque::new(),
    };
    let writer = std::thread::Builder::new()
        .name("dagr-audit-writer".into())
        .spawn(move || writer.run(max_batch, rx, &stats, indexer))
        .map_err(thread_error)?;
    let checkpointer = std::thread::Builder::new()
        .name("dagr-audit-checkpoint".into())
        .spawn({
            let progress = Arc::clone(&progress);
            move || checkpoint_loop(&checkpoints, &stop, &progress)
        })
        .map_err(thread_error)?;
    Ok(Spawned::Writer(
        Threads {
            writer,
            checkpointer,
            stop_checkpoints,
        },
        progress,
    ))
}

/// The writer thread's state: it chains groups and makes them durable in the commit log.
struct Writer {
    /// Reads only: usage events already recorded, the subject dictionary's head.
    conn: Connection,
    head: MemHead,
    log: seglog::Log,
    progress: Arc<Progress>,
    index: SyncSender<IndexMsg>,
    /// Idempotency keys of usage events durable but not yet in the tables, and their seq.
    unindexed: HashMap<(String, String), i64>,
    unindexed_order: VecDeque<(i64, (String, String))>,
    /// Set when the commit log failed in a way that cannot be undone: every later group fails.
    broken: Option<String>,
    /// Durable groups not yet handed to the indexer (see [`Writer::hand_over`]).
    backlog: VecDeque<Box<Group>>,
}

impl Writer {
    /// Take groups off the queue until it is closed and empty; then let the indexer finish
    /// and remove the commit log it made redundant.
    fn run(
        mut self,
        max_batch: usize,
        mut rx: mpsc::Receiver<Msg>,
        stats: &Stats,
        indexer: JoinHandle<()>,
    ) {
        while let Some(msg) = rx.blocking_recv() {
            let first = match msg {
                Msg::Job(j) => j,
                Msg::Stop => {
                    rx.close();
                    continue;
                }
            };
            let (entries, replies, n) = gather(first, max_batch, &mut rx);
            if let Some(why) = &self.broken {
                fail(replies, why);
                continue;
            }
            if !self.backlog.is_empty() {
                self.hand_over();
            }
            if n == 0 {
                // A reader's nudge (`AuditStore::settle`): the backlog handed over, nothing to
                // write.
                let none = replies.iter().map(|_| Vec::new()).collect();
                answer(replies, none);
                continue;
            }
            let started = Instant::now();
            match self.write(&entries) {
                Ok((written, group)) => {
                    if n > 0 {
                        stats.group(n, started.elapsed());
                    }
                    answer(replies, written);
                    if let Some(g) = group {
                        self.backlog.push_back(g);
                    }
                    self.hand_over();
                    if let Err(e) = self.log.rotate(self.head.0 + 1) {
                        tracing::warn!(error = %e, "cannot start a new audit commit log segment; the current one grows");
                    }
                    self.log
                        .drop_indexed(self.progress.durable.load(Ordering::Acquire), false);
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = n, "audit log write failed; the batch's data is withheld");
                    fail(replies, &e.to_string());
                }
            }
        }
        self.progress.stopping.store(true, Ordering::Release);
        for g in std::mem::take(&mut self.backlog) {
            let _ = self.index.send(IndexMsg::Group(g));
        }
        let _ = self.index.send(IndexMsg::Stop);
        let _ = indexer.join();
        // Make the tables durable, then the commit log is redundant.
        let indexed = *self.progress.indexed.borrow();
        match checkpoint(&self.conn, "PASSIVE") {
            Ok(true) => self.log.drop_indexed(indexed, true),
            Ok(false) => self
                .log
                .drop_indexed(self.progress.durable.load(Ordering::Acquire), false),
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint of the audit log at close failed; the commit log stays for the next start");
            }
        }
    }

    /// Hand the durable groups to the indexer, in order. While it is [`INDEX_QUEUE`] groups
    /// behind, wait (back-pressure) — unless the tables refuse its writes: then the groups
    /// stay here (durable in the commit log) and new ones are refused, rather than every
    /// caller hanging until the tables recover.
    fn hand_over(&mut self) {
        while let Some(g) = self.backlog.pop_front() {
            match self.index.try_send(IndexMsg::Group(g)) {
                Ok(()) => {}
                Err(TrySendError::Full(IndexMsg::Group(g))) => {
                    self.backlog.push_front(g);
                    if self.progress.refused.lock().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Forget the idempotency keys the tables now hold.
    fn prune(&mut self) {
        let indexed = *self.progress.indexed.borrow();
        while let Some((seq, _)) = self.unindexed_order.front() {
            if *seq > indexed {
                break;
            }
            if let Some((seq, key)) = self.unindexed_order.pop_front()
                && self.unindexed.get(&key) == Some(&seq)
            {
                self.unindexed.remove(&key);
            }
        }
    }

    /// Chain one group and make it durable: one frame appended to the commit log and synced.
    /// Returns what became of each job's entries and the group for the indexer (none when
    /// every entry was a duplicate).
    fn write(&mut self, batches: &[Vec<Pending>]) -> Result<Durable> {
        if let Some(why) = self.progress.refused.lock().clone() {
            return Err(AuditStoreError::Unavailable(format!(
                "the audit log's tables refuse entries ({why}); personal data is withheld until \
                 they take them again"
            )));
        }
        self.prune();
        let mut known: HashMap<(String, String), i64> = HashMap::new();
        {
            let mut seen = self.conn.prepare_cached(
                "SELECT seq FROM audit_log WHERE reporter = ?1 AND transaction_id = ?2",
            )?;
            for p in batches.iter().flatten() {
                let Some(key) = p.dedupe_key() else {
                    continue;
                };
                if known.contains_key(&key) {
                    continue;
                }
                if let Some(seq) = self.unindexed.get(&key) {
                    known.insert(key, *seq);
                } else if let Some(seq) = seen
                    .query_row([&key.0, &key.1], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    known.insert(key, seq);
                }
            }
        }
        // Bulk records name the subject dictionary's head: its ids are committed (through the
        // pool) before the records that use them are queued.
        let dict = if has_bulk(batches) {
            Some(self.conn.query_row(
                "SELECT last_id, hash FROM audit_dict_head WHERE id = 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?)
        } else {
            None
        };
        let (seq, hash, recorded) = &self.head;
        let mut g = chain_group((*seq, hash, *recorded), &mut known, dict.as_ref(), batches);
        let written = std::mem::take(&mut g.written);
        if g.seq == *seq {
            // Only duplicates: nothing to write.
            return Ok((written, None));
        }
        let frame = seglog::encode(&g);
        if frame.len() > seglog::FRAME_MAX {
            return Err(AuditStoreError::Unavailable(format!(
                "a group of {} audit entries takes {} MiB, more than a commit log frame holds \
                 ({} MiB); lower the writer's batch size",
                g.log.len(),
                frame.len() >> 20,
                seglog::FRAME_MAX >> 20
            )));
        }
        if let Err((e, cut)) = self.log.append(&frame, g.seq) {
            if !cut {
                self.broken = Some(format!(
                    "the audit commit log failed ({e}) and could not be cut back; restart the \
                     server (the log is replayed and verified on start)"
                ));
            }
            return Err(AuditStoreError::Unavailable(format!(
                "cannot write the audit commit log: {e}"
            )));
        }
        for (batch, w) in batches.iter().zip(&written) {
            for (p, w) in batch.iter().zip(w) {
                if let (Written::Recorded(s), Some(key)) = (w, p.dedupe_key()) {
                    self.unindexed.insert(key.clone(), *s);
                    self.unindexed_order.push_back((*s, key));
                }
            }
        }
        self.head = (g.seq, g.hash.clone(), g.recorded);
        self.progress.committed.store(g.seq, Ordering::Release);
        Ok((written, Some(Box::new(g))))
    }
}

/// What became of each job's entries, and the group for the indexer.
type Durable = (Vec<Vec<Written>>, Option<Box<Group>>);

/// The indexer thread's state: it writes durable groups into the tables.
struct Indexer {
    conn: Connection,
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

impl Indexer {
    fn new(conn: Connection) -> Self {
        Indexer {
            conn,
            insert_log: insert_sql(&log_target(), LOG_COLUMNS.len() + 3, ""),
            insert_subjects: insert_sql("audit_subjects (subject, seq)", 2, ""),
            insert_bulk: insert_sql("audit_bulk (hi, seq, bits)", 3, ""),
            insert_daily: insert_sql(DAILY_TARGET, 8, DAILY_UPSERT),
        }
    }

    /// Take groups off the queue and write them, those that arrive within [`INDEX_DELAY`] of
    /// each other (up to [`INDEX_ROWS`] entries) in one transaction, until told to stop.
    fn run(mut self, rx: &Receiver<IndexMsg>, progress: &Progress) {
        // Behind the writer, not beside it: lookups and the writer keep the cores first.
        dagr_engine::pools::lower_priority(dagr_engine::pools::DEFAULT_NICE);
        let mut stopping = false;
        while !stopping {
            let first = match rx.recv() {
                Ok(IndexMsg::Group(g)) => g,
                Ok(IndexMsg::Flush) => continue,
                Ok(IndexMsg::Stop) | Err(_) => break,
            };
            let mut rows = first.log.len();
            let mut batch = vec![*first];
            let deadline = Instant::now() + INDEX_DELAY;
            while rows < INDEX_ROWS {
                let wait = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(IndexMsg::Group(g)) => {
                        rows += g.log.len();
                        batch.push(*g);
                    }
                    Ok(IndexMsg::Flush) => {
                        // Take what is queued already, and go.
                        while let Ok(m) = rx.try_recv() {
                            match m {
                                IndexMsg::Group(g) => batch.push(*g),
                                IndexMsg::Flush => {}
                                IndexMsg::Stop => stopping = true,
                            }
                        }
                        break;
                    }
                    Ok(IndexMsg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            let last = batch.last().map_or(0, |g| g.seq);
            let mut pause = Duration::from_millis(100);
            let mut tries = 0;
            loop {
                tries += 1;
                match self.index(&batch) {
                    Ok(()) => {
                        *progress.refused.lock() = None;
                        progress.indexed.send_replace(last);
                        break;
                    }
                    // The groups are durable in the commit log: on close they wait there for
                    // the next open's replay.
                    Err(e)
                        if (stopping || progress.stopping.load(Ordering::Acquire))
                            && tries >= 5 =>
                    {
                        tracing::error!(error = %e, "the audit index is behind its commit log at close; the next start replays it");
                        return;
                    }
                    Err(e) => {
                        *progress.refused.lock() = Some(e.to_string());
                        tracing::error!(error = %e, retry_in = ?pause, "cannot write durable audit entries into the tables; retrying (readers wait, new entries are refused)");
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }

    /// Write groups, in order, in one transaction, and move the stored head to the last.
    fn index(&mut self, groups: &[Group]) -> Result<()> {
        let Some(last) = groups.last() else {
            return Ok(());
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for g in groups {
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
        }
        tx.prepare_cached(
            "UPDATE audit_head SET seq = ?1, hash = ?2, recorded_at = ?3 WHERE id = 1",
        )?
        .execute(rusqlite::params![last.seq, last.hash, last.recorded])?;
        tx.commit()?;
        Ok(())
    }
}

/// Run a checkpoint (`PASSIVE`, `TRUNCATE`, ...); whether it was complete — not blocked by
/// another checkpointer, every WAL frame copied and synced — so that every transaction
/// committed before it is on disk.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<bool> {
    let (busy, log, done) = checkpoint_pages(conn, mode)?;
    Ok(busy == 0 && log >= 0 && log == done)
}

/// Run a checkpoint; SQLite's answer: whether another checkpointer blocked it, the WAL's
/// pages, the pages copied (-1, -1 when blocked).
fn checkpoint_pages(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
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
///
/// A checkpoint that copied everything (the WAL synced first, then the database) makes every
/// transaction committed before it durable: the indexer's progress read before it becomes
/// [`Progress::durable`].
fn checkpoint_loop(conn: &Connection, stop: &std::sync::mpsc::Receiver<()>, progress: &Progress) {
    dagr_engine::pools::lower_priority(dagr_engine::pools::DEFAULT_NICE);
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
        let before = *progress.indexed.borrow();
        let pages = checkpoint_pages(conn, "PASSIVE").and_then(|(busy, log, done)| {
            if log > WAL_PAGES_MAX {
                checkpoint_pages(conn, "RESTART")
            } else {
                Ok((busy, log, done))
            }
        });
        // Complete (not blocked by another checkpointer, every frame copied and synced):
        // everything committed before it is on disk.
        if let Ok((0, log, done)) = pages
            && log >= 0
            && log == done
        {
            progress.durable.fetch_max(before, Ordering::AcqRel);
        }
        let pages = pages.map(|(_, log, done)| (log, done));
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

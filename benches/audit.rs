//! Audit log benchmarks (a harness of its own, not criterion). Run:
//! `cargo bench --bench audit`. Environment:
//! - `DAGR_BENCH_AUDIT_RECORDS`: records in the log for the citizen-view measurement
//!   (default 10 000 000);
//! - `DAGR_BENCH_SUBJECTS`: persons in the dataset the records are about (default 1 000 000);
//! - `DAGR_BENCH_POSTGRES_URL`: also measure commits on this PostgreSQL database (its audit
//!   tables are created; use a throw-away database).
//!
//! 1. **Access records committed per second**, through the real `AuditStore` on SQLite
//!    (WAL, `synchronous=FULL`, group commit): 64 concurrent writers each committing one
//!    point-lookup record at a time (what 64 concurrent lookups do). The baseline, in the
//!    same run and on the same disk, is the storage's own ceiling: one task inserting rows
//!    of the same size (body + one subject index row) in transactions of 1000 with the
//!    same pragmas, no chain, no resolution. The same with 1, 50 and 1 000 writers, with the
//!    writer thread's counters: groups, mean group size, write time per group (the sync
//!    included) — the writer alone, without the lookups around it.
//! 2. **Filling** the log to `DAGR_BENCH_AUDIT_RECORDS` records (point records of random
//!    subjects, plus one bulk record of 100 000 rows per 10 000), reported as records/s.
//! 3. **The citizen view** (`subject_usage`, first page of 50, newest first) for 1 000 random
//!    subjects at that size: p50, p99, max; next to the floor of one indexed primary-key
//!    `SELECT` on the same database.
//!
//! Progress goes to stderr, the markdown report to stdout. Nothing is asserted on times.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use dagr_admin_api::audit::store::{UsageFilter, WriterStats};
use dagr_admin_api::audit::{AuditConfig, AuditStore};
use dagr_engine::audit::{AuditContext, Channel, SubjectRows};
use dagr_engine::{
    AccessRecord, Attribute, AuditSink, DatasetDefinition, Engine, EngineConfig, Principal, Role,
    Snapshot,
};
use roaring::RoaringBitmap;
use support::{ms, percentile};
use tokio::task::JoinSet;

const WRITERS: usize = 64;
const COMMIT_SECONDS: u64 = 10;
const BULK_EVERY: usize = 10_000;
const BULK_ROWS: u32 = 100_000;
const VIEW_QUERIES: usize = 1000;
const PAGE: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn code(i: usize) -> String {
    format!("{:06}-{:05}", i / 100_000, i % 100_000)
}

async fn persons(dir: &std::path::Path, n: usize) -> Arc<Snapshot> {
    let engine = Engine::open_dir(dir, EngineConfig::default())
        .await
        .expect("engine");
    let def = DatasetDefinition {
        name: "persons".into(),
        owner: "PMLP".into(),
        description: "bench".into(),
        primary_key: vec!["personal_code".into()],
        attributes: vec![
            Attribute::new("personal_code", DataType::Utf8, "code").personal("personal_code"),
            Attribute::new("given_name", DataType::Utf8, "name").personal("personal_code"),
        ],
    };
    engine.create_dataset(def).await.expect("define");
    let schema = engine
        .definition("persons")
        .expect("defined")
        .arrow_schema();
    let mut batches = Vec::new();
    for start in (0..n).step_by(65_536) {
        let end = (start + 65_536).min(n);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values((start..end).map(code))),
            Arc::new(StringArray::from_iter_values(
                (start..end).map(|i| format!("Name{i}")),
            )),
        ];
        batches.push(RecordBatch::try_new(Arc::clone(&schema), cols).expect("batch"));
    }
    engine.load_batches("persons", batches).await.expect("load");
    engine.current("persons").expect("loaded")
}

fn context(org: usize) -> Arc<AuditContext> {
    Arc::new(AuditContext {
        principal: Principal {
            role: Role::Consumer,
            organisation: Some(format!("ORG{org}")),
            system: Some(format!("{}", org * 10)),
            subject: None,
            user: None,
            token_id: Some(format!("{}", org * 100)),
        },
        purpose: Some("credit check, application 2026-0001".into()),
        channel: Channel::Rest,
        request_id: "0123456789abcdef0123456789abcdef".into(),
        query: "GET /api/v1/datasets/persons/records/...".into(),
    })
}

fn record(snapshot: &Arc<Snapshot>, rows: RoaringBitmap, org: usize) -> AccessRecord {
    AccessRecord {
        time: chrono::Utc::now(),
        context: context(org),
        dataset: "persons".into(),
        version: snapshot.version(),
        attributes: vec!["personal_code".into(), "given_name".into()],
        agreements: vec![format!("{org}")],
        subjects: SubjectRows {
            snapshot: Arc::clone(snapshot),
            rows,
            columns: vec![0],
        },
    }
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn open(url: &str) -> AuditStore {
    AuditStore::open(url, AuditConfig::default())
        .await
        .expect("open the audit store")
}

/// What one run of concurrent one-record commits gave.
struct Commits {
    writers: usize,
    per_second: f64,
    /// The writer's counters over the run (groups, records, time writing).
    stats: WriterStats,
}

/// The writer's counters from `before` to `after`.
fn stats_delta(before: WriterStats, after: WriterStats) -> WriterStats {
    WriterStats {
        groups: after.groups - before.groups,
        records: after.records - before.records,
        largest_group: after.largest_group,
        write_time: after.write_time - before.write_time,
    }
}

/// `writers` concurrent writers, one record per commit, for `COMMIT_SECONDS`.
async fn commits(store: &AuditStore, snapshot: &Arc<Snapshot>, writers: usize) -> Commits {
    let before = store.writer_stats();
    let per_second = commits_per_second(store, snapshot, writers).await;
    Commits {
        writers,
        per_second,
        stats: stats_delta(before, store.writer_stats()),
    }
}

/// `writers` writers, one record per commit, for `COMMIT_SECONDS`: records/s.
async fn commits_per_second(store: &AuditStore, snapshot: &Arc<Snapshot>, writers: usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(COMMIT_SECONDS);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        let snapshot = Arc::clone(snapshot);
        tasks.spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1));
            let n = snapshot.num_rows();
            let mut done = 0u64;
            while Instant::now() < deadline {
                let row = rng.below(n) as u32;
                let rows: RoaringBitmap = [row].into_iter().collect();
                store
                    .commit(vec![record(&snapshot, rows, w % 8)])
                    .await
                    .expect("commit");
                done += 1;
            }
            done
        });
    }
    let mut total = 0u64;
    while let Some(r) = tasks.join_next().await {
        total += r.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// The storage ceiling: the same volume as plain rows, 1000 per transaction, same pragmas.
async fn baseline_rows_per_second(dir: &std::path::Path, seconds: u64) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{ConnectOptions, Connection};
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.join("baseline.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .expect("baseline database");
    sqlx::query("CREATE TABLE log (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("table");
    sqlx::query("CREATE TABLE subjects (subject TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (subject, seq)) WITHOUT ROWID")
        .execute(&mut conn)
        .await
        .expect("table");
    let body = "x".repeat(600);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut seq = 0i64;
    let mut rng = Rng(42);
    while Instant::now() < deadline {
        let mut tx = conn.begin().await.expect("begin");
        for _ in 0..1000 {
            seq += 1;
            sqlx::query("INSERT INTO log (seq, body) VALUES (?, ?)")
                .bind(seq)
                .bind(&body)
                .execute(&mut *tx)
                .await
                .expect("insert");
            sqlx::query("INSERT INTO subjects (subject, seq) VALUES (?, ?)")
                .bind(code(rng.below(1_000_000)))
                .bind(seq)
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
    }
    seq as f64 / started.elapsed().as_secs_f64()
}

/// Fill the log to `target` records: point records from 8 writers committing 500 at a
/// time, one bulk record per `BULK_EVERY`.
async fn fill(store: &AuditStore, snapshot: &Arc<Snapshot>, target: usize) -> (f64, usize) {
    let started = Instant::now();
    let mut written = 0usize;
    let mut bulk = 0usize;
    let mut rng = Rng(7);
    let n = snapshot.num_rows();
    let mut last_report = Instant::now();
    while written < target {
        let mut tasks = JoinSet::new();
        for w in 0..8 {
            let store = store.clone();
            let snapshot = Arc::clone(snapshot);
            let seed = rng.next() | 1;
            let count = 500.min(target.saturating_sub(written + w * 500));
            if count == 0 {
                break;
            }
            tasks.spawn(async move {
                let mut rng = Rng(seed);
                let records: Vec<AccessRecord> = (0..count)
                    .map(|i| {
                        let rows: RoaringBitmap = [rng.below(n) as u32].into_iter().collect();
                        record(&snapshot, rows, (w + i) % 8)
                    })
                    .collect();
                store.commit(records).await.expect("commit");
                count
            });
        }
        while let Some(r) = tasks.join_next().await {
            written += r.expect("filler");
        }
        if written / BULK_EVERY > bulk {
            bulk += 1;
            let start = rng.below(n.saturating_sub(BULK_ROWS as usize).max(1)) as u32;
            let mut rows = RoaringBitmap::new();
            rows.insert_range(start..start + BULK_ROWS.min(n as u32));
            store
                .commit(vec![record(snapshot, rows, bulk % 8)])
                .await
                .expect("bulk commit");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {written} records ({:.0}/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    (written as f64 / started.elapsed().as_secs_f64(), bulk)
}

async fn citizen_view(store: &AuditStore, n: usize) -> (Vec<Duration>, usize) {
    let mut rng = Rng(99);
    let mut times = Vec::with_capacity(VIEW_QUERIES);
    let mut entries = 0;
    for _ in 0..VIEW_QUERIES {
        let subject = code(rng.below(n));
        let t = Instant::now();
        let page = store
            .subject_usage(&subject, &UsageFilter::default(), None, PAGE)
            .await
            .expect("citizen view");
        times.push(t.elapsed());
        entries += page.entries.len();
    }
    times.sort();
    (times, entries)
}

async fn floor_query(store: &AuditStore) -> Duration {
    let mut times = Vec::new();
    for i in 0..VIEW_QUERIES as i64 {
        let t = Instant::now();
        let _: Option<(i64,)> = sqlx::query_as("SELECT seq FROM audit_log WHERE seq = $1")
            .bind(i * 7 + 1)
            .fetch_optional(store.pool())
            .await
            .expect("floor query");
        times.push(t.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
async fn run() {
    let total = Instant::now();
    let records = env_usize("DAGR_BENCH_AUDIT_RECORDS", 10_000_000);
    let subjects = env_usize("DAGR_BENCH_SUBJECTS", 1_000_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    eprintln!("audit bench: loading {subjects} persons ...");
    let snapshot = persons(&dir.path().join("engine"), subjects).await;

    eprintln!("1. commits: baseline ({COMMIT_SECONDS} s) ...");
    let base = baseline_rows_per_second(dir.path(), COMMIT_SECONDS).await;
    let sqlite_url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = open(&sqlite_url).await;
    let mut runs = Vec::new();
    for writers in [1, 50, WRITERS, 1000] {
        eprintln!(
            "1. commits: the audit store on SQLite, {writers} writers ({COMMIT_SECONDS} s) ..."
        );
        runs.push(commits(&store, &snapshot, writers).await);
    }
    let ours = runs
        .iter()
        .find(|r| r.writers == WRITERS)
        .map_or(0.0, |r| r.per_second);
    let pg = match std::env::var("DAGR_BENCH_POSTGRES_URL") {
        Ok(url) => {
            eprintln!("1. commits: the audit store on PostgreSQL ...");
            let pg = open(&url).await;
            let r = commits_per_second(&pg, &snapshot, WRITERS).await;
            pg.close().await;
            Some(r)
        }
        Err(_) => None,
    };

    eprintln!("2. filling the log to {records} records ...");
    let (fill_rate, bulk) = fill(&store, &snapshot, records).await;
    // Every record in the file: the commit phases' as well as the filling's.
    store.settle().await.expect("the audit tables catch up");
    let db_bytes = std::fs::metadata(dir.path().join("audit.db")).map_or(0, |m| m.len());
    let in_file = store.chain_head().await.map_or(0, |h| h.seq).max(1);

    eprintln!("3. citizen view, {VIEW_QUERIES} random subjects ...");
    let _warm = citizen_view(&store, subjects).await;
    let (times, entries) = citizen_view(&store, subjects).await;
    let floor = floor_query(&store).await;
    store.close().await;

    println!(
        "## Audit benchmark ({records} records about {subjects} persons, total run {:.0} s)\n",
        total.elapsed().as_secs_f64()
    );
    println!("### Access records committed per second\n");
    println!("| writer | records/s | vs storage ceiling |");
    println!("| --- | --- | --- |");
    println!(
        "| audit store, SQLite, {WRITERS} concurrent one-record commits | {ours:.0} | {:.2}× |",
        ours / base
    );
    if let Some(pg) = pg {
        println!(
            "| audit store, PostgreSQL, {WRITERS} concurrent one-record commits | {pg:.0} | {:.2}× |",
            pg / base
        );
    }
    println!(
        "| storage ceiling: plain SQLite rows + index row, 1000 per transaction | {base:.0} | 1.00× |"
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\n### The SQLite writer thread by concurrency ({cores} cores, one record per commit)\n"
    );
    println!(
        "| writers | records/s | groups | mean group | largest | write time per group (sync included) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in &runs {
        let per_group = r.stats.write_time.as_secs_f64() * 1e3 / r.stats.groups.max(1) as f64;
        println!(
            "| {} | {:.0} | {} | {:.1} | {} | {per_group:.3} ms |",
            r.writers,
            r.per_second,
            r.stats.groups,
            r.stats.mean_group(),
            r.stats.largest_group
        );
    }
    println!();
    println!(
        "| filling: 8 writers × 500 records per commit, 1 bulk record ({BULK_ROWS} rows) per {BULK_EVERY} | {fill_rate:.0} | {:.2}× |",
        fill_rate / base
    );
    println!(
        "\n{bulk} bulk records; audit.db is {:.0} MB for {in_file} records ({:.0} bytes per record).\n",
        db_bytes as f64 / 1e6,
        db_bytes as f64 / in_file as f64
    );
    println!(
        "### Citizen view at {records} records (first page of {PAGE}, {VIEW_QUERIES} random subjects, after a warm-up pass)\n"
    );
    println!(
        "| p50 | p99 | max | entries per page (mean) | floor: one primary-key SELECT (p50) | p50 / floor |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.1} | {:.3} ms | {:.0}× |",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("measured")),
        entries as f64 / VIEW_QUERIES as f64,
        ms(floor),
        percentile(&times, 0.5).as_secs_f64() / floor.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

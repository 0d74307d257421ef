//! The group-commit writer: queued entries chained and written in one transaction.

use super::*;

// ---- the writer ----------------------------------------------------------------------------

/// An entry ready to be chained: its body without `seq` and `recorded`, and its subject
/// containers (bulk records).
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) body: Body,
    pub(super) containers: Vec<(i64, Bytes)>,
}

impl Pending {
    /// `(reporter, transaction id)` of a usage event: its idempotency key.
    pub(super) fn dedupe_key(&self) -> Option<(String, String)> {
        Some((
            self.body.reporter.clone()?,
            self.body.transaction_id.clone()?,
        ))
    }
}

/// What the writer did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Recorded(i64),
    Duplicate(i64),
}

impl Written {
    pub(super) fn seq(self) -> i64 {
        match self {
            Written::Recorded(s) | Written::Duplicate(s) => s,
        }
    }
}

pub(super) type Reply = oneshot::Sender<std::result::Result<Vec<Written>, String>>;

/// Entries of one caller and where their answer goes.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) entries: Vec<Pending>,
    pub(super) reply: Reply,
}

/// What the writer's queue carries.
#[derive(Debug)]
pub(super) enum Msg {
    /// Entries to write.
    Job(Job),
    /// Refuse new jobs, write the queued ones, then stop.
    Stop,
}

/// The queued jobs of one group: the first one and whatever else is already waiting, up to
/// `max_batch` entries. `None` when the queue is closed and empty.
pub(super) fn gather(
    first: Job,
    max_batch: usize,
    rx: &mut mpsc::Receiver<Msg>,
) -> (Vec<Vec<Pending>>, Vec<Reply>, usize) {
    let mut n = first.entries.len();
    let mut jobs = vec![first];
    while n < max_batch {
        match rx.try_recv() {
            Ok(Msg::Job(j)) => {
                n += j.entries.len();
                jobs.push(j);
            }
            Ok(Msg::Stop) => rx.close(),
            Err(_) => break,
        }
    }
    let (entries, replies) = jobs.into_iter().map(|j| (j.entries, j.reply)).unzip();
    (entries, replies, n)
}

/// Answer the waiters of a group that was written.
pub(super) fn answer(replies: Vec<Reply>, written: Vec<Vec<Written>>) {
    for (reply, w) in replies.into_iter().zip(written) {
        let _ = reply.send(Ok(w));
    }
}

/// Fail every waiter of a group with the same error.
pub(super) fn fail(replies: Vec<Reply>, msg: &str) {
    for reply in replies {
        let _ = reply.send(Err(msg.to_owned()));
    }
}

/// The writer task on the connection pool (PostgreSQL, and a SQLite database without a file):
/// takes queued jobs (up to `max_batch` entries), writes them in one transaction, then
/// answers every waiter. When the transaction fails because of what an entry holds (a
/// database error: a constraint, a value the database refuses, a trigger), the batch's jobs
/// are written again one job per transaction, so that only the job at fault gets the error;
/// any other failure (the database unreachable) fails every job of the batch. Nothing of a
/// failed transaction stays. A SQLite file has a writer thread of its own (`thread.rs`).
pub(super) async fn run_writer(
    pool: AnyPool,
    backend: Backend,
    max_batch: usize,
    mut rx: mpsc::Receiver<Msg>,
    stats: Arc<Stats>,
) {
    while let Some(msg) = rx.recv().await {
        let first = match msg {
            Msg::Job(j) => j,
            Msg::Stop => {
                rx.close();
                continue;
            }
        };
        let (entries, replies, n) = gather(first, max_batch, &mut rx);
        let started = std::time::Instant::now();
        match write_batch(&pool, backend, &entries).await {
            Ok(written) => {
                stats.group(n, started.elapsed());
                answer(replies, written);
            }
            Err(e) if replies.len() > 1 && entry_specific(backend, &e) => {
                tracing::warn!(
                    error = %e,
                    jobs = replies.len(),
                    entries = n,
                    "audit log batch failed; writing its jobs one by one"
                );
                let mut down: Option<String> = None;
                for (job, reply) in entries.into_iter().zip(replies) {
                    if let Some(msg) = &down {
                        let _ = reply.send(Err(msg.clone()));
                        continue;
                    }
                    let result = write_batch(&pool, backend, std::slice::from_ref(&job)).await;
                    settle_one(backend, reply, job.len(), result, &mut down);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = n, "audit log write failed; the batch's data is withheld");
                fail(replies, &e.to_string());
            }
        }
    }
}

/// Answer the waiter of a job written alone after its group failed. A failure that is not
/// the job's own (see [`entry_specific`]) goes to `down`: the jobs after it get it untried.
pub(super) fn settle_one(
    backend: Backend,
    reply: Reply,
    entries: usize,
    result: Result<Vec<Vec<Written>>>,
    down: &mut Option<String>,
) {
    match result {
        Ok(mut written) => {
            let _ = reply.send(Ok(written.pop().unwrap_or_default()));
        }
        Err(e) => {
            tracing::error!(error = %e, entries, "audit log write failed; the job's data is withheld");
            if !entry_specific(backend, &e) {
                *down = Some(e.to_string());
            }
            let _ = reply.send(Err(e.to_string()));
        }
    }
}

/// Whether a failed write may be the fault of one entry rather than of the database: an
/// error the database raised about the statement's data — PostgreSQL SQLSTATE classes 22
/// (data exception), 23 (integrity constraint), 54 (program limit, e.g. an index row too
/// big) and P0 (raised by a trigger); SQLite primary result codes 18 (too big), 19
/// (constraint, also a trigger's `RAISE`), 20 (type mismatch) and 25 (range). Not
/// connection, lock or resource errors, after which one-by-one retries would only wait.
pub(super) fn entry_specific(backend: Backend, e: &AuditStoreError) -> bool {
    let sqlite_data = |c: i32| matches!(c & 0xff, 18 | 19 | 20 | 25);
    match e {
        AuditStoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            sqlite_data(f.extended_code)
        }
        AuditStoreError::Database(sqlx::Error::Database(db)) => {
            let Some(code) = db.code() else {
                return false;
            };
            match backend {
                // The extended result code, in decimal.
                Backend::Sqlite => code.parse::<i32>().is_ok_and(sqlite_data),
                Backend::Postgres => ["22", "23", "54", "P0"].iter().any(|c| code.starts_with(c)),
            }
        }
        _ => false,
    }
}

/// Per-day aggregate key: day, dataset, organisation, system, attribute, kind.
pub(super) type DailyKey = (i64, String, String, String, String, &'static str);

pub(super) const DAY_MS: i64 = 86_400_000;

/// The rows one group adds, chained from the head: what both writers insert.
#[derive(Debug, Default)]
pub(super) struct Group {
    /// `audit_log` rows: [`LOG_COLUMNS`], then `prev_hash`, `hash`, `body`.
    pub(super) log: Vec<Vec<Val>>,
    /// `audit_subjects` rows: subject, seq.
    pub(super) subjects: Vec<Vec<Val>>,
    /// `audit_bulk` rows: hi, seq, bits.
    pub(super) bulk: Vec<Vec<Val>>,
    /// `audit_daily` increments: day, dataset, organisation, system, attribute, kind, records,
    /// rows.
    pub(super) daily: Vec<Vec<Val>>,
    /// The head after the group.
    pub(super) seq: i64,
    /// Its hash.
    pub(super) hash: String,
    /// The `recorded` time of the group's entries.
    pub(super) recorded: i64,
    /// What became of each job's entries.
    pub(super) written: Vec<Vec<Written>>,
}

/// Whether any entry of the group is a bulk record (it names the subject dictionary's head).
pub(super) fn has_bulk(batches: &[Vec<Pending>]) -> bool {
    batches
        .iter()
        .flatten()
        .any(|p| p.body.subjects_sha256.is_some())
}

/// Chain the jobs' entries after `(seq, hash, recorded_at)`: sequence numbers, bodies, links,
/// index rows and daily increments. `known` holds the usage events already recorded (by
/// idempotency key; entries found there are duplicates and written nothing); `dict` is the
/// subject dictionary's head, named by bulk records.
pub(super) fn chain_group(
    head: (i64, &str, i64),
    known: &mut HashMap<(String, String), i64>,
    dict: Option<&(i64, String)>,
    batches: &[Vec<Pending>],
) -> Group {
    let now = Time::now().0;
    let recorded = now.max(head.2);
    let mut g = Group {
        seq: head.0,
        hash: head.1.to_owned(),
        recorded,
        ..Group::default()
    };
    let mut daily: BTreeMap<DailyKey, (i64, i64)> = BTreeMap::new();
    for batch in batches {
        let mut written = Vec::with_capacity(batch.len());
        for p in batch {
            let key = p.dedupe_key();
            if let Some(s) = key.as_ref().and_then(|k| known.get(k)) {
                written.push(Written::Duplicate(*s));
                continue;
            }
            g.seq += 1;
            let seq = g.seq;
            let mut body = p.body.clone();
            body.seq = seq;
            body.recorded = recorded;
            if body.subjects_sha256.is_some()
                && let Some((id, hash)) = dict
            {
                body.dict_id = Some(*id);
                body.dict_hash = Some(hash.clone());
            }
            let text = body.canonical();
            let hash = chain_hash(&g.hash, &text);
            let mut row = body_columns(&body);
            row.push(Val::S(std::mem::take(&mut g.hash)));
            row.push(Val::S(hash.clone()));
            row.push(Val::S(text));
            g.log.push(row);
            for s in body.subjects.iter().flatten() {
                g.subjects.push(vec![Val::S(s.clone()), Val::I(seq)]);
            }
            for (hi, bits) in &p.containers {
                g.bulk
                    .push(vec![Val::I(*hi), Val::I(seq), Val::B(bits.clone())]);
            }
            let kind = if p.body.kind == "usage" {
                "usage"
            } else {
                "access"
            };
            let day = p.body.time.div_euclid(DAY_MS) * DAY_MS;
            let attrs: &[String] = if p.body.attributes.is_empty() {
                &[String::new()]
            } else {
                &p.body.attributes
            };
            for a in attrs {
                let k = (
                    day,
                    p.body.dataset.clone().unwrap_or_default(),
                    p.body.organisation.clone().unwrap_or_default(),
                    p.body.system.clone().unwrap_or_default(),
                    a.clone(),
                    kind,
                );
                let e = daily.entry(k).or_default();
                e.0 += 1;
                e.1 += p.body.rows as i64;
            }
            if let Some(k) = key {
                known.insert(k, seq);
            }
            g.hash = hash;
            written.push(Written::Recorded(seq));
        }
        g.written.push(written);
    }
    g.daily = daily
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
    g
}

/// The `INSERT` target of `audit_log`.
pub(super) fn log_target() -> String {
    let columns: Vec<&str> = LOG_COLUMNS.iter().map(|(n, _)| *n).collect();
    format!("audit_log ({}, prev_hash, hash, body)", columns.join(", "))
}

/// The `INSERT` target of `audit_daily` and its upsert clause.
pub(super) const DAILY_TARGET: &str = "audit_daily (day, dataset, organisation, system_id, \
     attribute, kind, record_count, row_total)";
pub(super) const DAILY_UPSERT: &str = " ON CONFLICT (day, dataset, organisation, system_id, \
     attribute, kind) DO UPDATE SET record_count = audit_daily.record_count + \
     excluded.record_count, row_total = audit_daily.row_total + excluded.row_total";

/// Write one group through the pool, in one transaction with the head locked.
pub(super) async fn write_batch(
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
    let dict = if has_bulk(batches) {
        Some(read_dict_head(&mut tx).await?)
    } else {
        None
    };
    let g = chain_group(
        (head.seq, &head.hash, head.recorded_at),
        &mut known,
        dict.as_ref(),
        batches,
    );
    if g.seq == head.seq {
        // Only duplicates: nothing to write.
        return Ok(g.written);
    }
    insert_rows(&mut tx, backend, &log_target(), "", &g.log).await?;
    insert_rows(
        &mut tx,
        backend,
        "audit_subjects (subject, seq)",
        "",
        &g.subjects,
    )
    .await?;
    insert_rows(&mut tx, backend, "audit_bulk (hi, seq, bits)", "", &g.bulk).await?;
    insert_rows(&mut tx, backend, DAILY_TARGET, DAILY_UPSERT, &g.daily).await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, recorded_at = $3 WHERE id = 1")
        .bind(g.seq)
        .bind(&g.hash)
        .bind(g.recorded)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(g.written)
}

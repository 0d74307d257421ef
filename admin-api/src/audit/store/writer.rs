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

#[derive(Debug)]
pub(super) struct Job {
    pub(super) entries: Vec<Pending>,
    pub(super) reply: Reply,
}

/// The writer task: takes queued jobs (up to `max_batch` entries), writes them in one
/// transaction, then answers every waiter. When the transaction fails because of what an
/// entry holds (a database error: a constraint, a value the database refuses, a trigger), the
/// batch's jobs are written again one job per transaction, so that only the job at fault gets
/// the error; any other failure (the database unreachable) fails every job of the batch.
/// Nothing of a failed transaction stays.
pub(super) async fn run_writer(
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
pub(super) async fn retry_one_by_one(
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
pub(super) fn entry_specific(backend: Backend, e: &AuditStoreError) -> bool {
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
pub(super) type DailyKey = (i64, String, String, String, String, &'static str);

pub(super) const DAY_MS: i64 = 86_400_000;

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

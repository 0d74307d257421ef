//! Reading the log: the citizen view, the daily summary, the export and retention.

use super::*;

impl AuditStore {
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
        self.settle().await?;
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
        self.settle().await?;
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
            /// The store until the first page: it settles first (see [`AuditStore::settle`]).
            settle: Option<AuditStore>,
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
            settle: Some(self.clone()),
            pool: self.inner.pool.clone(),
            backend: self.inner.backend,
            scopes,
            cursor: None,
        };
        futures::stream::try_unfold(state, move |mut st| async move {
            if let Some(store) = st.settle.take() {
                store.settle().await?;
            }
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
        self.settle().await?;
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
}

/// The citizen view's filters on the log (alias `l`).
pub(super) fn push_filters(sql: &mut Sql, filter: &UsageFilter) {
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

pub(super) const ENTRY_COLUMNS: &str = "l.seq, l.event_time, l.kind, l.organisation, l.system_id, \
     l.purpose, l.channel, l.dataset, l.version, l.attributes, l.agreements, \
     l.transaction_id, l.access_ref";

pub(super) fn entry_row(r: &AnyRow) -> Result<UsageEntry> {
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

pub(super) const EXPORT_COLUMNS: &str = "seq, event_time, recorded_at, kind, organisation, system_id, \
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

pub(super) fn export_batch(rows: &[AnyRow]) -> Result<RecordBatch> {
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

//! Taking entries in: access records (their subjects resolved, listed or as a bitmap of dictionary ids) and usage events.

use super::*;

impl AuditStore {
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

    pub(super) async fn access_entry(&self, r: AccessRecord) -> Result<Pending> {
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
    pub(super) async fn resolve(&self, s: &SubjectRows) -> Result<Resolved> {
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
        if let Some(resolved) = self.inner.last_big.lock().as_ref().and_then(|b| b.of(s)) {
            return Ok(resolved);
        }
        let mut arrays = Vec::with_capacity(s.columns.len());
        for &c in &s.columns {
            arrays.push(self.column_ids(s, c).await?);
        }
        let read = s.rows.clone();
        let bitmap = blocking(move || Ok(ids_read(&read, &arrays))).await?;
        let resolved = if bitmap.len() <= limit as u64 {
            listed(values_of(s).await?)
        } else {
            bulk(bitmap).await?
        };
        *self.inner.last_big.lock() = Some(BigRead {
            snapshot: Arc::downgrade(&s.snapshot),
            columns: s.columns.clone(),
            rows: s.rows.clone(),
            resolved: resolved.clone(),
        });
        Ok(resolved)
    }

    /// Dictionary ids of codes (assigned when new), in the order given.
    pub(super) async fn ids_of<'a>(
        &self,
        codes: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<u32>> {
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
    pub(super) async fn assign<'a>(&self, codes: Vec<&'a str>) -> Result<HashMap<&'a str, u32>> {
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
    pub(super) async fn subject_id(&self, code: &str) -> Result<Option<u32>> {
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
    pub(super) async fn column_ids(&self, s: &SubjectRows, column: usize) -> Result<Arc<Vec<u32>>> {
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

    pub(super) async fn build_column_ids(
        &self,
        s: &SubjectRows,
        column: usize,
    ) -> Result<Arc<Vec<u32>>> {
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
        if !refs.is_empty() {
            self.settle().await?;
        }
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
}

/// A stored dictionary id as a 32-bit id.
pub(super) fn dict_id(id: i64) -> Result<u32> {
    u32::try_from(id)
        .ok()
        .filter(|&i| i != NO_SUBJECT)
        .ok_or_else(|| {
            AuditStoreError::Corrupt(format!("subject dictionary id {id} does not fit 32 bits"))
        })
}

/// The dictionary ids of the codes that have one.
pub(super) async fn select_ids<'a>(
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

/// The distinct subjects of a read as stored ([`subject_code`]), sorted; on the blocking
/// pool when the read is big.
pub(super) async fn values_of(s: &SubjectRows) -> Result<Vec<String>> {
    pub(super) fn codes(s: &SubjectRows) -> Result<Vec<String>> {
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

pub(super) fn listed(values: Vec<String>) -> Resolved {
    Resolved {
        count: values.len() as u64,
        listed: Some(values),
        ..Resolved::default()
    }
}

/// Split a bitmap into its containers and hash its ids (sorted, `u32` little-endian).
pub(super) async fn bulk(bitmap: RoaringBitmap) -> Result<Resolved> {
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

/// The distinct dictionary ids of the rows `read` through the row → id `arrays` (one per
/// subject column): marked in a bit set as large as the largest id, then read out in order
/// (no sort of one entry per row).
fn ids_read(read: &RoaringBitmap, arrays: &[Arc<Vec<u32>>]) -> RoaringBitmap {
    let max = arrays
        .iter()
        .flat_map(|a| a.iter().copied().filter(|&id| id != NO_SUBJECT).max())
        .max();
    let Some(max) = max else {
        return RoaringBitmap::new();
    };
    let mut bits = vec![0u64; max as usize / 64 + 1];
    for r in read {
        for a in arrays {
            if let Some(&id) = a.get(r as usize)
                && id != NO_SUBJECT
            {
                bits[id as usize / 64] |= 1 << (id % 64);
            }
        }
    }
    let ids = bits.iter().enumerate().flat_map(|(w, &word)| {
        let mut word = word;
        std::iter::from_fn(move || {
            (word != 0).then(|| {
                let bit = word.trailing_zeros();
                word &= word - 1;
                (w as u32) * 64 + bit
            })
        })
    });
    RoaringBitmap::from_sorted_iter(ids).unwrap_or_default()
}

/// The subjects of the last big read, for a read of the same rows of the same snapshot.
pub(super) struct BigRead {
    snapshot: std::sync::Weak<dagr_engine::Snapshot>,
    columns: Vec<usize>,
    rows: RoaringBitmap,
    resolved: Resolved,
}

impl BigRead {
    /// The subjects, when `s` reads what this read did.
    fn of(&self, s: &SubjectRows) -> Option<Resolved> {
        let same = self
            .snapshot
            .upgrade()
            .is_some_and(|snapshot| Arc::ptr_eq(&snapshot, &s.snapshot))
            && self.columns == s.columns
            && self.rows == s.rows;
        same.then(|| self.resolved.clone())
    }
}

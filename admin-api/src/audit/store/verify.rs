//! Verifying the chain, its retention anchor and the subject dictionary.

use super::*;

impl AuditStore {
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
        self.settle().await?;
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
    pub(super) async fn check_end(
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
    pub(super) async fn check_dictionary(
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
        self.settle().await?;
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
pub(super) fn check_anchor(anchor: &Anchor, retention: Option<Duration>) -> Option<Broken> {
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
pub(super) async fn check_entry(
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

//! Incremental change sets, and the change feed between kept versions.
//!
//! A *change set* ([`Engine::apply_changes`]) is a set of record batches holding the
//! dataset's columns and, optionally, [`CHANGE_COLUMN`] saying per row whether it is an
//! `upsert` or a `delete`. Upserts are validated exactly like a full load; the new version is
//! built copy-on-write: it shares every chunk of the current snapshot that the change set does
//! not touch, updates rows in place, fills the holes of deleted rows with inserted rows and
//! then with rows moved from the tail, so the chunk layout of [`Snapshot`] still holds.
//!
//! The *change feed* compares a kept version with the current one by key, exactly (values
//! are compared with Arrow comparators, never hashes): [`Engine::changes`] gives the unmasked
//! difference, [`Engine::change_feed`] what one caller sees change through their mask — an
//! `upsert` for every record that entered their view or whose visible cells changed, a
//! `delete` (carrying only the key) for every record that left it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, AsArray, DynComparator, RecordBatch, StringArray, make_comparator,
    new_null_array,
};
use arrow::compute::{SortOptions, concat, interleave};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::Utc;
use roaring::RoaringBitmap;
use serde::Serialize;
use tracing::info;

use crate::audit::ReadLog;
use crate::definition::DatasetDefinition;
use crate::engine::{Access, CHANGE_WORKERS, DatasetState, Engine, MaskedView, resolve_mask};
use crate::error::{Error, Result};
use crate::index::PrimaryKeyIndex;
use crate::mask::ResolvedMask;
use crate::snapshot::{
    CHUNK_ROWS, MAX_ROWS, Snapshot, Timestamp, check_attributes, compatible, conform,
    conform_column, first_null, nulls_message, row_id, split_row_id,
};

/// The column that says what a row of a change set, or of a change feed, does: `upsert`
/// (insert or replace the record with this key) or `delete` (remove it). Utf8.
pub const CHANGE_COLUMN: &str = "_dagr_change";

/// [`CHANGE_COLUMN`] value of a row that inserts or replaces a record.
pub const UPSERT: &str = "upsert";

/// [`CHANGE_COLUMN`] value of a row that removes a record.
pub const DELETE: &str = "delete";

/// What a committed change set did.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// Dataset name.
    pub dataset: String,
    /// The version now current (the previous one when the set changed nothing; 0 when it
    /// changed nothing and the dataset has no version yet).
    pub version: u64,
    /// Rows in that version.
    pub rows: usize,
    /// Upserts of keys that were absent.
    pub inserted: usize,
    /// Upserts of keys that were present (replaced whole, in place).
    pub updated: usize,
    /// Deletes of keys that were present.
    pub deleted: usize,
    /// Deletes of keys that were absent (not an error, so that a retried set is harmless).
    pub missing: usize,
    /// Wall time of the whole operation.
    #[serde(with = "crate::engine::duration_ms")]
    pub elapsed: Duration,
}

/// The unmasked difference between a kept version and the current one, by primary key.
#[derive(Debug, Clone)]
pub struct Changes {
    /// The older snapshot (version `since`).
    pub from: Arc<Snapshot>,
    /// The current snapshot.
    pub to: Arc<Snapshot>,
    /// Rows of `to` whose key `from` lacks, ascending.
    pub inserted: Vec<u32>,
    /// Records present in both whose values differ: (row of `from`, row of `to`), by `to`
    /// row ascending.
    pub updated: Vec<(u32, u32)>,
    /// Rows of `from` whose key `to` lacks, ascending.
    pub deleted: Vec<u32>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.inserted.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

/// What one caller sees change in a dataset between a kept version and the current one.
///
/// Built by [`Engine::change_feed`]; read it with [`ChangeFeed::batches`]: first the upserts
/// (rows of the current version, masked), then the deletes (keys of rows of the older
/// version).
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    /// Dataset name.
    pub dataset: String,
    /// The version the caller had.
    pub from_version: u64,
    /// The current version, which the caller has after applying the feed.
    pub to_version: u64,
    /// The schema of every batch: [`CHANGE_COLUMN`] (non-null), then the caller's columns of
    /// the current version, all nullable (a delete carries only the key).
    pub schema: SchemaRef,
    /// Rows of the current version to send as upserts, ascending.
    pub upserts: Vec<u32>,
    /// Rows of the older version whose keys to send as deletes, ascending.
    pub deletes: Vec<u32>,
    /// The caller's view of the older version.
    from: MaskedView,
    /// The caller's view of the current version.
    to: MaskedView,
    /// Positions (in the caller's schema) of the key columns.
    key_projection: Vec<usize>,
}

impl ChangeFeed {
    /// The same feed, noting what it hands out in `log`: upserts as reads of the current
    /// version, deletes as reads of the keys of the older one. The current version's columns
    /// are noted at once, so a purpose is required even when the feed is empty.
    pub fn with_log(mut self, log: ReadLog) -> Self {
        self.from = self.from.with_log(log.clone());
        self.to = self.to.with_log(log);
        self.to.note_projection(None);
        self
    }

    /// The caller's view of the older version.
    pub fn from_view(&self) -> &MaskedView {
        &self.from
    }

    /// The caller's view of the current version.
    pub fn to_view(&self) -> &MaskedView {
        &self.to
    }

    /// Whether the caller sees no change.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// The feed as batches of at most `batch_rows` rows, each of [`ChangeFeed::schema`]:
    /// upserts, then deletes. Batches are built (and noted in the log) as the iterator is
    /// driven; it owns what it reads, so it can move to a blocking task.
    pub fn batches(
        &self,
        batch_rows: usize,
    ) -> impl Iterator<Item = Result<RecordBatch>> + Send + 'static {
        let batch_rows = batch_rows.max(1);
        let upserts = {
            let view = self.to.clone();
            let schema = Arc::clone(&self.schema);
            let masked = Arc::clone(view.mask.schema());
            let rows = self.upserts.clone();
            (0..rows.len()).step_by(batch_rows).map(move |start| {
                let part = &rows[start..(start + batch_rows).min(rows.len())];
                let taken = view.take(part, None, &masked)?;
                let mut columns = vec![change_column(UPSERT, taken.num_rows())];
                columns.extend(taken.columns().iter().map(Arc::clone));
                Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
            })
        };
        let deletes = {
            let view = self.from.clone();
            let schema = Arc::clone(&self.schema);
            let projection = self.key_projection.clone();
            let rows = self.deletes.clone();
            (0..rows.len()).step_by(batch_rows).map(move |start| {
                let part = &rows[start..(start + batch_rows).min(rows.len())];
                let key_schema = view.mask.projected_schema(Some(&projection))?;
                let keys = view.take(part, Some(&projection), &key_schema)?;
                let n = keys.num_rows();
                let mut columns = vec![change_column(DELETE, n)];
                for (m, field) in schema.fields().iter().enumerate().skip(1) {
                    columns.push(match projection.iter().position(|&k| k + 1 == m) {
                        Some(j) => Arc::clone(keys.column(j)),
                        None => new_null_array(field.data_type(), n),
                    });
                }
                Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
            })
        };
        upserts.chain(deletes)
    }
}

fn change_column(op: &str, rows: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(op, rows)))
}

impl Engine {
    /// Apply a change set: validate it, build the new version copy-on-write, persist it, then
    /// swap it in (like [`Engine::load_batches`]).
    ///
    /// The batches hold the dataset's columns and optionally [`CHANGE_COLUMN`] (`upsert` or
    /// `delete`; absent means every row is an upsert). Upsert rows must satisfy the rules of
    /// a full load; delete rows need only a key (a batch of deletes only may carry just the
    /// key columns and [`CHANGE_COLUMN`]). A key may appear once per set. Deleting an
    /// absent key is counted in [`ChangeReport::missing`], not refused. Refusals name the
    /// column and the row (numbered from 1 across all batches: row 1 is the first row of the
    /// change set) or the key.
    ///
    /// A refused or failed change set changes nothing. A set that changes nothing (only
    /// deletes of absent keys) commits no new version, not even a first one: the report
    /// names the current version, or 0 when the dataset has none. Once the new version is
    /// being persisted, it is committed (or fails) even if the caller stops waiting.
    pub async fn apply_changes(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<ChangeReport> {
        let started = Instant::now();
        let result = self.apply_change_set(name, batches, started).await;
        // A change set that changed nothing commits no version (judged under the commit lock).
        let outcome = result
            .as_ref()
            .map(|(r, committed)| committed.then_some(r.inserted + r.updated + r.deleted));
        crate::metrics::metrics().load("changes", started.elapsed(), outcome);
        result.map(|(report, _)| report)
    }

    async fn apply_change_set(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        started: Instant,
    ) -> Result<(ChangeReport, bool)> {
        let state = self.state(name)?;
        let lock = self.lock_commit(&state, name).await?;
        let version = lock.catalog.next;
        let definition = Arc::clone(&state.definition.read());
        let current = state.current.read().clone();
        let applied = self
            .pools()
            .load(move || apply(definition, current, version, Utc::now(), batches))
            .await??;
        let (version, rows, what, committed) = match applied.snapshot {
            Next::Unchanged(current) => (
                current.as_ref().map_or(0, |s| s.version()),
                current.as_ref().map_or(0, |s| s.num_rows()),
                "change set changed nothing; no version committed",
                false,
            ),
            Next::New(snapshot) => {
                let rows = snapshot.num_rows();
                self.commit_snapshot(&state, lock, snapshot).await?;
                (version, rows, "change set committed", true)
            }
        };
        let report = ChangeReport {
            dataset: name.to_owned(),
            version,
            rows,
            inserted: applied.inserted,
            updated: applied.updated,
            deleted: applied.deleted,
            missing: applied.missing,
            elapsed: started.elapsed(),
        };
        info!(
            dataset = %name,
            version,
            rows,
            inserted = report.inserted,
            updated = report.updated,
            deleted = report.deleted,
            missing = report.missing,
            rebuilt_chunks = applied.rebuilt,
            ms = report.elapsed.as_millis() as u64,
            "{what}"
        );
        Ok((report, committed))
    }

    /// A kept version of a dataset: the current snapshot when it is that version, else one
    /// still held in memory (the version the last commit replaced, or one read back recently
    /// and still in use), else read from the snapshot store. [`Error::VersionNotKept`] when
    /// it is not kept; [`Error::ResourcesExhausted`] when the store would be read and too
    /// many other reads and diffs of older versions keep the server busy for too long.
    ///
    /// Never waits for a load in progress.
    pub async fn snapshot_at(&self, name: &str, version: u64) -> Result<Arc<Snapshot>> {
        let state = self.state(name)?;
        if let Some(s) = state.cached(name, version)? {
            return Ok(s);
        }
        let _worker = self.change_worker(name).await?;
        self.read_kept(&state, name, version).await
    }

    /// One of the engine's [`CHANGE_WORKERS`], for a read of an older version and a diff;
    /// refused with [`Error::ResourcesExhausted`] if none is free in time.
    pub(crate) async fn change_worker(
        &self,
        name: &str,
    ) -> Result<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(self.change_wait, self.change_workers.acquire()).await {
            Ok(permit) => permit.map_err(Error::internal),
            Err(_) => Err(Error::ResourcesExhausted(format!(
                "the changes of `{name}` cannot be computed now: the server computes changes for {CHANGE_WORKERS} requests at a time and none finished within {} s; try again later",
                self.change_wait.as_secs()
            ))),
        }
    }

    /// A kept version held in memory, else read from the store (once, however many ask at
    /// the same time). The caller holds a change worker.
    async fn read_kept(
        &self,
        state: &DatasetState,
        name: &str,
        version: u64,
    ) -> Result<Arc<Snapshot>> {
        let _reading = state.reading.lock().await;
        if let Some(s) = state.cached(name, version)? {
            return Ok(s);
        }
        match self.read_version(name, version).await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                state.remember(&snapshot);
                Ok(snapshot)
            }
            // Expired (and deleted) while it was read.
            Err(_) if !state.committed.read().kept.contains(&version) => {
                Err(Error::VersionNotKept {
                    dataset: name.to_owned(),
                    version,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The unmasked changes of a dataset from kept version `since` to the current one.
    ///
    /// [`Error::VersionNotKept`] when `since` is not kept (or is 0, or newer than the current
    /// version); [`Error::ChangesUnavailable`] when the columns changed between the two;
    /// [`Error::ResourcesExhausted`] as for [`Engine::snapshot_at`].
    pub async fn changes(&self, name: &str, since: u64) -> Result<Changes> {
        let to = self.current(name)?;
        let (from, _worker) = self.since_snapshot(name, since, &to).await?;
        if !same_columns(from.schema(), to.schema()) {
            return Err(unavailable(
                name,
                format!(
                    "the schema changed between versions {since} and {}; pull the dataset in full",
                    to.version()
                ),
            ));
        }
        if Arc::ptr_eq(&from, &to) {
            return Ok(Changes {
                from,
                to,
                inserted: vec![],
                updated: vec![],
                deleted: vec![],
            });
        }
        self.pools().blocking(move || diff(from, to)).await?
    }

    /// What a caller sees change in a dataset from kept version `since` to the current one,
    /// through their mask on each version.
    ///
    /// Per key: a record that entered the caller's rows, or whose cells they see changed, is
    /// an upsert; one that left their rows (or the dataset) is a delete. A change only in
    /// cells the caller does not see is not sent. Refused with
    /// [`Error::ChangesUnavailable`] unless the caller sees the key on every row they see
    /// (else the dataset in full shows them rows with a null key, which no feed can
    /// address), or when the columns the caller sees changed between the versions;
    /// [`Error::AccessDenied`] when they see nothing of the dataset;
    /// [`Error::ResourcesExhausted`] as for [`Engine::snapshot_at`].
    pub async fn change_feed(&self, name: &str, since: u64, access: &Access) -> Result<ChangeFeed> {
        let state = self.state(name)?;
        let to = state
            .current
            .read()
            .clone()
            .ok_or_else(|| Error::NoSnapshot(name.to_owned()))?;
        let definition = Arc::clone(&state.definition.read());
        // Refuse before an older version is read from the store.
        let to_mask = resolve_mask(&to, access)?;
        check_key_visible(&to, &to_mask)?;
        let (from, _worker) = self.since_snapshot(name, since, &to).await?;
        let from_mask = if Arc::ptr_eq(&from, &to) {
            Arc::clone(&to_mask)
        } else {
            resolve_mask(&from, access).map_err(|e| {
                unavailable(
                    name,
                    format!("your access does not apply to version {since} ({e}); pull the dataset in full"),
                )
            })?
        };
        check_key_visible(&from, &from_mask)?;
        if !same_columns(from_mask.schema(), to_mask.schema()) {
            return Err(unavailable(
                name,
                format!(
                    "the attributes you may read changed between versions {since} and {}; pull the dataset in full",
                    to.version()
                ),
            ));
        }
        let (upserts, deletes) = if Arc::ptr_eq(&from, &to) {
            (vec![], vec![])
        } else {
            let (from, to) = (Arc::clone(&from), Arc::clone(&to));
            let (from_mask, to_mask) = (Arc::clone(&from_mask), Arc::clone(&to_mask));
            self.pools()
                .blocking(move || feed_rows(&from, &to, &from_mask, &to_mask))
                .await??
        };
        let key_projection: Vec<usize> = from
            .definition()
            .primary_key
            .iter()
            .map(|k| from_mask.index_of(name, k))
            .collect::<Result<_>>()?;
        let mut fields = vec![Arc::new(Field::new(CHANGE_COLUMN, DataType::Utf8, false))];
        fields.extend(
            to_mask
                .schema()
                .fields()
                .iter()
                .map(|f| Arc::new(f.as_ref().clone().with_nullable(true))),
        );
        Ok(ChangeFeed {
            dataset: name.to_owned(),
            from_version: from.version(),
            to_version: to.version(),
            schema: Arc::new(Schema::new(fields)),
            upserts,
            deletes,
            from: MaskedView {
                snapshot: from,
                mask: from_mask,
                definition: Arc::clone(&definition),
                log: None,
            },
            to: MaskedView {
                snapshot: to,
                mask: to_mask,
                definition,
                log: None,
            },
            key_projection,
        })
    }

    /// The snapshot of version `since`, compared with the current snapshot `to`, and the
    /// change worker to hold while it is compared (none when it is `to`).
    async fn since_snapshot(
        &self,
        name: &str,
        since: u64,
        to: &Arc<Snapshot>,
    ) -> Result<(Arc<Snapshot>, Option<tokio::sync::SemaphorePermit<'_>>)> {
        if since == to.version() {
            return Ok((Arc::clone(to), None));
        }
        if since == 0 || since > to.version() {
            return Err(Error::VersionNotKept {
                dataset: name.to_owned(),
                version: since,
            });
        }
        let state = self.state(name)?;
        // Refuse a version not kept before waiting for a worker.
        let held = state.cached(name, since)?;
        let worker = self.change_worker(name).await?;
        let from = match held {
            Some(s) => s,
            None => self.read_kept(&state, name, since).await?,
        };
        Ok((from, Some(worker)))
    }
}

fn unavailable(dataset: &str, reason: String) -> Error {
    Error::ChangesUnavailable {
        dataset: dataset.to_owned(),
        reason,
    }
}

/// Refuse a change feed to a caller who may not see the key of every row they see in
/// `snapshot`: a row whose key cells are hidden reads with a null key in the dataset in full,
/// and no change to it could be addressed, so a synced copy would keep it forever.
fn check_key_visible(snapshot: &Snapshot, mask: &ResolvedMask) -> Result<()> {
    let key = &snapshot.definition().primary_key;
    if !mask.key_granted() {
        return Err(unavailable(
            snapshot.dataset(),
            format!(
                "the change feed needs the key attributes ({}), which are not granted to you",
                key.join(", ")
            ),
        ));
    }
    for k in key {
        if !mask.column_whole(mask.index_of(snapshot.dataset(), k)?) {
            return Err(unavailable(
                snapshot.dataset(),
                format!(
                    "your grants do not cover the key ({}) on every row you see (version {}); pull the dataset in full",
                    key.join(", "),
                    snapshot.version()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether two schemas have the same columns (names and types, in order): what makes rows
/// of two versions comparable. Nullability and metadata do not matter.
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// A change set, validated.
struct ChangeSet {
    /// The columns (in the definition's order and types) of each batch that holds upserts.
    upsert_batches: Vec<Vec<ArrayRef>>,
    /// Per row of the set: `None` for a delete, else where its values are (upsert batch,
    /// offset).
    rows: Vec<Option<(u32, u32)>>,
    /// The set's keys; its row ids are the set's row numbers.
    index: PrimaryKeyIndex,
}

/// How refusals of a change set number its rows.
const ROW_NUMBERS: &str = "row 1 is the first row of the change set";

/// The operation of each row of a batch (`true` = delete; `None` when the batch has no
/// [`CHANGE_COLUMN`]: all upserts), and the batch without that column. `base` is the number
/// of rows of the set before this batch.
fn split_ops(
    batch: &RecordBatch,
    base: usize,
) -> std::result::Result<(Option<Vec<bool>>, RecordBatch), String> {
    let Some((i, field)) = batch.schema_ref().column_with_name(CHANGE_COLUMN) else {
        return Ok((None, batch.clone()));
    };
    let col = batch.column(i);
    let col = if field.data_type() == &DataType::Utf8 {
        Arc::clone(col)
    } else if compatible(field.data_type(), &DataType::Utf8) {
        arrow::compute::cast(col, &DataType::Utf8)
            .map_err(|e| format!("column `{CHANGE_COLUMN}`: {e}"))?
    } else {
        return Err(format!(
            "column `{CHANGE_COLUMN}` has type {}; it must be Utf8 (`{UPSERT}` or `{DELETE}`)",
            field.data_type()
        ));
    };
    let ops = col.as_string::<i32>();
    let mut deletes = Vec::with_capacity(ops.len());
    for r in 0..ops.len() {
        deletes.push(match ops.is_valid(r).then(|| ops.value(r)) {
            Some(UPSERT) => false,
            Some(DELETE) => true,
            Some(other) => {
                let shown: String = other.chars().take(40).collect();
                return Err(format!(
                    "column `{CHANGE_COLUMN}` is `{shown}` at row {} ({ROW_NUMBERS}); it must be `{UPSERT}` or `{DELETE}`",
                    base + r + 1
                ));
            }
            None => {
                return Err(format!(
                    "column `{CHANGE_COLUMN}` is null at row {} ({ROW_NUMBERS}); it must be `{UPSERT}` or `{DELETE}`",
                    base + r + 1
                ));
            }
        });
    }
    let mut rest = batch.clone();
    rest.remove_column(i);
    Ok((Some(deletes), rest))
}

/// Validate a change set against the definition. The error is the reason of the refusal.
fn validate(
    definition: &DatasetDefinition,
    batches: Vec<RecordBatch>,
) -> std::result::Result<ChangeSet, String> {
    let schema = definition.arrow_schema();
    let key_ordinals = definition.key_ordinals();
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if total == 0 {
        return Err("the change set holds no rows: nothing to change".into());
    }
    if total > MAX_ROWS {
        return Err(format!("more than {MAX_ROWS} rows"));
    }
    // Nulls where values are required: (count, first row) per column.
    let mut bad_nulls: Vec<(usize, usize)> = vec![(0, 0); schema.fields().len()];
    let mut note_nulls = |column: usize, count: usize, first: usize| {
        let (c, f) = &mut bad_nulls[column];
        if *c == 0 {
            *f = first;
        }
        *c += count;
    };
    let mut upsert_batches = Vec::new();
    let mut rows = Vec::with_capacity(total);
    let mut keys: Vec<Vec<ArrayRef>> = vec![Vec::new(); key_ordinals.len()];
    let mut base = 0usize;
    for batch in batches {
        let n = batch.num_rows();
        if n == 0 {
            continue;
        }
        let (deletes, batch) = split_ops(&batch, base)?;
        let is_delete = |r: usize| deletes.as_ref().is_some_and(|d| d[r]);
        check_attributes(definition, &batch)?;
        if (0..n).all(is_delete) {
            // Deletes only: the key is all that counts.
            for (k, &o) in key_ordinals.iter().enumerate() {
                let c = conform_column(schema.field(o), &batch)?;
                if c.null_count() > 0 {
                    note_nulls(o, c.null_count(), base + first_null(c.as_ref()));
                }
                keys[k].push(c);
            }
            rows.extend(std::iter::repeat_n(None, n));
        } else {
            let columns = conform(definition, &schema, &batch)?;
            for (o, c) in columns.iter().enumerate() {
                if schema.field(o).is_nullable() || c.null_count() == 0 {
                    continue;
                }
                // A key is required on every row; other values only on upserts.
                let is_key = key_ordinals.contains(&o);
                let mut nulls = (0..n).filter(|&r| c.is_null(r) && (is_key || !is_delete(r)));
                if let Some(first) = nulls.next() {
                    note_nulls(o, 1 + nulls.count(), base + first);
                }
            }
            for (k, &o) in key_ordinals.iter().enumerate() {
                keys[k].push(Arc::clone(&columns[o]));
            }
            let b = upsert_batches.len() as u32;
            rows.extend((0..n).map(|r| (!is_delete(r)).then_some((b, r as u32))));
            upsert_batches.push(columns);
        }
        base += n;
    }
    if let Some((o, &(count, first))) = bad_nulls.iter().enumerate().find(|(_, (c, _))| *c > 0) {
        // Rows are counted from 1 here, as a client counts the rows it sends.
        return Err(format!(
            "{} ({ROW_NUMBERS})",
            nulls_message(definition, schema.field(o).name(), count, first + 1)
        ));
    }
    let key_name = definition.primary_key.join(", ");
    // The set's key columns in chunks of the snapshot layout, so that row ids are row numbers.
    let key_chunks: Vec<Vec<ArrayRef>> = keys
        .iter()
        .map(|parts| {
            let refs: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
            let all = concat(&refs).map_err(|e| format!("primary key ({key_name}): {e}"))?;
            Ok((0..all.len())
                .step_by(CHUNK_ROWS)
                .map(|s| all.slice(s, CHUNK_ROWS.min(all.len() - s)))
                .collect())
        })
        .collect::<std::result::Result<_, String>>()?;
    let (index, dups) = PrimaryKeyIndex::build(&key_chunks, total)
        .map_err(|e| format!("primary key ({key_name}): {e}"))?;
    if dups.count > 0 {
        return Err(format!(
            "the change set holds a key of ({key_name}) more than once ({} repeated row(s)); a record may change once per set, first: {}",
            dups.count,
            dups.examples_text(definition)
        ));
    }
    Ok(ChangeSet {
        upsert_batches,
        rows,
        index,
    })
}

/// The version a change set makes.
enum Next {
    /// The set changed nothing: the current snapshot (if any) stays.
    Unchanged(Option<Arc<Snapshot>>),
    /// The new snapshot, to be committed.
    New(Arc<Snapshot>),
}

/// A change set applied in memory.
struct Applied {
    snapshot: Next,
    inserted: usize,
    updated: usize,
    deleted: usize,
    missing: usize,
    /// Chunks built anew (the others are shared with the previous version, or a prefix of
    /// its last chunk).
    rebuilt: usize,
}

/// Validate a change set and build the next version from `current` copy-on-write.
fn apply(
    definition: Arc<DatasetDefinition>,
    current: Option<Arc<Snapshot>>,
    version: u64,
    created_at: Timestamp,
    batches: Vec<RecordBatch>,
) -> Result<Applied> {
    let refuse = |reason: String| Error::LoadRefused {
        dataset: definition.name.clone(),
        reason,
    };
    let schema = definition.arrow_schema();
    if let Some(cur) = &current
        && cur.schema().as_ref() != schema.as_ref()
    {
        return Err(refuse(format!(
            "the definition changed since version {} was loaded; load the dataset in full before applying changes",
            cur.version()
        )));
    }
    let set = validate(&definition, batches).map_err(refuse)?;

    // Classify the rows of the set against the current snapshot.
    let old_chunks: &[RecordBatch] = current.as_deref().map_or(&[][..], Snapshot::chunks);
    let n_old = current.as_deref().map_or(0, Snapshot::num_rows);
    let k = old_chunks.len();
    let source = |(b, o): (u32, u32)| (k + b as usize, o as usize);
    let mut updates: HashMap<u32, (usize, usize)> = HashMap::new();
    let mut inserts: Vec<(usize, usize)> = Vec::new();
    let mut holes: Vec<u32> = Vec::new();
    let mut missing = 0usize;
    for (j, values) in set.rows.iter().enumerate() {
        let existing = current
            .as_deref()
            .and_then(|s| s.index().get_from(&set.index, j as u32));
        match (values, existing) {
            (Some(v), Some(row)) => {
                updates.insert(row, source(*v));
            }
            (Some(v), None) => inserts.push(source(*v)),
            (None, Some(row)) => holes.push(row),
            (None, None) => missing += 1,
        }
    }
    let (inserted, updated, deleted) = (inserts.len(), updates.len(), holes.len());
    if inserted + updated + deleted == 0 {
        return Ok(Applied {
            snapshot: Next::Unchanged(current),
            inserted,
            updated,
            deleted,
            missing,
            rebuilt: 0,
        });
    }
    let n_new = n_old - deleted + inserted;
    if n_new > MAX_ROWS {
        return Err(refuse(format!(
            "the dataset would hold more than {MAX_ROWS} rows"
        )));
    }

    // Where each changed position of the new version takes its values from: (source, offset)
    // with sources `0..k` the old chunks and `k..` the set's upsert batches. Positions not
    // listed keep the old row of the same id.
    let mut overrides: Vec<(u32, (usize, usize))> =
        Vec::with_capacity(inserted + updated + deleted);
    holes.sort_unstable();
    let low = holes.partition_point(|&h| (h as usize) < n_new);
    // Free positions: holes below the new end, then positions past the old end.
    let mut free = holes[..low]
        .iter()
        .copied()
        .chain(n_old as u32..n_new as u32);
    for values in inserts {
        let slot = free
            .next()
            .ok_or_else(|| Error::internal("a change set's inserts outnumber the free rows"))?;
        overrides.push((slot, values));
    }
    // The rest are filled by the surviving rows at or past the new end (swap-remove); a
    // moved row that is also updated moves with its new values.
    let gone = &holes[low..];
    let mut tail = (n_new as u32..n_old as u32).filter(|r| gone.binary_search(r).is_err());
    for slot in free {
        let row = tail
            .next()
            .ok_or_else(|| Error::internal("a change set left more holes than tail rows"))?;
        let values = updates.remove(&row).unwrap_or_else(|| split_row_id(row));
        overrides.push((slot, values));
    }
    for (row, values) in updates {
        if row as usize >= n_new {
            return Err(Error::internal("an updated row was left past the end"));
        }
        overrides.push((row, values));
    }
    overrides.sort_unstable_by_key(|(p, _)| *p);

    // Build the chunks: untouched ones are shared, touched ones interleaved.
    let sources: Vec<Vec<&dyn Array>> = (0..schema.fields().len())
        .map(|i| {
            old_chunks
                .iter()
                .map(|c| c.column(i).as_ref())
                .chain(set.upsert_batches.iter().map(|b| b[i].as_ref()))
                .collect()
        })
        .collect();
    let mut chunks = Vec::with_capacity(n_new.div_ceil(CHUNK_ROWS));
    let mut rest = &overrides[..];
    let mut rebuilt = 0;
    for c in 0..n_new.div_ceil(CHUNK_ROWS) {
        let start = c * CHUNK_ROWS;
        let len = CHUNK_ROWS.min(n_new - start);
        let end = (start + len) as u32;
        let (here, after) = rest.split_at(rest.partition_point(|(p, _)| *p < end));
        rest = after;
        if here.is_empty() {
            // Every position keeps its row: positions past the old end are all inserts.
            let old = old_chunks
                .get(c)
                .ok_or_else(|| Error::internal("an unchanged chunk past the old end"))?;
            chunks.push(if old.num_rows() == len {
                old.clone()
            } else {
                old.slice(0, len)
            });
            continue;
        }
        rebuilt += 1;
        let mut indices: Vec<(usize, usize)> = (0..len).map(|o| (c, o)).collect();
        for &(p, values) in here {
            indices[p as usize - start] = values;
        }
        let columns = sources
            .iter()
            .map(|s| interleave(s, &indices))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        chunks.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
    }
    let snapshot = Snapshot::from_chunks(definition, version, created_at, chunks)?;
    Ok(Applied {
        snapshot: Next::New(Arc::new(snapshot)),
        inserted,
        updated,
        deleted,
        missing,
        rebuilt,
    })
}

/// Compares records of two snapshots on a subset of columns, exactly: values through Arrow
/// comparators (nulls equal nulls), cached per pair of chunks.
struct RowComparer<'a> {
    from: &'a Snapshot,
    to: &'a Snapshot,
    /// Ordinals in `from` of the compared columns.
    from_columns: &'a [usize],
    /// Ordinals in `to` of the same columns, aligned with `from_columns`.
    to_columns: &'a [usize],
    /// For a masked comparison: the masks whose ordinals these are, and per column whether
    /// its cells are visible on every visible row of both (else a hidden cell reads as null).
    cells: Option<(&'a ResolvedMask, &'a ResolvedMask, Vec<bool>)>,
    cache: HashMap<(usize, usize), Vec<DynComparator>>,
}

/// Most chunk pairs whose comparators are kept at once.
const MAX_CACHED_PAIRS: usize = 4096;

impl<'a> RowComparer<'a> {
    fn new(
        from: &'a Snapshot,
        to: &'a Snapshot,
        from_columns: &'a [usize],
        to_columns: &'a [usize],
    ) -> Self {
        RowComparer {
            from,
            to,
            from_columns,
            to_columns,
            cells: None,
            cache: HashMap::new(),
        }
    }

    /// Compare only what the masks let their holder see: their permitted columns, with
    /// hidden cells read as null.
    fn masked(
        from: &'a Snapshot,
        to: &'a Snapshot,
        from_mask: &'a ResolvedMask,
        to_mask: &'a ResolvedMask,
    ) -> Self {
        let whole = (0..from_mask.ordinals().len())
            .map(|m| from_mask.column_whole(m) && to_mask.column_whole(m))
            .collect();
        RowComparer {
            cells: Some((from_mask, to_mask, whole)),
            ..Self::new(from, to, from_mask.ordinals(), to_mask.ordinals())
        }
    }

    /// Whether row `f` of `from` and row `t` of `to` hold the same values.
    fn equal(&mut self, f: u32, t: u32) -> Result<bool> {
        let (fc, f_off) = split_row_id(f);
        let (tc, t_off) = split_row_id(t);
        if self.cache.len() >= MAX_CACHED_PAIRS {
            self.cache.clear();
        }
        let comparators = match self.cache.entry((fc, tc)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let (left, right) = (&self.from.chunks()[fc], &self.to.chunks()[tc]);
                e.insert(
                    self.from_columns
                        .iter()
                        .zip(self.to_columns)
                        .map(|(&a, &b)| {
                            make_comparator(
                                left.column(a).as_ref(),
                                right.column(b).as_ref(),
                                SortOptions::default(),
                            )
                        })
                        .collect::<std::result::Result<_, _>>()?,
                )
            }
        };
        for (m, cmp) in comparators.iter().enumerate() {
            if let Some((from_mask, to_mask, whole)) = &self.cells
                && !whole[m]
            {
                let seen = (from_mask.cell_visible(m, f), to_mask.cell_visible(m, t));
                let null_in = |s: &Snapshot, c: usize, o: usize, ordinal: usize| {
                    s.chunks()[c].column(ordinal).is_null(o)
                };
                match seen {
                    (false, false) => continue,
                    (true, true) => {}
                    // A hidden cell reads as null.
                    (true, false) => {
                        if null_in(self.from, fc, f_off, self.from_columns[m]) {
                            continue;
                        }
                        return Ok(false);
                    }
                    (false, true) => {
                        if null_in(self.to, tc, t_off, self.to_columns[m]) {
                            continue;
                        }
                        return Ok(false);
                    }
                }
            }
            if cmp(f_off, t_off).is_ne() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Call `each(to row, matching from row)` for every row of `to`, matching keys through the
/// indexes; returns the rows of `from` that matched.
fn walk(
    from: &Snapshot,
    to: &Snapshot,
    mut each: impl FnMut(u32, Option<u32>) -> Result<()>,
) -> Result<RoaringBitmap> {
    let mut matched = RoaringBitmap::new();
    for (c, chunk) in to.chunks().iter().enumerate() {
        for o in 0..chunk.num_rows() {
            let t = row_id(c, o);
            let f = from.index().get_from(to.index(), t);
            if let Some(f) = f {
                matched.insert(f);
            }
            each(t, f)?;
        }
    }
    Ok(matched)
}

/// The rows of `from` that `walk` did not match: the records deleted since.
fn unmatched(from: &Snapshot, matched: &RoaringBitmap) -> RoaringBitmap {
    let mut rows = RoaringBitmap::new();
    rows.insert_range(0..from.num_rows() as u32);
    rows -= matched;
    rows
}

/// The unmasked difference between two snapshots of the same columns.
fn diff(from: Arc<Snapshot>, to: Arc<Snapshot>) -> Result<Changes> {
    let columns: Vec<usize> = (0..to.schema().fields().len()).collect();
    let mut cmp = RowComparer::new(&from, &to, &columns, &columns);
    let mut inserted = Vec::new();
    let mut updated = Vec::new();
    let matched = walk(&from, &to, |t, f| {
        match f {
            None => inserted.push(t),
            Some(f) => {
                if !cmp.equal(f, t)? {
                    updated.push((f, t));
                }
            }
        }
        Ok(())
    })?;
    let deleted = unmatched(&from, &matched).into_iter().collect();
    drop(cmp);
    Ok(Changes {
        from,
        to,
        inserted,
        updated,
        deleted,
    })
}

/// The rows of a masked change feed: (upserts as rows of `to`, deletes as rows of `from`).
///
/// A record counts as visible when its row and its key cells are ([`ResolvedMask::keyed_row_visible`]):
/// the caller can only apply a change to a record it can address.
fn feed_rows(
    from: &Snapshot,
    to: &Snapshot,
    from_mask: &ResolvedMask,
    to_mask: &ResolvedMask,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let mut cmp = RowComparer::masked(from, to, from_mask, to_mask);
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    let matched = walk(from, to, |t, f| {
        let now = to_mask.keyed_row_visible(t);
        match f {
            None if now => upserts.push(t),
            None => {}
            Some(f) => match (from_mask.keyed_row_visible(f), now) {
                (false, true) => upserts.push(t),
                (true, true) => {
                    if !cmp.equal(f, t)? {
                        upserts.push(t);
                    }
                }
                (true, false) => deletes.push(f),
                (false, false) => {}
            },
        }
        Ok(())
    })?;
    deletes.extend(
        unmatched(from, &matched)
            .into_iter()
            .filter(|&f| from_mask.keyed_row_visible(f)),
    );
    deletes.sort_unstable();
    Ok((upserts, deletes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;

    /// The futures of the change API are `Send` for every lifetime, as async-trait services
    /// (Flight) require; a borrowed closure argument held across an `.await` breaks that,
    /// and only a caller's build would notice. Checked at compile time.
    #[test]
    fn futures_are_send_for_every_lifetime() {
        fn boxed<'a>(e: &'a Engine, a: &'a Access) -> Vec<BoxFuture<'a, ()>> {
            vec![
                Box::pin(async move {
                    let _ = e.change_feed("x", 1, a).await;
                }),
                Box::pin(async move {
                    let _ = e.changes("x", 1).await;
                }),
                Box::pin(async move {
                    let _ = e.snapshot_at("x", 1).await;
                }),
                Box::pin(async move {
                    let _ = e.apply_changes("x", vec![]).await;
                }),
            ]
        }
        let _ = boxed;
    }

    /// An engine in `dir` with dataset `t` (key `k`, value `v`): version 1 holds keys
    /// `0..n` with value 1, version 2 the same with key 0's value changed.
    async fn two_versions(dir: &std::path::Path, n: i64) -> Engine {
        use crate::definition::Attribute;
        let e = Engine::open_dir(dir, crate::EngineConfig::default())
            .await
            .unwrap();
        let def = DatasetDefinition {
            name: "t".into(),
            owner: "o".into(),
            description: String::new(),
            primary_key: vec!["k".into()],
            attributes: vec![
                Attribute::new("k", DataType::Int64, "key"),
                Attribute::new("v", DataType::Int64, "value"),
            ],
        };
        e.create_dataset(def).await.unwrap();
        let schema = e.definition("t").unwrap().arrow_schema();
        let batch = |keys: Vec<i64>, v: i64| {
            let values = vec![v; keys.len()];
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(arrow::array::Int64Array::from(keys)),
                    Arc::new(arrow::array::Int64Array::from(values)),
                ],
            )
            .unwrap()
        };
        e.load_batches("t", vec![batch((0..n).collect(), 1)])
            .await
            .unwrap();
        e.apply_changes("t", vec![batch(vec![0], 2)]).await.unwrap();
        e
    }

    /// Reading a kept version or its changes never queues behind a load, which holds the
    /// commit lock for its whole validate-and-write.
    #[tokio::test]
    async fn change_reads_do_not_wait_for_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let e = two_versions(dir.path(), 100).await;
        let state = e.state("t").unwrap();
        // Forget the version replaced by the change set, so that it is read back.
        state.recent.lock().previous = None;
        let _commit = state.commit.lock().await;
        let quick = Duration::from_secs(30);
        let v1 = tokio::time::timeout(quick, e.snapshot_at("t", 1))
            .await
            .expect("snapshot_at waited for the commit lock")
            .unwrap();
        assert_eq!(v1.version(), 1);
        let feed = tokio::time::timeout(quick, e.change_feed("t", 1, &Access::Unrestricted))
            .await
            .expect("change_feed waited for the commit lock")
            .unwrap();
        assert_eq!((feed.upserts.len(), feed.deletes.len()), (1, 0));
        // A version read back stays reachable while it is in use.
        assert!(Arc::ptr_eq(&e.snapshot_at("t", 1).await.unwrap(), &v1));
        assert!(Arc::ptr_eq(&feed.from_view().snapshot, &v1));
        let versions = tokio::time::timeout(quick, e.versions("t"))
            .await
            .expect("versions waited for the commit lock")
            .unwrap();
        assert_eq!(versions.len(), 2);
    }

    /// Reads of older versions and diffs are bounded engine-wide; a request that cannot get
    /// a worker in time is refused as resources exhausted, not queued without end.
    #[tokio::test]
    async fn change_work_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = two_versions(dir.path(), 100).await;
        e.change_wait = Duration::from_millis(50);
        let held: Vec<_> = (0..CHANGE_WORKERS)
            .map(|_| e.change_workers.try_acquire().unwrap())
            .collect();
        let err = e.changes("t", 1).await.unwrap_err();
        assert!(
            matches!(&err, Error::ResourcesExhausted(m) if m.contains("`t`") && m.contains("try again")),
            "{err}"
        );
        let err = e
            .change_feed("t", 1, &Access::Unrestricted)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ResourcesExhausted(_)), "{err}");
        // What needs no work is answered: the current version, a version held in memory,
        // and refusals.
        assert!(e.change_feed("t", 2, &Access::Unrestricted).await.is_ok());
        assert_eq!(e.snapshot_at("t", 1).await.unwrap().version(), 1);
        assert!(matches!(
            e.changes("t", 7).await,
            Err(Error::VersionNotKept { version: 7, .. })
        ));
        drop(held);
        let c = e.changes("t", 1).await.unwrap();
        assert_eq!(c.updated.len(), 1);
    }
}

//! Snapshots: immutable, numbered versions of a dataset held in memory as Arrow chunks, with
//! their primary-key index and the row bitmaps of row scopes evaluated on them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::BatchCoalescer;
use arrow::datatypes::{DataType, Field, SchemaRef};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use roaring::RoaringBitmap;

use crate::definition::DatasetDefinition;
use crate::error::{Error, Result};
use crate::index::{Duplicates, KeyValue, PrimaryKeyIndex};
use crate::mask::{Grant, ResolvedMask};

/// log2 of the rows per chunk. Row ids are `chunk << CHUNK_SHIFT | offset`.
pub const CHUNK_SHIFT: u32 = 16;
/// Rows per chunk (every chunk but the last is full).
pub const CHUNK_ROWS: usize = 1 << CHUNK_SHIFT;
/// Most rows a snapshot may hold (row ids are `u32`).
pub const MAX_ROWS: usize = u32::MAX as usize;

/// Row id of `offset` in `chunk`.
#[inline]
pub fn row_id(chunk: usize, offset: usize) -> u32 {
    ((chunk << CHUNK_SHIFT) | offset) as u32
}

/// (chunk, offset) of a row id.
#[inline]
pub fn split_row_id(row: u32) -> (usize, usize) {
    (
        (row >> CHUNK_SHIFT) as usize,
        (row as usize) & (CHUNK_ROWS - 1),
    )
}

/// Commit times of snapshots.
pub type Timestamp = DateTime<Utc>;

/// The current time, as a snapshot commit time.
pub fn now() -> Timestamp {
    Utc::now()
}

/// An immutable version of a dataset.
#[derive(Debug)]
pub struct Snapshot {
    definition: Arc<DatasetDefinition>,
    version: u64,
    created_at: DateTime<Utc>,
    schema: SchemaRef,
    chunks: Vec<RecordBatch>,
    rows: usize,
    index: PrimaryKeyIndex,
    /// Row bitmaps of row scopes (SQL predicates) evaluated on this snapshot.
    scopes: Mutex<HashMap<String, Arc<RoaringBitmap>>>,
    /// Resolved masks for sets of grants, so that a caller's mask is computed once per version.
    masks: Mutex<HashMap<Vec<Grant>, Arc<ResolvedMask>>>,
}

impl Snapshot {
    /// Validate `batches` against the definition and build a snapshot with its index.
    ///
    /// Refuses (naming the column) a missing, extra or mistyped column and a null in a
    /// non-nullable column, and (with their count and first keys) null or duplicate keys.
    pub fn build(
        definition: Arc<DatasetDefinition>,
        version: u64,
        created_at: DateTime<Utc>,
        batches: Vec<RecordBatch>,
    ) -> Result<Self> {
        let schema = definition.arrow_schema();
        let refuse = |reason: String| Error::LoadRefused {
            dataset: definition.name.clone(),
            reason,
        };
        let mut coalescer = BatchCoalescer::new(Arc::clone(&schema), CHUNK_ROWS);
        let mut chunks = Vec::new();
        let mut rows = 0usize;
        let width = schema.fields().len();
        // Nulls in non-nullable columns: (count, first row) per column.
        let mut bad_nulls: Vec<(usize, usize)> = vec![(0, 0); width];
        let mut any_bad = false;
        for batch in batches {
            if batch.num_rows() == 0 {
                continue;
            }
            let columns = conform(&definition, &schema, &batch).map_err(refuse)?;
            for (i, c) in columns.iter().enumerate() {
                if !schema.field(i).is_nullable() && c.null_count() > 0 {
                    let (count, first) = &mut bad_nulls[i];
                    if *count == 0 {
                        *first = rows + first_null(c.as_ref());
                    }
                    *count += c.null_count();
                    any_bad = true;
                }
            }
            rows += batch.num_rows();
            if rows > MAX_ROWS {
                return Err(refuse(format!("more than {MAX_ROWS} rows")));
            }
            if any_bad {
                continue; // keep counting, build nothing
            }
            coalescer.push_batch(RecordBatch::try_new(Arc::clone(&schema), columns)?)?;
            while let Some(b) = coalescer.next_completed_batch() {
                chunks.push(b);
            }
        }
        if let Some((i, &(count, first))) = bad_nulls.iter().enumerate().find(|(_, (c, _))| *c > 0)
        {
            return Err(refuse(nulls_message(
                &definition,
                schema.field(i).name(),
                count,
                first,
            )));
        }
        coalescer.finish_buffered_batch()?;
        while let Some(b) = coalescer.next_completed_batch() {
            chunks.push(b);
        }
        Self::from_chunks(definition, version, created_at, chunks)
    }

    /// A snapshot of chunks whose data is already valid for `definition` (checked by
    /// [`Snapshot::build`] or by a change set): builds the index, refusing duplicate keys,
    /// without validating the data again.
    ///
    /// Every chunk but the last must hold [`CHUNK_ROWS`] rows, in the definition's schema.
    pub(crate) fn from_chunks(
        definition: Arc<DatasetDefinition>,
        version: u64,
        created_at: DateTime<Utc>,
        chunks: Vec<RecordBatch>,
    ) -> Result<Self> {
        let schema = definition.arrow_schema();
        let refuse = |reason: String| Error::LoadRefused {
            dataset: definition.name.clone(),
            reason,
        };
        if let Some((c, _)) = chunks.iter().enumerate().find(|(c, b)| {
            (*c + 1 < chunks.len() && b.num_rows() != CHUNK_ROWS)
                || b.num_columns() != schema.fields().len()
        }) {
            return Err(Error::internal(format!(
                "dataset `{}` version {version}: chunk {c} breaks the chunk layout",
                definition.name
            )));
        }
        let rows: usize = chunks.iter().map(RecordBatch::num_rows).sum();
        if rows > MAX_ROWS {
            return Err(refuse(format!("more than {MAX_ROWS} rows")));
        }
        let key_chunks: Vec<Vec<ArrayRef>> = definition
            .key_ordinals()
            .into_iter()
            .map(|k| chunks.iter().map(|c| Arc::clone(c.column(k))).collect())
            .collect();
        let (index, dups) = PrimaryKeyIndex::build(&key_chunks, rows).map_err(|e| {
            refuse(format!(
                "primary key ({}): {e}",
                definition.primary_key.join(", ")
            ))
        })?;
        if dups.count > 0 {
            return Err(refuse(duplicates_message(&definition, &dups)));
        }
        Ok(Snapshot {
            definition,
            version,
            created_at,
            schema,
            chunks,
            rows,
            index,
            scopes: Mutex::new(HashMap::new()),
            masks: Mutex::new(HashMap::new()),
        })
    }

    /// The dataset definition this snapshot was validated against.
    pub fn definition(&self) -> &Arc<DatasetDefinition> {
        &self.definition
    }

    /// Dataset name.
    pub fn dataset(&self) -> &str {
        &self.definition.name
    }

    /// Version number (1, 2, ...).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the snapshot was committed.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The full (unmasked) schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Row count.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// The chunks (every one but the last holds [`CHUNK_ROWS`] rows).
    pub fn chunks(&self) -> &[RecordBatch] {
        &self.chunks
    }

    /// The primary-key index.
    pub fn index(&self) -> &PrimaryKeyIndex {
        &self.index
    }

    /// Bytes held by the Arrow data of this snapshot.
    pub fn arrow_memory_size(&self) -> usize {
        self.chunks
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    /// Bytes held by the snapshot: Arrow data plus index.
    pub fn memory_size(&self) -> usize {
        self.arrow_memory_size() + self.index.memory_size()
    }

    /// Parse a textual key (as given in a URL) into a typed key for this dataset.
    ///
    /// A multi-column key is written with its parts separated by `,`.
    pub fn parse_key(&self, text: &str) -> Result<Vec<KeyValue>> {
        let arity = self.index.arity();
        let parts: Vec<&str> = if arity == 1 {
            vec![text]
        } else {
            text.split(',').collect()
        };
        if parts.len() != arity {
            return Err(Error::InvalidKey {
                dataset: self.dataset().to_owned(),
                reason: format!(
                    "the key has {arity} parts ({}), separated by `,`; got {}",
                    self.definition.primary_key.join(", "),
                    parts.len()
                ),
            });
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(k, p)| {
                if self.index.part_is_int(k) {
                    p.trim()
                        .parse::<i64>()
                        .map(KeyValue::Int)
                        .map_err(|_| Error::InvalidKey {
                            dataset: self.dataset().to_owned(),
                            reason: format!(
                                "key column `{}` is an integer; `{p}` is not",
                                self.definition.primary_key[k]
                            ),
                        })
                } else {
                    Ok(KeyValue::Str(p.to_owned()))
                }
            })
            .collect()
    }

    /// The rows matching a row scope predicate, evaluated once per snapshot and cached.
    pub fn scope_rows(&self, predicate: &str) -> Result<Arc<RoaringBitmap>> {
        if let Some(b) = self.scopes.lock().get(predicate) {
            return Ok(Arc::clone(b));
        }
        let bitmap = Arc::new(crate::scope::evaluate(self, predicate)?);
        self.scopes
            .lock()
            .entry(predicate.to_owned())
            .or_insert_with(|| Arc::clone(&bitmap));
        Ok(bitmap)
    }

    /// The mask for a set of grants on this snapshot, resolved once and cached.
    pub fn mask_for(&self, grants: &[Grant]) -> Result<Arc<ResolvedMask>> {
        if let Some(m) = self.masks.lock().get(grants) {
            return Ok(Arc::clone(m));
        }
        let mask = Arc::new(ResolvedMask::resolve(self, grants)?);
        let mut cache = self.masks.lock();
        // A bounded cache: masks are cheap to recompute, memory is not free.
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(grants.to_vec(), Arc::clone(&mask));
        Ok(mask)
    }
}

/// Check one incoming batch against the definition and bring it to the definition's schema
/// (column order, and the string type family and dictionaries cast to the defined type).
pub(crate) fn conform(
    definition: &DatasetDefinition,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> std::result::Result<Vec<ArrayRef>, String> {
    check_attributes(definition, batch)?;
    schema
        .fields()
        .iter()
        .map(|field| conform_column(field, batch))
        .collect()
}

/// Refuse a batch column that is not an attribute of the dataset.
pub(crate) fn check_attributes(
    definition: &DatasetDefinition,
    batch: &RecordBatch,
) -> std::result::Result<(), String> {
    match batch
        .schema_ref()
        .fields()
        .iter()
        .find(|f| definition.attribute(f.name()).is_none())
    {
        Some(f) => Err(format!(
            "column `{}` is not an attribute of the dataset",
            f.name()
        )),
        None => Ok(()),
    }
}

/// The column of `batch` for the defined `field`, cast to the defined type when compatible.
/// Nullability is not checked here: only the values count, checked by the caller.
pub(crate) fn conform_column(
    field: &Field,
    batch: &RecordBatch,
) -> std::result::Result<ArrayRef, String> {
    let Some((i, got)) = batch.schema_ref().column_with_name(field.name()) else {
        return Err(format!("column `{}` is missing", field.name()));
    };
    let col = batch.column(i);
    if got.data_type() == field.data_type() {
        Ok(Arc::clone(col))
    } else if compatible(got.data_type(), field.data_type()) {
        arrow::compute::cast(col, field.data_type())
            .map_err(|e| format!("column `{}`: {e}", field.name()))
    } else {
        Err(format!(
            "column `{}` has type {}; the dataset defines {}",
            field.name(),
            got.data_type(),
            field.data_type()
        ))
    }
}

/// Types that hold the same values and are converted on load without loss.
pub(crate) fn compatible(got: &DataType, want: &DataType) -> bool {
    let strings = [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View];
    let binaries = [
        DataType::Binary,
        DataType::LargeBinary,
        DataType::BinaryView,
    ];
    match got {
        DataType::Dictionary(_, value) => value.as_ref() == want || compatible(value, want),
        g if strings.contains(g) => strings.contains(want),
        g if binaries.contains(g) => binaries.contains(want),
        _ => false,
    }
}

/// The refusal of `count` nulls in the non-nullable column `name`, the first at row `first`.
pub(crate) fn nulls_message(
    definition: &DatasetDefinition,
    name: &str,
    count: usize,
    first: usize,
) -> String {
    let what = if definition.primary_key.iter().any(|k| k == name) {
        "primary key column"
    } else {
        "required column"
    };
    format!("{what} `{name}` has {count} null value(s) (first at row {first})")
}

pub(crate) fn first_null(a: &dyn Array) -> usize {
    (0..a.len()).find(|&i| a.is_null(i)).unwrap_or(0)
}

fn duplicates_message(def: &DatasetDefinition, dups: &Duplicates) -> String {
    format!(
        "primary key ({}) has {} duplicate value(s), first: {}",
        def.primary_key.join(", "),
        dups.count,
        dups.examples_text(def)
    )
}

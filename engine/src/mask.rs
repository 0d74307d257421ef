//! Access masks: which cells of a snapshot a caller may see.
//!
//! A caller's access to a dataset is a set of [`Grant`]s (one per active agreement): each
//! names attributes and optionally a row scope. A cell (row, attribute) is visible iff some
//! grant covers both. Resolved against a snapshot, the grants become a [`ResolvedMask`]:
//! a roaring bitmap of permitted column ordinals, an optional roaring bitmap of permitted row
//! ids, and for each column whose rows differ from the view's rows, its own row bitmap (cells
//! outside it read as null).
//!
//! Every read path — the DataFusion scan, point lookups, Flight streams, exports — goes
//! through [`ResolvedMask::apply_chunk`] or [`ResolvedMask::take_rows`]; there is no other
//! copy of these rules. A hidden cell is removed from the bytes, not only marked null
//! (`crate::scrub`): nothing of it is left in any buffer that leaves the process.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{filter_record_batch, interleave};
use arrow::datatypes::SchemaRef;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scrub::{compact, needs_compaction, scrub};
use crate::snapshot::{CHUNK_SHIFT, Snapshot, split_row_id};

/// One grant of access to a dataset: attributes, and optionally the rows they apply to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Attribute names granted.
    pub attributes: Vec<String>,
    /// A SQL predicate over the dataset's columns selecting the rows granted
    /// (e.g. `municipality = 'Rīga'`); `None` grants every row.
    #[serde(default)]
    pub row_scope: Option<String>,
    /// The agreement this grant comes from (named in access records); `None` for grants
    /// that are not agreements (an owner reading its own dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<String>,
}

impl Grant {
    /// A grant of these attributes on every row.
    pub fn attributes<S: Into<String>>(attributes: impl IntoIterator<Item = S>) -> Self {
        Grant {
            attributes: attributes.into_iter().map(Into::into).collect(),
            row_scope: None,
            agreement: None,
        }
    }

    /// Label the grant with the agreement it comes from.
    pub fn with_agreement(mut self, agreement: impl Into<String>) -> Self {
        self.agreement = Some(agreement.into());
        self
    }

    /// Restrict the grant to the rows matching `predicate`.
    pub fn with_row_scope(mut self, predicate: impl Into<String>) -> Self {
        self.row_scope = Some(predicate.into());
        self
    }
}

/// A caller's grants resolved against one snapshot.
#[derive(Debug)]
pub struct ResolvedMask {
    /// Permitted column ordinals (of the snapshot schema).
    columns: RoaringBitmap,
    /// The same, in order, as `usize`.
    ordinals: Vec<usize>,
    /// Permitted rows; `None` means every row.
    rows: Option<Arc<RoaringBitmap>>,
    /// Per permitted column (aligned with `ordinals`): the rows where its cells are visible,
    /// when that is fewer than `rows`.
    column_rows: Vec<Option<Arc<RoaringBitmap>>>,
    /// Positions (in `ordinals`) of the primary-key columns; `None` when some key column
    /// is not granted, so records cannot be addressed by key.
    key_positions: Option<Vec<usize>>,
    /// The masked schema: only permitted columns.
    schema: SchemaRef,
    /// The agreements behind the grants that resolved, with the columns and rows each grants.
    sources: Vec<(String, RoaringBitmap, Option<Arc<RoaringBitmap>>)>,
}

impl ResolvedMask {
    /// Resolve grants against a snapshot. Refuses grants that permit no attribute of it.
    pub fn resolve(snapshot: &Snapshot, grants: &[Grant]) -> Result<Self> {
        let dataset = snapshot.dataset();
        let definition = snapshot.definition();
        // (columns, rows) of each grant. A granted attribute that this snapshot does not have
        // (removed by an accepted schema change, or not yet loaded) grants nothing.
        let mut resolved: Vec<(RoaringBitmap, Option<Arc<RoaringBitmap>>)> = Vec::new();
        let mut sources: Vec<(String, RoaringBitmap, Option<Arc<RoaringBitmap>>)> = Vec::new();
        let mut scope_error = None;
        for g in grants {
            let cols: RoaringBitmap = g
                .attributes
                .iter()
                .filter_map(|a| definition.ordinal(a))
                .map(|o| o as u32)
                .collect();
            if cols.is_empty() {
                continue;
            }
            let rows = match &g.row_scope {
                None => None,
                Some(p) => match snapshot.scope_rows(p) {
                    Ok(rows) => Some(rows),
                    // A scope this snapshot cannot evaluate (e.g. a column it lacks) grants
                    // nothing; the caller's other grants still hold.
                    Err(e) => {
                        tracing::warn!(dataset, error = %e, "a grant's row scope does not fit this snapshot; the grant is ignored");
                        scope_error.get_or_insert(e);
                        continue;
                    }
                },
            };
            if let Some(a) = &g.agreement {
                sources.push((a.clone(), cols.clone(), rows.clone()));
            }
            resolved.push((cols, rows));
        }
        if resolved.is_empty() {
            // Nothing granted: say why when a scope was at fault (evaluation errors are
            // generic: `scope::evaluate`).
            return Err(scope_error.unwrap_or_else(|| Error::AccessDenied(dataset.to_owned())));
        }
        let columns = resolved
            .iter()
            .fold(RoaringBitmap::new(), |acc, (c, _)| acc | c);
        let rows = union_rows(resolved.iter().map(|(_, r)| r));
        let ordinals: Vec<usize> = columns.iter().map(|c| c as usize).collect();
        let column_rows: Vec<Option<Arc<RoaringBitmap>>> = ordinals
            .iter()
            .map(|&o| {
                let col_rows = union_rows(
                    resolved
                        .iter()
                        .filter(|(c, _)| c.contains(o as u32))
                        .map(|(_, r)| r),
                );
                match (&col_rows, &rows) {
                    (None, _) => None,
                    (Some(c), Some(v)) if c == v => None,
                    (Some(c), _) => Some(Arc::clone(c)),
                }
            })
            .collect();
        let projected = snapshot.schema().project(&ordinals)?;
        // A column whose cells are hidden on some visible rows reads as null there.
        let fields: Vec<arrow::datatypes::FieldRef> = projected
            .fields()
            .iter()
            .zip(&column_rows)
            .map(|(f, cells)| match cells {
                Some(_) if !f.is_nullable() => Arc::new(f.as_ref().clone().with_nullable(true)),
                _ => Arc::clone(f),
            })
            .collect();
        let schema = Arc::new(arrow::datatypes::Schema::new_with_metadata(
            fields,
            projected.metadata().clone(),
        ));
        let key_positions = key_positions(snapshot, &ordinals);
        Ok(ResolvedMask {
            columns,
            ordinals,
            rows,
            column_rows,
            key_positions,
            schema,
            sources,
        })
    }

    /// A mask that shows everything (used for owners' own exports and internal jobs).
    pub fn everything(snapshot: &Snapshot) -> Self {
        let n = snapshot.schema().fields().len();
        ResolvedMask {
            columns: (0..n as u32).collect(),
            ordinals: (0..n).collect(),
            rows: None,
            column_rows: vec![None; n],
            key_positions: key_positions(snapshot, &(0..n).collect::<Vec<_>>()),
            schema: Arc::clone(snapshot.schema()),
            sources: Vec::new(),
        }
    }

    /// The agreements whose grants cover any of the snapshot columns `ordinals` on any of
    /// `rows`, sorted.
    pub fn agreements(
        &self,
        ordinals: &std::collections::BTreeSet<usize>,
        rows: &RoaringBitmap,
    ) -> Vec<String> {
        let mut out: Vec<String> = self
            .sources
            .iter()
            .filter(|(_, cols, scope)| {
                ordinals.iter().any(|&o| cols.contains(o as u32))
                    && scope.as_ref().is_none_or(|s| !s.is_disjoint(rows))
            })
            .map(|(a, _, _)| a.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The visible row ids of chunk `chunk` (of `len` rows).
    pub fn chunk_rows(&self, chunk: usize, len: usize) -> RoaringBitmap {
        let base = (chunk << CHUNK_SHIFT) as u32;
        let range = base..base + len as u32;
        match &self.rows {
            None => {
                let mut b = RoaringBitmap::new();
                b.insert_range(range);
                b
            }
            Some(rows) => {
                let mut b = RoaringBitmap::new();
                b.insert_range(range);
                b &= rows.as_ref();
                b
            }
        }
    }

    /// Snapshot ordinals of the projected (mask-position) columns; all when `None`.
    pub fn snapshot_ordinals(&self, projection: Option<&[usize]>) -> Vec<usize> {
        self.picks(projection)
            .into_iter()
            .map(|m| self.ordinals[m])
            .collect()
    }

    /// The masked schema (only permitted columns, in dataset order).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Permitted column ordinals as a bitmap.
    pub fn column_bitmap(&self) -> &RoaringBitmap {
        &self.columns
    }

    /// Permitted column ordinals of the snapshot schema, in order.
    pub fn ordinals(&self) -> &[usize] {
        &self.ordinals
    }

    /// Permitted rows (`None` = all rows).
    pub fn rows(&self) -> Option<&RoaringBitmap> {
        self.rows.as_deref()
    }

    /// Whether the row id is visible.
    #[inline]
    pub fn row_visible(&self, row: u32) -> bool {
        self.rows.as_ref().is_none_or(|r| r.contains(row))
    }

    /// Whether the row is visible *and* its key cells are visible: a record may be addressed
    /// by key (lookups, key filters) only then, or a caller could probe keys it cannot see.
    #[inline]
    pub fn keyed_row_visible(&self, row: u32) -> bool {
        self.row_visible(row)
            && self.key_positions.as_ref().is_some_and(|ks| {
                ks.iter()
                    .all(|&m| self.column_rows[m].as_ref().is_none_or(|c| c.contains(row)))
            })
    }

    /// Whether the cell of permitted column `m` (index into the masked schema) on `row` is
    /// visible: the row is, and the column's cells on it are.
    #[inline]
    pub fn cell_visible(&self, m: usize, row: u32) -> bool {
        self.row_visible(row) && self.column_rows[m].as_ref().is_none_or(|c| c.contains(row))
    }

    /// Whether every primary-key column is granted (records can be addressed by key).
    pub fn key_granted(&self) -> bool {
        self.key_positions.is_some()
    }

    /// Whether the cells of permitted column `m` (index into the masked schema) are visible
    /// on every visible row.
    pub fn column_whole(&self, m: usize) -> bool {
        self.column_rows.get(m).is_some_and(Option::is_none)
    }

    /// Indices into the masked schema that a projection selects (all when `None`).
    fn picks(&self, projection: Option<&[usize]>) -> Vec<usize> {
        projection.map_or_else(|| (0..self.ordinals.len()).collect(), <[usize]>::to_vec)
    }

    /// Number of rows visible in a snapshot of `total` rows.
    pub fn visible_rows(&self, total: usize) -> usize {
        self.rows.as_ref().map_or(total, |r| r.len() as usize)
    }

    /// The masked schema projected to `projection` (indices into the masked schema).
    pub fn projected_schema(&self, projection: Option<&[usize]>) -> Result<SchemaRef> {
        Ok(match projection {
            None => Arc::clone(&self.schema),
            Some(p) => Arc::new(self.schema.project(p)?),
        })
    }

    /// Look up a column of the masked view by name; errors name the attribute when it is
    /// not visible to the caller.
    pub fn index_of(&self, dataset: &str, name: &str) -> Result<usize> {
        self.schema.index_of(name).map_err(|_| {
            Error::AttributeNotVisible(format!(
                "attribute `{name}` of dataset `{dataset}` does not exist or is not granted to you"
            ))
        })
    }

    /// The masked content of chunk `chunk` of `snapshot`: only permitted rows, only the
    /// projected permitted columns, cells outside their column's rows set to null.
    /// Returns `None` when no row of the chunk is visible.
    pub fn apply_chunk(
        &self,
        snapshot: &Snapshot,
        chunk: usize,
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<Option<RecordBatch>> {
        let batch = &snapshot.chunks()[chunk];
        let len = batch.num_rows();
        let base = (chunk << CHUNK_SHIFT) as u32;
        let picks = self.picks(projection);
        let row_filter = match &self.rows {
            None => None,
            Some(rows) => {
                let visible = rows.range_cardinality(base..base + len as u32) as usize;
                if visible == 0 {
                    return Ok(None);
                }
                if visible == len {
                    None
                } else {
                    Some(BooleanArray::new(bits_of(rows, base, len), None))
                }
            }
        };
        let mut columns = Vec::with_capacity(picks.len());
        for &m in &picks {
            let col = batch.column(self.ordinals[m]);
            columns.push(match &self.column_rows[m] {
                None => Arc::clone(col),
                Some(cells) => scrub(col, Some(&bits_of(cells, base, len)))?,
            });
        }
        let out = RecordBatch::try_new_with_options(
            Arc::clone(schema),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(len)),
        )?;
        Ok(Some(match row_filter {
            None => out,
            // A filter leaves dictionaries and view buffers whole: compact them so that the
            // rows left out do not travel in them.
            Some(f) => compact_batch(filter_record_batch(&out, &f)?)?,
        }))
    }

    /// The masked rows of `row_ids` (in the order given, invisible rows dropped), projected.
    pub fn take_rows(
        &self,
        snapshot: &Snapshot,
        row_ids: &[u32],
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        let rows: Vec<u32> = row_ids
            .iter()
            .copied()
            .filter(|&r| self.row_visible(r))
            .collect();
        let picks = self.picks(projection);
        if rows.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(schema)));
        }
        let chunks = snapshot.chunks();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(picks.len());
        let positions: Vec<(usize, usize)> = rows.iter().map(|&r| split_row_id(r)).collect();
        for &m in &picks {
            let ordinal = self.ordinals[m];
            let col = if let [(c, o)] = positions[..] {
                chunks[c].column(ordinal).slice(o, 1)
            } else {
                let sources: Vec<&dyn Array> =
                    chunks.iter().map(|c| c.column(ordinal).as_ref()).collect();
                interleave(&sources, &positions)?
            };
            // A take or a slice leaves dictionaries and view buffers whole: the scrub (or
            // the compaction) keeps only what the taken rows show.
            columns.push(match &self.column_rows[m] {
                None => compact(&col)?,
                Some(cells) => {
                    let bits = BooleanBuffer::from_iter(rows.iter().map(|r| cells.contains(*r)));
                    scrub(&col, Some(&bits))?
                }
            });
        }
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?)
    }
}

fn key_positions(snapshot: &Snapshot, ordinals: &[usize]) -> Option<Vec<usize>> {
    snapshot
        .definition()
        .key_ordinals()
        .iter()
        .map(|k| ordinals.iter().position(|o| o == k))
        .collect()
}

fn union_rows<'a>(
    rows: impl Iterator<Item = &'a Option<Arc<RoaringBitmap>>>,
) -> Option<Arc<RoaringBitmap>> {
    let mut out: Option<Arc<RoaringBitmap>> = None;
    for r in rows {
        let r = r.as_ref()?;
        match &mut out {
            None => out = Some(Arc::clone(r)),
            Some(acc) => *Arc::make_mut(acc) |= r.as_ref(),
        }
    }
    Some(out.unwrap_or_default())
}

/// Bits `base..base + len` of a bitmap as a boolean buffer of `len` bits.
fn bits_of(bitmap: &RoaringBitmap, base: u32, len: usize) -> BooleanBuffer {
    let mut bits = arrow::array::BooleanBufferBuilder::new(len);
    bits.append_n(len, false);
    for r in bitmap.range(base..base + len as u32) {
        bits.set_bit((r - base) as usize, true);
    }
    bits.finish()
}

/// The batch with its dictionary and view columns compacted (see [`compact`]).
fn compact_batch(batch: RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| needs_compaction(f.data_type()))
    {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .map(compact)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

//! The DataFusion view of a dataset for one caller: [`MaskedTable`], a `TableProvider` whose
//! schema holds only the caller's permitted attributes and whose scans return only permitted
//! rows and cells. Projections are pushed into the scan, and primary-key `=` / `IN` filters
//! are answered from the index instead of a scan.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

use crate::engine::MaskedView;
use crate::index::{Key, KeyValue};

/// A caller's masked view of one dataset snapshot, as a DataFusion table.
#[derive(Debug, Clone)]
pub struct MaskedTable {
    view: MaskedView,
    partitions: usize,
}

impl MaskedTable {
    /// A table over `view`, scanned with up to `partitions` parallel partitions.
    pub fn new(view: MaskedView, partitions: usize) -> Self {
        Self {
            view,
            partitions: partitions.max(1),
        }
    }

    /// The view this table reads.
    pub fn view(&self) -> &MaskedView {
        &self.view
    }

    /// The name of the single primary-key column, when it is visible to the caller.
    fn key_column(&self) -> Option<&str> {
        let def = self.view.snapshot.definition();
        let mask = &self.view.mask;
        match def.primary_key.as_slice() {
            // Only when the key's cells are visible on every visible row: a key filter must
            // drop rows whose key reads as null to the caller, as a scan would.
            [k] => match mask.schema().index_of(k) {
                Ok(m) if mask.column_whole(m) => Some(k.as_str()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The keys a filter selects, if it is a primary-key `=` or `IN` filter we can answer
    /// exactly from the index.
    fn key_filter(&self, filter: &Expr) -> Option<BTreeSet<Key>> {
        let key = self.key_column()?;
        let int_key = self.view.snapshot.index().part_is_int(0);
        let is_key = |e: &Expr| matches!(e, Expr::Column(c) if c.name == key);
        let literal = |e: &Expr| -> Option<Option<KeyValue>> {
            let Expr::Literal(v, _) = e else { return None };
            key_literal(v, int_key)
        };
        let mut keys = BTreeSet::new();
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                let v = if is_key(left) {
                    literal(right)?
                } else if is_key(right) {
                    literal(left)?
                } else {
                    return None;
                };
                keys.extend(v.map(|v| vec![v]));
            }
            // The optimizer turns a short `IN` list into `k = a OR k = b`.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                keys.extend(self.key_filter(left)?);
                keys.extend(self.key_filter(right)?);
            }
            Expr::InList(list) if !list.negated && is_key(&list.expr) => {
                for e in &list.list {
                    keys.extend(literal(e)?.map(|v| vec![v]));
                }
            }
            _ => return None,
        }
        Some(keys)
    }
}

/// A literal as a key part: `Some(None)` when it can match no key (null, out of range),
/// `None` when its type does not fit the key (then the filter is not pushed down).
fn key_literal(v: &ScalarValue, int_key: bool) -> Option<Option<KeyValue>> {
    if v.is_null() {
        return Some(None);
    }
    match (v, int_key) {
        (
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            false,
        ) => Some(Some(KeyValue::Str(s.clone()))),
        (ScalarValue::Int8(Some(i)), true) => Some(Some(KeyValue::Int(i64::from(*i)))),
        (ScalarValue::Int16(Some(i)), true) => Some(Some(KeyValue::Int(i64::from(*i)))),
        (ScalarValue::Int32(Some(i)), true) => Some(Some(KeyValue::Int(i64::from(*i)))),
        (ScalarValue::Int64(Some(i)), true) => Some(Some(KeyValue::Int(*i))),
        (ScalarValue::UInt8(Some(i)), true) => Some(Some(KeyValue::Int(i64::from(*i)))),
        (ScalarValue::UInt16(Some(i)), true) => Some(Some(KeyValue::Int(i64::from(*i)))),
        (ScalarValue::UInt32(Some(i)), true) => Some(Some(KeyValue::Int(i64::from(*i)))),
        (ScalarValue::UInt64(Some(i)), true) => Some(i64::try_from(*i).ok().map(KeyValue::Int)),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for MaskedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(self.view.mask.schema())
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.key_filter(f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mask = &self.view.mask;
        let projection = projection.map(Vec::as_slice);
        let schema = mask.projected_schema(projection).map_err(external)?;
        // Key filters pushed down as Exact are all conjunctive: intersect their key sets.
        let mut keys: Option<BTreeSet<Key>> = None;
        for f in filters {
            let Some(k) = self.key_filter(f) else {
                return Err(DataFusionError::Internal(format!(
                    "filter `{f}` was pushed down but is not a key filter"
                )));
            };
            keys = Some(match keys {
                None => k,
                Some(prev) => prev.intersection(&k).cloned().collect(),
            });
        }
        if let Some(keys) = keys {
            let index = self.view.snapshot.index();
            let mut rows: Vec<u32> = keys
                .iter()
                .filter_map(|k| index.get(k))
                .filter(|&r| mask.keyed_row_visible(r))
                .collect();
            rows.sort_unstable();
            if let Some(l) = limit {
                rows.truncate(l);
            }
            let batch = self
                .view
                .take(&rows, projection, &schema)
                .map_err(external)?;
            return Ok(MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                schema,
                None,
            )?);
        }
        // Personal columns are noted now, before any data flows: a purpose is then required.
        self.view.note_projection(projection);
        let chunks = self.view.snapshot.chunks().len();
        let parts = self.partitions.min(chunks).max(1);
        let per = chunks.div_ceil(parts).max(1);
        let partitions: Vec<Arc<dyn PartitionStream>> = (0..parts)
            .map(|p| {
                Arc::new(ChunkPartition {
                    view: self.view.clone(),
                    chunks: (p * per..((p + 1) * per).min(chunks)).collect(),
                    projection: projection.map(<[usize]>::to_vec),
                    schema: Arc::clone(&schema),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            Arc::clone(&schema),
            partitions,
            None,
            [],
            false,
            limit,
        )?))
    }
}

fn external(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// One partition of a masked scan: a run of chunks.
struct ChunkPartition {
    view: MaskedView,
    chunks: Vec<usize>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
}

impl fmt::Debug for ChunkPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the mask: plans are shown to callers by EXPLAIN.
        write!(f, "ChunkPartition(chunks={})", self.chunks.len())
    }
}

impl PartitionStream for ChunkPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let view = self.view.clone();
        let projection = self.projection.clone();
        let schema = Arc::clone(&self.schema);
        let stream = futures::stream::iter(self.chunks.clone()).filter_map(move |c| {
            let out = view
                .chunk(c, projection.as_deref(), &schema)
                .map_err(external)
                .transpose();
            futures::future::ready(out)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        ))
    }
}

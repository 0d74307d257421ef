//! The read-only SQL entry point: a caller's query runs against a catalog that holds only
//! that caller's masked tables ([`MaskedTable`]), pinned to one snapshot per dataset for the
//! whole query.
//!
//! Only `SELECT` queries (with `WITH`, `UNION`, subqueries, joins, windows, ...) and
//! `EXPLAIN` of them are accepted; DDL, DML, `COPY`, external tables, settings changes and
//! other statements are refused before planning, and DataFusion's own `SQLOptions` check the
//! plan again. Memory is bounded by a shared DataFusion memory pool (no spilling to disk),
//! and the number of result rows by an optional limit.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, SchemaProvider,
    TableProvider,
};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion::prelude::{SQLOptions, SessionConfig};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::Stream;
use parking_lot::Mutex;

use crate::engine::{Access, Engine, MaskedView};
use crate::error::{Error, Result, from_query_error};
use crate::table::MaskedTable;

/// Longest SQL text accepted.
pub const MAX_SQL_LEN: usize = 64 * 1024;

/// Limits on queries.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Memory all running queries may use together for joins, sorts and aggregates, in bytes.
    pub memory_limit: usize,
    /// Most rows one query may return (`None` = no limit). Exceeding it fails the query.
    pub max_result_rows: Option<usize>,
    /// Parallel partitions per scan.
    pub target_partitions: usize,
    /// Rows per batch inside DataFusion operators.
    pub batch_size: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit: 2 << 30,
            max_result_rows: None,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch_size: 8192,
        }
    }
}

/// Shared DataFusion state: the runtime (memory pool) and a session template.
pub(crate) struct QueryEnv {
    template: SessionState,
    config: QueryConfig,
}

impl std::fmt::Debug for QueryEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEnv")
            .field("config", &self.config)
            .finish()
    }
}

impl QueryEnv {
    pub(crate) fn new(config: &QueryConfig) -> Result<Self> {
        let runtime: Arc<RuntimeEnv> = RuntimeEnvBuilder::new()
            .with_memory_limit(config.memory_limit, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(Error::internal)?;
        let session = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(config.target_partitions.max(1))
            .with_batch_size(config.batch_size.max(1))
            .with_default_catalog_and_schema("dagr", "public")
            .with_create_default_catalog_and_schema(false);
        let template = SessionStateBuilder::new()
            .with_config(session)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        Ok(Self {
            template,
            config: config.clone(),
        })
    }
}

/// The result of a query: its schema and a stream of batches.
pub struct QueryResult {
    /// Result schema.
    pub schema: SchemaRef,
    /// The batches; errors (including the row limit) arrive in the stream.
    pub stream: SendableRecordBatchStream,
    /// The datasets read, with the snapshot version each was pinned to.
    pub datasets: Vec<(String, u64)>,
}

impl std::fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryResult")
            .field("schema", &self.schema)
            .field("datasets", &self.datasets)
            .finish()
    }
}

impl QueryResult {
    /// Collect every batch (for small results and tests).
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        self.stream.try_collect().await.map_err(from_query_error)
    }
}

/// The `public` schema as one caller sees it: the datasets it can see, resolved lazily and
/// pinned to one snapshot each for the query.
struct CallerSchema {
    engine: Arc<Engine>,
    access: Access,
    partitions: usize,
    views: Mutex<HashMap<String, MaskedView>>,
}

impl std::fmt::Debug for CallerSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerSchema")
    }
}

impl CallerSchema {
    fn view(&self, name: &str) -> Result<Option<MaskedView>> {
        if let Some(v) = self.views.lock().get(name) {
            return Ok(Some(v.clone()));
        }
        if !self.access.can_see(name) {
            return Ok(None);
        }
        let view = match self.engine.view(name, &self.access) {
            Ok(v) => v,
            Err(Error::DatasetNotFound(_) | Error::NoSnapshot(_) | Error::AccessDenied(_)) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(
            self.views
                .lock()
                .entry(name.to_owned())
                .or_insert(view)
                .clone(),
        ))
    }
}

#[async_trait]
impl SchemaProvider for CallerSchema {
    fn table_names(&self) -> Vec<String> {
        self.engine
            .dataset_names()
            .into_iter()
            .filter(|n| self.access.can_see(n) && matches!(self.engine.current_opt(n), Ok(Some(_))))
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self
            .view(name)
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map(|v| Arc::new(MaskedTable::new(v, self.partitions)) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.access.can_see(name) && matches!(self.engine.current_opt(name), Ok(Some(_)))
    }
}

/// Refuse anything but a query (or `EXPLAIN` of one), naming what was refused.
fn check_read_only(statement: &DfStatement) -> Result<()> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::Query(_) => Ok(()),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(()),
                other => Err(refused(other)),
            },
            other => Err(refused(other)),
        },
        DfStatement::Explain(e) => check_read_only(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(Error::QueryRefused(
            "CREATE EXTERNAL TABLE is not allowed: only read-only SELECT queries are accepted"
                .into(),
        )),
        DfStatement::CopyTo(_) => Err(Error::QueryRefused(
            "COPY is not allowed: only read-only SELECT queries are accepted".into(),
        )),
        DfStatement::Reset(_) => Err(Error::QueryRefused(
            "RESET is not allowed: only read-only SELECT queries are accepted".into(),
        )),
    }
}

fn refused(s: &SqlStatement) -> Error {
    let text = s.to_string();
    let head: String = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Error::QueryRefused(format!(
        "`{head} ...` is not allowed: only read-only SELECT queries are accepted"
    ))
}

impl Engine {
    /// Run a read-only SQL query as a caller with `access`.
    ///
    /// The caller sees its permitted datasets as tables named like the datasets, each with
    /// only its permitted columns and rows; naming anything else is an error that names it.
    pub async fn query(self: &Arc<Self>, sql: &str, access: &Access) -> Result<QueryResult> {
        if sql.len() > MAX_SQL_LEN {
            return Err(Error::InvalidQuery(format!(
                "the query is {} bytes long; at most {MAX_SQL_LEN} are accepted",
                sql.len()
            )));
        }
        let env = &self.query_env;
        let schema = Arc::new(CallerSchema {
            engine: Arc::clone(self),
            access: access.clone(),
            partitions: env.config.target_partitions,
            views: Mutex::new(HashMap::new()),
        });
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema("public", Arc::clone(&schema) as Arc<dyn SchemaProvider>)
            .map_err(Error::internal)?;
        let catalogs = MemoryCatalogProviderList::new();
        datafusion::catalog::CatalogProviderList::register_catalog(
            &catalogs,
            "dagr".into(),
            Arc::new(catalog),
        );
        let state = SessionStateBuilder::new_from_existing(env.template.clone())
            .with_catalog_list(Arc::new(catalogs))
            .build();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(from_query_error)?;
        check_read_only(&statement)?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(from_query_error)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| Error::QueryRefused(from_query_error(e).to_string()))?;
        let df = datafusion::dataframe::DataFrame::new(state, plan);
        let stream = df.execute_stream().await.map_err(from_query_error)?;
        let mut datasets: Vec<(String, u64)> = schema
            .views
            .lock()
            .iter()
            .map(|(n, v)| (n.clone(), v.snapshot.version()))
            .collect();
        datasets.sort();
        let result_schema = stream.schema();
        let stream: SendableRecordBatchStream = match env.config.max_result_rows {
            None => stream,
            Some(max) => Box::pin(RowLimit {
                inner: stream,
                max,
                seen: 0,
            }),
        };
        Ok(QueryResult {
            schema: result_schema,
            stream,
            datasets,
        })
    }
}

/// Fails the stream once more than `max` rows have been produced.
struct RowLimit {
    inner: SendableRecordBatchStream,
    max: usize,
    seen: usize,
}

impl Stream for RowLimit {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.seen > self.max {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.seen += b.num_rows();
                if self.seen > self.max {
                    let max = self.max;
                    Poll::Ready(Some(Err(DataFusionError::External(Box::new(
                        Error::ResourcesExhausted(format!(
                            "the result has more than {max} rows; narrow the query or add LIMIT"
                        )),
                    )))))
                } else {
                    Poll::Ready(Some(Ok(b)))
                }
            }
            other => other,
        }
    }
}

impl RecordBatchStream for RowLimit {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

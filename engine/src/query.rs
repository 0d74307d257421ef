//! The read-only SQL entry point: a caller's query runs against a catalog that holds only
//! that caller's masked tables ([`MaskedTable`]), pinned to one snapshot per dataset for the
//! whole query.
//!
//! Only `SELECT` queries (with `WITH`, `UNION`, subqueries, joins, windows, ...) and
//! `EXPLAIN` of them are accepted; DDL, DML, `COPY`, external tables, settings changes and
//! other statements are refused before planning, and DataFusion's own `SQLOptions` check the
//! plan again. Memory is bounded by a shared DataFusion memory pool (no spilling to disk),
//! and the number of result rows by an optional limit.

use crate::deadline::Cancel;
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
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::Stream;
use parking_lot::Mutex;

use crate::audit::ReadLog;
use crate::engine::{Access, Engine, MaskedView};
use crate::error::{Error, Result, from_query_error};
use crate::table::MaskedTable;

/// Longest SQL text accepted.
pub const MAX_SQL_LEN: usize = 64 * 1024;

/// Most operators (`+`, `=`, `AND`, `||`, ...) one query may hold, by default. The parser
/// bounds nesting by brackets (its recursion limit), but a flat chain `1+1+1+...` parses into
/// a tree as deep as it is long, and the planner, the optimizer and the evaluation of
/// expressions recurse over that depth: tens of thousands of terms overflow a thread's stack
/// and abort the process.
pub const DEFAULT_MAX_SQL_OPERATORS: usize = 1_000;

/// Deepest bracket nesting accepted inside a string literal of a query: type strings (such as
/// `arrow_cast`'s second argument) are parsed recursively by Arrow, so they are bounded like
/// the type strings of dataset definitions.
pub const MAX_LITERAL_NESTING: usize = crate::definition::MAX_TYPE_DEPTH;

/// Deepest nesting of brackets (round or square) accepted in SQL and in row scopes and
/// ticket filters. sqlparser's time grows exponentially with the nesting of some constructs
/// (`CAST(CAST(...`, `POSITION(`, `CASE(`, `ARRAY[`: about 3x a level, seconds by 14-20
/// levels), well below its recursion limit, so nesting is refused on the tokens first.
pub const MAX_SQL_NESTING: usize = 12;

/// Refuse SQL text whose brackets nest deeper than [`MAX_SQL_NESTING`] (on the tokens, before
/// any parser runs). An untokenizable text is left to the parser, which reports it.
pub(crate) fn check_nesting(sql: &str) -> Result<()> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut depth = 0usize;
    for t in &tokens {
        match t {
            Token::LParen | Token::LBracket => {
                depth += 1;
                if depth > MAX_SQL_NESTING {
                    return Err(Error::InvalidQuery(format!(
                        "the expression nests brackets more than {MAX_SQL_NESTING} levels deep; \
                         at most {MAX_SQL_NESTING} are accepted"
                    )));
                }
            }
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

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
    /// Most operators one query may hold ([`DEFAULT_MAX_SQL_OPERATORS`]).
    pub max_operators: usize,
    /// Longest a query's result stream may run, from its start (`None` = no limit).
    /// Exceeding it fails the stream with a resource error.
    pub max_query_time: Option<std::time::Duration>,
}

/// Default of [`QueryConfig::max_query_time`].
pub const DEFAULT_MAX_QUERY_TIME: std::time::Duration = std::time::Duration::from_secs(300);

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit: 2 << 30,
            max_result_rows: None,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch_size: 8192,
            max_operators: DEFAULT_MAX_SQL_OPERATORS,
            max_query_time: Some(DEFAULT_MAX_QUERY_TIME),
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
        let mut template = SessionStateBuilder::new()
            .with_config(session)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        crate::bounded::bound_functions(&mut template).map_err(Error::internal)?;
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
    /// What the query hands out, for the audit: personal attributes are noted when the
    /// query is planned, rows as batches are produced.
    pub reads: ReadLog,
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
    log: ReadLog,
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
            Ok(v) => v.with_log(self.log.clone()),
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

impl QueryEnv {
    /// Parse one statement with the session's dialect and limits, refusing SQL over
    /// [`MAX_SQL_LEN`] and anything but a read-only query (before any planning).
    pub(crate) fn parse(&self, sql: &str) -> Result<DfStatement> {
        if sql.len() > MAX_SQL_LEN {
            return Err(Error::InvalidQuery(format!(
                "the query is {} bytes long; at most {MAX_SQL_LEN} are accepted",
                sql.len()
            )));
        }
        check_complexity(sql, self.config.max_operators)?;
        check_nesting(sql)?;
        let dialect = self.template.config().options().sql_parser.dialect;
        let statement = self
            .template
            .sql_to_statement(sql, &dialect)
            .map_err(from_query_error)?;
        check_read_only(&statement)?;
        Ok(statement)
    }

    /// Whether unquoted identifiers are folded to lower case, as the SQL planner does.
    pub(crate) fn normalizes_idents(&self) -> bool {
        self.template
            .config()
            .options()
            .sql_parser
            .enable_ident_normalization
    }

    /// Apply the configured result row limit to a stream.
    pub(crate) fn limit_rows(
        &self,
        stream: SendableRecordBatchStream,
    ) -> SendableRecordBatchStream {
        match self.config.max_result_rows {
            None => stream,
            Some(max) => Box::pin(RowLimit {
                inner: stream,
                max,
                seen: 0,
            }),
        }
    }
}

/// One caller's DataFusion session: a catalog of only that caller's masked tables, each
/// pinned to one snapshot on first use.
pub(crate) struct CallerSession {
    state: SessionState,
    schema: Arc<CallerSchema>,
}

impl CallerSession {
    /// A session whose `public` schema holds the datasets `access` may see.
    pub(crate) fn new(engine: &Arc<Engine>, access: &Access) -> Result<Self> {
        let env = &engine.query_env;
        let schema = Arc::new(CallerSchema {
            engine: Arc::clone(engine),
            access: access.clone(),
            partitions: env.config.target_partitions,
            views: Mutex::new(HashMap::new()),
            log: ReadLog::new(),
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
        Ok(Self { state, schema })
    }

    /// Plan a statement already checked by [`QueryEnv::parse`], and check the plan again
    /// with DataFusion's `SQLOptions` (no DDL, DML or statements).
    pub(crate) async fn plan(&self, statement: DfStatement) -> Result<LogicalPlan> {
        let plan = self
            .state
            .statement_to_plan(statement)
            .await
            .map_err(from_query_error)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| Error::QueryRefused(from_query_error(e).to_string()))?;
        Ok(plan)
    }

    /// The datasets planned so far, with the snapshot version each is pinned to, sorted.
    pub(crate) fn datasets(&self) -> Vec<(String, u64)> {
        pinned(&self.schema)
    }

    /// Start executing a plan, with the result row limit applied.
    /// The result schema of a plan and what it reads, without running it: the physical plan
    /// is made (its schema is the stream's) but not executed, so no partition starts.
    pub(crate) async fn describe(self, plan: LogicalPlan) -> Result<(SchemaRef, ReadLog)> {
        let Self { state, schema } = self;
        let physical = state
            .create_physical_plan(&plan)
            .await
            .map_err(from_query_error)?;
        Ok((physical.schema(), schema.log.clone()))
    }

    /// Every operator checks the time limit and `cancel` per batch (`deadline.rs`).
    pub(crate) async fn execute(
        self,
        env: &QueryEnv,
        plan: LogicalPlan,
        cancel: Cancel,
    ) -> Result<QueryResult> {
        let Self { state, schema } = self;
        let task = state.task_ctx();
        let physical = state
            .create_physical_plan(&plan)
            .await
            .map_err(from_query_error)?;
        let deadline = crate::deadline::Deadline::after(env.config.max_query_time, cancel);
        let physical =
            crate::deadline::with_deadline(physical, deadline).map_err(from_query_error)?;
        let stream =
            datafusion::physical_plan::execute_stream(physical, task).map_err(from_query_error)?;
        let datasets = pinned(&schema);
        let result_schema = stream.schema();
        Ok(QueryResult {
            schema: result_schema,
            stream: env.limit_rows(stream),
            datasets,
            reads: schema.log.clone(),
        })
    }
}

/// Refuse SQL whose expressions would be too deep for the recursive planner: more than
/// `max_operators` operators, or a string literal nested like a type string deeper than
/// [`MAX_LITERAL_NESTING`]. Runs on the tokens (the tokenizer does not recurse), before the
/// parser builds any tree.
fn check_complexity(sql: &str, max_operators: usize) -> Result<()> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

    // An untokenizable query is reported by the parser, with its position.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut operators = 0usize;
    for t in &tokens {
        let literal = match t {
            Token::SingleQuotedString(s)
            | Token::DoubleQuotedString(s)
            | Token::TripleSingleQuotedString(s)
            | Token::TripleDoubleQuotedString(s)
            | Token::EscapedStringLiteral(s)
            | Token::UnicodeStringLiteral(s)
            | Token::NationalStringLiteral(s)
            | Token::SingleQuotedRawStringLiteral(s)
            | Token::DoubleQuotedRawStringLiteral(s) => Some(s.as_str()),
            Token::DollarQuotedString(d) => Some(d.value.as_str()),
            _ => None,
        };
        if let Some(text) = literal {
            if bracket_depth(text) > MAX_LITERAL_NESTING {
                return Err(Error::InvalidQuery(format!(
                    "a string literal of the query nests brackets more than \
                     {MAX_LITERAL_NESTING} levels deep (type strings are limited to that)"
                )));
            }
            continue;
        }
        let operator = match t {
            Token::Word(w) => matches!(
                w.keyword,
                Keyword::AND
                    | Keyword::OR
                    | Keyword::NOT
                    | Keyword::IS
                    | Keyword::LIKE
                    | Keyword::ILIKE
                    | Keyword::BETWEEN
            ),
            Token::EOF
            | Token::Number(..)
            | Token::Placeholder(_)
            | Token::Comma
            | Token::Whitespace(_)
            | Token::LParen
            | Token::RParen
            | Token::LBracket
            | Token::RBracket
            | Token::Period
            | Token::SemiColon => false,
            _ => true,
        };
        if operator {
            operators += 1;
            if operators > max_operators {
                return Err(Error::InvalidQuery(format!(
                    "the query has more than {max_operators} operators; at most \
                     {max_operators} are accepted (split it, or use IN (...) lists)"
                )));
            }
        }
    }
    Ok(())
}

/// The deepest nesting of round and square brackets in `text` (what Arrow's type strings
/// nest with).
fn bracket_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The datasets a caller schema has resolved, with their pinned versions, sorted.
fn pinned(schema: &CallerSchema) -> Vec<(String, u64)> {
    let mut datasets: Vec<(String, u64)> = schema
        .views
        .lock()
        .iter()
        .map(|(n, v)| (n.clone(), v.snapshot.version()))
        .collect();
    datasets.sort();
    datasets
}

impl Engine {
    /// Run a read-only SQL query as a caller with `access`.
    ///
    /// The caller sees its permitted datasets as tables named like the datasets, each with
    /// only its permitted columns and rows; naming anything else is an error that names it.
    ///
    /// The query is parsed, planned and run on the bulk runtime ([`crate::pools`]); its
    /// batches reach the caller through a bounded channel.
    pub async fn query(self: &Arc<Self>, sql: &str, access: &Access) -> Result<QueryResult> {
        let (engine, sql, access) = (Arc::clone(self), sql.to_owned(), access.clone());
        self.run_on_bulk(move |cancel| async move {
            let statement = engine.query_env.parse(&sql)?;
            let session = CallerSession::new(&engine, &access)?;
            let plan = session.plan(statement).await?;
            session.execute(&engine.query_env, plan, cancel).await
        })
        .await
    }

    /// Plan `sql` for `access` exactly as [`Engine::query`] does — every refusal included —
    /// and run nothing: the result schema and what the query would read (its personal
    /// attributes, for the purpose check). For `GetFlightInfo`, which only describes.
    pub async fn describe(
        self: &Arc<Self>,
        sql: &str,
        access: &Access,
    ) -> Result<(SchemaRef, ReadLog)> {
        let (engine, sql, access) = (Arc::clone(self), sql.to_owned(), access.clone());
        self.pools()
            .run_bulk(async move {
                let statement = engine.query_env.parse(&sql)?;
                let session = CallerSession::new(&engine, &access)?;
                let plan = session.plan(statement).await?;
                session.describe(plan).await
            })
            .await?
    }

    /// Plan and start a query on the bulk runtime (`start`), and produce its batches there:
    /// the stream returned hands them over through a channel of
    /// [`crate::pools::BULK_STREAM_AHEAD`] places, so a caller that stops reading stops the
    /// query. `start` gets the query's [`Cancel`] flag (for `CallerSession::execute`): it is
    /// raised when the result is dropped — or the caller goes before it gets the result,
    /// since DataFusion starts partitions as soon as a plan is executed — which stops the
    /// query's operators at their next batch even inside one long poll, with shared pools
    /// too.
    pub(crate) async fn run_on_bulk<F>(
        &self,
        start: impl FnOnce(Cancel) -> F,
    ) -> Result<QueryResult>
    where
        F: std::future::Future<Output = Result<QueryResult>> + Send + 'static,
    {
        /// Raises the flag when dropped.
        struct CancelOnDrop(Cancel);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.cancel();
            }
        }
        let cancel = Cancel::default();
        let guard = CancelOnDrop(cancel.clone());
        let pools = self.pools();
        let result = pools.run_bulk(start(cancel)).await??;
        let schema = result.stream.schema();
        let stream = if pools.is_separate() {
            pools.bulk_stream(result.stream, crate::pools::BULK_STREAM_AHEAD, |r| {
                Err(DataFusionError::External(Box::new(Error::Internal(r))))
            })
        } else {
            result.stream
        };
        let stream = futures::StreamExt::map(stream, move |item| {
            let _keep = &guard;
            item
        });
        Ok(QueryResult {
            stream: Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, stream),
            ),
            ..result
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

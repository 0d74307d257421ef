//! Prepared statements ([`Prepared`], [`Engine::prepare`], [`Engine::execute_prepared`]):
//! a read-only query parsed and checked once, then executed many times with parameter
//! values, for Flight SQL's prepared-statement commands.
//!
//! Two paths:
//! - **Point lookup.** A query that is exactly
//!   `SELECT <* | column, ...> FROM <dataset> WHERE <key> = <placeholder>` — where `<key>` is
//!   the dataset's single-column primary key and the placeholder is `?` or `$1` — is
//!   recognised from its syntax alone and answered from the primary-key index on every
//!   execution ([`MaskedView::lookup`]): no DataFusion planning, neither when preparing nor
//!   when executing. Planning such a query costs more than a whole Flight round trip.
//! - **General.** Anything else is planned with DataFusion when prepared (to learn its
//!   parameter and result types), and planned again on each execution with the parameter
//!   values bound, since the caller's grants and the current snapshots may have changed.
//!
//! Both paths answer exactly like [`Engine::query`] with the values written in as literals:
//! the same refusals, masks, row scopes and result row limit — except where the caller's
//! grants changed since preparing (below).
//!
//! ## Parameters
//! Placeholders are `$1`, `$2`, ... or `?` (numbered in the order they appear); the two
//! styles cannot be mixed, numbers cannot skip, and named placeholders are refused. Each
//! execution needs one value per placeholder. A value is accepted when it has the
//! placeholder's type or is null, and converted when it is of the same kind: a string for
//! a string type; an integer for an integer type (when it fits), a float or a decimal; a
//! float for a float type; a decimal for a decimal or float type. A placeholder whose type the query does not determine
//! (e.g. `SELECT $1`) has type `Null` in the parameter schema and accepts any value. On the
//! lookup path the key parameter must be a string for a string key and an integer for an
//! integer key ([`Error::InvalidKey`] otherwise); a null key matches nothing.
//!
//! ## Grants that change after preparing
//! Every execution applies the caller's grants as they are *then* (the `access` passed to
//! [`Engine::execute_prepared`]) and reads the current snapshots; a [`Prepared`] holds no
//! snapshot. A dataset no longer granted at all is [`Error::AccessDenied`] on both paths
//! (where [`Engine::query`] would not find the table: the caller knew it when preparing).
//! The result keeps the columns of [`Prepared::result_schema`]: when the caller may no
//! longer see one of them the execution fails naming it, and when the result would now
//! have other columns (e.g. `SELECT *` after a new attribute was granted) it fails asking
//! to prepare the statement again — as PostgreSQL refuses a cached plan whose result type
//! changed. Only nullability may differ (a column that became partly hidden reads as null
//! on some rows), and then the stream carries the current schema.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::compute::CastOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Ident, ObjectNamePart, SelectItem, SetExpr, Statement as SqlStatement,
    TableFactor, TableWithJoins, Value, ValueWithSpan, visit_expressions_mut,
};

use crate::audit::ReadLog;
use crate::definition::{is_binary_type, is_decimal_type, is_string_type};
use crate::engine::{Access, Engine, MaskedView};
use crate::error::{Error, Result, from_query_error};
use crate::index::KeyValue;
use crate::query::{CallerSession, QueryEnv, QueryResult};

/// A read-only query prepared for one caller, to be executed with parameter values.
///
/// Cheap to clone; it holds no snapshot and no plan, only what the next execution needs to
/// check and run the query again.
#[derive(Debug, Clone)]
pub struct Prepared {
    sql: String,
    parameter_schema: SchemaRef,
    result_schema: SchemaRef,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Answered from the primary-key index.
    Lookup(Lookup),
    /// Planned by DataFusion on each execution.
    General(General),
}

/// `SELECT <columns> FROM <dataset> WHERE <its key> = <placeholder>`.
#[derive(Debug, Clone)]
struct Lookup {
    dataset: String,
    /// The columns selected, by name; `None` for `*`.
    columns: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct General {
    /// The parsed query, `?` placeholders numbered.
    statement: Box<DfStatement>,
    /// The datasets the query read when it was prepared.
    datasets: Vec<String>,
}

impl Prepared {
    /// The SQL text as given.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// One field per placeholder, in order (`$1`, `$2`, ...; `?` are numbered in the order
    /// they appear), named `$1`, `$2`, ... and typed as the query uses it (`Null` when the
    /// query does not determine the type).
    pub fn parameter_schema(&self) -> &SchemaRef {
        &self.parameter_schema
    }

    /// The result schema, as the caller's grants made it when the query was prepared.
    pub fn result_schema(&self) -> &SchemaRef {
        &self.result_schema
    }

    /// Whether executions are answered from the primary-key index, without planning.
    pub fn is_lookup(&self) -> bool {
        matches!(self.kind, Kind::Lookup(_))
    }
}

impl Engine {
    /// Prepare a read-only query for `access`, with the same refusals and limits as
    /// [`Engine::query`]: anything but a query is refused, and a name the caller may not use
    /// is an error naming it.
    ///
    /// See the [module documentation](crate::prepared) for the point-lookup path and for
    /// placeholders.
    pub async fn prepare(self: &Arc<Self>, sql: &str, access: &Access) -> Result<Prepared> {
        let env = &self.query_env;
        let mut statement = env.parse(sql)?;
        if let Some(shape) = lookup_shape(env, &statement)
            && let Some(prepared) = self.prepare_lookup(sql, shape, access)
        {
            return Ok(prepared);
        }
        number_placeholders(&mut statement)?;
        // Planning is bulk work: on the bulk runtime, like `Engine::query`.
        let engine = Arc::clone(self);
        let access = access.clone();
        let sql = sql.to_owned();
        self.pools()
            .run_bulk(async move {
                let session = CallerSession::new(&engine, &access)?;
                let plan = session.plan(statement.clone()).await?;
                let parameter_schema = parameter_schema(&plan)?;
                let result_schema = Arc::clone(plan.schema().inner());
                let datasets = session.datasets().into_iter().map(|(d, _)| d).collect();
                Ok(Prepared {
                    sql,
                    parameter_schema,
                    result_schema,
                    kind: Kind::General(General {
                        statement: Box::new(statement),
                        datasets,
                    }),
                })
            })
            .await?
    }

    /// The lookup path for a query of the lookup shape, when the caller's view allows it.
    ///
    /// `None` when the dataset is not visible, the key is not its single-column primary
    /// key, or a column is not visible: the general path then plans the query and answers
    /// exactly as [`Engine::query`] does.
    fn prepare_lookup(&self, sql: &str, shape: Shape, access: &Access) -> Option<Prepared> {
        let view = self.view(&shape.dataset, access).ok()?;
        let definition = view.snapshot.definition();
        let [key] = definition.primary_key.as_slice() else {
            return None;
        };
        if *key != shape.key {
            return None;
        }
        let schema = view.mask.schema();
        let key_field = schema.field_with_name(key).ok()?;
        if !(is_string_type(key_field.data_type()) || key_field.data_type().is_integer()) {
            return None;
        }
        let result_schema = match &shape.columns {
            None => Arc::clone(schema),
            Some(columns) => {
                let picks = columns
                    .iter()
                    .map(|c| schema.index_of(c).ok())
                    .collect::<Option<Vec<usize>>>()?;
                Arc::new(schema.project(&picks).ok()?)
            }
        };
        let parameter_schema = Arc::new(Schema::new(vec![Field::new(
            "$1",
            key_field.data_type().clone(),
            true,
        )]));
        Some(Prepared {
            sql: sql.to_owned(),
            parameter_schema,
            result_schema,
            kind: Kind::Lookup(Lookup {
                dataset: shape.dataset,
                columns: shape.columns,
            }),
        })
    }

    /// Run a prepared query with `params` (one value per placeholder, in order) as a caller
    /// with `access`, applying the caller's grants as they are now.
    ///
    /// A wrong number of values, or a value whose type does not fit its placeholder, is an
    /// error naming the parameter. See the [module documentation](crate::prepared) for what
    /// happens when grants changed since the query was prepared.
    pub async fn execute_prepared(
        self: &Arc<Self>,
        prepared: &Prepared,
        params: &[ScalarValue],
        access: &Access,
    ) -> Result<QueryResult> {
        let expected = prepared.parameter_schema.fields();
        if params.len() != expected.len() {
            let names: Vec<&str> = expected.iter().map(|f| f.name().as_str()).collect();
            return Err(Error::InvalidQuery(format!(
                "the prepared query has {} parameter(s) ({}); {} value(s) were given",
                expected.len(),
                names.join(", "),
                params.len()
            )));
        }
        match &prepared.kind {
            Kind::Lookup(lookup) => self.execute_lookup(prepared, lookup, &params[0], access),
            Kind::General(general) => {
                let values = expected
                    .iter()
                    .zip(params)
                    .map(|(f, v)| bind(f, v))
                    .collect::<Result<Vec<_>>>()?;
                for dataset in &general.datasets {
                    if let Err(e @ Error::AccessDenied(_)) = self.view(dataset, access) {
                        return Err(e);
                    }
                }
                // Planned and run on the bulk runtime, like any query.
                let (engine, access) = (Arc::clone(self), access.clone());
                let statement = general.statement.as_ref().clone();
                let result_schema = Arc::clone(&prepared.result_schema);
                self.run_on_bulk(move |cancel| async move {
                    let session = CallerSession::new(&engine, &access)?;
                    let plan = session.plan(statement).await?;
                    let plan = plan.with_param_values(values).map_err(from_query_error)?;
                    same_columns(&result_schema, plan.schema().as_arrow())?;
                    session.execute(&engine.query_env, plan, cancel).await
                })
                .await
            }
        }
    }

    fn execute_lookup(
        &self,
        prepared: &Prepared,
        lookup: &Lookup,
        param: &ScalarValue,
        access: &Access,
    ) -> Result<QueryResult> {
        let dataset = &lookup.dataset;
        let reads = ReadLog::new();
        let view = self.view(dataset, access)?.with_log(reads.clone());
        let mask = &view.mask;
        let picks: Vec<usize> = match &lookup.columns {
            None => (0..mask.schema().fields().len()).collect(),
            Some(columns) => columns
                .iter()
                .map(|c| mask.index_of(dataset, c))
                .collect::<Result<_>>()?,
        };
        let now = mask.projected_schema(Some(&picks))?;
        let schema = same_columns(&prepared.result_schema, &now)?;
        // A key no row can have finds nothing, but is refused like a lookup would be.
        let keys: Vec<Vec<KeyValue>> = key_value(&view, param)?
            .into_iter()
            .map(|k| vec![k])
            .collect();
        let rows = view.key_rows(&keys)?;
        // Personal columns are noted even when nothing is found: a purpose is required.
        view.note_projection(Some(&picks));
        let batches = if rows.is_empty() {
            vec![]
        } else {
            vec![view.take(&rows, Some(&picks), &schema)?]
        };
        let stream = RecordBatchStreamAdapter::new(
            Arc::clone(&schema),
            futures::stream::iter(batches.into_iter().map(Ok)),
        );
        Ok(QueryResult {
            schema,
            stream: self.query_env.limit_rows(Box::pin(stream)),
            datasets: vec![(dataset.clone(), view.snapshot.version())],
            reads,
        })
    }
}

/// The parts of a query of the lookup shape, identifiers normalised as the planner does.
#[derive(Debug)]
struct Shape {
    dataset: String,
    columns: Option<Vec<String>>,
    key: String,
}

/// Whether the statement is exactly `SELECT <* | col, ...> FROM <t> WHERE <c> = <? | $1>`
/// (or `<? | $1> = <c>`).
///
/// The parts are picked out of the AST, and the statement must then equal the one parsed
/// from the canonical text rebuilt from them: any other clause (`DISTINCT`, `LIMIT`,
/// aliases, ...) makes the two differ, whatever the parser version adds to its AST.
fn lookup_shape(env: &QueryEnv, statement: &DfStatement) -> Option<Shape> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let SqlStatement::Query(query) = s.as_ref() else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let [
        TableWithJoins {
            relation: TableFactor::Table { name, .. },
            ..
        },
    ] = select.from.as_slice()
    else {
        return None;
    };
    let [ObjectNamePart::Identifier(table)] = name.0.as_slice() else {
        return None;
    };
    let Some(Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    }) = &select.selection
    else {
        return None;
    };
    let placeholder = |e: &Expr| match e {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) if p == "?" || p == "$1" => Some(p.clone()),
        _ => None,
    };
    let (condition, key) = match (left.as_ref(), right.as_ref()) {
        (Expr::Identifier(key), other) => (format!("{key} = {}", placeholder(other)?), key),
        (other, Expr::Identifier(key)) => (format!("{} = {key}", placeholder(other)?), key),
        _ => return None,
    };
    let columns: Option<Vec<&Ident>> = match select.projection.as_slice() {
        [SelectItem::Wildcard(_)] => None,
        items => Some(
            items
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(Expr::Identifier(c)) => Some(c),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
    };
    let list = columns.as_ref().map_or_else(
        || "*".to_owned(),
        |cs| {
            cs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let canonical = format!("SELECT {list} FROM {table} WHERE {condition}");
    if env.parse(&canonical).ok()? != *statement {
        return None;
    }
    let normalize = |i: &Ident| {
        if env.normalizes_idents() && i.quote_style.is_none() {
            i.value.to_ascii_lowercase()
        } else {
            i.value.clone()
        }
    };
    let columns: Option<Vec<String>> = columns.map(|cs| cs.into_iter().map(normalize).collect());
    if let Some(cs) = &columns {
        // Duplicate names are the planner's error to report.
        let mut sorted: Vec<&String> = cs.iter().collect();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != cs.len() {
            return None;
        }
    }
    Some(Shape {
        dataset: normalize(table),
        columns,
        key: normalize(key),
    })
}

/// Number `?` placeholders `$1`, `$2`, ... in the order they appear; refuse a query that
/// mixes `?` with numbered placeholders.
fn number_placeholders(statement: &mut DfStatement) -> Result<()> {
    fn visit(statement: &mut DfStatement, f: &mut impl FnMut(&mut Expr)) {
        match statement {
            DfStatement::Statement(s) => {
                let _ = visit_expressions_mut(s.as_mut(), |e| {
                    f(e);
                    ControlFlow::<()>::Continue(())
                });
            }
            DfStatement::Explain(e) => visit(&mut e.statement, f),
            // Refused before planning.
            DfStatement::CreateExternalTable(_)
            | DfStatement::CopyTo(_)
            | DfStatement::Reset(_) => {}
        }
    }
    let mut questions = 0usize;
    let mut numbered = false;
    visit(statement, &mut |e| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) = e
        {
            if p == "?" {
                questions += 1;
                *p = format!("${questions}");
            } else {
                numbered = true;
            }
        }
    });
    if questions > 0 && numbered {
        return Err(Error::InvalidQuery(
            "the query mixes `?` and `$n` placeholders; use one style".into(),
        ));
    }
    Ok(())
}

/// The parameter schema of a planned query: `$1..$n`, without gaps.
fn parameter_schema(plan: &datafusion::logical_expr::LogicalPlan) -> Result<SchemaRef> {
    let types = plan.get_parameter_types().map_err(from_query_error)?;
    let mut numbered = Vec::with_capacity(types.len());
    for (id, data_type) in types {
        match id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => numbered.push((n, id, data_type)),
            None => {
                return Err(Error::InvalidQuery(format!(
                    "named placeholder `{id}` is not supported; use $1, $2, ... or ?"
                )));
            }
        }
    }
    numbered.sort_by_key(|(n, _, _)| *n);
    if let Some(pos) = numbered
        .iter()
        .enumerate()
        .position(|(i, (n, _, _))| *n != i + 1)
    {
        return Err(Error::InvalidQuery(format!(
            "placeholders must be numbered $1, $2, ... without gaps; ${} is missing",
            pos + 1
        )));
    }
    Ok(Arc::new(Schema::new(
        numbered
            .into_iter()
            .map(|(_, id, data_type)| Field::new(id, data_type.unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    )))
}

/// A parameter value as its placeholder's type (see the module documentation).
fn bind(field: &Field, value: &ScalarValue) -> Result<ScalarValue> {
    let want = field.data_type();
    let got = value.data_type();
    if *want == DataType::Null || got == *want {
        return Ok(value.clone());
    }
    if value.is_null() {
        return ScalarValue::try_from(want).map_err(from_query_error);
    }
    let fits = (is_string_type(&got) && is_string_type(want))
        || (is_binary_type(&got) && is_binary_type(want))
        || (got.is_integer() && (want.is_integer() || want.is_floating() || is_decimal_type(want)))
        || (got.is_floating() && want.is_floating())
        || (is_decimal_type(&got) && (is_decimal_type(want) || want.is_floating()));
    if !fits {
        return Err(Error::InvalidQuery(format!(
            "parameter {} is {want}; got a value of type {got}",
            field.name()
        )));
    }
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    value.cast_to_with_options(want, &strict).map_err(|_| {
        Error::InvalidQuery(format!(
            "parameter {} is {want}; the value {value} does not fit it",
            field.name()
        ))
    })
}

/// The key parameter of a lookup as a key part; `None` when no key can equal it (null, or
/// an integer beyond the key range).
fn key_value(view: &MaskedView, param: &ScalarValue) -> Result<Option<KeyValue>> {
    if param.is_null() {
        return Ok(None);
    }
    let int_key = view.snapshot.index().part_is_int(0);
    let int = |i: i64| Ok(Some(KeyValue::Int(i)));
    match (param, int_key) {
        (
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            false,
        ) => Ok(Some(KeyValue::Str(s.clone()))),
        (ScalarValue::Int8(Some(i)), true) => int(i64::from(*i)),
        (ScalarValue::Int16(Some(i)), true) => int(i64::from(*i)),
        (ScalarValue::Int32(Some(i)), true) => int(i64::from(*i)),
        (ScalarValue::Int64(Some(i)), true) => int(*i),
        (ScalarValue::UInt8(Some(i)), true) => int(i64::from(*i)),
        (ScalarValue::UInt16(Some(i)), true) => int(i64::from(*i)),
        (ScalarValue::UInt32(Some(i)), true) => int(i64::from(*i)),
        (ScalarValue::UInt64(Some(i)), true) => Ok(i64::try_from(*i).ok().map(KeyValue::Int)),
        (other, _) => {
            let definition = view.snapshot.definition();
            let key = &definition.primary_key[0];
            let want = if int_key { "an integer" } else { "a string" };
            Err(Error::InvalidKey {
                dataset: definition.name.clone(),
                reason: format!(
                    "parameter $1 is compared with key column `{key}` and must be {want}; got a value of type {}",
                    other.data_type()
                ),
            })
        }
    }
}

/// Check that a result still has the prepared result's columns (names and types; a `Null`
/// type in the prepared schema matches any). Returns the schema the result carries: the
/// prepared one when nothing changed, else the current one (only nullability differs).
fn same_columns(prepared: &SchemaRef, now: &Schema) -> Result<SchemaRef> {
    if prepared.fields() == now.fields() {
        return Ok(Arc::clone(prepared));
    }
    let missing: Vec<String> = prepared
        .fields()
        .iter()
        .filter(|f| now.field_with_name(f.name()).is_err())
        .map(|f| format!("`{}`", f.name()))
        .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidQuery(format!(
            "column(s) {} of this prepared query's result do not exist or are not granted to \
             you any more; prepare the query again",
            missing.join(", ")
        )));
    }
    let same = prepared.fields().len() == now.fields().len()
        && prepared.fields().iter().zip(now.fields()).all(|(p, n)| {
            p.name() == n.name()
                && (p.data_type() == n.data_type() || *p.data_type() == DataType::Null)
        });
    if !same {
        let describe = |s: &Schema| {
            s.fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::InvalidQuery(format!(
            "the result of this prepared query would now have the columns ({}) instead of ({}); \
             prepare the query again",
            describe(now),
            describe(prepared)
        )));
    }
    Ok(Arc::new(now.clone()))
}

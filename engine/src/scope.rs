//! Row scopes: SQL predicates over a dataset's columns (e.g. `municipality = 'Rīga'`),
//! evaluated once per snapshot into a roaring bitmap of row ids.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::prelude::SessionContext;
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::snapshot::{CHUNK_SHIFT, Snapshot};

/// Longest row scope predicate accepted.
pub const MAX_SCOPE_LEN: usize = 4096;

/// Parse and type-check a row scope against a schema; returns the logical expression.
pub fn parse(dataset: &str, schema: &arrow::datatypes::Schema, predicate: &str) -> Result<Expr> {
    let invalid = |reason: String| Error::InvalidRowScope {
        dataset: dataset.to_owned(),
        reason,
    };
    if predicate.len() > MAX_SCOPE_LEN {
        return Err(invalid(format!("longer than {MAX_SCOPE_LEN} bytes")));
    }
    crate::query::check_nesting(predicate).map_err(|e| invalid(e.to_string()))?;
    let df_schema = DFSchema::try_from(schema.clone()).map_err(|e| invalid(e.to_string()))?;
    let ctx = SessionContext::new();
    let expr = ctx.parse_sql_expr(predicate, &df_schema).map_err(|e| {
        // A scope has no tables to read, so a subquery fails as an unknown table; say why.
        if predicate.to_ascii_uppercase().contains("SELECT") {
            invalid("it may not contain a subquery".into())
        } else {
            invalid(crate::error::from_query_error(e).to_string())
        }
    })?;
    // Only plain expressions over the row: no subqueries, aggregates, windows or volatile
    // functions (a scope must select the same rows every time it is evaluated).
    let mut problem = None;
    expr.apply(|e| {
        let bad = match e {
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Some("a subquery"),
            Expr::AggregateFunction(_) => Some("an aggregate"),
            Expr::WindowFunction(_) => Some("a window function"),
            Expr::ScalarFunction(ScalarFunction { func, .. })
                if func.signature().volatility
                    == datafusion::logical_expr::Volatility::Volatile =>
            {
                Some("a volatile function")
            }
            _ => None,
        };
        if let Some(b) = bad {
            problem = Some(b);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| invalid(e.to_string()))?;
    if let Some(p) = problem {
        return Err(invalid(format!("it may not contain {p}")));
    }
    let t = expr
        .get_type(&df_schema)
        .map_err(|e| invalid(crate::error::from_query_error(e).to_string()))?;
    if t != DataType::Boolean {
        return Err(invalid(format!("it is of type {t}, not a condition")));
    }
    Ok(expr)
}

/// Evaluate a row scope on every chunk of a snapshot into the bitmap of matching row ids.
/// Rows where the predicate is null are not in scope.
pub(crate) fn evaluate(snapshot: &Snapshot, predicate: &str) -> Result<RoaringBitmap> {
    let schema = snapshot.schema();
    let expr = parse(snapshot.dataset(), schema, predicate)?;
    let df_schema =
        DFSchema::try_from(Arc::clone(schema).as_ref().clone()).map_err(Error::internal)?;
    let expr = SessionContext::new()
        .state()
        .create_physical_expr(expr, &df_schema)
        .map_err(|e| Error::InvalidRowScope {
            dataset: snapshot.dataset().to_owned(),
            reason: e.to_string(),
        })?;
    let mut bitmap = RoaringBitmap::new();
    for (i, chunk) in snapshot.chunks().iter().enumerate() {
        let base = (i << CHUNK_SHIFT) as u32;
        let value = expr
            .evaluate(chunk)
            .and_then(|v| v.into_array(chunk.num_rows()))
            .map_err(|e| {
                // An evaluation error can quote the cell it failed on (a failed cast), which
                // the caller may not see: the reason shown is generic, the details logged.
                tracing::warn!(dataset = snapshot.dataset(), error = %e, "a row scope failed on this snapshot");
                Error::InvalidRowScope {
                    dataset: snapshot.dataset().to_owned(),
                    reason: "it cannot be evaluated on the current snapshot (the details are in \
                             the server log; the data owner can correct the agreement)"
                        .into(),
                }
            })?;
        let mask = value.as_boolean();
        let set = mask.values()
            & &mask.nulls().map_or_else(
                || arrow::buffer::BooleanBuffer::new_set(mask.len()),
                |n| n.inner().clone(),
            );
        bitmap.extend(set.set_indices().map(|o| base + o as u32));
    }
    Ok(bitmap)
}

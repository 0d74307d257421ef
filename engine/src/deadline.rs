//! The per-query time limit, enforced inside the physical plan.
//!
//! A deadline checked only where the caller reads the result stream does not fire while an
//! operator computes: an aggregate pulls every batch of its input within one poll, so a join
//! that explodes into billions of pairs under a `count(*)` never returns to the caller's
//! stream. [`with_deadline`] therefore puts a [`DeadlineExec`] above every node of the
//! optimized plan: each batch any operator hands to its parent first checks the clock (one
//! `Instant::now()` per batch per operator), so a query fails within one batch of its
//! deadline, whatever shape it has — generators such as `range()` included. Dropping the
//! failed stream stops every operator (DataFusion's cancellation).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;

use crate::error::Error;

/// A query's time budget: when it started and how long it may run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub(crate) fn after(limit: Duration) -> Self {
        Self {
            at: Instant::now() + limit,
            limit,
        }
    }

    fn check(&self) -> Result<()> {
        if Instant::now() < self.at {
            return Ok(());
        }
        Err(DataFusionError::External(Box::new(
            Error::ResourcesExhausted(format!(
                "the query ran longer than {} s (the server's query time limit); narrow it or add LIMIT",
                self.limit.as_secs_f64()
            )),
        )))
    }
}

/// Put a [`DeadlineExec`] above every node of `plan` (its root included).
pub(crate) fn with_deadline(
    plan: Arc<dyn ExecutionPlan>,
    deadline: Deadline,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(Transformed::yes(
            Arc::new(DeadlineExec::new(node, deadline)) as Arc<dyn ExecutionPlan>,
        ))
    })
    .map(|t| t.data)
}

/// Passes its input through, failing once the query's deadline has passed.
#[derive(Debug)]
pub(crate) struct DeadlineExec {
    input: Arc<dyn ExecutionPlan>,
    deadline: Deadline,
    properties: Arc<PlanProperties>,
}

impl DeadlineExec {
    fn new(input: Arc<dyn ExecutionPlan>, deadline: Deadline) -> Self {
        let properties = Arc::clone(input.properties());
        Self {
            input,
            deadline,
            properties,
        }
    }
}

impl DisplayAs for DeadlineExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeadlineExec")
    }
}

impl ExecutionPlan for DeadlineExec {
    fn name(&self) -> &str {
        "DeadlineExec"
    }

    /// Downcasts see the wrapped node: the wrapper adds a check, not an operator.
    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.input.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => Ok(Arc::new(Self::new(input, self.deadline))),
            _ => Err(DataFusionError::Internal(
                "DeadlineExec has exactly one child".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.deadline.check()?;
        let inner = self.input.execute(partition, context)?;
        Ok(Box::pin(DeadlineStream {
            inner,
            deadline: self.deadline,
            expired: false,
        }))
    }
}

struct DeadlineStream {
    inner: SendableRecordBatchStream,
    deadline: Deadline,
    expired: bool,
}

impl Stream for DeadlineStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Err(e) = self.deadline.check() {
            self.expired = true;
            return Poll::Ready(Some(Err(e)));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for DeadlineStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

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
//!
//! The same check stops a query whose reader went away ([`Cancel`]): aborting the task that
//! produces a bulk stream takes effect only when it yields, which an aggregate over a join
//! does not do until it is done — the reader's side raises the flag, and the next batch any
//! operator hands on fails.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A flag the reader of a query's result raises when it goes away (see the module doc).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Stop the query at its next batch.
    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A query's time budget — when it must end and how long it may run (none: no limit) — and
/// its cancellation flag.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    limit: Duration,
    cancel: Cancel,
}

impl Deadline {
    /// A deadline `limit` from now (`None`: none), stopped early by `cancel`.
    pub(crate) fn after(limit: Option<Duration>, cancel: Cancel) -> Self {
        Self {
            at: limit.map(|l| Instant::now() + l),
            limit: limit.unwrap_or_default(),
            cancel,
        }
    }

    fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(DataFusionError::Execution(
                "the query was cancelled: its reader went away".into(),
            ));
        }
        if self.at.is_none_or(|at| Instant::now() < at) {
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
            Arc::new(DeadlineExec::new(node, deadline.clone())) as Arc<dyn ExecutionPlan>,
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
            Some(input) if children.is_empty() => {
                Ok(Arc::new(Self::new(input, self.deadline.clone())))
            }
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
            deadline: self.deadline.clone(),
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

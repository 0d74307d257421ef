//! The cap on the result streams one token holds open at once.
//!
//! Every `DoGet` (a dataset, a key lookup, a change feed, a Flight SQL statement or prepared
//! statement, the metadata listings) takes a permit of its caller's token before it plans or
//! reads anything, and the response stream holds it until the stream ends or the client goes
//! away. A token over its cap is refused with `RESOURCE_EXHAUSTED`, naming the cap; other
//! tokens are not affected. So one caller cannot tie up the server's cores and memory with
//! hundreds of parallel scans, and its stalled streams (a client that stops reading) count
//! against its own cap only.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::Mutex;
use tonic::Status;

use crate::stream::FlightStream;

/// Open streams per token.
#[derive(Debug)]
pub(crate) struct StreamQuota {
    per_token: usize,
    open: Mutex<HashMap<String, usize>>,
}

impl StreamQuota {
    pub(crate) fn new(per_token: usize) -> Arc<Self> {
        Arc::new(Self {
            per_token: per_token.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A permit for one more stream of `who` (the principal with its token), or
    /// `RESOURCE_EXHAUSTED` when it holds as many as it may.
    pub(crate) fn acquire(self: &Arc<Self>, who: String) -> Result<StreamPermit, Status> {
        let mut open = self.open.lock();
        let n = open.entry(who.clone()).or_insert(0);
        if *n >= self.per_token {
            return Err(Status::resource_exhausted(format!(
                "this token already has {} result streams open, the most one token may hold \
                 (--max-streams-per-token): read or cancel one first",
                self.per_token
            )));
        }
        *n += 1;
        Ok(StreamPermit {
            quota: Arc::clone(self),
            who,
        })
    }

    /// Streams `who` holds open now.
    #[cfg(test)]
    fn held(&self, who: &str) -> usize {
        self.open.lock().get(who).copied().unwrap_or(0)
    }
}

/// One open stream of a token; released when dropped.
#[derive(Debug)]
pub(crate) struct StreamPermit {
    quota: Arc<StreamQuota>,
    who: String,
}

impl StreamPermit {
    /// `stream`, holding this permit until it is dropped (ended, failed or cancelled).
    pub(crate) fn hold(self, stream: FlightStream) -> FlightStream {
        Box::pin(stream.map(move |item| {
            let _held = &self;
            item
        }))
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.quota.open.lock();
        if let Some(n) = open.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.who);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_per_token_and_released_on_drop() {
        let q = StreamQuota::new(2);
        let a1 = q.acquire("a".into()).unwrap();
        let _a2 = q.acquire("a".into()).unwrap();
        let err = q.acquire("a".into()).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(
            err.message().contains("2 result streams"),
            "{}",
            err.message()
        );
        let _b = q.acquire("b".into()).unwrap();
        drop(a1);
        assert_eq!(q.held("a"), 1);
        let held = q
            .acquire("a".into())
            .unwrap()
            .hold(Box::pin(futures::stream::empty()));
        assert_eq!(q.held("a"), 2);
        drop(held);
        assert_eq!(q.held("a"), 1);
    }
}

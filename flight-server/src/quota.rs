//! The per-token quotas of the engine ([`dagr_engine::quota`]) on Flight.
//!
//! - Every authenticated call but `Handshake` counts as one request against the token's
//!   requests per second ([`admit`]), before anything else is looked at.
//! - Every `DoGet` (a dataset, a key lookup, a change feed, a Flight SQL statement or
//!   prepared statement, the metadata listings) takes a stream permit of its caller's token
//!   before it plans or reads anything, and the response stream holds it ([`hold`]) until
//!   the stream ends or the client goes away. So one caller cannot tie up the server's cores
//!   and memory with hundreds of parallel scans, and its stalled streams count against its
//!   own quota only.
//! - Every SQL execution (planning a statement in `GetFlightInfo`, preparing one, and the
//!   `DoGet` of a statement, a prepared statement or a filtered JSON ticket) holds an SQL
//!   permit of the token while it plans and streams ([`sql`]).
//!
//! A refusal is `RESOURCE_EXHAUSTED` naming the quota, with a `retry-after` metadata entry
//! (whole seconds); nothing has been planned, read or recorded. Other tokens are not
//! affected. Per-system limits come from the [`AccessPolicy`] in memory, the defaults from
//! [`crate::FlightConfig::quotas`].

use std::pin::Pin;
use std::task::{Context, Poll};

use dagr_engine::quota::{self, QuotaExceeded, QuotaPermit, Quotas};
use dagr_engine::{AccessPolicy, Principal};
use futures::Stream;
use futures::stream::BoxStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// The metadata entry of a refusal that says how many whole seconds to wait.
pub const RETRY_AFTER: &str = "retry-after";

/// The status of a refusal: `RESOURCE_EXHAUSTED`, its message, and `retry-after`.
pub fn refused(e: &QuotaExceeded) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(RETRY_AFTER, MetadataValue::from(e.retry_after));
    tracing::debug!(quota = %e.quota, limit = e.limit, "request refused by a quota");
    Status::with_metadata(Code::ResourceExhausted, e.to_string(), metadata)
}

/// Count one request of `p` against its requests per second.
pub(crate) fn admit(
    quotas: &Quotas,
    policy: &dyn AccessPolicy,
    p: &Principal,
) -> Result<(), Status> {
    quotas
        .request(&quota::key_of(p), &policy.quota_overrides(p))
        .map_err(|e| refused(&e))
}

/// A stream permit of `p`.
pub(crate) fn stream(
    quotas: &std::sync::Arc<Quotas>,
    policy: &dyn AccessPolicy,
    p: &Principal,
) -> Result<QuotaPermit, Status> {
    quotas
        .stream(&quota::key_of(p), &policy.quota_overrides(p))
        .map_err(|e| refused(&e))
}

/// An SQL permit of `p`.
pub(crate) fn sql(
    quotas: &std::sync::Arc<Quotas>,
    policy: &dyn AccessPolicy,
    p: &Principal,
) -> Result<QuotaPermit, Status> {
    quotas
        .sql(&quota::key_of(p), &policy.quota_overrides(p))
        .map_err(|e| refused(&e))
}

/// `stream`, holding `permit` until it ends (its last item is taken), fails for good or is
/// dropped (the client went away), whichever comes first.
pub(crate) fn hold<T: Send + 'static>(
    permit: QuotaPermit,
    stream: BoxStream<'static, T>,
) -> BoxStream<'static, T> {
    Box::pin(Held {
        inner: stream,
        permit: Some(permit),
    })
}

/// A stream with the permit it holds.
struct Held<T> {
    inner: BoxStream<'static, T>,
    permit: Option<QuotaPermit>,
}

impl<T> Stream for Held<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = polled {
            // Ended: the permit goes now, before the response's trailers reach the client,
            // so a client that starts its next call at once finds it free.
            self.permit = None;
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dagr_engine::quota::QuotaValues;
    use futures::StreamExt;

    #[test]
    fn a_refusal_is_resource_exhausted_with_retry_after() {
        let q = Quotas::new(QuotaValues {
            requests_per_second: 1,
            streams: 1,
            sql_queries: 1,
        });
        q.request("a", &Default::default()).unwrap();
        let status = refused(&q.request("a", &Default::default()).unwrap_err());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("requests_per_second"),
            "{}",
            status.message()
        );
        assert_eq!(status.metadata().get(RETRY_AFTER).unwrap(), "1");
    }

    #[tokio::test]
    async fn a_held_permit_goes_when_the_stream_ends_or_is_dropped() {
        let q = Quotas::new(QuotaValues::default());
        let permit = q.stream("a", &Default::default()).unwrap();
        let mut s = hold::<()>(permit, Box::pin(futures::stream::empty()));
        assert_eq!(q.held("a"), (1, 0));
        assert!(s.next().await.is_none());
        assert_eq!(q.held("a"), (0, 0), "released at the end, before the drop");
        drop(s);
        let permit = q.sql("a", &Default::default()).unwrap();
        let s = hold::<()>(permit, Box::pin(futures::stream::pending()));
        assert_eq!(q.held("a"), (0, 1));
        drop(s);
        assert_eq!(q.held("a"), (0, 0));
    }
}

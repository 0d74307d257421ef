//! Metrics of the Flight service: a tower layer in front of every RPC that counts calls by
//! method and final gRPC status, observes the latency to the response head, and counts the
//! bytes of response bodies (into [`dagr_engine::metrics`]).
//!
//! A call is counted when its response ends: with the status of a trailers-only response,
//! of the trailers, or `CANCELLED` when the client went away before the end. Refusals
//! (`UNAUTHENTICATED`, `RESOURCE_EXHAUSTED`, ...) are also counted by reason.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use dagr_engine::metrics::{self, Refusal};
use dagr_engine::trace;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tracing::Instrument;

/// The methods of the Flight service (Flight SQL travels inside them).
const RPCS: [&str; 10] = [
    "Handshake",
    "ListFlights",
    "GetFlightInfo",
    "PollFlightInfo",
    "GetSchema",
    "DoGet",
    "DoPut",
    "DoExchange",
    "DoAction",
    "ListActions",
];

/// The method of a gRPC path, as a label value from a closed set.
fn rpc_of(path: &str) -> &'static str {
    let method = path.rsplit('/').next().unwrap_or_default();
    RPCS.iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("unknown")
}

/// The `grpc-status` of a header map (trailers, or the head of a trailers-only response).
fn status_of(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Count one finished call.
fn finished(rpc: &'static str, code: i32) {
    let m = metrics::metrics();
    m.flight_calls
        .with_label_values(&[rpc, metrics::grpc_code_name(code)])
        .inc();
    if let Some(reason) = Refusal::from_grpc(code) {
        m.refuse(reason);
    }
}

/// The Flight service `S`, measured.
#[derive(Debug, Clone)]
pub(crate) struct Measured<S> {
    inner: S,
}

impl<S> Measured<S> {
    pub(crate) fn new(inner: S) -> Self {
        Measured { inner }
    }
}

impl<S: NamedService> NamedService for Measured<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Measured<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let rpc = rpc_of(request.uri().path());
        let started = Instant::now();
        // The call's trace (dagr_engine::trace): the caller's `traceparent`, else a new one;
        // its log lines name it and the response headers carry it (`x-trace-id`).
        let traceparent = request
            .headers()
            .get(trace::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let span = tracing::info_span!("flight", rpc, trace_id = tracing::field::Empty);
        let trace_id = trace::start(&span, traceparent.as_deref());
        let header = http::HeaderValue::from_str(&trace_id).ok();
        let call = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let call = trace::scope(trace_id, call).instrument(span);
        Box::pin(async move {
            let mut response = call.await?;
            if let Some(value) = header {
                response.headers_mut().insert(trace::TRACE_ID_HEADER, value);
            }
            metrics::metrics()
                .flight_duration
                .with_label_values(&[rpc])
                .observe(started.elapsed().as_secs_f64());
            if let Some(code) = status_of(response.headers()) {
                finished(rpc, code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(Counted {
                    inner: body,
                    rpc,
                    done: false,
                })
            }))
        })
    }
}

/// A response body that counts its bytes, and the call when it ends.
struct Counted {
    inner: Body,
    rpc: &'static str,
    done: bool,
}

impl Counted {
    fn finish(&mut self, code: i32) {
        if !self.done {
            self.done = true;
            finished(self.rpc, code);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // The client went away (or the server stopped) before the end of the response.
        self.finish(Status::cancelled("").code() as i32);
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    metrics::metrics().flight_bytes.inc_by(data.len() as u64);
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = status_of(trailers).unwrap_or(0);
                    self.finish(code);
                }
            }
            Some(Err(status)) => {
                let code = status.code() as i32;
                self.finish(code);
            }
            None => self.finish(0),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_labelled_from_a_closed_set() {
        assert_eq!(
            rpc_of("/arrow.flight.protocol.FlightService/DoGet"),
            "DoGet"
        );
        assert_eq!(
            rpc_of("/arrow.flight.protocol.FlightService/Nope"),
            "unknown"
        );
        assert_eq!(rpc_of(""), "unknown");
    }
}

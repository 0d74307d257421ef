//! The trace context of a request (W3C Trace Context): every HTTP request and Flight call
//! runs in a span that carries a trace id — the caller's, when it sent a valid `traceparent`
//! header, else a new one — so that each log line of the request names it (`trace_id=`),
//! the response carries it (`x-trace-id`), and a problem+json error names it. When the
//! process exports spans over OTLP (`dagr serve --otlp-endpoint`), the exported spans are
//! children of the caller's span and have the same trace id.

use std::future::Future;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header a caller's trace context arrives in.
pub const TRACEPARENT: &str = "traceparent";

/// The response header naming the request's trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Longest `traceparent` value read (a version-00 one is 55 characters; later versions may
/// append fields).
const MAX_TRACEPARENT: usize = 256;

tokio::task_local! {
    static CURRENT: String;
}

/// Parse a `traceparent` value: `VERSION-TRACEID-PARENTID-FLAGS` in lower-case hex, with a
/// non-zero trace id and parent id; version `ff` is invalid, and only version `00` may not
/// carry more fields. `None` for anything else (the request then starts a new trace).
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    if value.len() > MAX_TRACEPARENT {
        return None;
    }
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let parent = SpanId::from_hex(parent).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace != TraceId::INVALID && parent != SpanId::INVALID).then_some((
        trace,
        parent,
        TraceFlags::new(flags & 1),
    ))
}

/// Give `span` (which must declare an empty `trace_id` field) its trace: a child of the
/// caller's `traceparent` when valid, else a new trace. Returns the trace id (32 hex digits),
/// recorded in the span's `trace_id` field. Call before the span is first entered.
pub fn start(span: &tracing::Span, traceparent: Option<&str>) -> String {
    let parent = traceparent.and_then(parse_traceparent);
    if let Some((trace, parent, flags)) = parent {
        let remote = SpanContext::new(trace, parent, flags, true, TraceState::default());
        // Fails only when spans are not exported; the id is then taken from `parent` below.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    // The id OpenTelemetry gave the span when spans are exported, else the caller's, else
    // a new one.
    let exported = span.context().span().span_context().trace_id();
    let id = if exported != TraceId::INVALID {
        exported
    } else if let Some((trace, _, _)) = parent {
        trace
    } else {
        new_trace_id()
    };
    let id = id.to_string();
    span.record("trace_id", tracing::field::display(&id));
    id
}

fn new_trace_id() -> TraceId {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() || bytes == [0; 16] {
        // No entropy: the time is unique enough for an id that only correlates log lines.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos().max(1));
        bytes = nanos.to_be_bytes();
    }
    TraceId::from_bytes(bytes)
}

/// Run `f` with `trace_id` as the current request's trace id ([`current`]).
pub async fn scope<F: Future>(trace_id: String, f: F) -> F::Output {
    CURRENT.scope(trace_id, f).await
}

/// The trace id of the request this task serves, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (t, s, f) = parse_traceparent(ok).unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.to_string(), "00f067aa0ba902b7");
        assert!(f.is_sampled());
        // A later version may carry more fields.
        assert!(parse_traceparent(&format!("01{}-extra", &ok[2..])).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            &"0".repeat(300),
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_span_gets_the_callers_trace_or_a_new_one() {
        let span = tracing::info_span!("t", trace_id = tracing::field::Empty);
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(start(&span, Some(ok)), "4bf92f3577b34da6a3ce929d0e0e4736");
        let span = tracing::info_span!("t", trace_id = tracing::field::Empty);
        let (a, b) = (start(&span, None), start(&span, Some("junk")));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_ne!(a, "0".repeat(32));
    }

    #[tokio::test]
    async fn the_current_trace_id_is_scoped_to_the_request() {
        assert_eq!(current(), None);
        let inner = scope("abc".into(), async { current() }).await;
        assert_eq!(inner.as_deref(), Some("abc"));
        assert_eq!(current(), None);
    }
}

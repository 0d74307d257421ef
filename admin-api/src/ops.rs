//! What an operator and a load balancer ask of a node: readiness (`/api/v1/ready`),
//! metrics in the Prometheus text format (`/metrics`) and the middleware that counts every
//! HTTP request into them. Liveness (`/api/v1/health`) stays in [`crate::handlers`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dagr_engine::metrics::{self, Refusal};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

static DRAINING: AtomicBool = AtomicBool::new(false);

/// Mark this node as shutting down: `/api/v1/ready` answers 503 from now on, so that a load
/// balancer sends no new requests while in-flight ones finish.
pub fn set_draining() {
    DRAINING.store(true, Ordering::Release);
}

/// Run each request in a span with its trace ([`dagr_engine::trace`]): the caller's
/// `traceparent`, else a new trace. Every log line of the request names the trace id, the
/// response carries it in `x-trace-id`, and a problem+json error in `trace_id`. A request
/// already in a trace (the portal hands `/api/` paths to the API router, which has this
/// layer too) keeps it.
pub async fn trace_context(request: Request, next: Next) -> Response {
    use dagr_engine::trace;
    use tracing::Instrument;
    if trace::current().is_some() {
        return next.run(request).await;
    }
    let traceparent = request
        .headers()
        .get(trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let span = tracing::info_span!(
        "http",
        method = %method_label(request.method()),
        trace_id = tracing::field::Empty
    );
    let id = trace::start(&span, traceparent.as_deref());
    let mut response = trace::scope(id.clone(), next.run(request))
        .instrument(span)
        .await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(trace::TRACE_ID_HEADER, value);
    }
    response
}

/// Count an HTTP request into [`metrics`]: by route template (never the raw path, so the
/// number of series stays bounded), method and status, with its latency to the response
/// head; refusals (401, 403, 413, 429, ...) also by reason.
pub async fn measure(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // The matched path is an `Arc<str>`: cloned, not copied, on every request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let m = metrics::metrics();
    m.http_requests
        .with_label_values(&[route, method, status_label(status)])
        .inc();
    m.http_duration
        .with_label_values(&[route, method])
        .observe(started.elapsed().as_secs_f64());
    if let Some(reason) = Refusal::from_http(status) {
        m.refuse(reason);
    }
    response
}

/// The method as a label value from a closed set (a client may send any token as a method).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status as a label value, without allocating for the usual ones.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// Metrics in the Prometheus text format (no authentication: serve it to the monitoring
/// network only; see docs/operations.md).
pub(crate) async fn metrics_text(State(s): State<AppState>) -> Response {
    let m = metrics::metrics();
    match tokio::time::timeout(CHECK_TIMEOUT, s.gov.store().request_counts()).await {
        Ok(Ok((pending, overdue))) => {
            m.requests_pending.set(pending);
            m.requests_overdue.set(overdue);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: cannot count pending requests"),
        Err(_) => tracing::warn!("metrics: counting pending requests timed out"),
    }
    // One publication at a time: the per-dataset gauges are reset and set again by each.
    static SCRAPE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SCRAPE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    s.engine.publish_metrics();
    if let Some(r) = crate::replication::status() {
        m.replication_staleness.set(r.staleness());
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], m.encode()).into_response()
}

/// How long a readiness answer is reused: probes from several load balancers (and anyone
/// else: the route needs no token) cost at most one round of checks per second.
const READY_CACHE: Duration = Duration::from_secs(1);

/// What `/api/v1/ready` found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// The node is shutting down (it finishes in-flight requests but takes no new ones).
    draining: bool,
    /// Each check: `ok` or what failed.
    checks: Checks,
    /// Datasets whose snapshots could not be read at start (served by no one until a new
    /// load): the node is ready, but these are missing.
    unreadable_datasets: std::collections::BTreeMap<String, String>,
    /// Replicas only: datasets this node could not bring to the version another node
    /// committed, with why; it serves the version it holds, and retries every second.
    lagging_datasets: std::collections::BTreeMap<String, String>,
}

/// The checks of `/api/v1/ready`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Checks {
    /// The metadata database answers a query.
    database: String,
    /// The audit log takes records (not read-only, closed or refused by its tables).
    audit: String,
    /// The snapshot store can be listed.
    snapshot_store: String,
    /// Replicas only: this node holds every version the ledger names (`ok`), or why not;
    /// `single node` when there is no ledger.
    replication: String,
}

async fn check<E: std::fmt::Display>(
    what: impl std::future::Future<Output = Result<(), E>>,
) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, what).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
    }
}

/// Readiness for a load balancer (no authentication): 200 when the node can serve —
/// its metadata database answers, its audit log takes records, its snapshot store answers,
/// it holds the versions other replicas committed, and it is not shutting down — else 503 with what failed. Checked at most once a second
/// (concurrent probes wait for the one round in progress).
#[utoipa::path(get, path = "/api/v1/ready", tag = "meta", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready (shutting down, or a dependency failed)", body = Readiness)))]
pub(crate) async fn ready(State(s): State<AppState>) -> Response {
    static LAST: tokio::sync::Mutex<Option<(Instant, Readiness)>> =
        tokio::sync::Mutex::const_new(None);
    let mut last = LAST.lock().await;
    let draining = DRAINING.load(Ordering::Acquire);
    let body = match &*last {
        Some((at, body)) if at.elapsed() < READY_CACHE && body.draining == draining => body.clone(),
        _ => {
            let body = check_readiness(&s, draining).await;
            *last = Some((Instant::now(), body.clone()));
            body
        }
    };
    drop(last);
    let status = if body.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn check_readiness(s: &AppState, draining: bool) -> Readiness {
    let database = check(async {
        sqlx::query("SELECT 1")
            .execute(s.gov.store().pool())
            .await
            .map(drop)
    });
    let audit = check(s.audit.health());
    let store = check(s.engine.store().probe());
    let (database, audit, snapshot_store) = tokio::join!(database, audit, store);
    let replication = match crate::replication::status() {
        Some(r) => r.caught_up().err().unwrap_or_else(|| "ok".to_owned()),
        None => "single node".to_owned(),
    };
    let checks = Checks {
        database,
        audit,
        snapshot_store,
        replication,
    };
    let ok = !draining
        && [&checks.database, &checks.audit, &checks.snapshot_store]
            .iter()
            .all(|c| *c == "ok")
        && matches!(checks.replication.as_str(), "ok" | "single node");
    Readiness {
        status: if ok { "ready" } else { "not_ready" },
        draining,
        checks,
        unreadable_datasets: s.engine.unreadable(),
        lagging_datasets: crate::replication::status()
            .map(|r| r.lagging())
            .unwrap_or_default(),
    }
}

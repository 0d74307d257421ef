//! Process-wide metrics, exported in the Prometheus text format at `/metrics`.
//!
//! One registry per process ([`metrics`]): the HTTP and Flight servers, the engine's loads and
//! lookups and the audit writer count into it; gauges that describe state (the current
//! snapshot of each dataset, overdue requests) are set just before a scrape
//! ([`Engine::publish_metrics`](crate::Engine::publish_metrics)). Labels take values from
//! small, closed sets (route templates, RPC names, dataset names, reasons), never from a
//! caller's input, so the number of series stays bounded. `docs/operations.md` lists every
//! metric and the alerts to set on them.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets, in seconds: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Load duration buckets, in seconds: 50 ms to 30 min.
const LOAD_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
/// Audit group size buckets, in records: 1 to 4096.
const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];
/// Audit commit buckets, in seconds: 50 µs to 2.5 s.
const COMMIT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// Why a request was refused (the `reason` label of `dagr_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or an unknown, expired or revoked one (401, `UNAUTHENTICATED`).
    Unauthenticated,
    /// The caller may not do this (403, `PERMISSION_DENIED`).
    Forbidden,
    /// Over a quota or a resource limit (429, `RESOURCE_EXHAUSTED`).
    Quota,
    /// The request is larger than allowed (413, `OUT_OF_RANGE`).
    TooLarge,
    /// The request is malformed or invalid (400, 422, `INVALID_ARGUMENT`).
    Invalid,
    /// It took longer than allowed (408, 504, `DEADLINE_EXCEEDED`).
    Timeout,
    /// The server cannot serve it now (503, `UNAVAILABLE`).
    Unavailable,
}

impl Refusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Forbidden => "forbidden",
            Refusal::Quota => "quota",
            Refusal::TooLarge => "too_large",
            Refusal::Invalid => "invalid",
            Refusal::Timeout => "timeout",
            Refusal::Unavailable => "unavailable",
        }
    }

    /// The refusal an HTTP status stands for (`None` for success, not-found and conflicts,
    /// and for server errors, which are failures rather than refusals).
    pub fn from_http(status: u16) -> Option<Refusal> {
        Some(match status {
            400 | 422 => Refusal::Invalid,
            401 => Refusal::Unauthenticated,
            403 => Refusal::Forbidden,
            408 | 504 => Refusal::Timeout,
            413 => Refusal::TooLarge,
            429 => Refusal::Quota,
            503 => Refusal::Unavailable,
            _ => return None,
        })
    }

    /// The refusal a gRPC status code stands for.
    pub fn from_grpc(code: i32) -> Option<Refusal> {
        Some(match code {
            3 => Refusal::Invalid,
            4 => Refusal::Timeout,
            7 => Refusal::Forbidden,
            8 => Refusal::Quota,
            11 => Refusal::TooLarge,
            14 => Refusal::Unavailable,
            16 => Refusal::Unauthenticated,
            _ => return None,
        })
    }
}

/// The name of a gRPC status code, as the `code` label of `dagr_flight_calls_total`.
pub fn grpc_code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|c| NAMES.get(c))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by route template, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP latency to the response head, by route template and method.
    pub http_duration: HistogramVec,
    /// Flight RPCs by method and final gRPC status (`CANCELLED` when the client left first).
    pub flight_calls: IntCounterVec,
    /// Flight latency to the response head, by method.
    pub flight_duration: HistogramVec,
    /// Bytes of Flight response bodies sent.
    pub flight_bytes: IntCounter,
    /// Rows of record batches put on Flight streams.
    pub flight_rows: IntCounter,
    /// Whole-dataset Flight streams, by whether the encoded-stream cache held them.
    pub flight_cache: IntCounterVec,
    /// Key lookups, by whether the key was found.
    pub lookups: IntCounterVec,
    /// Loads (snapshots, change sets, rollbacks) by kind and outcome.
    pub loads: IntCounterVec,
    /// Duration of loads that committed, by kind.
    pub load_duration: HistogramVec,
    /// Rows of loads that committed.
    pub load_rows: IntCounter,
    /// Access records per audit group commit.
    pub audit_group: Histogram,
    /// Duration of an audit group commit (write and sync).
    pub audit_commit: Histogram,
    /// Access records committed.
    pub audit_records: IntCounter,
    /// Refused requests (HTTP and Flight), by reason.
    pub refused: IntCounterVec,
    /// The current snapshot version of each dataset.
    pub dataset_version: IntGaugeVec,
    /// Rows of each dataset's current snapshot.
    pub dataset_rows: IntGaugeVec,
    /// Memory held by each dataset's current snapshot (data and key index), in bytes.
    pub dataset_bytes: IntGaugeVec,
    /// Age of each dataset's current snapshot, in seconds.
    pub dataset_age: IntGaugeVec,
    /// Pending access requests past their decision deadline.
    pub requests_overdue: IntGauge,
    /// Pending access requests.
    pub requests_pending: IntGauge,
    /// Seconds since the process started.
    pub uptime: IntGauge,
    /// Time from a commit on another node to its version being current here, in seconds.
    pub replication_lag: Histogram,
    /// Seconds since this node last read the ledger successfully (replicas only; 0 on a
    /// single node).
    pub replication_staleness: prometheus::Gauge,
    /// Datasets this node could not bring up to the ledger's version.
    pub replication_failed: IntGauge,
    started: std::time::Instant,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("a new metric");
    c
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("a new metric");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("a new metric");
    g
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("a new metric");
    g
}

fn float_gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Gauge {
    let g = prometheus::Gauge::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("a new metric");
    g
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("a valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("a new metric");
    h
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("a valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("a new metric");
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("dagr_build_info", "The running DAGR version (always 1)."),
            &["version"],
        )
        .expect("a valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        r.register(Box::new(build)).expect("a new metric");
        Metrics {
            http_requests: counter_vec(
                &r,
                "dagr_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: histogram_vec(
                &r,
                "dagr_http_request_duration_seconds",
                "HTTP latency to the response head, by route template and method.",
                LATENCY_BUCKETS,
                &["route", "method"],
            ),
            flight_calls: counter_vec(
                &r,
                "dagr_flight_calls_total",
                "Flight RPCs by method and final gRPC status (CANCELLED when the client left first).",
                &["rpc", "code"],
            ),
            flight_duration: histogram_vec(
                &r,
                "dagr_flight_call_duration_seconds",
                "Flight latency until the response head (a stream's head, before its first message), by method.",
                LATENCY_BUCKETS,
                &["rpc"],
            ),
            flight_bytes: counter(
                &r,
                "dagr_flight_sent_bytes_total",
                "Bytes of Flight response bodies sent.",
            ),
            flight_rows: counter(
                &r,
                "dagr_flight_sent_rows_total",
                "Rows of record batches put on Flight streams.",
            ),
            flight_cache: counter_vec(
                &r,
                "dagr_flight_cache_total",
                "Whole-dataset Flight streams by cache result (hit: sent from the encoded-stream \
                 cache, its rows not counted again in dagr_flight_sent_rows_total).",
                &["result"],
            ),
            lookups: counter_vec(
                &r,
                "dagr_lookups_total",
                "Key lookups (REST records, Flight key tickets, prepared lookups), by result.",
                &["result"],
            ),
            loads: counter_vec(
                &r,
                "dagr_loads_total",
                "Loads by kind (snapshot, changes, rollback) and outcome (committed, refused, failed).",
                &["kind", "outcome"],
            ),
            load_duration: histogram_vec(
                &r,
                "dagr_load_duration_seconds",
                "Duration of committed loads (validate, index, persist, swap), by kind.",
                LOAD_BUCKETS,
                &["kind"],
            ),
            load_rows: counter(
                &r,
                "dagr_load_rows_total",
                "Rows loaded by committed loads (a snapshot's rows, a change set's upserts and deletes).",
            ),
            audit_group: histogram(
                &r,
                "dagr_audit_group_records",
                "Access records per audit group commit.",
                GROUP_BUCKETS,
            ),
            audit_commit: histogram(
                &r,
                "dagr_audit_commit_duration_seconds",
                "Duration of an audit group commit (write and sync).",
                COMMIT_BUCKETS,
            ),
            audit_records: counter(
                &r,
                "dagr_audit_records_total",
                "Access records and usage events committed.",
            ),
            refused: counter_vec(
                &r,
                "dagr_refused_total",
                "Refused requests (HTTP and Flight), by reason.",
                &["reason"],
            ),
            dataset_version: gauge_vec(
                &r,
                "dagr_dataset_version",
                "The current snapshot version of each dataset.",
                &["dataset"],
            ),
            dataset_rows: gauge_vec(
                &r,
                "dagr_dataset_rows",
                "Rows of each dataset's current snapshot.",
                &["dataset"],
            ),
            dataset_bytes: gauge_vec(
                &r,
                "dagr_dataset_memory_bytes",
                "Memory held by each dataset's current snapshot (data and key index).",
                &["dataset"],
            ),
            dataset_age: gauge_vec(
                &r,
                "dagr_dataset_snapshot_age_seconds",
                "Seconds since each dataset's current snapshot was committed.",
                &["dataset"],
            ),
            requests_overdue: gauge(
                &r,
                "dagr_access_requests_overdue",
                "Pending access requests past their decision deadline (SLA).",
            ),
            requests_pending: gauge(
                &r,
                "dagr_access_requests_pending",
                "Pending access requests.",
            ),
            uptime: gauge(
                &r,
                "dagr_uptime_seconds",
                "Seconds since the process started.",
            ),
            replication_lag: histogram(
                &r,
                "dagr_replication_lag_seconds",
                "Time from a commit on another node to its version being current on this one.",
                LATENCY_BUCKETS,
            ),
            replication_staleness: float_gauge(
                &r,
                "dagr_replication_staleness_seconds",
                "Seconds since this node last read the ledger of replicas (0 on a single node).",
            ),
            replication_failed: gauge(
                &r,
                "dagr_replication_failed_datasets",
                "Datasets this node could not bring up to the version the ledger names.",
            ),
            started: std::time::Instant::now(),
            registry: r,
        }
    }

    /// Count a refused request.
    pub fn refuse(&self, reason: Refusal) {
        self.refused.with_label_values(&[reason.as_str()]).inc();
    }

    /// Count an audit group commit of `records` entries that took `took`.
    pub fn audit_group(&self, records: usize, took: Duration) {
        self.audit_group.observe(records as f64);
        self.audit_commit.observe(took.as_secs_f64());
        self.audit_records.inc_by(records as u64);
    }

    /// Count a load of `kind` (`snapshot`, `changes`, `rollback`) that ended after `took`
    /// with `outcome`: `Ok(Some(rows))` when it committed a version with `rows` rows loaded
    /// (a change set's upserts and deletes; 0 for a rollback), `Ok(None)` when it committed
    /// nothing (a change set that changed nothing, a rollback to the current version: not
    /// counted), or the error that refused it (the caller's mistake) or made it fail.
    pub fn load(&self, kind: &str, took: Duration, outcome: Result<Option<usize>, &crate::Error>) {
        use crate::Error as E;
        let label = match outcome {
            Ok(None) => return,
            Ok(Some(rows)) => {
                self.load_duration
                    .with_label_values(&[kind])
                    .observe(took.as_secs_f64());
                self.load_rows.inc_by(rows as u64);
                "committed"
            }
            Err(
                E::LoadRefused { .. }
                | E::DatasetNotFound(_)
                | E::VersionNotKept { .. }
                | E::InvalidDefinition { .. }
                | E::InvalidKey { .. },
            ) => "refused",
            Err(_) => "failed",
        };
        self.loads.with_label_values(&[kind, label]).inc();
    }

    /// Count key lookups: `found` of `keys` keys were found.
    pub fn lookups(&self, keys: usize, found: usize) {
        self.lookups
            .with_label_values(&["found"])
            .inc_by(found as u64);
        self.lookups
            .with_label_values(&["missing"])
            .inc_by(keys.saturating_sub(found) as u64);
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs() as i64);
        let mut out = Vec::with_capacity(16 << 10);
        // Encoding into memory fails only on invalid metric names, which `new` would have
        // refused.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_encodes_with_help_and_type() {
        let m = Metrics::new();
        m.refuse(Refusal::Quota);
        m.audit_group(3, Duration::from_micros(300));
        m.lookups(5, 4);
        m.load("snapshot", Duration::from_millis(20), Ok(Some(10)));
        m.load("changes", Duration::from_millis(20), Ok(None));
        m.load(
            "rollback",
            Duration::from_millis(1),
            Err(&crate::Error::DatasetNotFound("x".into())),
        );
        m.dataset_rows.with_label_values(&["persons"]).set(10);
        let text = m.encode();
        assert!(
            text.contains("dagr_refused_total{reason=\"quota\"} 1"),
            "{text}"
        );
        assert!(text.contains("dagr_audit_group_records_count 1"), "{text}");
        assert!(text.contains("dagr_audit_records_total 3"), "{text}");
        assert!(
            text.contains("dagr_lookups_total{result=\"missing\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dagr_loads_total{kind=\"snapshot\",outcome=\"committed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dagr_dataset_rows{dataset=\"persons\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE dagr_load_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("dagr_build_info{version="), "{text}");
    }

    #[test]
    fn statuses_map_to_refusals() {
        assert_eq!(Refusal::from_http(429), Some(Refusal::Quota));
        assert_eq!(Refusal::from_http(404), None);
        assert_eq!(Refusal::from_http(500), None);
        assert_eq!(Refusal::from_grpc(16), Some(Refusal::Unauthenticated));
        assert_eq!(Refusal::from_grpc(0), None);
        assert_eq!(grpc_code_name(8), "RESOURCE_EXHAUSTED");
        assert_eq!(grpc_code_name(99), "UNKNOWN");
    }
}

//! End to end: trace ids and OTLP export. A caller's W3C `traceparent` (HTTP header or gRPC
//! metadata) is continued: the response's `x-trace-id`, a problem+json error's `trace_id`
//! and the server's log lines name its trace id, and the spans the server exports over OTLP
//! to a collector (here a real gRPC receiver of the OTLP trace service, from the
//! OpenTelemetry project's own protocol definitions) are children of the caller's span.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::Value;

/// The spans a collector received: (trace id, parent span id, name), ids in hex.
#[derive(Default, Clone)]
struct Collector(Arc<Mutex<Vec<(String, String, String)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push((hex(&s.trace_id), hex(&s.parent_span_id), s.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Start a collector on a free loopback port (over TLS with `tls`: the server certificate and
/// key, PEM); its spans, its address and the task serving it (stopped when dropped).
async fn collector(
    tls: Option<(Vec<u8>, Vec<u8>)>,
) -> (Collector, String, dagr_engine::task::SpawnedTask<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let spans = Collector::default();
    let service = TraceServiceServer::new(spans.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .unwrap();
    }
    let task = dagr_engine::task::SpawnedTask::spawn(async move {
        server
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (spans, format!("{scheme}://{addr}"), task)
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const FLIGHT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_ids_follow_the_caller_into_logs_errors_and_exported_spans() {
    let (spans, endpoint, _collector) = collector(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), 300, &["--otlp-endpoint", &endpoint]);
    let creds = common::credentials(dir.path());
    let token = common::system_token(&creds, "PMLP", "provider");

    // A refused request that continues the caller's trace.
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/datasets/no_such_dataset", server.base))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-trace-id"], TRACE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["trace_id"], TRACE, "{problem}");

    // Without a traceparent (or with a malformed one) a request starts a trace of its own.
    let mut seen = Vec::new();
    for traceparent in [None, Some("00-not-a-trace-01")] {
        let mut req = reqwest::Client::new()
            .get(format!("{}/api/v1/datasets/no_such_dataset", server.base))
            .bearer_auth(&token);
        if let Some(t) = traceparent {
            req = req.header("traceparent", t);
        }
        let response = req.send().await.unwrap();
        let id = response.headers()["x-trace-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["trace_id"], id.as_str());
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()) && id != TRACE);
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1]);
    // Portal pages carry one too.
    let page = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert_eq!(page.headers()["x-trace-id"].len(), 32);

    // A Flight call continues the trace sent in its metadata.
    let mut flight = common::flight_client(&server, &token, Some(common::PURPOSE)).await;
    flight
        .add_header("traceparent", &format!("00-{FLIGHT_TRACE}-{PARENT}-01"))
        .unwrap();
    let status = match flight
        .do_get(arrow_flight::Ticket::new(
            r#"{"dataset": "no_such_dataset"}"#,
        ))
        .await
    {
        Err(arrow_flight::error::FlightError::Tonic(s)) => s,
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a DoGet of a dataset that does not exist was served"),
    };
    assert_eq!(status.metadata().get("x-trace-id").unwrap(), FLIGHT_TRACE);

    // The log lines of the refused HTTP request name its trace.
    let line = server.wait_for(&format!("trace_id={TRACE}"));
    assert!(line.contains("request refused"), "{line}");

    // The exported spans of both calls are children of the caller's span.
    let started = Instant::now();
    loop {
        let got = spans.0.lock().unwrap().clone();
        let http = got
            .iter()
            .any(|(t, p, n)| t == TRACE && p == PARENT && n == "http");
        let grpc = got
            .iter()
            .any(|(t, p, n)| t == FLIGHT_TRACE && p == PARENT && n == "flight");
        if http && grpc {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "spans not exported: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_to_a_collector_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::test_ca(certs.path());
    let pem = |p: &std::path::Path| std::fs::read(p).unwrap();
    let (spans, endpoint, _collector) = collector(Some((pem(&cert), pem(&key)))).await;
    assert!(endpoint.starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    // The collector's certificate authority is trusted as a system's would be.
    let env = [("SSL_CERT_FILE".to_owned(), ca.to_str().unwrap().to_owned())];
    let mut server = Server::start_with_env(dir.path(), 300, &["--otlp-endpoint", &endpoint], &env);
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/health", server.base))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-trace-id"], TRACE);
    let started = Instant::now();
    while !spans.0.lock().unwrap().iter().any(|(t, _, _)| t == TRACE) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no span reached the TLS collector"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.terminate();
}

#[test]
fn a_bad_otlp_endpoint_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (endpoint, says) in [
        ("ftp://collector:4317", "use http://HOST:PORT"),
        ("not a url", "not a URL"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dagr"))
            .args(["serve", "--no-demo", "--otlp-endpoint", endpoint])
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{endpoint} was accepted");
        assert!(stderr.contains(says), "{endpoint}: {stderr}");
    }
}

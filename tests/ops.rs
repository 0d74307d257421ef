//! End to end: what an operator and a load balancer see — `/api/v1/ready` and `/metrics`
//! of the real `dagr serve`, scraped and parsed by the Prometheus project's own text-format
//! parser (`prometheus_client.parser`, in the virtualenv of `scripts/python-env`).

mod common;

use std::process::Command;

use common::metrics::{observations, scrape, value};
use common::{Server, credentials, get, get_auth};

const DEMO_ROWS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_and_metrics_describe_what_the_node_did() {
    let Some(python) = common::python_env("the /metrics test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, DEMO_ROWS, &[]);
    let base = server.base.clone();

    // Readiness: no token needed; every dependency answers.
    let (status, _, ready) = get(&format!("{base}/api/v1/ready")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["draining"], false);
    for check in ["database", "audit", "snapshot_store"] {
        assert_eq!(ready["checks"][check], "ok", "{ready}");
    }

    // Some traffic: a lookup, a missing key, a refusal (no token), a Flight pull.
    let creds = credentials(&data);
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    let (status, _, list) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records?limit=1"),
        &pmlp,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let code = list["records"][0]["personal_code"]
        .as_str()
        .unwrap_or_else(|| panic!("a personal code in {list}"))
        .to_owned();
    let (status, _, _) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records/{code}"),
        &pmlp,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records/000000-00000"),
        &pmlp,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{base}/api/v1/datasets")).await;
    assert_eq!(status, 401);

    assert_eq!(common::pull_persons_rows(&server, &pmlp).await, DEMO_ROWS);
    let mut anonymous = arrow_flight::FlightClient::new(common::flight_channel(&server).await);
    let refused = anonymous
        .do_get(arrow_flight::Ticket::new(r#"{"dataset": "persons"}"#))
        .await;
    assert!(refused.is_err());

    let m = scrape(&base, &python).await;
    let record = [
        ("route", "/api/v1/datasets/{name}/records/{key}"),
        ("method", "GET"),
    ];
    assert_eq!(
        value(
            &m,
            "dagr_http_requests_total",
            &[record[0], record[1], ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "dagr_http_requests_total",
            &[record[0], record[1], ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        observations(&m, "dagr_http_request_duration_seconds", &record),
        2.0
    );
    assert!(value(&m, "dagr_refused_total", &[("reason", "unauthenticated")]) >= 2.0);
    assert_eq!(
        value(
            &m,
            "dagr_flight_calls_total",
            &[("rpc", "DoGet"), ("code", "OK")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "dagr_flight_calls_total",
            &[("rpc", "DoGet"), ("code", "UNAUTHENTICATED")]
        ),
        1.0
    );
    // A stream read to its end is not also counted as cancelled.
    assert_eq!(
        value(&m, "dagr_flight_calls_total", &[("code", "CANCELLED")]),
        0.0
    );
    assert_eq!(
        value(&m, "dagr_flight_sent_rows_total", &[]),
        DEMO_ROWS as f64
    );
    assert!(value(&m, "dagr_flight_sent_bytes_total", &[]) > 0.0);
    assert!(value(&m, "dagr_lookups_total", &[("result", "found")]) >= 1.0);
    assert!(value(&m, "dagr_lookups_total", &[("result", "missing")]) >= 1.0);
    // The demo's registers were loaded at start, each a committed snapshot.
    assert!(
        value(
            &m,
            "dagr_loads_total",
            &[("kind", "snapshot"), ("outcome", "committed")]
        ) >= 5.0
    );
    assert_eq!(
        value(&m, "dagr_dataset_rows", &[("dataset", "persons")]),
        DEMO_ROWS as f64
    );
    assert_eq!(
        value(&m, "dagr_dataset_version", &[("dataset", "persons")]),
        1.0
    );
    assert!(value(&m, "dagr_dataset_memory_bytes", &[("dataset", "persons")]) > 0.0);
    // The lookups and the pull were audited: their records went through the writer.
    assert!(observations(&m, "dagr_audit_group_records", &[]) >= 1.0);
    assert!(value(&m, "dagr_audit_records_total", &[]) >= 3.0);
    assert_eq!(value(&m, "dagr_access_requests_overdue", &[]), 0.0);
    assert_eq!(value(&m, "dagr_build_info", &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_is_not_ready_but_still_answers_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, 100, &["--drain-secs", "5"]);
    let base = server.base.clone();
    let (status, _, _) = get(&format!("{base}/api/v1/ready")).await;
    assert_eq!(status, 200);

    let sent = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    server.wait_for("draining");
    // During the drain: not ready (a load balancer takes the node out), but still serving.
    let (status, _, ready) = get(&format!("{base}/api/v1/ready")).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["draining"], true);
    let (status, _, health) = get(&format!("{base}/api/v1/health")).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    // Then the listeners close and the process exits cleanly.
    server.wait_for("DAGR stopped");
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

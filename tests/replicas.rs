//! End to end: two `dagr serve` nodes sharing one PostgreSQL database (`scripts/postgres`)
//! and one S3-compatible object store (SeaweedFS, `scripts/s3`) are one service. What one
//! commits the other serves; agreements approved on one are enforced by the other; tickets
//! cross nodes; loads of one dataset on both are serialised; a node killed mid-load leaves the
//! other serving the previous version; a node started later is caught up before it answers;
//! the audit chain both write verifies.
//!
//! Propagation delays are bounded loosely here (the machine is shared and noisy); the
//! replication lag is measured in `benches/replicas.rs`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use arrow_flight::FlightDescriptor;
use common::{Server, credentials, get, get_auth};
use futures::TryStreamExt;
use serde_json::Value;

const DEMO_ROWS: usize = 1500;
/// Persons in the big file loaded when a node is killed mid-load.
const BIG_ROWS: usize = 200_000;
/// How long a change may take to reach the other node before the test fails (the target,
/// 2 s for versions and 1 s for agreements, is measured by the bench).
const PATIENCE: Duration = Duration::from_secs(20);

fn dagr_ok(server: &Server, token: &str, args: &[&str]) -> Value {
    common::connector_ok(&server.flight, token, args)
}

/// The version and rows of `persons` as `server` serves it.
async fn persons_version(server: &Server, token: &str) -> (u64, u64) {
    let (status, _, d) = get_auth(&format!("{}/api/v1/datasets/persons", server.base), token).await;
    assert_eq!(status, 200, "{d}");
    (d["version"].as_u64().unwrap(), d["rows"].as_u64().unwrap())
}

/// Wait until `server` serves `persons` at `version`; how long it took.
async fn until_version(server: &Server, token: &str, version: u64) -> Duration {
    let started = Instant::now();
    loop {
        if persons_version(server, token).await.0 == version {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{} still serves persons at {:?}, not version {version}",
            server.base,
            persons_version(server, token).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/api/v1/ready` of `server`: its status and body.
async fn ready(server: &Server) -> (u16, Value) {
    let (status, _, body) = get(&format!("{}/api/v1/ready", server.base)).await;
    (status, body)
}

fn node(data: &std::path::Path, extra: &[&str], env: &[(String, String)]) -> Server {
    Server::start_with_env(data, DEMO_ROWS, extra, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_over_postgresql_and_s3_are_one_service() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let Some((env, bucket)) = common::s3_env() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let store = format!("s3://{bucket}/replicas-{}-{nanos}", std::process::id());
    let shared = ["--database-url", url.as_str(), "--store", store.as_str()];
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));

    // A seeds the demo: its registers go to S3, their versions to the ledger.
    let mut a = node(&data_a, &shared, &env);
    let (status, body) = ready(&a).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["replication"], "ok", "{body}");
    let creds = credentials(&data_a);
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    let file = dir.path().join("persons.parquet");
    let file = file.to_str().unwrap();
    common::pull_persons_file(&a.flight, &pmlp, file);
    let loaded = dagr_ok(&a, &pmlp, &["load", "persons", file]);
    assert_eq!(loaded["committed"]["version"], 2, "{loaded}");

    // B starts later, without a demo of its own: it is caught up before it answers at all.
    let mut b = node(&data_b, &[&shared[..], &["--no-demo"]].concat(), &env);
    let (status, body) = ready(&b).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["replication"], "ok", "{body}");
    assert_eq!(persons_version(&b, &pmlp).await, (2, DEMO_ROWS as u64));
    assert_eq!(common::pull_persons_rows(&b, &pmlp).await, DEMO_ROWS);

    // A load on A is served by B.
    let loaded = dagr_ok(&a, &pmlp, &["load", "persons", file]);
    assert_eq!(loaded["committed"]["version"], 3, "{loaded}");
    let lag = until_version(&b, &pmlp, 3).await;
    eprintln!("version 3 committed on A was current on B after {lag:?}");
    // ... and a load on B by A.
    let loaded = dagr_ok(&b, &pmlp, &["load", "persons", file]);
    assert_eq!(loaded["committed"]["version"], 4, "{loaded}");
    until_version(&a, &pmlp, 4).await;

    // An agreement approved on A is enforced on B: Rīga's consumer, limited to Rīga's rows
    // by its first agreement, sees every row once the second (all rows, two attributes) is
    // approved on A.
    let riga = common::system_token(&creds, "RIGA", "consumer");
    let before = common::pull_persons_rows(&b, &riga).await;
    assert!(before < DEMO_ROWS, "{before}");
    common::second_riga_agreement(&a, &creds).await;
    let started = Instant::now();
    while common::pull_persons_rows(&b, &riga).await != DEMO_ROWS {
        assert!(
            started.elapsed() < PATIENCE,
            "B never enforced the new agreement"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "the agreement approved on A was enforced on B after {:?}",
        started.elapsed()
    );

    // A ticket A issued is served by B (tickets carry the request, not server state).
    let mut on_a = common::flight_client(&a, &pmlp, Some(common::PURPOSE)).await;
    let info = on_a
        .get_flight_info(FlightDescriptor::new_path(vec!["persons".into()]))
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut on_b = common::flight_client(&b, &pmlp, Some(common::PURPOSE)).await;
    let batches: Vec<_> = on_b
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        DEMO_ROWS
    );

    // Two loads of one dataset at once, one on each node: serialised, never mixed. Both
    // commit, one after the other, and both nodes end on the later one.
    let (ra, rb) = std::thread::scope(|s| {
        let on_a = s.spawn(|| common::connector_ok(&a.flight, &pmlp, &["load", "persons", file]));
        let on_b = s.spawn(|| common::connector_ok(&b.flight, &pmlp, &["load", "persons", file]));
        (on_a.join().unwrap(), on_b.join().unwrap())
    });
    let mut versions = [
        ra["committed"]["version"].as_u64().unwrap(),
        rb["committed"]["version"].as_u64().unwrap(),
    ];
    versions.sort_unstable();
    assert_eq!(versions, [5, 6], "{ra}\n{rb}");
    until_version(&a, &pmlp, 6).await;
    until_version(&b, &pmlp, 6).await;
    assert_eq!(common::pull_persons_rows(&a, &pmlp).await, DEMO_ROWS);

    // The metrics of B, parsed by the Prometheus parser: the versions it applied.
    if let Some(python) = common::python_env("the replicas' /metrics") {
        let m = common::metrics::scrape(&b.base, &python).await;
        assert!(
            common::metrics::observations(&m, "dagr_replication_lag_seconds", &[]) >= 1.0,
            "B applied version 3 from A"
        );
        assert_eq!(
            common::metrics::value(&m, "dagr_dataset_version", &[("dataset", "persons")]),
            6.0
        );
        assert_eq!(
            common::metrics::value(&m, "dagr_replication_failed_datasets", &[]),
            0.0
        );
    }

    // A is killed (SIGKILL) in the middle of a big load, holding the dataset's commit lock:
    // B goes on serving version 6, and the load retried on B commits.
    let big = dir.path().join("big");
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(["demo", "generate", "--rows", &BIG_ROWS.to_string(), "--out"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let big = big.join("persons.parquet");
    let big = big.to_str().unwrap().to_owned();
    let (flight_a, pmlp_a) = (a.flight.clone(), pmlp.clone());
    let big_a = big.clone();
    let loading = std::thread::spawn(move || {
        common::connector(&flight_a, &pmlp_a, &["load", "persons", &big_a])
    });
    a.wait_for("holding the dataset's commit lock across replicas dataset=persons version=7");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let (ok, report, _) = loading.join().unwrap();
    assert!(
        !ok,
        "the load on the killed node cannot have succeeded: {report}"
    );
    assert_eq!(persons_version(&b, &pmlp).await, (6, DEMO_ROWS as u64));
    assert_eq!(common::pull_persons_rows(&b, &pmlp).await, DEMO_ROWS);
    let retried = dagr_ok(&b, &pmlp, &["load", "persons", &big]);
    assert_eq!(retried["committed"]["version"], 7, "{retried}");
    assert_eq!(persons_version(&b, &pmlp).await, (7, BIG_ROWS as u64));

    // A restarted is caught up (version 7, committed while it was dead) before it is ready.
    let mut a = node(&data_a, &shared, &env);
    let (status, body) = ready(&a).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(persons_version(&a, &pmlp).await, (7, BIG_ROWS as u64));
    a.terminate();
    b.terminate();

    // Both nodes wrote access records into one chain, and it verifies.
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(["audit", "--database-url", &url, "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["records"].as_u64().unwrap_or(0) > 0, "{report}");
}

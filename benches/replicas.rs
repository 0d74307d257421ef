//! Replication lag (issue 20): two nodes A and B sharing one PostgreSQL database and one
//! S3-compatible store; [`LOADS`] snapshot loads of `persons` committed on A through Flight
//! `DoPut`, and for each the time from A's acknowledgement of the commit to B serving that
//! version (B's `GET /api/v1/datasets/persons` polled every millisecond). The baseline of the
//! same run is the load itself on A (send, validate, index, write to S3, commit): the lag is
//! reported against it. A harness of its own, not criterion; nothing is asserted on times.
//!
//! Run: `cargo bench --bench replicas`. `DAGR_BENCH_PERSONS` sets the persons count (default
//! 100 000), `DAGR_BENCH_LOADS` the loads (default 100). `DAGR_BENCH_POSTGRES_URL` and
//! `DAGR_BENCH_S3_ENV` name running servers; else the bench starts them with
//! `scripts/postgres` and `scripts/s3`, on loopback.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{FlightClient, FlightDescriptor, Ticket};
use futures::TryStreamExt;

/// Loads committed on A (`DAGR_BENCH_LOADS`).
const LOADS: usize = 100;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not me".
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "replicas")
    {
        return;
    }
    let persons = support::persons(100_000);
    let loads = support::env_or("DAGR_BENCH_LOADS", LOADS).max(2);
    let pg = support::services::Postgres::get();
    let s3 = support::services::S3::get();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos();
    let url = runtime.block_on(pg.fresh_database(&format!("dagr_bench_{nanos}")));
    let location = format!("s3://{}/bench-replicas-{nanos}", s3.bucket);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let shared = ["--database-url", url.as_str(), "--store", location.as_str()];

    eprintln!("node A: seeding {persons} persons into {location} ...");
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let (_a, _, a_flight, _) = support::start_server_env(&a_data, persons, &shared, &s3.env);
    let b_args = [&shared[..], &["--no-demo"]].concat();
    let (_b, b_http, _, _) = support::start_server_env(&b_data, persons, &b_args, &s3.env);
    let token = support::credentials(&a_data)["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .find(|s| s["organisation"] == "PMLP" && s["role"] == "provider")
        .and_then(|s| s["token"].as_str())
        .expect("the PMLP provider token")
        .to_owned();

    let (lags, commits) = runtime.block_on(async {
        let mut client = FlightClient::new(support::flight_channel(&a_flight).await);
        client
            .add_header("authorization", &format!("Bearer {token}"))
            .expect("header");
        client
            .add_header("x-dagr-purpose", "replicas bench")
            .expect("header");
        let batches: Vec<_> = client
            .do_get(Ticket::new(r#"{"dataset": "persons"}"#))
            .await
            .expect("DoGet")
            .try_collect()
            .await
            .expect("the stream");
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        client
            .add_header("x-dagr-rows", &rows.to_string())
            .expect("header");
        let http = reqwest::Client::new();
        let b_version = || {
            let req = http
                .get(format!("{b_http}/api/v1/datasets/persons"))
                .bearer_auth(&token);
            async move {
                let d: serde_json::Value = req
                    .send()
                    .await
                    .expect("B answers")
                    .json()
                    .await
                    .expect("JSON");
                d["version"].as_u64().expect("a version")
            }
        };
        let (mut lags, mut commits) = (Vec::new(), Vec::new());
        for i in 1..=loads {
            let data = FlightDataEncoderBuilder::new()
                .with_flight_descriptor(Some(FlightDescriptor::new_path(vec!["persons".into()])))
                .build(futures::stream::iter(batches.clone().into_iter().map(Ok)));
            let started = Instant::now();
            let results: Vec<_> = client
                .do_put(data)
                .await
                .expect("DoPut")
                .try_collect()
                .await
                .expect("the DoPut answer");
            let acked = Instant::now();
            let report: serde_json::Value =
                serde_json::from_slice(&results[0].app_metadata).expect("the load report");
            let version = report["version"]
                .as_u64()
                .or_else(|| report["committed"]["version"].as_u64())
                .unwrap_or_else(|| panic!("a version in {report}"));
            while b_version().await < version {
                assert!(
                    acked.elapsed() < Duration::from_secs(60),
                    "B never served version {version}"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            lags.push(acked.elapsed());
            commits.push(acked - started);
            if i % 10 == 0 {
                eprintln!(
                    "  {i}/{loads} loads; last: load {:.0} ms, lag {:.1} ms",
                    support::ms(acked - started),
                    support::ms(*lags.last().expect("a lag"))
                );
            }
        }
        (lags, commits)
    });
    report(persons, &lags, &commits);
}

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
fn report(persons: usize, lags: &[Duration], commits: &[Duration]) {
    let mut lags = lags.to_vec();
    lags.sort();
    let mut commits = commits.to_vec();
    commits.sort();
    let p = |v: &[Duration], q: f64| support::ms(support::percentile(v, q));
    println!(
        "## Replication lag: commit on A → current on B\n\n\
         {persons} persons per load, {} loads through Flight `DoPut` on A; B polled every 1 ms \
         over REST. PostgreSQL, SeaweedFS, both nodes and the client share {} cores.\n\n\
         | measure | p50 | p99 | max |\n| --- | --- | --- | --- |\n\
         | lag: A acknowledged → B serves it | {:.1} ms | {:.1} ms | {:.1} ms |\n\
         | baseline: the load on A (DoPut to acknowledgement) | {:.0} ms | {:.0} ms | {:.0} ms |\n\
         | lag / load (p50) | {:.2}× | | |",
        lags.len(),
        support::cores(),
        p(&lags, 0.5),
        p(&lags, 0.99),
        support::ms(*lags.last().expect("a lag")),
        p(&commits, 0.5),
        p(&commits, 0.99),
        support::ms(*commits.last().expect("a load")),
        p(&lags, 0.5) / p(&commits, 0.5),
    );
}

//! The snapshot store (issue 20): a node's cold start from S3-compatible object storage
//! against from the local disk, same data, and a bulk Flight pull of `persons` from each
//! node (should be equal: once restored, the data is in memory). A harness of its own, not
//! criterion. Run: `cargo bench --bench store`; `DAGR_BENCH_PERSONS` sets the persons count
//! (default 1 000 000); `DAGR_BENCH_S3_ENV` names the environment file of a running S3 server
//! (as `scripts/s3 start DIR` writes to `DIR/env`), else the bench starts SeaweedFS itself
//! with `scripts/s3`, on loopback.
//!
//! Both nodes are seeded once with the same demo (same seed, same size): one into its data
//! directory, one into `s3://BUCKET/bench-…`. Then every round starts each node (alternately),
//! reads the restore time the node logs (`snapshots restored … ms=`) and the time from spawn to
//! listening, pulls the whole `persons` register [`PULLS`] times as its owner with
//! arrow-flight's Rust client, and stops the node. Medians over [`RUNS`] rounds; ratios are
//! S3 / local disk of the same run. Progress goes to stderr, the report to stdout. Nothing is
//! asserted on times.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use arrow_flight::{FlightClient, Ticket};
use futures::TryStreamExt;

/// Rounds per node.
const RUNS: usize = 5;
/// Whole pulls of `persons` per node and round (the median is kept).
const PULLS: usize = 3;

/// One measured start of a node.
struct Start {
    /// Restoring the snapshots, as the node logs it.
    restore: Duration,
    /// Spawn to listening.
    listening: Duration,
    /// Median whole pull of `persons`.
    pull: Duration,
    /// Rows of that pull, as a check that both nodes sent the same table.
    rows: usize,
}

/// Start a node on `data` (with `extra` flags and `env`), measure, stop it.
fn measure(data: &Path, persons: usize, extra: &[&str], env: &[(String, String)]) -> Start {
    let spawned = Instant::now();
    let (serve, _, flight, log) = support::start_server_env(data, persons, extra, env);
    let listening = spawned.elapsed();
    let restored = log
        .iter()
        .find(|l| l.contains("snapshots restored"))
        .expect("a `snapshots restored` line");
    let ms: u64 = restored
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .expect("ms= in the restore line");
    let token = support::credentials(data)["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .find(|s| s["organisation"] == "PMLP" && s["role"] == "provider")
        .and_then(|s| s["token"].as_str())
        .expect("the PMLP provider token")
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (mut pulls, rows) = runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(flight)
            .expect("the Flight URL")
            .initial_stream_window_size(16 << 20)
            .initial_connection_window_size(32 << 20)
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("connect to Flight");
        let mut client = FlightClient::new(channel);
        client
            .add_header("authorization", &format!("Bearer {token}"))
            .expect("header");
        client
            .add_header("x-dagr-purpose", "store bench")
            .expect("header");
        let mut pulls = Vec::new();
        let mut rows = 0;
        for _ in 0..PULLS {
            let started = Instant::now();
            let batches: Vec<_> = client
                .do_get(Ticket::new(r#"{"dataset": "persons"}"#))
                .await
                .expect("DoGet")
                .try_collect()
                .await
                .expect("the stream");
            pulls.push(started.elapsed());
            rows = batches.iter().map(|b| b.num_rows()).sum();
        }
        (pulls, rows)
    });
    drop(serve);
    pulls.sort();
    Start {
        restore: Duration::from_millis(ms),
        listening,
        pull: pulls[pulls.len() / 2],
        rows,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not me".
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "store")
    {
        return;
    }
    let persons = support::persons(1_000_000);
    let s3 = support::services::S3::get();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (local, remote) = (dir.path().join("local"), dir.path().join("s3"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos();
    let location = format!("s3://{}/bench-{nanos}", s3.bucket);
    let s3_args = ["--store", location.as_str()];

    eprintln!("seeding {persons} persons on the local disk and in {location} ...");
    for (data, extra) in [(&local, &[][..]), (&remote, &s3_args[..])] {
        let started = Instant::now();
        drop(support::start_server_env(data, persons, extra, &s3.env));
        eprintln!("  seeded in {:.1} s", started.elapsed().as_secs_f64());
    }

    let mut results: [Vec<Start>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=RUNS {
        for (i, (data, extra)) in [(&local, &[][..]), (&remote, &s3_args[..])]
            .into_iter()
            .enumerate()
        {
            let m = measure(data, persons, extra, &s3.env);
            eprintln!(
                "round {round} {}: restore {} ms, listening {} ms, pull {} ms, {} rows",
                ["local", "s3"][i],
                m.restore.as_millis(),
                m.listening.as_millis(),
                m.pull.as_millis(),
                m.rows
            );
            results[i].push(m);
        }
    }
    assert_eq!(
        results[0][0].rows, results[1][0].rows,
        "the two nodes sent different tables"
    );

    report(persons, &results);
}

/// What a row of the report measures.
type Measure = fn(&Start) -> Duration;

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
fn report(persons: usize, results: &[Vec<Start>; 2]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let med = |i: usize, f: Measure| median(results[i].iter().map(f).collect());
    println!(
        "## Snapshot store: S3 (SeaweedFS on loopback) against the local disk\n\n\
         {persons} persons (6 demo registers), {cores} cores shared by the node, SeaweedFS and \
         the client; medians of {RUNS} rounds, node starts interleaved.\n\n\
         | measure | local disk | S3 | S3 / local |\n| --- | --- | --- | --- |"
    );
    let rows: [(&str, Measure); 3] = [
        ("restore the snapshots (logged)", |s| s.restore),
        ("spawn to listening", |s| s.listening),
        ("whole pull of persons (Flight, owner)", |s| s.pull),
    ];
    for (label, f) in rows {
        let (a, b) = (med(0, f), med(1, f));
        println!(
            "| {label} | {:.0} ms | {:.0} ms | {:.2}× |",
            support::ms(a),
            support::ms(b),
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
}

//! End to end: point lookups answer while bulk streams saturate the server (issue 18, item
//! 2). Whole-dataset and SQL streams are produced on the bulk runtime and wait for their
//! readers; a reader that stops reading holds no server thread busy. Functional checks
//! only: how fast the lookups answer meanwhile is measured by the benches.

mod common;

use std::time::Duration;

use arrow_flight::{FlightClient, Ticket};
use common::{Server, credentials, get_auth};
use dagr_engine::arrow::array::{AsArray, RecordBatch};
use futures::StreamExt;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// Persons of the demo: enough that a whole-dataset stream outlasts the lookups.
const PERSONS: usize = 20_000;

fn ticket(v: Value) -> Ticket {
    Ticket::new(v.to_string())
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// A Flight client on its own connection; `window` bounds its HTTP/2 windows (a slow
/// reader whose server cannot run ahead of it).
async fn client(server: &Server, token: &str, window: Option<u32>) -> FlightClient {
    let mut endpoint = Channel::from_shared(server.flight.clone()).unwrap();
    if let Some(w) = window {
        endpoint = endpoint
            .initial_stream_window_size(Some(w))
            .initial_connection_window_size(Some(w));
    }
    let mut c = FlightClient::new(endpoint.connect().await.unwrap());
    c.add_header("authorization", &format!("Bearer {token}"))
        .unwrap();
    c.add_header("x-dagr-purpose", common::PURPOSE).unwrap();
    c
}

/// Read a whole stream, returning its rows.
async fn drain(c: &mut FlightClient, t: Value) -> usize {
    let mut stream = c.do_get(ticket(t)).await.unwrap();
    let mut n = 0;
    while let Some(b) = stream.next().await {
        n += b.unwrap().num_rows();
    }
    n
}

/// CPU time (user + system) the process `pid` has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap())
}

/// CPU time (user + system), in clock ticks, of the threads of `pid` named `name` (the
/// bulk runtime's threads are `dagr-bulk`).
fn thread_ticks(pid: u32, name: &str) -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() == name
            && let Ok(stat) = std::fs::read_to_string(path.join("stat"))
        {
            ticks += stat_ticks(&stat);
        }
    }
    ticks
}

/// utime + stime of a `/proc/.../stat` line.
fn stat_ticks(stat: &str) -> u64 {
    // Fields after the command name (which may hold spaces) start after the last `)`.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookups_answer_during_saturating_bulk_streams_and_a_stalled_reader_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        PERSONS,
        &[
            "--bulk-threads",
            "1",
            "--load-threads",
            "1",
            "--flight-batch-rows",
            "256",
        ],
    );
    let creds = credentials(&data);
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    let pid = server.child.id();
    let bulk_before = thread_ticks(pid, "dagr-bulk");

    // The keys to look up, from a first full read (which also shows the stream is whole).
    let mut lookups = client(&server, &pmlp, None).await;
    let all: Vec<RecordBatch> = {
        let s = lookups
            .do_get(ticket(json!({"dataset": "persons"})))
            .await
            .unwrap();
        s.map(Result::unwrap).collect().await
    };
    assert_eq!(rows(&all), PERSONS);
    let code_at = |i: usize| -> (String, String) {
        let (b, at) = (&all[i % all.len()], i % all[i % all.len()].num_rows());
        let code = b
            .column_by_name("personal_code")
            .unwrap()
            .as_string::<i32>();
        let given = b.column_by_name("given_name").unwrap().as_string::<i32>();
        (code.value(at).to_owned(), given.value(at).to_owned())
    };

    // A reader that takes one batch and then stops reading, with small windows: the server
    // cannot run ahead of it, so its stream stays open, waiting.
    let mut stalled_client = client(&server, &pmlp, Some(16 * 1024)).await;
    let mut stalled = stalled_client
        .do_get(ticket(json!({"dataset": "persons"})))
        .await
        .unwrap();
    let first = stalled.next().await.unwrap().unwrap();
    assert!(first.num_rows() > 0 && first.num_rows() <= 256);

    // Two readers that read as fast as they can, over and over: a whole-dataset stream
    // and a SQL stream (a filter ticket), both produced on the bulk runtime.
    let mut readers = tokio::task::JoinSet::new();
    for t in [
        json!({"dataset": "persons"}),
        json!({"dataset": "persons", "filter": "personal_code <> ''"}),
    ] {
        let mut c = client(&server, &pmlp, None).await;
        readers.spawn(async move {
            let mut total = 0;
            for _ in 0..3 {
                let n = drain(&mut c, t.clone()).await;
                assert_eq!(n, PERSONS, "{t}");
                total += n;
            }
            total
        });
    }

    // Meanwhile, point lookups over Flight (a JSON keys ticket) and REST answer, correctly.
    for i in 0..20 {
        let (code, given) = code_at(i * 97);
        let got: Vec<RecordBatch> = lookups
            .do_get(ticket(
                json!({"dataset": "persons", "keys": [code], "columns": ["personal_code", "given_name"]}),
            ))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(rows(&got), 1, "Flight lookup of {code}");
        let b = got.iter().find(|b| b.num_rows() == 1).unwrap();
        assert_eq!(b.column(0).as_string::<i32>().value(0), code);
        assert_eq!(b.column(1).as_string::<i32>().value(0), given);

        let (status, _, rec) = get_auth(
            &format!("{}/api/v1/datasets/persons/records/{code}", server.base),
            &pmlp,
        )
        .await;
        assert_eq!(status, 200, "REST lookup of {code}: {rec}");
        assert_eq!(rec["record"]["personal_code"], code.as_str());
        assert_eq!(rec["record"]["given_name"], given.as_str());
    }
    while let Some(total) = readers.join_next().await {
        assert_eq!(total.unwrap(), 3 * PERSONS);
    }

    // The streams were produced (masked, audited, encoded) by the bulk runtime's threads:
    // seven whole reads of the register cost them CPU time (about 7 ticks in a debug build
    // here; were the work back on the serving runtime, theirs would stay at zero).
    let bulk = thread_ticks(pid, "dagr-bulk") - bulk_before;
    assert!(
        bulk >= 2,
        "the bulk threads did not produce the streams: {bulk} ticks of CPU"
    );

    // Only the stalled stream is open now. Its producer waits on the client's window; it
    // neither spins nor buffers: over a second the server uses a fraction of one core (a
    // spinning thread would use all of it). Generous bound: a third of the second.
    let hz = 100; // USER_HZ on Linux
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks(pid) - before;
    assert!(
        used < hz / 3,
        "a stalled reader kept the server busy: {used} ticks of CPU in one second"
    );

    // The stalled stream resumes where it stopped and is whole.
    let mut n = first.num_rows();
    while let Some(b) = stalled.next().await {
        n += b.unwrap().num_rows();
    }
    assert_eq!(n, PERSONS);
}

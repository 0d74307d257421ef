//! End to end: the real `dagr serve` (SQLite audit log) is killed with SIGKILL in the middle
//! of a burst of audited point lookups — Flight JSON `keys` tickets and REST lookups from
//! several concurrent clients — and no access record of a lookup whose answer a client
//! received is lost: after the crash `dagr audit verify` passes, the server starts again, and
//! its owner export lists a record for every acknowledged lookup (found by the lookup's own
//! purpose, naming the person looked up).
//!
//! No timing is asserted; the burst is sized to finish in well under a minute on two cores.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow_flight::{FlightClient, Ticket};
use common::{Server, credentials, system_token};
use dagr_engine::arrow::array::{Array, RecordBatch, StringArray};
use futures::TryStreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Persons in the demo register.
const PERSONS: usize = 300;
/// Lookups in the burst, numbered `0..LOOKUPS`; lookup `i` declares the purpose
/// [`purpose`]`(i)`, unique to it.
const LOOKUPS: usize = 10_000;
/// The server is killed once this many lookups have been answered.
const KILL_AFTER: usize = 5_000;
/// Concurrent clients of each kind (Flight and REST).
const CLIENTS_PER_KIND: usize = 4;

/// The purpose lookup `i` declares: fixed width, so one never is a prefix of another.
fn purpose(i: usize) -> String {
    format!("crash-{i:05}")
}

/// Where the burst stands, shared by the clients and the test.
struct Burst {
    /// Lookups answered (the client received the record).
    answered: AtomicUsize,
    /// Set just before the server is killed: a failure after it is expected.
    killed: AtomicBool,
    /// Signalled when [`KILL_AFTER`] lookups have been answered.
    kill_now: Notify,
}

impl Burst {
    /// Count an answered lookup; the one that reaches [`KILL_AFTER`] calls for the kill.
    fn answered(&self) {
        if self.answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            self.kill_now.notify_one();
        }
    }

    /// A lookup failed: expected once the server is being killed, a test failure before.
    fn failed(&self, what: &str) {
        assert!(
            self.killed.load(Ordering::SeqCst),
            "a lookup failed before the server was killed: {what}"
        );
    }
}

/// The purposes (and the code looked up) of the lookups one client saw answered.
type Answered = Vec<(String, String)>;

/// A Flight client: lookups `first, first + step, ...` as JSON `keys` tickets.
async fn flight_lookups(
    mut client: FlightClient,
    codes: Arc<Vec<String>>,
    first: usize,
    step: usize,
    burst: Arc<Burst>,
) -> Answered {
    let mut answered = Vec::new();
    for i in (first..LOOKUPS).step_by(step) {
        if burst.killed.load(Ordering::SeqCst) {
            break;
        }
        let code = &codes[i % codes.len()];
        client
            .add_header("x-dagr-purpose", &purpose(i))
            .expect("a purpose header");
        let ticket = Ticket::new(json!({"dataset": "persons", "keys": [code]}).to_string());
        let batches: Result<Vec<RecordBatch>, _> = match client.do_get(ticket).await {
            Ok(stream) => stream.try_collect().await,
            Err(e) => Err(e),
        };
        match batches {
            Ok(batches) => {
                let found = batches
                    .iter()
                    .map(|b| key_column(b).iter().flatten().collect::<Vec<_>>())
                    .collect::<Vec<_>>()
                    .concat();
                assert_eq!(found, [code.as_str()], "lookup {i} answers its person");
                answered.push((purpose(i), code.clone()));
                burst.answered();
            }
            Err(e) => {
                burst.failed(&e.to_string());
                break;
            }
        }
    }
    answered
}

/// A REST client: lookups `first, first + step, ...` as `GET .../records/{key}`.
async fn rest_lookups(
    base: String,
    token: String,
    codes: Arc<Vec<String>>,
    first: usize,
    step: usize,
    burst: Arc<Burst>,
) -> Answered {
    let http = reqwest::Client::new();
    let mut answered = Vec::new();
    for i in (first..LOOKUPS).step_by(step) {
        if burst.killed.load(Ordering::SeqCst) {
            break;
        }
        let code = &codes[i % codes.len()];
        let response = http
            .get(format!("{base}/api/v1/datasets/persons/records/{code}"))
            .bearer_auth(&token)
            .header("x-dagr-purpose", purpose(i))
            .send()
            .await;
        let body = match response {
            Ok(r) => {
                let status = r.status();
                match r.json::<Value>().await {
                    // Only a complete 200 answer counts as received.
                    Ok(body) if status == 200 => Ok(body),
                    Ok(body) => {
                        // A refusal is never part of a crash: the server answered.
                        panic!("lookup {i} refused with {status}: {body}")
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match body {
            Ok(body) => {
                assert_eq!(
                    body["record"]["personal_code"],
                    code.as_str(),
                    "lookup {i} answers its person"
                );
                answered.push((purpose(i), code.clone()));
                burst.answered();
            }
            Err(e) => {
                burst.failed(&e.to_string());
                break;
            }
        }
    }
    answered
}

fn key_column(batch: &RecordBatch) -> &StringArray {
    batch
        .column_by_name("personal_code")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .expect("a personal_code string column")
}

fn dagr(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(args)
        .output()
        .expect("run dagr")
}

/// `dagr audit verify` on the data directory: the report, after checking that it passed.
fn verify(data: &std::path::Path) -> Value {
    let out = dagr(&["audit", "--data-dir", data.to_str().unwrap(), "verify"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "verify: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["ok"], true, "{report}");
    report
}

/// The owner's CSV export of the records of `persons`: for each purpose of the burst, the
/// line of its record.
async fn burst_records(server: &Server, owner: &str) -> HashMap<String, String> {
    let csv = common::persons_usage_csv(&server.base, owner).await;
    let mut records = HashMap::new();
    for line in csv.lines() {
        if let Some(at) = line.find("crash-")
            && let Some(p) = line.get(at..at + purpose(0).len())
        {
            let before = records.insert(p.to_owned(), line.to_owned());
            assert!(before.is_none(), "one record per lookup; {p} twice");
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_burst_of_audited_lookups_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, PERSONS, &[]);
    let creds = credentials(&data);
    let bank = system_token(&creds, "BANKA", "consumer");
    let owner = system_token(&creds, "PMLP", "provider");

    // The keys to look up: every person the bank may see.
    let mut client = common::flight_client(&server, &bank, Some("crash test: the keys")).await;
    let batches: Vec<RecordBatch> = client
        .do_get(Ticket::new(
            json!({"dataset": "persons", "columns": ["personal_code"]}).to_string(),
        ))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let codes: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            key_column(b)
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(codes.len(), PERSONS);
    let codes = Arc::new(codes);

    // The burst: lookup i goes to client i % clients; half the clients use Flight, half REST.
    let burst = Arc::new(Burst {
        answered: AtomicUsize::new(0),
        killed: AtomicBool::new(false),
        kill_now: Notify::new(),
    });
    let step = 2 * CLIENTS_PER_KIND;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS_PER_KIND {
        let flight = common::flight_client(&server, &bank, None).await;
        clients.spawn(flight_lookups(
            flight,
            Arc::clone(&codes),
            2 * c,
            step,
            Arc::clone(&burst),
        ));
        clients.spawn(rest_lookups(
            server.base.clone(),
            bank.clone(),
            Arc::clone(&codes),
            2 * c + 1,
            step,
            Arc::clone(&burst),
        ));
    }

    // kill -9 half-way, with lookups in flight (a client that fails before shows here).
    let mut answered: Answered = Vec::new();
    let kill = burst.kill_now.notified();
    tokio::pin!(kill);
    loop {
        tokio::select! {
            () = &mut kill => break,
            done = clients.join_next() => match done {
                Some(client) => answered.extend(client.expect("a lookup client")),
                None => panic!("the burst ended before {KILL_AFTER} lookups were answered"),
            },
        }
    }
    burst.killed.store(true, Ordering::SeqCst);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    while let Some(client) = clients.join_next().await {
        answered.extend(client.expect("a lookup client"));
    }
    assert!(
        answered.len() >= KILL_AFTER && answered.len() < LOOKUPS,
        "killed part-way: {} lookups answered",
        answered.len()
    );

    // The chain verifies after the crash and holds at least every answered lookup (and the
    // read of the keys).
    let report = verify(&data);
    assert!(
        report["records"].as_u64().unwrap() > answered.len() as u64,
        "{report}"
    );

    // The server starts again, and every answered lookup has its record, of its person.
    let server = Server::start(&data, PERSONS, &[]);
    let records = burst_records(&server, &owner).await;
    let mut lost = Vec::new();
    for (purpose, code) in &answered {
        match records.get(purpose) {
            None => lost.push(purpose.clone()),
            Some(line) => assert!(
                line.contains(code.as_str()),
                "{purpose} names {code}: {line}"
            ),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} answered lookups have no access record after the crash, e.g. {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(5)]
    );

    // And it serves: a lookup after the restart is answered and recorded, and the chain
    // still verifies.
    let code = &codes[0];
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/datasets/persons/records/{code}",
            server.base
        ))
        .bearer_auth(&bank)
        .header("x-dagr-purpose", purpose(LOOKUPS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["record"]["personal_code"], code.as_str());
    assert!(
        burst_records(&server, &owner)
            .await
            .contains_key(&purpose(LOOKUPS))
    );
    let mut server = server;
    server.terminate();
    verify(&data);
}

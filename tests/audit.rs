//! End to end: the personal-data usage audit on the real `dagr serve` — every read path
//! writes its access record with the right subjects and attributes, a read without a
//! purpose is refused, a failing audit log withholds the data, acknowledged records survive
//! a crash, citizens see their own records and never another's, and `dagr audit verify`
//! catches tampering.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightClient, Ticket};
use common::{Server, credentials, get_auth, system_token};
use dagr_engine::arrow::array::RecordBatch;
use futures::TryStreamExt;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const PERSONS: usize = 300;

struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    creds: Value,
}

fn data_dir(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("data")
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&data_dir(&dir), PERSONS, &[]);
    let creds = credentials(&data_dir(&dir));
    Fixture { dir, server, creds }
}

impl Fixture {
    fn bank(&self) -> String {
        system_token(&self.creds, "BANKA", "consumer")
    }

    /// (personal code, token) of the demo's subjects.
    fn subjects(&self) -> Vec<(String, String)> {
        self.creds["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["personal_code"].as_str().unwrap().to_owned(),
                    s["token"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn flight(&self, token: &str, purpose: Option<&str>) -> FlightClient {
        common::flight_client(&self.server, token, purpose).await
    }

    async fn sql(&self, token: &str) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(self.server.flight.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = FlightSqlServiceClient::new(channel);
        c.set_token(token.to_owned());
        c.set_header("x-dagr-purpose", "loan application 77");
        c
    }

    /// Every usage entry the subject's own view lists (walking the pages).
    async fn usage_of(&self, subject_token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = format!("{}/api/v1/me/usage?limit=100", self.server.base);
        loop {
            let r = reqwest::Client::new()
                .get(&url)
                .bearer_auth(subject_token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "the citizen view answers");
            let next = r
                .headers()
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(u, _)| u.to_owned());
            let page: Vec<Value> = r.json().await.unwrap();
            out.extend(page);
            match next {
                Some(n) if n.starts_with("http") => url = n,
                Some(n) => url = format!("{}{n}", self.server.base),
                None => return out,
            }
        }
    }
}

fn code_of(e: &FlightError) -> Code {
    match e {
        FlightError::Tonic(s) => s.code(),
        other => panic!("not a status: {other}"),
    }
}

async fn collect(stream: FlightRecordBatchStream) -> Result<Vec<RecordBatch>, FlightError> {
    stream.try_collect().await
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

use common::sql_fetch as fetch;

/// A REST lookup of `code` in persons with a purpose: (status, body).
async fn lookup(f: &Fixture, token: &str, code: &str, purpose: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/datasets/persons/records/{code}",
            f.server.base
        ))
        .bearer_auth(token)
        .header("x-request-id", "req-e2e-1");
    if let Some(p) = purpose {
        req = req.header("x-dagr-purpose", p);
    }
    let (status, _, body) = common::send(req).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_path_is_recorded_for_exactly_its_subjects() {
    let f = start();
    let bank = f.bank();
    let subjects = f.subjects();
    let (alice, alice_token) = subjects[0].clone();
    let (_, bob_token) = subjects[1].clone();

    // REST lookup of Alice.
    let (status, body) = lookup(&f, &bank, &alice, Some("credit check, application 12")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["personal_code"], alice.as_str());

    // Flight SQL of Alice's name only.
    let mut sql = f.sql(&bank).await;
    let info = sql
        .execute(
            format!("SELECT given_name FROM persons WHERE personal_code = '{alice}'"),
            None,
        )
        .await
        .unwrap();
    let batches = fetch(&mut sql, &info).await;
    assert_eq!(rows(&batches), 1);

    // A Flight DoGet of the whole masked dataset: everyone, Alice and Bob included.
    let mut client = f.flight(&bank, Some("portfolio review")).await;
    let all = collect(
        client
            .do_get(Ticket::new(json!({"dataset": "persons"}).to_string()))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(rows(&all), PERSONS);

    // Alice sees three records; every one names the bank, persons and its purpose.
    let mine = f.usage_of(&alice_token).await;
    let channels: Vec<&str> = mine
        .iter()
        .map(|e| e["channel"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        channels,
        ["flight-get", "flight-sql", "rest"],
        "newest first: {mine:#?}"
    );
    for e in &mine {
        assert_eq!(e["organisation"], "BANKA", "{e}");
        assert_eq!(e["dataset"], "persons", "{e}");
        assert!(
            !common::json_strings(&e["agreements"]).is_empty(),
            "names its agreement: {e}"
        );
    }
    assert_eq!(mine[2]["purpose"], "credit check, application 12");
    assert_eq!(mine[0]["purpose"], "portfolio review");
    assert_eq!(mine[1]["purpose"], "loan application 77");
    // The SQL read handed out the name only (the key was the caller's own input).
    assert_eq!(
        common::json_strings(&mine[1]["attributes"]),
        BTreeSet::from(["given_name".to_owned()])
    );
    // The REST lookup handed out every granted attribute, the personal code among them.
    assert!(common::json_strings(&mine[2]["attributes"]).contains("personal_code"));
    assert!(common::json_strings(&mine[2]["attributes"]).contains("given_name"));

    // Bob was only in the bulk read: one record, never Alice's lookups.
    let his = f.usage_of(&bob_token).await;
    assert_eq!(his.len(), 1, "{his:#?}");
    assert_eq!(his[0]["channel"], "flight-get");

    // Other callers cannot read a citizen's view.
    let (status, _, _) = get_auth(&format!("{}/api/v1/me/usage", f.server.base), &bank).await;
    assert_eq!(status, 403);
    let (status, _, _) = common::get(&format!("{}/api/v1/me/usage", f.server.base)).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_personal_data_without_purpose_are_refused_and_return_nothing() {
    let f = start();
    let bank = f.bank();
    let (alice, alice_token) = f.subjects()[0].clone();

    let (status, body) = lookup(&f, &bank, &alice, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("purpose-required"));
    assert!(body["detail"].as_str().unwrap().contains("x-dagr-purpose"));
    assert!(body.get("record").is_none());

    let (status, _) = lookup(&f, &bank, &alice, Some("   ")).await;
    assert_eq!(status, 400, "an empty purpose is no purpose");

    let mut client = f.flight(&bank, None).await;
    let Err(err) = client
        .do_get(Ticket::new(
            json!({"dataset": "persons", "keys": [alice]}).to_string(),
        ))
        .await
    else {
        panic!("refused before any data")
    };
    assert_eq!(code_of(&err), Code::InvalidArgument, "{err}");
    assert!(err.to_string().contains("x-dagr-purpose"), "{err}");

    let channel = Channel::from_shared(f.server.flight.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut sql = FlightSqlServiceClient::new(channel);
    sql.set_token(bank.clone());
    let Err(err) = sql
        .execute("SELECT given_name FROM persons".to_owned(), None)
        .await
    else {
        panic!("refused")
    };
    assert!(err.to_string().contains("x-dagr-purpose"), "{err}");

    // A count over persons is derived from their rows: refused without a purpose too.
    let Err(err) = sql
        .execute("SELECT count(*) AS n FROM persons".to_owned(), None)
        .await
    else {
        panic!("a count over persons needs a purpose")
    };
    assert!(err.to_string().contains("x-dagr-purpose"), "{err}");
    // Rows that carry no subject need no purpose.
    let info = sql
        .execute("SELECT count(*) AS n FROM addresses".to_owned(), None)
        .await
        .unwrap();
    let batches = fetch(&mut sql, &info).await;
    assert_eq!(rows(&batches), 1);

    // Nothing was recorded: nothing was handed out.
    assert!(f.usage_of(&alice_token).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_audit_log_withholds_the_data() {
    let f = start();
    let bank = f.bank();
    let (alice, _) = f.subjects()[0].clone();
    common::break_audit_log(&data_dir(&f.dir)).await;

    // The audit log's commit point is its commit log: a read already under way may still be
    // served (its record is durable there); once the tables refused a write, every personal
    // read is withheld.
    let mut tries = 0;
    let (status, body) = loop {
        let (status, body) = lookup(&f, &bank, &alice, Some("credit check")).await;
        tries += 1;
        if status != 200 || tries == 100 {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(tries <= 3, "withheld within a few reads, not after {tries}");
    assert!(body.get("record").is_none());
    assert!(
        !body.to_string().contains(&alice),
        "no data in the error: {body}"
    );

    // One-batch Flight answer: an error instead of the batch.
    let mut client = f.flight(&bank, Some("credit check")).await;
    let result = match client
        .do_get(Ticket::new(
            json!({"dataset": "persons", "keys": [alice]}).to_string(),
        ))
        .await
    {
        Ok(stream) => collect(stream).await,
        Err(e) => Err(e),
    };
    let err = result.expect_err("no data without its access record");
    assert_eq!(code_of(&err), Code::Unavailable, "{err}");

    // A whole-dataset stream is recorded before its first batch: nothing comes.
    let stream = client
        .do_get(Ticket::new(json!({"dataset": "persons"}).to_string()))
        .await;
    let err = match stream {
        Ok(s) => collect(s).await.expect_err("the stream must fail"),
        Err(e) => e,
    };
    assert_eq!(code_of(&err), Code::Unavailable, "{err}");

    // A SQL result is held back until its record commits: nothing comes either.
    let mut sql = f.sql(&bank).await;
    let info = sql
        .execute("SELECT given_name FROM persons".to_owned(), None)
        .await
        .unwrap();
    let error = match sql.do_get(info.endpoint[0].ticket.clone().unwrap()).await {
        Ok(mut s) => {
            let mut got = 0;
            let mut failed = None;
            while let Some(item) = futures::StreamExt::next(&mut s).await {
                match item {
                    Ok(b) => got += b.num_rows(),
                    Err(e) => failed = Some(code_of(&e)),
                }
            }
            assert_eq!(got, 0, "no row leaves without its record");
            failed.expect("the query must fail")
        }
        // Refused before the first message: the status is inside the client's error.
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("cannot be written"), "{text}");
            Code::Unavailable
        }
    };
    assert_eq!(error, Code::Unavailable);

    // Non-personal reads still work.
    let (status, _, _) = get_auth(&format!("{}/api/v1/datasets", f.server.base), &bank).await;
    assert_eq!(status, 200);
}

fn dagr(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(args)
        .output()
        .expect("run dagr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_a_crash_and_verify_catches_tampering() {
    let mut f = start();
    let bank = f.bank();
    let (alice, alice_token) = f.subjects()[0].clone();
    let mut acknowledged = 0;
    for i in 0..20 {
        let (status, _) = lookup(&f, &bank, &alice, Some(&format!("case {i}"))).await;
        assert_eq!(status, 200);
        acknowledged += 1;
    }
    // kill -9 right after the last acknowledgement.
    f.server.child.kill().unwrap();
    f.server.child.wait().unwrap();

    let data = data_dir(&f.dir);
    let data_arg = data.to_str().unwrap();
    let out = dagr(&["audit", "--data-dir", data_arg, "verify"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "verify after the crash: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["ok"], true);
    assert!(report["records"].as_u64().unwrap() >= acknowledged);

    f.server = Server::start(&data, PERSONS, &[]);
    let mine = f.usage_of(&alice_token).await;
    let purposes: BTreeSet<String> = mine
        .iter()
        .map(|e| e["purpose"].as_str().unwrap().to_owned())
        .collect();
    for i in 0..20 {
        assert!(
            purposes.contains(&format!("case {i}")),
            "case {i} lost: {purposes:?}"
        );
    }
    f.server.terminate();

    // Edit one record's purpose behind DAGR's back: verify names it and fails.
    use sqlx::Connection;
    let url = format!("sqlite://{}", data.join("audit.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM audit_log WHERE purpose = 'case 7'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET purpose = 'nothing to see' WHERE seq = $1")
        .bind(seq)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let out = dagr(&["audit", "--data-dir", data_arg, "verify"]);
    assert_eq!(out.status.code(), Some(1), "verify must fail");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["broken"]["seq"], seq, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systems_report_usage_events_idempotently_and_citizens_see_them() {
    let f = start();
    let bank = f.bank();
    let (alice, alice_token) = f.subjects()[0].clone();
    let (_, bob_token) = f.subjects()[1].clone();
    let body = json!({"events": [{
        "subject": alice,
        "purpose": "loan decision",
        "time": "2026-11-27T10:00:00Z",
        "transaction_id": "loan-2026-0001"
    }]});
    let url = format!("{}/api/v1/usage-events", f.server.base);
    let (status, _, first) = common::post_auth(&url, &bank, &body).await;
    assert_eq!(status, 200, "{first}");
    let (status, _, again) = common::post_auth(&url, &bank, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["events"][0]["status"], "recorded", "{first}");
    assert_eq!(again["events"][0]["status"], "duplicate", "{again}");
    assert_eq!(first["events"][0]["id"], again["events"][0]["id"]);

    let mine = f.usage_of(&alice_token).await;
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0]["purpose"], "loan decision");
    assert_eq!(mine[0]["organisation"], "BANKA");
    assert!(f.usage_of(&bob_token).await.is_empty());

    // A citizen cannot report usage.
    let (status, _, _) = common::post_auth(&url, &alice_token, &body).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_see_usage_of_their_datasets_and_export_it() {
    let f = start();
    let bank = f.bank();
    let pmlp = system_token(&f.creds, "PMLP", "provider");
    let (alice, _) = f.subjects()[0].clone();
    for i in 0..3 {
        let (status, _) = lookup(&f, &bank, &alice, Some(&format!("check {i}"))).await;
        assert_eq!(status, 200);
    }
    let (status, _, summary) = get_auth(
        &format!("{}/api/v1/usage/summary?dataset=persons", f.server.base),
        &pmlp,
    )
    .await;
    assert_eq!(status, 200, "{summary}");
    let text = summary.to_string();
    assert!(
        text.contains("BANKA") && text.contains("given_name"),
        "{summary}"
    );

    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/usage/records?dataset=persons&format=csv",
            f.server.base
        ))
        .bearer_auth(&pmlp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert_eq!(
        csv.lines().filter(|l| l.contains("check ")).count(),
        3,
        "{csv}"
    );

    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/usage/records?dataset=persons&format=parquet",
            f.server.base
        ))
        .bearer_auth(&pmlp)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"PAR1");

    // The consumer sees no owner view.
    let (status, _, _) = get_auth(
        &format!("{}/api/v1/usage/summary?dataset=persons", f.server.base),
        &bank,
    )
    .await;
    assert_eq!(status, 403);
}

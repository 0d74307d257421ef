//! End to end, as a hostile caller: the real `dagr serve`, real clients (arrow-flight's
//! `FlightClient` and `FlightSqlServiceClient`, reqwest).
//!
//! - a cell hidden by a mask is absent from the raw buffers a Flight client receives;
//! - deep type strings and deep SQL are refused by name and the server keeps answering;
//! - counts and key probes over rows of persons need a purpose and are recorded.

mod common;

use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use common::{PURPOSE, Server, credentials, get_auth, post_auth};
use dagr_engine::arrow::array::{Array, AsArray, RecordBatch};
use dagr_engine::arrow::datatypes::DataType;
use futures::TryStreamExt;
use serde_json::json;
use tonic::Code;

const PERSONS: usize = 1000;

async fn collect(stream: FlightRecordBatchStream) -> Result<Vec<RecordBatch>, FlightError> {
    stream.try_collect().await
}

fn code_of(e: &FlightError) -> Code {
    match e {
        FlightError::Tonic(s) => s.code(),
        other => panic!("not a status: {other}"),
    }
}

/// Check the raw buffers of every column of `batches`: a null slot of a fixed-width column
/// holds zeros, and a null slot of a string column holds no bytes (its offsets are equal).
/// Returns how many null slots were checked.
fn assert_null_slots_empty(batches: &[RecordBatch], what: &str) -> usize {
    let mut checked = 0;
    for b in batches {
        for (field, col) in b.schema().fields().iter().zip(b.columns()) {
            let data = col.to_data();
            for i in 0..col.len() {
                if col.is_valid(i) {
                    continue;
                }
                checked += 1;
                match field.data_type() {
                    DataType::Utf8 => {
                        let offsets = data.buffers()[0].typed_data::<i32>();
                        let at = data.offset() + i;
                        assert_eq!(
                            offsets[at],
                            offsets[at + 1],
                            "{what}: hidden cell {i} of `{}` carries bytes",
                            field.name()
                        );
                    }
                    DataType::Date32 | DataType::Int32 => {
                        let v = data.buffers()[0].typed_data::<i32>()[data.offset() + i];
                        assert_eq!(v, 0, "{what}: hidden cell {i} of `{}`", field.name());
                    }
                    DataType::Int64 | DataType::Date64 => {
                        let v = data.buffers()[0].typed_data::<i64>()[data.offset() + i];
                        assert_eq!(v, 0, "{what}: hidden cell {i} of `{}`", field.name());
                    }
                    other => panic!("{what}: no buffer check for {other} (`{}`)", field.name()),
                }
            }
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_cells_are_absent_from_the_buffers_a_flight_client_receives() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, &[]);
    let creds = credentials(&data);
    let riga = common::second_riga_agreement(&server, &creds).await;

    // Every person now, with given_name etc. only on Rīga's rows.
    let mut c = common::flight_client(&server, &riga, Some(PURPOSE)).await;
    let got = collect(
        c.do_get(Ticket::new(json!({"dataset": "persons"}).to_string()))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        got.iter().map(RecordBatch::num_rows).sum::<usize>(),
        PERSONS
    );
    let hidden = assert_null_slots_empty(&got, "DoGet");
    assert!(hidden > 100, "cells outside Rīga are hidden ({hidden})");
    // The string data buffer of given_name holds only Rīga's names.
    for b in &got {
        let names = b.column_by_name("given_name").unwrap().as_string::<i32>();
        let used: usize = names.iter().flatten().map(str::len).sum();
        assert_eq!(names.to_data().buffers()[1].len(), used);
    }

    // Flight SQL: the same cells through a SQL scan.
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(&server).await);
    sql.set_token(riga.clone());
    sql.set_header("x-dagr-purpose", PURPOSE);
    let info = sql
        .execute("SELECT * FROM persons".into(), None)
        .await
        .unwrap();
    let batches = common::sql_fetch(&mut sql, &info).await;
    assert!(assert_null_slots_empty(&batches, "Flight SQL") > 100);

    // Key lookups of persons outside Rīga: their hidden cells carry nothing.
    let codes: Vec<String> = got
        .iter()
        .flat_map(|b| {
            let m = b.column_by_name("municipality").unwrap().as_string::<i32>();
            let k = b
                .column_by_name("personal_code")
                .unwrap()
                .as_string::<i32>();
            (0..b.num_rows())
                .filter(|&i| m.value(i) != "Rīga")
                .map(|i| k.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .take(20)
        .collect();
    assert!(!codes.is_empty());
    let got = collect(
        c.do_get(Ticket::new(
            json!({"dataset": "persons", "keys": codes}).to_string(),
        ))
        .await
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(assert_null_slots_empty(&got, "keys ticket") >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_type_strings_and_sql_are_refused_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, 100, &[]);
    let creds = credentials(&data);
    let base = &server.base;
    let owner = common::system_token(&creds, "PMLP", "provider");
    let bank = common::system_token(&creds, "BANKA", "consumer");

    // A dataset definition with a type nested 50 000 levels deep.
    let deep = format!("{}Int32{}", "List(".repeat(50_000), ")".repeat(50_000));
    let (status, ct, problem) = post_auth(
        &format!("{base}/api/v1/datasets"),
        &owner,
        &json!({"definition": {
            "name": "deep", "owner": "PMLP", "primary_key": ["a"],
            "attributes": [{"name": "a", "type": deep, "description": "x"}],
        }}),
    )
    .await;
    assert!(matches!(status, 400 | 413 | 422), "{status} {ct} {problem}");
    assert_eq!(ct, "application/problem+json");

    // SQL: a flat chain of 30 000 operators and a deep type inside arrow_cast.
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(&server).await);
    sql.set_token(bank.clone());
    sql.set_header("x-dagr-purpose", PURPOSE);
    for (q, needle) in [
        (format!("SELECT 1{}", "+1".repeat(30_000)), "operators"),
        (
            format!(
                "SELECT arrow_cast(1, '{}Int32{}')",
                "List(".repeat(10_000),
                ")".repeat(10_000)
            ),
            "levels deep",
        ),
    ] {
        let err = sql.execute(q, None).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(needle), "{text}");
        assert!(
            text.contains("InvalidArgument") || text.contains("invalid"),
            "{text}"
        );
    }
    // Still serving.
    let (status, _, health) = common::get(&format!("{base}/api/v1/health")).await;
    assert_eq!(status, 200, "{health}");
    let info = sql
        .execute("SELECT count(*) FROM persons".into(), None)
        .await
        .unwrap();
    assert!(!info.endpoint.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_key_probes_need_a_purpose_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, &[]);
    let creds = credentials(&data);
    let bank = common::system_token(&creds, "BANKA", "consumer");

    // Without a purpose: refused, for a count and for a probe that returns no column.
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(&server).await);
    sql.set_token(bank.clone());
    let err = sql
        .execute("SELECT count(*) FROM persons".into(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("x-dagr-purpose"), "{err}");
    let mut c = common::flight_client(&server, &bank, None).await;
    let code = {
        let mut owner = common::flight_client(
            &server,
            &common::system_token(&creds, "PMLP", "provider"),
            Some(PURPOSE),
        )
        .await;
        let b = collect(
            owner
                .do_get(Ticket::new(
                    json!({"dataset": "persons", "columns": ["personal_code"]}).to_string(),
                ))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        b[0].column(0).as_string::<i32>().value(0).to_owned()
    };
    let err = match c
        .do_get(Ticket::new(
            json!({"dataset": "persons", "keys": [code], "columns": []}).to_string(),
        ))
        .await
    {
        Err(e) => e,
        Ok(stream) => collect(stream).await.unwrap_err(),
    };
    assert_eq!(code_of(&err), Code::InvalidArgument, "{err}");
    assert!(err.to_string().contains("x-dagr-purpose"), "{err}");

    // With a purpose: answered, and the probed person sees it in their usage log.
    let mut c = common::flight_client(&server, &bank, Some("existence check")).await;
    let got = collect(
        c.do_get(Ticket::new(
            json!({"dataset": "persons", "keys": [code], "columns": []}).to_string(),
        ))
        .await
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(got.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    let admin = creds["admin"]["token"].as_str().unwrap();
    let (status, _, issued) = post_auth(
        &format!("{}/api/v1/tokens", server.base),
        admin,
        &json!({"kind": "subject", "subject": code, "label": "test"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let subject = issued["secret"].as_str().unwrap();
    let (status, _, usage) = get_auth(&format!("{}/api/v1/me/usage", server.base), subject).await;
    assert_eq!(status, 200, "{usage}");
    let text = usage.to_string();
    assert!(text.contains("existence check"), "{text}");
}

/// A Flight SQL statement's ticket, planned for `token`.
async fn statement_ticket(server: &Server, token: &str, q: &str) -> Ticket {
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(server).await);
    sql.set_token(token.to_owned());
    let info = sql.execute(q.to_owned(), None).await.unwrap();
    info.endpoint[0].ticket.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_holds_a_bounded_number_of_streams_and_a_query_a_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        100,
        &["--max-streams-per-token", "2", "--query-timeout-secs", "3"],
    );
    let creds = credentials(&data);
    let bank = common::system_token(&creds, "BANKA", "consumer");
    let riga = common::system_token(&creds, "RIGA", "consumer");

    // Two endless results the client does not read: each holds its stream (HTTP/2
    // back-pressure) and so one of the token's permits.
    let endless = "SELECT value FROM range(1000000000000)";
    let ticket = statement_ticket(&server, &bank, endless).await;
    let mut c = common::flight_client(&server, &bank, None).await;
    let first = c.do_get(ticket.clone()).await.unwrap();
    let second = c.do_get(ticket.clone()).await.unwrap();
    let err = c.do_get(ticket.clone()).await.unwrap_err();
    assert_eq!(code_of(&err), Code::ResourceExhausted, "{err}");
    assert!(err.to_string().contains("quota `streams`"), "{err}");
    // Another token is not affected.
    let mut other = common::flight_client(&server, &riga, None).await;
    let count = statement_ticket(&server, &riga, "SELECT count(*) FROM range(10)").await;
    assert_eq!(
        collect(other.do_get(count).await.unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // A stream the client drops gives its permit back.
    drop(first);
    let started = std::time::Instant::now();
    let third = loop {
        match c.do_get(ticket.clone()).await {
            Ok(s) => break s,
            Err(e) if code_of(&e) == Code::ResourceExhausted => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "the dropped stream's permit never came back"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    drop((second, third));

    // A query that computes for longer than the limit fails, naming it; the server answers.
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(&server).await);
    sql.set_token(riga.clone());
    let slow = statement_ticket(&server, &riga, "SELECT count(*) FROM range(1000000000000)").await;
    let started = std::time::Instant::now();
    let err = collect(sql.do_get(slow).await.unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("ran longer than 3 s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let (status, _, health) = common::get(&format!("{}/api/v1/health", server.base)).await;
    assert_eq!(status, 200, "{health}");
}

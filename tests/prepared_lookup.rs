//! End to end: a Flight SQL prepared point lookup (`SELECT * FROM persons WHERE
//! personal_code = ?`) answers exactly what the one-call JSON `keys` ticket answers — the same
//! masked columns, the same values, the same IPC bytes on the wire — and leaves an equivalent
//! access record (same subject, dataset, version, attributes and agreements; only the channel
//! and the query text differ); a prepared statement that is not a point lookup still runs
//! through the general path; and the prepared lookup is answered while the caller's only SQL
//! slot is held, so it does not go through the SQL path.

mod common;

use std::sync::Arc;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::utils::flight_data_to_batches;
use arrow_flight::{FlightData, Ticket};
use common::{Server, credentials, system_token};
use dagr_engine::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use futures::TryStreamExt;
use serde_json::json;
use tonic::transport::Channel;

const PERSONS: usize = 300;

/// Every message of a `DoGet` of `ticket`, as sent (no decoding), with `purpose` declared.
async fn raw_get(
    channel: Channel,
    token: &str,
    purpose: &str,
    ticket: Ticket,
) -> (Vec<FlightData>, Vec<RecordBatch>) {
    let mut client = FlightServiceClient::new(channel);
    let mut request = tonic::Request::new(ticket);
    let md = request.metadata_mut();
    md.insert("authorization", format!("Bearer {token}").parse().unwrap());
    md.insert("x-dagr-purpose", purpose.parse().unwrap());
    let messages: Vec<FlightData> = client
        .do_get(request)
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    let batches = flight_data_to_batches(&messages).unwrap();
    (messages, batches)
}

/// The record-batch messages of a stream (header and body bytes), the schema message left
/// out.
fn batch_messages(messages: &[FlightData]) -> Vec<(Vec<u8>, Vec<u8>)> {
    messages
        .iter()
        .filter(|m| !m.data_body.is_empty())
        .map(|m| (m.data_header.to_vec(), m.data_body.to_vec()))
        .collect()
}

fn params(values: &[&str]) -> RecordBatch {
    let columns: Vec<(String, ArrayRef)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                format!("p{}", i + 1),
                Arc::new(StringArray::from(vec![*v])) as ArrayRef,
            )
        })
        .collect();
    RecordBatch::try_from_iter(columns).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_point_lookup_answers_and_is_recorded_like_a_json_keys_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, &[]);
    let creds = credentials(&data);
    let bank = system_token(&creds, "BANKA", "consumer");
    let subject = &creds["subjects"][0];
    let alice = subject["personal_code"].as_str().unwrap().to_owned();
    let alice_token = subject["token"].as_str().unwrap().to_owned();

    // The one-call JSON keys ticket.
    let (json_messages, json_batches) = raw_get(
        common::flight_channel(&server).await,
        &bank,
        "json ticket lookup",
        Ticket::new(json!({"dataset": "persons", "keys": [alice]}).to_string()),
    )
    .await;
    assert_eq!(
        json_batches
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        1
    );

    // The prepared statement, three calls: DoPut of the key, GetFlightInfo, DoGet.
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(&server).await);
    sql.set_token(bank.clone());
    sql.set_header("x-dagr-purpose", "prepared lookup");
    let mut stmt = sql
        .prepare(
            "SELECT * FROM persons WHERE personal_code = ?".to_owned(),
            None,
        )
        .await
        .unwrap();
    stmt.set_parameters(params(&[&alice])).unwrap();
    let info = stmt.execute().await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let (sql_messages, sql_batches) = raw_get(
        common::flight_channel(&server).await,
        &bank,
        "prepared lookup",
        ticket,
    )
    .await;

    // The same masked answer: the schema (hidden attributes absent), the values, the bytes.
    assert_eq!(
        info.try_decode_schema().unwrap(),
        *json_batches[0].schema(),
        "GetFlightInfo describes the JSON ticket's schema"
    );
    assert!(
        json_batches[0].schema().field_with_name("email").is_err(),
        "the bank's agreement does not grant email"
    );
    assert_eq!(sql_batches, json_batches);
    assert_eq!(
        batch_messages(&sql_messages),
        batch_messages(&json_messages),
        "the same IPC bytes on the wire"
    );

    // A key that does not exist: no row.
    stmt.set_parameters(params(&["000000-00000"])).unwrap();
    let info = stmt.execute().await.unwrap();
    let none = common::sql_fetch(&mut sql, &info).await;
    assert_eq!(none.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    stmt.close().await.unwrap();

    // Alice sees both reads, recorded alike.
    let (status, _, usage) =
        common::get_auth(&format!("{}/api/v1/me/usage", server.base), &alice_token).await;
    assert_eq!(status, 200, "{usage}");
    let entries = usage.as_array().unwrap();
    let by_purpose = |p: &str| {
        entries
            .iter()
            .find(|e| e["purpose"] == p)
            .unwrap_or_else(|| panic!("a record with purpose {p}: {usage:#}"))
            .clone()
    };
    let json_record = by_purpose("json ticket lookup");
    let sql_record = by_purpose("prepared lookup");
    assert_eq!(json_record["channel"], "flight-get");
    assert_eq!(sql_record["channel"], "flight-sql");
    for field in ["dataset", "version", "organisation", "system", "kind"] {
        assert_eq!(sql_record[field], json_record[field], "{field}");
    }
    for field in ["attributes", "agreements"] {
        assert_eq!(
            common::json_strings(&sql_record[field]),
            common::json_strings(&json_record[field]),
            "{field}"
        );
    }
    assert!(common::json_strings(&sql_record["attributes"]).contains("given_name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_that_is_not_a_point_lookup_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, &[]);
    let creds = credentials(&data);
    let bank = system_token(&creds, "BANKA", "consumer");
    let a = creds["subjects"][0]["personal_code"].as_str().unwrap();
    let b = creds["subjects"][1]["personal_code"].as_str().unwrap();

    let mut sql = FlightSqlServiceClient::new(common::flight_channel(&server).await);
    sql.set_token(bank.clone());
    sql.set_header("x-dagr-purpose", "two persons");
    let mut stmt = sql
        .prepare(
            "SELECT personal_code, given_name FROM persons \
             WHERE personal_code = $1 OR personal_code = $2 ORDER BY personal_code"
                .to_owned(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(stmt.parameter_schema().unwrap().fields().len(), 2);
    for (x, y) in [(a, b), (b, a)] {
        stmt.set_parameters(params(&[x, y])).unwrap();
        let info = stmt.execute().await.unwrap();
        let batches = common::sql_fetch(&mut sql, &info).await;
        let codes: Vec<String> = batches
            .iter()
            .flat_map(|batch| {
                batch
                    .column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut want = vec![a.to_owned(), b.to_owned()];
        want.sort();
        assert_eq!(codes, want);
    }
    stmt.close().await.unwrap();
}

/// The prepared point lookup does not take the SQL path: with one SQL query allowed per
/// token (`--quota-sql 1`) and that one slot held by a long query of the same token, a new
/// SQL statement is refused (`RESOURCE_EXHAUSTED`), but the prepared lookup — prepared
/// before — is answered from the key index, and the slot is still held afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_lookup_needs_no_sql_slot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, &["--quota-sql", "1"]);
    let creds = credentials(&data);
    let bank = system_token(&creds, "BANKA", "consumer");
    let alice = creds["subjects"][0]["personal_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = |purpose: &'static str| {
        let server = &server;
        let bank = bank.clone();
        async move {
            let mut sql = FlightSqlServiceClient::new(common::flight_channel(server).await);
            sql.set_token(bank);
            sql.set_header("x-dagr-purpose", purpose);
            sql
        }
    };

    // Prepared while the slot is free (preparing plans, and takes it for that time).
    let mut lookups = client("prepared lookup").await;
    let mut stmt = lookups
        .prepare(
            "SELECT * FROM persons WHERE personal_code = ?".to_owned(),
            None,
        )
        .await
        .unwrap();

    // A long query holds the slot: a four-way join whose count no statistic answers (it
    // would run for minutes; the server stops it when the client goes).
    let mut long = client("long query").await;
    let info = long
        .execute(
            "SELECT count(*) FROM persons a, persons b, persons c, persons d, persons e \
             WHERE a.given_name < b.given_name AND b.family_name <> c.family_name \
             AND c.birth_date <> d.birth_date AND d.given_name <> e.given_name"
                .to_owned(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    // Kept open, unread, until the test ends (the server then stops the query). It holds the
    // only bulk thread too (2 cores: one bulk thread): the prepared lookup below never needs
    // one — it is answered on the serving runtime from the key index.
    let held_stream = long.do_get(ticket).await.unwrap();

    let mut probe = client("probe").await;
    let refused = |sql: &mut FlightSqlServiceClient<Channel>| {
        let sql = sql.clone();
        async move {
            let mut sql = sql;
            match sql
                .execute("SELECT personal_code FROM persons LIMIT 1".to_owned(), None)
                .await
            {
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains("sql_queries"), "{text}");
                    true
                }
                Ok(_) => false,
            }
        }
    };
    let mut held = false;
    for _ in 0..100 {
        if refused(&mut probe).await {
            held = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(held, "the long query holds the only SQL slot");

    stmt.set_parameters(params(&[&alice])).unwrap();
    let info = stmt.execute().await.unwrap();
    let rows = common::sql_fetch(&mut lookups, &info).await;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert!(
        refused(&mut probe).await,
        "the slot was held all along: the lookup did not need it"
    );
    drop(held_stream);
}

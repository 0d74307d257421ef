//! Per-consumer quotas end to end (docs/quotas.md): the real `dagr serve`, a system's own
//! quotas set over REST by an admin, refusals with 429 / `RESOURCE_EXHAUSTED` and a
//! `Retry-After`, recovery, other systems unaffected, and the portal's system page.
#![allow(missing_docs, unreachable_pub)]

mod common;
#[path = "portal/support.rs"]
mod support;

use std::time::Duration;

use arrow_flight::Ticket;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use common::{PURPOSE, Server, credentials, get_auth};
use futures::TryStreamExt;
use serde_json::{Value, json};
use tonic::Code;

/// The status of a failed Flight call.
fn status_of(e: &FlightError) -> &tonic::Status {
    match e {
        FlightError::Tonic(s) => s,
        other => panic!("not a status: {other}"),
    }
}

/// A JSON ticket looking up one (absent) person: a read that holds a stream briefly.
fn lookup() -> Ticket {
    Ticket::new(json!({"dataset": "persons", "keys": ["000000-00000"]}).to_string())
}

/// `PUT /api/v1/systems/{id}/quotas` with a raw body: (status, JSON body or null).
async fn put_quotas(base: &str, token: &str, system: &str, body: &str) -> (u16, Value) {
    let (status, _, body) = common::send(
        reqwest::Client::new()
            .put(format!("{base}/api/v1/systems/{system}/quotas"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await;
    (status, body)
}

/// The system id of a system token (`/api/v1/me`).
async fn system_of(base: &str, token: &str) -> String {
    let (status, _, me) = get_auth(&format!("{base}/api/v1/me"), token).await;
    assert_eq!(status, 200, "{me}");
    me["system"].as_str().expect("a system token").to_owned()
}

/// A records sample of `persons` with `token`: (status, `Retry-After`, body).
async fn sample(base: &str, token: &str) -> (u16, Option<u64>, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/datasets/persons/records?limit=1"))
        .bearer_auth(token)
        .header("x-dagr-purpose", PURPOSE)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in whole seconds")
    });
    if status == 429 {
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "a refusal is a problem document"
        );
    }
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// A Flight SQL client of `server` with `token` and the test purpose.
async fn sql_client(
    server: &Server,
    token: &str,
) -> FlightSqlServiceClient<tonic::transport::Channel> {
    let mut sql = FlightSqlServiceClient::new(common::flight_channel(server).await);
    sql.set_token(token.to_owned());
    sql.set_header("x-dagr-purpose", PURPOSE);
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_with_the_right_status_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, 100, &[]);
    let base = server.base.clone();
    let creds = credentials(&data);
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let bank = common::system_token(&creds, "BANKA", "consumer");
    let riga = common::system_token(&creds, "RIGA", "consumer");
    let bank_system = system_of(&base, &bank).await;
    let quotas_url = format!("{base}/api/v1/systems/{bank_system}/quotas");

    // The defaults, as the system's own organisation sees them; another one sees nothing.
    let (status, _, q) = get_auth(&quotas_url, &bank).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        q["requests_per_second"],
        json!({"limit": null, "default": true})
    );
    assert_eq!(q["streams"], json!({"limit": 16, "default": true}));
    assert_eq!(q["sql_queries"], json!({"limit": 16, "default": true}));
    let (status, _, _) = get_auth(&quotas_url, &riga).await;
    assert_eq!(status, 404);

    // Only an admin sets them: the role is checked before the body is even parsed.
    let (status, body) = put_quotas(&base, &bank, &bank_system, "not json").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) =
        put_quotas(&base, &admin, &bank_system, r#"{"requests_per_second": 0}"#).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "requests_per_second");
    let (status, body) = put_quotas(&base, &admin, "999999", r#"{"streams": 2}"#).await;
    assert_eq!(status, 404, "{body}");

    // --- concurrent streams and SQL queries ------------------------------------------
    let (status, q) = put_quotas(
        &base,
        &admin,
        &bank_system,
        r#"{"streams": 2, "sql_queries": 2}"#,
    )
    .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["streams"], json!({"limit": 2, "default": false}));
    assert_eq!(q["sql_queries"], json!({"limit": 2, "default": false}));
    assert_eq!(q["requests_per_second"]["default"], true);

    // Two endless results the client does not read: each holds a stream and an SQL query
    // (HTTP/2 back-pressure keeps them open).
    let mut sql = sql_client(&server, &bank).await;
    let info = sql
        .execute("SELECT value FROM range(1000000000000)".to_owned(), None)
        .await
        .unwrap();
    let endless = info.endpoint[0].ticket.clone().unwrap();
    let mut flight = common::flight_client(&server, &bank, Some(PURPOSE)).await;
    let first = flight.do_get(endless.clone()).await.unwrap();
    let second = flight.do_get(endless.clone()).await.unwrap();
    // A third SQL query is refused at planning, naming its quota.
    let err = sql.execute("SELECT 1".to_owned(), None).await.unwrap_err();
    let s = status_of(&err);
    assert_eq!(s.code(), Code::ResourceExhausted, "{s}");
    assert!(s.message().contains("sql_queries"), "{s}");
    assert_eq!(s.metadata().get("retry-after").unwrap(), "1");
    // A third stream (even a lookup) is refused.
    let Err(err) = flight.do_get(lookup()).await else {
        panic!("a third stream over the streams quota was served");
    };
    let s = status_of(&err);
    assert_eq!(s.code(), Code::ResourceExhausted, "{s}");
    assert!(s.message().contains("quota `streams`"), "{s}");
    assert!(s.metadata().get("retry-after").is_some());
    // Another system is not affected.
    let mut other = common::flight_client(&server, &riga, Some(PURPOSE)).await;
    let rows: Vec<_> = other
        .do_get(lookup())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(rows.iter().all(|b| b.num_rows() == 0));
    // The client drops its streams: their permits come back.
    drop(first);
    drop(second);
    let mut served = None;
    for _ in 0..200 {
        match flight.do_get(lookup()).await {
            Ok(s) => {
                served = Some(s.try_collect::<Vec<_>>().await.unwrap());
                break;
            }
            Err(e) if status_of(&e).code() == Code::ResourceExhausted => {
                // The server notices the dropped stream when its reset arrives.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(served.is_some(), "the streams quota recovered");
    let mut recovered = false;
    for _ in 0..200 {
        match sql.execute("SELECT 1".to_owned(), None).await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(e) if status_of(&e).code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(recovered, "the SQL quota recovered");

    // --- requests per second ---------------------------------------------------------
    let (status, q) = put_quotas(
        &base,
        &admin,
        &bank_system,
        r#"{"requests_per_second": 2, "streams": null}"#,
    )
    .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        q["requests_per_second"],
        json!({"limit": 2, "default": false})
    );
    assert_eq!(q["streams"], json!({"limit": 16, "default": true}));
    let (status, _, shown) = get_auth(&quotas_url, &bank).await;
    assert_eq!((status, &shown), (200, &q));

    // The burst (one second's worth) is served, then REST refuses with 429 + Retry-After.
    let mut refusal = None;
    let mut served = 0;
    for _ in 0..50 {
        let (status, retry, body) = sample(&base, &bank).await;
        match status {
            200 => served += 1,
            429 => {
                refusal = Some((retry, body));
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let (retry, problem) = refusal.expect("REST refused over 2 requests per second");
    assert!(served >= 2, "the burst was served ({served})");
    let retry = retry.expect("a Retry-After header");
    assert!(retry >= 1);
    assert_eq!(problem["status"], 429);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("quota-exceeded"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("requests_per_second"),
        "{problem}"
    );
    // Flight shares the token's bucket: refused too, with the same text and retry-after.
    let mut refused = None;
    for _ in 0..50 {
        match flight.do_get(lookup()).await {
            Ok(s) => {
                let _: Vec<_> = s.try_collect().await.unwrap();
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("Flight refused over 2 requests per second");
    let s = status_of(&err);
    assert_eq!(s.code(), Code::ResourceExhausted, "{s}");
    assert!(s.message().contains("requests_per_second"), "{s}");
    let flight_retry: u64 = s
        .metadata()
        .get("retry-after")
        .expect("retry-after metadata")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(flight_retry >= 1);
    // Another system is not affected.
    for _ in 0..10 {
        let (status, _, body) = sample(&base, &riga).await;
        assert_eq!(status, 200, "{body}");
    }
    // After the wait it was told, the token is served again, on both protocols.
    tokio::time::sleep(Duration::from_secs(retry.max(flight_retry))).await;
    let (status, _, body) = sample(&base, &bank).await;
    assert_eq!(status, 200, "{body}");
    let _: Vec<_> = flight
        .do_get(lookup())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();

    // --- the portal shows the quotas to the system's organisation --------------------
    let mut b = support::Browser::new(&base);
    b.sign_in("banka.consumer", &support::demo_password("banka.consumer"))
        .await;
    let page = b.get(&format!("/systems/{bank_system}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("id=\"quotas\""), "{}", page.html);
    assert!(
        page.has("<span id=\"quota-requests_per_second-limit\">2</span>"),
        "{}",
        page.html
    );
    assert!(page.has("id=\"quota-requests_per_second-own\""));
    assert!(page.has("<span id=\"quota-streams-limit\">16</span>"));
    assert!(page.has("id=\"quota-streams-default\""));
    assert!(page.has("id=\"quota-sql_queries-default\""));
    // In Latvian (the default) and in English.
    assert!(
        page.has("Kvotas") && page.has("noklusējums"),
        "{}",
        page.html
    );
    b.get("/lang/en?back=%2F").await;
    let en = b.get(&format!("/systems/{bank_system}")).await;
    assert!(
        en.has("Quotas") && en.has("set for this system"),
        "{}",
        en.html
    );
    // A person of another organisation does not see the system (nor its quotas).
    let mut other = support::Browser::new(&base);
    other
        .sign_in("pmlp.owner", &support::demo_password("pmlp.owner"))
        .await;
    let page = other.get(&format!("/systems/{bank_system}")).await;
    assert_eq!(page.status, 404, "{}", page.html);
    assert!(!page.has("id=\"quotas\""));
    // The organisation sees its quotas but gets no form; a forged post is refused and
    // changes nothing.
    assert!(!en.has("id=\"quota-form\""), "{}", en.html);
    let refused = b
        .submit(
            &format!("/systems/{bank_system}/quotas"),
            &[("requests_per_second", "1000")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    let (_, _, q) = get_auth(
        &format!("{base}/api/v1/systems/{bank_system}/quotas"),
        &admin,
    )
    .await;
    assert_eq!(q["requests_per_second"]["limit"], 2, "{q}");

    // --- an admin changes them in the portal -----------------------------------------
    let mut a = support::Browser::new(&base);
    a.sign_in("admin", &support::demo_password("admin")).await;
    let page = a.open(&format!("/systems/{bank_system}")).await;
    assert!(page.has("id=\"quota-form\""), "{}", page.html);
    // The form shows the system's own value and leaves defaults empty.
    assert!(
        page.has("name=\"requests_per_second\" value=\"2\""),
        "{}",
        page.html
    );
    assert!(page.has("name=\"streams\" value=\"\""), "{}", page.html);
    // Out of bounds, or not a number: refused by field, the typed values kept, nothing set.
    for (field, bad) in [
        ("streams", "100000"),
        ("sql_queries", "many"),
        ("requests_per_second", "0"),
        ("streams", "-1"),
    ] {
        let mut fields = vec![(field, bad)];
        if field != "requests_per_second" {
            fields.push(("requests_per_second", "5"));
        }
        let page = a
            .submit(&format!("/systems/{bank_system}/quotas"), &fields)
            .await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.has("id=\"quota-error\""), "{}", page.html);
        assert!(
            page.has(&format!("href=\"#quota-{field}-input\"")),
            "{}",
            page.html
        );
        assert!(page.has(&format!("value=\"{bad}\"")), "{}", page.html);
        let (_, _, q) = get_auth(
            &format!("{base}/api/v1/systems/{bank_system}/quotas"),
            &admin,
        )
        .await;
        assert_eq!(q["requests_per_second"]["limit"], 2, "{q}");
    }
    // Set: requests per second back to the default, 3 streams.
    let page = a
        .submit(
            &format!("/systems/{bank_system}/quotas"),
            &[
                ("requests_per_second", ""),
                ("streams", " 3 "),
                ("sql_queries", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("id=\"notice\""), "{}", page.html);
    assert!(
        page.has("<span id=\"quota-streams-limit\">3</span>"),
        "{}",
        page.html
    );
    assert!(
        page.has("id=\"quota-requests_per_second-default\""),
        "{}",
        page.html
    );
    let (_, _, q) = get_auth(
        &format!("{base}/api/v1/systems/{bank_system}/quotas"),
        &admin,
    )
    .await;
    assert_eq!(q["streams"]["limit"], 3, "{q}");
    assert_eq!(q["streams"]["default"], false, "{q}");
    assert_eq!(q["requests_per_second"]["default"], true, "{q}");
}

//! End to end: the governance workflow on the real `dagr serve`, over HTTP — a consumer asks,
//! the owner approves with narrowing, the consumer's reads follow at once, revocation ends
//! them — with the metadata in SQLite and, when the test script provides one, PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::{Server, credentials, get_auth, post_auth};
use serde_json::{Value, json};

/// A consumer system of the demo and a dataset it has no agreement for, with that dataset's
/// owner's token.
struct Setup {
    consumer: String,
    system: i64,
    dataset: String,
    key_column: String,
    owner: String,
}

async fn setup(base: &str, creds: &Value) -> Setup {
    let admin = creds["admin"]["token"].as_str().unwrap();
    let (_, _, catalog) = get_auth(&format!("{base}/api/v1/datasets"), admin).await;
    for sys in creds["systems"].as_array().unwrap() {
        if sys["role"] != "consumer" {
            continue;
        }
        let token = sys["token"].as_str().unwrap();
        let (_, _, agreements) = get_auth(&format!("{base}/api/v1/agreements"), token).await;
        let (_, _, me) = get_auth(&format!("{base}/api/v1/me"), token).await;
        let system: i64 = me["system"].as_str().unwrap().parse().unwrap();
        let covered = |name: &str| {
            agreements.as_array().unwrap().iter().any(|a| {
                a["dataset"] == name && a["systems"].as_array().unwrap().contains(&json!(system))
            })
        };
        let Some(d) = catalog
            .as_array()
            .unwrap()
            .iter()
            .find(|d| !covered(d["name"].as_str().unwrap()))
        else {
            continue;
        };
        return Setup {
            consumer: token.to_owned(),
            system,
            dataset: d["name"].as_str().unwrap().to_owned(),
            key_column: d["primary_key"][0].as_str().unwrap().to_owned(),
            owner: common::system_token(creds, d["owner"].as_str().unwrap(), "provider"),
        };
    }
    panic!("every demo consumer system has every dataset")
}

/// Poll `url` as `token` until it answers `want` (at most `within`); returns the body and
/// how long it took.
async fn until(url: &str, token: &str, want: u16, within: Duration) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, _, body) = get_auth(url, token).await;
        if status == want {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "{url} still answers {status} after {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn live_masks(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, 1000, extra);
    let base = server.base.clone();
    let creds = credentials(&data);
    let s = setup(&base, &creds).await;

    // A key the consumer will ask for, read by the owner (who reads its own data whole).
    let (status, _, head) = get_auth(
        &format!("{base}/api/v1/datasets/{}/records?limit=1", s.dataset),
        &s.owner,
    )
    .await;
    assert_eq!(status, 200, "{head}");
    let record = head["records"][0].as_object().unwrap().clone();
    let key = record[&s.key_column]
        .to_string()
        .trim_matches('"')
        .to_owned();
    let other = record.keys().find(|k| **k != s.key_column).unwrap().clone();
    let url = format!("{base}/api/v1/datasets/{}/records/{key}", s.dataset);
    let (status, ct, problem) = get_auth(&url, &s.consumer).await;
    assert_eq!((status, ct.as_str()), (403, "application/problem+json"));
    assert!(problem["detail"].as_str().unwrap().contains(&s.dataset));

    // Ask for two attributes; the owner grants only the key.
    let (status, _, req) = post_auth(
        &format!("{base}/api/v1/requests"),
        &s.consumer,
        &json!({
            "dataset": s.dataset, "attributes": [s.key_column, other],
            "purpose": "end-to-end test", "legal_basis": "test",
            "systems": [s.system], "valid_to": "2030-01-01",
        }),
    )
    .await;
    assert_eq!(status, 201, "{req}");
    let (status, _, agreement) = post_auth(
        &format!("{base}/api/v1/requests/{}/approve", req["id"]),
        &s.owner,
        &json!({"attributes": [s.key_column]}),
    )
    .await;
    assert_eq!(status, 200, "{agreement}");
    // In force within a second (on this server: when the approval returned).
    let (rec, took) = until(&url, &s.consumer, 200, Duration::from_secs(1)).await;
    let fields: Vec<&String> = rec["record"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [&s.key_column],
        "only the approved attribute: {rec}"
    );
    eprintln!("approval in force after {took:?}");

    // Revocation ends it within a second.
    let (status, _, revoked) = post_auth(
        &format!("{base}/api/v1/agreements/{}/revoke", agreement["id"]),
        &s.owner,
        &json!({"reason": "end of test"}),
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    let (_, took) = until(&url, &s.consumer, 403, Duration::from_secs(1)).await;
    eprintln!("revocation in force after {took:?}");
    let (_, _, list) = get_auth(
        &format!("{base}/api/v1/agreements?status=revoked"),
        &s.consumer,
    )
    .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == agreement["id"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masks_follow_approval_and_revocation_on_a_running_server_sqlite() {
    live_masks(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masks_follow_approval_and_revocation_on_a_running_server_postgres() {
    let Some(url) = std::env::var("DAGR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("DAGR_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "DAGR_TEST_REQUIRE_POSTGRES=1 but DAGR_TEST_POSTGRES_URL is not set"
        );
        eprintln!("DAGR_TEST_POSTGRES_URL not set: the PostgreSQL variant is not run");
        return;
    };
    live_masks(&["--database-url", &url]).await;
}

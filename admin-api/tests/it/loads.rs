//! Snapshot uploads over HTTP: `POST /api/v1/datasets/{name}/loads`, the load resources and
//! the load history, through the real router on every metadata backend.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use dagr_admin_api::loads::INTERRUPTED;
use dagr_admin_api::model::{LoadChannel, LoadMode, LoadStatus};
use dagr_admin_api::store::NewLoad;
use dagr_admin_api::{Loads, LoadsConfig, router, router_with};
use dagr_engine::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use dagr_engine::arrow::datatypes::{DataType, Field, Schema};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use tower::ServiceExt;

use crate::common::{World, code};
use crate::each_backend;

const PARQUET: &str = "application/vnd.apache.parquet";

/// A Parquet file of `batch`.
fn parquet_of(batch: &RecordBatch) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    buf
}

/// `n` people whose given names start with `prefix`; `given_name` typed `given_type`
/// (Utf8 is right; anything else is refused).
fn people(n: usize, prefix: &str, given_type: DataType) -> RecordBatch {
    let given: ArrayRef = match given_type {
        DataType::Utf8 => Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("{prefix}{i}")),
        )),
        DataType::Int64 => Arc::new(Int64Array::from_iter_values(0..n as i64)),
        other => panic!("no test column of type {other}"),
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("personal_code", DataType::Utf8, false),
        Field::new("given_name", given_type, true),
        Field::new("surname", DataType::Utf8, true),
        Field::new("municipality", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values((0..n).map(code))),
            given,
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("surname{i}")),
            )),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "Ogre"))),
        ],
    )
    .unwrap()
}

/// POST a body to `path` on `app`: (status, JSON body or null, headers).
async fn post_body(
    app: &axum::Router,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Body,
) -> (StatusCode, Value, HeaderMap) {
    let mut req = Request::builder().method(Method::POST).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

/// Upload `bytes` as Parquet to `people` on the world's router.
async fn upload(w: &World, token: &str, query: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let (s, v, h) = post_body(
        &w.app,
        &format!("/api/v1/datasets/people/loads{query}"),
        Some(token),
        Some(PARQUET),
        Body::from(bytes),
    )
    .await;
    if s.is_success() || s == StatusCode::UNPROCESSABLE_ENTITY && v["id"].is_i64() {
        assert_eq!(
            h["location"].to_str().unwrap(),
            format!("/api/v1/loads/{}", v["id"]),
            "{v}"
        );
    }
    (s, v)
}

/// The version and rows of `people` as the catalog says.
async fn people_version(w: &World) -> (i64, i64) {
    let (s, v) = w.get("/api/v1/datasets/people", &w.owner).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (v["version"].as_i64().unwrap(), v["rows"].as_i64().unwrap())
}

/// The loads of `people`, newest first, as its owner sees them.
async fn history(w: &World) -> Vec<Value> {
    let (s, v) = w.get("/api/v1/datasets/people/loads", &w.owner).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

/// Names of upload files left in `dir` (the node id file aside).
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "node-id")
        .collect()
}

#[tokio::test]
async fn an_upload_commits_a_new_snapshot() {
    each_backend!(|w| {
        assert_eq!(people_version(&w).await, (1, crate::common::ROWS as i64));
        let file = parquet_of(&people(5, "new", DataType::Utf8));
        let (s, v) = upload(&w, &w.owner, "?wait=true", file.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "committed", "{v}");
        assert_eq!(v["dataset"], "people");
        assert_eq!(v["mode"], "snapshot");
        assert_eq!(v["channel"], "http");
        assert_eq!(v["version"], 2);
        assert_eq!(v["rows"], 5);
        assert_eq!(v["bytes"], file.len() as i64);
        assert_eq!(v["reasons"], serde_json::json!([]));
        assert!(
            v["created_by"].as_str().unwrap().starts_with("owner OWN"),
            "{v}"
        );
        assert!(v["finished_at"].is_string(), "{v}");
        // The resource says the same, and the data changed.
        let (s, got) = w.get(&format!("/api/v1/loads/{}", v["id"]), &w.owner).await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(got, v);
        assert_eq!(people_version(&w).await, (2, 5));
        let (s, rec) = w.record(&w.owner, 3).await;
        assert_eq!(s, StatusCode::OK, "{rec}");
        assert_eq!(rec["given_name"], "new3");
        let (s, _) = w.record(&w.owner, 7).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "not in the new snapshot");

        // Without `wait`: 202 as soon as the body is in, then committed (an admin may load).
        let file = parquet_of(&people(7, "newer", DataType::Utf8));
        let (s, v, _) = post_body(
            &w.app,
            "/api/v1/datasets/people/loads",
            Some(&w.admin),
            Some("application/octet-stream; charset=binary"),
            Body::from(file),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "validating", "{v}");
        w.loads.settled().await;
        let latest = &history(&w).await[0];
        assert_eq!(latest["status"], "committed", "{latest}");
        assert_eq!(latest["version"], 3);
        assert!(latest["created_by"].as_str().unwrap().starts_with("admin"));
        assert_eq!(people_version(&w).await, (3, 7));
        assert!(leftovers(&w.upload_dir).is_empty());
    });
}

#[tokio::test]
async fn a_202_names_the_load_while_it_validates() {
    each_backend!(|w| {
        let file = parquet_of(&people(4, "x", DataType::Utf8));
        let (s, v) = upload(&w, &w.owner, "", file).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "validating", "{v}");
        assert!(v["version"].is_null() && v["finished_at"].is_null(), "{v}");
        w.loads.settled().await;
        let (s, got) = w.get(&format!("/api/v1/loads/{}", v["id"]), &w.owner).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got["status"], "committed", "{got}");
        assert_eq!(got["rows"], 4);
    });
}

#[tokio::test]
async fn a_refused_upload_changes_nothing() {
    each_backend!(|w| {
        let file = parquet_of(&people(5, "bad", DataType::Int64));
        let (s, v) = upload(&w, &w.owner, "?wait=true", file.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["status"], "refused", "{v}");
        assert!(v["version"].is_null() && v["rows"].is_null(), "{v}");
        let reasons = v["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 1, "{v}");
        assert!(
            reasons[0].as_str().unwrap().contains("given_name"),
            "the reason names the column: {v}"
        );
        // The previous snapshot stays current.
        assert_eq!(people_version(&w).await, (1, crate::common::ROWS as i64));
        let (s, rec) = w.record(&w.owner, 3).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(rec["given_name"], "given_name3");
        // Without `wait` it ends the same way.
        let (s, v) = upload(&w, &w.owner, "", file).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        w.loads.settled().await;
        let (_, got) = w.get(&format!("/api/v1/loads/{}", v["id"]), &w.owner).await;
        assert_eq!(got["status"], "refused", "{got}");
        assert_eq!(people_version(&w).await.0, 1);
        assert!(leftovers(&w.upload_dir).is_empty());
    });
}

#[tokio::test]
async fn bodies_that_are_not_parquet_are_refused() {
    each_backend!(|w| {
        let good = parquet_of(&people(50, "n", DataType::Utf8));
        for (what, body) in [
            ("text", b"personal_code,given_name\nP1,Anna\n".to_vec()),
            ("empty", vec![]),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("no footer", good[..good.len() - 8].to_vec()),
        ] {
            let (s, v) = upload(&w, &w.owner, "?wait=true", body).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {v}");
            assert_eq!(v["status"], "refused", "{what}: {v}");
            let reason = v["reasons"][0].as_str().unwrap();
            assert!(reason.contains("Parquet"), "{what}: {reason}");
        }
        // Not declared as Parquet: 415, and no load is recorded.
        for ct in [Some("application/json"), Some("text/csv"), None] {
            let (s, v, h) = post_body(
                &w.app,
                "/api/v1/datasets/people/loads",
                Some(&w.owner),
                ct,
                Body::from(good.clone()),
            )
            .await;
            assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}: {v}");
            assert_eq!(h["content-type"], "application/problem+json");
            assert_eq!(
                v["type"], "https://dagr.invalid/problems/unsupported-media-type",
                "{v}"
            );
        }
        assert_eq!(history(&w).await.len(), 4);
        assert_eq!(people_version(&w).await.0, 1);
        assert!(leftovers(&w.upload_dir).is_empty());
    });
}

#[tokio::test]
async fn only_owners_of_the_dataset_and_admins_load() {
    each_backend!(|w| {
        let file = parquet_of(&people(3, "n", DataType::Utf8));
        for (who, token) in [("consumer", &w.bank), ("another owner", &w.foreign_owner)] {
            let (s, v) = upload(&w, token, "?wait=true", file.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{who}: {v}");
        }
        let (s, _, _) = post_body(
            &w.app,
            "/api/v1/datasets/people/loads",
            None,
            Some(PARQUET),
            Body::from(file.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, v, _) = post_body(
            &w.app,
            "/api/v1/datasets/nope/loads",
            Some(&w.owner),
            Some(PARQUET),
            Body::from(file.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        // The foreign owner loads its own dataset, not ours.
        let (s, v, _) = post_body(
            &w.app,
            "/api/v1/datasets/parcels/loads?wait=true",
            Some(&w.owner),
            Some(PARQUET),
            Body::from(file),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(history(&w).await.is_empty(), "no load was recorded");
        assert_eq!(people_version(&w).await.0, 1);
    });
}

#[tokio::test]
async fn other_organisations_do_not_see_loads() {
    each_backend!(|w| {
        let file = parquet_of(&people(3, "n", DataType::Utf8));
        let (s, v) = upload(&w, &w.owner, "?wait=true", file).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let path = format!("/api/v1/loads/{}", v["id"]);
        for token in [&w.foreign_owner, &w.bank] {
            let (s, got) = w.get(&path, token).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{got}");
        }
        assert_eq!(w.get(&path, &w.admin).await.0, StatusCode::OK);
        assert_eq!(
            w.get("/api/v1/loads/987654", &w.owner).await.0,
            StatusCode::NOT_FOUND
        );
        for token in [&w.foreign_owner, &w.bank] {
            let (s, got) = w.get("/api/v1/datasets/people/loads", token).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{got}");
        }
        assert_eq!(
            w.get("/api/v1/datasets/nope/loads", &w.owner).await.0,
            StatusCode::NOT_FOUND
        );
    });
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    each_backend!(|w| {
        let dir = tempfile::tempdir().unwrap();
        let config = LoadsConfig {
            max_upload_bytes: 2000,
            ..LoadsConfig::under(dir.path())
        };
        let upload_dir = config.upload_dir.clone();
        let loads = Loads::open(&w.state, config).await.unwrap();
        let app = router_with(w.state.clone(), Arc::clone(&loads));
        let path = "/api/v1/datasets/people/loads?wait=true";
        // Announced as too large: refused before anything is read or recorded.
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {}", w.owner))
            .header("content-type", PARQUET)
            .header("content-length", "5000")
            .body(Body::from(vec![0u8; 5000]))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(history(&w).await.is_empty());
        // Streamed past the limit: refused as it crosses it, the file removed.
        let chunks = (0..5).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 600])));
        let (s, v, _) = post_body(
            &app,
            path,
            Some(&w.owner),
            Some(PARQUET),
            Body::from_stream(futures::stream::iter(chunks)),
        )
        .await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
        assert_eq!(v["type"], "https://dagr.invalid/problems/upload-too-large");
        assert!(v["detail"].as_str().unwrap().contains("2000 bytes"), "{v}");
        let loads_seen = history(&w).await;
        assert_eq!(loads_seen.len(), 1);
        assert_eq!(loads_seen[0]["status"], "refused");
        assert_eq!(loads_seen[0]["bytes"], 1800);
        assert!(
            loads_seen[0]["reasons"][0]
                .as_str()
                .unwrap()
                .contains("larger than the limit of 2000 bytes"),
            "{}",
            loads_seen[0]
        );
        assert!(leftovers(&upload_dir).is_empty());
        // Within the limit is fine.
        let small = parquet_of(&people(2, "s", DataType::Utf8));
        assert!(small.len() <= 2000, "{}", small.len());
        let (s, v, _) = post_body(&app, path, Some(&w.owner), Some(PARQUET), small.into()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(people_version(&w).await, (2, 2));
    });
}

#[tokio::test]
async fn a_body_that_breaks_off_is_refused() {
    each_backend!(|w| {
        let file = parquet_of(&people(50, "n", DataType::Utf8));
        // The body stream fails after 100 bytes.
        let parts = vec![
            Ok(Bytes::copy_from_slice(&file[..100])),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ];
        let (s, v, _) = post_body(
            &w.app,
            "/api/v1/datasets/people/loads?wait=true",
            Some(&w.owner),
            Some(PARQUET),
            Body::from_stream(futures::stream::iter(parts)),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["type"], "https://dagr.invalid/problems/upload-broke-off");
        let latest = &history(&w).await[0];
        assert_eq!(latest["status"], "refused", "{latest}");
        assert_eq!(
            latest["reasons"][0],
            "the upload broke off after 100 bytes; nothing was loaded"
        );
        assert_eq!(latest["bytes"], 100);
        assert!(leftovers(&w.upload_dir).is_empty());
        assert_eq!(people_version(&w).await.0, 1);

        // The request is dropped while its body arrives (the client went away): the load
        // is refused the same way.
        let (consumed_tx, consumed_rx) = tokio::sync::oneshot::channel::<()>();
        let first = Bytes::copy_from_slice(&file[..64]);
        let body = futures::stream::unfold((0, Some(consumed_tx)), move |(step, mut consumed)| {
            let first = first.clone();
            async move {
                if step == 0 {
                    return Some((Ok::<_, std::io::Error>(first), (1, consumed)));
                }
                // The first chunk was taken: say so, then send nothing more.
                if let Some(tx) = consumed.take() {
                    let _ = tx.send(());
                }
                futures::future::pending::<()>().await;
                None
            }
        })
        .boxed();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/datasets/people/loads")
            .header("authorization", format!("Bearer {}", w.owner))
            .header("content-type", PARQUET)
            .body(Body::from_stream(body))
            .unwrap();
        let call = w.app.clone().oneshot(req);
        tokio::select! {
            r = call => panic!("answered before the body ended: {:?}", r.map(|r| r.status())),
            _ = consumed_rx => {}
        }
        // `call` is dropped here.
        w.loads.settled().await;
        let latest = &history(&w).await[0];
        assert_eq!(latest["status"], "refused", "{latest}");
        assert_eq!(
            latest["reasons"][0],
            "the upload broke off after 64 bytes; nothing was loaded"
        );
        assert!(leftovers(&w.upload_dir).is_empty());
        assert_eq!(people_version(&w).await.0, 1);
    });
}

#[tokio::test]
async fn the_load_history_is_paginated_newest_first() {
    each_backend!(|w| {
        let mut ids = Vec::new();
        for i in 0..5 {
            let ty = if i % 2 == 0 {
                DataType::Utf8
            } else {
                DataType::Int64
            };
            let (s, v) = upload(
                &w,
                &w.owner,
                "?wait=true",
                parquet_of(&people(3 + i, "h", ty)),
            )
            .await;
            assert!(
                s.is_success() || s == StatusCode::UNPROCESSABLE_ENTITY,
                "{v}"
            );
            ids.push(v["id"].as_i64().unwrap());
        }
        ids.reverse();
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut next = Some("/api/v1/datasets/people/loads?limit=2".to_owned());
        while let Some(path) = next.take() {
            let (s, v, h) = w.call(Method::GET, &path, Some(&w.owner), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            pages += 1;
            seen.extend(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["id"].as_i64().unwrap()),
            );
            if let Some(link) = h.get("link") {
                let link = link.to_str().unwrap();
                assert!(link.ends_with("rel=\"next\""), "{link}");
                next = Some(link[1..link.find('>').unwrap()].to_owned());
            }
        }
        assert_eq!(seen, ids);
        assert_eq!(pages, 3);
        let all = history(&w).await;
        let statuses: Vec<&str> = all.iter().map(|l| l["status"].as_str().unwrap()).collect();
        assert_eq!(
            statuses,
            ["committed", "refused", "committed", "refused", "committed"]
        );
        assert_eq!(all[0]["version"], 4);
        assert_eq!(
            w.get("/api/v1/datasets/people/loads?limit=0", &w.owner)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    });
}

#[tokio::test]
async fn a_restart_refuses_interrupted_loads() {
    each_backend!(|w| {
        let store = w.state.gov.store();
        let node = w.loads.node().unwrap().to_owned();
        let new = |node: &str| NewLoad {
            dataset: "people".into(),
            channel: LoadChannel::Http,
            mode: LoadMode::Snapshot,
            status: LoadStatus::Receiving,
            node: node.to_owned(),
            created_by: "owner OWN".into(),
        };
        // What a stop left behind: a load receiving, one validating, their files; and a
        // load of another server (a replica) that is still receiving.
        let receiving = store.create_load(&new(&node)).await.unwrap();
        let validating = store.create_load(&new(&node)).await.unwrap();
        assert!(store.load_received(validating.id, 1234).await.unwrap());
        let elsewhere = store.create_load(&new("another-node")).await.unwrap();
        for id in [receiving.id, validating.id] {
            std::fs::write(w.upload_dir.join(format!("load-{id}-abc.parquet")), b"PAR1").unwrap();
        }
        std::fs::write(w.upload_dir.join("keep.txt"), b"not ours").unwrap();

        // The server starts again on the same upload directory.
        let loads = Loads::open(&w.state, LoadsConfig::under(w._dir.path()))
            .await
            .unwrap();
        assert_eq!(loads.node(), Some(node.as_str()), "the node id is kept");
        for (id, bytes) in [(receiving.id, 0), (validating.id, 1234)] {
            let (s, v) = w.get(&format!("/api/v1/loads/{id}"), &w.owner).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(v["status"], "refused", "{v}");
            assert_eq!(v["reasons"], serde_json::json!([INTERRUPTED]));
            assert_eq!(v["bytes"], bytes);
            assert!(v["finished_at"].is_string(), "{v}");
        }
        let other = store.load(elsewhere.id).await.unwrap().unwrap();
        assert_eq!(other.status, LoadStatus::Receiving, "another server's load");
        assert_eq!(leftovers(&w.upload_dir), ["keep.txt"]);
        assert_eq!(people_version(&w).await.0, 1);
        // A load that has ended cannot be ended again.
        assert!(
            !store
                .finish_load(
                    receiving.id,
                    0,
                    &dagr_admin_api::model::LoadOutcome::Committed {
                        version: 9,
                        rows: 9
                    }
                )
                .await
                .unwrap()
        );
    });
}

#[tokio::test]
async fn uploads_are_refused_when_not_enabled() {
    let w = World::new(&crate::common::Backend::Sqlite).await;
    let app = router(w.state.clone());
    let (s, v, _) = post_body(
        &app,
        "/api/v1/datasets/people/loads",
        Some(&w.owner),
        Some(PARQUET),
        Body::from(parquet_of(&people(2, "d", DataType::Utf8))),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["type"], "https://dagr.invalid/problems/uploads-disabled");
    // The routes are in the OpenAPI document.
    let (_, doc, _) = w
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/api/v1/datasets/{name}/loads", "/api/v1/loads/{id}"] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    let upload = &paths["/api/v1/datasets/{name}/loads"]["post"];
    assert!(
        upload["requestBody"]["content"][PARQUET].is_object(),
        "{upload}"
    );
    assert!(doc["components"]["schemas"]["Load"].is_object());
}

/// A response read off a raw HTTP/1.1 connection: (status, JSON body or null).
fn parse_response(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The head of a raw upload request of `len` bytes to `people`.
fn raw_head(token: &str, len: usize, extra: &str) -> String {
    format!(
        "POST /api/v1/datasets/people/loads?wait=true HTTP/1.1\r\nhost: dagr\r\n\
         authorization: Bearer {token}\r\ncontent-type: {PARQUET}\r\n\
         content-length: {len}\r\nconnection: close\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn uploads_through_a_real_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    each_backend!(|w| {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = dagr_engine::task::SpawnedTask::spawn(dagr_admin_api::serve::serve(
            listener,
            w.app.clone(),
            async move {
                let _ = stopped.await;
            },
        ));

        // A snapshot far over the 1 MiB limit of JSON bodies.
        let rows = 100_000;
        let file = parquet_of(&people(rows, "big", DataType::Utf8));
        assert!(
            file.len() > dagr_admin_api::MAX_BODY_BYTES,
            "{}",
            file.len()
        );
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(raw_head(&w.owner, file.len(), "").as_bytes())
            .await
            .unwrap();
        conn.write_all(&file).await.unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.unwrap();
        let (status, v) = parse_response(&raw);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "committed", "{v}");
        assert_eq!(v["rows"], rows as i64);
        assert_eq!(v["bytes"], file.len() as i64);
        assert_eq!(people_version(&w).await, (2, rows as i64));

        // The client goes away in the middle of the body. It waits for `100 Continue` first,
        // which the server sends when the upload starts reading the body.
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(raw_head(&w.owner, file.len(), "expect: 100-continue\r\n").as_bytes())
            .await
            .unwrap();
        let mut interim = [0u8; 25];
        conn.read_exact(&mut interim).await.unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        conn.write_all(&file[..100]).await.unwrap();
        conn.flush().await.unwrap();
        drop(conn);
        w.loads.settled().await;
        let latest = &history(&w).await[0];
        assert_eq!(latest["status"], "refused", "{latest}");
        let reason = latest["reasons"][0].as_str().unwrap();
        assert!(
            reason.starts_with("the upload broke off after ")
                && reason.ends_with(" bytes; nothing was loaded"),
            "{reason}"
        );
        assert!(latest["bytes"].as_i64().unwrap() <= 100, "{latest}");
        assert!(leftovers(&w.upload_dir).is_empty());
        assert_eq!(people_version(&w).await.0, 2);

        let _ = stop.send(());
        server.join().await.unwrap().unwrap();
    });
}

//! API conventions: problem+json errors naming the field, bounded bodies, pagination,
//! the OpenAPI document.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;

#[tokio::test]
async fn bodies_are_validated_and_errors_are_problem_documents() {
    each_backend!(|w| {
        // Malformed JSON: 400.
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/requests")
            .header("authorization", format!("Bearer {}", w.bank))
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{not json"))
            .unwrap();
        let resp = tower::ServiceExt::oneshot(w.app.clone(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        // A missing field and an unknown field: 422 naming it.
        let mut body = w.request_body(&["given_name"], None);
        body.as_object_mut().unwrap().remove("purpose");
        let (s, v) = w.post("/api/v1/requests", &w.bank, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(v["detail"].as_str().unwrap().contains("purpose"), "{v}");
        let mut body = w.request_body(&["given_name"], None);
        body["purpos"] = json!("typo");
        let (s, v) = w.post("/api/v1/requests", &w.bank, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(v["detail"].as_str().unwrap().contains("purpos"), "{v}");
        // Oversized body: refused.
        let mut body = w.request_body(&["given_name"], None);
        body["purpose"] = json!("x".repeat(2 << 20));
        let (s, _) = w.post("/api/v1/requests", &w.bank, body).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        // Bad ids and parameters.
        assert_eq!(
            w.get("/api/v1/requests/abc", &w.bank).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            w.get("/api/v1/requests?limit=0", &w.bank).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            w.get("/api/v1/requests?status=maybe", &w.bank).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            w.get("/api/v1/requests/999", &w.bank).await.0,
            StatusCode::NOT_FOUND
        );
    });
}

#[tokio::test]
async fn lists_are_paginated_with_link_headers() {
    each_backend!(|w| {
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(w.bank_requests(&["given_name"], None).await);
        }
        ids.reverse(); // newest first
        let mut seen = Vec::new();
        let mut next = Some("/api/v1/requests?limit=2&status=pending".to_owned());
        while let Some(path) = next.take() {
            let (s, v, h) = w.call(Method::GET, &path, Some(&w.bank), None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            seen.extend(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_i64().unwrap()),
            );
            if let Some(link) = h.get("link") {
                let link = link.to_str().unwrap();
                assert!(link.ends_with("rel=\"next\""), "{link}");
                assert!(link.contains("status=pending"), "{link}");
                next = Some(link[1..link.find('>').unwrap()].to_owned());
            }
        }
        assert_eq!(seen, ids);
    });
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let backend = crate::common::Backend::Sqlite;
    let w = crate::common::World::new(&backend).await;
    let (s, doc, _) = w
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/agreements",
        "/api/v1/requests/{id}/approve",
        "/api/v1/datasets/{name}/records/{key}",
        "/api/v1/datasets/{name}/schema-changes",
        "/api/v1/systems/{id}/tokens",
        "/api/v1/tokens/{id}/revoke",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["Agreement"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Health needs no token; everything else does.
    let (s, _, _) = w.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = w.call(Method::GET, "/api/v1/datasets", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

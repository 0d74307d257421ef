//! Role boundaries: what each kind of caller may see and do, and tokens that stop working.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;

#[tokio::test]
async fn callers_see_only_their_own_requests_and_agreements() {
    each_backend!(|w| {
        let bank_req = w.bank_requests(&["given_name"], None).await;
        let mut body = w.request_body(&["surname"], None);
        body["systems"] = json!([w.insurer_system]);
        let (s, v) = w.post("/api/v1/requests", &w.insurer, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let ins_req = v["id"].as_i64().unwrap();
        for id in [bank_req, ins_req] {
            let (s, _) = w
                .post(
                    &format!("/api/v1/requests/{id}/approve"),
                    &w.owner,
                    json!({}),
                )
                .await;
            assert_eq!(s, StatusCode::OK);
        }
        let ids = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["consumer_organisation"].as_str().unwrap().to_owned())
                .collect()
        };
        // Consumers: their own organisation's only.
        let (_, list) = w.get("/api/v1/agreements", &w.bank).await;
        assert_eq!(ids(&list), ["BANK"]);
        let (_, list) = w.get("/api/v1/requests", &w.insurer).await;
        assert_eq!(ids(&list), ["INS"]);
        // Another organisation's agreement and request are invisible (404, not 403).
        let (_, ins_list) = w.get("/api/v1/agreements", &w.insurer).await;
        let ins_agreement = ins_list[0]["id"].as_i64().unwrap();
        assert_eq!(
            w.get(&format!("/api/v1/agreements/{ins_agreement}"), &w.bank)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            w.get(&format!("/api/v1/requests/{ins_req}"), &w.bank)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            w.get(
                &format!("/api/v1/agreements/{ins_agreement}/history"),
                &w.bank
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        // The owner sees both; an owner of another organisation sees none.
        let (_, list) = w.get("/api/v1/agreements", &w.owner).await;
        assert_eq!(list.as_array().unwrap().len(), 2);
        let (_, list) = w.get("/api/v1/agreements", &w.foreign_owner).await;
        assert_eq!(list, json!([]));
        // The admin sees all, but reads no register data without an agreement.
        let (_, list) = w.get("/api/v1/agreements", &w.admin).await;
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert_eq!(w.record(&w.admin, 0).await.0, StatusCode::FORBIDDEN);
        // The foreign owner cannot revoke OWN's agreements, nor can a consumer.
        let path = format!("/api/v1/agreements/{ins_agreement}/revoke");
        assert_eq!(
            w.post(&path, &w.foreign_owner, json!({"reason": "x"}))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            w.post(&path, &w.insurer, json!({"reason": "x"})).await.0,
            StatusCode::FORBIDDEN
        );
        // An admin may revoke (operating DAGR), with a reason.
        assert_eq!(
            w.post(&path, &w.admin, json!({"reason": "court order"}))
                .await
                .0,
            StatusCode::OK
        );
    });
}

#[tokio::test]
async fn owners_act_only_on_their_own_organisation() {
    each_backend!(|w| {
        // Foreign owner: no systems or tokens for OWN, no schema changes, no dataset edits.
        let (s, _) = w
            .post(
                "/api/v1/systems",
                &w.foreign_owner,
                json!({"organisation": "OWN", "name": "x", "kind": "consumer"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.foreign_owner,
                json!({"definition": crate::common::people_def()}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = w
            .call(
                Method::PATCH,
                "/api/v1/datasets/people",
                Some(&w.foreign_owner),
                Some(json!({"sla_days": 3})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // Registering a dataset for another organisation is refused.
        let mut def = crate::common::people_def();
        def.name = "stolen".into();
        let (s, _) = w
            .post(
                "/api/v1/datasets",
                &w.foreign_owner,
                json!({"definition": def}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(
            w.get("/api/v1/datasets/stolen", &w.admin).await.0,
            StatusCode::NOT_FOUND
        );
        // Its own: a new system and a dataset (data flow) with a provider system and SLA.
        let (s, sys) = w
            .post(
                "/api/v1/systems",
                &w.foreign_owner,
                json!({"name": "feeder", "kind": "provider"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sys}");
        assert_eq!(sys["organisation"], "FOREIGN");
        let mut def = crate::common::people_def();
        def.name = "residents".into();
        def.owner = "FOREIGN".into();
        let (s, v) = w
            .post(
                "/api/v1/datasets",
                &w.foreign_owner,
                json!({"definition": def, "sla_days": 5, "provider_systems": [sys["id"]]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["sla_days"], 5);
        let (s, v) = w.get("/api/v1/datasets/residents", &w.bank).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["owner"], "FOREIGN");
        // Registering it twice is a conflict.
        assert_eq!(
            w.post(
                "/api/v1/datasets",
                &w.foreign_owner,
                json!({"definition": def})
            )
            .await
            .0,
            StatusCode::CONFLICT
        );
        // A request's deadline follows the dataset's SLA.
        let mut body = w.request_body(&["given_name"], None);
        body["dataset"] = json!("residents");
        let (s, r) = w.post("/api/v1/requests", &w.bank, body).await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        let due = dagr_admin_api::model::Time::parse(r["due_at"].as_str().unwrap()).unwrap();
        let created =
            dagr_admin_api::model::Time::parse(r["created_at"].as_str().unwrap()).unwrap();
        assert_eq!(due.0 - created.0, 5 * 86_400_000);
    });
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_at_once() {
    each_backend!(|w| {
        // No token, a malformed one, an unknown one: 401 with a problem body.
        let (s, v, h) = w.call(Method::GET, "/api/v1/agreements", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert!(
            h["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(v["status"], 401);
        for bad in ["nonsense", &format!("dagr_{}", "0".repeat(64))] {
            assert_eq!(w.get("/api/v1/me", bad).await.0, StatusCode::UNAUTHORIZED);
        }
        // The owner issues a second token for its system and revokes the first one.
        let (_, me) = w.get("/api/v1/me", &w.owner).await;
        assert_eq!(me["role"], "owner");
        let system = me["system"].as_str().unwrap().to_owned();
        let first = me["token"].as_str().unwrap().to_owned();
        let (s, issued) = w
            .post(
                &format!("/api/v1/systems/{system}/tokens"),
                &w.owner,
                json!({"label": "rotation"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{issued}");
        let second = issued["secret"].as_str().unwrap().to_owned();
        assert!(second.starts_with("dagr_") && second.len() == 69);
        // The list shows metadata only, never a secret.
        let (_, list) = w
            .get(&format!("/api/v1/systems/{system}/tokens"), &second)
            .await;
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert!(!list.to_string().contains(&second[5..]));
        // A consumer cannot revoke another organisation's token.
        assert_eq!(
            w.post(
                &format!("/api/v1/tokens/{first}/revoke"),
                &w.bank,
                json!({})
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        let (s, v) = w
            .post(
                &format!("/api/v1/tokens/{first}/revoke"),
                &second,
                json!({"reason": "rotated"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["revoked_at"].is_string());
        assert_eq!(
            w.get("/api/v1/me", &w.owner).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(w.get("/api/v1/me", &second).await.0, StatusCode::OK);
        assert_eq!(
            w.post(
                &format!("/api/v1/tokens/{first}/revoke"),
                &second,
                json!({})
            )
            .await
            .0,
            StatusCode::CONFLICT
        );

        // A token past its expiry is refused without any reload.
        let expires = dagr_admin_api::model::Time(dagr_admin_api::model::Time::now().0 + 1500);
        let (s, issued) = w
            .post(
                &format!("/api/v1/systems/{system}/tokens"),
                &second,
                json!({"expires_at": expires.to_rfc3339()}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{issued}");
        let short = issued["secret"].as_str().unwrap().to_owned();
        assert_eq!(w.get("/api/v1/me", &short).await.0, StatusCode::OK);
        let started = std::time::Instant::now();
        loop {
            let s = w.get("/api/v1/me", &short).await.0;
            if s == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(
                started.elapsed().as_secs() < 5,
                "an expired token still works"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(dagr_admin_api::model::Time::now() >= expires);
        // Expiry in the past is refused at creation.
        let (s, v) = w
            .post(
                &format!("/api/v1/systems/{system}/tokens"),
                &second,
                json!({"expires_at": "2001-01-01"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "expires_at");
    });
}

#[tokio::test]
async fn a_change_made_through_another_service_is_picked_up_by_refresh() {
    each_backend!(|w| {
        // A second governance service on the same store (another replica, or `dagr admin`).
        let other = dagr_admin_api::Governance::offline(w.state.gov.store().clone());
        let issued = other
            .create_admin_token(None, "elsewhere", None)
            .await
            .unwrap();
        assert_eq!(
            w.get("/api/v1/me", &issued.secret).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert!(w.state.gov.refresh_if_changed().await.unwrap());
        assert_eq!(w.get("/api/v1/me", &issued.secret).await.0, StatusCode::OK);
        assert!(!w.state.gov.refresh_if_changed().await.unwrap());
        let admin = crate::common::admin_principal();
        other
            .revoke_token(&admin, issued.token.id, "gone")
            .await
            .unwrap();
        assert!(w.state.gov.refresh_if_changed().await.unwrap());
        assert_eq!(
            w.get("/api/v1/me", &issued.secret).await.0,
            StatusCode::UNAUTHORIZED
        );
    });
}

#[tokio::test]
async fn only_the_systems_own_organisation_issues_its_tokens() {
    each_backend!(|w| {
        // An admin operates DAGR but may not mint a token that reads data.
        let (_, sys) = w
            .post(
                "/api/v1/systems",
                &w.admin,
                json!({"organisation": "OWN", "name": "minted", "kind": "provider"}),
            )
            .await;
        let path = format!("/api/v1/systems/{}/tokens", sys["id"]);
        let (s, v) = w.post(&path, &w.admin, json!({})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("dagr admin create-token"),
            "{v}"
        );
        // Neither may a consumer system mint tokens for its siblings.
        let (_, me) = w.get("/api/v1/me", &w.bank).await;
        let (_, sibling) = w
            .post(
                "/api/v1/systems",
                &w.admin,
                json!({"organisation": "BANK", "name": "sib", "kind": "consumer"}),
            )
            .await;
        assert_eq!(me["organisation"], "BANK");
        let (s, _) = w
            .post(
                &format!("/api/v1/systems/{}/tokens", sibling["id"]),
                &w.bank,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // The owner of the organisation may.
        let (s, v) = w.post(&path, &w.owner, json!({"label": "feeder"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // Nothing was issued by the refused calls.
        let (_, list) = w.get(&path, &w.owner).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
    });
}

#[tokio::test]
async fn a_policy_that_cannot_be_refreshed_refuses_callers() {
    let w = crate::common::World::new(&crate::common::Backend::Sqlite).await;
    let policy = w.state.gov.policy();
    policy.require_fresh(std::time::Duration::from_millis(20));
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    assert!(policy.is_stale());
    // A stale policy is refreshed by the request itself when the store answers.
    assert_eq!(w.get("/api/v1/me", &w.bank).await.0, StatusCode::OK);
    // When the store does not answer, callers are refused (503), not judged on old data.
    w.state.gov.store().close().await;
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    let (s, v) = w.get("/api/v1/me", &w.bank).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        v["type"],
        "https://dagr.invalid/problems/policy-unavailable"
    );
}

#[tokio::test]
async fn a_bad_cursor_is_a_client_error() {
    each_backend!(|w| {
        for path in [
            "/api/v1/systems?after=x",
            "/api/v1/users?after=x",
            "/api/v1/requests?after=x",
        ] {
            let (s, v) = w.get(path, &w.admin).await;
            assert!(s.is_client_error(), "{path}: {s} {v}");
        }
    });
}

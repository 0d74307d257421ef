//! Change management: a load that drops an attribute an agreement uses is refused until an
//! admin accepts the owner's schema change; added attributes are visible to no one until
//! granted.

use axum::http::StatusCode;
use dagr_engine::arrow::datatypes::DataType;
use dagr_engine::{Attribute, Error};
use serde_json::json;

use crate::common::{keys, people_def, rows};
use crate::each_backend;

#[tokio::test]
async fn a_breaking_change_waits_for_an_admin_and_then_narrows_the_agreements() {
    each_backend!(|w| {
        let id = w
            .bank_requests(&["personal_code", "given_name", "surname"], None)
            .await;
        let (s, a) = w
            .post(
                &format!("/api/v1/requests/{id}/approve"),
                &w.owner,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let agreement = a["id"].as_i64().unwrap();
        // A second agreement whose only attribute will go away.
        let id2 = w.bank_requests(&["surname"], None).await;
        let (_, a2) = w
            .post(
                &format!("/api/v1/requests/{id2}/approve"),
                &w.owner,
                json!({}),
            )
            .await;

        // The register sends a snapshot without `surname`: refused, nothing changes.
        let mut new_def = people_def();
        new_def.attributes.retain(|a| a.name != "surname");
        let engine = &w.state.engine;
        let before = engine.current("people").unwrap().version();
        let err = engine
            .load_batches("people", rows(&new_def, 9))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LoadRefused { .. }), "{err}");
        assert!(err.to_string().contains("surname"), "{err}");
        assert_eq!(engine.current("people").unwrap().version(), before);

        // The owner files the change: it breaks both agreements, so it waits.
        let (s, c) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": new_def}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["status"], "pending");
        assert_eq!(c["changes"]["removed"], json!(["surname"]));
        let affected: Vec<i64> = c["affected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["agreement"].as_i64().unwrap())
            .collect();
        assert_eq!(affected.len(), 2, "{c}");
        assert!(
            c["affected"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["consumer_organisation"] == "BANK")
        );
        let change = c["id"].as_i64().unwrap();
        // Still refused while pending; consumers do not see change requests; owners cannot accept.
        assert!(
            engine
                .load_batches("people", rows(&new_def, 9))
                .await
                .is_err()
        );
        assert_eq!(
            w.get("/api/v1/schema-changes", &w.bank).await.0,
            StatusCode::FORBIDDEN
        );
        let accept = format!("/api/v1/schema-changes/{change}/accept");
        assert_eq!(
            w.post(&accept, &w.owner, json!({})).await.0,
            StatusCode::FORBIDDEN
        );
        let (_, list) = w
            .get("/api/v1/schema-changes?status=pending", &w.admin)
            .await;
        assert_eq!(list.as_array().unwrap().len(), 1);

        // The admin accepts: the definition changes, agreements lose `surname`, the one left
        // with nothing is revoked, and the load goes through.
        let (s, c) = w.post(&accept, &w.admin, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["status"], "accepted");
        assert_eq!(
            w.post(&accept, &w.admin, json!({})).await.0,
            StatusCode::CONFLICT
        );
        let (_, a) = w
            .get(&format!("/api/v1/agreements/{agreement}"), &w.bank)
            .await;
        assert_eq!(a["attributes"], json!(["personal_code", "given_name"]));
        let (_, a2) = w
            .get(&format!("/api/v1/agreements/{}", a2["id"]), &w.bank)
            .await;
        assert_eq!(a2["status"], "revoked");
        let (_, h) = w
            .get(&format!("/api/v1/agreements/{agreement}/history"), &w.bank)
            .await;
        assert_eq!(h.as_array().unwrap().last().unwrap()["action"], "narrowed");
        let report = engine
            .load_batches("people", rows(&new_def, 9))
            .await
            .unwrap();
        assert_eq!(report.rows, 9);
        let (s, r) = w.record(&w.bank, 0).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(keys(&r), ["given_name", "personal_code"]);
    });
}

#[tokio::test]
async fn a_change_that_breaks_nothing_applies_at_once_and_new_attributes_stay_hidden() {
    each_backend!(|w| {
        let id = w
            .bank_requests(&["personal_code", "given_name"], None)
            .await;
        assert_eq!(
            w.post(
                &format!("/api/v1/requests/{id}/approve"),
                &w.owner,
                json!({})
            )
            .await
            .0,
            StatusCode::OK
        );
        // Add `email`, drop `surname` (no agreement uses it).
        let mut new_def = people_def();
        new_def.attributes.retain(|a| a.name != "surname");
        new_def
            .attributes
            .push(Attribute::new("email", DataType::Utf8, "e-mail").personal("personal_code"));
        let (s, c) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": new_def}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(c["status"], "applied");
        assert_eq!(c["changes"]["added"], json!(["email"]));
        assert_eq!(c["affected"], json!([]));
        w.state
            .engine
            .load_batches("people", rows(&new_def, 9))
            .await
            .unwrap();
        let (_, r) = w.record(&w.bank, 0).await;
        assert_eq!(keys(&r), ["given_name", "personal_code"]);
        let (_, r) = w.record(&w.owner, 0).await;
        assert!(r.get("email").is_some(), "{r}");
        // The catalog shows the new attribute.
        let (_, d) = w.get("/api/v1/datasets/people", &w.bank).await;
        assert!(
            d["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "email")
        );

        // Key and owner cannot change; the name must match.
        let mut bad = people_def();
        bad.primary_key = vec!["given_name".into()];
        let (s, v) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "definition.primary_key");
        let mut bad = people_def();
        bad.name = "other".into();
        let (s, v) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["field"], "definition.name");
        // A rejected change needs a reason and changes nothing.
        let mut retype = new_def.clone();
        retype
            .attributes
            .iter_mut()
            .find(|a| a.name == "given_name")
            .unwrap()
            .data_type = DataType::Int64;
        let (s, c) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": retype}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(c["status"], "pending");
        assert_eq!(c["changes"]["retyped"][0]["name"], "given_name");
        let reject = format!("/api/v1/schema-changes/{}/reject", c["id"]);
        assert_eq!(
            w.post(&reject, &w.admin, json!({"reason": ""})).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let (s, c) = w
            .post(&reject, &w.admin, json!({"reason": "breaks the bank"}))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["status"], "rejected");
        let def = w.state.engine.definition("people").unwrap();
        assert_eq!(
            def.attribute("given_name").unwrap().data_type,
            DataType::Utf8
        );
    });
}

#[tokio::test]
async fn a_change_filed_against_an_old_definition_cannot_be_accepted() {
    each_backend!(|w| {
        let id = w.bank_requests(&["personal_code", "surname"], None).await;
        assert_eq!(
            w.post(
                &format!("/api/v1/requests/{id}/approve"),
                &w.owner,
                json!({})
            )
            .await
            .0,
            StatusCode::OK
        );
        // C1 removes `surname` (breaks the agreement: pending) ...
        let mut c1 = people_def();
        c1.attributes.retain(|a| a.name != "surname");
        let (_, c1) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": c1}),
            )
            .await;
        assert_eq!(c1["status"], "pending");
        // ... C2 adds `email` (applies at once) ...
        let mut c2 = people_def();
        c2.attributes
            .push(Attribute::new("email", DataType::Utf8, "e-mail"));
        let (_, c2) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": c2}),
            )
            .await;
        assert_eq!(c2["status"], "applied");
        // ... so accepting C1 would silently drop `email`: refused, nothing changes.
        let (s, v) = w
            .post(
                &format!("/api/v1/schema-changes/{}/accept", c1["id"]),
                &w.admin,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let def = w.state.engine.definition("people").unwrap();
        assert!(def.attribute("email").is_some() && def.attribute("surname").is_some());
        let (_, c1) = w
            .get(&format!("/api/v1/schema-changes/{}", c1["id"]), &w.admin)
            .await;
        assert_eq!(c1["status"], "pending");
    });
}

#[tokio::test]
async fn accepting_a_change_revokes_agreements_whose_row_scope_it_breaks_and_approvals_follow_the_definition()
 {
    each_backend!(|w| {
        let scoped = w
            .bank_requests(
                &["personal_code", "given_name"],
                Some("surname = 'surname0'"),
            )
            .await;
        let (_, scoped) = w
            .post(
                &format!("/api/v1/requests/{scoped}/approve"),
                &w.owner,
                json!({}),
            )
            .await;
        let plain = w
            .bank_requests(&["personal_code", "given_name"], None)
            .await;
        let (_, plain) = w
            .post(
                &format!("/api/v1/requests/{plain}/approve"),
                &w.owner,
                json!({}),
            )
            .await;
        let pending = w.bank_requests(&["personal_code", "surname"], None).await;
        let mut def = people_def();
        def.attributes.retain(|a| a.name != "surname");
        let (_, c) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": def}),
            )
            .await;
        assert_eq!(c["status"], "pending", "{c}");
        let affected: Vec<i64> = c["affected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agreement"].as_i64().unwrap())
            .collect();
        assert_eq!(affected, [scoped["id"].as_i64().unwrap()]);
        let (s, _) = w
            .post(
                &format!("/api/v1/schema-changes/{}/accept", c["id"]),
                &w.admin,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, a) = w
            .get(&format!("/api/v1/agreements/{}", scoped["id"]), &w.bank)
            .await;
        assert_eq!(a["status"], "revoked", "{a}");
        assert!(
            a["revoke_reason"].as_str().unwrap().contains("row scope"),
            "{a}"
        );
        let (_, a) = w
            .get(&format!("/api/v1/agreements/{}", plain["id"]), &w.bank)
            .await;
        assert_eq!(a["status"], "active");
        // The pending request still names `surname`, which is gone: approving it as filed
        // is refused; leaving it out works.
        let approve = format!("/api/v1/requests/{pending}/approve");
        let (s, v) = w.post(&approve, &w.owner, json!({})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("surname"), "{v}");
        let (s, _) = w
            .post(&approve, &w.owner, json!({"attributes": ["personal_code"]}))
            .await;
        assert_eq!(s, StatusCode::OK);
    });
}

#[tokio::test]
async fn a_change_recorded_but_not_applied_to_the_engine_is_finished_by_reconciliation() {
    each_backend!(|w| {
        let mut def = people_def();
        def.attributes
            .push(Attribute::new("email", DataType::Utf8, "e-mail"));
        let (_, c) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({"definition": def}),
            )
            .await;
        assert_eq!(c["status"], "applied");
        // Simulate a crash between the store and the engine (or another replica's change).
        w.state.engine.redefine(people_def()).await.unwrap();
        assert!(
            w.state
                .engine
                .definition("people")
                .unwrap()
                .attribute("email")
                .is_none()
        );
        w.state.gov.reconcile_definitions().await.unwrap();
        assert!(
            w.state
                .engine
                .definition("people")
                .unwrap()
                .attribute("email")
                .is_some()
        );
    });
}

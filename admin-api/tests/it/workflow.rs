//! The request → agreement workflow: every transition, every refused one, and masks that
//! follow approvals, revocations and expiry at once.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::keys;
use crate::each_backend;

#[tokio::test]
async fn approval_with_narrowing_grants_exactly_the_approved_cells_and_revocation_ends_it() {
    each_backend!(|w| {
        // Nothing granted yet: 403 naming the dataset.
        let (s, v) = w.record(&w.bank, 0).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("people"), "{v}");

        let id = w
            .bank_requests(
                &["personal_code", "given_name", "surname"],
                Some("municipality = 'Rīga'"),
            )
            .await;
        // Pending grants nothing.
        assert_eq!(w.record(&w.bank, 0).await.0, StatusCode::FORBIDDEN);

        // The owner approves, dropping `surname`.
        let (s, a) = w
            .post(
                &format!("/api/v1/requests/{id}/approve"),
                &w.owner,
                json!({"attributes": ["personal_code", "given_name"], "note": "surname not needed"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        assert_eq!(a["attributes"], json!(["personal_code", "given_name"]));
        assert_eq!(a["row_scope"], "municipality = 'Rīga'");
        assert_eq!(a["status"], "active");
        assert_eq!(a["consumer_organisation"], "BANK");
        assert_eq!(a["systems"], json!([w.bank_system]));
        let agreement = a["id"].as_i64().unwrap();
        assert_eq!(w.request_status(id).await, "approved");

        // In force at once: row 0 is in Rīga, row 1 in Jūrmala (outside the scope: 404).
        let (s, r) = w.record(&w.bank, 0).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(keys(&r), ["given_name", "personal_code"]);
        assert_eq!(r["given_name"], "given_name0");
        assert_eq!(w.record(&w.bank, 1).await.0, StatusCode::NOT_FOUND);
        // The sample shows only Rīga rows and granted attributes.
        let (s, v) = w
            .get("/api/v1/datasets/people/records?limit=1000", &w.bank)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let records = v["records"].as_array().unwrap();
        assert_eq!(records.len(), crate::common::ROWS / 3);
        assert!(
            records
                .iter()
                .all(|r| keys(r) == ["given_name", "personal_code"])
        );
        // Another consumer still has nothing; the bank's other system neither (not named).
        assert_eq!(w.record(&w.insurer, 0).await.0, StatusCode::FORBIDDEN);

        // The owner reads its own dataset whole.
        let (s, r) = w.record(&w.owner, 1).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(keys(&r).len(), 4);

        // Revocation: a reason is required, then the grant ends at once.
        let path = format!("/api/v1/agreements/{agreement}/revoke");
        assert_eq!(
            w.post(&path, &w.owner, json!({"reason": ""})).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let (s, v) = w
            .post(&path, &w.owner, json!({"reason": "contract ended"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "revoked");
        assert_eq!(v["revoke_reason"], "contract ended");
        assert_eq!(w.record(&w.bank, 0).await.0, StatusCode::FORBIDDEN);
        // Revoking again is refused and changes nothing.
        assert_eq!(
            w.post(&path, &w.owner, json!({"reason": "again"})).await.0,
            StatusCode::CONFLICT
        );

        // History: who, when, why.
        let (s, h) = w
            .get(&format!("/api/v1/requests/{id}/history"), &w.bank)
            .await;
        assert_eq!(s, StatusCode::OK);
        let actions: Vec<&str> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["filed", "approved"]);
        assert_eq!(h[1]["reason"], "surname not needed");
        assert!(
            h[1]["actor"].as_str().unwrap().starts_with("owner OWN"),
            "{h}"
        );
        let (_, h) = w
            .get(&format!("/api/v1/agreements/{agreement}/history"), &w.owner)
            .await;
        let actions: Vec<&str> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["made", "revoked"]);
        assert_eq!(h[1]["reason"], "contract ended");
    });
}

#[tokio::test]
async fn refusal_withdrawal_and_every_invalid_transition_change_nothing() {
    each_backend!(|w| {
        // Refuse needs a reason; then the request is refused and final.
        let id = w.bank_requests(&["given_name"], None).await;
        let refuse = format!("/api/v1/requests/{id}/refuse");
        let (s, v) = w.post(&refuse, &w.owner, json!({"reason": " "})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], "reason");
        assert_eq!(w.request_status(id).await, "pending");
        let (s, v) = w
            .post(&refuse, &w.owner, json!({"reason": "no legal basis"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "refused");
        assert_eq!(v["reason"], "no legal basis");
        for (path, body) in [
            (format!("/api/v1/requests/{id}/approve"), json!({})),
            (refuse.clone(), json!({"reason": "twice"})),
        ] {
            assert_eq!(w.post(&path, &w.owner, body).await.0, StatusCode::CONFLICT);
        }
        assert_eq!(
            w.post(
                &format!("/api/v1/requests/{id}/withdraw"),
                &w.bank,
                json!({})
            )
            .await
            .0,
            StatusCode::CONFLICT
        );
        assert_eq!(w.request_status(id).await, "refused");

        // Withdraw: only the requesting organisation, only while pending.
        let id = w.bank_requests(&["given_name"], None).await;
        let withdraw = format!("/api/v1/requests/{id}/withdraw");
        assert_eq!(
            w.post(&withdraw, &w.owner, json!({})).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            w.post(&withdraw, &w.insurer, json!({})).await.0,
            StatusCode::NOT_FOUND
        );
        let (s, v) = w
            .post(&withdraw, &w.bank, json!({"reason": "project cancelled"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "withdrawn");
        assert_eq!(
            w.post(
                &format!("/api/v1/requests/{id}/approve"),
                &w.owner,
                json!({})
            )
            .await
            .0,
            StatusCode::CONFLICT
        );

        // Approvals may only narrow.
        let id = w
            .bank_requests(&["personal_code", "given_name", "surname"], None)
            .await;
        let approve = format!("/api/v1/requests/{id}/approve");
        for (body, field) in [
            (json!({"attributes": ["municipality"]}), "attributes"),
            (json!({"attributes": []}), "attributes"),
            (json!({"valid_to": "2031-06-01"}), "valid_to"),
            (json!({"row_scope": "no_such_column = 1"}), "row_scope"),
        ] {
            let (s, v) = w.post(&approve, &w.owner, body).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            assert_eq!(v["field"], field, "{v}");
        }
        // Consumers, admins and other owners do not decide.
        for token in [&w.bank, &w.admin, &w.foreign_owner] {
            let (s, _) = w.post(&approve, token, json!({})).await;
            assert!(
                s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
                "{s}"
            );
        }
        assert_eq!(w.request_status(id).await, "pending");
        // A narrowing row scope is combined with the requested one.
        let (s, a) = w
            .post(
                &approve,
                &w.owner,
                json!({"row_scope": "municipality <> 'Ogre'", "valid_to": "2030-01-01"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        assert_eq!(a["row_scope"], "municipality <> 'Ogre'");
        assert_eq!(a["valid_to"], "2030-01-02T00:00:00.000Z");
        assert_eq!(
            w.post(&approve, &w.owner, json!({})).await.0,
            StatusCode::CONFLICT
        );
        // Row 2 lives in Ogre.
        let (s, v) = w.record(&w.bank, 2).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(w.record(&w.bank, 0).await.0, StatusCode::OK);
        // Only one agreement was made.
        let (_, list) = w.get("/api/v1/agreements", &w.admin).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    });
}

#[tokio::test]
async fn requests_are_validated_field_by_field() {
    each_backend!(|w| {
        let cases = [
            (json!({"attributes": []}), "attributes"),
            (
                json!({"attributes": ["given_name", "given_name"]}),
                "attributes",
            ),
            (json!({"attributes": ["nope"]}), "attributes"),
            (json!({"row_scope": "given_name = "}), "row_scope"),
            (json!({"purpose": ""}), "purpose"),
            (json!({"legal_basis": "  "}), "legal_basis"),
            (json!({"systems": []}), "systems"),
            (json!({"systems": [w.insurer_system]}), "systems"),
            (json!({"valid_to": "2001-01-01"}), "valid_to"),
            (json!({"valid_to": "tomorrow"}), "valid_to"),
            (
                json!({"valid_from": "2099-01-01", "valid_to": "2098-01-01"}),
                "valid_to",
            ),
            (json!({"purpose": "x".repeat(3000)}), "purpose"),
        ];
        for (patch, field) in cases {
            let mut body = w.request_body(&["given_name"], None);
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (s, v) = w.post("/api/v1/requests", &w.bank, body).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {v}");
            assert_eq!(v["field"], field, "{v}");
        }
        // Unknown dataset, and a dataset the caller's organisation owns.
        let mut body = w.request_body(&["given_name"], None);
        body["dataset"] = json!("nope");
        assert_eq!(
            w.post("/api/v1/requests", &w.bank, body).await.0,
            StatusCode::NOT_FOUND
        );
        // Only consumers file requests.
        let body = w.request_body(&["given_name"], None);
        assert_eq!(
            w.post("/api/v1/requests", &w.owner, body.clone()).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            w.post("/api/v1/requests", &w.admin, body).await.0,
            StatusCode::FORBIDDEN
        );
        // Nothing was filed by any refused call.
        let (_, list) = w.get("/api/v1/requests", &w.admin).await;
        assert_eq!(list, json!([]));
    });
}

#[tokio::test]
async fn expired_agreements_stop_granting_and_overdue_requests_are_listed() {
    each_backend!(|w| {
        let id = w
            .bank_requests(&["personal_code", "given_name"], None)
            .await;
        let (s, a) = w
            .post(
                &format!("/api/v1/requests/{id}/approve"),
                &w.owner,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(w.record(&w.bank, 0).await.0, StatusCode::OK);
        // Move the agreement's end into the past, as time would.
        let pool = w.state.gov.store().pool();
        sqlx::query("UPDATE agreements SET valid_to = $1 WHERE id = $2")
            .bind(dagr_admin_api::model::Time::now().0 - 1000)
            .bind(a["id"].as_i64().unwrap())
            .execute(pool)
            .await
            .unwrap();
        w.state.gov.reload().await.unwrap();
        assert_eq!(w.record(&w.bank, 0).await.0, StatusCode::FORBIDDEN);
        let (_, a) = w
            .get(&format!("/api/v1/agreements/{}", a["id"]), &w.bank)
            .await;
        assert_eq!(a["status"], "expired");
        let (_, list) = w.get("/api/v1/agreements?status=expired", &w.bank).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        let (_, list) = w.get("/api/v1/agreements?status=active", &w.bank).await;
        assert_eq!(list, json!([]));
        // An expired agreement cannot be revoked.
        let (s, _) = w
            .post(
                &format!("/api/v1/agreements/{}/revoke", a["id"]),
                &w.owner,
                json!({"reason": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);

        // Overdue: a pending request past its SLA deadline.
        let late = w.bank_requests(&["surname"], None).await;
        let fresh = w.bank_requests(&["given_name"], None).await;
        sqlx::query("UPDATE access_requests SET due_at = $1 WHERE id = $2")
            .bind(dagr_admin_api::model::Time::now().0 - 1000)
            .bind(late)
            .execute(pool)
            .await
            .unwrap();
        let (s, list) = w.get("/api/v1/requests?overdue=true", &w.admin).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let ids: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [late]);
        assert_eq!(list[0]["overdue"], true);
        let (_, r) = w.get(&format!("/api/v1/requests/{fresh}"), &w.bank).await;
        assert_eq!(r["overdue"], false);
    });
}

#[tokio::test]
async fn a_narrowing_row_scope_cannot_widen_the_requested_one() {
    each_backend!(|w| {
        let id = w
            .bank_requests(
                &["personal_code", "given_name"],
                Some("municipality = 'Rīga'"),
            )
            .await;
        let approve = format!("/api/v1/requests/{id}/approve");
        for sneaky in ["TRUE) OR (TRUE", "TRUE) OR TRUE --", "1=1) OR (1=1"] {
            let (s, v) = w
                .post(&approve, &w.owner, json!({"row_scope": sneaky}))
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{sneaky}: {v}");
            assert_eq!(v["field"], "row_scope");
        }
        // A comment inside a valid fragment cannot swallow the requested scope either.
        let (s, a) = w
            .post(
                &approve,
                &w.owner,
                json!({"row_scope": "TRUE -- everything"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        assert_eq!(w.record(&w.bank, 0).await.0, StatusCode::OK); // Rīga
        assert_eq!(w.record(&w.bank, 1).await.0, StatusCode::NOT_FOUND); // Jūrmala
        let (_, v) = w
            .get("/api/v1/datasets/people/records?limit=1000", &w.bank)
            .await;
        assert_eq!(
            v["records"].as_array().unwrap().len(),
            crate::common::ROWS / 3
        );
    });
}

#[tokio::test]
async fn requests_are_listed_by_decision_deadline_a_page_at_a_time() {
    each_backend!(|w| {
        let pool = w.state.gov.store().pool();
        let now = dagr_admin_api::model::Time::now().0;
        let day = 86_400_000;
        // Three pending requests, due in 3, 1 and 2 days.
        let mut ids = Vec::new();
        for (attribute, days) in [("surname", 3), ("given_name", 1), ("municipality", 2)] {
            let id = w.bank_requests(&[attribute], None).await;
            sqlx::query("UPDATE access_requests SET due_at = $1 WHERE id = $2")
                .bind(now + days * day)
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
            ids.push(id);
        }
        let (in3, in1, in2) = (ids[0], ids[1], ids[2]);
        let list_ids = |v: &Value| -> Vec<i64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect()
        };

        // Earliest deadline first, two per page; the Link header's cursor gives the rest.
        let (s, first, headers) = w
            .call(
                Method::GET,
                "/api/v1/requests?sort=due_at&limit=2",
                Some(&w.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{first}");
        assert_eq!(list_ids(&first), [in1, in2]);
        let link = headers["link"].to_str().unwrap().to_owned();
        let next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            next.contains(&format!("after={}.{in2}", now + 2 * day)),
            "{link}"
        );
        let (s, rest) = w.get(&next, &w.admin).await;
        assert_eq!(s, StatusCode::OK, "{rest}");
        assert_eq!(list_ids(&rest), [in3]);

        // Due before a time: only what falls due by then, soonest first.
        let before = dagr_admin_api::model::Time(now + 2 * day + 1).to_rfc3339();
        let (s, due) = w
            .get(
                &format!("/api/v1/requests?due_before={before}&sort=due_at"),
                &w.admin,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{due}");
        assert_eq!(list_ids(&due), [in1, in2]);
        // A decided request is not due.
        let (s, _) = w
            .post(
                &format!("/api/v1/requests/{in1}/approve"),
                &w.owner,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, due) = w
            .get(
                &format!("/api/v1/requests?due_before={before}&sort=due_at"),
                &w.admin,
            )
            .await;
        assert_eq!(list_ids(&due), [in2]);
        // The default order stays newest first.
        let (_, all) = w.get("/api/v1/requests", &w.admin).await;
        assert_eq!(list_ids(&all)[..3], [in2, in1, in3]);

        // Bad parameters are refused, and the request list's own ones elsewhere.
        let too_long = format!("/api/v1/requests?due_before=2030-01-01{}", "0".repeat(100));
        for path in [
            "/api/v1/requests?sort=deadline",
            "/api/v1/requests?due_before=tomorrow",
            too_long.as_str(),
            "/api/v1/requests?sort=due_at&after=12",
            "/api/v1/requests?after=1.2",
            "/api/v1/agreements?sort=due_at",
            "/api/v1/agreements?due_before=2030-01-01",
        ] {
            let (s, problem) = w.get(path, &w.admin).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {problem}");
        }
    });
}

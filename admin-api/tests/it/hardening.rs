//! Hostile callers (issue 15): role checks before any body is parsed, no escalation of
//! roles through credentials, formula cells neutralised in CSV exports, and un-marking a
//! personal attribute held for review.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dagr_admin_api::Governance;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::{SystemKind, UserRole};
use dagr_engine::{AccessPolicy, Principal, Role};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{World, admin_principal, code};
use crate::each_backend;

/// A citizen's (subject) token, issued by the admin.
async fn citizen(w: &World) -> String {
    let (s, v) = w
        .post(
            "/api/v1/tokens",
            &w.admin,
            json!({"kind": "subject", "subject": code(3)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

/// Send `body` as it is (bytes, possibly not JSON) with a JSON content type.
async fn raw(
    w: &World,
    method: Method,
    path: &str,
    token: &str,
    body: &str,
) -> (StatusCode, Value, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = w.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ctype,
    )
}

/// A definition whose type string is nonsense, nested: parsing it is the work a caller
/// without the role must not get done.
fn bad_type_body() -> String {
    json!({"definition": {
        "name": "x", "owner": "OWN", "description": "", "primary_key": ["a"],
        "attributes": [{"name": "a", "type": "List(List(List(List(nonsense", "description": ""}]
    }})
    .to_string()
}

#[tokio::test]
async fn a_caller_without_the_role_is_refused_before_the_body_is_parsed() {
    each_backend!(|w| {
        let citizen = citizen(&w).await;
        let routes: Vec<(Method, String, Vec<&str>)> = vec![
            (
                Method::POST,
                "/api/v1/organisations".into(),
                vec![&citizen, &w.owner],
            ),
            (
                Method::PATCH,
                "/api/v1/organisations/BANK".into(),
                vec![&citizen, &w.owner],
            ),
            (
                Method::POST,
                "/api/v1/users".into(),
                vec![&citizen, &w.bank],
            ),
            (
                Method::POST,
                "/api/v1/systems".into(),
                vec![&citizen, &w.bank],
            ),
            (
                Method::POST,
                format!("/api/v1/systems/{}/tokens", w.bank_system),
                vec![&citizen, &w.bank, &w.owner, &w.admin],
            ),
            (
                Method::POST,
                "/api/v1/tokens".into(),
                vec![&citizen, &w.owner],
            ),
            (
                Method::POST,
                "/api/v1/datasets".into(),
                vec![&citizen, &w.bank],
            ),
            (
                Method::PATCH,
                "/api/v1/datasets/people".into(),
                vec![&citizen, &w.bank, &w.foreign_owner],
            ),
            (
                Method::POST,
                "/api/v1/datasets/people/schema-changes".into(),
                vec![&citizen, &w.bank, &w.foreign_owner, &w.admin],
            ),
            (
                Method::POST,
                "/api/v1/requests".into(),
                vec![&citizen, &w.owner],
            ),
            (
                Method::POST,
                "/api/v1/schema-changes/1/reject".into(),
                vec![&citizen, &w.owner],
            ),
            (
                Method::POST,
                "/api/v1/usage-events".into(),
                vec![&citizen, &w.admin],
            ),
        ];
        let bodies = [
            "garbage, not JSON".to_owned(),
            format!("[{}]", "[".repeat(100)),
            bad_type_body(),
        ];
        for (method, path, callers) in &routes {
            for token in callers {
                for body in &bodies {
                    let (s, v, ctype) = raw(&w, method.clone(), path, token, body).await;
                    assert!(
                        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
                        "{method} {path}: {s} {v}"
                    );
                    assert!(
                        ctype.starts_with("application/problem+json"),
                        "{method} {path}: {ctype}"
                    );
                    assert_eq!(v["status"], s.as_u16(), "{method} {path}: {v}");
                }
            }
        }
        // The caller with the role still gets the body's own errors.
        let (s, v, _) = raw(
            &w,
            Method::POST,
            "/api/v1/datasets",
            &w.owner,
            &bad_type_body(),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let (s, v, _) = raw(&w, Method::POST, "/api/v1/datasets", &w.owner, "garbage").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v, _) = raw(
            &w,
            Method::POST,
            "/api/v1/datasets/people/schema-changes",
            &w.owner,
            "garbage",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    });
}

/// A person (portal user) of `org` with `role`, made on the server (the local bootstrap).
async fn person(w: &World, login: &str, org: &str, role: UserRole) -> Principal {
    let user = w
        .state
        .gov
        .create_user(
            &admin_principal(),
            login,
            "Test Person",
            Some(org),
            role,
            "correct horse battery",
        )
        .await
        .unwrap();
    Governance::user_principal(&user)
}

/// The id of the system `name` of `org`, made by the local admin.
async fn system(w: &World, org: &str, name: &str, kind: SystemKind) -> i64 {
    w.state
        .gov
        .create_system(&admin_principal(), org, name, kind, "")
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn only_the_matching_role_of_the_organisation_mints_a_systems_token() {
    each_backend!(|w| {
        let gov = &w.state.gov;
        let provider = system(&w, "OWN", "feeder", SystemKind::Provider).await;
        let own_consumer = system(&w, "OWN", "analytics", SystemKind::Consumer).await;
        let own_reader = person(&w, "own.reader", "OWN", UserRole::Consumer).await;
        let own_owner = person(&w, "own.owner", "OWN", UserRole::Owner).await;
        let bank_person = person(&w, "bank.person", "BANK", UserRole::Consumer).await;
        let forbidden = |r: Result<_, GovError>| matches!(r, Err(GovError::Forbidden(_)));
        // A person with a consumer role cannot become the provider system.
        assert!(forbidden(
            gov.create_system_token(Some(&own_reader), provider, "x", None)
                .await
        ));
        // A provider system's token cannot become a consumer system (and read under its
        // agreements).
        let owner_token = gov.policy().authenticate(&w.owner).unwrap();
        assert!(forbidden(
            gov.create_system_token(Some(&owner_token), own_consumer, "x", None)
                .await
        ));
        // Nobody mints for another organisation's system.
        assert!(
            gov.create_system_token(Some(&bank_person), provider, "x", None)
                .await
                .is_err()
        );
        // The matching roles may: an owner for the provider system (person or provider
        // token), a person of the organisation for a consumer system.
        gov.create_system_token(Some(&own_owner), provider, "ok", None)
            .await
            .unwrap();
        gov.create_system_token(Some(&owner_token), provider, "ok", None)
            .await
            .unwrap();
        gov.create_system_token(Some(&own_reader), own_consumer, "ok", None)
            .await
            .unwrap();
        gov.create_system_token(Some(&own_owner), own_consumer, "ok", None)
            .await
            .unwrap();
        gov.create_system_token(Some(&bank_person), w.bank_system, "ok", None)
            .await
            .unwrap();
        // Over REST: the provider token is refused for the consumer system.
        let (s, v) = w
            .post(
                &format!("/api/v1/systems/{own_consumer}/tokens"),
                &w.owner,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    });
}

#[tokio::test]
async fn admin_actions_yield_no_credential_that_reads_register_data() {
    each_backend!(|w| {
        // An admin over the API cannot make a person of an organisation (who would read
        // its data, or under its agreements, with a password the admin knows).
        for (org, role) in [("OWN", "owner"), ("BANK", "consumer")] {
            let (s, v) = w
                .post(
                    "/api/v1/users",
                    &w.admin,
                    json!({"login": format!("mole.{role}"), "name": "Mole", "organisation": org,
                        "role": role, "password": "correct horse battery"}),
                )
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            assert_eq!(v["status"], 403);
        }
        let (_, users) = w.get("/api/v1/users", &w.admin).await;
        assert_eq!(users, json!([]), "nothing was created");
        // Another admin may be made; it reads nothing.
        let (s, admin_user) = w
            .post(
                "/api/v1/users",
                &w.admin,
                json!({"login": "second.admin", "name": "Admin", "role": "admin",
                    "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{admin_user}");
        // An admin principal (token, portal user) has no grant on any dataset.
        let policy = w.state.gov.policy();
        let token = policy.authenticate(&w.admin).unwrap();
        assert_eq!(token.role, Role::Admin);
        let user = Principal {
            user: Some("second.admin".into()),
            ..admin_principal()
        };
        for p in [&token, &user] {
            let access = policy.access(p);
            assert!(
                !access.can_see("people") && !access.can_see("parcels"),
                "{p:?}"
            );
        }
        assert_eq!(w.record(&w.admin, 0).await.0, StatusCode::FORBIDDEN);
        // Every credential made is in the history: the user, the tokens.
        let (s, history) = w
            .get(
                &format!("/api/v1/users/{}/history", admin_user["id"]),
                &w.admin,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{history}");
        assert_eq!(history[0]["action"], "created", "{history}");
        assert!(
            history[0]["actor"].as_str().unwrap().contains("admin"),
            "{history}"
        );
        let (_, me) = w.get("/api/v1/me", &w.owner).await;
        let system = me["system"].as_str().unwrap();
        let (s, issued) = w
            .post(
                &format!("/api/v1/systems/{system}/tokens"),
                &w.owner,
                json!({"label": "second"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{issued}");
        let (s, history) = w
            .get(
                &format!("/api/v1/tokens/{}/history", issued["token"]["id"]),
                &w.owner,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{history}");
        assert_eq!(history[0]["action"], "created", "{history}");
        // A person of another organisation does not see a user's history.
        let (s, _) = w
            .get(
                &format!("/api/v1/users/{}/history", admin_user["id"]),
                &w.bank,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    });
}

#[tokio::test]
async fn csv_exports_neutralise_formula_cells() {
    each_backend!(|w| {
        // (A leading tab or carriage return is trimmed off by the log itself; the unit tests
        // of the CSV writer cover them.)
        let formulas = [
            "=1+2",
            "+31",
            "-5",
            "@SUM(A1)",
            "=HYPERLINK(\"http://x\",\"y\")",
        ];
        let events: Vec<Value> = formulas
            .iter()
            .enumerate()
            .map(|(i, f)| {
                json!({
                    "subject": code(i),
                    "purpose": format!("{f} purpose"),
                    "time": dagr_admin_api::model::Time::now().to_rfc3339(),
                    "transaction_id": format!("{f}{i}"),
                })
            })
            .collect();
        let (s, v) = w
            .post("/api/v1/usage-events", &w.bank, json!({ "events": events }))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let req = Request::builder()
            .uri("/api/v1/usage/records?format=csv")
            .header("authorization", format!("Bearer {}", w.admin))
            .body(Body::empty())
            .unwrap();
        let resp = w.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let cells: Vec<String> = csv_cells(&text);
        for (i, f) in formulas.iter().enumerate() {
            let purpose = format!("'{f} purpose");
            let tx = format!("'{f}{i}");
            assert!(cells.contains(&purpose), "{purpose:?} in {text}");
            assert!(cells.contains(&tx), "{tx:?} in {text}");
        }
        // No cell starts with a formula character unless it is a bare number.
        for c in &cells {
            let risky = c.starts_with(['=', '+', '-', '@', '\t', '\r']);
            assert!(!risky || c.parse::<f64>().is_ok(), "{c:?} in {text}");
        }
        // Numbers stay numbers: the `rows` column is an integer.
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let rows = header.iter().position(|h| *h == "rows").unwrap();
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.split(',').nth(rows).unwrap().parse::<i64>().is_ok(),
            "{line}"
        );
    });
}

/// The cells of CSV text (RFC 4180 quoting).
fn csv_cells(text: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.is_empty() => quoted = true,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            ('\r', false) if chars.peek() == Some(&'\n') => {}
            ('\n', false) => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    cells
}

#[tokio::test]
async fn unmarking_a_personal_attribute_waits_for_review() {
    each_backend!(|w| {
        let mut def = crate::common::people_def();
        let surname = def
            .attributes
            .iter_mut()
            .find(|a| a.name == "surname")
            .unwrap();
        surname.personal = false;
        surname.subject = None;
        let (s, v) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({ "definition": def }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "pending", "{v}");
        assert_eq!(v["changes"]["unmarked_personal"], json!(["surname"]), "{v}");
        // The engine still audits it until an admin accepts.
        let def_now = w.state.engine.definition("people").unwrap();
        assert!(def_now.attribute("surname").unwrap().personal);
        let id = v["id"].as_i64().unwrap();
        let (s, v) = w
            .post(
                &format!("/api/v1/schema-changes/{id}/accept"),
                &w.admin,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let def_now = w.state.engine.definition("people").unwrap();
        assert!(!def_now.attribute("surname").unwrap().personal);
        // Marking attributes personal (surname again, and municipality) is not held.
        let mut def = crate::common::people_def();
        def.attributes[3].personal = true;
        def.attributes[3].subject = Some("personal_code".into());
        let (s, v) = w
            .post(
                "/api/v1/datasets/people/schema-changes",
                &w.owner,
                json!({ "definition": def }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "applied", "{v}");
        assert_eq!(v["changes"]["unmarked_personal"], json!([]), "{v}");
    });
}

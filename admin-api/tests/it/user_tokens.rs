//! Persons' tokens (kind `user`): a person of an organisation calls the API as themselves —
//! their role, organisation and reads, exactly as their portal session — minted only by
//! that person signed in to the portal (or `dagr admin` on the server), ended by revocation
//! and expiry.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dagr_admin_api::Governance;
use dagr_admin_api::governance::{GovError, IssuedToken};
use dagr_admin_api::model::{Time, TokenKind, User, UserRole};
use dagr_engine::{AccessPolicy, Principal, Role};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{World, admin_principal, code, keys};
use crate::each_backend;

/// A person (portal user) of `org` (`None`: an admin person) with `role`, made on the
/// server.
async fn person(w: &World, login: &str, org: Option<&str>, role: UserRole) -> User {
    w.state
        .gov
        .create_user(
            &admin_principal(),
            login,
            "Test Person",
            org,
            role,
            "correct horse battery",
        )
        .await
        .unwrap()
}

/// A token the person mints for themselves from their portal session.
async fn own_token(w: &World, user: &User, label: &str) -> IssuedToken {
    let session = Governance::user_principal(user);
    w.state
        .gov
        .create_user_token(Some(&session), &user.login, label, None)
        .await
        .unwrap()
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, GovError>) -> String {
    match r {
        Err(GovError::Forbidden(m)) => m,
        other => panic!("expected 403, got {other:?}"),
    }
}

/// `GET /api/v1/me` as `token`.
async fn me(w: &World, token: &str) -> (StatusCode, Value) {
    w.get("/api/v1/me", token).await
}

/// The text body of `GET path` as `token`.
async fn csv(w: &World, path: &str, token: &str) -> String {
    let req = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = w.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The bank files a request for `people` for its `loans` system and the owner approves it.
async fn bank_agreement(w: &World, attributes: &[&str], row_scope: Option<&str>) {
    let id = w.bank_requests(attributes, row_scope).await;
    let (s, v) = w
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            &w.owner,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_persons_token_authenticates_and_reads_as_the_persons_session() {
    each_backend!(|w| {
        let gov = &w.state.gov;
        let anna = person(&w, "anna.bank", Some("BANK"), UserRole::Consumer).await;
        let session = Governance::user_principal(&anna);
        let issued = own_token(&w, &anna, "grant management").await;
        let t = &issued.token;
        assert_eq!(t.kind, TokenKind::User);
        assert_eq!(
            (t.user, t.user_login.as_deref(), t.system),
            (Some(anna.id), Some("anna.bank"), None)
        );
        assert!(t.created_by.contains("user anna.bank"), "{}", t.created_by);

        // The principal is the session's, with the token's id.
        let p = gov.policy().authenticate(&issued.secret).unwrap();
        assert_eq!(
            p,
            Principal {
                token_id: Some(t.id.to_string()),
                ..session.clone()
            }
        );
        let (s, v) = me(&w, &issued.secret).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (&v["role"], &v["organisation"], &v["system"], &v["token"]),
            (
                &json!("consumer"),
                &json!("BANK"),
                &Value::Null,
                &json!(t.id.to_string())
            )
        );
        assert_eq!(v["user"], "anna.bank", "GET /me names the person: {v}");
        // Its metadata and history name the person; the person sees them.
        let (s, v) = w
            .get(&format!("/api/v1/tokens/{}", t.id), &issued.secret)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((&v["kind"], &v["user"]), (&json!("user"), &json!(anna.id)));
        assert_eq!(v["user_login"], "anna.bank");
        let (s, h) = w
            .get(&format!("/api/v1/tokens/{}/history", t.id), &issued.secret)
            .await;
        assert_eq!(s, StatusCode::OK, "{h}");
        assert_eq!(h[0]["action"], "created");
        assert!(
            h[0]["actor"].as_str().unwrap().contains("user anna.bank"),
            "{h}"
        );
        // Other organisations and their systems do not see it.
        for other in [&w.insurer, &w.owner, &w.bank] {
            assert_eq!(
                w.get(&format!("/api/v1/tokens/{}", t.id), other).await.0,
                StatusCode::NOT_FOUND
            );
        }

        // No agreement: nothing to read, like the session.
        assert_eq!(w.record(&issued.secret, 0).await.0, StatusCode::FORBIDDEN);
        // Under the organisation's agreement (naming its `loans` system): the person reads
        // what the agreement grants, the rows of its scope.
        bank_agreement(
            &w,
            &["personal_code", "given_name"],
            Some("municipality = 'Rīga'"),
        )
        .await;
        let (s, r) = w.record(&issued.secret, 0).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(keys(&r), ["given_name", "personal_code"]);
        assert_eq!(r["personal_code"], code(0));
        assert_eq!(w.record(&issued.secret, 1).await.0, StatusCode::NOT_FOUND);
        let sample = |token: String| {
            let w = &w;
            async move {
                let (s, v) = w
                    .get("/api/v1/datasets/people/records?limit=1000", &token)
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
                v["records"].clone()
            }
        };
        let by_token = sample(issued.secret.clone()).await;
        assert_eq!(by_token.as_array().unwrap().len(), crate::common::ROWS / 3);
        assert_eq!(by_token, sample(w.bank.clone()).await);
        // Exactly the grants of the person's session, on every dataset.
        let policy = gov.policy();
        for dataset in ["people", "parcels"] {
            assert_eq!(
                policy.access(&p).grants_for(dataset),
                policy.access(&session).grants_for(dataset),
                "{dataset}"
            );
        }
        // The owner's usage export records the reads with the organisation and the token.
        let csv = csv(&w, "/api/v1/usage/records?format=csv", &w.owner).await;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (org, token) = (col("organisation"), col("token"));
        let id = t.id.to_string();
        assert!(
            lines.any(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                cells.get(org) == Some(&"BANK") && cells.get(token) == Some(&id.as_str())
            }),
            "{csv}"
        );

        // The role is the person's: an owner person's token reads its datasets whole.
        let olga = person(&w, "olga.own", Some("OWN"), UserRole::Owner).await;
        let olga_token = own_token(&w, &olga, "").await;
        let (s, v) = me(&w, &olga_token.secret).await;
        assert_eq!((s, &v["role"]), (StatusCode::OK, &json!("owner")));
        let (s, r) = w.record(&olga_token.secret, 1).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(keys(&r).len(), 4);
        // And a person of another organisation reads nothing under the bank's agreement.
        let ivo = person(&w, "ivo.ins", Some("INS"), UserRole::Consumer).await;
        let ivo_token = own_token(&w, &ivo, "").await;
        assert_eq!(
            w.record(&ivo_token.secret, 0).await.0,
            StatusCode::FORBIDDEN
        );
    });
}

#[tokio::test]
async fn a_persons_token_is_refused_after_revocation_and_after_expiry() {
    each_backend!(|w| {
        let gov = &w.state.gov;
        let anna = person(&w, "anna.bank", Some("BANK"), UserRole::Consumer).await;
        let bob = person(&w, "bob.bank", Some("BANK"), UserRole::Owner).await;
        let session = Governance::user_principal(&anna);

        // Revoked by the person, from their session.
        let a = own_token(&w, &anna, "a").await;
        assert_eq!(me(&w, &a.secret).await.0, StatusCode::OK);
        let t = gov
            .revoke_token(&session, a.token.id, "rotated")
            .await
            .unwrap();
        assert!(t.revoked_at.is_some());
        assert_eq!(me(&w, &a.secret).await.0, StatusCode::UNAUTHORIZED);

        // Revoked by itself.
        let b = own_token(&w, &anna, "b").await;
        let path = format!("/api/v1/tokens/{}/revoke", b.token.id);
        let (s, v) = w.post(&path, &b.secret, json!({"reason": "done"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(me(&w, &b.secret).await.0, StatusCode::UNAUTHORIZED);

        // Nobody else of the organisation revokes it (a person, a system, an owner); an
        // admin does.
        let c = own_token(&w, &anna, "c").await;
        let path = format!("/api/v1/tokens/{}/revoke", c.token.id);
        assert!(matches!(
            gov.revoke_token(&Governance::user_principal(&bob), c.token.id, "x")
                .await,
            Err(GovError::NotFound(_))
        ));
        for other in [&w.bank, &w.owner, &w.insurer] {
            let (s, v) = w.post(&path, other, json!({"reason": "x"})).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        }
        assert_eq!(me(&w, &c.secret).await.0, StatusCode::OK);
        let (s, v) = w.post(&path, &w.admin, json!({"reason": "left"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["revoked_at"].is_string(), "{v}");
        assert_eq!(me(&w, &c.secret).await.0, StatusCode::UNAUTHORIZED);
        // Revoking again changes nothing.
        let (s, _) = w.post(&path, &w.admin, json!({"reason": "again"})).await;
        assert_eq!(s, StatusCode::CONFLICT);

        // Expiry: an end in the past is refused when minting; a token past its end is
        // refused at once, without a reload.
        assert!(matches!(
            gov.create_user_token(Some(&session), "anna.bank", "", Some(Time(1)))
                .await,
            Err(GovError::Invalid { field, .. }) if field == "expires_at"
        ));
        let d = gov
            .create_user_token(
                Some(&session),
                "anna.bank",
                "d",
                Some(Time::now().plus_days(30)),
            )
            .await
            .unwrap();
        assert_eq!(me(&w, &d.secret).await.0, StatusCode::OK);
        sqlx::query("UPDATE tokens SET expires_at = $1 WHERE id = $2")
            .bind(Time::now().0 - 1000)
            .bind(d.token.id)
            .execute(gov.store().pool())
            .await
            .unwrap();
        gov.reload().await.unwrap();
        assert_eq!(me(&w, &d.secret).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(w.record(&d.secret, 0).await.0, StatusCode::UNAUTHORIZED);
    });
}

#[tokio::test]
async fn only_the_person_signed_in_mints_their_token() {
    each_backend!(|w| {
        let gov = &w.state.gov;
        let anna = person(&w, "anna.bank", Some("BANK"), UserRole::Consumer).await;
        let bob = person(&w, "bob.bank", Some("BANK"), UserRole::Owner).await;
        let root = person(&w, "root.admin", None, UserRole::Admin).await;
        let anna_token = own_token(&w, &anna, "").await;

        // An admin mints none for someone else: by token, or signed in to the portal.
        let (s, v) = w
            .post(
                "/api/v1/tokens",
                &w.admin,
                json!({"kind": "user", "login": "anna.bank"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("anna.bank"), "{v}");
        let m = forbidden(
            gov.create_user_token(
                Some(&Governance::user_principal(&root)),
                "anna.bank",
                "",
                None,
            )
            .await,
        );
        assert!(m.contains("admin"), "{m}");
        // Nor does another person of the organisation, an owner included.
        forbidden(
            gov.create_user_token(
                Some(&Governance::user_principal(&bob)),
                "anna.bank",
                "",
                None,
            )
            .await,
        );
        // No token mints one: a system's (consumer or provider), a citizen's, the person's
        // own (no successor of itself), an admin's for itself (it is no person).
        let (s, v) = w
            .post(
                "/api/v1/tokens",
                &w.admin,
                json!({"kind": "subject", "subject": code(3)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let citizen = v["secret"].as_str().unwrap().to_owned();
        for token in [&w.bank, &w.owner, &citizen, &anna_token.secret] {
            for body in [
                json!({"kind": "user"}),
                json!({"kind": "user", "login": "anna.bank"}),
            ] {
                let (s, v) = w.post("/api/v1/tokens", token, body).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            }
        }
        let (s, v) = w
            .post("/api/v1/tokens", &w.admin, json!({"kind": "user"}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], "login", "{v}");
        // The person's token mints no other credential either: no system token, no admin
        // token — even an admin person's.
        let (s, v) = w
            .post(
                &format!("/api/v1/systems/{}/tokens", w.bank_system),
                &anna_token.secret,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let root_token = own_token(&w, &root, "").await;
        assert_eq!(me(&w, &root_token.secret).await.1["role"], "admin");
        for body in [
            json!({"kind": "admin"}),
            json!({"kind": "subject", "subject": code(3)}),
        ] {
            let (s, v) = w.post("/api/v1/tokens", &root_token.secret, body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        }
        let (s, v) = w
            .post(
                "/api/v1/users",
                &root_token.secret,
                json!({"login": "x.admin", "name": "X", "role": "admin",
                       "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        // From the session, the person mints a consumer system's token, as before.
        gov.create_system_token(
            Some(&Governance::user_principal(&anna)),
            w.bank_system,
            "",
            None,
        )
        .await
        .unwrap();

        // An unknown login: 404 naming it (the bootstrap, and admins, who see every user).
        for p in [None, Some(admin_principal())] {
            match gov
                .create_user_token(p.as_ref(), "nobody.here", "", None)
                .await
            {
                Err(GovError::NotFound(m)) => assert!(m.contains("nobody.here"), "{m}"),
                other => panic!("expected 404, got {other:?}"),
            }
        }
        let (s, v) = w
            .post(
                "/api/v1/tokens",
                &w.admin,
                json!({"kind": "user", "login": "nobody.here"}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("nobody.here"), "{v}");
        // Anyone else learns nothing about other logins: 403 alike.
        forbidden(
            gov.create_user_token(
                Some(&Governance::user_principal(&anna)),
                "nobody.here",
                "",
                None,
            )
            .await,
        );

        // Fields of other kinds are refused.
        for body in [
            json!({"kind": "user", "subject": code(1)}),
            json!({"kind": "admin", "login": "anna.bank"}),
        ] {
            let (s, v) = w.post("/api/v1/tokens", &w.admin, body).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        }

        // The local bootstrap (`dagr admin create-user-token`) mints for any person.
        let boot = gov
            .create_user_token(None, "bob.bank", "script", None)
            .await
            .unwrap();
        assert_eq!(boot.token.created_by, "dagr admin (bootstrap)");
        let p = gov.policy().authenticate(&boot.secret).unwrap();
        assert_eq!(
            (p.role, p.organisation.as_deref(), p.user.as_deref()),
            (Role::Owner, Some("BANK"), Some("bob.bank"))
        );
        // The person lists their tokens; others of the organisation do not.
        let page = dagr_admin_api::store::Page {
            limit: 100,
            after: None,
        };
        let mine = gov
            .user_tokens(&Governance::user_principal(&bob), "bob.bank", &page)
            .await
            .unwrap();
        assert_eq!(
            mine.iter().map(|t| t.id).collect::<Vec<_>>(),
            [boot.token.id]
        );
        assert!(
            gov.user_tokens(&Governance::user_principal(&anna), "bob.bank", &page)
                .await
                .is_err()
        );
    });
}

//! Portal sign-in rules (throttling per source) and the session store, on every backend.

use dagr_admin_api::Governance;
use dagr_admin_api::governance::{LOCKOUT, LoginError, MAX_FAILED_LOGINS};
use dagr_admin_api::model::{Time, UserRole};
use dagr_admin_api::store::PortalSession;
use dagr_admin_api::throttle::MAX_SOURCE_FAILURES;
use dagr_engine::Role;

use crate::common::{World, admin_principal, backends};

/// Whether `r` is a throttling refusal that asks to wait about [`LOCKOUT`].
fn throttled<T>(r: &Result<T, LoginError>) -> bool {
    matches!(r, Err(LoginError::Throttled(wait))
        if *wait <= LOCKOUT && *wait + std::time::Duration::from_secs(60) >= LOCKOUT)
}

fn refused<T>(r: &Result<T, LoginError>) -> bool {
    matches!(r, Err(LoginError::Refused))
}

#[tokio::test]
async fn failed_sign_ins_throttle_their_source_never_the_account() {
    for backend in backends().await {
        let w = World::new(&backend).await;
        let gov = &w.state.gov;
        let user = gov
            .create_user(
                &admin_principal(),
                "anna.bank",
                "Anna",
                Some("BANK"),
                UserRole::Consumer,
                "correct horse battery",
            )
            .await
            .unwrap();
        let right = "correct horse battery";
        let (a, b) = ("192.0.2.1", "198.51.100.2");

        let ok = gov.login("anna.bank", right, a).await.unwrap();
        assert_eq!(ok.id, user.id);
        let p = Governance::user_principal(&ok);
        assert_eq!(
            (p.role, p.organisation.as_deref(), p.user.as_deref()),
            (Role::Consumer, Some("BANK"), Some("anna.bank"))
        );
        assert!(refused(
            &gov.login("nobody.here", "whatever it is", a).await
        ));

        // Failures below the limit are plain refusals, and a success resets the count.
        for _ in 0..MAX_FAILED_LOGINS - 1 {
            assert!(refused(&gov.login("anna.bank", "wrong", a).await));
        }
        gov.login("anna.bank", right, a).await.unwrap();
        for _ in 0..MAX_FAILED_LOGINS {
            assert!(refused(&gov.login("anna.bank", "wrong", a).await));
        }
        // The limit throttles that source for that account, even with the right password;
        // the refusal asks to wait and says nothing about the account.
        assert!(throttled(&gov.login("anna.bank", right, a).await));
        assert!(throttled(&gov.login("anna.bank", "wrong", a).await));
        // The account is not locked: the right password from another source signs in, and
        // the throttled source's failures do not count there.
        gov.login("anna.bank", right, b).await.unwrap();
        for _ in 0..MAX_FAILED_LOGINS - 1 {
            assert!(refused(&gov.login("anna.bank", "wrong", b).await));
        }
        gov.login("anna.bank", right, b).await.unwrap();
        // An unknown login is throttled alike (nothing tells accounts apart).
        for _ in 0..MAX_FAILED_LOGINS {
            assert!(refused(&gov.login("nobody.here", "wrong", b).await));
        }
        assert!(throttled(&gov.login("nobody.here", "wrong", b).await));
        gov.login("anna.bank", right, b).await.unwrap();

        // Once the throttle has ended, the right password works from there again.
        let store = gov.store();
        sqlx::query("UPDATE login_throttle SET blocked_until = $1 WHERE blocked_until IS NOT NULL")
            .bind(Time::now().0 - 1)
            .execute(store.pool())
            .await
            .unwrap();
        gov.login("anna.bank", right, a).await.unwrap();

        // Parallel attempts cannot try more than MAX_FAILED_LOGINS passwords: of 12 wrong
        // guesses at once from one source, at most MAX are checked, the others throttled.
        let c = "203.0.113.3";
        let tries = (0..12).map(|_| gov.login("anna.bank", "wrong guess", c));
        let results = futures::future::join_all(tries).await;
        let checked = results.iter().filter(|r| refused(r)).count();
        assert_eq!(checked as i64, MAX_FAILED_LOGINS, "{}", w.backend);
        assert!(results.iter().all(|r| refused(r) || throttled(r)));
        assert!(throttled(&gov.login("anna.bank", right, c).await));
        gov.login("anna.bank", right, b).await.unwrap();

        // One source spraying passwords over many accounts is throttled for all of them.
        let d = "2001:db8:7:7::/64";
        for i in 0..MAX_SOURCE_FAILURES {
            let r = gov.login(&format!("guess{i}"), "wrong", d).await;
            assert!(refused(&r), "{i}");
        }
        let r = gov.login("anna.bank", right, d).await;
        assert!(throttled(&r), "{r:?}");
        gov.login("anna.bank", right, a).await.unwrap();
    }
}

#[tokio::test]
async fn sessions_are_stored_touched_and_ended() {
    for backend in backends().await {
        let w = World::new(&backend).await;
        let store = w.state.gov.store();
        let user = w
            .state
            .gov
            .create_user(
                &admin_principal(),
                "olga.bank",
                "Olga",
                Some("BANK"),
                UserRole::Consumer,
                "another good one",
            )
            .await
            .unwrap();
        let now = Time::now();
        let session = PortalSession {
            user_id: Some(user.id),
            subject_token: None,
            csrf: "c".repeat(64),
            created_at: now,
            last_seen: now,
            expires_at: Time(now.0 + 60_000),
        };
        store
            .create_session(&"a".repeat(64), &session)
            .await
            .unwrap();
        let citizen = PortalSession {
            user_id: None,
            subject_token: Some("f".repeat(64)),
            ..session.clone()
        };
        store
            .create_session(&"b".repeat(64), &citizen)
            .await
            .unwrap();
        assert_eq!(
            store.session(&"a".repeat(64)).await.unwrap(),
            Some(session.clone())
        );
        assert_eq!(store.session(&"b".repeat(64)).await.unwrap(), Some(citizen));
        assert_eq!(store.session(&"0".repeat(64)).await.unwrap(), None);

        let later = Time(now.0 + 30_000);
        store
            .touch_session(&"a".repeat(64), later, Time(later.0 + 60_000))
            .await
            .unwrap();
        let touched = store.session(&"a".repeat(64)).await.unwrap().unwrap();
        assert_eq!(
            (touched.last_seen, touched.expires_at),
            (later, Time(later.0 + 60_000))
        );

        // Dead sessions are swept when a new one is made; live ones stay.
        let dead = PortalSession {
            expires_at: Time(now.0 - 1),
            ..session.clone()
        };
        store.create_session(&"d".repeat(64), &dead).await.unwrap();
        store
            .create_session(&"e".repeat(64), &session)
            .await
            .unwrap();
        assert_eq!(
            store.session(&"d".repeat(64)).await.unwrap(),
            None,
            "{}",
            w.backend
        );
        assert!(store.session(&"a".repeat(64)).await.unwrap().is_some());

        store.delete_session(&"a".repeat(64)).await.unwrap();
        store.delete_session(&"a".repeat(64)).await.unwrap();
        assert_eq!(store.session(&"a".repeat(64)).await.unwrap(), None);
        assert_eq!(
            w.state
                .gov
                .user_by_id(user.id)
                .await
                .unwrap()
                .unwrap()
                .login,
            "olga.bank"
        );
        assert!(
            w.state
                .gov
                .user_by_id(user.id + 1000)
                .await
                .unwrap()
                .is_none()
        );
    }
}

//! Portal sign-in rules (lock-out) and the session store, on every backend.

use dagr_admin_api::Governance;
use dagr_admin_api::governance::{LOCKOUT, LoginError, MAX_FAILED_LOGINS};
use dagr_admin_api::model::{Time, UserRole};
use dagr_admin_api::store::PortalSession;
use dagr_engine::Role;

use crate::common::{World, admin_principal, backends};

#[tokio::test]
async fn sign_in_locks_out_after_repeated_failures() {
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

        let ok = gov
            .login("anna.bank", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(ok.id, user.id);
        let p = Governance::user_principal(&ok);
        assert_eq!(
            (p.role, p.organisation.as_deref(), p.user.as_deref()),
            (Role::Consumer, Some("BANK"), Some("anna.bank"))
        );
        assert!(matches!(
            gov.login("nobody.here", "whatever it is").await,
            Err(LoginError::Refused)
        ));

        // Failures below the limit are plain refusals, and a success resets the count.
        for _ in 0..MAX_FAILED_LOGINS - 1 {
            assert!(matches!(
                gov.login("anna.bank", "wrong").await,
                Err(LoginError::Refused)
            ));
        }
        gov.login("anna.bank", "correct horse battery")
            .await
            .unwrap();
        for _ in 0..MAX_FAILED_LOGINS - 1 {
            assert!(matches!(
                gov.login("anna.bank", "wrong").await,
                Err(LoginError::Refused)
            ));
        }
        // The limit locks the account, for LOCKOUT, even against the right password; the
        // answer is the same refusal as for a wrong password or an unknown login.
        assert!(matches!(
            gov.login("anna.bank", "wrong").await,
            Err(LoginError::Refused)
        ));
        assert!(matches!(
            gov.login("anna.bank", "correct horse battery").await,
            Err(LoginError::Refused)
        ));
        let store = gov.store();
        let locked_until: Option<i64> =
            sqlx::query_scalar("SELECT locked_until FROM users WHERE id = $1")
                .bind(user.id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        let locked_until = locked_until.expect("locked");
        assert!(
            locked_until >= Time::now().0 + LOCKOUT.as_millis() as i64 - 60_000,
            "{}",
            w.backend
        );

        // Once the lock has ended, the right password works and the count starts anew.
        sqlx::query("UPDATE users SET locked_until = $2 WHERE id = $1")
            .bind(user.id)
            .bind(Time::now().0 - 1)
            .execute(store.pool())
            .await
            .unwrap();
        gov.login("anna.bank", "correct horse battery")
            .await
            .unwrap();

        // Parallel attempts cannot try more than MAX_FAILED_LOGINS passwords between locks:
        // of 12 wrong guesses at once, at most MAX are checked, then the account is locked.
        let tries = (0..12).map(|_| gov.login("anna.bank", "wrong guess"));
        let results = futures::future::join_all(tries).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(LoginError::Refused)))
        );
        let (failed, locked): (i64, Option<i64>) =
            sqlx::query_as("SELECT failed_logins, locked_until FROM users WHERE id = $1")
                .bind(user.id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(failed, MAX_FAILED_LOGINS, "{}", w.backend);
        assert!(locked.is_some());
        assert!(matches!(
            gov.login("anna.bank", "correct horse battery").await,
            Err(LoginError::Refused)
        ));
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

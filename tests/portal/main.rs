//! End-to-end tests of the portal: the real `dagr serve`, driven over HTTP as a browser
//! would (forms, cookies, redirects), and in a real browser (Chromium over WebDriver).
#![allow(missing_docs, unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod browser;
mod catalog;
mod flows;
mod map;
mod requests;
mod systems;
mod tapis;
mod tapis_help;
mod usage;
mod webdriver;

use common::Server;
use support::{Browser, demo_password};

/// A fresh server with the demo (small registers).
fn demo_server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 2000, &[]);
    (dir, server)
}

#[tokio::test]
async fn sign_in_sessions_and_csrf() {
    let (_dir, server) = demo_server();
    let mut b = Browser::new(&server.base);

    // Not signed in: the start page offers both ways in; pages send to the sign-in form.
    let start = b.get("/").await;
    assert_eq!(start.status, 200);
    assert!(start.has("/citizen/login"), "{}", start.html);
    let catalog = b.get("/catalog").await;
    assert_eq!(catalog.status, 303);
    assert_eq!(catalog.location.as_deref(), Some("/login?next=%2Fcatalog"));

    // A wrong password is refused with the login kept; the password is not echoed.
    b.get("/login").await;
    let refused = b
        .submit(
            "/login",
            &[("login", "banka.consumer"), ("password", "not-it-at-all")],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.has("value=\"banka.consumer\""));
    assert!(!refused.has("not-it-at-all"));
    assert!(!b.cookies.contains_key("dagr_session"));

    // A sign-in form without its double-submit token is refused.
    let mut other = Browser::new(&server.base);
    let forged = other
        .post_raw(
            "/login",
            &[
                ("csrf", "x"),
                ("login", "banka.consumer"),
                ("password", &demo_password("banka.consumer")),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!other.cookies.contains_key("dagr_session"));

    // The right password signs in: an HttpOnly SameSite cookie, not Secure without TLS.
    b.get("/login").await;
    let csrf = b.csrf.clone().unwrap();
    let ok = b
        .post_raw(
            "/login",
            &[
                ("csrf", &csrf),
                ("login", "banka.consumer"),
                ("password", &demo_password("banka.consumer")),
                ("next", "/catalog"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    assert_eq!(ok.location.as_deref(), Some("/catalog"));
    let set = ok
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("dagr_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"),
        "{set}"
    );

    // Behind an HTTPS proxy the cookie is Secure.
    let mut tls = Browser::new(&server.base);
    tls.get("/login").await;
    let csrf = tls.csrf.clone().unwrap();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", server.base))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("dagr_login_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", "banka.consumer"),
            ("password", &demo_password("banka.consumer")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(set.contains("; Secure"), "{set}");

    // Sign-out needs the session's CSRF token; a form from elsewhere changes nothing.
    let home = b.open("/").await;
    assert_eq!(home.status, 200);
    let forged = b.post_raw("/logout", &[("csrf", "0000")]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.has("The form has expired") || forged.has("Veidlapa ir novecojusi"));
    assert_eq!(b.get("/").await.status, 303, "still signed in");
    let cross = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/logout", server.base))
        .header("origin", "https://evil.example")
        .header(
            "cookie",
            format!("dagr_session={}", b.cookies["dagr_session"]),
        )
        .form(&[("csrf", b.csrf.clone().unwrap().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "a post from another site is refused");
    let session = b.cookies["dagr_session"].clone();
    b.open("/").await;
    let out = b.submit("/logout", &[]).await;
    assert_eq!(out.status, 200);
    assert!(!b.cookies.contains_key("dagr_session"));
    // The old cookie is dead on the server too.
    b.cookies.insert("dagr_session".into(), session);
    assert_eq!(b.get("/catalog").await.status, 303);
    // A made-up session is no session.
    b.cookies.insert("dagr_session".into(), "ab".repeat(32));
    assert_eq!(b.get("/catalog").await.status, 303);
}

#[tokio::test]
async fn repeated_failures_throttle_the_source_not_the_account() {
    let (_dir, server) = demo_server();
    let mut b = Browser::new(&server.base);
    let wrong = |login: &'static str| [("login", login), ("password", "wrong password")];
    for _ in 0..5 {
        b.get("/login").await;
        let p = b.submit("/login", &wrong("pmlp.owner")).await;
        assert_eq!(p.status, 401, "{}", p.html);
    }
    // From this place, even the right password now waits, told how long.
    b.get("/login").await;
    let owner = demo_password("pmlp.owner");
    let still = b
        .submit(
            "/login",
            &[("login", "pmlp.owner"), ("password", owner.as_str())],
        )
        .await;
    assert_eq!(still.status, 429, "{}", still.html);
    let wait: u64 = still.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&wait), "Retry-After {wait}");
    assert!(still.has("Too many failed sign-ins") || still.has("Pārāk daudz"));
    assert!(!b.cookies.contains_key("dagr_session"));
    // Other accounts from here still sign in (until the source's own budget is spent).
    b.sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    // The account is not locked: the owner, from another place, signs in.
    let mut elsewhere = Browser::from_address(&server.base, std::net::Ipv4Addr::new(127, 0, 0, 2));
    elsewhere.sign_in("pmlp.owner", &owner).await;

    // A source trying many accounts (password spraying) is throttled as a whole.
    let mut sprayer = Browser::from_address(&server.base, std::net::Ipv4Addr::new(127, 0, 0, 3));
    let mut statuses = Vec::new();
    for i in 0..25 {
        let login: &'static str = ["a.one", "b.two", "c.three", "d.four", "e.five"][i % 5];
        sprayer.get("/login").await;
        statuses.push(sprayer.submit("/login", &wrong(login)).await.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(statuses[20..], [429; 5], "{statuses:?}");
}

#[tokio::test]
async fn both_languages() {
    let (_dir, server) = demo_server();
    let mut b = Browser::new(&server.base);
    let lv = b.get("/login").await;
    assert!(
        lv.has("<html lang=\"lv\">") && lv.has("Pieslēgšanās"),
        "Latvian by default"
    );
    let switched = b.get("/lang/en?back=%2Flogin").await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location.as_deref(), Some("/login"));
    let en = b.get("/login").await;
    assert!(en.has("<html lang=\"en\">") && en.has("Sign in"));
    // The switch never leads off-site.
    let evil = b.get("/lang/lv?back=%2F%2Fevil.example").await;
    assert_eq!(evil.location.as_deref(), Some("/"));
    // A browser asking for English gets it without a cookie.
    let r = reqwest::Client::new()
        .get(format!("{}/login", server.base))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("<html lang=\"en\">"));

    // A path that is nothing is a readable page in the visitor's language; the API keeps
    // answering its own unknown paths with problem+json.
    let missing = b.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.has("<html lang=\"lv\">") && missing.has("Nav atrasts"),
        "{}",
        missing.html
    );
    let api = reqwest::get(format!("{}/api/v1/no-such-thing", server.base))
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    let health = reqwest::get(format!("{}/api/v1/health", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // A form's action opened as a page leads to the page it belongs to; another method is
    // a readable 405.
    let action = b.get("/requests/7/approve").await;
    assert_eq!(
        (action.status, action.location.as_deref()),
        (303, Some("/requests/7"))
    );
    let r = reqwest::Client::new()
        .delete(format!("{}/catalog", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.headers().contains_key("content-security-policy"));
}

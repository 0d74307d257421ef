//! The portal in a real browser (headless Chromium over WebDriver, see `webdriver.rs`)
//! against the real `dagr serve` with the demo: the main flow from a consumer's request to
//! the citizen seeing the read, sessions and CSRF as a browser enforces them, both
//! languages with a small accessibility check, and (with `DAGR_SCREENSHOTS=DIR`) PNGs of
//! the main pages for people to look at (`scripts/screenshots`).

use serde_json::{Value, json};

use crate::common::{self, credentials};
use crate::support::demo_password;
use crate::webdriver::{Web, browser_or_skip};

/// Problems of the page by a small accessibility check: not exactly one `<h1>`, a visible
/// form field without a `<label>`, and `<html lang>` other than `lang`.
async fn accessibility_problems(web: &Web, lang: &str) -> Vec<String> {
    let found = web
        .client
        .execute(
            r#"
            const problems = [];
            const lang = document.documentElement.getAttribute('lang');
            if (lang !== arguments[0]) problems.push(`<html lang="${lang}">, expected "${arguments[0]}"`);
            const h1 = document.querySelectorAll('h1').length;
            if (h1 !== 1) problems.push(`${h1} <h1> elements`);
            const visible = el => el.getClientRects().length > 0
                && getComputedStyle(el).visibility !== 'hidden';
            for (const el of document.querySelectorAll('input, select, textarea')) {
                const type = (el.getAttribute('type') || '').toLowerCase();
                if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
                if (!visible(el)) continue;
                let label = el.id ? document.querySelector(`label[for="${CSS.escape(el.id)}"]`) : null;
                if (!label) label = el.closest('label');
                if (!label || label.textContent.trim() === '') {
                    problems.push(`<${el.tagName.toLowerCase()} name="${el.name}" id="${el.id}"> has no label`);
                }
            }
            return problems;
            "#,
            vec![json!(lang)],
        )
        .await
        .expect("accessibility check script");
    found
        .as_array()
        .expect("a list of problems")
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Open `path`, check it in `lang`, and take its screenshot as `{lang}-{name}`.
async fn visit(web: &Web, path: &str, lang: &str, name: &str) {
    web.goto(path).await;
    check_page(web, lang, name).await;
}

/// Check the page shown in `lang`, and take its screenshot as `{lang}-{name}`.
async fn check_page(web: &Web, lang: &str, name: &str) {
    let problems = accessibility_problems(web, lang).await;
    assert!(
        problems.is_empty(),
        "{} ({lang}): {}\npage text:\n{}",
        web.path_and_query().await,
        problems.join("; "),
        web.body_text().await
    );
    web.screenshot(&format!("{lang}-{name}")).await;
}

/// Click the language switch and check the page changed to `to`.
async fn switch_language(web: &Web, to: &str) {
    let path = web.path_and_query().await;
    let before = web.body_text().await;
    web.submit("lang-switch").await;
    assert_eq!(
        web.path_and_query().await,
        path,
        "the switch came back to the page"
    );
    assert_eq!(html_lang(web).await, to);
    assert_ne!(
        web.body_text().await,
        before,
        "{path}: the texts changed with the language"
    );
}

async fn html_lang(web: &Web) -> String {
    web.js("return document.documentElement.getAttribute('lang');")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The main navigation's link texts.
async fn nav_texts(web: &Web) -> Vec<String> {
    let v = web
        .js("return Array.from(document.querySelectorAll('.site-nav a')).map(a => a.textContent.trim());")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

async fn h1(web: &Web) -> String {
    web.js("const h = document.querySelector('h1'); return h ? h.textContent.trim() : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn sessions_and_csrf_in_the_browser() {
    let Some(paths) = browser_or_skip("browser::sessions_and_csrf_in_the_browser") else {
        return;
    };
    let (_dir, server) = crate::demo_server();
    let web = Web::start(&paths, &server.base).await;

    // A protected page sends to the sign-in form, and back to it after signing in.
    web.goto("/systems").await;
    assert_eq!(web.path_and_query().await, "/login?next=%2Fsystems");
    web.fill("login", "pmlp.owner").await;
    web.fill("password", &demo_password("pmlp.owner")).await;
    web.submit("submit").await;
    assert_eq!(web.path().await, "/systems");
    assert!(web.has("sign-out").await);

    // The session cookie is out of reach of the page's scripts, and not sent with other
    // sites' forms.
    let cookies = web.client.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "dagr_session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true), "{session:?}");
    assert_eq!(
        format!("{:?}", session.same_site()),
        "Some(Lax)",
        "{session:?}"
    );
    assert_eq!(session.path(), Some("/"));
    let visible = web.js("return document.cookie;").await;
    assert!(
        !visible.as_str().unwrap().contains("dagr_session"),
        "document.cookie shows the session: {visible}"
    );

    // A form whose CSRF token was tampered with is refused with a readable page, and
    // changes nothing.
    web.fill("name", "Viltota sistēma").await;
    web.js("document.querySelector('#system-form input[name=csrf]').value = '0'.repeat(64);")
        .await;
    web.submit("create-system").await;
    let error = web.text("error").await;
    assert!(error.contains("Veidlapa ir novecojusi"), "{error}");
    assert_eq!(h1(&web).await, "Kaut kas nav izdevies");
    web.screenshot("lv-91-error-csrf").await;
    web.goto("/systems").await;
    assert!(web.has("sign-out").await, "still signed in");
    assert!(
        !web.body_text().await.contains("Viltota sistēma"),
        "the refused form registered the system"
    );
    // The same form with its own token works (so the refusal above was the token's).
    web.fill("name", "Īsta sistēma").await;
    web.submit("create-system").await;
    assert!(web.body_text().await.contains("Īsta sistēma"));

    // After signing out, going back to the protected page leads to the sign-in form, not
    // to a copy of the page.
    web.goto("/systems").await;
    web.sign_out().await;
    let cookies = web.client.get_all_cookies().await.unwrap();
    assert!(
        cookies.iter().all(|c| c.name() != "dagr_session"),
        "{cookies:?}"
    );
    web.back().await;
    assert_eq!(web.path_and_query().await, "/login?next=%2Fsystems");
    assert!(!web.has("sign-out").await);
    assert!(!web.body_text().await.contains("Īsta sistēma"));
    web.quit().await;
}

#[tokio::test]
async fn both_languages_in_the_browser() {
    let Some(paths) = browser_or_skip("browser::both_languages_in_the_browser") else {
        return;
    };
    let (dir, server) = crate::demo_server();
    let creds = credentials(dir.path());
    let web = Web::start(&paths, &server.base).await;

    // The check itself sees what it looks for.
    web.goto("/login").await;
    web.js("const main = document.querySelector('main'); \
         const probe = document.createElement('input'); probe.id = 'unlabelled-probe'; \
         main.append(probe); main.append(document.createElement('h1'));")
        .await;
    let problems = accessibility_problems(&web, "en").await;
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("lang=\"lv\""), "{problems:?}");
    assert!(problems[1].contains("2 <h1>"), "{problems:?}");
    assert!(problems[2].contains("unlabelled-probe"), "{problems:?}");

    // Pages for visitors: Latvian first (the browser asks for Latvian), then English.
    for lang in ["lv", "en"] {
        visit(&web, "/", lang, "01-start").await;
        visit(&web, "/login", lang, "02-sign-in").await;
        visit(&web, "/citizen/login", lang, "03-citizen-sign-in").await;
        if lang == "lv" {
            assert_eq!(h1(&web).await, "Iedzīvotāja pieslēgšanās");
            switch_language(&web, "en").await;
            assert_eq!(h1(&web).await, "Citizen sign-in");
        }
    }
    // The choice holds on other pages.
    web.goto("/login").await;
    assert_eq!(html_lang(&web).await, "en");
    assert_eq!(h1(&web).await, "Sign in");
    switch_language(&web, "lv").await;
    assert_eq!(h1(&web).await, "Pieslēgšanās");

    // Signed-in pages of each role, in both languages: the navigation and the headings
    // change with the switch, and the choice holds from page to page.
    let id_of = |list: &str, filter: &dyn Fn(&Value) -> bool, field: &str| -> i64 {
        creds[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| filter(x))
            .and_then(|x| x[field].as_i64())
            .unwrap_or_else(|| panic!("no such entry in the demo's {list}"))
    };
    let banka = |x: &Value| x["consumer_organisation"] == "BANKA";
    let banka_request = id_of("agreements", &banka, "request_id");
    let banka_agreement = id_of("agreements", &banka, "id");
    let banka_system = id_of("systems", &|x| x["organisation"] == "BANKA", "system_id");
    let vzd_pending = id_of(
        "pending_requests",
        &|x| x["dataset"] == "real_estate" || x["dataset"] == "addresses",
        "id",
    );
    let citizen = creds["subjects"][0]["token"].as_str().unwrap().to_owned();
    let roles: Vec<(&str, Vec<(String, &str)>)> = vec![
        (
            "banka.consumer",
            vec![
                ("/catalog".into(), "10-catalog"),
                ("/datasets/persons".into(), "11-dataset"),
                ("/datasets/persons/request".into(), "12-request-form"),
                ("/requests".into(), "13-my-requests"),
                (format!("/requests/{banka_request}"), "14-my-request"),
                ("/agreements".into(), "15-agreements"),
                (format!("/agreements/{banka_agreement}"), "16-agreement"),
                ("/systems".into(), "17-systems"),
                (format!("/systems/{banka_system}"), "18-system"),
                // A page that is not there: a readable error page.
                ("/systems/987654".into(), "90-error-not-found"),
            ],
        ),
        (
            "vzd.owner",
            vec![
                ("/inbox".into(), "20-inbox"),
                (format!("/requests/{vzd_pending}"), "21-request-to-decide"),
            ],
        ),
        (
            "pmlp.owner",
            vec![
                ("/flows".into(), "22-flows"),
                ("/flows/persons".into(), "23-flow"),
                ("/usage".into(), "24-usage"),
                ("/systems".into(), "25-systems-owner"),
            ],
        ),
        (
            "admin",
            vec![
                ("/admin".into(), "30-dashboard"),
                ("/changes".into(), "31-schema-changes"),
                ("/usage".into(), "32-usage-all"),
                ("/systems".into(), "33-systems-admin"),
            ],
        ),
        ("citizen", vec![("/me/usage".into(), "40-citizen-usage")]),
    ];
    for (who, pages) in &roles {
        if *who == "citizen" {
            web.sign_in_citizen(&citizen).await;
        } else {
            web.sign_in(who, &demo_password(who)).await;
        }
        let mut navs = Vec::new();
        let mut headings = Vec::new();
        for lang in ["lv", "en"] {
            for (path, name) in pages {
                visit(&web, path, lang, name).await;
                headings.push(h1(&web).await);
                if name.contains("error") {
                    assert!(web.has("error").await, "{path} shows an error");
                }
            }
            navs.push(nav_texts(&web).await);
            switch_language(&web, if lang == "lv" { "en" } else { "lv" }).await;
        }
        assert!(!navs[0].is_empty(), "{who} has a navigation");
        assert_eq!(navs[0].len(), navs[1].len());
        assert!(
            navs[0].iter().zip(&navs[1]).all(|(lv, en)| lv != en),
            "{who}: every navigation link is translated: {navs:?}"
        );
        // Headings name the page in its language (a dataset's page is named by the
        // dataset, the same in both).
        let (lv, en) = headings.split_at(pages.len());
        let translated = lv.iter().zip(en).filter(|(a, b)| a != b).count();
        assert!(
            translated * 2 > pages.len(),
            "{who}: most headings are translated: {lv:?} / {en:?}"
        );
        web.sign_out().await;
    }
    web.quit().await;
}

/// The organisation, user and system the main flow starts from: made by the demo admin
/// over the REST API, so that no demo agreement covers them.
const ORG: &str = "PARLUKS";
const ORG_NAME: &str = "SIA Pārlūka tests";
const CONSUMER: &str = "parluks.consumer";
const CONSUMER_PASSWORD: &str = "parluks-consumer-password-2026";
const SYSTEM: &str = "Klientu apkalpošanas sistēma";
/// What the consumer declares when reading (the REST header is ASCII).
const READ_PURPOSE: &str = "browser test: checking a resident's municipality";

async fn admin_post(base: &str, admin: &str, path: &str, body: Value) -> Value {
    let (status, _, answer) = common::post_auth(&format!("{base}{path}"), admin, &body).await;
    assert_eq!(status, 201, "POST {path} {body}: {answer}");
    answer
}

/// GET a record with a system token and a declared purpose: (status, JSON body).
async fn read_record(base: &str, token: &str, code: &str) -> (u16, Value) {
    let (status, _, body) = common::send(
        reqwest::Client::new()
            .get(format!("{base}/api/v1/datasets/persons/records/{code}"))
            .bearer_auth(token)
            .header("x-dagr-purpose", READ_PURPOSE),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn request_approve_read_and_see_it_in_the_browser() {
    let Some(paths) = browser_or_skip("browser::request_approve_read_and_see_it_in_the_browser")
    else {
        return;
    };
    let (dir, server) = crate::demo_server();
    let base = server.base.clone();
    let creds = credentials(dir.path());
    let admin = creds["admin"]["token"].as_str().unwrap();

    // A consumer organisation of its own, with a person and a system.
    admin_post(
        &base,
        admin,
        "/api/v1/organisations",
        json!({ "code": ORG, "name": ORG_NAME }),
    )
    .await;
    // A person of an organisation is made on the server, never by an API admin.
    common::create_user(
        dir.path(),
        CONSUMER,
        "Testa Lietotājs",
        ORG,
        "consumer",
        CONSUMER_PASSWORD,
    );
    let system = admin_post(
        &base,
        admin,
        "/api/v1/systems",
        json!({ "organisation": ORG, "name": SYSTEM, "kind": "consumer" }),
    )
    .await;
    let system_id = system["id"].as_i64().expect("the system's id");

    // Citizens of the demo, by where they live (the register's owner reads its own data).
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    let mut riga = None;
    let mut elsewhere = None;
    for s in creds["subjects"].as_array().unwrap() {
        let code = s["personal_code"].as_str().unwrap().to_owned();
        let (status, _, body) = common::get_auth(
            &format!("{base}/api/v1/datasets/persons/records/{code}"),
            &pmlp,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let token = s["token"].as_str().unwrap().to_owned();
        if body["record"]["municipality"] == "Rīga" {
            riga.get_or_insert((code, token));
        } else {
            elsewhere.get_or_insert(code);
        }
    }
    let (riga_code, riga_token) = riga.expect("a demo subject living in Rīga");
    let elsewhere_code = elsewhere.expect("a demo subject living outside Rīga");

    let web = Web::start(&paths, &base).await;

    // The consumer signs in and issues the system's token (shown once).
    web.sign_in(CONSUMER, CONSUMER_PASSWORD).await;
    web.goto(&format!("/systems/{system_id}")).await;
    web.submit("create-token").await;
    let token = web.text("new-token").await.trim().to_owned();
    assert!(token.starts_with("dagr_"), "{token}");
    web.screenshot("flow-01-token-shown-once").await;
    // Without an agreement the token reads nothing of the register.
    let (status, body) = read_record(&base, &token, &riga_code).await;
    assert_eq!(status, 403, "{body}");

    // The request: two attributes (the key among them: records are looked up by it),
    // purpose, legal basis, the system.
    web.goto("/datasets/persons/request").await;
    web.check("attr-personal_code").await;
    web.check("attr-municipality").await;
    web.fill("purpose", "Klientu dzīvesvietas pašvaldības pārbaude")
        .await;
    web.fill("legal_basis", "Klientu apkalpošanas līgums, 4. punkts")
        .await;
    web.check(&format!("system-{system_id}")).await;
    let deadline = web.text("sla-deadline").await;
    assert!(
        deadline.chars().any(|c| c.is_ascii_digit()),
        "the deadline is a date: {deadline:?}"
    );
    web.screenshot("flow-02-request-form").await;
    web.submit("submit-request").await;
    let path = web.path().await;
    let Some(request_id) = path.strip_prefix("/requests/").map(str::to_owned) else {
        panic!(
            "landed on {path}, not on the request:\n{}",
            web.body_text().await
        )
    };
    assert!(request_id.parse::<i64>().is_ok(), "{path}");
    assert_eq!(web.text("request-status").await, "gaida lēmumu");
    let asked = web.text("request-attributes").await;
    assert!(
        asked.contains("personal_code") && asked.contains("municipality"),
        "{asked}"
    );
    web.screenshot("flow-03-my-request").await;
    web.sign_out().await;

    // The owner finds it in the inbox and approves it for residents of Rīga only.
    web.sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;
    assert_eq!(web.path().await, "/inbox");
    let row = web.text(&format!("request-{request_id}")).await;
    assert!(row.contains(ORG), "{row}");
    web.screenshot("flow-04-inbox").await;
    web.follow(&format!("#request-{request_id} a")).await;
    assert_eq!(web.path().await, format!("/requests/{request_id}"));
    assert!(web.is_checked("approve-attr-personal_code").await);
    assert!(web.is_checked("approve-attr-municipality").await);
    web.fill("approve-row-scope", "municipality = 'Rīga'").await;
    web.screenshot("flow-05-request-to-decide").await;
    web.submit("approve").await;
    assert_eq!(web.path().await, format!("/requests/{request_id}"));
    assert_eq!(web.text("request-status").await, "apstiprināts");
    assert!(
        web.text("granted-row-scope")
            .await
            .contains("municipality = 'Rīga'")
    );
    web.screenshot("flow-06-approved").await;
    web.submit("agreement-link").await;
    assert!(web.path().await.starts_with("/agreements/"));
    let granted = web.text("agreement-attributes").await;
    assert!(
        granted.contains("personal_code") && granted.contains("municipality"),
        "{granted}"
    );
    web.screenshot("flow-07-agreement").await;
    web.sign_out().await;

    // The system reads a resident of Rīga: exactly the two attributes; nobody else.
    let (status, body) = read_record(&base, &token, &riga_code).await;
    assert_eq!(status, 200, "{body}");
    let mut fields: Vec<&str> = body["record"]
        .as_object()
        .expect("a record")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["municipality", "personal_code"], "{body}");
    assert_eq!(body["record"]["personal_code"], riga_code.as_str());
    assert_eq!(body["record"]["municipality"], "Rīga");
    let (status, body) = read_record(&base, &token, &elsewhere_code).await;
    assert_eq!(status, 404, "a resident elsewhere is not visible: {body}");

    // The citizen sees who read their data, and why.
    web.sign_in_citizen(&riga_token).await;
    assert_eq!(web.path().await, "/me/usage");
    let usage = web.text("usage-records").await;
    assert!(usage.contains(ORG), "{usage}");
    assert!(usage.contains(READ_PURPOSE), "{usage}");
    assert!(usage.contains(SYSTEM), "{usage}");
    web.screenshot("flow-08-citizen-usage").await;
    web.sign_out().await;
    web.quit().await;
}

//! MAP, grant management, in a real browser (headless Chromium over WebDriver, see
//! `webdriver.rs`) against the real `dagr serve` with the demo: an applicant files and
//! submits an application for their company; the programme manager finds it among the
//! submitted ones, accepts it and assigns an evaluator; the evaluator declares and scores;
//! the approver grants; the applicant sees the decision and the history. And the pages in
//! English.

use serde_json::{Value, json};

use crate::common::{credentials, post_auth};
use crate::support::demo_password;
use crate::webdriver::{Web, browser_or_skip};

/// `map.{group}[i].{field}` of the demo credentials.
fn cred(creds: &Value, group: &str, i: usize, field: &str) -> String {
    creds["map"][group][i][field]
        .as_str()
        .unwrap_or_else(|| panic!("no map.{group}[{i}].{field} in the demo credentials"))
        .to_owned()
}

/// The status the application page shows (its machine name).
async fn status_of(web: &Web) -> String {
    web.js(
        "const s = document.querySelector('#app-status .tag'); return s ? s.dataset.status : '';",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The ids of the rows of the application list, top to bottom.
async fn ids(web: &Web) -> Vec<i64> {
    let v = web
        .js("return Array.from(document.querySelectorAll('#applications tbody tr')).map(r => Number(r.id.slice(4)));")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect()
}

/// The notice of a form that succeeded.
async fn notice(web: &Web) -> String {
    web.wait_for("notice").await;
    web.text("notice").await
}

/// Set a `<select>` to `value` (as a person choosing an option).
async fn choose(web: &Web, id: &str, value: &str) {
    let chosen = web
        .client
        .execute(
            "const s = document.getElementById(arguments[0]); s.value = arguments[1]; return s.value;",
            vec![json!(id), json!(value)],
        )
        .await
        .unwrap();
    assert_eq!(chosen, json!(value), "#{id} has no option {value}");
}

#[tokio::test]
async fn a_grant_from_application_to_approval_in_the_browser() {
    let Some(paths) = browser_or_skip("map::a_grant_from_application_to_approval_in_the_browser")
    else {
        return;
    };
    let (dir, server) = crate::demo_server();
    let creds = credentials(dir.path());
    assert!(
        creds["map"].is_object(),
        "the demo has MAP: {}",
        creds["map"]
    );
    let pm_token = cred(&creds, "programme_managers", 0, "token");
    let (pm, pm_password) = (
        cred(&creds, "programme_managers", 0, "login"),
        cred(&creds, "programme_managers", 0, "password"),
    );
    let (evaluator, evaluator_password) = (
        cred(&creds, "evaluators", 1, "login"),
        cred(&creds, "evaluators", 1, "password"),
    );
    let (approver, approver_password) = (
        cred(&creds, "approvers", 0, "login"),
        cred(&creds, "approvers", 0, "password"),
    );
    let applicant = cred(&creds, "applicants", 0, "token");
    let company = creds["map"]["applicants"][0]["companies"][0]
        .as_str()
        .unwrap()
        .to_owned();

    // A programme scored by one evaluator (programmes are made over REST; the portal has
    // no programme form yet).
    let (status, _, p) = post_auth(
        &format!("{}/api/v1/map/programmes", server.base),
        &pm_token,
        &json!({
            "title": "Portāla pārbaudes programma", "budget": 500000, "max_grant": 50000,
            "opens_at": "2020-01-01", "closes_at": "2099-12-31", "aid_regime": "de_minimis",
            "eligibility": [{"name": "active", "predicate": "status = 'active'"}],
            "criteria": [{"code": "quality", "weight": 2, "max": 10}, {"code": "value", "weight": 1, "max": 5}],
            "evaluators_per_application": 1,
        }),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let programme = p["id"].as_i64().unwrap().to_string();

    let web = Web::start(&paths, &server.base).await;

    // --- The applicant files a draft for their company and submits it. ---
    web.sign_in_citizen(&applicant).await;
    web.follow(".site-nav a[href='/map']").await;
    assert_eq!(web.path().await, "/map");
    assert!(web.has("help").await && web.has("file-form").await);
    assert!(web.has(&format!("programme-{programme}")).await);
    web.screenshot("lv-map-applicant").await;
    choose(&web, "file-programme", &programme).await;
    web.fill("file-registration-number", &company).await;
    web.fill("file-title-input", "Ražotnes digitalizācija")
        .await;
    web.fill("file-amount", "40 000").await;
    web.submit("file-submit").await;
    let path = web.path().await;
    let page = web.body_text().await;
    let id: i64 = path
        .strip_prefix("/map/applications/")
        .unwrap_or_else(|| panic!("not on the application: {path}\n{page}"))
        .parse()
        .unwrap();
    assert!(!notice(&web).await.is_empty());
    assert_eq!(status_of(&web).await, "draft");
    web.screenshot("lv-map-draft").await;
    assert!(web.text("app-company").await.contains(&company));
    assert!(web.text("app-requested").await.contains("40000.00"));
    // Pre-fill and the right to represent were register reads, with access records.
    let evidence = web.text("evidence").await;
    assert!(
        evidence.contains("represent") && evidence.contains("prefill"),
        "{evidence}"
    );
    web.submit("submit-application").await;
    assert_eq!(status_of(&web).await, "submitted");
    assert!(!web.has("submit-application").await);
    web.sign_out().await;

    // --- The programme manager finds it among the submitted ones and accepts it. ---
    web.sign_in(&pm, &pm_password).await;
    web.goto("/map").await;
    assert!(web.has("map-filter").await && web.has("help").await);
    choose(&web, "filter-status", "submitted").await;
    web.submit("filter-submit").await;
    assert!(
        web.path_and_query().await.contains("status=submitted"),
        "{}",
        web.path_and_query().await
    );
    assert!(web.has("count-line").await);
    web.screenshot("lv-map-staff-list").await;
    assert!(
        web.has(&format!("app-{id}")).await,
        "{}",
        web.body_text().await
    );
    let statuses = web
        .js("return Array.from(document.querySelectorAll('#applications tbody .tag')).map(t => t.className);")
        .await;
    assert!(
        statuses
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.as_str().unwrap().contains("submitted")),
        "{statuses}"
    );
    // The 2 000 seeded applications: 100 a page, newest first, the next page older.
    let seeded = creds["map"]["programmes"]["seeded"].as_i64().unwrap();
    web.goto(&format!("/map?programme={seeded}")).await;
    let first = ids(&web).await;
    assert_eq!(first.len(), 100);
    assert!(first.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(web.text("count-line").await.contains("100"));
    web.submit("next-page").await;
    let second = ids(&web).await;
    assert_eq!(second.len(), 100);
    assert!(second[0] < *first.last().unwrap(), "the next page is older");
    web.goto("/map?status=submitted").await;

    web.submit(&format!("open-{id}")).await;
    assert_eq!(status_of(&web).await, "submitted");
    web.submit("accept").await;
    assert_eq!(status_of(&web).await, "complete");
    // The programme manager sees who opened the application and what was read.
    assert!(web.has("access-log").await);

    // A refusal is the service's message, and nothing changes: an unknown evaluator.
    web.fill("assign-evaluator", "nobody.here").await;
    web.submit("assign").await;
    assert!(web.text("error").await.contains("nobody.here"));
    assert_eq!(status_of(&web).await, "complete");
    assert_eq!(
        web.attr("assign-evaluator", "value").await.as_deref(),
        Some("nobody.here")
    );

    web.fill("assign-evaluator", &evaluator).await;
    web.submit("assign").await;
    assert_eq!(status_of(&web).await, "in_evaluation");
    assert!(web.text("app-evaluators").await.contains(&evaluator));
    web.sign_out().await;

    // --- The evaluator must declare before opening it, then scores. ---
    web.sign_in(&evaluator, &evaluator_password).await;
    web.goto("/map").await;
    assert!(web.has(&format!("app-{id}")).await);
    web.submit(&format!("open-{id}")).await;
    assert!(
        web.text("declare-first-message").await.contains("declare"),
        "the service's 409 message"
    );
    web.screenshot("lv-map-declare").await;
    assert!(
        !web.has("app-status").await,
        "nothing shown before declaring"
    );
    web.submit("declare-none").await;
    assert_eq!(status_of(&web).await, "in_evaluation");
    web.fill("point-quality", "8").await;
    web.fill("point-value", "4").await;
    web.fill("score-justification", "Skaidrs plāns, pamatotas izmaksas.")
        .await;
    web.submit("score-submit").await;
    assert_eq!(status_of(&web).await, "evaluated");
    assert!(web.text("scores").await.contains("quality: 8"));
    web.sign_out().await;

    // --- The approver grants an amount with a reason. ---
    web.sign_in(&approver, &approver_password).await;
    web.goto(&format!("/map/applications/{id}")).await;
    assert_eq!(status_of(&web).await, "evaluated");
    web.fill("approve-amount", "35000").await;
    web.fill("approve-reason", "Atbilst programmas mērķiem.")
        .await;
    web.submit("approve").await;
    assert_eq!(status_of(&web).await, "approved");
    assert!(web.text("app-granted").await.contains("35000.00"));
    web.sign_out().await;

    // --- The applicant sees the decision and the history. ---
    web.sign_in_citizen(&applicant).await;
    web.goto("/map").await;
    assert!(web.text(&format!("app-{id}")).await.contains("35000.00"));
    web.submit(&format!("open-{id}")).await;
    assert_eq!(status_of(&web).await, "approved");
    let history = web.text("history").await;
    for action in [
        "create", "submit", "accept", "assign", "declare", "score", "approve",
    ] {
        assert!(
            history.contains(action),
            "{action} not in the history:\n{history}"
        );
    }
    assert!(history.contains("Atbilst programmas mērķiem."), "{history}");
    web.screenshot("lv-map-approved").await;
    assert!(
        !history.contains(&approver),
        "staff logins are not shown to the applicant"
    );

    // --- English: the switch shows the MAP page in English. ---
    web.goto("/map").await;
    assert!(web.body_text().await.contains("Granti"));
    web.submit("lang-switch").await;
    assert_eq!(web.path().await, "/map");
    let text = web.body_text().await;
    assert!(
        text.contains("Grants")
            && text.contains("How it works")
            && text.contains("New application"),
        "{text}"
    );
    web.screenshot("en-map-applicant").await;
    web.sign_out().await;

    // --- Someone MAP does not serve reads why, in the portal's frame. ---
    web.sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    web.follow(".site-nav a[href='/map']").await;
    assert!(web.has("no-map").await, "{}", web.body_text().await);
    web.screenshot("lv-map-not-served").await;
    assert!(!web.text("no-map-reason").await.is_empty());
    assert!(!web.has("file-form").await && !web.has("applications").await);
    web.quit().await;
}

//! MAP, grant management, in a real browser (headless Chromium over WebDriver, see
//! `webdriver.rs`) against the real `dagr serve` with the demo: a programme manager makes a
//! programme and changes its scoresheet; an applicant files, edits and submits an
//! application for their company; the programme manager accepts it and assigns an
//! evaluator from the picker (a conflicted one is refused); the evaluator declares and
//! scores; the approver decides it with another one from the ranking, in bulk, and sees
//! each outcome; the programme manager signs the contract, replays the application as it
//! was, downloads the accounting export and reads the reports due; the applicant files a
//! report with an invoice. And the pages in English.

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

/// Set a form field to `value` as a person choosing an option or a date does (a
/// `<select>`, `<input type=date>`, `<input type=datetime-local>`).
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

/// What the link with `id` answers when the browser fetches it (with the session):
/// status, content type, content disposition and body.
async fn fetch(web: &Web, id: &str) -> (u16, String, String, String) {
    let v = web
        .client
        .execute(
            "const href = document.getElementById(arguments[0]).getAttribute('href'); \
             return fetch(href, {credentials: 'same-origin'}).then(r => r.text().then(body => \
                 [r.status, r.headers.get('content-type') || '', \
                  r.headers.get('content-disposition') || '', body]));",
            vec![json!(id)],
        )
        .await
        .unwrap();
    (
        v[0].as_u64().unwrap() as u16,
        v[1].as_str().unwrap().to_owned(),
        v[2].as_str().unwrap().to_owned(),
        v[3].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_grant_from_programme_to_report_in_the_browser() {
    let Some(paths) = browser_or_skip("map::a_grant_from_programme_to_report_in_the_browser")
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
    // The first evaluator is an official of the first applicant's first company.
    let conflicted = cred(&creds, "evaluators", 0, "login");
    let (evaluator, evaluator_password) = (
        cred(&creds, "evaluators", 1, "login"),
        cred(&creds, "evaluators", 1, "password"),
    );
    let evaluator_token = cred(&creds, "evaluators", 1, "token");
    let (approver, approver_password) = (
        cred(&creds, "approvers", 0, "login"),
        cred(&creds, "approvers", 0, "password"),
    );
    let applicant = cred(&creds, "applicants", 0, "token");
    let company = creds["map"]["applicants"][0]["companies"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let other_applicant = cred(&creds, "applicants", 1, "token");
    let other_company = creds["map"]["applicants"][1]["companies"][0]
        .as_str()
        .unwrap()
        .to_owned();

    let web = Web::start(&paths, &server.base).await;

    // --- The programme manager makes a programme in the browser. ---
    web.sign_in(&pm, &pm_password).await;
    web.goto("/map").await;
    assert!(web.has("map-tools").await, "{}", web.body_text().await);
    web.submit("new-programme").await;
    assert_eq!(web.path().await, "/map/programmes/new");
    web.fill("p-title", "Portāla pārbaudes programma").await;
    web.fill("p-budget", "500 000").await;
    // A largest grant above the budget is the service's refusal, the form kept.
    web.fill("p-max-grant", "600000").await;
    web.fill("p-evaluators", "1").await;
    assert_eq!(
        web.attr("cond-predicate-0", "value").await.as_deref(),
        Some("status = 'active'"),
        "an eligibility condition to start from"
    );
    web.fill("crit-code-0", "quality").await;
    web.fill("crit-weight-0", "2").await;
    web.fill("crit-max-0", "10").await;
    web.fill("crit-code-1", "value").await;
    web.fill("crit-weight-1", "1").await;
    web.fill("crit-max-1", "5").await;
    choose(&web, "rep-kind-0", "interim").await;
    web.fill("rep-months-0", "6").await;
    web.screenshot("lv-map-programme-new").await;
    web.submit("programme-submit").await;
    assert!(
        web.text("error").await.contains("max_grant"),
        "{}",
        web.body_text().await
    );
    assert_eq!(web.path().await, "/map/programmes/new");
    assert_eq!(
        web.attr("p-title", "value").await.as_deref(),
        Some("Portāla pārbaudes programma")
    );
    assert_eq!(
        web.attr("crit-code-1", "value").await.as_deref(),
        Some("value")
    );
    web.fill("p-max-grant", "50000").await;
    web.submit("programme-submit").await;
    let path = web.path().await;
    let page = web.body_text().await;
    let programme = path
        .strip_prefix("/map/programmes/")
        .unwrap_or_else(|| panic!("not on the programme: {path}\n{page}"))
        .to_owned();
    assert!(!notice(&web).await.is_empty());
    assert_eq!(
        web.text("programme-title").await,
        "Portāla pārbaudes programma"
    );
    assert!(web.text("budget-total").await.contains("500000.00"));
    assert!(web.text("budget-remaining").await.contains("500000.00"));
    assert!(web.text("budget-committed").await.contains("0.00"));
    assert!(web.text("scoresheet").await.contains("quality"));
    web.screenshot("lv-map-programme").await;
    // The scoresheet form: nothing is scored yet, so the version is replaced.
    web.fill("crit-weight-1", "1,5").await;
    web.submit("scoresheet-submit").await;
    assert!(!notice(&web).await.is_empty());
    assert!(
        web.text("scoresheet").await.contains("1.5"),
        "{}",
        web.text("scoresheet").await
    );
    // It is on the list of programmes.
    web.goto("/map").await;
    assert!(web.has(&format!("programme-link-{programme}")).await);
    web.sign_out().await;

    // --- The applicant files a draft for their company, edits it and submits it. ---
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
    web.fill("file-amount", "30 000").await;
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
    // The draft is edited in its own form.
    web.fill("edit-title-input", "Ražotnes digitalizācija un apmācības")
        .await;
    web.fill("edit-amount", "40 000").await;
    web.submit("edit-submit").await;
    assert!(!notice(&web).await.is_empty());
    assert_eq!(
        web.text("app-title").await,
        "Ražotnes digitalizācija un apmācības"
    );
    assert!(web.text("app-requested").await.contains("40000.00"));
    // The undertaking's aid against each regime's ceiling.
    assert!(
        web.text("aid-totals").await.contains("de_minimis"),
        "{}",
        web.text("aid").await
    );
    // Pre-fill and the right to represent were register reads, with access records.
    let evidence = web.text("evidence").await;
    assert!(
        evidence.contains("represent") && evidence.contains("prefill"),
        "{evidence}"
    );
    assert!(!web.has("as-of-form").await, "the replay is for staff");
    web.submit("submit-application").await;
    assert_eq!(status_of(&web).await, "submitted");
    assert!(!web.has("submit-application").await && !web.has("edit-form").await);
    web.sign_out().await;

    // A second application, evaluated over REST, for the decisions in bulk.
    let api = |path: &str| format!("{}/api/v1/map{path}", server.base);
    let (status, _, other) = post_auth(
        &api("/applications"),
        &other_applicant,
        &json!({"programme": programme.parse::<i64>().unwrap(), "registration_number": other_company,
                "title": "Eksporta tirgus izpēte", "requested_amount": 45000}),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    let other = other["id"].as_i64().unwrap();
    for (token, path, body) in [
        (
            &other_applicant,
            format!("/applications/{other}/submit"),
            json!({}),
        ),
        (
            &pm_token,
            format!("/applications/{other}/transitions"),
            json!({"action": "accept"}),
        ),
        (
            &pm_token,
            format!("/applications/{other}/transitions"),
            json!({"action": "assign", "evaluator": evaluator}),
        ),
        (
            &evaluator_token,
            format!("/applications/{other}/transitions"),
            json!({"action": "declare", "conflict": false}),
        ),
        (
            &evaluator_token,
            format!("/applications/{other}/transitions"),
            json!({"action": "score", "points": {"quality": 5, "value": 2}, "justification": "Vidēji."}),
        ),
    ] {
        let (status, _, body) = post_auth(&api(&path), token, &body).await;
        assert_eq!(status, 200, "{path}: {body}");
    }

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

    // The evaluator is picked from the grantor's evaluators. A conflicted one is the
    // service's refusal, and nothing changes.
    let options = web
        .js("return Array.from(document.querySelectorAll('#assign-evaluator option')).map(o => o.value);")
        .await;
    for login in [&conflicted, &evaluator] {
        assert!(
            options
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == login.as_str()),
            "{login} in {options}"
        );
    }
    choose(&web, "assign-evaluator", &conflicted).await;
    web.submit("assign").await;
    let refusal = web.text("error").await;
    assert!(
        refusal.contains("conflict") && refusal.contains(&conflicted),
        "{refusal}"
    );
    assert_eq!(status_of(&web).await, "complete");
    let kept = web
        .js("return document.getElementById('assign-evaluator').value;")
        .await;
    assert_eq!(kept, json!(conflicted), "the choice is kept");
    choose(&web, "assign-evaluator", &evaluator).await;
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

    // --- The approver decides both from the ranking, in bulk, and sees each outcome. ---
    web.sign_in(&approver, &approver_password).await;
    web.goto("/map").await;
    web.submit(&format!("ranking-link-{programme}")).await;
    assert_eq!(
        web.path().await,
        format!("/map/programmes/{programme}/ranking")
    );
    let ranked = web
        .js("return Array.from(document.querySelectorAll('#ranking tbody tr')).map(r => r.id);")
        .await;
    assert_eq!(
        ranked,
        json!([format!("rank-{id}"), format!("rank-{other}")]),
        "best first"
    );
    choose(&web, &format!("decision-{id}"), "approve").await;
    web.fill(&format!("amount-{id}"), "35000").await;
    // More than the largest grant: refused, the other decision taken all the same.
    choose(&web, &format!("decision-{other}"), "approve").await;
    web.fill(&format!("amount-{other}"), "60000").await;
    web.fill("bulk-reason", "Atbilst programmas mērķiem.").await;
    web.screenshot("lv-map-ranking").await;
    web.submit("decide-submit").await;
    assert!(
        web.text("outcomes-count").await.contains("1 / 2"),
        "{}",
        web.body_text().await
    );
    assert_eq!(
        web.attr(&format!("outcome-{id}"), "data-decided")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        web.attr(&format!("outcome-{other}"), "data-decided")
            .await
            .as_deref(),
        Some("false")
    );
    let refused = web.text(&format!("outcome-{other}")).await;
    assert!(
        refused.contains("422") && refused.contains("maximum grant"),
        "{refused}"
    );
    assert!(
        web.text(&format!("outcome-{id}"))
            .await
            .contains("apstiprināts")
    );
    web.screenshot("lv-map-outcomes").await;
    assert!(
        !web.has(&format!("rank-{id}")).await,
        "decided: off the ranking"
    );
    assert!(web.has(&format!("rank-{other}")).await);
    web.goto(&format!("/map/applications/{id}")).await;
    assert_eq!(status_of(&web).await, "approved");
    assert!(web.text("app-granted").await.contains("35000.00"));
    web.sign_out().await;

    // --- The programme manager signs the contract and replays the application. ---
    web.sign_in(&pm, &pm_password).await;
    web.goto(&format!("/map/applications/{id}")).await;
    web.submit("contract").await;
    assert_eq!(status_of(&web).await, "contracted");
    web.follow("#history tr[data-action='submit'] a.as-of-link")
        .await;
    assert_eq!(status_of(&web).await, "submitted", "as it was after submit");
    assert!(web.has("as-of-banner").await);
    assert!(
        !web.has("close").await && !web.has("terminate").await,
        "a replay is read-only"
    );
    assert!(!web.text("app-granted").await.contains("35000"));
    web.screenshot("lv-map-as-of").await;
    web.submit("as-of-now").await;
    assert_eq!(status_of(&web).await, "contracted");
    // A time before the application existed is the service's refusal, shown on the page.
    choose(&web, "as-of-field", "2020-01-01T12:00:30").await;
    web.submit("as-of-submit").await;
    assert!(
        web.text("error").await.contains("did not exist"),
        "{}",
        web.body_text().await
    );
    assert_eq!(status_of(&web).await, "contracted");
    // The programme's budget shows what was committed.
    web.goto(&format!("/map/programmes/{programme}")).await;
    assert!(web.text("budget-committed").await.contains("35000.00"));
    assert!(web.text("budget-remaining").await.contains("465000.00"));

    // Exports: the ledger of the period as CSV and JSON, downloads served by the portal.
    web.goto("/map").await;
    web.submit("exports-link").await;
    assert_eq!(web.path().await, "/map/exports");
    let (status, content_type, disposition, body) = fetch(&web, "export-accounting-csv").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(
        disposition.starts_with("attachment; filename=\"map-accounting-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(
        body.starts_with("entry,programme,application,kind,amount,at,reference\n"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.contains(&format!(",{programme},{id},commitment,35000"))),
        "{body}"
    );
    let (status, content_type, disposition, body) = fetch(&web, "export-accounting-json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    assert!(disposition.ends_with(".json\""), "{disposition}");
    let rows: Value = serde_json::from_str(&body).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["application"] == json!(id) && r["kind"] == "commitment"),
        "{rows}"
    );
    // A period that is no date is refused on the page.
    web.goto("/map/exports/payments.csv?from=yesterday").await;
    assert!(web.has("error").await && web.has("period-form").await);
    web.screenshot("lv-map-exports").await;

    // Reports due: the interim report falls due six months after the contract.
    web.goto("/map").await;
    web.submit("due-link").await;
    assert_eq!(web.path().await, "/map/reports/due");
    assert!(web.has("help").await);
    assert!(!web.has(&format!("due-{id}-0")).await, "not within 30 days");
    web.fill("within-days", "366").await;
    web.submit("due-submit").await;
    assert!(
        web.text(&format!("due-{id}-0"))
            .await
            .contains("starpposma"),
        "{}",
        web.body_text().await
    );
    web.screenshot("lv-map-due").await;
    // The browser keeps the field within 0–366; the page refuses what it is sent anyway.
    web.goto("/map/reports/due?within_days=1000").await;
    assert!(web.text("error").await.contains("within_days"));
    web.sign_out().await;

    // --- The applicant sees the contract, and files a report with an invoice. ---
    web.sign_in_citizen(&applicant).await;
    web.goto("/map").await;
    assert!(web.text(&format!("app-{id}")).await.contains("35000.00"));
    web.submit(&format!("open-{id}")).await;
    assert_eq!(status_of(&web).await, "contracted");
    let history = web.text("history").await;
    for action in [
        "create", "submit", "accept", "assign", "declare", "score", "approve", "contract",
    ] {
        assert!(
            history.contains(action),
            "{action} not in the history:\n{history}"
        );
    }
    assert!(history.contains("Atbilst programmas mērķiem."), "{history}");
    web.screenshot("lv-map-contracted").await;
    assert!(
        !history.contains(&approver),
        "staff logins are not shown to the applicant"
    );
    assert!(web.has("cost-supplier-4").await, "five invoice lines");
    web.submit("more-cost-lines").await;
    assert!(web.has("cost-supplier-9").await, "five more");
    web.fill("report-costs", "1200").await;
    web.fill("report-text", "Iegādāta iekārta.").await;
    web.fill("cost-supplier-0", &other_company).await;
    web.fill("cost-invoice-0", "R-2026/17").await;
    web.fill("cost-amount-0", "1200").await;
    web.submit("report-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert!(web.text("reports").await.contains("1200.00"));
    web.goto("/map/reports/due?within_days=366").await;
    assert!(web.has("no-due").await, "the interim report was filed");

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

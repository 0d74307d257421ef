//! TAPIS, territorial planning, in a real browser (headless Chromium over WebDriver, see
//! `webdriver.rs`) against the real `dagr serve` with the demo: a detailed plan from
//! initiation to in force. The planner creates it, draws its territory (a bad geometry
//! refused with the reason, the form kept), moves it through its stages, asks an
//! institution for conditions and extends the due date; the institution answers through
//! the link of its e-mail (taken from the admin's outbox) without an account, once; the
//! planner adds a version and schedules a consultation; a citizen pins a comment on the
//! SVG map by clicking it and follows the receipt, and draws another's area by clicking
//! its corners; the planner keeps a standard answer (a bad code refused, the form kept);
//! the consultation closes by itself; approval is refused while the comments are
//! unanswered; the planner tags one and answers it, splits the other into verbatim parts
//! (a part that is no piece of the text refused) and answers them, one with the standard
//! answer, downloads the report, approves and puts the plan in force; the citizen finds
//! "your comment has an answer" in their messages and follows it to the receipt. And the
//! public list, in English.
//!
//! REST is used for what the portal does not offer: the admin's rules patch (a
//! consultation of under a minute) and outbox.

use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use serde_json::{Value, json};

use crate::common::{credentials, get_auth, send};
use crate::webdriver::{Web, browser_or_skip};

/// The demo's `tapis.planner.{field}`.
fn planner(creds: &Value, field: &str) -> String {
    creds["tapis"]["planner"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no tapis.planner.{field} in the demo credentials"))
        .to_owned()
}

/// Set a `<select>` (or date field) to `value` as a person choosing it does.
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

/// Click the element with `id` at each offset (pixels from its centre), as a mouse does.
async fn click_at(web: &Web, id: &str, offsets: &[(f64, f64)]) {
    web.client
        .execute(
            "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});",
            vec![json!(id)],
        )
        .await
        .unwrap();
    let element = web.el(id).await;
    let mut mouse = MouseActions::new("mouse".into());
    for &(x, y) in offsets {
        mouse = mouse
            .then(PointerAction::MoveToElement {
                element: element.clone(),
                duration: None,
                x,
                y,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
    }
    web.client.perform_actions(mouse).await.unwrap();
}

/// The ids of the comments the comments page lists, in order.
async fn listed(web: &Web) -> Vec<i64> {
    web.js(
        "return [...document.querySelectorAll('#comments > li')].map(c => Number(c.id.slice(8)));",
    )
    .await
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_i64().unwrap())
    .collect()
}

/// The stage the document page shows (its machine name).
async fn stage_of(web: &Web) -> String {
    web.js("const s = document.querySelector('#doc-stage .tag'); return s ? s.dataset.stage : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The current value of a form field (a textarea's too).
async fn value(web: &Web, id: &str) -> String {
    web.client
        .execute(
            "return document.getElementById(arguments[0]).value;",
            vec![json!(id)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The notice of a form that succeeded.
async fn notice(web: &Web) -> String {
    web.wait_for("notice").await;
    web.text("notice").await
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

/// A time `secs` from now in Latvian local time, as a datetime field takes it (the
/// browser formats it in Europe/Riga).
async fn riga_in(web: &Web, secs: i64) -> String {
    web.client
        .execute(
            "const d = new Date(Date.now() + arguments[0] * 1000); \
             return new Intl.DateTimeFormat('sv-SE', {timeZone: 'Europe/Riga', year: 'numeric', \
                 month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', \
                 second: '2-digit', hour12: false}).format(d).replace(' ', 'T');",
            vec![json!(secs)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// The token of the newest coordination link e-mailed to institution `code` (the admin's
/// outbox).
async fn link_token(base: &str, admin: &str, code: &str) -> String {
    let (status, _, out) = get_auth(
        &format!("{base}/api/v1/outbox?recipient=institution:{code}"),
        admin,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let body = out
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .find(|b| b.contains("/tapis/respond/"))
        .unwrap_or_else(|| panic!("no coordination link in the outbox: {out}"));
    let at = body.find("/tapis/respond/").unwrap() + "/tapis/respond/".len();
    body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect()
}

#[tokio::test]
async fn a_detailed_plan_from_initiation_to_in_force_in_the_browser() {
    let Some(paths) =
        browser_or_skip("tapis::a_detailed_plan_from_initiation_to_in_force_in_the_browser")
    else {
        return;
    };
    let (dir, server) = crate::demo_server();
    let creds = credentials(dir.path());
    let (login, password) = (planner(&creds, "login"), planner(&creds, "password"));
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let citizen = creds["subjects"][0]["token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let base = server.base.clone();

    // The admin lets a detailed plan's consultation be shorter than a minute (the rules
    // are data; the portal has no page for them).
    let (status, _, v) = send(
        http.patch(format!("{base}/api/v1/tapis/rules"))
            .bearer_auth(&admin)
            .header("content-type", "application/merge-patch+json")
            .body(
                json!({"document_types": {"detailed_plan": {"consultation_min_days": 0}}})
                    .to_string(),
            ),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let web = Web::start(&paths, &base).await;

    // --- The planner creates the document. ---
    web.sign_in(&login, &password).await;
    web.goto("/tapis").await;
    assert!(web.has("help-link").await);
    assert!(
        web.has("new-document-form").await,
        "{}",
        web.body_text().await
    );
    choose(&web, "new-type", "detailed_plan").await;
    web.fill("new-title", "Detālplānojums Kalēju ielā 7").await;
    web.screenshot("lv-tapis-list-planner").await;
    web.submit("new-submit").await;
    let path = web.path().await;
    let page = web.body_text().await;
    let id: i64 = path
        .strip_prefix("/tapis/documents/")
        .unwrap_or_else(|| panic!("not on the document: {path}\n{page}"))
        .parse()
        .unwrap();
    assert!(!notice(&web).await.is_empty());
    assert_eq!(web.text("doc-title").await, "Detālplānojums Kalēju ielā 7");
    assert_eq!(stage_of(&web).await, "initiated");
    assert!(web.text("doc-type").await.contains("Detālplānojums"));
    assert!(web.has("no-map").await, "no territory yet");
    let help = web.attr("help-link", "href").await.unwrap();
    assert!(
        help.contains("stage=initiated") && help.contains("role=planner"),
        "{help}"
    );

    // --- Its territory: an unclosed ring is refused with the reason, the form kept. ---
    let open_ring = r#"{"type":"Polygon","coordinates":[[[24.1,56.95],[24.102,56.95],[24.102,56.952],[24.1,56.952]]]}"#;
    web.fill("territory-geometry", open_ring).await;
    web.submit("territory-submit").await;
    let refusal = web.text("error").await;
    assert!(refusal.contains("not closed"), "{refusal}");
    assert_eq!(
        value(&web, "territory-geometry").await,
        open_ring,
        "the form is kept as typed"
    );
    assert!(web.has("no-map").await, "nothing changed");
    let square = r#"{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[24.1,56.95],[24.102,56.95],[24.102,56.952],[24.1,56.952],[24.1,56.95]]]}}"#;
    web.fill("territory-geometry", square).await;
    web.submit("territory-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert!(web.text("doc-area").await.contains("ha"), "about 2.7 ha");
    assert!(web.has("territory-map").await);
    let territory = web
        .js("return document.querySelectorAll('#territory-map path.territory').length;")
        .await;
    assert_eq!(territory, json!(1));
    // Detailed plans always ask the environment service and the heritage board.
    assert!(web.has("asked-VVD").await, "{}", web.text("asked").await);
    web.screenshot("lv-tapis-territory").await;

    // --- Conditions: the next stage, a request to an institution, its extension. ---
    web.submit("next-stage-submit").await;
    assert_eq!(stage_of(&web).await, "conditions");
    choose(&web, "request-institution", "VVD").await;
    choose(&web, "request-kind", "conditions").await;
    web.fill("request-note", "Lūdzam nosacījumus koku saglabāšanai.")
        .await;
    web.submit("request-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    let request = web
        .js("const r = document.querySelector('#requests tbody tr'); return r ? Number(r.id.slice(8)) : 0;")
        .await
        .as_i64()
        .unwrap();
    assert!(request > 0);
    assert_eq!(
        web.attr(&format!("request-{request}"), "data-status")
            .await
            .as_deref(),
        Some("sent")
    );
    // An extension to an earlier date is the service's refusal; a later one is kept.
    choose(&web, &format!("extend-date-{request}"), "2020-01-01").await;
    web.fill(
        &format!("extend-reason-{request}"),
        "Iestāde lūdza vairāk laika",
    )
    .await;
    web.submit(&format!("extend-submit-{request}")).await;
    assert!(web.has("error").await, "{}", web.body_text().await);
    assert_eq!(
        web.attr(&format!("extend-reason-{request}"), "value")
            .await
            .as_deref(),
        Some("Iestāde lūdza vairāk laika")
    );
    choose(&web, &format!("extend-date-{request}"), "2099-01-05").await;
    web.submit(&format!("extend-submit-{request}")).await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    let row = web.text(&format!("request-{request}")).await;
    assert!(
        row.contains("2099-01-05") && row.contains("Iestāde lūdza vairāk laika"),
        "{row}"
    );
    web.screenshot("lv-tapis-requests").await;
    web.sign_out().await;

    // --- The institution answers through the link of its e-mail, without an account. ---
    let token = link_token(&base, &admin, "VVD").await;
    web.goto(&format!("/tapis/respond/{token}")).await;
    assert!(!web.has_session().await);
    assert!(web.text("respond-institution").await.contains("VVD"));
    assert_eq!(
        web.text("respond-document-link").await,
        "Detālplānojums Kalēju ielā 7"
    );
    assert!(web.text("respond-due").await.contains("2099-01-05"));
    web.screenshot("lv-tapis-respond").await;
    web.click("verdict-conditional").await;
    web.fill("answer-text", "Saglabāt esošos kokus gar ielu.")
        .await;
    web.fill("answer-responder", "J. Bērziņš, VVD").await;
    web.submit("answer-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert!(web.has("answered").await && !web.has("answer-form").await);
    assert!(web.text("answered-text").await.contains("Saglabāt"));
    // Written once: a second answer is the service's 409, a changed link its 404, both
    // readable pages.
    let again = http
        .post(format!("{base}/tapis/respond/{token}"))
        .form(&[
            ("verdict", "positive"),
            ("text", "Cits"),
            ("responder", "X"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("error-summary"));
    let (head, tag) = token.rsplit_once('.').unwrap();
    let changed = format!("{head}.{}", tag.chars().rev().collect::<String>());
    let r = http
        .get(format!("{base}/tapis/respond/{changed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // --- Drafting: a version and a consultation that opens at once. ---
    web.sign_in(&login, &password).await;
    web.goto(&format!("/tapis/documents/{id}")).await;
    let row = web.text(&format!("request-{request}")).await;
    assert!(row.contains("Saglabāt esošos kokus"), "{row}");
    web.submit("next-stage-submit").await;
    assert_eq!(stage_of(&web).await, "drafting");
    assert!(
        web.has("next-automatic").await,
        "consultation is not a planner's move"
    );
    web.fill("version-label", "1.0").await;
    web.fill("version-summary", "Apbūves parametri Kalēju ielā 7")
        .await;
    web.fill(
        "version-paragraphs",
        "1.1: Apbūves augstums līdz 12 m.\n1.2: Zaļā teritorija vismaz 30 %.\n  Koki gar ielu saglabājami.",
    )
    .await;
    web.submit("version-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    let version = web
        .js("const v = document.querySelector('#versions details'); return v ? Number(v.id.slice(8)) : 0;")
        .await
        .as_i64()
        .unwrap();
    assert!(
        web.text(&format!("para-{version}-1.2"))
            .await
            .contains("Koki gar ielu"),
        "a line starting with a space continues the paragraph"
    );
    choose(&web, "schedule-version", &version.to_string()).await;
    let ends = riga_in(&web, 75).await;
    choose(&web, "schedule-ends", &ends).await;
    web.submit("schedule-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert_eq!(stage_of(&web).await, "consultation", "it opened at once");
    let consultation = web
        .js("const c = document.querySelector('#consultations tbody tr'); return c ? Number(c.id.slice(13)) : 0;")
        .await
        .as_i64()
        .unwrap();
    assert_eq!(
        web.attr(&format!("consultation-{consultation}"), "data-status")
            .await
            .as_deref(),
        Some("open")
    );
    assert!(!web.has("comment-form").await, "a planner does not comment");
    web.sign_out().await;

    // --- The public sees the open consultation and is asked to sign in to comment. ---
    web.goto(&format!("/tapis/documents/{id}")).await;
    assert!(
        web.has("comment-sign-in").await,
        "{}",
        web.body_text().await
    );
    // Due dates and answers are public; who answered is the planner's to see.
    let public = web.text("requests").await;
    assert!(
        public.contains("Saglabāt esošos kokus") && !public.contains("Bērziņš"),
        "{public}"
    );

    // --- A citizen pins a comment on the map by clicking it. ---
    web.sign_in_citizen(&citizen).await;
    web.goto(&format!("/tapis/documents/{id}")).await;
    assert!(web.has("comment-form").await, "{}", web.body_text().await);
    assert_eq!(
        web.js("return document.getElementById('territory-map').hasAttribute('data-pick');")
            .await,
        json!(true),
        "the map picks the comment's point"
    );
    web.click("territory-map").await;
    let lon: f64 = value(&web, "comment-lon")
        .await
        .parse()
        .expect("the click filled the longitude");
    let lat: f64 = value(&web, "comment-lat")
        .await
        .parse()
        .expect("the click filled the latitude");
    // The map's centre is the territory's centre: the click is inverted to WGS 84.
    assert!(
        (lon - 24.101).abs() < 1e-4 && (lat - 56.951).abs() < 1e-4,
        "{lon} {lat}"
    );
    assert!(web.is_checked("anchor-point").await);
    assert_eq!(
        web.js("return document.getElementById('pick-marker').hasAttribute('visibility');")
            .await,
        json!(false),
        "the marker shows where"
    );
    web.fill("comment-text", "Lūdzu saglabāt bērnu laukumu šajā vietā.")
        .await;
    web.screenshot("lv-tapis-comment").await;
    web.submit("comment-submit").await;
    let path = web.path().await;
    let page = web.body_text().await;
    let receipt = path
        .strip_prefix("/tapis/receipts/")
        .unwrap_or_else(|| panic!("not on the receipt: {path}\n{page}"))
        .to_owned();
    assert!(!notice(&web).await.is_empty());
    let status = web
        .js("return document.querySelector('#receipt-status .tag').dataset.status;")
        .await;
    assert_eq!(status, json!("received"));
    assert!(web.has("receipt-verified").await);
    assert_eq!(web.text("receipt-hash").await.len(), 64);
    assert!(
        web.text("receipt-anchor").await.contains("56.951"),
        "{}",
        web.text("receipt-anchor").await
    );
    web.screenshot("lv-tapis-receipt").await;

    // --- Another comment on an area drawn by clicking its corners. ---
    web.follow("#receipt-document").await;
    assert!(
        web.attr("draw-area", "hidden").await.is_none()
            && web.attr("draw-end", "hidden").await.is_some(),
        "the script offers drawing"
    );
    web.click("draw-area").await;
    assert!(web.is_checked("anchor-polygon").await);
    click_at(
        &web,
        "territory-map",
        &[(0.0, -60.0), (50.0, 40.0), (-50.0, 40.0)],
    )
    .await;
    let drawn: Value = serde_json::from_str(&value(&web, "comment-polygon").await)
        .expect("the clicks filled the area's GeoJSON");
    assert_eq!(drawn["type"], "Polygon", "{drawn}");
    let ring = drawn["coordinates"][0].as_array().unwrap();
    assert_eq!(ring.len(), 4, "three corners and the first again: {drawn}");
    assert_eq!(ring[0], ring[3], "the ring is closed");
    assert!(
        ring[0][1].as_f64().unwrap() > ring[1][1].as_f64().unwrap(),
        "the first corner, clicked above, is further north: {drawn}"
    );
    assert_eq!(
        web.js("return document.getElementById('draw-shape').hasAttribute('visibility');")
            .await,
        json!(false),
        "the area is drawn"
    );
    web.click("draw-end").await;
    web.fill(
        "comment-text",
        "Koki gar ielu jāsaglabā. Stāvvieta šeit nav vajadzīga.",
    )
    .await;
    web.screenshot("lv-tapis-comment-area").await;
    web.submit("comment-submit").await;
    assert!(
        web.path().await.starts_with("/tapis/receipts/"),
        "{}",
        web.body_text().await
    );
    let area_receipt = web.path().await["/tapis/receipts/".len()..].to_owned();
    assert!(
        web.text("receipt-anchor").await.contains("Apgabals kartē"),
        "{}",
        web.text("receipt-anchor").await
    );
    web.sign_out().await;

    // --- While it is open, the planner keeps a standard answer. ---
    web.sign_in(&login, &password).await;
    web.goto("/tapis").await;
    web.submit("blocks-link").await;
    assert!(web.has("no-blocks").await);
    web.fill("block-code", "koki ielā").await;
    web.fill("block-title", "Koki").await;
    web.fill(
        "block-text",
        "Esošie koki tiek saglabāti; tas noteikts 1.2. punktā.",
    )
    .await;
    web.submit("block-submit").await;
    assert!(
        web.text("error").await.contains("0-9"),
        "{}",
        web.text("error").await
    );
    assert_eq!(value(&web, "block-title").await, "Koki", "the form is kept");
    web.fill("block-code", "koki").await;
    web.submit("block-submit").await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert!(web.text("block-koki").await.contains("Esošie koki"));

    // --- It closes by itself. ---
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, d) = crate::common::get(&format!("{base}/api/v1/tapis/documents/{id}")).await;
        if d["stage"] == "evaluation" {
            break;
        }
        assert!(Instant::now() < deadline, "still {}", d["stage"]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // --- Approval is refused while the comments are unanswered; the planner answers. ---
    web.goto(&format!("/tapis/documents/{id}")).await;
    assert_eq!(stage_of(&web).await, "evaluation");
    let pins = web
        .js("return document.querySelectorAll('#territory-map circle.pin').length;")
        .await;
    assert_eq!(pins, json!(1), "the planner sees the comment pinned");
    let areas = web
        .js("return document.querySelectorAll('#territory-map path.comment-area').length;")
        .await;
    assert_eq!(areas, json!(1), "and the area drawn");
    assert_eq!(
        web.attr("next-stage-submit", "data-stage").await.as_deref(),
        Some("approved")
    );
    web.submit("next-stage-submit").await;
    let refusal = web.text("error").await;
    assert!(refusal.contains("no answer yet"), "{refusal}");
    assert_eq!(stage_of(&web).await, "evaluation");
    web.submit(&format!("comments-link-{consultation}")).await;
    let ids = listed(&web).await;
    assert_eq!(ids.len(), 2, "{}", web.body_text().await);
    let (comment, area) = (ids[0], ids[1]);
    assert!(
        web.text(&format!("comment-{comment}"))
            .await
            .contains("bērnu laukumu")
    );
    assert!(
        web.text(&format!("comment-{area}"))
            .await
            .contains("Apgabals kartē")
    );
    // The filter: nothing answered yet.
    choose(&web, "filter-status", "answered").await;
    web.submit("filter-submit").await;
    assert!(web.has("no-comments").await);
    choose(&web, "filter-status", "unanswered").await;
    web.submit("filter-submit").await;
    assert!(web.has(&format!("comment-{comment}")).await);
    // A tag on the first comment.
    web.click(&format!("label-toggle-{comment}")).await;
    web.fill(&format!("label-tags-{comment}"), "bērni, laukumi")
        .await;
    web.submit(&format!("label-submit-{comment}")).await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert!(
        web.text(&format!("comment-{comment}"))
            .await
            .contains("bērni, laukumi")
    );
    choose(&web, &format!("answer-decision-{comment}"), "accepted").await;
    web.fill(
        &format!("answer-text-{comment}"),
        "Bērnu laukums tiek saglabāts (1.2. punkts).",
    )
    .await;
    web.submit(&format!("answer-submit-{comment}")).await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert_eq!(
        web.attr(&format!("comment-{comment}"), "data-answered")
            .await
            .as_deref(),
        Some("true")
    );
    // The other split into its two sentences: a part that is no piece of the text is the
    // service's refusal, the parts kept as typed.
    web.click(&format!("split-toggle-{area}")).await;
    let typed = "Koki gar ielu jāsaglabā.\nStāvvietas nav.";
    web.fill(&format!("split-parts-{area}"), typed).await;
    web.submit(&format!("split-submit-{area}")).await;
    assert!(
        web.text("error").await.contains("verbatim"),
        "{}",
        web.text("error").await
    );
    assert_eq!(value(&web, &format!("split-parts-{area}")).await, typed);
    web.fill(
        &format!("split-parts-{area}"),
        "Koki gar ielu jāsaglabā.\nStāvvieta šeit nav vajadzīga.",
    )
    .await;
    web.submit(&format!("split-submit-{area}")).await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    assert!(
        web.text(&format!("comment-{area}"))
            .await
            .contains("sadalīts")
    );
    assert!(
        !web.has(&format!("answer-form-{area}")).await,
        "answered through its parts"
    );
    let parts: Vec<i64> = listed(&web)
        .await
        .into_iter()
        .filter(|c| *c > area)
        .collect();
    assert_eq!(parts.len(), 2, "{}", web.body_text().await);
    // The first part with the standard answer and a word of its own, the second noted.
    choose(&web, &format!("answer-decision-{}", parts[0]), "accepted").await;
    let chosen = web
        .client
        .execute(
            "const s = document.getElementById(arguments[0]); \
             [...s.options].forEach(o => o.selected = o.value === 'koki'); \
             return s.selectedOptions.length;",
            vec![json!(format!("answer-blocks-{}", parts[0]))],
        )
        .await
        .unwrap();
    assert_eq!(chosen, json!(1));
    web.fill(&format!("answer-text-{}", parts[0]), "Paldies.")
        .await;
    web.submit(&format!("answer-submit-{}", parts[0])).await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    let answered = web.text(&format!("comment-{}", parts[0])).await;
    assert!(
        answered.contains("Esošie koki tiek saglabāti") && answered.contains("Paldies."),
        "the block's text, then the free text: {answered}"
    );
    choose(&web, &format!("answer-decision-{}", parts[1]), "noted").await;
    web.fill(
        &format!("answer-text-{}", parts[1]),
        "Stāvvieta šeit netiek plānota.",
    )
    .await;
    web.submit(&format!("answer-submit-{}", parts[1])).await;
    assert!(!notice(&web).await.is_empty(), "{}", web.body_text().await);
    web.screenshot("lv-tapis-comments").await;
    // The report, without identities.
    let (status, content_type, disposition, body) = fetch(&web, "report-link").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["comments"], json!(2), "{report}");
    assert_eq!(report["to_answer"], json!(3), "{report}");
    assert_eq!(report["answered"], json!(3), "{report}");
    let code = creds["subjects"][0]["personal_code"].as_str().unwrap();
    assert!(!body.contains(code), "no identities in the report");

    // --- Approved, then in force; nothing moves after. ---
    web.submit("back-to-document").await;
    web.submit("next-stage-submit").await;
    assert_eq!(
        stage_of(&web).await,
        "approved",
        "{}",
        web.body_text().await
    );
    web.submit("next-stage-submit").await;
    assert_eq!(stage_of(&web).await, "in_force");
    assert!(!web.has("next-stage-submit").await && !web.has("back-form").await);
    let history = web.text("history").await;
    for action in ["create", "territory"] {
        assert!(history.contains(action), "{action}:\n{history}");
    }
    assert!(history.contains("scheduler"), "{history}");
    web.screenshot("lv-tapis-in-force").await;
    web.sign_out().await;

    // --- The citizen's messages: each comment's answer, newest first, linking its
    // receipt (below the messages that each was received). ---
    web.sign_in_citizen(&citizen).await;
    web.follow("a[href='/messages']").await;
    let messages = web
        .js("return [...document.querySelectorAll('#messages li[data-module=tapis]')].map(m => \
             [m.querySelector('.message-body').textContent, \
              (m.querySelector('a.message-link') || {getAttribute: () => ''}).getAttribute('href')]);")
        .await;
    let answers: Vec<(&str, &str)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[0].as_str().unwrap(), m[1].as_str().unwrap()))
        .filter(|(body, _)| body.contains("answered your comment"))
        .collect();
    let (point_link, area_link) = (
        format!("/tapis/receipts/{receipt}"),
        format!("/tapis/receipts/{area_receipt}"),
    );
    assert_eq!(
        answers.iter().map(|a| a.1).collect::<Vec<_>>(),
        [area_link.as_str(), point_link.as_str()],
        "{}",
        web.body_text().await
    );
    assert!(
        answers[0].0.contains(&format!("comment {area} ")),
        "{answers:?}"
    );
    web.screenshot("lv-messages").await;
    web.follow(&format!("a[href='/tapis/receipts/{receipt}']"))
        .await;
    let status = web
        .js("return document.querySelector('#receipt-status .tag').dataset.status;")
        .await;
    assert_eq!(status, json!("answered"));
    assert!(
        web.text("receipt-answer-text")
            .await
            .contains("Bērnu laukums")
    );
    web.goto(&format!("/tapis/receipts/{area_receipt}")).await;
    let parts = web.text("receipt-parts").await;
    assert!(
        parts.contains("Esošie koki tiek saglabāti") && parts.contains("pieņemts zināšanai"),
        "{parts}"
    );
    web.sign_out().await;

    // --- The public list, filtered, and in English. ---
    web.goto("/tapis?stage=in_force&type=detailed_plan").await;
    assert!(
        web.has(&format!("doc-{id}")).await,
        "{}",
        web.body_text().await
    );
    assert!(!web.has("new-document-form").await);
    web.submit("lang-switch").await;
    let text = web.body_text().await;
    assert!(
        text.contains("Planning documents") && text.contains("In force"),
        "{text}"
    );
    web.follow(&format!("#doc-link-{id}")).await;
    assert!(web.body_text().await.contains("Detailed plan"));
    web.screenshot("en-tapis-document").await;
    web.quit().await;
}

/// The pages as a plain HTTP client sees them (no browser needed): the public list and a
/// document's page with its SVG map for anyone; the planner's forms only for its planner;
/// a citizen's planner action refused by the service; bad ids, links and receipts as
/// readable pages with the service's status; the map script served by the portal.
#[tokio::test]
async fn the_pages_over_http_for_each_role() {
    let (dir, server) = crate::demo_server();
    let creds = credentials(dir.path());
    let base = server.base.clone();
    let token = planner(&creds, "token");
    let citizen = creds["subjects"][0]["token"].as_str().unwrap().to_owned();
    let api = |p: &str| format!("{base}/api/v1/tapis{p}");
    let (status, _, d) = crate::common::post_auth(
        &api("/documents"),
        &token,
        &json!({"type": "local_plan", "title": "Lokālplānojums <Ziepniekkalns>"}),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_i64().unwrap();
    let (status, _, v) = crate::common::post_auth(
        &api(&format!("/documents/{id}/territory")),
        &token,
        &json!({"geometry": {"type": "Polygon", "coordinates": [[[24.05, 56.9], [24.06, 56.9], [24.06, 56.91], [24.05, 56.9]]]}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // The properties the territory holds (the planner's audited read); their land is
    // drawn on the public page from the stored set.
    let (status, _, props) = get_auth(&api(&format!("/documents/{id}/parcels")), &token).await;
    assert_eq!(status, 200, "{props}");
    let land: Vec<&str> = props
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            matches!(
                p["property_type"].as_str(),
                Some("land" | "land_with_building")
            )
        })
        .map(|p| p["cadastre_number"].as_str().unwrap())
        .collect();

    // Anyone: the list and the document, its map drawn, no planner's forms.
    let mut public = crate::support::Browser::new(&base);
    let list = public.get("/tapis?type=local_plan").await;
    assert_eq!(list.status, 200);
    assert!(list.has(&format!("id=\"doc-{id}\"")), "{}", list.html);
    assert!(
        list.has("Lokālplānojums <Ziepniekkalns>") && !list.html.contains("<Ziepniekkalns>"),
        "titles are escaped"
    );
    assert!(!list.has("new-document-form"));
    let none = public.get("/tapis?type=thematic_plan&stage=in_force").await;
    assert!(!none.has(&format!("id=\"doc-{id}\"")));
    let page = public.get(&format!("/tapis/documents/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.has("<svg id=\"territory-map\""), "{}", page.html);
    assert!(page.has("class=\"territory\" d=\"M"));
    assert_eq!(
        page.html.matches("<path class=\"parcel\"").count(),
        land.len(),
        "every land property's boundary: {props}"
    );
    assert!(
        land.iter().all(|c| page.has(c)),
        "labelled with the cadastre number"
    );
    assert!(page.has("src=\"/tapis/static/map.js\""));
    assert!(!page.has("territory-form") && !page.has("data-pick"));
    assert!(page.has("role=public"), "the help link names the role");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let js = public.get("/tapis/static/map.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.html.contains("function lks92"));

    // Bad ids and links: readable pages with the service's status.
    assert_eq!(public.get("/tapis/documents/999999").await.status, 404);
    assert_eq!(public.get("/tapis/documents/abc").await.status, 404);
    let bad = public.get("/tapis/respond/1.2.AAAA").await;
    assert_eq!(bad.status, 404);
    assert!(bad.has("error-summary"));
    // An action without a session goes to sign in; its address opened leads to the page.
    let act = public.get(&format!("/tapis/documents/{id}/act")).await;
    assert_eq!(
        (act.status, act.location.as_deref()),
        (303, Some(format!("/tapis/documents/{id}").as_str()))
    );
    assert_eq!(
        public
            .post_raw(
                &format!("/tapis/documents/{id}/act"),
                &[("action", "stage")]
            )
            .await
            .status,
        303
    );

    // The planner: the forms, and a refusal shown with the form kept.
    let mut planner_b = crate::support::Browser::new(&base);
    planner_b
        .sign_in(&planner(&creds, "login"), &planner(&creds, "password"))
        .await;
    let mine = planner_b.open(&format!("/tapis/documents/{id}")).await;
    assert!(mine.has("territory-form") && mine.has("request-form"));
    assert!(mine.has("role=planner"));
    let refused = planner_b
        .submit(
            &format!("/tapis/documents/{id}/act"),
            &[("action", "stage"), ("stage", "drafting"), ("reason", "")],
        )
        .await;
    assert_eq!(refused.status, 409, "stages are not skipped");
    assert!(
        refused.has("the next stage is conditions"),
        "{}",
        refused.html
    );
    let refused = planner_b
        .submit(
            &format!("/tapis/documents/{id}/act"),
            &[
                ("action", "version"),
                ("label", "1.0"),
                ("summary", "Kopsavilkums"),
                ("paragraphs", "bez identifikatora"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.has("line 1"), "{}", refused.html);
    assert!(
        refused.has(">bez identifikatora</textarea>"),
        "kept as typed"
    );
    let list = planner_b.open("/tapis").await;
    assert!(list.has("new-document-form"));
    let created = planner_b
        .submit("/tapis", &[("type", "thematic_plan"), ("title", "  ")])
        .await;
    assert_eq!(created.status, 422, "{}", created.html);

    // A citizen may not take a planner's action: the service's 403, nothing changed.
    let mut person = crate::support::Browser::new(&base);
    person.sign_in_citizen(&citizen).await;
    let doc = person.open(&format!("/tapis/documents/{id}")).await;
    assert_eq!(doc.status, 200);
    assert!(!doc.has("territory-form"));
    assert!(doc.has("role=citizen"));
    let refused = person
        .submit(
            &format!("/tapis/documents/{id}/act"),
            &[("action", "stage"), ("stage", "conditions")],
        )
        .await;
    assert_eq!(refused.status, 403);
    let (_, _, d) = crate::common::get(&api(&format!("/documents/{id}"))).await;
    assert_eq!(d["stage"], "initiated");
    // No consultation is open: a comment is the service's refusal.
    let refused = person
        .submit(
            &format!("/tapis/documents/{id}/act"),
            &[
                ("action", "comment"),
                ("consultation", "999999"),
                ("anchor", "point"),
                ("lon", "24.055"),
                ("lat", "56.905"),
                ("text", "Priekšlikums"),
            ],
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.html);
    assert_eq!(
        person.get("/tapis/receipts/not-a-receipt").await.status,
        404
    );
    // Another's comments list is the planner's, and so are the standard answers.
    assert_eq!(
        person
            .get(&format!("/tapis/documents/{id}/consultations/1/comments"))
            .await
            .status,
        403
    );
    assert_eq!(person.get("/tapis/answer-blocks").await.status, 403);

    // A person's messages, and the address they are mailed to: a bad address refused with
    // the service's reason and kept, a good one saved (what `GET /api/v1/me/email` reads),
    // an empty one removing it.
    let messages = person.open("/messages").await;
    assert_eq!(messages.status, 200);
    assert!(messages.has("href=\"/messages\"") && messages.has("id=\"email-form\""));
    let refused = person
        .submit("/messages", &[("address", "nav adrese")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.has("not an e-mail address") && refused.has("value=\"nav adrese\""));
    let saved = person
        .submit("/messages", &[("address", " iedzivotajs@example.lv ")])
        .await;
    assert_eq!(saved.status, 200);
    assert!(saved.has("id=\"notice\"") && saved.has("iedzivotajs@example.lv"));
    let (status, _, v) = get_auth(&format!("{base}/api/v1/me/email"), &citizen).await;
    assert_eq!(
        (status, v["address"].as_str()),
        (200, Some("iedzivotajs@example.lv"))
    );
    let removed = person.submit("/messages", &[("address", "")]).await;
    assert!(removed.has("id=\"email-current\""), "{}", removed.html);
    let (_, _, v) = get_auth(&format!("{base}/api/v1/me/email"), &citizen).await;
    assert_eq!(v["address"], Value::Null);
    // A planner has messages too; the public is sent to sign in.
    let planner_messages = planner_b.open("/messages").await;
    assert_eq!(planner_messages.status, 200);
    assert!(planner_messages.has("href=\"/messages\""));
    assert!(planner_b.open("/tapis").await.has("id=\"blocks-link\""));
    let anonymous = public.get("/messages").await;
    assert_eq!(
        (anonymous.status, anonymous.location.as_deref()),
        (303, Some("/login?next=%2Fmessages"))
    );
}

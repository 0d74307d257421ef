//! Portal pages of `portal/src/requests.rs` over HTTP: the owner's inbox and decisions
//! (approval with narrowing, refused approvals that keep the form, refusal, revocation),
//! the consumer's requests, history and withdrawal, and ends shown as the last day they
//! include.

use serde_json::{Value, json};

use crate::common::{credentials, get_auth, post_auth};
use crate::demo_server;
use crate::support::{Browser, Page, demo_password};

/// The requested attributes of the test requests (all of `persons`).
const ASKED: &[&str] = &[
    "personal_code",
    "given_name",
    "family_name",
    "birth_date",
    "municipality",
];

/// A date `days` from today, `YYYY-MM-DD`.
fn date_in(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// File a request of BANKA for `persons` (owned by PMLP) through REST; its id.
async fn file_request(base: &str, creds: &Value, purpose: &str) -> i64 {
    let system = creds["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["organisation"] == "BANKA" && s["role"] == "consumer")
        .unwrap();
    let token = system["token"].as_str().unwrap();
    let (status, _, body) = post_auth(
        &format!("{base}/api/v1/requests"),
        token,
        &json!({
            "dataset": "persons",
            "attributes": ASKED,
            "row_scope": "municipality = 'Rīga'",
            "purpose": purpose,
            "legal_basis": "Kredītiestāžu likums",
            "systems": [system["system_id"]],
            "valid_to": date_in(400),
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// A request or agreement as the REST API shows it to the admin.
async fn rest(base: &str, creds: &Value, path: &str) -> Value {
    let (status, _, body) = get_auth(
        &format!("{base}/api/v1/{path}"),
        creds["admin"]["token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The opening tag of the element with `id`.
fn tag<'a>(page: &'a Page, id: &str) -> &'a str {
    let html = &page.html;
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in {html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

/// The element with `id` up to the end of `close` (e.g. `</tr>`), unescaped.
fn element(page: &Page, id: &str, close: &str) -> String {
    let html = crate::support::unescape(&page.html);
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in {html}"));
    let end = at + html[at..].find(close).unwrap() + close.len();
    html[at..end].to_owned()
}

fn checked(page: &Page, id: &str) -> bool {
    tag(page, id).contains(" checked")
}

/// Asserts a readable error page (not JSON, not a trace) with `status`.
fn readable_refusal(page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.html);
    assert!(page.html.starts_with("<!doctype html>"), "{}", page.html);
    assert!(page.has("class=\"error-summary\""), "{}", page.html);
}

#[tokio::test]
async fn owner_decides_in_the_inbox_and_revokes() {
    let (dir, server) = demo_server();
    let base = server.base.clone();
    let creds = credentials(dir.path());
    let narrowed = file_request(&base, &creds, "Kredītspējas izvērtēšana").await;
    let refused = file_request(&base, &creds, "Mārketinga kampaņa").await;

    let mut owner = Browser::new(&base);
    let landing = owner
        .sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;
    // The owner starts in the inbox (Latvian): both requests, with the time left in words.
    assert_eq!(landing.status, 200);
    assert!(landing.has("id=\"inbox\""), "{}", landing.html);
    let row = element(&landing, &format!("request-{narrowed}"), "</tr>");
    assert!(row.contains("vēl ") && row.contains("dien"), "{row}");
    assert!(
        row.contains(&format!("href=\"/requests/{narrowed}\"")),
        "{row}"
    );
    assert!(landing.has(&format!("id=\"request-{refused}\"")));
    // The rest in English.
    owner.get("/lang/en?back=%2Finbox").await;
    let inbox = owner.get("/inbox").await;
    let row = element(&inbox, &format!("request-{narrowed}"), "</tr>");
    assert!(row.contains("days") && row.contains(" left"), "{row}");
    assert!(!row.contains("overdue"), "{row}");
    // Recent decisions from the demo: PMLP approved LM's and BANKA's requests.
    assert!(inbox.has("id=\"recent-decisions\""));

    // The request page offers both decisions, every requested attribute ticked.
    let path = format!("/requests/{narrowed}");
    let detail = owner.get(&path).await;
    assert_eq!(detail.status, 200);
    assert!(element(&detail, "request-status", "</dd>").contains(">pending<"));
    assert!(detail.has("id=\"approve-form\"") && detail.has("id=\"refuse-form\""));
    assert!(!detail.has("id=\"withdraw\""), "the owner cannot withdraw");
    for a in ASKED {
        assert!(checked(&detail, &format!("approve-attr-{a}")), "{a}");
    }
    assert!(detail.has("municipality = 'Rīga'"));
    assert!(detail.has("id=\"history\"") && detail.has("Request filed"));

    // Refused approvals re-show the form as filled in and change nothing.
    let approve = format!("{path}/approve");
    let kept = [
        ("attributes", "personal_code"),
        ("attributes", "given_name"),
        ("attributes", "family_name"),
        ("attributes", "municipality"),
    ];
    let mut fields = kept.to_vec();
    fields.push(("attributes", "phone"));
    let p = owner.submit(&approve, &fields).await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert!(p.has("id=\"error\"") && p.has("`phone`"), "{}", p.html);
    assert!(p.has("id=\"approve-form\""));
    assert!(
        !checked(&p, "approve-attr-birth_date"),
        "unticked stays unticked"
    );
    assert!(checked(&p, "approve-attr-personal_code"));

    let mut fields = kept.to_vec();
    fields.push(("row_scope", "no_such_column = 1"));
    fields.push(("note", "pārbaude"));
    let p = owner.submit(&approve, &fields).await;
    assert_eq!(p.status, 422, "{}", p.html);
    let scope = tag(&p, "approve-row-scope");
    assert!(scope.contains("aria-invalid=\"true\""), "{scope}");
    assert!(scope.contains("value=\"no_such_column = 1\""), "{scope}");
    assert!(!checked(&p, "approve-attr-birth_date"));
    assert!(p.has(">pārbaude</textarea>"), "the note is kept");

    let p = owner.submit(&approve, &[("row_scope", "sex = 'F'")]).await;
    assert_eq!(p.status, 422, "no attribute left: {}", p.html);
    assert!(tag(&p, "approve-attr-personal_code").contains("aria-invalid=\"true\""));
    assert!(!checked(&p, "approve-attr-personal_code"));

    let mut fields = kept.to_vec();
    let later = date_in(600);
    fields.push(("valid_to", &later));
    let p = owner.submit(&approve, &fields).await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert!(tag(&p, "approve-valid-to").contains("aria-invalid=\"true\""));
    assert!(tag(&p, "approve-valid-to").contains(&format!("value=\"{later}\"")));

    let r = rest(&base, &creds, &format!("requests/{narrowed}")).await;
    assert_eq!(r["status"], "pending", "{r}");
    assert!(r["agreement_id"].is_null());

    // Another organisation's owner cannot decide it (the service does not even show it),
    // nor can the consumer who filed it: readable pages, nothing changes.
    let mut other = Browser::new(&base);
    other
        .sign_in("vzd.owner", &demo_password("vzd.owner"))
        .await;
    readable_refusal(&other.get(&path).await, 404);
    readable_refusal(&other.submit(&approve, &kept).await, 404);
    let mut consumer = Browser::new(&base);
    consumer
        .sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    consumer.get(&path).await;
    let p = consumer.submit(&approve, &kept).await;
    readable_refusal(&p, 403);
    assert!(p.has("only an owner of `PMLP`"), "{}", p.html);
    let r = rest(&base, &creds, &format!("requests/{narrowed}")).await;
    assert_eq!(r["status"], "pending", "{r}");

    // Approve, narrowing: birth_date unticked, a further row condition, an earlier end.
    owner.get(&path).await;
    let earlier = date_in(200);
    let mut fields = kept.to_vec();
    fields.push(("row_scope", "sex = 'F'"));
    fields.push(("valid_to", &earlier));
    fields.push(("note", "Dzimšanas datums nav vajadzīgs"));
    let done = owner.submit(&approve, &fields).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.has("id=\"notice\"") && done.has("The request was approved"));
    assert!(element(&done, "request-status", "</dd>").contains(">approved<"));
    assert!(done.has("Dzimšanas datums nav vajadzīgs") && done.has("id=\"narrowed\""));
    assert!(!done.has("id=\"approve-form\""));
    let link = tag(&done, "agreement-link").to_owned();
    let r = rest(&base, &creds, &format!("requests/{narrowed}")).await;
    let agreement_id = r["agreement_id"].as_i64().unwrap();
    assert!(
        link.contains(&format!("href=\"/agreements/{agreement_id}\"")),
        "{link}"
    );
    let a = rest(&base, &creds, &format!("agreements/{agreement_id}")).await;
    assert_eq!(
        a["attributes"],
        json!(["personal_code", "given_name", "family_name", "municipality"])
    );
    assert_eq!(
        a["row_scope"],
        "(municipality = 'Rīga'\n) AND (sex = 'F'\n)"
    );
    let valid_to = a["valid_to"].as_str().unwrap();
    assert!(
        valid_to.starts_with(&format!("{earlier}T2")),
        "end of the day in Latvia: {valid_to}"
    );
    assert!(done.has("Request approved"), "the history tells");

    // Refuse: a reason is required (the form comes back), then the request is refused.
    let path = format!("/requests/{refused}");
    owner.get(&path).await;
    let p = owner
        .submit(&format!("{path}/refuse"), &[("reason", "  ")])
        .await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert!(tag(&p, "refuse-reason").contains("aria-invalid=\"true\""));
    let p = owner
        .submit(
            &format!("{path}/refuse"),
            &[("reason", "Mārketingam personas datus neizsniedz")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.has("The request was refused"));
    assert!(element(&p, "request-status", "</dd>").contains(">refused<"));
    assert!(p.has("Mārketingam personas datus neizsniedz"));
    let r = rest(&base, &creds, &format!("requests/{refused}")).await;
    assert_eq!(r["status"], "refused");
    // Decided requests leave the inbox and show among the recent decisions.
    let inbox = owner.get("/inbox").await;
    assert!(!inbox.has(&format!("id=\"request-{refused}\"")));
    assert!(inbox.has(&format!("id=\"decided-{refused}\"")));

    // The agreements: the owner's list, then the new one revoked with a reason.
    let list = owner.get("/agreements").await;
    let row = element(&list, &format!("agreement-{agreement_id}"), "</tr>");
    assert!(row.contains(">active<") && row.contains("BANKA"), "{row}");
    let apath = format!("/agreements/{agreement_id}");
    let page = owner.get(&apath).await;
    assert!(page.has("id=\"revoke-form\"") && page.has("data-confirm="));
    assert!(page.has("id=\"history\"") && page.has("Agreement made"));
    // The consumer sees it, but has no revoke form; revoking anyway is refused.
    let seen = consumer.get(&apath).await;
    assert_eq!(seen.status, 200);
    assert!(!seen.has("id=\"revoke-form\""));
    let p = consumer
        .submit(&format!("{apath}/revoke"), &[("reason", "x")])
        .await;
    readable_refusal(&p, 403);
    let p = owner
        .submit(&format!("{apath}/revoke"), &[("reason", "")])
        .await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert!(tag(&p, "revoke-reason").contains("aria-invalid=\"true\""));
    let p = owner
        .submit(
            &format!("{apath}/revoke"),
            &[("reason", "Līguma nosacījumi pārkāpti")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.has("The agreement was revoked"));
    assert!(element(&p, "agreement-status", "</dd>").contains(">revoked<"));
    assert!(p.has("Agreement revoked") && p.has("Līguma nosacījumi pārkāpti"));
    assert!(!p.has("id=\"revoke-form\""));
    let a = rest(&base, &creds, &format!("agreements/{agreement_id}")).await;
    assert_eq!(a["status"], "revoked");
    let list = owner.get("/agreements?status=revoked").await;
    assert!(list.has(&format!("id=\"agreement-{agreement_id}\"")));
    let list = owner.get("/agreements?status=active").await;
    assert!(!list.has(&format!("id=\"agreement-{agreement_id}\"")));
}

#[tokio::test]
async fn consumer_follows_and_withdraws_its_requests() {
    let (dir, server) = demo_server();
    let base = server.base.clone();
    let creds = credentials(dir.path());
    let id = file_request(&base, &creds, "Klienta identificēšana").await;

    let mut b = Browser::new(&base);
    b.sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    b.get("/lang/en?back=%2Frequests").await;
    // The list: this request pending, the demo's approved ones too; filtered by status.
    let list = b.get("/requests").await;
    assert_eq!(list.status, 200);
    let row = element(&list, &format!("request-{id}"), "</tr>");
    assert!(
        row.contains(">pending<") && row.contains("persons"),
        "{row}"
    );
    assert!(row.contains(&format!("href=\"/requests/{id}\"")), "{row}");
    assert!(
        list.has("class=\"tag approved\""),
        "the demo's approved requests"
    );
    let pending = b.get("/requests?status=pending").await;
    assert!(pending.has(&format!("id=\"request-{id}\"")) && !pending.has("class=\"tag approved\""));
    assert!(tag(&pending, "status").contains("select"));
    assert!(pending.has("value=\"pending\" selected"));
    let approved = b.get("/requests?status=approved").await;
    assert!(
        !approved.has(&format!("id=\"request-{id}\"")) && approved.has("class=\"tag approved\"")
    );
    // Only BANKA's requests: the other consumers' are not listed.
    let everyone = rest(&base, &creds, "requests").await;
    let others: Vec<i64> = everyone
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["consumer_organisation"] != "BANKA")
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(!others.is_empty());
    for other in others {
        assert!(
            !list.has(&format!("id=\"request-{other}\"")),
            "request {other}"
        );
    }

    // The detail: status, deadline with time left, history; the consumer may withdraw.
    let path = format!("/requests/{id}");
    let detail = b.get(&format!("{path}?done=created")).await;
    assert!(detail.has("The request was filed"));
    assert!(element(&detail, "request-status", "</dd>").contains(">pending<"));
    assert!(element(&detail, "request-deadline", "</dd>").contains(" left"));
    assert!(detail.has("id=\"withdraw\"") && detail.has("data-confirm="));
    assert!(!detail.has("id=\"approve-form\"") && !detail.has("id=\"refuse-form\""));
    assert!(detail.has("href=\"/datasets/persons\""));
    assert!(detail.has("Klientu izpētes sistēma"), "system names");
    assert!(element(&detail, "history", "</ol>").contains("Request filed"));
    // A `done` that is not one of ours is not echoed.
    let odd = b.get(&format!("{path}?done=%3Cscript%3E")).await;
    assert!(!odd.has("id=\"notice\"") && !odd.has("<script>"));

    // The consumer cannot decide its own request; another consumer cannot see it.
    let p = b
        .submit(&format!("{path}/refuse"), &[("reason", "x")])
        .await;
    readable_refusal(&p, 403);
    let mut riga = Browser::new(&base);
    riga.sign_in("riga.consumer", &demo_password("riga.consumer"))
        .await;
    readable_refusal(&riga.get(&path).await, 404);
    assert!(
        !riga
            .get("/requests")
            .await
            .has(&format!("id=\"request-{id}\""))
    );
    readable_refusal(&b.get("/requests/not-a-number").await, 404);

    // Withdraw: the notice, the status and the history say so.
    b.get(&path).await;
    let p = b
        .submit(&format!("{path}/withdraw"), &[("reason", "")])
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.has("The request was withdrawn"));
    assert!(element(&p, "request-status", "</dd>").contains(">withdrawn<"));
    assert!(element(&p, "history", "</ol>").contains("Request withdrawn"));
    assert!(!p.has("id=\"withdraw\""));
    let r = rest(&base, &creds, &format!("requests/{id}")).await;
    assert_eq!(r["status"], "withdrawn");
    // Withdrawing again is refused by the service, readably.
    let again = b.submit(&format!("{path}/withdraw"), &[]).await;
    readable_refusal(&again, 409);

    // Agreements: BANKA's demo agreements, active, without a revoke form.
    let list = b.get("/agreements").await;
    assert!(list.has("id=\"agreements\""));
    let demo = creds["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["consumer_organisation"] == "BANKA" && a["dataset"] == "persons")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let row = element(&list, &format!("agreement-{demo}"), "</tr>");
    assert!(
        row.contains(">active<") && row.contains("personal_code"),
        "{row}"
    );
    let page = b.get(&format!("/agreements/{demo}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.has("id=\"revoke-form\""));
    assert!(!list.has(">LM<"), "only BANKA's agreements");
    // The inbox is an owner's page; a consumer is sent to its requests.
    assert_eq!(b.get("/inbox").await.location.as_deref(), Some("/requests"));
}

/// The text of the element with `id` (tags dropped, whitespace collapsed).
fn text_of(page: &Page, id: &str, close: &str) -> String {
    let html = element(page, id, close);
    // From the end of the element's own start tag.
    let inner = html.split_once('>').map_or("", |(_, rest)| rest);
    crate::support::text(inner)
}

#[tokio::test]
async fn an_end_reads_as_the_last_day_and_typing_that_day_keeps_it() {
    let (dir, server) = demo_server();
    let base = server.base.clone();
    let creds = credentials(dir.path());
    let kyc = creds["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["organisation"] == "BANKA" && s["system"] == "Klientu izpētes sistēma")
        .unwrap()["system_id"]
        .to_string();

    // The consumer asks for access to the end of a day (Latvian time).
    let mut consumer = Browser::new(&base);
    consumer
        .sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    consumer.get("/lang/en?back=%2F").await;
    let form = consumer.open("/datasets/persons/request").await;
    let valid_from = form.hidden("valid_from").unwrap();
    let last_day = date_in(200);
    let filed = consumer
        .submit(
            "/datasets/persons/request",
            &[
                ("attributes", "personal_code"),
                ("attributes", "given_name"),
                ("purpose", "Klienta identitātes pārbaude"),
                ("legal_basis", "Kredītiestāžu likums"),
                ("systems", kyc.as_str()),
                ("valid_from", valid_from.as_str()),
                ("valid_to", last_day.as_str()),
            ],
        )
        .await;
    assert_eq!(filed.status, 200, "{}", filed.html);
    let validity = text_of(&filed, "request-validity", "</dd>");
    assert!(
        validity.ends_with(&format!("to {last_day}")),
        "the day typed, not the next midnight: {validity}"
    );
    let id = filed
        .html
        .split("Access request no. ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap()
        .to_owned();
    let requested = rest(&base, &creds, &format!("requests/{id}")).await;

    // The owner sees that day as the requested end, and the date field goes no further.
    let mut owner = Browser::new(&base);
    owner
        .sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;
    owner.get("/lang/en?back=%2F").await;
    let path = format!("/requests/{id}");
    let page = owner.open(&path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(text_of(&page, "requested-end", "</span>"), last_day);
    assert!(
        tag(&page, "approve-valid-to").contains(&format!("max=\"{last_day}\"")),
        "{}",
        tag(&page, "approve-valid-to")
    );
    // The next day would end later than asked: refused.
    let next_day = (chrono::NaiveDate::parse_from_str(&last_day, "%Y-%m-%d").unwrap()
        + chrono::Duration::days(1))
    .to_string();
    let fields = [
        ("attributes", "personal_code"),
        ("attributes", "given_name"),
        ("valid_to", next_day.as_str()),
    ];
    let refused = owner.submit(&format!("{path}/approve"), &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    // Typing the day shown keeps the requested end exactly.
    let fields = [
        ("attributes", "personal_code"),
        ("attributes", "given_name"),
        ("valid_to", last_day.as_str()),
    ];
    let done = owner.submit(&format!("{path}/approve"), &fields).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.has("The request was approved"), "{}", done.html);
    assert!(!done.has("id=\"narrowed\""), "nothing was narrowed");
    assert_eq!(text_of(&done, "granted-valid-to", "</dd>"), last_day);
    let r = rest(&base, &creds, &format!("requests/{id}")).await;
    let agreement_id = r["agreement_id"].as_i64().unwrap();
    let a = rest(&base, &creds, &format!("agreements/{agreement_id}")).await;
    assert_eq!(a["valid_to"], requested["valid_to"], "{a}");

    // The agreement's page and the list read the same day.
    let page = owner.open(&format!("/agreements/{agreement_id}")).await;
    let validity = text_of(&page, "agreement-validity", "</dd>");
    assert!(validity.ends_with(&format!("to {last_day}")), "{validity}");
    let list = consumer.open("/agreements").await;
    let row = element(&list, &format!("agreement-{agreement_id}"), "</tr>");
    assert!(row.contains(&format!("<td>{last_day}</td>")), "{row}");
}

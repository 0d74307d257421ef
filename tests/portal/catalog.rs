//! Portal pages of `portal/src/catalog.rs` over HTTP: the catalog and its search, a dataset's
//! page with its masked and audited sample, and the access request form.

use serde_json::Value;

use crate::common::{credentials, get_auth, system_token};
use crate::demo_server;
use crate::support::{Browser, Page, demo_password, unescape};

/// The HTML from `<{tag} id="{id}"` to its closing tag (no nesting of the same tag).
fn element<'a>(html: &'a str, tag: &str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<{tag} id=\"{id}\""))?;
    let end = start + html[start..].find(&format!("</{tag}>"))?;
    Some(&html[start..end])
}

/// Text without tags, entities decoded, whitespace collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A table's column names (the first word of each header) and its body's cells.
fn table(html: &str, id: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let t = element(html, "table", id).unwrap_or_else(|| panic!("no table #{id} in {html}"));
    let (head, body) = t.split_once("<tbody>").unwrap();
    let columns = head
        .split("<th ")
        .skip(1)
        .map(|th| text(&format!("<th {}", th.split("</th>").next().unwrap())))
        .map(|h| h.split(' ').next().unwrap_or("").to_owned())
        .collect();
    let rows = body
        .split("<tr")
        .skip(1)
        .map(|tr| {
            tr.split("<td")
                .skip(1)
                .map(|td| {
                    let inner = td.split_once('>').unwrap().1;
                    text(inner.split("</td>").next().unwrap())
                })
                .collect()
        })
        .collect();
    (columns, rows)
}

/// The `<tr id="{id}">` row of a page: its HTML.
fn row<'a>(page: &'a Page, id: &str) -> &'a str {
    element(&page.html, "tr", id).unwrap_or_else(|| panic!("no row #{id} in {}", page.html))
}

/// The start tag of the element with `id`.
fn tag<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..end]
}

#[tokio::test]
async fn catalog_lists_every_dataset_and_searches() {
    let (dir, server) = demo_server();
    let creds = credentials(dir.path());
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&server.base);
    b.sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    b.get("/lang/en?back=%2F").await;

    let page = b.open("/catalog").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("<table id=\"catalog\""));
    assert!(page.has("<form role=\"search\" class=\"search\""));
    // The same datasets, versions and row counts as the REST catalog.
    let (status, _, api) = get_auth(&format!("{}/api/v1/datasets", server.base), &admin).await;
    assert_eq!(status, 200);
    let api = api.as_array().unwrap();
    assert_eq!(api.len(), 4, "{api:?}");
    for d in api {
        let name = d["name"].as_str().unwrap();
        let html = row(&page, &format!("dataset-{name}"));
        let r = text(html);
        assert!(r.contains(d["owner"].as_str().unwrap()), "{r}");
        assert!(r.contains(&format!(" {} ", d["version"])), "{name}: {r}");
        assert!(r.contains(&format!(" {} ", d["rows"])), "{name}: {r}");
        assert!(page.has(&format!("href=\"/datasets/{name}\"")));
        // Every personal attribute is tagged, and only those.
        let personal = d["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["personal"] == true)
            .count();
        assert_eq!(
            html.matches("class=\"tag personal\"").count(),
            personal,
            "{name}: {r}"
        );
    }
    let persons = text(row(&page, "dataset-persons"));
    assert!(
        persons.contains("PMLP") && persons.contains("Pilsonības un migrācijas lietu pārvalde"),
        "{persons}"
    );
    assert!(
        persons.ends_with("just now") || persons.ends_with("ago"),
        "the age of the last load: {persons}"
    );
    assert!(text(row(&page, "dataset-companies")).contains("Uzņēmumu reģistrs"));

    // The search looks in names, descriptions, attributes and owners, whatever the case
    // and diacritics.
    let found = b.get("/catalog?q=CADASTRE").await;
    assert_eq!(found.status, 200);
    assert!(found.has("id=\"dataset-real_estate\"") && !found.has("id=\"dataset-persons\""));
    assert!(
        found.has("value=\"CADASTRE\""),
        "the search is kept in its box"
    );
    let by_owner = b.get("/catalog?q=zemes+dienests").await;
    assert!(by_owner.has("id=\"dataset-addresses\"") && by_owner.has("id=\"dataset-real_estate\""));
    assert!(!by_owner.has("id=\"dataset-persons\"") && !by_owner.has("id=\"dataset-companies\""));
    let by_attribute = b.get("/catalog?q=nace_code").await;
    assert!(
        by_attribute.has("id=\"dataset-companies\"")
            && !by_attribute.has("id=\"dataset-addresses\"")
    );
    let folded = b.get("/catalog?q=pilsonibas").await;
    assert!(folded.has("id=\"dataset-persons\"") && !folded.has("id=\"dataset-companies\""));
    let none = b.get("/catalog?q=%3Cscript%3Enothing").await;
    assert_eq!(none.status, 200);
    assert!(none.has("id=\"no-results\"") && !none.has("<table id=\"catalog\""));
    assert!(
        !none.html.contains("<script>nothing"),
        "the search is escaped"
    );
}

#[tokio::test]
async fn a_dataset_page_shows_only_what_the_agreements_allow_and_logs_the_preview() {
    let (dir, server) = demo_server();
    let creds = credentials(dir.path());
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let records = format!("{}/api/v1/datasets/persons/records?limit=10", server.base);

    for (login, org, only_riga) in [
        ("riga.consumer", "RIGA", true),
        ("banka.consumer", "BANKA", false),
    ] {
        let mut b = Browser::new(&server.base);
        b.sign_in(login, &demo_password(login)).await;
        let page = b.open("/datasets/persons").await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.has("<dl class=\"facts\"") && page.has("<table id=\"attributes\""));
        assert!(
            page.has("id=\"agreements\""),
            "{login}: its agreement is listed"
        );
        assert!(
            page.has("id=\"sample-logged\""),
            "{login}: the preview says it is logged"
        );
        let (columns, rows) = table(&page.html, "sample");
        // What the organisation's system gets from the REST API.
        let (status, _, api) = get_auth(&records, &system_token(&creds, org, "consumer")).await;
        assert_eq!(status, 200, "{api}");
        let api = api["records"].as_array().unwrap();
        let mut api_columns: Vec<String> = api[0].as_object().unwrap().keys().cloned().collect();
        let mut page_columns = columns.clone();
        api_columns.sort();
        page_columns.sort();
        assert_eq!(
            page_columns, api_columns,
            "{login}: only the granted attributes"
        );
        assert!(!columns.contains(&"phone".to_owned()) && !columns.contains(&"email".to_owned()));
        let key = columns.iter().position(|c| c == "personal_code").unwrap();
        let page_keys: Vec<&str> = rows.iter().map(|r| r[key].as_str()).collect();
        let api_keys: Vec<&str> = api
            .iter()
            .map(|r| r["personal_code"].as_str().unwrap())
            .collect();
        assert_eq!(page_keys, api_keys, "{login}: the same records as the API");
        assert_eq!(rows.len(), 10);
        if only_riga {
            let m = columns.iter().position(|c| c == "municipality").unwrap();
            assert!(rows.iter().all(|r| r[m] == "Rīga"), "{rows:?}");
        } else {
            assert!(!columns.contains(&"municipality".to_owned()));
        }
        assert!(
            page.has("id=\"request-access\""),
            "a consumer may ask for more"
        );
    }

    // The previews are in the usage log, with their purpose and organisation.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/usage/records?dataset=persons&format=csv",
            server.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    let previews: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains("portal: dataset preview"))
        .collect();
    assert_eq!(previews.len(), 2, "{csv}");
    assert!(
        previews.iter().any(|l| l.contains("RIGA")) && previews.iter().any(|l| l.contains("BANKA"))
    );

    // The owner sees its dataset whole; an admin and a consumer without agreement see none.
    let mut owner = Browser::new(&server.base);
    owner
        .sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;
    let page = owner.open("/datasets/persons").await;
    let (columns, rows) = table(&page.html, "sample");
    assert!(
        columns.contains(&"phone".to_owned()) && rows.len() == 10,
        "{columns:?}"
    );
    assert!(!page.has("id=\"request-access\""));
    let mut a = Browser::new(&server.base);
    a.sign_in("admin", &demo_password("admin")).await;
    let page = a.open("/datasets/persons").await;
    assert_eq!(page.status, 200);
    assert!(page.has("id=\"no-sample\"") && !page.has("<table id=\"sample\""));
    let mut apdr = Browser::new(&server.base);
    apdr.sign_in("apdr.consumer", &demo_password("apdr.consumer"))
        .await;
    let page = apdr.open("/datasets/persons").await;
    assert!(page.has("id=\"no-sample\"") && !page.has("<table id=\"sample\""));
    assert!(
        page.has("href=\"/datasets/persons/request\""),
        "offered the request form"
    );
    // None of these went into the log: no personal data left.
    let csv = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/usage/records?dataset=persons&format=csv",
            server.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !csv.lines()
            .any(|l| l.contains("dataset preview") && l.contains("APDR"))
    );
    // An unknown dataset is a readable 404.
    let missing = apdr.get("/datasets/no_such").await;
    assert_eq!(missing.status, 404);
    assert!(missing.has("id=\"error\""));

    // When the preview cannot be recorded, no row is shown.
    let mut riga = Browser::new(&server.base);
    riga.sign_in("riga.consumer", &demo_password("riga.consumer"))
        .await;
    let shown = riga.open("/datasets/persons").await;
    let (columns, rows) = table(&shown.html, "sample");
    let key = columns.iter().position(|c| c == "personal_code").unwrap();
    break_audit_log(dir.path()).await;
    let page = riga.open("/datasets/persons").await;
    assert_eq!(page.status, 503, "{}", page.html);
    assert!(page.has("id=\"error\"") && !page.has("<table id=\"sample\""));
    assert!(
        rows.iter().all(|r| !page.html.contains(&r[key])),
        "no personal code leaks"
    );
}

/// Make every insert into the usage audit log fail, through a second connection to its
/// database (as `tests/audit.rs` does).
async fn break_audit_log(dir: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("audit.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!tables.is_empty(), "audit tables exist");
    for (t,) in tables {
        sqlx::query(&format!(
            "CREATE TRIGGER fail_{t} BEFORE INSERT ON \"{t}\" BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

/// RIGA's requests for `dataset`, as the API lists them to an admin.
async fn riga_requests(base: &str, admin: &str, dataset: &str) -> Vec<Value> {
    let (status, _, list) = get_auth(
        &format!("{base}/api/v1/requests?dataset={dataset}&limit=100"),
        admin,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["consumer_organisation"] == "RIGA")
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_request_form_keeps_refused_input_and_files_a_pending_request() {
    let (dir, server) = demo_server();
    let creds = credentials(dir.path());
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let systems: Vec<String> = creds["systems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["organisation"] == "RIGA" && s["role"] == "consumer")
        .map(|s| s["system_id"].to_string())
        .collect();
    assert_eq!(systems.len(), 2);
    let mut b = Browser::new(&server.base);
    b.sign_in("riga.consumer", &demo_password("riga.consumer"))
        .await;
    let path = "/datasets/companies/request";

    let form = b.open(path).await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.has("id=\"request-form\"") && form.has("id=\"sla-deadline\""));
    for s in &systems {
        assert!(form.has(&format!("name=\"systems\" value=\"{s}\" id=\"system-{s}\"")));
    }
    assert!(form.has("name=\"attributes\" value=\"nace_code\" id=\"attr-nace_code\""));
    let valid_from = form.hidden("valid_from").unwrap();
    let valid_to = form.hidden("valid_to").unwrap();
    let year: i32 = valid_from[..4].parse().unwrap();
    assert!(
        valid_to.starts_with(&(year + 1).to_string()),
        "a year ahead: {valid_to}"
    );
    let deadline = text(element(&form.html, "strong", "sla-deadline").unwrap());

    // A row scope naming no column is refused; everything typed stays.
    let mut fields = vec![
        ("attributes", "registration_number"),
        ("attributes", "nace_code"),
        ("row_scope", "no_such_column = 'x'"),
        ("purpose", "Pašvaldības iepirkumu pretendentu pārbaude"),
        ("legal_basis", "Publisko iepirkumu likums"),
        ("systems", systems[1].as_str()),
        ("valid_from", valid_from.as_str()),
        ("valid_to", valid_to.as_str()),
    ];
    let refused = b.submit(path, &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.has("id=\"error\""));
    assert!(refused.has("id=\"row_scope\" name=\"row_scope\" value=\"no_such_column = 'x'\""));
    assert!(tag(&refused.html, "row_scope").contains("aria-invalid=\"true\""));
    assert!(!tag(&refused.html, "purpose").contains("aria-invalid"));
    assert!(
        refused.has("id=\"attr-nace_code\" checked")
            && refused.has("id=\"attr-registration_number\" checked")
    );
    assert!(!refused.has("id=\"attr-name\" checked"));
    let s1 = &systems[1];
    assert!(refused.has(&format!("id=\"system-{s1}\" checked")));
    assert!(!refused.has(&format!("id=\"system-{}\" checked", systems[0])));
    assert!(refused.has(">Pašvaldības iepirkumu pretendentu pārbaude</textarea>"));
    assert!(refused.has("value=\"Publisko iepirkumu likums\""));
    assert!(refused.has(&format!(
        "id=\"valid_to\" name=\"valid_to\" value=\"{valid_to}\""
    )));

    // So is a missing purpose.
    fields[2] = ("row_scope", "legal_form = 'SIA'");
    fields[3] = ("purpose", "   ");
    let refused = b.submit(path, &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.has("id=\"purpose-error\""), "{}", refused.html);
    assert!(tag(&refused.html, "purpose").contains("aria-invalid=\"true\""));
    assert!(refused.has("value=\"legal_form = 'SIA'\""));
    assert!(refused.has("id=\"attr-nace_code\" checked"));
    assert!(
        riga_requests(&server.base, &admin, "companies")
            .await
            .is_empty(),
        "nothing filed"
    );

    // An admin is refused by the service.
    let mut a = Browser::new(&server.base);
    a.sign_in("admin", &demo_password("admin")).await;
    let page = a.open(path).await;
    assert!(page.has("id=\"not-consumer\""));
    fields[3] = ("purpose", "Pārbaude");
    let forbidden = a.submit(path, &fields).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.html);
    assert!(forbidden.has("id=\"error\"") && forbidden.has("value=\"legal_form = 'SIA'\""));

    // A good request is filed and pending, with the deadline the form showed.
    b.open(path).await;
    let csrf = b.csrf.clone().unwrap();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(&fields);
    let done = b.post_raw(path, &all).await;
    assert_eq!(done.status, 303, "{}", done.html);
    let to = done.location.unwrap();
    let id = to
        .strip_prefix("/requests/")
        .and_then(|r| r.strip_suffix("?done=created"))
        .unwrap_or_else(|| panic!("{to}"));
    let riga_token = system_token(&creds, "RIGA", "consumer");
    let (status, _, r) = get_auth(
        &format!("{}/api/v1/requests/{id}", server.base),
        &riga_token,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["dataset"], "companies");
    assert_eq!(
        r["attributes"],
        serde_json::json!(["registration_number", "nace_code"])
    );
    assert_eq!(r["row_scope"], "legal_form = 'SIA'");
    assert_eq!(
        r["systems"],
        serde_json::json!([s1.parse::<i64>().unwrap()])
    );
    // Latvian days: from the start of the first to the end of the last (UTC+2 or +3).
    let local_midnight = |t: &Value| {
        let t = t.as_str().unwrap();
        t.contains("T21:00:00") || t.contains("T22:00:00")
    };
    assert!(
        local_midnight(&r["valid_from"]) && local_midnight(&r["valid_to"]),
        "{r}"
    );
    assert!(
        r["valid_to"].as_str().unwrap().starts_with(&valid_to),
        "the end of {valid_to}: {r}"
    );
    // The deadline shown is the service's (Latvian time, so 2–3 hours ahead of UTC, give
    // or take the minutes between opening the form and submitting it).
    let shown = chrono::NaiveDateTime::parse_from_str(&deadline, "%Y-%m-%d %H:%M").unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(r["due_at"].as_str().unwrap())
        .unwrap()
        .naive_utc();
    let ahead = (shown - due).num_minutes();
    assert!((115..=185).contains(&ahead), "shown {shown}, due {due} UTC");
    assert_eq!(
        riga_requests(&server.base, &admin, "companies").await.len(),
        1
    );
}

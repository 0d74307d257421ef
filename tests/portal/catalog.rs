//! Portal pages of `portal/src/catalog.rs` over HTTP: the catalog and its search, a dataset's
//! page and the masked, audited sample asked for on it, and the access request form.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{credentials, get_auth, post_auth, system_token};
use crate::demo_server;
use crate::support::{Browser, Page, demo_password, text};

/// The HTML from `<{tag} id="{id}"` to its closing tag (no nesting of the same tag).
fn element<'a>(html: &'a str, tag: &str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<{tag} id=\"{id}\""))?;
    let end = start + html[start..].find(&format!("</{tag}>"))?;
    Some(&html[start..end])
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
    assert_eq!(api.len(), 6, "{api:?}");
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

/// The usage log of `dataset` as the admin exports it (CSV): one map per record.
async fn usage_records(base: &str, admin: &str, dataset: &str) -> Vec<BTreeMap<String, String>> {
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/usage/records?dataset={dataset}&format=csv"
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rows = parse_csv(&r.text().await.unwrap());
    let (head, body) = rows.split_first().expect("a CSV header");
    body.iter()
        .map(|row| head.iter().cloned().zip(row.iter().cloned()).collect())
        .collect()
}

/// Rows of CSV text (fields quoted with `"` when they hold commas, quotes or line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// The active agreements of `consumer` on `dataset`, as the REST API lists them.
async fn agreements_of(base: &str, admin: &str, consumer: &str, dataset: &str) -> Vec<Value> {
    let (status, _, list) = get_auth(
        &format!("{base}/api/v1/agreements?dataset={dataset}&status=active&limit=100"),
        admin,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["consumer_organisation"] == consumer)
        .cloned()
        .collect()
}

/// The demo system of `organisation` named `name`: (id, token).
fn system(creds: &Value, organisation: &str, name: &str) -> (i64, String) {
    let s = creds["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["organisation"] == organisation && s["system"] == name)
        .unwrap_or_else(|| panic!("no system {name} of {organisation}"));
    (
        s["system_id"].as_i64().unwrap(),
        s["token"].as_str().unwrap().to_owned(),
    )
}

/// The records of `persons` a system gets from the REST API: column names (sorted) and
/// personal codes, in order.
async fn rest_sample(base: &str, token: &str) -> (Vec<String>, Vec<String>) {
    let (status, _, api) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records?limit=10"),
        token,
    )
    .await;
    assert_eq!(status, 200, "{api}");
    let api = api["records"].as_array().unwrap();
    let mut columns: Vec<String> = api[0].as_object().unwrap().keys().cloned().collect();
    columns.sort();
    let keys = api
        .iter()
        .map(|r| r["personal_code"].as_str().unwrap().to_owned())
        .collect();
    (columns, keys)
}

/// A sample table's columns (sorted) and personal codes, in order.
fn page_sample(page: &Page) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let (columns, rows) = table(&page.html, "sample");
    let key = columns.iter().position(|c| c == "personal_code").unwrap();
    let keys = rows.iter().map(|r| r[key].clone()).collect();
    let mut sorted = columns.clone();
    sorted.sort();
    (sorted, keys, rows)
}

#[tokio::test]
async fn a_dataset_page_shows_a_sample_only_when_asked_under_an_agreement() {
    let (dir, server) = demo_server();
    let base = server.base.clone();
    let creds = credentials(dir.path());
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let sample_path = "/datasets/persons/sample";

    for (login, org, system_name) in [
        ("riga.consumer", "RIGA", "Pašvaldības pakalpojumu portāls"),
        ("banka.consumer", "BANKA", "Klientu izpētes sistēma"),
    ] {
        let agreements = agreements_of(&base, &admin, org, "persons").await;
        assert_eq!(agreements.len(), 1, "{agreements:?}");
        let agreement = &agreements[0];
        let id = agreement["id"].as_i64().unwrap();
        let purpose = agreement["purpose"].as_str().unwrap();
        let (_, token) = system(&creds, org, system_name);
        let (api_columns, api_keys) = rest_sample(&base, &token).await;
        // (That REST read is in the log too.)
        let logged = usage_records(&base, &admin, "persons").await.len();

        // Opening the page reads no records: the form asks for a sample.
        let mut b = Browser::new(&base);
        b.sign_in(login, &demo_password(login)).await;
        let page = b.open("/datasets/persons").await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.has("<dl class=\"facts\"") && page.has("<table id=\"attributes\""));
        assert!(
            page.has(&format!("id=\"agreement-{id}\"")),
            "{login}: listed"
        );
        assert!(!page.has("<table id=\"sample\"") && !page.has("id=\"sample-logged\""));
        for code in &api_keys {
            assert!(!page.has(code), "{login}: no personal code on the page");
        }
        let form = tag(&page.html, "sample-form");
        assert!(
            form.contains("method=\"post\"") && form.contains(&format!("action=\"{sample_path}\"")),
            "{form}"
        );
        assert!(page.has("id=\"show-sample\"") && page.has("<label for=\"sample-agreement\""));
        // The only agreement is chosen, named by its id, attributes and purpose.
        let option = element(&page.html, "select", "sample-agreement").unwrap();
        let option = text(option);
        assert!(option.contains(&format!(" {id}:")), "{option}");
        assert!(
            option.contains(purpose) && option.contains("personal_code"),
            "{option}"
        );
        assert!(page.has(&format!("<option value=\"{id}\" selected>")));
        assert!(
            text(&page.html).contains("recorded in the usage log")
                || text(&page.html).contains("datu izmantošanas žurnālā"),
            "the form says the sample is logged"
        );
        assert!(
            page.has("id=\"request-access\""),
            "a consumer may ask for more"
        );

        // A post without the session's token (another site's form) is refused.
        let forged = b
            .post_raw(sample_path, &[("agreement", &id.to_string())])
            .await;
        assert_eq!(forged.status, 403, "{}", forged.html);
        assert!(!forged.has("<table id=\"sample\""));
        let forged = b
            .post_raw(
                sample_path,
                &[
                    ("csrf", "0".repeat(64).as_str()),
                    ("agreement", &id.to_string()),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{}", forged.html);
        assert_eq!(
            usage_records(&base, &admin, "persons").await.len(),
            logged,
            "{login}: neither the page nor a refused post is a read"
        );

        // Asked for, the sample is what the organisation's systems get under the agreement.
        b.open("/datasets/persons").await;
        let shown = b
            .submit(sample_path, &[("agreement", &id.to_string())])
            .await;
        assert_eq!(shown.status, 200, "{}", shown.html);
        assert!(shown.location.is_none(), "a page, not a redirect");
        assert!(shown.has("id=\"sample-logged\"") && shown.has(purpose));
        let (columns, keys, rows) = page_sample(&shown);
        assert_eq!(columns, api_columns, "{login}: only the granted attributes");
        assert_eq!(keys, api_keys, "{login}: the same records as the API");
        assert_eq!(rows.len(), 10);
        assert!(!columns.contains(&"phone".to_owned()) && !columns.contains(&"email".to_owned()));
        if org == "RIGA" {
            let (raw, _) = table(&shown.html, "sample");
            let m = raw.iter().position(|c| c == "municipality").unwrap();
            assert!(rows.iter().all(|r| r[m] == "Rīga"), "{rows:?}");
        } else {
            assert!(!columns.contains(&"municipality".to_owned()));
        }

        // One access record, under the agreement's purpose, by one of its systems.
        let records = usage_records(&base, &admin, "persons").await;
        assert_eq!(records.len(), logged + 1, "{login}: {records:?}");
        let r = records
            .iter()
            .find(|r| r["purpose"] == purpose)
            .unwrap_or_else(|| panic!("{login}: no record with the purpose: {records:?}"));
        assert_eq!(r["organisation"], org);
        assert_eq!(r["channel"], "rest");
        assert!(r["agreements"].contains(&format!("\"{id}\"")), "{r:?}");
        let systems: Vec<String> = agreement["systems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(systems.contains(&r["system"]), "{r:?} {systems:?}");
    }

    // An agreement granted to one system only: BANKA's credit system also gets phone
    // numbers. A sample under the first agreement still shows only what it grants.
    let (credit, credit_token) = system(&creds, "BANKA", "Kredītu lēmumu sistēma");
    let (_, kyc_token) = system(&creds, "BANKA", "Klientu izpētes sistēma");
    let phone_purpose = "Kredīta pieteicēja saziņas datu pārbaude";
    let (status, _, request) = post_auth(
        &format!("{base}/api/v1/requests"),
        &credit_token,
        &serde_json::json!({
            "dataset": "persons",
            "attributes": ["personal_code", "phone"],
            "purpose": phone_purpose,
            "legal_basis": "Patērētāju tiesību aizsardzības likums, 8. pants",
            "systems": [credit],
            "valid_to": (chrono::Utc::now() + chrono::Duration::days(300)).format("%Y-%m-%d").to_string(),
        }),
    )
    .await;
    assert_eq!(status, 201, "{request}");
    let (status, _, phone_agreement) = post_auth(
        &format!("{base}/api/v1/requests/{}/approve", request["id"]),
        &system_token(&creds, "PMLP", "provider"),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{phone_agreement}");
    let phone_id = phone_agreement["id"].as_i64().unwrap();
    let kyc_id = agreements_of(&base, &admin, "BANKA", "persons")
        .await
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .find(|&a| a != phone_id)
        .unwrap();
    let (kyc_columns, _) = rest_sample(&base, &kyc_token).await;
    let (credit_columns, _) = rest_sample(&base, &credit_token).await;
    let mut logged = usage_records(&base, &admin, "persons").await.len();
    assert!(
        credit_columns.contains(&"phone".to_owned()) && !kyc_columns.contains(&"phone".to_owned())
    );

    let mut b = Browser::new(&base);
    b.sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    let page = b.open("/datasets/persons").await;
    // Two to choose from: none chosen for the visitor.
    assert!(
        page.has(&format!("<option value=\"{kyc_id}\">")),
        "{}",
        page.html
    );
    assert!(page.has(&format!("<option value=\"{phone_id}\">")));
    assert!(page.has("<option value=\"\">") && !page.has(" selected>"));
    // Nothing chosen: the form says so, and nothing is read.
    let refused = b.submit(sample_path, &[("agreement", "")]).await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.has("id=\"error\"") && !refused.has("<table id=\"sample\""));
    assert!(tag(&refused.html, "sample-agreement").contains("aria-invalid=\"true\""));

    let shown = b
        .submit(sample_path, &[("agreement", &kyc_id.to_string())])
        .await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    let (columns, _, _) = page_sample(&shown);
    assert_eq!(
        columns, kyc_columns,
        "no phone numbers under the KYC agreement"
    );
    assert!(
        shown.has(&format!("<option value=\"{kyc_id}\" selected>")),
        "the choice is kept"
    );
    let shown = b
        .submit(sample_path, &[("agreement", &phone_id.to_string())])
        .await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    let (columns, _, _) = page_sample(&shown);
    assert!(columns.contains(&"phone".to_owned()), "{columns:?}");
    assert!(shown.has(phone_purpose));
    let records = usage_records(&base, &admin, "persons").await;
    assert_eq!(records.len(), logged + 2, "{records:?}");
    let r = records
        .iter()
        .find(|r| r["purpose"] == phone_purpose)
        .unwrap();
    assert_eq!(r["system"], credit.to_string());
    assert!(r["attributes"].contains("phone"), "{r:?}");
    logged += 2;

    // Another organisation's agreement, or one on another dataset, is refused; nothing is
    // read.
    let mut riga = Browser::new(&base);
    riga.sign_in("riga.consumer", &demo_password("riga.consumer"))
        .await;
    riga.open("/datasets/persons").await;
    let refused = riga
        .submit(sample_path, &[("agreement", &kyc_id.to_string())])
        .await;
    assert_eq!(refused.status, 404, "{}", refused.html);
    assert!(refused.has("id=\"error\"") && !refused.has("<table id=\"sample\""));
    assert!(refused.has("id=\"sample-form\""), "the form is shown again");
    let addresses = agreements_of(&base, &admin, "BANKA", "addresses").await;
    let other_dataset = addresses[0]["id"].as_i64().unwrap().to_string();
    b.open("/datasets/persons").await;
    let refused = b
        .submit(sample_path, &[("agreement", &other_dataset)])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.has("id=\"error\"") && refused.has("addresses"));
    assert!(!refused.has("<table id=\"sample\""));
    assert!(tag(&refused.html, "sample-agreement").contains("aria-invalid=\"true\""));
    assert_eq!(usage_records(&base, &admin, "persons").await.len(), logged);
}

#[tokio::test]
async fn owners_sample_their_own_data_others_get_no_form_and_an_unrecorded_sample_is_not_shown() {
    let (dir, server) = demo_server();
    let base = server.base.clone();
    let creds = credentials(dir.path());
    let admin = creds["admin"]["token"].as_str().unwrap().to_owned();
    let sample_path = "/datasets/persons/sample";
    let logged = usage_records(&base, &admin, "persons").await.len();

    // The owner gets the button (no agreement to choose) and sees its dataset whole.
    let mut owner = Browser::new(&base);
    owner
        .sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;
    let page = owner.open("/datasets/persons").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has("id=\"sample-form\"") && page.has("id=\"show-sample\""));
    assert!(!page.has("id=\"sample-agreement\"") && !page.has("<table id=\"sample\""));
    assert!(!page.has("id=\"request-access\""));
    let shown = owner.submit(sample_path, &[]).await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    let (columns, rows) = table(&shown.html, "sample");
    assert!(
        columns.contains(&"phone".to_owned()) && rows.len() == 10,
        "{columns:?}"
    );
    assert!(shown.has("id=\"sample-logged\"") && shown.has("portal: dataset preview"));
    let records = usage_records(&base, &admin, "persons").await;
    assert_eq!(records.len(), logged + 1, "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r["organisation"] == "PMLP" && r["purpose"].contains("dataset preview")),
        "{records:?}"
    );
    let logged = logged + 1;

    // An admin and a consumer without an agreement get no form, and a post reads nothing.
    let mut a = Browser::new(&base);
    a.sign_in("admin", &demo_password("admin")).await;
    let page = a.open("/datasets/persons").await;
    assert_eq!(page.status, 200);
    assert!(page.has("id=\"no-sample\"") && !page.has("id=\"sample-form\""));
    let refused = a.submit(sample_path, &[("agreement", "1")]).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(refused.has("id=\"error\"") && !refused.has("<table id=\"sample\""));
    let mut apdr = Browser::new(&base);
    apdr.sign_in("apdr.consumer", &demo_password("apdr.consumer"))
        .await;
    let page = apdr.open("/datasets/persons").await;
    assert!(page.has("id=\"no-sample\"") && !page.has("id=\"sample-form\""));
    assert!(
        page.has("href=\"/datasets/persons/request\""),
        "offered the request form"
    );
    let riga_agreement = agreements_of(&base, &admin, "RIGA", "persons").await[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let refused = apdr
        .submit(sample_path, &[("agreement", &riga_agreement)])
        .await;
    assert_eq!(refused.status, 404, "{}", refused.html);
    assert!(!refused.has("<table id=\"sample\""));
    assert_eq!(usage_records(&base, &admin, "persons").await.len(), logged);
    // An unknown dataset is a readable 404.
    let missing = apdr.get("/datasets/no_such").await;
    assert_eq!(missing.status, 404);
    assert!(missing.has("id=\"error\""));

    // When the sample cannot be recorded, no row is shown.
    let mut riga = Browser::new(&base);
    riga.sign_in("riga.consumer", &demo_password("riga.consumer"))
        .await;
    riga.open("/datasets/persons").await;
    let fields = [("agreement", riga_agreement.as_str())];
    let shown = riga.submit(sample_path, &fields).await;
    let (_, keys, _) = page_sample(&shown);
    crate::common::break_audit_log(dir.path()).await;
    // The first sample after the break may still be recorded (see `break_audit_log`).
    riga.open("/datasets/persons").await;
    let mut page = riga.submit(sample_path, &fields).await;
    for _ in 0..20 {
        if page.status != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        riga.open("/datasets/persons").await;
        page = riga.submit(sample_path, &fields).await;
    }
    assert_eq!(page.status, 503, "{}", page.html);
    assert!(page.has("id=\"error\"") && !page.has("<table id=\"sample\""));
    assert!(
        keys.iter().all(|k| !page.html.contains(k.as_str())),
        "no personal code leaks"
    );
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
    assert_eq!(
        systems.len(),
        3,
        "RIGA's portal, social service and TAPIS systems"
    );
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

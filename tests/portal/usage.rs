//! Portal pages of `portal/src/usage.rs` and `portal/src/dashboard.rs` over HTTP: the
//! citizen's "who used my data", the owners' usage views with their charts and CSV, and
//! the admin dashboard.

use serde_json::{Value, json};

use crate::common::{self, credentials, system_token};
use crate::{Browser, demo_password, demo_server};

/// (personal code, token) of the demo's citizens.
fn subjects(creds: &Value) -> Vec<(String, String)> {
    creds["subjects"]
        .as_array()
        .expect("subjects in the demo credentials")
        .iter()
        .map(|s| {
            (
                s["personal_code"].as_str().unwrap().to_owned(),
                s["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A consumer system reads `code` in persons over REST with `purpose`.
async fn read_person(base: &str, token: &str, code: &str, purpose: &str) {
    let (status, _, body) = common::send(
        reqwest::Client::new()
            .get(format!("{base}/api/v1/datasets/persons/records/{code}"))
            .bearer_auth(token)
            .header("x-dagr-purpose", purpose),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_citizen_sees_who_used_their_data() {
    let (dir, server) = demo_server();
    let creds = credentials(dir.path());
    let people = subjects(&creds);
    let (alice, alice_token) = people[0].clone();
    let (_, bob_token) = people[1].clone();
    let bank = system_token(&creds, "BANKA", "consumer");

    // The bank reads Alice's record, and reports that it used her name in its own system.
    read_person(&server.base, &bank, &alice, "credit check 4711").await;
    let (status, _, body) = common::post_auth(
        &format!("{}/api/v1/usage-events", server.base),
        &bank,
        &json!({"events": [{
            "subject": alice,
            "purpose": "loan decision 99",
            "time": chrono::Utc::now().to_rfc3339(),
            "transaction_id": "tx-portal-1",
            "dataset": "persons",
            "attributes": ["given_name"],
        }]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Alice's page lists both, with the organisation (code and name) and the purposes.
    let mut b = Browser::new(&server.base);
    let home = b.sign_in_citizen(&alice_token).await;
    assert_eq!(home.status, 200, "{}", home.html);
    assert!(home.has("id=\"usage-records\""), "{}", home.html);
    assert!(home.has("id=\"usage-filter\"") && home.has("method=\"get\""));
    assert!(home.has("credit check 4711") && home.has("loan decision 99"));
    assert!(home.has("BANKA") && home.has("AS Demo Banka"));
    assert!(home.has("tx-portal-1"));
    assert!(home.has("DAGR piekļuves ieraksts") && home.has("Organizācijas lietošanas notikums"));
    // Newest first: the reported use came after the read.
    let html = home.html.clone();
    assert!(html.find("loan decision 99").unwrap() < html.find("credit check 4711").unwrap());

    // The organisation filter narrows it.
    let riga = b.get("/me/usage?organisation=RIGA").await;
    assert_eq!(riga.status, 200);
    assert!(!riga.has("credit check 4711"));
    assert!(riga.has("id=\"no-usage\""), "{}", riga.html);
    assert!(riga.has("<option value=\"RIGA\" selected>"));
    let banka = b.get("/me/usage?organisation=BANKA").await;
    assert!(banka.has("credit check 4711"));

    // The period filter narrows it too: nothing in 2020, everything in 2020–2099.
    let old = b.get("/me/usage?from=2020-01-01&to=2020-12-31").await;
    assert_eq!(old.status, 200);
    assert!(!old.has("credit check 4711") && old.has("id=\"no-usage\""));
    assert!(old.has("value=\"2020-01-01\""), "the filter is kept");
    let wide = b
        .get("/me/usage?from=2020-01-01&to=2099-12-31&organisation=BANKA")
        .await;
    assert!(wide.has("credit check 4711") && wide.has("loan decision 99"));
    // A date that is not one is refused on the form, the input kept.
    let bad = b.get("/me/usage?from=yesterday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.has("id=\"error\"") && bad.has("aria-invalid=\"true\""));
    assert!(bad.has("value=\"yesterday\""));

    // Fifty reads more: the first page holds the newest 50, the next page the older ones.
    for i in 0..50 {
        read_person(&server.base, &bank, &alice, &format!("batch read {i}")).await;
    }
    let first = b.get("/me/usage").await;
    assert!(first.has("batch read 49") && !first.has("credit check 4711"));
    let at = first.html.find("\" rel=\"next\"").expect("a next page");
    let from = first.html[..at].rfind("href=\"").unwrap() + 6;
    let href = first.html[from..at]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(
        href.starts_with("/me/usage?") && href.contains("before="),
        "{href}"
    );
    let second = b.get(&href).await;
    assert_eq!(second.status, 200);
    assert!(second.has("credit check 4711") && !second.has("batch read 49"));

    // Bob does not see Alice's records.
    let mut bob = Browser::new(&server.base);
    let his = bob.sign_in_citizen(&bob_token).await;
    assert_eq!(his.status, 200);
    assert!(!his.has("credit check 4711") && !his.has("loan decision 99"));

    // An organisation's person is told the page is for citizens.
    let mut consumer = Browser::new(&server.base);
    consumer
        .sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    let refused = consumer.get("/me/usage").await;
    assert_eq!(refused.status, 403);
    assert!(refused.has("id=\"error\"") && !refused.has("credit check 4711"));
}

#[tokio::test]
async fn owners_see_usage_charts_and_admins_the_dashboard() {
    let (dir, server) = demo_server();
    let creds = credentials(dir.path());
    let (alice, _) = subjects(&creds)[0].clone();
    let bank = system_token(&creds, "BANKA", "consumer");
    read_person(&server.base, &bank, &alice, "credit check 4711").await;

    // The owner of persons sees the two charts and the tables.
    let mut owner = Browser::new(&server.base);
    owner
        .sign_in("pmlp.owner", &demo_password("pmlp.owner"))
        .await;
    let usage = owner.get("/usage").await;
    assert_eq!(usage.status, 200, "{}", usage.html);
    assert!(usage.has("id=\"usage-filter\""));
    for chart in ["chart-usage", "chart-loads"] {
        let at = usage
            .html
            .find(&format!("<figure class=\"chart\" id=\"{chart}\">"))
            .unwrap_or_else(|| panic!("{chart}: {}", usage.html));
        let svg = &usage.html[at..];
        assert!(svg.find("<svg").unwrap() < svg.find("</figure>").unwrap());
        assert!(svg.contains("role=\"img\""));
    }
    assert!(
        !usage.has("style="),
        "no inline styles: the CSP blocks them"
    );
    let by_dataset = &usage.html[usage
        .html
        .find("id=\"usage-by-dataset\"")
        .expect("by dataset")..];
    assert!(by_dataset.contains("persons"));
    assert!(usage.has("id=\"usage-by-consumer\"") && usage.has("AS Demo Banka"));
    assert!(usage.has("id=\"usage-by-attribute\"") && usage.has("personal_code"));

    // The same records as CSV, for this owner.
    let csv = owner.get("/usage/records.csv").await;
    assert_eq!(csv.status, 200);
    let ct = csv.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(csv.html.starts_with("id,time,"), "{}", csv.html);
    assert!(csv.html.contains("credit check 4711"));

    // Another owner's dataset, and a period backwards, are refused.
    let theirs = owner.get("/usage?dataset=companies").await;
    assert_eq!(theirs.status, 403);
    let backwards = owner.get("/usage?from=2026-02-01&to=2026-01-01").await;
    assert_eq!(backwards.status, 422);
    assert!(backwards.has("aria-invalid=\"true\"") && backwards.has("value=\"2026-02-01\""));

    // A consumer sees neither the usage views nor the dashboard.
    let mut consumer = Browser::new(&server.base);
    consumer
        .sign_in("banka.consumer", &demo_password("banka.consumer"))
        .await;
    for path in ["/usage", "/usage/records.csv", "/admin"] {
        let page = consumer.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.has("id=\"error\""), "{path}: a readable refusal");
    }

    // A load the owner's system sends that is not Parquet is refused; the dashboard shows it.
    let provider = system_token(&creds, "PMLP", "provider");
    let (status, _, body) = common::send(
        reqwest::Client::new()
            .post(format!(
                "{}/api/v1/datasets/persons/loads?wait=true",
                server.base
            ))
            .bearer_auth(&provider)
            .header("content-type", "application/vnd.apache.parquet")
            .body("not a parquet file"),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // The admin's dashboard: stats, registers, health and the loads chart.
    let mut admin = Browser::new(&server.base);
    let dash = admin.sign_in("admin", &demo_password("admin")).await;
    assert_eq!(dash.status, 200, "{}", dash.html);
    assert!(dash.has("id=\"stat-registers\"") && dash.has("id=\"stat-overdue\""));
    let registers = &dash.html[dash.html.find("id=\"registers\"").expect("registers")..];
    for name in ["persons", "companies", "addresses", "real_estate"] {
        assert!(registers.contains(name), "{name}");
    }
    assert!(registers.contains("Pilsonības un migrācijas lietu pārvalde"));
    assert!(dash.has("id=\"consumers\"") && dash.has("AS Demo Banka"));
    assert!(dash.has("id=\"overdue\""));
    let recent = &dash.html[dash
        .html
        .find("<table id=\"recent-loads\"")
        .expect("recent loads")..];
    assert!(
        recent.contains("persons") && recent.contains("class=\"tag refused\""),
        "{recent}"
    );
    let refused = &dash.html[dash.html.find("id=\"stat-refused\"").unwrap()..];
    assert!(
        refused.starts_with("id=\"stat-refused\"><span class=\"value\">1<"),
        "{refused}"
    );
    let health = &dash.html[dash.html.find("id=\"health\"").expect("health")..];
    for part in [
        "health-engine",
        "health-store",
        "health-policy",
        "health-audit",
    ] {
        assert!(health.contains(part), "{part}");
    }
    assert!(!health.contains("tag bad"), "all healthy: {health}");
    assert!(dash.has("<figure class=\"chart\" id=\"chart-loads\">"));
    // Admins see every dataset's usage.
    let all = admin.get("/usage").await;
    assert_eq!(all.status, 200);
    assert!(all.has("AS Demo Banka"));
}

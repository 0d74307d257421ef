//! MAP end-to-end bench: `cargo bench --bench map` (`DAGR_BENCH_PERSONS` sets the demo's
//! persons, default 20 000). Starts the real `dagr serve` with the embedded demo (2 000 seeded
//! applications) and measures over REST, each figure against a baseline measured in the same
//! run on the same server and client:
//!
//! 1. list and filter pages of applications (p50/p95 of 300 requests each) against
//!    `GET /api/v1/me` (authentication and JSON, no query), and the same lists as portal
//!    pages against the portal's catalog page;
//! 2. pre-fill (`POST /applications`: two register reads, one audited, and the insert)
//!    against one audited REST record lookup of the same company's official by LIAA's MAP
//!    system token;
//! 3. decisions per second (`approve`: eligibility read, budget, de minimis, document,
//!    history) with 1, 2 and 4 concurrent approvers against the same number of concurrent
//!    `contract` actions (conditional update, document, history; no register read, no money).
//!
//! Nothing is asserted on times; a failed call fails the bench.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/mod.rs"]
mod support;

use support::{Api, ms, percentile, start_server};

fn persons() -> usize {
    support::persons(20_000)
}

impl Api {
    /// Latencies of `n` sequential calls of `path`.
    async fn latencies(&self, path: &str, token: &str, n: usize) -> Vec<Duration> {
        for _ in 0..20 {
            self.call("GET", path, token, None).await;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.call("GET", path, token, None).await;
            out.push(t.elapsed());
        }
        out.sort();
        out
    }

    async fn act(&self, app: i64, token: &str, body: Value) -> Value {
        self.call(
            "POST",
            &format!("/api/v1/map/applications/{app}/transitions"),
            token,
            Some(&body),
        )
        .await
    }
}

/// A signed-in portal session of `login`: the cookie header to send.
async fn portal_session(base: &str, login: &str, password: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("sign-in page");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let page = r.text().await.expect("sign-in page");
    let at = page.find("name=\"csrf\"").expect("a CSRF field");
    let tag_start = page[..at].rfind('<').expect("tag");
    let tag = &page[tag_start..at + page[at..].find('>').expect("tag end")];
    let v = tag.find("value=\"").expect("value") + 7;
    let csrf = &tag[v..v + tag[v..].find('"').expect("quote")];
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", cookies.join("; "))
        .form(&[("csrf", csrf), ("login", login), ("password", password)])
        .send()
        .await
        .expect("sign in");
    let session: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|c| c.starts_with("dagr_session="))
        .collect();
    assert!(
        !session.is_empty(),
        "{login} could not sign in to the portal"
    );
    session.join("; ")
}

/// Latencies of `n` sequential portal page loads of `path` with `cookie`.
async fn page_latencies(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    n: usize,
) -> Vec<Duration> {
    let get = || async {
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.expect("page body");
    };
    for _ in 0..20 {
        get().await;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get().await;
        out.push(t.elapsed());
    }
    out.sort();
    out
}

/// Row of a latency table: label, p50, p95, baseline p50, p95, ratio of p95s.
fn latency_row(label: &str, what: &[Duration], base_label: &str, base: &[Duration]) -> String {
    format!(
        "| {label} | {:.2} ms | {:.2} ms | {base_label} | {:.2} ms | {:.2} ms | {:.2}× |",
        ms(percentile(what, 0.5)),
        ms(percentile(what, 0.95)),
        ms(percentile(base, 0.5)),
        ms(percentile(base, 0.95)),
        ms(percentile(what, 0.95)) / ms(percentile(base, 0.95)).max(1e-9)
    )
}

/// Applications of `applicant` in programme `p`, brought to `evaluated`.
async fn evaluated(api: &Api, creds: &Value, p: i64, n: usize) -> Vec<i64> {
    let m = &creds["map"];
    let tok = m["applicants"][1]["token"].as_str().unwrap();
    let rn = &m["applicants"][1]["companies"][0];
    let pm = m["programme_managers"][0]["token"].as_str().unwrap();
    let ev = m["evaluators"][1]["token"].as_str().unwrap();
    let ev_login = &m["evaluators"][1]["login"];
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let a = api
            .call(
                "POST",
                "/api/v1/map/applications",
                tok,
                Some(&json!({"programme": p, "registration_number": rn, "title": "bench", "requested_amount": 1000})),
            )
            .await;
        let id = a["id"].as_i64().unwrap();
        api.call(
            "POST",
            &format!("/api/v1/map/applications/{id}/submit"),
            tok,
            Some(&json!({})),
        )
        .await;
        api.act(id, pm, json!({"action": "accept"})).await;
        api.act(id, pm, json!({"action": "assign", "evaluator": ev_login}))
            .await;
        api.act(id, ev, json!({"action": "declare", "conflict": false}))
            .await;
        api.act(
            id,
            ev,
            json!({"action": "score", "points": {"q": 5}, "justification": "bench"}),
        )
        .await;
        ids.push(id);
    }
    ids
}

/// Run `action` on every application with `clients` concurrent callers (tokens taken in
/// turn); returns actions per second.
async fn throughput(
    api: &Api,
    ids: &[i64],
    tokens: &[String],
    clients: usize,
    action: Value,
) -> f64 {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let mine: Vec<i64> = ids.iter().copied().skip(c).step_by(clients).collect();
        let token = tokens[c % tokens.len()].clone();
        let (base, http, action) = (api.base.clone(), api.http.clone(), action.clone());
        set.spawn(async move {
            let api = Api {
                base,
                http,
                purpose: "MAP bench",
            };
            for id in mine {
                api.act(id, &token, action.clone()).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("client task");
    }
    ids.len() as f64 / started.elapsed().as_secs_f64()
}

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
async fn run() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Instant::now();
    let (_server, base) = start_server(dir.path(), persons(), &[]);
    eprintln!(
        "map bench: server with {} persons up in {:.1} s",
        persons(),
        started.elapsed().as_secs_f64()
    );
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("demo-credentials.json")).unwrap())
            .unwrap();
    let m = &creds["map"];
    assert!(
        !m.is_null(),
        "the demo has no MAP section (too few persons?)"
    );
    let api = Api {
        base,
        http: reqwest::Client::new(),
        purpose: "MAP bench",
    };
    let pm = m["programme_managers"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let seeded = m["programmes"]["seeded"].as_i64().unwrap();
    let mut out = Vec::new();

    // 1. Lists.
    let me = api.latencies("/api/v1/me", &pm, 300).await;
    let page = api
        .latencies(
            &format!("/api/v1/map/applications?programme={seeded}&limit=100"),
            &pm,
            300,
        )
        .await;
    let filter = api
        .latencies(
            &format!("/api/v1/map/applications?programme={seeded}&status=rejected&limit=100"),
            &pm,
            300,
        )
        .await;
    let last = api
        .latencies(
            &format!("/api/v1/map/applications?programme={seeded}&limit=100&before=200"),
            &pm,
            300,
        )
        .await;
    out.push("| request | p50 | p95 | baseline | p50 | p95 | p95 / baseline p95 |".to_owned());
    out.push("| --- | --- | --- | --- | --- | --- | --- |".to_owned());
    out.push(latency_row(
        "first page of 100 of 2 000",
        &page,
        "`GET /me`",
        &me,
    ));
    out.push(latency_row(
        "filtered by status, 100",
        &filter,
        "`GET /me`",
        &me,
    ));
    out.push(latency_row(
        "a deep page (`before=200`)",
        &last,
        "`GET /me`",
        &me,
    ));

    // 1b. The same lists as portal pages (HTML), against the portal's catalog page.
    let cookie = portal_session(
        &api.base,
        m["programme_managers"][0]["login"].as_str().unwrap(),
        m["programme_managers"][0]["password"].as_str().unwrap(),
    )
    .await;
    let catalog = page_latencies(&api.http, &api.base, "/catalog", &cookie, 300).await;
    let list_page = page_latencies(
        &api.http,
        &api.base,
        &format!("/map?programme={seeded}"),
        &cookie,
        300,
    )
    .await;
    let filter_page = page_latencies(
        &api.http,
        &api.base,
        &format!("/map?programme={seeded}&status=rejected"),
        &cookie,
        300,
    )
    .await;
    out.push(latency_row(
        "portal: list page, 100 of 2 000",
        &list_page,
        "portal `/catalog`",
        &catalog,
    ));
    out.push(latency_row(
        "portal: filtered by status",
        &filter_page,
        "portal `/catalog`",
        &catalog,
    ));

    // 2. Pre-fill against one audited lookup of the same company's official.
    let app_tok = m["applicants"][1]["token"].as_str().unwrap().to_owned();
    let rn = m["applicants"][1]["companies"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let code = m["applicants"][1]["personal_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let map_system = creds["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["organisation"] == "LIAA")
        .and_then(|s| s["token"].as_str())
        .expect("LIAA's MAP system token")
        .to_owned();
    let open = m["programmes"]["open"].as_i64().unwrap();
    let lookup_path = format!("/api/v1/datasets/officials/records/{rn},{code},board_member");
    let mut prefill = Vec::new();
    let mut lookup = Vec::new();
    for i in 0..220 {
        let t = Instant::now();
        api.call("GET", &lookup_path, &map_system, None).await;
        let l = t.elapsed();
        let t = Instant::now();
        api.call(
            "POST",
            "/api/v1/map/applications",
            &app_tok,
            Some(&json!({"programme": open, "registration_number": rn, "title": "bench", "requested_amount": 1000})),
        )
        .await;
        let p = t.elapsed();
        if i >= 20 {
            lookup.push(l);
            prefill.push(p);
        }
    }
    prefill.sort();
    lookup.sort();
    out.push(String::new());
    out.push("| request | p50 | p95 | baseline | p50 | p95 | p95 / baseline p95 |".to_owned());
    out.push("| --- | --- | --- | --- | --- | --- | --- |".to_owned());
    out.push(latency_row(
        "pre-fill (`POST /applications`)",
        &prefill,
        "audited record lookup",
        &lookup,
    ));

    // 3. Decisions per second.
    let approvers: Vec<String> = m["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["token"].as_str().unwrap().to_owned())
        .collect();
    let pms: Vec<String> = m["programme_managers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["token"].as_str().unwrap().to_owned())
        .collect();
    out.push(String::new());
    out.push(
        "| concurrent callers | decisions (`approve`) /s | baseline: `contract` /s | ratio |"
            .to_owned(),
    );
    out.push("| --- | --- | --- | --- |".to_owned());
    for clients in [1usize, 2, 4] {
        let p = api
            .call(
                "POST",
                "/api/v1/map/programmes",
                &pm,
                Some(&json!({"title": format!("bench {clients}"), "budget": 1e9, "max_grant": 1e6,
                    "opens_at": "2020-01-01", "closes_at": "2099-12-31", "aid_regime": "de_minimis",
                    "eligibility": "status = 'active'", "criteria": [{"code": "q", "weight": 1, "max": 10}],
                    "evaluators_per_application": 1})),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let ids = evaluated(&api, &creds, p, 120).await;
        let decisions = throughput(
            &api,
            &ids,
            &approvers,
            clients,
            json!({"action": "approve", "amount": 1, "reason": "bench"}),
        )
        .await;
        let contracts = throughput(&api, &ids, &pms, clients, json!({"action": "contract"})).await;
        eprintln!("{clients} client(s): {decisions:.0} decisions/s, {contracts:.0} contracts/s");
        out.push(format!(
            "| {clients} | {decisions:.0} | {contracts:.0} | {:.2}× |",
            decisions / contracts
        ));
    }
    println!(
        "\n## MAP ({} persons, {:.0} s)\n",
        persons(),
        started.elapsed().as_secs_f64()
    );
    for l in out {
        println!("{l}");
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

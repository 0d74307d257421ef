//! TAPIS consultation bench: `cargo bench --bench tapis_comments` (`DAGR_BENCH_COMMENTS`
//! sets the comments, default 10 000; `DAGR_BENCH_PERSONS` the demo's persons, default
//! 20 000). Starts the real `dagr serve` with the embedded demo; 50 citizens (subject
//! tokens issued next to the running server, as `dagr admin` does) send the comments to one
//! open consultation over REST, four at a time; then the planner's calls are measured, each
//! against a baseline in the same run on the same server and client, `GET /api/v1/me`
//! (authentication and JSON, no query):
//!
//! 1. sending a comment (checks, the consultation's row lock, hash, signature, insert);
//! 2. the comment list: the first page (100), a deep page (`after`), and filters by
//!    paragraph, tag, status and text (p50/p95 of 200 calls each);
//! 3. the report export of the whole consultation (p50/p95 of 20, with its size).
//!
//! Nothing is asserted on times; a failed call fails the bench.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, ms, percentile, start_server};

const CITIZENS: usize = 50;
const PARAGRAPHS: usize = 40;

fn comments() -> usize {
    std::env::var("DAGR_BENCH_COMMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

impl Api {
    /// Latencies of `n` sequential GETs of `path`, after 10 to warm up; the body size of
    /// the last.
    async fn latencies(&self, path: &str, token: &str, n: usize) -> (Vec<Duration>, usize) {
        for _ in 0..10 {
            self.call("GET", path, token, None).await;
        }
        let mut out = Vec::with_capacity(n);
        let mut size = 0;
        for _ in 0..n {
            let t = Instant::now();
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            assert!(r.status().is_success(), "GET {path}: {}", r.status());
            size = r.bytes().await.expect("body").len();
            out.push(t.elapsed());
        }
        out.sort();
        (out, size)
    }
}

/// Subject tokens for `n` synthetic citizens, issued on the server's metadata database
/// while it runs (the offline governance service `dagr admin` uses).
async fn citizens(data: &std::path::Path, n: usize) -> Vec<String> {
    let store = dagr_admin_api::MetaStore::open_sqlite(&data.join("meta.db"))
        .await
        .expect("open meta.db");
    let gov = dagr_admin_api::Governance::offline(store);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let code = format!("0101{:02}-2{:04}", 50 + i % 40, i);
        out.push(
            gov.create_subject_token(None, &code, "tapis bench", None)
                .await
                .expect("subject token")
                .secret,
        );
    }
    out
}

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
fn row(name: &str, d: &[Duration], base: &[Duration], extra: &str) {
    println!(
        "| {name} | {:.2} | {:.2} | {:.1}× | {:.1}× | {extra} |",
        ms(percentile(d, 0.5)),
        ms(percentile(d, 0.95)),
        ms(percentile(d, 0.5)) / ms(percentile(base, 0.5)),
        ms(percentile(d, 0.95)) / ms(percentile(base, 0.95)),
    );
}

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
async fn run() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let persons = support::persons(20_000);
    let (_server, base) = start_server(dir.path(), persons, &[]);
    let creds = support::credentials(dir.path());
    let api = Arc::new(Api {
        base,
        http: reqwest::Client::new(),
        purpose: "TAPIS bench",
    });
    let planner = creds["tapis"]["planner"]["token"]
        .as_str()
        .expect("the demo's planner")
        .to_owned();
    let admin = creds["admin"]["token"].as_str().expect("admin").to_owned();
    let tokens = Arc::new(citizens(dir.path(), CITIZENS).await);
    // The server sees new tokens once its policy reloads.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api
            .http
            .get(format!("{}/api/v1/me", api.base))
            .bearer_auth(&tokens[CITIZENS - 1])
            .send()
            .await
            .expect("me");
        if r.status().is_success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bench's citizens never authenticated"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A detailed plan in consultation for an hour.
    let d = api
        .call(
            "POST",
            "/api/v1/tapis/documents",
            &planner,
            Some(&json!({"type": "detailed_plan", "title": "Bench"})),
        )
        .await;
    let id = d["id"].as_i64().expect("id");
    for stage in ["conditions", "drafting"] {
        api.call(
            "POST",
            &format!("/api/v1/tapis/documents/{id}/stage"),
            &planner,
            Some(&json!({"stage": stage})),
        )
        .await;
    }
    let paragraphs: Vec<Value> = (0..PARAGRAPHS)
        .map(|i| json!({"id": format!("p{i}"), "text": format!("Punkts {i}: apbūves noteikumi.")}))
        .collect();
    let v = api
        .call(
            "POST",
            &format!("/api/v1/tapis/documents/{id}/versions"),
            &planner,
            Some(&json!({"label": "1.0", "summary": "Bench", "paragraphs": paragraphs})),
        )
        .await;
    api.call(
        "PATCH",
        "/api/v1/tapis/rules",
        &admin,
        Some(&json!({"document_types": {"detailed_plan": {"consultation_min_days": 0}}})),
    )
    .await;
    let ends = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let c = api
        .call(
            "POST",
            &format!("/api/v1/tapis/documents/{id}/consultations"),
            &planner,
            Some(&json!({"version": v["id"], "ends_at": ends})),
        )
        .await;
    let cid = c["id"].as_i64().expect("consultation id");

    // The comments, four senders at a time; each sender's latencies kept.
    let n = comments();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (api, tokens) = (Arc::clone(&api), Arc::clone(&tokens));
        tasks.spawn(async move {
            let mut lat = Vec::new();
            for i in (w..n).step_by(4) {
                let anchor = match i % 3 {
                    0 => json!({"paragraph": format!("p{}", i % PARAGRAPHS)}),
                    1 => json!({"point": [24.05 + (i % 100) as f64 * 0.001, 56.9 + (i % 70) as f64 * 0.001]}),
                    _ => json!({"paragraph": "p0"}),
                };
                let body = json!({"text": format!("Komentārs {i}: lūdzu samazināt apbūves augstumu un saglabāt kokus."), "anchor": anchor});
                let t = Instant::now();
                api.call(
                    "POST",
                    &format!("/api/v1/tapis/consultations/{cid}/comments"),
                    &tokens[i % CITIZENS],
                    Some(&body),
                )
                .await;
                lat.push(t.elapsed());
            }
            lat
        });
    }
    let mut sent = Vec::new();
    while let Some(t) = tasks.join_next().await {
        sent.extend(t.expect("sender"));
    }
    sent.sort();
    let rate = n as f64 / started.elapsed().as_secs_f64();
    // Tags and groups on every tenth, so the tag filter has something to find.
    for i in (1..=n as i64).step_by(10).take(500) {
        let page = api
            .call(
                "GET",
                &format!(
                    "/api/v1/tapis/consultations/{cid}/comments?after={}&limit=1",
                    i - 1
                ),
                &planner,
                None,
            )
            .await;
        if let Some(cm) = page.get(0) {
            api.call(
                "PATCH",
                &format!("/api/v1/tapis/comments/{}", cm["id"]),
                &planner,
                Some(&json!({"tags": ["augstums"], "group": "Apbūve"})),
            )
            .await;
        }
    }

    let (me, _) = api.latencies("/api/v1/me", &planner, 200).await;
    let cp = format!("/api/v1/tapis/consultations/{cid}/comments");
    println!(
        "\nTAPIS consultation bench: {n} comments from {CITIZENS} citizens, demo {persons} persons\n"
    );
    println!("| call | p50 ms | p95 ms | p50 vs baseline | p95 vs baseline | notes |");
    println!("| --- | --- | --- | --- | --- | --- |");
    row("baseline `GET /api/v1/me`", &me, &me, "");
    row(
        "send a comment (4 senders)",
        &sent,
        &me,
        &format!("{rate:.0} comments/s"),
    );
    for (name, q) in [
        ("first page (100)", String::new()),
        (
            "deep page (`after`, 100)",
            format!("?after={}", n as i64 - 200),
        ),
        ("filter: paragraph", "?paragraph=p7".into()),
        ("filter: tag", "?tag=augstums".into()),
        ("filter: unanswered", "?status=unanswered".into()),
        ("filter: text", "?q=komentārs%201234".into()),
        ("page of 1 000", "?limit=1000".into()),
    ] {
        let (d, size) = api.latencies(&format!("{cp}{q}"), &planner, 200).await;
        row(name, &d, &me, &format!("{size} bytes"));
    }
    let (d, size) = api
        .latencies(
            &format!("/api/v1/tapis/consultations/{cid}/report"),
            &planner,
            20,
        )
        .await;
    row(
        "report export (all comments)",
        &d,
        &me,
        &format!("{:.1} MB", size as f64 / 1e6),
    );
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

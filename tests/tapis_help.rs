//! End to end: TAPIS's help and FAQ on the real `dagr serve` with the embedded demo (which
//! seeds the shipped articles), over REST: a search for `e` finds `ē` (case and Latvian
//! letters folded, title hits first), the limits of a search and of a vote, votes counted
//! once per source in the admin's statistics, and writing kept to an admin (refused before
//! the body is read). Once on SQLite, once on PostgreSQL when the test server is there.

mod common;

use std::time::Duration;

use common::{Server, credentials, send};
use serde_json::{Value, json};

const DEMO_ROWS: usize = 200;

struct Help {
    base: String,
    http: reqwest::Client,
}

impl Help {
    /// A call of `/api/v1/tapis/help{path}`: `body` sent as JSON, or raw with its content
    /// type.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (u16, Value) {
        let url = format!("{}/api/v1/tapis/help{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            m => panic!("method {m}"),
        };
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let req = match body {
            Some((ct, b)) => req.header("content-type", ct).body(b),
            None => req,
        };
        let (s, _, v) = send(req).await;
        (s, v)
    }

    async fn search(&self, query: &str) -> Vec<Value> {
        let (s, v) = self.call("GET", &format!("?{query}"), None, None).await;
        assert_eq!(s, 200, "{query}: {v}");
        v.as_array().unwrap().clone()
    }
}

fn json_body(v: Value) -> Option<(&'static str, String)> {
    Some(("application/json", v.to_string()))
}

fn titles(found: &[Value]) -> Vec<&str> {
    found.iter().map(|a| a["title"].as_str().unwrap()).collect()
}

async fn help_and_faq(server: &Server, creds: &Value) {
    let h = Help {
        base: server.base.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    };
    let admin = creds["admin"]["token"].as_str().unwrap();
    let planner = creds["tapis"]["planner"]["token"].as_str().unwrap();

    // `e` finds `ē`, `s` finds `š`, case folded: the Latvian FAQ typed without diacritics.
    let found = h.search("q=KAPEC%20komentars%20sadalits&lang=lv").await;
    assert_eq!(
        titles(&found)[0],
        "Kāpēc mans komentārs tika sadalīts?",
        "{found:?}"
    );
    let found = h.search("q=nokavets&lang=lv").await;
    assert!(
        titles(&found).contains(&"Ko nozīmē atzīme „nokavēts”?"),
        "{found:?}"
    );
    // Title hits first: "overdue" is in one English title and in other articles' bodies.
    let found = h.search("q=overdue&lang=en").await;
    assert_eq!(titles(&found)[0], "What does the overdue flag mean?");
    assert!(found.len() > 1, "body hits follow: {found:?}");
    // A stage gives its articles and those of every stage; a role, its own and everyone's.
    let found = h
        .search("stage=consultation&role=citizen&lang=en&limit=100")
        .await;
    assert!(!found.is_empty());
    for a in &found {
        assert!(a["stage"] == "consultation" || a["stage"].is_null(), "{a}");
        assert!(a["role"] == "citizen" || a["role"] == "any", "{a}");
        assert_eq!(a["lang"], "en");
    }
    assert!(titles(&found).contains(&"For citizens: how to comment in a public consultation"));
    assert_eq!(h.search("lang=lv&limit=3").await.len(), 3);

    // Limits: 422 naming the parameter, 400 for what is no parameter of the search.
    let long = "a".repeat(101);
    for (query, status, field) in [
        (format!("q={long}"), 422, "q"),
        ("q=a%20b%20c%20d%20e%20f%20g%20h%20i".to_owned(), 422, "q"),
        ("limit=0".to_owned(), 422, "limit"),
        ("limit=101".to_owned(), 422, "limit"),
        ("stage=ruins".to_owned(), 422, "stage"),
        ("role=mayor".to_owned(), 422, "role"),
        ("lang=de".to_owned(), 422, "lang"),
        ("limit=many".to_owned(), 400, ""),
        ("sort=title".to_owned(), 400, ""),
    ] {
        let (s, v) = h.call("GET", &format!("?{query}"), None, None).await;
        assert_eq!(s, status, "{query}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(field),
            "{query}: {v}"
        );
    }

    // One article; an unknown one is 404.
    let (s, v) = h.call("GET", "/faq-overdue-en", None, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["title"], "What does the overdue flag mean?");
    assert_eq!(v["stage"], "conditions");
    let (s, _) = h.call("GET", "/no-such-article", None, None).await;
    assert_eq!(s, 404);

    // Writing is an admin's: others are refused before the body is read (not even JSON).
    let junk = Some(("application/json", "{not json".to_owned()));
    let (s, _) = h.call("PUT", "/new-faq", None, junk.clone()).await;
    assert_eq!(s, 401);
    let (s, v) = h.call("PUT", "/new-faq", Some(planner), junk.clone()).await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = h
        .call("DELETE", "/faq-overdue-en", Some(planner), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = h.call("PUT", "/new-faq", Some(admin), junk).await;
    assert_eq!(s, 400);
    let article = json!({"lang": "lv", "stage": "consultation", "role": "citizen",
        "title": "Vai varu pievienot fotoattēlu?", "body": "Pagaidām ne.\n\n- Aprakstiet vietu tekstā."});
    for (bad, field) in [
        (json!({"title": ""}), "title"),
        (json!({"body": "x".repeat(8_001)}), "body"),
        (json!({"stage": "ruins"}), "stage"),
        (json!({"role": "mayor"}), "role"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let mut a = article.clone();
        for (k, v) in bad.as_object().unwrap() {
            a[k] = v.clone();
        }
        let (s, v) = h.call("PUT", "/new-faq", Some(admin), json_body(a)).await;
        assert_eq!(s, 422, "{field}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let (s, v) = h
        .call(
            "PUT",
            "/Not_A_Slug",
            Some(admin),
            json_body(article.clone()),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = h
        .call("PUT", "/new-faq", Some(admin), json_body(article.clone()))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = h
        .call("PUT", "/new-faq", Some(admin), json_body(article.clone()))
        .await;
    assert_eq!(s, 200, "{v}");
    // The new article is found at once, `foto` finding `fotoattēlu`.
    let found = h.search("q=fotoattelu&lang=lv").await;
    assert_eq!(titles(&found), ["Vai varu pievienot fotoattēlu?"]);

    // Votes: anonymous, at most 256 bytes, a boolean; one per source and article a day.
    for (body, status) in [
        (
            Some((
                "application/json",
                format!("{{\"helpful\": true, \"x\": \"{}\"}}", "y".repeat(300)),
            )),
            413,
        ),
        (json_body(json!({"helpful": "very"})), 422),
        (json_body(json!({"helpful": true, "why": "x"})), 422),
        (Some(("text/plain", "{\"helpful\": true}".to_owned())), 400),
        (Some(("application/json", "helpful".to_owned())), 400),
    ] {
        let (s, v) = h.call("POST", "/faq-overdue-en/feedback", None, body).await;
        assert_eq!(s, status, "{v}");
    }
    let (s, _) = h
        .call(
            "POST",
            "/no-such-article/feedback",
            None,
            json_body(json!({"helpful": true})),
        )
        .await;
    assert_eq!(s, 404);
    for (id, helpful) in [
        ("faq-overdue-en", false),
        // The same source again: the vote changes, it is not added.
        ("faq-overdue-en", true),
        ("new-faq", false),
    ] {
        let (s, v) = h
            .call(
                "POST",
                &format!("/{id}/feedback"),
                None,
                json_body(json!({"helpful": helpful})),
            )
            .await;
        assert_eq!(s, 204, "{id}: {v}");
    }

    // The statistics are an admin's: the least helpful first.
    let (s, _) = h.call("GET", "/stats", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = h.call("GET", "/stats", Some(planner), None).await;
    assert_eq!(s, 403);
    let (s, stats) = h.call("GET", "/stats", Some(admin), None).await;
    assert_eq!(s, 200, "{stats}");
    let rows = stats.as_array().unwrap();
    assert_eq!(rows[0]["id"], "new-faq");
    assert_eq!(
        (rows[0]["yes"].as_i64(), rows[0]["no"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(rows[0]["helpful_share"], 0.0);
    let overdue = rows.iter().find(|r| r["id"] == "faq-overdue-en").unwrap();
    assert_eq!(
        (overdue["yes"].as_i64(), overdue["no"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(overdue["helpful_share"], 1.0);
    assert!(
        rows.last().unwrap()["helpful_share"].is_null(),
        "no votes last"
    );

    // Deleting takes the article and its votes away.
    let (s, _) = h.call("DELETE", "/new-faq", Some(admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = h.call("DELETE", "/new-faq", Some(admin), None).await;
    assert_eq!(s, 404);
    let (s, _) = h.call("GET", "/new-faq", None, None).await;
    assert_eq!(s, 404);
    let (_, stats) = h.call("GET", "/stats", Some(admin), None).await;
    assert!(
        stats
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != "new-faq")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_searchable_voted_on_and_kept_by_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), DEMO_ROWS, &[]);
    let creds = credentials(dir.path());
    help_and_faq(&server, &creds).await;
}

/// The same on PostgreSQL: the folded `LIKE`, the vote's upsert and the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_searchable_voted_on_and_kept_by_an_admin_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), DEMO_ROWS, &["--database-url", &url]);
    let creds = credentials(dir.path());
    help_and_faq(&server, &creds).await;
}

//! End to end: TAPIS, territorial planning, on the real `dagr serve` with the embedded demo,
//! over REST with the demo's tokens (`demo-credentials.json`, section `tapis`), and an SMTP
//! relay in the test process standing in for the operator's: a document's stages and
//! history, its territory (every bad geometry refused with its reason, nothing changed), the
//! rules as data (merge patch, forward only), and coordination with an institution through
//! the link in its e-mail (answered once, without an account; a changed link refused).

mod common;

use std::time::Duration;

use common::smtp::SmtpSink;
use common::{Server, credentials, send};
use serde_json::{Value, json};

const DEMO_ROWS: usize = 3000;

struct Tapis {
    base: String,
    http: reqwest::Client,
    planner: String,
    admin: String,
    citizen: String,
}

impl Tapis {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/api/v1/tapis{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PATCH" => self.http.patch(url),
            "PUT" => self.http.put(url),
            m => panic!("method {m}"),
        };
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let req = match body {
            Some(b) if method == "PATCH" => req
                .header("content-type", "application/merge-patch+json")
                .body(b.to_string()),
            Some(b) => req.json(&b),
            None => req,
        };
        let (s, _, v) = send(req).await;
        (s, v)
    }

    async fn ok(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.call(method, path, token, body.clone()).await;
        assert!((200..300).contains(&s), "{method} {path} {body:?}: {s} {v}");
        v
    }
}

fn square(w: f64, s: f64, d: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[w, s], [w + d, s], [w + d, s + d], [w, s + d], [w, s]]]})
}

impl Tapis {
    /// The demo's planner, admin and first citizen on `server`.
    fn of(server: &Server, creds: &Value) -> Tapis {
        Tapis {
            base: server.base.clone(),
            http: reqwest::Client::new(),
            planner: creds["tapis"]["planner"]["token"]
                .as_str()
                .unwrap()
                .to_owned(),
            admin: creds["admin"]["token"].as_str().unwrap().to_owned(),
            citizen: creds["subjects"][0]["token"].as_str().unwrap().to_owned(),
        }
    }

    /// A new detailed plan of the planner, moved to `drafting`.
    async fn drafting(&self, title: &str) -> i64 {
        let planner = Some(self.planner.as_str());
        let d = self
            .ok(
                "POST",
                "/documents",
                planner,
                Some(json!({"type": "detailed_plan", "title": title})),
            )
            .await;
        let id = d["id"].as_i64().unwrap();
        for stage in ["conditions", "drafting"] {
            self.ok(
                "POST",
                &format!("/documents/{id}/stage"),
                planner,
                Some(json!({"stage": stage})),
            )
            .await;
        }
        id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_moves_through_its_stages_and_is_coordinated_through_a_link() {
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        DEMO_ROWS,
        &[
            "--smtp-relay",
            &sink.addr,
            "--mail-interval-secs",
            "1",
            "--public-url",
            "https://tapis.example",
        ],
    );
    let creds = credentials(dir.path());
    let t = Tapis {
        base: server.base.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        planner: creds["tapis"]["planner"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
        admin: creds["admin"]["token"].as_str().unwrap().to_owned(),
        citizen: creds["subjects"][0]["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(creds["tapis"]["system"]["organisation"], "RIGA");
    assert!(creds["tapis"]["system"]["system_id"].is_i64());
    let (planner, admin, citizen) = (
        Some(t.planner.as_str()),
        Some(t.admin.as_str()),
        Some(t.citizen.as_str()),
    );

    // A planner creates a document; a citizen may not; everyone reads it.
    let (s, v) = t
        .call(
            "POST",
            "/documents",
            citizen,
            Some(json!({"type": "detailed_plan", "title": "X"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = t
        .call(
            "POST",
            "/documents",
            planner,
            Some(json!({"type": "castle_plan", "title": "X"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let d = t
        .ok(
            "POST",
            "/documents",
            planner,
            Some(json!({"type": "detailed_plan", "title": "Detālplānojums Vecrīgā, Kalēju ielā"})),
        )
        .await;
    let id = d["id"].as_i64().unwrap();
    assert_eq!(d["stage"], "initiated");
    let public = t.ok("GET", &format!("/documents/{id}"), None, None).await;
    assert_eq!(public["title"], "Detālplānojums Vecrīgā, Kalēju ielā");

    // Stages: one forward; skipping, and moving to consultation by hand, are 409; a move
    // back needs a reason.
    let stage = |to: &str, reason: Option<&str>| {
        let mut b = json!({"stage": to});
        if let Some(r) = reason {
            b["reason"] = json!(r);
        }
        (format!("/documents/{id}/stage"), b)
    };
    let (p, b) = stage("drafting", None);
    assert_eq!(t.call("POST", &p, planner, Some(b)).await.0, 409);
    let (p, b) = stage("conditions", None);
    assert_eq!(
        t.ok("POST", &p, planner, Some(b)).await["stage"],
        "conditions"
    );

    // Territory: each bad geometry refused with its reason; nothing changes.
    let territory = |g: Value| (format!("/documents/{id}/territory"), json!({"geometry": g}));
    for (g, needle) in [
        (
            json!({"type": "Polygon", "coordinates": [[[24.10, 56.945], [24.11, 56.945], [24.11, 56.95], [24.10, 56.95]]]}),
            "not closed",
        ),
        (
            json!({"type": "Polygon", "coordinates": [[[24.10, 56.945], [24.11, 56.945], [24.10, 56.945]]]}),
            "at least 4",
        ),
        (
            json!({"type": "Polygon", "coordinates": [[[24.10, 56.945], [24.11, 56.95], [24.11, 56.945], [24.10, 56.95], [24.10, 56.945]]]}),
            "intersects itself",
        ),
        (
            json!({"type": "Polygon", "coordinates": [square(24.10, 56.945, 0.01)["coordinates"][0], square(24.5, 57.5, 0.001)["coordinates"][0]]}),
            "outside its shell",
        ),
        (square(18.0, 56.0, 0.01), "outside Latvia"),
    ] {
        let (p, b) = territory(g);
        let (s, v) = t.call("POST", &p, planner, Some(b)).await;
        assert_eq!(s, 422, "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains(needle),
            "`{needle}`: {v}"
        );
    }
    assert!(t.ok("GET", &format!("/documents/{id}"), None, None).await["territory"].is_null());
    let (p, b) = territory(square(24.105, 56.945, 0.005));
    let v = t.ok("POST", &p, planner, Some(b)).await;
    let area = v["area_m2"].as_f64().unwrap();
    assert!((80_000.0..200_000.0).contains(&area), "{area}");
    // In the historic centre: the heritage board is asked because of the layer.
    let asked = t
        .ok("GET", &format!("/documents/{id}/institutions"), None, None)
        .await;
    let has = |code: &str, kind: &str| {
        asked
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["institution"] == code && a["kind"] == kind)
    };
    assert!(
        has("VVD", "always") && has("VI", "always") && has("NKMP", "layer"),
        "{asked}"
    );
    assert!(!has("DAP", "layer"), "{asked}");

    // Rules: public; a planner may not patch; an invalid patch changes nothing; a valid one
    // is a new version.
    let rules = t.ok("GET", "/rules", None, None).await;
    let version = rules["version"].as_i64().unwrap();
    assert!(
        rules["sources"]["document_types"]
            .as_str()
            .unwrap()
            .contains("628")
    );
    let (s, _) = t
        .call("PATCH", "/rules", planner, Some(json!({"link_days": 5})))
        .await;
    assert_eq!(s, 403);
    let (s, v) = t
        .call("PATCH", "/rules", admin,
            Some(json!({"document_types": {"detailed_plan": {"conditions_days": {"days": 0, "working_days": true}}}})))
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        t.ok("GET", "/rules", None, None).await["version"],
        json!(version)
    );
    let v = t
        .ok("PATCH", "/rules", admin,
            Some(json!({"document_types": {"detailed_plan": {"conditions_days": {"days": 3, "working_days": true}}}})))
        .await;
    assert_eq!(v["version"], json!(version + 1));
    assert_eq!(
        v["document_types"]["detailed_plan"]["conditions_days"]["days"],
        json!(3)
    );

    // Coordination: conditions from VVD, due on the third working day.
    let p = format!("/documents/{id}/coordination-requests");
    let (s, v) = t
        .call(
            "POST",
            &p,
            planner,
            Some(json!({"institution": "VVD", "kind": "opinion"})),
        )
        .await;
    assert_eq!(s, 409, "opinions are asked on a draft: {v}");
    let r = t
        .ok(
            "POST",
            &p,
            planner,
            Some(
                json!({"institution": "VVD", "kind": "conditions", "note": "Lūdzam nosacījumus."}),
            ),
        )
        .await;
    let due1 = r["due_on"].as_str().unwrap().to_owned();
    assert_eq!(r["overdue"], json!(false));
    let (s, v) = t
        .call(
            "POST",
            &p,
            planner,
            Some(json!({"institution": "VVD", "kind": "conditions"})),
        )
        .await;
    assert_eq!(s, 409, "one open request per institution and kind: {v}");

    // A holiday on that due date (forward only): VVD's request keeps its date, the next
    // request counts around the holiday.
    let v = t
        .ok("PATCH", "/rules", admin, Some(json!({"holidays": [due1]})))
        .await;
    assert_eq!(v["holidays"], json!([due1]));
    let r2 = t
        .ok(
            "POST",
            &p,
            planner,
            Some(json!({"institution": "VI", "kind": "conditions"})),
        )
        .await;
    let due2 = r2["due_on"].as_str().unwrap().to_owned();
    assert!(due2 > due1, "{due1} {due2}");
    let list = t.ok("GET", &p, planner, None).await;
    assert_eq!(list[0]["due_on"], json!(due1));

    // The institution's mail holds the link.
    let mail = sink
        .wait_for(30, |r| r.iter().any(|m| m.to == ["vvd@iestade.example"]))
        .await;
    let vvd = mail
        .iter()
        .find(|m| m.to == ["vvd@iestade.example"])
        .unwrap();
    let data = vvd.data.replace("=\r\n", "").replace("=3D", "=");
    let at = data
        .find("https://tapis.example/tapis/respond/")
        .unwrap_or_else(|| panic!("no link in {data}"));
    let token: String = data[at + "https://tapis.example/tapis/respond/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_')
        .collect();

    // The link shows the request without an account; a changed link is refused.
    let shown = t
        .ok("GET", &format!("/responses/{token}"), None, None)
        .await;
    assert_eq!(shown["request"]["institution"], "VVD");
    assert_eq!(shown["document"]["id"], json!(id));
    let (head, tag) = token.rsplit_once('.').unwrap();
    let changed = format!("{head}.{}", tag.chars().rev().collect::<String>());
    let (s, _) = t
        .call("GET", &format!("/responses/{changed}"), None, None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = t.call("GET", "/responses/not-a-token", None, None).await;
    assert_eq!(s, 404);

    // An extension needs a later date and a reason.
    let ext = format!("{p}/{}/extend", r["id"]);
    let (s, v) = t
        .call(
            "POST",
            &ext,
            planner,
            Some(json!({"due_on": "2020-01-01", "reason": "x"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let v = t
        .ok(
            "POST",
            &ext,
            planner,
            Some(json!({"due_on": "2099-01-05", "reason": "Iestāde lūdza vairāk laika"})),
        )
        .await;
    assert_eq!(v["due_on"], "2099-01-05");
    assert_eq!(v["extensions"][0]["from"], json!(due1));

    // The answer is written once.
    let answer = json!({"verdict": "conditional", "text": "Saglabāt kokus.", "responder": "J. Bērziņš, VVD"});
    let (s, v) = t
        .call(
            "POST",
            &format!("/responses/{token}"),
            None,
            Some(answer.clone()),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "answered");
    assert_eq!(v["verdict"], "conditional");
    let (s, v) = t
        .call("POST", &format!("/responses/{token}"), None, Some(answer))
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, _) = t
        .call(
            "POST",
            &ext,
            planner,
            Some(json!({"due_on": "2099-02-01", "reason": "x"})),
        )
        .await;
    assert_eq!(s, 409);

    // The history shows every move, request and answer.
    let h = t
        .ok("GET", &format!("/documents/{id}/history"), None, None)
        .await;
    let actions: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"create") && actions.contains(&"territory"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.starts_with("answer VVD")),
        "{actions:?}"
    );
    assert_eq!(h[1]["to_status"], "conditions");

    // Back with a reason, then cancelled; nothing leaves `cancelled`.
    let (p2, b) = stage("initiated", None);
    assert_eq!(t.call("POST", &p2, planner, Some(b)).await.0, 422);
    let (p2, b) = stage("initiated", Some("Jāprecizē darba uzdevums"));
    assert_eq!(
        t.ok("POST", &p2, planner, Some(b)).await["stage"],
        "initiated"
    );
    let (p2, b) = stage("cancelled", Some("Ierosinātājs atsauca"));
    assert_eq!(
        t.ok("POST", &p2, planner, Some(b)).await["stage"],
        "cancelled"
    );
    let (p2, b) = stage("conditions", None);
    assert_eq!(t.call("POST", &p2, planner, Some(b)).await.0, 409);

    // The admin sees the institution's message with its body in the outbox.
    let out = send(
        t.http
            .get(format!(
                "{}/api/v1/outbox?recipient=institution:VVD",
                t.base
            ))
            .bearer_auth(&t.admin),
    )
    .await
    .2;
    let first = &out.as_array().unwrap()[0];
    assert!(
        first["body"].as_str().unwrap().contains("/tapis/respond/"),
        "{out}"
    );
}

/// A consultation opens and closes by itself, moving the document to `consultation` and
/// `evaluation`; it is at least the rules' minimum, never cut short, and freezes the
/// version it shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_opens_and_closes_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), DEMO_ROWS, &[]);
    let creds = credentials(dir.path());
    let t = Tapis::of(&server, &creds);
    let (planner, admin) = (Some(t.planner.as_str()), Some(t.admin.as_str()));
    let id = t.drafting("Parka iela 5").await;

    // Versions: paragraph ids are unique; a citizen may not add one.
    let vp = format!("/documents/{id}/versions");
    let para = |ids: &[&str]| {
        json!({"label": "1.0", "summary": "Apbūves parametri",
            "paragraphs": ids.iter().map(|i| json!({"id": i, "text": format!("Punkts {i}")})).collect::<Vec<_>>()})
    };
    let (s, v) = t
        .call("POST", &vp, planner, Some(para(&["p1", "p1"])))
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = t
        .call("POST", &vp, Some(t.citizen.as_str()), Some(para(&["p1"])))
        .await;
    assert_eq!(s, 403);
    let version = t.ok("POST", &vp, planner, Some(para(&["p1", "p2"]))).await;
    let vid = version["id"].as_i64().unwrap();
    assert!(version["frozen_at"].is_null());

    // Shorter than the rules' minimum (21 days for a detailed plan): refused.
    let cp = format!("/documents/{id}/consultations");
    let in_secs = |s: i64| (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339();
    let (s, v) = t
        .call(
            "POST",
            &cp,
            planner,
            Some(json!({"version": vid, "ends_at": in_secs(86_400)})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("21 days"), "{v}");
    // The rules allow 0 days (a test of the clock): a consultation of 3 seconds.
    t.ok(
        "PATCH",
        "/rules",
        admin,
        Some(json!({"document_types": {"detailed_plan": {"consultation_min_days": 0}}})),
    )
    .await;
    let c = t
        .ok(
            "POST",
            &cp,
            planner,
            Some(json!({"version": vid, "ends_at": in_secs(3)})),
        )
        .await;
    assert_eq!(c["status"], "open", "one that starts now opens now: {c}");
    let doc = t.ok("GET", &format!("/documents/{id}"), None, None).await;
    assert_eq!(doc["stage"], "consultation");
    let (s, _) = t
        .call(
            "POST",
            &cp,
            planner,
            Some(json!({"version": vid, "ends_at": in_secs(60)})),
        )
        .await;
    assert_eq!(s, 409, "one consultation at a time");

    // Never cut short: no move while it is open (evaluation comes with its end).
    for (stage, reason) in [("evaluation", None), ("drafting", Some("Labojumi"))] {
        let mut b = json!({"stage": stage});
        if let Some(r) = reason {
            b["reason"] = json!(r);
        }
        let (s, v) = t
            .call("POST", &format!("/documents/{id}/stage"), planner, Some(b))
            .await;
        assert_eq!(s, 409, "{stage}: {v}");
    }

    // It closes by itself: the document is in evaluation, the version frozen.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let doc = t.ok("GET", &format!("/documents/{id}"), None, None).await;
        if doc["stage"] == "evaluation" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {}",
            doc["stage"]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let cs = t.ok("GET", &cp, None, None).await;
    assert_eq!(cs[0]["status"], "closed");
    let v = t.ok("GET", &format!("{vp}/{vid}"), None, None).await;
    assert!(v["frozen_at"].is_string(), "{v}");
    let h = t
        .ok("GET", &format!("/documents/{id}/history"), None, None)
        .await;
    let by_scheduler: Vec<&Value> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "scheduler")
        .collect();
    assert_eq!(by_scheduler.len(), 2, "{h}");
    assert_eq!(by_scheduler[0]["to_status"], "consultation");
    assert_eq!(by_scheduler[1]["to_status"], "evaluation");
}

/// A consultation takes citizens' comments on a paragraph, a map point and a polygon; each
/// comment gets a signed receipt; the planner splits, tags, groups and answers them (with a
/// standard block); approval waits for every answer; the author follows the receipt to the
/// answer and finds it in their inbox; the report has no identities. The version's file is
/// stored with its SHA-256 and frozen with the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_are_received_answered_and_reported_and_approval_waits_for_them() {
    comments_flow(&[]).await;
}

/// The same on PostgreSQL (the row locks, filters and counts in its SQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_are_received_answered_and_reported_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    comments_flow(&["--database-url", &url]).await;
}

async fn comments_flow(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), DEMO_ROWS, extra);
    let creds = credentials(dir.path());
    let t = Tapis::of(&server, &creds);
    let other = creds["subjects"][1]["token"].as_str().unwrap().to_owned();
    let code = creds["subjects"][0]["personal_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (planner, admin, citizen, other) = (
        Some(t.planner.as_str()),
        Some(t.admin.as_str()),
        Some(t.citizen.as_str()),
        Some(other.as_str()),
    );
    let id = t.drafting("Ezermalas iela 12").await;
    let version = t
        .ok(
            "POST",
            &format!("/documents/{id}/versions"),
            planner,
            Some(json!({"label": "1.0", "summary": "Apbūve", "paragraphs": [
                {"id": "1.1", "text": "Apbūves augstums līdz 5 stāviem."},
                {"id": "1.2", "text": "Zaļā zona ne mazāk kā 30 %."}]})),
        )
        .await;
    let vid = version["id"].as_i64().unwrap();

    // A file: streamed in, its SHA-256 returned; read back byte for byte; names checked.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let files = format!(
        "{}/api/v1/tapis/documents/{id}/versions/{vid}/files",
        t.base
    );
    let put = |name: &str, token: &str, body: Vec<u8>| {
        t.http
            .post(format!("{files}/{name}"))
            .bearer_auth(token)
            .header("content-type", "application/pdf")
            .body(body)
    };
    let (s, _, v) = send(put("plans.pdf", &t.planner, bytes.clone())).await;
    assert_eq!(s, 201, "{v}");
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(v["sha256"], sha.as_str());
    assert_eq!(v["size"], bytes.len());
    let (s, _, _) = send(put("plans.pdf", &t.planner, vec![1])).await;
    assert_eq!(s, 409, "a file is not replaced");
    let (s, _, _) = send(put("a%2Fb.pdf", &t.planner, vec![1])).await;
    assert_eq!(s, 422, "no `/` in a name");
    let (s, _, _) = send(put("x.pdf", &t.citizen, vec![1])).await;
    assert_eq!(s, 403);
    let r = t
        .http
        .get(format!("{files}/plans.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["etag"].to_str().unwrap(), format!("\"{sha}\""));
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let v = t
        .ok(
            "GET",
            &format!("/documents/{id}/versions/{vid}"),
            None,
            None,
        )
        .await;
    assert_eq!(v["files"][0]["name"], "plans.pdf", "{v}");

    // A consultation of a few seconds (the rules allow 0 days: a test of the clock).
    t.ok(
        "PATCH",
        "/rules",
        admin,
        Some(json!({"document_types": {"detailed_plan": {"consultation_min_days": 0}}})),
    )
    .await;
    let ends = (chrono::Utc::now() + chrono::Duration::seconds(12)).to_rfc3339();
    let c = t
        .ok(
            "POST",
            &format!("/documents/{id}/consultations"),
            planner,
            Some(json!({"version": vid, "ends_at": ends})),
        )
        .await;
    let cid = c["id"].as_i64().unwrap();
    assert_eq!(c["status"], "open");
    let (s, _, _) = send(put("late.pdf", &t.planner, vec![1])).await;
    assert_eq!(s, 409, "the version is frozen");

    // Comments: on a paragraph, a point, a polygon; only citizens; anchors checked.
    let cp = format!("/consultations/{cid}/comments");
    let text = "Pret 5 stāviem. Atbalstu zaļo zonu.";
    let first = t
        .ok(
            "POST",
            &cp,
            citizen,
            Some(json!({"text": text, "anchor": {"paragraph": "1.1"}})),
        )
        .await;
    let rid = first["receipt"]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["receipt"]["hash"].as_str().unwrap().len(), 64);
    assert!(first["receipt"]["signature"].is_string());
    let pinned = t
        .ok(
            "POST",
            &cp,
            other,
            Some(
                json!({"text": "Šeit jābūt gājēju pārejai.", "anchor": {"point": [24.11, 56.95]}}),
            ),
        )
        .await;
    t.ok(
        "POST",
        &cp,
        other,
        Some(json!({"text": "Šis kvartāls jāsaglabā.", "anchor": {"polygon": square(24.1, 56.94, 0.01)}})),
    )
    .await;
    for (who, body, want) in [
        (
            planner,
            json!({"text": "x", "anchor": {"paragraph": "1.1"}}),
            403,
        ),
        (
            citizen,
            json!({"text": "x", "anchor": {"paragraph": "9.9"}}),
            422,
        ),
        (
            citizen,
            json!({"text": "x", "anchor": {"point": [2.35, 48.85]}}),
            422,
        ),
        (
            citizen,
            json!({"text": "", "anchor": {"paragraph": "1.1"}}),
            422,
        ),
        (
            citizen,
            json!({"text": "x", "anchor": {"line": [[24.1, 56.9]]}}),
            422,
        ),
        (
            citizen,
            json!({"text": "x", "anchor": {"polygon": {"type": "Polygon",
                "coordinates": square(24.1, 56.94, 0.01)["coordinates"], "note": "not stored"}}}),
            422,
        ),
    ] {
        let (s, v) = t.call("POST", &cp, who, Some(body.clone())).await;
        assert_eq!(s, want, "{body}: {v}");
    }

    // The receipt: its author sees it verified and received; nobody else sees it.
    let rp = format!("/receipts/{rid}");
    let r = t.ok("GET", &rp, citizen, None).await;
    assert_eq!(r["status"], "received");
    assert_eq!(r["verified"], true);
    assert_eq!(r["text"], text);
    for who in [other, planner, None] {
        let (s, _) = t.call("GET", &rp, who, None).await;
        assert!([401, 403, 404].contains(&s), "{s}");
    }

    // The planner's work: list and filter, split, tag and group, answer blocks.
    let list = t.ok("GET", &cp, planner, None).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    assert!(!list.to_string().contains(&code), "no identities: {list}");
    let (s, _) = t.call("GET", &cp, citizen, None).await;
    assert_eq!(s, 403);
    let on_11 = t
        .ok("GET", &format!("{cp}?paragraph=1.1"), planner, None)
        .await;
    assert_eq!(on_11.as_array().unwrap().len(), 1);
    // Text search folds case and the Latvian letters alike on both databases.
    for q in ["STĀVIEM", "staviem", "pāreja"] {
        let found = t.ok("GET", &format!("{cp}?q={q}"), planner, None).await;
        assert_eq!(found.as_array().unwrap().len(), 1, "{q}: {found}");
    }
    let cid1 = first["id"].as_i64().unwrap();
    let (s, v) = t
        .call(
            "POST",
            &format!("/comments/{cid1}/split"),
            planner,
            Some(json!({"parts": [{"text": "Pret 5 stāviem."}, {"text": "Not in the comment"}]})),
        )
        .await;
    assert_eq!(s, 422, "a part is a piece of the original: {v}");
    let parts = t
        .ok(
            "POST",
            &format!("/comments/{cid1}/split"),
            planner,
            Some(json!({"parts": [{"text": "Pret 5 stāviem."},
                {"text": "Atbalstu zaļo zonu.", "anchor": {"paragraph": "1.2"}}]})),
        )
        .await;
    let (p1, p2) = (
        parts[0]["id"].as_i64().unwrap(),
        parts[1]["id"].as_i64().unwrap(),
    );
    t.ok(
        "PATCH",
        &format!("/comments/{p1}"),
        planner,
        Some(json!({"tags": ["augstums"], "group": "Apbūve"})),
    )
    .await;
    let tagged = t
        .ok("GET", &format!("{cp}?tag=Augstums"), planner, None)
        .await;
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    assert_eq!(tagged[0]["group"], "Apbūve");
    t.ok(
        "PUT",
        "/answer-blocks/height",
        planner,
        Some(json!({"title": "Augstums", "text": "Augstums atbilst teritorijas plānojumam."})),
    )
    .await;
    let (s, _) = t
        .call(
            "POST",
            &format!("/comments/{cid1}/answer"),
            planner,
            Some(json!({"decision": "rejected", "text": "x"})),
        )
        .await;
    assert_eq!(s, 409, "a split comment is answered through its parts");
    let a = t
        .ok(
            "POST",
            &format!("/comments/{p1}/answer"),
            planner,
            Some(json!({"decision": "rejected", "blocks": ["height"], "text": "Paldies."})),
        )
        .await;
    assert!(
        a["answer"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Augstums atbilst"),
        "{a}"
    );
    let (s, _) = t
        .call(
            "POST",
            &format!("/comments/{p1}/answer"),
            planner,
            Some(json!({"decision": "accepted", "text": "Otrreiz"})),
        )
        .await;
    assert_eq!(s, 409, "answers are written once");
    let (s, _) = t
        .call(
            "POST",
            &format!("/comments/{p2}/answer"),
            planner,
            Some(json!({"decision": "maybe", "text": "x"})),
        )
        .await;
    assert_eq!(s, 422);
    t.ok(
        "POST",
        &format!("/comments/{p2}/answer"),
        planner,
        Some(json!({"decision": "accepted", "text": "Zaļā zona paliek."})),
    )
    .await;
    let r = t.ok("GET", &rp, citizen, None).await;
    assert_eq!(r["status"], "answered", "{r}");
    assert_eq!(r["parts"].as_array().unwrap().len(), 2);
    let inbox = common::send(
        t.http
            .get(format!("{}/api/v1/me/inbox", t.base))
            .bearer_auth(&t.citizen),
    )
    .await
    .2;
    assert!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["module"] == "tapis" && e["link"].as_str().unwrap_or("").ends_with(&rid)),
        "{inbox}"
    );

    // It closes by itself; a comment after the end is 409; approval waits for answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while t.ok("GET", &format!("/documents/{id}"), None, None).await["stage"] != "evaluation" {
        assert!(std::time::Instant::now() < deadline, "never closed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (s, _) = t
        .call(
            "POST",
            &cp,
            citizen,
            Some(json!({"text": "Par vēlu", "anchor": {"paragraph": "1.1"}})),
        )
        .await;
    assert_eq!(s, 409);
    let stage = format!("/documents/{id}/stage");
    let (s, v) = t
        .call("POST", &stage, planner, Some(json!({"stage": "approved"})))
        .await;
    assert_eq!(s, 409, "two comments have no answer: {v}");
    assert!(v["detail"].as_str().unwrap().contains("2 comment"), "{v}");
    let unanswered = t
        .ok("GET", &format!("{cp}?status=unanswered"), planner, None)
        .await;
    for c in unanswered.as_array().unwrap() {
        t.ok(
            "POST",
            &format!("/comments/{}/answer", c["id"]),
            planner,
            Some(json!({"decision": "noted", "text": "Ņemts vērā."})),
        )
        .await;
    }
    t.ok("POST", &stage, planner, Some(json!({"stage": "approved"})))
        .await;
    t.ok("POST", &stage, planner, Some(json!({"stage": "in_force"})))
        .await;

    // The report: every comment, parts and answers, no identities.
    let report = t
        .ok(
            "GET",
            &format!("/consultations/{cid}/report"),
            planner,
            None,
        )
        .await;
    assert_eq!(report["comments"], 3, "{report}");
    assert_eq!(report["to_answer"], 4);
    assert_eq!(report["answered"], 4);
    assert_eq!(report["items"][0]["parts"].as_array().unwrap().len(), 2);
    assert_eq!(report["items"][1]["comment"]["id"], pinned["id"]);
    let dump = report.to_string();
    for c in creds["subjects"].as_array().unwrap() {
        assert!(!dump.contains(c["personal_code"].as_str().unwrap()));
    }
    let (s, _) = t
        .call(
            "GET",
            &format!("/consultations/{cid}/report"),
            citizen,
            None,
        )
        .await;
    assert_eq!(s, 403);
}

//! End to end: MAP, grant management, on the real `dagr serve` with the embedded demo, over
//! REST with the demo's tokens (`demo-credentials.json`, section `map`). One server for the
//! whole lifecycle and its refusals; the budget, the de minimis ceiling and revocation each
//! work on programmes and agreements of their own so the tests do not depend on each other's
//! order.

mod common;

use std::time::Duration;

use common::{Server, credentials, send};
use serde_json::{Value, json};

const DEMO_ROWS: usize = 3000;

struct Map {
    base: String,
    creds: Value,
    http: reqwest::Client,
}

impl Map {
    fn token(&self, group: &str, i: usize) -> String {
        self.creds["map"][group][i]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no map.{group}[{i}] in the demo credentials"))
            .to_owned()
    }

    fn pm(&self) -> String {
        self.token("programme_managers", 0)
    }

    fn login(&self, group: &str, i: usize) -> String {
        self.creds["map"][group][i]["login"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn company(&self, applicant: usize) -> String {
        self.creds["map"]["applicants"][applicant]["companies"][0]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/api/v1/map{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PATCH" => self.http.patch(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            m => panic!("method {m}"),
        }
        .bearer_auth(token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let (status, _, v) = send(req).await;
        (status, v)
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (s, v) = self.call("GET", path, token, None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let (s, v) = self.call("POST", path, token, Some(body.clone())).await;
        assert!(s == 200 || s == 201, "POST {path} {body}: {s} {v}");
        v
    }

    async fn act(&self, app: i64, token: &str, body: Value) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/applications/{app}/transitions"),
            token,
            Some(body),
        )
        .await
    }

    async fn act_ok(&self, app: i64, token: &str, body: Value) -> Value {
        let (s, v) = self.act(app, token, body.clone()).await;
        assert_eq!(s, 200, "{body}: {v}");
        v
    }

    /// A refused call changes nothing: the application reads the same before and after
    /// (seen by the programme manager, whose openings do not change the application).
    async fn refused(&self, app: i64, token: &str, body: Value, status: u16, needle: &str) {
        let before = self.get(&format!("/applications/{app}"), &self.pm()).await;
        let (s, v) = self.act(app, token, body.clone()).await;
        assert_eq!(s, status, "{body}: {v}");
        assert_eq!(v["status"], json!(status), "problem+json: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "`{needle}` not in `{detail}`");
        let after = self.get(&format!("/applications/{app}"), &self.pm()).await;
        assert_eq!(before, after, "a refused {body} changed the application");
    }

    /// A programme of the demo grantor with `budget` and `regime`, scored by one evaluator.
    async fn programme(
        &self,
        title: &str,
        budget: f64,
        max_grant: f64,
        regime: &str,
        evaluators: u32,
    ) -> i64 {
        let p = self
            .ok(
                "/programmes",
                &self.pm(),
                json!({
                    "title": title, "budget": budget, "max_grant": max_grant,
                    "opens_at": "2020-01-01", "closes_at": "2099-12-31", "aid_regime": regime,
                    "eligibility": [{"name": "active", "predicate": "status = 'active'"}],
                    "criteria": [{"code": "quality", "weight": 2, "max": 10}, {"code": "value", "weight": 1, "max": 5}],
                    "evaluators_per_application": evaluators,
                }),
            )
            .await;
        p["id"].as_i64().unwrap()
    }

    /// An application of `applicant` brought to `evaluated` in programme `p` (one evaluator:
    /// the second, who has no conflict).
    async fn evaluated(&self, p: i64, applicant: usize, amount: f64) -> i64 {
        self.evaluated_with(p, applicant, amount, 8, 4).await
    }

    /// As [`Map::evaluated`], scored `quality` and `value`.
    async fn evaluated_with(
        &self,
        p: i64,
        applicant: usize,
        amount: f64,
        quality: u32,
        value: u32,
    ) -> i64 {
        let tok = self.token("applicants", applicant);
        let a = self
            .ok(
                "/applications",
                &tok,
                json!({"programme": p, "registration_number": self.company(applicant), "title": "Jauna iekārta", "requested_amount": amount}),
            )
            .await;
        let id = a["id"].as_i64().unwrap();
        self.ok(&format!("/applications/{id}/submit"), &tok, json!({}))
            .await;
        self.act_ok(id, &self.pm(), json!({"action": "accept"}))
            .await;
        let ev = self.token("evaluators", 1);
        self.act_ok(
            id,
            &self.pm(),
            json!({"action": "assign", "evaluator": self.login("evaluators", 1)}),
        )
        .await;
        self.act_ok(id, &ev, json!({"action": "declare", "conflict": false}))
            .await;
        let a = self
            .act_ok(id, &ev, json!({"action": "score", "points": {"quality": quality, "value": value}, "justification": "labi"}))
            .await;
        assert_eq!(a["status"], "evaluated");
        id
    }
}

async fn start(dir: &std::path::Path) -> (Server, Map) {
    start_with(dir, &[]).await
}

async fn start_with(dir: &std::path::Path, extra: &[&str]) -> (Server, Map) {
    let server = Server::start(dir, DEMO_ROWS, extra);
    let creds = credentials(dir);
    let map = Map {
        base: server.base.clone(),
        creds,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    };
    (server, map)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grant_lifecycle_refusals_and_money() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start(dir.path()).await;
    let c = &m.creds["map"];
    assert!(c["evaluators"].as_array().unwrap().len() >= 3, "{c}");
    assert!(c["applicants"].as_array().unwrap().len() >= 2, "{c}");
    let open = c["programmes"]["open"].as_i64().unwrap();
    let pm = m.pm();
    let applicant = m.token("applicants", 1);
    let (ev1, ev2, ev3) = (
        m.token("evaluators", 0),
        m.token("evaluators", 1),
        m.token("evaluators", 2),
    );
    let approver = m.token("approvers", 0);
    let accountant = m.token("accountants", 0);

    // --- Filing: the right to represent is checked and the company pre-filled. ---
    let rn = m.company(1);
    let (s, v) = m
        .call("POST", "/applications", &m.token("applicants", 0), Some(json!({"programme": open, "registration_number": rn, "title": "x", "requested_amount": 1000})))
        .await;
    assert_eq!(
        s, 403,
        "applicant 0 does not represent applicant 1's company: {v}"
    );
    let a = m
        .ok("/applications", &applicant, json!({"programme": open, "registration_number": rn, "title": "Digitālā pārveide", "requested_amount": 40000}))
        .await;
    let id = a["id"].as_i64().unwrap();
    assert_eq!(a["status"], "draft");
    assert_eq!(a["applicant"]["registration_number"], json!(rn));
    assert!(!a["applicant"]["name"].as_str().unwrap().is_empty(), "{a}");
    let steps: Vec<&str> = a["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["represent", "prefill"]);
    assert!(
        !a["evidence"][0]["access_record"]
            .as_array()
            .unwrap()
            .is_empty(),
        "reading who represents the company is a read of personal data: {a}"
    );
    let (s, v) = m
        .call(
            "PATCH",
            &format!("/applications/{id}"),
            &applicant,
            Some(json!({"requested_amount": 500000})),
        )
        .await;
    assert_eq!(s, 422, "over the maximum grant: {v}");
    let (s, _) = m
        .call(
            "PATCH",
            &format!("/applications/{id}"),
            &applicant,
            Some(json!({"requested_amount": 45000})),
        )
        .await;
    assert_eq!(s, 200);

    // --- Refusals before submission change nothing. ---
    m.refused(id, &pm, json!({"action": "accept"}), 409, "submitted")
        .await;
    m.refused(
        id,
        &applicant,
        json!({"action": "return", "reason": "x"}),
        403,
        "programme_manager",
    )
    .await;
    m.refused(
        id,
        &approver,
        json!({"action": "approve", "amount": 1000, "reason": "x"}),
        409,
        "evaluated",
    )
    .await;

    // --- Submit, return, resubmit, accept. ---
    let a = m
        .ok(&format!("/applications/{id}/submit"), &applicant, json!({}))
        .await;
    assert_eq!(a["status"], "submitted");
    assert!(
        a["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["step"] == "submit")
    );
    assert_eq!(a["documents"][0]["direction"], "incoming");
    let before_return = a["updated_at"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    m.act_ok(
        id,
        &pm,
        json!({"action": "return", "reason": "Pievienojiet tāmi"}),
    )
    .await;
    let (s, _) = m
        .call(
            "PATCH",
            &format!("/applications/{id}"),
            &applicant,
            Some(json!({"title": "Digitālā pārveide (ar tāmi)"})),
        )
        .await;
    assert_eq!(s, 200);
    m.ok(&format!("/applications/{id}/submit"), &applicant, json!({}))
        .await;
    m.act_ok(id, &pm, json!({"action": "accept"})).await;

    // --- Evaluation: declared, blind, conflicts detected. ---
    let (s, v) = m.get_status(&format!("/applications/{id}"), &ev2).await;
    assert_eq!(s, 404, "not assigned: {v}");
    m.act_ok(
        id,
        &pm,
        json!({"action": "assign", "evaluator": m.login("evaluators", 1)}),
    )
    .await;
    let (s, v) = m.get_status(&format!("/applications/{id}"), &ev2).await;
    assert_eq!(s, 409, "an evaluator declares before opening: {v}");
    m.refused(id, &ev2, json!({"action": "score", "points": {"innovation": 5, "impact": 5, "capacity": 5}, "justification": "x"}), 409, "declare").await;
    m.act_ok(id, &ev2, json!({"action": "declare", "conflict": false}))
        .await;
    m.act_ok(
        id,
        &pm,
        json!({"action": "assign", "evaluator": m.login("evaluators", 2)}),
    )
    .await;
    m.refused(
        id,
        &pm,
        json!({"action": "assign", "evaluator": m.login("evaluators", 0)}),
        409,
        "already has",
    )
    .await;
    m.refused(id, &ev2, json!({"action": "score", "points": {"innovation": 11, "impact": 5, "capacity": 5}, "justification": "x"}), 422, "innovation").await;
    let a = m.act_ok(id, &ev2, json!({"action": "score", "points": {"innovation": 8, "impact": 6, "capacity": 7}, "justification": "Skaidrs plāns"})).await;
    assert_eq!(a["status"], "in_evaluation");
    let seen = m.get(&format!("/applications/{id}"), &ev2).await;
    assert_eq!(
        seen["scores"].as_array().unwrap().len(),
        1,
        "an evaluator sees their own score: {seen}"
    );
    let seen = m.get(&format!("/applications/{id}"), &pm).await;
    assert!(
        seen["scores"].as_array().unwrap().is_empty(),
        "blind: the manager sees no points before all are in: {seen}"
    );
    assert!(seen["score"].is_null());
    m.act_ok(id, &ev3, json!({"action": "declare", "conflict": false}))
        .await;
    let seen = m.get(&format!("/applications/{id}"), &ev3).await;
    assert!(
        seen["scores"].as_array().unwrap().is_empty(),
        "blind: another evaluator's points stay hidden: {seen}"
    );
    let a = m.act_ok(id, &ev3, json!({"action": "score", "points": {"innovation": 6, "impact": 8, "capacity": 5}, "justification": "Labs"})).await;
    assert_eq!(a["status"], "evaluated");
    // (40×7 + 35×7 + 25×6) / 100
    assert_eq!(a["score"], json!(6.75));
    let seen = m.get(&format!("/applications/{id}"), &pm).await;
    assert_eq!(seen["scores"].as_array().unwrap().len(), 2);

    // --- Decision. ---
    m.refused(
        id,
        &approver,
        json!({"action": "approve", "amount": 50000, "reason": "x"}),
        422,
        "requested",
    )
    .await;
    m.refused(
        id,
        &pm,
        json!({"action": "approve", "amount": 40000, "reason": "x"}),
        403,
        "approver",
    )
    .await;
    let p0 = m.get(&format!("/programmes/{open}"), &pm).await;
    let published = |m: &Map| {
        let (base, admin) = (
            m.base.clone(),
            m.creds["admin"]["token"].as_str().unwrap().to_owned(),
        );
        async move {
            let (s, _, d) =
                common::get_auth(&format!("{base}/api/v1/datasets/map_projects"), &admin).await;
            assert_eq!(s, 200, "{d}");
            (d["version"].as_u64().unwrap(), d["rows"].as_u64().unwrap())
        }
    };
    let (v0, rows0) = published(&m).await;
    let a = m
        .act_ok(
            id,
            &approver,
            json!({"action": "approve", "amount": 40000, "reason": "Atbilst"}),
        )
        .await;
    assert_eq!(a["status"], "approved");
    assert_eq!(a["granted_amount"], json!(40000.0));
    assert!(
        a["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["step"] == "decision")
    );
    // Published within moments (decisions are coalesced for 300 ms), as one new version.
    let mut seen = published(&m).await;
    for _ in 0..100 {
        if seen.1 == rows0 + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = published(&m).await;
    }
    assert_eq!(
        seen,
        (v0 + 1, rows0 + 1),
        "the approval is published in map_projects"
    );
    let p1 = m.get(&format!("/programmes/{open}"), &pm).await;
    assert_eq!(
        p1["committed"].as_f64().unwrap() - p0["committed"].as_f64().unwrap(),
        40000.0
    );
    let aid = m.get(&format!("/undertakings/{rn}/aid"), &pm).await;
    assert_eq!(
        aid["granted"],
        json!(40000.0),
        "de minimis programme: {aid}"
    );

    // --- Contract, payments with two levels by two people, reports, closure. ---
    m.act_ok(id, &pm, json!({"action": "contract"})).await;
    // The demo programme asks for an interim report 6 months and a final one 12 months after
    // the contract.
    let due_kinds = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["application"] == json!(id))
            .map(|d| {
                format!(
                    "{}{}",
                    d["kind"].as_str().unwrap(),
                    if d["overdue"] == json!(true) { "!" } else { "" }
                )
            })
            .collect()
    };
    let due = m.get("/reports/due?within_days=366", &pm).await;
    assert_eq!(due_kinds(&due), ["interim", "final"], "{due}");
    let due = m.get("/reports/due?within_days=366", &applicant).await;
    assert_eq!(due_kinds(&due), ["interim", "final"], "{due}");
    assert!(
        due_kinds(&m.get("/reports/due", &pm).await).is_empty(),
        "nothing within 30 days"
    );
    let (s, _) = m.get_status("/reports/due", &ev2).await;
    assert_eq!(s, 403);
    m.refused(
        id,
        &applicant,
        json!({"action": "request_payment", "amount": 40000.01}),
        409,
        "contract amount",
    )
    .await;
    let a = m
        .act_ok(
            id,
            &applicant,
            json!({"action": "request_payment", "amount": 15000}),
        )
        .await;
    let pay = a["payments"][0]["id"].as_i64().unwrap();
    m.refused(
        id,
        &accountant,
        json!({"action": "approve_payment", "payment": pay}),
        403,
        "programme_manager",
    )
    .await;
    m.act_ok(
        id,
        &pm,
        json!({"action": "approve_payment", "payment": pay}),
    )
    .await;
    m.refused(
        id,
        &accountant,
        json!({"action": "pay", "payment": pay}),
        409,
        "not approved",
    )
    .await;
    let a = m
        .act_ok(
            id,
            &accountant,
            json!({"action": "approve_payment", "payment": pay}),
        )
        .await;
    assert_eq!(a["payments"][0]["status"], "approved");
    let a = m
        .act_ok(id, &accountant, json!({"action": "pay", "payment": pay}))
        .await;
    assert_eq!(a["payments"][0]["status"], "paid");
    m.refused(id, &pm, json!({"action": "close"}), 409, "final report")
        .await;
    let a = m
        .act_ok(id, &applicant, json!({"action": "report", "kind": "final", "eligible_costs": 17647.06, "text": "Paveikts",
            "costs": [{"supplier": "40003000001", "invoice": "INV-1", "amount": 17647.06}]}))
        .await;
    let report = a["reports"][0]["id"].as_i64().unwrap();
    let due = m.get("/reports/due?within_days=366", &pm).await;
    assert_eq!(
        due_kinds(&due),
        ["interim"],
        "the final report was filed: {due}"
    );
    m.act_ok(
        id,
        &pm,
        json!({"action": "approve_report", "report": report}),
    )
    .await;
    let before_close = m.get(&format!("/programmes/{open}"), &pm).await;
    let a = m.act_ok(id, &pm, json!({"action": "close"})).await;
    assert_eq!(a["status"], "closed");
    let after_close = m.get(&format!("/programmes/{open}"), &pm).await;
    assert_eq!(
        before_close["committed"].as_f64().unwrap() - after_close["committed"].as_f64().unwrap(),
        25000.0,
        "closure releases the unpaid rest"
    );
    assert_eq!(
        after_close["paid"].as_f64().unwrap() - p0["paid"].as_f64().unwrap(),
        15000.0
    );
    let aid = m.get(&format!("/undertakings/{rn}/aid"), &pm).await;
    assert_eq!(
        aid["granted"],
        json!(15000.0),
        "the aid is what was paid: {aid}"
    );
    let steps: Vec<&str> = a["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for step in ["prefill", "submit", "decision", "payment", "closure"] {
        assert!(steps.contains(&step), "{step} missing in {steps:?}");
    }
    let numbers: Vec<&str> = a["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_str().unwrap())
        .collect();
    let mut unique = numbers.clone();
    unique.dedup();
    assert_eq!(unique.len(), numbers.len(), "{numbers:?}");

    // --- Exports for accounting and records. ---
    let entries = m.get("/exports/accounting", &accountant).await;
    let mine: Vec<(String, f64)> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["application"] == json!(id))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["amount"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mine,
        [
            ("commitment".to_owned(), 40000.0),
            ("payment".to_owned(), 15000.0),
            ("release".to_owned(), 25000.0)
        ],
        "{entries}"
    );
    let r = m
        .http
        .get(format!("{}/api/v1/map/exports/payments?format=csv", m.base))
        .bearer_auth(&accountant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("payment,application,programme,registration_number,amount,at\n"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("{pay},{id},{open},{rn},15000.0,")),
        "{csv}"
    );
    let docs = m.get("/exports/documents", &pm).await;
    let numbers: Vec<&str> = docs
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["application"] == json!(id))
        .map(|d| d["number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers.len(),
        a["documents"].as_array().unwrap().len(),
        "{docs}"
    );
    for (who, token) in [("applicant", &applicant), ("evaluator", &ev2)] {
        let (s, v) = m.get_status("/exports/payments", token).await;
        assert_eq!(s, 403, "{who}: {v}");
    }
    let (s, _) = m
        .get_status("/exports/payments?format=xml", &accountant)
        .await;
    assert_eq!(s, 400);
    let (s, _) = m.get_status("/exports/salaries", &accountant).await;
    assert_eq!(s, 404);

    // --- History, as-of replay, access log, inbox. ---
    let h = m.get(&format!("/applications/{id}/history"), &pm).await;
    let actions: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..5],
        ["create", "submit", "return", "resubmit", "accept"]
    );
    assert!(
        h[2]["by"]
            .as_str()
            .unwrap()
            .contains(&m.login("programme_managers", 0))
    );
    let h = m
        .get(&format!("/applications/{id}/history"), &applicant)
        .await;
    assert!(
        !h.to_string().contains(&m.login("programme_managers", 0)),
        "staff logins stay hidden from the applicant: {h}"
    );
    let then = m
        .get(&format!("/applications/{id}?as_of={before_return}"), &pm)
        .await;
    assert_eq!(then["status"], "submitted", "{then}");
    let (s, _) = m
        .get_status(
            &format!("/applications/{id}?as_of={before_return}"),
            &applicant,
        )
        .await;
    assert_eq!(s, 403);
    let log = m
        .get(&format!("/applications/{id}/access-log"), &applicant)
        .await;
    let text = log.to_string();
    assert!(
        text.contains("opened") && text.contains("evaluator") && text.contains("officials"),
        "{log}"
    );
    let inbox = m.get("/inbox", &applicant).await;
    assert!(inbox.to_string().contains("approved"), "{inbox}");

    // --- The conflict of interest of the first evaluator is detected. ---
    let rn0 = m.company(0);
    let applicant0 = m.token("applicants", 0);
    let b = m.ok("/applications", &applicant0, json!({"programme": open, "registration_number": rn0, "title": "Eksports", "requested_amount": 20000})).await;
    let b = b["id"].as_i64().unwrap();
    m.ok(&format!("/applications/{b}/submit"), &applicant0, json!({}))
        .await;
    m.act_ok(b, &pm, json!({"action": "accept"})).await;
    m.refused(
        b,
        &pm,
        json!({"action": "assign", "evaluator": m.login("evaluators", 0)}),
        409,
        "conflict of interest",
    )
    .await;
    let (s, v) = m
        .act(b, &ev1, json!({"action": "declare", "conflict": false}))
        .await;
    assert_eq!(s, 409, "{v}");

    // --- Withdrawal before a contract; not after. ---
    let w = m
        .act_ok(b, &applicant0, json!({"action": "withdraw"}))
        .await;
    assert_eq!(w["status"], "withdrawn");
    m.refused(id, &applicant, json!({"action": "withdraw"}), 409, "closed")
        .await;

    // --- Double funding: the invoice claimed above cannot be claimed again. ---
    let p = m
        .programme("Dubultā finansējuma pārbaude", 100000.0, 50000.0, "none", 1)
        .await;
    let d = m.evaluated(p, 1, 10000.0).await;
    m.act_ok(
        d,
        &approver,
        json!({"action": "approve", "amount": 10000, "reason": "ok"}),
    )
    .await;
    m.act_ok(d, &pm, json!({"action": "contract"})).await;
    m.refused(
        d,
        &applicant,
        json!({"action": "report", "kind": "interim", "eligible_costs": 100, "text": "x",
        "costs": [{"supplier": "40003000001", "invoice": "INV-1", "amount": 100}]}),
        409,
        "double funding",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_and_de_minimis_hold_under_concurrent_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start(dir.path()).await;
    money_holds_under_concurrency(&m).await;
}

/// The same on PostgreSQL, where the serialisation comes from row locks rather than
/// SQLite's single writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_and_de_minimis_hold_under_concurrent_decisions_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start_with(dir.path(), &["--database-url", &url]).await;
    money_holds_under_concurrency(&m).await;
    aid_rules(&m).await;
}

async fn money_holds_under_concurrency(m: &Map) {
    let pm = m.pm();

    // Budget: six evaluated applications of 40 000 against 100 000, approved by two
    // approvers at once: exactly two fit.
    let p = m
        .programme("Budžeta sacensība", 100000.0, 50000.0, "none", 1)
        .await;
    let mut apps = Vec::new();
    for _ in 0..6 {
        apps.push(m.evaluated(p, 1, 40000.0).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in apps.iter().enumerate() {
        let (base, http) = (m.base.clone(), m.http.clone());
        let tok = m.token("approvers", i % 2);
        let id = *id;
        tasks.spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/map/applications/{id}/transitions"))
                .bearer_auth(tok)
                .json(&json!({"action": "approve", "amount": 40000, "reason": "ok"}))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        });
    }
    let mut passed = 0;
    while let Some(t) = tasks.join_next().await {
        let (s, v) = t.unwrap();
        match s {
            200 => passed += 1,
            409 => assert!(v["detail"].as_str().unwrap().contains("budget"), "{v}"),
            _ => panic!("{s} {v}"),
        }
    }
    assert_eq!(passed, 2);
    let prog = m.get(&format!("/programmes/{p}"), &pm).await;
    assert_eq!(prog["committed"], json!(80000.0));
    let approved = m
        .get(&format!("/applications?programme={p}&status=approved"), &pm)
        .await;
    assert_eq!(approved.as_array().unwrap().len(), 2);

    // De minimis: 270 000 granted outside MAP; two applications of 20 000 at once: one fits
    // under 300 000, the other is refused naming the totals.
    let rn = m.company(1);
    let (s, v) = m
        .call(
            "POST",
            &format!("/undertakings/{rn}/aid"),
            &pm,
            Some(json!({"amount": 270000, "granted_at": "2025-06-01"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let q = m
        .programme(
            "De minimis sacensība",
            10000000.0,
            100000.0,
            "de_minimis",
            1,
        )
        .await;
    let a = m.evaluated(q, 1, 20000.0).await;
    let b = m.evaluated(q, 1, 20000.0).await;
    let (ap0, ap1) = (m.token("approvers", 0), m.token("approvers", 1));
    let (ra, rb) = tokio::join!(
        m.act(
            a,
            &ap0,
            json!({"action": "approve", "amount": 20000, "reason": "ok"})
        ),
        m.act(
            b,
            &ap1,
            json!({"action": "approve", "amount": 20000, "reason": "ok"})
        ),
    );
    let statuses = [ra.0, rb.0];
    assert!(
        statuses.contains(&200) && statuses.contains(&409),
        "{ra:?} {rb:?}"
    );
    let refused = if ra.0 == 409 { &ra.1 } else { &rb.1 };
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("de minimis") && detail.contains("290000.00"),
        "{detail}"
    );
    let aid = m.get(&format!("/undertakings/{rn}/aid"), &pm).await;
    assert_eq!(aid["granted"], json!(290000.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_reads_are_audited_and_stop_with_the_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let (server, m) = start(dir.path()).await;
    let open = m.creds["map"]["programmes"]["open"].as_i64().unwrap();
    let tok = m.token("applicants", 1);
    let rn = m.company(1);
    let a = m
        .ok("/applications", &tok, json!({"programme": open, "registration_number": rn, "title": "Audits", "requested_amount": 1000}))
        .await;
    let record = a["evidence"][0]["access_record"][0]
        .as_str()
        .unwrap()
        .to_owned();

    // The applicant sees the read in "who used my data", by LIAA's MAP system, with a
    // purpose naming MAP.
    let (s, _, usage) = common::get_auth(&format!("{}/api/v1/me/usage", server.base), &tok).await;
    assert_eq!(s, 200);
    let entry = usage
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == json!(record))
        .unwrap_or_else(|| panic!("access record {record} not in the applicant's usage: {usage}"));
    assert_eq!(entry["organisation"], "LIAA", "{entry}");
    assert_eq!(entry["dataset"], "officials", "{entry}");
    assert_eq!(
        entry["system"],
        json!(m.creds["map"]["system_id"].to_string()),
        "{entry}"
    );
    assert!(
        entry["purpose"].as_str().unwrap().contains("MAP programme"),
        "{entry}"
    );

    // The register owner revokes LIAA's agreement on officials: MAP can no longer check
    // the right to represent, and says so; nothing is filed.
    let agreement = m.creds["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["consumer_organisation"] == "LIAA" && a["dataset"] == "officials")
        .expect("the demo agreement of LIAA on officials")["id"]
        .as_i64()
        .unwrap();
    let owner = common::system_token(&m.creds, "UR", "provider");
    let (s, _, v) = common::post_auth(
        &format!("{}/api/v1/agreements/{agreement}/revoke", server.base),
        &owner,
        &json!({"reason": "end-to-end test"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let before = m.get("/applications", &tok).await.as_array().unwrap().len();
    let (s, v) = m
        .call("POST", "/applications", &tok, Some(json!({"programme": open, "registration_number": rn, "title": "Pēc atsaukuma", "requested_amount": 1000})))
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("officials"), "{v}");
    assert_eq!(
        m.get("/applications", &tok).await.as_array().unwrap().len(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_applications_list_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start(dir.path()).await;
    let seeded = m.creds["map"]["programmes"]["seeded"].as_i64().unwrap();
    let pm = m.pm();
    let mut total = 0;
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/applications?programme={seeded}&limit=1000&before={b}"),
            None => format!("/applications?programme={seeded}&limit=1000"),
        };
        let page = m.get(&path, &pm).await;
        let page = page.as_array().unwrap();
        total += page.len();
        if page.len() < 1000 {
            break;
        }
        before = page.last().unwrap()["id"].as_i64();
    }
    assert_eq!(total, 2000);
    let rejected = m
        .get(
            &format!("/applications?programme={seeded}&status=rejected&limit=1000"),
            &pm,
        )
        .await;
    let rejected = rejected.as_array().unwrap();
    assert!(!rejected.is_empty());
    assert!(rejected.iter().all(|a| a["status"] == "rejected"));
    // A seeded application replays as it is (its history entry holds the same state).
    let first = rejected[0]["id"].as_i64().unwrap();
    let now = m.get(&format!("/applications/{first}"), &pm).await;
    let then = m
        .get(&format!("/applications/{first}?as_of=2099-01-01"), &pm)
        .await;
    assert_eq!(now, then);
    let (s, v) = m
        .call("GET", "/applications?status=nonsense", &pm, None)
        .await;
    assert_eq!(s, 400, "{v}");
    // Evaluators see only what is assigned to them; the admin sees nothing of MAP.
    let ev = m.get("/applications", &m.token("evaluators", 2)).await;
    assert!(ev.as_array().unwrap().is_empty(), "{ev}");
    let admin = m.creds["admin"]["token"].as_str().unwrap().to_owned();
    let (s, _) = m.call("GET", "/applications", &admin, None).await;
    assert_eq!(s, 403);
    let prog = m.get(&format!("/programmes/{seeded}"), &pm).await;
    assert!(prog["committed"].as_f64().unwrap() > 0.0);
    assert!(prog["committed"].as_f64().unwrap() <= prog["budget"].as_f64().unwrap());
}

impl Map {
    async fn get_status(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, token, None).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranking_and_bulk_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start(dir.path()).await;
    let pm = m.pm();
    let approver = m.token("approvers", 0);
    let p = m.programme("Rangs", 50000.0, 30000.0, "none", 1).await;
    let a = m.evaluated_with(p, 1, 20000.0, 9, 5).await;
    let b = m.evaluated_with(p, 1, 20000.0, 5, 2).await;
    let c = m.evaluated_with(p, 1, 20000.0, 7, 3).await;
    let r = m.get(&format!("/programmes/{p}/ranking"), &pm).await;
    let order: Vec<i64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["application"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [a, c, b], "{r}");
    let left: Vec<f64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["remaining_if_funded"].as_f64().unwrap())
        .collect();
    assert_eq!(left, [30000.0, 10000.0, -10000.0]);
    let (s, _) = m
        .get_status(
            &format!("/programmes/{p}/ranking"),
            &m.token("evaluators", 1),
        )
        .await;
    assert_eq!(s, 403, "evaluators do not see the ranking");

    // In ranking order: the third no longer fits the budget; an unknown application is
    // reported, and neither stops the others.
    let decisions = json!({"decisions": [
        {"application": a, "decision": "approve", "amount": 20000, "reason": "1."},
        {"application": 999999, "decision": "reject", "reason": "?"},
        {"application": c, "decision": "approve", "amount": 20000, "reason": "2."},
        {"application": b, "decision": "approve", "amount": 20000, "reason": "3."},
    ]});
    let (s, v) = m
        .call(
            "POST",
            &format!("/programmes/{p}/decisions"),
            &pm,
            Some(decisions.clone()),
        )
        .await;
    assert_eq!(s, 403, "decisions are the approvers': {v}");
    let out = m
        .ok(&format!("/programmes/{p}/decisions"), &approver, decisions)
        .await;
    let statuses: Vec<u64> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 404, 200, 409], "{out}");
    assert!(
        out[3]["detail"].as_str().unwrap().contains("budget"),
        "{out}"
    );
    let prog = m.get(&format!("/programmes/{p}"), &pm).await;
    assert_eq!(prog["committed"], json!(40000.0));
    let still = m.get(&format!("/applications/{b}"), &pm).await;
    assert_eq!(still["status"], "evaluated");
}

/// The aid rules are data: an admin adds a regime with its ceiling, a programme manager
/// records that two companies are one undertaking, and from then on their aid counts
/// together; removing the link separates them again. Refusals name the rule and change
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aid_regimes_and_undertakings_are_rules_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start(dir.path()).await;
    aid_rules(&m).await;
}

async fn aid_rules(m: &Map) {
    let pm = m.pm();
    let admin = m.creds["admin"]["token"].as_str().unwrap().to_owned();
    let applicant = m.token("applicants", 0);

    // The shipped regimes name their source.
    let regimes = m.get("/regimes", &applicant).await;
    let dm = regimes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "de_minimis")
        .expect("de_minimis is a shipped regime");
    assert_eq!(dm["ceiling"], json!(300000.0));
    assert!(
        dm["legal_basis"].as_str().unwrap().contains("2023/2831"),
        "{dm}"
    );

    // An admin adds a regime; nobody else may, and `none` has no rules.
    let regime = json!({"title": "Pilot aid", "legal_basis": "Test rule, Article 1",
        "ceiling": 50000, "window_days": 365});
    let (s, v) = m
        .call("PUT", "/regimes/pilot", &pm, Some(regime.clone()))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = m
        .call("PUT", "/regimes/none", &admin, Some(regime.clone()))
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = m.call("PUT", "/regimes/pilot", &admin, Some(regime)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["counts"], json!(["pilot"]));

    // A programme names a regime of the rules.
    let (s, v) = m
        .call(
            "POST",
            "/programmes",
            &pm,
            Some(json!({"title": "X", "budget": 1000, "max_grant": 100,
                "opens_at": "2020-01-01", "closes_at": "2099-12-31", "aid_regime": "nope",
                "eligibility": [], "criteria": [{"code": "q", "weight": 1, "max": 5}],
                "evaluators_per_application": 1})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("de_minimis"), "{v}");
    let p = m.programme("Pilots", 1000000.0, 100000.0, "pilot", 1).await;

    // Two companies, one undertaking: 40 000 of pilot aid to the parent outside MAP.
    let (parent, member) = (m.company(1), m.company(0));
    let (s, v) = m
        .call(
            "POST",
            &format!("/undertakings/{parent}/aid"),
            &pm,
            Some(json!({"regime": "pilot", "amount": 40000, "granted_at": "2026-06-01"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = m
        .call(
            "POST",
            &format!("/undertakings/{parent}/links"),
            &applicant,
            Some(json!({"registration_number": member, "reason": "x"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = m
        .call(
            "POST",
            &format!("/undertakings/{parent}/links"),
            &pm,
            Some(json!({"registration_number": parent, "reason": "x"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let totals = m
        .ok(
            &format!("/undertakings/{parent}/links"),
            &pm,
            json!({"registration_number": member, "reason": "majority of voting rights"}),
        )
        .await;
    let mut both = vec![parent.clone(), member.clone()];
    both.sort();
    assert_eq!(totals["members"], json!(both));
    // A member cannot be a parent, nor be linked twice.
    let (s, v) = m
        .call(
            "POST",
            &format!("/undertakings/{member}/links"),
            &pm,
            Some(json!({"registration_number": "40003000001", "reason": "x"})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let aid = m
        .get(&format!("/undertakings/{member}/aid"), &applicant)
        .await;
    let pilot = aid["regimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["regime"] == "pilot")
        .unwrap()
        .clone();
    assert_eq!(pilot["granted"], json!(40000.0), "{aid}");
    assert_eq!(pilot["remaining"], json!(10000.0), "{aid}");
    let links = m.get(&format!("/undertakings/{member}/links"), &pm).await;
    assert_eq!(links[0]["reason"], "majority of voting rights", "{links}");

    // The member's application of 20 000 passes the undertaking's ceiling: refused,
    // naming both companies and the totals; nothing changes.
    let a = m.evaluated(p, 0, 20000.0).await;
    let approver = m.token("approvers", 0);
    let approve = json!({"action": "approve", "amount": 20000, "reason": "ok"});
    m.refused(a, &approver, approve.clone(), 409, "one undertaking with")
        .await;
    let (_, v) = m.act(a, &approver, approve.clone()).await;
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("40000.00") && detail.contains("Test rule"),
        "{detail}"
    );

    // Unlinked, the member is an undertaking of its own again and the decision passes.
    let (s, v) = m
        .call(
            "DELETE",
            &format!("/undertakings/{parent}/links/{member}"),
            &pm,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["members"], json!([parent]));
    let (s, v) = m
        .call(
            "DELETE",
            &format!("/undertakings/{parent}/links/{member}"),
            &pm,
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let v = m.act_ok(a, &approver, approve).await;
    assert_eq!(v["status"], "approved");

    // Forward only: a lower ceiling leaves the aid granted; the totals show nothing left.
    let (s, v) = m
        .call(
            "PUT",
            "/regimes/pilot",
            &admin,
            Some(json!({"title": "Pilot aid", "legal_basis": "Test rule, Article 1", "ceiling": 10000})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let aid = m.get(&format!("/undertakings/{member}/aid"), &pm).await;
    let pilot = aid["regimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["regime"] == "pilot")
        .unwrap()
        .clone();
    assert_eq!(pilot["granted"], json!(20000.0), "{aid}");
    assert_eq!(pilot["remaining"], json!(0.0), "{aid}");
}

/// Notifications leave by e-mail too: a person gives an address, a notification of theirs
/// goes through the SMTP relay `dagr serve --smtp-relay` names; a relay's permanent refusal
/// leaves the message failed with its answer, which the admin sees in the outbox; persons
/// without an address get no mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_mailed_through_the_relay() {
    let sink = common::smtp::SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        DEMO_ROWS,
        &[
            "--smtp-relay",
            &sink.addr,
            "--mail-from",
            "LIAA granti <granti@liaa.example>",
            "--mail-interval-secs",
            "1",
        ],
    );
    let m = Map {
        base: server.base.clone(),
        creds: credentials(dir.path()),
        http: reqwest::Client::new(),
    };
    let pm = m.pm();
    let admin = m.creds["admin"]["token"].as_str().unwrap().to_owned();
    let (alice, bob) = (m.token("applicants", 0), m.token("applicants", 1));
    let email = |token: &str, body: Value| {
        m.http
            .put(format!("{}/api/v1/me/email", m.base))
            .bearer_auth(token.to_owned())
            .json(&body)
    };

    // Addresses are checked, belong to persons, and read back.
    let (s, _, v) = send(email(&alice, json!({"address": "not an address"}))).await;
    assert_eq!(s, 422, "{v}");
    let (s, _, v) = send(email(&pm, json!({"address": "pm@liaa.example"}))).await;
    assert_eq!(s, 200, "a person's own token sets their address: {v}");
    let (s, _, v) = send(email(&admin, json!({"address": "a@b.example"}))).await;
    assert_eq!(s, 403, "{v}");
    let (s, _, v) = send(email(&alice, json!({"address": "alice@example.lv"}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = send(email(&bob, json!({"address": "refused-bob@example.lv"}))).await;
    assert_eq!(s, 200, "{v}");
    let (_, _, v) = send(
        m.http
            .get(format!("{}/api/v1/me/email", m.base))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(v["address"], "alice@example.lv");

    // Alice's application is returned: the notice reaches her inbox and her mailbox.
    let p = m.programme("Pasts", 100000.0, 50000.0, "none", 1).await;
    async fn file(m: &Map, p: i64, tok: &str, applicant: usize) -> i64 {
        let body = json!({"programme": p, "registration_number": m.company(applicant),
            "title": "Tīmekļa veikals", "requested_amount": 1000});
        let a = m.ok("/applications", tok, body).await;
        let id = a["id"].as_i64().unwrap();
        m.ok(&format!("/applications/{id}/submit"), tok, json!({}))
            .await;
        id
    }
    let a = file(&m, p, &alice, 0).await;
    m.act_ok(
        a,
        &pm,
        json!({"action": "return", "reason": "Pievienojiet tāmi."}),
    )
    .await;
    let mail = sink.wait_for(30, |r| !r.is_empty()).await;
    assert_eq!(mail[0].to, vec!["alice@example.lv".to_owned()]);
    assert_eq!(mail[0].from, "granti@liaa.example");
    assert!(
        mail[0]
            .data
            .contains(&format!("Subject: MAP: application {a}")),
        "{}",
        mail[0].data
    );
    let inbox = m.get("/inbox", &alice).await;
    assert!(inbox.to_string().contains("Pievienojiet"), "{inbox}");

    // Bob's relay refuses his mailbox: the message fails with the relay's answer.
    let b = file(&m, p, &bob, 1).await;
    m.act_ok(
        b,
        &pm,
        json!({"action": "return", "reason": "Trūkst paraksta."}),
    )
    .await;
    let outbox = |status: &'static str| {
        let req = m
            .http
            .get(format!("{}/api/v1/outbox?status={status}", m.base))
            .bearer_auth(&admin);
        async move { send(req).await.2 }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let f = outbox("failed").await;
        if !f.as_array().unwrap().is_empty() {
            break f;
        }
        assert!(std::time::Instant::now() < deadline, "no failed message");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(failed[0]["to"], "refused-bob@example.lv");
    assert!(
        failed[0].get("body").is_none_or(Value::is_null),
        "a person's message is withheld from the admin: {failed}"
    );
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    let sent = outbox("sent").await;
    assert_eq!(sent.as_array().unwrap().len(), 1, "{sent}");
    assert_eq!(
        sink.received().len(),
        1,
        "only Alice's message was accepted"
    );
    let (s, _, v) = send(
        m.http
            .get(format!("{}/api/v1/outbox?status=lost", m.base))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, _, _) = send(
        m.http
            .get(format!("{}/api/v1/outbox", m.base))
            .bearer_auth(&pm),
    )
    .await;
    assert_eq!(s, 403);
}

/// The Latvian specifics are data: the working-day calendar (public; an admin's entries for
/// single days), MAP's settings with their sources (a new document number format applies to
/// the next document; an invalid one changes nothing), and the retention list follows the
/// setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_and_settings_are_data() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, m) = start(dir.path()).await;
    let pm = m.pm();
    let admin = m.creds["admin"]["token"].as_str().unwrap().to_owned();
    let calendar = |query: &str| {
        let req = m.http.get(format!("{}/api/v1/calendar{query}", m.base));
        async move { send(req).await }
    };

    // The law's holidays, computed, with no token.
    let (s, _, year) = calendar("?year=2026").await;
    assert_eq!(s, 200, "{year}");
    let days = year["days"].as_array().unwrap();
    let named = |date: &str| days.iter().find(|d| d["date"] == date).cloned();
    assert_eq!(named("2026-04-03").unwrap()["name"], "Lielā Piektdiena");
    assert!(
        named("2026-11-18").unwrap()["source"]
            .as_str()
            .unwrap()
            .contains("Par svētku")
    );
    let working = year["working_days"].as_i64().unwrap();
    assert!((240..=255).contains(&working), "{working}");
    let (s, _, v) = calendar("?year=3000").await;
    assert_eq!(s, 422, "{v}");

    // An admin moves a working day to Saturday 19 December 2026; others may not.
    let entry = json!({"kind": "working", "name": "Pārceltā darba diena",
        "source": "MK rīkojums Nr. 1 (test)"});
    let put = |token: &str, body: &Value| {
        m.http
            .put(format!("{}/api/v1/calendar/days/2026-12-19", m.base))
            .bearer_auth(token.to_owned())
            .json(body)
    };
    let (s, _, v) = send(put(&pm, &entry)).await;
    assert_eq!(s, 403, "{v}");
    let (s, _, v) = send(put(
        &admin,
        &json!({"kind": "maybe", "name": "x", "source": "y"}),
    ))
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, _, v) = send(put(&admin, &entry)).await;
    assert_eq!(s, 200, "{v}");
    let (_, _, after) = calendar("?year=2026").await;
    assert_eq!(after["working_days"].as_i64().unwrap(), working + 1);
    let moved = after["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2026-12-19")
        .cloned()
        .unwrap();
    assert_eq!(moved["entered"], json!(true));
    assert_eq!(moved["kind"], "working");

    // MAP's settings name their sources.
    let settings = m.get("/settings", &pm).await;
    assert_eq!(settings["document_number_format"], "MAP-{year}/{seq:6}");
    assert!(
        settings["sources"]["retention_years"]
            .as_str()
            .unwrap()
            .contains("2023/2831")
    );
    assert_eq!(settings["due_dates_on_working_days"], json!(true));

    // An invalid format is refused and changes nothing; a valid one numbers the next
    // document.
    let (s, v) = m
        .call(
            "PUT",
            "/settings",
            &admin,
            Some(json!({"document_number_format": "LIAA {seq:4}", "source": "x"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = m
        .call(
            "PUT",
            "/settings",
            &pm,
            Some(json!({"reminder_days": 7, "source": "x"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(
        m.get("/settings", &pm).await["document_number_format"],
        "MAP-{year}/{seq:6}"
    );
    let v = m
        .call(
            "PUT",
            "/settings",
            &admin,
            Some(json!({"document_number_format": "LIAA-{year}-{seq:4}",
                "retention_years": 1, "source": "LIAA rīkojums (test)"})),
        )
        .await
        .1;
    assert_eq!(v["document_number_format"], "LIAA-{year}-{seq:4}", "{v}");
    assert_eq!(
        v["sources"]["document_number_format"],
        "LIAA rīkojums (test)"
    );
    let p = m.programme("Numuri", 100000.0, 50000.0, "none", 1).await;
    let tok = m.token("applicants", 0);
    let a = m
        .ok(
            "/applications",
            &tok,
            json!({"programme": p, "registration_number": m.company(0), "title": "T", "requested_amount": 100}),
        )
        .await;
    let id = a["id"].as_i64().unwrap();
    let a = m
        .ok(&format!("/applications/{id}/submit"), &tok, json!({}))
        .await;
    let number = a["documents"][0]["number"].as_str().unwrap();
    assert!(
        number.starts_with("LIAA-20") && number.len() == "LIAA-2026-0001".len(),
        "{number}"
    );

    // Retention: one year; every listed application is final and last changed over a year
    // ago.
    let due = m.get("/retention", &pm).await;
    let year_ago = chrono::Utc::now() - chrono::Duration::days(365);
    for d in due.as_array().unwrap() {
        assert!(
            ["closed", "terminated", "withdrawn", "rejected"]
                .contains(&d["status"].as_str().unwrap()),
            "{d}"
        );
        let last: chrono::DateTime<chrono::Utc> =
            d["last_change"].as_str().unwrap().parse().unwrap();
        assert!(last <= year_ago, "{d}");
    }
    let (s, v) = m.call("GET", "/retention", &tok, None).await;
    assert_eq!(s, 403, "{v}");
}

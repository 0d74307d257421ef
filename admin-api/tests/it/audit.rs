//! The usage audit: access records and usage events in the hash-chained log, the citizen's
//! view, owners' summaries and exports, role boundaries, verification against tampering,
//! expiry, and a store failure that must withhold the data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use dagr_admin_api::audit::store::{
    AuditStoreError, UsageEventIn, UsageFilter, UsagePage, UsageStatus, VerifyReport,
};
use dagr_admin_api::audit::{AuditConfig, AuditStore};
use dagr_admin_api::model::Time;
use dagr_engine::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use dagr_engine::audit::{AccessRecord, AuditContext, AuditSink, Channel, ReadLog};
use dagr_engine::{Access, Attribute, DatasetDefinition, Grant, Principal, Role};
use serde_json::{Value, json};

use crate::common::{World, code};
use crate::each_backend;

/// The agreement label the tests' grants carry.
const AGREEMENT: &str = "41";

fn bank(w: &World) -> Principal {
    Principal {
        role: Role::Consumer,
        organisation: Some("BANK".into()),
        system: Some(w.bank_system.to_string()),
        subject: None,
        user: None,
        token_id: Some("7".into()),
    }
}

fn insurer(w: &World) -> Principal {
    Principal {
        organisation: Some("INS".into()),
        system: Some(w.insurer_system.to_string()),
        ..bank(w)
    }
}

fn context(p: Principal, purpose: &str, channel: Channel) -> Arc<AuditContext> {
    Arc::new(AuditContext {
        principal: p,
        purpose: Some(purpose.into()),
        channel,
        request_id: "req-1".into(),
        query: "GET /api/v1/datasets/people/records/...".into(),
    })
}

/// Grants on `people` of the key and the names, labelled with [`AGREEMENT`].
fn names_access() -> Access {
    Access::Grants(BTreeMap::from([(
        "people".to_owned(),
        vec![
            Grant::attributes(["personal_code", "given_name", "surname"]).with_agreement(AGREEMENT),
        ],
    )]))
}

/// The access records of looking up people `rows` (each a point lookup) with `access`.
fn lookups(
    w: &World,
    access: &Access,
    rows: &[usize],
    ctx: &Arc<AuditContext>,
) -> Vec<AccessRecord> {
    let log = ReadLog::new();
    let view = w
        .state
        .engine
        .view("people", access)
        .unwrap()
        .with_log(log.clone());
    for &i in rows {
        let key = view.snapshot.parse_key(&code(i)).unwrap();
        assert!(view.lookup(&key).unwrap().is_some());
    }
    log.take_records(ctx)
}

/// The access records of the first `n` rows of `dataset` (a sample, or a bulk stream).
fn head(w: &World, dataset: &str, n: usize, ctx: &Arc<AuditContext>) -> Vec<AccessRecord> {
    let log = ReadLog::new();
    let view = w
        .state
        .engine
        .view(dataset, &Access::Unrestricted)
        .unwrap()
        .with_log(log.clone());
    assert_eq!(view.head(n).unwrap().num_rows(), n);
    log.take_records(ctx)
}

async fn subject_token(w: &World, i: usize) -> String {
    w.state
        .gov
        .create_subject_token(None, &code(i), "test", None)
        .await
        .unwrap()
        .secret
}

/// The ids of a citizen's usage log as the API returns it.
async fn my_ids(w: &World, token: &str) -> Vec<String> {
    let (s, v) = w.get("/api/v1/me/usage", token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Verify with retention off.
async fn verify(store: &AuditStore) -> VerifyReport {
    verify_with(store, None).await
}

async fn verify_with(store: &AuditStore, retention: Option<Duration>) -> VerifyReport {
    let mut pages = 0u64;
    let report = store.verify(retention, &mut |_| pages += 1).await.unwrap();
    eprintln!("{report}");
    report
}

async fn exec(w: &World, sql: &str) {
    // The tables follow the commit log: what was acknowledged must be in them first.
    w.state.audit.settle().await.unwrap();
    sqlx::query(sql)
        .execute(w.state.audit.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn count(w: &World, sql: &str) -> i64 {
    // The tables follow the commit log: what was acknowledged must be in them first.
    w.state.audit.settle().await.unwrap();
    sqlx::query_scalar(sql)
        .fetch_one(w.state.audit.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn citizens_see_their_own_records_and_never_anothers() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "credit check, loan 17", Channel::Rest);
        let records = lookups(&w, &names_access(), &[1], &ctx);
        assert_eq!(records.len(), 1);
        let first = w.state.audit.commit(records).await.unwrap();
        let ctx2 = context(insurer(&w), "claim 9", Channel::FlightGet);
        let second = w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[2], &ctx2))
            .await
            .unwrap();
        let both = w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[1, 2], &ctx))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_ne!(first, second);

        let one = subject_token(&w, 1).await;
        let (s, v) = w.get("/api/v1/me/usage", &one).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let entries = v.as_array().unwrap();
        let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
        // Newest first; the insurer's read of P00002 is not there.
        assert_eq!(ids, [both[0].as_str(), first[0].as_str()]);
        let e = &entries[1];
        assert_eq!(e["kind"], "access");
        assert_eq!(e["organisation"], "BANK");
        assert_eq!(e["organisation_name"], "Demo Bank");
        assert_eq!(e["system"], w.bank_system.to_string());
        assert_eq!(e["system_name"], "loans");
        assert_eq!(e["purpose"], "credit check, loan 17");
        assert_eq!(e["channel"], "rest");
        assert_eq!(e["dataset"], "people");
        assert_eq!(
            e["attributes"],
            json!(["personal_code", "given_name", "surname"])
        );
        assert_eq!(e["agreements"], json!([AGREEMENT]));
        assert!(Time::parse(e["time"].as_str().unwrap()).is_some());

        let two = subject_token(&w, 2).await;
        assert_eq!(my_ids(&w, &two).await, [both[0].clone(), second[0].clone()]);
        let (_, v) = w.get("/api/v1/me/usage", &two).await;
        assert_eq!(v[1]["organisation"], "INS");
        assert_eq!(v[1]["channel"], "flight-get");
        // Someone never read has an empty log.
        let three = subject_token(&w, 3).await;
        assert!(my_ids(&w, &three).await.is_empty());

        // Filters and pages.
        let (_, v) = w.get("/api/v1/me/usage?organisation=INS", &two).await;
        assert_eq!(v.as_array().unwrap().len(), 1);
        let (_, v) = w.get("/api/v1/me/usage?to=2000-01-01", &two).await;
        assert_eq!(v, json!([]));
        let (s, v, h) = w
            .call(Method::GET, "/api/v1/me/usage?limit=1", Some(&one), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v[0]["id"], json!(both[0]));
        let link = h["link"].to_str().unwrap().to_owned();
        assert!(link.contains(&format!("before={}", both[0])), "{link}");
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        let (_, v) = w.get(next, &one).await;
        assert_eq!(v[0]["id"], json!(first[0]));
        let (s, _) = w.get("/api/v1/me/usage?before=x", &one).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // The stored record lists its subject, and the index has one row per subject.
        assert_eq!(
            count(
                &w,
                &format!(
                    "SELECT COUNT(*) FROM audit_subjects WHERE seq = {}",
                    both[0]
                )
            )
            .await,
            2
        );
        assert!(verify(&w.state.audit).await.broken.is_none());
    });
}

/// A dataset of `n` persons (`personal_code`, `given_name`), for bulk reads.
async fn crowd(w: &World, n: usize) {
    let def = DatasetDefinition {
        name: "crowd".into(),
        owner: "OWN".into(),
        description: "many persons".into(),
        primary_key: vec!["personal_code".into()],
        attributes: vec![
            Attribute::new(
                "personal_code",
                dagr_engine::arrow::datatypes::DataType::Utf8,
                "code",
            )
            .personal("personal_code"),
            Attribute::new(
                "given_name",
                dagr_engine::arrow::datatypes::DataType::Utf8,
                "name",
            )
            .personal("personal_code"),
        ],
    };
    w.state.engine.create_dataset(def.clone()).await.unwrap();
    let schema = def.validated().unwrap().arrow_schema();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values((0..n).map(code))) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("n{i}")),
            )),
        ],
    )
    .unwrap();
    w.state
        .engine
        .load_batches("crowd", vec![batch])
        .await
        .unwrap();
}

/// A second store on the world's audit database that lists at most 2 subjects per record.
async fn listing_two(w: &World) -> AuditStore {
    AuditStore::open(
        &w.audit_url,
        AuditConfig {
            list_limit: 2,
            ..AuditConfig::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn bulk_records_are_found_for_their_subjects_only() {
    each_backend!(|w| {
        // A second store on the same database (a replica), listing at most 2 subjects.
        let small = listing_two(&w).await;
        let ctx = context(bank(&w), "statistics", Channel::Export);
        let listed = small
            .commit(lookups(&w, &names_access(), &[20, 21], &ctx))
            .await
            .unwrap();
        let sample = small.commit(head(&w, "people", 10, &ctx)).await.unwrap();
        // A stream of 9000 rows of 10000: subjects mapped through the snapshot's array.
        crowd(&w, 10_000).await;
        let stream = small.commit(head(&w, "crowd", 9_000, &ctx)).await.unwrap();
        for (seq, subjects, listed_rows) in [
            (&listed[0], 2, 2),
            (&sample[0], 10, 0),
            (&stream[0], 9_000, 0),
        ] {
            assert_eq!(
                count(
                    &w,
                    &format!("SELECT subject_count FROM audit_log WHERE seq = {seq}")
                )
                .await,
                subjects
            );
            assert_eq!(
                count(
                    &w,
                    &format!("SELECT COUNT(*) FROM audit_subjects WHERE seq = {seq}")
                )
                .await,
                listed_rows,
                "bulk records write no row per subject"
            );
        }
        assert!(
            count(
                &w,
                &format!("SELECT COUNT(*) FROM audit_bulk WHERE seq = {}", stream[0])
            )
            .await
                <= 2,
            "9000 ids fit one or two containers"
        );
        let seqs = |v: UsagePage| -> Vec<String> { v.entries.into_iter().map(|e| e.id).collect() };
        let all = UsageFilter::default();
        // The sample's subjects (P00000..P00009) and the stream's (P00000..P08999).
        assert_eq!(
            seqs(small.subject_usage(&code(3), &all, None, 10).await.unwrap()),
            [stream[0].clone(), sample[0].clone()]
        );
        assert_eq!(
            seqs(
                small
                    .subject_usage(&code(20), &all, None, 10)
                    .await
                    .unwrap()
            ),
            [stream[0].clone(), listed[0].clone()]
        );
        assert_eq!(
            seqs(
                small
                    .subject_usage(&code(8_999), &all, None, 10)
                    .await
                    .unwrap()
            ),
            [stream[0].clone()]
        );
        for nobody in [code(9_000), "P99999".to_owned()] {
            let page = small.subject_usage(&nobody, &all, None, 10).await.unwrap();
            assert!(page.entries.is_empty() && page.next.is_none());
        }
        // Pages across listed and bulk entries.
        assert_eq!(
            seqs(small.subject_usage(&code(20), &all, None, 1).await.unwrap()),
            [stream[0].clone()]
        );
        let before = stream[0].parse().unwrap();
        assert_eq!(
            seqs(
                small
                    .subject_usage(&code(20), &all, Some(before), 1)
                    .await
                    .unwrap()
            ),
            [listed[0].clone()]
        );
        // The API (the main store, same database) agrees.
        let t = subject_token(&w, 5).await;
        assert_eq!(my_ids(&w, &t).await, [stream[0].clone(), sample[0].clone()]);
        let t = subject_token(&w, 9_500).await;
        assert!(my_ids(&w, &t).await.is_empty());
        assert!(verify(&small).await.broken.is_none());
        small.close().await;
    });
}

#[tokio::test]
async fn a_repeated_big_read_names_the_same_subjects() {
    each_backend!(|w| {
        // Listing at most 2 subjects: 9000 rows of 10000 take the big-read path.
        let store = listing_two(&w).await;
        let ctx = context(bank(&w), "statistics", Channel::Export);
        crowd(&w, 10_000).await;
        let first = store.commit(head(&w, "crowd", 9_000, &ctx)).await.unwrap();
        // The same rows again (resolved once, reused), then more rows.
        let again = store.commit(head(&w, "crowd", 9_000, &ctx)).await.unwrap();
        let more = store.commit(head(&w, "crowd", 9_500, &ctx)).await.unwrap();
        store.settle().await.unwrap();
        // The subject count and the bitmap containers each record stores.
        let pool = w.state.audit.pool();
        type Containers = Vec<(i64, Vec<u8>)>;
        let mut facts: Vec<(i64, Containers)> = Vec::new();
        for seq in [&first[0], &again[0], &more[0]] {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT subject_count FROM audit_log WHERE seq = {seq}"
            ))
            .fetch_one(pool)
            .await
            .unwrap();
            let bits: Vec<(i64, Vec<u8>)> = sqlx::query_as(&format!(
                "SELECT hi, bits FROM audit_bulk WHERE seq = {seq} ORDER BY hi"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            facts.push((n, bits));
        }
        assert_eq!(facts[0].0, 9_000);
        assert!(!facts[0].1.is_empty());
        assert_eq!(facts[0], facts[1], "the same subjects, stored the same");
        assert_eq!(facts[2].0, 9_500);
        assert_ne!(facts[2].1, facts[0].1);
        let seqs = |v: UsagePage| -> Vec<String> { v.entries.into_iter().map(|e| e.id).collect() };
        let all = UsageFilter::default();
        assert_eq!(
            seqs(
                store
                    .subject_usage(&code(9_200), &all, None, 10)
                    .await
                    .unwrap()
            ),
            [more[0].clone()]
        );
        assert_eq!(
            seqs(store.subject_usage(&code(5), &all, None, 10).await.unwrap()),
            [more[0].clone(), again[0].clone(), first[0].clone()]
        );
        assert!(verify(&store).await.broken.is_none());
        store.close().await;
    });
}

fn event(tx: &str, subject: &str) -> Value {
    json!({
        "subject": subject,
        "purpose": "loan decision",
        "time": Time::now().to_rfc3339(),
        "transaction_id": tx,
        "dataset": "people",
        "attributes": ["given_name"],
    })
}

#[tokio::test]
async fn usage_events_are_idempotent_and_checked() {
    each_backend!(|w| {
        let read = w
            .state
            .audit
            .commit(lookups(
                &w,
                &names_access(),
                &[4],
                &context(bank(&w), "loan", Channel::Rest),
            ))
            .await
            .unwrap();
        let mut with_ref = event("T-2", &code(4));
        with_ref["access_record"] = json!(read[0]);
        let body = json!({ "events": [event("T-1", &code(4)), with_ref, event("T-1", &code(4))] });
        let (s, v) = w.post("/api/v1/usage-events", &w.bank, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let out = v["events"].as_array().unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["transaction_id"], "T-1");
        assert_eq!(out[0]["status"], "recorded");
        assert_eq!(out[1]["status"], "recorded");
        // The same transaction twice in one batch is one entry.
        assert_eq!(out[2]["status"], "duplicate");
        assert_eq!(out[2]["id"], out[0]["id"]);
        // A repeat writes nothing and answers the ids first given.
        let before = count(&w, "SELECT COUNT(*) FROM audit_log").await;
        let (s, again) = w.post("/api/v1/usage-events", &w.bank, body).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        for (a, b) in again["events"].as_array().unwrap().iter().zip(out) {
            assert_eq!(a["status"], "duplicate");
            assert_eq!(a["id"], b["id"]);
        }
        assert_eq!(count(&w, "SELECT COUNT(*) FROM audit_log").await, before);
        // Another system's transaction id is its own.
        let (s, v) = w
            .post(
                "/api/v1/usage-events",
                &w.insurer,
                json!({ "events": [event("T-1", &code(4))] }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["events"][0]["status"], "recorded");

        // The citizen sees the events, the one from an access record with its agreement.
        let t = subject_token(&w, 4).await;
        let (_, log) = w.get("/api/v1/me/usage", &t).await;
        let log = log.as_array().unwrap();
        assert_eq!(log.len(), 4);
        let e = log.iter().find(|e| e["transaction_id"] == "T-2").unwrap();
        assert_eq!(e["kind"], "usage");
        assert_eq!(e["organisation"], "BANK");
        assert_eq!(e["access_record"], json!(read[0]));
        assert_eq!(e["agreements"], json!([AGREEMENT]));
        assert_eq!(e["attributes"], json!(["given_name"]));

        // Each invalid event names its field, and nothing of the batch is written.
        let now = count(&w, "SELECT COUNT(*) FROM audit_log").await;
        let mut future = event("T-9", &code(4));
        future["time"] = json!(Time(Time::now().0 + 3_600_000).to_rfc3339());
        let mut foreign_ref = event("T-9", &code(4));
        foreign_ref["access_record"] = json!(read[0]);
        let mut missing_ref = event("T-9", &code(4));
        missing_ref["access_record"] = json!("999999");
        let mut bad_attr = event("T-9", &code(4));
        bad_attr["attributes"] = json!(["given_name", "shoe_size"]);
        let mut bad_dataset = event("T-9", &code(4));
        bad_dataset["dataset"] = json!("nope");
        for (token, events, field) in [
            (
                &w.bank,
                json!([event("T-9", &code(4)), event("T-8", " ")]),
                "events[1].subject",
            ),
            (&w.bank, json!([future]), "events[0].time"),
            (&w.insurer, json!([foreign_ref]), "events[0].access_record"),
            (&w.bank, json!([missing_ref]), "events[0].access_record"),
            (&w.bank, json!([bad_attr]), "events[0].attributes[1]"),
            (&w.bank, json!([bad_dataset]), "events[0].dataset"),
            (
                &w.bank,
                json!([event("", &code(4))]),
                "events[0].transaction_id",
            ),
            (&w.bank, json!([]), "events"),
        ] {
            let (s, v) = w
                .post("/api/v1/usage-events", token, json!({ "events": events }))
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {v}");
            assert_eq!(v["field"], field, "{v}");
        }
        let too_many: Vec<Value> = (0..1001)
            .map(|i| event(&format!("M{i}"), &code(4)))
            .collect();
        let (s, _) = w
            .post(
                "/api/v1/usage-events",
                &w.bank,
                json!({ "events": too_many }),
            )
            .await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::PAYLOAD_TOO_LARGE,
            "{s}"
        );
        // A missing field is named by the body extractor.
        let (s, v) = w
            .post(
                "/api/v1/usage-events",
                &w.bank,
                json!({ "events": [{ "subject": "P1", "purpose": "x", "time": "2026-01-01" }] }),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            v["detail"].as_str().unwrap().contains("transaction_id"),
            "{v}"
        );
        assert_eq!(count(&w, "SELECT COUNT(*) FROM audit_log").await, now);
        assert!(verify(&w.state.audit).await.broken.is_none());
    });
}

#[tokio::test]
async fn every_usage_endpoint_keeps_to_its_roles() {
    each_backend!(|w| {
        w.state
            .audit
            .commit(lookups(
                &w,
                &names_access(),
                &[1],
                &context(bank(&w), "loan", Channel::Rest),
            ))
            .await
            .unwrap();
        let subject = subject_token(&w, 1).await;
        let events = json!({ "events": [event("R-1", &code(1))] });
        // Usage events: systems only (consumer or provider).
        for (token, want) in [
            (&w.admin, StatusCode::FORBIDDEN),
            (&subject, StatusCode::FORBIDDEN),
            (&w.bank, StatusCode::OK),
            (&w.owner, StatusCode::OK),
        ] {
            let (s, v) = w.post("/api/v1/usage-events", token, events.clone()).await;
            assert_eq!(s, want, "{v}");
        }
        let (s, _, _) = w
            .call(Method::POST, "/api/v1/usage-events", None, Some(events))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // The citizen view: subjects only.
        for token in [&w.admin, &w.owner, &w.bank] {
            let (s, v) = w.get("/api/v1/me/usage", token).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            assert!(
                v["detail"].as_str().unwrap().contains("data subject"),
                "{v}"
            );
        }
        assert_eq!(w.get("/api/v1/me/usage", &subject).await.0, StatusCode::OK);
        // Summaries and exports: owners (their datasets) and admins.
        for path in ["/api/v1/usage/summary", "/api/v1/usage/records?format=csv"] {
            for token in [&w.bank, &subject] {
                assert_eq!(w.get(path, token).await.0, StatusCode::FORBIDDEN, "{path}");
            }
            for token in [&w.admin, &w.owner, &w.foreign_owner] {
                let (s, _, _) = w.call(Method::GET, path, Some(token), None).await;
                assert_eq!(s, StatusCode::OK, "{path}");
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            let (s, v) = w
                .get(&format!("{path}{sep}dataset=parcels"), &w.owner)
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            let (s, _, _) = w
                .call(
                    Method::GET,
                    &format!("{path}{sep}dataset=parcels"),
                    Some(&w.foreign_owner),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK);
        }
        // The owner sees the bank's read of its dataset; the foreign owner does not.
        let (_, v) = w.get("/api/v1/usage/summary", &w.owner).await;
        let rows = v.as_array().unwrap();
        assert!(
            rows.iter().any(|r| r["organisation"] == "BANK"
                && r["dataset"] == "people"
                && r["attribute"] == "given_name"
                && r["kind"] == "access"
                && r["records"] == 1),
            "{v}"
        );
        let (_, v) = w.get("/api/v1/usage/summary", &w.foreign_owner).await;
        assert_eq!(v, json!([]));
        // The admin sees everything, including usage events that name no dataset.
        let mut no_dataset = event("R-2", &code(1));
        no_dataset.as_object_mut().unwrap().remove("dataset");
        no_dataset.as_object_mut().unwrap().remove("attributes");
        let (s, v) = w
            .post(
                "/api/v1/usage-events",
                &w.bank,
                json!({ "events": [no_dataset] }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, v) = w.get("/api/v1/usage/summary", &w.admin).await;
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .any(|r| r["dataset"].is_null() && r["kind"] == "usage"),
            "{v}"
        );
        // Periods are bounded.
        let (s, v) = w
            .get(
                "/api/v1/usage/summary?from=2020-01-01&to=2026-01-01",
                &w.admin,
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(v["detail"].as_str().unwrap().contains("366 days"), "{v}");
        let (s, _) = w
            .get(
                "/api/v1/usage/summary?from=2026-02-01&to=2026-01-01",
                &w.admin,
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _) = w.get("/api/v1/usage/records?format=xml", &w.admin).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    });
}

/// Copy of one row of `audit_log` into a scratch table, to put back after tampering.
async fn save(w: &World, seq: i64) {
    exec(w, "DROP TABLE IF EXISTS saved").await;
    exec(
        w,
        &format!("CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq = {seq}"),
    )
    .await;
}

async fn restore(w: &World, seq: i64) {
    exec(w, &format!("DELETE FROM audit_log WHERE seq = {seq}")).await;
    exec(w, "INSERT INTO audit_log SELECT * FROM saved").await;
}

async fn broken(w: &World) -> (i64, String) {
    broken_with(&w.state.audit, None).await
}

async fn broken_with(store: &AuditStore, retention: Option<Duration>) -> (i64, String) {
    let b = verify_with(store, retention)
        .await
        .broken
        .expect("verify must fail");
    assert!(!b.dictionary, "{b:?}");
    (b.seq, b.reason)
}

/// The first broken subject dictionary id, and why.
async fn dictionary_broken(store: &AuditStore) -> (i64, String) {
    let b = verify(store).await.broken.expect("verify must fail");
    assert!(b.dictionary, "{b:?}");
    (b.seq, b.reason)
}

/// Wait (without sleeping) until the clock has passed every recording time so far, so that
/// entries just expired count as older than `now - 0`.
async fn next_millisecond() {
    let t = Time::now().0;
    while Time::now().0 <= t {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn verify_names_the_first_modified_removed_or_inserted_entry() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "loan", Channel::Rest);
        for i in 1..=5 {
            w.state
                .audit
                .commit(lookups(&w, &names_access(), &[i], &ctx))
                .await
                .unwrap();
        }
        let report = verify(&w.state.audit).await;
        assert_eq!(report.records, 5);
        assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(5)));
        assert!(report.broken.is_none());
        assert!(report.to_string().contains("intact"), "{report}");

        // A column edited.
        save(&w, 3).await;
        exec(
            &w,
            "UPDATE audit_log SET purpose = 'marketing' WHERE seq = 3",
        )
        .await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 3);
        assert!(
            why.starts_with("modified") && why.contains("purpose"),
            "{why}"
        );
        restore(&w, 3).await;
        assert!(verify(&w.state.audit).await.broken.is_none());

        // The body edited (the purpose in it, and the column to match).
        save(&w, 2).await;
        exec(
            &w,
            "UPDATE audit_log SET body = REPLACE(body, '\"loan\"', '\"loan!\"'), \
             purpose = 'loan!' WHERE seq = 2",
        )
        .await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 2);
        assert!(why.starts_with("modified"), "{why}");
        restore(&w, 2).await;

        // A subject index row forged (the record would show in another citizen's view).
        exec(
            &w,
            "INSERT INTO audit_subjects (subject, seq) VALUES ('P00029', 2)",
        )
        .await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 2);
        assert!(why.contains("subject index"), "{why}");
        exec(&w, "DELETE FROM audit_subjects WHERE subject = 'P00029'").await;

        // An entry removed, and the last one.
        save(&w, 4).await;
        exec(&w, "DELETE FROM audit_log WHERE seq = 4").await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 4);
        assert!(why.starts_with("removed"), "{why}");
        restore(&w, 4).await;
        save(&w, 5).await;
        exec(&w, "DELETE FROM audit_log WHERE seq = 5").await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 5);
        assert!(why.starts_with("removed"), "{why}");
        restore(&w, 5).await;
        assert!(verify(&w.state.audit).await.broken.is_none());

        // An entry inserted after the last (a copy of entry 5, renumbered, its own hash
        // consistent), and one in place of a removed entry.
        save(&w, 5).await;
        exec(&w, "UPDATE saved SET seq = 6").await;
        exec(&w, "INSERT INTO audit_log SELECT * FROM saved").await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 6);
        assert!(why.starts_with("inserted"), "{why}");
        exec(&w, "DELETE FROM audit_log WHERE seq = 6").await;
        save(&w, 3).await;
        exec(&w, "DROP TABLE IF EXISTS saved3").await;
        exec(&w, "CREATE TABLE saved3 AS SELECT * FROM saved").await;
        save(&w, 2).await;
        exec(&w, "UPDATE saved SET seq = 3").await;
        exec(&w, "DELETE FROM audit_log WHERE seq = 3").await;
        exec(&w, "INSERT INTO audit_log SELECT * FROM saved").await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 3);
        assert!(why.starts_with("inserted"), "{why}");
        exec(&w, "DELETE FROM audit_log WHERE seq = 3").await;
        exec(&w, "INSERT INTO audit_log SELECT * FROM saved3").await;
        assert!(verify(&w.state.audit).await.broken.is_none());

        // The head moved back (the last entry dropped from the head's view).
        exec(&w, "UPDATE audit_head SET seq = 4").await;
        let (seq, why) = broken(&w).await;
        assert_eq!(seq, 5);
        assert!(why.starts_with("inserted"), "{why}");
        exec(&w, "UPDATE audit_head SET seq = 5").await;
        assert!(verify(&w.state.audit).await.broken.is_none());
    });
}

#[tokio::test]
async fn expiry_keeps_the_chain_verifiable_and_the_aggregates() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "loan", Channel::Rest);
        for i in 1..=3 {
            w.state
                .audit
                .commit(lookups(&w, &names_access(), &[i], &ctx))
                .await
                .unwrap();
        }
        assert_eq!(w.state.audit.expire_before(0).await.unwrap(), 0);
        assert_eq!(
            w.state
                .audit
                .expire_before(Time::now().0 + 1)
                .await
                .unwrap(),
            3
        );
        assert_eq!(count(&w, "SELECT COUNT(*) FROM audit_subjects").await, 0);
        // The entries just expired are older than a retention of zero from now...
        next_millisecond().await;
        let expired = Some(Duration::ZERO);
        let report = verify_with(&w.state.audit, expired).await;
        assert!(report.broken.is_none(), "{report}");
        assert_eq!((report.records, report.anchor_seq), (0, 3));
        // ... but not than a day, and with retention off nothing may have been removed.
        let (seq, why) = broken_with(&w.state.audit, Some(Duration::from_secs(86_400))).await;
        assert_eq!(seq, 1);
        assert!(why.contains("within the retention period"), "{why}");
        let (seq, why) = broken_with(&w.state.audit, None).await;
        assert_eq!(seq, 1);
        assert!(why.contains("although retention is off"), "{why}");
        for i in 4..=5 {
            w.state
                .audit
                .commit(lookups(&w, &names_access(), &[i], &ctx))
                .await
                .unwrap();
        }
        let report = verify_with(&w.state.audit, expired).await;
        assert!(report.broken.is_none(), "{report}");
        assert_eq!((report.first_seq, report.last_seq), (Some(4), Some(5)));
        // The expired reads are gone from the citizen's view; the summary keeps them.
        let t = subject_token(&w, 1).await;
        assert!(my_ids(&w, &t).await.is_empty());
        let (_, v) = w.get("/api/v1/usage/summary", &w.owner).await;
        let given: i64 = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["attribute"] == "given_name")
            .map(|r| r["records"].as_i64().unwrap())
            .sum();
        assert_eq!(given, 5);
        // Tampering after expiry is still caught.
        exec(&w, "DELETE FROM audit_log WHERE seq = 4").await;
        assert_eq!(broken_with(&w.state.audit, expired).await.0, 4);
    });
}

#[tokio::test]
async fn a_forged_anchor_cannot_hide_a_removed_prefix() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "loan", Channel::Rest);
        for i in 1..=5 {
            w.state
                .audit
                .commit(lookups(&w, &names_access(), &[i], &ctx))
                .await
                .unwrap();
        }
        let day = Some(Duration::from_secs(86_400));
        assert!(verify_with(&w.state.audit, day).await.broken.is_none());
        // Entries 1..3 deleted, and the anchor set to entry 3 just as expiry would set it.
        exec(&w, "DROP TABLE IF EXISTS saved").await;
        exec(
            &w,
            "CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq <= 3",
        )
        .await;
        exec(&w, "DELETE FROM audit_subjects WHERE seq <= 3").await;
        exec(&w, "DELETE FROM audit_log WHERE seq <= 3").await;
        exec(
            &w,
            "UPDATE audit_head SET anchor_seq = 3, \
             anchor_hash = (SELECT hash FROM saved WHERE seq = 3), \
             anchor_prev_hash = (SELECT prev_hash FROM saved WHERE seq = 3), \
             anchor_body = (SELECT body FROM saved WHERE seq = 3)",
        )
        .await;
        // The anchor is genuine, but its entry is within the retention period.
        let (seq, why) = broken_with(&w.state.audit, day).await;
        assert_eq!(seq, 1);
        assert!(
            why.starts_with("removed") && why.contains("within the retention period"),
            "{why}"
        );
        let (_, why) = broken_with(&w.state.audit, None).await;
        assert!(why.contains("although retention is off"), "{why}");
        // A body made older does not hash to the anchor the remaining chain links to.
        let body: String = sqlx::query_scalar("SELECT anchor_body FROM audit_head")
            .fetch_one(w.state.audit.pool())
            .await
            .unwrap();
        let at = body.find("\"recorded\":").unwrap() + "\"recorded\":".len();
        let end = at + body[at..].find(',').unwrap();
        let older = format!("{}1{}", &body[..at], &body[end..]);
        sqlx::query("UPDATE audit_head SET anchor_body = $1")
            .bind(older)
            .execute(w.state.audit.pool())
            .await
            .unwrap();
        let (seq, why) = broken_with(&w.state.audit, day).await;
        assert_eq!(seq, 1);
        assert!(why.contains("forged"), "{why}");
        // Nor does an anchor with the hash alone (what expiry used to store).
        exec(
            &w,
            "UPDATE audit_head SET anchor_prev_hash = '', anchor_body = ''",
        )
        .await;
        let (_, why) = broken_with(&w.state.audit, day).await;
        assert!(why.contains("forged"), "{why}");
        // Nor a genesis anchor: the chain then starts with a gap.
        exec(
            &w,
            "UPDATE audit_head SET anchor_seq = 0, \
             anchor_hash = '0000000000000000000000000000000000000000000000000000000000000000'",
        )
        .await;
        let (seq, why) = broken_with(&w.state.audit, day).await;
        assert_eq!(seq, 1);
        assert!(why.starts_with("removed"), "{why}");
        // Put back, it verifies again.
        exec(&w, "INSERT INTO audit_log SELECT * FROM saved").await;
        for i in 1..=3 {
            exec(
                &w,
                &format!(
                    "INSERT INTO audit_subjects (subject, seq) VALUES ('{}', {i})",
                    code(i)
                ),
            )
            .await;
        }
        assert!(verify_with(&w.state.audit, day).await.broken.is_none());
    });
}

/// `hash_i = SHA-256(hash_{i-1} || id || ":" || code)`, as docs/audit.md defines it.
fn dict_link(prev: &str, id: i64, code: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{prev}{id}:{code}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_subject_dictionary_is_tamper_evident() {
    each_backend!(|w| {
        // Bulk records (more than 2 subjects) use the dictionary.
        let small = AuditStore::open(
            &w.audit_url,
            AuditConfig {
                list_limit: 2,
                ..AuditConfig::default()
            },
        )
        .await
        .unwrap();
        let ctx = context(bank(&w), "statistics", Channel::FlightGet);
        small.commit(head(&w, "people", 10, &ctx)).await.unwrap();
        small
            .commit(lookups(&w, &names_access(), &[20, 21, 22], &ctx))
            .await
            .unwrap();
        let report = verify(&small).await;
        assert!(report.broken.is_none(), "{report}");
        assert_eq!((report.dictionary_ids, report.dict_id), (13, 13));
        // The chain as documented.
        let mut prev = "0".repeat(64);
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, code, hash FROM audit_subject_ids ORDER BY id")
                .fetch_all(small.pool())
                .await
                .unwrap();
        for (id, code, hash) in &rows {
            prev = dict_link(&prev, *id, code);
            assert_eq!(&prev, hash);
        }
        assert_eq!(report.dict_hash, prev);
        let id_of = |c: &str| rows.iter().find(|r| r.1 == c).unwrap().0;
        let three = id_of(&code(3));

        // A code edited: the first bulk record would then name P00029.
        exec(
            &w,
            &format!("UPDATE audit_subject_ids SET code = 'P00029' WHERE id = {three}"),
        )
        .await;
        let (id, why) = dictionary_broken(&small).await;
        assert_eq!(id, three);
        assert!(why.starts_with("modified"), "{why}");
        // ... and the chain recomputed from there, with the head: the bulk records name
        // the head they were written with.
        let mut prev = if three == 1 {
            "0".repeat(64)
        } else {
            rows[three as usize - 2].2.clone()
        };
        for (id, c, _) in &rows[three as usize - 1..] {
            let c = if *id == three { "P00029" } else { c.as_str() };
            prev = dict_link(&prev, *id, c);
            exec(
                &w,
                &format!("UPDATE audit_subject_ids SET hash = '{prev}' WHERE id = {id}"),
            )
            .await;
        }
        exec(&w, &format!("UPDATE audit_dict_head SET hash = '{prev}'")).await;
        let (_, why) = dictionary_broken(&small).await;
        assert!(why.contains("rewritten"), "{why}");
        for (id, c, h) in &rows {
            exec(
                &w,
                &format!("UPDATE audit_subject_ids SET code = '{c}', hash = '{h}' WHERE id = {id}"),
            )
            .await;
        }
        exec(
            &w,
            &format!("UPDATE audit_dict_head SET hash = '{}'", rows[12].2),
        )
        .await;
        assert!(verify(&small).await.broken.is_none());

        // A row deleted, the last one deleted, a row inserted.
        exec(&w, "DELETE FROM audit_subject_ids WHERE id = 5").await;
        let (id, why) = dictionary_broken(&small).await;
        assert_eq!(id, 5);
        assert!(why.starts_with("removed"), "{why}");
        exec(
            &w,
            &format!(
                "INSERT INTO audit_subject_ids (id, code, hash) VALUES (5, '{}', '{}')",
                rows[4].1, rows[4].2
            ),
        )
        .await;
        exec(&w, "DELETE FROM audit_subject_ids WHERE id = 13").await;
        let (id, why) = dictionary_broken(&small).await;
        assert_eq!(id, 13);
        assert!(why.starts_with("removed"), "{why}");
        exec(
            &w,
            &format!(
                "INSERT INTO audit_subject_ids (id, code, hash) VALUES (13, '{}', '{}')",
                rows[12].1, rows[12].2
            ),
        )
        .await;
        let forged = dict_link(&rows[12].2, 14, "P00029");
        exec(
            &w,
            &format!(
                "INSERT INTO audit_subject_ids (id, code, hash) VALUES (14, 'P00029', '{forged}')"
            ),
        )
        .await;
        let (id, why) = dictionary_broken(&small).await;
        assert_eq!(id, 14);
        assert!(why.starts_with("inserted"), "{why}");
        exec(&w, "DELETE FROM audit_subject_ids WHERE id = 14").await;
        // The dictionary cut back with its head, below what a bulk record used.
        exec(&w, "DROP TABLE IF EXISTS saved_ids").await;
        exec(
            &w,
            "CREATE TABLE saved_ids AS SELECT * FROM audit_subject_ids WHERE id > 10",
        )
        .await;
        exec(&w, "DELETE FROM audit_subject_ids WHERE id > 10").await;
        exec(
            &w,
            &format!(
                "UPDATE audit_dict_head SET last_id = 10, hash = '{}'",
                rows[9].2
            ),
        )
        .await;
        let (id, why) = dictionary_broken(&small).await;
        assert_eq!(id, 11);
        assert!(why.starts_with("removed"), "{why}");
        exec(&w, "INSERT INTO audit_subject_ids SELECT * FROM saved_ids").await;
        exec(
            &w,
            &format!(
                "UPDATE audit_dict_head SET last_id = 13, hash = '{}'",
                rows[12].2
            ),
        )
        .await;
        assert!(verify(&small).await.broken.is_none());
        small.close().await;
    });
}

#[tokio::test]
async fn one_poisoned_entry_fails_only_its_own_job() {
    each_backend!(|w| {
        if w.backend == "sqlite" {
            // A SQLite file commits to its commit log, where no entry can fail alone; the
            // tables follow it (see `tables_that_fail_delay_readers_and_lose_nothing`).
            continue;
        }
        // A trigger that refuses one transaction id, installed through a connection of its own.
        let other = sqlx::AnyPool::connect(&w.audit_url).await.unwrap();
        let install: &[&str] = if w.backend == "sqlite" {
            &["CREATE TRIGGER audit_poison BEFORE INSERT ON audit_log \
               WHEN NEW.transaction_id = 'POISON' \
               BEGIN SELECT RAISE(ABORT, 'poisoned entry'); END"]
        } else {
            &[
                "CREATE FUNCTION audit_poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.transaction_id = 'POISON' THEN RAISE EXCEPTION 'poisoned entry'; \
                 END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER audit_poison BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_poison()",
            ]
        };
        for sql in install {
            sqlx::query(sql).execute(&other).await.unwrap();
        }
        let ctx = context(bank(&w), "loan", Channel::Rest);
        let usage = |tx: &str| UsageEventIn {
            subject: code(6),
            purpose: "loan decision".into(),
            time: Time::now(),
            transaction_id: tx.into(),
            dataset: None,
            attributes: Vec::new(),
            access_record: None,
        };
        // Hold the chain head, so that the jobs queue up behind the first and are written
        // as one batch when it is released.
        let mut lock = other.begin().await.unwrap();
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *lock)
            .await
            .unwrap();
        let audit = &w.state.audit;
        let reader = bank(&w);
        let first = audit.commit(lookups(&w, &names_access(), &[1], &ctx));
        let batch = async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            futures::join!(
                audit.commit(lookups(&w, &names_access(), &[2], &ctx)),
                audit.record_usage(&reader, vec![usage("OK-1"), usage("POISON")]),
                audit.record_usage(&reader, vec![usage("OK-2")]),
                audit.commit(lookups(&w, &names_access(), &[3], &ctx)),
            )
        };
        let release = async {
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            lock.commit().await.unwrap();
        };
        let (first, (second, poisoned, ok, third), ()) = futures::join!(first, batch, release);
        first.unwrap();
        second.unwrap();
        third.unwrap();
        // The job holding the poisoned event fails, all of it; the others are written.
        let e = poisoned.unwrap_err();
        assert!(e.to_string().contains("poisoned entry"), "{e}");
        let ok = ok.unwrap();
        assert_eq!(ok[0].status, UsageStatus::Recorded);
        assert_eq!(
            count(
                &w,
                "SELECT COUNT(*) FROM audit_log WHERE transaction_id IN ('OK-1', 'POISON')"
            )
            .await,
            0
        );
        assert_eq!(count(&w, "SELECT COUNT(*) FROM audit_log").await, 4);
        let report = verify(audit).await;
        assert!(report.broken.is_none(), "{report}");
        assert_eq!(report.records, 4);
        other.close().await;
    });
}

#[tokio::test]
async fn long_subject_values_are_stored_as_their_hash() {
    each_backend!(|w| {
        let long = "L".repeat(300);
        let odd = "x\0y".to_owned();
        let def = DatasetDefinition {
            name: "odd".into(),
            owner: "OWN".into(),
            description: "odd codes".into(),
            primary_key: vec!["personal_code".into()],
            attributes: vec![
                Attribute::new(
                    "personal_code",
                    dagr_engine::arrow::datatypes::DataType::Utf8,
                    "code",
                )
                .personal("personal_code"),
            ],
        };
        w.state.engine.create_dataset(def.clone()).await.unwrap();
        let batch = RecordBatch::try_new(
            def.validated().unwrap().arrow_schema(),
            vec![Arc::new(StringArray::from(vec![
                long.as_str(),
                odd.as_str(),
                "P00001",
            ])) as ArrayRef],
        )
        .unwrap();
        w.state
            .engine
            .load_batches("odd", vec![batch])
            .await
            .unwrap();
        let ctx = context(bank(&w), "statistics", Channel::FlightSql);
        // Listed, and (with a list limit of 2) in the dictionary.
        let listed = w
            .state
            .audit
            .commit(head(&w, "odd", 3, &ctx))
            .await
            .unwrap();
        let small = AuditStore::open(
            &w.audit_url,
            AuditConfig {
                list_limit: 2,
                ..AuditConfig::default()
            },
        )
        .await
        .unwrap();
        let bulk = small.commit(head(&w, "odd", 3, &ctx)).await.unwrap();
        let hashed = |v: &str| format!("sha256:{}", dagr_admin_api::audit::store::sha256_hex(v));
        for v in [&long, &odd] {
            let n = count(
                &w,
                &format!(
                    "SELECT COUNT(*) FROM audit_subjects WHERE subject = '{}'",
                    hashed(v)
                ),
            )
            .await;
            assert_eq!(n, 1);
            let n = count(
                &w,
                &format!(
                    "SELECT COUNT(*) FROM audit_subject_ids WHERE code = '{}'",
                    hashed(v)
                ),
            )
            .await;
            assert_eq!(n, 1);
            let page = small
                .subject_usage(v, &UsageFilter::default(), None, 10)
                .await
                .unwrap();
            let ids: Vec<String> = page.entries.into_iter().map(|e| e.id).collect();
            assert_eq!(ids, [bulk[0].clone(), listed[0].clone()]);
        }
        assert!(verify(&small).await.broken.is_none());
        small.close().await;
    });
}

/// Commit records; the first one's id.
async fn first_id(store: &AuditStore, records: Vec<AccessRecord>) -> String {
    store.commit(records).await.unwrap().remove(0)
}

#[tokio::test]
async fn the_citizen_view_bounds_its_scan_of_bulk_records() {
    each_backend!(|w| {
        let small = AuditStore::open(
            &w.audit_url,
            AuditConfig {
                list_limit: 2,
                bulk_scan_limit: 2,
                ..AuditConfig::default()
            },
        )
        .await
        .unwrap();
        let ctx = context(bank(&w), "statistics", Channel::FlightGet);
        let others = || lookups(&w, &names_access(), &[20, 21, 22], &ctx);
        // Bulk records of P00000..P00009, and of P00020..P00022 (not P00001's); a listed one.
        let e1 = first_id(&small, head(&w, "people", 10, &ctx)).await;
        let e2 = first_id(&small, others()).await;
        first_id(&small, others()).await;
        let e4 = first_id(&small, lookups(&w, &names_access(), &[1], &ctx)).await;
        let e5 = first_id(&small, others()).await;
        first_id(&small, others()).await;
        let all = UsageFilter::default();
        let page = |before: Option<&str>| {
            let small = &small;
            let all = &all;
            let before = before.map(|b| b.parse::<i64>().unwrap());
            async move {
                let p = small
                    .subject_usage(&code(1), all, before, 10)
                    .await
                    .unwrap();
                let ids: Vec<String> = p.entries.into_iter().map(|e| e.id).collect();
                (ids, p.next.map(|n| n.to_string()))
            }
        };
        // Two bulk records examined per request: e6 and e5 (none of P00001's; the listed e4
        // is older than where the scan stopped, so it waits), then e4 with e3 and e2, then e1.
        assert_eq!(page(None).await, (vec![], Some(e5.clone())));
        assert_eq!(
            page(Some(e5.as_str())).await,
            (vec![e4.clone()], Some(e2.clone()))
        );
        assert_eq!(page(Some(e2.as_str())).await, (vec![e1.clone()], None));

        // The API follows the same cursors, with a Link on short pages.
        let app = dagr_admin_api::router(dagr_admin_api::AppState {
            audit: small.clone(),
            ..w.state.clone()
        });
        let token = subject_token(&w, 1).await;
        let mut path = "/api/v1/me/usage?limit=10".to_owned();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            use tower::ServiceExt;
            let req = axum::http::Request::builder()
                .uri(&path)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let link = resp
                .headers()
                .get("link")
                .map(|l| l.to_str().unwrap().to_owned());
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            for e in v.as_array().unwrap() {
                seen.push(e["id"].as_str().unwrap().to_owned());
            }
            pages += 1;
            let Some(link) = link else { break };
            path = link
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned();
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, [e4, e1]);
        small.close().await;
    });
}

#[tokio::test]
async fn exports_stream_the_periods_records_as_parquet_and_csv() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "loan, \"quoted\"", Channel::Rest);
        let ids: Vec<String> = w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[1, 2], &ctx))
            .await
            .unwrap();
        let mut no_dataset = event("E-2", &code(7));
        no_dataset.as_object_mut().unwrap().remove("dataset");
        no_dataset.as_object_mut().unwrap().remove("attributes");
        let (s, v) = w
            .post(
                "/api/v1/usage-events",
                &w.insurer,
                json!({ "events": [event("E-1", &code(7)), no_dataset] }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let fetch = |path: String, token: String| {
            let w = &w;
            async move {
                use tower::ServiceExt;
                let req = axum::http::Request::builder()
                    .uri(path)
                    .header("authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::empty())
                    .unwrap();
                let resp = w.app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
                    .await
                    .unwrap();
                (status, headers, body)
            }
        };
        // CSV: a header and one line per entry of the period, quotes doubled.
        let (s, h, body) = fetch("/api/v1/usage/records?format=csv".into(), w.owner.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = String::from_utf8(body.to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("id,time,recorded_at,kind,organisation"),
            "{text}"
        );
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with(&format!("{},", ids[0])), "{text}");
        assert!(text.contains("\"loan, \"\"quoted\"\"\""), "{text}");
        // The admin also gets the insurer's event that names no dataset.
        let (_, _, body) = fetch("/api/v1/usage/records?format=csv".into(), w.admin.clone()).await;
        assert_eq!(String::from_utf8(body.to_vec()).unwrap().lines().count(), 4);
        // A period without entries.
        let (s, _, body) = fetch(
            "/api/v1/usage/records?format=csv&from=2020-01-01&to=2020-02-01".into(),
            w.admin.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(String::from_utf8(body.to_vec()).unwrap().lines().count(), 1);

        // Parquet: the same entries.
        let (s, h, body) = fetch("/api/v1/usage/records".into(), w.admin.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["content-type"], "application/vnd.apache.parquet");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 3);
        assert_eq!(batches[0].schema().field(1).name(), "time");
        let kinds: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name("kind").unwrap();
                let s = c.as_any().downcast_ref::<StringArray>().unwrap().clone();
                (0..s.len()).map(move |i| s.value(i).to_owned())
            })
            .collect();
        assert_eq!(kinds, ["access", "usage", "usage"]);
    });
}

/// On a SQLite file the commit log is the commit point: when the tables refuse the rows (a
/// trigger standing in for a damaged index), a record already queued is still acknowledged —
/// it is durable — but once the indexer has failed, new records are refused (the data is
/// withheld) while it retries; readers wait for it. Once the tables take rows again,
/// everything acknowledged is there, the chain verifies and records are taken again.
#[tokio::test]
async fn tables_that_fail_delay_readers_and_lose_nothing() {
    let w = World::new(&crate::common::Backend::Sqlite).await;
    let ctx = context(bank(&w), "loan", Channel::Rest);
    let other = sqlx::AnyPool::connect(&w.audit_url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER audit_fail BEFORE INSERT ON audit_daily \
         BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    .execute(&other)
    .await
    .unwrap();
    let mut ids = Vec::new();
    let mut refused = None;
    for i in 1..200 {
        match w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[i % 50], &ctx))
            .await
        {
            Ok(got) => ids.extend(got),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = refused.expect("records are refused once the tables refuse the rows");
    assert!(refused.contains("disk on fire"), "{refused}");
    assert!(!ids.is_empty() && ids[0] == "1", "{ids:?}");
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(before, 0, "the tables refuse the rows");
    sqlx::query("DROP TRIGGER audit_fail")
        .execute(&other)
        .await
        .unwrap();
    other.close().await;
    // The reader waits for the indexer's next try, then sees every acknowledged record.
    let found = w
        .state
        .audit
        .subject_usage(&code(1), &UsageFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(found.entries[0].id, "1");
    let n = ids.len() as i64;
    assert_eq!(count(&w, "SELECT COUNT(*) FROM audit_log").await, n);
    // The indexer's retry pause doubles up to 5 s: new records are taken once it got through.
    let mut next = None;
    for _ in 0..100 {
        match w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[1], &ctx))
            .await
        {
            Ok(got) => {
                next = Some(got);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(
        next.expect("records are taken again"),
        [(n + 1).to_string()]
    );
    let report = verify(&w.state.audit).await;
    assert!(report.broken.is_none(), "{report}");
    assert_eq!(report.records as i64, n + 1);
}

#[tokio::test]
async fn a_failing_store_withholds_the_records_and_keeps_nothing() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "loan", Channel::Rest);
        let ok = w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[1], &ctx))
            .await
            .unwrap();
        if w.backend == "sqlite" {
            // The commit point of a SQLite file is its commit log (see
            // `tables_that_fail_delay_readers_and_lose_nothing`).
            continue;
        }
        // A trigger that fails the last write of the transaction, installed through a
        // connection of its own.
        let other = sqlx::AnyPool::connect(&w.audit_url).await.unwrap();
        let install: &[&str] = if w.backend == "sqlite" {
            &["CREATE TRIGGER audit_fail BEFORE INSERT ON audit_daily \
               BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"]
        } else {
            &[
                "CREATE FUNCTION audit_fail() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER audit_fail BEFORE INSERT ON audit_daily \
                 FOR EACH ROW EXECUTE FUNCTION audit_fail()",
            ]
        };
        for sql in install {
            sqlx::query(sql).execute(&other).await.unwrap();
        }
        let tables = ["audit_log", "audit_subjects", "audit_daily"];
        let mut before = Vec::new();
        for t in tables {
            before.push(count(&w, &format!("SELECT COUNT(*) FROM {t}")).await);
        }
        // Several readers at once: one batch, every one refused.
        let commits = (2..6).map(|i| {
            let records = lookups(&w, &names_access(), &[i], &ctx);
            let audit = w.state.audit.clone();
            async move { audit.commit(records).await }
        });
        for r in futures::future::join_all(commits).await {
            let e = r.unwrap_err();
            assert!(e.to_string().contains("disk on fire"), "{e}");
        }
        // Usage events too.
        let (s, v) = w
            .post(
                "/api/v1/usage-events",
                &w.bank,
                json!({ "events": [event("F-1", &code(2))] }),
            )
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["type"], "https://dagr.invalid/problems/audit-unavailable");
        for (t, n) in tables.iter().zip(&before) {
            assert_eq!(
                count(&w, &format!("SELECT COUNT(*) FROM {t}")).await,
                *n,
                "{t}"
            );
        }
        assert_eq!(count(&w, "SELECT seq FROM audit_head").await, 1);
        // Repaired: the chain continues where it was.
        let drop = if w.backend == "sqlite" {
            "DROP TRIGGER audit_fail"
        } else {
            "DROP TRIGGER audit_fail ON audit_daily"
        };
        sqlx::query(drop).execute(&other).await.unwrap();
        other.close().await;
        let next = w
            .state
            .audit
            .commit(lookups(&w, &names_access(), &[2], &ctx))
            .await
            .unwrap();
        assert_eq!(ok, ["1"]);
        assert_eq!(next, ["2"]);
        assert!(verify(&w.state.audit).await.broken.is_none());
    });
}

#[tokio::test]
async fn acknowledged_records_survive_a_dropped_store() {
    each_backend!(|w| {
        let store = AuditStore::open(&w.audit_url, AuditConfig::default())
            .await
            .unwrap();
        let ids = store
            .commit(lookups(
                &w,
                &names_access(),
                &[8],
                &context(bank(&w), "loan", Channel::Rest),
            ))
            .await
            .unwrap();
        // No close: the writer is aborted and the pool dropped, as in a crash after the
        // acknowledgement.
        drop(store);
        let reopened = AuditStore::open(&w.audit_url, AuditConfig::default())
            .await
            .unwrap();
        let found = reopened
            .subject_usage(&code(8), &UsageFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(
            found
                .entries
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>(),
            ids
        );
        assert!(verify(&reopened).await.broken.is_none());
        reopened.close().await;
        // A closed store refuses new records.
        let e = reopened
            .commit_records(lookups(
                &w,
                &names_access(),
                &[9],
                &context(bank(&w), "loan", Channel::Rest),
            ))
            .await
            .unwrap_err();
        assert!(matches!(e, AuditStoreError::Unavailable(_)), "{e}");
    });
}

/// Commit throughput with concurrent readers (printed, not asserted; run with
/// `--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_records_committed_per_second() {
    each_backend!(|w| {
        let ctx = context(bank(&w), "loan", Channel::Rest);
        let template = lookups(&w, &names_access(), &[1], &ctx);
        let (clients, per_client) = (64, 40);
        let started = Instant::now();
        let tasks = (0..clients).map(|_| {
            let audit = w.state.audit.clone();
            let template = template.clone();
            async move {
                for _ in 0..per_client {
                    audit.commit(template.clone()).await.unwrap();
                }
            }
        });
        futures::future::join_all(tasks).await;
        let n = clients * per_client;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "audit commit [{}]: {n} single-record commits by {clients} concurrent readers in {:.0} ms: {:.0} records/s",
            w.backend,
            secs * 1000.0,
            n as f64 / secs
        );
        let started = Instant::now();
        let t = w
            .state
            .audit
            .subject_usage(&code(1), &UsageFilter::default(), None, 100)
            .await
            .unwrap();
        eprintln!(
            "audit citizen view [{}]: first page of {} in {:.2} ms",
            w.backend,
            t.entries.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        let started = Instant::now();
        let report = verify(&w.state.audit).await;
        assert!(report.broken.is_none());
        eprintln!(
            "audit verify [{}]: {} entries in {:.0} ms",
            w.backend,
            report.records,
            started.elapsed().as_secs_f64() * 1000.0
        );
    });
}

//! The audit seam: what each read path notes in its `ReadLog` — personal attributes, rows,
//! subjects and agreements — and the purpose rule.

use std::collections::BTreeSet;
use std::sync::Arc;

use dagr_engine::audit::{AuditContext, Channel};
use dagr_engine::{Error, Grant, KeyValue, Principal, ReadLog, Role};
use futures::TryStreamExt;

use crate::common::*;

fn context() -> Arc<AuditContext> {
    Arc::new(AuditContext {
        principal: Principal {
            role: Role::Consumer,
            organisation: Some("BANK".into()),
            system: Some("1".into()),
            subject: None,
            user: None,
            token_id: Some("7".into()),
        },
        purpose: Some("test".into()),
        channel: Channel::Rest,
        request_id: "r1".into(),
        query: "q".into(),
    })
}

fn bank() -> dagr_engine::Access {
    grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name"]).with_agreement("11"),
            Grant::attributes(["municipality"]).with_agreement("12"),
        ],
    )])
}

#[tokio::test]
async fn a_lookup_records_its_subject_attributes_and_agreements() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1000).await;
    let log = ReadLog::new();
    let view = e.view("people", &bank()).unwrap().with_log(log.clone());
    let got = view.lookup(&[KeyValue::Str(code(42))]).unwrap().unwrap();
    assert_eq!(got.num_rows(), 1);
    assert!(log.is_personal());
    let records = log.take_records(&context());
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.dataset, "people");
    assert_eq!(r.attributes, ["personal_code", "given_name"]);
    // Only the agreement that grants personal attributes allowed them.
    assert_eq!(r.agreements, ["11"]);
    assert_eq!(r.subjects.values().unwrap(), BTreeSet::from([code(42)]));
    assert!(log.take_records(&context()).is_empty(), "taken once");
}

#[tokio::test]
async fn reads_without_subjects_need_no_purpose_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    // A dataset whose rows carry no subject (no personal attribute).
    let mut def = people_def();
    def.name = "places".into();
    for a in &mut def.attributes {
        a.personal = false;
        a.subject = None;
    }
    e.create_dataset(def).await.unwrap();
    e.load_batches("places", people(100, 1)).await.unwrap();
    let all = grants(vec![(
        "places",
        vec![Grant::attributes(["municipality", "given_name"])],
    )]);
    let log = ReadLog::new();
    let view = e.view("places", &all).unwrap().with_log(log.clone());
    assert_eq!(view.head(10).unwrap().num_rows(), 10);
    assert!(!log.is_personal());
    log.require_purpose(None).unwrap();
    assert!(log.take_records(&context()).is_empty());
}

#[tokio::test]
async fn rows_of_subjects_are_a_use_even_without_a_personal_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    let only_places = grants(vec![(
        "people",
        vec![Grant::attributes(["municipality"]).with_agreement("12")],
    )]);
    let log = ReadLog::new();
    let view = e
        .view("people", &only_places)
        .unwrap()
        .with_log(log.clone());
    assert_eq!(view.head(10).unwrap().num_rows(), 10);
    assert!(log.is_personal());
    match log.require_purpose(None) {
        Err(Error::PurposeRequired(m)) => assert!(m.contains("personal_code"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let records = log.take_records(&context());
    assert_eq!(records.len(), 1);
    // The answer is derived from these subjects' rows: they are named.
    assert_eq!(records[0].attributes, ["personal_code"]);
    assert_eq!(records[0].agreements, ["12"]);
    assert_eq!(
        records[0].subjects.values().unwrap(),
        (0..10).map(code).collect::<BTreeSet<_>>()
    );
}

#[tokio::test]
async fn counts_and_key_probes_are_audited_and_need_a_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1000).await;
    for q in [
        "SELECT count(*) FROM people".to_owned(),
        "SELECT count(*) FROM people WHERE municipality = 'Rīga'".to_owned(),
        format!(
            "SELECT count(*) FROM people WHERE personal_code IN ('{}', '{}')",
            code(3),
            code(4)
        ),
        format!(
            "SELECT municipality FROM people WHERE personal_code = '{}'",
            code(5)
        ),
    ] {
        let r = e.query(&q, &bank()).await.unwrap();
        assert!(
            matches!(
                r.reads.require_purpose(None),
                Err(Error::PurposeRequired(_))
            ),
            "{q} needs a purpose"
        );
        let reads = r.reads.clone();
        let _: Vec<_> = r.stream.try_collect().await.unwrap();
        let records = reads.take_records(&context());
        assert_eq!(records.len(), 1, "{q}");
        assert!(records[0].subjects.row_count() >= 1, "{q}");
    }
    // A key probe names exactly the subjects probed.
    let r = e
        .query(
            &format!(
                "SELECT count(*) FROM people WHERE personal_code IN ('{}', '{}')",
                code(3),
                code(4)
            ),
            &bank(),
        )
        .await
        .unwrap();
    let reads = r.reads.clone();
    let _: Vec<_> = r.stream.try_collect().await.unwrap();
    assert_eq!(
        reads.take_records(&context())[0].subjects.values().unwrap(),
        BTreeSet::from([code(3), code(4)])
    );
}

#[tokio::test]
async fn sql_notes_what_it_plans_and_the_rows_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 200_000).await;
    // A key lookup: exactly that subject, the projected attribute only.
    let r = e
        .query(
            &format!(
                "SELECT given_name FROM people WHERE personal_code = '{}'",
                code(7)
            ),
            &bank(),
        )
        .await
        .unwrap();
    // Planned: the purpose rule applies before any row is read.
    match r.reads.require_purpose(None) {
        Err(Error::PurposeRequired(m)) => assert!(m.contains("given_name"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let reads = r.reads.clone();
    let batches: Vec<_> = r.stream.try_collect().await.unwrap();
    assert_eq!(rows(&batches), 1);
    let records = reads.take_records(&context());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].attributes, ["given_name"]);
    assert_eq!(
        records[0].subjects.values().unwrap(),
        BTreeSet::from([code(7)])
    );

    // A scan: every row it read, as a bitmap (not a list).
    let r = e
        .query("SELECT given_name FROM people", &bank())
        .await
        .unwrap();
    let reads = r.reads.clone();
    let batches: Vec<_> = r.stream.try_collect().await.unwrap();
    assert_eq!(rows(&batches), 200_000);
    let records = reads.take_records(&context());
    assert_eq!(records[0].subjects.row_count(), 200_000);
    // Every row maps to its subject.
    let mut seen = 0usize;
    records[0].subjects.for_each(|_, _| seen += 1).unwrap();
    assert_eq!(seen, 200_000);
}

#[tokio::test]
async fn a_row_scope_limits_the_subjects_of_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 3000).await;
    let riga = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name", "municipality"])
                .with_row_scope("municipality = 'Rīga'")
                .with_agreement("5"),
        ],
    )]);
    let r = e
        .query("SELECT personal_code FROM people", &riga)
        .await
        .unwrap();
    let reads = r.reads.clone();
    let _: Vec<_> = r.stream.try_collect().await.unwrap();
    let records = reads.take_records(&context());
    let subjects = records[0].subjects.values().unwrap();
    assert_eq!(subjects.len(), 1000);
    assert!(subjects.contains(&code(0)) && !subjects.contains(&code(1)));
    assert_eq!(records[0].agreements, ["5"]);
}

#[tokio::test]
async fn prepared_lookups_record_their_subject() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1000).await;
    let p = e
        .prepare(
            "SELECT given_name FROM people WHERE personal_code = ?",
            &bank(),
        )
        .await
        .unwrap();
    assert!(p.is_lookup());
    let param = dagr_engine::datafusion::scalar::ScalarValue::Utf8(Some(code(3)));
    let r = e.execute_prepared(&p, &[param], &bank()).await.unwrap();
    let reads = r.reads.clone();
    let _: Vec<_> = r.stream.try_collect().await.unwrap();
    let records = reads.take_records(&context());
    assert_eq!(records[0].attributes, ["given_name"]);
    assert_eq!(
        records[0].subjects.values().unwrap(),
        BTreeSet::from([code(3)])
    );
    // A key that is absent hands out nothing, but still needs a purpose.
    let param = dagr_engine::datafusion::scalar::ScalarValue::Utf8(Some("nobody".into()));
    let r = e.execute_prepared(&p, &[param], &bank()).await.unwrap();
    assert!(r.reads.require_purpose(None).is_err());
    let reads = r.reads.clone();
    let _: Vec<_> = r.stream.try_collect().await.unwrap();
    assert!(reads.take_records(&context()).is_empty());
}

#[tokio::test]
async fn an_attribute_marked_personal_is_audited_before_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    let places = grants(vec![("people", vec![Grant::attributes(["municipality"])])]);
    let log = ReadLog::new();
    let view = e.view("people", &places).unwrap().with_log(log.clone());
    view.head(5).unwrap();
    let records = log.take_records(&context());
    assert_eq!(records[0].attributes, ["personal_code"], "not personal yet");

    let mut def = people_def();
    def.attributes[2] = def.attributes[2].clone().personal("personal_code");
    e.redefine(def).await.unwrap();
    // The snapshot still carries the old definition; the read is audited all the same.
    let log = ReadLog::new();
    let view = e.view("people", &places).unwrap().with_log(log.clone());
    view.head(5).unwrap();
    assert!(log.is_personal());
    let records = log.take_records(&context());
    assert_eq!(records[0].attributes, ["municipality"]);
    assert_eq!(
        records[0].subjects.values().unwrap(),
        (0..5).map(code).collect::<BTreeSet<_>>()
    );
}

#[tokio::test]
async fn a_record_names_only_the_agreements_whose_rows_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 300).await;
    let cols = ["personal_code", "given_name", "municipality"];
    let access = grants(vec![(
        "people",
        vec![
            Grant::attributes(cols)
                .with_row_scope("municipality = 'Rīga'")
                .with_agreement("R"),
            Grant::attributes(cols)
                .with_row_scope("municipality = 'Ogre'")
                .with_agreement("O"),
        ],
    )]);
    let log = ReadLog::new();
    let view = e.view("people", &access).unwrap().with_log(log.clone());
    // Row 0 lives in Rīga.
    view.lookup(&[KeyValue::Str(code(0))]).unwrap().unwrap();
    assert_eq!(log.take_records(&context())[0].agreements, ["R"]);
}

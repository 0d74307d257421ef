//! Change sets (copy-on-write versions) and the change feed between kept versions.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crate::common::*;
use dagr_engine::arrow::array::UInt32Array;
use dagr_engine::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use dagr_engine::arrow::compute::take_record_batch;
use dagr_engine::arrow::datatypes::Int64Type;
use dagr_engine::audit::{AuditContext, Channel};
use dagr_engine::snapshot::CHUNK_ROWS;
use dagr_engine::{
    Access, CHANGE_COLUMN, ChangeReport, Engine, EngineConfig, Error, Grant, KeyValue, Principal,
    ReadLog, Role, Snapshot,
};

/// given_name, municipality, income, secret.
type Record = (Option<String>, Option<String>, Option<i64>, Option<String>);
/// Records by personal code.
type Model = BTreeMap<String, Record>;

/// Row `i` of `people(_, tag)`.
fn person(i: usize, tag: i64) -> Record {
    (
        Some(format!("Name{i}")),
        Some(MUNICIPALITIES[i % 3].to_owned()),
        Some(tag),
        Some(format!("s{i}")),
    )
}

fn model(n: usize, tag: i64) -> Model {
    (0..n).map(|i| (code(i), person(i, tag))).collect()
}

/// Every record of a snapshot, by key.
fn contents(s: &Snapshot) -> Model {
    let mut out = Model::new();
    for chunk in s.chunks() {
        let text = |i: usize| chunk.column(i).as_string::<i32>().clone();
        let (codes, names, places, secrets) = (text(0), text(1), text(2), text(4));
        let incomes = chunk.column(3).as_primitive::<Int64Type>();
        for r in 0..chunk.num_rows() {
            let s = |a: &StringArray| a.is_valid(r).then(|| a.value(r).to_owned());
            let record = (
                s(&names),
                s(&places),
                incomes.is_valid(r).then(|| incomes.value(r)),
                s(&secrets),
            );
            assert!(
                out.insert(codes.value(r).to_owned(), record).is_none(),
                "a key twice"
            );
        }
    }
    out
}

/// Full-load batches of a model.
fn full(m: &Model) -> Vec<RecordBatch> {
    let entries: Vec<(&String, &Record)> = m.iter().collect();
    entries
        .chunks(50_000)
        .map(|part| {
            batch(vec![
                (
                    "personal_code",
                    strings(part.iter().map(|(k, _)| Some(k.as_str()))),
                ),
                (
                    "given_name",
                    strings(part.iter().map(|(_, r)| r.0.as_deref())),
                ),
                (
                    "municipality",
                    strings(part.iter().map(|(_, r)| r.1.as_deref())),
                ),
                (
                    "income",
                    Arc::new(Int64Array::from_iter(part.iter().map(|(_, r)| r.2))),
                ),
                ("secret", strings(part.iter().map(|(_, r)| r.3.as_deref()))),
            ])
        })
        .collect()
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// A change set batch with every column: (op, key, record); a delete carries nulls.
fn change_batch(rows: &[(&str, String, Option<Record>)]) -> RecordBatch {
    let rec = |f: fn(&Record) -> Option<String>| {
        strings_owned(rows.iter().map(|(_, _, r)| r.as_ref().and_then(f)))
    };
    batch(vec![
        (
            CHANGE_COLUMN,
            strings(rows.iter().map(|(op, _, _)| Some(*op))),
        ),
        (
            "personal_code",
            strings(rows.iter().map(|(_, k, _)| Some(k.as_str()))),
        ),
        ("given_name", rec(|r| r.0.clone())),
        ("municipality", rec(|r| r.1.clone())),
        (
            "income",
            Arc::new(Int64Array::from_iter(
                rows.iter().map(|(_, _, r)| r.as_ref().and_then(|r| r.2)),
            )),
        ),
        ("secret", rec(|r| r.3.clone())),
    ])
}

fn strings_owned(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// `b` with column `name` replaced (or added) by `array`.
fn with_column(b: &RecordBatch, name: &str, array: ArrayRef) -> RecordBatch {
    let schema = b.schema();
    let mut cols: Vec<(&str, ArrayRef)> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .zip(b.columns().iter().map(Arc::clone))
        .filter(|(n, _)| *n != name)
        .collect();
    cols.push((name, array));
    batch(cols)
}

/// A batch of deletes carrying only the key and the operation.
fn delete_keys(codes: &[String]) -> RecordBatch {
    batch(vec![
        (
            "personal_code",
            strings(codes.iter().map(|c| Some(c.as_str()))),
        ),
        (CHANGE_COLUMN, strings(codes.iter().map(|_| Some("delete")))),
    ])
}

fn upsert(i: usize, r: Record) -> (&'static str, String, Option<Record>) {
    ("upsert", code(i), Some(r))
}

fn delete(i: usize) -> (&'static str, String, Option<Record>) {
    ("delete", code(i), None)
}

fn counts(r: &ChangeReport) -> (usize, usize, usize, usize) {
    (r.inserted, r.updated, r.deleted, r.missing)
}

fn refused(e: Error) -> String {
    match e {
        Error::LoadRefused { reason, .. } => reason,
        other => panic!("expected a refused change set, got {other}"),
    }
}

/// Every chunk but the last is full, and the index finds every row.
fn assert_layout(s: &Snapshot) {
    let chunks = s.chunks();
    for (c, b) in chunks.iter().enumerate() {
        if c + 1 < chunks.len() {
            assert_eq!(b.num_rows(), CHUNK_ROWS, "chunk {c} of {}", chunks.len());
        } else {
            assert!((1..=CHUNK_ROWS).contains(&b.num_rows()), "last chunk");
        }
    }
    assert_eq!(
        chunks.iter().map(RecordBatch::num_rows).sum::<usize>(),
        s.num_rows()
    );
    for row in 0..s.num_rows() as u32 {
        let key = s.index().key_of(row);
        assert_eq!(s.index().get(&key), Some(row));
    }
}

/// What a full reload of `m` gives, in a fresh engine.
async fn reloaded(m: &Model) -> Model {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path()).await;
    e.create_dataset(people_def()).await.unwrap();
    e.load_batches("people", full(m)).await.unwrap();
    contents(&e.current("people").unwrap())
}

fn keys_of(s: &Snapshot, rows: impl IntoIterator<Item = u32>) -> BTreeSet<String> {
    rows.into_iter()
        .map(|r| s.index().key_of(r)[0].to_string())
        .collect()
}

#[tokio::test]
async fn upserts_and_deletes_are_counted_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1000).await;
    let mut expected = model(1000, 1);

    let mut moved = person(3, 99);
    moved.1 = Some("Ogre".into());
    let set = vec![
        change_batch(&[
            upsert(3, moved.clone()),
            upsert(4, person(4, 99)),
            delete(7),
            upsert(1000, person(1000, 5)),
        ]),
        // The second batch: more of the same, numbered on from row 4.
        change_batch(&[delete(8), delete(5000), upsert(1001, person(1001, 5))]),
    ];
    let r = e.apply_changes("people", set).await.unwrap();
    assert_eq!(counts(&r), (2, 2, 2, 1));
    assert_eq!((r.dataset.as_str(), r.version, r.rows), ("people", 2, 1000));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["missing"], 1);
    assert!(json["elapsed"].is_f64());
    expected.insert(code(3), moved);
    expected.insert(code(4), person(4, 99));
    expected.remove(&code(7));
    expected.remove(&code(8));
    expected.insert(code(1000), person(1000, 5));
    expected.insert(code(1001), person(1001, 5));
    let s = e.current("people").unwrap();
    assert_eq!(s.version(), 2);
    assert_eq!(contents(&s), expected);
    assert_layout(&s);

    // Without the change column every row is an upsert.
    let plain = {
        let mut b = change_batch(&[upsert(9, person(9, 7)), upsert(2000, person(2000, 7))]);
        b.remove_column(0);
        b
    };
    let r = e.apply_changes("people", vec![plain]).await.unwrap();
    assert_eq!((counts(&r), r.version, r.rows), ((1, 1, 0, 0), 3, 1001));
    expected.insert(code(9), person(9, 7));
    expected.insert(code(2000), person(2000, 7));

    // Deletes only may carry just the key; a retry deletes nothing and makes no version.
    let gone = vec![code(10), code(11)];
    let r = e
        .apply_changes("people", vec![delete_keys(&gone)])
        .await
        .unwrap();
    assert_eq!((counts(&r), r.version, r.rows), ((0, 0, 2, 0), 4, 999));
    let r = e
        .apply_changes("people", vec![delete_keys(&gone)])
        .await
        .unwrap();
    assert_eq!((counts(&r), r.version, r.rows), ((0, 0, 0, 2), 4, 999));
    assert_eq!(e.versions("people").await.unwrap().len(), 3);
    for k in &gone {
        expected.remove(k);
    }
    assert_eq!(contents(&e.current("people").unwrap()), expected);
    assert_eq!(reloaded(&expected).await, expected);
}

#[tokio::test]
async fn a_change_set_can_make_the_first_version() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path()).await;
    e.create_dataset(people_def()).await.unwrap();
    let r = e
        .apply_changes(
            "people",
            vec![change_batch(&[
                upsert(1, person(1, 1)),
                delete(2),
                upsert(3, person(3, 1)),
            ])],
        )
        .await
        .unwrap();
    assert_eq!((counts(&r), r.version, r.rows), ((2, 0, 0, 1), 1, 2));
    let s = e.current("people").unwrap();
    assert_eq!(
        contents(&s).keys().cloned().collect::<Vec<_>>(),
        [code(1), code(3)]
    );
    // Deletes alone on an empty dataset change nothing: no version is committed.
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path()).await;
    e.create_dataset(people_def()).await.unwrap();
    let r = e
        .apply_changes("people", vec![delete_keys(&[code(1)])])
        .await
        .unwrap();
    assert_eq!((counts(&r), r.version, r.rows), ((0, 0, 0, 1), 0, 0));
    assert!(matches!(e.current("people"), Err(Error::NoSnapshot(_))));
    assert!(e.versions("people").await.unwrap().is_empty());
    let e = Engine::open_dir(dir.path(), EngineConfig::default())
        .await
        .unwrap();
    assert!(e.current_opt("people").unwrap().is_none());
    // The first real change is version 1.
    let r = e
        .apply_changes("people", vec![change_batch(&[upsert(1, person(1, 1))])])
        .await
        .unwrap();
    assert_eq!((counts(&r), r.version, r.rows), ((1, 0, 0, 0), 1, 1));
}

#[tokio::test]
async fn refused_change_sets_name_the_row_or_column_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    let ok = || change_batch(&[upsert(1, person(1, 2)), delete(2)]);

    // Rows are numbered from 1 across batches: the null key is row 4.
    let nullkey = with_column(
        &change_batch(&[upsert(200, person(200, 2)), delete(5)]),
        "personal_code",
        Arc::new(StringArray::from(vec![Some("x"), None])),
    );
    let r = refused(
        e.apply_changes("people", vec![ok(), nullkey])
            .await
            .unwrap_err(),
    );
    assert!(
        r.contains(
            "primary key column `personal_code` has 1 null value(s) (first at row 4) (row 1 is the first row of the change set)"
        ),
        "{r}"
    );

    let r = refused(
        e.apply_changes(
            "people",
            vec![ok(), change_batch(&[upsert(50, person(50, 2)), delete(1)])],
        )
        .await
        .unwrap_err(),
    );
    assert!(
        r.contains("more than once") && r.contains("values withheld") && !r.contains(&code(1)),
        "the duplicate is named by its row, not its personal code: {r}"
    );

    let bad_op = change_batch(&[upsert(1, person(1, 2)), ("upsret", code(3), None)]);
    let r = refused(
        e.apply_changes("people", vec![ok(), bad_op])
            .await
            .unwrap_err(),
    );
    assert!(
        r.contains(
            "`_dagr_change` is `upsret` at row 4 (row 1 is the first row of the change set)"
        ) && r.contains("`upsert` or `delete`"),
        "{r}"
    );
    let null_op = batch(vec![
        ("personal_code", strings([Some("a")].into_iter())),
        (CHANGE_COLUMN, strings([None].into_iter())),
    ]);
    let r = refused(e.apply_changes("people", vec![null_op]).await.unwrap_err());
    assert!(r.contains("`_dagr_change` is null at row 1"), "{r}");

    let mistyped = with_column(
        &ok(),
        "income",
        Arc::new(Int32Array::from(vec![Some(1), None])),
    );
    let r = refused(e.apply_changes("people", vec![mistyped]).await.unwrap_err());
    assert!(
        r.contains("column `income` has type Int32; the dataset defines Int64"),
        "{r}"
    );

    // Upserts need every column; deletes only the key.
    let mut narrow = ok();
    narrow.remove_column(narrow.schema().index_of("income").unwrap());
    let r = refused(e.apply_changes("people", vec![narrow]).await.unwrap_err());
    assert!(r.contains("column `income` is missing"), "{r}");
    let no_key = batch(vec![(CHANGE_COLUMN, strings([Some("delete")].into_iter()))]);
    let r = refused(e.apply_changes("people", vec![no_key]).await.unwrap_err());
    assert!(r.contains("column `personal_code` is missing"), "{r}");

    // A required column may be null on a delete row, not on an upsert row.
    let mut homeless = person(60, 2);
    homeless.1 = None;
    let r = refused(
        e.apply_changes(
            "people",
            vec![change_batch(&[delete(3), upsert(60, homeless)])],
        )
        .await
        .unwrap_err(),
    );
    assert!(
        r.contains("required column `municipality` has 1 null value(s) (first at row 2)"),
        "{r}"
    );

    let extra = with_column(&ok(), "shoe_size", Arc::new(Int64Array::from(vec![1, 2])));
    let r = refused(e.apply_changes("people", vec![extra]).await.unwrap_err());
    assert!(r.contains("column `shoe_size` is not an attribute"), "{r}");

    let r = refused(e.apply_changes("people", vec![]).await.unwrap_err());
    assert!(r.contains("nothing to change"), "{r}");

    // Nothing changed, and no version number was used up.
    let s = e.current("people").unwrap();
    assert_eq!((s.version(), s.num_rows()), (1, 100));
    assert_eq!(contents(&s), model(100, 1));
    assert_eq!(e.versions("people").await.unwrap().len(), 1);
    let r = e.apply_changes("people", vec![ok()]).await.unwrap();
    assert_eq!((r.version, counts(&r)), (2, (0, 1, 1, 0)));
}

#[tokio::test]
async fn copy_on_write_shares_untouched_chunks_and_keeps_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let n = 150_000; // chunks of 65 536, 65 536 and 18 928 rows
    let e = with_people(dir.path(), n).await;
    let v1 = e.current("people").unwrap();
    assert_eq!(v1.chunks().len(), 3);
    let mut expected = model(n, 1);

    // Holes in chunk 0: one filled by an insert, the rest by rows moved from the tail, two
    // of which are updated as they move; one hole is in the tail itself.
    let mut set = vec![
        delete(10),
        delete(11),
        delete(12),
        delete(13),
        delete(14),
        delete(n - 3),
        upsert(n - 1, person(n - 1, 42)),
        upsert(n - 2, person(n - 2, 42)),
        upsert(n + 1, person(n + 1, 42)),
        // An update in place.
        upsert(20, person(20, 42)),
    ];
    let r = e
        .apply_changes("people", vec![change_batch(&set)])
        .await
        .unwrap();
    assert_eq!((counts(&r), r.rows), ((1, 3, 6, 0), n - 5));
    for i in [10, 11, 12, 13, 14, n - 3] {
        expected.remove(&code(i));
    }
    for i in [n - 1, n - 2, n + 1, 20] {
        expected.insert(code(i), person(i, 42));
    }
    let v2 = e.current("people").unwrap();
    assert_layout(&v2);
    assert_eq!(contents(&v2), expected);
    // Chunk 1 was not touched: the new version shares its arrays.
    let shared = |a: &Snapshot, b: &Snapshot, c: usize| {
        (0..a.chunks()[c].num_columns())
            .all(|i| Arc::ptr_eq(a.chunks()[c].column(i), b.chunks()[c].column(i)))
    };
    assert!(shared(&v1, &v2, 1));
    assert!(!shared(&v1, &v2, 0));
    // An updated row keeps its row id; a filled hole holds the insert.
    let row = |s: &Snapshot, i: usize| s.index().get(&[KeyValue::Str(code(i))]);
    assert_eq!(row(&v1, 20), row(&v2, 20));
    assert_eq!(row(&v2, n + 1), Some(10));

    // More inserts than deletes: holes filled, the rest appended across a chunk boundary.
    set = (0..60_000)
        .map(|j| upsert(n + 10 + j, person(n + 10 + j, 3)))
        .collect();
    set.push(delete(70_000));
    let r = e
        .apply_changes("people", vec![change_batch(&set)])
        .await
        .unwrap();
    assert_eq!((counts(&r), r.rows), ((60_000, 0, 1, 0), n - 5 + 59_999));
    expected.remove(&code(70_000));
    for j in 0..60_000 {
        expected.insert(code(n + 10 + j), person(n + 10 + j, 3));
    }
    let v3 = e.current("people").unwrap();
    assert_eq!(v3.chunks().len(), 4);
    assert_layout(&v3);
    assert!(shared(&v2, &v3, 0), "chunk 0 is untouched this time");
    assert_eq!(contents(&v3), expected);
    assert_eq!(reloaded(&expected).await, expected);
}

#[tokio::test]
async fn rounds_of_change_sets_equal_a_full_reload() {
    let dir = tempfile::tempdir().unwrap();
    let n = 140_000;
    let e = with_people(dir.path(), n).await;
    let mut expected = model(n, 1);
    let mut seed = 42u64;
    let mut next = move |bound: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % bound
    };
    for round in 2..=4i64 {
        let mut picked = HashSet::new();
        let mut rows = Vec::new();
        let mut want = (0, 0, 0, 0);
        while rows.len() < 3000 {
            let i = next(n + 20_000);
            if !picked.insert(i) {
                continue;
            }
            let present = expected.contains_key(&code(i));
            if next(2) == 0 {
                rows.push(upsert(i, person(i, round)));
                if present {
                    want.1 += 1;
                } else {
                    want.0 += 1;
                }
                expected.insert(code(i), person(i, round));
            } else {
                rows.push(delete(i));
                if present {
                    want.2 += 1;
                } else {
                    want.3 += 1;
                }
                expected.remove(&code(i));
            }
        }
        let batches = rows.chunks(700).map(change_batch).collect();
        let r = e.apply_changes("people", batches).await.unwrap();
        assert_eq!(counts(&r), want, "round {round}");
        assert_eq!(r.rows, expected.len());
        let s = e.current("people").unwrap();
        assert_layout(&s);
        assert_eq!(contents(&s), expected, "round {round}");
    }
    assert_eq!(reloaded(&expected).await, expected);
}

#[tokio::test]
async fn changes_between_versions_list_inserted_updated_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1000).await;
    let mut nameless = person(5, 1);
    nameless.0 = None;
    e.apply_changes(
        "people",
        vec![change_batch(&[
            upsert(3, person(3, 9)),
            // Identical values: not a change.
            upsert(4, person(4, 1)),
            upsert(5, nameless.clone()),
            delete(6),
            delete(999),
            upsert(1000, person(1000, 1)),
        ])],
    )
    .await
    .unwrap();
    let c = e.changes("people", 1).await.unwrap();
    assert_eq!((c.from.version(), c.to.version()), (1, 2));
    assert_eq!(
        keys_of(&c.to, c.inserted.iter().copied()),
        [code(1000)].into()
    );
    assert_eq!(
        keys_of(&c.from, c.deleted.iter().copied()),
        [code(6), code(999)].into()
    );
    assert_eq!(
        keys_of(&c.to, c.updated.iter().map(|u| u.1)),
        [code(3), code(5)].into()
    );
    for &(f, t) in &c.updated {
        assert_eq!(c.from.index().key_of(f), c.to.index().key_of(t));
    }
    assert!(e.changes("people", 2).await.unwrap().is_empty());

    // After a full reload in another order, only what differs is listed; nulls equal nulls.
    let mut m = contents(&e.current("people").unwrap());
    m.insert(code(7), person(7, 8));
    m.remove(&code(8));
    m.insert(code(2000), person(2000, 1));
    let reversed: Vec<RecordBatch> = full(&m)
        .iter()
        .rev()
        .map(|b| {
            let rows = UInt32Array::from_iter_values((0..b.num_rows() as u32).rev());
            take_record_batch(b, &rows).unwrap()
        })
        .collect();
    e.load_batches("people", reversed).await.unwrap();
    let c = e.changes("people", 2).await.unwrap();
    assert_eq!(
        keys_of(&c.to, c.inserted.iter().copied()),
        [code(2000)].into()
    );
    assert_eq!(
        keys_of(&c.from, c.deleted.iter().copied()),
        [code(8)].into()
    );
    assert_eq!(
        keys_of(&c.to, c.updated.iter().map(|u| u.1)),
        [code(7)].into()
    );
    // From version 1 across both.
    let c = e.changes("people", 1).await.unwrap();
    assert_eq!(
        keys_of(&c.to, c.inserted.iter().copied()),
        [code(1000), code(2000)].into()
    );
    assert_eq!(
        keys_of(&c.from, c.deleted.iter().copied()),
        [code(6), code(8), code(999)].into()
    );
    assert_eq!(
        keys_of(&c.to, c.updated.iter().map(|u| u.1)),
        [code(3), code(5), code(7)].into()
    );
}

#[tokio::test]
async fn versions_not_kept_or_of_another_schema_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    for t in 2..=4 {
        e.apply_changes("people", vec![change_batch(&[upsert(1, person(1, t))])])
            .await
            .unwrap();
    }
    // Versions 2, 3, 4 are kept.
    for since in [0, 1, 5] {
        let err = e.changes("people", since).await.unwrap_err();
        assert!(
            matches!(err, Error::VersionNotKept { version, .. } if version == since),
            "{err}"
        );
    }
    assert!(matches!(
        e.snapshot_at("people", 1).await,
        Err(Error::VersionNotKept { version: 1, .. })
    ));
    let current = e.current("people").unwrap();
    assert!(Arc::ptr_eq(
        &e.snapshot_at("people", 4).await.unwrap(),
        &current
    ));
    let v2 = e.snapshot_at("people", 2).await.unwrap();
    assert_eq!((v2.version(), contents(&v2)[&code(1)].2), (2, Some(2)));
    let c = e.changes("people", 2).await.unwrap();
    assert_eq!(
        (c.inserted.len(), c.updated.len(), c.deleted.len()),
        (0, 1, 0)
    );

    // The schema changes: change sets need a full load first, and no diff crosses it.
    let mut def = people_def();
    def.attributes.retain(|a| a.name != "secret");
    e.redefine(def).await.unwrap();
    let r = refused(
        e.apply_changes("people", vec![change_batch(&[delete(1)])])
            .await
            .unwrap_err(),
    );
    assert!(r.contains("definition changed"), "{r}");
    let narrow: Vec<RecordBatch> = people(100, 5)
        .into_iter()
        .map(|mut b| {
            b.remove_column(b.schema().index_of("secret").unwrap());
            b
        })
        .collect();
    e.load_batches("people", narrow).await.unwrap();
    let err = e.changes("people", 4).await.unwrap_err();
    assert!(
        matches!(&err, Error::ChangesUnavailable { reason, .. } if reason.contains("schema changed between versions 4 and 5")),
        "{err}"
    );
    assert!(!err.to_string().is_empty());
}

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
        channel: Channel::FlightGet,
        request_id: "r1".into(),
        query: "changes".into(),
    })
}

fn riga() -> Access {
    grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name", "municipality", "income"])
                .with_row_scope("municipality = 'Rīga'")
                .with_agreement("7"),
        ],
    )])
}

#[tokio::test]
async fn the_masked_feed_follows_the_callers_rows_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    // Row i lives in Rīga when i % 3 == 0, Jūrmala when 1, Ogre when 2.
    let e = with_people(dir.path(), 30).await;
    let place = |i: usize, p: &str, tag: i64| {
        let mut r = person(i, tag);
        r.1 = Some(p.to_owned());
        r
    };
    let mut secret_only = person(3, 1);
    secret_only.3 = Some("changed".into());
    e.apply_changes(
        "people",
        vec![change_batch(&[
            upsert(0, place(0, "Ogre", 1)),     // leaves Rīga: delete
            upsert(2, place(2, "Rīga", 1)),     // enters Rīga: upsert
            upsert(3, secret_only),             // a column the caller cannot see: nothing
            upsert(6, person(6, 50)),           // income changes: upsert
            delete(9),                          // deleted in Rīga: delete
            delete(5),                          // deleted in Ogre: nothing
            upsert(100, place(100, "Rīga", 1)), // inserted in Rīga: upsert
            upsert(101, place(101, "Ogre", 1)), // inserted elsewhere: nothing
            upsert(12, person(12, 1)),          // unchanged: nothing
        ])],
    )
    .await
    .unwrap();

    let log = ReadLog::new();
    let feed = e
        .change_feed("people", 1, &riga())
        .await
        .unwrap()
        .with_log(log.clone());
    assert_eq!((feed.from_version, feed.to_version), (1, 2));
    assert!(log.require_purpose(None).is_err(), "personal columns");
    let to = &feed.to_view().snapshot;
    let from = &feed.from_view().snapshot;
    assert_eq!(
        keys_of(to, feed.upserts.iter().copied()),
        [code(2), code(6), code(100)].into()
    );
    assert_eq!(
        keys_of(from, feed.deletes.iter().copied()),
        [code(0), code(9)].into()
    );
    let names: Vec<&str> = feed
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            CHANGE_COLUMN,
            "personal_code",
            "given_name",
            "municipality",
            "income"
        ]
    );
    assert!(!feed.schema.field(0).is_nullable());
    assert!(feed.schema.fields().iter().skip(1).all(|f| f.is_nullable()));

    let batches: Vec<RecordBatch> = feed.batches(2).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [2, 1, 2]
    );
    let mut seen = BTreeMap::new();
    for b in &batches {
        assert_eq!(b.schema(), feed.schema);
        let ops = b.column(0).as_string::<i32>();
        let keys = b.column(1).as_string::<i32>();
        let incomes = b.column(4).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let income = incomes.is_valid(r).then(|| incomes.value(r));
            if ops.value(r) == "delete" {
                assert!((2..5).all(|c| b.column(c).is_null(r)), "a delete is a key");
            }
            seen.insert(keys.value(r).to_owned(), (ops.value(r).to_owned(), income));
        }
    }
    let want: BTreeMap<String, (String, Option<i64>)> = [
        (code(0), ("delete".into(), None)),
        (code(2), ("upsert".into(), Some(1))),
        (code(6), ("upsert".into(), Some(50))),
        (code(9), ("delete".into(), None)),
        (code(100), ("upsert".into(), Some(1))),
    ]
    .into();
    assert_eq!(seen, want);

    // One access record per version read: upserts of version 2, deleted keys of version 1.
    let mut records = log.take_records(&context());
    records.sort_by_key(|r| r.version);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].version, 1);
    assert_eq!(records[0].attributes, ["personal_code"]);
    assert_eq!(
        records[0].subjects.values().unwrap(),
        [code(0), code(9)].into()
    );
    assert_eq!(records[1].version, 2);
    assert_eq!(
        records[1].attributes,
        ["personal_code", "given_name", "income"]
    );
    assert_eq!(
        records[1].subjects.values().unwrap(),
        [code(2), code(6), code(100)].into()
    );
    assert_eq!(records[1].agreements, ["7"]);

    // An empty feed still needs a purpose: it would hand out personal columns.
    let log = ReadLog::new();
    let feed = e
        .change_feed("people", 2, &riga())
        .await
        .unwrap()
        .with_log(log.clone());
    assert!(feed.is_empty());
    assert_eq!(feed.batches(10).count(), 0);
    assert!(log.require_purpose(None).is_err());

    // Unmasked, the same versions differ in more records.
    let c = e.changes("people", 1).await.unwrap();
    assert_eq!(
        keys_of(&c.to, c.updated.iter().map(|u| u.1)),
        [code(0), code(2), code(3), code(6)].into()
    );

    // The feed needs the key; nothing granted is no access at all.
    let no_key = grants(vec![("people", vec![Grant::attributes(["municipality"])])]);
    let err = e.change_feed("people", 1, &no_key).await.unwrap_err();
    assert!(
        matches!(&err, Error::ChangesUnavailable { reason, .. } if reason.contains("personal_code")),
        "{err}"
    );
    let nothing = grants(vec![]);
    assert!(matches!(
        e.change_feed("people", 1, &nothing).await,
        Err(Error::AccessDenied(_))
    ));
    // Unrestricted access sees every change.
    let all = e
        .change_feed("people", 1, &Access::Unrestricted)
        .await
        .unwrap();
    assert_eq!((all.upserts.len(), all.deletes.len()), (6, 2));
}

#[tokio::test]
async fn restart_restores_the_version_a_change_set_made() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    let before;
    {
        let e = with_people(dir.path(), 1000).await;
        e.apply_changes(
            "people",
            vec![change_batch(&[
                upsert(1, person(1, 7)),
                delete(2),
                upsert(5000, person(5000, 7)),
            ])],
        )
        .await
        .unwrap();
        expected = contents(&e.current("people").unwrap());
        let c = e.changes("people", 1).await.unwrap();
        before = (c.inserted, c.updated, c.deleted);
    }
    let e = Engine::open_dir(dir.path(), EngineConfig::default())
        .await
        .unwrap();
    let s = e.current("people").unwrap();
    assert_eq!((s.version(), s.num_rows()), (2, 1000));
    assert_eq!(contents(&s), expected);
    assert_layout(&s);
    let c = e.changes("people", 1).await.unwrap();
    assert_eq!((c.inserted, c.updated, c.deleted), before);
    let r = e
        .apply_changes("people", vec![delete_keys(&[code(1)])])
        .await
        .unwrap();
    assert_eq!((r.version, r.rows), (3, 999));
}

#[tokio::test]
async fn cells_the_caller_cannot_see_read_as_null_in_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 10).await;
    // Every row's key and place; the income only where `secret` (not granted) is `x`.
    let access = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "municipality"]),
            Grant::attributes(["income"]).with_row_scope("secret = 'x'"),
        ],
    )]);
    let with = |i: usize, income: i64, secret: &str| {
        let mut r = person(i, income);
        r.3 = Some(secret.to_owned());
        r
    };
    e.apply_changes(
        "people",
        vec![change_batch(&[
            upsert(1, with(1, 5, "x")), // the income cell becomes visible: upsert
            upsert(2, person(2, 5)),    // a hidden income changes: nothing
            upsert(3, with(3, 1, "x")), // visible now, but its income is the same: upsert
        ])],
    )
    .await
    .unwrap();
    let keys = |f: &dagr_engine::ChangeFeed| keys_of(&f.to_view().snapshot, f.upserts.clone());
    let feed = e.change_feed("people", 1, &access).await.unwrap();
    assert_eq!(keys(&feed), [code(1), code(3)].into());
    e.apply_changes(
        "people",
        vec![change_batch(&[
            upsert(1, with(1, 6, "x")), // a visible income changes: upsert
            upsert(3, with(3, 1, "y")), // hidden again, so it reads as null: upsert
        ])],
    )
    .await
    .unwrap();
    let feed = e.change_feed("people", 2, &access).await.unwrap();
    assert_eq!(keys(&feed), [code(1), code(3)].into());
    // From version 1, record 3's visible cells are what they were.
    let feed = e.change_feed("people", 1, &access).await.unwrap();
    assert_eq!(keys(&feed), [code(1)].into());
    assert!(feed.deletes.is_empty());
    let b: Vec<RecordBatch> = feed.batches(100).collect::<Result<_, _>>().unwrap();
    let incomes = b[0].column(3).as_primitive::<Int64Type>();
    assert_eq!(incomes.iter().collect::<Vec<_>>(), [Some(6)]);
}

#[tokio::test]
async fn the_feed_is_refused_when_key_cells_are_hidden_on_rows_the_caller_sees() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 30).await;
    e.apply_changes("people", vec![change_batch(&[upsert(3, person(3, 9))])])
        .await
        .unwrap();
    // Every row's place, but the key and income only in Rīga: the dataset in full shows the
    // other rows with a null key, which no feed could ever delete or update.
    let partial_key = grants(vec![(
        "people",
        vec![
            Grant::attributes(["municipality"]),
            Grant::attributes(["personal_code", "income"]).with_row_scope("municipality = 'Rīga'"),
        ],
    )]);
    let view = e.view("people", &partial_key).unwrap();
    let whole = view.head(100).unwrap();
    assert_eq!(whole.num_rows(), 30);
    assert_eq!(whole.column(0).null_count(), 20, "null keys outside Rīga");
    for since in [1, 2] {
        let err = e
            .change_feed("people", since, &partial_key)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ChangesUnavailable { reason, .. }
                if reason.contains("do not cover the key") && reason.contains("pull the dataset in full")),
            "{err}"
        );
    }
    // The key on every row the caller sees (rows and key scoped alike) is fine.
    let scoped = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "municipality", "income"])
                .with_row_scope("municipality = 'Rīga'"),
        ],
    )]);
    let feed = e.change_feed("people", 1, &scoped).await.unwrap();
    assert_eq!(
        keys_of(&feed.to_view().snapshot, feed.upserts.clone()),
        [code(3)].into()
    );
}

#[tokio::test]
async fn the_version_a_commit_replaced_is_served_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1000).await;
    e.apply_changes("people", vec![change_batch(&[upsert(1, person(1, 9))])])
        .await
        .unwrap();
    // Version 1's files are gone: what the feed reads of it comes from memory.
    std::fs::remove_dir_all(dir.path().join("datasets/people/v00000000000000000001")).unwrap();
    let v1 = e.snapshot_at("people", 1).await.unwrap();
    assert_eq!(v1.version(), 1);
    assert!(Arc::ptr_eq(&v1, &e.snapshot_at("people", 1).await.unwrap()));
    let feed = e
        .change_feed("people", 1, &Access::Unrestricted)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&feed.from_view().snapshot, &v1));
    assert_eq!(
        keys_of(&feed.to_view().snapshot, feed.upserts.clone()),
        [code(1)].into()
    );
    assert_eq!(e.changes("people", 1).await.unwrap().updated.len(), 1);
    drop((v1, feed));
    // After a full load, version 2 is the one kept in memory.
    e.load_batches("people", people(1000, 3)).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("datasets/people/v00000000000000000002")).unwrap();
    let c = e.changes("people", 2).await.unwrap();
    assert_eq!((c.from.version(), c.updated.len()), (2, 1000));
    // Version 1 is not: it is read back from the store, which no longer has it.
    assert!(e.snapshot_at("people", 1).await.is_err());
}

/// The on-disk catalog of `people` in `dir`: (current, kept).
fn disk_catalog(dir: &std::path::Path) -> (u64, Vec<u64>) {
    let text = std::fs::read(dir.join("datasets/people/catalog.json")).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let kept = json["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    (json["current"].as_u64().unwrap(), kept)
}

/// A load or change set whose caller is dropped at any point either commits whole or not at
/// all: memory and the store never disagree, so no later version reuses a committed number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_never_splits_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    // Small loads, so that the commit itself is a good part of each.
    let n = 2000;
    let e = with_people(dir.path(), n).await;
    let started = std::time::Instant::now();
    e.load_batches("people", people(n, 2)).await.unwrap();
    let load_time = started.elapsed();
    let mut seed = 7u64;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound.max(1)
    };
    let (mut dropped, mut finished) = (0, 0);
    for round in 0..80i64 {
        let cut = std::time::Duration::from_micros(next(load_time.as_micros() as u64 * 3 / 2));
        let tag = 100 + round;
        let done = if round % 2 == 0 {
            tokio::time::timeout(cut, e.load_batches("people", people(n, tag)))
                .await
                .is_ok()
        } else {
            let set = change_batch(&[upsert(round as usize, person(round as usize, tag))]);
            tokio::time::timeout(cut, e.apply_changes("people", vec![set]))
                .await
                .is_ok()
        };
        if done {
            finished += 1;
        } else {
            dropped += 1;
        }
        // Wait for a commit left running: a change set that changes nothing takes the lock.
        e.apply_changes("people", vec![delete_keys(&["nobody".to_owned()])])
            .await
            .unwrap();
        let memory = e.versions("people").await.unwrap();
        let current = e.current("people").unwrap().version();
        let kept: Vec<u64> = memory.iter().map(|v| v.version).collect();
        assert_eq!(disk_catalog(dir.path()), (current, kept), "round {round}");
        assert!(memory.iter().any(|v| v.current && v.version == current));
    }
    assert!(
        dropped > 0 && finished > 0,
        "{dropped} dropped, {finished} finished"
    );
    let expected = contents(&e.current("people").unwrap());
    let versions: Vec<u64> = e
        .versions("people")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    drop(e);
    let e = Engine::open_dir(dir.path(), EngineConfig::default())
        .await
        .unwrap();
    assert_eq!(contents(&e.current("people").unwrap()), expected);
    let reopened: Vec<u64> = e
        .versions("people")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(reopened, versions);
    for v in versions {
        assert_eq!(e.snapshot_at("people", v).await.unwrap().version(), v);
    }
}

/// A part whose chunks a change set left untouched is not written again: the new version's
/// directory links the previous version's file, and stays whole when that version expires.
#[cfg(unix)]
#[tokio::test]
async fn unchanged_parts_are_linked_not_rewritten() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    // Two parts: chunks 0-3, and chunk 4.
    let n = 4 * CHUNK_ROWS + 5000;
    let config = EngineConfig {
        keep_versions: 1,
        ..EngineConfig::default()
    };
    let e = Engine::open_dir(dir.path(), config.clone()).await.unwrap();
    e.create_dataset(people_def()).await.unwrap();
    e.load_batches("people", people(n, 1)).await.unwrap();
    // Part `i` of version `v` (its name carries the load's nonce); a path that does not exist
    // when the version has no such part.
    let part = |v: u64, i: usize| {
        let vdir = dir.path().join(format!("datasets/people/v{v:020}"));
        let prefix = format!("part-{i:05}-");
        std::fs::read_dir(&vdir)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&prefix)
            })
            .unwrap_or_else(|| vdir.join(format!("{prefix}missing")))
    };
    let inode = |v: u64, i: usize| std::fs::metadata(part(v, i)).unwrap().ino();
    let (old0, old1) = (inode(1, 0), inode(1, 1));
    // An update in place in chunk 0.
    e.apply_changes("people", vec![change_batch(&[upsert(5, person(5, 9))])])
        .await
        .unwrap();
    assert_ne!(inode(2, 0), old0, "the changed part is written anew");
    assert_eq!(inode(2, 1), old1, "the unchanged part is linked");
    // Version 1 expired and was deleted; version 2 is whole.
    assert!(!part(1, 1).exists());
    let mut expected = model(n, 1);
    expected.insert(code(5), person(5, 9));
    drop(e);
    let e = Engine::open_dir(dir.path(), config).await.unwrap();
    let s = e.current("people").unwrap();
    assert_eq!((s.version(), contents(&s) == expected), (2, true));
    // After a restart the restored version is the previous one: still linked.
    let old1 = inode(2, 1);
    e.apply_changes("people", vec![change_batch(&[upsert(6, person(6, 9))])])
        .await
        .unwrap();
    assert_eq!(inode(3, 1), old1);
    // A full load shares nothing: every part is written.
    e.load_batches("people", people(n, 2)).await.unwrap();
    assert_ne!(inode(4, 1), old1);
}

//! Snapshot lifecycle: validation, versions, atomic swaps, persistence and recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;
use dagr_engine::arrow::array::{
    ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use dagr_engine::arrow::datatypes::Int64Type;
use dagr_engine::{Access, Error, KeyValue};

fn refused(e: Error) -> String {
    match e {
        Error::LoadRefused { reason, .. } => reason,
        other => panic!("expected a refused load, got {other}"),
    }
}

fn five(code: &[&str], income: ArrayRef) -> Vec<(&'static str, ArrayRef)> {
    let n = code.len();
    vec![
        (
            "personal_code",
            Arc::new(StringArray::from(code.to_vec())) as ArrayRef,
        ),
        ("given_name", Arc::new(StringArray::from(vec!["a"; n]))),
        ("municipality", Arc::new(StringArray::from(vec!["Rīga"; n]))),
        ("income", income),
        ("secret", Arc::new(StringArray::from(vec!["s"; n]))),
    ]
}

#[tokio::test]
async fn invalid_loads_are_refused_naming_the_problem_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    let inc = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;

    let mut missing = five(&["a"], inc(vec![1]));
    missing.remove(3);
    let r = refused(
        e.load_batches("people", vec![batch(missing)])
            .await
            .unwrap_err(),
    );
    assert!(r.contains("column `income` is missing"), "{r}");

    let mut extra = five(&["a"], inc(vec![1]));
    extra.push(("shoe_size", Arc::new(Int64Array::from(vec![42]))));
    let r = refused(
        e.load_batches("people", vec![batch(extra)])
            .await
            .unwrap_err(),
    );
    assert!(r.contains("column `shoe_size` is not an attribute"), "{r}");

    let mistyped = five(&["a"], Arc::new(Int32Array::from(vec![1])));
    let r = refused(
        e.load_batches("people", vec![batch(mistyped)])
            .await
            .unwrap_err(),
    );
    assert!(
        r.contains("column `income` has type Int32; the dataset defines Int64"),
        "{r}"
    );

    let dup = five(&["a", "b", "a", "c", "b", "a"], inc(vec![1; 6]));
    let r = refused(
        e.load_batches("people", vec![batch(dup)])
            .await
            .unwrap_err(),
    );
    // The key is a personal code: the refusal names rows, never the codes.
    assert!(
        r.contains("3 duplicate value(s)")
            && r.contains("first: rows 3, 5, 6 (values withheld: the key is personal data)"),
        "{r}"
    );

    let mut nullkey = five(&["a", "b", "c"], inc(vec![1; 3]));
    nullkey[0].1 = Arc::new(StringArray::from(vec![Some("a"), None, None]));
    let r = refused(
        e.load_batches("people", vec![batch(nullkey)])
            .await
            .unwrap_err(),
    );
    assert!(
        r.contains("primary key column `personal_code` has 2 null value(s) (first at row 1)"),
        "{r}"
    );

    let mut nullreq = five(&["a", "b"], inc(vec![1; 2]));
    nullreq[2].1 = Arc::new(StringArray::from(vec![None, Some("x")]));
    let r = refused(
        e.load_batches("people", vec![batch(nullreq)])
            .await
            .unwrap_err(),
    );
    assert!(
        r.contains("required column `municipality` has 1 null value(s)"),
        "{r}"
    );

    // Nothing changed: still version 1 with 100 rows, and no version was used up.
    let s = e.current("people").unwrap();
    assert_eq!((s.version(), s.num_rows()), (1, 100));
    let next = e.load_batches("people", people(7, 2)).await.unwrap();
    assert_eq!(next.version, 2);
    assert_eq!(e.versions("people").await.unwrap().len(), 2);
}

#[tokio::test]
async fn compatible_string_types_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1).await;
    let mut cols = five(&["a", "b"], Arc::new(Int64Array::from(vec![1, 2])));
    cols[1].1 = Arc::new(dagr_engine::arrow::array::StringViewArray::from(vec![
        "x", "y",
    ]));
    cols[2].1 = Arc::new(dagr_engine::arrow::array::LargeStringArray::from(vec![
        "Rīga", "Ogre",
    ]));
    let r = e.load_batches("people", vec![batch(cols)]).await.unwrap();
    assert_eq!((r.version, r.rows), (2, 2));
}

#[tokio::test]
async fn lookups_find_single_and_batches_of_keys_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000; // four chunks
    let e = with_people(dir.path(), n).await;
    let s = e.current("people").unwrap();
    assert_eq!(s.chunks().len(), 4);
    for i in [0, 65_535, 65_536, 131_072, n - 1] {
        let row = s.index().get(&[KeyValue::Str(code(i))]).expect("present");
        assert_eq!(s.index().key_of(row), vec![KeyValue::Str(code(i))]);
    }
    assert_eq!(s.index().get(&[KeyValue::Str(code(n))]), None);
    assert_eq!(s.index().get(&[KeyValue::Int(5)]), None);
    let view = e.view("people", &Access::Unrestricted).unwrap();
    let keys: Vec<Vec<KeyValue>> = [n - 1, 7, n + 5, 65_536]
        .iter()
        .map(|&i| vec![KeyValue::Str(code(i))])
        .collect();
    let b = view.lookup_many(&keys).unwrap();
    let codes: Vec<&str> = b
        .column(0)
        .as_string::<i32>()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(codes, [code(n - 1), code(7), code(65_536)]);
    let err = s.parse_key("a,b").map(|_| ()).err();
    assert!(err.is_none(), "single-part keys may contain commas");
}

#[tokio::test]
async fn readers_see_one_version_whole_while_loads_swap() {
    let dir = tempfile::tempdir().unwrap();
    let n = 140_000;
    let e = with_people(dir.path(), n).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let e = Arc::clone(&e);
        let stop = Arc::clone(&stop);
        readers.spawn(async move {
            let mut checked = 0;
            while !stop.load(Ordering::Relaxed) || checked == 0 {
                // A query that reads the dataset twice must see one version in both places.
                let b = sql_batches(
                    &e,
                    &Access::Unrestricted,
                    "SELECT (SELECT min(income) FROM people) AS lo, (SELECT max(income) FROM people) AS hi, (SELECT count(*) FROM people) AS c",
                )
                .await
                .unwrap();
                let lo = b[0].column(0).as_primitive::<Int64Type>().value(0);
                let hi = b[0].column(1).as_primitive::<Int64Type>().value(0);
                let c = b[0].column(2).as_primitive::<Int64Type>().value(0);
                assert_eq!(lo, hi, "a query mixed two versions");
                assert_eq!(c as usize, n + (lo as usize - 1), "row count does not match version {lo}");
                // A pinned snapshot stays whole however many swaps happen.
                let s = e.current("people").unwrap();
                let tag = s.chunks()[0].column(3).as_primitive::<Int64Type>().value(0);
                tokio::task::yield_now().await;
                for chunk in s.chunks() {
                    let col = chunk.column(3).as_primitive::<Int64Type>();
                    assert!(col.values().iter().all(|&v| v == tag));
                }
                checked += 1;
            }
            checked
        });
    }
    for tag in 2..=5 {
        // version `tag` holds n + tag - 1 rows, all with income = tag
        e.load_batches("people", people(n + tag as usize - 1, tag))
            .await
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = readers.join_next().await {
        assert!(r.unwrap() > 0);
    }
    assert_eq!(e.current("people").unwrap().version(), 5);
}

#[tokio::test]
async fn restart_restores_current_versions_and_rollback_survives() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = with_people(dir.path(), 1000).await;
        e.load_batches("people", people(2000, 2)).await.unwrap();
    }
    let e = open(dir.path()).await;
    let s = e.current("people").unwrap();
    assert_eq!((s.version(), s.num_rows()), (2, 2000));
    let view = e.view("people", &Access::Unrestricted).unwrap();
    assert!(view.lookup(&[KeyValue::Str(code(1999))]).unwrap().is_some());
    let r = e.rollback("people", 1).await.unwrap();
    assert_eq!((r.version, r.rows), (1, 1000));
    drop(e);
    let e = open(dir.path()).await;
    assert_eq!(e.current("people").unwrap().version(), 1);
    // The next load still gets a fresh number.
    assert_eq!(
        e.load_batches("people", people(5, 3))
            .await
            .unwrap()
            .version,
        3
    );
    let err = e.rollback("people", 42).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionNotKept { version: 42, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn only_the_last_versions_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 10).await;
    for t in 2..=5 {
        e.load_batches("people", people(10, t)).await.unwrap();
    }
    let kept: Vec<u64> = e
        .versions("people")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [3, 4, 5]);
    assert!(matches!(
        e.rollback("people", 2).await,
        Err(Error::VersionNotKept { .. })
    ));
    let on_disk = std::fs::read_dir(dir.path().join("datasets/people"))
        .unwrap()
        .count();
    assert_eq!(
        on_disk,
        3 + 2,
        "three version directories, the definition and the catalog"
    );
}

#[tokio::test]
async fn a_load_that_died_half_way_is_never_taken_for_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = with_people(dir.path(), 100).await;
        e.load_batches("people", people(200, 2)).await.unwrap();
    }
    // What a crash during version 3 leaves: parts (one of them torn) and even a manifest,
    // but no catalog entry.
    let v3 = dir.path().join("datasets/people/v00000000000000000003");
    std::fs::create_dir_all(&v3).unwrap();
    std::fs::write(v3.join("part-00000.parquet"), b"PAR1 torn").unwrap();
    std::fs::copy(
        dir.path()
            .join("datasets/people/v00000000000000000002/manifest.json"),
        v3.join("manifest.json"),
    )
    .unwrap();
    let e = open(dir.path()).await;
    let s = e.current("people").unwrap();
    assert_eq!((s.version(), s.num_rows()), (2, 200));
    assert!(!v3.exists(), "the uncommitted version directory is removed");
    assert_eq!(
        e.load_batches("people", people(300, 3))
            .await
            .unwrap()
            .version,
        3
    );
    drop(e);
    let e = open(dir.path()).await;
    assert_eq!(e.current("people").unwrap().num_rows(), 300);
}

#[tokio::test]
async fn parquet_files_and_directories_load_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1).await;
    let src = tempfile::tempdir().unwrap();
    let batches = people(150_000, 7);
    let schema = batches[0].schema();
    let f = std::fs::File::create(src.path().join("a.parquet")).unwrap();
    let mut w = parquet_writer(f, schema);
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    let path = src.path().join("a.parquet");
    let r = e
        .load_parquet("people", path.to_str().unwrap())
        .await
        .unwrap();
    assert_eq!((r.version, r.rows), (2, 150_000));
    let url = format!("file://{}", src.path().display());
    assert_eq!(e.load_parquet("people", &url).await.unwrap().rows, 150_000);

    std::fs::write(
        src.path().join("torn.parquet"),
        &std::fs::read(&path).unwrap()[..5000],
    )
    .unwrap();
    let r = refused(
        e.load_parquet("people", src.path().join("torn.parquet").to_str().unwrap())
            .await
            .unwrap_err(),
    );
    assert!(
        r.contains("torn.parquet") && r.contains("not a readable Parquet file"),
        "{r}"
    );
    let r = refused(
        e.load_parquet("people", "/no/such/file.parquet")
            .await
            .unwrap_err(),
    );
    assert!(r.contains("/no/such/file.parquet"), "{r}");
    let r = refused(
        e.load_parquet("people", "s3://bucket/x.parquet")
            .await
            .unwrap_err(),
    );
    assert!(r.contains("s3"), "{r}");
    assert_eq!(e.current("people").unwrap().version(), 3);
}

fn parquet_writer(
    f: std::fs::File,
    schema: dagr_engine::arrow::datatypes::SchemaRef,
) -> parquet::arrow::ArrowWriter<std::fs::File> {
    parquet::arrow::ArrowWriter::try_new(f, schema, None).unwrap()
}

#[tokio::test]
async fn datasets_are_refused_when_invalid_or_taken() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 1).await;
    assert!(matches!(
        e.create_dataset(people_def()).await,
        Err(Error::DatasetExists(_))
    ));
    let mut bad = people_def();
    bad.name = "other".into();
    bad.primary_key = vec!["nope".into()];
    let err = e.create_dataset(bad).await.unwrap_err().to_string();
    assert!(
        err.contains("primary key column `nope` is not an attribute"),
        "{err}"
    );
    assert!(matches!(e.current("nope"), Err(Error::DatasetNotFound(_))));
    let s = e.current("people").unwrap();
    assert!(s.index().get(&[KeyValue::Str(code(0))]).is_some());
}

#[tokio::test]
async fn nested_types_and_oversized_unsigned_keys_are_refused() {
    use dagr_engine::arrow::array::UInt64Array;
    use dagr_engine::arrow::datatypes::{DataType, Field};
    use dagr_engine::{Attribute, DatasetDefinition};
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path()).await;
    let mut nested = people_def();
    nested.attributes.push(Attribute::new(
        "tags",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        "",
    ));
    let err = e.create_dataset(nested).await.unwrap_err().to_string();
    assert!(err.contains("`tags`") && err.contains("flat"), "{err}");
    let def = DatasetDefinition {
        name: "big".into(),
        owner: "X".into(),
        description: String::new(),
        primary_key: vec!["id".into()],
        attributes: vec![Attribute::new("id", DataType::UInt64, "")],
    };
    e.create_dataset(def).await.unwrap();
    let ok = batch(vec![(
        "id",
        Arc::new(UInt64Array::from(vec![1u64, 2])) as ArrayRef,
    )]);
    assert_eq!(e.load_batches("big", vec![ok]).await.unwrap().rows, 2);
    let huge = batch(vec![(
        "id",
        Arc::new(UInt64Array::from(vec![1u64, u64::MAX])) as ArrayRef,
    )]);
    let r = refused(e.load_batches("big", vec![huge]).await.unwrap_err());
    assert!(r.contains("primary key (id)"), "{r}");
    // An empty snapshot answers lookups with nothing.
    e.load_batches("big", vec![]).await.unwrap();
    let view = e.view("big", &Access::Unrestricted).unwrap();
    assert_eq!(
        view.lookup_many(&[vec![KeyValue::Int(1)]])
            .unwrap()
            .num_rows(),
        0
    );
    assert!(view.lookup(&[KeyValue::Int(1)]).unwrap().is_none());
}

#[tokio::test]
async fn redefine_changes_what_the_next_load_must_match_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100).await;
    // Drop `secret`: a load without it is refused until the definition changes.
    let mut def = people_def();
    def.attributes.retain(|a| a.name != "secret");
    let narrow: Vec<RecordBatch> = people(50, 2)
        .into_iter()
        .map(|b| {
            let i = b.schema().index_of("secret").unwrap();
            let mut b = b;
            b.remove_column(i);
            b
        })
        .collect();
    let err = e.load_batches("people", narrow.clone()).await.unwrap_err();
    assert!(err.to_string().contains("secret"), "{err}");
    // Owner and key cannot change.
    let mut bad = def.clone();
    bad.owner = "UR".into();
    assert!(
        e.redefine(bad)
            .await
            .unwrap_err()
            .to_string()
            .contains("owner")
    );
    let mut bad = def.clone();
    bad.primary_key = vec!["given_name".into()];
    assert!(
        e.redefine(bad)
            .await
            .unwrap_err()
            .to_string()
            .contains("primary key")
    );
    e.redefine(def.clone()).await.unwrap();
    // The loaded snapshot keeps its definition until the next load.
    assert!(
        e.current("people")
            .unwrap()
            .definition()
            .attribute("secret")
            .is_some()
    );
    e.load_batches("people", narrow).await.unwrap();
    assert!(
        e.current("people")
            .unwrap()
            .definition()
            .attribute("secret")
            .is_none()
    );
    drop(e);
    let e = open(dir.path()).await;
    assert!(
        e.definition("people")
            .unwrap()
            .attribute("secret")
            .is_none()
    );
    assert_eq!(e.current("people").unwrap().num_rows(), 50);
    // Row scopes are checked against the definition and report the columns they read.
    assert_eq!(
        e.check_row_scope("people", "municipality = 'Rīga' AND income > 3")
            .unwrap(),
        ["income", "municipality"]
    );
    assert!(e.check_row_scope("people", "secret = 'x'").is_err());
}

#[tokio::test]
async fn an_unreadable_dataset_is_skipped_and_the_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = with_people(dir.path(), 100).await;
        let mut other = people_def();
        other.name = "others".into();
        e.create_dataset(other).await.unwrap();
        e.load_batches("others", people(50, 1)).await.unwrap();
    }
    // Damage every Parquet part of `people`.
    let mut damaged = 0;
    let mut stack = vec![dir.path().join("datasets").join("people")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                std::fs::write(&p, b"not parquet").unwrap();
                damaged += 1;
            }
        }
    }
    assert!(damaged > 0, "found the parts of people");
    let e = open(dir.path()).await;
    let unreadable = e.unreadable();
    assert!(unreadable.contains_key("people"), "{unreadable:?}");
    assert_eq!(
        rows(
            &sql_batches(&e, &Access::Unrestricted, "SELECT * FROM others")
                .await
                .unwrap()
        ),
        50
    );
    // Its name stays taken: nothing overwrites the damaged files.
    assert!(e.create_dataset(people_def()).await.is_err());
}

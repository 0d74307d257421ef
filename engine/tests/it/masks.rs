//! Mask enforcement on every SQL shape and on the point-lookup path: no query may return an
//! attribute or a row that no grant allows.

use crate::common::*;
use dagr_engine::{Access, Grant, KeyValue};

const N: usize = 9_000;

/// given_name, municipality and the key, only for rows in Rīga.
fn riga() -> Access {
    grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name", "municipality"])
                .with_row_scope("municipality = 'Rīga'"),
        ],
    )])
}

fn assert_clean(out: &str) {
    for forbidden in ["income", "secret", "Jūrmala", "Ogre", "s1", "P0000001 "] {
        assert!(!out.contains(forbidden), "`{forbidden}` leaked in:\n{out}");
    }
}

#[tokio::test]
async fn select_star_shows_only_granted_columns_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let b = sql_batches(&e, &riga(), "SELECT * FROM people")
        .await
        .unwrap();
    let schema = b[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["personal_code", "given_name", "municipality"]);
    assert_eq!(rows(&b), N / 3);
    let out = sql(
        &e,
        &riga(),
        "SELECT * FROM people ORDER BY personal_code LIMIT 3",
    )
    .await
    .unwrap();
    assert_clean(&out);
    assert!(
        out.contains("P0000000") && out.contains("P0000003"),
        "{out}"
    );
}

#[tokio::test]
async fn naming_a_forbidden_attribute_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    for q in [
        "SELECT income FROM people",
        "SELECT personal_code FROM people WHERE income > 0",
        "SELECT personal_code FROM people ORDER BY secret",
        "SELECT people.secret FROM people",
        "SELECT max(income) FROM people",
    ] {
        let err = sql(&e, &riga(), q).await.unwrap_err();
        assert!(
            err.contains("income") || err.contains("secret"),
            "{q}: {err}"
        );
        // Not granted reads as absent: no hint that the attribute exists.
        assert!(err.starts_with("permission denied"), "{q}: {err}");
    }
}

#[tokio::test]
async fn subqueries_joins_unions_ctes_and_windows_stay_masked() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = riga();
    let ok = [
        ("SELECT * FROM (SELECT * FROM people) t", N / 3),
        (
            "SELECT personal_code FROM people WHERE personal_code IN (SELECT personal_code FROM people)",
            N / 3,
        ),
        (
            "SELECT x.personal_code, y.given_name FROM people x JOIN people y ON x.personal_code = y.personal_code",
            N / 3,
        ),
        (
            "SELECT municipality FROM people UNION ALL SELECT given_name FROM people",
            2 * N / 3,
        ),
        ("WITH t AS (SELECT * FROM people) SELECT * FROM t", N / 3),
        (
            "SELECT personal_code, row_number() OVER (ORDER BY personal_code) AS n FROM people",
            N / 3,
        ),
        (
            "SELECT municipality, count(*) FROM people GROUP BY municipality",
            1,
        ),
        (
            "SELECT * FROM people WHERE NOT EXISTS (SELECT 1 FROM people p2 WHERE p2.municipality <> 'Rīga')",
            N / 3,
        ),
    ];
    for (q, expected) in ok {
        let b = sql_batches(&e, &a, q)
            .await
            .unwrap_or_else(|err| panic!("{q}: {err}"));
        assert_eq!(rows(&b), expected, "{q}");
        let out = dagr_engine::arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string();
        assert_clean(&out);
    }
    let count = sql(&e, &a, "SELECT count(*) AS c FROM people")
        .await
        .unwrap();
    assert!(count.contains(&format!("| {} ", N / 3)), "{count}");
    let by_m = sql(
        &e,
        &a,
        "SELECT municipality, count(*) AS c FROM people GROUP BY municipality",
    )
    .await
    .unwrap();
    assert!(
        by_m.contains("Rīga") && by_m.contains(&(N / 3).to_string()),
        "{by_m}"
    );
    for q in [
        "SELECT personal_code FROM people UNION SELECT secret FROM people",
        "WITH t AS (SELECT income FROM people) SELECT * FROM t",
        "SELECT sum(income) OVER () FROM people",
        "SELECT (SELECT max(income) FROM people)",
    ] {
        let err = sql(&e, &a, q).await.unwrap_err();
        assert!(
            err.contains("income") || err.contains("secret"),
            "{q}: {err}"
        );
    }
}

#[tokio::test]
async fn information_schema_and_explain_show_only_the_masked_view() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let mut other = people_def();
    other.name = "hidden".into();
    e.create_dataset(other).await.unwrap();
    e.load_batches("hidden", people(10, 1)).await.unwrap();
    let a = riga();
    let cols = sql(
        &e,
        &a,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'people' ORDER BY column_name",
    )
    .await
    .unwrap();
    assert!(
        cols.contains("given_name")
            && cols.contains("municipality")
            && cols.contains("personal_code")
    );
    assert_clean(&cols);
    let tables = sql(&e, &a, "SELECT table_name FROM information_schema.tables")
        .await
        .unwrap();
    assert!(
        tables.contains("people") && !tables.contains("hidden"),
        "{tables}"
    );
    let err = sql(&e, &a, "SELECT * FROM hidden").await.unwrap_err();
    assert!(err.contains("hidden"), "{err}");
    for q in [
        "EXPLAIN SELECT * FROM people",
        "EXPLAIN VERBOSE SELECT * FROM people",
        "EXPLAIN ANALYZE SELECT * FROM people",
    ] {
        let out = sql(&e, &a, q).await.unwrap();
        assert_clean(&out);
        assert!(!out.contains("municipality = "), "row scope leaked: {out}");
    }
}

#[tokio::test]
async fn key_filters_use_the_index_and_respect_row_scope() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = riga();
    // row 0 is in Rīga, row 1 is not
    let visible = sql_batches(
        &e,
        &a,
        "SELECT * FROM people WHERE personal_code = 'P0000000'",
    )
    .await
    .unwrap();
    assert_eq!(rows(&visible), 1);
    let hidden = sql_batches(
        &e,
        &a,
        "SELECT * FROM people WHERE personal_code = 'P0000001'",
    )
    .await
    .unwrap();
    assert_eq!(rows(&hidden), 0);
    let many = sql_batches(
        &e,
        &a,
        "SELECT personal_code FROM people WHERE personal_code IN ('P0000000', 'P0000001', 'P0000003', 'nope')",
    )
    .await
    .unwrap();
    assert_eq!(rows(&many), 2);
    let plan = sql(
        &e,
        &a,
        "EXPLAIN SELECT * FROM people WHERE personal_code = 'P0000000'",
    )
    .await
    .unwrap();
    assert!(
        !plan.contains("StreamingTableExec"),
        "key filter was not answered from the index:\n{plan}"
    );
    let plan = sql(
        &e,
        &a,
        "EXPLAIN SELECT * FROM people WHERE given_name = 'Name0'",
    )
    .await
    .unwrap();
    assert!(plan.contains("StreamingTableExec"), "{plan}");

    // The lookup fast path applies the same mask.
    let view = e.view("people", &a).unwrap();
    let rec = view.lookup(&[KeyValue::Str(code(0))]).unwrap().unwrap();
    assert_eq!(rec.num_columns(), 3);
    assert!(view.lookup(&[KeyValue::Str(code(1))]).unwrap().is_none());
    assert!(
        view.lookup(&[KeyValue::Str("absent".into())])
            .unwrap()
            .is_none()
    );
    let batch = view
        .lookup_many(&[
            vec![KeyValue::Str(code(3))],
            vec![KeyValue::Str(code(1))],
            vec![KeyValue::Str(code(0))],
        ])
        .unwrap();
    assert_eq!(batch.num_rows(), 2);
    let out = dagr_engine::arrow::util::pretty::pretty_format_batches(&[batch])
        .unwrap()
        .to_string();
    assert!(
        out.find("P0000003").unwrap() < out.find("P0000000").unwrap(),
        "order kept: {out}"
    );
}

#[tokio::test]
async fn cells_are_visible_only_where_a_grant_covers_both_row_and_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "municipality"]),
            Grant::attributes(["given_name"]).with_row_scope("municipality = 'Rīga'"),
        ],
    )]);
    let out = sql(
        &e,
        &a,
        "SELECT municipality, count(given_name) AS named, count(*) AS total FROM people GROUP BY municipality ORDER BY municipality",
    )
    .await
    .unwrap();
    let third = N / 3;
    assert!(
        out.contains(&format!("| Jūrmala      | 0     | {third} ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("| Rīga         | {third}  | {third} ")),
        "{out}"
    );
    let view = e.view("people", &a).unwrap();
    let rec = view.lookup(&[KeyValue::Str(code(1))]).unwrap().unwrap();
    assert!(
        rec.column(1).is_null(0),
        "given_name of a Jūrmala row must be null"
    );
    let rec = view.lookup(&[KeyValue::Str(code(0))]).unwrap().unwrap();
    assert!(!rec.column(1).is_null(0));
    // A row scope may use a column the caller cannot see.
    let a = grants(vec![(
        "people",
        vec![Grant::attributes(["personal_code"]).with_row_scope("secret = 's5'")],
    )]);
    assert_eq!(
        rows(&sql_batches(&e, &a, "SELECT * FROM people").await.unwrap()),
        1
    );
}

#[tokio::test]
async fn no_grant_means_access_denied_and_bad_scopes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let none = grants(vec![]);
    let err = e.view("people", &none).unwrap_err();
    assert!(
        matches!(err, dagr_engine::Error::AccessDenied(ref d) if d == "people"),
        "{err}"
    );
    let err = sql(&e, &none, "SELECT * FROM people").await.unwrap_err();
    assert!(err.contains("people"), "{err}");
    for (scope, why) in [
        ("nope = 1", "nope"),
        ("municipality", "not a condition"),
        ("random() > 0.5", "volatile"),
        (
            "personal_code IN (SELECT personal_code FROM people)",
            "subquery",
        ),
    ] {
        let a = grants(vec![(
            "people",
            vec![Grant::attributes(["personal_code"]).with_row_scope(scope)],
        )]);
        let err = e.view("people", &a).unwrap_err().to_string();
        assert!(
            err.contains("invalid row scope") && err.contains(why),
            "{scope}: {err}"
        );
    }
}

#[tokio::test]
async fn anything_but_a_read_only_query_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 10).await;
    let a = Access::Unrestricted;
    for q in [
        "CREATE TABLE t AS SELECT * FROM people",
        "INSERT INTO people VALUES ('x', 'y', 'z', 1, 's')",
        "DELETE FROM people",
        "DROP TABLE people",
        "COPY people TO '/tmp/x.csv'",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE VIEW v AS SELECT 1",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
    ] {
        let err = sql(&e, &a, q).await.unwrap_err();
        assert!(err.starts_with("query refused"), "{q}: {err}");
    }
    for q in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELEC 1",
    ] {
        let err = sql(&e, &a, q).await.unwrap_err();
        assert!(err.starts_with("invalid query"), "{q}: {err}");
    }
    let long = format!("SELECT 1 {}", " ".repeat(70_000));
    assert!(sql(&e, &a, &long).await.unwrap_err().contains("at most"));
}

#[tokio::test]
async fn keys_the_caller_cannot_see_cannot_be_probed() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    // The key is visible only on Rīga rows; municipality on every row.
    let a = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name"])
                .with_row_scope("municipality = 'Rīga'"),
            Grant::attributes(["municipality"]),
        ],
    )]);
    let probe = sql_batches(
        &e,
        &a,
        "SELECT municipality FROM people WHERE personal_code = 'P0000001'",
    )
    .await
    .unwrap();
    assert_eq!(rows(&probe), 0, "a hidden key must not select its row");
    let view = e.view("people", &a).unwrap();
    assert!(view.lookup(&[KeyValue::Str(code(1))]).unwrap().is_none());
    assert!(view.lookup(&[KeyValue::Str(code(0))]).unwrap().is_some());
    let many = view
        .lookup_many(&[vec![KeyValue::Str(code(1))], vec![KeyValue::Str(code(3))]])
        .unwrap();
    assert_eq!(many.num_rows(), 1);
    // Without the key granted at all, lookups by key are refused.
    let a = grants(vec![("people", vec![Grant::attributes(["municipality"])])]);
    let err = e
        .view("people", &a)
        .unwrap()
        .lookup(&[KeyValue::Str(code(0))])
        .unwrap_err();
    assert!(err.to_string().contains("personal_code"), "{err}");
    // LIMIT applies after invisible rows are dropped.
    let b = sql_batches(
        &e,
        &riga(),
        "SELECT personal_code FROM people WHERE personal_code IN ('P0000001', 'P0000000') LIMIT 1",
    )
    .await
    .unwrap();
    assert_eq!(rows(&b), 1);
}

#[tokio::test]
async fn granted_attributes_missing_from_a_snapshot_grant_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 30).await;
    // A grant naming an attribute the snapshot lacks (e.g. removed by a schema change)
    // keeps the rest; a grant of only missing attributes grants nothing.
    let access = grants(vec![(
        "people",
        vec![Grant::attributes(["given_name", "removed_long_ago"])],
    )]);
    let out = sql(&e, &access, "SELECT * FROM people LIMIT 1")
        .await
        .unwrap();
    assert!(
        out.contains("given_name") && !out.contains("removed_long_ago"),
        "{out}"
    );
    let access = grants(vec![(
        "people",
        vec![Grant::attributes(["removed_long_ago"])],
    )]);
    let err = e.view("people", &access).unwrap_err();
    assert!(matches!(err, dagr_engine::Error::AccessDenied(_)), "{err}");
}

#[tokio::test]
async fn a_scope_that_fails_on_a_cell_does_not_quote_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 10).await;
    // Valid when written; fails on the data (given names are not numbers).
    let a = grants(vec![(
        "people",
        vec![Grant::attributes(["municipality"]).with_row_scope("CAST(given_name AS INT) > 0")],
    )]);
    let err = e.view("people", &a).unwrap_err().to_string();
    assert!(err.contains("cannot be evaluated"), "{err}");
    let names = sql_batches(&e, &Access::Unrestricted, "SELECT given_name FROM people")
        .await
        .unwrap();
    let names = dagr_engine::arrow::util::pretty::pretty_format_batches(&names)
        .unwrap()
        .to_string();
    for line in names.lines().skip(3) {
        let name = line.trim_matches(|c| c == '|' || c == ' ' || c == '+' || c == '-');
        if !name.is_empty() {
            assert!(!err.contains(name), "`{name}` echoed in: {err}");
        }
    }
}

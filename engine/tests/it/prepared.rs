//! Prepared statements: the point-lookup path answers exactly like `Engine::query` with the
//! literal written in, under every mask; grants are applied as they are at execution;
//! parameters are counted and typed.

use std::sync::Arc;
use std::time::Instant;

use crate::common::*;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::datatypes::DataType;
use dagr_engine::arrow::util::pretty::pretty_format_batches;
use dagr_engine::datafusion::scalar::ScalarValue;
use dagr_engine::{Access, Engine, Error, Grant, Prepared};

const N: usize = 9_000;

/// given_name, municipality and the key, only for rows in Rīga (row `i` is in Rīga iff
/// `i % 3 == 0`).
fn riga() -> Access {
    grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name", "municipality"])
                .with_row_scope("municipality = 'Rīga'"),
        ],
    )])
}

fn s(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.to_owned()))
}

async fn prepare(e: &Arc<Engine>, access: &Access, q: &str) -> Prepared {
    e.prepare(q, access)
        .await
        .unwrap_or_else(|err| panic!("prepare {q}: {err}"))
}

async fn run(
    e: &Arc<Engine>,
    p: &Prepared,
    params: &[ScalarValue],
    access: &Access,
) -> Result<Vec<RecordBatch>, Error> {
    e.execute_prepared(p, params, access).await?.collect().await
}

/// The result as a pretty table (empty batches dropped: an empty result is the same
/// whether it is zero batches or one empty one).
fn table(batches: &[RecordBatch]) -> String {
    let batches: Vec<RecordBatch> = batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .cloned()
        .collect();
    pretty_format_batches(&batches).unwrap().to_string()
}

/// Prepare `prepared`, execute it with `params`, and check that schema, rows and pinned
/// datasets equal what `Engine::query` returns for `literal`. Returns the rows.
async fn assert_same(
    e: &Arc<Engine>,
    access: &Access,
    prepared: &str,
    params: &[ScalarValue],
    literal: &str,
) -> usize {
    let p = prepare(e, access, prepared).await;
    let got = e
        .execute_prepared(&p, params, access)
        .await
        .unwrap_or_else(|err| panic!("{prepared}: {err}"));
    let want = e.query(literal, access).await.unwrap();
    assert_eq!(got.schema.fields(), want.schema.fields(), "{prepared}");
    assert_eq!(
        p.result_schema().fields(),
        want.schema.fields(),
        "{prepared}"
    );
    assert_eq!(got.datasets, want.datasets, "{prepared}");
    let got = got.collect().await.unwrap();
    for b in &got {
        assert_eq!(
            b.schema().fields(),
            p.result_schema().fields(),
            "{prepared}"
        );
    }
    let want = want.collect().await.unwrap();
    assert_eq!(table(&got), table(&want), "{prepared}");
    rows(&got)
}

#[tokio::test]
async fn key_lookups_take_the_index_path_and_other_shapes_are_planned() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = Access::Unrestricted;
    for q in [
        "SELECT * FROM people WHERE personal_code = ?",
        "SELECT * FROM people WHERE personal_code = $1",
        "select * from People where PERSONAL_CODE = $1;",
        "SELECT * FROM people WHERE ? = personal_code",
        "SELECT given_name, income FROM people WHERE personal_code = ?",
    ] {
        let p = prepare(&e, &a, q).await;
        assert!(p.is_lookup(), "{q}");
        assert_eq!(p.sql(), q);
        let params = p.parameter_schema();
        assert_eq!(params.fields().len(), 1, "{q}");
        assert_eq!(params.field(0).name(), "$1");
        assert_eq!(params.field(0).data_type(), &DataType::Utf8);
    }
    let cases = [
        (
            "SELECT * FROM people WHERE personal_code = ?",
            "SELECT * FROM people WHERE personal_code = 'P0000007'",
            true,
        ),
        (
            "select given_name, income from people where personal_code = $1;",
            "SELECT given_name, income FROM people WHERE personal_code = 'P0000007'",
            true,
        ),
        (
            "SELECT * FROM people WHERE given_name = ?",
            "SELECT * FROM people WHERE given_name = 'P0000007'",
            false,
        ),
        (
            "SELECT DISTINCT * FROM people WHERE personal_code = ?",
            "SELECT DISTINCT * FROM people WHERE personal_code = 'P0000007'",
            false,
        ),
        (
            "SELECT * FROM people WHERE personal_code = ? LIMIT 1",
            "SELECT * FROM people WHERE personal_code = 'P0000007' LIMIT 1",
            false,
        ),
        (
            "SELECT given_name AS g FROM people WHERE personal_code = ?",
            "SELECT given_name AS g FROM people WHERE personal_code = 'P0000007'",
            false,
        ),
        (
            "SELECT x.given_name, y.income FROM people x JOIN people y \
             ON x.personal_code = y.personal_code WHERE x.personal_code = ?",
            "SELECT x.given_name, y.income FROM people x JOIN people y \
             ON x.personal_code = y.personal_code WHERE x.personal_code = 'P0000007'",
            false,
        ),
    ];
    for (q, literal, lookup) in cases {
        assert_eq!(prepare(&e, &a, q).await.is_lookup(), lookup, "{q}");
        let found = assert_same(&e, &a, q, &[s("P0000007")], literal).await;
        let expected = usize::from(!q.contains("given_name = ?"));
        assert_eq!(found, expected, "{q}");
        assert_same(
            &e,
            &a,
            q,
            &[s("absent")],
            &literal.replace("P0000007", "absent"),
        )
        .await;
    }
    // A lookup of `given_name = ?` finds its row through the general path.
    let found = assert_same(
        &e,
        &a,
        "SELECT * FROM people WHERE given_name = ?",
        &[s("Name7")],
        "SELECT * FROM people WHERE given_name = 'Name7'",
    )
    .await;
    assert_eq!(found, 1);
    // A lookup reads the current snapshot at each execution.
    let p = prepare(&e, &a, "SELECT income FROM people WHERE personal_code = ?").await;
    e.load_batches("people", people(N, 2)).await.unwrap();
    let r = e.execute_prepared(&p, &[s("P0000007")], &a).await.unwrap();
    assert_eq!(r.datasets, [("people".to_owned(), 2)]);
    let out = table(&r.collect().await.unwrap());
    assert!(out.contains("| 2 "), "{out}");
}

#[tokio::test]
async fn lookups_apply_masks_and_row_scopes_like_sql() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = riga();
    let q = "SELECT * FROM people WHERE personal_code = ?";
    let p = prepare(&e, &a, q).await;
    assert!(p.is_lookup());
    let names: Vec<&str> = p
        .result_schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["personal_code", "given_name", "municipality"]);
    // Row 0 is in Rīga; row 1 is not.
    let lit = |code: &str| format!("SELECT * FROM people WHERE personal_code = '{code}'");
    assert_eq!(
        assert_same(&e, &a, q, &[s("P0000000")], &lit("P0000000")).await,
        1
    );
    assert_eq!(
        assert_same(&e, &a, q, &[s("P0000001")], &lit("P0000001")).await,
        0
    );
    let q = "SELECT municipality, given_name FROM people WHERE personal_code = ?";
    assert!(prepare(&e, &a, q).await.is_lookup());
    assert_eq!(
        assert_same(
            &e,
            &a,
            q,
            &[s("P0000003")],
            "SELECT municipality, given_name FROM people WHERE personal_code = 'P0000003'"
        )
        .await,
        1
    );

    // A forbidden column is an error naming it, on prepare as in SQL.
    let q = "SELECT income FROM people WHERE personal_code = ?";
    let err = e.prepare(q, &a).await.unwrap_err().to_string();
    let sql_err = sql(
        &e,
        &a,
        "SELECT income FROM people WHERE personal_code = 'P0000000'",
    )
    .await
    .unwrap_err();
    for err in [&err, &sql_err] {
        assert!(
            (err.starts_with("invalid query") || err.starts_with("permission denied"))
                && err.contains("income"),
            "{err}"
        );
    }

    // Cells hidden on some rows read as null, as in SQL.
    let cells = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "municipality"]),
            Grant::attributes(["given_name"]).with_row_scope("municipality = 'Rīga'"),
        ],
    )]);
    let q = "SELECT * FROM people WHERE personal_code = ?";
    assert!(prepare(&e, &cells, q).await.is_lookup());
    for code in ["P0000000", "P0000001"] {
        assert_eq!(assert_same(&e, &cells, q, &[s(code)], &lit(code)).await, 1);
    }

    // A key visible only on some rows cannot probe the others.
    let partial_key = grants(vec![(
        "people",
        vec![
            Grant::attributes(["personal_code", "given_name"])
                .with_row_scope("municipality = 'Rīga'"),
            Grant::attributes(["municipality"]),
        ],
    )]);
    let q = "SELECT municipality FROM people WHERE personal_code = ?";
    assert!(prepare(&e, &partial_key, q).await.is_lookup());
    let lit =
        |code: &str| format!("SELECT municipality FROM people WHERE personal_code = '{code}'");
    assert_eq!(
        assert_same(&e, &partial_key, q, &[s("P0000000")], &lit("P0000000")).await,
        1
    );
    assert_eq!(
        assert_same(&e, &partial_key, q, &[s("P0000001")], &lit("P0000001")).await,
        0
    );

    // Without the key granted, lookups by key are refused, naming the key.
    let no_key = grants(vec![("people", vec![Grant::attributes(["municipality"])])]);
    let err = e.prepare(q, &no_key).await.unwrap_err().to_string();
    let sql_err = sql(&e, &no_key, &lit("P0000000")).await.unwrap_err();
    let p = prepare(&e, &a, q).await;
    let exec_err = run(&e, &p, &[s("P0000000")], &no_key)
        .await
        .unwrap_err()
        .to_string();
    // ... also with a key no row can have.
    let null_err = run(&e, &p, &[ScalarValue::Utf8(None)], &no_key)
        .await
        .unwrap_err()
        .to_string();
    for err in [&err, &sql_err, &exec_err, &null_err] {
        assert!(
            (err.starts_with("invalid query") || err.starts_with("permission denied"))
                && err.contains("personal_code"),
            "{err}"
        );
    }
    // A null key matches nothing, as `= NULL` does in SQL.
    assert!(
        run(&e, &p, &[ScalarValue::Utf8(None)], &a)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn executions_apply_the_grants_of_the_moment() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = riga();
    let lookup_star = prepare(&e, &a, "SELECT * FROM people WHERE personal_code = ?").await;
    let lookup_cols = prepare(
        &e,
        &a,
        "SELECT personal_code, given_name FROM people WHERE personal_code = ?",
    )
    .await;
    let general_star = prepare(&e, &a, "SELECT * FROM people WHERE given_name = ?").await;
    let general_cols = prepare(
        &e,
        &a,
        "SELECT personal_code, given_name FROM people WHERE municipality = ?",
    )
    .await;
    assert!(lookup_star.is_lookup() && lookup_cols.is_lookup());
    assert!(!general_star.is_lookup() && !general_cols.is_lookup());
    let all = [&lookup_star, &lookup_cols, &general_star, &general_cols];

    // Revoked: access denied, naming the dataset, on both paths.
    let revoked = grants(vec![]);
    for p in all {
        let err = run(&e, p, &[s("P0000000")], &revoked).await.unwrap_err();
        assert!(
            matches!(err, Error::AccessDenied(ref d) if d == "people"),
            "{}: {err}",
            p.sql()
        );
    }

    // Narrower: a column no longer granted is an error naming it.
    let narrower = grants(vec![(
        "people",
        vec![Grant::attributes(["personal_code", "municipality"])],
    )]);
    for p in all {
        let err = run(&e, p, &[s("P0000000")], &narrower)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            (err.starts_with("invalid query") || err.starts_with("permission denied"))
                && err.contains("given_name"),
            "{}: {err}",
            p.sql()
        );
    }

    // Wider: an explicit column list still answers with its columns, but `*` would now
    // return other columns than prepared, so it asks to prepare again.
    let wider = Access::Unrestricted;
    let b = run(&e, &lookup_cols, &[s("P0000001")], &wider)
        .await
        .unwrap();
    assert_eq!(rows(&b), 1, "the row scope was lifted");
    let b = run(&e, &general_cols, &[s("Ogre")], &wider).await.unwrap();
    assert_eq!(rows(&b), N / 3);
    for p in [&lookup_star, &general_star] {
        let err = run(&e, p, &[s("P0000000")], &wider)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prepare the query again"),
            "{}: {err}",
            p.sql()
        );
    }

    // A narrower row scope applies at once.
    let p = prepare(
        &e,
        &Access::Unrestricted,
        "SELECT personal_code, given_name FROM people WHERE personal_code = ?",
    )
    .await;
    assert_eq!(rows(&run(&e, &p, &[s("P0000001")], &a).await.unwrap()), 0);
    assert_eq!(rows(&run(&e, &p, &[s("P0000000")], &a).await.unwrap()), 1);
}

#[tokio::test]
async fn parameters_are_counted_and_typed() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), N).await;
    let a = Access::Unrestricted;

    // General path with two parameters, in both placeholder styles.
    for q in [
        "SELECT personal_code, income FROM people WHERE municipality = $1 AND income > $2",
        "SELECT personal_code, income FROM people WHERE municipality = ? AND income > ?",
    ] {
        let p = prepare(&e, &a, q).await;
        assert!(!p.is_lookup());
        let params: Vec<(&str, &DataType)> = p
            .parameter_schema()
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(params, [("$1", &DataType::Utf8), ("$2", &DataType::Int64)]);
        let found = assert_same(
            &e,
            &a,
            q,
            &[s("Rīga"), ScalarValue::Int64(Some(0))],
            "SELECT personal_code, income FROM people WHERE municipality = 'Rīga' AND income > 0",
        )
        .await;
        assert_eq!(found, N / 3);
        // An integer of another width is converted.
        let b = run(&e, &p, &[s("Ogre"), ScalarValue::Int32(Some(0))], &a)
            .await
            .unwrap();
        assert_eq!(rows(&b), N / 3);
        let b = run(&e, &p, &[s("Ogre"), ScalarValue::Int64(Some(1))], &a)
            .await
            .unwrap();
        assert_eq!(rows(&b), 0);
        // Wrong count or type: errors naming the parameters.
        for params in [vec![], vec![s("Ogre")], vec![s("a"), s("b"), s("c")]] {
            let err = run(&e, &p, &params, &a).await.unwrap_err().to_string();
            assert!(
                err.starts_with("invalid query") && err.contains("2 parameter(s) ($1, $2)"),
                "{err}"
            );
        }
        let err = run(&e, &p, &[s("Ogre"), s("0")], &a)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid query") && err.contains("parameter $2 is Int64"),
            "{err}"
        );
    }

    // Lookup path: one string key parameter.
    let p = prepare(&e, &a, "SELECT * FROM people WHERE personal_code = ?").await;
    assert!(p.is_lookup());
    let err = run(&e, &p, &[], &a).await.unwrap_err().to_string();
    assert!(err.contains("1 parameter(s) ($1); 0 value(s)"), "{err}");
    let err = run(&e, &p, &[s("P0000000"), s("P0000001")], &a)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 parameter(s) ($1); 2 value(s)"), "{err}");
    let err = run(&e, &p, &[ScalarValue::Int64(Some(1))], &a)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidKey { ref reason, .. }
            if reason.contains("parameter $1") && reason.contains("personal_code")),
        "{err}"
    );
    assert_eq!(
        rows(
            &run(&e, &p, &[ScalarValue::LargeUtf8(Some(code(5)))], &a)
                .await
                .unwrap()
        ),
        1
    );

    // Placeholder styles cannot be mixed; named placeholders and gaps are refused.
    for (q, why) in [
        (
            "SELECT * FROM people WHERE municipality = ? AND income > $2",
            "mixes",
        ),
        ("SELECT * FROM people WHERE municipality = $name", "named"),
        (
            "SELECT * FROM people WHERE municipality = $2",
            "$1 is missing",
        ),
    ] {
        let err = e.prepare(q, &a).await.unwrap_err().to_string();
        assert!(err.contains(why), "{q}: {err}");
    }
}

#[tokio::test]
async fn anything_but_a_query_is_refused_as_by_query() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 10).await;
    let a = Access::Unrestricted;
    for q in [
        "DELETE FROM people WHERE personal_code = ?",
        "INSERT INTO people VALUES (?, 'y', 'z', 1, 's')",
        "UPDATE people SET income = 1 WHERE personal_code = ?",
        "CREATE TABLE t AS SELECT * FROM people WHERE personal_code = ?",
        "COPY people TO '/tmp/x.csv'",
        "PREPARE q AS SELECT * FROM people WHERE personal_code = $1",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
    ] {
        let err = e.prepare(q, &a).await.unwrap_err().to_string();
        let sql_err = sql(&e, &a, q).await.unwrap_err();
        assert!(err.starts_with("query refused"), "{q}: {err}");
        assert_eq!(err, sql_err, "{q}");
    }
    let err = e
        .prepare("SELECT * FROM nowhere WHERE personal_code = ?", &a)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nowhere"), "{err}");
}

/// Rough timing (debug build): a lookup on the index path against the same lookup planned
/// by DataFusion on each execution. Printed, not asserted:
/// `cargo test -p dagr-engine --test it prepared_timing -- --nocapture`.
#[tokio::test]
#[expect(clippy::print_stdout, reason = "the timing is for a human to read")]
async fn prepared_timing() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_people(dir.path(), 100_000).await;
    let a = riga();
    let fast = prepare(&e, &a, "SELECT * FROM people WHERE personal_code = ?").await;
    // The parentheses keep it off the lookup path; DataFusion still answers the key
    // filter from the index.
    let general = prepare(&e, &a, "SELECT * FROM people WHERE (personal_code = ?)").await;
    assert!(fast.is_lookup() && !general.is_lookup());
    const ROUNDS: usize = 200;
    let mut report = Vec::new();
    for (name, p) in [("lookup path", &fast), ("general path", &general)] {
        for i in 0..20 {
            run(&e, p, &[s(&code(i * 3))], &a).await.unwrap();
        }
        let started = Instant::now();
        for i in 0..ROUNDS {
            let b = run(&e, p, &[s(&code(i * 3))], &a).await.unwrap();
            assert_eq!(rows(&b), 1);
        }
        let per = started.elapsed() / ROUNDS as u32;
        report.push(format!("{name}: {per:?} per execute_prepared"));
    }
    println!("prepared timing (debug build): {}", report.join("; "));
}

//! Query resource limits: the shared memory pool, the result row limit, the time limit and
//! the bounds on expression depth.

use std::sync::Arc;

use crate::common::*;
use dagr_engine::{Access, Engine, EngineConfig, QueryConfig};

async fn engine_with(dir: &std::path::Path, query: QueryConfig) -> Arc<Engine> {
    let e = Engine::open_dir(
        dir,
        EngineConfig {
            keep_versions: 3,
            query,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    e.create_dataset(people_def()).await.unwrap();
    e.load_batches("people", people(100_000, 1)).await.unwrap();
    Arc::new(e)
}

#[tokio::test]
async fn a_query_over_the_memory_limit_fails_clearly_and_small_ones_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with(
        dir.path(),
        QueryConfig {
            memory_limit: 1 << 20,
            ..QueryConfig::default()
        },
    )
    .await;
    let err = sql(
        &e,
        &Access::Unrestricted,
        "SELECT * FROM people ORDER BY given_name DESC",
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("resource limit exceeded"), "{err}");
    let ok = sql_batches(&e, &Access::Unrestricted, "SELECT count(*) FROM people")
        .await
        .unwrap();
    assert_eq!(rows(&ok), 1);
}

#[tokio::test]
async fn results_over_the_row_limit_fail_instead_of_being_cut_silently() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with(
        dir.path(),
        QueryConfig {
            max_result_rows: Some(1000),
            ..QueryConfig::default()
        },
    )
    .await;
    let err = sql(
        &e,
        &Access::Unrestricted,
        "SELECT personal_code FROM people",
    )
    .await
    .unwrap_err();
    assert!(err.contains("more than 1000 rows"), "{err}");
    let ok = sql_batches(
        &e,
        &Access::Unrestricted,
        "SELECT personal_code FROM people LIMIT 1000",
    )
    .await
    .unwrap();
    assert_eq!(rows(&ok), 1000);
}

/// A runtime like the server's: worker threads with the stack `dagr serve` gives them.
fn server_like_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn deep_expressions_are_refused_by_name_and_the_deepest_accepted_one_runs() {
    let rt = server_like_runtime();
    // On a worker thread, as a request handler runs (`block_on` runs on the test's thread).
    let task = rt.spawn(async {
        let dir = tempfile::tempdir().unwrap();
        let e = engine_with(dir.path(), QueryConfig::default()).await;
        // A flat chain of 30 000 terms: before the limit, this overflowed the stack.
        let chain = format!("SELECT 1{}", "+1".repeat(30_000));
        let err = sql(&e, &Access::Unrestricted, &chain).await.unwrap_err();
        assert!(err.contains("more than 1000 operators"), "{err}");
        let ors = format!(
            "SELECT count(*) FROM people WHERE {}",
            vec!["income = 1"; 1_200].join(" OR ")
        );
        let err = sql(&e, &Access::Unrestricted, &ors).await.unwrap_err();
        assert!(err.contains("operators"), "{err}");
        // A nested type string inside arrow_cast.
        let cast = format!(
            "SELECT arrow_cast(1, '{}Int32{}')",
            "List(".repeat(10_000),
            ")".repeat(10_000)
        );
        let err = sql(&e, &Access::Unrestricted, &cast).await.unwrap_err();
        assert!(err.contains("nests brackets more than 8 levels"), "{err}");
        // Nested constructs the parser takes exponential time over are refused by depth.
        let nested = format!(
            "SELECT {}1{} FROM people",
            "CAST(".repeat(20),
            " AS BIGINT)".repeat(20)
        );
        let err = sql(&e, &Access::Unrestricted, &nested).await.unwrap_err();
        assert!(err.contains("more than 12 levels deep"), "{err}");
        let ok = format!(
            "SELECT {}1{} AS n FROM people LIMIT 1",
            "CAST(".repeat(12),
            " AS BIGINT)".repeat(12)
        );
        assert_eq!(
            rows(&sql_batches(&e, &Access::Unrestricted, &ok).await.unwrap()),
            1
        );
        // The deepest chain the default limit accepts plans and runs on the task's stack.
        let at_limit = format!(
            "SELECT 1{} AS n FROM people LIMIT 1",
            "+1".repeat(QueryConfig::default().max_operators)
        );
        let ok = sql_batches(&e, &Access::Unrestricted, &at_limit)
            .await
            .unwrap();
        assert_eq!(rows(&ok), 1);
        // The engine still answers.
        let ok = sql_batches(&e, &Access::Unrestricted, "SELECT count(*) FROM people")
            .await
            .unwrap();
        assert_eq!(rows(&ok), 1);
    });
    rt.block_on(task).unwrap();
}

#[tokio::test]
async fn a_query_over_the_time_limit_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with(
        dir.path(),
        QueryConfig {
            max_query_time: Some(std::time::Duration::from_millis(300)),
            ..QueryConfig::default()
        },
    )
    .await;
    // A join of 100 000 rows with itself on three values: billions of pairs.
    let started = std::time::Instant::now();
    let err = sql(
        &e,
        &Access::Unrestricted,
        "SELECT count(*) FROM people a JOIN people b ON a.municipality = b.municipality",
    )
    .await
    .unwrap_err();
    assert!(err.contains("ran longer than 0.3 s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // A generator: ten billion rows counted.
    let err = sql(
        &e,
        &Access::Unrestricted,
        "SELECT count(*) FROM range(10000000000)",
    )
    .await
    .unwrap_err();
    assert!(err.contains("ran longer than 0.3 s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    // Short queries still run.
    let ok = sql_batches(&e, &Access::Unrestricted, "SELECT count(*) FROM people")
        .await
        .unwrap();
    assert_eq!(rows(&ok), 1);
}

#[tokio::test]
async fn generated_rows_count_against_the_memory_pool() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with(
        dir.path(),
        QueryConfig {
            memory_limit: 8 << 20,
            ..QueryConfig::default()
        },
    )
    .await;
    for q in [
        "SELECT array_agg(value) FROM range(10000000)",
        "SELECT value FROM range(10000000) ORDER BY value DESC",
        // Not in the generator's order, so the groups are held, not streamed.
        "SELECT value * 7919 % 10000019 AS g, count(*) FROM range(10000000) GROUP BY g",
    ] {
        let err = sql(&e, &Access::Unrestricted, q).await.unwrap_err();
        assert!(err.starts_with("resource limit exceeded"), "{q}: {err}");
    }
}

#[tokio::test]
async fn functions_whose_output_outgrows_their_input_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine_with(dir.path(), QueryConfig::default()).await;
    for q in [
        "SELECT length(repeat('x', 2000000000))",
        "SELECT length(repeat(given_name, 100000)) FROM people",
        "SELECT length(lpad('x', 1000000000))",
        "SELECT length(rpad(given_name, 50000000, 'y')) FROM people",
        "SELECT length(replace(repeat('x', 1000000), 'x', repeat('y', 1000)))",
        "SELECT length(regexp_replace(repeat('x', 1000000), '', repeat('y', 1000)))",
        // (The list functions `array_repeat`, `array_resize` and scalar `range` are bounded
        // too, but this build leaves DataFusion's nested functions out.)
    ] {
        let err = sql(&e, &Access::Unrestricted, q).await.unwrap_err();
        assert!(err.starts_with("resource limit exceeded"), "{q}: {err}");
        assert!(err.contains("MiB"), "{q}: {err}");
    }
    // Within the bound they work as before.
    for (q, want) in [
        ("SELECT length(repeat('ab', 1000))", "2000"),
        ("SELECT length(lpad('x', 5))", "5"),
        ("SELECT replace('aXb', 'X', 'yy')", "ayyb"),
    ] {
        let b = sql_batches(&e, &Access::Unrestricted, q).await.unwrap();
        let text = dagr_engine::arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string();
        assert!(text.contains(want), "{q}: {text}");
    }
}

//! Query resource limits: the shared memory pool and the result row limit.

use std::sync::Arc;

use crate::common::*;
use dagr_engine::{Access, Engine, EngineConfig, QueryConfig};

async fn engine_with(dir: &std::path::Path, query: QueryConfig) -> Arc<Engine> {
    let e = Engine::open_dir(
        dir,
        EngineConfig {
            keep_versions: 3,
            query,
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

//! The engine on its own bulk runtime ([`dagr_engine::pools`]): queries, prepared queries,
//! loads and change feeds give the same answers as on the caller's runtime, errors keep
//! their kind, and a result dropped half-read stops its query.

use std::sync::Arc;

use crate::common::*;
use dagr_engine::datafusion::scalar::ScalarValue;
use dagr_engine::{Access, Engine, EngineConfig, Pools, PoolsConfig, QueryConfig};
use futures::StreamExt;

async fn engine(dir: &std::path::Path, query: QueryConfig) -> Arc<Engine> {
    let pools = Pools::start(PoolsConfig {
        bulk_threads: 1,
        load_threads: 1,
        nice: 0,
        stack_bytes: 16 << 20,
    })
    .unwrap();
    assert!(pools.is_separate());
    let e = Engine::open_dir(
        dir,
        EngineConfig {
            query,
            pools,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    e.create_dataset(people_def()).await.unwrap();
    e.load_batches("people", people(50_000, 1)).await.unwrap();
    Arc::new(e)
}

#[tokio::test]
async fn queries_and_loads_on_the_bulk_runtime_answer_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), QueryConfig::default()).await;
    let all = sql_batches(&e, &Access::Unrestricted, "SELECT * FROM people")
        .await
        .unwrap();
    assert_eq!(rows(&all), 50_000);
    let table = sql(
        &e,
        &Access::Unrestricted,
        "SELECT municipality, count(*) AS n FROM people GROUP BY municipality ORDER BY n DESC, municipality",
    )
    .await
    .unwrap();
    assert!(table.contains("| Rīga         | 16667 |"), "{table}");

    // A planning error and an execution error keep their kind and message.
    let err = sql(&e, &Access::Unrestricted, "SELECT nope FROM people")
        .await
        .unwrap_err();
    assert!(err.contains("nope"), "{err}");
    let err = sql(&e, &Access::Unrestricted, "DROP TABLE people")
        .await
        .unwrap_err();
    assert!(err.contains("not allowed"), "{err}");

    // A prepared query of the general shape runs there too.
    let p = e
        .prepare(
            "SELECT count(*) AS n FROM people WHERE municipality = $1",
            &Access::Unrestricted,
        )
        .await
        .unwrap();
    let got = e
        .execute_prepared(
            &p,
            &[ScalarValue::Utf8(Some("Ogre".into()))],
            &Access::Unrestricted,
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows(&got), 1);

    // A load (its jobs on the load pool) and the change feed (a diff on the bulk pool).
    e.load_batches("people", people(50_000, 2)).await.unwrap();
    let changes = e.changes("people", 1).await.unwrap();
    assert_eq!(changes.updated.len(), 50_000);
}

#[tokio::test]
async fn limits_fail_the_stream_and_a_dropped_result_stops_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(
        dir.path(),
        QueryConfig {
            max_result_rows: Some(1000),
            batch_size: 100,
            ..QueryConfig::default()
        },
    )
    .await;
    let err = sql(&e, &Access::Unrestricted, "SELECT * FROM people")
        .await
        .unwrap_err();
    assert!(err.contains("more than 1000 rows"), "{err}");

    // Read one batch and drop the rest: the engine serves the next query as usual.
    let mut r = e
        .query("SELECT * FROM people LIMIT 900", &Access::Unrestricted)
        .await
        .unwrap();
    let first = r.stream.next().await.unwrap().unwrap();
    assert!(first.num_rows() > 0);
    drop(r);
    let n = sql_batches(&e, &Access::Unrestricted, "SELECT count(*) FROM people")
        .await
        .unwrap();
    assert_eq!(rows(&n), 1);
}

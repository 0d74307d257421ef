//! The engine on its own bulk runtime ([`dagr_engine::pools`]): queries, prepared queries,
//! loads and change feeds give the same answers as on the caller's runtime, errors keep
//! their kind, and a result dropped half-read stops its query.

use std::sync::Arc;

use crate::common::*;
use dagr_engine::datafusion::scalar::ScalarValue;
use dagr_engine::{Access, Engine, EngineConfig, Pools, PoolsConfig, QueryConfig};
use futures::StreamExt;

/// Pools of one bulk thread and one load thread, at the process's priority.
fn one_thread_pools() -> Pools {
    let pools = Pools::start(PoolsConfig {
        bulk_threads: 1,
        load_threads: 1,
        nice: 0,
        stack_bytes: 16 << 20,
    })
    .unwrap();
    assert!(pools.is_separate());
    pools
}

async fn engine(dir: &std::path::Path, query: QueryConfig) -> Arc<Engine> {
    engine_on(dir, query, one_thread_pools()).await
}

async fn engine_on(dir: &std::path::Path, query: QueryConfig, pools: Pools) -> Arc<Engine> {
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

/// CPU time (user + system, clock ticks) of the thread `tid` of this process.
fn thread_ticks(tid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // After the command name: state is field 0, utime 11 and stime 12.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse::<u64>().unwrap())
        .sum()
}

/// A query that would compute for minutes without a row to send (a count over a cross join
/// of 50 000 rows with itself) stops on the bulk thread once its result is dropped: the
/// thread's CPU time, about 100 ticks a second while it ran, stops growing. (Back-pressure
/// alone would not stop it: it has nothing to send until it is done.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_result_stops_its_query_on_the_bulk_thread() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("no /proc: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pools = one_thread_pools();
    let probe = pools.clone();
    // The one bulk thread of this engine (other tests run engines of their own).
    let tid = pools
        .run_bulk(async { rustix::thread::gettid().as_raw_nonzero().get() })
        .await
        .unwrap();
    let bulk_ticks = || thread_ticks(tid);
    let e = engine_on(dir.path(), QueryConfig::default(), pools).await;
    let mut r = e
        .query(
            "SELECT count(*) FROM people a, people b WHERE a.personal_code <> b.personal_code",
            &Access::Unrestricted,
        )
        .await
        .unwrap();
    // It computes on the bulk thread (waited for while the result is polled).
    let before = bulk_ticks();
    let mut waited = 0;
    while bulk_ticks() <= before + 10 {
        let next = tokio::time::timeout(std::time::Duration::from_millis(100), r.stream.next());
        assert!(next.await.is_err(), "the count cannot be done this soon");
        waited += 1;
        assert!(
            waited < 600,
            "the bulk thread never showed the query's CPU time"
        );
    }
    drop(r);
    // A moment for the abort to land, then a second of nothing.
    // The one bulk worker is free again: a query still running would hold it for minutes
    // (this part does not depend on how loaded the machine is).
    let freed = tokio::time::timeout(std::time::Duration::from_secs(60), probe.run_bulk(async {}));
    assert!(
        freed.await.is_ok(),
        "the dropped query still holds the bulk thread"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stopped = bulk_ticks();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let spent = bulk_ticks() - stopped;
    assert!(
        spent <= 20,
        "the dropped query kept the bulk thread busy: {spent} ticks in a second"
    );
}

/// Describing a query (what `GetFlightInfo` does) plans it and runs nothing: the schema
/// and the personal attributes it reads come back, and the bulk thread stays idle after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describing_a_query_runs_none_of_it() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("no /proc: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pools = one_thread_pools();
    let tid = pools
        .run_bulk(async { rustix::thread::gettid().as_raw_nonzero().get() })
        .await
        .unwrap();
    let e = engine_on(dir.path(), QueryConfig::default(), pools).await;
    let (schema, reads) = e
        .describe(
            "SELECT count(*) AS n, max(a.income) AS top FROM people a, people b \
             WHERE a.personal_code <> b.personal_code",
            &Access::Unrestricted,
        )
        .await
        .unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["n", "top"]);
    // `income` is personal: a purpose is required.
    assert!(reads.require_purpose(None).is_err());
    assert!(reads.require_purpose(Some("statistics")).is_ok());
    let before = thread_ticks(tid);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let spent = thread_ticks(tid) - before;
    assert!(
        spent <= 20,
        "describing ran the query: {spent} ticks in a second"
    );
    // And the planner's refusals come back as they would from `query`.
    let err = e
        .describe("SELECT nope FROM people", &Access::Unrestricted)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

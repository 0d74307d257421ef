//! The ledger of replicas on a real PostgreSQL: engines ("nodes") sharing one snapshot
//! directory and one database commit through it, serialise their commits of a dataset, catch
//! up with each other, and collect only the files no committed version references.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dagr_admin_api::MetaStore;
use dagr_admin_api::store::SqlLedger;
use dagr_engine::ledger::Ledger;
use dagr_engine::{Engine, EngineConfig};

use crate::common::{fresh_postgres, people_def, rows};

async fn node(dir: &Path, store: &MetaStore, name: &str) -> Engine {
    let ledger = SqlLedger::new(store, name).expect("a PostgreSQL store");
    Engine::open_dir(
        dir,
        EngineConfig {
            keep_versions: 2,
            ledger: Some(Arc::new(ledger)),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Files under `dir/datasets/people`, relative to it, sorted.
fn files(dir: &Path) -> Vec<String> {
    let root = dir.join("datasets/people");
    let mut out = vec![];
    for v in std::fs::read_dir(&root).unwrap() {
        let v = v.unwrap().path();
        if v.is_dir() {
            for f in std::fs::read_dir(&v).unwrap() {
                let f = f.unwrap().path();
                out.push(f.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_commit_through_the_ledger_one_at_a_time_and_collect_only_garbage() {
    let Ok(base) = std::env::var("DAGR_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("DAGR_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "DAGR_TEST_REQUIRE_POSTGRES=1 but DAGR_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let store = MetaStore::connect(&fresh_postgres(&base).await)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let def = people_def();

    // Node 1 registers the dataset and commits version 1; node 2, opened later, has it.
    let one = node(dir.path(), &store, "one").await;
    one.create_dataset(def.clone()).await.unwrap();
    one.load_batches("people", rows(&def, 10)).await.unwrap();
    let two = node(dir.path(), &store, "two").await;
    assert_eq!(two.current("people").unwrap().version(), 1);
    assert_eq!(two.current("people").unwrap().num_rows(), 10);
    assert!(two.is_replicated());

    // Node 2 commits version 2; node 1 applies it on its next catch-up.
    two.load_batches("people", rows(&def, 20)).await.unwrap();
    assert_eq!(one.current("people").unwrap().version(), 1);
    let caught = one.catch_up().await.unwrap();
    assert_eq!(caught.applied.len(), 1, "{caught:?}");
    assert_eq!(caught.applied[0].0, "people");
    assert_eq!(caught.applied[0].1, 2);
    assert!(caught.failed.is_empty());
    assert_eq!(one.current("people").unwrap().num_rows(), 20);
    // Nothing new: nothing applied.
    assert!(one.catch_up().await.unwrap().applied.is_empty());

    // While another node holds the dataset's commit lock, a load waits; it commits after.
    let ledger = SqlLedger::new(&store, "holder").unwrap();
    let held = ledger.lock("people").await.unwrap();
    assert_eq!(held.catalog().current, 2);
    let two = Arc::new(two);
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiting = {
        let (two, finished) = (Arc::clone(&two), Arc::clone(&finished));
        let batches = rows(&def, 30);
        dagr_engine::task::SpawnedTask::spawn(async move {
            let report = two.load_batches("people", batches).await;
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            report
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !finished.load(std::sync::atomic::Ordering::SeqCst),
        "a load went past another node's commit lock"
    );
    assert_eq!(two.current("people").unwrap().version(), 2);
    drop(held);
    let report = waiting.join().await.unwrap().unwrap();
    assert_eq!(report.version, 3);

    // Node 1 commits version 4 (keeping 3 and 4): with replicas the expired versions 1 and
    // 2 stay until the garbage collection, as do a dead load's leftovers.
    one.load_batches("people", rows(&def, 40)).await.unwrap();
    assert_eq!(one.current("people").unwrap().version(), 4);
    let root = dir.path().join("datasets/people");
    std::fs::write(
        root.join("v00000000000000000004/part-00009-dead.parquet"),
        b"x",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("v00000000000000000005")).unwrap();
    std::fs::write(
        root.join("v00000000000000000005/part-00000-dead.parquet"),
        b"x",
    )
    .unwrap();
    let before = files(dir.path());
    for v in ["v00000000000000000001/", "v00000000000000000002/"] {
        assert!(before.iter().any(|f| f.starts_with(v)), "{before:?}");
    }
    // Young files are left alone.
    assert_eq!(
        one.collect_garbage(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(files(dir.path()), before);
    // Past the grace: versions 1 and 2, the stray part and the dead load's directory go;
    // every file of versions 3 and 4 named by their manifests stays.
    let deleted = two.collect_garbage(Duration::ZERO).await.unwrap();
    let after = files(dir.path());
    assert_eq!(deleted, before.len() - after.len(), "{after:?}");
    assert!(
        after
            .iter()
            .all(|f| f.starts_with("v00000000000000000003/")
                || f.starts_with("v00000000000000000004/")),
        "{after:?}"
    );
    assert!(!after.iter().any(|f| f.contains("dead")), "{after:?}");
    // What is left restores both kept versions on a fresh node.
    let three = node(dir.path(), &store, "three").await;
    assert_eq!(three.current("people").unwrap().version(), 4);
    assert_eq!(three.current("people").unwrap().num_rows(), 40);
    assert_eq!(three.snapshot_at("people", 3).await.unwrap().num_rows(), 30);
    // A single node (no ledger) refuses the store: its catalog.json files are stale there.
    let Err(err) = Engine::open_dir(dir.path(), EngineConfig::default()).await else {
        panic!("a single node opened a replicated store");
    };
    assert!(err.to_string().contains("shared by replicas"), "{err}");
    assert!(root.join("v00000000000000000004").exists());
    store.close().await;
}

//! End to end: snapshots in S3-compatible object storage (`--store s3://BUCKET/PREFIX`), on a
//! real SeaweedFS server started by `scripts/s3` (no mock of S3). The data directory then
//! holds the metadata and audit databases only.

mod common;

use std::process::Command;

use common::{Server, credentials, get};

const DEMO_ROWS: usize = 1500;

/// A store location of its own in the test bucket.
fn location(bucket: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s3://{bucket}/{name}-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_live_in_s3_and_a_restart_restores_them_from_there() {
    let Some((env, bucket)) = common::s3_env() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = location(&bucket, "restart");
    let args = ["--store", store.as_str()];

    // First start: the demo is seeded into the object store, not the data directory.
    let mut server = Server::start_with_env(&data, DEMO_ROWS, &args, &env);
    let (status, _, ready) = get(&format!("{}/api/v1/ready", server.base)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["snapshot_store"], "ok");
    assert!(!data.join("snapshots").exists());
    let creds = credentials(&data);
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    assert_eq!(common::pull_persons_rows(&server, &pmlp).await, DEMO_ROWS);

    // A second version, loaded through the connector: its parts go to the object store.
    let file = dir.path().join("persons.parquet");
    let file = file.to_str().unwrap();
    common::pull_persons_file(&server.flight, &pmlp, file);
    let loaded = common::connector_ok(&server.flight, &pmlp, &["load", "persons", file]);
    assert_eq!(loaded["committed"]["version"], 2, "{loaded}");
    server.terminate();

    // A restart reads every dataset back from the object store.
    let mut server = Server::start_with_env(&data, DEMO_ROWS, &args, &env);
    let log = server.logged();
    let restored = log
        .lines()
        .find(|l| l.contains("snapshots restored"))
        .unwrap_or_else(|| panic!("no `snapshots restored` in\n{log}"));
    assert!(restored.contains("datasets=6"), "{restored}");
    assert!(!data.join("snapshots").exists());
    let (status, _, persons) =
        common::get_auth(&format!("{}/api/v1/datasets/persons", server.base), &pmlp).await;
    assert_eq!(status, 200, "{persons}");
    assert_eq!(persons["version"], 2);
    assert_eq!(persons["rows"], DEMO_ROWS);
    assert_eq!(common::pull_persons_rows(&server, &pmlp).await, DEMO_ROWS);
    server.terminate();
}

#[test]
fn a_store_that_cannot_be_used_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (store, says) in [
        ("ftp://host/x", "the scheme `ftp` is not supported"),
        ("s3:///prefix", "names no bucket"),
        ("s3://key:secret@bucket/p", "must not carry credentials"),
        ("s3://bucket:9000/p", "no port, query or fragment"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--flight-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--store", store, "--no-demo"])
            .env_remove("DAGR_DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{store} was accepted");
        assert!(stderr.contains(says), "{store}: {stderr}");
        assert!(!stderr.contains("secret"), "{store}: {stderr}");
    }
}

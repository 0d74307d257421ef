//! End to end: the real `dagr` binary on a free loopback port, driven over HTTP.

mod common;

use std::process::Command;

use common::{Server, credentials, get, get_auth};

use dagr_engine::arrow::array::AsArray;
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
const DEMO_ROWS: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_seeds_the_demo_answers_rest_and_restarts_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, DEMO_ROWS, &[]);
    let base = server.base.clone();

    let (status, _, health) = get(&format!("{base}/api/v1/health")).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    // The catalog needs a token; the demo wrote its tokens into the data directory.
    let (status, ct, _) = get(&format!("{base}/api/v1/datasets")).await;
    assert_eq!((status, ct.as_str()), (401, "application/problem+json"));
    let creds = credentials(&data);
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    let vzd = common::system_token(&creds, "VZD", "provider");
    let (status, _, list) = get_auth(&format!("{base}/api/v1/datasets"), &pmlp).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "addresses",
            "companies",
            "map_projects",
            "officials",
            "persons",
            "real_estate"
        ]
    );
    let persons = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "persons")
        .unwrap();
    assert_eq!(persons["rows"], DEMO_ROWS);
    assert_eq!(persons["version"], 1);
    assert_eq!(persons["primary_key"], serde_json::json!(["personal_code"]));
    let code_attr = persons["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "personal_code")
        .unwrap();
    assert_eq!(code_attr["personal"], true);
    assert_eq!(code_attr["type"], "Utf8");

    // The generator is deterministic: the test knows which records the server holds.
    let demo = generate(&DemoConfig {
        persons: DEMO_ROWS,
        seed: DEFAULT_SEED,
    })
    .unwrap();
    let first = &demo
        .iter()
        .find(|d| d.definition.name == "persons")
        .unwrap()
        .batches[0];
    let code = first.column(0).as_string::<i32>().value(17).to_owned();
    let given = first.column(1).as_string::<i32>().value(17).to_owned();
    let (status, _, rec) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records/{code}"),
        &pmlp,
    )
    .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["dataset"], "persons");
    assert_eq!(rec["version"], 1);
    assert_eq!(rec["record"]["personal_code"], code.as_str());
    assert_eq!(rec["record"]["given_name"], given.as_str());

    let (status, ct, problem) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records/000000-00000"),
        &pmlp,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(problem["status"], 404);
    assert!(problem["detail"].as_str().unwrap().contains("000000-00000"));
    let (status, _, problem) =
        get_auth(&format!("{base}/api/v1/datasets/nope/records/1"), &pmlp).await;
    assert_eq!(status, 404);
    assert!(problem["detail"].as_str().unwrap().contains("`nope`"));
    let (status, _, problem) = get_auth(
        &format!("{base}/api/v1/datasets/addresses/records/not-a-number"),
        &vzd,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("integer"),
        "{problem}"
    );

    let (status, _, head) = get_auth(
        &format!("{base}/api/v1/datasets/persons/records?limit=3"),
        &pmlp,
    )
    .await;
    assert_eq!(status, 200, "{head}");
    let records = head["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0]["personal_code"],
        first.column(0).as_string::<i32>().value(0)
    );
    for bad in ["0", "5000", "abc"] {
        let (status, ct, problem) = get_auth(
            &format!("{base}/api/v1/datasets/persons/records?limit={bad}"),
            &pmlp,
        )
        .await;
        assert_eq!(
            (status, ct.as_str()),
            (400, "application/problem+json"),
            "{problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("limit"),
            "{problem}"
        );
    }

    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("DAGR"));

    server.terminate();
    assert!(server.logged().contains("demo seeded"));

    // Restart on the same directory: snapshots are restored, the demo is not regenerated.
    let mut server = Server::start(&data, DEMO_ROWS, &[]);
    assert_eq!(
        credentials(&data),
        creds,
        "a restart keeps the demo credentials"
    );
    let (_, _, list) = get_auth(&format!("{}/api/v1/datasets", server.base), &pmlp).await;
    let persons = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "persons")
        .unwrap();
    assert_eq!(persons["version"], 1);
    assert_eq!(persons["rows"], DEMO_ROWS);
    let (status, _, rec) = get_auth(
        &format!("{}/api/v1/datasets/persons/records/{code}", server.base),
        &pmlp,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rec["record"]["given_name"], given.as_str());
    let log = server.logged();
    assert!(
        log.contains("restored snapshot") && !log.contains("seeding"),
        "{log}"
    );
}

#[test]
fn demo_generate_writes_parquet_and_bad_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(["demo", "generate", "--rows", "500", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "persons",
        "companies",
        "addresses",
        "real_estate",
        "officials",
    ] {
        assert!(dir.path().join(format!("{name}.parquet")).exists());
        assert!(dir.path().join(format!("{name}.definition.json")).exists());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(["serve", "--http-addr", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-addr"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_while_seeding_recovers_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Kill -9 right after the first register is committed, while the others are loading.
    let mut server = Server::spawn(&data, 300_000, &[]);
    server.wait_for("snapshot committed");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let before = server.logged();
    drop(server);

    let mut server = Server::start(&data, DEMO_ROWS, &[]);
    let creds = credentials(&data);
    let pmlp = common::system_token(&creds, "PMLP", "provider");
    let (_, _, list) = get_auth(&format!("{}/api/v1/datasets", server.base), &pmlp).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 6, "five registers and map_projects: {list:?}");
    for d in list {
        assert_eq!(
            d["version"], 1,
            "every register is loaded exactly once: {d}"
        );
        assert!(d["rows"].as_u64().unwrap() > 0);
    }
    let persons = list.iter().find(|d| d["name"] == "persons").unwrap();
    let committed_before = before.matches("snapshot committed").count();
    assert!(committed_before >= 1, "{before}");
    let log = server.logged();
    assert!(log.contains("demo seeded"), "{log}");
    if committed_before < 5 {
        assert!(log.contains("seeding the demo registers"), "{log}");
    }
    // The resumed seeding used the size the first start asked for.
    assert_eq!(persons["rows"], 300_000);
}

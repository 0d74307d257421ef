//! End to end: the real `dagr` binary on a free loopback port, driven over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dagr_engine::arrow::array::AsArray;
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
use serde_json::Value;

const DEMO_ROWS: usize = 3000;

/// A running `dagr serve`; killed on drop if still running.
struct Server {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
    history: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start `dagr serve` without waiting for it.
    fn spawn(data_dir: &std::path::Path, demo_rows: usize) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dagr"))
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--flight-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--demo-rows", &demo_rows.to_string()])
            .env("NO_COLOR", "1")
            .env("DAGR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dagr");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            base: String::new(),
            log: rx,
            history: Vec::new(),
        }
    }

    /// Wait (at most two minutes) for a log line containing `needle`, and return it.
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let Ok(line) = self.log.recv_timeout(Duration::from_secs(120)) else {
                panic!(
                    "dagr never logged `{needle}`; log:\n{}",
                    self.history.join("\n")
                );
            };
            self.history.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Start `dagr serve` and wait until it listens.
    fn start(data_dir: &std::path::Path) -> Server {
        let mut server = Server::spawn(data_dir, DEMO_ROWS);
        let line = server.wait_for("DAGR listening");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .expect("http= in the listening line")
            .to_owned();
        server.base = format!("http://{addr}");
        server
    }

    /// Everything logged so far.
    fn logged(&mut self) -> String {
        self.history.extend(self.log.try_iter());
        self.history.join("\n")
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(s.success(), "dagr exited with {s}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dagr did not stop within 15 s of SIGTERM");
    }
}

async fn get(url: &str) -> (u16, String, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_seeds_the_demo_answers_rest_and_restarts_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let base = server.base.clone();

    let (status, _, health) = get(&format!("{base}/api/v1/health")).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    let (status, _, list) = get(&format!("{base}/api/v1/datasets")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["addresses", "companies", "persons", "real_estate"]);
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
    let (status, _, rec) = get(&format!("{base}/api/v1/datasets/persons/records/{code}")).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["dataset"], "persons");
    assert_eq!(rec["version"], 1);
    assert_eq!(rec["record"]["personal_code"], code.as_str());
    assert_eq!(rec["record"]["given_name"], given.as_str());

    let (status, ct, problem) = get(&format!(
        "{base}/api/v1/datasets/persons/records/000000-00000"
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(problem["status"], 404);
    assert!(problem["detail"].as_str().unwrap().contains("000000-00000"));
    let (status, _, problem) = get(&format!("{base}/api/v1/datasets/nope/records/1")).await;
    assert_eq!(status, 404);
    assert!(problem["detail"].as_str().unwrap().contains("`nope`"));
    let (status, _, problem) = get(&format!(
        "{base}/api/v1/datasets/addresses/records/not-a-number"
    ))
    .await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("integer"),
        "{problem}"
    );

    let (status, _, head) = get(&format!("{base}/api/v1/datasets/persons/records?limit=3")).await;
    assert_eq!(status, 200, "{head}");
    let records = head["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0]["personal_code"],
        first.column(0).as_string::<i32>().value(0)
    );
    for bad in ["0", "5000", "abc"] {
        let (status, ct, problem) = get(&format!(
            "{base}/api/v1/datasets/persons/records?limit={bad}"
        ))
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
    let mut server = Server::start(&data);
    let (_, _, list) = get(&format!("{}/api/v1/datasets", server.base)).await;
    let persons = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "persons")
        .unwrap();
    assert_eq!(persons["version"], 1);
    assert_eq!(persons["rows"], DEMO_ROWS);
    let (status, _, rec) = get(&format!(
        "{}/api/v1/datasets/persons/records/{code}",
        server.base
    ))
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
    for name in ["persons", "companies", "addresses", "real_estate"] {
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
    let mut server = Server::spawn(&data, 300_000);
    server.wait_for("snapshot committed");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let before = server.logged();
    drop(server);

    let mut server = Server::start(&data);
    let (_, _, list) = get(&format!("{}/api/v1/datasets", server.base)).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4, "{list:?}");
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
    if committed_before < 4 {
        assert!(log.contains("seeding the demo registers"), "{log}");
    }
    // The resumed seeding used the size the first start asked for.
    assert_eq!(persons["rows"], 300_000);
}

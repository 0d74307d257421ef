//! Shared helpers of the end-to-end tests: the real `dagr` binary on a free loopback port.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod metrics;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// Every batch of the first endpoint of a Flight SQL `FlightInfo`.
pub async fn sql_fetch(
    sql: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    info: &arrow_flight::FlightInfo,
) -> Vec<dagr_engine::arrow::array::RecordBatch> {
    use futures::TryStreamExt;
    sql.do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// A running `dagr serve`; killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The Flight endpoint, `http://127.0.0.1:PORT`.
    pub flight: String,
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
    pub fn spawn(data_dir: &std::path::Path, demo_rows: usize, extra: &[&str]) -> Server {
        Server::spawn_with_env(data_dir, demo_rows, extra, &[])
    }

    /// Start `dagr serve` with more environment variables, without waiting for it.
    pub fn spawn_with_env(
        data_dir: &std::path::Path,
        demo_rows: usize,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Server {
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
            .args(extra)
            // A developer's own settings must not leak into the server under test.
            .env_remove("DAGR_DATABASE_URL")
            .env_remove("DAGR_NO_DEMO")
            .env("NO_COLOR", "1")
            .env("DAGR_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
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
            flight: String::new(),
            log: rx,
            history: Vec::new(),
        }
    }

    /// Wait (at most two minutes) for a log line containing `needle`, and return it.
    pub fn wait_for(&mut self, needle: &str) -> String {
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
    pub fn start(data_dir: &std::path::Path, demo_rows: usize, extra: &[&str]) -> Server {
        Server::start_with_env(data_dir, demo_rows, extra, &[])
    }

    /// Start `dagr serve` with more environment variables and wait until it listens.
    pub fn start_with_env(
        data_dir: &std::path::Path,
        demo_rows: usize,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Server {
        let mut server = Server::spawn_with_env(data_dir, demo_rows, extra, env);
        let line = server.wait_for("DAGR listening");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .expect("http= in the listening line")
            .to_owned();
        server.base = format!("http://{addr}");
        if let Some(flight) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("flight="))
        {
            server.flight = format!("http://{flight}");
        }
        server
    }

    /// Everything logged so far.
    pub fn logged(&mut self) -> String {
        self.history.extend(self.log.try_iter());
        self.history.join("\n")
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) {
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

pub async fn get(url: &str) -> (u16, String, Value) {
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

/// The purpose the tests declare for reads of personal data.
pub const PURPOSE: &str = "end-to-end test";

/// GET with a bearer token and the test purpose: (status, content type, JSON body or null).
pub async fn get_auth(url: &str, token: &str) -> (u16, String, Value) {
    send(
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .header("x-dagr-purpose", PURPOSE),
    )
    .await
}

/// POST JSON with a bearer token: (status, content type, JSON body or null).
pub async fn post_auth(url: &str, token: &str, body: &Value) -> (u16, String, Value) {
    send(
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(body),
    )
    .await
}

/// Send a request: (status, content type, JSON body or null).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, String, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

/// The demo credentials a server wrote into its data directory.
pub fn credentials(data_dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("demo-credentials.json"))
        .expect("demo-credentials.json in the data directory");
    serde_json::from_str(&text).expect("demo-credentials.json is JSON")
}

/// The token of the first demo system of `organisation` with `role` (`consumer`/`provider`).
pub fn system_token(creds: &Value, organisation: &str, role: &str) -> String {
    creds["systems"]
        .as_array()
        .expect("systems in the credentials")
        .iter()
        .find(|s| s["organisation"] == organisation && s["role"] == role)
        .and_then(|s| s["token"].as_str())
        .unwrap_or_else(|| panic!("no {role} system of {organisation} in the demo credentials"))
        .to_owned()
}

/// A connected channel to `server`'s Flight endpoint.
pub async fn flight_channel(server: &Server) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(server.flight.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A Flight client of `server` with a bearer token and, when given, a declared purpose.
pub async fn flight_client(
    server: &Server,
    token: &str,
    purpose: Option<&str>,
) -> arrow_flight::FlightClient {
    let mut c = arrow_flight::FlightClient::new(flight_channel(server).await);
    c.add_header("authorization", &format!("Bearer {token}"))
        .unwrap();
    if let Some(p) = purpose {
        c.add_header("x-dagr-purpose", p).unwrap();
    }
    c
}

/// Make every insert into the usage audit log's tables of `dir` fail, through a second
/// connection to its SQLite database (a damaged database, as the server sees it). The commit
/// point is the commit log beside it: the server withholds personal data from the first
/// failed write of its tables on, so the first audited read after this may still be served.
pub async fn break_audit_log(dir: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("audit.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!tables.is_empty(), "audit tables exist");
    for (t,) in tables {
        sqlx::query(&format!(
            "CREATE TRIGGER fail_{t} BEFORE INSERT ON \"{t}\" BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
}

/// `dagr admin create-user` on a server's data directory (the only way to make a person of
/// an organisation: the API's admins may create admins only). Panics when it fails.
pub fn create_user(
    data_dir: &std::path::Path,
    login: &str,
    name: &str,
    organisation: &str,
    role: &str,
    password: &str,
) -> Value {
    const VAR: &str = "DAGR_TEST_NEW_USER_PASSWORD";
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .arg("admin")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "create-user",
            "--login",
            login,
            "--name",
            name,
            "--organisation",
            organisation,
            "--role",
            role,
            "--password-env",
            VAR,
        ])
        .env_remove("DAGR_DATABASE_URL")
        .env("NO_COLOR", "1")
        .env(VAR, password)
        .stdin(Stdio::null())
        .output()
        .expect("run dagr admin create-user");
    assert!(
        out.status.success(),
        "dagr admin create-user failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("create-user prints the user as JSON")
}

/// Give Rīga's consumer system a second agreement on `persons`: the key and the
/// municipality on every row, beside its first one (more attributes, Rīga's rows only).
/// Then a row outside Rīga is visible with some of its cells hidden.
pub async fn second_riga_agreement(server: &Server, creds: &Value) -> String {
    let base = &server.base;
    let riga = system_token(creds, "RIGA", "consumer");
    let owner = system_token(creds, "PMLP", "provider");
    let (_, _, me) = get_auth(&format!("{base}/api/v1/me"), &riga).await;
    let system: i64 = me["system"].as_str().unwrap().parse().unwrap();
    let (status, _, req) = post_auth(
        &format!("{base}/api/v1/requests"),
        &riga,
        &json!({
            "dataset": "persons", "attributes": ["personal_code", "municipality"],
            "purpose": "adrešu statistika", "legal_basis": "test",
            "systems": [system], "valid_to": "2030-01-01",
        }),
    )
    .await;
    assert_eq!(status, 201, "{req}");
    let (status, _, agreement) = post_auth(
        &format!("{base}/api/v1/requests/{}/approve", req["id"]),
        &owner,
        &json!({"attributes": ["personal_code", "municipality"]}),
    )
    .await;
    assert_eq!(status, 200, "{agreement}");
    riga
}

/// A fresh, empty database on the test PostgreSQL server (`DAGR_TEST_POSTGRES_URL`), for a
/// server of its own; `None` when no server is configured (refused when
/// `DAGR_TEST_REQUIRE_POSTGRES=1`, as `scripts/test` sets).
pub async fn fresh_postgres() -> Option<String> {
    let Some(base) = std::env::var("DAGR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("DAGR_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "DAGR_TEST_REQUIRE_POSTGRES=1 but DAGR_TEST_POSTGRES_URL is not set"
        );
        eprintln!("DAGR_TEST_POSTGRES_URL not set: the PostgreSQL variant is not run");
        return None;
    };
    sqlx::any::install_default_drivers();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("dagr_e2e_{}_{nanos}", std::process::id());
    let pool = sqlx::AnyPool::connect(&base)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

/// The strings of a JSON array (an access record's attributes or agreements), as a set;
/// empty for anything else.
pub fn json_strings(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The CSV export of the access records of `persons` that `token` (its owner) may see.
pub async fn persons_usage_csv(base: &str, token: &str) -> String {
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/usage/records?dataset=persons&format=csv"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Where the tests' Python virtualenv is cached between runs; `scripts/test` prepares the
/// same one.
pub const VENV_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/python-env");

/// The virtualenv's python from `scripts/python-env`, or `None` (test skipped) when it cannot be
/// made and Python is not required.
pub fn python_env(test: &str) -> Option<std::path::PathBuf> {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/python-env"))
        .arg(VENV_DIR)
        .output()
        .expect("run scripts/python-env");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = stdout.lines().last().map(str::trim).unwrap_or_default();
    if out.status.success() && !python.is_empty() {
        return Some(std::path::PathBuf::from(python));
    }
    let why = format!(
        "scripts/python-env {VENV_DIR} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::env::var("DAGR_TEST_REQUIRE_PYTHON").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("skipping {test} (set DAGR_TEST_REQUIRE_PYTHON=1 to fail instead): {why}");
    None
}

/// The environment of the test S3-compatible server (`scripts/s3 start` writes it to a file
/// whose path `DAGR_TEST_S3_ENV` names): `AWS_*` variables and the bucket. `None` when no
/// server is configured (refused when `DAGR_TEST_REQUIRE_S3=1`, as `scripts/test` sets).
pub fn s3_env() -> Option<(Vec<(String, String)>, String)> {
    let Some(file) = std::env::var("DAGR_TEST_S3_ENV")
        .ok()
        .filter(|f| !f.is_empty())
    else {
        assert!(
            std::env::var("DAGR_TEST_REQUIRE_S3").as_deref() != Ok("1"),
            "DAGR_TEST_REQUIRE_S3=1 but DAGR_TEST_S3_ENV is not set"
        );
        eprintln!(
            "DAGR_TEST_S3_ENV not set (scripts/s3 start DIR writes DIR/env): the S3 tests are not run"
        );
        return None;
    };
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut bucket = String::new();
    let mut env = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k == "DAGR_TEST_S3_BUCKET" {
            bucket = v.to_owned();
        } else {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    assert!(!bucket.is_empty(), "no DAGR_TEST_S3_BUCKET in {file}");
    Some((env, bucket))
}

/// Rows of the whole `persons` register a Flight `DoGet` of `token` (with the test purpose)
/// returns.
pub async fn pull_persons_rows(server: &Server, token: &str) -> usize {
    use futures::TryStreamExt;
    let mut c = flight_client(server, token, Some(PURPOSE)).await;
    let batches: Vec<_> = c
        .do_get(arrow_flight::Ticket::new(r#"{"dataset": "persons"}"#))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

/// A throw-away certificate authority and a server certificate for 127.0.0.1 and localhost
/// it signs, made with openssl (part of the base system) in `dir`: the paths of the CA's
/// certificate, the server's certificate and its key (PEM).
pub fn test_ca(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    // A throw-away CA and a server certificate for 127.0.0.1 it signs (openssl is part of the
    // base system).
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-days", "2", "-subj", "/CN=DAGR test CA"],
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (ca, cert, key)
}

/// Run the connector, `dagr ARGS --server FLIGHT --token TOKEN --quiet` (none of the
/// caller's own `DAGR_*` settings): whether it succeeded, its JSON report (`null` when it
/// printed none) and its stderr.
pub fn connector(flight: &str, token: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(args)
        .args(["--server", flight, "--token", token, "--quiet"])
        .env_remove("DAGR_SERVER")
        .env_remove("DAGR_TOKEN")
        .env_remove("DAGR_PURPOSE")
        .output()
        .expect("run dagr");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`connector`], which must succeed: its JSON report.
pub fn connector_ok(flight: &str, token: &str, args: &[&str]) -> Value {
    let (ok, report, stderr) = connector(flight, token, args);
    assert!(ok, "dagr {args:?} failed: {stderr}");
    report
}

/// Pull the whole `persons` register through the connector into the Parquet file `out`, as
/// `token` with the test purpose (a file to load again).
pub fn pull_persons_file(flight: &str, token: &str, out: &str) {
    connector_ok(
        flight,
        token,
        &["pull", "persons", "--out", out, "--purpose", PURPOSE],
    );
}

//! End to end: `dagr admin` on a fresh data directory, then the real server on it accepting
//! (and refusing) the tokens the CLI made, including one made while the server runs.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, get_auth};
use serde_json::Value;

const PASSWORD_VAR: &str = "DAGR_ADMIN_CLI_TEST_PASSWORD";
const PASSWORD: &str = "correct horse battery staple";

/// `dagr admin --data-dir DATA ARGS...` with `stdin` (nothing when `None`).
fn admin_with(data: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dagr"));
    cmd.arg("admin")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("DAGR_DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("DAGR_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("start dagr admin");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("run dagr admin")
}

fn admin(data: &Path, args: &[&str]) -> Output {
    admin_with(data, args, None, &[])
}

/// The JSON a successful command printed.
fn ok(out: Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dagr admin failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// The stderr of a command that must fail, and nothing on stdout.
fn fails(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "dagr admin should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "a failure printed a result");
    stderr
}

fn id(v: &Value) -> String {
    v["id"].as_i64().expect("an id").to_string()
}

/// Poll `GET {base}/api/v1/me` with `token` every 50 ms until it answers `status`, for at
/// most two seconds; returns the last answer.
async fn me_until(base: &str, token: &str, status: u16) -> (u16, String, Value) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let answer = get_auth(&format!("{base}/api/v1/me"), token).await;
        if answer.0 == status || Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_bootstraps_the_store_and_the_server_honours_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // ---- offline: bootstrap the store ----------------------------------------------------
    let admin_token = ok(admin(
        &data,
        &["create-admin-token", "--label", "bootstrap"],
    ));
    let admin_secret = admin_token["token"].as_str().unwrap().to_owned();
    assert!(admin_secret.starts_with("dagr_"), "{admin_token}");
    assert!(admin_token["id"].is_i64(), "{admin_token}");

    let org = ok(admin(
        &data,
        &[
            "create-organisation",
            "--code",
            "ACME",
            "--name",
            "Acme Ltd",
        ],
    ));
    assert_eq!(org["code"], "ACME");
    assert_eq!(org["name"], "Acme Ltd");

    let system = ok(admin(
        &data,
        &[
            "create-system",
            "--organisation",
            "ACME",
            "--name",
            "reader",
            "--kind",
            "consumer",
            "--description",
            "reads registers",
        ],
    ));
    assert_eq!(system["organisation"], "ACME");
    assert_eq!(system["kind"], "consumer");
    let sys = id(&system);

    let live = ok(admin(
        &data,
        &["create-token", "--system", &sys, "--label", "live"],
    ));
    let doomed = ok(admin(
        &data,
        &[
            "create-token",
            "--system",
            &sys,
            "--label",
            "doomed",
            "--expires-at",
            "2999-12-31",
        ],
    ));
    for t in [&live, &doomed] {
        assert!(t["token"].as_str().unwrap().starts_with("dagr_"), "{t}");
        assert_eq!(t["system"].as_i64().unwrap().to_string(), sys);
    }
    assert!(
        doomed["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("3000-01-01T00:00:00"),
        "a plain date is the end of that day: {doomed}"
    );
    let live_secret = live["token"].as_str().unwrap().to_owned();
    let doomed_secret = doomed["token"].as_str().unwrap().to_owned();

    let user = admin_with(
        &data,
        &[
            "create-user",
            "--login",
            "alice@acme",
            "--name",
            "Alice",
            "--role",
            "consumer",
            "--organisation",
            "ACME",
            "--password-env",
            PASSWORD_VAR,
        ],
        None,
        &[(PASSWORD_VAR, PASSWORD)],
    );
    assert!(!String::from_utf8_lossy(&user.stdout).contains(PASSWORD));
    assert!(!String::from_utf8_lossy(&user.stderr).contains(PASSWORD));
    let user = ok(user);
    assert_eq!(user["login"], "alice@acme");
    assert_eq!(user["role"], "consumer");
    assert_eq!(user["organisation"], "ACME");

    let bob = ok(admin_with(
        &data,
        &[
            "create-user",
            "--login",
            "bob",
            "--name",
            "Bob",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
        &[],
    ));
    assert_eq!(bob["role"], "admin");
    assert_eq!(bob["organisation"], Value::Null);

    // ---- lists ---------------------------------------------------------------------------
    let orgs = ok(admin(&data, &["list-organisations"]));
    let codes: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ACME"]);

    let systems = ok(admin(&data, &["list-systems", "--organisation", "ACME"]));
    assert_eq!(systems.as_array().unwrap().len(), 1, "{systems}");
    assert_eq!(systems[0]["name"], "reader");
    assert_eq!(ok(admin(&data, &["list-systems"])), systems);

    let tokens = ok(admin(&data, &["list-tokens", "--system", &sys]));
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|t| t["revoked_at"].is_null()));
    assert!(
        tokens.iter().all(|t| t.get("token").is_none()),
        "lists never show secrets"
    );

    // ---- refusals ------------------------------------------------------------------------
    let err = fails(admin(
        &data,
        &["create-organisation", "--code", "ACME", "--name", "Again"],
    ));
    assert!(
        err.contains("organisation `ACME` already exists"),
        "stderr: {err}"
    );

    let err = fails(admin(
        &data,
        &[
            "create-system",
            "--organisation",
            "ACME",
            "--name",
            "x",
            "--kind",
            "reader",
        ],
    ));
    assert!(
        err.contains("invalid value 'reader'") && err.contains("consumer"),
        "stderr: {err}"
    );

    let err = fails(admin(
        &data,
        &[
            "create-user",
            "--login",
            "carol",
            "--name",
            "Carol",
            "--role",
            "admin",
        ],
    ));
    assert!(
        err.contains("--password-env") && err.contains("--password-stdin"),
        "stderr: {err}"
    );

    let err = fails(admin(
        &data,
        &[
            "create-user",
            "--login",
            "carol",
            "--name",
            "Carol",
            "--role",
            "admin",
            "--password-env",
            "DAGR_ADMIN_CLI_TEST_UNSET",
        ],
    ));
    assert!(err.contains("DAGR_ADMIN_CLI_TEST_UNSET"), "stderr: {err}");

    let err = fails(admin(&data, &["list-tokens", "--system", "999999"]));
    assert!(err.contains("system 999999 not found"), "stderr: {err}");

    // ---- revocation ----------------------------------------------------------------------
    let revoked = ok(admin(
        &data,
        &["revoke-token", "--id", &id(&doomed), "--reason", "leaked"],
    ));
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let err = fails(admin(&data, &["revoke-token", "--id", &id(&doomed)]));
    assert!(err.contains("already revoked"), "stderr: {err}");

    let tokens = ok(admin(&data, &["list-tokens", "--system", &sys]));
    for t in tokens.as_array().unwrap() {
        let is_doomed = t["id"] == doomed["id"];
        assert_eq!(t["revoked_at"].is_string(), is_doomed, "{t}");
    }

    // ---- the server honours what the CLI wrote ------------------------------------------
    let server = Server::start(&data, 1000, &["--no-demo"]);
    let base = server.base.clone();
    let me = format!("{base}/api/v1/me");

    let (status, _, body) = get_auth(&me, &admin_secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "admin");

    let (status, _, body) = get_auth(&me, &live_secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "consumer");
    assert_eq!(body["organisation"], "ACME");

    let (status, content_type, body) = get_auth(&me, &doomed_secret).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );

    // A token made while the server runs works within the refresh interval ...
    let late = ok(admin(
        &data,
        &["create-token", "--system", &sys, "--label", "late"],
    ));
    let late_secret = late["token"].as_str().unwrap();
    let (status, _, body) = me_until(&base, late_secret, 200).await;
    assert_eq!(
        status, 200,
        "the server did not accept a new token within 2 s: {body}"
    );
    assert_eq!(body["role"], "consumer");

    // ... and one revoked while it runs stops working as quickly.
    ok(admin(&data, &["revoke-token", "--id", &id(&live)]));
    let (status, content_type, body) = me_until(&base, &live_secret, 401).await;
    assert_eq!(
        status, 401,
        "the server still accepts a revoked token: {body}"
    );
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    drop(server);
}

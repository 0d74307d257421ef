//! What the end-to-end benches share: the real `dagr serve` started on loopback ports with
//! the embedded demo, and latency percentiles. Each bench includes it with
//! `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The server process, killed when dropped.
pub(crate) struct Serve(pub(crate) Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo's persons: `DAGR_BENCH_PERSONS`, else `default`.
pub(crate) fn persons(default: usize) -> usize {
    std::env::var("DAGR_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Start `dagr serve` on `data` with `persons` demo persons and `extra` arguments; the
/// server and its `http://` address once it listens.
pub(crate) fn start_server(data: &Path, persons: usize, extra: &[&str]) -> (Serve, String) {
    let (serve, http, _) = start_server_addrs(data, persons, extra);
    (serve, http)
}

/// [`start_server`], with both addresses: `http://` of the REST API and `http://` of Flight.
pub(crate) fn start_server_addrs(
    data: &Path,
    persons: usize,
    extra: &[&str],
) -> (Serve, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--flight-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(["--demo-rows", &persons.to_string()])
        .args(extra)
        .env("DAGR_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("DAGR_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dagr serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = loop {
        let line = lines
            .next()
            .expect("dagr serve exited before listening")
            .expect("read the log");
        if line.contains("DAGR listening") {
            break line;
        }
    };
    let addr = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|a| format!("http://{a}"))
            .unwrap_or_else(|| panic!("{key} in the listening line"))
    };
    let (http, flight) = (addr("http="), addr("flight="));
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Serve(child), http, flight)
}

/// The demo's credentials in `data`.
pub(crate) fn credentials(data: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(data.join("demo-credentials.json"))
        .expect("demo-credentials.json in the data directory");
    serde_json::from_str(&text).expect("demo-credentials.json is JSON")
}

/// Nearest-rank percentile of sorted latencies.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A REST client of the bench: each call names the bench as its purpose.
pub(crate) struct Api {
    /// `http://…` of the server.
    pub(crate) base: String,
    /// The client.
    pub(crate) http: reqwest::Client,
    /// The `X-DAGR-Purpose` of every call.
    pub(crate) purpose: &'static str,
}

impl Api {
    /// Call `method path` with `token` and an optional JSON body; panics unless it
    /// succeeds, returning the JSON answer.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "PATCH" => self.http.patch(url),
            "PUT" => self.http.put(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token)
        .header("x-dagr-purpose", self.purpose);
        let req = match body {
            Some(b) => req.json(b),
            None => req,
        };
        let r = req.send().await.expect("request");
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }
}

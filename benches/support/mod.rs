//! What the end-to-end benches share: the real `dagr serve` started on loopback ports with
//! the embedded demo, and latency percentiles. Each bench includes it with
//! `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code)]

pub(crate) mod services;

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
    let (serve, http, flight, _) = start_server_env(data, persons, extra, &[]);
    (serve, http, flight)
}

/// [`start_server_addrs`] with more environment variables; also the lines the server logged
/// before it listened.
pub(crate) fn start_server_env(
    data: &Path,
    persons: usize,
    extra: &[&str],
    env: &[(String, String)],
) -> (Serve, String, String, Vec<String>) {
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
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dagr serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut before = Vec::new();
    let line = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("dagr serve exited before listening:\n{}", before.join("\n")))
            .expect("read the log");
        if line.contains("DAGR listening") {
            break line;
        }
        before.push(line);
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
    (Serve(child), http, flight, before)
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

// ---- shared by the lookup benches (access times) ---------------------------------------------

/// Client HTTP/2 windows for Flight, as NOTES.md recommends (16 / 32 MiB).
pub(crate) const FLIGHT_STREAM_WINDOW: u32 = 16 << 20;
/// See [`FLIGHT_STREAM_WINDOW`].
pub(crate) const FLIGHT_CONNECTION_WINDOW: u32 = 32 << 20;
/// Largest Flight message the bench clients accept.
pub(crate) const FLIGHT_MAX_DECODING: usize = 256 << 20;

/// The machine's cores (what `std::thread::available_parallelism` reports; 1 if unknown).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// An environment knob: `name` parsed (`_` allowed as a digit separator), else `default`.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// SplitMix64: a small deterministic generator, so that runs pick the same keys.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A Flight channel to `addr` (`http://host:port`) with `TCP_NODELAY` and the 16 / 32 MiB
/// HTTP/2 windows.
pub(crate) async fn flight_channel(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(addr.to_owned())
        .expect("a Flight address")
        .tcp_nodelay(true)
        .initial_stream_window_size(FLIGHT_STREAM_WINDOW)
        .initial_connection_window_size(FLIGHT_CONNECTION_WINDOW)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to Flight at {addr}: {e}"))
}

/// A plain Flight client of `addr` sending `token` as bearer and `purpose` as
/// `x-dagr-purpose` on every call.
pub(crate) async fn flight_client(
    addr: &str,
    token: &str,
    purpose: &str,
) -> arrow_flight::FlightClient {
    let inner =
        arrow_flight::flight_service_client::FlightServiceClient::new(flight_channel(addr).await)
            .max_decoding_message_size(FLIGHT_MAX_DECODING);
    let mut c = arrow_flight::FlightClient::new_from_inner(inner);
    c.add_header("authorization", &format!("Bearer {token}"))
        .expect("authorization header");
    c.add_header("x-dagr-purpose", purpose)
        .expect("purpose header");
    c
}

/// One plain-Flight point lookup: `DoGet` of the JSON ticket
/// `{"dataset": dataset, "keys": [key]}`, every batch decoded; the rows returned.
pub(crate) async fn json_ticket_lookup(
    client: &mut arrow_flight::FlightClient,
    dataset: &str,
    key: &str,
) -> Result<usize, arrow_flight::error::FlightError> {
    use futures::TryStreamExt;
    let ticket = arrow_flight::Ticket::new(
        serde_json::json!({ "dataset": dataset, "keys": [key] }).to_string(),
    );
    let batches: Vec<arrow::array::RecordBatch> =
        client.do_get(ticket).await?.try_collect().await?;
    Ok(batches
        .iter()
        .map(arrow::array::RecordBatch::num_rows)
        .sum())
}

/// CPU time (user + system, seconds) from `/proc/{pid}/stat`: the process's own and that of
/// its children it has waited for. `None` when the process is gone or not on Linux.
pub(crate) fn proc_cpu(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: the fields that follow start after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11) // state (field 3) ... cmajflt (field 13)
        .take(4) // utime, stime, cutime, cstime (fields 14-17)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // Linux reports these in USER_HZ, which is 100 on every architecture it exports to
    // user space.
    let hz = 100.0;
    (f.len() == 4).then(|| ((f[0] + f[1]) / hz, (f[2] + f[3]) / hz))
}

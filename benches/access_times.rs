//! Access-times benchmarks of issue 18 (a harness of its own, not criterion). Run:
//! `scripts/bench-tools` once (installs `wrk` and ROAPI), then
//! `cargo bench --bench access_times`.
//!
//! Environment:
//! - `DAGR_BENCH_PERSONS`: persons in the demo (default 1 000 000);
//! - `DAGR_BENCH_SECONDS`: length of each timed phase (default 10);
//! - `DAGR_BENCH_ROUNDS`: interleaved rounds of each audit on / off comparison, the better
//!   round of each side kept (default 2);
//! - `DAGR_BENCH_LOAD_ROWS`: rows of the load that runs beside the lookups (default 1 000 000);
//! - `DAGR_BENCH_SERVE_ARGS`: extra arguments of `dagr serve` (e.g. quota limits);
//! - `DAGR_WRK`, `DAGR_ROAPI`: the tools' paths (else `PATH`, and `target/python-env/bin`
//!   for ROAPI).
//!
//! The real `dagr serve` runs as a process of its own (the embedded demo, SQLite metadata and
//! audit log in a temporary directory), so the CPU time of the bench process is the client's.
//! The bench adds, as the PMLP provider system over the real API: `persons_open`, the same
//! persons with the attributes the BANKA consumer reads of `persons`, none of them personal;
//! an agreement of BANKA for it; and `bench_load`, the target of the load.
//!
//! **Audit off** is `persons_open` on the same server, read by the same token: the same rows,
//! columns, key index, mask and encoding, without the access record (a read of no personal
//! attribute writes none) — `dagr serve` has no switch that turns the audit off, and must not.
//!
//! Figures (a markdown table each on stdout, with the core count and the CPU time of the
//! client and of the server of every phase; progress on stderr):
//! 1. `fdatasync` of the disk the audit log is on: 4 KiB appended and `File::sync_data`, in a
//!    loop; p50 is the baseline of figure 2.
//! 2. One client: Flight JSON `keys` ticket and REST `GET .../records/{key}` of a person,
//!    audit on and off, interleaved; whether p50 on ≤ p50 off + the `fdatasync` p50 + 0.1 ms.
//! 3. 16 Flight clients (JSON ticket), and `wrk -t2 -c50` on the REST lookup
//!    (`benches/wrk/lookup.lua`): lookups/s on / off (target ≥ 0.85×), p99 (target < 5 ms).
//! 4. Lookup p99 (1, 2, 4 Flight clients) idle, then while 2 bulk `DoGet`s of the whole
//!    `persons` loop and `dagr load` of `DAGR_BENCH_LOAD_ROWS` rows into `bench_load` loops:
//!    busy / idle (target ≤ 1.5×).
//! 5. REST lookups without audit (`persons_open`), `wrk -t1 -c50`, against ROAPI's key-value
//!    endpoint over the same Parquet file in the same run: lookups/s and p99, DAGR / ROAPI.
//! 6. Access records committed per second by the audit writer alone (in this process, the
//!    real `AuditStore` on SQLite in the same temporary directory), 50 and 1000 concurrent
//!    one-record commits, with the writer's group sizes.
//!
//! Nothing is asserted on times; a lookup that fails or does not return its one row fails
//! the bench.

#![allow(clippy::print_stdout, missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take;
use dagr_engine::audit::{AuditContext, Channel, SubjectRows};
use dagr_engine::demo::{DemoConfig, DemoDataset, generate, write_parquet};
use dagr_engine::{
    AccessRecord, AuditSink, DatasetDefinition, Engine, EngineConfig, Principal, Role, Snapshot,
};
use roaring::RoaringBitmap;
use serde_json::{Value, json};
use support::{Api, Serve, SplitMix, cores, env_or, ms, percentile, proc_cpu};
use tokio::sync::{Barrier, watch};
use tokio::task::JoinSet;

/// The purpose every read declares.
const PURPOSE: &str = "access-times benchmark";
/// The audit-off copy of `persons`.
const OPEN: &str = "persons_open";
/// The dataset the background load writes.
const LOAD_TARGET: &str = "bench_load";
/// Untimed lookups per client before a phase.
const WARMUP: usize = 20;
/// Keys the lookups pick from (at most the persons).
const MAX_KEYS: usize = 100_000;
/// Concurrent Flight clients of figure 3.
const FLIGHT_CLIENTS: usize = 16;
/// Concurrent lookup clients of figure 4.
const BUSY_CLIENTS: [usize; 3] = [1, 2, 4];
/// Concurrent committers of figure 6.
const WRITERS: [usize; 2] = [50, 1000];
/// Longest a `wrk` run may take beyond its duration.
const WRK_GRACE: Duration = Duration::from_secs(60);

// ---- knobs ----------------------------------------------------------------------------------

/// The bench's settings, from the environment.
struct Knobs {
    persons: usize,
    secs: f64,
    rounds: usize,
    load_rows: usize,
    serve_args: Vec<String>,
}

fn knobs() -> Knobs {
    let persons = support::persons(1_000_000);
    assert!(
        (1000..=50_000_000).contains(&persons),
        "DAGR_BENCH_PERSONS must be 1000..=50000000"
    );
    let secs: f64 = env_or("DAGR_BENCH_SECONDS", 10.0);
    assert!(
        (1.0..=600.0).contains(&secs),
        "DAGR_BENCH_SECONDS must be 1..=600"
    );
    let rounds: usize = env_or("DAGR_BENCH_ROUNDS", 2);
    assert!(
        (1..=10).contains(&rounds),
        "DAGR_BENCH_ROUNDS must be 1..=10"
    );
    let load_rows: usize = env_or("DAGR_BENCH_LOAD_ROWS", 1_000_000);
    assert!(
        (1000..=50_000_000).contains(&load_rows),
        "DAGR_BENCH_LOAD_ROWS must be 1000..=50000000"
    );
    let serve_args = std::env::var("DAGR_BENCH_SERVE_ARGS")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Knobs {
        persons,
        secs,
        rounds,
        load_rows,
        serve_args,
    }
}

/// A tool: `env` if set (it must exist), else `name` on `PATH`, else the first of `extra`
/// that exists.
fn find_tool(env: &str, name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env}={} is not a file", p.display());
        return Some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(extra.iter().cloned())
        .find(|p| p.is_file())
}

// ---- CPU time and latency summaries ---------------------------------------------------------

/// Wall and CPU seconds of a phase: the bench process with the children it waited for
/// (`wrk`, `dagr load`) — the client — and the server process.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    wall: f64,
    client: f64,
    server: f64,
}

/// The start of a phase.
struct Mark {
    at: Instant,
    client: f64,
    server: f64,
    server_pid: String,
}

fn client_cpu() -> f64 {
    proc_cpu("self").map_or(0.0, |(own, children)| own + children)
}

fn server_cpu(pid: &str) -> f64 {
    proc_cpu(pid).map_or(0.0, |(own, _)| own)
}

impl Mark {
    fn new(server_pid: u32) -> Mark {
        let server_pid = server_pid.to_string();
        Mark {
            at: Instant::now(),
            client: client_cpu(),
            server: server_cpu(&server_pid),
            server_pid,
        }
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            wall: self.at.elapsed().as_secs_f64(),
            client: client_cpu() - self.client,
            server: server_cpu(&self.server_pid) - self.server,
        }
    }
}

/// One measured phase of lookups.
#[derive(Debug, Clone, Copy, Default)]
struct Lat {
    lookups: usize,
    p50: Duration,
    p99: Duration,
    per_sec: f64,
    /// Non-2xx answers and socket errors (`wrk` only; other clients fail the bench).
    failed: usize,
    cpu: Cpu,
}

fn summarise(mut latencies: Vec<Duration>, cpu: Cpu) -> Lat {
    assert!(!latencies.is_empty(), "a phase made no lookup");
    latencies.sort_unstable();
    Lat {
        lookups: latencies.len(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_sec: latencies.len() as f64 / cpu.wall,
        failed: 0,
        cpu,
    }
}

/// `client CPU s (% of wall) | server CPU s`.
fn cpu_cells(c: &Cpu) -> String {
    format!(
        "{:.1} s ({:.0} %) | {:.1} s",
        c.client,
        100.0 * c.client / c.wall.max(1e-9),
        c.server
    )
}

// ---- the server and its data ----------------------------------------------------------------

/// The running `dagr serve`, its addresses and the tokens and data the bench uses.
struct Dagr {
    serve: Serve,
    http: String,
    flight: String,
    /// BANKA's system that looks persons up.
    lookup_token: String,
    /// BANKA's other system (the bulk reader; the lookup one if BANKA has one system).
    bulk_token: String,
    /// PMLP's provider system (owner of `persons`, `persons_open`, `bench_load`).
    owner_token: String,
}

impl Dagr {
    fn pid(&self) -> u32 {
        self.serve.0.id()
    }
}

/// The token of system `id` in the demo credentials.
fn system_token(creds: &Value, id: i64) -> String {
    creds["systems"]
        .as_array()
        .expect("systems in the demo credentials")
        .iter()
        .find(|s| s["system_id"].as_i64() == Some(id))
        .and_then(|s| s["token"].as_str())
        .unwrap_or_else(|| panic!("a token of system {id}"))
        .to_owned()
}

/// BANKA's agreement on `persons` (no row scope): its systems and attributes.
fn banka_persons_agreement(creds: &Value) -> (Vec<i64>, Vec<String>) {
    let a = creds["agreements"]
        .as_array()
        .expect("agreements in the demo credentials")
        .iter()
        .find(|a| {
            a["consumer_organisation"] == "BANKA"
                && a["dataset"] == "persons"
                && a["row_scope"].is_null()
        })
        .expect("BANKA's agreement on persons in the demo");
    let systems = a["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    let attributes = a["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (systems, attributes)
}

/// `persons` restricted to `attributes` (the definition's order), renamed `name`, no
/// attribute personal.
fn open_copy(persons: &DemoDataset, attributes: &[String], name: &str) -> DemoDataset {
    let mut definition: DatasetDefinition = persons.definition.clone();
    definition.name = name.to_owned();
    definition.description = format!(
        "{} (bench copy, no personal attribute)",
        persons.definition.name
    );
    definition
        .attributes
        .retain(|a| attributes.contains(&a.name));
    for a in &mut definition.attributes {
        a.personal = false;
        a.subject = None;
    }
    let schema = definition.arrow_schema();
    let batches = persons
        .batches
        .iter()
        .map(|b| {
            let columns: Vec<ArrayRef> = definition
                .attributes
                .iter()
                .map(|a| {
                    Arc::clone(
                        b.column_by_name(&a.name)
                            .unwrap_or_else(|| panic!("column {} in persons", a.name)),
                    )
                })
                .collect();
            RecordBatch::try_new(Arc::clone(&schema), columns).expect("projected batch")
        })
        .collect();
    DemoDataset {
        definition,
        batches,
    }
}

/// `rows` rows shaped like `open` (its values repeated) with fresh unique keys, named `name`.
fn load_copy(open: &DemoDataset, rows: usize, name: &str) -> DemoDataset {
    let mut definition = open.definition.clone();
    definition.name = name.to_owned();
    let source = arrow::compute::concat_batches(&open.batches[0].schema(), &open.batches)
        .expect("persons in one batch");
    let n = source.num_rows();
    let key = definition.primary_key[0].clone();
    let mut batches = Vec::new();
    for start in (0..rows).step_by(65_536) {
        let end = (start + 65_536).min(rows);
        let idx = UInt32Array::from_iter_values((start..end).map(|i| (i % n) as u32));
        let columns: Vec<ArrayRef> = source
            .schema()
            .fields()
            .iter()
            .zip(source.columns())
            .map(|(f, c)| {
                if *f.name() == key {
                    Arc::new(StringArray::from_iter_values(
                        (start..end).map(|i| format!("B{i:011}")),
                    )) as ArrayRef
                } else {
                    take(c.as_ref(), &idx, None).expect("take")
                }
            })
            .collect();
        batches.push(RecordBatch::try_new(source.schema(), columns).expect("load batch"));
    }
    DemoDataset {
        definition,
        batches,
    }
}

/// `dagr load dataset file` into the server as the owner; its wall time.
fn dagr_load(flight: &str, token: &str, dataset: &str, file: &Path) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(["load", dataset])
        .arg(file)
        .args(["--server", flight, "--token", token, "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run dagr load");
    assert!(
        out.status.success(),
        "dagr load {dataset} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// What the figures run on.
struct Fixture {
    dagr: Dagr,
    /// The keys lookups pick from (of `persons` and `persons_open` alike).
    keys: Arc<Vec<String>>,
    /// `persons_open` as Parquet (what ROAPI serves).
    open_file: PathBuf,
    /// `bench_load` as Parquet (what the background load loads).
    load_file: PathBuf,
    /// How long the first load of `bench_load` took, nothing else running.
    idle_load: Duration,
    /// `persons` in an engine of this process, for the writer's records.
    subjects: Arc<Snapshot>,
}

/// Start the server, register and load `persons_open` and `bench_load`, give BANKA an
/// agreement on `persons_open`.
async fn setup(k: &Knobs, dir: &Path) -> Fixture {
    let persons_n = k.persons;
    eprintln!("access times: generating {persons_n} persons (as the demo does) ...");
    let generated = std::thread::spawn(move || {
        generate(&DemoConfig {
            persons: persons_n,
            ..DemoConfig::default()
        })
        .expect("demo data")
        .into_iter()
        .find(|d| d.definition.name == "persons")
        .expect("persons in the demo")
    });
    eprintln!("access times: starting dagr serve with the demo ...");
    let data = dir.join("server");
    // 16 lookup clients share a token, and a stream's slot is given back just after its last
    // message: raise the per-token stream cap (default 16) so that no lookup is refused.
    let mut extra: Vec<String> = ["--keep-versions", "1", "--max-streams-per-token", "64"]
        .map(str::to_owned)
        .to_vec();
    extra.extend(k.serve_args.iter().cloned());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (serve, http, flight) = support::start_server_addrs(&data, k.persons, &extra);
    let persons = generated.join().expect("the generator");
    let creds = support::credentials(&data);
    let (systems, attributes) = banka_persons_agreement(&creds);
    let owner_id = creds["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .find(|s| s["organisation"] == "PMLP" && s["role"] == "provider")
        .and_then(|s| s["system_id"].as_i64())
        .expect("PMLP's provider system");
    let dagr = Dagr {
        lookup_token: system_token(&creds, systems[0]),
        bulk_token: system_token(&creds, *systems.get(1).unwrap_or(&systems[0])),
        owner_token: system_token(&creds, owner_id),
        serve,
        http,
        flight,
    };

    // The audit-off copy and the load, as Parquet files.
    let files = dir.join("files");
    let open = open_copy(&persons, &attributes, OPEN);
    let load = load_copy(&open, k.load_rows, LOAD_TARGET);
    let keys = sample_keys(&open, MAX_KEYS.min(k.persons));
    write_parquet(&[open, load], &files).expect("write the Parquet files");
    let open_file = files.join(format!("{OPEN}.parquet"));
    let load_file = files.join(format!("{LOAD_TARGET}.parquet"));

    let api = Api {
        base: dagr.http.clone(),
        http: reqwest::Client::new(),
        purpose: PURPOSE,
    };
    let mut idle_load = Duration::ZERO;
    for (name, file) in [(OPEN, &open_file), (LOAD_TARGET, &load_file)] {
        let definition: Value = serde_json::from_slice(
            &std::fs::read(files.join(format!("{name}.definition.json"))).expect("definition"),
        )
        .expect("definition JSON");
        api.call(
            "POST",
            "/api/v1/datasets",
            &dagr.owner_token,
            Some(&json!({ "definition": definition, "provider_systems": [owner_id] })),
        )
        .await;
        let (flight, token, file) = (dagr.flight.clone(), dagr.owner_token.clone(), file.clone());
        let took = tokio::task::spawn_blocking(move || dagr_load(&flight, &token, name, &file))
            .await
            .expect("dagr load");
        eprintln!("loaded {name} in {:.1} s", took.as_secs_f64());
        idle_load = took;
    }
    // A year from now (agreements run at most ten years).
    let valid_to = (chrono::Utc::now() + chrono::Days::new(365))
        .format("%Y-%m-%d")
        .to_string();
    let request = api
        .call(
            "POST",
            "/api/v1/requests",
            &dagr.lookup_token,
            Some(&json!({
                "dataset": OPEN, "attributes": attributes, "purpose": PURPOSE,
                "legal_basis": "benchmark", "systems": systems, "valid_to": valid_to,
            })),
        )
        .await;
    let id = request["id"].as_i64().expect("request id");
    api.call(
        "POST",
        &format!("/api/v1/requests/{id}/approve"),
        &dagr.owner_token,
        Some(&json!({})),
    )
    .await;
    // The agreement is in force within a second on every path.
    let probe = format!("{}/api/v1/datasets/{OPEN}/records/{}", dagr.http, keys[0]);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api
            .http
            .get(&probe)
            .bearer_auth(&dagr.lookup_token)
            .send()
            .await
            .expect("probe");
        if r.status().is_success() {
            break;
        }
        assert!(
            Instant::now() < until,
            "BANKA cannot read {OPEN} 30 s after the agreement: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let subjects = subjects_snapshot(&dir.join("writer-engine"), &persons).await;
    Fixture {
        dagr,
        keys: Arc::new(keys),
        open_file,
        load_file,
        idle_load,
        subjects,
    }
}

/// `count` keys of `open`, picked by a fixed SplitMix64 sequence.
fn sample_keys(open: &DemoDataset, count: usize) -> Vec<String> {
    let key = &open.definition.primary_key[0];
    let columns: Vec<&StringArray> = open
        .batches
        .iter()
        .map(|b| {
            b.column_by_name(key)
                .expect("key column")
                .as_string_opt::<i32>()
                .expect("a Utf8 key")
        })
        .collect();
    let total: usize = columns.iter().map(|c| c.len()).sum();
    let mut rng = SplitMix(0x5EED_F11E);
    (0..count)
        .map(|_| {
            let mut r = rng.below(total);
            let mut i = 0;
            while r >= columns[i].len() {
                r -= columns[i].len();
                i += 1;
            }
            columns[i].value(r).to_owned()
        })
        .collect()
}

// ---- lookups --------------------------------------------------------------------------------

/// `clients` Flight clients, each with its own channel, looking up random `keys` of
/// `dataset` by JSON ticket for `secs` after a warm-up.
async fn flight_lookups(
    d: &Dagr,
    token: &str,
    dataset: &str,
    clients: usize,
    secs: f64,
    keys: &Arc<Vec<String>>,
) -> Lat {
    let start = Arc::new(Barrier::new(clients + 1));
    let mut tasks = JoinSet::new();
    for c in 0..clients {
        let (addr, token, dataset) = (d.flight.clone(), token.to_owned(), dataset.to_owned());
        let (keys, start) = (Arc::clone(keys), Arc::clone(&start));
        tasks.spawn(async move {
            let mut client = support::flight_client(&addr, &token, PURPOSE).await;
            let mut rng = SplitMix(0xF11E_0000 + c as u64);
            let one = async |client: &mut arrow_flight::FlightClient, key: &str| {
                let rows = support::json_ticket_lookup(client, &dataset, key)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("Flight lookup of {key} in {dataset} failed: {e} (refused by a quota? see DAGR_BENCH_SERVE_ARGS)")
                    });
                assert_eq!(rows, 1, "the lookup of {key} in {dataset} returns its row");
            };
            for _ in 0..WARMUP {
                one(&mut client, &keys[rng.below(keys.len())]).await;
            }
            start.wait().await;
            let deadline = Instant::now() + Duration::from_secs_f64(secs);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let key = &keys[rng.below(keys.len())];
                let t = Instant::now();
                one(&mut client, key).await;
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    start.wait().await;
    let mark = Mark::new(d.pid());
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r.expect("a lookup client"));
    }
    summarise(latencies, mark.cpu())
}

/// One REST client looking up random `keys` of `dataset` one after another for `secs`.
async fn rest_lookups(d: &Dagr, dataset: &str, secs: f64, keys: &[String]) -> Lat {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client");
    let mut rng = SplitMix(0x8E57);
    let one = async |key: &str| {
        let r = http
            .get(format!(
                "{}/api/v1/datasets/{dataset}/records/{key}",
                d.http
            ))
            .bearer_auth(&d.lookup_token)
            .header("x-dagr-purpose", PURPOSE)
            .send()
            .await
            .expect("REST lookup");
        let status = r.status();
        let body = r.bytes().await.expect("REST answer");
        assert!(
            status.is_success(),
            "REST lookup of {key} in {dataset}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    };
    for _ in 0..WARMUP {
        one(&keys[rng.below(keys.len())]).await;
    }
    let mark = Mark::new(d.pid());
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let key = &keys[rng.below(keys.len())];
        let t = Instant::now();
        one(key).await;
        latencies.push(t.elapsed());
    }
    summarise(latencies, mark.cpu())
}

/// `wrk -t threads -c conns` for `secs` with `benches/wrk/lookup.lua`: `GET base + prefix +
/// key` for random keys of `keys_file`, with `token` (if any) and the purpose.
#[allow(clippy::too_many_arguments)]
async fn wrk_lookups(
    wrk: &Path,
    base: &str,
    prefix: &str,
    token: &str,
    threads: usize,
    conns: usize,
    secs: f64,
    keys_file: &Path,
    server_pid: u32,
) -> Lat {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wrk/lookup.lua");
    let mut cmd = Command::new(wrk);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", secs.ceil() as u64))
        .args(["--timeout", "5s", "-s"])
        .arg(&script)
        .arg(base)
        .arg("--")
        .arg(keys_file)
        .args([token, PURPOSE, prefix])
        .stdin(Stdio::null());
    let mark = Mark::new(server_pid);
    let limit = Duration::from_secs_f64(secs) + WRK_GRACE;
    let out = tokio::time::timeout(limit, tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .unwrap_or_else(|_| panic!("wrk ran longer than {limit:?}"))
        .expect("wrk's thread")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", wrk.display()));
    let cpu = mark.cpu();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("WRK_RESULT "))
        .unwrap_or_else(|| panic!("no WRK_RESULT line in wrk's output: {stdout}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    let requests = field("requests");
    let duration = field("duration_us") as f64 / 1e6;
    let failed =
        (field("non2xx") + field("connect") + field("read") + field("write") + field("timeout"))
            as usize;
    if failed > 0 {
        // wrk does not say why: ask once more the same way and show the answer.
        let key = std::fs::read_to_string(keys_file)
            .ok()
            .and_then(|k| k.lines().next().map(str::to_owned))
            .unwrap_or_default();
        let mut probe = reqwest::Client::new().get(format!("{base}{prefix}{key}"));
        if !token.is_empty() {
            probe = probe.bearer_auth(token).header("x-dagr-purpose", PURPOSE);
        }
        let answer = match probe.send().await {
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        eprintln!(
            "wrk: {failed} of {requests} answers failed ({base}{prefix}...); a probe now: {answer}"
        );
    }
    Lat {
        lookups: requests as usize,
        p50: Duration::from_micros(field("p50_us")),
        p99: Duration::from_micros(field("p99_us")),
        per_sec: requests as f64 / duration.max(1e-9),
        failed,
        cpu,
    }
}

// ---- figure 1: fdatasync ----------------------------------------------------------------------

/// 4 KiB appended and `sync_data`, for up to 2 s or 2000 times, in `dir`; sorted latencies.
fn fdatasync_latencies(dir: &Path) -> Vec<Duration> {
    let path = dir.join("fdatasync.probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let block = [0x5Au8; 4096];
    let until = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    while out.len() < 2000 && Instant::now() < until {
        let t = Instant::now();
        file.write_all(&block).expect("write 4 KiB");
        file.sync_data().expect("fdatasync");
        out.push(t.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    out.sort_unstable();
    out
}

// ---- figure 4: bulk work beside the lookups ---------------------------------------------------

/// One whole `DoGet` of `dataset`, read raw (bytes counted, rows from the IPC headers).
async fn drain_dataset(addr: &str, token: &str, dataset: &str) -> (usize, usize) {
    let mut client = support::flight_client(addr, token, PURPOSE).await;
    let ticket = arrow_flight::Ticket::new(json!({ "dataset": dataset }).to_string());
    let mut request = tonic::Request::new(ticket);
    *request.metadata_mut() = client.metadata().clone();
    let mut stream = client
        .inner_mut()
        .do_get(request)
        .await
        .unwrap_or_else(|e| panic!("bulk DoGet of {dataset}: {e}"))
        .into_inner();
    let (mut rows, mut bytes) = (0, 0);
    while let Some(data) = stream
        .message()
        .await
        .unwrap_or_else(|e| panic!("bulk DoGet of {dataset}: {e}"))
    {
        bytes += data.data_header.len() + data.data_body.len();
        rows += arrow::ipc::root_as_message(&data.data_header)
            .ok()
            .and_then(|m| m.header_as_record_batch())
            .map_or(0, |b| b.length() as usize);
    }
    (rows, bytes)
}

/// What ran beside the busy lookups.
#[derive(Debug, Default)]
struct Background {
    streams: usize,
    stream_rows: usize,
    loads: Vec<Duration>,
}

/// Start 2 bulk `DoGet` loops of `persons` and a loop of loads; stop them by sending `true`.
fn start_background(d: &Dagr, load_file: &Path, stop: &watch::Sender<bool>) -> JoinSet<Background> {
    let mut tasks = JoinSet::new();
    for _ in 0..2 {
        let (addr, token) = (d.flight.clone(), d.bulk_token.clone());
        let mut stopped = stop.subscribe();
        tasks.spawn(async move {
            let mut done = Background::default();
            while !*stopped.borrow() {
                tokio::select! {
                    (rows, _) = drain_dataset(&addr, &token, "persons") => {
                        done.streams += 1;
                        done.stream_rows += rows;
                    }
                    _ = stopped.changed() => break,
                }
            }
            done
        });
    }
    let (flight, token, file) = (
        d.flight.clone(),
        d.owner_token.clone(),
        load_file.to_owned(),
    );
    let stopped = stop.subscribe();
    tasks.spawn(async move {
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        let loads = tokio::task::spawn_blocking(move || {
            let mut loads = Vec::new();
            while !f.load(Ordering::Relaxed) {
                loads.push(dagr_load(&flight, &token, LOAD_TARGET, &file));
            }
            loads
        });
        let mut stopped = stopped;
        // Until told to stop (or the sender is gone).
        while !*stopped.borrow() {
            if stopped.changed().await.is_err() {
                break;
            }
        }
        flag.store(true, Ordering::Relaxed);
        Background {
            loads: loads.await.expect("the load loop"),
            ..Background::default()
        }
    });
    tasks
}

// ---- figure 5: ROAPI --------------------------------------------------------------------------

/// ROAPI serving `parquet` as the key-value store `OPEN` (key: the primary key, value:
/// `value`); the process and its `http://` address, or why it could not start.
fn start_roapi(
    bin: &Path,
    dir: &Path,
    parquet: &Path,
    key: &str,
    value: &str,
) -> Result<(Serve, String), String> {
    let config = dir.join("roapi.yml");
    // Port 0 everywhere: ROAPI's Postgres and Flight SQL defaults are fixed ports.
    let yaml = format!(
        "addr:\n  http: 127.0.0.1:0\n  postgres: 127.0.0.1:0\n  flight_sql: 127.0.0.1:0\ntables: []\nkvstores:\n  - name: {OPEN}\n    uri: \"{}\"\n    key: {key}\n    value: {value}\n",
        parquet.display()
    );
    std::fs::write(&config, yaml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let serve = Serve(child);
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            return Err(format!(
                "ROAPI exited before listening: {}",
                seen.join(" / ")
            ));
        };
        if let Some(at) = line
            .split_once("Listening on ")
            .and_then(|(_, rest)| rest.strip_suffix(" for HTTP traffic..."))
        {
            break format!("http://{at}");
        }
        if seen.len() < 20 {
            seen.push(line);
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Ok((serve, addr))
}

// ---- figure 6: the audit writer alone ---------------------------------------------------------

/// `persons` in an engine of this process: the snapshot access records point into.
async fn subjects_snapshot(dir: &Path, persons: &DemoDataset) -> Arc<Snapshot> {
    let engine = Engine::open_dir(dir, EngineConfig::default())
        .await
        .expect("writer engine");
    engine
        .create_dataset(persons.definition.clone())
        .await
        .expect("define persons");
    engine
        .load_batches("persons", persons.batches.clone())
        .await
        .expect("load persons");
    engine.current("persons").expect("persons loaded")
}

fn access_record(snapshot: &Arc<Snapshot>, row: u32, org: usize) -> AccessRecord {
    AccessRecord {
        time: chrono::Utc::now(),
        context: Arc::new(AuditContext {
            principal: Principal {
                role: Role::Consumer,
                organisation: Some(format!("ORG{org}")),
                system: Some(format!("{}", org * 10)),
                subject: None,
                user: None,
                token_id: Some(format!("{}", org * 100)),
            },
            purpose: Some(PURPOSE.into()),
            channel: Channel::Rest,
            request_id: format!("{row:032x}"),
            query: "GET /api/v1/datasets/persons/records/...".into(),
        }),
        dataset: "persons".into(),
        version: snapshot.version(),
        attributes: vec!["personal_code".into(), "given_name".into()],
        agreements: vec![format!("{org}")],
        subjects: SubjectRows {
            snapshot: Arc::clone(snapshot),
            rows: [row].into_iter().collect::<RoaringBitmap>(),
            columns: vec![0],
        },
    }
}

/// What the writer did in a phase.
struct WriterRun {
    writers: usize,
    records: u64,
    per_sec: f64,
    groups: u64,
    mean_group: f64,
    largest_group: u64,
    /// Mean time the writer took per group, the sync included.
    group_time: Duration,
    cpu: Cpu,
}

/// `writers` tasks each committing one record at a time for `secs`.
async fn writer_alone(
    store: &dagr_admin_api::audit::AuditStore,
    snapshot: &Arc<Snapshot>,
    writers: usize,
    secs: f64,
) -> WriterRun {
    let before = store.writer_stats();
    let mark = Mark::new(std::process::id());
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = JoinSet::new();
    for w in 0..writers {
        let (store, snapshot) = (store.clone(), Arc::clone(snapshot));
        tasks.spawn(async move {
            let mut rng = SplitMix(0xA0D1 + w as u64);
            let mut done = 0u64;
            while Instant::now() < deadline {
                let row = rng.below(snapshot.num_rows()) as u32;
                store
                    .commit(vec![access_record(&snapshot, row, w % 8)])
                    .await
                    .expect("commit an access record");
                done += 1;
            }
            done
        });
    }
    let mut records = 0;
    while let Some(r) = tasks.join_next().await {
        records += r.expect("a committer");
    }
    let mut cpu = mark.cpu();
    // In this process: the client is the writer's only user; there is no server process.
    cpu.server = 0.0;
    let after = store.writer_stats();
    let groups = after.groups - before.groups;
    WriterRun {
        writers,
        records,
        per_sec: records as f64 / cpu.wall,
        groups,
        mean_group: (after.records - before.records) as f64 / groups.max(1) as f64,
        largest_group: after.largest_group,
        group_time: (after.write_time - before.write_time)
            / u32::try_from(groups.max(1)).unwrap_or(u32::MAX),
        cpu,
    }
}

// ---- the run ----------------------------------------------------------------------------------

/// The better of `rounds` interleaved runs of `off` and `on` each (by `better`).
async fn interleaved<F>(rounds: usize, better: fn(&Lat, &Lat) -> bool, mut run: F) -> (Lat, Lat)
where
    F: AsyncFnMut(bool) -> Lat,
{
    let (mut off, mut on): (Option<Lat>, Option<Lat>) = (None, None);
    for _ in 0..rounds {
        for audit in [false, true] {
            let l = run(audit).await;
            let slot = if audit { &mut on } else { &mut off };
            if slot.as_ref().is_none_or(|b| better(&l, b)) {
                *slot = Some(l);
            }
        }
    }
    (off.expect("measured"), on.expect("measured"))
}

fn lower_p50(a: &Lat, b: &Lat) -> bool {
    a.p50 < b.p50
}

/// Fewer failed answers first, then more lookups/s.
fn higher_rate(a: &Lat, b: &Lat) -> bool {
    (a.failed, -a.per_sec) < (b.failed, -b.per_sec)
}

fn yes(b: bool) -> &'static str {
    if b { "yes ✔" } else { "no ✘" }
}

/// [`yes`], unless answers failed in the compared runs (then the comparison means nothing).
fn checked(valid: bool, b: bool) -> &'static str {
    if valid {
        yes(b)
    } else {
        "invalid: answers failed"
    }
}

/// What the figures share.
struct Ctx {
    k: Knobs,
    cores: usize,
    /// The temporary directory (the server's data, the files, the audit log).
    dir: PathBuf,
    wrk: Option<PathBuf>,
    roapi: Option<PathBuf>,
    /// `keys`, one a line, for `wrk`.
    keys_file: PathBuf,
}

/// Print a figure's lines as soon as it is measured.
fn print(out: Vec<String>) {
    for line in out {
        println!("{line}");
    }
}

/// Figure 1; the `fdatasync` p50.
fn figure_1(c: &Ctx) -> Duration {
    let cores = c.cores;
    let mut out = Vec::new();
    // 1. fdatasync of the disk the audit log is on.
    eprintln!("1. fdatasync in {} ...", &c.dir.display());
    let syncs = fdatasync_latencies(&c.dir);
    let fsync_p50 = percentile(&syncs, 0.5);
    out.push("### 1. `fdatasync` of the audit log's disk (4 KiB appended + `sync_data`)\n".into());
    out.push("| syncs | p50 | p99 | cores |".into());
    out.push("| --- | --- | --- | --- |".into());
    out.push(format!(
        "| {} | {:.3} ms | {:.3} ms | {cores} |\n",
        syncs.len(),
        ms(fsync_p50),
        ms(percentile(&syncs, 0.99))
    ));

    print(out);
    fsync_p50
}

/// Figure 2.
async fn figure_2(c: &Ctx, d: &Dagr, keys: &Arc<Vec<String>>, fsync_p50: Duration) {
    let (k, cores, secs) = (&c.k, c.cores, c.k.secs);
    let mut out = Vec::new();
    // 2. One client, audit on and off.
    out.push("### 2. One client, lookup of a person: audit on (`persons`) vs off (`persons_open`), better p50 of the rounds\n".into());
    out.push(
        "| path | audit | lookups | p50 | p99 | lookups/s | client CPU | server CPU | cores |"
            .into(),
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- |".into());
    let mut verdicts = Vec::new();
    for path in ["Flight JSON `keys` ticket", "REST `GET .../records/{key}`"] {
        eprintln!("2. one client, {path}, audit off / on ...");
        let (off, on) = interleaved(k.rounds, lower_p50, async |audit| {
            let dataset = if audit { "persons" } else { OPEN };
            if path.starts_with("Flight") {
                flight_lookups(d, &d.lookup_token, dataset, 1, secs, keys).await
            } else {
                rest_lookups(d, dataset, secs, keys).await
            }
        })
        .await;
        for (audit, l) in [("off", &off), ("on", &on)] {
            out.push(format!(
                "| {path} | {audit} | {} | {:.3} ms | {:.3} ms | {:.0} | {} | {cores} |",
                l.lookups,
                ms(l.p50),
                ms(l.p99),
                l.per_sec,
                cpu_cells(&l.cpu)
            ));
        }
        let bound = off.p50 + fsync_p50 + Duration::from_micros(100);
        verdicts.push(format!(
            "| {path} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {} |",
            ms(on.p50),
            ms(off.p50),
            ms(fsync_p50),
            ms(bound),
            yes(on.p50 <= bound)
        ));
    }
    out.push(String::new());
    out.push(
        "| path | p50 on | p50 off | fdatasync p50 | off + fdatasync + 0.1 ms | on ≤ bound |"
            .into(),
    );
    out.push("| --- | --- | --- | --- | --- | --- |".into());
    out.extend(verdicts);
    out.push(String::new());

    print(out);
}

/// Figure 3.
async fn figure_3(c: &Ctx, d: &Dagr, keys: &Arc<Vec<String>>) {
    let (k, cores, secs, keys_file) = (&c.k, c.cores, c.k.secs, &c.keys_file);
    let mut out = Vec::new();
    // 3. Throughput: 16 Flight clients, wrk -t2 -c50.
    out.push("### 3. Throughput, audit on vs off (better lookups/s of the rounds)\n".into());
    out.push("| load | audit | lookups | lookups/s | p50 | p99 | failed | client CPU | server CPU | cores |".into());
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".into());
    let mut ratios = Vec::new();
    eprintln!("3. {FLIGHT_CLIENTS} Flight clients, audit off / on ...");
    let (off, on) = interleaved(k.rounds, higher_rate, async |audit| {
        let dataset = if audit { "persons" } else { OPEN };
        flight_lookups(d, &d.lookup_token, dataset, FLIGHT_CLIENTS, secs, keys).await
    })
    .await;
    let mut throughput = vec![(
        format!("{FLIGHT_CLIENTS} Flight clients, JSON ticket"),
        off,
        on,
    )];
    match &c.wrk {
        Some(wrk) => {
            eprintln!("3. wrk -t2 -c50 on REST, audit off / on ...");
            let (off, on) = interleaved(k.rounds, higher_rate, async |audit| {
                let dataset = if audit { "persons" } else { OPEN };
                let prefix = format!("/api/v1/datasets/{dataset}/records/");
                wrk_lookups(
                    wrk,
                    &d.http,
                    &prefix,
                    &d.lookup_token,
                    2,
                    50,
                    secs,
                    keys_file,
                    d.pid(),
                )
                .await
            })
            .await;
            throughput.push(("`wrk -t2 -c50`, REST".to_owned(), off, on));
        }
        None => out.push(
            "(`wrk` not found: REST rows skipped; run `scripts/bench-tools` or set `DAGR_WRK`)"
                .into(),
        ),
    }
    for (name, off, on) in &throughput {
        for (audit, l) in [("off", off), ("on", on)] {
            out.push(format!(
                "| {name} | {audit} | {} | {:.0} | {:.3} ms | {:.3} ms | {} | {} | {cores} |",
                l.lookups,
                l.per_sec,
                ms(l.p50),
                ms(l.p99),
                l.failed,
                cpu_cells(&l.cpu)
            ));
        }
        let valid = off.failed == 0 && on.failed == 0;
        ratios.push(format!(
            "| {name} | {:.2}× | {} | {:.3} ms | {} |",
            on.per_sec / off.per_sec,
            checked(valid, on.per_sec >= 0.85 * off.per_sec),
            ms(on.p99),
            checked(valid, on.p99 < Duration::from_millis(5))
        ));
    }
    out.push(String::new());
    out.push("| load | lookups/s on / off | ≥ 0.85× | p99 audit on | < 5 ms |".into());
    out.push("| --- | --- | --- | --- | --- |".into());
    out.extend(ratios);
    out.push(String::new());

    print(out);
}

/// Figure 4.
async fn figure_4(c: &Ctx, f: &Fixture) {
    let (k, cores, secs) = (&c.k, c.cores, c.k.secs);
    let (d, keys, load_file, idle_load) = (&f.dagr, &f.keys, &f.load_file, f.idle_load);
    let mut out = Vec::new();
    // 4. Lookups beside bulk streams and a load.
    eprintln!("4. lookups idle ...");
    let mut idle = Vec::new();
    for clients in BUSY_CLIENTS {
        idle.push(flight_lookups(d, &d.lookup_token, "persons", clients, secs, keys).await);
    }
    eprintln!(
        "4. starting 2 bulk DoGet loops of persons and a load loop of {} rows ...",
        k.load_rows
    );
    let (stop, _) = watch::channel(false);
    let mut background = start_background(d, load_file, &stop);
    // Let the streams and the load get going.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let busy_mark = Mark::new(d.pid());
    let mut busy = Vec::new();
    for clients in BUSY_CLIENTS {
        eprintln!("4. lookups with {clients} client(s) beside the bulk work ...");
        busy.push(flight_lookups(d, &d.lookup_token, "persons", clients, secs, keys).await);
    }
    let lookups_wall = busy_mark.at.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let mut bg = Background::default();
    while let Some(b) = background.join_next().await {
        let b = b.expect("background work");
        bg.streams += b.streams;
        bg.stream_rows += b.stream_rows;
        bg.loads.extend(b.loads);
    }
    let busy_cpu = busy_mark.cpu();
    out.push("### 4. Lookup p99 (Flight JSON ticket, audit on) idle vs beside 2 bulk `DoGet` loops of `persons` and a load loop\n".into());
    out.push("| clients | idle p99 | idle p50 | idle lookups/s | busy p99 | busy p50 | busy lookups/s | busy / idle p99 | ≤ 1.5× | client CPU busy | server CPU busy | cores |".into());
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".into());
    for ((clients, i), b) in BUSY_CLIENTS.iter().zip(&idle).zip(&busy) {
        let ratio = b.p99.as_secs_f64() / i.p99.as_secs_f64();
        out.push(format!(
            "| {clients} | {:.3} ms | {:.3} ms | {:.0} | {:.3} ms | {:.3} ms | {:.0} | {ratio:.2}× | {} | {} | {cores} |",
            ms(i.p99),
            ms(i.p50),
            i.per_sec,
            ms(b.p99),
            ms(b.p50),
            b.per_sec,
            yes(ratio <= 1.5),
            cpu_cells(&b.cpu)
        ));
    }
    let load_secs: Vec<String> = bg
        .loads
        .iter()
        .map(|l| format!("{:.1}", l.as_secs_f64()))
        .collect();
    out.push(format!(
        "\nBeside the busy lookups ({lookups_wall:.0} s): {} whole `DoGet`s of `persons` ({} rows), {} loads of {} rows into `{LOAD_TARGET}` (s each: {}; the last one ran past the lookups; {:.1} s with nothing else running); CPU from the start of the lookups to the end of the last load ({:.0} s): {}.\n",
        bg.streams,
        bg.stream_rows,
        bg.loads.len(),
        k.load_rows,
        load_secs.join(", "),
        idle_load.as_secs_f64(),
        busy_cpu.wall,
        cpu_cells(&busy_cpu)
    ));

    print(out);
}

/// Figure 5.
async fn figure_5(c: &Ctx, f: &Fixture) {
    let (k, cores, secs, keys_file) = (&c.k, c.cores, c.k.secs, &c.keys_file);
    let (d, keys) = (&f.dagr, &f.keys);
    let mut out = Vec::new();
    // 5. DAGR REST without audit vs ROAPI's key-value endpoint.
    out.push("### 5. REST lookups without audit (`persons_open`), `wrk -t1 -c50`: DAGR vs ROAPI's key-value endpoint on the same Parquet file (better lookups/s of the rounds)\n".into());
    match (&c.wrk, &c.roapi) {
        (Some(wrk), Some(roapi)) => {
            let key = "personal_code";
            match start_roapi(roapi, &c.dir, &f.open_file, key, "family_name") {
                Ok((ro, ro_http)) => {
                    let ro_pid = ro.0.id();
                    let probe = format!("{ro_http}/api/kv/{OPEN}/{}", keys[0]);
                    let status = reqwest::get(&probe).await.map(|r| r.status());
                    assert!(
                        matches!(status, Ok(s) if s.is_success()),
                        "ROAPI does not answer {probe}: {status:?}"
                    );
                    eprintln!("5. wrk -t1 -c50: DAGR / ROAPI ...");
                    let (dagr, ro_lat) = interleaved(k.rounds, higher_rate, async |theirs| {
                        if theirs {
                            wrk_lookups(
                                wrk,
                                &ro_http,
                                &format!("/api/kv/{OPEN}/"),
                                "",
                                1,
                                50,
                                secs,
                                keys_file,
                                ro_pid,
                            )
                            .await
                        } else {
                            let prefix = format!("/api/v1/datasets/{OPEN}/records/");
                            wrk_lookups(
                                wrk,
                                &d.http,
                                &prefix,
                                &d.lookup_token,
                                1,
                                50,
                                secs,
                                keys_file,
                                d.pid(),
                            )
                            .await
                        }
                    })
                    .await;
                    drop(ro);
                    out.push("| server | answer | lookups | lookups/s | p50 | p99 | failed | client CPU | server CPU | cores |".into());
                    out.push(
                        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".into(),
                    );
                    for (name, answer, l) in [
                        (
                            "DAGR `GET .../records/{key}` (token, mask, no audit)",
                            "the record's 5 attributes as JSON",
                            &dagr,
                        ),
                        (
                            "ROAPI `GET /api/kv/{store}/{key}`",
                            "`family_name` as text",
                            &ro_lat,
                        ),
                    ] {
                        out.push(format!(
                            "| {name} | {answer} | {} | {:.0} | {:.3} ms | {:.3} ms | {} | {} | {cores} |",
                            l.lookups,
                            l.per_sec,
                            ms(l.p50),
                            ms(l.p99),
                            l.failed,
                            cpu_cells(&l.cpu)
                        ));
                    }
                    let valid = dagr.failed == 0 && ro_lat.failed == 0;
                    out.push(format!(
                        "\nDAGR / ROAPI: lookups/s {:.2}× ({}), p99 {:.2}× (DAGR ≤ ROAPI: {}).\n",
                        dagr.per_sec / ro_lat.per_sec,
                        checked(valid, dagr.per_sec >= ro_lat.per_sec),
                        dagr.p99.as_secs_f64() / ro_lat.p99.as_secs_f64(),
                        checked(valid, dagr.p99 <= ro_lat.p99)
                    ));
                }
                Err(e) => out.push(format!("Skipped: ROAPI could not be run: {e}\n")),
            }
        }
        (None, _) => out.push(
            "Skipped: `wrk` not found (run `scripts/bench-tools` or set `DAGR_WRK`).\n".into(),
        ),
        (_, None) => out.push(
            "Skipped: `roapi` not found (run `scripts/bench-tools` or set `DAGR_ROAPI`).\n".into(),
        ),
    }
    print(out);
}

/// Figure 6, with the server stopped: the writer alone.
async fn figure_6(c: &Ctx, subjects: &Arc<Snapshot>) {
    let (cores, secs) = (c.cores, c.k.secs);
    let mut out = Vec::new();
    // 6. The audit writer alone.
    out.push("### 6. Access records committed per second by the audit writer alone (`AuditStore` on SQLite, this process; one-record commits)\n".into());
    let store = dagr_admin_api::audit::AuditStore::open(
        &format!("sqlite://{}", c.dir.join("writer-audit.db").display()),
        dagr_admin_api::audit::AuditConfig::default(),
    )
    .await
    .expect("open the audit store");
    out.push("| concurrent committers | records | records/s | ≥ 100 000/s | groups | mean group | mean time per group | largest group so far | process CPU | cores |".into());
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".into());
    for writers in WRITERS {
        eprintln!("6. the audit writer, {writers} committers ...");
        let w = writer_alone(&store, subjects, writers, secs).await;
        out.push(format!(
            "| {} | {} | {:.0} | {} | {} | {:.1} | {:.3} ms | {} | {:.1} s ({:.0} %) | {cores} |",
            w.writers,
            w.records,
            w.per_sec,
            yes(w.per_sec >= 100_000.0),
            w.groups,
            w.mean_group,
            ms(w.group_time),
            w.largest_group,
            w.cpu.client,
            100.0 * w.cpu.client / w.cpu.wall.max(1e-9)
        ));
    }
    store.close().await;
    print(out);
}

async fn run() {
    let total = Instant::now();
    let k = knobs();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let venv_roapi = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-env/bin/roapi");
    let f = setup(&k, tmp.path()).await;
    let keys_file = tmp.path().join("keys.txt");
    std::fs::write(&keys_file, f.keys.join("\n") + "\n").expect("keys file");
    let c = Ctx {
        cores: cores(),
        dir: tmp.path().to_owned(),
        wrk: find_tool("DAGR_WRK", "wrk", &[]),
        roapi: find_tool("DAGR_ROAPI", "roapi", &[venv_roapi]),
        keys_file,
        k,
    };
    print(vec![format!(
        "## Access times ({} persons, {} cores, {:.0} s per phase, {} rounds; client = this bench process and the `wrk` / `dagr load` it ran, server = `dagr serve`)\n",
        c.k.persons, c.cores, c.k.secs, c.k.rounds
    )]);
    let fsync_p50 = figure_1(&c);
    figure_2(&c, &f.dagr, &f.keys, fsync_p50).await;
    figure_3(&c, &f.dagr, &f.keys).await;
    figure_4(&c, &f).await;
    figure_5(&c, &f).await;
    // The server is done: the writer runs alone.
    let Fixture { dagr, subjects, .. } = f;
    drop(dagr);
    figure_6(&c, &subjects).await;
    print(vec![format!(
        "\nTotal run {:.0} s.",
        total.elapsed().as_secs_f64()
    )]);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

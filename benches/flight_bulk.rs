//! Bulk Flight `DoGet` against `pyarrow.flight` (issue 19; a harness of its own, not
//! criterion). Run: `cargo bench --bench flight_bulk`; `DAGR_BENCH_PERSONS` sets the persons
//! count (default 5 000 000), `DAGR_BENCH_PYTHON` the Python with pyarrow (default
//! `target/python-env/bin/python`, made by `scripts/python-env target/python-env`).
//!
//! One table, the demo `persons` register as a consumer sees it under an agreement that
//! leaves out [`HIDDEN`] attributes, is pulled whole by three clients from five servers:
//!
//! - servers: `pyarrow.flight` (the C++ server of `benches/flight_pyarrow.py serve`, the table
//!   in memory); the minimal arrow-rs server of `support/flight.rs` ([`BaselineFlight`]);
//!   DAGR `serve` as that consumer with the real audit store (SQLite), in three
//!   configurations: *before* (tonic's generated path, no cache, client with h2's 16 KiB
//!   frames), *zero-copy* (every pull encodes) and *cached* (every timed pull is a hit; its
//!   first, missing pull is reported apart);
//! - clients: pyarrow's `FlightClient` (`flight_pyarrow.py client`, `read_all()`), and
//!   arrow-flight's Rust client reading decoded batches or raw `FlightData`
//!   ([`Read`]).
//!
//! The table given to pyarrow and to the arrow-rs server is the one DAGR sent: read once with
//! the Rust client and written as an Arrow IPC stream into the temporary directory. After one
//! warm-up per server × client, every round pulls once per server × client (interleaved);
//! medians over [`RUNS`] rounds. Server CPU seconds per GB are measured on the pyarrow-client
//! pulls, where the server is alone in its process: the bench process's CPU time
//! (`/proc/self/stat`) for the Rust servers, the Python server's own `getrusage` for pyarrow.
//!
//! Progress goes to stderr, the markdown report to stdout. Nothing is asserted on times.

#[path = "support/flight.rs"]
mod flight_support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow_flight::{FlightClient, Ticket};
use dagr_admin_api::audit::{AuditConfig, AuditStore};
use dagr_engine::{Access, AccessPolicy, AuditSink, Grant, Principal, Role, Snapshot};
use dagr_flight_server::FlightConfig;
use flight_support::{
    BaselineFlight, BenchPolicy, ClientOptions, PURPOSE, Read, Running, TOKEN, Transfer,
    dataset_ticket, flight_client, full_get, full_get_keep, gbps, median, mrows, persons_count,
    setup, start_baseline, start_dagr,
};

/// Timed rounds (after one warm-up per server × client).
const RUNS: usize = 5;
/// The personal attributes of `persons` the consumer's agreement leaves out.
const HIDDEN: [&str; 3] = ["birth_date", "phone", "email"];
/// The agreement named in the consumer's grant (and in its access records).
const AGREEMENT: &str = "bench-agreement";
/// Pulls of one server under `DAGR_BENCH_PROFILE`.
const PROFILE_PULLS: usize = 20;
/// Cache bound of the "DAGR cached" server.
const CACHE_BYTES: usize = 8 << 30;
/// `sysconf(_SC_CLK_TCK)`: the unit of the CPU times in `/proc/self/stat` (100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// Authenticates the bench token as a consumer whose one agreement grants every attribute of
/// `persons` except [`HIDDEN`].
fn consumer_policy(snapshot: &Snapshot) -> BenchPolicy {
    let def = snapshot.definition();
    for hidden in HIDDEN {
        assert!(
            def.attributes.iter().any(|a| a.name == hidden),
            "persons has no attribute {hidden}"
        );
    }
    let attributes = def
        .attributes
        .iter()
        .map(|a| a.name.clone())
        .filter(|a| !HIDDEN.contains(&a.as_str()));
    BenchPolicy {
        principal: Principal {
            role: Role::Consumer,
            organisation: Some("BENCH".to_owned()),
            system: Some("bulk-reader".to_owned()),
            subject: None,
            user: None,
            token_id: Some("bench".to_owned()),
        },
        access: Access::Grants(
            [(
                def.name.clone(),
                vec![Grant::attributes(attributes).with_agreement(AGREEMENT)],
            )]
            .into(),
        ),
    }
}

/// CPU seconds (user + system, all threads) of this process so far.
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields 14 and 15 (utime, stime); the command name (field 2) may hold spaces, so count
    // from the `)` that closes it: field 3 is the first after it.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    (ticks(11) + ticks(12)) / CLOCK_TICKS
}

/// Standard base64 (the pyarrow client's ticket encoding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> shift) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The Python processes
// ---------------------------------------------------------------------------------------

/// `benches/flight_pyarrow.py` in a child process that answers one stdout line per stdin
/// line; killed when dropped.
struct Python {
    child: Child,
    /// Taken while a request runs on the blocking pool.
    io: Option<(ChildStdin, BufReader<ChildStdout>)>,
}

impl Python {
    fn start(python: &Path, args: &[&str]) -> Python {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/flight_pyarrow.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Python {
            child,
            io: Some((stdin, stdout)),
        }
    }

    /// Send `request` (if any) as one line and read one answer line, off the runtime's
    /// threads (the Rust servers share them).
    async fn ask(&mut self, request: Option<String>) -> String {
        let (mut stdin, mut stdout) = self.io.take().expect("one request at a time");
        let (io, answer) = tokio::task::spawn_blocking(move || {
            if let Some(request) = request {
                writeln!(stdin, "{request}").expect("write to the Python process");
                stdin.flush().expect("write to the Python process");
            }
            let mut answer = String::new();
            stdout
                .read_line(&mut answer)
                .expect("read from the Python process");
            ((stdin, stdout), answer)
        })
        .await
        .expect("the Python I/O task");
        self.io = Some(io);
        assert!(
            !answer.is_empty(),
            "the Python process exited (see its stderr above)"
        );
        answer.trim().to_owned()
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; the kill makes sure.
        self.io = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python to use, if it has `pyarrow.flight`; else why not.
fn find_python() -> Result<PathBuf, String> {
    let python = std::env::var_os("DAGR_BENCH_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-env/bin/python"),
        PathBuf::from,
    );
    let ok = Command::new(&python)
        .args(["-c", "import pyarrow.flight"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot `import pyarrow.flight`: run `scripts/python-env target/python-env` \
             (or set DAGR_BENCH_PYTHON); the pyarrow server and client are skipped",
            python.display()
        ))
    }
}

/// One pull by the pyarrow client, as it reported it.
struct PyPull {
    transfer: Transfer,
    /// The client's own CPU seconds for the read.
    cpu: f64,
}

async fn pyarrow_pull(client: &mut Python, addr: &str, ticket: &Ticket) -> PyPull {
    let request = serde_json::json!({
        "uri": format!("grpc://{addr}"),
        "ticket": base64(&ticket.ticket),
        "headers": {
            "authorization": format!("Bearer {TOKEN}"),
            "x-dagr-purpose": PURPOSE,
        },
    });
    let answer = client.ask(Some(request.to_string())).await;
    let answer: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("pyarrow client: {e}: {answer}"));
    if let Some(error) = answer.get("error") {
        panic!("pyarrow client DoGet from {addr} failed: {error}");
    }
    let number = |k: &str| {
        answer[k]
            .as_f64()
            .unwrap_or_else(|| panic!("no {k}: {answer}"))
    };
    PyPull {
        transfer: Transfer {
            rows: number("rows") as usize,
            bytes: number("bytes") as usize,
            secs: number("seconds"),
        },
        cpu: number("cpu"),
    }
}

// ---------------------------------------------------------------------------------------
// Servers and clients of the run
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerKind {
    Pyarrow,
    Baseline,
    DagrBefore,
    DagrZeroCopy,
    DagrCached,
}

impl ServerKind {
    fn label(self) -> &'static str {
        match self {
            ServerKind::Pyarrow => "pyarrow.flight (C++, table in memory)",
            ServerKind::Baseline => "minimal arrow-rs server",
            ServerKind::DagrBefore => "DAGR before (tonic path, no cache)",
            ServerKind::DagrZeroCopy => "DAGR zero-copy (no cache)",
            ServerKind::DagrCached => "DAGR cached (hits)",
        }
    }

    fn is_dagr(self) -> bool {
        matches!(
            self,
            ServerKind::DagrBefore | ServerKind::DagrZeroCopy | ServerKind::DagrCached
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    Pyarrow,
    Rust(Read),
}

impl ClientKind {
    fn label(self) -> String {
        match self {
            ClientKind::Pyarrow => "pyarrow `read_all()`".to_owned(),
            ClientKind::Rust(read) => format!("Rust {}", read.label()),
        }
    }
}

/// A server of the run with its Rust client.
struct Server {
    kind: ServerKind,
    addr: String,
    rust: FlightClient,
    /// In this process; `None` for the pyarrow server.
    running: Option<Running>,
}

/// One timed pull.
#[derive(Debug, Clone, Copy)]
struct Pull {
    transfer: Transfer,
    /// Server CPU seconds (pyarrow-client pulls only).
    server_cpu: Option<f64>,
    /// Client CPU seconds (pyarrow client only).
    client_cpu: Option<f64>,
}

/// Everything one pull needs besides the server.
struct Pullers<'a> {
    py_client: Option<&'a mut Python>,
    py_server: Option<&'a mut Python>,
    store: &'a AuditStore,
    ticket: &'a Ticket,
}

impl Pullers<'_> {
    async fn pull(&mut self, server: &mut Server, client: ClientKind) -> Pull {
        let pull = match client {
            ClientKind::Rust(read) => Pull {
                transfer: full_get(&mut server.rust, self.ticket, read).await,
                server_cpu: None,
                client_cpu: None,
            },
            ClientKind::Pyarrow => {
                let py = self.py_client.as_deref_mut().expect("pyarrow client");
                if server.kind == ServerKind::Pyarrow {
                    let py_server = self.py_server.as_deref_mut().expect("pyarrow server");
                    let before = python_cpu(py_server).await;
                    let p = pyarrow_pull(py, &server.addr, self.ticket).await;
                    let after = python_cpu(py_server).await;
                    Pull {
                        transfer: p.transfer,
                        server_cpu: Some(after - before),
                        client_cpu: Some(p.cpu),
                    }
                } else {
                    let before = process_cpu();
                    let p = pyarrow_pull(py, &server.addr, self.ticket).await;
                    if server.kind.is_dagr() {
                        self.settle().await;
                    }
                    Pull {
                        transfer: p.transfer,
                        server_cpu: Some(process_cpu() - before),
                        client_cpu: Some(p.cpu),
                    }
                }
            }
        };
        if server.kind.is_dagr() && client != ClientKind::Pyarrow {
            self.settle().await;
        }
        pull
    }

    /// Wait for the audit store to catch up, so that its work lands on the pull that
    /// caused it.
    async fn settle(&self) {
        self.store.settle().await.expect("the audit store settles");
    }
}

async fn python_cpu(server: &mut Python) -> f64 {
    let answer = server.ask(Some("cpu".to_owned())).await;
    answer
        .parse()
        .unwrap_or_else(|e| panic!("pyarrow server cpu answer {answer:?}: {e}"))
}

/// Write `batches` as an Arrow IPC stream to `path`.
fn write_ipc(path: &Path, batches: &[RecordBatch]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("create the IPC file"));
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(file, &batches[0].schema())
        .expect("an IPC stream writer");
    for b in batches {
        writer.write(b).expect("write a batch");
    }
    writer.finish().expect("finish the IPC stream");
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Medians and CPU per (server, client).
struct Row {
    server: ServerKind,
    client: ClientKind,
    median: Transfer,
    /// Server CPU seconds per GB over the timed runs.
    server_cpu_per_gb: Option<f64>,
    client_cpu_per_gb: Option<f64>,
}

fn cpu_per_gb(pulls: &[Pull], cpu: impl Fn(&Pull) -> Option<f64>) -> Option<f64> {
    let secs: Option<f64> = pulls.iter().map(&cpu).sum();
    let gb: f64 = pulls.iter().map(|p| p.transfer.bytes as f64 / 1e9).sum();
    secs.map(|s| s / gb)
}

async fn run() {
    let all = Instant::now();
    let n = persons_count();
    let python = find_python();
    if let Err(why) = &python {
        eprintln!("flight_bulk: {why}");
    }
    eprintln!("flight_bulk: generating and loading {n} persons ...");
    let (dir, engine) = setup(n).await;
    let snapshot = engine.current("persons").expect("persons loaded");
    let policy: Arc<dyn AccessPolicy> = Arc::new(consumer_policy(&snapshot));
    let store = AuditStore::open(
        &format!("sqlite://{}", dir.path().join("audit.db").display()),
        AuditConfig::default(),
    )
    .await
    .expect("open the audit store");
    let audit: Arc<dyn AuditSink> = Arc::new(store.clone());
    let ticket = dataset_ticket();

    let dagr = |zero_copy, cache_bytes| FlightConfig {
        zero_copy,
        cache_bytes,
        ..Default::default()
    };
    let mut servers = Vec::new();
    for (kind, config, options) in [
        (
            ServerKind::DagrBefore,
            dagr(false, 0),
            ClientOptions::windows(true),
        ),
        (
            ServerKind::DagrZeroCopy,
            dagr(true, 0),
            ClientOptions::tuned(),
        ),
        (
            ServerKind::DagrCached,
            dagr(true, CACHE_BYTES),
            ClientOptions::tuned(),
        ),
    ] {
        let running = start_dagr(&engine, &policy, &audit, config).await;
        servers.push(Server {
            kind,
            addr: running.addr.to_string(),
            rust: flight_client(running.addr, options).await,
            running: Some(running),
        });
    }

    // The table DAGR sends the consumer, for the other servers.
    let mut batches = Vec::new();
    let read = full_get_keep(
        &mut servers[0].rust,
        &ticket,
        Read::Decoded,
        Some(&mut batches),
    )
    .await;
    store.settle().await.expect("the audit store settles");
    let schema = batches[0].schema();
    eprintln!(
        "masked table: {} rows, {} columns, {} batches, {:.1} MB IPC",
        read.rows,
        schema.fields().len(),
        batches.len(),
        read.bytes as f64 / 1e6,
    );
    let ipc = dir.path().join("persons_masked.arrows");
    let batches = Arc::new(batches);
    {
        let (ipc, batches) = (ipc.clone(), Arc::clone(&batches));
        tokio::task::spawn_blocking(move || write_ipc(&ipc, &batches))
            .await
            .expect("the IPC writer");
    }

    let defaults = FlightConfig::default();
    let baseline = start_baseline(
        BaselineFlight {
            schema,
            batches,
            max_message_bytes: defaults.max_message_bytes,
        },
        &defaults,
    )
    .await;
    servers.insert(
        0,
        Server {
            kind: ServerKind::Baseline,
            addr: baseline.addr.to_string(),
            rust: flight_client(baseline.addr, ClientOptions::tuned()).await,
            running: Some(baseline),
        },
    );

    let (mut py_server, mut py_client) = (None, None);
    if let Ok(python) = &python {
        let ipc = ipc.to_str().expect("a UTF-8 temporary path");
        let mut server = Python::start(python, &["serve", "--ipc", ipc]);
        let port = server.ask(None).await;
        let port: u16 = port
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("pyarrow server said {port:?}, not `port N`"));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        servers.insert(
            0,
            Server {
                kind: ServerKind::Pyarrow,
                addr: addr.to_string(),
                rust: flight_client(addr, ClientOptions::tuned()).await,
                running: None,
            },
        );
        py_server = Some(server);
        py_client = Some(Python::start(python, &["client"]));
    }
    let mut clients = vec![ClientKind::Rust(Read::Decoded), ClientKind::Rust(Read::Raw)];
    if py_client.is_some() {
        clients.insert(0, ClientKind::Pyarrow);
    }
    let mut pullers = Pullers {
        py_client: py_client.as_mut(),
        py_server: py_server.as_mut(),
        store: &store,
        ticket: &ticket,
    };

    // The cached server's first pull misses (it encodes and fills the cache).
    let cached = servers
        .iter_mut()
        .find(|s| s.kind == ServerKind::DagrCached)
        .expect("the cached server");
    let miss = pullers.pull(cached, ClientKind::Rust(Read::Raw)).await;
    eprintln!(
        "DAGR cached, first pull (miss), Rust raw: {:.3} s, {:.2} GB/s",
        miss.transfer.secs,
        gbps(&miss.transfer)
    );

    // `DAGR_BENCH_PROFILE=before|zero-copy|cached|arrow-rs`: only pyarrow-client pulls of
    // that server, for `perf record -p <pid>` (the pid is printed); no report.
    if let Ok(which) = std::env::var("DAGR_BENCH_PROFILE") {
        let kind = match which.as_str() {
            "before" => ServerKind::DagrBefore,
            "zero-copy" => ServerKind::DagrZeroCopy,
            "cached" => ServerKind::DagrCached,
            "arrow-rs" => ServerKind::Baseline,
            other => panic!("DAGR_BENCH_PROFILE: no server `{other}`"),
        };
        let server = servers
            .iter_mut()
            .find(|s| s.kind == kind)
            .expect("the server to profile");
        let client = if pullers.py_client.is_some() {
            ClientKind::Pyarrow
        } else {
            ClientKind::Rust(Read::Raw)
        };
        eprintln!("profile: pid {}; pulls start in 3 s", std::process::id());
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        for _ in 0..PROFILE_PULLS {
            pullers.pull(server, client).await;
        }
        eprintln!("profile: done");
        return;
    }

    eprintln!("warm-up: one pull per server × client ...");
    for server in &mut servers {
        for &client in &clients {
            pullers.pull(server, client).await;
        }
    }
    let mut pulls: Vec<Vec<Vec<Pull>>> = vec![vec![Vec::new(); clients.len()]; servers.len()];
    for round in 0..RUNS {
        for (s, server) in servers.iter_mut().enumerate() {
            for (c, &client) in clients.iter().enumerate() {
                let p = pullers.pull(server, client).await;
                // Correctness, not timing: every row arrived.
                assert_eq!(
                    p.transfer.rows,
                    snapshot.num_rows(),
                    "{} to {}: every row",
                    server.kind.label(),
                    client.label()
                );
                eprintln!(
                    "round {}/{RUNS}: {} → {}: {:.3} s, {:.2} GB/s{}",
                    round + 1,
                    server.kind.label(),
                    client.label(),
                    p.transfer.secs,
                    gbps(&p.transfer),
                    p.server_cpu
                        .map_or(String::new(), |c| format!(", server CPU {c:.2} s"))
                );
                pulls[s][c].push(p);
            }
        }
    }

    let rows: Vec<Row> = servers
        .iter()
        .zip(&pulls)
        .flat_map(|(server, per_client)| {
            clients.iter().zip(per_client).map(|(&client, p)| Row {
                server: server.kind,
                client,
                median: median(p.iter().map(|p| p.transfer).collect()),
                server_cpu_per_gb: cpu_per_gb(p, |p| p.server_cpu),
                client_cpu_per_gb: cpu_per_gb(p, |p| p.client_cpu),
            })
        })
        .collect();

    for server in servers {
        if let Some(running) = server.running {
            running.stop().await;
        }
    }
    drop((py_client, py_server));
    store.close().await;

    report(
        n,
        &rows,
        &miss.transfer,
        python.err().as_deref(),
        all.elapsed().as_secs_f64(),
    );
}

#[allow(clippy::print_stdout, reason = "the report is the harness's output")]
fn report(n: usize, rows: &[Row], miss: &Transfer, skipped: Option<&str>, total_secs: f64) {
    println!(
        "## Bulk Flight `DoGet` against pyarrow.flight ({n} persons, total run {total_secs:.0} s)\n"
    );
    println!(
        "The consumer's masked `persons` (all attributes but {}), median of {RUNS} interleaved \
         runs after one warm-up per server × client. Bytes: pyarrow client = `table.nbytes`; \
         Rust clients = IPC header + body of every `FlightData`. Server CPU: measured on the \
         pyarrow-client pulls.\n",
        HIDDEN.join(", ")
    );
    if let Some(why) = skipped {
        println!("**pyarrow skipped:** {why}\n");
    }
    println!(
        "| server | client | rows | MB | median time | GB/s | M rows/s | server CPU s/GB | client CPU s/GB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let opt = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2}"));
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.3} s | {:.2} | {:.1} | {} | {} |",
            r.server.label(),
            r.client.label(),
            r.median.rows,
            r.median.bytes as f64 / 1e6,
            r.median.secs,
            gbps(&r.median),
            mrows(&r.median),
            opt(r.server_cpu_per_gb),
            opt(r.client_cpu_per_gb),
        );
    }
    println!(
        "\nDAGR cached, first pull (cache miss), Rust raw: {:.3} s, {:.2} GB/s, {:.1} M rows/s.\n",
        miss.secs,
        gbps(miss),
        mrows(miss)
    );

    let find = |s: ServerKind, c: ClientKind| rows.iter().find(|r| r.server == s && r.client == c);
    // Throughput ratios as rows/s (the same rows everywhere; equal to the inverse time ratio).
    let ratio = |a: Option<&Transfer>, b: Option<&Transfer>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", mrows(a) / mrows(b)),
        _ => "n/a (pyarrow skipped)".to_owned(),
    };
    let median_of = |s, c| find(s, c).map(|r| &r.median);
    println!("### Issue 19 targets (throughput ratios = rows/s ratios, same run)\n");
    println!("| ratio | value | target |");
    println!("| --- | --- | --- |");
    println!(
        "| DAGR zero-copy / pyarrow server, pyarrow client | {} | ≥ 1.0 |",
        ratio(
            median_of(ServerKind::DagrZeroCopy, ClientKind::Pyarrow),
            median_of(ServerKind::Pyarrow, ClientKind::Pyarrow)
        )
    );
    for read in [Read::Decoded, Read::Raw] {
        let c = ClientKind::Rust(read);
        let best = [ServerKind::DagrZeroCopy, ServerKind::DagrCached]
            .into_iter()
            .filter_map(|s| median_of(s, c))
            .max_by(|a, b| mrows(a).total_cmp(&mrows(b)));
        println!(
            "| DAGR best of (zero-copy, cached) / DAGR before, Rust {} client | {} | ≥ 1.5 |",
            read.label(),
            ratio(best, median_of(ServerKind::DagrBefore, c))
        );
    }
    println!(
        "| DAGR cached (hits) / its first pull (miss), Rust raw client | {} | ≥ 1.5 |",
        ratio(
            median_of(ServerKind::DagrCached, ClientKind::Rust(Read::Raw)),
            Some(miss)
        )
    );
    let cpu = |s| find(s, ClientKind::Pyarrow).and_then(|r| r.server_cpu_per_gb);
    for s in [
        ServerKind::DagrBefore,
        ServerKind::DagrZeroCopy,
        ServerKind::DagrCached,
    ] {
        let value = match (cpu(s), cpu(ServerKind::Pyarrow)) {
            (Some(d), Some(p)) => format!("{d:.2} / {p:.2} s/GB = {:.2}×", d / p),
            _ => "n/a (pyarrow skipped)".to_owned(),
        };
        println!(
            "| server CPU per GB: {} / pyarrow server | {value} | lower is better |",
            s.label()
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

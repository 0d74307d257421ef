//! End-to-end connector benchmark (a harness of its own, not criterion). Run:
//! `cargo bench --bench connector`; `DAGR_BENCH_PERSONS` sets the persons count (default
//! 1 000 000), `DAGR_BENCH_ROUNDS` the rounds (default 3).
//!
//! The demo `persons` register is written once as Parquet (Snappy) and as CSV. Each round then
//! measures, interleaved so that the machine's noise falls on all alike:
//! 1. **baseline**: the engine's in-process Parquet load (`Engine::load_parquet` on a
//!    temporary directory: read, validate, index, persist, commit);
//! 2. **`dagr load` from Parquet** and 3. **`dagr load` from CSV**: the real `dagr` binary
//!    (a separate process) reading the file, validating it against the definition, and
//!    pushing it over Flight `DoPut` into a running `dagr serve` (also the real binary, on
//!    loopback), which validates, indexes, persists and commits it; timed from process start
//!    to exit.
//!
//! Progress goes to stderr, the markdown report (rows/s, and each load's ratio to the
//! baseline's median) to stdout. Nothing is asserted on times.
#![allow(clippy::print_stdout, missing_docs)]

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use dagr_engine::demo::{DemoConfig, generate};
use dagr_engine::{Engine, EngineConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn start_server(data: &Path) -> (support::Serve, String) {
    let (serve, _, flight) = support::start_server_addrs(data, 1000, &["--keep-versions", "1"]);
    (serve, flight)
}

fn owner_token(data: &Path) -> String {
    let creds: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("demo-credentials.json")).expect("demo credentials"),
    )
    .expect("JSON");
    creds["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .find(|s| s["organisation"] == "PMLP" && s["role"] == "provider")
        .and_then(|s| s["token"].as_str())
        .expect("a PMLP provider token")
        .to_owned()
}

fn dagr_load(server: &str, token: &str, file: &Path) -> f64 {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
        .args(["load", "persons"])
        .arg(file)
        .args(["--server", server, "--token", token, "--quiet"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run dagr load");
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "dagr load {} failed", file.display());
    seconds
}

fn main() {
    let persons: usize = std::env::var("DAGR_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("DAGR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("temp dir");
    eprintln!("generating {persons} persons ...");
    let data = generate(&DemoConfig {
        persons,
        ..DemoConfig::default()
    })
    .expect("generate");
    let persons_data = &data[0];
    let files = tmp.path().join("files");
    dagr_engine::demo::write_parquet(std::slice::from_ref(persons_data), &files).expect("write");
    let parquet = files.join("persons.parquet");
    let csv = files.join("persons.csv");
    {
        let file = std::fs::File::create(&csv).expect("csv");
        let mut w = dagr_engine::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(std::io::BufWriter::new(file));
        for b in &persons_data.batches {
            w.write(b).expect("write csv");
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    eprintln!(
        "persons.parquet {:.1} MB, persons.csv {:.1} MB",
        size(&parquet),
        size(&csv)
    );

    let server_data = tmp.path().join("server");
    let (_server, flight) = start_server(&server_data);
    let token = owner_token(&server_data);
    let engine_dir = tmp.path().join("engine");
    let engine = runtime
        .block_on(Engine::open_dir(
            &engine_dir,
            EngineConfig {
                keep_versions: 1,
                ..EngineConfig::default()
            },
        ))
        .expect("engine");
    runtime
        .block_on(engine.create_dataset(persons_data.definition.clone()))
        .expect("create persons");

    let (mut base, mut from_parquet, mut from_csv) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let started = Instant::now();
        runtime
            .block_on(engine.load_parquet("persons", parquet.to_str().expect("path")))
            .expect("in-process load");
        base.push(started.elapsed().as_secs_f64());
        from_parquet.push(dagr_load(&flight, &token, &parquet));
        from_csv.push(dagr_load(&flight, &token, &csv));
        eprintln!(
            "round {round}/{rounds}: in-process {:.2} s, dagr load parquet {:.2} s, csv {:.2} s",
            base[round - 1],
            from_parquet[round - 1],
            from_csv[round - 1]
        );
    }
    let rate = |s: f64| persons as f64 / s;
    let b = median(base);
    println!("## Connector: `dagr load` of {persons} persons, {rounds} rounds (medians)\n");
    println!("| load | seconds | rows/s | ratio to in-process |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| in-process `Engine::load_parquet` (baseline) | {b:.2} | {:.0} | 1.00× |",
        rate(b)
    );
    for (name, times) in [
        ("`dagr load` Parquet", from_parquet),
        ("`dagr load` CSV", from_csv),
    ] {
        let m = median(times);
        println!("| {name} | {m:.2} | {:.0} | {:.2}× |", rate(m), b / m);
    }
}

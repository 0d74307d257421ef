//! TAPIS end-to-end bench: `cargo bench --bench tapis_parcels` (`DAGR_BENCH_PERSONS` sets the demo's
//! persons, default 200 000). Starts the real `dagr serve` with the embedded demo and
//! measures over REST, against a baseline measured in the same run on the same server and
//! client:
//!
//! - the properties of a territory (`GET /api/v1/tapis/documents/{id}/parcels`: the cells
//!   of `real_estate`'s location index the territory covers — the index built from one pass
//!   over the locations under the TAPIS system's mask on first use, reused after — the
//!   owners looked up by key and their access record committed to the usage audit, the
//!   addresses looked up, the set compared with the stored one) for a detailed plan (about
//!   0.2 km² in central Riga), a second document of the same plan (the index already
//!   built) and a municipality (about 300 km², all of Riga), p50/p95 with the audit on;
//! - the baseline: one audited REST record lookup of a property of the same register by
//!   the same TAPIS system.
//!
//! Setting a document's territory derives and stores its set (measured apart, as
//! "territory set"; the very first also builds the location index); the first GET
//! (measured apart, as "first") and the later ones find it unchanged. Nothing is asserted
//! on times; a failed call fails the bench.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, ms, percentile};

fn persons() -> usize {
    support::persons(200_000)
}

fn start_server(data: &std::path::Path) -> (support::Serve, String) {
    support::start_server(data, persons(), &[])
}

impl Api {
    /// Latencies of `n` sequential calls of `path`, sorted.
    async fn latencies(&self, path: &str, token: &str, n: usize) -> Vec<Duration> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.call("GET", path, token, None).await;
            out.push(t.elapsed());
        }
        out.sort();
        out
    }
}

/// A square territory of `side_deg` degrees of latitude (the same length in longitude at
/// Riga) centred on `(lon, lat)`.
fn square(lon: f64, lat: f64, side_km: f64) -> Value {
    let dlat = side_km / 111.32 / 2.0;
    let dlon = side_km / (111.32 * lat.to_radians().cos()) / 2.0;
    let (w, s, e, n) = (lon - dlon, lat - dlat, lon + dlon, lat + dlat);
    json!({"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]})
}

fn row(name: &str, l: &[Duration], base: &[Duration]) -> String {
    format!(
        "| {name} | {} | {:.1} ms | {:.1} ms | {:.1}× |",
        l.len(),
        ms(percentile(l, 0.5)),
        ms(percentile(l, 0.95)),
        ms(percentile(l, 0.95)) / ms(percentile(base, 0.95)).max(1e-9)
    )
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let (_serve, base) = start_server(dir.path());
    let seeded = started.elapsed();
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo-credentials.json")).expect("credentials"),
    )
    .expect("credentials JSON");
    let api = Api {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .expect("client"),
        purpose: "TAPIS bench",
    };
    let planner = creds["tapis"]["planner"]["token"]
        .as_str()
        .expect("planner token")
        .to_owned();
    let system = creds["tapis"]["system"]["system_id"].clone();
    let tapis_token = creds["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .find(|s| s["system_id"] == system)
        .and_then(|s| s["token"].as_str())
        .expect("the TAPIS system's token")
        .to_owned();

    let mut out = vec![
        format!(
            "TAPIS bench: {} persons, server up in {:.1} s",
            persons(),
            seeded.as_secs_f64()
        ),
        String::new(),
        "| request | n | p50 | p95 | p95 / baseline p95 |".to_owned(),
        "| --- | --- | --- | --- | --- |".to_owned(),
    ];
    let mut lookup_key = None;
    let mut results = Vec::new();
    for (name, side_km, n) in [
        ("detailed plan, 0.2 km²", 0.2_f64.sqrt(), 60),
        (
            "detailed plan, 0.2 km², a second document",
            0.2_f64.sqrt(),
            60,
        ),
        ("municipality, 300 km² (Riga)", 300_f64.sqrt(), 10),
    ] {
        let d = api
            .call(
                "POST",
                "/api/v1/tapis/documents",
                &planner,
                Some(&json!({"type": "detailed_plan", "title": format!("bench: {name}")})),
            )
            .await;
        let id = d["id"].as_i64().expect("document id");
        // Setting the territory derives the set (the very first also builds the index).
        let t = Instant::now();
        api.call(
            "POST",
            &format!("/api/v1/tapis/documents/{id}/territory"),
            &planner,
            Some(&json!({"geometry": square(24.1052, 56.9496, side_km)})),
        )
        .await;
        let territory_took = t.elapsed();
        let path = format!("/api/v1/tapis/documents/{id}/parcels");
        let t = Instant::now();
        let first = api.call("GET", &path, &planner, None).await;
        let first_took = t.elapsed();
        let count = first.as_array().map_or(0, Vec::len);
        if lookup_key.is_none() {
            lookup_key = first
                .as_array()
                .and_then(|a| a.first())
                .and_then(|p| p["cadastre_number"].as_str())
                .map(str::to_owned);
        }
        let l = api.latencies(&path, &planner, n).await;
        results.push((name, count, territory_took, first_took, l));
    }
    let key = lookup_key.expect("a property in the detailed plan's territory");
    let lookup_path = format!("/api/v1/datasets/real_estate/records/{key}");
    for _ in 0..20 {
        api.call("GET", &lookup_path, &tapis_token, None).await;
    }
    let baseline = api.latencies(&lookup_path, &tapis_token, 200).await;
    for (name, count, territory, first, l) in &results {
        out.push(row(
            &format!(
                "parcels, {name}: {count} properties (territory set: {:.1} ms, first: {:.1} ms)",
                ms(*territory),
                ms(*first)
            ),
            l,
            &baseline,
        ));
    }
    out.push(format!(
        "| baseline: audited record lookup of `real_estate` (TAPIS system) | {} | {:.2} ms | {:.2} ms | 1 |",
        baseline.len(),
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.95))
    ));
    for line in out {
        eprintln!("{line}");
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

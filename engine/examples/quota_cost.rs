//! The per-request cost of the quota checks (`engine/src/quota.rs`), single-threaded and
//! with every core calling at once:
//!
//! ```sh
//! cargo run --release -p dagr-engine --example quota_cost
//! ```
//!
//! Prints nanoseconds per call of: a request under no rate limit (the default), a request
//! counted against a rate, a stream permit taken and dropped, and the rate check from
//! several threads on distinct tokens and on one shared token.
#![expect(clippy::print_stdout, reason = "a measurement tool prints its figures")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use dagr_engine::quota::{QuotaOverrides, QuotaValues, Quotas};

const CALLS: u32 = 2_000_000;

fn per_call(label: &str, calls: u32, f: impl Fn(u32)) {
    for i in 0..calls / 10 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..calls {
        f(i);
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(calls);
    println!("{label:<48} {ns:>8.1} ns/call");
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cores: {cores}");
    let none = QuotaOverrides::default();
    let unlimited = Quotas::new(QuotaValues::default());
    per_call("request, no rate limit (default)", CALLS, |_| {
        black_box(unlimited.request(black_box("12"), &none)).ok();
    });
    let limited = Quotas::new(QuotaValues {
        requests_per_second: 1_000_000,
        ..QuotaValues::default()
    });
    per_call("request, counted against a rate", CALLS, |_| {
        black_box(limited.request(black_box("12"), &none)).ok();
    });
    let keys: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    per_call("request, 10 000 tokens in turn", CALLS, |i| {
        black_box(limited.request(&keys[(i % 10_000) as usize], &none)).ok();
    });
    per_call("stream permit taken and dropped", CALLS, |_| {
        drop(black_box(limited.stream(black_box("12"), &none)));
    });
    for shared in [false, true] {
        let q = Arc::clone(&limited);
        let threads = cores.max(2);
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let q = Arc::clone(&q);
                s.spawn(move || {
                    let key = if shared {
                        "shared".to_owned()
                    } else {
                        format!("t{t}")
                    };
                    for _ in 0..CALLS / 4 {
                        black_box(q.request(&key, &QuotaOverrides::default())).ok();
                    }
                });
            }
        });
        let total = f64::from(CALLS / 4) * threads as f64;
        let ns = start.elapsed().as_nanos() as f64 / total;
        let label = format!(
            "request, {threads} threads, {}",
            if shared { "one token" } else { "a token each" }
        );
        println!("{label:<48} {ns:>8.1} ns/call (wall time / calls)");
    }
}

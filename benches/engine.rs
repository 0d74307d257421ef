//! Engine micro benchmarks (criterion). Run: `cargo bench --bench engine`.
//!
//! Every figure is reported next to a baseline measured in the same run:
//! - point lookup through the mask vs. the bare index probe;
//! - masked scans (column mask; column + row mask) vs. an unmasked DataFusion `MemTable` scan
//!   of the very same batches;
//! - the engine's Parquet load (validate + index + persist + swap) vs. a bare Parquet decode
//!   of the same file;
//! - resident memory of a loaded snapshot vs. its Arrow size (printed, not timed).
//!
//! `DAGR_BENCH_PERSONS` sets the persons count (default 1 000 000).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use dagr_engine::datafusion::datasource::MemTable;
use dagr_engine::datafusion::prelude::SessionContext;
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
use dagr_engine::table::MaskedTable;
use dagr_engine::{Access, Engine, EngineConfig, Grant, KeyValue};
use futures::TryStreamExt;

fn persons_count() -> usize {
    std::env::var("DAGR_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    parquet: std::path::PathBuf,
    keys: Vec<Vec<KeyValue>>,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = persons_count();
    let demo = generate(&DemoConfig {
        persons: n,
        seed: DEFAULT_SEED,
    })
    .unwrap();
    let files = dagr_engine::demo::write_parquet(&demo, &dir.path().join("src")).unwrap();
    let parquet = files
        .into_iter()
        .find(|p| p.ends_with("persons.parquet"))
        .unwrap();
    let persons = demo
        .into_iter()
        .find(|d| d.definition.name == "persons")
        .unwrap();
    let engine = rt.block_on(async {
        let e = Engine::open_dir(&dir.path().join("store"), EngineConfig::default())
            .await
            .unwrap();
        e.create_dataset(persons.definition.clone()).await.unwrap();
        e.load_parquet("persons", parquet.to_str().unwrap())
            .await
            .unwrap();
        Arc::new(e)
    });
    let snap = engine.current("persons").unwrap();
    let keys = (0..1000u32)
        .map(|i| {
            snap.index()
                .key_of((i as usize * 7919 % snap.num_rows()) as u32)
        })
        .collect();
    Fixture {
        _dir: dir,
        engine,
        parquet,
        keys,
        rt,
    }
}

fn grants() -> Access {
    Access::Grants(
        [(
            "persons".to_owned(),
            vec![Grant::attributes([
                "personal_code",
                "given_name",
                "family_name",
                "birth_date",
                "municipality",
            ])],
        )]
        .into(),
    )
}

fn scoped() -> Access {
    Access::Grants(
        [(
            "persons".to_owned(),
            vec![
                Grant::attributes([
                    "personal_code",
                    "given_name",
                    "family_name",
                    "birth_date",
                    "municipality",
                ])
                .with_row_scope("municipality = 'Rīga'"),
            ],
        )]
        .into(),
    )
}

fn bench_lookup(c: &mut Criterion, f: &Fixture) {
    let view = f.engine.view("persons", &grants()).unwrap();
    let mut g = c.benchmark_group("point_lookup");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("baseline_index_probe", |b| {
        b.iter(|| {
            i = (i + 1) % f.keys.len();
            black_box(view.snapshot.index().get(&f.keys[i]))
        })
    });
    g.bench_function("masked_lookup", |b| {
        b.iter(|| {
            i = (i + 1) % f.keys.len();
            black_box(view.lookup(&f.keys[i]).unwrap())
        })
    });
    let scoped_view = f.engine.view("persons", &scoped()).unwrap();
    g.bench_function("masked_lookup_row_scope", |b| {
        b.iter(|| {
            i = (i + 1) % f.keys.len();
            black_box(scoped_view.lookup(&f.keys[i]).unwrap())
        })
    });
    g.finish();
}

async fn count_rows(ctx: &SessionContext, sql: &str) -> usize {
    let s = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
    s.try_fold(0, |n, b| async move { Ok(n + b.num_rows()) })
        .await
        .unwrap()
}

fn bench_scan(c: &mut Criterion, f: &Fixture) {
    let snap = f.engine.current("persons").unwrap();
    let rows = snap.num_rows();
    let cols = "personal_code, given_name, family_name, birth_date, municipality";
    let baseline = SessionContext::new();
    let mem = MemTable::try_new(Arc::clone(snap.schema()), vec![snap.chunks().to_vec()]).unwrap();
    baseline.register_table("persons", Arc::new(mem)).unwrap();
    let masked = SessionContext::new();
    let view = f.engine.view("persons", &grants()).unwrap();
    masked
        .register_table("persons", Arc::new(MaskedTable::new(view, 2)))
        .unwrap();
    let scoped_ctx = SessionContext::new();
    let view = f.engine.view("persons", &scoped()).unwrap();
    scoped_ctx
        .register_table("persons", Arc::new(MaskedTable::new(view, 2)))
        .unwrap();
    let q = format!("SELECT {cols} FROM persons");
    let mut g = c.benchmark_group("full_scan");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(20);
    g.bench_with_input(BenchmarkId::new("baseline_memtable", rows), &q, |b, q| {
        b.iter(|| f.rt.block_on(count_rows(&baseline, q)))
    });
    g.bench_with_input(BenchmarkId::new("masked_columns", rows), &q, |b, q| {
        b.iter(|| f.rt.block_on(count_rows(&masked, q)))
    });
    g.bench_with_input(
        BenchmarkId::new("masked_columns_and_rows", rows),
        &q,
        |b, q| b.iter(|| f.rt.block_on(count_rows(&scoped_ctx, q))),
    );
    g.bench_with_input(
        BenchmarkId::new("engine_query_entry_point", rows),
        &q,
        |b, q| {
            b.iter(|| {
                f.rt.block_on(async {
                    let r = f.engine.query(q, &grants()).await.unwrap();
                    r.stream
                        .try_fold(0, |n, b| async move { Ok(n + b.num_rows()) })
                        .await
                        .unwrap()
                })
            })
        },
    );
    g.finish();
}

fn bench_load(c: &mut Criterion, f: &Fixture) {
    let rows = f.engine.current("persons").unwrap().num_rows();
    let src = f.parquet.to_str().unwrap().to_owned();
    let mut g = c.benchmark_group("parquet_load");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function(BenchmarkId::new("baseline_decode_only", rows), |b| {
        b.iter(|| {
            f.rt.block_on(dagr_engine::engine::read_parquet_source(&src))
                .unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("engine_load_parquet", rows), |b| {
        b.iter(|| {
            f.rt.block_on(f.engine.load_parquet("persons", &src))
                .unwrap()
        })
    });
    g.finish();
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident memory of one more loaded snapshot vs. its Arrow size.
fn memory_report(f: &Fixture) {
    let before = rss_bytes();
    let batches =
        f.rt.block_on(dagr_engine::engine::read_parquet_source(
            f.parquet.to_str().unwrap(),
        ))
        .unwrap();
    let def = f.engine.definition("persons").unwrap();
    let snap =
        dagr_engine::Snapshot::build(def, 99, dagr_engine::snapshot::now(), batches).unwrap();
    let after = rss_bytes();
    let arrow = snap.arrow_memory_size();
    eprintln!(
        "memory: snapshot of {} rows: Arrow {:.1} MiB, index {:.1} MiB, RSS growth {:.1} MiB, ratio RSS/Arrow = {:.2}",
        snap.num_rows(),
        arrow as f64 / 1048576.0,
        snap.index().memory_size() as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / arrow as f64
    );
    drop(snap);
}

fn main() {
    let f = fixture();
    memory_report(&f);
    let mut c = Criterion::default().configure_from_args();
    bench_lookup(&mut c, &f);
    bench_scan(&mut c, &f);
    bench_load(&mut c, &f);
    c.final_summary();
}

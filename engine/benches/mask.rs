//! What removing hidden cells from the bytes costs on the bulk path (criterion). Run:
//! `cargo bench -p dagr-engine --bench mask`.
//!
//! Every masked read of all of `persons` (`MaskedView::chunk` over every chunk, as a Flight
//! `DoGet` of a dataset does before encoding) is reported next to baselines measured in the
//! same run:
//! - `baseline_project`: the unmasked chunks, projected to the same five columns (the cost
//!   of a read with no mask at all);
//! - `column_mask`: one agreement, five columns: no cell is hidden, nothing is scrubbed;
//! - `row_scope`: one agreement with a row scope (filter, then compaction of dictionaries
//!   and views);
//! - `cell_mask`: two agreements whose row scopes grant different columns (Rīga's rows
//!   whole, every row's key and municipality), so the other columns of rows outside Rīga
//!   are hidden cells: they are scrubbed (values zeroed, strings rebuilt without them);
//! - `cell_mask_validity_only`: the same cells hidden the way DAGR did before hidden cells
//!   were scrubbed: the validity bits cleared over the bytes (the cell bitmaps computed
//!   beforehand, outside the timing, as the view holds them).
//!
//! `DAGR_BENCH_PERSONS` sets the persons count (default 1 000 000).

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::kernels::cmp::eq;
use criterion::{Criterion, Throughput};
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
use dagr_engine::{Access, Engine, EngineConfig, Grant};

const COLUMNS: [&str; 5] = [
    "personal_code",
    "given_name",
    "family_name",
    "birth_date",
    "municipality",
];

fn persons_count() -> usize {
    std::env::var("DAGR_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn grants(scoped: bool) -> Access {
    let g = Grant::attributes(COLUMNS);
    let g = if scoped {
        g.with_row_scope("municipality = 'Rīga'")
    } else {
        g
    };
    Access::Grants([("persons".to_owned(), vec![g])].into())
}

fn two_agreements() -> Access {
    Access::Grants(
        [(
            "persons".to_owned(),
            vec![
                Grant::attributes(COLUMNS).with_row_scope("municipality = 'Rīga'"),
                Grant::attributes(["personal_code", "municipality"]),
            ],
        )]
        .into(),
    )
}

fn read_all(engine: &Engine, access: &Access) -> usize {
    let view = engine.view("persons", access).unwrap();
    let schema = view.mask.projected_schema(None).unwrap();
    let mut rows = 0;
    for c in 0..view.snapshot.chunks().len() {
        if let Some(b) = view.chunk(c, None, &schema).unwrap() {
            rows += black_box(b).num_rows();
        }
    }
    rows
}

fn main() {
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
    let persons = demo
        .into_iter()
        .find(|d| d.definition.name == "persons")
        .unwrap();
    let engine = rt.block_on(async {
        let e = Engine::open_dir(dir.path(), EngineConfig::default())
            .await
            .unwrap();
        e.create_dataset(persons.definition.clone()).await.unwrap();
        e.load_batches("persons", persons.batches.clone())
            .await
            .unwrap();
        e
    });
    let snap = engine.current("persons").unwrap();
    let def = snap.definition();
    let ordinals: Vec<usize> = COLUMNS
        .iter()
        .map(|c| def.attributes.iter().position(|a| a.name == *c).unwrap())
        .collect();
    let municipality = ordinals[4];
    // The cells the two agreements hide, per chunk: columns 1..=3 of rows outside Rīga.
    let in_riga: Vec<BooleanArray> = snap
        .chunks()
        .iter()
        .map(|b| {
            let m = b.column(municipality);
            eq(m, &StringArray::new_scalar("Rīga")).unwrap()
        })
        .collect();

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("bulk_read_persons");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_function("baseline_project", |b| {
        b.iter(|| {
            snap.chunks()
                .iter()
                .map(|c| black_box(c.project(&ordinals).unwrap()).num_rows())
                .sum::<usize>()
        })
    });
    let column_mask = grants(false);
    g.bench_function("column_mask", |b| {
        b.iter(|| read_all(&engine, &column_mask))
    });
    let scoped = grants(true);
    g.bench_function("row_scope", |b| b.iter(|| read_all(&engine, &scoped)));
    let cells = two_agreements();
    g.bench_function("cell_mask", |b| b.iter(|| read_all(&engine, &cells)));
    g.bench_function("cell_mask_validity_only", |b| {
        b.iter(|| {
            let mut rows = 0;
            for (chunk, visible) in snap.chunks().iter().zip(&in_riga) {
                let projected = chunk.project(&ordinals).unwrap();
                let columns: Vec<ArrayRef> = projected
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| {
                        if (1..=3).contains(&i) {
                            // Clear the validity bits of hidden cells; the bytes stay.
                            let nulls = arrow::buffer::NullBuffer::union(
                                col.nulls(),
                                Some(&arrow::buffer::NullBuffer::from(visible.values().clone())),
                            );
                            arrow::array::make_array(
                                col.to_data().into_builder().nulls(nulls).build().unwrap(),
                            )
                        } else {
                            Arc::clone(col)
                        }
                    })
                    .collect();
                let out = RecordBatch::try_new(projected.schema(), columns).unwrap();
                rows += black_box(out).num_rows();
            }
            rows
        })
    });
    g.finish();
    c.final_summary();
}

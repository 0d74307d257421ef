//! What removing hidden cells from the bytes costs on the bulk path (criterion). Run:
//! `cargo bench -p dagr-engine --bench mask`.
//!
//! Every masked read of all of `persons` (`MaskedView::chunk` over every chunk, then the
//! Arrow IPC encoding of the batches into memory, as a Flight `DoGet` of a dataset does before
//! gRPC framing) is reported next to baselines measured in the same run:
//! - `baseline_project`: the unmasked chunks, projected to the same five columns (the cost
//!   of a read with no mask at all);
//! - `column_mask`: one agreement, five columns: no cell is hidden, nothing is scrubbed;
//! - `row_scope`: one agreement with a row scope (filter, then compaction of dictionaries
//!   and views);
//! - `row_scope_filter_only`: the same rows filtered as before compaction was added (the
//!   row bitmaps computed beforehand, outside the timing);
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

/// Encode `batches` as an Arrow IPC stream into memory; the bytes written.
fn encode(
    schema: &arrow::datatypes::SchemaRef,
    batches: impl Iterator<Item = RecordBatch>,
) -> usize {
    let mut out = Vec::with_capacity(64 << 20);
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, schema).unwrap();
    for b in batches {
        w.write(&b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    black_box(out).len()
}

fn read_all(engine: &Engine, access: &Access) -> usize {
    let view = engine.view("persons", access).unwrap();
    let schema = view.mask.projected_schema(None).unwrap();
    let batches =
        (0..view.snapshot.chunks().len()).filter_map(|c| view.chunk(c, None, &schema).unwrap());
    encode(&schema, batches)
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
    let position = |c: &str| def.attributes.iter().position(|a| a.name == c).unwrap();
    // In the definition's order, as the masked schema has them.
    let mut ordinals: Vec<usize> = COLUMNS.iter().map(|c| position(c)).collect();
    ordinals.sort_unstable();
    let municipality = position("municipality");
    // The columns the second agreement does not grant: hidden on rows outside Rīga.
    let hidden: Vec<bool> = ordinals
        .iter()
        .map(|&o| !["personal_code", "municipality"].contains(&def.attributes[o].name.as_str()))
        .collect();
    // The rows of Rīga, per chunk.
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
    let projected_schema = Arc::new(snap.chunks()[0].schema().project(&ordinals).unwrap());
    g.bench_function("baseline_project", |b| {
        b.iter(|| {
            encode(
                &projected_schema,
                snap.chunks().iter().map(|c| c.project(&ordinals).unwrap()),
            )
        })
    });
    let column_mask = grants(false);
    g.bench_function("column_mask", |b| {
        b.iter(|| read_all(&engine, &column_mask))
    });
    let scoped = grants(true);
    g.bench_function("row_scope", |b| b.iter(|| read_all(&engine, &scoped)));
    g.bench_function("row_scope_filter_only", |b| {
        b.iter(|| {
            encode(
                &projected_schema,
                snap.chunks().iter().zip(&in_riga).map(|(c, keep)| {
                    arrow::compute::filter_record_batch(&c.project(&ordinals).unwrap(), keep)
                        .unwrap()
                }),
            )
        })
    });
    let cells = two_agreements();
    let cells_schema = engine
        .view("persons", &cells)
        .unwrap()
        .mask
        .projected_schema(None)
        .unwrap();
    g.bench_function("cell_mask", |b| b.iter(|| read_all(&engine, &cells)));
    g.bench_function("cell_mask_validity_only", |b| {
        b.iter(|| {
            let batches = snap.chunks().iter().zip(&in_riga).map(|(chunk, visible)| {
                let projected = chunk.project(&ordinals).unwrap();
                let columns: Vec<ArrayRef> = projected
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| {
                        if hidden[i] {
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
                RecordBatch::try_new(Arc::clone(&cells_schema), columns).unwrap()
            });
            encode(&cells_schema, batches)
        })
    });
    g.finish();
    c.final_summary();
}

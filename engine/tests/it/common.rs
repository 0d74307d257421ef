//! Shared builders for the engine's integration tests.

use std::sync::Arc;

use dagr_engine::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use dagr_engine::arrow::datatypes::{DataType, Field, Schema};
use dagr_engine::arrow::util::pretty::pretty_format_batches;
use dagr_engine::{Access, Attribute, DatasetDefinition, Engine, EngineConfig, Grant};

pub const MUNICIPALITIES: [&str; 3] = ["Rīga", "Jūrmala", "Ogre"];

/// `people`: personal_code (key), given_name, municipality, income, secret.
pub fn people_def() -> DatasetDefinition {
    DatasetDefinition {
        name: "people".into(),
        owner: "PMLP".into(),
        description: "test persons".into(),
        primary_key: vec!["personal_code".into()],
        attributes: vec![
            Attribute::new("personal_code", DataType::Utf8, "code").personal("personal_code"),
            Attribute::new("given_name", DataType::Utf8, "name").personal("personal_code"),
            Attribute::new("municipality", DataType::Utf8, "where").required(),
            Attribute::new("income", DataType::Int64, "EUR").personal("personal_code"),
            Attribute::new("secret", DataType::Utf8, "never granted"),
        ],
    }
}

pub fn code(i: usize) -> String {
    format!("P{i:07}")
}

/// `n` people; row `i` lives in `MUNICIPALITIES[i % 3]`; income is `tag` for every row
/// (so a reader can tell versions apart).
pub fn people(n: usize, tag: i64) -> Vec<RecordBatch> {
    let schema = people_def().validated().unwrap().arrow_schema();
    let mut out = Vec::new();
    let mut start = 0;
    // Uneven batch sizes, to exercise re-chunking.
    for size in [1000usize, 70_000, 5, 100_000].iter().cycle() {
        if start >= n {
            break;
        }
        let end = (start + size).min(n);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values((start..end).map(code))),
            Arc::new(StringArray::from_iter_values(
                (start..end).map(|i| format!("Name{i}")),
            )),
            Arc::new(StringArray::from_iter_values(
                (start..end).map(|i| MUNICIPALITIES[i % 3]),
            )),
            Arc::new(Int64Array::from_iter_values((start..end).map(|_| tag))),
            Arc::new(StringArray::from_iter_values(
                (start..end).map(|i| format!("s{i}")),
            )),
        ];
        out.push(RecordBatch::try_new(Arc::clone(&schema), cols).unwrap());
        start = end;
    }
    out
}

/// A batch with an arbitrary schema, for validation tests.
pub fn batch(fields: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, fields.into_iter().map(|(_, a)| a).collect()).unwrap()
}

pub async fn open(dir: &std::path::Path) -> Arc<Engine> {
    Arc::new(
        Engine::open_dir(dir, EngineConfig::default())
            .await
            .unwrap(),
    )
}

/// An engine in `dir` with `people` loaded (`n` rows, tag 1).
pub async fn with_people(dir: &std::path::Path, n: usize) -> Arc<Engine> {
    let e = open(dir).await;
    e.create_dataset(people_def()).await.unwrap();
    e.load_batches("people", people(n, 1)).await.unwrap();
    e
}

pub fn grants(list: Vec<(&str, Vec<Grant>)>) -> Access {
    Access::Grants(list.into_iter().map(|(d, g)| (d.to_owned(), g)).collect())
}

/// Run a query and return its result as a pretty table, or the error message.
pub async fn sql(engine: &Arc<Engine>, access: &Access, q: &str) -> Result<String, String> {
    let batches = sql_batches(engine, access, q).await?;
    Ok(pretty_format_batches(&batches).unwrap().to_string())
}

pub async fn sql_batches(
    engine: &Arc<Engine>,
    access: &Access,
    q: &str,
) -> Result<Vec<RecordBatch>, String> {
    let r = engine.query(q, access).await.map_err(|e| e.to_string())?;
    r.collect().await.map_err(|e| e.to_string())
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

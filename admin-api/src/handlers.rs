//! Thin handlers: parse, call the engine, shape the JSON.

use axum::Json;
use axum::extract::{Path, Query, State};
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::json::{WriterBuilder, writer::JsonArray};
use dagr_engine::{Access, Engine};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::{ApiError, Result};

#[derive(Serialize)]
pub(crate) struct Health {
    status: &'static str,
    datasets: usize,
    version: &'static str,
}

pub(crate) async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        datasets: s.engine.dataset_names().len(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// One attribute in the catalog.
#[derive(Serialize)]
pub(crate) struct AttributeInfo {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    personal: bool,
    description: String,
}

/// One dataset in the catalog.
#[derive(Serialize)]
pub(crate) struct DatasetInfo {
    name: String,
    owner: String,
    description: String,
    version: Option<u64>,
    rows: usize,
    loaded_at: Option<String>,
    primary_key: Vec<String>,
    attributes: Vec<AttributeInfo>,
}

fn dataset_info(engine: &Engine, name: &str) -> Result<DatasetInfo> {
    let def = engine.definition(name)?;
    let snap = engine.current_opt(name)?;
    Ok(DatasetInfo {
        name: def.name.clone(),
        owner: def.owner.clone(),
        description: def.description.clone(),
        version: snap.as_ref().map(|s| s.version()),
        rows: snap.as_ref().map_or(0, |s| s.num_rows()),
        loaded_at: snap.as_ref().map(|s| s.created_at().to_rfc3339()),
        primary_key: def.primary_key.clone(),
        attributes: def
            .attributes
            .iter()
            .map(|a| AttributeInfo {
                name: a.name.clone(),
                data_type: a.data_type.to_string(),
                personal: a.personal,
                description: a.description.clone(),
            })
            .collect(),
    })
}

pub(crate) async fn list_datasets(State(s): State<AppState>) -> Result<Json<Vec<DatasetInfo>>> {
    s.engine
        .dataset_names()
        .iter()
        .map(|n| dataset_info(&s.engine, n))
        .collect::<Result<Vec<_>>>()
        .map(Json)
}

pub(crate) async fn get_dataset(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DatasetInfo>> {
    dataset_info(&s.engine, &name).map(Json)
}

#[derive(Serialize)]
pub(crate) struct RecordResponse {
    dataset: String,
    version: u64,
    record: Map<String, Value>,
}

pub(crate) async fn get_record(
    State(s): State<AppState>,
    Path((name, key)): Path<(String, String)>,
) -> Result<Json<RecordResponse>> {
    // No authentication yet (governance issue): reads are unrestricted but take the same
    // masked path as every other read.
    let view = s.engine.view(&name, &Access::Unrestricted)?;
    let key = view.snapshot.parse_key(&key)?;
    let Some(batch) = view.lookup(&key)? else {
        return Err(ApiError::NotFound(format!(
            "dataset `{name}` has no record with key {} in version {}",
            key.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            view.snapshot.version()
        )));
    };
    let record = batch_to_objects(&batch)?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(Json(RecordResponse {
        dataset: name,
        version: view.snapshot.version(),
        record,
    }))
}

/// Most records one `GET .../records` returns.
pub(crate) const MAX_RECORDS_PAGE: usize = 1000;

#[derive(serde::Deserialize)]
pub(crate) struct HeadParams {
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(crate) struct RecordsResponse {
    dataset: String,
    version: u64,
    records: Vec<Map<String, Value>>,
}

/// The first records of a dataset (a sample for people exploring the catalog).
pub(crate) async fn head_records(
    State(s): State<AppState>,
    Path(name): Path<String>,
    params: std::result::Result<Query<HeadParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordsResponse>> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = params.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_RECORDS_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_RECORDS_PAGE}; got {limit}"
        )));
    }
    let view = s.engine.view(&name, &Access::Unrestricted)?;
    let batch = view.head(limit)?;
    Ok(Json(RecordsResponse {
        dataset: name,
        version: view.snapshot.version(),
        records: batch_to_objects(&batch)?,
    }))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource; the API is described in docs/api.md".into())
}

/// Rows of a batch as JSON objects, nulls written explicitly.
pub(crate) fn batch_to_objects(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>> {
    let mut buf = Vec::new();
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buf);
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| ApiError::Engine(dagr_engine::Error::Internal(e.to_string())))?;
    drop(writer);
    if buf.is_empty() {
        return Ok(vec![]);
    }
    serde_json::from_slice(&buf)
        .map_err(|e| ApiError::Engine(dagr_engine::Error::Internal(e.to_string())))
}

//! Thin handlers: parse, call the engine, shape the JSON.

use axum::Json;
use axum::extract::{Path, State};
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::json::{WriterBuilder, writer::JsonArray};
use dagr_engine::{AccessPolicy, Engine};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller, Params};
use crate::governance::GovError;
use crate::model::DatasetMeta;

/// Liveness and a summary.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    status: &'static str,
    datasets: usize,
    version: &'static str,
}

/// Liveness (no authentication).
#[utoipa::path(get, path = "/api/v1/health", tag = "meta", responses((status = 200, body = Health)))]
pub(crate) async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        datasets: s.engine.dataset_names().len(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// One attribute in the catalog.
#[derive(Serialize, ToSchema)]
pub(crate) struct AttributeInfo {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    personal: bool,
    description: String,
}

/// One dataset in the catalog.
#[derive(Serialize, ToSchema)]
pub(crate) struct DatasetInfo {
    name: String,
    owner: String,
    description: String,
    version: Option<u64>,
    rows: usize,
    loaded_at: Option<String>,
    primary_key: Vec<String>,
    attributes: Vec<AttributeInfo>,
    /// Days the owner has to decide an access request.
    sla_days: Option<i64>,
    /// The owner's provider systems that feed it.
    provider_systems: Vec<i64>,
}

fn dataset_info(engine: &Engine, name: &str, meta: Option<&DatasetMeta>) -> Result<DatasetInfo> {
    let def = engine.definition(name)?;
    let snap = engine.current_opt(name)?;
    Ok(DatasetInfo {
        sla_days: meta.map(|m| m.sla_days),
        provider_systems: meta.map(|m| m.provider_systems.clone()).unwrap_or_default(),
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

/// The catalog: every dataset with its attributes (metadata is not secret; data is).
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets",
    responses((status = 200, body = Vec<DatasetInfo>), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_datasets(
    State(s): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<DatasetInfo>>> {
    let metas = s.gov.store().datasets().await.map_err(GovError::from)?;
    s.engine
        .dataset_names()
        .iter()
        .map(|n| dataset_info(&s.engine, n, metas.iter().find(|m| &m.name == n)))
        .collect::<Result<Vec<_>>>()
        .map(Json)
}

/// One dataset of the catalog.
#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "Dataset")),
    responses((status = 200, body = DatasetInfo), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_dataset(
    State(s): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DatasetInfo>> {
    let meta = s.gov.store().dataset(&name).await.map_err(GovError::from)?;
    dataset_info(&s.engine, &name, meta.as_ref()).map(Json)
}

/// One record, with only the caller's granted attributes.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecordResponse {
    dataset: String,
    version: u64,
    #[schema(value_type = Object)]
    record: Map<String, Value>,
}

/// One record by primary key (composite keys joined by `,`), masked by the caller's
/// agreements: only granted attributes; 404 for a row outside the granted scope; 403 when
/// nothing of the dataset is granted.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/records/{key}", tag = "records",
    params(("name" = String, Path, description = "Dataset"),
        ("key" = String, Path, description = "Primary key value(s), comma-separated")),
    responses((status = 200, body = RecordResponse), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_record(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((name, key)): Path<(String, String)>,
) -> Result<Json<RecordResponse>> {
    let access = s.gov.policy().access(&p);
    let view = s.engine.view(&name, &access)?;
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

/// Parameters of the records sample.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HeadParams {
    /// Records to return, 1–1000 (default 10).
    limit: Option<usize>,
}

/// A sample of records, masked by the caller's agreements.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecordsResponse {
    dataset: String,
    version: u64,
    #[schema(value_type = Vec<Object>)]
    records: Vec<Map<String, Value>>,
}

/// The first records of a dataset that the caller may see (a sample for people exploring
/// the catalog), masked like every other read.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/records", tag = "records",
    params(("name" = String, Path, description = "Dataset"), HeadParams),
    responses((status = 200, body = RecordsResponse), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn head_records(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Params(params): Params<HeadParams>,
) -> Result<Json<RecordsResponse>> {
    let limit = params.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_RECORDS_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_RECORDS_PAGE}; got {limit}"
        )));
    }
    let access = s.gov.policy().access(&p);
    let view = s.engine.view(&name, &access)?;
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

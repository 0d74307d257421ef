//! Thin handlers: parse, call the engine, shape the JSON.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderName;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::json::{WriterBuilder, writer::JsonArray};
use dagr_engine::{AccessPolicy, AuditContext, Channel, Engine, MaskedView, Principal, ReadLog};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller, Params, REQUEST_ID_HEADER, ReadContext};
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
/// nothing of the dataset is granted. A record with personal attributes needs the purpose
/// header, and is returned only once its access record is committed.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/records/{key}", tag = "records",
    params(("name" = String, Path, description = "Dataset"),
        ("key" = String, Path, description = "Primary key value(s), comma-separated"),
        ("x-dagr-purpose" = Option<String>, Header, description = "Why the data is used; required when the answer carries personal attributes"),
        ("x-request-id" = Option<String>, Header, description = "Your request id, kept in the access record (one is made up otherwise)")),
    responses((status = 200, body = RecordResponse), (status = 400, body = Problem, description = "No purpose declared for personal data"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 429, body = Problem, description = "Over the token's requests per second; see `Retry-After`"),
        (status = 503, body = Problem, description = "The access record cannot be written; no data is returned")),
    security(("bearer" = [])))]
pub(crate) async fn get_record(
    State(s): State<AppState>,
    Caller(p): Caller,
    read: ReadContext,
    Path((name, key)): Path<(String, String)>,
) -> Result<([(HeaderName, String); 1], Json<RecordResponse>)> {
    crate::quotas::admit(&s, &p)?;
    let (view, reads) = audited_view(&s, &p, &read, &name)?;
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
    let query = format!("GET /api/v1/datasets/{name}/records/{key:?}");
    commit_reads(&s, &p, &read, query, &reads).await?;
    Ok((
        [(HeaderName::from_static(REQUEST_ID_HEADER), read.request_id)],
        Json(RecordResponse {
            dataset: name,
            version: view.snapshot.version(),
            record,
        }),
    ))
}

/// The caller's view of a dataset, noting what it hands out; refused at once when it would
/// hand out personal attributes and the caller declared no purpose.
fn audited_view(
    s: &AppState,
    p: &Principal,
    read: &ReadContext,
    name: &str,
) -> Result<(MaskedView, ReadLog)> {
    let access = s.gov.policy().access(p);
    let reads = ReadLog::new();
    let view = s.engine.view(name, &access)?.with_log(reads.clone());
    view.note_projection(None);
    reads.require_purpose(read.purpose.as_deref())?;
    Ok((view, reads))
}

/// Commit the access records of a read before its response is released: if the audit log
/// cannot take them, the caller gets 503 and no data.
async fn commit_reads(
    s: &AppState,
    p: &Principal,
    read: &ReadContext,
    query: String,
    reads: &ReadLog,
) -> Result<()> {
    let context = std::sync::Arc::new(AuditContext {
        principal: p.clone(),
        purpose: read.purpose.clone(),
        channel: Channel::Rest,
        request_id: read.request_id.clone(),
        query,
    });
    reads.commit(&context, &s.audit).await?;
    Ok(())
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
    params(("name" = String, Path, description = "Dataset"), HeadParams,
        ("x-dagr-purpose" = Option<String>, Header, description = "Why the data is used; required when the answer carries personal attributes")),
    responses((status = 200, body = RecordsResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 429, body = Problem, description = "Over the token's requests per second; see `Retry-After`"),
        (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn head_records(
    State(s): State<AppState>,
    Caller(p): Caller,
    read: ReadContext,
    Path(name): Path<String>,
    Params(params): Params<HeadParams>,
) -> Result<([(HeaderName, String); 1], Json<RecordsResponse>)> {
    crate::quotas::admit(&s, &p)?;
    let limit = params.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_RECORDS_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_RECORDS_PAGE}; got {limit}"
        )));
    }
    let (view, reads) = audited_view(&s, &p, &read, &name)?;
    let batch = view.head(limit)?;
    let records = batch_to_objects(&batch)?;
    let query = format!("GET /api/v1/datasets/{name}/records?limit={limit}");
    commit_reads(&s, &p, &read, query, &reads).await?;
    Ok((
        [(HeaderName::from_static(REQUEST_ID_HEADER), read.request_id)],
        Json(RecordsResponse {
            dataset: name,
            version: view.snapshot.version(),
            records,
        }),
    ))
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

//! The REST resources of loads: upload a snapshot, read a load, a dataset's load history.
//!
//! These routes have a state of their own ([`LoadsState`]: the API's [`AppState`] and the
//! [`Loads`] service) and are outside the API's 1 MiB body limit and 30 s request timeout:
//! an upload is bounded by [`super::LoadsConfig::max_upload_bytes`] and its idle timeout
//! instead.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::{LoadError, Loads, PARQUET_CONTENT_TYPES};
use crate::AppState;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller, PageParams, Params, paged};
use crate::model::{Load, LoadStatus};

/// The state of the load routes.
#[derive(Debug, Clone)]
pub(crate) struct LoadsState {
    /// The API's shared state.
    pub(crate) app: AppState,
    /// The load service.
    pub(crate) loads: Arc<Loads>,
}

impl FromRequestParts<LoadsState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &LoadsState) -> Result<Self> {
        Caller::from_request_parts(parts, &state.app).await
    }
}

/// The load routes, with their own layers (no body limit on uploads; the request timeout on
/// reads).
pub(crate) fn routes(state: LoadsState) -> Router {
    Router::new()
        .route(
            "/api/v1/datasets/{name}/loads",
            get(list_loads)
                .layer(crate::request_timeout())
                .merge(post(upload).layer(DefaultBodyLimit::disable())),
        )
        .route(
            "/api/v1/loads/{id}",
            get(get_load).layer(crate::request_timeout()),
        )
        .with_state(state)
}

/// A Parquet file (in the OpenAPI document).
pub(crate) struct ParquetFile;

impl utoipa::PartialSchema for ParquetFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/vnd.apache.parquet")
            .description(Some(
                "A Parquet file with the dataset's columns (by name, with its types)",
            ))
            .into()
    }
}

impl ToSchema for ParquetFile {}

/// Parameters of an upload.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadParams {
    /// Answer when the load has ended (200 committed, 422 refused) rather than with 202 as
    /// soon as the body is in.
    wait: Option<bool>,
}

/// The declared content type must be a Parquet file's (415 otherwise).
fn check_content_type(headers: &HeaderMap) -> Result<()> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if PARQUET_CONTENT_TYPES.contains(&essence.as_str()) {
        Ok(())
    } else if declared.is_empty() {
        Err(LoadError::UnsupportedMediaType("no content type".into()).into())
    } else {
        Err(LoadError::UnsupportedMediaType(declared).into())
    }
}

/// The declared body length, if any.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::BadRequest("content-length: not a number".into()))
        })
        .transpose()
}

fn with_location(status: StatusCode, load: &Load) -> Response {
    (
        status,
        [(header::LOCATION, format!("/api/v1/loads/{}", load.id))],
        Json(load),
    )
        .into_response()
}

/// Load a new snapshot of a dataset from a Parquet file in the body (an owner of the
/// dataset, or an admin). The body is streamed to disk, up to the server's limit (8 GiB by
/// default). Answers 202 with the load (`validating`) as soon as the body is in; the load
/// then ends `committed` or `refused` (see `GET /api/v1/loads/{id}`). With `?wait=true` it
/// answers when the load has ended: 200 committed, or 422 refused with the load and its
/// reasons. A refused load changes nothing.
#[utoipa::path(post, path = "/api/v1/datasets/{name}/loads", tag = "loads",
    params(("name" = String, Path, description = "Dataset"), UploadParams),
    request_body(content(
        (ParquetFile = "application/vnd.apache.parquet"),
        (ParquetFile = "application/octet-stream")),
        description = "The whole new snapshot, as one Parquet file"),
    responses(
        (status = 202, body = Load, description = "The body is in; validation runs",
            headers(("location" = String, description = "The load: `/api/v1/loads/{id}`"))),
        (status = 200, body = Load, description = "`?wait=true`: committed"),
        (status = 422, body = Load, description = "`?wait=true`: refused, with reasons"),
        (status = 400, body = Problem, description = "The body broke off; the load is refused"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem, description = "Larger than the server's limit (`upload-too-large`)"),
        (status = 415, body = Problem, description = "Not declared as Parquet"),
        (status = 503, body = Problem, description = "Uploads disabled, or the metadata store is unavailable")),
    security(("bearer" = [])))]
pub(crate) async fn upload(
    State(s): State<LoadsState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Params(q): Params<UploadParams>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    s.app.gov.loadable_dataset(&p, &name).await?;
    let limit = s
        .loads
        .config()
        .ok_or(LoadError::Disabled)?
        .max_upload_bytes;
    check_content_type(&headers)?;
    if content_length(&headers)?.is_some_and(|n| n > limit) {
        return Err(LoadError::TooLarge { limit }.into());
    }
    let accepted = s.loads.receive(&p, &name, body).await?;
    if !q.wait.unwrap_or(false) {
        return Ok(with_location(StatusCode::ACCEPTED, &accepted.load));
    }
    let load = match accepted.done.await {
        Ok(load) => load,
        // The end could not be recorded (logged), or the server is stopping: the load as
        // the store has it.
        Err(_) => s
            .app
            .gov
            .load(&p, accepted.load.id)
            .await
            .unwrap_or(accepted.load),
    };
    let status = match load.status {
        LoadStatus::Committed => StatusCode::OK,
        LoadStatus::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        LoadStatus::Receiving | LoadStatus::Validating => StatusCode::ACCEPTED,
    };
    Ok(with_location(status, &load))
}

/// One load (an owner of its dataset, or an admin; 404 for anyone else).
#[utoipa::path(get, path = "/api/v1/loads/{id}", tag = "loads",
    params(("id" = i64, Path, description = "Load id")),
    responses((status = 200, body = Load), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_load(
    State(s): State<LoadsState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Load>> {
    Ok(Json(s.app.gov.load(&p, id).await?))
}

/// The load history of a dataset, newest first (its owners, or an admin).
#[utoipa::path(get, path = "/api/v1/datasets/{name}/loads", tag = "loads",
    params(("name" = String, Path, description = "Dataset"), PageParams),
    responses((status = 200, body = Vec<Load>), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_loads(
    State(s): State<LoadsState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    uri: Uri,
    Params(q): Params<PageParams>,
) -> Result<Response> {
    let page = q.page()?;
    let items = s.app.gov.loads(&p, &name, &page).await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |l| {
        l.id.to_string()
    }))
}

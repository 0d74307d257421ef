//! The handlers and the router of TAPIS under `/api/v1/tapis` (docs/tapis.md). Reads of
//! documents, rules and institutions are public (planning documents and due dates are
//! public); a coordination link is its own credential; everything else needs a token, and
//! the caller's role is checked before a body is read.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::AppState;
use crate::api::created;
use crate::error::{Problem, Result};
use crate::extract::{Caller as Auth, Params};
use crate::gate::RawJson;

use super::comments::{
    AnswerBlock, CommentView, Filter, Labels, NewAnswer, NewComment, ReceiptView, Split, Submitted,
};
use super::consultation::{Consultation, NewConsultation, NewVersion, Version};
use super::coordination::{Answer, Extension, LinkView, NewRequest, Request};
use super::files::VersionFile;
use super::model::{Document, NewDocument, StageMove};
use super::rules::Rules;
use super::service::{self, Asked, Caller};
use super::store::{HistoryEntry, Institution};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tapis/rules", get(get_rules).patch(patch_rules))
        .route("/api/v1/tapis/institutions", get(list_institutions))
        .route("/api/v1/tapis/institutions/{code}", put(put_institution))
        .route("/api/v1/tapis/planners", post(add_planner))
        .route(
            "/api/v1/tapis/documents",
            get(list_documents).post(create_document),
        )
        .route("/api/v1/tapis/documents/{id}", get(get_document))
        .route("/api/v1/tapis/documents/{id}/stage", post(move_stage))
        .route(
            "/api/v1/tapis/documents/{id}/territory",
            post(set_territory),
        )
        .route("/api/v1/tapis/documents/{id}/history", get(history))
        .route(
            "/api/v1/tapis/documents/{id}/institutions",
            get(institutions_for),
        )
        .route(
            "/api/v1/tapis/documents/{id}/coordination-requests",
            get(list_requests).post(send_request),
        )
        .route(
            "/api/v1/tapis/documents/{id}/coordination-requests/{request}/extend",
            post(extend),
        )
        .route(
            "/api/v1/tapis/documents/{id}/versions",
            get(list_versions).post(add_version),
        )
        .route(
            "/api/v1/tapis/documents/{id}/versions/{version}",
            get(get_version),
        )
        .route(
            "/api/v1/tapis/documents/{id}/consultations",
            get(list_consultations).post(schedule),
        )
        .route(
            "/api/v1/tapis/responses/{token}",
            get(get_response).post(post_response),
        )
        .merge(super::help::routes())
        .route(
            "/api/v1/tapis/consultations/{cid}/comments",
            get(list_comments).post(add_comment),
        )
        .route("/api/v1/tapis/consultations/{cid}/report", get(report))
        .route("/api/v1/tapis/comments/{id}", patch(label_comment))
        .route("/api/v1/tapis/comments/{id}/split", post(split_comment))
        .route("/api/v1/tapis/comments/{id}/answer", post(answer_comment))
        .route("/api/v1/tapis/receipts/{rid}", get(receipt))
        .route("/api/v1/tapis/answer-blocks", get(answer_blocks))
        .route("/api/v1/tapis/answer-blocks/{code}", put(put_answer_block))
        .merge(super::parcels::routes())
}

/// The routes of version files: outside the API's body limit and request timeout (a file
/// streams in and out within [`super::files::MAX_FILE_BYTES`]).
pub fn file_routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/tapis/documents/{id}/versions/{version}/files/{name}",
        get(get_file).merge(post(add_file).layer(DefaultBodyLimit::disable())),
    )
}

async fn caller(s: &AppState, p: &dagr_engine::Principal) -> Result<Caller> {
    Ok(service::caller(s, p).await?)
}

/// The rules: deadlines per document type, institutions, the calendar's days, sources.
#[utoipa::path(get, path = "/api/v1/tapis/rules", tag = "tapis",
    responses((status = 200, body = Rules)))]
pub(crate) async fn get_rules(State(s): State<AppState>) -> Result<Json<Rules>> {
    Ok(Json(service::rules(&s).await?))
}

/// Change the rules with an RFC 7396 merge patch (an admin): a new version, forward only.
/// `holidays` and `working_days` replace the working-day calendar's entries.
#[utoipa::path(patch, path = "/api/v1/tapis/rules", tag = "tapis", request_body = Object,
    responses((status = 200, body = Rules), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn patch_rules(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> Result<Json<Rules>> {
    let c = caller(&s, &p).await?;
    service::require_admin(&c)?;
    let patch: serde_json::Value = body.parse()?;
    Ok(Json(service::patch_rules(&s, &c, &patch).await?))
}

/// The institutions documents are coordinated with.
#[utoipa::path(get, path = "/api/v1/tapis/institutions", tag = "tapis",
    responses((status = 200, body = [Institution])))]
pub(crate) async fn list_institutions(State(s): State<AppState>) -> Result<Json<Vec<Institution>>> {
    Ok(Json(service::institutions(&s).await?))
}

/// An institution's name and address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstitutionInput {
    name: String,
    email: String,
}

/// Add or change an institution (an admin).
#[utoipa::path(put, path = "/api/v1/tapis/institutions/{code}", tag = "tapis", request_body = InstitutionInput,
    params(("code" = String, Path, description = "The institution's code")),
    responses((status = 200, body = Institution), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_institution(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(code): Path<String>,
    body: RawJson,
) -> Result<Json<Institution>> {
    let c = caller(&s, &p).await?;
    service::require_admin(&c)?;
    let b: InstitutionInput = body.parse()?;
    let i = Institution {
        code,
        name: b.name,
        email: b.email,
    };
    Ok(Json(service::set_institution(&s, &c, &i).await?))
}

/// A person to make a planner.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlannerInput {
    /// The user's login (a person of a municipality).
    login: String,
}

/// Make a person of a municipality a planner (an admin).
#[utoipa::path(post, path = "/api/v1/tapis/planners", tag = "tapis", request_body = PlannerInput,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_planner(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> Result<StatusCode> {
    let c = caller(&s, &p).await?;
    service::require_admin(&c)?;
    let b: PlannerInput = body.parse()?;
    service::add_planner(&s, &c, &b.login).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which documents.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// One municipality's.
    organisation: Option<String>,
    /// At most (default 100, 1–500).
    limit: Option<i64>,
    /// Ids below this (the last id of the previous page).
    before: Option<i64>,
}

/// Planning documents, newest first (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents", tag = "tapis", params(ListParams),
    responses((status = 200, body = [Document]), (status = 422, body = Problem)))]
pub(crate) async fn list_documents(
    State(s): State<AppState>,
    Params(q): Params<ListParams>,
) -> Result<Json<Vec<Document>>> {
    Ok(Json(
        service::documents(
            &s,
            q.organisation.as_deref(),
            q.limit.unwrap_or(100),
            q.before,
        )
        .await?,
    ))
}

/// Create a planning document (a planner): stage `initiated`.
#[utoipa::path(post, path = "/api/v1/tapis/documents", tag = "tapis", request_body = NewDocument,
    responses((status = 201, body = Document), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_document(
    State(s): State<AppState>,
    Auth(p): Auth,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: NewDocument = body.parse()?;
    let d = service::create(&s, &c, &b).await?;
    Ok(created(d))
}

/// A planning document (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = Document), (status = 404, body = Problem)))]
pub(crate) async fn get_document(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Document>> {
    Ok(Json(service::document(&s, id).await?))
}

/// Move a document (its planner): the next stage, or back or `cancelled` with a reason.
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/stage", tag = "tapis", request_body = StageMove,
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = Document), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn move_stage(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Document>> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: StageMove = body.parse()?;
    Ok(Json(service::move_stage(&s, &c, id, &b).await?))
}

/// A territory.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TerritoryInput {
    /// GeoJSON Polygon or MultiPolygon (WGS 84).
    #[schema(value_type = Object)]
    geometry: serde_json::Value,
}

/// Set a document's territory (its planner): 422 naming what is wrong, nothing changed.
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/territory", tag = "tapis", request_body = TerritoryInput,
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = Document), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_territory(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<serde_json::Value>> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: TerritoryInput = body.parse()?;
    let d = service::set_territory(&s, &c, id, &b.geometry).await?;
    let area = d.territory.as_ref().map(|t| t.area_m2);
    Ok(Json(serde_json::json!({"area_m2": area, "document": d})))
}

/// The history of a document, oldest first (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/history", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = [HistoryEntry]), (status = 404, body = Problem)))]
pub(crate) async fn history(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<HistoryEntry>>> {
    Ok(Json(service::history(&s, id).await?))
}

/// The institutions to ask about a document under the current rules, and why (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/institutions", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = [Asked]), (status = 404, body = Problem)))]
pub(crate) async fn institutions_for(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Asked>>> {
    Ok(Json(service::institutions_for(&s, id).await?))
}

/// The coordination requests of a document (its planner).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/coordination-requests", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = [Request]), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_requests(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Request>>> {
    let c = caller(&s, &p).await?;
    Ok(Json(service::requests(&s, &c, id).await?))
}

/// Ask an institution for conditions or an opinion (the document's planner): the due date
/// from the rules and the calendar, the link e-mailed.
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/coordination-requests", tag = "tapis", request_body = NewRequest,
    params(("id" = i64, Path, description = "The document")),
    responses((status = 201, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn send_request(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: NewRequest = body.parse()?;
    let r = service::send_request(&s, &c, id, &b).await?;
    Ok(created(r))
}

/// Extend a request's due date with a reason (the document's planner).
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/coordination-requests/{request}/extend", tag = "tapis",
    request_body = Extension,
    params(("id" = i64, Path, description = "The document"), ("request" = i64, Path, description = "The request")),
    responses((status = 200, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn extend(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, request)): Path<(i64, i64)>,
    body: RawJson,
) -> Result<Json<Request>> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: Extension = body.parse()?;
    Ok(Json(service::extend(&s, &c, id, request, &b).await?))
}

/// What a coordination link shows: the request and the document (no token: the link is the
/// credential; 404 for a changed link, 403 for an expired one).
#[utoipa::path(get, path = "/api/v1/tapis/responses/{token}", tag = "tapis",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, body = LinkView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn get_response(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<LinkView>> {
    Ok(Json(service::link(&s, &token).await?))
}

/// Answer through a coordination link, once (409 for a second answer).
#[utoipa::path(post, path = "/api/v1/tapis/responses/{token}", tag = "tapis", request_body = Answer,
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 201, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn post_response(
    State(s): State<AppState>,
    Path(token): Path<String>,
    body: RawJson,
) -> Result<Response> {
    // The link is the credential: checked before the body is read.
    let id = service::verify_link(&s, &token).await?;
    let b: Answer = body.parse()?;
    let r = service::answer(&s, id, &b).await?;
    Ok(created(r))
}

/// The versions of a document, oldest first (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/versions", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = [Version]), (status = 404, body = Problem)))]
pub(crate) async fn list_versions(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Version>>> {
    Ok(Json(service::versions(&s, id).await?))
}

/// Add a version: summary and paragraphs with stable ids (the document's planner).
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/versions", tag = "tapis", request_body = NewVersion,
    params(("id" = i64, Path, description = "The document")),
    responses((status = 201, body = Version), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_version(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: NewVersion = body.parse()?;
    let v = service::add_version(&s, &c, id, &b).await?;
    Ok(created(v))
}

/// One version (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/versions/{version}", tag = "tapis",
    params(("id" = i64, Path, description = "The document"), ("version" = i64, Path, description = "The version")),
    responses((status = 200, body = Version), (status = 404, body = Problem)))]
pub(crate) async fn get_version(
    State(s): State<AppState>,
    Path((id, version)): Path<(i64, i64)>,
) -> Result<Json<Version>> {
    Ok(Json(service::version(&s, id, version).await?))
}

/// The consultations of a document (public).
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/consultations", tag = "tapis",
    params(("id" = i64, Path, description = "The document")),
    responses((status = 200, body = [Consultation]), (status = 404, body = Problem)))]
pub(crate) async fn list_consultations(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Consultation>>> {
    Ok(Json(service::consultations(&s, id).await?))
}

/// Schedule a public consultation of a version (the document's planner, while drafting);
/// it opens and closes by itself, moving the document to `consultation` and `evaluation`.
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/consultations", tag = "tapis", request_body = NewConsultation,
    params(("id" = i64, Path, description = "The document")),
    responses((status = 201, body = Consultation), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn schedule(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: NewConsultation = body.parse()?;
    let out = service::schedule(&s, &c, id, &b).await?;
    Ok(created(out))
}

/// Add a file to a version (the document's planner; the version not frozen): the raw bytes
/// in the body (at most 512 MiB), streamed to the object store. 201 with its SHA-256.
#[utoipa::path(post, path = "/api/v1/tapis/documents/{id}/versions/{version}/files/{name}", tag = "tapis",
    params(("id" = i64, Path, description = "The document"), ("version" = i64, Path, description = "The version"),
        ("name" = String, Path, description = "The file's name in the version")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    responses((status = 201, body = VersionFile), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_file(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, version, name)): Path<(i64, i64, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    if let Some(n) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > super::files::MAX_FILE_BYTES
    {
        return Err(crate::error::ApiError::TooLarge(format!(
            "a file is at most {} bytes",
            super::files::MAX_FILE_BYTES
        )));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let f = service::add_file(
        &s,
        &c,
        id,
        version,
        &name,
        ct.as_deref(),
        body.into_data_stream(),
    )
    .await?;
    Ok(created(f))
}

/// A file of a version (public): its bytes, as an attachment, with its SHA-256 in
/// `Digest` (RFC 3230 `sha-256=` base64) and `ETag`.
#[utoipa::path(get, path = "/api/v1/tapis/documents/{id}/versions/{version}/files/{name}", tag = "tapis",
    params(("id" = i64, Path, description = "The document"), ("version" = i64, Path, description = "The version"),
        ("name" = String, Path, description = "The file's name in the version")),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 404, body = Problem)))]
pub(crate) async fn get_file(
    State(s): State<AppState>,
    Path((id, version, name)): Path<(i64, i64, String)>,
) -> Result<Response> {
    use base64::Engine as _;
    let (f, stream) = service::file(&s, id, version, &name).await?;
    let raw: Vec<u8> = (0..f.sha256.len() / 2)
        .filter_map(|i| u8::from_str_radix(&f.sha256[2 * i..2 * i + 2], 16).ok())
        .collect();
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, f.content_type.clone()),
            (header::CONTENT_LENGTH, f.size.to_string()),
            (header::ETAG, format!("\"{}\"", f.sha256)),
            (
                header::HeaderName::from_static("digest"),
                format!(
                    "sha-256={}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Comment during an open consultation (a citizen, signed in with a subject token) on a
/// paragraph of the consulted version, a map point or a polygon. 201 with the receipt;
/// 409 outside the consultation's start and end.
#[utoipa::path(post, path = "/api/v1/tapis/consultations/{cid}/comments", tag = "tapis", request_body = NewComment,
    params(("cid" = i64, Path, description = "The consultation")),
    responses((status = 201, body = Submitted), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_comment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(cid): Path<i64>,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_citizen(&c)?;
    let b: NewComment = body.parse()?;
    Ok(created(service::add_comment(&s, &c, cid, &b).await?))
}

/// The comments of a consultation and their parts (the document's planner), by id,
/// filtered; no authors.
#[utoipa::path(get, path = "/api/v1/tapis/consultations/{cid}/comments", tag = "tapis",
    params(("cid" = i64, Path, description = "The consultation"), Filter),
    responses((status = 200, body = [CommentView]), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_comments(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(cid): Path<i64>,
    Params(f): Params<Filter>,
) -> Result<Json<Vec<CommentView>>> {
    let c = caller(&s, &p).await?;
    Ok(Json(service::comments(&s, &c, cid, &f).await?))
}

/// Tag and group a comment or part (the document's planner).
#[utoipa::path(patch, path = "/api/v1/tapis/comments/{id}", tag = "tapis", request_body = Labels,
    params(("id" = i64, Path, description = "The comment or part")),
    responses((status = 200, body = CommentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn label_comment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<CommentView>> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: Labels = body.parse()?;
    Ok(Json(service::label(&s, &c, id, &b).await?))
}

/// Split a comment into parts, each a verbatim piece of its text, answered on their own
/// (the document's planner). The original is kept as it was.
#[utoipa::path(post, path = "/api/v1/tapis/comments/{id}/split", tag = "tapis", request_body = Split,
    params(("id" = i64, Path, description = "The comment")),
    responses((status = 201, body = [CommentView]), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn split_comment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: Split = body.parse()?;
    Ok(created(service::split(&s, &c, id, &b).await?))
}

/// Answer a comment or part, once (the document's planner): a decision and a text from
/// standard blocks and free text. The author is told when their comment is answered.
#[utoipa::path(post, path = "/api/v1/tapis/comments/{id}/answer", tag = "tapis", request_body = NewAnswer,
    params(("id" = i64, Path, description = "The comment or part")),
    responses((status = 200, body = CommentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn answer_comment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<CommentView>> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let b: NewAnswer = body.parse()?;
    Ok(Json(service::answer_comment(&s, &c, id, &b).await?))
}

/// A receipt (its author, signed in with a subject token): verified against the stored
/// comment, with the status and the answer. 404 for anyone else.
#[utoipa::path(get, path = "/api/v1/tapis/receipts/{rid}", tag = "tapis",
    params(("rid" = String, Path, description = "The receipt's id")),
    responses((status = 200, body = ReceiptView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn receipt(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(rid): Path<String>,
) -> Result<Json<ReceiptView>> {
    let c = caller(&s, &p).await?;
    Ok(Json(service::receipt(&s, &c, &rid).await?))
}

/// The report of a consultation (the document's planner, or an admin): every comment
/// with its parts and answers, numbered, without identities.
#[utoipa::path(get, path = "/api/v1/tapis/consultations/{cid}/report", tag = "tapis",
    params(("cid" = i64, Path, description = "The consultation")),
    responses((status = 200, body = super::report::Report), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn report(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(cid): Path<i64>,
) -> Result<Response> {
    let c = caller(&s, &p).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        service::report_body(&s, &c, cid).await?,
    )
        .into_response())
}

/// The standard answer blocks of the planner's municipality.
#[utoipa::path(get, path = "/api/v1/tapis/answer-blocks", tag = "tapis",
    responses((status = 200, body = [AnswerBlock]), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn answer_blocks(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<AnswerBlock>>> {
    let c = caller(&s, &p).await?;
    Ok(Json(service::answer_blocks(&s, &c).await?))
}

/// Add or replace a standard answer block of the planner's municipality.
#[utoipa::path(put, path = "/api/v1/tapis/answer-blocks/{code}", tag = "tapis", request_body = AnswerBlock,
    params(("code" = String, Path, description = "The block's code")),
    responses((status = 200, body = AnswerBlock), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_answer_block(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(code): Path<String>,
    body: RawJson,
) -> Result<Json<AnswerBlock>> {
    let c = caller(&s, &p).await?;
    service::require_planner(&c)?;
    let mut b: AnswerBlock = body.parse()?;
    b.code = code;
    Ok(Json(service::put_answer_block(&s, &c, &b).await?))
}

//! The handlers and the router of TAPIS under `/api/v1/tapis` (docs/tapis.md). Reads of
//! documents, rules and institutions are public (planning documents and due dates are
//! public); a coordination link is its own credential; everything else needs a token, and
//! the caller's role is checked before a body is read.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::AppState;
use crate::api::created;
use crate::error::{Problem, Result};
use crate::extract::{Caller as Auth, Params};
use crate::gate::RawJson;

use super::consultation::{Consultation, NewConsultation, NewVersion, Version};
use super::coordination::{Answer, Extension, LinkView, NewRequest, Request};
use super::model::{Document, NewDocument, StageMove};
use super::rules::Rules;
use super::service::{self, Asked, Caller};
use super::store::{HistoryEntry, Institution, TapisStore};

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
}

async fn caller(s: &AppState, p: &dagr_engine::Principal) -> Result<Caller> {
    Ok(Caller::of(&TapisStore::new(s.gov.store()), p).await?)
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

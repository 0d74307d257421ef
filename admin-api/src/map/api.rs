//! MAP's REST resources under `/api/v1/map` (docs/map.md). Every handler first finds out
//! who the caller is in MAP ([`Actor::of`]: staff with MAP roles, an applicant, or an
//! admin) and refuses callers MAP does not serve before it reads the body.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::AppState;
use crate::api::created;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller, Params};
use crate::gate::RawJson;
use crate::governance::GovError;
use crate::model::Time;

use super::model::*;
use super::service::{self, ListQuery, MapCaller};
use super::store::{
    AccessEntry, AidTotals, ApplicationSummary, HistoryEntry, InboxMessage, Regime, StaffRole,
    UndertakingLink,
};
use super::{deadlines, settings};

/// The MAP routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/map/grantors", post(set_grantor))
        .route("/api/v1/map/staff", get(list_staff).post(add_staff))
        .route(
            "/api/v1/map/programmes",
            get(list_programmes).post(create_programme),
        )
        .route("/api/v1/map/programmes/{id}", get(get_programme))
        .route("/api/v1/map/programmes/{id}/ranking", get(ranking))
        .route("/api/v1/map/programmes/{id}/decisions", post(decide_all))
        .route(
            "/api/v1/map/programmes/{id}/scoresheet",
            post(set_scoresheet),
        )
        .route(
            "/api/v1/map/applications",
            get(list_applications).post(create_application),
        )
        .route(
            "/api/v1/map/applications/{id}",
            get(get_application).patch(edit_application),
        )
        .route("/api/v1/map/applications/{id}/submit", post(submit))
        .route(
            "/api/v1/map/applications/{id}/transitions",
            post(transition),
        )
        .route("/api/v1/map/applications/{id}/history", get(history))
        .route("/api/v1/map/applications/{id}/access-log", get(access_log))
        .route(
            "/api/v1/map/undertakings/{registration_number}/aid",
            get(get_aid).post(add_aid),
        )
        .route(
            "/api/v1/map/undertakings/{registration_number}/links",
            get(get_links).post(add_link),
        )
        .route(
            "/api/v1/map/undertakings/{registration_number}/links/{member}",
            delete(remove_link),
        )
        .route("/api/v1/map/regimes", get(list_regimes))
        .route("/api/v1/map/settings", get(get_settings).put(put_settings))
        .route("/api/v1/map/retention", get(retention))
        .route("/api/v1/map/regimes/{code}", put(put_regime))
        .route("/api/v1/map/inbox", get(inbox))
        .route("/api/v1/map/exports/{kind}", get(export))
        .route("/api/v1/map/reports/due", get(due_reports))
}

/// A grantor: an organisation and the consumer system MAP reads the registers under for it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantorInput {
    /// The organisation's code.
    organisation: String,
    /// One of its consumer systems; MAP reads under that system's agreements.
    system: i64,
}

/// Register (or re-point) a grantor (admin).
#[utoipa::path(post, path = "/api/v1/map/grantors", tag = "map", request_body = GrantorInput,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_grantor(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<StatusCode> {
    let c = MapCaller::of(&s, &p).await?;
    if !c.is_admin() {
        return Err(GovError::Forbidden("grantors are registered by an admin".into()).into());
    }
    let b: GrantorInput = body.parse()?;
    service::set_grantor(&s, &c, &b.organisation, b.system).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A MAP role for a person.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaffInput {
    /// The user's login (of a grantor organisation).
    login: String,
    /// The role.
    role: MapRole,
    /// Their personal code, for conflict-of-interest detection.
    personal_code: String,
}

/// Give a person of a grantor a MAP role (admin).
#[utoipa::path(post, path = "/api/v1/map/staff", tag = "map", request_body = StaffInput,
    responses((status = 201, body = StaffRole), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_staff(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    let c = MapCaller::of(&s, &p).await?;
    if !c.is_admin() {
        return Err(GovError::Forbidden("MAP roles are given by an admin".into()).into());
    }
    let b: StaffInput = body.parse()?;
    let r = service::add_staff(&s, &c, &b.login, b.role, &b.personal_code).await?;
    Ok(created(r))
}

/// Which staff to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaffQuery {
    /// The role (default `evaluator`).
    role: Option<MapRole>,
}

/// The staff of the caller's organisation with a role (programme managers and approvers):
/// whom an application can be assigned to.
#[utoipa::path(get, path = "/api/v1/map/staff", tag = "map", params(StaffQuery),
    responses((status = 200, body = [service::StaffMember]), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_staff(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<StaffQuery>,
) -> Result<Json<Vec<service::StaffMember>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(
        service::staff(&c, q.role.unwrap_or(MapRole::Evaluator)).await?,
    ))
}

/// Create a programme (programme manager).
#[utoipa::path(post, path = "/api/v1/map/programmes", tag = "map", request_body = NewProgramme,
    responses((status = 201, body = Programme), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_programme(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    let c = MapCaller::of(&s, &p).await?;
    service::require_programme_manager(&c)?;
    let input: NewProgramme = body.parse()?;
    Ok(created(service::create_programme(&s, &c, input).await?))
}

/// Programmes: staff see their organisation's, applicants all.
#[utoipa::path(get, path = "/api/v1/map/programmes", tag = "map",
    responses((status = 200, body = Vec<Programme>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_programmes(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<Programme>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::programmes(&c).await?))
}

/// One programme, with what is committed, paid and remaining.
#[utoipa::path(get, path = "/api/v1/map/programmes/{id}", tag = "map",
    params(("id" = i64, Path, description = "Programme")),
    responses((status = 200, body = Programme), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_programme(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Programme>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::programme(&c, id).await?))
}

/// A new scoresheet.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScoresheetInput {
    /// The criteria.
    criteria: Vec<Criterion>,
}

/// Change the scoresheet (programme manager): a new version once anything was scored on the
/// current one.
#[utoipa::path(post, path = "/api/v1/map/programmes/{id}/scoresheet", tag = "map", request_body = ScoresheetInput,
    params(("id" = i64, Path, description = "Programme")),
    responses((status = 200, body = Programme), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_scoresheet(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Programme>> {
    let c = MapCaller::of(&s, &p).await?;
    service::require_programme_manager(&c)?;
    let b: ScoresheetInput = body.parse()?;
    Ok(Json(service::set_scoresheet(&c, id, &b.criteria).await?))
}

/// File a draft application (a person acting for a company, with a subject token): the
/// right to represent is checked and the company's data pre-filled from the registers.
#[utoipa::path(post, path = "/api/v1/map/applications", tag = "map", request_body = NewApplication,
    responses((status = 201, body = Application), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_application(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    let c = MapCaller::of(&s, &p).await?;
    if !c.is_applicant() {
        return Err(GovError::Forbidden(
            "applications are filed by a person acting for a company".into(),
        )
        .into());
    }
    let input: NewApplication = body.parse()?;
    Ok(created(service::create_application(&s, &c, input).await?))
}

/// Filters of the application list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this programme's.
    programme: Option<i64>,
    /// Only in this status.
    status: Option<String>,
    /// Items per page, 1–1000 (default 100).
    limit: Option<i64>,
    /// Only ids below this (the last id of the previous page).
    before: Option<i64>,
}

/// Applications: staff see their organisation's (evaluators those assigned to them),
/// applicants their own; newest first.
#[utoipa::path(get, path = "/api/v1/map/applications", tag = "map", params(ListParams),
    responses((status = 200, body = Vec<ApplicationSummary>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_applications(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<ListParams>,
) -> Result<Json<Vec<ApplicationSummary>>> {
    let c = MapCaller::of(&s, &p).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and 1000; got {limit}"
        )));
    }
    let status = match q.status.as_deref() {
        Some(st) => Some(
            Status::parse(st)
                .ok_or_else(|| ApiError::BadRequest(format!("status: `{st}` is not a status")))?,
        ),
        None => None,
    };
    let query = ListQuery {
        programme: q.programme,
        status,
        before: q.before,
        limit,
    };
    Ok(Json(service::applications(&c, &query).await?))
}

/// As-of replay.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AsOf {
    /// Show the application as it was at this time (staff).
    as_of: Option<String>,
}

/// One application as the caller may see it (blind scores; an evaluator only after
/// declaring); staff openings are logged for the applicant.
#[utoipa::path(get, path = "/api/v1/map/applications/{id}", tag = "map",
    params(("id" = i64, Path, description = "Application"), AsOf),
    responses((status = 200, body = Application), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_application(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    Params(q): Params<AsOf>,
) -> Result<Json<Application>> {
    let c = MapCaller::of(&s, &p).await?;
    let as_of = match q.as_of.as_deref() {
        Some(t) => Some(Time::parse(t).ok_or_else(|| {
            ApiError::BadRequest(format!("as_of: `{t}` is not RFC 3339 or a date"))
        })?),
        None => None,
    };
    Ok(Json(service::application(&c, id, as_of).await?))
}

/// Changes to a draft or returned application.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditInput {
    /// Title.
    title: Option<String>,
    /// Requested amount (EUR).
    requested_amount: Option<f64>,
}

/// Edit a draft or returned application (its applicant).
#[utoipa::path(patch, path = "/api/v1/map/applications/{id}", tag = "map", request_body = EditInput,
    params(("id" = i64, Path, description = "Application")),
    responses((status = 200, body = Application), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn edit_application(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Application>> {
    let c = MapCaller::of(&s, &p).await?;
    service::require_visible(&c, id).await?;
    if !c.is_applicant() {
        return Err(GovError::Forbidden(format!(
            "this action is for the person who filed application {id}"
        ))
        .into());
    }
    let b: EditInput = body.parse()?;
    Ok(Json(
        service::edit(&c, id, b.title, b.requested_amount).await?,
    ))
}

/// Submit (or resubmit) an application (its applicant): eligibility is checked against the
/// registers; a failed condition is a 422 naming it.
#[utoipa::path(post, path = "/api/v1/map/applications/{id}/submit", tag = "map",
    params(("id" = i64, Path, description = "Application")),
    responses((status = 200, body = Application), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn submit(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Application>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::submit(&s, &c, id).await?))
}

/// Act on an application: `{"action": ..., ...}` (docs/map.md lists actions and roles).
#[utoipa::path(post, path = "/api/v1/map/applications/{id}/transitions", tag = "map", request_body = Action,
    params(("id" = i64, Path, description = "Application")),
    responses((status = 200, body = Application), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "State, budget, ceiling or conflict"), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn transition(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Application>> {
    let c = MapCaller::of(&s, &p).await?;
    // The caller must see the application before the body is read.
    service::require_visible(&c, id).await?;
    let action: Action = body.parse()?;
    Ok(Json(service::act(&s, &c, id, action).await?))
}

/// The history of an application: every transition with its actor.
#[utoipa::path(get, path = "/api/v1/map/applications/{id}/history", tag = "map",
    params(("id" = i64, Path, description = "Application")),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn history(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<HistoryEntry>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::history(&c, id).await?))
}

/// Who opened the application (role, organisation, time) and the register reads made for
/// it: for its applicant and the grantor's staff.
#[utoipa::path(get, path = "/api/v1/map/applications/{id}/access-log", tag = "map",
    params(("id" = i64, Path, description = "Application")),
    responses((status = 200, body = Vec<AccessEntry>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn access_log(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<AccessEntry>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::access_log(&c, id).await?))
}

/// The aid of the undertaking a company belongs to (its linked companies included), against
/// the de minimis ceiling and every other regime's.
#[utoipa::path(get, path = "/api/v1/map/undertakings/{registration_number}/aid", tag = "map",
    params(("registration_number" = String, Path, description = "The undertaking")),
    responses((status = 200, body = AidTotals), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_aid(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(rn): Path<String>,
) -> Result<Json<AidTotals>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::aid(&c, &rn).await?))
}

/// Aid granted outside MAP.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AidInput {
    /// The regime it was granted under (default `de_minimis`).
    #[serde(default = "de_minimis")]
    regime: AidRegime,
    /// Amount (EUR).
    amount: f64,
    /// When it was granted (RFC 3339 or a date).
    granted_at: String,
}

/// Record aid granted outside MAP (a programme manager), counted in the ceilings from now on.
#[utoipa::path(post, path = "/api/v1/map/undertakings/{registration_number}/aid", tag = "map", request_body = AidInput,
    params(("registration_number" = String, Path, description = "The undertaking")),
    responses((status = 200, body = AidTotals), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_aid(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(rn): Path<String>,
    body: RawJson,
) -> Result<Json<AidTotals>> {
    let c = MapCaller::of(&s, &p).await?;
    service::require_programme_manager(&c)?;
    let b: AidInput = body.parse()?;
    Ok(Json(
        service::add_external_aid(&c, &rn, &b.regime, b.amount, &b.granted_at).await?,
    ))
}

fn de_minimis() -> AidRegime {
    AidRegime::parse(crate::map::model::DE_MINIMIS).expect("a valid code")
}

/// The links that make the undertaking of a company (MAP staff, admins).
#[utoipa::path(get, path = "/api/v1/map/undertakings/{registration_number}/links", tag = "map",
    params(("registration_number" = String, Path, description = "A company of the undertaking")),
    responses((status = 200, body = [UndertakingLink]), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_links(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(rn): Path<String>,
) -> Result<Json<Vec<UndertakingLink>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::links(&c, &rn).await?))
}

/// A company that forms one undertaking with the parent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkInput {
    /// The linked company (registration number).
    registration_number: String,
    /// Why they are one undertaking.
    reason: String,
}

/// Record that a company is one undertaking with the parent (a programme manager or an
/// admin): from now on their aid counts together toward every ceiling.
#[utoipa::path(post, path = "/api/v1/map/undertakings/{registration_number}/links", tag = "map", request_body = LinkInput,
    params(("registration_number" = String, Path, description = "The parent")),
    responses((status = 200, body = AidTotals), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_link(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(rn): Path<String>,
    body: RawJson,
) -> Result<Json<AidTotals>> {
    let c = MapCaller::of(&s, &p).await?;
    service::require_linker(&c)?;
    let b: LinkInput = body.parse()?;
    Ok(Json(
        service::link(&c, &rn, &b.registration_number, &b.reason).await?,
    ))
}

/// Remove a company's link to the parent (a programme manager or an admin).
#[utoipa::path(delete, path = "/api/v1/map/undertakings/{registration_number}/links/{member}", tag = "map",
    params(("registration_number" = String, Path, description = "The parent"),
        ("member" = String, Path, description = "The linked company")),
    responses((status = 200, body = AidTotals), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_link(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((rn, member)): Path<(String, String)>,
) -> Result<Json<AidTotals>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::unlink(&c, &rn, &member).await?))
}

/// The aid regimes: ceilings, periods, what counts toward them, their legal basis.
#[utoipa::path(get, path = "/api/v1/map/regimes", tag = "map",
    responses((status = 200, body = [Regime]), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_regimes(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<Regime>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::regimes(&c).await?))
}

/// Create or change an aid regime (an admin). Forward only: decisions from now on are
/// checked against it.
#[utoipa::path(put, path = "/api/v1/map/regimes/{code}", tag = "map", request_body = RegimeInput,
    params(("code" = String, Path, description = "The regime's code")),
    responses((status = 200, body = Regime), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_regime(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(code): Path<String>,
    body: RawJson,
) -> Result<Json<Regime>> {
    let c = MapCaller::of(&s, &p).await?;
    if !c.is_admin() {
        return Err(GovError::Forbidden("aid regimes are set by an admin".into()).into());
    }
    let code = AidRegime::parse(&code).ok_or_else(|| GovError::Invalid {
        field: "code".into(),
        reason: "an aid regime code is 1-40 of a-z, 0-9 and _, starting with a letter".into(),
    })?;
    let mut b: RegimeInput = body.parse()?;
    b.code = code;
    Ok(Json(service::set_regime(&c, b).await?))
}

/// MAP's settings: document number format, retention, due dates on working days,
/// reminders, each with its source.
#[utoipa::path(get, path = "/api/v1/map/settings", tag = "map",
    responses((status = 200, body = settings::Settings), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_settings(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<settings::Settings>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(settings::get(&c).await?))
}

/// Change MAP's settings (an admin); forward only.
#[utoipa::path(put, path = "/api/v1/map/settings", tag = "map", request_body = settings::SettingsInput,
    responses((status = 200, body = settings::Settings), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_settings(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Json<settings::Settings>> {
    let c = MapCaller::of(&s, &p).await?;
    if !c.is_admin() {
        return Err(GovError::Forbidden("MAP settings are changed by an admin".into()).into());
    }
    let b: settings::SettingsInput = body.parse()?;
    Ok(Json(settings::set(&c, b).await?))
}

/// Applications whose records are past their retention period (programme managers).
#[utoipa::path(get, path = "/api/v1/map/retention", tag = "map",
    responses((status = 200, body = [deadlines::RetentionDue]), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn retention(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<deadlines::RetentionDue>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(deadlines::retention_due(&c).await?))
}

/// The caller's MAP inbox, newest first (programme managers also get their organisation's).
#[utoipa::path(get, path = "/api/v1/map/inbox", tag = "map",
    responses((status = 200, body = Vec<InboxMessage>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn inbox(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<InboxMessage>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::inbox(&c).await?))
}

/// The evaluated applications of a programme by score, best first, each with the budget
/// left if it and every one above were funded as requested (programme managers, approvers).
#[utoipa::path(get, path = "/api/v1/map/programmes/{id}/ranking", tag = "map",
    params(("id" = i64, Path, description = "Programme")),
    responses((status = 200, body = Vec<Ranked>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn ranking(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Ranked>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(service::ranking(&c, id).await?))
}

/// Bulk decisions.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionsInput {
    /// 1–200 decisions, taken in this order.
    decisions: Vec<BulkDecision>,
}

/// Decide several applications of a programme (an approver): each decision on its own,
/// with all its checks; a refused one does not stop the others, and its outcome says why.
#[utoipa::path(post, path = "/api/v1/map/programmes/{id}/decisions", tag = "map", request_body = DecisionsInput,
    params(("id" = i64, Path, description = "Programme")),
    responses((status = 200, body = Vec<BulkOutcome>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn decide_all(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Vec<BulkOutcome>>> {
    let c = MapCaller::of(&s, &p).await?;
    service::require_approver(&c)?;
    let b: DecisionsInput = body.parse()?;
    Ok(Json(service::decide_all(&s, &c, id, b.decisions).await?))
}

/// The period and format of an export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// From (RFC 3339 or a date; default: 30 days ago).
    from: Option<String>,
    /// To, exclusive (RFC 3339, or a date meaning its end; default: now).
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Payment orders (`payments`), accounting entries (`accounting`: commitments, releases,
/// payments, recoveries) or registered documents (`documents`) of the caller's
/// organisation's programmes in a period, as JSON or CSV (accountants, programme managers).
#[utoipa::path(get, path = "/api/v1/map/exports/{kind}", tag = "map",
    params(("kind" = String, Path, description = "`payments`, `accounting` or `documents`"), ExportParams),
    responses((status = 200, body = Vec<super::exports::ExportRow>, description = "JSON, or text/csv with `format=csv`"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn export(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(kind): Path<String>,
    Params(q): Params<ExportParams>,
) -> Result<Response> {
    use super::exports::{self, ExportKind};
    let c = MapCaller::of(&s, &p).await?;
    let kind = ExportKind::parse(&kind).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no export `{kind}`: there are `payments`, `accounting` and `documents`"
        ))
    })?;
    let now = Time::now();
    let from = match q.from.as_deref() {
        Some(t) => Time::parse(t).ok_or_else(|| {
            ApiError::BadRequest(format!("from: `{t}` is not RFC 3339 or a date"))
        })?,
        None => now.plus_days(-30),
    };
    let to = match q.to.as_deref() {
        Some(t) => Time::parse_end(t)
            .ok_or_else(|| ApiError::BadRequest(format!("to: `{t}` is not RFC 3339 or a date")))?,
        None => Time(now.0 + 1),
    };
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "format: `{f}` is not `json` or `csv`"
            )));
        }
    };
    let rows = exports::export(&c, kind, from, to).await?;
    if csv {
        Ok((
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            exports::to_csv(&rows, kind),
        )
            .into_response())
    } else {
        Ok(Json(rows).into_response())
    }
}

/// How far ahead to look.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DueParams {
    /// Reports due within this many days (0–366, default 30); overdue ones always.
    within_days: Option<i64>,
}

/// Reports overdue or due soon under contracts, soonest first: a programme manager's
/// organisation's, an applicant's own.
#[utoipa::path(get, path = "/api/v1/map/reports/due", tag = "map", params(DueParams),
    responses((status = 200, body = Vec<super::deadlines::DueReport>), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn due_reports(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<DueParams>,
) -> Result<Json<Vec<super::deadlines::DueReport>>> {
    let c = MapCaller::of(&s, &p).await?;
    Ok(Json(
        super::deadlines::due_reports(&c, q.within_days.unwrap_or(30)).await?,
    ))
}

//! Governance handlers: organisations, users, systems, tokens, dataset registration, access
//! requests, agreements and schema changes. Each handler authenticates the caller, parses
//! and bounds the input, and calls one method of [`crate::governance::Governance`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use dagr_engine::DatasetDefinition;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller, PageParams, Params, paged};
use crate::gate::{self, RawJson};
use crate::governance::{ApprovalInput, GovError, Governance, IssuedToken, RequestInput};
use crate::model::*;
use crate::store::ListFilter;

/// A 201 with `v` as its JSON body.
pub(crate) fn created<T: Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn time_field(field: &str, value: Option<&str>, end: bool) -> Result<Option<Time>> {
    value
        .map(|v| {
            let t = if end {
                Time::parse_end(v)
            } else {
                Time::parse(v)
            };
            t.ok_or_else(|| {
                ApiError::Gov(GovError::Invalid {
                    field: field.to_owned(),
                    reason: format!("`{v}` is not an RFC 3339 time or a YYYY-MM-DD date"),
                })
            })
        })
        .transpose()
}

// ---- who am I --------------------------------------------------------------------------

/// The authenticated caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `admin`, `owner`, `consumer` or `subject`.
    pub role: String,
    /// Organisation code.
    pub organisation: Option<String>,
    /// System id, for system tokens.
    pub system: Option<String>,
    /// Personal code, for subjects.
    pub subject: Option<String>,
    /// The person's login, for a person's own token (kind `user`).
    pub user: Option<String>,
    /// Token id.
    pub token: Option<String>,
}

/// Who the bearer token stands for.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn me(Caller(p): Caller) -> Json<Me> {
    Json(Me {
        role: p.role.as_str().to_owned(),
        organisation: p.organisation,
        system: p.system,
        subject: p.subject,
        user: p.user,
        token: p.token_id,
    })
}

// ---- organisations ---------------------------------------------------------------------

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisation {
    /// Code: 2–32 of A–Z, 0–9, `_`, `-`.
    pub code: String,
    /// Full name.
    pub name: String,
}

/// Register an organisation (admin).
#[utoipa::path(post, path = "/api/v1/organisations", tag = "organisations",
    request_body = CreateOrganisation,
    responses((status = 201, body = Organisation), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_organisation(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    Governance::require_admin(&p)?;
    let b: CreateOrganisation = body.parse()?;
    Ok(created(
        s.gov.create_organisation(&p, &b.code, &b.name).await?,
    ))
}

/// List organisations by code.
#[utoipa::path(get, path = "/api/v1/organisations", tag = "organisations", params(PageParams),
    responses((status = 200, body = Vec<Organisation>)), security(("bearer" = [])))]
pub(crate) async fn list_organisations(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<PageParams>,
) -> Result<Response> {
    let page = q.page()?;
    let items = s.gov.organisations(&p, &page).await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |o| {
        o.code.clone()
    }))
}

/// One organisation.
#[utoipa::path(get, path = "/api/v1/organisations/{code}", tag = "organisations",
    params(("code" = String, Path, description = "Organisation code")),
    responses((status = 200, body = Organisation), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_organisation(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(code): Path<String>,
) -> Result<Json<Organisation>> {
    Ok(Json(s.gov.organisation(&p, &code).await?))
}

/// New values of an organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganisation {
    /// Full name.
    pub name: String,
}

/// Rename an organisation (admin).
#[utoipa::path(patch, path = "/api/v1/organisations/{code}", tag = "organisations",
    params(("code" = String, Path, description = "Organisation code")),
    request_body = UpdateOrganisation,
    responses((status = 200, body = Organisation), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn update_organisation(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(code): Path<String>,
    body: RawJson,
) -> Result<Json<Organisation>> {
    Governance::require_admin(&p)?;
    let b: UpdateOrganisation = body.parse()?;
    Ok(Json(s.gov.rename_organisation(&p, &code, &b.name).await?))
}

// ---- users -----------------------------------------------------------------------------

/// A new portal user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name.
    pub login: String,
    /// Display name.
    pub name: String,
    /// Organisation code (none for admins).
    pub organisation: Option<String>,
    /// Role.
    pub role: UserRole,
    /// Initial password, 10–1024 characters.
    pub password: String,
}

/// Create a portal user (admin): an admin user. Persons of an organisation are created on
/// the server (`dagr admin create-user`), so that no admin holds a password that reads an
/// organisation's data.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_user(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    Governance::require_admin(&p)?;
    let b: CreateUser = body.parse()?;
    let user = s
        .gov
        .create_user_by_caller(
            &p,
            &b.login,
            &b.name,
            b.organisation.as_deref(),
            b.role,
            &b.password,
        )
        .await?;
    Ok(created(user))
}

/// List users (admin: all; others: their organisation's).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageParams),
    responses((status = 200, body = Vec<User>)), security(("bearer" = [])))]
pub(crate) async fn list_users(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<PageParams>,
) -> Result<Response> {
    let page = q.page()?;
    let items = s.gov.users(&p, &page).await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |u| {
        u.id.to_string()
    }))
}

// ---- systems and tokens ----------------------------------------------------------------

/// A new system.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSystem {
    /// Organisation code (default: the caller's).
    pub organisation: Option<String>,
    /// Name, unique within the organisation.
    pub name: String,
    /// `consumer` or `provider`.
    pub kind: SystemKind,
    /// What it is.
    #[serde(default)]
    pub description: String,
}

/// Register a system (admin, or an owner of the organisation).
#[utoipa::path(post, path = "/api/v1/systems", tag = "systems", request_body = CreateSystem,
    responses((status = 201, body = System), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_system(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    gate::admin_or_owner(&p)?;
    let b: CreateSystem = body.parse()?;
    let org = b
        .organisation
        .clone()
        .or_else(|| p.organisation.clone())
        .ok_or_else(|| {
            ApiError::Gov(GovError::Invalid {
                field: "organisation".into(),
                reason: "required for callers without an organisation".into(),
            })
        })?;
    Ok(created(
        s.gov
            .create_system(&p, &org, &b.name, b.kind, &b.description)
            .await?,
    ))
}

/// Filter of the system list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SystemQuery {
    /// Only this organisation's systems (admins).
    pub organisation: Option<String>,
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<i64>,
    /// Cursor from the previous page's `Link` header.
    pub after: Option<String>,
}

/// List systems (admin: all; others: their organisation's).
#[utoipa::path(get, path = "/api/v1/systems", tag = "systems", params(SystemQuery),
    responses((status = 200, body = Vec<System>)), security(("bearer" = [])))]
pub(crate) async fn list_systems(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<SystemQuery>,
) -> Result<Response> {
    let page = PageParams {
        limit: q.limit,
        after: q.after,
    }
    .page()?;
    let items = s.gov.systems(&p, q.organisation.as_deref(), &page).await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |x| {
        x.id.to_string()
    }))
}

/// One system.
#[utoipa::path(get, path = "/api/v1/systems/{id}", tag = "systems",
    params(("id" = i64, Path, description = "System id")),
    responses((status = 200, body = System), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_system(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<System>> {
    Ok(Json(s.gov.system(&p, id).await?))
}

/// A new token.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Free label.
    #[serde(default)]
    pub label: String,
    /// When it stops working (RFC 3339 or a date); never when absent.
    pub expires_at: Option<String>,
}

/// Issue a token for a system: of a provider system by an owner of its organisation (a
/// person, or a provider system's token), of a consumer system by a person of its
/// organisation; never by an admin. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/systems/{id}/tokens", tag = "systems",
    params(("id" = i64, Path, description = "System id")), request_body = CreateToken,
    responses((status = 201, body = IssuedToken), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_system_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Response> {
    let system = s.gov.system(&p, id).await?;
    Governance::may_issue_system_token(&p, &system)?;
    let b: CreateToken = body.parse()?;
    let expires = time_field("expires_at", b.expires_at.as_deref(), true)?;
    Ok(created(
        s.gov
            .create_system_token(Some(&p), id, &b.label, expires)
            .await?,
    ))
}

/// List a system's tokens (metadata only).
#[utoipa::path(get, path = "/api/v1/systems/{id}/tokens", tag = "systems",
    params(("id" = i64, Path, description = "System id"), PageParams),
    responses((status = 200, body = Vec<Token>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_system_tokens(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    uri: Uri,
    Params(q): Params<PageParams>,
) -> Result<Response> {
    let page = q.page()?;
    let items = s.gov.system_tokens(&p, id, &page).await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |t| {
        t.id.to_string()
    }))
}

/// A new admin, subject or person's (user) token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOtherToken {
    /// `admin`, `subject` or `user` (system tokens are made under `/systems/{id}/tokens`).
    pub kind: TokenKind,
    /// Personal code, for subject tokens.
    pub subject: Option<String>,
    /// The person's login, for user tokens: the caller's own (the default), since a
    /// person's token is minted only by that person.
    pub login: Option<String>,
    /// Free label.
    #[serde(default)]
    pub label: String,
    /// When it stops working (RFC 3339 or a date); never when absent.
    pub expires_at: Option<String>,
}

/// Issue an admin or a subject token (admin), or a person's token (kind `user`: by that
/// person, signed in to the portal; never by an admin for someone else, never by a token).
/// A person's token authenticates as the person: their role, organisation and reads, as
/// their portal session. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateOtherToken,
    responses((status = 201, body = IssuedToken), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    gate::token_minter(&p)?;
    let b: CreateOtherToken = body.parse()?;
    let expires = time_field("expires_at", b.expires_at.as_deref(), true)?;
    let only_for = |field: &str, kind: &str| -> ApiError {
        GovError::Invalid {
            field: field.into(),
            reason: format!("required for {kind} tokens, and only for them"),
        }
        .into()
    };
    if b.login.is_some() && b.kind != TokenKind::User {
        return Err(only_for("login", "user"));
    }
    let issued = match (b.kind, b.subject.as_deref()) {
        (TokenKind::Admin, None) => {
            s.gov
                .create_admin_token(Some(&p), &b.label, expires)
                .await?
        }
        (TokenKind::Subject, Some(code)) => {
            s.gov
                .create_subject_token(Some(&p), code, &b.label, expires)
                .await?
        }
        (TokenKind::User, None) => {
            let login = b.login.as_deref().or(p.user.as_deref()).unwrap_or("");
            s.gov
                .create_user_token(Some(&p), login, &b.label, expires)
                .await?
        }
        (TokenKind::Subject, None) | (TokenKind::Admin | TokenKind::User, Some(_)) => {
            return Err(only_for("subject", "subject"));
        }
        (TokenKind::System, _) => {
            return Err(GovError::Invalid {
                field: "kind".into(),
                reason: "system tokens are issued under /api/v1/systems/{id}/tokens".into(),
            }
            .into());
        }
    };
    Ok(created(issued))
}

/// One token's metadata.
#[utoipa::path(get, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = Token), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Token>> {
    Ok(Json(s.gov.token(&p, id).await?))
}

/// An optional reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalReason {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A required reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (shown to the other party and kept in the history).
    pub reason: String,
}

/// Revoke a token (admin, an owner of its system's organisation, or the token itself).
/// It is refused on every server within a second.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")), request_body = OptionalReason,
    responses((status = 200, body = Token), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Token>> {
    s.gov.revocable_token(&p, id).await?;
    let b: OptionalReason = body.parse()?;
    let reason = b.reason.unwrap_or_default();
    Ok(Json(s.gov.revoke_token(&p, id, &reason).await?))
}

// ---- datasets --------------------------------------------------------------------------

/// A new dataset (a data flow).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDataset {
    /// The definition: name, owner, description, primary_key, attributes (see
    /// `docs/api.md`).
    #[schema(value_type = Object)]
    pub definition: DatasetDefinition,
    /// Days the owner has to decide access requests (default 10).
    pub sla_days: Option<i64>,
    /// The owner's provider systems that feed it.
    #[serde(default)]
    pub provider_systems: Vec<i64>,
}

/// Register a new dataset (an owner for its organisation, or an admin).
#[utoipa::path(post, path = "/api/v1/datasets", tag = "datasets", request_body = RegisterDataset,
    responses((status = 201, body = DatasetMeta), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn register_dataset(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    // The definition's type strings are parsed (recursively) with the body: only for a
    // caller who may register datasets at all.
    gate::admin_or_owner(&p)?;
    let b: RegisterDataset = body.parse()?;
    Ok(created(
        s.gov
            .register_dataset(&p, b.definition, b.sla_days, b.provider_systems)
            .await?,
    ))
}

/// Changes to a dataset's governance metadata.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDataset {
    /// Days to decide access requests.
    pub sla_days: Option<i64>,
    /// Provider systems that feed it.
    pub provider_systems: Option<Vec<i64>>,
}

/// Change a dataset's SLA or provider systems (its owner, or an admin).
#[utoipa::path(patch, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "Dataset")), request_body = UpdateDataset,
    responses((status = 200, body = DatasetMeta), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn update_dataset(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    body: RawJson,
) -> Result<Json<DatasetMeta>> {
    let meta = s.gov.dataset(&p, &name).await?;
    Governance::require_admin_or_owner_of(&p, &meta.owner)?;
    let b: UpdateDataset = body.parse()?;
    Ok(Json(
        s.gov
            .update_dataset(&p, &name, b.sla_days, b.provider_systems)
            .await?,
    ))
}

// ---- access requests -------------------------------------------------------------------

/// A new access request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Dataset.
    pub dataset: String,
    /// Attributes wanted.
    pub attributes: Vec<String>,
    /// Rows wanted, as a SQL predicate over the dataset's columns (e.g.
    /// `municipality = 'Rīga'`); all rows when absent.
    pub row_scope: Option<String>,
    /// Purpose of use.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Ids of the consumer systems that will read.
    pub systems: Vec<i64>,
    /// Start (RFC 3339 or a date; default now).
    pub valid_from: Option<String>,
    /// End (RFC 3339, or a date meaning the end of that day).
    pub valid_to: String,
}

/// File an access request (a consumer).
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = CreateRequest,
    responses((status = 201, body = AccessRequest), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create_request(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Response> {
    gate::consumer(&p)?;
    let b: CreateRequest = body.parse()?;
    let valid_from = time_field("valid_from", b.valid_from.as_deref(), false)?;
    let valid_to = time_field("valid_to", Some(&b.valid_to), true)?.unwrap_or(Time(0));
    let input = RequestInput {
        dataset: b.dataset,
        attributes: b.attributes,
        row_scope: b.row_scope,
        purpose: b.purpose,
        legal_basis: b.legal_basis,
        systems: b.systems,
        valid_from,
        valid_to,
    };
    Ok(created(s.gov.create_request(&p, input).await?))
}

/// Whether `a` is a cursor this list hands out: an id, or with `by_due` `DUE_MS.ID`.
fn is_cursor(a: &str, by_due: bool) -> bool {
    if by_due {
        a.split_once('.')
            .is_some_and(|(t, id)| t.parse::<i64>().is_ok() && id.parse::<i64>().is_ok())
    } else {
        a.parse::<i64>().is_ok()
    }
}

/// Filters of the request, agreement and schema-change lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this dataset.
    pub dataset: Option<String>,
    /// Requests only: pending requests past their SLA deadline.
    pub overdue: Option<bool>,
    /// Requests only: pending requests whose decision deadline is before this time (RFC 3339,
    /// or `YYYY-MM-DD` for the start of that day, UTC) — with `sort=due_at`, what falls due
    /// soonest.
    pub due_before: Option<String>,
    /// Requests only: `created` (newest first, the default) or `due_at` (earliest decision
    /// deadline first; ties by id).
    pub sort: Option<String>,
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<i64>,
    /// Cursor from the previous page's `Link` header.
    pub after: Option<String>,
}

impl ListQuery {
    fn page(&self) -> Result<crate::store::Page> {
        let by_due = self.by_due()?;
        PageParams {
            limit: self.limit,
            after: self.after.clone(),
        }
        .page()
        .and_then(|p| match &p.after {
            Some(a) if !is_cursor(a, by_due) => Err(ApiError::BadRequest(
                "after: not a cursor of this list".into(),
            )),
            _ => Ok(p),
        })
    }

    /// Whether requests are listed by decision deadline (`sort=due_at`).
    fn by_due(&self) -> Result<bool> {
        match self.sort.as_deref() {
            None | Some("created") => Ok(false),
            Some("due_at") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "sort must be `created` or `due_at`; got `{}`",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// Refuse the parameters that only the request list has.
    fn no_request_params(&self) -> Result<()> {
        if self.due_before.is_some() || self.sort.is_some() {
            return Err(ApiError::BadRequest(
                "due_before and sort apply to /api/v1/requests only".into(),
            ));
        }
        Ok(())
    }

    fn filter(&self, statuses: &[&str]) -> Result<ListFilter> {
        if let Some(st) = &self.status
            && !statuses.contains(&st.as_str())
        {
            return Err(ApiError::BadRequest(format!(
                "status must be one of {}; got `{st}`",
                statuses.join(", ")
            )));
        }
        Ok(ListFilter {
            dataset: self.dataset.clone(),
            status: self.status.clone(),
            ..Default::default()
        })
    }
}

/// List access requests visible to the caller, newest first (consumers: their
/// organisation's; owners: those for their datasets; admins: all).
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = Vec<AccessRequest>)), security(("bearer" = [])))]
pub(crate) async fn list_requests(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    let page = q.page()?;
    let mut filter = q.filter(&["pending", "approved", "refused", "withdrawn"])?;
    if let Some(text) = &q.due_before {
        // An RFC 3339 time is at most ~35 characters: a longer value is refused unparsed.
        let parsed = (text.len() <= 64).then(|| Time::parse(text)).flatten();
        filter.due_before = Some(parsed.ok_or_else(|| {
            ApiError::BadRequest("due_before: not an RFC 3339 time or a YYYY-MM-DD date".into())
        })?);
    }
    let by_due = q.by_due()?;
    filter.by_due = by_due;
    let items = s
        .gov
        .requests(&p, filter, q.overdue.unwrap_or(false), &page)
        .await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |r| {
        if by_due {
            format!("{}.{}", r.due_at.0, r.id)
        } else {
            r.id.to_string()
        }
    }))
}

/// One access request.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = i64, Path, description = "Request id")),
    responses((status = 200, body = AccessRequest), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_request(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<AccessRequest>> {
    Ok(Json(s.gov.request(&p, id).await?))
}

/// An approval, optionally narrowing the request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// A subset of the requested attributes (default: all requested).
    pub attributes: Option<Vec<String>>,
    /// A further row condition, combined with the requested scope by AND.
    pub row_scope: Option<String>,
    /// An earlier end than requested.
    pub valid_to: Option<String>,
    /// A note for the consumer and the history.
    pub note: Option<String>,
}

/// Approve a pending request (the dataset's owner); returns the agreement made. It is in
/// force on every read path within a second.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests",
    params(("id" = i64, Path, description = "Request id")), request_body = Approve,
    responses((status = 200, body = Agreement), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn approve_request(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Agreement>> {
    Governance::require_decider(&p, &s.gov.request(&p, id).await?)?;
    let b: Approve = body.parse()?;
    let input = ApprovalInput {
        attributes: b.attributes,
        row_scope: b.row_scope,
        valid_to: time_field("valid_to", b.valid_to.as_deref(), true)?,
        note: b.note,
    };
    Ok(Json(s.gov.approve(&p, id, input).await?))
}

/// Refuse a pending request with a reason (the dataset's owner).
#[utoipa::path(post, path = "/api/v1/requests/{id}/refuse", tag = "requests",
    params(("id" = i64, Path, description = "Request id")), request_body = Reason,
    responses((status = 200, body = AccessRequest), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn refuse_request(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<AccessRequest>> {
    Governance::require_decider(&p, &s.gov.request(&p, id).await?)?;
    let b: Reason = body.parse()?;
    Ok(Json(s.gov.refuse(&p, id, &b.reason).await?))
}

/// Withdraw a pending request (the requesting organisation).
#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "requests",
    params(("id" = i64, Path, description = "Request id")), request_body = OptionalReason,
    responses((status = 200, body = AccessRequest), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn withdraw_request(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<AccessRequest>> {
    Governance::require_requester(&p, &s.gov.request(&p, id).await?)?;
    let b: OptionalReason = body.parse()?;
    Ok(Json(s.gov.withdraw(&p, id, b.reason.as_deref()).await?))
}

/// The history of a governed entity.
#[utoipa::path(get, path = "/api/v1/{kind}/{id}/history", tag = "history",
    params(("kind" = String, Path, description = "`requests`, `agreements`, `schema-changes`, `tokens`, `systems` or `users`"),
        ("id" = i64, Path, description = "Entity id")),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn history(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((kind, id)): Path<(String, i64)>,
) -> Result<Json<Vec<HistoryEntry>>> {
    let entity = match kind.as_str() {
        "requests" => "request",
        "agreements" => "agreement",
        "schema-changes" => "change_request",
        "tokens" => "token",
        "systems" => "system",
        "users" => "user",
        other => return Err(ApiError::NotFound(format!("no history for `{other}`"))),
    };
    Ok(Json(s.gov.history(&p, entity, id).await?))
}

// ---- agreements ------------------------------------------------------------------------

/// List agreements visible to the caller, newest first (consumers: their organisation's;
/// owners: those of their datasets; admins: all). `status=active` means in force or not yet
/// started; `expired` means past the end.
#[utoipa::path(get, path = "/api/v1/agreements", tag = "agreements", params(ListQuery),
    responses((status = 200, body = Vec<Agreement>)), security(("bearer" = [])))]
pub(crate) async fn list_agreements(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    q.no_request_params()?;
    let page = q.page()?;
    let filter = q.filter(&["active", "revoked", "expired"])?;
    let items = s.gov.agreements(&p, filter, &page).await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |a| {
        a.id.to_string()
    }))
}

/// One agreement.
#[utoipa::path(get, path = "/api/v1/agreements/{id}", tag = "agreements",
    params(("id" = i64, Path, description = "Agreement id")),
    responses((status = 200, body = Agreement), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_agreement(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Agreement>> {
    Ok(Json(s.gov.agreement(&p, id).await?))
}

/// Revoke an active agreement (the dataset's owner, or an admin). It stops granting on
/// every read path within a second.
#[utoipa::path(post, path = "/api/v1/agreements/{id}/revoke", tag = "agreements",
    params(("id" = i64, Path, description = "Agreement id")), request_body = Reason,
    responses((status = 200, body = Agreement), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_agreement(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<Agreement>> {
    let a = s.gov.agreement(&p, id).await?;
    Governance::require_admin_or_owner_of(&p, &a.owner_organisation)?;
    let b: Reason = body.parse()?;
    Ok(Json(s.gov.revoke(&p, id, &b.reason).await?))
}

// ---- schema changes --------------------------------------------------------------------

/// A proposed new definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileChange {
    /// The whole new definition (same name, owner and primary key).
    #[schema(value_type = Object)]
    pub definition: DatasetDefinition,
}

/// File a schema change for a dataset (its owner). Applied at once when it breaks no
/// active agreement; otherwise pending until an admin accepts it.
#[utoipa::path(post, path = "/api/v1/datasets/{name}/schema-changes", tag = "schema-changes",
    params(("name" = String, Path, description = "Dataset")), request_body = FileChange,
    responses((status = 201, body = ChangeRequest), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn file_change(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(name): Path<String>,
    body: RawJson,
) -> Result<Response> {
    // The definition's type strings are parsed (recursively) with the body: only for an
    // owner of the dataset.
    let meta = s.gov.dataset(&p, &name).await?;
    gate::owner_of(&p, &meta.owner, &name)?;
    let b: FileChange = body.parse()?;
    Ok(created(s.gov.file_change(&p, &name, b.definition).await?))
}

/// List schema changes (admin: all; owners: their datasets').
#[utoipa::path(get, path = "/api/v1/schema-changes", tag = "schema-changes", params(ListQuery),
    responses((status = 200, body = Vec<ChangeRequest>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list_changes(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    q.no_request_params()?;
    let page = q.page()?;
    let items = s
        .gov
        .change_requests(&p, q.dataset.as_deref(), q.status.as_deref(), &page)
        .await?;
    Ok(paged(items, &page, uri.path(), uri.query(), |c| {
        c.id.to_string()
    }))
}

/// One schema change.
#[utoipa::path(get, path = "/api/v1/schema-changes/{id}", tag = "schema-changes",
    params(("id" = i64, Path, description = "Change request id")),
    responses((status = 200, body = ChangeRequest), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_change(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<ChangeRequest>> {
    Ok(Json(s.gov.change_request(&p, id).await?))
}

/// Accept a pending schema change (admin).
#[utoipa::path(post, path = "/api/v1/schema-changes/{id}/accept", tag = "schema-changes",
    params(("id" = i64, Path, description = "Change request id")),
    responses((status = 200, body = ChangeRequest), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn accept_change(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<ChangeRequest>> {
    Ok(Json(s.gov.accept_change(&p, id).await?))
}

/// Reject a pending schema change with a reason (admin).
#[utoipa::path(post, path = "/api/v1/schema-changes/{id}/reject", tag = "schema-changes",
    params(("id" = i64, Path, description = "Change request id")), request_body = Reason,
    responses((status = 200, body = ChangeRequest), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn reject_change(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<ChangeRequest>> {
    Governance::require_admin(&p)?;
    let b: Reason = body.parse()?;
    Ok(Json(s.gov.reject_change(&p, id, &b.reason).await?))
}

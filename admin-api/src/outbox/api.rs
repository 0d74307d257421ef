//! REST of the outbox: a person's own address (`/api/v1/me/email`), and the admin's view of
//! the outbox (`/api/v1/outbox`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use dagr_engine::{Principal, Role};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{Problem, Result};
use crate::extract::{Caller, Params};
use crate::gate::RawJson;
use crate::governance::GovError;

use super::Mail;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me/email", get(get_email).put(put_email))
        .route("/api/v1/me/inbox", get(inbox))
        .route("/api/v1/outbox", get(list))
}

/// The recipient key of a person: `user:LOGIN` for a person of an organisation,
/// `subject:CODE` for a citizen; none for systems and admins.
pub fn recipient(p: &Principal) -> Option<String> {
    if let Some(u) = &p.user {
        return Some(format!("user:{u}"));
    }
    match (&p.role, &p.subject) {
        (Role::Subject, Some(code)) => Some(format!("subject:{code}")),
        _ => None,
    }
}

fn person(p: &Principal) -> std::result::Result<String, GovError> {
    recipient(p).ok_or_else(|| {
        GovError::Forbidden("an e-mail address belongs to a person's own token".into())
    })
}

/// A person's e-mail address.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailAddress {
    /// The address notifications go to; `null` for none (in-app inbox only).
    pub address: Option<String>,
}

/// The caller's e-mail address (a person's token).
#[utoipa::path(get, path = "/api/v1/me/email", tag = "notifications",
    responses((status = 200, body = EmailAddress), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get_email(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<EmailAddress>> {
    let who = person(&p)?;
    let mut c = s.gov.store().pool().acquire().await.map_err(super::db)?;
    Ok(Json(EmailAddress {
        address: super::address(&mut c, &who).await?,
    }))
}

/// Set or remove the caller's e-mail address (a person's token): notifications are mailed
/// there from now on.
#[utoipa::path(put, path = "/api/v1/me/email", tag = "notifications", request_body = EmailAddress,
    responses((status = 200, body = EmailAddress), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn put_email(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Json<EmailAddress>> {
    let who = person(&p)?;
    let b: EmailAddress = body.parse()?;
    let address = b.address.as_deref().map(super::check_address).transpose()?;
    super::set_address(s.gov.store().pool(), &who, address.as_deref()).await?;
    Ok(Json(EmailAddress { address }))
}

/// How many inbox entries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboxParams {
    /// At most this many, newest first (default 100, at most 500).
    limit: Option<i64>,
}

/// The caller's inbox, newest first (a person's token): what every module told them, with
/// a link to follow each up.
#[utoipa::path(get, path = "/api/v1/me/inbox", tag = "notifications", params(InboxParams),
    responses((status = 200, body = [super::inbox::InboxEntry]), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn inbox(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<InboxParams>,
) -> Result<Json<Vec<super::inbox::InboxEntry>>> {
    let who = recipient(&p)
        .ok_or_else(|| GovError::Forbidden("an inbox belongs to a person's own token".into()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=super::inbox::MAX_LIST).contains(&limit) {
        return Err(GovError::Invalid {
            field: "limit".into(),
            reason: format!("1 to {}", super::inbox::MAX_LIST),
        }
        .into());
    }
    Ok(Json(
        super::inbox::list(s.gov.store().pool(), &who, limit).await?,
    ))
}

/// Which messages to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutboxParams {
    /// `pending`, `sent` or `failed`.
    status: Option<String>,
    /// One recipient (`user:LOGIN`, `subject:CODE`).
    recipient: Option<String>,
    /// At most this many, newest first (default 100, at most 1 000).
    limit: Option<i64>,
}

/// The e-mail outbox, newest first (an admin): what waits, what was sent, what failed and
/// why.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "notifications", params(OutboxParams),
    responses((status = 200, body = [Mail]), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<OutboxParams>,
) -> Result<Json<Vec<Mail>>> {
    if p.role != Role::Admin {
        return Err(GovError::Forbidden("the outbox is for admins".into()).into());
    }
    if let Some(st) = q.status.as_deref()
        && !["pending", "sent", "failed"].contains(&st)
    {
        return Err(GovError::Invalid {
            field: "status".into(),
            reason: "is `pending`, `sent` or `failed`".into(),
        }
        .into());
    }
    Ok(Json(
        super::list(
            s.gov.store().pool(),
            q.status.as_deref(),
            q.recipient.as_deref(),
            q.limit.unwrap_or(100),
        )
        .await?,
    ))
}

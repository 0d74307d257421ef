//! Per-consumer quotas on the REST API (docs/quotas.md).
//!
//! - [`admit`]: the record reads (`GET /api/v1/datasets/{name}/records/{key}` and
//!   `.../records`) count one request against the caller's token before anything is read;
//!   over its requests per second the caller gets 429 `quota-exceeded` with `Retry-After`
//!   (whole seconds) and nothing is read or recorded.
//! - `GET /api/v1/systems/{id}/quotas`: a system's quotas in force, each marked when it is
//!   the server default; for the system's organisation and admins.
//! - `PUT /api/v1/systems/{id}/quotas`: an admin sets a system's own quotas
//!   (`{"requests_per_second": .., "streams": .., "sql_queries": ..}`, each optional or null
//!   for the default). The role is checked before the body is read. The write bumps the
//!   metadata generation: this server reloads its policy at once, the others within their
//!   refresh interval, and each token of the system is then held to the new limits.
//!
//! The limiter itself is the engine's [`dagr_engine::Quotas`], owned by the access policy
//! ([`crate::auth::Policy::quotas`]) and shared with the Flight service.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use dagr_engine::quota::{self, QuotaKind};
use dagr_engine::{AccessPolicy, Principal, QuotaOverrides, Quotas};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem, Result};
use crate::extract::Caller;
use crate::gate::RawJson;
use crate::governance::{GovError, GovResult};
use crate::{AppState, Governance};

/// Count one request of `p` against its requests per second: 429 with `Retry-After` when
/// its token is over it. Call it first in a handler that reads data, before anything else.
pub fn admit(state: &AppState, p: &Principal) -> Result<()> {
    let policy = state.gov.policy();
    policy
        .quotas()
        .request(&quota::key_of(p), &policy.quota_overrides(p))
        .map_err(ApiError::from)
}

/// One quota of a system as it is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuotaView {
    /// The limit in force for each token of the system; `null`: no limit.
    pub limit: Option<u32>,
    /// Whether it is the server default (the system sets none of its own).
    pub default: bool,
}

/// A system's quotas in force (each per token of the system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SystemQuotas {
    /// The system.
    pub system: i64,
    /// Requests per second (REST record reads, every Flight call but `Handshake`); a burst
    /// of one second's worth.
    pub requests_per_second: QuotaView,
    /// Flight result streams (`DoGet`s) open at once.
    pub streams: QuotaView,
    /// SQL queries (Flight SQL statements, prepared statements, filtered tickets) running at
    /// once.
    pub sql_queries: QuotaView,
}

impl SystemQuotas {
    /// The quotas of `system`, which sets `own`, under the defaults of `quotas`.
    pub fn of(system: i64, quotas: &Quotas, own: &QuotaOverrides) -> Self {
        let view = |k: QuotaKind| {
            let limit = quotas.limit(k, own);
            QuotaView {
                limit: (limit > 0).then_some(limit),
                default: own.get(k).is_none(),
            }
        };
        SystemQuotas {
            system,
            requests_per_second: view(QuotaKind::RequestsPerSecond),
            streams: view(QuotaKind::Streams),
            sql_queries: view(QuotaKind::SqlQueries),
        }
    }

    /// One quota.
    pub fn get(&self, k: QuotaKind) -> &QuotaView {
        match k {
            QuotaKind::RequestsPerSecond => &self.requests_per_second,
            QuotaKind::Streams => &self.streams,
            QuotaKind::SqlQueries => &self.sql_queries,
        }
    }
}

/// A system's quotas, for the system's organisation and admins (others: 404, as for the
/// system itself).
pub async fn system_quotas(gov: &Governance, p: &Principal, id: i64) -> GovResult<SystemQuotas> {
    let system = gov.system(p, id).await?;
    let own = gov.store().system_quota(system.id).await?;
    Ok(SystemQuotas::of(system.id, gov.policy().quotas(), &own))
}

/// Set a system's own quotas (admin); in force on this server when it returns.
pub async fn set_system_quotas(
    gov: &Governance,
    p: &Principal,
    id: i64,
    own: QuotaOverrides,
) -> GovResult<SystemQuotas> {
    Governance::require_admin(p)?;
    own.validate().map_err(|(k, reason)| GovError::Invalid {
        field: k.name().to_owned(),
        reason,
    })?;
    if !gov
        .store()
        .set_system_quotas(id, &own, &p.describe())
        .await?
    {
        return Err(GovError::NotFound(format!("system {id}")));
    }
    gov.reload().await?;
    Ok(SystemQuotas::of(id, gov.policy().quotas(), &own))
}

/// A system's own quotas; a missing or null field is the server default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuotas {
    /// Requests per second per token, 1–1 000 000.
    pub requests_per_second: Option<i64>,
    /// Result streams open at once per token, 1–10 000.
    pub streams: Option<i64>,
    /// SQL queries running at once per token, 1–10 000.
    pub sql_queries: Option<i64>,
}

impl SetQuotas {
    /// The overrides, each within its bounds (else 422 naming the field).
    fn overrides(&self) -> GovResult<QuotaOverrides> {
        let bounded = |k: QuotaKind, v: Option<i64>| -> GovResult<Option<u32>> {
            match v {
                None => Ok(None),
                Some(v) if (1..=i64::from(k.max())).contains(&v) => Ok(Some(v as u32)),
                Some(v) => Err(GovError::Invalid {
                    field: k.name().to_owned(),
                    reason: format!(
                        "must be between 1 and {} (or null for the server default); got {v}",
                        k.max()
                    ),
                }),
            }
        };
        Ok(QuotaOverrides {
            requests_per_second: bounded(QuotaKind::RequestsPerSecond, self.requests_per_second)?,
            streams: bounded(QuotaKind::Streams, self.streams)?,
            sql_queries: bounded(QuotaKind::SqlQueries, self.sql_queries)?,
        })
    }
}

/// A system's quotas in force, each marked when it is the server default.
#[utoipa::path(get, path = "/api/v1/systems/{id}/quotas", tag = "systems",
    params(("id" = i64, Path, description = "System id")),
    responses((status = 200, body = SystemQuotas), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "No such system, or not of your organisation")),
    security(("bearer" = [])))]
pub(crate) async fn get_quotas(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
) -> Result<Json<SystemQuotas>> {
    Ok(Json(system_quotas(&s.gov, &p, id).await?))
}

/// Set a system's own quotas (admin). Each field is optional: missing or null is the
/// server default. In force on every server within its policy refresh interval.
#[utoipa::path(put, path = "/api/v1/systems/{id}/quotas", tag = "systems",
    params(("id" = i64, Path, description = "System id")),
    request_body = SetQuotas,
    responses((status = 200, body = SystemQuotas), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem, description = "A value out of its bounds")),
    security(("bearer" = [])))]
pub(crate) async fn put_quotas(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<i64>,
    body: RawJson,
) -> Result<Json<SystemQuotas>> {
    Governance::require_admin(&p)?;
    let own = body.parse::<SetQuotas>()?.overrides()?;
    Ok(Json(set_system_quotas(&s.gov, &p, id, own).await?))
}

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/systems/{id}/quotas",
        get(get_quotas).put(put_quotas),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dagr_engine::QuotaValues;

    #[test]
    fn bodies_are_bounded_per_field() {
        let ok = SetQuotas {
            requests_per_second: Some(2),
            ..Default::default()
        };
        assert_eq!(
            ok.overrides().unwrap(),
            QuotaOverrides {
                requests_per_second: Some(2),
                ..Default::default()
            }
        );
        for (body, field) in [
            (
                SetQuotas {
                    requests_per_second: Some(0),
                    ..Default::default()
                },
                "requests_per_second",
            ),
            (
                SetQuotas {
                    streams: Some(10_001),
                    ..Default::default()
                },
                "streams",
            ),
            (
                SetQuotas {
                    sql_queries: Some(-1),
                    ..Default::default()
                },
                "sql_queries",
            ),
        ] {
            match body.overrides() {
                Err(GovError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_view_marks_defaults_and_no_limit() {
        let q = Quotas::new(QuotaValues {
            requests_per_second: 0,
            streams: 16,
            sql_queries: 4,
        });
        let own = QuotaOverrides {
            streams: Some(3),
            ..Default::default()
        };
        let v = SystemQuotas::of(7, &q, &own);
        assert_eq!(
            v.requests_per_second,
            QuotaView {
                limit: None,
                default: true
            }
        );
        assert_eq!(
            v.streams,
            QuotaView {
                limit: Some(3),
                default: false
            }
        );
        assert_eq!(v.get(QuotaKind::SqlQueries).limit, Some(4));
    }
}

//! REST of the calendar: the days of a year (public: due dates are public), and an admin's
//! entries for single days.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate};
use dagr_engine::Role;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{Problem, Result};
use crate::extract::{Caller, Params};
use crate::gate::RawJson;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::{Calendar, Day, DayKind, YEARS, db};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/calendar", get(year)).route(
        "/api/v1/calendar/days/{date}",
        put(set_day).delete(remove_day),
    )
}

/// Which year.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct YearParams {
    /// The year (default: this one).
    year: Option<i32>,
}

/// A year of the calendar.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarYear {
    /// The year.
    pub year: i32,
    /// The days off and moved working days, by date (weekends not listed).
    pub days: Vec<Day>,
    /// Working days in the year.
    pub working_days: u32,
}

/// The public holidays and moved working days of a year (no token needed).
#[utoipa::path(get, path = "/api/v1/calendar", tag = "calendar", params(YearParams),
    responses((status = 200, body = CalendarYear), (status = 422, body = Problem)))]
pub(crate) async fn year(
    State(s): State<AppState>,
    Params(q): Params<YearParams>,
) -> Result<Json<CalendarYear>> {
    let year = q.year.unwrap_or_else(|| Time::now().to_datetime().year());
    if !YEARS.contains(&year) {
        return Err(GovError::Invalid {
            field: "year".into(),
            reason: format!("give a year from {} to {}", YEARS.start(), YEARS.end()),
        }
        .into());
    }
    let cal = Calendar::load(s.gov.store().pool()).await?;
    let mut working = 0;
    let mut d = NaiveDate::from_ymd_opt(year, 1, 1).expect("a date");
    while d.year() == year {
        if cal.is_working(d) {
            working += 1;
        }
        d = d.succ_opt().expect("a date");
    }
    Ok(Json(CalendarYear {
        year,
        days: cal.year(year),
        working_days: working,
    }))
}

/// An entry for one day.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DayInput {
    /// `holiday` (a day off) or `working` (a working day).
    kind: DayKind,
    /// Its name.
    name: String,
    /// The act that sets it (e.g. a Cabinet order's number and date).
    source: String,
}

fn date(text: &str) -> GovResult<NaiveDate> {
    text.parse::<NaiveDate>()
        .ok()
        .filter(|d| YEARS.contains(&d.year()))
        .ok_or_else(|| GovError::Invalid {
            field: "date".into(),
            reason: format!(
                "give a date YYYY-MM-DD from {} to {}",
                YEARS.start(),
                YEARS.end()
            ),
        })
}

fn short(field: &str, v: &str) -> GovResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
        return Err(GovError::Invalid {
            field: field.into(),
            reason: "give 1 to 200 characters, no control characters".into(),
        });
    }
    Ok(v.to_owned())
}

fn require_admin(p: &dagr_engine::Principal) -> GovResult<()> {
    if p.role == Role::Admin {
        Ok(())
    } else {
        Err(GovError::Forbidden(
            "the calendar is kept by an admin".into(),
        ))
    }
}

/// Set what a day is (an admin): a moved working day, or a day off set by a separate act.
/// Deadlines counted from now on use it; deadlines already set stay.
#[utoipa::path(put, path = "/api/v1/calendar/days/{date}", tag = "calendar", request_body = DayInput,
    params(("date" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 200, body = Day), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_day(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(text): Path<String>,
    body: RawJson,
) -> Result<Json<Day>> {
    require_admin(&p)?;
    let d = date(&text)?;
    let b: DayInput = body.parse()?;
    let day = Day {
        date: d.to_string(),
        kind: b.kind,
        name: short("name", &b.name)?,
        source: short("source", &b.source)?,
        entered: true,
    };
    let mut tx = s.gov.store().pool().begin().await.map_err(db)?;
    super::set_entry(&mut tx, &day, "admin").await?;
    tx.commit().await.map_err(db)?;
    Ok(Json(day))
}

/// Remove an admin's entry for a day (the law's rule holds for it again).
#[utoipa::path(delete, path = "/api/v1/calendar/days/{date}", tag = "calendar",
    params(("date" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_day(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(text): Path<String>,
) -> Result<StatusCode> {
    require_admin(&p)?;
    let d = date(&text)?.to_string();
    let mut tx = s.gov.store().pool().begin().await.map_err(db)?;
    if !super::remove_entry(&mut tx, &d, "admin").await? {
        return Err(GovError::NotFound(format!("no entry for {d}")).into());
    }
    tx.commit().await.map_err(db)?;
    Ok(StatusCode::NO_CONTENT)
}

//! `GET /map/reports/due?within_days=`: reports overdue or due within that many days under
//! contracts, soonest first ([`deadlines::due_reports`], as `GET /api/v1/map/reports/due`):
//! a programme manager's organisation's, an applicant's own.

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::deadlines;
use dagr_admin_api::map::service;
use serde::Deserialize;

use super::text::kind_text;
use super::{MapText, Refusal, caller};
use crate::Portal;
use crate::session::SignedIn;
use crate::web::{PortalError, Shell, render_status};

/// The look-ahead when none is given (as the REST API's).
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub(super) struct DueQuery {
    #[serde(default)]
    within_days: String,
}

struct DueRow {
    application: i64,
    programme: String,
    kind: &'static str,
    number: usize,
    due_on: String,
    overdue: bool,
    /// Days until due, or overdue, in words.
    when: String,
}

#[derive(Template)]
#[template(path = "map/due.html")]
struct DuePage {
    shell: Shell,
    t: &'static MapText,
    within_days: String,
    applicant: bool,
    rows: Vec<DueRow>,
    error: Option<Refusal>,
}

/// `GET /map/reports/due`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<DueQuery>,
) -> Result<Response, PortalError> {
    let t = MapText::get(s.lang());
    let c = caller(&portal, &s).await.map_err(|e| s.fail(e))?;
    let raw = q.within_days.trim();
    let mut page = DuePage {
        shell: s.shell(t.due_title),
        t,
        within_days: if raw.is_empty() {
            DEFAULT_DAYS.to_string()
        } else {
            raw.chars().take(16).collect()
        },
        applicant: c.is_applicant(),
        rows: Vec::new(),
        error: None,
    };
    let days = match raw {
        "" => Ok(DEFAULT_DAYS),
        v => v.parse::<i64>().map_err(|_| GovError::Invalid {
            field: "within_days".into(),
            reason: format!("`{v}` {}", t.not_a_number),
        }),
    };
    let due = match days {
        Ok(d) => deadlines::due_reports(&c, d).await,
        Err(e) => Err(e),
    };
    let due = match due {
        Ok(d) => d,
        Err(e @ GovError::Invalid { .. }) => {
            let (status, refusal) = Refusal::of(&page.shell, &e);
            page.error = Some(refusal);
            return Ok(render_status(status, &page));
        }
        Err(e) => return Err(s.fail(e)),
    };
    let titles: BTreeMap<i64, String> = service::programmes(&c)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.id, p.title))
        .collect();
    page.rows = due
        .into_iter()
        .map(|d| DueRow {
            application: d.application,
            programme: titles
                .get(&d.programme)
                .cloned()
                .unwrap_or_else(|| d.programme.to_string()),
            kind: kind_text(t, &d.kind),
            number: d.number,
            due_on: d.due_on,
            overdue: d.overdue,
            when: if d.overdue {
                format!("{} {}", t.overdue_by, -d.days)
            } else {
                format!("{} {}", t.due_in, d.days)
            },
        })
        .collect();
    Ok(render_status(StatusCode::OK, &page))
}

//! Exports for a grantor's accounting and records: `GET /map/exports?from=&to=` offers the
//! downloads of a period (Latvian days, by default the last 30), `GET
//! /map/exports/{kind}.{csv|json}` serves one: payment orders (`payments`), accounting
//! entries (`accounting`) or registered documents (`documents`), exactly the rows and CSV of
//! the REST export ([`exports::export`], [`exports::to_csv`]) for the caller. The service
//! decides who may (accountants and programme managers); its refusal is shown on the page.

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::{StatusCode, header};
use dagr_admin_api::axum::response::{IntoResponse, Response};
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::exports::{self, ExportKind};
use dagr_admin_api::model::Time;
use serde::Deserialize;

use super::{MapText, Refusal, caller, parse_day, today};
use crate::Portal;
use crate::session::SignedIn;
use crate::web::{PortalError, Shell, encode_component, render_status, riga_day_start};

/// The period shown when none is given: this many days back to today.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// One download of the page.
struct Download {
    id: String,
    href: String,
    format: &'static str,
}

/// One kind of export with its downloads.
struct Kind {
    name: &'static str,
    label: &'static str,
    about: &'static str,
    downloads: [Download; 2],
}

#[derive(Template)]
#[template(path = "map/exports.html")]
struct ExportsPage {
    shell: Shell,
    t: &'static MapText,
    from: String,
    to: String,
    kinds: Vec<Kind>,
    /// Whether the caller holds a role the exports are for (the service decides).
    allowed: bool,
    error: Option<Refusal>,
}

impl ExportsPage {
    fn bad(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }
}

const KINDS: [&str; 3] = ["payments", "accounting", "documents"];

fn page_of(s: &SignedIn, q: &Period, allowed: bool, error: Option<Refusal>) -> ExportsPage {
    let t = MapText::get(s.lang());
    let day = today();
    let from = match q.from.trim() {
        "" => (day - chrono::Duration::days(DEFAULT_DAYS))
            .format("%Y-%m-%d")
            .to_string(),
        f => f.chars().take(32).collect(),
    };
    let to = match q.to.trim() {
        "" => day.format("%Y-%m-%d").to_string(),
        v => v.chars().take(32).collect(),
    };
    let query = format!(
        "from={}&to={}",
        encode_component(&from),
        encode_component(&to)
    );
    let kinds = KINDS
        .iter()
        .map(|&name| {
            let (label, about) = match name {
                "payments" => (t.export_payments, t.export_payments_about),
                "accounting" => (t.export_accounting, t.export_accounting_about),
                _ => (t.export_documents, t.export_documents_about),
            };
            let download = |format: &'static str| Download {
                id: format!("export-{name}-{format}"),
                href: format!("/map/exports/{name}.{format}?{query}"),
                format,
            };
            Kind {
                name,
                label,
                about,
                downloads: [download("csv"), download("json")],
            }
        })
        .collect();
    ExportsPage {
        shell: s.shell(t.exports_title),
        t,
        from,
        to,
        kinds,
        allowed,
        error,
    }
}

/// `GET /map/exports`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<Period>,
) -> Result<Response, PortalError> {
    let c = caller(&portal, &s).await.map_err(|e| s.fail(e))?;
    let allowed = c
        .roles()
        .iter()
        .any(|r| matches!(r, MapRole::Accountant | MapRole::ProgrammeManager));
    let mut status = StatusCode::OK;
    let mut error = None;
    if let Err(e) = period(MapText::get(s.lang()), &q) {
        let (st, refusal) = Refusal::of(&s.shell(""), &e);
        (status, error) = (st, Some(refusal));
    }
    Ok(render_status(status, &page_of(&s, &q, allowed, error)))
}

/// The period's first instant, its end (the next Latvian midnight after its last day) and
/// its name for the file, from the typed days.
fn period(t: &MapText, q: &Period) -> Result<(Time, Time, String), GovError> {
    let day = today();
    let typed = |field: &str, raw: &str, default: chrono::NaiveDate| match raw.trim() {
        "" => Ok(default),
        v => parse_day(v).ok_or_else(|| GovError::Invalid {
            field: field.to_owned(),
            reason: format!("`{v}` {}", t.not_a_date),
        }),
    };
    let from = typed("from", &q.from, day - chrono::Duration::days(DEFAULT_DAYS))?;
    let to = typed("to", &q.to, day)?;
    Ok((
        riga_day_start(from),
        riga_day_start(to.succ_opt().unwrap_or(to)),
        format!("{}_{}", from.format("%Y-%m-%d"), to.format("%Y-%m-%d")),
    ))
}

/// `GET /map/exports/{kind}.{csv|json}`: the download, or the exports page with the
/// refusal.
pub(super) async fn download(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(file): Path<String>,
    Query(q): Query<Period>,
) -> Result<Response, PortalError> {
    let t = MapText::get(s.lang());
    let (kind_name, format) = file
        .split_once('.')
        .filter(|(k, f)| KINDS.contains(k) && matches!(*f, "csv" | "json"))
        .ok_or_else(|| s.fail(GovError::NotFound(format!("export `{file}`"))))?;
    let kind = ExportKind::parse(kind_name)
        .ok_or_else(|| s.fail(GovError::NotFound(format!("export `{file}`"))))?;
    let c = caller(&portal, &s).await.map_err(|e| s.fail(e))?;
    let result = match period(t, &q) {
        Ok((from, to, label)) => exports::export(&c, kind, from, to)
            .await
            .map(|rows| (rows, label)),
        Err(e) => Err(e),
    };
    let (rows, label) = match result {
        Ok(r) => r,
        Err(GovError::Store(inner)) => return Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let allowed = !matches!(e, GovError::Forbidden(_));
            return Ok(render_status(
                status,
                &page_of(&s, &q, allowed, Some(refusal)),
            ));
        }
    };
    let (body, content_type) = if format == "csv" {
        (exports::to_csv(&rows, kind), "text/csv; charset=utf-8")
    } else {
        let json = serde_json::to_string(&rows).map_err(|e| {
            tracing::error!(error = %e, "portal: a MAP export could not be written as JSON");
            s.shell("").unavailable()
        })?;
        (json, "application/json")
    };
    let disposition = format!("attachment; filename=\"map-{kind_name}-{label}.{format}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn a_period_is_latvian_days_and_names_the_file() {
        let t = MapText::get(Lang::En);
        let q = Period {
            from: "2026-01-15".into(),
            to: "2026-01-31".into(),
        };
        let (from, to, label) = period(t, &q).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-01-14T22:00:00.000Z");
        assert_eq!(to.to_rfc3339(), "2026-01-31T22:00:00.000Z");
        assert_eq!(label, "2026-01-15_2026-01-31");
        let q = Period {
            from: "15.01.2026".into(),
            to: String::new(),
        };
        assert!(matches!(
            period(t, &q),
            Err(GovError::Invalid { field, .. }) if field == "from"
        ));
    }
}

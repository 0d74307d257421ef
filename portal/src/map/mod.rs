//! MAP, grant management, in the portal: the pages of applicants (citizens acting for
//! companies) and of a grantor's staff (programme managers, evaluators, approvers,
//! accountants).
//!
//! - `GET /map`: staff see their organisation's applications (evaluators only theirs),
//!   newest first, filtered by programme and status, 100 a page (keyset: `before`);
//!   applicants see their own, the programmes and a form to file a new application
//!   (`POST /map`). A caller MAP does not serve reads the service's explanation.
//! - `GET /map/applications/{id}`: the application as the caller may see it (staff also as
//!   it was at a time: `?as_of=`), the undertaking's de minimis aid, and the forms of the
//!   actions ([`application`]); `POST /map/applications/{id}/act` takes one ([`act`]).
//! - `GET /map/programmes/new`, `POST /map/programmes/new`: a programme manager makes a
//!   programme; `GET /map/programmes/{id}`: a programme with its budget committed, paid,
//!   recovered and remaining, and the scoresheet form (`POST .../scoresheet`)
//!   ([`programme`]).
//! - `GET /map/programmes/{id}/ranking`: the evaluated applications by score; approvers
//!   decide several at once (`POST` to the same path) and see each outcome ([`ranking`]).
//! - `GET /map/exports`, `GET /map/exports/{kind}.{csv|json}`: payments, accounting entries
//!   and documents of a period, served as downloads ([`exports`]).
//! - `GET /map/reports/due?within_days=`: reports overdue or due soon ([`due`]).
//!
//! Every read and action is a call of [`dagr_admin_api::map::service`] with the session's
//! principal, the same functions the REST API calls: no rule of MAP lives here. Which forms
//! a page offers is only a guess of what the service will allow; the service decides, and
//! its refusal is shown on the page.

mod act;
mod application;
mod due;
mod exports;
mod programme;
mod programme_form;
mod ranking;
mod text;

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::model::{NewApplication, Status};
use dagr_admin_api::map::service::{self, ListQuery, MapCaller};
use dagr_admin_api::model::Time;
use serde::Deserialize;

use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{
    PortalError, Shell, encode_component, fmt_end, fmt_time, message, render_status, riga,
    see_other, status_lead,
};

pub(crate) use text::MapText;
use text::{done_texts, status_text};

/// Applications a list page shows.
const LIST_PAGE: i64 = 100;

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/map", get(list_page).post(file))
        .route("/map/applications/{id}", get(application::page))
        .route("/map/applications/{id}/act", get(act::back).post(act::act))
        .route(
            "/map/programmes/new",
            get(programme::new_page).post(programme::create),
        )
        .route("/map/programmes/{id}", get(programme::page))
        .route(
            "/map/programmes/{id}/scoresheet",
            get(programme::back).post(programme::scoresheet),
        )
        .route(
            "/map/programmes/{id}/ranking",
            get(ranking::page).post(ranking::decide),
        )
        .route("/map/exports", get(exports::page))
        .route("/map/exports/{file}", get(exports::download))
        .route("/map/reports/due", get(due::page))
}

/// Longest single form field the MAP pages accept (bytes); the service has its own, lower
/// limits on what it keeps.
const MAX_FIELD: usize = 8 << 10;

/// A form's fields by name (the first value of each; the CSRF token left out); a field
/// longer than [`MAX_FIELD`] is refused, naming it.
pub(crate) fn fields_of(
    t: &MapText,
    form: Vec<(String, String)>,
) -> (BTreeMap<String, String>, Option<GovError>) {
    let mut fields = BTreeMap::new();
    let mut too_long = None;
    for (k, v) in form {
        if k == "csrf" {
            continue;
        }
        if v.len() > MAX_FIELD && too_long.is_none() {
            too_long = Some(GovError::Invalid {
                field: k.clone(),
                reason: format!("{} {} KiB", t.too_long, MAX_FIELD >> 10),
            });
        }
        fields.entry(k).or_insert(v);
    }
    (fields, too_long)
}

/// A time typed in a datetime field (`2026-03-01T14:30`, seconds optional) in Latvian
/// local time, or RFC 3339 (the links of the history).
pub(crate) fn parse_local_time(raw: &str) -> Option<Time> {
    let raw = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(Time(t.timestamp_millis()));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(raw, f).ok())?;
    Some(dagr_admin_api::calendar::from_riga(local))
}

/// A time as a datetime field shows it (Latvian local time, to the second).
pub(crate) fn local_field(t: Time) -> String {
    riga(t).format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A day typed in a date field (`2026-03-01`).
pub(crate) fn parse_day(raw: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()
}

/// Today in Latvia.
pub(crate) fn today() -> chrono::NaiveDate {
    riga(Time::now()).date()
}

/// Who the signed-in person is in MAP: the caller, or the service's refusal.
async fn caller(portal: &Portal, s: &SignedIn) -> Result<MapCaller, GovError> {
    MapCaller::of(&portal.app, &s.principal).await
}

/// An amount in euro as typed (`12500`, `12 500,50`, `12500.50`); `None` if it is none.
pub(crate) fn parse_amount(raw: &str) -> Option<f64> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    cleaned
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && !cleaned.is_empty())
}

/// An amount for people: `12500.00 EUR`.
pub(crate) fn eur(v: f64) -> String {
    format!("{v:.2} EUR")
}

/// A time the service gives as text, in Latvian local time (as given if it is no time).
pub(crate) fn when(s: &str) -> String {
    Time::parse(s).map(fmt_time).unwrap_or_else(|| s.to_owned())
}

/// The end of a period the service gives as text (an exclusive instant), as the last day
/// it covers when it ends at a Latvian midnight.
pub(crate) fn end(s: &str) -> String {
    Time::parse(s).map(fmt_end).unwrap_or_else(|| s.to_owned())
}

/// A refusal shown on a page: the lead sentence and the service's message.
pub(crate) struct Refusal {
    lead: &'static str,
    message: String,
    /// The form field it names, if any.
    field: String,
}

impl Refusal {
    fn of(shell: &Shell, e: &GovError) -> (StatusCode, Refusal) {
        let (status, lead) = status_lead(shell.c, e);
        let field = match e {
            GovError::Invalid { field, .. } => field.clone(),
            _ => String::new(),
        };
        (
            status,
            Refusal {
                lead,
                message: message(e),
                field,
            },
        )
    }
}

/// A `<select>` option.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A row of the application list.
struct Row {
    id: i64,
    title: String,
    status: &'static str,
    status_text: &'static str,
    company: String,
    registration_number: String,
    requested: String,
    granted: Option<String>,
    score: Option<String>,
    updated: String,
}

/// A programme as the applicant's table shows it.
struct ProgrammeRow {
    id: i64,
    title: String,
    organisation: String,
    budget: String,
    remaining: String,
    max_grant: String,
    opens: String,
    closes: String,
}

/// A message of the caller's MAP inbox.
struct Message {
    application: Option<i64>,
    text: String,
    at: String,
}

/// The filing form as typed.
#[derive(Debug, Default, Deserialize)]
struct FileForm {
    #[serde(default)]
    programme: String,
    #[serde(default)]
    registration_number: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    requested_amount: String,
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    programme: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    done: String,
}

#[derive(Template)]
#[template(path = "map/list.html")]
struct ListPage {
    shell: Shell,
    t: &'static MapText,
    /// The service's refusal of a caller MAP does not serve.
    no_map: Option<String>,
    applicant: bool,
    evaluator_only: bool,
    /// The caller is a programme manager (makes programmes, sees reports due).
    manager: bool,
    /// The caller may see rankings (programme managers, approvers).
    ranks: bool,
    /// The caller may export (programme managers, accountants).
    exports: bool,
    programmes: Vec<Choice>,
    statuses: Vec<Choice>,
    rows: Vec<Row>,
    next: Option<String>,
    table: Vec<ProgrammeRow>,
    inbox: Vec<Message>,
    form: FileForm,
    error: Option<Refusal>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }

    /// Whether a field-less refusal is shown at the top (a field's is shown at the field).
    fn error_message(&self) -> &str {
        self.error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or("")
    }

    async fn load(
        portal: &Portal,
        s: &SignedIn,
        q: &ListParams,
        form: FileForm,
        error: Option<Refusal>,
    ) -> Result<(StatusCode, ListPage), PortalError> {
        let t = MapText::get(s.lang());
        let mut page = ListPage {
            shell: s.shell(t.title),
            t,
            no_map: None,
            applicant: false,
            evaluator_only: false,
            manager: false,
            ranks: false,
            exports: false,
            programmes: Vec::new(),
            statuses: Vec::new(),
            rows: Vec::new(),
            next: None,
            table: Vec::new(),
            inbox: Vec::new(),
            form,
            error,
        };
        let c = match caller(portal, s).await {
            Ok(c) => c,
            Err(GovError::Forbidden(m)) => {
                page.no_map = Some(m);
                return Ok((StatusCode::FORBIDDEN, page));
            }
            Err(e) => return Err(s.fail(e)),
        };
        page.applicant = c.is_applicant();
        page.evaluator_only =
            !c.roles().is_empty() && c.roles().iter().all(|r| *r == MapRole::Evaluator);
        let has = |r: MapRole| c.roles().contains(&r);
        page.manager = has(MapRole::ProgrammeManager);
        page.ranks = page.manager || has(MapRole::Approver);
        page.exports = page.manager || has(MapRole::Accountant);
        let programme = q.programme.trim().parse::<i64>().ok();
        let status = Status::parse(q.status.trim());
        let programmes = match service::programmes(&c).await {
            Ok(p) => p,
            Err(GovError::Forbidden(m)) => {
                page.no_map = Some(m);
                return Ok((StatusCode::FORBIDDEN, page));
            }
            Err(e) => return Err(s.fail(e)),
        };
        let chosen = if page.applicant {
            page.form.programme.trim().parse::<i64>().ok()
        } else {
            programme
        };
        page.programmes = programmes
            .iter()
            .map(|p| Choice {
                value: p.id.to_string(),
                label: p.title.clone(),
                selected: Some(p.id) == chosen,
            })
            .collect();
        page.statuses = Status::ALL
            .iter()
            .map(|st| Choice {
                value: st.as_str().to_owned(),
                label: status_text(t, *st).to_owned(),
                selected: Some(*st) == status,
            })
            .collect();
        if !page.evaluator_only {
            page.table = programmes
                .iter()
                .map(|p| ProgrammeRow {
                    id: p.id,
                    title: p.title.clone(),
                    organisation: p.organisation.clone(),
                    budget: eur(p.budget),
                    remaining: eur(p.remaining),
                    max_grant: eur(p.max_grant),
                    opens: when(&p.opens_at),
                    closes: end(&p.closes_at),
                })
                .collect();
        }
        let query = ListQuery {
            programme: if page.applicant { None } else { programme },
            status: if page.applicant { None } else { status },
            before: q.before.trim().parse::<i64>().ok(),
            limit: LIST_PAGE + 1,
        };
        let mut apps = service::applications(&c, &query)
            .await
            .map_err(|e| s.fail(e))?;
        if apps.len() as i64 > LIST_PAGE {
            apps.truncate(LIST_PAGE as usize);
            if let Some(last) = apps.last() {
                let mut href = String::from("/map?");
                if let Some(p) = query.programme {
                    href.push_str(&format!("programme={p}&"));
                }
                if let Some(st) = query.status {
                    href.push_str(&format!("status={}&", encode_component(st.as_str())));
                }
                href.push_str(&format!("before={}", last.id));
                page.next = Some(href);
            }
        }
        page.rows = apps
            .into_iter()
            .map(|a| Row {
                id: a.id,
                title: a.title,
                status: a.status.as_str(),
                status_text: status_text(t, a.status),
                company: a.applicant_name,
                registration_number: a.registration_number,
                requested: eur(a.requested_amount),
                granted: a.granted_amount.map(eur),
                score: a.score.map(|v| format!("{v:.2}")),
                updated: when(&a.updated_at),
            })
            .collect();
        page.inbox = service::inbox(&c)
            .await
            .unwrap_or_default()
            .into_iter()
            .take(10)
            .map(|m| Message {
                application: m.application,
                text: m.text,
                at: when(&m.at),
            })
            .collect();
        let status = if page.error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        Ok((status, page))
    }
}

async fn list_page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<ListParams>,
) -> Result<Response, PortalError> {
    let t = MapText::get(s.lang());
    let (status, mut page) = ListPage::load(&portal, &s, &q, FileForm::default(), None).await?;
    page.shell = page.shell.with_done(Some(&q.done), &done_texts(t));
    Ok(render_status(status, &page))
}

/// `POST /map`: an applicant files a draft; on success its page, else the list with the
/// form as typed and the service's refusal.
async fn file(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<FileForm>,
) -> Result<Response, PortalError> {
    let t = MapText::get(s.lang());
    let input = form_input(t, &form);
    let result = match input {
        Ok(input) => match caller(&portal, &s).await {
            Ok(c) => service::create_application(&portal.app, &c, input).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(app) => Ok(see_other(&format!(
            "/map/applications/{}?done=created",
            app.id
        ))),
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let (_, page) =
                ListPage::load(&portal, &s, &ListParams::default(), form, Some(refusal)).await?;
            Ok(render_status(status, &page))
        }
    }
}

/// The service's input from the filing form, or the refusal of a field that is no number.
fn form_input(t: &MapText, f: &FileForm) -> Result<NewApplication, GovError> {
    let invalid = |field: &str, raw: &str, why: &str| GovError::Invalid {
        field: field.to_owned(),
        reason: format!("`{raw}` {why}"),
    };
    let programme = f
        .programme
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid("programme", &f.programme, t.not_an_id))?;
    let requested_amount = parse_amount(&f.requested_amount)
        .ok_or_else(|| invalid("requested_amount", &f.requested_amount, t.not_an_amount))?;
    Ok(NewApplication {
        programme,
        registration_number: f.registration_number.trim().to_owned(),
        title: f.title.trim().to_owned(),
        requested_amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn amounts_are_read_as_people_type_them() {
        assert_eq!(parse_amount("12500"), Some(12500.0));
        assert_eq!(parse_amount(" 12 500,50 "), Some(12500.5));
        assert_eq!(parse_amount("12500.5"), Some(12500.5));
        assert_eq!(parse_amount(""), None);
        assert_eq!(parse_amount("abc"), None);
        assert_eq!(parse_amount("inf"), None);
        assert_eq!(eur(12500.5), "12500.50 EUR");
    }

    #[test]
    fn times_are_typed_in_latvian_time() {
        let utc = |s: &str| Time::parse(s).unwrap();
        // Winter UTC+2, summer UTC+3; seconds optional; RFC 3339 as it is.
        assert_eq!(
            parse_local_time("2026-01-15T12:30"),
            Some(utc("2026-01-15T10:30:00Z"))
        );
        assert_eq!(
            parse_local_time(" 2026-07-01T12:30:15 "),
            Some(utc("2026-07-01T09:30:15Z"))
        );
        assert_eq!(
            parse_local_time("2026-07-01T09:30:15.250Z"),
            Some(utc("2026-07-01T09:30:15.250Z"))
        );
        assert_eq!(parse_local_time("yesterday"), None);
        let t = utc("2026-07-01T09:30:15Z");
        assert_eq!(local_field(t), "2026-07-01T12:30:15");
        assert_eq!(parse_local_time(&local_field(t)), Some(t));
        assert_eq!(end("2027-01-31T22:00:00.000Z"), "2027-01-31");
    }

    #[test]
    fn form_fields_keep_the_first_value_and_refuse_what_is_too_long() {
        let t = MapText::get(Lang::En);
        let (f, too_long) = fields_of(
            t,
            vec![
                ("csrf".into(), "x".into()),
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
            ],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f["a"], "1");
        assert!(too_long.is_none());
        let (_, too_long) = fields_of(t, vec![("text".into(), "x".repeat(MAX_FIELD + 1))]);
        assert!(matches!(too_long, Some(GovError::Invalid { field, .. }) if field == "text"));
    }

    #[test]
    fn the_filing_form_names_the_field_that_is_no_number() {
        let t = MapText::get(Lang::En);
        let f = FileForm {
            programme: "x".into(),
            ..FileForm::default()
        };
        match form_input(t, &f) {
            Err(GovError::Invalid { field, .. }) => assert_eq!(field, "programme"),
            other => panic!("{other:?}"),
        }
        let f = FileForm {
            programme: "3".into(),
            registration_number: " 40003000001 ".into(),
            title: "Iekārta".into(),
            requested_amount: "1000,5".into(),
        };
        let input = form_input(t, &f).unwrap();
        assert_eq!(
            (input.programme, input.registration_number.as_str()),
            (3, "40003000001")
        );
        assert_eq!(input.requested_amount, 1000.5);
    }
}

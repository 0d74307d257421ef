//! Programmes: `GET /map/programmes/new` and `POST /map/programmes/new` (a programme
//! manager makes one, [`service::create_programme`]); `GET /map/programmes/{id}` (the
//! programme with its budget committed, paid, recovered and remaining,
//! [`service::programme`]) with the scoresheet form, `POST /map/programmes/{id}/scoresheet`
//! ([`service::set_scoresheet`]).

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::model::Programme;
use dagr_admin_api::map::service::{self, MapCaller};
use serde::Deserialize;

use super::programme_form::{self, CONDITIONS, CRITERIA, Group, LEVELS, Line, SCHEDULE};
use super::text::{done_texts, kind_text, role_text};
use super::{MapText, Refusal, caller, end, eur, fields_of, today, when};
use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, Shell, render_status, see_other};

/// Empty lines a group offers more (and when "more lines" is asked).
const MORE: usize = 2;

#[derive(Debug, Default, Deserialize)]
pub(super) struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// The group a refusal's field belongs to, by the service's name of it.
fn group(name: &str) -> Option<&'static Group> {
    [&CONDITIONS, &CRITERIA, &SCHEDULE, &LEVELS]
        .into_iter()
        .find(|g| g.service_field == name)
}

/// A `<select>` option of the forms.
struct Opt {
    value: &'static str,
    label: &'static str,
}

/// The aid regimes of the rules, by code, with their titles (none when the service gives
/// no list).
async fn regimes(c: &MapCaller) -> Vec<(String, String)> {
    service::regimes(c)
        .await
        .map(|list| list.into_iter().map(|r| (r.code, r.title)).collect())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "map/programme_new.html")]
struct NewPage {
    shell: Shell,
    t: &'static MapText,
    /// The form's plain fields as typed.
    f: BTreeMap<String, String>,
    conditions: Vec<Line>,
    criteria_lines: Vec<Line>,
    schedule: Vec<Line>,
    levels: Vec<Line>,
    roles: Vec<Opt>,
    /// The aid regimes to choose from: code and title.
    regimes: Vec<(String, String)>,
    error: Option<Refusal>,
}

impl NewPage {
    fn val(&self, name: &str) -> &str {
        self.f.get(name).map(String::as_str).unwrap_or("")
    }

    fn bad(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }

    fn bad_group(&self, name: &str) -> bool {
        bad_group(&self.error, name)
    }

    fn error_message(&self) -> &str {
        self.error.as_ref().map_or("", |e| e.message.as_str())
    }

    fn new(
        s: &SignedIn,
        f: BTreeMap<String, String>,
        extra: usize,
        regimes: Vec<(String, String)>,
    ) -> NewPage {
        let t = MapText::get(s.lang());
        NewPage {
            shell: s.shell(t.new_programme),
            t,
            conditions: CONDITIONS.lines(&f, 2, extra),
            criteria_lines: CRITERIA.lines(&f, 4, extra),
            schedule: SCHEDULE.lines(&f, 2, extra),
            levels: LEVELS.lines(&f, 2, extra),
            roles: [
                MapRole::ProgrammeManager,
                MapRole::Approver,
                MapRole::Accountant,
            ]
            .into_iter()
            .map(|r| Opt {
                value: r.as_str(),
                label: role_text(t, r),
            })
            .collect(),
            regimes,
            f,
            error: None,
        }
    }
}

fn bad_group(error: &Option<Refusal>, name: &str) -> bool {
    match (error, group(name)) {
        (Some(e), Some(g)) => g.owns(&e.field),
        _ => false,
    }
}

/// The fields of a fresh programme form.
fn fresh() -> BTreeMap<String, String> {
    let day = today();
    [
        ("co_financing_rate", "100".to_owned()),
        ("opens_at", day.format("%Y-%m-%d").to_string()),
        (
            "closes_at",
            (day + chrono::Duration::days(90))
                .format("%Y-%m-%d")
                .to_string(),
        ),
        ("aid_regime", "de_minimis".to_owned()),
        ("evaluators_per_application", "2".to_owned()),
        ("cond_name_0", "active".to_owned()),
        ("cond_predicate_0", "status = 'active'".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `GET /map/programmes/new`: the form (programme managers; anyone else reads the
/// service's refusal).
pub(super) async fn new_page(
    State(portal): State<Portal>,
    s: SignedIn,
) -> Result<Response, PortalError> {
    let c = caller(&portal, &s).await.map_err(|e| s.fail(e))?;
    service::require_programme_manager(&c).map_err(|e| s.fail(e))?;
    let page = NewPage::new(&s, fresh(), 0, regimes(&c).await);
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /map/programmes/new`: make the programme and show it; "more lines" shows the form
/// again with more empty lines; a refusal shows it as typed with the service's message.
pub(super) async fn create(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let t = MapText::get(s.lang());
    let (fields, too_long) = fields_of(t, form);
    let c = caller(&portal, &s).await.map_err(|e| s.fail(e))?;
    if fields.contains_key("more") && too_long.is_none() {
        let page = NewPage::new(&s, fields, MORE + 1, regimes(&c).await);
        return Ok(render_status(StatusCode::OK, &page));
    }
    let result = match too_long {
        Some(e) => Err(e),
        None => match programme_form::new_programme(t, &fields) {
            Ok(input) => service::create_programme(&portal.app, &c, input).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(p) => Ok(see_other(&format!(
            "/map/programmes/{}?done=programme_created",
            p.id
        ))),
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let mut page = NewPage::new(&s, fields, 0, regimes(&c).await);
            page.error = Some(refusal);
            Ok(render_status(status, &page))
        }
    }
}

/// A programme's facts, ready to show.
struct Facts {
    organisation: String,
    budget: String,
    committed: String,
    paid: String,
    recovered: String,
    remaining: String,
    /// Less than one largest grant is left.
    remaining_low: bool,
    max_grant: String,
    co_financing: String,
    opens: String,
    closes: String,
    regime: String,
    evaluators_per_application: i64,
    eligibility: Vec<(String, String)>,
    criteria: Vec<[String; 4]>,
    scoresheet_version: i64,
    cost_categories: String,
    levels: Vec<(&'static str, String)>,
    schedule: Vec<(&'static str, u32)>,
    created_by: String,
    created: String,
}

#[derive(Template)]
#[template(path = "map/programme.html")]
struct ProgrammePage {
    shell: Shell,
    t: &'static MapText,
    id: i64,
    p: Facts,
    /// Staff: a link to the programme's applications.
    staff: bool,
    /// Programme managers: the scoresheet form.
    manager: bool,
    /// Programme managers and approvers: the ranking.
    ranks: bool,
    criteria_lines: Vec<Line>,
    error: Option<Refusal>,
}

impl ProgrammePage {
    fn bad_group(&self, name: &str) -> bool {
        bad_group(&self.error, name)
    }

    fn error_message(&self) -> &str {
        self.error.as_ref().map_or("", |e| e.message.as_str())
    }
}

fn facts(t: &MapText, p: Programme, regimes: &[(String, String)]) -> Facts {
    Facts {
        remaining_low: p.remaining < p.max_grant,
        organisation: p.organisation,
        budget: eur(p.budget),
        committed: eur(p.committed),
        paid: eur(p.paid),
        recovered: eur(p.recovered),
        remaining: eur(p.remaining),
        max_grant: eur(p.max_grant),
        co_financing: format!("{} %", (p.co_financing_rate * 10_000.0).round() / 100.0),
        opens: when(&p.opens_at),
        closes: end(&p.closes_at),
        regime: regimes
            .iter()
            .find(|(code, _)| code == p.aid_regime.as_str())
            .map_or_else(
                || p.aid_regime.as_str().to_owned(),
                |(_, title)| title.clone(),
            ),
        evaluators_per_application: p.evaluators_per_application,
        eligibility: p
            .eligibility
            .into_iter()
            .map(|c| (c.name, c.predicate))
            .collect(),
        criteria: p
            .criteria
            .into_iter()
            .map(|k| {
                [
                    k.code,
                    k.weight.to_string(),
                    k.min.to_string(),
                    k.max.to_string(),
                ]
            })
            .collect(),
        scoresheet_version: p.scoresheet_version,
        cost_categories: p.cost_categories.join(", "),
        levels: p
            .approval_levels
            .into_iter()
            .map(|l| (role_text(t, l.role), eur(l.from_amount)))
            .collect(),
        schedule: p
            .report_schedule
            .into_iter()
            .map(|r| (kind_text(t, &r.kind), r.months_after_contract))
            .collect(),
        created_by: p.created_by,
        created: when(&p.created_at),
    }
}

/// The programme page, the scoresheet form showing `typed` lines (or the current
/// criteria when none).
async fn load(
    portal: &Portal,
    s: &SignedIn,
    id: i64,
    typed: Option<BTreeMap<String, String>>,
    error: Option<Refusal>,
) -> Result<ProgrammePage, PortalError> {
    let t = MapText::get(s.lang());
    let c = caller(portal, s).await.map_err(|e| s.fail(e))?;
    let p = service::programme(&c, id).await.map_err(|e| s.fail(e))?;
    let has = |r: MapRole| c.roles().contains(&r);
    let criteria_lines = match &typed {
        Some(f) => CRITERIA.lines(f, 1, MORE),
        None => CRITERIA.fill(
            p.criteria
                .iter()
                .map(|k| {
                    [
                        k.code.clone(),
                        k.weight.to_string(),
                        k.min.to_string(),
                        k.max.to_string(),
                    ]
                })
                .collect(),
            MORE,
        ),
    };
    Ok(ProgrammePage {
        shell: s.shell(p.title.clone()),
        t,
        id,
        staff: !c.roles().is_empty(),
        manager: has(MapRole::ProgrammeManager),
        ranks: has(MapRole::ProgrammeManager) || has(MapRole::Approver),
        p: facts(t, p, &regimes(&c).await),
        criteria_lines,
        error,
    })
}

/// The programme's id from the path (anything else is not found).
pub(super) fn programme_id(s: &SignedIn, raw: &str) -> Result<i64, PortalError> {
    raw.parse::<i64>()
        .map_err(|_| s.fail(GovError::NotFound(format!("programme `{raw}`"))))
}

/// `GET /map/programmes/{id}`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let id = programme_id(&s, &raw)?;
    let t = MapText::get(s.lang());
    let mut page = load(&portal, &s, id, None, None).await?;
    page.shell = page.shell.with_done(Some(&q.done), &done_texts(t));
    Ok(render_status(StatusCode::OK, &page))
}

/// `GET /map/programmes/{id}/scoresheet` (the form's action opened as a page): the
/// programme.
pub(super) async fn back(Path(raw): Path<String>) -> Response {
    match raw.parse::<i64>() {
        Ok(id) => see_other(&format!("/map/programmes/{id}")),
        Err(_) => see_other("/map"),
    }
}

/// `POST /map/programmes/{id}/scoresheet`: the new criteria; "more lines" shows the form
/// again with more empty lines.
pub(super) async fn scoresheet(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let id = programme_id(&s, &raw)?;
    let t = MapText::get(s.lang());
    let (fields, too_long) = fields_of(t, form);
    if fields.contains_key("more") && too_long.is_none() {
        let mut page = load(&portal, &s, id, Some(fields.clone()), None).await?;
        page.criteria_lines = CRITERIA.lines(&fields, 1, MORE + 1);
        return Ok(render_status(StatusCode::OK, &page));
    }
    let result = match too_long {
        Some(e) => Err(e),
        None => match programme_form::criteria(t, &fields) {
            Ok(criteria) => match caller(&portal, &s).await {
                Ok(c) => service::set_scoresheet(&c, id, &criteria).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/map/programmes/{id}?done=scoresheet"))),
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let page = load(&portal, &s, id, Some(fields), Some(refusal)).await?;
            Ok(render_status(status, &page))
        }
    }
}

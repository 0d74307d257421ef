//! Who may do what to an application in which state, and the checks each step makes:
//! register checks (through [`super::registers`]), money (budget, contract amount, de
//! minimis), conflicts of interest and blind scoring. Every refusal is an error before any
//! write, or inside the transition's transaction (which then rolls back): a refused action
//! changes nothing.

use std::collections::BTreeMap;

use dagr_engine::{Principal, Role};

use crate::AppState;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::*;
use super::registers::{self, Grantor, Registers};
use super::store::{MapStore, ProgrammeRow, StaffRole};

mod actions;
mod aid;
mod ranking;

pub(crate) use actions::act;
pub(crate) use aid::{aid, link, set_regime, unlink};
pub(crate) use ranking::{decide_all, ranking};

/// Longest title, reason or justification accepted.
pub(crate) const MAX_TEXT: usize = 4000;
/// Most criteria in a scoresheet, conditions in a programme, costs in a report.
pub(crate) const MAX_ITEMS: usize = 50;

/// Who acts in MAP.
#[derive(Debug, Clone)]
pub(crate) enum Actor {
    /// A person of a grantor organisation with MAP roles.
    Staff {
        /// Login.
        login: String,
        /// Their organisation.
        organisation: String,
        /// Their roles.
        roles: Vec<MapRole>,
        /// Their personal code.
        personal_code: String,
    },
    /// A person acting for a company (a subject).
    Applicant {
        /// Their personal code.
        code: String,
    },
    /// A DAGR operator: registers grantors and staff, reads no application.
    Admin,
}

impl Actor {
    /// Who the caller is in MAP; 403 for callers MAP does not know.
    pub(crate) async fn of(store: &MapStore, p: &Principal) -> GovResult<Actor> {
        match p.role {
            Role::Admin => return Ok(Actor::Admin),
            Role::Subject => {
                if let Some(code) = &p.subject {
                    return Ok(Actor::Applicant { code: code.clone() });
                }
            }
            _ => {}
        }
        if let (Some(login), Some(org)) = (&p.user, &p.organisation) {
            let staff: Vec<StaffRole> = store
                .staff_roles(login)
                .await?
                .into_iter()
                .filter(|s| &s.organisation == org)
                .collect();
            if let Some(first) = staff.first() {
                return Ok(Actor::Staff {
                    login: login.clone(),
                    organisation: org.clone(),
                    personal_code: first.personal_code.clone(),
                    roles: staff.iter().map(|s| s.role).collect(),
                });
            }
        }
        Err(GovError::Forbidden(
            "MAP serves its staff (people of a grantor organisation with a MAP role, signed in with their own token) \
             and applicants (citizens with a subject token)"
                .into(),
        ))
    }

    /// The actor as history shows it.
    pub(crate) fn describe(&self, role: Option<MapRole>) -> String {
        match self {
            Actor::Staff {
                login,
                organisation,
                ..
            } => format!(
                "{} {login} ({organisation})",
                role.map_or("staff", MapRole::as_str)
            ),
            Actor::Applicant { .. } => "applicant".into(),
            Actor::Admin => "admin".into(),
        }
    }

    /// The staff login, when staff.
    pub(crate) fn login(&self) -> Option<&str> {
        match self {
            Actor::Staff { login, .. } => Some(login),
            _ => None,
        }
    }

    /// The staff's organisation and login when they hold `role` in `organisation`; 403
    /// otherwise.
    pub(crate) fn require(&self, role: MapRole, organisation: &str) -> GovResult<&str> {
        match self {
            Actor::Staff {
                login,
                organisation: o,
                roles,
                ..
            } if o == organisation && roles.contains(&role) => Ok(login),
            _ => Err(GovError::Forbidden(format!(
                "this action is for a {} of {organisation}",
                role.as_str()
            ))),
        }
    }

    /// The applicant's code when the actor is the applicant of `app`.
    pub(crate) fn require_applicant(&self, app: &super::store::AppRow) -> GovResult<&str> {
        match self {
            Actor::Applicant { code } if *code == app.applicant_code => Ok(code),
            _ => Err(GovError::Forbidden(format!(
                "this action is for the person who filed application {}",
                app.id
            ))),
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A required, trimmed text of at most [`MAX_TEXT`] characters without control characters
/// (new lines allowed).
pub(crate) fn text(field: &str, value: &str) -> GovResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(invalid(
            field,
            format!("is longer than {MAX_TEXT} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(v.to_owned())
}

pub(crate) fn check_scoresheet(criteria: &[Criterion]) -> GovResult<()> {
    if criteria.is_empty() || criteria.len() > MAX_ITEMS {
        return Err(invalid(
            "criteria",
            format!("give 1 to {MAX_ITEMS} criteria"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in criteria {
        if c.code.is_empty()
            || c.code.len() > 64
            || !c
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "criteria",
                format!("code `{}` must be 1–64 letters, digits, `_` or `-`", c.code),
            ));
        }
        if !seen.insert(c.code.as_str()) {
            return Err(invalid(
                "criteria",
                format!("code `{}` appears twice", c.code),
            ));
        }
        if !(c.weight.is_finite() && c.weight > 0.0 && c.weight <= 1000.0) {
            return Err(invalid(
                "criteria",
                format!("`{}`: weight must be in (0, 1000]", c.code),
            ));
        }
        if !(c.min.is_finite()
            && c.max.is_finite()
            && c.min < c.max
            && c.min >= 0.0
            && c.max <= 1000.0)
        {
            return Err(invalid(
                "criteria",
                format!("`{}`: need 0 <= min < max <= 1000", c.code),
            ));
        }
    }
    Ok(())
}

/// Create a programme (a programme manager of a grantor organisation).
pub(crate) async fn create_programme(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    input: NewProgramme,
) -> GovResult<Programme> {
    let Actor::Staff { organisation, .. } = actor else {
        return Err(GovError::Forbidden(
            "programmes are made by programme managers".into(),
        ));
    };
    let login = actor
        .require(MapRole::ProgrammeManager, organisation)?
        .to_owned();
    if store.grantor(organisation).await?.is_none() {
        return Err(GovError::Conflict(format!(
            "{organisation} is not set up as a grantor: an admin names its MAP system first"
        )));
    }
    let title = text("title", &input.title)?;
    let budget = cents("budget", input.budget)?;
    let max_grant = cents("max_grant", input.max_grant)?;
    if budget == 0 || max_grant == 0 || max_grant > budget {
        return Err(invalid("max_grant", "need 0 < max_grant <= budget"));
    }
    let rate = input.co_financing_rate.unwrap_or(1.0);
    if !(rate.is_finite() && rate > 0.0 && rate <= 1.0) {
        return Err(invalid("co_financing_rate", "must be in (0, 1]"));
    }
    let opens = Time::parse(&input.opens_at)
        .ok_or_else(|| invalid("opens_at", "not RFC 3339 or a date"))?;
    let closes = Time::parse_end(&input.closes_at)
        .ok_or_else(|| invalid("closes_at", "not RFC 3339 or a date"))?;
    if closes <= opens {
        return Err(invalid("closes_at", "must be after opens_at"));
    }
    let eligibility = match input.eligibility {
        EligibilityInput::One(p) => vec![Condition {
            name: "eligibility".into(),
            predicate: p,
        }],
        EligibilityInput::Many(v) => v,
    };
    if eligibility.len() > MAX_ITEMS {
        return Err(invalid(
            "eligibility",
            format!("at most {MAX_ITEMS} conditions"),
        ));
    }
    for c in &eligibility {
        text("eligibility", &c.name)?;
    }
    registers::check_conditions(state, &eligibility)?;
    check_scoresheet(&input.criteria)?;
    if !(1..=9).contains(&input.evaluators_per_application) {
        return Err(invalid("evaluators_per_application", "must be 1 to 9"));
    }
    if input.cost_categories.len() > MAX_ITEMS {
        return Err(invalid("cost_categories", format!("at most {MAX_ITEMS}")));
    }
    let cost_categories = input
        .cost_categories
        .iter()
        .map(|c| text("cost_categories", c))
        .collect::<GovResult<Vec<_>>>()?;
    if input.report_schedule.len() > MAX_ITEMS {
        return Err(invalid(
            "report_schedule",
            format!("at most {MAX_ITEMS} reports"),
        ));
    }
    let levels = input.approval_levels.unwrap_or_else(|| {
        vec![
            ApprovalLevel {
                role: MapRole::ProgrammeManager,
                from_amount: 0.0,
            },
            ApprovalLevel {
                role: MapRole::Accountant,
                from_amount: 0.0,
            },
        ]
    });
    if levels.is_empty() || levels.len() > 5 {
        return Err(invalid("approval_levels", "give 1 to 5 levels"));
    }
    for l in &levels {
        cents("approval_levels", l.from_amount)?;
    }
    for r in &input.report_schedule {
        if r.kind != "interim" && r.kind != "final" {
            return Err(invalid("report_schedule", "kind is `interim` or `final`"));
        }
        if r.months_after_contract > 120 {
            return Err(invalid(
                "report_schedule",
                "at most 120 months after the contract",
            ));
        }
    }
    if store.regime(input.aid_regime.as_str()).await?.is_none() {
        let known: Vec<String> = store.regimes().await?.into_iter().map(|r| r.code).collect();
        return Err(invalid(
            "aid_regime",
            format!(
                "no aid regime `{}`; the regimes are {}",
                input.aid_regime.as_str(),
                known.join(", ")
            ),
        ));
    }
    let row = ProgrammeRow {
        id: 0,
        organisation: organisation.clone(),
        title,
        budget,
        max_grant,
        co_financing_bp: (rate * 10_000.0).round() as i64,
        opens_at: opens.0,
        closes_at: closes.0,
        aid_regime: input.aid_regime,
        eligibility,
        cost_categories,
        approval_levels: levels,
        report_schedule: input.report_schedule,
        evaluators_per_application: i64::from(input.evaluators_per_application),
        scoresheet_version: 1,
        criteria: input.criteria,
        committed: 0,
        paid: 0,
        recovered: 0,
        created_by: actor.describe(Some(MapRole::ProgrammeManager)),
        created_at: Time::now().0,
    };
    let _ = login;
    let id = store.create_programme(&row).await?;
    programme(store, actor, id).await
}

/// A programme as the caller may see it: staff of its organisation see everything;
/// applicants see the programmes (they apply to them).
pub(crate) async fn programme(store: &MapStore, actor: &Actor, id: i64) -> GovResult<Programme> {
    let p = programme_row(store, id).await?;
    match actor {
        Actor::Staff { organisation, .. } if *organisation != p.organisation => {
            Err(GovError::NotFound(format!("programme {id}")))
        }
        _ => Ok(p.view()),
    }
}

pub(crate) async fn programme_row(store: &MapStore, id: i64) -> GovResult<ProgrammeRow> {
    store
        .programme(id)
        .await?
        .ok_or_else(|| GovError::NotFound(format!("programme {id}")))
}

async fn grantor_of(store: &MapStore, p: &ProgrammeRow) -> GovResult<Grantor> {
    store.grantor(&p.organisation).await?.ok_or_else(|| {
        GovError::Conflict(format!(
            "{} is no longer set up as a grantor: MAP has no system to read the registers under",
            p.organisation
        ))
    })
}

/// The person's right to represent the company, from `officials`: the read, and whether a
/// row says they may represent it.
async fn represents(
    regs: &Registers<'_>,
    rn: &str,
    code: &str,
    purpose: String,
) -> GovResult<(registers::Read, bool)> {
    let read = regs.relations(rn, code, purpose).await?;
    let ok = read
        .rows
        .iter()
        .any(|r| r.get("represents").and_then(serde_json::Value::as_bool) == Some(true));
    Ok((read, ok))
}

/// File a draft: the applicant's right to represent the company is checked in `officials`,
/// the company's data pre-filled from `companies`.
pub(crate) async fn create_application(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    input: NewApplication,
) -> GovResult<Application> {
    let Actor::Applicant { code } = actor else {
        return Err(GovError::Forbidden(
            "applications are filed by a person acting for a company (a subject token)".into(),
        ));
    };
    let title = text("title", &input.title)?;
    let requested = cents("requested_amount", input.requested_amount)?;
    registers::check_registration_number(&input.registration_number)?;
    let p = programme_row(store, input.programme).await?;
    if requested > p.max_grant {
        return Err(invalid(
            "requested_amount",
            format!(
                "exceeds the programme's maximum grant of EUR {:.2}",
                eur(p.max_grant)
            ),
        ));
    }
    let grantor = grantor_of(store, &p).await?;
    let regs = Registers::new(state, &grantor, None);
    let rn = &input.registration_number;
    let (rep, ok) = represents(
        &regs,
        rn,
        code,
        format!(
            "MAP programme {}: right to represent {rn} for a new application",
            p.id
        ),
    )
    .await?;
    if !ok {
        return Err(GovError::Forbidden(format!(
            "the enterprise register does not record you as entitled to represent {rn}"
        )));
    }
    let (company, applicant) = regs
        .company(
            rn,
            format!(
                "MAP programme {}: pre-fill of a new application of {rn}",
                p.id
            ),
        )
        .await?;
    let Some(applicant) = applicant else {
        return Err(invalid(
            "registration_number",
            format!("no company {rn} in the register"),
        ));
    };
    let app = store
        .create_application(
            &super::store::Draft {
                programme: p.id,
                title: &title,
                requested,
                applicant_code: code,
                applicant: &applicant,
            },
            &[("represent", &rep, true), ("prefill", &company, true)],
            &actor.describe(None),
        )
        .await?;
    Ok(app)
}

/// Edit a draft or returned application (its applicant).
pub(crate) async fn edit(
    store: &MapStore,
    actor: &Actor,
    id: i64,
    title: Option<String>,
    requested: Option<f64>,
) -> GovResult<Application> {
    let app = app_row(store, actor, id).await?;
    actor.require_applicant(&app)?;
    let title = title.map(|t| text("title", &t)).transpose()?;
    let requested = requested
        .map(|r| cents("requested_amount", r))
        .transpose()?;
    if let Some(r) = requested {
        let p = programme_row(store, app.programme).await?;
        if r > p.max_grant {
            return Err(invalid(
                "requested_amount",
                format!(
                    "exceeds the programme's maximum grant of EUR {:.2}",
                    eur(p.max_grant)
                ),
            ));
        }
    }
    if !store.edit(id, title.as_deref(), requested).await? {
        return Err(GovError::Conflict(format!(
            "application {id} is {}; only a draft or a returned application can be edited",
            app.status.as_str()
        )));
    }
    store.application(id).await
}

/// The stored core of an application the actor may see (404 otherwise).
pub(crate) async fn app_row(
    store: &MapStore,
    actor: &Actor,
    id: i64,
) -> GovResult<super::store::AppRow> {
    let not_found = || GovError::NotFound(format!("application {id}"));
    let app = store.app_row(id).await?.ok_or_else(not_found)?;
    match actor {
        Actor::Applicant { code } if *code == app.applicant_code => Ok(app),
        Actor::Staff { organisation, .. } => {
            let p = programme_row(store, app.programme).await?;
            if p.organisation == *organisation {
                Ok(app)
            } else {
                Err(not_found())
            }
        }
        _ => Err(not_found()),
    }
}

/// Evaluate the programme's conditions on the company; the read and the names of the
/// conditions that failed.
async fn eligibility(
    regs: &Registers<'_>,
    p: &ProgrammeRow,
    app: &super::store::AppRow,
    step: &str,
) -> GovResult<(registers::Read, Vec<String>)> {
    let (read, outcome) = regs
        .eligibility(
            &app.registration_number,
            &p.eligibility,
            format!("MAP application {}: eligibility check at {step}", app.id),
        )
        .await?;
    let failed = if read.rows.is_empty() {
        vec!["the company is no longer in the register".to_owned()]
    } else {
        outcome
            .into_iter()
            .filter(|(_, held)| !held)
            .map(|(n, _)| n)
            .collect()
    };
    Ok((read, failed))
}

fn failed_conditions(p: &ProgrammeRow, failed: &[String]) -> String {
    failed
        .iter()
        .map(|n| match p.eligibility.iter().find(|c| &c.name == n) {
            Some(c) => format!("`{n}` ({})", c.predicate),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Submit (or resubmit) an application: the window, the amount, the right to represent and
/// every eligibility condition are checked; a failed condition is a 422 naming it.
pub(crate) async fn submit(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    id: i64,
) -> GovResult<Application> {
    let app = app_row(store, actor, id).await?;
    let code = actor.require_applicant(&app)?.to_owned();
    if !matches!(app.status, Status::Draft | Status::Returned) {
        return Err(GovError::Conflict(format!(
            "application {id} is {}; only a draft or a returned application can be submitted",
            app.status.as_str()
        )));
    }
    let p = programme_row(store, app.programme).await?;
    let now = Time::now().0;
    if app.status == Status::Draft && !(p.opens_at <= now && now <= p.closes_at) {
        return Err(GovError::Conflict(format!(
            "programme {} accepts applications from {} to {}",
            p.id,
            Time(p.opens_at).to_rfc3339(),
            Time(p.closes_at).to_rfc3339()
        )));
    }
    if app.requested > p.max_grant || app.requested == 0 {
        return Err(invalid(
            "requested_amount",
            format!(
                "must be more than 0 and at most EUR {:.2}",
                eur(p.max_grant)
            ),
        ));
    }
    let grantor = grantor_of(store, &p).await?;
    let regs = Registers::new(state, &grantor, None);
    let (rep, ok) = represents(
        &regs,
        &app.registration_number,
        &code,
        format!("MAP application {id}: right to represent at submit"),
    )
    .await?;
    if !ok {
        return Err(GovError::Forbidden(format!(
            "the enterprise register no longer records you as entitled to represent {}",
            app.registration_number
        )));
    }
    let (read, failed) = eligibility(&regs, &p, &app, "submit").await?;
    if !failed.is_empty() {
        return Err(invalid(
            "eligibility",
            format!(
                "the company does not meet {}",
                failed_conditions(&p, &failed)
            ),
        ));
    }
    let action = if app.status == Status::Returned {
        "resubmit"
    } else {
        "submit"
    };
    let mut t = store
        .begin(id, &[Status::Draft, Status::Returned], Status::Submitted)
        .await?;
    t.evidence("represent", &rep, true).await?;
    t.evidence("submit", &read, true).await?;
    t.document("incoming", "application").await?;
    let out = t.finish(action, &actor.describe(None), None).await?;
    notify_staff_of(
        store,
        &p,
        MapRole::ProgrammeManager,
        id,
        &format!("Application {id} was submitted"),
    )
    .await;
    Ok(out)
}

async fn notify_staff_of(
    store: &MapStore,
    _p: &ProgrammeRow,
    _role: MapRole,
    app: i64,
    text: &str,
) {
    // Staff inboxes are per programme organisation; delivery failures never undo an action.
    if let Err(e) = store
        .notify(&format!("org:{}", _p.organisation), Some(app), text)
        .await
    {
        tracing::warn!(error = %e, application = app, "MAP notification not stored");
    }
}

async fn notify_applicant(store: &MapStore, app: &super::store::AppRow, text: &str) {
    if let Err(e) = store
        .notify(
            &format!("subject:{}", app.applicant_code),
            Some(app.id),
            text,
        )
        .await
    {
        tracing::warn!(error = %e, application = app.id, "MAP notification not stored");
    }
}

/// The application as the actor sees it: blind scores (an evaluator sees only their own
/// until every score is in; others see none until then), an evaluator only after they
/// declared. Staff openings are logged for the applicant.
pub(crate) async fn view(
    store: &MapStore,
    actor: &Actor,
    id: i64,
    as_of: Option<Time>,
) -> GovResult<Application> {
    let row = app_row(store, actor, id).await?;
    let p = programme_row(store, row.programme).await?;
    require_declared(store, actor, id).await?;
    let mut app = match as_of {
        Some(t) => {
            if !matches!(actor, Actor::Staff { .. }) {
                return Err(GovError::Forbidden("the as-of replay is for staff".into()));
            }
            store.application_as_of(id, t).await?.ok_or_else(|| {
                GovError::NotFound(format!(
                    "application {id} did not exist at {}",
                    t.to_rfc3339()
                ))
            })?
        }
        None => store.application(id).await?,
    };
    let complete = app.scores.len() as i64 >= p.evaluators_per_application;
    if !complete {
        match actor {
            Actor::Staff { login, .. } => app.scores.retain(|s| &s.evaluator == login),
            _ => app.scores.clear(),
        }
    }
    if let Actor::Applicant { .. } = actor {
        // Evaluators stay anonymous to the applicant.
        app.evaluators.clear();
        for s in &mut app.scores {
            s.evaluator = "evaluator".into();
        }
    }
    if let Actor::Staff {
        login,
        organisation,
        roles,
        ..
    } = actor
    {
        let role = roles.first().map_or("staff", |r| r.as_str());
        let what = if as_of.is_some() {
            "replayed"
        } else {
            "opened"
        };
        store
            .note_opened(id, role, Some(organisation), Some(login), what)
            .await?;
    }
    Ok(app)
}

/// The gate of evaluators: an evaluator may open an application only after declaring.
pub(crate) async fn require_declared(store: &MapStore, actor: &Actor, id: i64) -> GovResult<()> {
    if let Actor::Staff { roles, login, .. } = actor
        && !roles.iter().any(|r| *r != MapRole::Evaluator)
    {
        let Some(declared) = store.assignment(id, login).await? else {
            return Err(GovError::NotFound(format!("application {id}")));
        };
        if !declared {
            return Err(GovError::Conflict(format!(
                "declare whether you have a conflict of interest before opening application {id}"
            )));
        }
    }
    Ok(())
}

/// The actor's inbox key.
pub(crate) fn inbox_key(actor: &Actor) -> GovResult<Vec<String>> {
    Ok(match actor {
        Actor::Staff {
            login,
            organisation,
            roles,
            ..
        } => {
            let mut keys = vec![format!("user:{login}")];
            if roles.contains(&MapRole::ProgrammeManager) {
                keys.push(format!("org:{organisation}"));
            }
            keys
        }
        Actor::Applicant { code } => vec![format!("subject:{code}")],
        Actor::Admin => return Err(GovError::Forbidden("admins have no MAP inbox".into())),
    })
}

/// Register a grantor (admin): the organisation and its consumer system MAP reads under.
pub(crate) async fn set_grantor(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    organisation: &str,
    system: i64,
) -> GovResult<()> {
    if !matches!(actor, Actor::Admin) {
        return Err(GovError::Forbidden(
            "grantors are registered by an admin".into(),
        ));
    }
    let sys = state
        .gov
        .store()
        .system(system)
        .await?
        .ok_or_else(|| invalid("system", format!("no system {system}")))?;
    if sys.organisation != organisation || sys.kind != crate::model::SystemKind::Consumer {
        return Err(invalid(
            "system",
            format!("system {system} is not a consumer system of {organisation}"),
        ));
    }
    store.set_grantor(organisation, system).await
}

/// Give a person a MAP role (admin).
pub(crate) async fn add_staff(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    login: &str,
    role: MapRole,
    personal_code: &str,
) -> GovResult<StaffRole> {
    if !matches!(actor, Actor::Admin) {
        return Err(GovError::Forbidden(
            "MAP roles are given by an admin".into(),
        ));
    }
    registers::check_personal_code("personal_code", personal_code)?;
    let users = state.gov.store().user_by_login(login).await?;
    let user = users.ok_or_else(|| invalid("login", format!("no user {login}")))?;
    let Some(organisation) = user.organisation else {
        return Err(invalid(
            "login",
            format!("{login} belongs to no organisation"),
        ));
    };
    if store.grantor(&organisation).await?.is_none() {
        return Err(GovError::Conflict(format!(
            "{organisation} is not a grantor"
        )));
    }
    let s = StaffRole {
        login: login.to_owned(),
        role,
        organisation,
        personal_code: personal_code.to_owned(),
    };
    store.add_staff(&s).await?;
    Ok(s)
}

//! MAP as a service for the REST handlers ([`super::api`]) and the portal: who the caller is
//! in MAP ([`MapCaller`]) and each read or action with the caller's rules applied. Both
//! front ends call these functions; neither has its own copy of a rule.

use dagr_engine::Principal;

use crate::AppState;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::*;
use super::rules::{self, Actor};
use super::store::{
    AccessEntry, AidTotals, AppFilter, ApplicationSummary, HistoryEntry, InboxMessage, MapStore,
    Regime, UndertakingLink,
};

/// The caller as MAP knows them: staff with roles, an applicant, or an admin.
#[derive(Debug, Clone)]
pub struct MapCaller {
    pub(crate) store: MapStore,
    pub(crate) actor: Actor,
}

impl MapCaller {
    /// Who `p` is in MAP; 403 for callers MAP does not serve (system tokens, persons of
    /// organisations without MAP roles).
    pub async fn of(state: &AppState, p: &Principal) -> GovResult<MapCaller> {
        let store = MapStore::new(state.gov.store());
        let actor = Actor::of(&store, p).await?;
        Ok(MapCaller { store, actor })
    }

    /// The staff's MAP roles (empty for applicants and admins).
    pub fn roles(&self) -> &[MapRole] {
        match &self.actor {
            Actor::Staff { roles, .. } => roles,
            _ => &[],
        }
    }

    /// Whether the caller is an applicant (a person acting for companies).
    pub fn is_applicant(&self) -> bool {
        matches!(self.actor, Actor::Applicant { .. })
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        matches!(self.actor, Actor::Admin)
    }

    /// The staff's login.
    pub fn login(&self) -> Option<&str> {
        self.actor.login()
    }
}

/// Programmes: staff see their organisation's, applicants every programme.
pub async fn programmes(c: &MapCaller) -> GovResult<Vec<Programme>> {
    let org = match &c.actor {
        Actor::Staff { organisation, .. } => Some(organisation.as_str()),
        Actor::Applicant { .. } => None,
        Actor::Admin => {
            return Err(GovError::Forbidden(
                "programmes are for MAP staff and applicants".into(),
            ));
        }
    };
    Ok(c.store
        .programmes(org)
        .await?
        .iter()
        .map(|p| p.view())
        .collect())
}

/// One programme.
pub async fn programme(c: &MapCaller, id: i64) -> GovResult<Programme> {
    if c.is_admin() {
        return Err(GovError::Forbidden(
            "programmes are for MAP staff and applicants".into(),
        ));
    }
    rules::programme(&c.store, &c.actor, id).await
}

/// Create a programme (a programme manager).
pub async fn create_programme(
    state: &AppState,
    c: &MapCaller,
    input: NewProgramme,
) -> GovResult<Programme> {
    rules::create_programme(state, &c.store, &c.actor, input).await
}

/// Refuse unless the caller is a programme manager of some grantor (checked before a body
/// is read).
pub fn require_programme_manager(c: &MapCaller) -> GovResult<()> {
    match &c.actor {
        Actor::Staff { organisation, .. } => c
            .actor
            .require(MapRole::ProgrammeManager, organisation)
            .map(drop),
        _ => Err(GovError::Forbidden("this is for programme managers".into())),
    }
}

/// Replace a programme's scoresheet (its programme manager); a new version once anything
/// was scored on the current one.
pub async fn set_scoresheet(
    c: &MapCaller,
    id: i64,
    criteria: &[Criterion],
) -> GovResult<Programme> {
    let prog = rules::programme_row(&c.store, id).await?;
    c.actor
        .require(MapRole::ProgrammeManager, &prog.organisation)?;
    rules::check_scoresheet(criteria)?;
    c.store
        .set_scoresheet(
            id,
            criteria,
            &c.actor.describe(Some(MapRole::ProgrammeManager)),
        )
        .await?;
    rules::programme(&c.store, &c.actor, id).await
}

/// Filters and page of the application list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this programme's.
    pub programme: Option<i64>,
    /// Only in this status.
    pub status: Option<Status>,
    /// Ids below this (the last id of the previous page).
    pub before: Option<i64>,
    /// Page size, 1–1000.
    pub limit: i64,
}

/// Applications the caller may see, newest first: staff their organisation's (evaluators
/// only those assigned to them), applicants their own.
pub async fn applications(c: &MapCaller, q: &ListQuery) -> GovResult<Vec<ApplicationSummary>> {
    if !(1..=1000).contains(&q.limit) {
        return Err(GovError::Invalid {
            field: "limit".into(),
            reason: format!("must be between 1 and 1000; got {}", q.limit),
        });
    }
    let mut f = AppFilter {
        programme: q.programme,
        status: q.status,
        before: q.before,
        limit: q.limit,
        ..AppFilter::default()
    };
    match &c.actor {
        Actor::Staff {
            organisation,
            roles,
            login,
            ..
        } => {
            f.organisation = Some(organisation.clone());
            if roles.iter().all(|r| *r == MapRole::Evaluator) {
                f.evaluator = Some(login.clone());
            }
        }
        Actor::Applicant { code } => f.applicant_code = Some(code.clone()),
        Actor::Admin => {
            return Err(GovError::Forbidden(
                "applications are for MAP staff and applicants".into(),
            ));
        }
    }
    c.store.applications(&f).await
}

/// One application as the caller may see it (blind scores; an evaluator after declaring;
/// `as_of` for staff); staff openings are logged for the applicant.
pub async fn application(c: &MapCaller, id: i64, as_of: Option<Time>) -> GovResult<Application> {
    rules::view(&c.store, &c.actor, id, as_of).await
}

/// Refuse unless the caller may see application `id` (checked before a body is read).
pub async fn require_visible(c: &MapCaller, id: i64) -> GovResult<()> {
    if c.is_admin() {
        return Err(GovError::Forbidden(
            "admins take no part in grant decisions".into(),
        ));
    }
    rules::app_row(&c.store, &c.actor, id).await.map(drop)
}

/// File a draft (an applicant).
pub async fn create_application(
    state: &AppState,
    c: &MapCaller,
    input: NewApplication,
) -> GovResult<Application> {
    rules::create_application(state, &c.store, &c.actor, input).await
}

/// Edit a draft or returned application (its applicant).
pub async fn edit(
    c: &MapCaller,
    id: i64,
    title: Option<String>,
    requested_amount: Option<f64>,
) -> GovResult<Application> {
    rules::edit(&c.store, &c.actor, id, title, requested_amount).await
}

/// Submit or resubmit (its applicant).
pub async fn submit(state: &AppState, c: &MapCaller, id: i64) -> GovResult<Application> {
    rules::submit(state, &c.store, &c.actor, id).await
}

/// Take an action on an application. An action that changes the set of granted projects
/// publishes `map_projects` anew.
pub async fn act(
    state: &AppState,
    c: &MapCaller,
    id: i64,
    action: Action,
) -> GovResult<Application> {
    let publishes = matches!(
        action,
        Action::Approve { .. }
            | Action::Contract
            | Action::Close
            | Action::Terminate { .. }
            | Action::Withdraw
    );
    let app = rules::act(state, &c.store, &c.actor, id, action).await?;
    if publishes {
        super::publication::schedule(state);
    }
    Ok(app)
}

/// The history; staff logins are shown to the applicant as role and organisation only.
pub async fn history(c: &MapCaller, id: i64) -> GovResult<Vec<HistoryEntry>> {
    rules::app_row(&c.store, &c.actor, id).await?;
    rules::require_declared(&c.store, &c.actor, id).await?;
    let mut h = c.store.history(id).await?;
    if c.is_applicant() {
        for e in &mut h {
            if let Some((role, rest)) = e.by.split_once(' ') {
                let org = rest
                    .rsplit_once('(')
                    .map(|(_, o)| o.trim_end_matches(')'))
                    .unwrap_or("");
                e.by = if org.is_empty() {
                    role.to_owned()
                } else {
                    format!("{role} ({org})")
                };
            }
        }
    }
    Ok(h)
}

/// Who opened the application and the register reads made for it (its applicant and the
/// grantor's programme managers).
pub async fn access_log(c: &MapCaller, id: i64) -> GovResult<Vec<AccessEntry>> {
    let app = rules::app_row(&c.store, &c.actor, id).await?;
    if let Actor::Staff {
        roles,
        organisation,
        ..
    } = &c.actor
        && !roles.contains(&MapRole::ProgrammeManager)
    {
        return Err(GovError::Forbidden(format!(
            "the access log is for the applicant and programme managers of {organisation}"
        )));
    }
    let prog = rules::programme_row(&c.store, app.programme).await?;
    c.store.access_log(id, &prog.organisation).await
}

/// The aid of the undertaking a company belongs to, against each regime's ceiling.
pub async fn aid(c: &MapCaller, undertaking: &str) -> GovResult<AidTotals> {
    rules::aid(&c.store, &c.actor, undertaking).await
}

/// Record aid granted outside MAP under `regime` (a programme manager); counted in the
/// ceilings from then on.
pub async fn add_external_aid(
    c: &MapCaller,
    undertaking: &str,
    regime: &AidRegime,
    amount: f64,
    granted_at: &str,
) -> GovResult<AidTotals> {
    require_programme_manager(c)?;
    super::registers::check_registration_number(undertaking)?;
    let amount = cents("amount", amount)?;
    let at = Time::parse(granted_at).ok_or_else(|| GovError::Invalid {
        field: "granted_at".into(),
        reason: "not RFC 3339 or a date".into(),
    })?;
    if at > Time::now() {
        return Err(GovError::Invalid {
            field: "granted_at".into(),
            reason: "is in the future".into(),
        });
    }
    if regime.is_none() || c.store.regime(regime.as_str()).await?.is_none() {
        return Err(GovError::Invalid {
            field: "regime".into(),
            reason: format!(
                "`{}` is not a state aid regime of the rules",
                regime.as_str()
            ),
        });
    }
    c.store
        .add_external_aid(undertaking, regime.as_str(), amount, at)
        .await?;
    rules::aid(&c.store, &c.actor, undertaking).await
}

/// The aid regimes (anyone MAP serves, admins included).
pub async fn regimes(c: &MapCaller) -> GovResult<Vec<Regime>> {
    c.store.regimes().await
}

/// Create or change an aid regime (an admin).
pub async fn set_regime(c: &MapCaller, input: RegimeInput) -> GovResult<Regime> {
    rules::set_regime(&c.store, &c.actor, input).await
}

/// The links that make the undertaking of `rn` (MAP staff and admins).
pub async fn links(c: &MapCaller, rn: &str) -> GovResult<Vec<UndertakingLink>> {
    super::registers::check_registration_number(rn)?;
    if c.is_applicant() {
        return Err(GovError::Forbidden(
            "the links of undertakings are for MAP staff".into(),
        ));
    }
    c.store.links(rn).await
}

/// Record that `member` is one undertaking with `parent` (a programme manager or an admin).
pub async fn link(c: &MapCaller, parent: &str, member: &str, reason: &str) -> GovResult<AidTotals> {
    rules::link(&c.store, &c.actor, parent, member, reason).await
}

/// Remove the link of `member` to `parent` (a programme manager or an admin).
pub async fn unlink(c: &MapCaller, parent: &str, member: &str) -> GovResult<AidTotals> {
    rules::unlink(&c.store, &c.actor, parent, member).await
}

/// Refuse unless the caller may record undertaking links (checked before a body is read).
pub fn require_linker(c: &MapCaller) -> GovResult<()> {
    if c.is_admin() || c.roles().contains(&MapRole::ProgrammeManager) {
        Ok(())
    } else {
        Err(GovError::Forbidden(
            "which companies form one undertaking is recorded by a programme manager or an admin"
                .into(),
        ))
    }
}

/// The caller's inbox, newest first (programme managers also get their organisation's).
pub async fn inbox(c: &MapCaller) -> GovResult<Vec<InboxMessage>> {
    let mut all = Vec::new();
    for k in rules::inbox_key(&c.actor)? {
        all.extend(c.store.inbox(&k, 100).await?);
    }
    all.sort_by_key(|m| std::cmp::Reverse(m.id));
    all.truncate(100);
    Ok(all)
}

/// Register a grantor (admin).
pub async fn set_grantor(
    state: &AppState,
    c: &MapCaller,
    organisation: &str,
    system: i64,
) -> GovResult<()> {
    rules::set_grantor(state, &c.store, &c.actor, organisation, system).await
}

/// Give a person a MAP role (admin).
pub async fn add_staff(
    state: &AppState,
    c: &MapCaller,
    login: &str,
    role: MapRole,
    personal_code: &str,
) -> GovResult<super::store::StaffRole> {
    rules::add_staff(state, &c.store, &c.actor, login, role, personal_code).await
}

/// The logins of the caller's organisation holding `role` (programme managers pick
/// evaluators from it; approvers see it too). Personal codes are not shown.
pub async fn staff(c: &MapCaller, role: MapRole) -> GovResult<Vec<StaffMember>> {
    let org = match &c.actor {
        Actor::Staff {
            organisation,
            roles,
            ..
        } if roles.contains(&MapRole::ProgrammeManager) || roles.contains(&MapRole::Approver) => {
            organisation
        }
        _ => {
            return Err(GovError::Forbidden(
                "the staff list is for programme managers and approvers".into(),
            ));
        }
    };
    Ok(c.store
        .staff_of(org, role)
        .await?
        .into_iter()
        .map(|s| StaffMember {
            login: s.login,
            role: s.role,
        })
        .collect())
}

/// A member of a grantor's staff as the staff list shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StaffMember {
    /// Login.
    pub login: String,
    /// The role asked for.
    pub role: MapRole,
}

/// The evaluated applications of a programme by score, best first, with the budget left if
/// each were funded as requested (programme managers and approvers).
pub async fn ranking(c: &MapCaller, programme: i64) -> GovResult<Vec<Ranked>> {
    rules::ranking(&c.store, &c.actor, programme).await
}

/// Refuse unless the caller is an approver of some grantor (checked before a body is read).
pub fn require_approver(c: &MapCaller) -> GovResult<()> {
    match &c.actor {
        Actor::Staff { organisation, .. } => {
            c.actor.require(MapRole::Approver, organisation).map(drop)
        }
        _ => Err(GovError::Forbidden(
            "decisions are taken by approvers".into(),
        )),
    }
}

/// Decide several applications of a programme, each on its own (an approver).
pub async fn decide_all(
    state: &AppState,
    c: &MapCaller,
    programme: i64,
    decisions: Vec<BulkDecision>,
) -> GovResult<Vec<BulkOutcome>> {
    let out = rules::decide_all(state, &c.store, &c.actor, programme, decisions).await?;
    if out.iter().any(|o| o.status == 200) {
        super::publication::schedule(state);
    }
    Ok(out)
}

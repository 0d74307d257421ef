//! `GET /map/applications/{id}`: one application as the service shows it to the caller, its
//! evidence, scores, money, documents, history and access log, the undertaking's de minimis
//! aid, and the forms of the actions the caller may take in its status (taken by
//! [`super::act`]). Staff may replay it as it was at a time (`?as_of=`: a datetime field,
//! or a history entry's link), read-only.

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::model::{AidRegime, Application, Status};
use dagr_admin_api::map::service::{self, MapCaller};
use dagr_admin_api::model::Time;
use serde::Deserialize;

use super::text::{done_texts, next_text, status_text};
use super::{Choice, MapText, Refusal, caller, eur, local_field, parse_local_time, when};
use crate::Portal;
use crate::session::SignedIn;
use crate::web::{PortalError, Shell, encode_component, fmt_time, render_status};

/// Invoice lines the report form offers at first (and more each time more are asked for),
/// and at most.
pub(super) const COST_LINES: usize = 5;
pub(super) const MAX_COST_LINES: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    done: String,
    /// Show the application as it was at this time (staff).
    #[serde(default)]
    as_of: String,
    /// How many invoice lines the report form offers.
    #[serde(default)]
    cost_lines: String,
}

/// The facts of the application, ready to show.
struct Facts {
    status: &'static str,
    status_text: &'static str,
    next: &'static str,
    title: String,
    programme_id: i64,
    programme: String,
    company: String,
    registration_number: String,
    legal_form: String,
    register_status: String,
    requested: String,
    requested_plain: String,
    granted: Option<String>,
    score: Option<String>,
    evaluators: Vec<String>,
    created: String,
    updated: String,
}

struct EvidenceRow {
    step: String,
    dataset: String,
    version: i64,
    at: String,
    records: String,
    passed: bool,
}

struct ScoreRow {
    evaluator: String,
    points: String,
    justification: String,
    at: String,
}

struct PaymentRow {
    id: i64,
    amount: String,
    status: String,
    approvals: String,
    can_approve: bool,
    can_pay: bool,
}

struct ReportRow {
    id: i64,
    kind: String,
    status: String,
    costs: String,
    can_approve: bool,
}

struct DocumentRow {
    number: String,
    date: String,
    direction: String,
    kind: String,
}

struct HistoryRow {
    at: String,
    from: Option<&'static str>,
    to: &'static str,
    action: String,
    by: String,
    reason: Option<String>,
    /// The replay of the application right after this entry (staff).
    as_of_href: Option<String>,
}

struct AccessRow {
    at: String,
    role: String,
    organisation: String,
    what: String,
}

struct CriterionRow {
    code: String,
    weight: String,
    min: String,
    max: String,
}

/// One invoice line of the report form, as typed.
struct CostLine {
    i: usize,
    supplier: String,
    invoice: String,
    amount: String,
}

/// The aid of the undertaking the applicant company belongs to, against each regime's
/// ceiling.
struct Aid {
    undertaking: String,
    /// The other companies of the undertaking.
    members: String,
    rows: Vec<AidRow>,
    /// The programme's grants are state aid.
    counts: bool,
}

struct AidRow {
    regime: String,
    legal_basis: String,
    ceiling: String,
    granted: String,
    remaining: String,
    /// The programme's own regime.
    this: bool,
    /// Less than the requested amount is left under it.
    short: bool,
}

/// Which action forms the page offers (the service decides whether each is allowed).
#[derive(Default)]
struct Forms {
    submit: bool,
    edit: bool,
    withdraw: bool,
    check: bool,
    assign: bool,
    contract: bool,
    manage: bool,
    score: bool,
    decide: bool,
    request_payment: bool,
    report: bool,
}

impl Forms {
    fn any(&self) -> bool {
        self.submit
            || self.edit
            || self.withdraw
            || self.check
            || self.assign
            || self.contract
            || self.manage
            || self.score
            || self.decide
            || self.request_payment
            || self.report
    }
}

/// How the page is asked for: as it is now or as it was, and how many invoice lines.
#[derive(Debug, Default)]
pub(super) struct View {
    /// The as-of time as typed (empty: now).
    pub(super) as_of: String,
    /// Invoice lines asked for.
    pub(super) cost_lines: usize,
}

#[derive(Template)]
#[template(path = "map/application.html")]
pub(super) struct AppPage {
    shell: Shell,
    t: &'static MapText,
    id: i64,
    /// The status the page answers with (a refused replay is not a 200).
    pub(super) status: StatusCode,
    /// The service's refusal to open it before the evaluator declares (the declare form).
    pub(super) declare_first: Option<String>,
    facts: Option<Facts>,
    /// Staff: the as-of form is offered.
    staff: bool,
    /// The time the application is shown at, when replayed.
    as_of: Option<String>,
    /// The as-of field's value.
    as_of_field: String,
    evidence: Vec<EvidenceRow>,
    scores: Vec<ScoreRow>,
    payments: Vec<PaymentRow>,
    reports: Vec<ReportRow>,
    documents: Vec<DocumentRow>,
    history: Vec<HistoryRow>,
    access: Option<Vec<AccessRow>>,
    aid: Option<Aid>,
    criteria: Vec<CriterionRow>,
    /// The grantor's evaluators to pick from (none: the login is typed).
    evaluators: Option<Vec<Choice>>,
    cost_lines: Vec<CostLine>,
    /// The report form may offer more invoice lines.
    more_cost_lines: bool,
    forms: Forms,
    has_payment_actions: bool,
    error: Option<Refusal>,
    /// The refused form's fields as typed (`action` names the form).
    kept: BTreeMap<String, String>,
}

impl AppPage {
    /// The typed value of `field` if the refused form was `action`'s.
    fn kept(&self, action: &str, field: &str) -> &str {
        if self.kept.get("action").map(String::as_str) == Some(action) {
            self.kept.get(field).map(String::as_str).unwrap_or("")
        } else {
            ""
        }
    }

    /// Whether the refusal names `field`.
    fn bad(&self, field: impl AsRef<str>) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| e.field == field.as_ref())
    }

    /// The typed value of `field` of `action`'s form, or `default` when that form was not
    /// the refused one.
    fn kept_or<'a>(&'a self, action: &str, field: &str, default: &'a str) -> &'a str {
        if self.kept.get("action").map(String::as_str) == Some(action) {
            self.kept(action, field)
        } else {
            default
        }
    }

    /// The application as the caller may see it now, or at `view.as_of`, with the forms.
    pub(super) async fn load(
        portal: &Portal,
        s: &SignedIn,
        id: i64,
        view: View,
        error: Option<(StatusCode, Refusal)>,
        kept: BTreeMap<String, String>,
    ) -> Result<AppPage, PortalError> {
        let t = MapText::get(s.lang());
        let (status, error) = match error {
            Some((st, e)) => (st, Some(e)),
            None => (StatusCode::OK, None),
        };
        let mut page = AppPage {
            shell: s.shell(format!("{}{id}", t.application)),
            t,
            id,
            status,
            declare_first: None,
            facts: None,
            staff: false,
            as_of: None,
            as_of_field: String::new(),
            evidence: Vec::new(),
            scores: Vec::new(),
            payments: Vec::new(),
            reports: Vec::new(),
            documents: Vec::new(),
            history: Vec::new(),
            access: None,
            aid: None,
            criteria: Vec::new(),
            evaluators: None,
            cost_lines: Vec::new(),
            more_cost_lines: false,
            forms: Forms::default(),
            has_payment_actions: false,
            error,
            kept,
        };
        let c = caller(portal, s).await.map_err(|e| s.fail(e))?;
        page.staff = !c.roles().is_empty();
        let current = match service::application(&c, id, None).await {
            Ok(app) => app,
            Err(GovError::Conflict(m)) if c.roles().contains(&MapRole::Evaluator) => {
                page.declare_first = Some(m);
                page.status = StatusCode::CONFLICT;
                return Ok(page);
            }
            Err(e) => return Err(s.fail(e)),
        };
        let app = match replay(&c, id, &view.as_of, t).await {
            Ok(None) => current,
            Ok(Some((at, app))) => {
                page.as_of = Some(fmt_time(at));
                page.as_of_field = local_field(at);
                app
            }
            Err(GovError::Store(inner)) => return Err(s.fail(GovError::Store(inner))),
            Err(e) => {
                let (st, refusal) = Refusal::of(&page.shell, &e);
                page.status = st;
                page.error = Some(refusal);
                page.as_of_field = view.as_of.trim().to_owned();
                current
            }
        };
        let live = page.as_of.is_none();
        let history = service::history(&c, id).await.map_err(|e| s.fail(e))?;
        page.access = service::access_log(&c, id).await.ok().map(|log| {
            log.into_iter()
                .map(|a| AccessRow {
                    at: when(&a.at),
                    role: a.role,
                    organisation: a.organisation.unwrap_or_default(),
                    what: a.what,
                })
                .collect()
        });
        let programme = service::programme(&c, app.programme).await.ok();
        let regime = programme
            .as_ref()
            .map(|p| p.aid_regime.as_str().to_owned())
            .unwrap_or_default();
        // The aid totals are today's: a replay leaves them out.
        if live {
            page.aid = service::aid(&c, &app.applicant.registration_number)
                .await
                .ok()
                .map(|a| Aid {
                    members: a
                        .members
                        .iter()
                        .filter(|m| **m != a.undertaking)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    rows: a
                        .regimes
                        .into_iter()
                        .map(|r| AidRow {
                            this: r.regime == regime,
                            short: r.remaining < app.requested_amount,
                            regime: r.regime,
                            legal_basis: r.legal_basis,
                            ceiling: eur(r.ceiling),
                            granted: eur(r.granted),
                            remaining: eur(r.remaining),
                        })
                        .collect(),
                    undertaking: a.undertaking,
                    counts: !regime.is_empty() && regime != AidRegime::NONE,
                });
        }
        if live {
            page.forms = forms(&c, &app);
        }
        if page.forms.score
            && let Some(p) = &programme
        {
            page.criteria = p
                .criteria
                .iter()
                .map(|k| CriterionRow {
                    code: k.code.clone(),
                    weight: k.weight.to_string(),
                    min: k.min.to_string(),
                    max: k.max.to_string(),
                })
                .collect();
        }
        if page.forms.assign {
            page.evaluators =
                evaluator_choices(&c, &app, page.kept("assign", "evaluator"), t).await;
        }
        if page.forms.report {
            page.cost_report_lines(view.cost_lines);
        }
        let staff = page.staff;
        page.history = history
            .into_iter()
            .map(|h| HistoryRow {
                as_of_href: staff
                    .then(|| format!("/map/applications/{id}?as_of={}", encode_component(&h.at))),
                at: when(&h.at),
                from: h.from.map(|f| status_text(t, f)),
                to: status_text(t, h.to),
                action: h.action,
                by: h.by,
                reason: h.reason.filter(|r| !r.is_empty()),
            })
            .collect();
        fill(&mut page, &c, app, programme.map(|p| p.title), live);
        Ok(page)
    }

    /// The invoice lines of the report form: as many as asked for (at least
    /// [`COST_LINES`]) or typed, the typed values kept.
    fn cost_report_lines(&mut self, asked: usize) {
        let typed = (0..MAX_COST_LINES)
            .rev()
            .find(|i| {
                ["supplier", "invoice", "amount"]
                    .iter()
                    .any(|f| !self.kept("report", &format!("cost_{f}_{i}")).is_empty())
            })
            .map_or(0, |i| i + 1);
        let n = asked.max(COST_LINES).max(typed).min(MAX_COST_LINES);
        self.cost_lines = (0..n)
            .map(|i| CostLine {
                i,
                supplier: self
                    .kept("report", &format!("cost_supplier_{i}"))
                    .to_owned(),
                invoice: self.kept("report", &format!("cost_invoice_{i}")).to_owned(),
                amount: self.kept("report", &format!("cost_amount_{i}")).to_owned(),
            })
            .collect();
        self.more_cost_lines = n < MAX_COST_LINES;
    }
}

/// The application as it was at the time typed, if one was: `None` for now; a time that
/// does not parse is refused naming the field.
async fn replay(
    c: &MapCaller,
    id: i64,
    raw: &str,
    t: &MapText,
) -> Result<Option<(Time, Application)>, GovError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let at = parse_local_time(raw).ok_or_else(|| GovError::Invalid {
        field: "as_of".into(),
        reason: format!("`{}` {}", raw.trim(), t.not_a_time),
    })?;
    Ok(Some((at, service::application(c, id, Some(at)).await?)))
}

/// The grantor's evaluators to choose from, `chosen` selected; `None` when the service
/// gives no list (the login is typed then).
async fn evaluator_choices(
    c: &MapCaller,
    app: &Application,
    chosen: &str,
    t: &MapText,
) -> Option<Vec<Choice>> {
    let staff = service::staff(c, MapRole::Evaluator).await.ok()?;
    Some(
        staff
            .into_iter()
            .map(|m| Choice {
                selected: m.login == chosen,
                label: if app.evaluators.contains(&m.login) {
                    format!("{} ({})", m.login, t.already_assigned)
                } else {
                    m.login.clone()
                },
                value: m.login,
            })
            .collect(),
    )
}

/// The forms a caller may plausibly use on `app` in its status.
fn forms(c: &MapCaller, app: &Application) -> Forms {
    use Status::*;
    let st = app.status;
    let has = |r: MapRole| c.roles().contains(&r);
    let me = c.login().unwrap_or("");
    let applicant = c.is_applicant();
    Forms {
        submit: applicant && matches!(st, Draft | Returned),
        edit: applicant && matches!(st, Draft | Returned),
        withdraw: applicant
            && matches!(
                st,
                Draft | Submitted | Returned | Complete | InEvaluation | Evaluated | Approved
            ),
        check: has(MapRole::ProgrammeManager) && st == Submitted,
        assign: has(MapRole::ProgrammeManager) && matches!(st, Complete | InEvaluation),
        contract: has(MapRole::ProgrammeManager) && st == Approved,
        manage: has(MapRole::ProgrammeManager) && st == Contracted,
        score: has(MapRole::Evaluator)
            && st == InEvaluation
            && app.evaluators.iter().any(|e| e == me)
            && !app.scores.iter().any(|s| s.evaluator == me),
        decide: has(MapRole::Approver) && st == Evaluated,
        request_payment: applicant && st == Contracted,
        report: applicant && st == Contracted,
    }
}

/// Put what the service answered into the page (`live`: as it is now, so its payments and
/// reports may be acted on).
fn fill(
    page: &mut AppPage,
    c: &MapCaller,
    app: Application,
    programme: Option<String>,
    live: bool,
) {
    let t = page.t;
    let contracted = live && app.status == Status::Contracted;
    let has = |r: MapRole| c.roles().contains(&r);
    page.facts = Some(Facts {
        status: app.status.as_str(),
        status_text: status_text(t, app.status),
        next: next_text(t, app.status),
        title: app.title,
        programme_id: app.programme,
        programme: programme.unwrap_or_else(|| app.programme.to_string()),
        company: app.applicant.name,
        registration_number: app.applicant.registration_number,
        legal_form: app.applicant.legal_form,
        register_status: app.applicant.status,
        requested: eur(app.requested_amount),
        requested_plain: format!("{:.2}", app.requested_amount),
        granted: app.granted_amount.map(eur),
        score: app.score.map(|v| format!("{v:.2}")),
        evaluators: app.evaluators,
        created: when(&app.created_at),
        updated: when(&app.updated_at),
    });
    page.evidence = app
        .evidence
        .into_iter()
        .map(|e| EvidenceRow {
            step: e.step,
            dataset: e.dataset,
            version: e.version,
            at: when(&e.read_at),
            records: e.access_record.join(", "),
            passed: e.passed,
        })
        .collect();
    page.scores = app
        .scores
        .into_iter()
        .map(|s| ScoreRow {
            evaluator: s.evaluator,
            points: s
                .points
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            justification: s.justification,
            at: when(&s.at),
        })
        .collect();
    page.payments = app
        .payments
        .into_iter()
        .map(|p| PaymentRow {
            id: p.id,
            amount: eur(p.amount),
            can_approve: contracted
                && (has(MapRole::ProgrammeManager) || has(MapRole::Accountant))
                && matches!(p.status.as_str(), "submitted" | "in_approval"),
            can_pay: contracted && has(MapRole::Accountant) && p.status == "approved",
            status: p.status,
            approvals: p.approvals.join(", "),
        })
        .collect();
    page.has_payment_actions = page.payments.iter().any(|p| p.can_approve || p.can_pay);
    page.reports = app
        .reports
        .into_iter()
        .map(|r| ReportRow {
            id: r.id,
            can_approve: contracted && has(MapRole::ProgrammeManager) && r.status == "submitted",
            kind: r.kind,
            status: r.status,
            costs: eur(r.eligible_costs),
        })
        .collect();
    page.documents = app
        .documents
        .into_iter()
        .map(|d| DocumentRow {
            number: d.number,
            date: d.date,
            direction: d.direction,
            kind: d.kind,
        })
        .collect();
}

/// The application's id from the path (anything else is not found), and the page's texts.
pub(super) fn parse_id(s: &SignedIn, raw: &str) -> Result<(i64, &'static MapText), PortalError> {
    let id = raw
        .parse::<i64>()
        .map_err(|_| s.fail(GovError::NotFound(format!("application `{raw}`"))))?;
    Ok((id, MapText::get(s.lang())))
}

/// `GET /map/applications/{id}`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PortalError> {
    let (id, t) = parse_id(&s, &raw)?;
    let view = View {
        as_of: q.as_of.chars().take(64).collect(),
        cost_lines: q.cost_lines.trim().parse().unwrap_or(0),
    };
    let mut page = AppPage::load(&portal, &s, id, view, None, BTreeMap::new()).await?;
    page.shell = page.shell.with_done(Some(&q.done), &done_texts(t));
    Ok(render_status(page.status, &page))
}

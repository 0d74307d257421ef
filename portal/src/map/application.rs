//! `GET /map/applications/{id}`: one application as the service shows it to the caller, its
//! evidence, scores, money, documents, history and access log, and the forms of the actions
//! the caller may take in its status; `POST /map/applications/{id}/act` takes one
//! ([`dagr_admin_api::map::service::submit`] or [`dagr_admin_api::map::service::act`]).

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::model::{Action, Application, Status};
use dagr_admin_api::map::service::{self, MapCaller};
use serde::Deserialize;

use super::text::{done_texts, next_text, status_text};
use super::{MapText, Refusal, caller, eur, parse_amount, when};
use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, Shell, render_status, see_other};

#[derive(Debug, Default, Deserialize)]
pub(super) struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// What an action form asks for: submitting, or an action of the service.
#[derive(Debug)]
enum Step {
    Submit,
    Act(Action),
}

/// The facts of the application, ready to show.
struct Facts {
    status: &'static str,
    status_text: &'static str,
    next: &'static str,
    title: String,
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

/// Which action forms the page offers (the service decides whether each is allowed).
#[derive(Default)]
struct Forms {
    submit: bool,
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

#[derive(Template)]
#[template(path = "map/application.html")]
struct AppPage {
    shell: Shell,
    t: &'static MapText,
    id: i64,
    /// The service's refusal to open it before the evaluator declares (the declare form).
    declare_first: Option<String>,
    facts: Option<Facts>,
    evidence: Vec<EvidenceRow>,
    scores: Vec<ScoreRow>,
    payments: Vec<PaymentRow>,
    reports: Vec<ReportRow>,
    documents: Vec<DocumentRow>,
    history: Vec<HistoryRow>,
    access: Option<Vec<AccessRow>>,
    criteria: Vec<CriterionRow>,
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

    async fn load(
        portal: &Portal,
        s: &SignedIn,
        id: i64,
        error: Option<Refusal>,
        kept: BTreeMap<String, String>,
    ) -> Result<AppPage, PortalError> {
        let t = MapText::get(s.lang());
        let mut page = AppPage {
            shell: s.shell(format!("{}{id}", t.application)),
            t,
            id,
            declare_first: None,
            facts: None,
            evidence: Vec::new(),
            scores: Vec::new(),
            payments: Vec::new(),
            reports: Vec::new(),
            documents: Vec::new(),
            history: Vec::new(),
            access: None,
            criteria: Vec::new(),
            forms: Forms::default(),
            has_payment_actions: false,
            error,
            kept,
        };
        let c = caller(portal, s).await.map_err(|e| s.fail(e))?;
        let app = match service::application(&c, id, None).await {
            Ok(app) => app,
            Err(GovError::Conflict(m)) if c.roles().contains(&MapRole::Evaluator) => {
                page.declare_first = Some(m);
                return Ok(page);
            }
            Err(e) => return Err(s.fail(e)),
        };
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
        page.forms = forms(&c, &app);
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
        page.history = history
            .into_iter()
            .map(|h| HistoryRow {
                at: when(&h.at),
                from: h.from.map(|f| status_text(t, f)),
                to: status_text(t, h.to),
                action: h.action,
                by: h.by,
                reason: h.reason.filter(|r| !r.is_empty()),
            })
            .collect();
        fill(&mut page, &c, app, programme.map(|p| p.title));
        Ok(page)
    }
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

/// Put what the service answered into the page.
fn fill(page: &mut AppPage, c: &MapCaller, app: Application, programme: Option<String>) {
    let t = page.t;
    let contracted = app.status == Status::Contracted;
    let has = |r: MapRole| c.roles().contains(&r);
    page.facts = Some(Facts {
        status: app.status.as_str(),
        status_text: status_text(t, app.status),
        next: next_text(t, app.status),
        title: app.title,
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
fn parse_id(s: &SignedIn, raw: &str) -> Result<(i64, &'static MapText), PortalError> {
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
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let (id, t) = parse_id(&s, &raw)?;
    let mut page = AppPage::load(&portal, &s, id, None, BTreeMap::new()).await?;
    page.shell = page.shell.with_done(Some(&q.done), &done_texts(t));
    let status = if page.declare_first.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok(render_status(status, &page))
}

/// `GET /map/applications/{id}/act` (a form's action opened as a page): the application.
pub(super) async fn back(Path(raw): Path<String>) -> Response {
    match raw.parse::<i64>() {
        Ok(id) => see_other(&format!("/map/applications/{id}")),
        Err(_) => see_other("/map"),
    }
}

/// `POST /map/applications/{id}/act`: one action; on success back to the application with
/// a confirmation, else the page with the service's refusal and nothing changed.
pub(super) async fn act(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let (id, t) = parse_id(&s, &raw)?;
    let mut fields = BTreeMap::new();
    for (k, v) in form {
        if k != "csrf" {
            fields.entry(k).or_insert(v);
        }
    }
    let step = step_of(t, &fields);
    let result = match step {
        Ok((name, step)) => match caller(&portal, &s).await {
            Ok(c) => {
                let conflict = matches!(step, Step::Act(Action::Declare { conflict: true }));
                let done = match step {
                    Step::Submit => service::submit(&portal.app, &c, id).await,
                    Step::Act(a) => service::act(&portal.app, &c, id, a).await,
                };
                done.map(|_| if conflict { "conflict" } else { name })
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        // Declaring a conflict withdraws the evaluator: the application is no longer theirs.
        Ok("conflict") => Ok(see_other("/map?done=conflict")),
        Ok(done) => Ok(see_other(&format!("/map/applications/{id}?done={done}"))),
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let page = AppPage::load(&portal, &s, id, Some(refusal), fields).await?;
            Ok(render_status(status, &page))
        }
    }
}

/// The service's step from an action form's fields (its `action` and that action's
/// fields), with the name of its confirmation; a field that is no number is refused.
fn step_of(t: &MapText, f: &BTreeMap<String, String>) -> Result<(&'static str, Step), GovError> {
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let invalid = |field: &str, why: &str| GovError::Invalid {
        field: field.to_owned(),
        reason: format!("`{}` {why}", get(field)),
    };
    let amount =
        |field: &str| parse_amount(&get(field)).ok_or_else(|| invalid(field, t.not_an_amount));
    let id = |field: &str| {
        get(field)
            .parse::<i64>()
            .map_err(|_| invalid(field, t.not_an_id))
    };
    let action = get("action");
    Ok(match action.as_str() {
        "submit" => ("submit", Step::Submit),
        "withdraw" => ("withdraw", Step::Act(Action::Withdraw)),
        "return" => (
            "return",
            Step::Act(Action::Return {
                reason: get("reason"),
            }),
        ),
        "accept" => ("accept", Step::Act(Action::Accept)),
        "assign" => (
            "assign",
            Step::Act(Action::Assign {
                evaluator: get("evaluator"),
            }),
        ),
        "declare" => (
            "declare",
            Step::Act(Action::Declare {
                conflict: get("conflict") == "true",
            }),
        ),
        "score" => {
            let mut points = BTreeMap::new();
            for (k, v) in f {
                if let Some(code) = k.strip_prefix("point_") {
                    let p = parse_amount(v).ok_or_else(|| invalid(k, t.not_an_amount))?;
                    points.insert(code.to_owned(), p);
                }
            }
            (
                "score",
                Step::Act(Action::Score {
                    points,
                    justification: get("justification"),
                }),
            )
        }
        "approve" => (
            "approve",
            Step::Act(Action::Approve {
                amount: amount("amount")?,
                reason: get("reason"),
            }),
        ),
        "reject" => (
            "reject",
            Step::Act(Action::Reject {
                reason: get("reason"),
            }),
        ),
        "contract" => ("contract", Step::Act(Action::Contract)),
        "request_payment" => (
            "request_payment",
            Step::Act(Action::RequestPayment {
                amount: amount("amount")?,
            }),
        ),
        "approve_payment" => (
            "approve_payment",
            Step::Act(Action::ApprovePayment {
                payment: id("payment")?,
            }),
        ),
        "pay" => (
            "pay",
            Step::Act(Action::Pay {
                payment: id("payment")?,
            }),
        ),
        "report" => (
            "report",
            Step::Act(Action::Report {
                kind: get("kind"),
                eligible_costs: amount("eligible_costs")?,
                text: get("text"),
                costs: Vec::new(),
            }),
        ),
        "approve_report" => (
            "approve_report",
            Step::Act(Action::ApproveReport {
                report: id("report")?,
            }),
        ),
        "close" => ("close", Step::Act(Action::Close)),
        "terminate" => (
            "terminate",
            Step::Act(Action::Terminate {
                reason: get("reason"),
                recovery: amount("recovery")?,
            }),
        ),
        _ => return Err(invalid("action", t.unknown_action)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn forms_map_to_the_services_actions() {
        let t = MapText::get(Lang::En);
        let step = |p: &[(&str, &str)]| step_of(t, &fields(p));
        assert!(matches!(
            step(&[("action", "submit")]),
            Ok(("submit", Step::Submit))
        ));
        match step(&[
            ("action", "approve"),
            ("amount", "1 000,50"),
            ("reason", " ok "),
        ]) {
            Ok(("approve", Step::Act(Action::Approve { amount, reason }))) => {
                assert_eq!((amount, reason.as_str()), (1000.5, "ok"));
            }
            other => panic!("{other:?}"),
        }
        match step(&[
            ("action", "score"),
            ("point_quality", "8"),
            ("point_value", "4,5"),
            ("justification", "labi"),
        ]) {
            Ok(("score", Step::Act(Action::Score { points, .. }))) => {
                assert_eq!(points["quality"], 8.0);
                assert_eq!(points["value"], 4.5);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            step(&[("action", "declare"), ("conflict", "true")]),
            Ok((_, Step::Act(Action::Declare { conflict: true })))
        ));
        assert!(matches!(
            step(&[("action", "declare"), ("conflict", "false")]),
            Ok((_, Step::Act(Action::Declare { conflict: false })))
        ));
        for (p, field) in [
            (&[("action", "approve"), ("amount", "x")][..], "amount"),
            (&[("action", "pay"), ("payment", "")][..], "payment"),
            (&[("action", "score"), ("point_q", "many")][..], "point_q"),
            (&[("action", "fly")][..], "action"),
        ] {
            match step(p) {
                Err(GovError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }
}

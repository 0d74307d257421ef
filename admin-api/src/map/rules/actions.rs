//! The actions on an application after it is filed (`POST /applications/{id}/transitions`):
//! who may take each, in which state, and what each checks and writes.

use super::*;

/// Carry out an action.
pub(crate) async fn act(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    id: i64,
    action: Action,
) -> GovResult<Application> {
    let app = app_row(store, actor, id).await?;
    let p = programme_row(store, app.programme).await?;
    let org = p.organisation.clone();
    use Status::*;
    match action {
        Action::Return { reason } => {
            actor.require(MapRole::ProgrammeManager, &org)?;
            let reason = text("reason", &reason)?;
            let mut t = store.begin(id, &[Submitted], Returned).await?;
            t.document("outgoing", "request to complete").await?;
            let out = t
                .finish(
                    "return",
                    &actor.describe(Some(MapRole::ProgrammeManager)),
                    Some(&reason),
                )
                .await?;
            notify_applicant(
                store,
                &app,
                &format!("Application {id} was returned: {reason}"),
            )
            .await;
            Ok(out)
        }
        Action::Accept => {
            actor.require(MapRole::ProgrammeManager, &org)?;
            let t = store.begin(id, &[Submitted], Complete).await?;
            t.finish(
                "accept",
                &actor.describe(Some(MapRole::ProgrammeManager)),
                None,
            )
            .await
        }
        Action::Assign { evaluator } => {
            let pm = actor.require(MapRole::ProgrammeManager, &org)?.to_owned();
            let staff = store.staff_roles(&evaluator).await?;
            let Some(ev) = staff
                .iter()
                .find(|s| s.role == MapRole::Evaluator && s.organisation == org)
            else {
                return Err(invalid(
                    "evaluator",
                    format!("{evaluator} is not an evaluator of {org}"),
                ));
            };
            if !matches!(app.status, Complete | InEvaluation) {
                return Err(GovError::Conflict(format!(
                    "application {id} is {}; evaluators are assigned to a complete application",
                    app.status.as_str()
                )));
            }
            let grantor = grantor_of(store, &p).await?;
            let regs = Registers::new(state, &grantor, Some(&pm));
            let read =
                conflict_check(&regs, &app, &evaluator, &ev.personal_code, "assignment").await?;
            let mut t = store
                .begin(id, &[Complete, InEvaluation], InEvaluation)
                .await?;
            let n = t.assign(&evaluator, &pm).await?;
            if n > p.evaluators_per_application {
                return Err(GovError::Conflict(format!(
                    "application {id} already has its {} evaluators",
                    p.evaluators_per_application
                )));
            }
            t.set_scoresheet(p.scoresheet_version).await?;
            t.evidence("conflict", &read, true).await?;
            let out = t
                .finish(
                    "assign",
                    &actor.describe(Some(MapRole::ProgrammeManager)),
                    Some(&format!("evaluator {evaluator}")),
                )
                .await?;
            let _ = store
                .notify(&format!("user:{evaluator}"), Some(id), &format!("You were assigned application {id}; declare any conflict of interest before opening it"))
                .await;
            Ok(out)
        }
        Action::Declare { conflict } => {
            let ev = actor.require(MapRole::Evaluator, &org)?.to_owned();
            let mut t = store.begin(id, &[InEvaluation], InEvaluation).await?;
            match t.assignment(&ev).await? {
                None => {
                    return Err(GovError::Forbidden(format!(
                        "{ev} is not assigned to application {id}"
                    )));
                }
                Some(true) => {
                    return Err(GovError::Conflict(format!(
                        "{ev} already declared for application {id}"
                    )));
                }
                Some(false) => {}
            }
            if conflict {
                t.unassign(&ev).await?;
            } else {
                t.declare(&ev).await?;
            }
            let what = if conflict {
                "declared a conflict of interest; withdrawn"
            } else {
                "declared no conflict of interest"
            };
            let out = t
                .finish(
                    "declare",
                    &actor.describe(Some(MapRole::Evaluator)),
                    Some(what),
                )
                .await?;
            if conflict {
                notify_staff_of(
                    store,
                    &p,
                    MapRole::ProgrammeManager,
                    id,
                    &format!(
                        "An evaluator of application {id} declared a conflict; assign another"
                    ),
                )
                .await;
            }
            Ok(out)
        }
        Action::Score {
            points,
            justification,
        } => {
            let ev = actor.require(MapRole::Evaluator, &org)?.to_owned();
            let justification = text("justification", &justification)?;
            let version = app.scoresheet_version.unwrap_or(p.scoresheet_version);
            let criteria = store.scoresheet(p.id, version).await?;
            check_points(&criteria, &points)?;
            let Actor::Staff { personal_code, .. } = actor else {
                return Err(GovError::Forbidden("scores are given by evaluators".into()));
            };
            let grantor = grantor_of(store, &p).await?;
            let regs = Registers::new(state, &grantor, Some(&ev));
            let read = conflict_check(&regs, &app, &ev, personal_code, "scoring").await?;
            let mut t = store.begin(id, &[InEvaluation], InEvaluation).await?;
            match t.assignment(&ev).await? {
                None => {
                    return Err(GovError::Forbidden(format!(
                        "{ev} is not assigned to application {id}"
                    )));
                }
                Some(false) => {
                    return Err(GovError::Conflict(format!(
                        "{ev} has not declared on conflicts of interest for application {id}; declare first"
                    )));
                }
                Some(true) => {}
            }
            let all = t.score(&ev, &points, &justification).await?;
            t.evidence("conflict", &read, true).await?;
            if all.len() as i64 >= p.evaluators_per_application {
                t.set_score(final_score(&criteria, &all)).await?;
                t.set_status(Evaluated).await?;
            }
            t.finish("score", &actor.describe(Some(MapRole::Evaluator)), None)
                .await
        }
        Action::Approve { amount, reason } => {
            actor.require(MapRole::Approver, &org)?;
            let reason = text("reason", &reason)?;
            let amount = cents("amount", amount)?;
            if amount == 0 || amount > app.requested || amount > p.max_grant {
                return Err(invalid(
                    "amount",
                    format!(
                        "must be more than 0 and at most the requested EUR {:.2} and the maximum grant EUR {:.2}",
                        eur(app.requested),
                        eur(p.max_grant)
                    ),
                ));
            }
            if app.status != Evaluated {
                return Err(GovError::Conflict(format!(
                    "application {id} is {}; a decision needs it evaluated",
                    app.status.as_str()
                )));
            }
            let grantor = grantor_of(store, &p).await?;
            let regs = Registers::new(state, &grantor, actor.login());
            let (read, failed) = eligibility(&regs, &p, &app, "decision").await?;
            if !failed.is_empty() {
                return Err(GovError::Conflict(format!(
                    "the company no longer meets {}",
                    failed_conditions(&p, &failed)
                )));
            }
            let mut t = store.begin(id, &[Evaluated], Approved).await?;
            t.commit_budget(&p, amount).await?;
            if !p.aid_regime.is_none() {
                t.grant_aid(&app.registration_number, p.aid_regime.as_str(), amount)
                    .await?;
            }
            t.set_granted(amount).await?;
            t.evidence("decision", &read, true).await?;
            t.document("outgoing", "decision").await?;
            let out = t
                .finish(
                    "approve",
                    &actor.describe(Some(MapRole::Approver)),
                    Some(&reason),
                )
                .await?;
            notify_applicant(
                store,
                &app,
                &format!("Application {id} was approved: EUR {:.2}", eur(amount)),
            )
            .await;
            Ok(out)
        }
        Action::Reject { reason } => {
            actor.require(MapRole::Approver, &org)?;
            let reason = text("reason", &reason)?;
            let mut t = store.begin(id, &[Evaluated], Rejected).await?;
            t.document("outgoing", "decision").await?;
            let out = t
                .finish(
                    "reject",
                    &actor.describe(Some(MapRole::Approver)),
                    Some(&reason),
                )
                .await?;
            notify_applicant(
                store,
                &app,
                &format!("Application {id} was rejected: {reason}"),
            )
            .await;
            Ok(out)
        }
        Action::Contract => {
            actor.require(MapRole::ProgrammeManager, &org)?;
            let mut t = store.begin(id, &[Approved], Contracted).await?;
            t.document("outgoing", "contract").await?;
            t.finish(
                "contract",
                &actor.describe(Some(MapRole::ProgrammeManager)),
                None,
            )
            .await
        }
        Action::RequestPayment { amount } => {
            actor.require_applicant(&app)?;
            let amount = cents("amount", amount)?;
            if amount == 0 {
                return Err(invalid("amount", "must be more than 0"));
            }
            let mut t = store.begin(id, &[Contracted], Contracted).await?;
            let pid = t
                .request_payment(amount, app.granted.unwrap_or(0), &actor.describe(None))
                .await?;
            t.document("incoming", "payment request").await?;
            let out = t
                .finish(
                    "request_payment",
                    &actor.describe(None),
                    Some(&format!("payment {pid}")),
                )
                .await?;
            notify_staff_of(
                store,
                &p,
                MapRole::ProgrammeManager,
                id,
                &format!("Payment {pid} of application {id} waits for approval"),
            )
            .await;
            Ok(out)
        }
        Action::ApprovePayment { payment } => {
            let mut t = store.begin(id, &[Contracted], Contracted).await?;
            let (amount, status, level) = t.payment(payment).await?;
            if status != "submitted" && status != "in_approval" {
                return Err(GovError::Conflict(format!("payment {payment} is {status}")));
            }
            let levels: Vec<&ApprovalLevel> = p
                .approval_levels
                .iter()
                .filter(|l| cents("from_amount", l.from_amount).unwrap_or(0) <= amount)
                .collect();
            let next = level as usize;
            let Some(l) = levels.get(next) else {
                return Err(GovError::Conflict(format!(
                    "payment {payment} passed every approval level"
                )));
            };
            let login = actor.require(l.role, &org)?.to_owned();
            t.approve_payment(payment, level + 1, &login, next + 1 == levels.len())
                .await?;
            t.finish(
                "approve_payment",
                &actor.describe(Some(l.role)),
                Some(&format!("payment {payment}, level {}", level + 1)),
            )
            .await
        }
        Action::Pay { payment } => {
            let login = actor.require(MapRole::Accountant, &org)?.to_owned();
            let grantor = grantor_of(store, &p).await?;
            let regs = Registers::new(state, &grantor, Some(&login));
            let (read, failed) = eligibility(&regs, &p, &app, "payment").await?;
            if !failed.is_empty() {
                return Err(GovError::Conflict(format!(
                    "the company no longer meets {}; the payment is held",
                    failed_conditions(&p, &failed)
                )));
            }
            let mut t = store.begin(id, &[Contracted], Contracted).await?;
            let (amount, _, _) = t.payment(payment).await?;
            t.pay(payment, amount, p.id).await?;
            t.evidence("payment", &read, true).await?;
            t.document("outgoing", "payment order").await?;
            let out = t
                .finish(
                    "pay",
                    &actor.describe(Some(MapRole::Accountant)),
                    Some(&format!("payment {payment}")),
                )
                .await?;
            notify_applicant(
                store,
                &app,
                &format!("Payment {payment} of EUR {:.2} was paid", eur(amount)),
            )
            .await;
            Ok(out)
        }
        Action::Report {
            kind,
            eligible_costs,
            text: body,
            costs,
        } => {
            actor.require_applicant(&app)?;
            if kind != "interim" && kind != "final" {
                return Err(invalid("kind", "is `interim` or `final`"));
            }
            let eligible = cents("eligible_costs", eligible_costs)?;
            let body = text("text", &body)?;
            if costs.len() > MAX_ITEMS {
                return Err(invalid(
                    "costs",
                    format!("at most {MAX_ITEMS} invoices per report"),
                ));
            }
            let mut claimed = Vec::with_capacity(costs.len());
            for c in &costs {
                let supplier = text("costs", &c.supplier)?;
                let invoice = text("costs", &c.invoice)?;
                if supplier.len() > 64 || invoice.len() > 64 {
                    return Err(invalid(
                        "costs",
                        "supplier and invoice are at most 64 characters",
                    ));
                }
                claimed.push((supplier, invoice, cents("costs", c.amount)?));
            }
            let mut t = store.begin(id, &[Contracted], Contracted).await?;
            let rid = t.report(&kind, eligible, &body, &claimed).await?;
            t.document("incoming", &format!("{kind} report")).await?;
            t.finish(
                "report",
                &actor.describe(None),
                Some(&format!("report {rid} ({kind})")),
            )
            .await
        }
        Action::ApproveReport { report } => {
            actor.require(MapRole::ProgrammeManager, &org)?;
            let mut t = store.begin(id, &[Contracted], Contracted).await?;
            let kind = t.approve_report(report).await?;
            t.finish(
                "approve_report",
                &actor.describe(Some(MapRole::ProgrammeManager)),
                Some(&format!("report {report} ({kind})")),
            )
            .await
        }
        Action::Close => {
            let login = actor.require(MapRole::ProgrammeManager, &org)?.to_owned();
            if app.status != Contracted {
                return Err(GovError::Conflict(format!(
                    "application {id} is {}; only a contract is closed",
                    app.status.as_str()
                )));
            }
            let grantor = grantor_of(store, &p).await?;
            let regs = Registers::new(state, &grantor, Some(&login));
            let (read, failed) = eligibility(&regs, &p, &app, "closure").await?;
            if !failed.is_empty() {
                return Err(GovError::Conflict(format!(
                    "the company no longer meets {}; terminate instead",
                    failed_conditions(&p, &failed)
                )));
            }
            let mut t = store.begin(id, &[Contracted], Closed).await?;
            if !t.final_report_approved().await? {
                return Err(GovError::Conflict(format!(
                    "application {id} has no approved final report"
                )));
            }
            let paid = t.paid().await?;
            let granted = app.granted.unwrap_or(0);
            t.release_budget(p.id, (granted - paid).max(0)).await?;
            t.settle_aid(paid).await?;
            t.cancel_open_payments().await?;
            t.evidence("closure", &read, true).await?;
            t.document("outgoing", "closure").await?;
            t.finish(
                "close",
                &actor.describe(Some(MapRole::ProgrammeManager)),
                None,
            )
            .await
        }
        Action::Terminate { reason, recovery } => {
            actor.require(MapRole::ProgrammeManager, &org)?;
            let reason = text("reason", &reason)?;
            let recovery = cents("recovery", recovery)?;
            let mut t = store.begin(id, &[Contracted], Terminated).await?;
            let paid = t.paid().await?;
            if recovery > paid {
                return Err(invalid(
                    "recovery",
                    format!("exceeds what was paid (EUR {:.2})", eur(paid)),
                ));
            }
            let granted = app.granted.unwrap_or(0);
            t.release_budget(p.id, (granted - paid).max(0)).await?;
            t.recover(p.id, recovery).await?;
            t.settle_aid(paid - recovery).await?;
            t.cancel_open_payments().await?;
            t.document("outgoing", "termination").await?;
            let out = t
                .finish(
                    "terminate",
                    &actor.describe(Some(MapRole::ProgrammeManager)),
                    Some(&reason),
                )
                .await?;
            notify_applicant(
                store,
                &app,
                &format!("The contract of application {id} was terminated: {reason}"),
            )
            .await;
            Ok(out)
        }
        Action::Withdraw => {
            actor.require_applicant(&app)?;
            let mut t = store
                .begin(
                    id,
                    &[
                        Draft,
                        Submitted,
                        Returned,
                        Complete,
                        InEvaluation,
                        Evaluated,
                        Approved,
                    ],
                    Withdrawn,
                )
                .await?;
            if t.from() == Approved {
                t.release_budget(p.id, app.granted.unwrap_or(0)).await?;
                t.settle_aid(0).await?;
            }
            t.finish("withdraw", &actor.describe(None), None).await
        }
    }
}

/// Detect a conflict of interest: the evaluator's rows in `officials` for the applicant
/// company; 409 naming the relation when there is one.
async fn conflict_check(
    regs: &Registers<'_>,
    app: &crate::map::store::AppRow,
    evaluator: &str,
    code: &str,
    step: &str,
) -> GovResult<registers::Read> {
    let read = regs
        .relations(
            &app.registration_number,
            code,
            format!(
                "MAP application {}: conflict-of-interest check of evaluator {evaluator} at {step}",
                app.id
            ),
        )
        .await?;
    if let Some(r) = read.rows.first() {
        let role = r
            .get("role")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("official");
        return Err(GovError::Conflict(format!(
            "conflict of interest: evaluator {evaluator} is {role} of {} (enterprise register, officials version {})",
            app.registration_number, read.version
        )));
    }
    Ok(read)
}

fn check_points(criteria: &[Criterion], points: &BTreeMap<String, f64>) -> GovResult<()> {
    for c in criteria {
        let Some(v) = points.get(&c.code) else {
            return Err(invalid("points", format!("no points for `{}`", c.code)));
        };
        if !(v.is_finite() && *v >= c.min && *v <= c.max) {
            return Err(invalid(
                "points",
                format!("`{}` takes {} to {}", c.code, c.min, c.max),
            ));
        }
    }
    if let Some(extra) = points
        .keys()
        .find(|k| !criteria.iter().any(|c| &c.code == *k))
    {
        return Err(invalid(
            "points",
            format!("`{extra}` is not a criterion of this scoresheet"),
        ));
    }
    Ok(())
}

/// Σ weight × mean points / Σ weights.
pub(crate) fn final_score(criteria: &[Criterion], all: &[BTreeMap<String, f64>]) -> f64 {
    let n = all.len().max(1) as f64;
    let weights: f64 = criteria.iter().map(|c| c.weight).sum();
    let total: f64 = criteria
        .iter()
        .map(|c| {
            let mean = all.iter().filter_map(|p| p.get(&c.code)).sum::<f64>() / n;
            c.weight * mean
        })
        .sum();
    let s = if weights > 0.0 { total / weights } else { 0.0 };
    (s * 1000.0).round() / 1000.0
}

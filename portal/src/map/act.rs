//! `POST /map/applications/{id}/act`: one action form of the application page, taken by
//! the service ([`service::submit`], [`service::edit`] or [`service::act`]); on success back
//! to the application with a confirmation, else the page with the service's refusal, the
//! form as typed and nothing changed.

use std::collections::BTreeMap;

use dagr_admin_api::axum::extract::{Path, State};
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::model::{Action, Cost};
use dagr_admin_api::map::service;

use super::application::{AppPage, COST_LINES, MAX_COST_LINES, View, parse_id};
use super::{MapText, Refusal, caller, fields_of, parse_amount};
use crate::Portal;
use crate::session::Posted;
use crate::web::{PortalError, render_status, see_other};

/// What an action form asks for: submitting, editing the draft, or an action of the
/// service.
#[derive(Debug)]
enum Step {
    Submit,
    Edit {
        title: String,
        requested_amount: f64,
    },
    Act(Action),
}

/// `GET /map/applications/{id}/act` (a form's action opened as a page): the application.
pub(super) async fn back(Path(raw): Path<String>) -> Response {
    match raw.parse::<i64>() {
        Ok(id) => see_other(&format!("/map/applications/{id}")),
        Err(_) => see_other("/map"),
    }
}

/// `POST /map/applications/{id}/act`.
pub(super) async fn act(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let (id, t) = parse_id(&s, &raw)?;
    let (fields, too_long) = fields_of(t, form);
    if fields.contains_key("more") && too_long.is_none() {
        // "More invoice lines": the report form again, as typed, with more lines.
        let shown: usize = fields
            .get("cost_lines")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(COST_LINES);
        let view = View {
            as_of: String::new(),
            cost_lines: shown.min(MAX_COST_LINES) + COST_LINES,
        };
        let page = AppPage::load(&portal, &s, id, view, None, fields).await?;
        return Ok(render_status(page.status, &page));
    }
    let step = match too_long {
        Some(e) => Err(e),
        None => step_of(t, &fields),
    };
    let result = match step {
        Ok((name, step)) => match caller(&portal, &s).await {
            Ok(c) => {
                let conflict = matches!(step, Step::Act(Action::Declare { conflict: true }));
                let done = match step {
                    Step::Submit => service::submit(&portal.app, &c, id).await,
                    Step::Edit {
                        title,
                        requested_amount,
                    } => service::edit(&c, id, Some(title), Some(requested_amount)).await,
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
            let refusal = Refusal::of(&s.shell(""), &e);
            let page =
                AppPage::load(&portal, &s, id, View::default(), Some(refusal), fields).await?;
            Ok(render_status(page.status, &page))
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
        "edit" => (
            "edit",
            Step::Edit {
                title: get("title"),
                requested_amount: amount("requested_amount")?,
            },
        ),
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
                costs: costs(t, f)?,
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

/// The invoices of the report form: lines `cost_supplier_N`, `cost_invoice_N`,
/// `cost_amount_N`; an empty line is skipped, a line with a field missing is refused naming
/// it.
fn costs(t: &MapText, f: &BTreeMap<String, String>) -> Result<Vec<Cost>, GovError> {
    let get = |k: &str| f.get(k).map(|v| v.trim()).unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..MAX_COST_LINES {
        let names = [
            format!("cost_supplier_{i}"),
            format!("cost_invoice_{i}"),
            format!("cost_amount_{i}"),
        ];
        let [supplier, invoice, amount] = [&names[0], &names[1], &names[2]].map(|n| get(n));
        if supplier.is_empty() && invoice.is_empty() && amount.is_empty() {
            continue;
        }
        let missing = |field: &str| GovError::Invalid {
            field: field.to_owned(),
            reason: format!("{} {}", t.invoice_line, i + 1),
        };
        if supplier.is_empty() {
            return Err(missing(&names[0]));
        }
        if invoice.is_empty() {
            return Err(missing(&names[1]));
        }
        let amount = parse_amount(amount).ok_or_else(|| GovError::Invalid {
            field: names[2].clone(),
            reason: format!("`{amount}` {}", t.not_an_amount),
        })?;
        out.push(Cost {
            supplier: supplier.to_owned(),
            invoice: invoice.to_owned(),
            amount,
        });
    }
    Ok(out)
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
        match step(&[
            ("action", "edit"),
            ("title", " Jauns "),
            ("requested_amount", "20 000"),
        ]) {
            Ok((
                "edit",
                Step::Edit {
                    title,
                    requested_amount,
                },
            )) => assert_eq!((title.as_str(), requested_amount), ("Jauns", 20000.0)),
            other => panic!("{other:?}"),
        }
        for (p, field) in [
            (&[("action", "approve"), ("amount", "x")][..], "amount"),
            (&[("action", "pay"), ("payment", "")][..], "payment"),
            (&[("action", "score"), ("point_q", "many")][..], "point_q"),
            (
                &[("action", "edit"), ("requested_amount", "")][..],
                "requested_amount",
            ),
            (&[("action", "fly")][..], "action"),
        ] {
            match step(p) {
                Err(GovError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_report_form_reads_its_invoice_lines() {
        let t = MapText::get(Lang::En);
        let base = [
            ("action", "report"),
            ("kind", "interim"),
            ("eligible_costs", "1000"),
            ("text", "Darīts"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            step_of(t, &fields(&all))
        };
        match with(&[
            ("cost_supplier_0", "40003000001"),
            ("cost_invoice_0", "A-1"),
            ("cost_amount_0", "600"),
            ("cost_supplier_1", ""),
            ("cost_invoice_1", " "),
            ("cost_amount_1", ""),
            ("cost_supplier_3", "40003000002"),
            ("cost_invoice_3", "B-7"),
            ("cost_amount_3", "400,50"),
        ]) {
            Ok(("report", Step::Act(Action::Report { costs, .. }))) => {
                let got: Vec<(&str, &str, f64)> = costs
                    .iter()
                    .map(|c| (c.supplier.as_str(), c.invoice.as_str(), c.amount))
                    .collect();
                assert_eq!(
                    got,
                    [("40003000001", "A-1", 600.0), ("40003000002", "B-7", 400.5)]
                );
            }
            other => panic!("{other:?}"),
        }
        for (extra, field) in [
            (&[("cost_invoice_2", "X")][..], "cost_supplier_2"),
            (&[("cost_supplier_0", "4")][..], "cost_invoice_0"),
            (
                &[
                    ("cost_supplier_0", "4"),
                    ("cost_invoice_0", "X"),
                    ("cost_amount_0", "lots"),
                ][..],
                "cost_amount_0",
            ),
        ] {
            match with(extra) {
                Err(GovError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        assert!(matches!(
            with(&[]),
            Ok((_, Step::Act(Action::Report { costs, .. }))) if costs.is_empty()
        ));
    }
}

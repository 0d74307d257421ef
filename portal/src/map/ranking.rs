//! `GET /map/programmes/{id}/ranking`: a programme's evaluated applications by score, best
//! first, with the budget left if each and every one above it were funded as requested
//! ([`service::ranking`], programme managers and approvers). Approvers decide several at
//! once (`POST` to the same path, [`service::decide_all`]): each decision is taken on its
//! own, and the page shows what became of each (decided, or refused and why).

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::Status;
use dagr_admin_api::map::model::{BulkDecision, BulkOutcome};
use dagr_admin_api::map::service;

use super::programme::programme_id;
use super::text::status_text;
use super::{MapText, Refusal, caller, eur, fields_of, parse_amount};
use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, Shell, render_status};

/// Most decisions the service takes in one call.
const MAX_DECISIONS: usize = 200;

/// A place in the ranking.
struct RankRow {
    rank: usize,
    id: i64,
    title: String,
    company: String,
    registration_number: String,
    requested: String,
    requested_plain: String,
    score: String,
    remaining: String,
    /// Funding it as requested (with every one above) passes the budget.
    below_line: bool,
}

/// What became of one decision.
struct OutcomeRow {
    application: i64,
    decided: bool,
    /// The status after, in words (when decided).
    status: &'static str,
    status_class: &'static str,
    /// The status the decision alone would have had (200, 403, 404, 409, 422).
    code: u16,
    detail: String,
}

#[derive(Template)]
#[template(path = "map/ranking.html")]
struct RankingPage {
    shell: Shell,
    t: &'static MapText,
    id: i64,
    programme: String,
    remaining: String,
    rows: Vec<RankRow>,
    /// Approvers: the decision form.
    approver: bool,
    outcomes: Vec<OutcomeRow>,
    decided: usize,
    error: Option<Refusal>,
    kept: BTreeMap<String, String>,
}

impl RankingPage {
    fn kept(&self, field: impl AsRef<str>) -> &str {
        self.kept
            .get(field.as_ref())
            .map(String::as_str)
            .unwrap_or("")
    }

    fn kept_or<'a>(&'a self, field: impl AsRef<str>, default: &'a str) -> &'a str {
        self.kept
            .get(field.as_ref())
            .map_or(default, String::as_str)
    }
}

async fn load(
    portal: &Portal,
    s: &SignedIn,
    id: i64,
    error: Option<Refusal>,
    kept: BTreeMap<String, String>,
) -> Result<RankingPage, PortalError> {
    let t = MapText::get(s.lang());
    let c = caller(portal, s).await.map_err(|e| s.fail(e))?;
    let p = service::programme(&c, id).await.map_err(|e| s.fail(e))?;
    let ranked = service::ranking(&c, id).await.map_err(|e| s.fail(e))?;
    Ok(RankingPage {
        shell: s.shell(format!("{}: {}", t.ranking_title, p.title)),
        t,
        id,
        programme: p.title,
        remaining: eur(p.remaining),
        rows: ranked
            .into_iter()
            .map(|r| RankRow {
                rank: r.rank,
                id: r.application.id,
                title: r.application.title,
                company: r.application.applicant_name,
                registration_number: r.application.registration_number,
                requested: eur(r.application.requested_amount),
                requested_plain: format!("{:.2}", r.application.requested_amount),
                score: r
                    .application
                    .score
                    .map_or_else(|| "—".to_owned(), |v| format!("{v:.3}")),
                remaining: eur(r.remaining_if_funded),
                below_line: r.remaining_if_funded < 0.0,
            })
            .collect(),
        approver: c.roles().contains(&MapRole::Approver),
        outcomes: Vec::new(),
        decided: 0,
        error,
        kept,
    })
}

/// `GET /map/programmes/{id}/ranking`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(raw): Path<String>,
) -> Result<Response, PortalError> {
    let id = programme_id(&s, &raw)?;
    let page = load(&portal, &s, id, None, BTreeMap::new()).await?;
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /map/programmes/{id}/ranking`: the decisions chosen, in ranking order; the page
/// again with each one's outcome (a refusal of the whole form changes nothing).
pub(super) async fn decide(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let id = programme_id(&s, &raw)?;
    let t = MapText::get(s.lang());
    // The order of the form is the ranking's: decisions are taken best first.
    let order: Vec<i64> = form
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("decision_")?.parse().ok())
        .collect();
    let (fields, too_long) = fields_of(t, form);
    let result = match too_long {
        Some(e) => Err(e),
        None => match decisions(t, &order, &fields) {
            Ok(list) => match caller(&portal, &s).await {
                Ok(c) => service::decide_all(&portal.app, &c, id, list).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(outcomes) => {
            let mut page = load(&portal, &s, id, None, BTreeMap::new()).await?;
            page.decided = outcomes.iter().filter(|o| o.status == 200).count();
            page.outcomes = outcomes.into_iter().map(|o| outcome(t, o)).collect();
            Ok(render_status(StatusCode::OK, &page))
        }
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let page = load(&portal, &s, id, Some(refusal), fields).await?;
            Ok(render_status(status, &page))
        }
    }
}

fn outcome(t: &MapText, o: BulkOutcome) -> OutcomeRow {
    let decided = o.status == 200;
    let after = decided.then(|| Status::parse(&o.detail)).flatten();
    OutcomeRow {
        application: o.application,
        decided,
        status: after.map_or("", |st| status_text(t, st)),
        status_class: after.map_or("", Status::as_str),
        code: o.status,
        detail: o.detail,
    }
}

/// The decisions of the form: for each application in `order` whose `decision_{id}` is
/// `approve` or `reject`, with `amount_{id}` (approvals) and `reason_{id}`, or the common
/// `reason` when that is empty. None chosen, or an amount that is no amount, is refused.
fn decisions(
    t: &MapText,
    order: &[i64],
    f: &BTreeMap<String, String>,
) -> Result<Vec<BulkDecision>, GovError> {
    let get = |k: &str| f.get(k).map(|v| v.trim()).unwrap_or_default();
    let common = get("reason");
    let mut out = Vec::new();
    for id in order {
        let decision = get(&format!("decision_{id}"));
        if decision.is_empty() || out.iter().any(|d: &BulkDecision| d.application == *id) {
            continue;
        }
        if decision != "approve" && decision != "reject" {
            return Err(GovError::Invalid {
                field: format!("decision_{id}"),
                reason: format!("`{decision}` {}", t.not_a_choice),
            });
        }
        let amount = if decision == "approve" {
            let field = format!("amount_{id}");
            let raw = get(&field);
            Some(parse_amount(raw).ok_or_else(|| GovError::Invalid {
                reason: format!("{} {id}: `{raw}` {}", t.application, t.not_an_amount),
                field,
            })?)
        } else {
            None
        };
        let own = get(&format!("reason_{id}"));
        out.push(BulkDecision {
            application: *id,
            decision: decision.to_owned(),
            amount,
            reason: if own.is_empty() { common } else { own }.to_owned(),
        });
    }
    if out.is_empty() {
        return Err(GovError::Invalid {
            field: "decisions".into(),
            reason: t.no_decisions.to_owned(),
        });
    }
    if out.len() > MAX_DECISIONS {
        return Err(GovError::Invalid {
            field: "decisions".into(),
            reason: format!("{} {MAX_DECISIONS}", t.too_many_decisions),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_chosen_rows_become_decisions_in_ranking_order() {
        let t = MapText::get(Lang::En);
        let f = form(&[
            ("reason", "Pēc vērtējuma"),
            ("decision_7", "approve"),
            ("amount_7", "35 000"),
            ("reason_7", ""),
            ("decision_3", ""),
            ("amount_3", "1000"),
            ("decision_5", "reject"),
            ("reason_5", "Zem robežas"),
        ]);
        let d = decisions(t, &[7, 3, 5], &f).unwrap();
        let got: Vec<(i64, &str, Option<f64>, &str)> = d
            .iter()
            .map(|d| {
                (
                    d.application,
                    d.decision.as_str(),
                    d.amount,
                    d.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (7, "approve", Some(35000.0), "Pēc vērtējuma"),
                (5, "reject", None, "Zem robežas")
            ]
        );
        for (f, field) in [
            (form(&[("decision_7", "")]), "decisions"),
            (
                form(&[("decision_7", "approve"), ("amount_7", "x")]),
                "amount_7",
            ),
            (form(&[("decision_7", "maybe")]), "decision_7"),
        ] {
            match decisions(t, &[7], &f) {
                Err(GovError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{other:?}"),
            }
        }
    }
}

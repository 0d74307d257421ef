//! Ranking of a programme's evaluated applications and bulk decisions on them.

use super::*;
use crate::map::store::AppFilter;

/// Most decisions in one bulk call.
pub(crate) const MAX_BULK: usize = 200;

/// The evaluated applications of a programme by score, best first (programme managers and
/// approvers of its organisation).
pub(crate) async fn ranking(
    store: &MapStore,
    actor: &Actor,
    programme: i64,
) -> GovResult<Vec<Ranked>> {
    let p = programme_row(store, programme).await?;
    let allowed = [MapRole::ProgrammeManager, MapRole::Approver]
        .iter()
        .any(|r| actor.require(*r, &p.organisation).is_ok());
    if !allowed {
        return Err(GovError::Forbidden(format!(
            "the ranking is for programme managers and approvers of {}",
            p.organisation
        )));
    }
    let mut rows = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .applications(&AppFilter {
                programme: Some(programme),
                status: Some(Status::Evaluated),
                before,
                limit: 1000,
                ..AppFilter::default()
            })
            .await?;
        let full = page.len() == 1000;
        before = page.last().map(|a| a.id);
        rows.extend(page);
        if !full {
            break;
        }
    }
    rows.sort_by(|a, b| {
        b.score
            .unwrap_or(f64::MIN)
            .total_cmp(&a.score.unwrap_or(f64::MIN))
            .then(a.id.cmp(&b.id))
    });
    let mut remaining = p.budget - p.committed;
    let mut out = Vec::with_capacity(rows.len());
    let mut rank = 0;
    let mut last_score = None;
    for (i, a) in rows.into_iter().enumerate() {
        if last_score != Some(a.score) {
            rank = i + 1;
            last_score = Some(a.score);
        }
        remaining -= (a.requested_amount * 100.0).round() as i64;
        out.push(Ranked {
            rank,
            remaining_if_funded: eur(remaining),
            application: ApplicationSummaryRef {
                id: a.id,
                title: a.title,
                registration_number: a.registration_number,
                applicant_name: a.applicant_name,
                requested_amount: a.requested_amount,
                score: a.score,
            },
        });
    }
    Ok(out)
}

/// Decide several applications of a programme, in the order given, each on its own (each
/// all or nothing, with its own checks: eligibility, budget, de minimis): a refused one does
/// not stop the others. The approver's role is checked before any decision.
pub(crate) async fn decide_all(
    state: &AppState,
    store: &MapStore,
    actor: &Actor,
    programme: i64,
    decisions: Vec<BulkDecision>,
) -> GovResult<Vec<BulkOutcome>> {
    let p = programme_row(store, programme).await?;
    actor.require(MapRole::Approver, &p.organisation)?;
    if decisions.is_empty() || decisions.len() > MAX_BULK {
        return Err(invalid(
            "decisions",
            format!("give 1 to {MAX_BULK} decisions"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in &decisions {
        if !seen.insert(d.application) {
            return Err(invalid(
                "decisions",
                format!("application {} appears twice", d.application),
            ));
        }
        if d.decision != "approve" && d.decision != "reject" {
            return Err(invalid(
                "decisions",
                format!("`{}` is not `approve` or `reject`", d.decision),
            ));
        }
        if d.decision == "approve" && d.amount.is_none() {
            return Err(invalid(
                "decisions",
                format!("approving application {} needs an amount", d.application),
            ));
        }
    }
    let mut out = Vec::with_capacity(decisions.len());
    for d in decisions {
        let in_programme = store
            .app_row(d.application)
            .await?
            .is_some_and(|a| a.programme == programme);
        let result = if !in_programme {
            Err(GovError::NotFound(format!(
                "application {} in programme {programme}",
                d.application
            )))
        } else {
            let action = if d.decision == "approve" {
                Action::Approve {
                    amount: d.amount.unwrap_or(0.0),
                    reason: d.reason,
                }
            } else {
                Action::Reject { reason: d.reason }
            };
            act(state, store, actor, d.application, action).await
        };
        out.push(match result {
            Ok(app) => BulkOutcome {
                application: d.application,
                status: 200,
                detail: app.status.as_str().to_owned(),
            },
            Err(e) => BulkOutcome {
                application: d.application,
                status: match &e {
                    GovError::Forbidden(_) => 403,
                    GovError::NotFound(_) => 404,
                    GovError::Invalid { .. } => 422,
                    GovError::Conflict(_) => 409,
                    GovError::Store(_) | GovError::Engine(_) => return Err(e),
                },
                detail: e.to_string(),
            },
        });
    }
    Ok(out)
}

//! Who may read and change the state aid rules: the regimes (an admin), which companies
//! form one undertaking (a programme manager or an admin), and an undertaking's totals
//! (MAP staff and applicants: granted aid is public under the transparency rules).

use super::*;
use crate::map::store::{AidTotals, Regime, RegimeRow};

/// Most regimes a regime's ceiling may count.
const MAX_COUNTS: usize = 20;
/// Longest period a ceiling may cover, in days (ten years).
const MAX_WINDOW_DAYS: i64 = 3_660;

/// The aid of the undertaking `undertaking` belongs to, against each ceiling.
pub(crate) async fn aid(
    store: &MapStore,
    actor: &Actor,
    undertaking: &str,
) -> GovResult<AidTotals> {
    registers::check_registration_number(undertaking)?;
    if matches!(actor, Actor::Admin) {
        return Err(GovError::Forbidden(
            "aid totals are for MAP staff and applicants".into(),
        ));
    }
    store.aid_totals(undertaking).await
}

/// Create or change an aid regime (an admin). Forward only: decisions taken from now on
/// are checked against it; aid already granted stays.
pub(crate) async fn set_regime(
    store: &MapStore,
    actor: &Actor,
    input: RegimeInput,
) -> GovResult<Regime> {
    if !matches!(actor, Actor::Admin) {
        return Err(GovError::Forbidden(
            "aid regimes are set by an admin".into(),
        ));
    }
    let code = input.code;
    if code.is_none() {
        return Err(invalid(
            "code",
            "`none` means not state aid: it has no rules to change",
        ));
    }
    let title = text("title", &input.title)?;
    let legal_basis = text("legal_basis", &input.legal_basis)?;
    let ceiling = input.ceiling.map(|c| cents("ceiling", c)).transpose()?;
    let window_days = input.window_days.unwrap_or(1_096);
    if !(1..=MAX_WINDOW_DAYS).contains(&window_days) {
        return Err(invalid(
            "window_days",
            format!("give 1 to {MAX_WINDOW_DAYS} days"),
        ));
    }
    let counts: Vec<String> = match input.counts {
        Some(c) => c.into_iter().map(String::from).collect(),
        None => vec![code.as_str().to_owned()],
    };
    if counts.len() > MAX_COUNTS {
        return Err(invalid("counts", format!("at most {MAX_COUNTS} regimes")));
    }
    if ceiling.is_some() && !counts.iter().any(|c| c == code.as_str()) {
        return Err(invalid(
            "counts",
            "a regime with a ceiling counts its own aid toward it",
        ));
    }
    if counts.iter().any(|c| c == AidRegime::NONE) {
        return Err(invalid("counts", "`none` is not state aid"));
    }
    let row = RegimeRow {
        code: code.as_str().to_owned(),
        title,
        legal_basis,
        ceiling,
        window_days,
        counts,
    };
    store.set_regime(&row, "admin").await
}

/// A company's undertaking: refused to callers who are neither a programme manager nor an
/// admin; the actor's name for the history.
fn linker(actor: &Actor) -> GovResult<String> {
    match actor {
        Actor::Admin => Ok("admin".into()),
        Actor::Staff { roles, .. } if roles.contains(&MapRole::ProgrammeManager) => {
            Ok(actor.describe(Some(MapRole::ProgrammeManager)))
        }
        _ => Err(GovError::Forbidden(
            "which companies form one undertaking is recorded by a programme manager or an admin"
                .into(),
        )),
    }
}

/// Record that `member` is one undertaking with `parent` (a programme manager or an admin).
pub(crate) async fn link(
    store: &MapStore,
    actor: &Actor,
    parent: &str,
    member: &str,
    reason: &str,
) -> GovResult<AidTotals> {
    let by = linker(actor)?;
    registers::check_registration_number(parent)?;
    registers::check_registration_number(member)?;
    let reason = text("reason", reason)?;
    store.link(parent, member, &reason, &by).await?;
    store.aid_totals(parent).await
}

/// Remove a link (a programme manager or an admin).
pub(crate) async fn unlink(
    store: &MapStore,
    actor: &Actor,
    parent: &str,
    member: &str,
) -> GovResult<AidTotals> {
    let by = linker(actor)?;
    registers::check_registration_number(parent)?;
    registers::check_registration_number(member)?;
    store.unlink(parent, member, &by).await?;
    store.aid_totals(parent).await
}

//! State aid per undertaking: the regimes (ceilings and cumulation as data), which companies
//! form one undertaking (links to a parent), aid granted by MAP decisions and outside MAP,
//! and the check that a grant stays under every ceiling it counts toward.
//!
//! Every statement that reads or writes an undertaking's aid first takes the row of each of
//! its companies in `map_undertakings`, in registration-number order: grants, recorded
//! outside aid and link changes touching one undertaking run one after the other on both
//! backends, and two transactions never wait for each other in opposite orders.

use serde::Deserialize;

use super::*;

/// Most companies one undertaking may have.
pub const MAX_MEMBERS: usize = 200;

/// An aid regime as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Regime {
    /// Code (`de_minimis`, …), what a programme's `aid_regime` names.
    pub code: String,
    /// Title.
    pub title: String,
    /// The legal act (and article) the rule comes from.
    pub legal_basis: String,
    /// Ceiling per undertaking (EUR) over `window_days`; absent: none.
    pub ceiling: Option<f64>,
    /// The period the ceiling covers, in days.
    pub window_days: i64,
    /// Regimes whose aid counts toward this ceiling (its cumulation rule).
    pub counts: Vec<String>,
    /// Who set it last (`default` for the shipped rules).
    pub updated_by: String,
    /// When (RFC 3339).
    pub updated_at: String,
}

/// A regime as stored (ceiling in cents).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegimeRow {
    pub(crate) code: String,
    pub(crate) title: String,
    pub(crate) legal_basis: String,
    pub(crate) ceiling: Option<i64>,
    pub(crate) window_days: i64,
    pub(crate) counts: Vec<String>,
}

impl RegimeRow {
    fn view(&self, by: String, at: i64) -> Regime {
        Regime {
            code: self.code.clone(),
            title: self.title.clone(),
            legal_basis: self.legal_basis.clone(),
            ceiling: self.ceiling.map(eur),
            window_days: self.window_days,
            counts: self.counts.clone(),
            updated_by: by,
            updated_at: Time(at).to_rfc3339(),
        }
    }
}

/// Aid granted to an undertaking.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AidTotals {
    /// The company asked about (registration number).
    pub undertaking: String,
    /// The companies that form one undertaking with it (itself included), by
    /// registration number.
    pub members: Vec<String>,
    /// The de minimis ceiling (EUR) over its period.
    pub ceiling: f64,
    /// Aid counted toward the de minimis ceiling in its period up to now (EUR).
    pub granted: f64,
    /// What is left under the de minimis ceiling (EUR).
    pub remaining: f64,
    /// The same for every regime with a ceiling.
    pub regimes: Vec<RegimeTotal>,
}

/// An undertaking's aid against one regime's ceiling.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegimeTotal {
    /// The regime.
    pub regime: String,
    /// Its legal basis.
    pub legal_basis: String,
    /// Ceiling (EUR).
    pub ceiling: f64,
    /// Aid counted toward it in its period up to now (EUR).
    pub granted: f64,
    /// What is left (EUR).
    pub remaining: f64,
}

/// A link: `member` is one undertaking with `parent`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UndertakingLink {
    /// The group's parent (registration number).
    pub parent: String,
    /// The linked company (registration number).
    pub member: String,
    /// Why they are one undertaking (e.g. "majority of voting rights, declaration of
    /// 2026-03-01").
    pub reason: String,
    /// Who linked them.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
}

fn regime_row(r: &AnyRow) -> GovResult<(RegimeRow, String, i64)> {
    let counts: String = r.try_get("counts").map_err(db)?;
    Ok((
        RegimeRow {
            code: r.try_get("code").map_err(db)?,
            title: r.try_get("title").map_err(db)?,
            legal_basis: r.try_get("legal_basis").map_err(db)?,
            ceiling: r.try_get("ceiling").map_err(db)?,
            window_days: r.try_get("window_days").map_err(db)?,
            counts: from_json(&counts, "regime counts")?,
        },
        r.try_get("updated_by").map_err(db)?,
        r.try_get("updated_at").map_err(db)?,
    ))
}

async fn all_regimes(c: &mut AnyConnection) -> GovResult<Vec<(RegimeRow, String, i64)>> {
    let rows = sqlx::query("SELECT * FROM map_regimes ORDER BY code")
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
    rows.iter().map(regime_row).collect()
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The companies that form one undertaking with `rn`, sorted, itself included.
async fn members(c: &mut AnyConnection, rn: &str) -> GovResult<Vec<String>> {
    let parent: Option<String> =
        sqlx::query_scalar("SELECT parent FROM map_undertaking_links WHERE member = $1")
            .bind(rn)
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
    let parent = parent.unwrap_or_else(|| rn.to_owned());
    let mut all: Vec<String> = sqlx::query_scalar(
        "SELECT member FROM map_undertaking_links WHERE parent = $1 ORDER BY member",
    )
    .bind(&parent)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    all.push(parent);
    all.sort();
    all.dedup();
    Ok(all)
}

/// Take the row of each company in `members` (sorted) in `map_undertakings`.
async fn lock_all(tx: &mut Transaction<'static, Any>, members: &[String]) -> GovResult<()> {
    for m in members {
        lock_undertaking(tx, m).await?;
    }
    Ok(())
}

/// Update the company's row first, so that aid writes about one undertaking run one after
/// the other.
async fn lock_undertaking(tx: &mut Transaction<'static, Any>, rn: &str) -> GovResult<()> {
    let r = sqlx::query(
        "UPDATE map_undertakings SET decisions = decisions + 1 WHERE registration_number = $1",
    )
    .bind(rn)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    if r.rows_affected() == 0 {
        // First write about it: the primary key makes a concurrent first insert fail
        // (and roll back) rather than both pass.
        sqlx::query("INSERT INTO map_undertakings (registration_number, decisions) VALUES ($1, 1)")
            .bind(rn)
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                unique_or_db(e, || {
                    format!(
                        "another decision about undertaking {rn} ran at the same time; nothing was done, try again"
                    )
                })
            })?;
    }
    Ok(())
}

/// Aid of `members` under the regimes `counts` in the `window_days` before `at`, in cents.
/// Aid granted after `at` counts too: a decision's `at` is taken before it waits for the
/// undertaking's rows, so a concurrent decision that took them first may have granted aid
/// a moment later than this one's `at`, and it must count.
async fn aid_in_window(
    c: &mut AnyConnection,
    members: &[String],
    counts: &[String],
    window_days: i64,
    at: i64,
) -> GovResult<i64> {
    if members.is_empty() || counts.is_empty() {
        return Ok(0);
    }
    let since = Time(at).plus_days(-window_days).0;
    let sql = format!(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM map_aid WHERE undertaking IN ({}) \
         AND regime IN ({}) AND granted_at > $1",
        placeholders(2, members.len()),
        placeholders(2 + members.len(), counts.len())
    );
    let mut q = sqlx::query_scalar(&sql).bind(since);
    for v in members.iter().chain(counts) {
        q = q.bind(v);
    }
    let total: Option<i64> = q.fetch_one(&mut *c).await.map_err(db)?;
    Ok(total.unwrap_or(0))
}

/// The totals of `members` against each regime with a ceiling.
async fn totals(
    c: &mut AnyConnection,
    rn: &str,
    members: Vec<String>,
    at: i64,
) -> GovResult<AidTotals> {
    let mut regimes = Vec::new();
    let mut top = (0, 0);
    for (r, _, _) in all_regimes(c).await? {
        let Some(ceiling) = r.ceiling else { continue };
        let granted = aid_in_window(c, &members, &r.counts, r.window_days, at).await?;
        if r.code == DE_MINIMIS {
            top = (ceiling, granted);
        }
        regimes.push(RegimeTotal {
            regime: r.code,
            legal_basis: r.legal_basis,
            ceiling: eur(ceiling),
            granted: eur(granted),
            remaining: eur((ceiling - granted).max(0)),
        });
    }
    Ok(AidTotals {
        undertaking: rn.to_owned(),
        members,
        ceiling: eur(top.0),
        granted: eur(top.1),
        remaining: eur((top.0 - top.1).max(0)),
        regimes,
    })
}

impl MapStore {
    /// The aid regimes, by code.
    pub(crate) async fn regimes(&self) -> GovResult<Vec<Regime>> {
        let mut c = self.conn().await?;
        Ok(all_regimes(&mut c)
            .await?
            .into_iter()
            .map(|(r, by, at)| r.view(by, at))
            .collect())
    }

    /// One regime.
    pub(crate) async fn regime(&self, code: &str) -> GovResult<Option<RegimeRow>> {
        let row = sqlx::query("SELECT * FROM map_regimes WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref()
            .map(regime_row)
            .transpose()
            .map(|r| r.map(|(r, _, _)| r))
    }

    /// Create or change a regime (forward only: decisions from now on are checked against
    /// it), with its history entry.
    pub(crate) async fn set_regime(&self, r: &RegimeRow, actor: &str) -> GovResult<Regime> {
        let now = Time::now().0;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM map_regimes WHERE code = $1")
            .bind(&r.code)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO map_regimes (code, title, legal_basis, ceiling, window_days, counts, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.code)
        .bind(&r.title)
        .bind(&r.legal_basis)
        .bind(r.ceiling)
        .bind(r.window_days)
        .bind(to_json(&r.counts))
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        rule_history(
            &mut tx,
            &format!("regime {}", r.code),
            &to_json(r),
            actor,
            now,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(r.view(actor.to_owned(), now))
    }

    /// The aid of the undertaking `rn` belongs to, now.
    pub(crate) async fn aid_totals(&self, rn: &str) -> GovResult<AidTotals> {
        let mut c = self.conn().await?;
        let m = members(&mut c, rn).await?;
        totals(&mut c, rn, m, Time::now().0).await
    }

    /// Record aid granted outside MAP under `regime` (a fact: no ceiling refuses it).
    pub(crate) async fn add_external_aid(
        &self,
        rn: &str,
        regime: &str,
        amount: i64,
        granted_at: Time,
    ) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let m = members(&mut tx, rn).await?;
        lock_all(&mut tx, &m).await?;
        sqlx::query(
            "INSERT INTO map_aid (undertaking, regime, amount, granted_at, application, source) \
             VALUES ($1, $2, $3, $4, NULL, 'external')",
        )
        .bind(rn)
        .bind(regime)
        .bind(amount)
        .bind(granted_at.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// The links of the undertaking `rn` belongs to.
    pub(crate) async fn links(&self, rn: &str) -> GovResult<Vec<UndertakingLink>> {
        let mut c = self.conn().await?;
        let m = members(&mut c, rn).await?;
        let sql = format!(
            "SELECT * FROM map_undertaking_links WHERE member IN ({}) ORDER BY member",
            placeholders(1, m.len())
        );
        let mut q = sqlx::query(&sql);
        for v in &m {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&mut *c).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(UndertakingLink {
                    parent: r.try_get("parent").map_err(db)?,
                    member: r.try_get("member").map_err(db)?,
                    reason: r.try_get("reason").map_err(db)?,
                    created_by: r.try_get("created_by").map_err(db)?,
                    created_at: Time(r.try_get("created_at").map_err(db)?).to_rfc3339(),
                })
            })
            .collect()
    }

    /// Link `member` to `parent`: from now on they are one undertaking. Refused when
    /// `member` is linked already, has members of its own, or `parent` is itself a member.
    pub(crate) async fn link(
        &self,
        parent: &str,
        member: &str,
        reason: &str,
        actor: &str,
    ) -> GovResult<()> {
        if parent == member {
            return Err(GovError::Invalid {
                field: "registration_number".into(),
                reason: "a company is one undertaking with itself already".into(),
            });
        }
        let mut tx = self.begin_link(parent, member).await?;
        if let Some(p) = sqlx::query_scalar::<_, String>(
            "SELECT parent FROM map_undertaking_links WHERE member = $1",
        )
        .bind(parent)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        {
            return Err(GovError::Conflict(format!(
                "{parent} is linked to {p}; link {member} to {p} instead"
            )));
        }
        let own: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM map_undertaking_links WHERE parent = $1")
                .bind(member)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if own > 0 {
            return Err(GovError::Conflict(format!(
                "{member} is the parent of {own} linked companies; link {parent} to {member} instead"
            )));
        }
        let size = members(&mut tx, parent).await?.len();
        if size >= MAX_MEMBERS {
            return Err(GovError::Conflict(format!(
                "the undertaking of {parent} has {size} companies, the most one may have"
            )));
        }
        sqlx::query(
            "INSERT INTO map_undertaking_links (member, parent, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(member)
        .bind(parent)
        .bind(reason)
        .bind(actor)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_or_db(e, || {
                format!("{member} is linked to another undertaking already; remove that link first")
            })
        })?;
        let state = serde_json::json!({"parent": parent, "member": member, "reason": reason});
        commit_link(tx, member, state, actor).await
    }

    /// Begin a change of the link of `member` to `parent`: both companies' rows taken, in
    /// order.
    async fn begin_link(&self, parent: &str, member: &str) -> GovResult<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut both = vec![parent.to_owned(), member.to_owned()];
        both.sort();
        lock_all(&mut tx, &both).await?;
        Ok(tx)
    }

    /// Remove the link of `member` to `parent` (404 when there is none).
    pub(crate) async fn unlink(&self, parent: &str, member: &str, actor: &str) -> GovResult<()> {
        let mut tx = self.begin_link(parent, member).await?;
        let r = sqlx::query("DELETE FROM map_undertaking_links WHERE member = $1 AND parent = $2")
            .bind(member)
            .bind(parent)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(GovError::NotFound(format!(
                "{member} is not linked to {parent}"
            )));
        }
        let state = serde_json::json!({"parent": parent, "member": member, "removed": true});
        commit_link(tx, member, state, actor).await
    }
}

/// Record a link change in the history and commit it.
async fn commit_link(
    mut tx: Transaction<'static, Any>,
    member: &str,
    state: serde_json::Value,
    actor: &str,
) -> GovResult<()> {
    let at = Time::now().0;
    rule_history(
        &mut tx,
        &format!("link {member}"),
        &state.to_string(),
        actor,
        at,
    )
    .await?;
    tx.commit().await.map_err(db)
}

/// Record a change of a rule (a regime, a link, a setting) in `map_rule_history`.
pub(crate) async fn rule_history(
    tx: &mut Transaction<'static, Any>,
    what: &str,
    state: &str,
    actor: &str,
    at: i64,
) -> GovResult<()> {
    sqlx::query("INSERT INTO map_rule_history (what, state, actor, at) VALUES ($1, $2, $3, $4)")
        .bind(what)
        .bind(state)
        .bind(actor)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

impl Transition {
    /// Grant aid under `regime` to the company `rn`, refused (409 naming the totals) when
    /// the undertaking it belongs to would pass the ceiling of any regime the grant counts
    /// toward. Writes about one undertaking are serialised.
    pub(crate) async fn grant_aid(&mut self, rn: &str, regime: &str, amount: i64) -> GovResult<()> {
        let m = members(&mut self.tx, rn).await?;
        lock_all(&mut self.tx, &m).await?;
        for (q, _, _) in all_regimes(&mut self.tx).await? {
            let Some(ceiling) = q.ceiling else { continue };
            if !q.counts.iter().any(|c| c == regime) {
                continue;
            }
            let granted =
                aid_in_window(&mut self.tx, &m, &q.counts, q.window_days, self.now).await?;
            if granted + amount > ceiling {
                let whose = if m.len() > 1 {
                    format!("undertaking {rn} (one undertaking with {})", m.join(", "))
                } else {
                    format!("undertaking {rn}")
                };
                return Err(GovError::Conflict(format!(
                    "{} ceiling exceeded: {whose} was granted EUR {:.2} counted toward it in the last {} days; \
                     EUR {:.2} more would pass the ceiling of EUR {:.2} ({})",
                    q.code.replace('_', " "),
                    eur(granted),
                    q.window_days,
                    eur(amount),
                    eur(ceiling),
                    q.legal_basis
                )));
            }
        }
        sqlx::query(
            "INSERT INTO map_aid (undertaking, regime, amount, granted_at, application, source) \
             VALUES ($1, $2, $3, $4, $5, 'map')",
        )
        .bind(rn)
        .bind(regime)
        .bind(amount)
        .bind(self.now)
        .bind(self.app)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }
}

//! MAP's tables on the metadata database (SQLite or PostgreSQL through sqlx's `Any`
//! driver, with the metadata store's portability rules: `$n` parameters, BIGINT times and
//! cents, JSON text, no booleans).
//!
//! Every change of an application is a [`Transition`]: one transaction whose first
//! statement is the conditional `UPDATE map_applications ... WHERE id = $ AND status IN
//! (...)` — on SQLite it takes the write lock at once (no stale snapshot to upgrade), on
//! PostgreSQL it locks the application's row — so two concurrent actions on one application
//! cannot both pass, and whatever the action writes besides (budget, aid, payments) commits
//! with its history entry or not at all. The history entry keeps the application as it was
//! after the transition, for the as-of replay.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use crate::governance::{GovError, GovResult};
use crate::model::Time;
use crate::store::{Backend, MetaStore, MigrationSet, StoreError, apply_migrations_with_ids};

use super::model::*;
use super::registers::{Grantor, Read};

mod aid;
mod transition;

pub use aid::{AidTotals, MAX_MEMBERS, Regime, RegimeTotal, UndertakingLink};
pub(crate) use aid::{RegimeRow, rule_history};

pub(super) fn db(e: sqlx::Error) -> GovError {
    GovError::Store(StoreError::Database(e))
}

pub(super) fn corrupt(what: impl Into<String>) -> GovError {
    GovError::Store(StoreError::Corrupt(what.into()))
}

pub(super) use crate::store::to_json;

/// [`crate::store::from_json`] with MAP's error type.
fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> GovResult<T> {
    crate::store::from_json(text, what).map_err(GovError::from)
}

/// A unique-key violation as the conflict `what` says; any other failure as a database error.
pub(super) fn unique_or_db(e: sqlx::Error, what: impl FnOnce() -> String) -> GovError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => GovError::Conflict(what()),
        _ => db(e),
    }
}

fn time(ms: i64) -> String {
    Time(ms).to_rfc3339()
}

/// A staff member's MAP role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StaffRole {
    /// Login.
    pub login: String,
    /// Role.
    pub role: MapRole,
    /// Organisation (a grantor).
    pub organisation: String,
    /// Personal code (for conflict detection).
    pub personal_code: String,
}

/// A programme as stored (amounts in cents).
#[derive(Debug, Clone)]
pub(crate) struct ProgrammeRow {
    pub(crate) id: i64,
    pub(crate) organisation: String,
    pub(crate) title: String,
    pub(crate) budget: i64,
    pub(crate) max_grant: i64,
    pub(crate) co_financing_bp: i64,
    pub(crate) opens_at: i64,
    pub(crate) closes_at: i64,
    pub(crate) aid_regime: AidRegime,
    pub(crate) eligibility: Vec<Condition>,
    pub(crate) cost_categories: Vec<String>,
    pub(crate) approval_levels: Vec<ApprovalLevel>,
    pub(crate) report_schedule: Vec<ReportDue>,
    pub(crate) evaluators_per_application: i64,
    pub(crate) scoresheet_version: i64,
    pub(crate) criteria: Vec<Criterion>,
    pub(crate) committed: i64,
    pub(crate) paid: i64,
    pub(crate) recovered: i64,
    pub(crate) created_by: String,
    pub(crate) created_at: i64,
}

impl ProgrammeRow {
    /// As the API shows it.
    pub(crate) fn view(&self) -> Programme {
        Programme {
            id: self.id,
            organisation: self.organisation.clone(),
            title: self.title.clone(),
            budget: eur(self.budget),
            max_grant: eur(self.max_grant),
            co_financing_rate: self.co_financing_bp as f64 / 10_000.0,
            opens_at: time(self.opens_at),
            closes_at: time(self.closes_at),
            aid_regime: self.aid_regime.clone(),
            eligibility: self.eligibility.clone(),
            criteria: self.criteria.clone(),
            scoresheet_version: self.scoresheet_version,
            evaluators_per_application: self.evaluators_per_application,
            cost_categories: self.cost_categories.clone(),
            approval_levels: self.approval_levels.clone(),
            report_schedule: self.report_schedule.clone(),
            committed: eur(self.committed),
            paid: eur(self.paid),
            recovered: eur(self.recovered),
            remaining: eur(self.budget - self.committed),
            created_by: self.created_by.clone(),
            created_at: time(self.created_at),
        }
    }
}

/// The stored core of an application (what rules decide on), without its lists.
#[derive(Debug, Clone)]
pub(crate) struct AppRow {
    pub(crate) id: i64,
    pub(crate) programme: i64,
    pub(crate) status: Status,
    pub(crate) title: String,
    pub(crate) requested: i64,
    pub(crate) granted: Option<i64>,
    pub(crate) registration_number: String,
    pub(crate) applicant_code: String,
    pub(crate) applicant: Applicant,
    pub(crate) scoresheet_version: Option<i64>,
    pub(crate) score: Option<f64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

fn app_row(r: &AnyRow) -> GovResult<AppRow> {
    let status: String = r.try_get("status").map_err(db)?;
    let applicant: String = r.try_get("applicant").map_err(db)?;
    Ok(AppRow {
        id: r.try_get("id").map_err(db)?,
        programme: r.try_get("programme").map_err(db)?,
        status: Status::parse(&status).ok_or_else(|| corrupt(format!("status `{status}`")))?,
        title: r.try_get("title").map_err(db)?,
        requested: r.try_get("requested").map_err(db)?,
        granted: r.try_get("granted").map_err(db)?,
        registration_number: r.try_get("registration_number").map_err(db)?,
        applicant_code: r.try_get("applicant_code").map_err(db)?,
        applicant: from_json(&applicant, "applicant")?,
        scoresheet_version: r.try_get("scoresheet_version").map_err(db)?,
        score: r.try_get("score").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

fn programme_row(r: &AnyRow, criteria: Vec<Criterion>) -> GovResult<ProgrammeRow> {
    let regime: String = r.try_get("aid_regime").map_err(db)?;
    let get_json = |col: &str| -> GovResult<String> { r.try_get(col).map_err(db) };
    Ok(ProgrammeRow {
        id: r.try_get("id").map_err(db)?,
        organisation: r.try_get("organisation").map_err(db)?,
        title: r.try_get("title").map_err(db)?,
        budget: r.try_get("budget").map_err(db)?,
        max_grant: r.try_get("max_grant").map_err(db)?,
        co_financing_bp: r.try_get("co_financing_bp").map_err(db)?,
        opens_at: r.try_get("opens_at").map_err(db)?,
        closes_at: r.try_get("closes_at").map_err(db)?,
        aid_regime: AidRegime::parse(&regime)
            .ok_or_else(|| corrupt(format!("aid regime `{regime}`")))?,
        eligibility: from_json(&get_json("eligibility")?, "eligibility")?,
        cost_categories: from_json(&get_json("cost_categories")?, "cost_categories")?,
        approval_levels: from_json(&get_json("approval_levels")?, "approval_levels")?,
        report_schedule: from_json(&get_json("report_schedule")?, "report_schedule")?,
        evaluators_per_application: r.try_get("evaluators_per_application").map_err(db)?,
        scoresheet_version: r.try_get("scoresheet_version").map_err(db)?,
        criteria,
        committed: r.try_get("committed").map_err(db)?,
        paid: r.try_get("paid").map_err(db)?,
        recovered: r.try_get("recovered").map_err(db)?,
        created_by: r.try_get("created_by").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
    })
}

/// Filters of the application list.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppFilter {
    pub(crate) programme: Option<i64>,
    pub(crate) status: Option<Status>,
    /// Only the organisation's programmes (staff).
    pub(crate) organisation: Option<String>,
    /// Only this applicant's (subjects).
    pub(crate) applicant_code: Option<String>,
    /// Only those assigned to this evaluator.
    pub(crate) evaluator: Option<String>,
    /// Ids below this (keyset pagination, newest first).
    pub(crate) before: Option<i64>,
    pub(crate) limit: i64,
}

/// One line of an application list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicationSummary {
    /// Id.
    pub id: i64,
    /// Programme.
    pub programme: i64,
    /// Status.
    pub status: Status,
    /// Title.
    pub title: String,
    /// Requested (EUR).
    pub requested_amount: f64,
    /// Granted (EUR).
    pub granted_amount: Option<f64>,
    /// Score, once every evaluator scored.
    pub score: Option<f64>,
    /// The company's registration number.
    pub registration_number: String,
    /// The company's name.
    pub applicant_name: String,
    /// Last changed.
    pub updated_at: String,
}

/// One history entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Status before (none for the creation).
    pub from: Option<Status>,
    /// Status after.
    pub to: Status,
    /// The action.
    pub action: String,
    /// Who (`user LOGIN`, `subject`, ...).
    pub by: String,
    /// Why, when given.
    pub reason: Option<String>,
    /// When.
    pub at: String,
}

/// One line of who opened or read about an application.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessEntry {
    /// When.
    pub at: String,
    /// The MAP role (or `map-system` for register reads).
    pub role: String,
    /// The organisation.
    pub organisation: Option<String>,
    /// What was done or read.
    pub what: String,
}

/// A message in an inbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxMessage {
    /// Id.
    pub id: i64,
    /// The application it is about.
    pub application: Option<i64>,
    /// The message.
    pub text: String,
    /// When.
    pub at: String,
}

/// A new draft application.
pub(crate) struct Draft<'a> {
    pub(crate) programme: i64,
    pub(crate) title: &'a str,
    /// In cents.
    pub(crate) requested: i64,
    /// The filing person.
    pub(crate) applicant_code: &'a str,
    /// The company, pre-filled.
    pub(crate) applicant: &'a Applicant,
}

/// MAP's store.
#[derive(Debug, Clone)]
pub struct MapStore {
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
}

/// A transition in progress: the conditional update is done; add writes, then
/// [`Transition::finish`].
pub(crate) struct Transition {
    tx: Transaction<'static, Any>,
    app: i64,
    from: Status,
    to: Status,
    now: i64,
}

impl MapStore {
    /// MAP's store on the metadata database.
    pub fn new(meta: &MetaStore) -> Self {
        MapStore {
            pool: meta.pool().clone(),
            backend: meta.backend(),
        }
    }

    /// Apply MAP's migrations (tracked in `map_migrations`).
    pub async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), sqlx::Error> {
        let set = MigrationSet {
            table: "map_migrations",
            lock: 7036138,
            what: "map",
            migrations: super::MIGRATIONS,
        };
        apply_migrations_with_ids(pool, backend, &set).await
    }

    async fn conn(&self) -> GovResult<sqlx::pool::PoolConnection<Any>> {
        self.pool.acquire().await.map_err(db)
    }

    /// `INSERT ... RETURNING id` on both backends.
    fn returning_id(&self, sql: &str) -> String {
        let _ = self.backend;
        format!("{sql} RETURNING id")
    }

    // ---- grantors and staff ----------------------------------------------------------

    /// Make `organisation` a grantor reading under `system` (replaces an earlier system).
    pub async fn set_grantor(&self, organisation: &str, system: i64) -> GovResult<()> {
        crate::store::set_module_system(&self.pool, "map_grantors", organisation, system)
            .await
            .map_err(db)
    }

    /// The grantor entry of an organisation.
    pub(crate) async fn grantor(&self, organisation: &str) -> GovResult<Option<Grantor>> {
        let row = sqlx::query("SELECT system_id FROM map_grantors WHERE organisation = $1")
            .bind(organisation)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(match row {
            Some(r) => Some(Grantor {
                organisation: organisation.to_owned(),
                system: r.try_get("system_id").map_err(db)?,
            }),
            None => None,
        })
    }

    /// Give a person a MAP role (idempotent).
    pub async fn add_staff(&self, s: &StaffRole) -> GovResult<()> {
        sqlx::query("DELETE FROM map_staff WHERE login = $1 AND role = $2")
            .bind(&s.login)
            .bind(s.role.as_str())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO map_staff (login, role, organisation, personal_code, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.login)
        .bind(s.role.as_str())
        .bind(&s.organisation)
        .bind(&s.personal_code)
        .bind(Time::now().0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The MAP roles of a login.
    pub(crate) async fn staff_roles(&self, login: &str) -> GovResult<Vec<StaffRole>> {
        let rows = sqlx::query(
            "SELECT login, role, organisation, personal_code FROM map_staff WHERE login = $1 ORDER BY role",
        )
        .bind(login)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(staff_row).collect()
    }

    /// The staff of an organisation with a role, by login (at most 1 000 rows: a
    /// grantor's staff, not a register).
    pub(crate) async fn staff_of(
        &self,
        organisation: &str,
        role: MapRole,
    ) -> GovResult<Vec<StaffRole>> {
        let rows = sqlx::query(
            "SELECT login, role, organisation, personal_code FROM map_staff \
             WHERE organisation = $1 AND role = $2 ORDER BY login LIMIT 1000",
        )
        .bind(organisation)
        .bind(role.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(staff_row).collect()
    }

    // ---- programmes ----------------------------------------------------------------

    /// Store a new programme and its first scoresheet.
    pub(crate) async fn create_programme(&self, p: &ProgrammeRow) -> GovResult<i64> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(&self.returning_id(
            "INSERT INTO map_programmes (organisation, title, budget, max_grant, co_financing_bp, \
             opens_at, closes_at, aid_regime, eligibility, cost_categories, approval_levels, \
             report_schedule, evaluators_per_application, scoresheet_version, committed, paid, \
             recovered, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, 0, 0, 0, $14, $15)",
        ))
        .bind(&p.organisation)
        .bind(&p.title)
        .bind(p.budget)
        .bind(p.max_grant)
        .bind(p.co_financing_bp)
        .bind(p.opens_at)
        .bind(p.closes_at)
        .bind(p.aid_regime.as_str())
        .bind(to_json(&p.eligibility))
        .bind(to_json(&p.cost_categories))
        .bind(to_json(&p.approval_levels))
        .bind(to_json(&p.report_schedule))
        .bind(p.evaluators_per_application)
        .bind(&p.created_by)
        .bind(p.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        insert_scoresheet(&mut tx, id, 1, &p.criteria, &p.created_by).await?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    /// A programme with its current scoresheet.
    pub(crate) async fn programme(&self, id: i64) -> GovResult<Option<ProgrammeRow>> {
        let mut c = self.conn().await?;
        load_programme(&mut c, id).await
    }

    /// The programmes of an organisation (all when `None`), newest first.
    pub(crate) async fn programmes(
        &self,
        organisation: Option<&str>,
    ) -> GovResult<Vec<ProgrammeRow>> {
        let mut c = self.conn().await?;
        let ids: Vec<i64> = match organisation {
            Some(o) => sqlx::query_scalar(
                "SELECT id FROM map_programmes WHERE organisation = $1 ORDER BY id DESC LIMIT 1000",
            )
            .bind(o)
            .fetch_all(&mut *c)
            .await
            .map_err(db)?,
            None => sqlx::query_scalar("SELECT id FROM map_programmes ORDER BY id DESC LIMIT 1000")
                .fetch_all(&mut *c)
                .await
                .map_err(db)?,
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = load_programme(&mut c, id).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Replace the scoresheet: the current version while no application was scored on it,
    /// else a new version (applications already in evaluation keep theirs). Returns the
    /// version now current.
    pub(crate) async fn set_scoresheet(
        &self,
        programme: i64,
        criteria: &[Criterion],
        actor: &str,
    ) -> GovResult<i64> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Lock the programme first (the write lock on SQLite, the row on PostgreSQL).
        let touched = sqlx::query(
            "UPDATE map_programmes SET scoresheet_version = scoresheet_version WHERE id = $1",
        )
        .bind(programme)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if touched.rows_affected() == 0 {
            return Err(GovError::NotFound(format!("programme {programme}")));
        }
        let current: i64 =
            sqlx::query_scalar("SELECT scoresheet_version FROM map_programmes WHERE id = $1")
                .bind(programme)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT a.id FROM map_applications a WHERE a.programme = $1 AND a.scoresheet_version = $2 \
             AND EXISTS (SELECT 1 FROM map_scores s WHERE s.application = a.id) LIMIT 1",
        )
        .bind(programme)
        .bind(current)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let version = if used.is_some() {
            let v = current + 1;
            insert_scoresheet(&mut tx, programme, v, criteria, actor).await?;
            sqlx::query("UPDATE map_programmes SET scoresheet_version = $1 WHERE id = $2")
                .bind(v)
                .bind(programme)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            v
        } else {
            sqlx::query(
                "UPDATE map_scoresheets SET criteria = $1, created_by = $2, created_at = $3 \
                 WHERE programme = $4 AND version = $5",
            )
            .bind(to_json(&criteria))
            .bind(actor)
            .bind(Time::now().0)
            .bind(programme)
            .bind(current)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            current
        };
        tx.commit().await.map_err(db)?;
        Ok(version)
    }

    /// The criteria of one scoresheet version.
    pub(crate) async fn scoresheet(
        &self,
        programme: i64,
        version: i64,
    ) -> GovResult<Vec<Criterion>> {
        let mut c = self.conn().await?;
        load_scoresheet(&mut c, programme, version).await
    }

    // ---- applications --------------------------------------------------------------

    /// Store a new draft with its pre-fill evidence and first history entry.
    pub(crate) async fn create_application(
        &self,
        draft: &Draft<'_>,
        evidence: &[(&str, &Read, bool)],
        actor: &str,
    ) -> GovResult<Application> {
        let now = Time::now().0;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(&self.returning_id(
            "INSERT INTO map_applications (programme, status, title, requested, granted, \
             registration_number, applicant_code, applicant, scoresheet_version, score, \
             created_at, updated_at) VALUES ($1, 'draft', $2, $3, NULL, $4, $5, $6, NULL, NULL, $7, $7)",
        ))
        .bind(draft.programme)
        .bind(draft.title)
        .bind(draft.requested)
        .bind(&draft.applicant.registration_number)
        .bind(draft.applicant_code)
        .bind(to_json(draft.applicant))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        for (step, read, passed) in evidence {
            insert_evidence(&mut tx, id, step, read, *passed).await?;
        }
        let app = load_application(&mut tx, id).await?;
        insert_history(
            &mut tx,
            id,
            None,
            Status::Draft,
            "create",
            actor,
            None,
            now,
            &app,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(app)
    }

    /// The stored core of an application.
    pub(crate) async fn app_row(&self, id: i64) -> GovResult<Option<AppRow>> {
        let row = sqlx::query("SELECT * FROM map_applications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(app_row).transpose()
    }

    /// An application with all its lists.
    pub(crate) async fn application(&self, id: i64) -> GovResult<Application> {
        let mut c = self.conn().await?;
        load_application(&mut c, id).await
    }

    /// The application as it was after the last transition at or before `at`.
    pub(crate) async fn application_as_of(
        &self,
        id: i64,
        at: Time,
    ) -> GovResult<Option<Application>> {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM map_history WHERE application = $1 AND at <= $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .bind(at.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        state.map(|s| from_json(&s, "history state")).transpose()
    }

    /// A page of applications, newest first.
    pub(crate) async fn applications(&self, f: &AppFilter) -> GovResult<Vec<ApplicationSummary>> {
        let mut sql = String::from(
            "SELECT a.id, a.programme, a.status, a.title, a.requested, a.granted, a.score, \
             a.registration_number, a.applicant, a.updated_at FROM map_applications a",
        );
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut push = |cond: &str, a: Arg, args: &mut Vec<Arg>| {
            args.push(a);
            conds.push(cond.replace('?', &format!("${}", args.len())));
        };
        if let Some(o) = &f.organisation {
            push(
                "a.programme IN (SELECT id FROM map_programmes WHERE organisation = ?)",
                Arg::S(o.clone()),
                &mut args,
            );
        }
        if let Some(p) = f.programme {
            push("a.programme = ?", Arg::I(p), &mut args);
        }
        if let Some(s) = f.status {
            push("a.status = ?", Arg::S(s.as_str().into()), &mut args);
        }
        if let Some(c) = &f.applicant_code {
            push("a.applicant_code = ?", Arg::S(c.clone()), &mut args);
        }
        if let Some(e) = &f.evaluator {
            push(
                "a.id IN (SELECT application FROM map_assignments WHERE evaluator = ?)",
                Arg::S(e.clone()),
                &mut args,
            );
        }
        if let Some(b) = f.before {
            push("a.id < ?", Arg::I(b), &mut args);
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY a.id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let mut q = sqlx::query(&sql);
        for a in &args {
            q = match a {
                Arg::I(v) => q.bind(*v),
                Arg::S(v) => q.bind(v.as_str()),
            };
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status").map_err(db)?;
                let applicant: Applicant = from_json(
                    &r.try_get::<String, _>("applicant").map_err(db)?,
                    "applicant",
                )?;
                Ok(ApplicationSummary {
                    id: r.try_get("id").map_err(db)?,
                    programme: r.try_get("programme").map_err(db)?,
                    status: Status::parse(&status)
                        .ok_or_else(|| corrupt(format!("status `{status}`")))?,
                    title: r.try_get("title").map_err(db)?,
                    requested_amount: eur(r.try_get("requested").map_err(db)?),
                    granted_amount: r.try_get::<Option<i64>, _>("granted").map_err(db)?.map(eur),
                    score: r.try_get("score").map_err(db)?,
                    registration_number: r.try_get("registration_number").map_err(db)?,
                    applicant_name: applicant.name,
                    updated_at: time(r.try_get("updated_at").map_err(db)?),
                })
            })
            .collect()
    }

    /// Edit a draft or a returned application.
    pub(crate) async fn edit(
        &self,
        id: i64,
        title: Option<&str>,
        requested: Option<i64>,
    ) -> GovResult<bool> {
        let r = sqlx::query(
            "UPDATE map_applications SET title = COALESCE($1, title), \
             requested = COALESCE($2, requested), updated_at = $3 \
             WHERE id = $4 AND status IN ('draft', 'returned')",
        )
        .bind(title)
        .bind(requested)
        .bind(Time::now().0)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    /// Begin a transition of application `id` from one of `from` to `to`; 409 when the
    /// application is no longer in one of `from` (someone else acted first).
    pub(crate) async fn begin(
        &self,
        id: i64,
        from: &[Status],
        to: Status,
    ) -> GovResult<Transition> {
        let now = Time::now().0;
        let mut tx = self.pool.begin().await.map_err(db)?;
        // A write first: on SQLite it takes the write lock at once, so that the read below
        // cannot be of a snapshot another writer has moved past; on PostgreSQL it locks the
        // row.
        let r = sqlx::query("UPDATE map_applications SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(GovError::NotFound(format!("application {id}")));
        }
        let current: String =
            sqlx::query_scalar("SELECT status FROM map_applications WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let from_now = Status::parse(&current).ok_or_else(|| corrupt("status"))?;
        if !from.contains(&from_now) {
            return Err(GovError::Conflict(format!(
                "application {id} is {current}; this action needs it {}",
                from.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        sqlx::query("UPDATE map_applications SET status = $1 WHERE id = $2")
            .bind(to.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Ok(Transition {
            tx,
            app: id,
            from: from_now,
            to,
            now,
        })
    }

    // ---- access log, inbox, aid ------------------------------------------------------

    /// The evaluator's assignment to the application: `None` when not assigned, else whether
    /// they declared on conflicts.
    pub(crate) async fn assignment(&self, app: i64, evaluator: &str) -> GovResult<Option<bool>> {
        assignment_of(&mut *self.conn().await?, app, evaluator).await
    }

    /// Note that someone opened an application.
    pub(crate) async fn note_opened(
        &self,
        app: i64,
        role: &str,
        organisation: Option<&str>,
        login: Option<&str>,
        what: &str,
    ) -> GovResult<()> {
        sqlx::query(
            "INSERT INTO map_access_log (application, at, role, organisation, login, what) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(app)
        .bind(Time::now().0)
        .bind(role)
        .bind(organisation)
        .bind(login)
        .bind(what)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Who opened the application, and the register reads made for it, oldest first.
    pub(crate) async fn access_log(
        &self,
        app: i64,
        organisation: &str,
    ) -> GovResult<Vec<AccessEntry>> {
        let mut out = Vec::new();
        let rows = sqlx::query(
            "SELECT at, role, organisation, what FROM map_access_log WHERE application = $1 ORDER BY id",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        for r in &rows {
            out.push((
                r.try_get::<i64, _>("at").map_err(db)?,
                AccessEntry {
                    at: String::new(),
                    role: r.try_get("role").map_err(db)?,
                    organisation: r.try_get("organisation").map_err(db)?,
                    what: r.try_get("what").map_err(db)?,
                },
            ));
        }
        let rows = sqlx::query(
            "SELECT step, dataset, version, read_at FROM map_evidence WHERE application = $1 ORDER BY id",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        for r in &rows {
            let step: String = r.try_get("step").map_err(db)?;
            let dataset: String = r.try_get("dataset").map_err(db)?;
            let version: i64 = r.try_get("version").map_err(db)?;
            out.push((
                r.try_get::<i64, _>("read_at").map_err(db)?,
                AccessEntry {
                    at: String::new(),
                    role: "map-system".into(),
                    organisation: Some(organisation.to_owned()),
                    what: format!("read {dataset} (version {version}) for the {step} check"),
                },
            ));
        }
        out.sort_by_key(|(t, _)| *t);
        Ok(out
            .into_iter()
            .map(|(t, mut e)| {
                e.at = time(t);
                e
            })
            .collect())
    }

    /// Put a message in an inbox (`user:LOGIN` or `subject:CODE`).
    pub(crate) async fn notify(
        &self,
        recipient: &str,
        app: Option<i64>,
        text: &str,
    ) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO map_inbox (recipient, application, text, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(recipient)
        .bind(app)
        .bind(text)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        // Persons (not organisations' shared inboxes) get it by e-mail too, when they gave
        // an address.
        if crate::outbox::is_person(recipient) {
            let subject = match app {
                Some(a) => format!("MAP: application {a}"),
                None => "MAP".to_owned(),
            };
            crate::outbox::enqueue(&mut tx, recipient, &subject, text).await?;
        }
        tx.commit().await.map_err(db)
    }

    /// The newest messages of an inbox.
    pub(crate) async fn inbox(&self, recipient: &str, limit: i64) -> GovResult<Vec<InboxMessage>> {
        let rows = sqlx::query(
            "SELECT id, application, text, at FROM map_inbox WHERE recipient = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(recipient)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(InboxMessage {
                    id: r.try_get("id").map_err(db)?,
                    application: r.try_get("application").map_err(db)?,
                    text: r.try_get("text").map_err(db)?,
                    at: time(r.try_get("at").map_err(db)?),
                })
            })
            .collect()
    }

    /// The history of an application, oldest first.
    pub(crate) async fn history(&self, app: i64) -> GovResult<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT from_status, to_status, action, actor, reason, at FROM map_history \
             WHERE application = $1 ORDER BY id",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let from: Option<String> = r.try_get("from_status").map_err(db)?;
                let to: String = r.try_get("to_status").map_err(db)?;
                Ok(HistoryEntry {
                    from: from.as_deref().and_then(Status::parse),
                    to: Status::parse(&to).ok_or_else(|| corrupt("history status"))?,
                    action: r.try_get("action").map_err(db)?,
                    by: r.try_get("actor").map_err(db)?,
                    reason: r.try_get("reason").map_err(db)?,
                    at: time(r.try_get("at").map_err(db)?),
                })
            })
            .collect()
    }
}

enum Arg {
    I(i64),
    S(String),
}

fn staff_row(r: &AnyRow) -> GovResult<StaffRole> {
    let role: String = r.try_get("role").map_err(db)?;
    Ok(StaffRole {
        login: r.try_get("login").map_err(db)?,
        role: MapRole::parse(&role).ok_or_else(|| corrupt(format!("MAP role `{role}`")))?,
        organisation: r.try_get("organisation").map_err(db)?,
        personal_code: r.try_get("personal_code").map_err(db)?,
    })
}

pub(super) async fn insert_scoresheet(
    tx: &mut Transaction<'static, Any>,
    programme: i64,
    version: i64,
    criteria: &[Criterion],
    actor: &str,
) -> GovResult<()> {
    sqlx::query(
        "INSERT INTO map_scoresheets (programme, version, criteria, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(programme)
    .bind(version)
    .bind(to_json(&criteria))
    .bind(actor)
    .bind(Time::now().0)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// The evaluator's assignment to the application, read on `c`: `None` when not assigned,
/// else whether they declared on conflicts.
async fn assignment_of(
    c: &mut AnyConnection,
    app: i64,
    evaluator: &str,
) -> GovResult<Option<bool>> {
    let row: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT declared_at FROM map_assignments WHERE application = $1 AND evaluator = $2",
    )
    .bind(app)
    .bind(evaluator)
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    Ok(row.map(|d| d.is_some()))
}

async fn load_scoresheet(
    c: &mut AnyConnection,
    programme: i64,
    version: i64,
) -> GovResult<Vec<Criterion>> {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT criteria FROM map_scoresheets WHERE programme = $1 AND version = $2",
    )
    .bind(programme)
    .bind(version)
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    match text {
        Some(t) => from_json(&t, "criteria"),
        None => Err(corrupt(format!(
            "programme {programme} has no scoresheet {version}"
        ))),
    }
}

async fn load_programme(c: &mut AnyConnection, id: i64) -> GovResult<Option<ProgrammeRow>> {
    let row = sqlx::query("SELECT * FROM map_programmes WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let version: i64 = row.try_get("scoresheet_version").map_err(db)?;
    let criteria = load_scoresheet(c, id, version).await?;
    programme_row(&row, criteria).map(Some)
}

async fn insert_evidence(
    tx: &mut Transaction<'static, Any>,
    app: i64,
    step: &str,
    read: &Read,
    passed: bool,
) -> GovResult<()> {
    sqlx::query(
        "INSERT INTO map_evidence (application, step, dataset, version, read_at, access_records, \
         record_values, passed, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
    )
    .bind(app)
    .bind(step)
    .bind(&read.dataset)
    .bind(read.version)
    .bind(read.read_at.0)
    .bind(to_json(&read.access_records))
    .bind(to_json(&read.rows))
    .bind(i64::from(passed))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_history(
    tx: &mut Transaction<'static, Any>,
    app: i64,
    from: Option<Status>,
    to: Status,
    action: &str,
    actor: &str,
    reason: Option<&str>,
    at: i64,
    state: &Application,
) -> GovResult<()> {
    sqlx::query(
        "INSERT INTO map_history (application, from_status, to_status, action, actor, reason, at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(app)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(action)
    .bind(actor)
    .bind(reason)
    .bind(at)
    .bind(to_json(state))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// The application with its lists, read on `c` (a transaction's connection sees its own
/// writes).
pub(super) async fn load_application(c: &mut AnyConnection, id: i64) -> GovResult<Application> {
    let row = sqlx::query("SELECT * FROM map_applications WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?
        .ok_or_else(|| GovError::NotFound(format!("application {id}")))?;
    let a = app_row(&row)?;
    let evidence = sqlx::query(
        "SELECT step, dataset, version, read_at, access_records, record_values, passed \
         FROM map_evidence WHERE application = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok(Evidence {
            step: r.try_get("step").map_err(db)?,
            dataset: r.try_get("dataset").map_err(db)?,
            version: r.try_get("version").map_err(db)?,
            read_at: time(r.try_get("read_at").map_err(db)?),
            access_record: from_json(
                &r.try_get::<String, _>("access_records").map_err(db)?,
                "access_records",
            )?,
            passed: r.try_get::<i64, _>("passed").map_err(db)? != 0,
            values: from_json(
                &r.try_get::<String, _>("record_values").map_err(db)?,
                "values",
            )?,
        })
    })
    .collect::<GovResult<Vec<_>>>()?;
    let evaluators: Vec<String> = sqlx::query_scalar(
        "SELECT evaluator FROM map_assignments WHERE application = $1 ORDER BY evaluator",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let scores = sqlx::query(
        "SELECT evaluator, points, justification, at FROM map_scores WHERE application = $1 ORDER BY evaluator",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok(Score {
            evaluator: r.try_get("evaluator").map_err(db)?,
            points: from_json::<BTreeMap<String, f64>>(
                &r.try_get::<String, _>("points").map_err(db)?,
                "points",
            )?,
            justification: r.try_get("justification").map_err(db)?,
            at: time(r.try_get("at").map_err(db)?),
        })
    })
    .collect::<GovResult<Vec<_>>>()?;
    let payments = sqlx::query(
        "SELECT id, amount, status FROM map_payments WHERE application = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut pays = Vec::with_capacity(payments.len());
    for r in &payments {
        let pid: i64 = r.try_get("id").map_err(db)?;
        let approvals: Vec<String> = sqlx::query_scalar(
            "SELECT login FROM map_payment_approvals WHERE payment = $1 ORDER BY level",
        )
        .bind(pid)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        pays.push(Payment {
            id: pid,
            amount: eur(r.try_get("amount").map_err(db)?),
            status: r.try_get("status").map_err(db)?,
            approvals,
        });
    }
    let reports = sqlx::query(
        "SELECT id, kind, status, eligible_costs FROM map_reports WHERE application = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok(Report {
            id: r.try_get("id").map_err(db)?,
            kind: r.try_get("kind").map_err(db)?,
            status: r.try_get("status").map_err(db)?,
            eligible_costs: eur(r.try_get("eligible_costs").map_err(db)?),
        })
    })
    .collect::<GovResult<Vec<_>>>()?;
    let documents = sqlx::query(
        "SELECT number, direction, kind, at FROM map_documents WHERE application = $1 ORDER BY at, number",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .iter()
    .map(|r| {
        Ok(Document {
            number: r.try_get("number").map_err(db)?,
            date: Time(r.try_get("at").map_err(db)?)
                .to_datetime()
                .format("%Y-%m-%d")
                .to_string(),
            direction: r.try_get("direction").map_err(db)?,
            kind: r.try_get("kind").map_err(db)?,
        })
    })
    .collect::<GovResult<Vec<_>>>()?;
    Ok(Application {
        id: a.id,
        programme: a.programme,
        status: a.status,
        title: a.title,
        requested_amount: eur(a.requested),
        granted_amount: a.granted.map(eur),
        score: a.score,
        applicant: a.applicant,
        scoresheet_version: a.scoresheet_version,
        evaluators,
        evidence,
        scores,
        payments: pays,
        reports,
        documents,
        created_at: time(a.created_at),
        updated_at: time(a.updated_at),
    })
}

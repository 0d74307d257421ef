//! Bulk seeding for the demo (`dagr serve` with the embedded demo): programmes and a
//! history of applications in one transaction each. The demo seeder decides what to seed;
//! this module only writes it, with the same rows and history entries as real use (action
//! `seed`), so that lists, filters and replays work on seeded applications as on any.

use sqlx::Row;

use crate::governance::GovResult;
use crate::model::Time;

use super::model::*;
use super::store::{MapStore, ProgrammeRow, db, insert_history, to_json};

/// One seeded application.
#[derive(Debug, Clone)]
pub struct SeedApplication {
    /// The company, as the seeder copied it from the register.
    pub applicant: Applicant,
    /// The person who filed it (represents the company).
    pub applicant_code: String,
    /// Title.
    pub title: String,
    /// Requested, in cents.
    pub requested: i64,
    /// Where it stands.
    pub status: Status,
    /// Granted, in cents (approved, contracted, closed).
    pub granted: Option<i64>,
    /// Final score (evaluated and later).
    pub score: Option<f64>,
    /// When it was filed.
    pub created_at: Time,
}

impl MapStore {
    /// The id of the organisation's programme titled `title`, if any.
    pub async fn programme_titled(
        &self,
        organisation: &str,
        title: &str,
    ) -> GovResult<Option<i64>> {
        let row =
            sqlx::query("SELECT id FROM map_programmes WHERE organisation = $1 AND title = $2")
                .bind(organisation)
                .bind(title)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.map(|r| r.try_get("id").map_err(db)).transpose()
    }

    /// Store a programme for the demo (its predicates are the seeder's, known to be valid).
    pub async fn seed_programme(
        &self,
        organisation: &str,
        p: &NewProgramme,
        by: &str,
    ) -> GovResult<i64> {
        let eligibility = match &p.eligibility {
            EligibilityInput::One(s) => vec![Condition {
                name: "eligibility".into(),
                predicate: s.clone(),
            }],
            EligibilityInput::Many(v) => v.clone(),
        };
        let row = ProgrammeRow {
            id: 0,
            organisation: organisation.to_owned(),
            title: p.title.clone(),
            budget: cents("budget", p.budget)?,
            max_grant: cents("max_grant", p.max_grant)?,
            co_financing_bp: (p.co_financing_rate.unwrap_or(1.0) * 10_000.0).round() as i64,
            opens_at: Time::parse(&p.opens_at).map_or(0, |t| t.0),
            closes_at: Time::parse_end(&p.closes_at).map_or(0, |t| t.0),
            aid_regime: p.aid_regime.clone(),
            eligibility,
            cost_categories: p.cost_categories.clone(),
            approval_levels: p.approval_levels.clone().unwrap_or_else(|| {
                vec![
                    ApprovalLevel {
                        role: MapRole::ProgrammeManager,
                        from_amount: 0.0,
                    },
                    ApprovalLevel {
                        role: MapRole::Accountant,
                        from_amount: 0.0,
                    },
                ]
            }),
            report_schedule: p.report_schedule.clone(),
            evaluators_per_application: i64::from(p.evaluators_per_application),
            scoresheet_version: 1,
            criteria: p.criteria.clone(),
            committed: 0,
            paid: 0,
            recovered: 0,
            created_by: by.to_owned(),
            created_at: Time::now().0,
        };
        self.create_programme(&row).await
    }

    /// Store seeded applications of `programme` in one transaction, each with its history
    /// entry; granted amounts are committed in the programme (closed ones also paid).
    pub async fn seed_applications(
        &self,
        programme: i64,
        apps: &[SeedApplication],
    ) -> GovResult<usize> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut committed = 0i64;
        let mut paid = 0i64;
        for a in apps {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO map_applications (programme, status, title, requested, granted, \
                 registration_number, applicant_code, applicant, scoresheet_version, score, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
            )
            .bind(programme)
            .bind(a.status.as_str())
            .bind(&a.title)
            .bind(a.requested)
            .bind(a.granted)
            .bind(&a.applicant.registration_number)
            .bind(&a.applicant_code)
            .bind(to_json(&a.applicant))
            .bind(a.score.map(|_| 1i64))
            .bind(a.score)
            .bind(a.created_at.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(g) = a.granted {
                let mut entries = vec![];
                match a.status {
                    Status::Approved | Status::Contracted => {
                        committed += g;
                        entries.push("commitment");
                    }
                    Status::Closed => {
                        committed += g;
                        paid += g;
                        entries.extend(["commitment", "payment"]);
                    }
                    _ => {}
                }
                for kind in entries {
                    sqlx::query(
                        "INSERT INTO map_ledger (programme, application, kind, amount, at, reference) \
                         VALUES ($1, $2, $3, $4, $5, 'seed')",
                    )
                    .bind(programme)
                    .bind(id)
                    .bind(kind)
                    .bind(g)
                    .bind(a.created_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
            }
            // What `load_application` would read back: a seeded application has no lists.
            let at = a.created_at.to_rfc3339();
            let state = Application {
                id,
                programme,
                status: a.status,
                title: a.title.clone(),
                requested_amount: eur(a.requested),
                granted_amount: a.granted.map(eur),
                score: a.score,
                applicant: a.applicant.clone(),
                scoresheet_version: a.score.map(|_| 1),
                evaluators: vec![],
                evidence: vec![],
                scores: vec![],
                payments: vec![],
                reports: vec![],
                documents: vec![],
                created_at: at.clone(),
                updated_at: at,
            };
            insert_history(
                &mut tx,
                id,
                None,
                a.status,
                "seed",
                "demo seeding",
                None,
                a.created_at.0,
                &state,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE map_programmes SET committed = committed + $1, paid = paid + $2 WHERE id = $3",
        )
        .bind(committed)
        .bind(paid)
        .bind(programme)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(apps.len())
    }

    /// How many applications a programme has.
    pub async fn application_count(&self, programme: i64) -> GovResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM map_applications WHERE programme = $1")
            .bind(programme)
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }
}

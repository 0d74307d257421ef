//! The writes a [`Transition`] makes inside its transaction: evidence, documents,
//! assignments and scores, budget and aid, payments, reports and costs, and its end.

use super::*;

impl Transition {
    /// An accounting entry of this application, in this transaction.
    pub(crate) async fn ledger(
        &mut self,
        programme: i64,
        kind: &str,
        amount: i64,
        reference: Option<&str>,
    ) -> GovResult<()> {
        if amount == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO map_ledger (programme, application, kind, amount, at, reference) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(programme)
        .bind(self.app)
        .bind(kind)
        .bind(amount)
        .bind(self.now)
        .bind(reference)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The status the application was in.
    pub(crate) fn from(&self) -> Status {
        self.from
    }

    /// Change the status this transition ends in (decided inside it, e.g. by the last
    /// score).
    pub(crate) async fn set_status(&mut self, to: Status) -> GovResult<()> {
        sqlx::query("UPDATE map_applications SET status = $1 WHERE id = $2")
            .bind(to.as_str())
            .bind(self.app)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.to = to;
        Ok(())
    }

    /// Keep a register read as evidence.
    pub(crate) async fn evidence(
        &mut self,
        step: &str,
        read: &Read,
        passed: bool,
    ) -> GovResult<()> {
        insert_evidence(&mut self.tx, self.app, step, read, passed).await
    }

    /// Register a document: the next number of the year, gapless (the counter row is
    /// updated in this transaction, so a rolled-back transition leaves no hole).
    pub(crate) async fn document(&mut self, direction: &str, kind: &str) -> GovResult<String> {
        let year = chrono::Datelike::year(&Time(self.now).to_datetime());
        let name = format!("documents-{year}");
        let r = sqlx::query("UPDATE map_counters SET value = value + 1 WHERE name = $1")
            .bind(&name)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            sqlx::query("INSERT INTO map_counters (name, value) VALUES ($1, 1)")
                .bind(&name)
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
        }
        let n: i64 = sqlx::query_scalar("SELECT value FROM map_counters WHERE name = $1")
            .bind(&name)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db)?;
        let format = crate::map::settings::load(&mut self.tx)
            .await?
            .document_number_format;
        let number = crate::map::settings::document_number(&format, year, n);
        sqlx::query(
            "INSERT INTO map_documents (number, application, direction, kind, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&number)
        .bind(self.app)
        .bind(direction)
        .bind(kind)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(number)
    }

    /// Set the scoresheet version of the application (at its first assignment).
    pub(crate) async fn set_scoresheet(&mut self, version: i64) -> GovResult<()> {
        sqlx::query(
            "UPDATE map_applications SET scoresheet_version = COALESCE(scoresheet_version, $1) WHERE id = $2",
        )
        .bind(version)
        .bind(self.app)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Assign an evaluator; 409 when already assigned.
    pub(crate) async fn assign(&mut self, evaluator: &str, by: &str) -> GovResult<i64> {
        sqlx::query(
            "INSERT INTO map_assignments (application, evaluator, assigned_by, assigned_at, declared_at) \
             VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(self.app)
        .bind(evaluator)
        .bind(by)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| unique_or_db(e, || format!(
                "{evaluator} is already assigned to application {}",
                self.app
            )))?;
        sqlx::query_scalar("SELECT COUNT(*) FROM map_assignments WHERE application = $1")
            .bind(self.app)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db)
    }

    /// The evaluator's assignment: `None` when not assigned, else whether they declared.
    pub(crate) async fn assignment(&mut self, evaluator: &str) -> GovResult<Option<bool>> {
        assignment_of(&mut self.tx, self.app, evaluator).await
    }

    /// Record the evaluator's declaration of no conflict.
    pub(crate) async fn declare(&mut self, evaluator: &str) -> GovResult<()> {
        sqlx::query(
            "UPDATE map_assignments SET declared_at = $1 WHERE application = $2 AND evaluator = $3",
        )
        .bind(self.now)
        .bind(self.app)
        .bind(evaluator)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Remove an assignment (the evaluator declared a conflict).
    pub(crate) async fn unassign(&mut self, evaluator: &str) -> GovResult<()> {
        sqlx::query("DELETE FROM map_assignments WHERE application = $1 AND evaluator = $2")
            .bind(self.app)
            .bind(evaluator)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Store a score (once per evaluator); returns every score of the application.
    pub(crate) async fn score(
        &mut self,
        evaluator: &str,
        points: &BTreeMap<String, f64>,
        justification: &str,
    ) -> GovResult<Vec<BTreeMap<String, f64>>> {
        sqlx::query(
            "INSERT INTO map_scores (application, evaluator, points, justification, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.app)
        .bind(evaluator)
        .bind(to_json(points))
        .bind(justification)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| unique_or_db(e, || format!(
                "{evaluator} already scored application {}",
                self.app
            )))?;
        let texts: Vec<String> =
            sqlx::query_scalar("SELECT points FROM map_scores WHERE application = $1")
                .bind(self.app)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db)?;
        texts.iter().map(|t| from_json(t, "points")).collect()
    }

    /// Set the final score.
    pub(crate) async fn set_score(&mut self, score: f64) -> GovResult<()> {
        sqlx::query("UPDATE map_applications SET score = $1 WHERE id = $2")
            .bind(score)
            .bind(self.app)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Commit `amount` of the programme's budget; 409 naming the figures when it does not
    /// fit. Atomic: the condition is in the update.
    pub(crate) async fn commit_budget(
        &mut self,
        programme: &ProgrammeRow,
        amount: i64,
    ) -> GovResult<()> {
        let r = sqlx::query(
            "UPDATE map_programmes SET committed = committed + $1 WHERE id = $2 AND committed + $1 <= budget",
        )
        .bind(amount)
        .bind(programme.id)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        if r.rows_affected() == 0 {
            let committed: i64 =
                sqlx::query_scalar("SELECT committed FROM map_programmes WHERE id = $1")
                    .bind(programme.id)
                    .fetch_one(&mut *self.tx)
                    .await
                    .map_err(db)?;
            return Err(GovError::Conflict(format!(
                "budget exceeded: programme {} has EUR {:.2} of EUR {:.2} committed; EUR {:.2} more does not fit",
                programme.id,
                eur(committed),
                eur(programme.budget),
                eur(amount)
            )));
        }
        self.ledger(programme.id, "commitment", amount, None).await
    }

    /// Release `amount` of committed budget (termination, closure, withdrawal).
    pub(crate) async fn release_budget(&mut self, programme: i64, amount: i64) -> GovResult<()> {
        sqlx::query("UPDATE map_programmes SET committed = committed - $1 WHERE id = $2")
            .bind(amount)
            .bind(programme)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.ledger(programme, "release", amount, None).await?;
        Ok(())
    }

    /// Set the aid this application granted to `amount` (closure: what was paid;
    /// termination: what was kept; withdrawal: nothing).
    pub(crate) async fn settle_aid(&mut self, amount: i64) -> GovResult<()> {
        sqlx::query("UPDATE map_aid SET amount = $1 WHERE application = $2 AND source = 'map'")
            .bind(amount)
            .bind(self.app)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Set the granted amount.
    pub(crate) async fn set_granted(&mut self, amount: i64) -> GovResult<()> {
        sqlx::query("UPDATE map_applications SET granted = $1 WHERE id = $2")
            .bind(amount)
            .bind(self.app)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Add a payment request; refused (409) when the payments would pass the granted
    /// amount.
    pub(crate) async fn request_payment(
        &mut self,
        amount: i64,
        granted: i64,
        by: &str,
    ) -> GovResult<i64> {
        let asked: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(amount) AS BIGINT) FROM map_payments WHERE application = $1",
        )
        .bind(self.app)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db)?;
        let asked = asked.unwrap_or(0);
        if asked + amount > granted {
            return Err(GovError::Conflict(format!(
                "contract amount exceeded: EUR {:.2} of EUR {:.2} is already requested; EUR {:.2} more does not fit",
                eur(asked),
                eur(granted),
                eur(amount)
            )));
        }
        sqlx::query_scalar(
            "INSERT INTO map_payments (application, amount, status, level, requested_by, created_at, paid_at) \
             VALUES ($1, $2, 'submitted', 0, $3, $4, NULL) RETURNING id",
        )
        .bind(self.app)
        .bind(amount)
        .bind(by)
        .bind(self.now)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db)
    }

    /// A payment of this application: (amount, status, levels approved).
    pub(crate) async fn payment(&mut self, id: i64) -> GovResult<(i64, String, i64)> {
        let row = sqlx::query(
            "SELECT amount, status, level FROM map_payments WHERE id = $1 AND application = $2",
        )
        .bind(id)
        .bind(self.app)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?
        .ok_or_else(|| GovError::NotFound(format!("payment {id} of application {}", self.app)))?;
        Ok((
            row.try_get("amount").map_err(db)?,
            row.try_get("status").map_err(db)?,
            row.try_get("level").map_err(db)?,
        ))
    }

    /// Approve the next level of a payment; 409 when this person approved another level.
    pub(crate) async fn approve_payment(
        &mut self,
        id: i64,
        level: i64,
        login: &str,
        last: bool,
    ) -> GovResult<()> {
        sqlx::query("INSERT INTO map_payment_approvals (payment, level, login, at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(level)
            .bind(login)
            .bind(self.now)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| unique_or_db(e, || format!(
                    "{login} already approved payment {id} at another level; each level is a different person"
                )))?;
        let status = if last { "approved" } else { "in_approval" };
        let r = sqlx::query(
            "UPDATE map_payments SET level = $1, status = $2 WHERE id = $3 AND level = $4",
        )
        .bind(level)
        .bind(status)
        .bind(id)
        .bind(level - 1)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "payment {id} changed meanwhile; try again"
            )));
        }
        Ok(())
    }

    /// Mark a payment paid and count it in the programme.
    pub(crate) async fn pay(&mut self, id: i64, amount: i64, programme: i64) -> GovResult<()> {
        let r = sqlx::query("UPDATE map_payments SET status = 'paid', paid_at = $1 WHERE id = $2 AND status = 'approved'")
            .bind(self.now)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "payment {id} is not approved (or already paid)"
            )));
        }
        sqlx::query("UPDATE map_programmes SET paid = paid + $1 WHERE id = $2")
            .bind(amount)
            .bind(programme)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.ledger(programme, "payment", amount, Some(&format!("payment {id}")))
            .await
    }

    /// What was paid on this application, in cents.
    pub(crate) async fn paid(&mut self) -> GovResult<i64> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(amount) AS BIGINT) FROM map_payments WHERE application = $1 AND status = 'paid'",
        )
        .bind(self.app)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(v.unwrap_or(0))
    }

    /// Payments requested and not paid: refused from now on (closure, termination).
    pub(crate) async fn cancel_open_payments(&mut self) -> GovResult<()> {
        sqlx::query(
            "UPDATE map_payments SET status = 'cancelled' WHERE application = $1 AND status <> 'paid'",
        )
        .bind(self.app)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Count recovered money in the programme.
    pub(crate) async fn recover(&mut self, programme: i64, amount: i64) -> GovResult<()> {
        sqlx::query("UPDATE map_programmes SET recovered = recovered + $1 WHERE id = $2")
            .bind(amount)
            .bind(programme)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.ledger(programme, "recovery", amount, None).await
    }

    /// File a report with its costs; an invoice already claimed (in any project) is a 409
    /// naming where.
    pub(crate) async fn report(
        &mut self,
        kind: &str,
        eligible_costs: i64,
        text: &str,
        costs: &[(String, String, i64)],
    ) -> GovResult<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO map_reports (application, kind, status, eligible_costs, text, created_at) \
             VALUES ($1, $2, 'submitted', $3, $4, $5) RETURNING id",
        )
        .bind(self.app)
        .bind(kind)
        .bind(eligible_costs)
        .bind(text)
        .bind(self.now)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db)?;
        for (supplier, invoice, amount) in costs {
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT application FROM map_costs WHERE supplier = $1 AND invoice = $2",
            )
            .bind(supplier)
            .bind(invoice)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db)?;
            if let Some(other) = taken {
                return Err(GovError::Conflict(format!(
                    "double funding: invoice {invoice} of {supplier} is already claimed in application {other}"
                )));
            }
            sqlx::query(
                "INSERT INTO map_costs (supplier, invoice, application, report, amount) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(supplier)
            .bind(invoice)
            .bind(self.app)
            .bind(id)
            .bind(amount)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| unique_or_db(e, || format!(
                    "double funding: invoice {invoice} of {supplier} is being claimed in another project"
                )))?;
        }
        Ok(id)
    }

    /// Approve a report; returns its kind.
    pub(crate) async fn approve_report(&mut self, report: i64) -> GovResult<String> {
        let kind: Option<String> = sqlx::query_scalar(
            "SELECT kind FROM map_reports WHERE id = $1 AND application = $2 AND status = 'submitted'",
        )
        .bind(report)
        .bind(self.app)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        let kind = kind.ok_or_else(|| {
            GovError::Conflict(format!(
                "report {report} of application {} is not waiting for approval",
                self.app
            ))
        })?;
        sqlx::query("UPDATE map_reports SET status = 'approved' WHERE id = $1")
            .bind(report)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(kind)
    }

    /// Whether an approved final report exists.
    pub(crate) async fn final_report_approved(&mut self) -> GovResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM map_reports WHERE application = $1 AND kind = 'final' AND status = 'approved'",
        )
        .bind(self.app)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(n > 0)
    }

    /// Write the history entry (with the application as it now is) and commit; returns the
    /// application.
    pub(crate) async fn finish(
        mut self,
        action: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> GovResult<Application> {
        let app = load_application(&mut self.tx, self.app).await?;
        insert_history(
            &mut self.tx,
            self.app,
            Some(self.from),
            self.to,
            action,
            actor,
            reason,
            self.now,
            &app,
        )
        .await?;
        self.tx.commit().await.map_err(db)?;
        Ok(app)
    }
}

//! Datasets, access requests, agreements, schema change requests and history.

use super::*;

fn dataset_row(r: &AnyRow) -> StoreResult<DatasetMeta> {
    Ok(DatasetMeta {
        name: r.try_get("name")?,
        owner: r.try_get("owner")?,
        sla_days: r.try_get("sla_days")?,
        provider_systems: from_json(
            &r.try_get::<String, _>("provider_systems")?,
            "provider_systems",
        )?,
        created_at: time_col(r, "created_at")?,
    })
}

fn request_row(r: &AnyRow, now: Time) -> StoreResult<AccessRequest> {
    let status = enum_col(r, "status", RequestStatus::parse)?;
    let due_at = time_col(r, "due_at")?;
    Ok(AccessRequest {
        id: r.try_get("id")?,
        dataset: r.try_get("dataset")?,
        owner_organisation: r.try_get("owner_organisation")?,
        consumer_organisation: r.try_get("consumer_organisation")?,
        attributes: from_json(&r.try_get::<String, _>("attributes")?, "attributes")?,
        row_scope: r.try_get("row_scope")?,
        purpose: r.try_get("purpose")?,
        legal_basis: r.try_get("legal_basis")?,
        systems: from_json(&r.try_get::<String, _>("systems")?, "systems")?,
        valid_from: time_col(r, "valid_from")?,
        valid_to: time_col(r, "valid_to")?,
        status,
        created_at: time_col(r, "created_at")?,
        created_by: r.try_get("created_by")?,
        due_at,
        overdue: status == RequestStatus::Pending && due_at < now,
        decided_at: opt_time_col(r, "decided_at")?,
        decided_by: r.try_get("decided_by")?,
        reason: r.try_get("reason")?,
        agreement_id: r.try_get("agreement_id")?,
    })
}

fn agreement_row(r: &AnyRow, now: Time) -> StoreResult<Agreement> {
    let mut a = Agreement {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        dataset: r.try_get("dataset")?,
        owner_organisation: r.try_get("owner_organisation")?,
        consumer_organisation: r.try_get("consumer_organisation")?,
        attributes: from_json(&r.try_get::<String, _>("attributes")?, "attributes")?,
        row_scope: r.try_get("row_scope")?,
        purpose: r.try_get("purpose")?,
        legal_basis: r.try_get("legal_basis")?,
        systems: from_json(&r.try_get::<String, _>("systems")?, "systems")?,
        valid_from: time_col(r, "valid_from")?,
        valid_to: time_col(r, "valid_to")?,
        status: enum_col(r, "status", AgreementStatus::parse)?,
        created_at: time_col(r, "created_at")?,
        approved_by: r.try_get("approved_by")?,
        revoked_at: opt_time_col(r, "revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
        revoke_reason: r.try_get("revoke_reason")?,
    };
    a.status = a.status_at(now);
    Ok(a)
}

fn change_row(r: &AnyRow) -> StoreResult<ChangeRequest> {
    Ok(ChangeRequest {
        id: r.try_get("id")?,
        dataset: r.try_get("dataset")?,
        definition: from_json(&r.try_get::<String, _>("definition")?, "definition")?,
        changes: from_json(&r.try_get::<String, _>("changes")?, "changes")?,
        affected: from_json(&r.try_get::<String, _>("affected")?, "affected")?,
        status: enum_col(r, "status", ChangeStatus::parse)?,
        filed_by: r.try_get("filed_by")?,
        filed_at: time_col(r, "filed_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: opt_time_col(r, "decided_at")?,
        reason: r.try_get("reason")?,
        base: r
            .try_get::<Option<String>, _>("base_definition")?
            .map(|b| from_json(&b, "base_definition"))
            .transpose()?,
    })
}

fn history_row(r: &AnyRow) -> StoreResult<HistoryEntry> {
    let details: Option<String> = r.try_get("details")?;
    Ok(HistoryEntry {
        id: r.try_get("id")?,
        entity: r.try_get("entity")?,
        entity_id: r.try_get("entity_id")?,
        action: r.try_get("action")?,
        from_status: r.try_get("from_status")?,
        to_status: r.try_get("to_status")?,
        actor: r.try_get("actor")?,
        reason: r.try_get("reason")?,
        at: time_col(r, "at")?,
        details: details.map(|d| from_json(&d, "details")).transpose()?,
    })
}

impl MetaStore {
    // ---- datasets ------------------------------------------------------------------

    /// Register a dataset's governance metadata.
    pub async fn create_dataset(
        &self,
        name: &str,
        owner: &str,
        sla_days: i64,
        provider_systems: &[i64],
        actor: &str,
    ) -> StoreResult<DatasetMeta> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO datasets (name, owner, sla_days, provider_systems, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(owner)
        .bind(sla_days)
        .bind(to_json(&provider_systems))
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_conflict(e, || format!("dataset `{name}`")))?;
        Self::event(
            &mut tx,
            Event::new("dataset", name, "registered", actor)
                .details(serde_json::json!({ "owner": owner, "sla_days": sla_days })),
        )
        .await?;
        tx.commit().await?;
        Ok(DatasetMeta {
            name: name.to_owned(),
            owner: owner.to_owned(),
            sla_days,
            provider_systems: provider_systems.to_vec(),
            created_at: now,
        })
    }

    /// Take back a registration that the engine refused (nothing can refer to it yet).
    pub async fn delete_dataset(&self, name: &str, actor: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM datasets WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        Self::event(
            &mut tx,
            Event::new("dataset", name, "registration taken back", actor),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Change a dataset's SLA and provider systems.
    pub async fn update_dataset(
        &self,
        name: &str,
        sla_days: i64,
        provider_systems: &[i64],
        actor: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE datasets SET sla_days = $2, provider_systems = $3 WHERE name = $1")
            .bind(name)
            .bind(sla_days)
            .bind(to_json(&provider_systems))
            .execute(&mut *tx)
            .await?;
        Self::event(
            &mut tx,
            Event::new("dataset", name, "updated", actor).details(serde_json::json!({
                "sla_days": sla_days, "provider_systems": provider_systems
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One dataset's metadata.
    pub async fn dataset(&self, name: &str) -> StoreResult<Option<DatasetMeta>> {
        sqlx::query("SELECT * FROM datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(dataset_row)
            .transpose()
    }

    /// Every dataset's metadata.
    pub async fn datasets(&self) -> StoreResult<Vec<DatasetMeta>> {
        sqlx::query("SELECT * FROM datasets ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(dataset_row)
            .collect()
    }

    // ---- access requests -----------------------------------------------------------

    /// File a request.
    pub async fn create_request(&self, r: &NewRequest) -> StoreResult<AccessRequest> {
        let now = r.created_at;
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO access_requests (dataset, owner_organisation, consumer_organisation, \
             attributes, row_scope, purpose, legal_basis, systems, valid_from, valid_to, status, \
             created_at, created_by, due_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $13) \
             RETURNING id",
        )
        .bind(&r.dataset)
        .bind(&r.owner_organisation)
        .bind(&r.consumer_organisation)
        .bind(to_json(&r.attributes))
        .bind(r.row_scope.as_deref())
        .bind(&r.purpose)
        .bind(&r.legal_basis)
        .bind(to_json(&r.systems))
        .bind(r.valid_from.0)
        .bind(r.valid_to.0)
        .bind(now.0)
        .bind(&r.created_by)
        .bind(r.due_at.0)
        .fetch_one(&mut *tx)
        .await?;
        Self::event(
            &mut tx,
            Event::new("request", id, "filed", &r.created_by)
                .status(None, Some("pending"))
                .details(serde_json::json!({
                    "dataset": r.dataset, "attributes": r.attributes, "row_scope": r.row_scope,
                })),
        )
        .await?;
        tx.commit().await?;
        self.request(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("request {id} vanished")))
    }

    /// Pending requests, and how many of them are past their decision deadline.
    pub async fn request_counts(&self) -> StoreResult<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, \
             COALESCE(SUM(CASE WHEN due_at < $1 THEN 1 ELSE 0 END), 0) AS overdue \
             FROM access_requests WHERE status = 'pending'",
        )
        .bind(Time::now().0)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("pending")?, row.try_get("overdue")?))
    }

    /// One request.
    pub async fn request(&self, id: i64) -> StoreResult<Option<AccessRequest>> {
        let now = Time::now();
        sqlx::query("SELECT * FROM access_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|r| request_row(r, now))
            .transpose()
    }

    /// Requests, newest first.
    pub async fn requests(&self, f: &ListFilter, page: &Page) -> StoreResult<Vec<AccessRequest>> {
        let now = Time::now();
        let mut sql = Sql::new("SELECT * FROM access_requests WHERE 1 = 1");
        apply_filter(&mut sql, f);
        if let Some(t) = f.due_before {
            sql.and("status = 'pending' AND due_at < ?", Arg::I(t.0));
        }
        if f.by_due {
            due_page(&mut sql, page)?;
        } else {
            id_page(&mut sql, page, true)?;
        }
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| request_row(r, now))
            .collect()
    }

    /// Approve a pending request, making its agreement. `None` if it was not pending.
    pub async fn approve_request(
        &self,
        request: &AccessRequest,
        approval: &Approval,
        actor: &str,
    ) -> StoreResult<Option<Agreement>> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        let agreement_id: i64 = sqlx::query_scalar(
            "INSERT INTO agreements (request_id, dataset, owner_organisation, \
             consumer_organisation, attributes, row_scope, purpose, legal_basis, systems, \
             valid_from, valid_to, status, created_at, approved_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $13) \
             RETURNING id",
        )
        .bind(request.id)
        .bind(&request.dataset)
        .bind(&request.owner_organisation)
        .bind(&request.consumer_organisation)
        .bind(to_json(&approval.attributes))
        .bind(approval.row_scope.as_deref())
        .bind(&request.purpose)
        .bind(&request.legal_basis)
        .bind(to_json(&request.systems))
        .bind(approval.valid_from.0)
        .bind(approval.valid_to.0)
        .bind(now.0)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let n = sqlx::query(
            "UPDATE access_requests SET status = 'approved', decided_at = $2, decided_by = $3, \
             reason = $4, agreement_id = $5 WHERE id = $1 AND status = 'pending'",
        )
        .bind(request.id)
        .bind(now.0)
        .bind(actor)
        .bind(approval.note.as_deref())
        .bind(agreement_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None); // dropping the transaction rolls the agreement back
        }
        let narrowed = approval.attributes != request.attributes
            || approval.row_scope != request.row_scope
            || approval.valid_to != request.valid_to
            || approval.valid_from != request.valid_from;
        Self::event(
            &mut tx,
            Event::new("request", request.id, "approved", actor)
                .status(Some("pending"), Some("approved"))
                .reason(approval.note.as_deref())
                .details(serde_json::json!({
                    "agreement": agreement_id, "narrowed": narrowed,
                })),
        )
        .await?;
        Self::event(
            &mut tx,
            Event::new("agreement", agreement_id, "made", actor)
                .status(None, Some("active"))
                .reason(approval.note.as_deref())
                .details(serde_json::json!({
                    "request": request.id, "attributes": approval.attributes,
                    "row_scope": approval.row_scope,
                })),
        )
        .await?;
        tx.commit().await?;
        self.agreement(agreement_id).await
    }

    /// Move a pending request to `to` (refused or withdrawn). `false` if it was not pending.
    pub async fn close_request(
        &self,
        id: i64,
        to: RequestStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE access_requests SET status = $2, decided_at = $3, decided_by = $4, \
             reason = $5 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(Time::now().0)
        .bind(actor)
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::event(
            &mut tx,
            Event::new("request", id, to.as_str(), actor)
                .status(Some("pending"), Some(to.as_str()))
                .reason(reason),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    // ---- agreements ----------------------------------------------------------------

    /// One agreement.
    pub async fn agreement(&self, id: i64) -> StoreResult<Option<Agreement>> {
        let now = Time::now();
        sqlx::query("SELECT * FROM agreements WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|r| agreement_row(r, now))
            .transpose()
    }

    /// Agreements, newest first. A `status` filter of `active` or `expired` is applied to
    /// the status as of now.
    pub async fn agreements(&self, f: &ListFilter, page: &Page) -> StoreResult<Vec<Agreement>> {
        let now = Time::now();
        let mut f = f.clone();
        let status = f.status.take();
        let mut sql = Sql::new("SELECT * FROM agreements WHERE 1 = 1");
        apply_filter(&mut sql, &f);
        match status.as_deref() {
            Some("active") => sql.and("status = 'active' AND valid_to > ?", Arg::I(now.0)),
            Some("expired") => sql.and("status = 'active' AND valid_to <= ?", Arg::I(now.0)),
            Some(other) => sql.and("status = ?", Arg::S(other.to_owned())),
            None => {}
        }
        id_page(&mut sql, page, true)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| agreement_row(r, now))
            .collect()
    }

    /// Every agreement stored as active (including those past their end), for the policy.
    pub async fn active_agreements(&self) -> StoreResult<Vec<Agreement>> {
        let now = Time::now();
        sqlx::query("SELECT * FROM agreements WHERE status = 'active' ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| agreement_row(r, now))
            .collect()
    }

    /// Revoke an active agreement. `false` if it was not active.
    pub async fn revoke_agreement(&self, id: i64, actor: &str, reason: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let ok = Self::revoke_in(&mut tx, id, actor, reason).await?;
        if ok {
            tx.commit().await?;
        }
        Ok(ok)
    }

    async fn revoke_in(
        tx: &mut Transaction<'static, Any>,
        id: i64,
        actor: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE agreements SET status = 'revoked', revoked_at = $2, revoked_by = $3, \
             revoke_reason = $4 WHERE id = $1 AND status = 'active'",
        )
        .bind(id)
        .bind(Time::now().0)
        .bind(actor)
        .bind(reason)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::event(
            tx,
            Event::new("agreement", id, "revoked", actor)
                .status(Some("active"), Some("revoked"))
                .reason(Some(reason)),
        )
        .await?;
        Ok(true)
    }

    // ---- schema change requests ----------------------------------------------------

    /// File a change request in `status` (pending, or applied when it breaks nothing).
    #[expect(
        clippy::too_many_arguments,
        reason = "one column each; called by one service"
    )]
    pub async fn create_change_request(
        &self,
        dataset: &str,
        definition: &serde_json::Value,
        base: &serde_json::Value,
        changes: &SchemaDiff,
        affected: &[AffectedAgreement],
        status: ChangeStatus,
        actor: &str,
    ) -> StoreResult<ChangeRequest> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        let decided = status == ChangeStatus::Applied;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO change_requests (dataset, definition, changes, affected, status, \
             filed_by, filed_at, decided_by, decided_at, base_definition) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(dataset)
        .bind(definition.to_string())
        .bind(to_json(changes))
        .bind(to_json(&affected))
        .bind(status.as_str())
        .bind(actor)
        .bind(now.0)
        .bind(decided.then_some(actor))
        .bind(decided.then_some(now.0))
        .bind(base.to_string())
        .fetch_one(&mut *tx)
        .await?;
        Self::event(
            &mut tx,
            Event::new("change_request", id, "filed", actor)
                .status(None, Some(status.as_str()))
                .details(serde_json::json!({ "dataset": dataset, "changes": changes })),
        )
        .await?;
        tx.commit().await?;
        self.change_request(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("change request {id} vanished")))
    }

    /// One change request.
    pub async fn change_request(&self, id: i64) -> StoreResult<Option<ChangeRequest>> {
        sqlx::query("SELECT * FROM change_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(change_row)
            .transpose()
    }

    /// Change requests, newest first.
    pub async fn change_requests(
        &self,
        dataset: Option<&str>,
        owner: Option<&str>,
        status: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<ChangeRequest>> {
        let mut sql = Sql::new("SELECT * FROM change_requests WHERE 1 = 1");
        if let Some(d) = dataset {
            sql.and("dataset = ?", Arg::S(d.to_owned()));
        }
        if let Some(o) = owner {
            sql.and(
                "dataset IN (SELECT name FROM datasets WHERE owner = ?)",
                Arg::S(o.to_owned()),
            );
        }
        if let Some(s) = status {
            sql.and("status = ?", Arg::S(s.to_owned()));
        }
        id_page(&mut sql, page, true)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(change_row)
            .collect()
    }

    /// Decide a pending change request. On acceptance, removed attributes are taken out of
    /// the affected agreements (an agreement left with none is revoked), in the same
    /// transaction. `false` if it was not pending.
    pub async fn decide_change_request(
        &self,
        change: &ChangeRequest,
        to: ChangeStatus,
        actor: &str,
        reason: Option<&str>,
        revoke: &[i64],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE change_requests SET status = $2, decided_by = $3, decided_at = $4, \
             reason = $5 WHERE id = $1 AND status = 'pending'",
        )
        .bind(change.id)
        .bind(to.as_str())
        .bind(actor)
        .bind(Time::now().0)
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::event(
            &mut tx,
            Event::new("change_request", change.id, to.as_str(), actor)
                .status(Some("pending"), Some(to.as_str()))
                .reason(reason),
        )
        .await?;
        if to == ChangeStatus::Accepted {
            let why = format!(
                "its row scope reads a column removed or retyped by schema change request {}",
                change.id
            );
            for &id in revoke {
                Self::revoke_in(&mut tx, id, actor, &why).await?;
            }
            Self::narrow_agreements(&mut tx, change, actor).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Apply an accepted (or directly applied) change to the agreements of its dataset.
    async fn narrow_agreements(
        tx: &mut Transaction<'static, Any>,
        change: &ChangeRequest,
        actor: &str,
    ) -> StoreResult<()> {
        let removed = &change.changes.removed;
        if removed.is_empty() {
            return Ok(());
        }
        let now = Time::now();
        let rows = sqlx::query("SELECT * FROM agreements WHERE dataset = $1 AND status = 'active'")
            .bind(&change.dataset)
            .fetch_all(&mut **tx)
            .await?;
        for r in &rows {
            let a = agreement_row(r, now)?;
            let kept: Vec<String> = a
                .attributes
                .iter()
                .filter(|x| !removed.contains(x))
                .cloned()
                .collect();
            if kept.len() == a.attributes.len() {
                continue;
            }
            let why = format!("attributes removed by schema change request {}", change.id);
            if kept.is_empty() {
                Self::revoke_in(tx, a.id, actor, &why).await?;
                continue;
            }
            sqlx::query("UPDATE agreements SET attributes = $2 WHERE id = $1")
                .bind(a.id)
                .bind(to_json(&kept))
                .execute(&mut **tx)
                .await?;
            Self::event(
                tx,
                Event::new("agreement", a.id, "narrowed", actor)
                    .status(Some("active"), Some("active"))
                    .reason(Some(&why))
                    .details(serde_json::json!({ "attributes": kept })),
            )
            .await?;
        }
        Ok(())
    }

    /// The latest applied or accepted change request of each dataset that has one.
    pub async fn latest_definitions(&self) -> StoreResult<Vec<ChangeRequest>> {
        let rows = sqlx::query(
            "SELECT * FROM change_requests WHERE id IN (SELECT MAX(id) FROM change_requests \
             WHERE status IN ('applied', 'accepted') GROUP BY dataset) ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_row).collect()
    }

    // ---- history -------------------------------------------------------------------

    /// The history of one entity, oldest first.
    pub async fn history(&self, entity: &str, id: &str) -> StoreResult<Vec<HistoryEntry>> {
        sqlx::query("SELECT * FROM history WHERE entity = $1 AND entity_id = $2 ORDER BY id")
            .bind(entity)
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(history_row)
            .collect()
    }
}

/// Keyset pagination by decision deadline, then id (both ascending); the cursor is
/// `DUE_MS.ID` of the last item of the previous page.
fn due_page(sql: &mut Sql, page: &Page) -> StoreResult<()> {
    if let Some(after) = &page.after {
        let bad = || StoreError::BadCursor(after.clone());
        let (due, id) = after.split_once('.').ok_or_else(bad)?;
        let due: i64 = due.parse().map_err(|_| bad())?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        let (a, b, c) = (
            sql.arg(Arg::I(due)),
            sql.arg(Arg::I(due)),
            sql.arg(Arg::I(id)),
        );
        sql.text.push_str(&format!(
            " AND (due_at > {a} OR (due_at = {b} AND id > {c}))"
        ));
    }
    let limit = sql.arg(Arg::I(page.limit));
    sql.text
        .push_str(&format!(" ORDER BY due_at ASC, id ASC LIMIT {limit}"));
    Ok(())
}

//! Loads: one row per snapshot load, its own history.

use super::*;

fn load_row(r: &AnyRow) -> StoreResult<Load> {
    Ok(Load {
        id: r.try_get("id")?,
        dataset: r.try_get("dataset")?,
        channel: enum_col(r, "channel", LoadChannel::parse)?,
        mode: enum_col(r, "mode", LoadMode::parse)?,
        status: enum_col(r, "status", LoadStatus::parse)?,
        version: r.try_get("snapshot_version")?,
        rows: r.try_get("row_count")?,
        bytes: r.try_get("bytes")?,
        reasons: from_json(&r.try_get::<String, _>("reasons")?, "reasons")?,
        created_by: r.try_get("created_by")?,
        created_at: time_col(r, "created_at")?,
        finished_at: opt_time_col(r, "finished_at")?,
    })
}

impl MetaStore {
    // ---- loads ---------------------------------------------------------------------

    /// Record a load as it starts (no bytes yet, no reasons).
    pub async fn create_load(&self, new: &NewLoad) -> StoreResult<Load> {
        let now = Time::now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO loads (dataset, channel, mode, status, bytes, reasons, node, \
             created_by, created_at) VALUES ($1, $2, $3, $4, 0, '[]', $5, $6, $7) RETURNING id",
        )
        .bind(&new.dataset)
        .bind(new.channel.as_str())
        .bind(new.mode.as_str())
        .bind(new.status.as_str())
        .bind(&new.node)
        .bind(&new.created_by)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(Load {
            id,
            dataset: new.dataset.clone(),
            channel: new.channel,
            mode: new.mode,
            status: new.status,
            version: None,
            rows: None,
            bytes: 0,
            reasons: vec![],
            created_by: new.created_by.clone(),
            created_at: now,
            finished_at: None,
        })
    }

    /// Note how many bytes of a `receiving` load have arrived. `false` if it is not
    /// receiving.
    pub async fn load_progress(&self, id: i64, bytes: i64) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE loads SET bytes = $2 WHERE id = $1 AND status = 'receiving'")
            .bind(id)
            .bind(bytes)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// All data of a `receiving` load arrived (`bytes` in all): it is `validating` now.
    /// `false` if it was not receiving.
    pub async fn load_received(&self, id: i64, bytes: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE loads SET status = 'validating', bytes = $2 \
             WHERE id = $1 AND status = 'receiving'",
        )
        .bind(id)
        .bind(bytes)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// End a load that is still `receiving` or `validating`: committed or refused, with the
    /// bytes received in all. `false` if it had already ended (nothing is changed then).
    pub async fn finish_load(
        &self,
        id: i64,
        bytes: i64,
        outcome: &LoadOutcome,
    ) -> StoreResult<bool> {
        let (status, version, rows, reasons) = match outcome {
            LoadOutcome::Committed { version, rows } => {
                (LoadStatus::Committed, Some(*version), Some(*rows), vec![])
            }
            LoadOutcome::Refused { reasons } => (LoadStatus::Refused, None, None, reasons.clone()),
        };
        let n = sqlx::query(
            "UPDATE loads SET status = $2, snapshot_version = $3, row_count = $4, bytes = $5, \
             reasons = $6, finished_at = $7 \
             WHERE id = $1 AND status IN ('receiving', 'validating')",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(version)
        .bind(rows)
        .bind(bytes)
        .bind(to_json(&reasons))
        .bind(Time::now().0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Refuse, for `reason`, every load of server `node` that has not ended: at its start,
    /// a server calls this for the loads that it was running when it stopped. Returns how
    /// many there were.
    pub async fn interrupt_loads(&self, node: &str, reason: &str) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE loads SET status = 'refused', reasons = $2, finished_at = $3 \
             WHERE node = $1 AND status IN ('receiving', 'validating')",
        )
        .bind(node)
        .bind(to_json(&[reason]))
        .bind(Time::now().0)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// One load.
    pub async fn load(&self, id: i64) -> StoreResult<Option<Load>> {
        sqlx::query("SELECT * FROM loads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(load_row)
            .transpose()
    }

    /// The loads of a dataset, newest first.
    pub async fn loads_of(&self, dataset: &str, page: &Page) -> StoreResult<Vec<Load>> {
        let mut sql = Sql::new("SELECT * FROM loads WHERE 1 = 1");
        sql.and("dataset = ?", Arg::S(dataset.to_owned()));
        id_page(&mut sql, page, true)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(load_row)
            .collect()
    }

    /// Add a note to an entity's history, changing no status: `action` with `reason` by
    /// `actor` (e.g. why a schema change was filed).
    pub async fn add_note(
        &self,
        entity: &str,
        id: i64,
        action: &str,
        actor: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        Self::event(
            &mut tx,
            Event::new(entity, id, action, actor).reason(Some(reason)),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

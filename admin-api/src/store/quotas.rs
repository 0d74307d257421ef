//! Systems' own quotas (`system_quotas`, docs/quotas.md): one row per system that sets any,
//! NULL for a quota left at the server default.

use dagr_engine::QuotaOverrides;

use super::*;

/// A stored limit: NULL is the default; anything outside `u32` was not written by DAGR.
fn limit_col(r: &AnyRow, col: &str) -> StoreResult<Option<u32>> {
    let v: Option<i64> = r.try_get(col)?;
    v.map(|v| {
        u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("system_quotas.{col} = {v}")))
    })
    .transpose()
}

fn quota_row(r: &AnyRow) -> StoreResult<(i64, QuotaOverrides)> {
    Ok((
        r.try_get("system_id")?,
        QuotaOverrides {
            requests_per_second: limit_col(r, "requests_per_second")?,
            streams: limit_col(r, "streams")?,
            sql_queries: limit_col(r, "sql_queries")?,
        },
    ))
}

impl MetaStore {
    /// Every system's own quotas, for the access policy (read with the tokens on each
    /// reload, never per request).
    pub async fn system_quotas(&self) -> StoreResult<Vec<(i64, QuotaOverrides)>> {
        sqlx::query(
            "SELECT system_id, requests_per_second, streams, sql_queries FROM system_quotas",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(quota_row)
        .collect()
    }

    /// One system's own quotas (all default when it set none).
    pub async fn system_quota(&self, system: i64) -> StoreResult<QuotaOverrides> {
        let row = sqlx::query(
            "SELECT system_id, requests_per_second, streams, sql_queries FROM system_quotas \
             WHERE system_id = $1",
        )
        .bind(system)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => quota_row(&r)?.1,
            None => QuotaOverrides::default(),
        })
    }

    /// Replace a system's own quotas (all default: its row goes), with a history entry.
    /// `false` if there is no such system. Bumps the generation, so every server reloads
    /// its policy and applies them.
    pub async fn set_system_quotas(
        &self,
        system: i64,
        quotas: &QuotaOverrides,
        actor: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM systems WHERE id = $1")
            .bind(system)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM system_quotas WHERE system_id = $1")
            .bind(system)
            .execute(&mut *tx)
            .await?;
        let value = |v: Option<u32>| v.map(i64::from);
        if !quotas.is_default() {
            sqlx::query(
                "INSERT INTO system_quotas (system_id, requests_per_second, streams, \
                 sql_queries, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(system)
            .bind(value(quotas.requests_per_second))
            .bind(value(quotas.streams))
            .bind(value(quotas.sql_queries))
            .bind(Time::now().0)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        }
        Self::event(
            &mut tx,
            Event::new("system", system, "quotas_set", actor).details(serde_json::json!({
                "requests_per_second": quotas.requests_per_second,
                "streams": quotas.streams,
                "sql_queries": quotas.sql_queries,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

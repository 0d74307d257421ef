//! MAP's settings: what differs between countries and grantors' practice, as data an admin
//! changes (forward only, each change in `map_rule_history`): the format of document
//! registration numbers, how long records are kept, whether due dates move to the next
//! working day of the calendar ([`crate::calendar`]), and when reminders go out. The
//! shipped defaults name their source (`GET /api/v1/map/settings`).

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::service::MapCaller;
use super::store::{MapStore, db};

/// Longest document number format.
const MAX_FORMAT: usize = 40;

/// MAP's settings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Settings {
    /// Registration numbers of documents: `{year}` and `{seq:N}` (the gapless number of
    /// the year, N digits) in a text of `A-Z a-z 0-9 - / . _`, e.g. `MAP-{year}/{seq:6}`.
    pub document_number_format: String,
    /// Years a closed, terminated, withdrawn or rejected application's records are kept
    /// after its last change (the retention list).
    pub retention_years: i64,
    /// Whether a report due on a non-working day is due on the next working day.
    pub due_dates_on_working_days: bool,
    /// Days before a report is due that its reminder goes out.
    pub reminder_days: i64,
    /// Where each value comes from (by name).
    pub sources: std::collections::BTreeMap<String, String>,
}

/// A change of settings (an admin); absent fields stay.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// See [`Settings::document_number_format`].
    #[serde(default)]
    pub document_number_format: Option<String>,
    /// 1–100.
    #[serde(default)]
    pub retention_years: Option<i64>,
    /// See [`Settings::due_dates_on_working_days`].
    #[serde(default)]
    pub due_dates_on_working_days: Option<bool>,
    /// 0–90.
    #[serde(default)]
    pub reminder_days: Option<i64>,
    /// The act or decision behind the change (kept as each changed value's source).
    pub source: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Render a document number: `format` with `{year}` and `{seq:N}` filled.
pub fn document_number(format: &str, year: i32, seq: i64) -> String {
    let digits = seq_width(format).unwrap_or(6);
    let token = format!("{{seq:{digits}}}");
    format
        .replace("{year}", &year.to_string())
        .replace(&token, &format!("{seq:0digits$}"))
}

fn seq_width(format: &str) -> Option<usize> {
    let start = format.find("{seq:")? + 5;
    let end = start + format[start..].find('}')?;
    format[start..end].parse().ok()
}

/// Check a document number format.
pub fn check_format(format: &str) -> GovResult<()> {
    let f = "document_number_format";
    if format.len() > MAX_FORMAT {
        return Err(invalid(f, format!("at most {MAX_FORMAT} characters")));
    }
    if format.matches("{year}").count() != 1 {
        return Err(invalid(f, "name `{year}` once"));
    }
    let Some(width) = seq_width(format).filter(|w| (1..=12).contains(w)) else {
        return Err(invalid(f, "name `{seq:N}` once, N from 1 to 12 digits"));
    };
    let rest = format
        .replace("{year}", "")
        .replacen(&format!("{{seq:{width}}}"), "", 1);
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-/._".contains(c))
    {
        return Err(invalid(
            f,
            "besides `{year}` and `{seq:N}`, use only A-Z, a-z, 0-9, -, /, . and _",
        ));
    }
    Ok(())
}

/// Read the settings on `c`.
pub(crate) async fn load(c: &mut AnyConnection) -> GovResult<Settings> {
    let rows = sqlx::query("SELECT name, value, source FROM map_settings")
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
    let mut s = Settings {
        document_number_format: "MAP-{year}/{seq:6}".into(),
        retention_years: 10,
        due_dates_on_working_days: true,
        reminder_days: 14,
        sources: Default::default(),
    };
    for r in &rows {
        let name: String = r.try_get("name").map_err(db)?;
        let value: serde_json::Value =
            serde_json::from_str(&r.try_get::<String, _>("value").map_err(db)?)
                .map_err(|e| super::store::corrupt(format!("setting {name}: {e}")))?;
        match (name.as_str(), &value) {
            ("document_number_format", serde_json::Value::String(v)) => {
                s.document_number_format = v.clone()
            }
            ("retention_years", v) if v.is_i64() => s.retention_years = v.as_i64().unwrap_or(10),
            ("due_dates_on_working_days", v) => {
                s.due_dates_on_working_days = v.as_i64() == Some(1) || v.as_bool() == Some(true)
            }
            ("reminder_days", v) if v.is_i64() => s.reminder_days = v.as_i64().unwrap_or(14),
            _ => continue,
        }
        s.sources
            .insert(name, r.try_get::<String, _>("source").map_err(db)?);
    }
    Ok(s)
}

impl MapStore {
    /// The settings.
    pub(crate) async fn settings(&self) -> GovResult<Settings> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        load(&mut c).await
    }
}

/// The settings (anyone MAP serves).
pub async fn get(c: &MapCaller) -> GovResult<Settings> {
    c.store.settings().await
}

/// Change settings (an admin). Forward only: document numbers from now on use the new
/// format (the year's counter goes on), due dates and reminders are counted with the new
/// values from now on.
pub async fn set(c: &MapCaller, input: SettingsInput) -> GovResult<Settings> {
    if !c.is_admin() {
        return Err(GovError::Forbidden(
            "MAP settings are changed by an admin".into(),
        ));
    }
    let source = super::rules::text("source", &input.source)?;
    let mut changes: Vec<(&str, serde_json::Value)> = Vec::new();
    if let Some(f) = input.document_number_format {
        check_format(&f)?;
        changes.push(("document_number_format", f.into()));
    }
    if let Some(y) = input.retention_years {
        if !(1..=100).contains(&y) {
            return Err(invalid("retention_years", "give 1 to 100 years"));
        }
        changes.push(("retention_years", y.into()));
    }
    if let Some(b) = input.due_dates_on_working_days {
        changes.push(("due_dates_on_working_days", i64::from(b).into()));
    }
    if let Some(d) = input.reminder_days {
        if !(0..=90).contains(&d) {
            return Err(invalid("reminder_days", "give 0 to 90 days"));
        }
        changes.push(("reminder_days", d.into()));
    }
    if changes.is_empty() {
        return Err(invalid("settings", "name at least one setting to change"));
    }
    let now = Time::now().0;
    let mut tx = c.store.pool.begin().await.map_err(db)?;
    for (name, value) in &changes {
        sqlx::query("DELETE FROM map_settings WHERE name = $1")
            .bind(*name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO map_settings (name, value, source, updated_by, updated_at) \
             VALUES ($1, $2, $3, 'admin', $4)",
        )
        .bind(*name)
        .bind(value.to_string())
        .bind(&source)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        super::store::rule_history(
            &mut tx,
            &format!("setting {name}"),
            &serde_json::json!({"value": value, "source": source}).to_string(),
            "admin",
            now,
        )
        .await?;
    }
    tx.commit().await.map_err(db)?;
    c.store.settings().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_numbers_follow_the_format() {
        assert_eq!(
            document_number("MAP-{year}/{seq:6}", 2026, 42),
            "MAP-2026/000042"
        );
        assert_eq!(
            document_number("{year}-{seq:3}-LIAA", 2027, 1234),
            "2027-1234-LIAA"
        );
        assert!(check_format("MAP-{year}/{seq:6}").is_ok());
        assert!(check_format("MAP/{seq:6}").is_err(), "no year");
        assert!(check_format("{year}/{seq:0}").is_err());
        assert!(check_format("{year}/{seq:6} x").is_err(), "a space");
        assert!(check_format("{year}{year}/{seq:6}").is_err());
    }
}

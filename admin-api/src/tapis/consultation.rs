//! Versions of a document and its public consultations.
//!
//! A version is a summary and paragraphs with stable ids, immutable once made; the version a
//! consultation shows is frozen when it opens. A consultation runs from `starts_at` to
//! `ends_at`, at least the document type's `consultation_min_days`, and is never cut short:
//! no call shortens it, and while it is open the document moves only to `cancelled`. The
//! scheduler ([`advance`]) opens and closes consultations on time with conditional updates,
//! moving the document to `consultation` and then `evaluation` in the same transaction, so
//! replicas running it together do each switch once.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::{Stage, text};
use super::store::{TapisStore, db, history_entry, note};

/// Most paragraphs of a version.
pub const MAX_PARAGRAPHS: usize = 2_000;
/// Longest paragraph, in characters.
pub const MAX_PARAGRAPH: usize = 20_000;
/// Most versions of a document.
pub const MAX_VERSIONS: i64 = 200;
/// Longest consultation, in days.
pub const MAX_CONSULTATION_DAYS: i64 = 366;

/// A paragraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Paragraph {
    /// Its id, stable across versions (1–64 of `A-Z a-z 0-9 . _ -`).
    pub id: String,
    /// Its text.
    pub text: String,
}

/// A new version.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// Label (e.g. "1.0 redakcija").
    pub label: String,
    /// Summary.
    pub summary: String,
    /// Paragraphs, in order.
    pub paragraphs: Vec<Paragraph>,
}

/// A version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Version {
    /// Id.
    pub id: i64,
    /// The document.
    pub document: i64,
    /// Label.
    pub label: String,
    /// Summary.
    pub summary: String,
    /// Paragraphs.
    pub paragraphs: Vec<Paragraph>,
    /// Made (RFC 3339).
    pub created_at: String,
    /// Frozen by a consultation (RFC 3339).
    pub frozen_at: Option<String>,
    /// Its files, by name.
    pub files: Vec<super::files::VersionFile>,
}

/// A new consultation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsultation {
    /// The version it shows.
    pub version: i64,
    /// Opens (RFC 3339; default now).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Closes (RFC 3339).
    pub ends_at: String,
}

/// A consultation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Consultation {
    /// Id.
    pub id: i64,
    /// The document.
    pub document: i64,
    /// The version shown.
    pub version: i64,
    /// Opens (RFC 3339).
    pub starts_at: String,
    /// Closes (RFC 3339).
    pub ends_at: String,
    /// `scheduled`, `open` or `closed`.
    pub status: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Check a new version's fields.
pub fn check_version(v: &NewVersion) -> GovResult<(String, String, Vec<Paragraph>)> {
    let label = text("label", &v.label, 200)?;
    let summary = text("summary", &v.summary, MAX_PARAGRAPH)?;
    if v.paragraphs.is_empty() || v.paragraphs.len() > MAX_PARAGRAPHS {
        return Err(invalid(
            "paragraphs",
            format!("give 1 to {MAX_PARAGRAPHS} paragraphs"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(v.paragraphs.len());
    for p in &v.paragraphs {
        let ok = (1..=64).contains(&p.id.len())
            && p.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(invalid(
                "paragraphs",
                format!(
                    "paragraph id `{}`: 1 to 64 of A-Z, a-z, 0-9, ., _ and -",
                    p.id.chars().take(80).collect::<String>()
                ),
            ));
        }
        if !seen.insert(p.id.as_str()) {
            return Err(invalid(
                "paragraphs",
                format!("paragraph id `{}` twice", p.id),
            ));
        }
        out.push(Paragraph {
            id: p.id.clone(),
            text: text(&format!("paragraphs.{}", p.id), &p.text, MAX_PARAGRAPH)?,
        });
    }
    Ok((label, summary, out))
}

fn version_row(r: &AnyRow) -> GovResult<Version> {
    let paragraphs: String = r.try_get("paragraphs").map_err(db)?;
    Ok(Version {
        id: r.try_get("id").map_err(db)?,
        document: r.try_get("document").map_err(db)?,
        label: r.try_get("label").map_err(db)?,
        summary: r.try_get("summary").map_err(db)?,
        paragraphs: serde_json::from_str(&paragraphs).map_err(|e| {
            GovError::Store(crate::store::StoreError::Corrupt(format!(
                "paragraphs: {e}"
            )))
        })?,
        created_at: Time(r.try_get("created_at").map_err(db)?).to_rfc3339(),
        frozen_at: r
            .try_get::<Option<i64>, _>("frozen_at")
            .map_err(db)?
            .map(|t| Time(t).to_rfc3339()),
        files: vec![],
    })
}

fn consultation_row(r: &AnyRow) -> GovResult<Consultation> {
    Ok(Consultation {
        id: r.try_get("id").map_err(db)?,
        document: r.try_get("document").map_err(db)?,
        version: r.try_get("version").map_err(db)?,
        starts_at: Time(r.try_get("starts_at").map_err(db)?).to_rfc3339(),
        ends_at: Time(r.try_get("ends_at").map_err(db)?).to_rfc3339(),
        status: r.try_get("status").map_err(db)?,
    })
}

impl TapisStore {
    /// Add a version to a document.
    pub(crate) async fn add_version(
        &self,
        doc: i64,
        v: &NewVersion,
        actor: &str,
    ) -> GovResult<Version> {
        let (label, summary, paragraphs) = check_version(v)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tapis_versions WHERE document = $1")
                .bind(doc)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if count >= MAX_VERSIONS {
            return Err(GovError::Conflict(format!(
                "document {doc} has {count} versions, the most one may have"
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tapis_versions (document, label, summary, paragraphs, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(doc)
        .bind(&label)
        .bind(&summary)
        .bind(crate::store::to_json(&paragraphs))
        .bind(actor)
        .bind(Time::now().0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        note(&mut tx, doc, &format!("version {id}: {label}"), actor).await?;
        tx.commit().await.map_err(db)?;
        self.version(doc, id).await
    }

    /// A version of a document.
    pub(crate) async fn version(&self, doc: i64, id: i64) -> GovResult<Version> {
        let row = sqlx::query("SELECT * FROM tapis_versions WHERE id = $1 AND document = $2")
            .bind(id)
            .bind(doc)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| GovError::NotFound(format!("no version {id} of document {doc}")))?;
        let mut v = version_row(&row)?;
        v.files = self.files(id).await?;
        Ok(v)
    }

    /// The versions of a document, oldest first.
    pub(crate) async fn versions(&self, doc: i64) -> GovResult<Vec<Version>> {
        let rows = sqlx::query("SELECT * FROM tapis_versions WHERE document = $1 ORDER BY id")
            .bind(doc)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = rows
            .iter()
            .map(version_row)
            .collect::<GovResult<Vec<_>>>()?;
        for v in &mut out {
            v.files = self.files(v.id).await?;
        }
        Ok(out)
    }

    /// Whether a consultation of the document is scheduled or open.
    pub(crate) async fn consultation_pending(&self, doc: i64) -> GovResult<Option<Consultation>> {
        let row = sqlx::query(
            "SELECT * FROM tapis_consultations WHERE document = $1 AND status IN ('scheduled', 'open') \
             ORDER BY id LIMIT 1",
        )
        .bind(doc)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(consultation_row).transpose()
    }

    /// Schedule a consultation (the checks of times and stage are the caller's).
    pub(crate) async fn schedule(
        &self,
        doc: i64,
        version: i64,
        starts_at: Time,
        ends_at: Time,
        actor: &str,
    ) -> GovResult<Consultation> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The document's row first: one schedule of a document at a time.
        let r = sqlx::query(
            "UPDATE tapis_documents SET updated_at = $1 WHERE id = $2 AND stage = 'drafting'",
        )
        .bind(Time::now().0)
        .bind(doc)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "a consultation is scheduled while document {doc} is drafting"
            )));
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tapis_consultations WHERE document = $1 AND status IN ('scheduled', 'open')",
        )
        .bind(doc)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if pending > 0 {
            return Err(GovError::Conflict(format!(
                "document {doc} has a consultation scheduled or open already"
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tapis_consultations (document, version, starts_at, ends_at, status, created_by, created_at) \
             VALUES ($1, $2, $3, $4, 'scheduled', $5, $6) RETURNING id",
        )
        .bind(doc)
        .bind(version)
        .bind(starts_at.0)
        .bind(ends_at.0)
        .bind(actor)
        .bind(Time::now().0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        history_entry(
            &mut tx,
            doc,
            None,
            Stage::Drafting,
            &format!(
                "consultation {id} scheduled: {} to {}",
                starts_at.to_rfc3339(),
                ends_at.to_rfc3339()
            ),
            actor,
            None,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.consultation(id).await
    }

    /// One consultation.
    pub(crate) async fn consultation(&self, id: i64) -> GovResult<Consultation> {
        let row = sqlx::query("SELECT * FROM tapis_consultations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| GovError::NotFound(format!("no consultation {id}")))?;
        consultation_row(&row)
    }

    /// The consultations of a document, oldest first.
    pub(crate) async fn consultations(&self, doc: i64) -> GovResult<Vec<Consultation>> {
        let rows = sqlx::query("SELECT * FROM tapis_consultations WHERE document = $1 ORDER BY id")
            .bind(doc)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(consultation_row).collect()
    }
}

/// One switch of a consultation: open it (document drafting → consultation, version
/// frozen) or close it (consultation → evaluation). `false` when another replica did it, or
/// the document left the stage (cancelled): then the consultation just closes.
async fn switch(store: &TapisStore, c: &Consultation, open: bool, now: i64) -> GovResult<bool> {
    let (from_status, to_status, from_stage, to_stage) = if open {
        ("scheduled", "open", Stage::Drafting, Stage::Consultation)
    } else {
        ("open", "closed", Stage::Consultation, Stage::Evaluation)
    };
    let mut tx = store.pool.begin().await.map_err(db)?;
    let r = sqlx::query("UPDATE tapis_consultations SET status = $1 WHERE id = $2 AND status = $3")
        .bind(to_status)
        .bind(c.id)
        .bind(from_status)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if r.rows_affected() != 1 {
        return Ok(false);
    }
    let moved = sqlx::query(
        "UPDATE tapis_documents SET stage = $1, updated_at = $2 WHERE id = $3 AND stage = $4",
    )
    .bind(to_stage.as_str())
    .bind(now)
    .bind(c.document)
    .bind(from_stage.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if moved.rows_affected() == 1 {
        history_entry(
            &mut tx,
            c.document,
            Some(from_stage),
            to_stage,
            if open {
                "consultation opened"
            } else {
                "consultation closed"
            },
            "scheduler",
            None,
        )
        .await?;
        if open {
            sqlx::query(
                "UPDATE tapis_versions SET frozen_at = $1 WHERE id = $2 AND frozen_at IS NULL",
            )
            .bind(now)
            .bind(c.version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
    } else if open {
        // The document left `drafting` (cancelled): the consultation never opens.
        sqlx::query("UPDATE tapis_consultations SET status = 'closed' WHERE id = $1")
            .bind(c.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Open and close the consultations due now; returns how many switched.
pub async fn advance(store: &TapisStore) -> GovResult<usize> {
    let now = Time::now().0;
    let rows = sqlx::query(
        "SELECT * FROM tapis_consultations WHERE (status = 'scheduled' AND starts_at <= $1) \
         OR (status = 'open' AND ends_at <= $1) ORDER BY id LIMIT 1000",
    )
    .bind(now)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut n = 0;
    for r in &rows {
        let c = consultation_row(r)?;
        // A consultation due to open and close both (the server was down) opens, then
        // closes: both switches are in the history.
        if c.status == "scheduled" && switch(store, &c, true, now).await? {
            n += 1;
        }
        let ends: i64 = r.try_get("ends_at").map_err(db)?;
        if ends <= now {
            let c = store.consultation(c.id).await?;
            if c.status == "open" && switch(store, &c, false, now).await? {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ids: &[&str]) -> NewVersion {
        NewVersion {
            label: "1.0".into(),
            summary: "Kopsavilkums".into(),
            paragraphs: ids
                .iter()
                .map(|i| Paragraph {
                    id: (*i).into(),
                    text: "Teksts".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn versions_are_checked() {
        assert!(check_version(&v(&["p1", "p2"])).is_ok());
        assert!(check_version(&v(&[])).is_err());
        assert!(check_version(&v(&["p1", "p1"])).is_err(), "an id twice");
        assert!(check_version(&v(&["p 1"])).is_err(), "a space");
        let mut bad = v(&["p1"]);
        bad.paragraphs[0].text = "\u{0}".into();
        assert!(check_version(&bad).is_err());
    }
}

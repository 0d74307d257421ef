//! TAPIS's tables on the metadata database (SQLite or PostgreSQL through sqlx's `Any`
//! driver, with the metadata store's portability rules). A stage move is one conditional
//! update with its history entry; an answer to a request is written once, by a conditional
//! update on its status.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::governance::{GovError, GovResult};
use crate::model::Time;
use crate::store::{Backend, MetaStore, MigrationSet, StoreError, apply_migrations_with_ids};

use super::model::{DocType, Document, Stage, TerritoryView};
use super::rules::{self, Rules};
use crate::calendar::{self, DayKind};

pub(crate) fn db(e: sqlx::Error) -> GovError {
    GovError::Store(StoreError::Database(e))
}

fn corrupt(what: impl Into<String>) -> GovError {
    GovError::Store(StoreError::Corrupt(what.into()))
}

/// TAPIS's store.
#[derive(Debug, Clone)]
pub struct TapisStore {
    pub(crate) pool: AnyPool,
}

/// A document as stored.
#[derive(Debug, Clone)]
pub(crate) struct DocRow {
    pub(crate) id: i64,
    pub(crate) organisation: String,
    pub(crate) doc_type: DocType,
    pub(crate) title: String,
    pub(crate) stage: Stage,
    pub(crate) territory: Option<serde_json::Value>,
    pub(crate) area_m2: Option<f64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl DocRow {
    pub(crate) fn view(&self) -> Document {
        Document {
            id: self.id,
            doc_type: self.doc_type,
            title: self.title.clone(),
            organisation: self.organisation.clone(),
            stage: self.stage,
            territory: match (&self.territory, self.area_m2) {
                (Some(g), Some(a)) => Some(TerritoryView {
                    area_m2: a,
                    geometry: g.clone(),
                }),
                _ => None,
            },
            created_at: Time(self.created_at).to_rfc3339(),
            updated_at: Time(self.updated_at).to_rfc3339(),
        }
    }
}

fn doc_row(r: &AnyRow) -> GovResult<DocRow> {
    let t: String = r.try_get("doc_type").map_err(db)?;
    let s: String = r.try_get("stage").map_err(db)?;
    let territory: Option<String> = r.try_get("territory").map_err(db)?;
    Ok(DocRow {
        id: r.try_get("id").map_err(db)?,
        organisation: r.try_get("organisation").map_err(db)?,
        doc_type: DocType::parse(&t).ok_or_else(|| corrupt(format!("document type `{t}`")))?,
        title: r.try_get("title").map_err(db)?,
        stage: Stage::parse(&s).ok_or_else(|| corrupt(format!("stage `{s}`")))?,
        territory: territory
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| corrupt(format!("territory: {e}")))?,
        area_m2: r.try_get("area_m2").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

/// A history entry.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The stage before (absent for creation and changes that keep the stage).
    pub from_status: Option<String>,
    /// The stage after.
    pub to_status: String,
    /// What happened.
    pub action: String,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// An institution.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Institution {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Where requests are mailed.
    pub email: String,
}

pub(crate) async fn history_entry(
    tx: &mut Transaction<'static, Any>,
    doc: i64,
    from: Option<Stage>,
    to: Stage,
    action: &str,
    actor: &str,
    reason: Option<&str>,
) -> GovResult<()> {
    sqlx::query(
        "INSERT INTO tapis_history (document, from_status, to_status, action, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(doc)
    .bind(from.map(Stage::as_str))
    .bind(to.as_str())
    .bind(action)
    .bind(actor)
    .bind(reason)
    .bind(Time::now().0)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// A history entry of something done to a document that does not move its stage (a
/// version, a file): the stage stays what it is.
pub(crate) async fn note(
    tx: &mut Transaction<'static, Any>,
    doc: i64,
    action: &str,
    actor: &str,
) -> GovResult<()> {
    let stage: String = sqlx::query_scalar("SELECT stage FROM tapis_documents WHERE id = $1")
        .bind(doc)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
    let stage = Stage::parse(&stage).ok_or_else(|| corrupt(format!("stage `{stage}`")))?;
    history_entry(tx, doc, None, stage, action, actor, None).await
}

impl TapisStore {
    /// TAPIS's store on the metadata database.
    pub fn new(meta: &MetaStore) -> Self {
        TapisStore {
            pool: meta.pool().clone(),
        }
    }

    /// Apply TAPIS's migrations (tracked in `tapis_migrations`).
    pub async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), sqlx::Error> {
        let set = MigrationSet {
            table: "tapis_migrations",
            lock: 7036139,
            what: "tapis",
            migrations: super::MIGRATIONS,
        };
        apply_migrations_with_ids(pool, backend, &set).await
    }

    /// The module's key `name` (`links`, `receipts`), 32 random bytes made at first use and
    /// shared by the replicas through the database.
    pub(crate) async fn secret(&self, name: &str) -> GovResult<Vec<u8>> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let get = || async {
            sqlx::query_scalar::<_, String>("SELECT value FROM tapis_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)
        };
        if get().await?.is_none() {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| corrupt(format!("no randomness: {e}")))?;
            // A concurrent first use may win: its key is the one kept.
            let _ = sqlx::query("INSERT INTO tapis_secrets (name, value) VALUES ($1, $2)")
                .bind(name)
                .bind(URL_SAFE_NO_PAD.encode(k))
                .execute(&self.pool)
                .await;
        }
        let k = get()
            .await?
            .ok_or_else(|| GovError::Conflict(format!("no {name} key; try again")))?;
        URL_SAFE_NO_PAD
            .decode(k)
            .map_err(|_| corrupt(format!("the TAPIS {name} key")))
    }

    // ---- planners and institutions -----------------------------------------------

    /// Make a person of `organisation` a planner (idempotent).
    pub async fn add_planner(&self, login: &str, organisation: &str) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM tapis_planners WHERE login = $1")
            .bind(login)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO tapis_planners (login, organisation, created_at) VALUES ($1, $2, $3)",
        )
        .bind(login)
        .bind(organisation)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// The organisation a planner plans for.
    pub async fn planner(&self, login: &str) -> GovResult<Option<String>> {
        sqlx::query_scalar("SELECT organisation FROM tapis_planners WHERE login = $1")
            .bind(login)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    /// Add or change an institution.
    pub async fn set_institution(&self, i: &Institution) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM tapis_institutions WHERE code = $1")
            .bind(&i.code)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO tapis_institutions (code, name, email, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&i.code)
        .bind(&i.name)
        .bind(&i.email)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// The institutions, by code.
    pub async fn institutions(&self) -> GovResult<Vec<Institution>> {
        let rows = sqlx::query("SELECT code, name, email FROM tapis_institutions ORDER BY code")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(Institution {
                    code: r.try_get("code").map_err(db)?,
                    name: r.try_get("name").map_err(db)?,
                    email: r.try_get("email").map_err(db)?,
                })
            })
            .collect()
    }

    // ---- rules -------------------------------------------------------------------------

    /// The current rules: the highest version (the defaults before any), with the
    /// calendar's entries as `holidays` and `working_days`.
    pub async fn rules(&self) -> GovResult<Rules> {
        let row =
            sqlx::query("SELECT version, rules FROM tapis_rules ORDER BY version DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let mut r = match row {
            Some(row) => {
                let text: String = row.try_get("rules").map_err(db)?;
                let mut r: Rules = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("TAPIS rules: {e}")))?;
                r.version = row.try_get("version").map_err(db)?;
                r
            }
            None => rules::defaults(),
        };
        let days = sqlx::query("SELECT day, kind FROM calendar_days ORDER BY day")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        r.holidays.clear();
        r.working_days.clear();
        for d in &days {
            let day: String = d.try_get("day").map_err(db)?;
            let kind: String = d.try_get("kind").map_err(db)?;
            let date = crate::calendar::Date(
                day.parse()
                    .map_err(|_| corrupt(format!("calendar day `{day}`")))?,
            );
            match kind.as_str() {
                "holiday" => r.holidays.push(date),
                _ => r.working_days.push(date),
            }
        }
        Ok(r)
    }

    /// Store `r` as the next version; the calendar's entries become `holidays` and
    /// `working_days` (entries no longer listed are removed, new ones named after the
    /// rules' version).
    pub async fn save_rules(&self, r: &Rules, actor: &str) -> GovResult<Rules> {
        let now = Time::now().0;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM tapis_rules")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let version = current.unwrap_or(0) + 1;
        let mut stored = r.clone();
        stored.version = version;
        sqlx::query("INSERT INTO tapis_rules (version, rules, created_by, created_at) VALUES ($1, $2, $3, $4)")
            .bind(version)
            .bind(crate::store::to_json(&stored))
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation()) {
                    GovError::Conflict("the rules were changed at the same time; read them again".into())
                } else {
                    db(e)
                }
            })?;
        let source = format!("TAPIS rules, version {version}");
        for (kind, days) in [
            (DayKind::Holiday, &r.holidays),
            (DayKind::Working, &r.working_days),
        ] {
            let listed: Vec<String> = days.iter().map(|d| d.to_string()).collect();
            let existing: Vec<String> =
                sqlx::query_scalar("SELECT day FROM calendar_days WHERE kind = $1")
                    .bind(kind.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
            for gone in existing.iter().filter(|d| !listed.contains(d)) {
                calendar::remove_entry(&mut tx, gone, actor).await?;
            }
            for new in listed.iter().filter(|d| !existing.contains(d)) {
                let name = match kind {
                    DayKind::Holiday => "brīvdiena",
                    DayKind::Working => "darba diena",
                };
                let day = calendar::Day {
                    date: new.clone(),
                    kind,
                    name: name.into(),
                    source: source.clone(),
                    entered: true,
                };
                calendar::set_entry(&mut tx, &day, actor).await?;
            }
        }
        tx.commit().await.map_err(db)?;
        self.rules().await
    }

    // ---- documents ---------------------------------------------------------------------

    /// Create a document (stage `initiated`) with its first history entry.
    pub(crate) async fn create(
        &self,
        organisation: &str,
        t: DocType,
        title: &str,
        actor: &str,
    ) -> GovResult<i64> {
        let now = Time::now().0;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tapis_documents (organisation, doc_type, title, stage, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'initiated', $4, $5, $5) RETURNING id",
        )
        .bind(organisation)
        .bind(t.as_str())
        .bind(title)
        .bind(actor)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        history_entry(&mut tx, id, None, Stage::Initiated, "create", actor, None).await?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    /// A document.
    pub(crate) async fn document(&self, id: i64) -> GovResult<DocRow> {
        let row = sqlx::query("SELECT * FROM tapis_documents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| GovError::NotFound(format!("no planning document {id}")))?;
        doc_row(&row)
    }

    /// Documents, newest first, of one organisation or all, at most `limit`, before the id
    /// `before`.
    pub(crate) async fn documents(
        &self,
        organisation: Option<&str>,
        limit: i64,
        before: Option<i64>,
    ) -> GovResult<Vec<DocRow>> {
        let rows = sqlx::query(
            "SELECT * FROM tapis_documents WHERE ($1 = '' OR organisation = $1) AND id < $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(organisation.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(doc_row).collect()
    }

    /// Move a document from `from` to `to` (409 when another move came first).
    pub(crate) async fn move_stage(
        &self,
        id: i64,
        from: Stage,
        to: Stage,
        actor: &str,
        reason: Option<&str>,
    ) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let r = sqlx::query(
            "UPDATE tapis_documents SET stage = $1, updated_at = $2 WHERE id = $3 AND stage = $4",
        )
        .bind(to.as_str())
        .bind(Time::now().0)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "document {id} is no longer {}; read it again",
                from.as_str()
            )));
        }
        history_entry(&mut tx, id, Some(from), to, "stage", actor, reason).await?;
        tx.commit().await.map_err(db)
    }

    /// Set a document's territory (refused once the document is approved).
    pub(crate) async fn set_territory(
        &self,
        id: i64,
        geometry: &serde_json::Value,
        area_m2: f64,
        actor: &str,
    ) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let stage: Option<String> =
            sqlx::query_scalar("SELECT stage FROM tapis_documents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let stage = stage
            .and_then(|s| Stage::parse(&s))
            .ok_or_else(|| GovError::NotFound(format!("no planning document {id}")))?;
        if stage >= Stage::Approved {
            return Err(GovError::Conflict(format!(
                "document {id} is {}: its territory is fixed",
                stage.as_str()
            )));
        }
        let r = sqlx::query(
            "UPDATE tapis_documents SET territory = $1, area_m2 = $2, updated_at = $3 WHERE id = $4 AND stage = $5",
        )
        .bind(geometry.to_string())
        .bind(area_m2)
        .bind(Time::now().0)
        .bind(id)
        .bind(stage.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "document {id} changed; try again"
            )));
        }
        history_entry(&mut tx, id, None, stage, "territory", actor, None).await?;
        tx.commit().await.map_err(db)
    }

    /// The history of a document, oldest first.
    pub(crate) async fn history(&self, id: i64) -> GovResult<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT from_status, to_status, action, actor, reason, at FROM tapis_history \
             WHERE document = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    from_status: r.try_get("from_status").map_err(db)?,
                    to_status: r.try_get("to_status").map_err(db)?,
                    action: r.try_get("action").map_err(db)?,
                    actor: r.try_get("actor").map_err(db)?,
                    reason: r.try_get("reason").map_err(db)?,
                    at: Time(r.try_get("at").map_err(db)?).to_rfc3339(),
                })
            })
            .collect()
    }
}

//! The metadata store: governance records in SQL through `sqlx`'s `Any` driver, so that one
//! set of queries serves both backends — a SQLite file in the data directory by default, and
//! PostgreSQL (`postgres://...`) for several replicas.
//!
//! Portability rules: numbered `$n` parameters (both drivers accept them), times as BIGINT
//! Unix milliseconds, lists as JSON text, no booleans. Migrations are embedded SQL files
//! applied in order inside a transaction; `{id}` in them becomes each backend's
//! auto-increment key.
//!
//! Every write bumps the `generation` counter in the same transaction, so that each server
//! (replica) notices changes made elsewhere (another replica, `dagr admin`) by polling one
//! row. Every state transition is a conditional `UPDATE ... WHERE status = <from>`, so two
//! concurrent decisions cannot both succeed, and each writes its history entry in the same
//! transaction.
//!
//! Loads are the exception: their records are not policy and are their own history (one
//! row per load, its state transitions conditional like the others), so writing them
//! neither bumps the generation (which would make every replica reload its policy) nor
//! writes history entries.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::model::*;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("metadata database holds an unreadable value: {0}")]
    Corrupt(String),
    /// A pagination cursor that this list never handed out.
    #[error("`{0}` is not a cursor of this list")]
    BadCursor(String),
    /// The database URL is not supported.
    #[error("unsupported database URL `{0}`: use a sqlite:// path or postgres://")]
    UnsupportedUrl(String),
}

/// Result with [`StoreError`].
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// Which SQL backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Embedded migrations, applied in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "governance",
        include_str!("migrations/0001_governance.sql"),
    ),
    (
        2,
        "change_base",
        include_str!("migrations/0002_change_base.sql"),
    ),
    (3, "loads", include_str!("migrations/0003_loads.sql")),
    (
        4,
        "portal_sessions",
        include_str!("migrations/0004_portal_sessions.sql"),
    ),
    (
        5,
        "login_throttle",
        include_str!("migrations/0005_login_throttle.sql"),
    ),
];

/// A portal session as stored (its key, the hash of the cookie secret, is kept apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The signed-in user, for an organisation's person or an admin.
    pub user_id: Option<i64>,
    /// SHA-256 (hex) of the subject token a citizen signed in with.
    pub subject_token: Option<String>,
    /// The token every form of the session carries.
    pub csrf: String,
    /// When the session began.
    pub created_at: Time,
    /// When it was last used.
    pub last_seen: Time,
    /// When it dies unless used again.
    pub expires_at: Time,
}

/// Keyset pagination: at most `limit` items after the cursor `after` (exclusive).
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Largest number of items.
    pub limit: i64,
    /// Cursor: the last id (or code) of the previous page.
    pub after: Option<String>,
}

/// Filters of request and agreement lists.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this dataset.
    pub dataset: Option<String>,
    /// Only this consumer organisation.
    pub consumer: Option<String>,
    /// Only datasets of this owner organisation.
    pub owner: Option<String>,
    /// Consumer or owner: either side is this organisation.
    pub party: Option<String>,
    /// Only this stored status.
    pub status: Option<String>,
    /// Only pending requests whose deadline is before this time.
    pub due_before: Option<Time>,
}

/// A new access request, validated by the governance service.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Dataset.
    pub dataset: String,
    /// Owner organisation.
    pub owner_organisation: String,
    /// Requesting organisation.
    pub consumer_organisation: String,
    /// Attributes.
    pub attributes: Vec<String>,
    /// Row scope.
    pub row_scope: Option<String>,
    /// Purpose.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Systems.
    pub systems: Vec<i64>,
    /// Validity start.
    pub valid_from: Time,
    /// Validity end.
    pub valid_to: Time,
    /// Who files it.
    pub created_by: String,
    /// When it is made (the SLA deadline counts from it).
    pub created_at: Time,
    /// SLA deadline.
    pub due_at: Time,
}

/// What an approval grants (the request, possibly narrowed).
#[derive(Debug, Clone)]
pub struct Approval {
    /// Granted attributes.
    pub attributes: Vec<String>,
    /// Granted row scope.
    pub row_scope: Option<String>,
    /// Validity start.
    pub valid_from: Time,
    /// Validity end.
    pub valid_to: Time,
    /// A note for the history.
    pub note: Option<String>,
}

/// A load to record, as it starts.
#[derive(Debug, Clone)]
pub struct NewLoad {
    /// Dataset.
    pub dataset: String,
    /// How the data arrives.
    pub channel: LoadChannel,
    /// What the load does.
    pub mode: LoadMode,
    /// The first state: `receiving` while data arrives, or `validating` when it is all there.
    pub status: LoadStatus,
    /// The server that holds the load's data while it runs (see
    /// [`MetaStore::interrupt_loads`]).
    pub node: String,
    /// Who loads (a principal's description).
    pub created_by: String,
}

/// A history entry to write with a change.
#[derive(Debug, Clone)]
struct Event<'a> {
    /// Kind of entity.
    entity: &'a str,
    /// Its id.
    entity_id: String,
    /// What happened.
    action: &'a str,
    /// Status before.
    from: Option<&'a str>,
    /// Status after.
    to: Option<&'a str>,
    /// Who.
    actor: &'a str,
    /// Why.
    reason: Option<&'a str>,
    /// Details.
    details: Option<serde_json::Value>,
}

/// Query arguments of dynamically built SQL.
enum Arg {
    I(i64),
    S(String),
}

struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl<'a> Event<'a> {
    fn new(entity: &'a str, entity_id: impl ToString, action: &'a str, actor: &'a str) -> Self {
        Event {
            entity,
            entity_id: entity_id.to_string(),
            action,
            from: None,
            to: None,
            actor,
            reason: None,
            details: None,
        }
    }

    fn status(mut self, from: Option<&'a str>, to: Option<&'a str>) -> Self {
        self.from = from;
        self.to = to;
        self
    }

    fn reason(mut self, reason: Option<&'a str>) -> Self {
        self.reason = reason;
        self
    }

    fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn and(&mut self, cond: &str, a: Arg) {
        let p = self.arg(a);
        self.text.push_str(" AND ");
        self.text.push_str(&cond.replace('?', &p));
    }

    fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::I(v) => q.bind(*v),
                Arg::S(v) => q.bind(v.as_str()),
            };
        }
        q
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn enum_col<T>(row: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{col} = `{s}`")))
}

fn time_col(row: &AnyRow, col: &str) -> StoreResult<Time> {
    Ok(Time(row.try_get::<i64, _>(col)?))
}

fn opt_time_col(row: &AnyRow, col: &str) -> StoreResult<Option<Time>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Time))
}

fn unique_conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

fn organisation_row(r: &AnyRow) -> StoreResult<Organisation> {
    Ok(Organisation {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        created_at: time_col(r, "created_at")?,
    })
}

fn user_row(r: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: r.try_get("id")?,
        login: r.try_get("login")?,
        name: r.try_get("name")?,
        organisation: r.try_get("organisation")?,
        role: enum_col(r, "role", UserRole::parse)?,
        created_at: time_col(r, "created_at")?,
    })
}

fn system_row(r: &AnyRow) -> StoreResult<System> {
    Ok(System {
        id: r.try_get("id")?,
        organisation: r.try_get("organisation")?,
        name: r.try_get("name")?,
        kind: enum_col(r, "kind", SystemKind::parse)?,
        description: r.try_get("description")?,
        created_at: time_col(r, "created_at")?,
    })
}

fn token_row(r: &AnyRow) -> StoreResult<Token> {
    Ok(Token {
        id: r.try_get("id")?,
        prefix: r.try_get("prefix")?,
        kind: enum_col(r, "kind", TokenKind::parse)?,
        system: r.try_get("system_id")?,
        subject: r.try_get("subject")?,
        label: r.try_get("label")?,
        created_at: time_col(r, "created_at")?,
        created_by: r.try_get("created_by")?,
        expires_at: opt_time_col(r, "expires_at")?,
        revoked_at: opt_time_col(r, "revoked_at")?,
    })
}

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

/// The metadata store.
#[derive(Debug, Clone)]
pub struct MetaStore {
    pool: AnyPool,
    backend: Backend,
}

impl MetaStore {
    /// Open the SQLite file `path` (created if missing) and migrate it.
    pub async fn open_sqlite(path: &Path) -> StoreResult<Self> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connect to `url` (`sqlite://PATH?mode=rwc` or `postgres://...`) and migrate it.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let _ = sqlx::any::AnyConnectOptions::from_str(url)?;
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10));
        let pool = options.connect(url).await?;
        let store = MetaStore { pool, backend };
        if backend == Backend::Sqlite {
            // WAL: readers do not block the writer; FULL sync: an acknowledged change
            // survives power loss.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&store.pool)
                .await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    /// The connection pool, for tools and tests that need SQL the store does not offer.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> StoreResult<()> {
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        };
        let set = MigrationSet {
            table: "dagr_migrations",
            lock: 7036137,
            what: "metadata",
            migrations: MIGRATIONS,
        };
        apply_migrations(&self.pool, self.backend, &set, |sql| {
            sql.replace("{id}", id)
        })
        .await?;
        Ok(())
    }

    /// The change counter; it grows with every committed write.
    pub async fn generation(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT value FROM dagr_meta WHERE key = 'generation'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE dagr_meta SET value = value + 1 WHERE key = 'generation'")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn event(tx: &mut Transaction<'static, Any>, e: Event<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO history (entity, entity_id, action, from_status, to_status, actor, \
             reason, at, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.entity)
        .bind(e.entity_id)
        .bind(e.action)
        .bind(e.from)
        .bind(e.to)
        .bind(e.actor)
        .bind(e.reason)
        .bind(Time::now().0)
        .bind(e.details.map(|d| d.to_string()))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    // ---- organisations -------------------------------------------------------------

    /// Register an organisation.
    pub async fn create_organisation(
        &self,
        code: &str,
        name: &str,
        actor: &str,
    ) -> StoreResult<Organisation> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO organisations (code, name, created_at) VALUES ($1, $2, $3)")
            .bind(code)
            .bind(name)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_conflict(e, || format!("organisation `{code}`")))?;
        Self::event(
            &mut tx,
            Event::new("organisation", code, "created", actor)
                .details(serde_json::json!({ "name": name })),
        )
        .await?;
        tx.commit().await?;
        Ok(Organisation {
            code: code.to_owned(),
            name: name.to_owned(),
            created_at: now,
        })
    }

    /// Rename an organisation. `false` if there is none with that code.
    pub async fn rename_organisation(
        &self,
        code: &str,
        name: &str,
        actor: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE organisations SET name = $2 WHERE code = $1")
            .bind(code)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::event(
            &mut tx,
            Event::new("organisation", code, "renamed", actor)
                .details(serde_json::json!({ "name": name })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One organisation.
    pub async fn organisation(&self, code: &str) -> StoreResult<Option<Organisation>> {
        sqlx::query("SELECT * FROM organisations WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(organisation_row)
            .transpose()
    }

    /// Organisations by code.
    pub async fn organisations(&self, page: &Page) -> StoreResult<Vec<Organisation>> {
        let mut sql = Sql::new("SELECT * FROM organisations WHERE 1 = 1");
        if let Some(after) = &page.after {
            sql.and("code > ?", Arg::S(after.clone()));
        }
        let limit = sql.arg(Arg::I(page.limit));
        sql.text.push_str(&format!(" ORDER BY code LIMIT {limit}"));
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(organisation_row)
            .collect()
    }

    // ---- users ---------------------------------------------------------------------

    /// Create a user with an already hashed password.
    pub async fn create_user(
        &self,
        login: &str,
        name: &str,
        organisation: Option<&str>,
        role: UserRole,
        password_hash: &str,
        actor: &str,
    ) -> StoreResult<User> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (login, name, organisation, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(login)
        .bind(name)
        .bind(organisation)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_conflict(e, || format!("user `{login}`")))?;
        Self::event(
            &mut tx,
            Event::new("user", id, "created", actor)
                .details(serde_json::json!({ "login": login, "role": role.as_str() })),
        )
        .await?;
        tx.commit().await?;
        Ok(User {
            id,
            login: login.to_owned(),
            name: name.to_owned(),
            organisation: organisation.map(str::to_owned),
            role,
            created_at: now,
        })
    }

    /// One user by id.
    pub async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    // ---- portal sessions -----------------------------------------------------------

    /// Store a new portal session under the hash of its secret, dropping dead sessions.
    pub async fn create_session(&self, id_hash: &str, s: &PortalSession) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(s.created_at.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_sessions \
             (id_hash, user_id, subject_token, csrf, created_at, last_seen, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash)
        .bind(s.user_id)
        .bind(s.subject_token.as_deref())
        .bind(&s.csrf)
        .bind(s.created_at.0)
        .bind(s.last_seen.0)
        .bind(s.expires_at.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session stored under `id_hash`, dead or alive.
    pub async fn session(&self, id_hash: &str) -> StoreResult<Option<PortalSession>> {
        let Some(r) = sqlx::query("SELECT * FROM portal_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(PortalSession {
            user_id: r.try_get("user_id")?,
            subject_token: r.try_get("subject_token")?,
            csrf: r.try_get("csrf")?,
            created_at: time_col(&r, "created_at")?,
            last_seen: time_col(&r, "last_seen")?,
            expires_at: time_col(&r, "expires_at")?,
        }))
    }

    /// Record use of a session: it now lives until `expires_at`.
    pub async fn touch_session(
        &self,
        id_hash: &str,
        last_seen: Time,
        expires_at: Time,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE portal_sessions SET last_seen = $2, expires_at = $3 WHERE id_hash = $1",
        )
        .bind(id_hash)
        .bind(last_seen.0)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// End a session (sign-out); ending an unknown one is not an error.
    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Users, optionally of one organisation.
    pub async fn users(&self, organisation: Option<&str>, page: &Page) -> StoreResult<Vec<User>> {
        let mut sql = Sql::new("SELECT * FROM users WHERE 1 = 1");
        if let Some(o) = organisation {
            sql.and("organisation = ?", Arg::S(o.to_owned()));
        }
        id_page(&mut sql, page, false)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_row)
            .collect()
    }

    // ---- systems -------------------------------------------------------------------

    /// Register a system.
    pub async fn create_system(
        &self,
        organisation: &str,
        name: &str,
        kind: SystemKind,
        description: &str,
        actor: &str,
    ) -> StoreResult<System> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO systems (organisation, name, kind, description, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(organisation)
        .bind(name)
        .bind(kind.as_str())
        .bind(description)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_conflict(e, || format!("system `{name}` of `{organisation}`")))?;
        Self::event(
            &mut tx,
            Event::new("system", id, "created", actor).details(serde_json::json!({
                "organisation": organisation, "name": name, "kind": kind.as_str()
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(System {
            id,
            organisation: organisation.to_owned(),
            name: name.to_owned(),
            kind,
            description: description.to_owned(),
            created_at: now,
        })
    }

    /// One system.
    pub async fn system(&self, id: i64) -> StoreResult<Option<System>> {
        sqlx::query("SELECT * FROM systems WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(system_row)
            .transpose()
    }

    /// Systems, optionally of one organisation, by id.
    pub async fn systems(
        &self,
        organisation: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<System>> {
        let mut sql = Sql::new("SELECT * FROM systems WHERE 1 = 1");
        if let Some(o) = organisation {
            sql.and("organisation = ?", Arg::S(o.to_owned()));
        }
        id_page(&mut sql, page, false)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(system_row)
            .collect()
    }

    // ---- tokens --------------------------------------------------------------------

    /// Store a new token (its secret already hashed).
    #[expect(
        clippy::too_many_arguments,
        reason = "one column each; called by one service"
    )]
    pub async fn create_token(
        &self,
        kind: TokenKind,
        system: Option<i64>,
        subject: Option<&str>,
        label: &str,
        expires_at: Option<Time>,
        hash_hex: &str,
        prefix: &str,
        actor: &str,
    ) -> StoreResult<Token> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (secret_hash, prefix, kind, system_id, subject, label, \
             created_at, created_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(hash_hex)
        .bind(prefix)
        .bind(kind.as_str())
        .bind(system)
        .bind(subject)
        .bind(label)
        .bind(now.0)
        .bind(actor)
        .bind(expires_at.map(|t| t.0))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_conflict(e, || "token".to_owned()))?;
        Self::event(
            &mut tx,
            Event::new("token", id, "created", actor)
                .status(None, Some("active"))
                .details(serde_json::json!({
                    "kind": kind.as_str(), "system": system, "label": label,
                    "expires_at": expires_at.map(Time::to_rfc3339),
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(Token {
            id,
            prefix: prefix.to_owned(),
            kind,
            system,
            subject: subject.map(str::to_owned),
            label: label.to_owned(),
            created_at: now,
            created_by: actor.to_owned(),
            expires_at,
            revoked_at: None,
        })
    }

    /// One token's metadata.
    pub async fn token(&self, id: i64) -> StoreResult<Option<Token>> {
        sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_row)
            .transpose()
    }

    /// Tokens, optionally of one system.
    pub async fn tokens(&self, system: Option<i64>, page: &Page) -> StoreResult<Vec<Token>> {
        let mut sql = Sql::new("SELECT * FROM tokens WHERE 1 = 1");
        if let Some(s) = system {
            sql.and("system_id = ?", Arg::I(s));
        }
        id_page(&mut sql, page, false)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_row)
            .collect()
    }

    /// Revoke a token; `false` if it was already revoked.
    pub async fn revoke_token(&self, id: i64, actor: &str, reason: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(Time::now().0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::event(
            &mut tx,
            Event::new("token", id, "revoked", actor)
                .status(Some("active"), Some("revoked"))
                .reason(Some(reason)),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every token that is not revoked, with its hash and system, for the authenticator.
    pub async fn live_tokens(&self) -> StoreResult<Vec<TokenAuth>> {
        let rows = sqlx::query(
            "SELECT t.*, s.organisation AS s_organisation, s.name AS s_name, s.kind AS s_kind, \
             s.description AS s_description, s.created_at AS s_created_at \
             FROM tokens t LEFT JOIN systems s ON s.id = t.system_id \
             WHERE t.revoked_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let token = token_row(r)?;
                let hex: String = r.try_get("secret_hash")?;
                let hash = crate::auth::parse_hash(&hex)
                    .ok_or_else(|| StoreError::Corrupt(format!("token {} hash", token.id)))?;
                let system = match token.system {
                    Some(id) => Some(System {
                        id,
                        organisation: r.try_get("s_organisation")?,
                        name: r.try_get("s_name")?,
                        kind: enum_col(r, "s_kind", SystemKind::parse)?,
                        description: r.try_get("s_description")?,
                        created_at: time_col(r, "s_created_at")?,
                    }),
                    None => None,
                };
                Ok(TokenAuth {
                    token,
                    hash,
                    system,
                })
            })
            .collect()
    }

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
        id_page(&mut sql, page, true)?;
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

fn apply_filter(sql: &mut Sql, f: &ListFilter) {
    if let Some(d) = &f.dataset {
        sql.and("dataset = ?", Arg::S(d.clone()));
    }
    if let Some(c) = &f.consumer {
        sql.and("consumer_organisation = ?", Arg::S(c.clone()));
    }
    if let Some(o) = &f.owner {
        sql.and("owner_organisation = ?", Arg::S(o.clone()));
    }
    if let Some(p) = &f.party {
        let a = sql.arg(Arg::S(p.clone()));
        let b = sql.arg(Arg::S(p.clone()));
        sql.text.push_str(&format!(
            " AND (consumer_organisation = {a} OR owner_organisation = {b})"
        ));
    }
    if let Some(s) = &f.status {
        sql.and("status = ?", Arg::S(s.clone()));
    }
}

/// Keyset pagination over `id`, newest first when `desc`.
fn id_page(sql: &mut Sql, page: &Page, desc: bool) -> StoreResult<()> {
    if let Some(after) = &page.after {
        let id: i64 = after
            .parse()
            .map_err(|_| StoreError::BadCursor(after.clone()))?;
        sql.and(if desc { "id < ?" } else { "id > ?" }, Arg::I(id));
    }
    let limit = sql.arg(Arg::I(page.limit));
    sql.text.push_str(&format!(
        " ORDER BY id {} LIMIT {limit}",
        if desc { "DESC" } else { "ASC" }
    ));
    Ok(())
}

/// A URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// An embedded set of migrations: (version, name, SQL with statements separated by a line
/// holding only `;`), tracked in a table of its own.
pub(crate) struct MigrationSet {
    /// The tracking table.
    pub(crate) table: &'static str,
    /// The PostgreSQL advisory lock key of the set.
    pub(crate) lock: i64,
    /// What the set is of, for the log.
    pub(crate) what: &'static str,
    /// The migrations, in order.
    pub(crate) migrations: &'static [(i64, &'static str, &'static str)],
}

/// Apply the migrations of `set` not applied yet, all in one transaction; on PostgreSQL under
/// the set's advisory lock, taken first, so that replicas starting together migrate one after
/// the other. `subst` fills each backend's placeholders into a statement.
pub(crate) async fn apply_migrations(
    pool: &AnyPool,
    backend: Backend,
    set: &MigrationSet,
    subst: impl Fn(&str) -> String,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({})", set.lock))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {} \
         (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        set.table
    ))
    .execute(&mut *tx)
    .await?;
    for (version, name, sql) in set.migrations {
        let done: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {} WHERE version = $1",
            set.table
        ))
        .bind(*version)
        .fetch_optional(&mut *tx)
        .await?;
        if done.is_some() {
            continue;
        }
        for stmt in sql.split("\n;\n") {
            let stmt: String = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if stmt.trim().is_empty() {
                continue;
            }
            sqlx::query(&subst(&stmt)).execute(&mut *tx).await?;
        }
        sqlx::query(&format!(
            "INSERT INTO {} (version, name, applied_at) VALUES ($1, $2, $3)",
            set.table
        ))
        .bind(*version)
        .bind(*name)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await?;
        tracing::info!(version, name, set = set.what, "migration applied");
    }
    tx.commit().await
}

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

mod accounts;
mod agreements;
pub mod ledger;
mod loads;
mod quotas;

pub use ledger::SqlLedger;

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
        include_str!("../migrations/0001_governance.sql"),
    ),
    (
        2,
        "change_base",
        include_str!("../migrations/0002_change_base.sql"),
    ),
    (3, "loads", include_str!("../migrations/0003_loads.sql")),
    (
        4,
        "portal_sessions",
        include_str!("../migrations/0004_portal_sessions.sql"),
    ),
    (
        5,
        "login_throttle",
        include_str!("../migrations/0005_login_throttle.sql"),
    ),
    (
        6,
        "user_tokens",
        include_str!("../migrations/0006_user_tokens.sql"),
    ),
    (7, "outbox", include_str!("../migrations/0007_outbox.sql")),
    (
        8,
        "calendar",
        include_str!("../migrations/0008_calendar.sql"),
    ),
    (9, "inbox", include_str!("../migrations/0009_inbox.sql")),
    (
        10,
        "system_quotas",
        include_str!("../migrations/0010_system_quotas.sql"),
    ),
    (11, "ledger", include_str!("../migrations/0011_ledger.sql")),
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
    /// Requests: earliest decision deadline first (cursor `DUE_MS.ID`) instead of newest
    /// first.
    pub by_due: bool,
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

/// `v` as JSON text, for a TEXT column.
/// Record the consumer system a business module reads the registers under for
/// `organisation` (MAP's grantors, TAPIS's municipalities), replacing an earlier one, in
/// `table` (`organisation`, `system_id`, `created_at`).
pub(crate) async fn set_module_system(
    pool: &AnyPool,
    table: &'static str,
    organisation: &str,
    system: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DELETE FROM {table} WHERE organisation = $1"))
        .bind(organisation)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO {table} (organisation, system_id, created_at) VALUES ($1, $2, $3)"
    ))
    .bind(organisation)
    .bind(system)
    .bind(crate::model::Time::now().0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// A TEXT column's JSON as `T`; unreadable JSON is [`StoreError::Corrupt`] naming `what`.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
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
        crate::map::MapStore::migrate(&store.pool, store.backend).await?;
        crate::tapis::TapisStore::migrate(&store.pool, store.backend).await?;
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
        let set = MigrationSet {
            table: "dagr_migrations",
            lock: 7036137,
            what: "metadata",
            migrations: MIGRATIONS,
        };
        apply_migrations_with_ids(&self.pool, self.backend, &set).await?;
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
    const HIDDEN: &str = "*** (URL hidden: it may hold a password)";
    let secret_key = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["password", "secret", "token"]
            .iter()
            .any(|w| k.contains(w))
    };
    let Ok(mut u) = url::Url::parse(url) else {
        // Unparsable: hidden when it may hold a password (userinfo, a secret-looking key),
        // else shown as written (`sqlite://:memory:`).
        let lower = url.to_ascii_lowercase();
        let risky = url.contains('@')
            || ["password", "secret", "token"]
                .iter()
                .any(|w| lower.contains(w));
        return if risky {
            HIDDEN.to_owned()
        } else {
            url.to_owned()
        };
    };
    // A password starting with digits and holding `/`, `?` or `#` parses as a port and a
    // path: an `@` left after the host means the split went wrong.
    if [
        u.path(),
        u.query().unwrap_or(""),
        u.fragment().unwrap_or(""),
    ]
    .iter()
    .any(|part| part.contains('@'))
    {
        return HIDDEN.to_owned();
    }
    let mut changed = false;
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
        changed = true;
    }
    if u.query_pairs().any(|(k, _)| secret_key(&k)) {
        // `?password=...` (and `sslpassword`, secrets, tokens) as sqlx also accepts them.
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_key(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    // Unchanged URLs are shown as written (no normalisation of paths or encodings).
    if changed {
        u.to_string()
    } else {
        url.to_owned()
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

/// [`apply_migrations`] with `{id}` filled with the backend's auto-increment key: the
/// metadata store's and its modules' (MAP, TAPIS) sets.
pub(crate) async fn apply_migrations_with_ids(
    pool: &AnyPool,
    backend: Backend,
    set: &MigrationSet,
) -> Result<(), sqlx::Error> {
    let id = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    apply_migrations(pool, backend, set, |sql| sql.replace("{id}", id)).await
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

#[cfg(test)]
mod redact_tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://dagr:pw@db:5432/dagr"),
            "postgres://dagr:***@db:5432/dagr"
        );
        assert_eq!(
            redact("postgres://dagr@db/dagr?password=pw&sslmode=disable"),
            "postgres://dagr@db/dagr?password=***&sslmode=disable"
        );
        let odd = redact("postgres://dagr:p/w#x@db/dagr");
        assert!(!odd.contains("p/w") && !odd.contains("x@db"), "{odd}");
        let port_like = redact("postgres://u:123/x@db/d");
        assert!(!port_like.contains("123/x"), "{port_like}");
        // Nothing secret: shown exactly as written.
        for plain in [
            "sqlite://meta.db",
            "sqlite://./x/../y.db",
            "sqlite://:memory:",
            "postgres://dagr@db/dagr?host=/var/run&sslkey=/etc/k.pem",
        ] {
            assert_eq!(redact(plain), plain);
        }
    }
}

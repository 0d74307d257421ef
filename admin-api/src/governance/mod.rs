//! The governance service: every rule of who may do what to organisations, systems, tokens,
//! datasets, access requests, agreements and schema changes. The REST handlers, the portal
//! and the `dagr admin` CLI all call this service; none has its own copy of the rules.
//!
//! Every write goes to the [`MetaStore`] first and then reloads the in-memory [`Policy`], so
//! an approval or a revocation is in force on this server when the call returns. Other
//! servers (replicas, or a server whose store `dagr admin` changed) pick changes up by
//! polling the store's generation counter ([`Governance::refresh_if_changed`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use dagr_engine::{DatasetDefinition, Engine, Principal, Role};

use crate::auth::{self, Policy, PolicyState};
use crate::model::*;
use crate::store::{Approval, ListFilter, MetaStore, NewRequest, Page, StoreError};

mod accounts;
mod datasets;
mod requests;

/// Days an owner has to decide a request when the dataset sets nothing else.
pub const DEFAULT_SLA_DAYS: i64 = 10;
/// Longest validity of an agreement.
pub const MAX_VALIDITY_DAYS: i64 = 3653;
/// Longest free text (purpose, legal basis, reasons, descriptions).
pub const MAX_TEXT: usize = 2000;
/// Most items in a list field of a request (attributes, systems).
pub const MAX_LIST: usize = 1000;

/// Failed password checks in a row of one account from one source before that source is
/// refused for that account (see [`crate::throttle`]).
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a throttled source is refused.
pub const LOCKOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Password checks that may run at once (each takes tens of ms of a core and 19 MiB).
pub const MAX_PASSWORD_CHECKS: usize = 2;

/// Why a portal sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown login or wrong password (deliberately not saying which).
    #[error("wrong login or password")]
    Refused,
    /// Too many failures from this source (for this account, or for all): try again after
    /// the time given. Says nothing about the account, which is never locked.
    #[error("too many failed sign-ins from here; try again in {} s", .0.as_secs())]
    Throttled(std::time::Duration),
    /// The metadata store failed.
    #[error("cannot check the sign-in now: {0}")]
    Unavailable(String),
}

/// The turns of password checks, shared by every service of the process.
fn password_checks() -> &'static tokio::sync::Semaphore {
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_PASSWORD_CHECKS);
    &TURNS
}

/// Check a password against its hash off the async runtime.
async fn check_password(password: &str, hash: String) -> Result<bool, LoginError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|e| LoginError::Unavailable(format!("checking the password: {e}")))
}

/// An Argon2id hash of a password nobody has, checked for unknown logins so that they cost
/// the same time as known ones.
fn dummy_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password("no such user, no such password").unwrap_or_default())
}

/// Governance errors.
#[derive(Debug, thiserror::Error)]
pub enum GovError {
    /// The caller's role or organisation does not allow the action.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such entity (or not visible to the caller).
    #[error("{0} not found")]
    NotFound(String),
    /// A field of the input is invalid.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The field, as named in the API.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The action does not fit the entity's state (e.g. approving a refused request), or a
    /// name is taken. Nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// The metadata store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] dagr_engine::Error),
}

impl From<StoreError> for GovError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => GovError::Conflict(format!("{what} already exists")),
            StoreError::BadCursor(c) => GovError::Invalid {
                field: "after".into(),
                reason: format!("`{c}` is not a cursor of this list"),
            },
            other => GovError::Store(other),
        }
    }
}

/// Result with [`GovError`].
pub type GovResult<T> = std::result::Result<T, GovError>;

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn text(field: &str, value: &str, required: bool) -> GovResult<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(invalid(field, format!("longer than {MAX_TEXT} characters")));
    }
    Ok(v.to_owned())
}

fn check_code(field: &str, code: &str) -> GovResult<()> {
    let ok = (2..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "2–32 characters of A–Z, 0–9, `_` and `-` (e.g. `PMLP`)",
        ))
    }
}

fn check_name(field: &str, name: &str) -> GovResult<String> {
    let v = name.trim();
    if v.is_empty() || v.chars().count() > 200 {
        return Err(invalid(field, "must have 1–200 characters"));
    }
    Ok(v.to_owned())
}

/// Input of a new access request.
#[derive(Debug, Clone)]
pub struct RequestInput {
    /// Dataset.
    pub dataset: String,
    /// Attributes wanted.
    pub attributes: Vec<String>,
    /// Row scope wanted.
    pub row_scope: Option<String>,
    /// Purpose of use.
    pub purpose: String,
    /// Legal basis.
    pub legal_basis: String,
    /// The consumer's systems that will read.
    pub systems: Vec<i64>,
    /// Start (default now).
    pub valid_from: Option<Time>,
    /// End.
    pub valid_to: Time,
}

/// An owner's approval, possibly narrowing the request.
#[derive(Debug, Clone, Default)]
pub struct ApprovalInput {
    /// A subset of the requested attributes (default all).
    pub attributes: Option<Vec<String>>,
    /// A further row condition, combined with the requested scope by `AND`.
    pub row_scope: Option<String>,
    /// An earlier end (default the requested one).
    pub valid_to: Option<Time>,
    /// A note for the history.
    pub note: Option<String>,
}

/// A created token: its metadata and the secret, shown this once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The secret: send it as `Authorization: Bearer <secret>`. It is not stored and
    /// cannot be shown again.
    pub secret: String,
    /// The token's metadata.
    pub token: Token,
}

/// The governance service.
#[derive(Debug)]
pub struct Governance {
    store: MetaStore,
    /// `None` for the offline service of `dagr admin`, which must not open a data
    /// directory a server may be using; rules that need datasets refuse there.
    engine: Option<Arc<Engine>>,
    policy: Arc<Policy>,
    /// Serialises reloads, so a slow reload cannot overwrite a newer one.
    reload_lock: tokio::sync::Mutex<()>,
    /// Serialises schema changes with approvals on this server.
    schema_lock: tokio::sync::Mutex<()>,
}

impl Governance {
    /// A service over a migrated store and an engine; registers engine datasets the store
    /// does not know yet and loads the policy.
    pub async fn open(store: MetaStore, engine: Arc<Engine>) -> GovResult<Self> {
        let policy = Arc::new(Policy::new(Some(Arc::clone(&engine))));
        let gov = Governance {
            store,
            engine: Some(engine),
            policy,
            reload_lock: tokio::sync::Mutex::new(()),
            schema_lock: tokio::sync::Mutex::new(()),
        };
        gov.reconcile_definitions().await?;
        gov.sync_datasets().await?;
        gov.reload().await?;
        Ok(gov)
    }

    /// A service on the store alone, for `dagr admin` next to a possibly running server:
    /// organisations, users, systems and tokens work; rules that need the datasets (requests,
    /// approvals, registrations, schema changes) refuse with a clear error.
    pub fn offline(store: MetaStore) -> Self {
        Governance {
            store,
            engine: None,
            policy: Arc::new(Policy::new(None)),
            reload_lock: tokio::sync::Mutex::new(()),
            schema_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The metadata store.
    pub fn store(&self) -> &MetaStore {
        &self.store
    }

    /// The engine; refused on the offline service.
    pub fn engine(&self) -> GovResult<&Arc<Engine>> {
        self.engine
            .as_ref()
            .ok_or_else(|| GovError::Conflict("this needs the running server; use the API".into()))
    }

    /// The access policy (hand it to every protocol server).
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Register in the store every engine dataset it does not know yet (datasets created
    /// before the store existed, or by the demo), with its owner organisation.
    pub async fn sync_datasets(&self) -> GovResult<bool> {
        let Some(engine) = &self.engine else {
            return Ok(false);
        };
        let mut added = false;
        for name in engine.dataset_names() {
            if self.store.dataset(&name).await?.is_some() {
                continue;
            }
            let def = engine.definition(&name)?;
            if self.store.organisation(&def.owner).await?.is_none() {
                match self
                    .store
                    .create_organisation(&def.owner, &def.owner, "system")
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match self
                .store
                .create_dataset(&name, &def.owner, DEFAULT_SLA_DAYS, &[], "system")
                .await
            {
                Ok(_) => added = true,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(added)
    }

    /// Rebuild the policy from the store.
    pub async fn reload(&self) -> GovResult<()> {
        let _guard = self.reload_lock.lock().await;
        let generation = self.store.generation().await?;
        let tokens = self.store.live_tokens().await?;
        let agreements = self.store.active_agreements().await?;
        let owners = self
            .store
            .datasets()
            .await?
            .into_iter()
            .map(|d| (d.name, d.owner))
            .collect();
        let quotas = self.store.system_quotas().await?;
        self.policy
            .replace(PolicyState::new(generation, tokens, agreements, owners).with_quotas(quotas));
        Ok(())
    }

    /// Reload if the store changed since the last reload (another replica or the CLI wrote).
    pub async fn refresh_if_changed(&self) -> GovResult<bool> {
        let generation = self.store.generation().await?;
        if generation == self.policy.state().generation() {
            self.policy.mark_fresh();
            return Ok(false);
        }
        // The policy first: a revocation must not wait for anything else.
        self.reload().await?;
        self.reconcile_definitions().await?;
        if self.sync_datasets().await? {
            self.reload().await?;
        }
        Ok(true)
    }

    /// Refresh now if the policy is older than its freshness bound (the refresher may be
    /// starved or the store may have been unreachable); refuses when the store cannot be
    /// read, rather than deciding on a stale policy. Protocol servers call this before
    /// authenticating.
    pub async fn ensure_fresh(&self) -> GovResult<()> {
        if self.policy.is_stale() {
            self.refresh_if_changed().await?;
        }
        Ok(())
    }

    /// Bring each dataset's engine definition in line with its latest applied or accepted
    /// schema change: finishes a change whose engine step did not happen (a crash between
    /// the store and the engine), and carries changes made on another replica.
    pub async fn reconcile_definitions(&self) -> GovResult<()> {
        let Some(engine) = &self.engine else {
            return Ok(());
        };
        for c in self.store.latest_definitions().await? {
            let Ok(current) = engine.definition(&c.dataset) else {
                continue;
            };
            let current = serde_json::to_value(current.as_ref())
                .map_err(|e| GovError::Store(StoreError::Corrupt(e.to_string())))?;
            if current == c.definition {
                continue;
            }
            let def: DatasetDefinition =
                serde_json::from_value(c.definition.clone()).map_err(|e| {
                    GovError::Store(StoreError::Corrupt(format!("change {}: {e}", c.id)))
                })?;
            tracing::info!(dataset = %c.dataset, change = c.id, "applying a schema change to the engine");
            engine.redefine(def).await?;
        }
        Ok(())
    }

    // ---- role helpers --------------------------------------------------------------

    /// Refuse anyone but an admin (for views that exist only for operators, such as the
    /// portal's dashboard).
    pub fn require_admin(p: &Principal) -> GovResult<()> {
        if p.role == Role::Admin {
            Ok(())
        } else {
            Err(GovError::Forbidden("only an admin may do this".into()))
        }
    }

    fn org_of(p: &Principal) -> GovResult<&str> {
        p.organisation
            .as_deref()
            .ok_or_else(|| GovError::Forbidden("the caller belongs to no organisation".into()))
    }

    /// Admin, or an owner of `org`.
    /// Refuse anyone but an admin or an owner of `org` (e.g. who may revoke its agreements).
    pub fn require_admin_or_owner_of(p: &Principal, org: &str) -> GovResult<()> {
        match p.role {
            Role::Admin => Ok(()),
            Role::Owner if p.organisation.as_deref() == Some(org) => Ok(()),
            _ => Err(GovError::Forbidden(format!(
                "only an admin or an owner of `{org}` may do this"
            ))),
        }
    }

    async fn dataset_meta(&self, name: &str) -> GovResult<DatasetMeta> {
        self.store
            .dataset(name)
            .await?
            .ok_or_else(|| GovError::NotFound(format!("dataset `{name}`")))
    }

    /// Whether `p` may see records of organisation `org`'s governance (requests etc.).
    fn sees_org(p: &Principal, org: &str) -> bool {
        p.role == Role::Admin || p.organisation.as_deref() == Some(org)
    }
}

/// Restrict a list filter to what the caller may see.
fn scope_filter(p: &Principal, f: &mut ListFilter) -> GovResult<()> {
    match p.role {
        Role::Admin => {}
        Role::Consumer => f.consumer = Some(Governance::org_of(p)?.to_owned()),
        Role::Owner => f.owner = Some(Governance::org_of(p)?.to_owned()),
        Role::Subject => {
            return Err(GovError::Forbidden(
                "subjects see their usage log only".into(),
            ));
        }
    }
    Ok(())
}

fn check_attributes(
    list: &[String],
    exists: impl Fn(&str) -> bool,
    dataset: &str,
) -> GovResult<Vec<String>> {
    if list.is_empty() {
        return Err(invalid("attributes", "name at least one attribute"));
    }
    if list.len() > MAX_LIST {
        return Err(invalid("attributes", format!("at most {MAX_LIST}")));
    }
    let mut seen = BTreeSet::new();
    for a in list {
        if !exists(a) {
            return Err(invalid(
                "attributes",
                format!("`{a}` is not an attribute of `{dataset}`"),
            ));
        }
        if !seen.insert(a.as_str()) {
            return Err(invalid("attributes", format!("`{a}` is named twice")));
        }
    }
    Ok(list.to_vec())
}

fn check_validity(from: Time, to: Time, now: Time) -> GovResult<()> {
    if to <= from {
        return Err(invalid("valid_to", "must be after valid_from"));
    }
    if to <= now {
        return Err(invalid("valid_to", "must be in the future"));
    }
    if to > from.plus_days(MAX_VALIDITY_DAYS) {
        return Err(invalid(
            "valid_to",
            format!("at most {MAX_VALIDITY_DAYS} days after valid_from"),
        ));
    }
    if from > now.plus_days(366) {
        return Err(invalid("valid_from", "at most a year from now"));
    }
    Ok(())
}

/// What changes from `old` to `new`.
pub fn diff(old: &DatasetDefinition, new: &DatasetDefinition) -> SchemaDiff {
    let mut d = SchemaDiff::default();
    for a in &new.attributes {
        match old.attribute(&a.name) {
            None => d.added.push(a.name.clone()),
            Some(o) if o.data_type != a.data_type => d.retyped.push(Retyped {
                name: a.name.clone(),
                from: o.data_type.to_string(),
                to: a.data_type.to_string(),
            }),
            Some(_) => {}
        }
        if old
            .attribute(&a.name)
            .is_some_and(|o| o.personal && (!a.personal || a.subject != o.subject))
        {
            d.unmarked_personal.push(a.name.clone());
        }
    }
    for a in &old.attributes {
        if new.attribute(&a.name).is_none() {
            d.removed.push(a.name.clone());
        }
    }
    d
}

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
        self.policy
            .replace(PolicyState::new(generation, tokens, agreements, owners));
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

    // ---- organisations and users ---------------------------------------------------

    /// Register an organisation (admin).
    pub async fn create_organisation(
        &self,
        p: &Principal,
        code: &str,
        name: &str,
    ) -> GovResult<Organisation> {
        Self::require_admin(p)?;
        check_code("code", code)?;
        let name = check_name("name", name)?;
        let org = self
            .store
            .create_organisation(code, &name, &p.describe())
            .await?;
        Ok(org)
    }

    /// Rename an organisation (admin).
    pub async fn rename_organisation(
        &self,
        p: &Principal,
        code: &str,
        name: &str,
    ) -> GovResult<Organisation> {
        Self::require_admin(p)?;
        let name = check_name("name", name)?;
        if !self
            .store
            .rename_organisation(code, &name, &p.describe())
            .await?
        {
            return Err(GovError::NotFound(format!("organisation `{code}`")));
        }
        self.organisation(p, code).await
    }

    /// Organisations (any authenticated caller: the directory is not secret).
    pub async fn organisations(&self, _p: &Principal, page: &Page) -> GovResult<Vec<Organisation>> {
        Ok(self.store.organisations(page).await?)
    }

    /// One organisation.
    pub async fn organisation(&self, _p: &Principal, code: &str) -> GovResult<Organisation> {
        self.store
            .organisation(code)
            .await?
            .ok_or_else(|| GovError::NotFound(format!("organisation `{code}`")))
    }

    /// Create a portal user (admin): the local bootstrap (`dagr admin create-user`, the
    /// demo). Callers of the API and the portal go through
    /// [`Governance::create_user_by_caller`], which keeps admins from making persons of an
    /// organisation.
    pub async fn create_user(
        &self,
        p: &Principal,
        login: &str,
        name: &str,
        organisation: Option<&str>,
        role: UserRole,
        password: &str,
    ) -> GovResult<User> {
        Self::require_admin(p)?;
        let login_ok = (3..=64).contains(&login.len())
            && login.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'@')
            });
        if !login_ok {
            return Err(invalid(
                "login",
                "3–64 characters of a–z, 0–9, `.`, `_`, `-`, `@`",
            ));
        }
        let name = check_name("name", name)?;
        match (role, organisation) {
            (UserRole::Admin, Some(_)) => {
                return Err(invalid(
                    "organisation",
                    "an admin belongs to no organisation",
                ));
            }
            (UserRole::Owner | UserRole::Consumer, None) => {
                return Err(invalid("organisation", "required for owners and consumers"));
            }
            _ => {}
        }
        if let Some(o) = organisation {
            self.organisation(p, o).await?;
        }
        if password.chars().count() < 10 || password.len() > 1024 {
            return Err(invalid("password", "must have 10–1024 characters"));
        }
        // Argon2 is deliberately slow (tens of ms): keep it off the async runtime.
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| GovError::Store(StoreError::Corrupt(format!("hashing: {e}"))))?
            .map_err(|e| GovError::Store(StoreError::Corrupt(format!("hashing: {e}"))))?;
        Ok(self
            .store
            .create_user(login, &name, organisation, role, &hash, &p.describe())
            .await?)
    }

    /// Users (admin: all; others: their organisation's).
    pub async fn users(&self, p: &Principal, page: &Page) -> GovResult<Vec<User>> {
        let org = match p.role {
            Role::Admin => None,
            _ => Some(Self::org_of(p)?),
        };
        Ok(self.store.users(org, page).await?)
    }

    /// Check a portal user's password, with throttling per source ([`crate::throttle`]):
    /// after [`MAX_FAILED_LOGINS`] failures in a row on one account from one `source` (a
    /// peer address, [`crate::throttle::source_of`]), or
    /// [`crate::throttle::MAX_SOURCE_FAILURES`] from one source over all accounts, that
    /// source is refused ([`LoginError::Throttled`]) for [`LOCKOUT`]. The account is never
    /// locked: the right password from another source signs in.
    ///
    /// - Each attempt is reserved in the store before the password is checked (one atomic
    ///   upsert per bucket that counts it), so parallel attempts cannot try more passwords
    ///   than a bucket allows.
    /// - An unknown login and a wrong password are the same [`LoginError::Refused`], by the
    ///   answer and by its time (every refusal costs one password check).
    /// - At most [`MAX_PASSWORD_CHECKS`] password checks (Argon2id: tens of ms and 19 MiB
    ///   each) run at once; an attempt that cannot get a turn within 10 s is
    ///   [`LoginError::Unavailable`], so a flood of sign-ins cannot exhaust memory.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        source: &str,
    ) -> Result<User, LoginError> {
        if login.is_empty() || login.len() > 64 || password.is_empty() || password.len() > 1024 {
            return Err(LoginError::Refused);
        }
        let pool = self.store.pool();
        let buckets = crate::throttle::Buckets::new(login, source);
        crate::throttle::reserve_attempt(pool, &buckets, Time::now()).await?;
        let _turn = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            password_checks().acquire(),
        )
        .await
        .map_err(|_| LoginError::Unavailable("too many sign-ins at once".into()))?
        .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        let account = crate::throttle::account(pool, login).await?;
        let (id, ok) = match account {
            Some((id, hash)) => (Some(id), check_password(password, hash).await?),
            None => {
                // An unknown login: the same answer, the same cost.
                check_password(password, dummy_password_hash().to_owned()).await?;
                (None, false)
            }
        };
        crate::throttle::finish_attempt(pool, &buckets, ok, Time::now()).await?;
        match id {
            Some(id) if ok => self
                .store
                .user(id)
                .await
                .map_err(|e| LoginError::Unavailable(e.to_string()))?
                .ok_or(LoginError::Refused),
            _ => Err(LoginError::Refused),
        }
    }

    /// One user by id (for a portal session); `None` if the account is gone.
    pub async fn user_by_id(&self, id: i64) -> GovResult<Option<User>> {
        Ok(self.store.user(id).await?)
    }

    /// The principal a signed-in portal user acts as.
    pub fn user_principal(user: &User) -> Principal {
        Principal {
            role: match user.role {
                UserRole::Admin => Role::Admin,
                UserRole::Owner => Role::Owner,
                UserRole::Consumer => Role::Consumer,
            },
            organisation: user.organisation.clone(),
            system: None,
            subject: None,
            user: Some(user.login.clone()),
            token_id: None,
        }
    }

    // ---- systems and tokens --------------------------------------------------------

    /// Register a system (admin, or an owner of the organisation).
    pub async fn create_system(
        &self,
        p: &Principal,
        organisation: &str,
        name: &str,
        kind: SystemKind,
        description: &str,
    ) -> GovResult<System> {
        Self::require_admin_or_owner_of(p, organisation)?;
        self.organisation(p, organisation).await?;
        let name = check_name("name", name)?;
        let description = text("description", description, false)?;
        let s = self
            .store
            .create_system(organisation, &name, kind, &description, &p.describe())
            .await?;
        Ok(s)
    }

    /// One system (admin, or anyone of its organisation).
    pub async fn system(&self, p: &Principal, id: i64) -> GovResult<System> {
        match self.store.system(id).await? {
            Some(s) if Self::sees_org(p, &s.organisation) => Ok(s),
            _ => Err(GovError::NotFound(format!("system {id}"))),
        }
    }

    /// Systems (admin: all, optionally of one organisation; others: their organisation's).
    pub async fn systems(
        &self,
        p: &Principal,
        organisation: Option<&str>,
        page: &Page,
    ) -> GovResult<Vec<System>> {
        let org = match p.role {
            Role::Admin => organisation,
            _ => {
                let own = Self::org_of(p)?;
                if organisation.is_some_and(|o| o != own) {
                    return Err(GovError::Forbidden(
                        "only your own organisation's systems are listed".into(),
                    ));
                }
                Some(own)
            }
        };
        Ok(self.store.systems(org, page).await?)
    }

    async fn issue(
        &self,
        actor: &str,
        kind: TokenKind,
        system: Option<i64>,
        subject: Option<&str>,
        label: &str,
        expires_at: Option<Time>,
    ) -> GovResult<IssuedToken> {
        let label = text("label", label, false)?;
        if let Some(t) = expires_at
            && t <= Time::now()
        {
            return Err(invalid("expires_at", "must be in the future"));
        }
        let secret = auth::new_token()
            .map_err(|e| GovError::Store(StoreError::Corrupt(format!("random: {e}"))))?;
        let hash = auth::to_hex(&auth::token_hash(&secret));
        let token = self
            .store
            .create_token(
                kind,
                system,
                subject,
                &label,
                expires_at,
                &hash,
                &secret[..auth::TOKEN_SHOWN],
                actor,
            )
            .await?;
        self.reload().await?;
        Ok(IssuedToken { secret, token })
    }

    /// Issue a token for a system: by the role of its own organisation that reads the same
    /// data already ([`Governance::may_issue_system_token`]: an owner for a provider system,
    /// a person of it for a consumer system), never by an admin, since a system token reads
    /// data and admins read data only under an agreement. `None` is the local bootstrap of
    /// `dagr admin` and the demo, which have the data directory in hand anyway.
    pub async fn create_system_token(
        &self,
        p: Option<&Principal>,
        system: i64,
        label: &str,
        expires_at: Option<Time>,
    ) -> GovResult<IssuedToken> {
        let (s, actor) = match p {
            Some(p) => {
                let s = self.system(p, system).await?;
                Self::may_issue_system_token(p, &s)?;
                (s, p.describe())
            }
            None => (
                self.store
                    .system(system)
                    .await?
                    .ok_or_else(|| GovError::NotFound(format!("system {system}")))?,
                "dagr admin (bootstrap)".to_owned(),
            ),
        };
        self.issue(
            &actor,
            TokenKind::System,
            Some(s.id),
            None,
            label,
            expires_at,
        )
        .await
    }

    /// Issue an admin token (admin; `actor` names who, for the bootstrap CLI).
    pub async fn create_admin_token(
        &self,
        p: Option<&Principal>,
        label: &str,
        expires_at: Option<Time>,
    ) -> GovResult<IssuedToken> {
        let actor = match p {
            Some(p) => {
                Self::require_admin(p)?;
                p.describe()
            }
            None => "dagr admin (bootstrap)".to_owned(),
        };
        self.issue(&actor, TokenKind::Admin, None, None, label, expires_at)
            .await
    }

    /// Issue a subject token for a citizen (admin; demo sign-in until an eID provider).
    pub async fn create_subject_token(
        &self,
        p: Option<&Principal>,
        personal_code: &str,
        label: &str,
        expires_at: Option<Time>,
    ) -> GovResult<IssuedToken> {
        let actor = match p {
            Some(p) => {
                Self::require_admin(p)?;
                p.describe()
            }
            None => "dagr admin (bootstrap)".to_owned(),
        };
        let code = text("personal_code", personal_code, true)?;
        self.issue(
            &actor,
            TokenKind::Subject,
            None,
            Some(&code),
            label,
            expires_at,
        )
        .await
    }

    /// One token's metadata (admin, or anyone of its system's organisation).
    pub async fn token(&self, p: &Principal, id: i64) -> GovResult<Token> {
        let t = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| GovError::NotFound(format!("token {id}")))?;
        if p.role == Role::Admin || p.token_id.as_deref() == Some(id.to_string().as_str()) {
            return Ok(t);
        }
        match t.system {
            Some(s) if self.system(p, s).await.is_ok() => Ok(t),
            _ => Err(GovError::NotFound(format!("token {id}"))),
        }
    }

    /// Tokens of a system (admin, or anyone of its organisation).
    pub async fn system_tokens(
        &self,
        p: &Principal,
        system: i64,
        page: &Page,
    ) -> GovResult<Vec<Token>> {
        self.system(p, system).await?;
        Ok(self.store.tokens(Some(system), page).await?)
    }

    /// Token `id`, if `p` may revoke it (admin; an owner or a person of its system's
    /// organisation; or the token itself): 404 for a token `p` does not see, 403 for one it
    /// sees but may not revoke. The role check of [`Governance::revoke_token`], for callers
    /// that check before they read the request body.
    pub async fn revocable_token(&self, p: &Principal, id: i64) -> GovResult<Token> {
        let t = self.token(p, id).await?;
        let own = p.token_id.as_deref() == Some(&id.to_string());
        if !own && p.role != Role::Admin {
            let s = self.system(p, t.system.unwrap_or_default()).await?;
            // Whoever may issue the organisation's tokens may revoke them: a person of the
            // organisation who finds a token leaked must not have to wait for an owner.
            let person_of_org =
                p.user.is_some() && p.organisation.as_deref() == Some(s.organisation.as_str());
            if !person_of_org {
                Self::require_admin_or_owner_of(p, &s.organisation)?;
            }
        }
        Ok(t)
    }

    /// Revoke a token (admin; an owner of its system's organisation; or the token itself).
    /// Refused when it is already revoked.
    pub async fn revoke_token(&self, p: &Principal, id: i64, reason: &str) -> GovResult<Token> {
        let t = self.revocable_token(p, id).await?;
        let reason = text("reason", reason, false)?;
        if !self.store.revoke_token(id, &p.describe(), &reason).await? {
            return Err(GovError::Conflict(format!("token {id} is already revoked")));
        }
        // The revocation is committed: it must hold here even if the reload fails.
        if let Err(e) = self.reload().await {
            tracing::error!(error = %e, token = id, "reload after a revocation failed; dropping the token from memory");
            self.policy.forget_token(id);
        }
        self.token(p, id).await.or_else(|_| {
            Ok(Token {
                revoked_at: Some(Time::now()),
                ..t
            })
        })
    }

    // ---- datasets ------------------------------------------------------------------

    /// A dataset's governance metadata.
    pub async fn dataset(&self, _p: &Principal, name: &str) -> GovResult<DatasetMeta> {
        self.dataset_meta(name).await
    }

    /// Register a new dataset (an owner for its organisation, or an admin).
    pub async fn register_dataset(
        &self,
        p: &Principal,
        definition: DatasetDefinition,
        sla_days: Option<i64>,
        provider_systems: Vec<i64>,
    ) -> GovResult<DatasetMeta> {
        Self::require_admin_or_owner_of(p, &definition.owner)?;
        self.organisation(p, &definition.owner).await?;
        let sla = sla_days.unwrap_or(DEFAULT_SLA_DAYS);
        if !(1..=365).contains(&sla) {
            return Err(invalid("sla_days", "must be 1–365"));
        }
        self.check_provider_systems(&definition.owner, &provider_systems)
            .await?;
        let definition = definition.validated()?;
        if self.store.dataset(&definition.name).await?.is_some() {
            return Err(GovError::Conflict(format!(
                "dataset `{}` already exists",
                definition.name
            )));
        }
        let engine = self.engine()?;
        let name = definition.name.clone();
        let owner = definition.owner.clone();
        if engine.definition(&name).is_ok() {
            return Err(GovError::Conflict(format!(
                "dataset `{name}` already exists"
            )));
        }
        // The store first (with the caller's SLA and systems), then the engine; if the
        // engine refuses, the store row is taken back, so a refused registration leaves
        // nothing behind.
        let meta = self
            .store
            .create_dataset(&name, &owner, sla, &provider_systems, &p.describe())
            .await?;
        if let Err(e) = engine.create_dataset(definition).await {
            if let Err(undo) = self.store.delete_dataset(&name, &p.describe()).await {
                tracing::error!(dataset = %name, error = %undo, "could not take back a refused registration");
            }
            return Err(e.into());
        }
        self.reload().await?;
        Ok(meta)
    }

    async fn check_provider_systems(&self, owner: &str, systems: &[i64]) -> GovResult<()> {
        if systems.len() > 100 {
            return Err(invalid("provider_systems", "at most 100"));
        }
        for &id in systems {
            match self.store.system(id).await? {
                Some(s) if s.organisation == owner && s.kind == SystemKind::Provider => {}
                _ => {
                    return Err(invalid(
                        "provider_systems",
                        format!("system {id} is not a provider system of `{owner}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Change a dataset's SLA and provider systems (its owner, or an admin).
    pub async fn update_dataset(
        &self,
        p: &Principal,
        name: &str,
        sla_days: Option<i64>,
        provider_systems: Option<Vec<i64>>,
    ) -> GovResult<DatasetMeta> {
        let meta = self.dataset_meta(name).await?;
        Self::require_admin_or_owner_of(p, &meta.owner)?;
        let sla = sla_days.unwrap_or(meta.sla_days);
        if !(1..=365).contains(&sla) {
            return Err(invalid("sla_days", "must be 1–365"));
        }
        let systems = provider_systems.unwrap_or(meta.provider_systems);
        self.check_provider_systems(&meta.owner, &systems).await?;
        self.store
            .update_dataset(name, sla, &systems, &p.describe())
            .await?;
        self.dataset_meta(name).await
    }

    // ---- loads ---------------------------------------------------------------------

    /// Whether `p` loads datasets of organisation `owner` and sees their loads: an owner of
    /// it, or an admin.
    fn runs_loads_of(p: &Principal, owner: &str) -> bool {
        p.role == Role::Admin || (p.role == Role::Owner && p.organisation.as_deref() == Some(owner))
    }

    /// The dataset `name`, if `p` may load it (an owner of its organisation, or an admin).
    pub async fn loadable_dataset(&self, p: &Principal, name: &str) -> GovResult<DatasetMeta> {
        let meta = self.dataset_meta(name).await?;
        if !Self::runs_loads_of(p, &meta.owner) {
            return Err(GovError::Forbidden(format!(
                "only an admin or an owner of `{}` loads `{name}`",
                meta.owner
            )));
        }
        Ok(meta)
    }

    /// One load, for an owner of its dataset or an admin; anyone else is told it does not
    /// exist, so that load ids do not leak.
    pub async fn load(&self, p: &Principal, id: i64) -> GovResult<Load> {
        let not_found = || GovError::NotFound(format!("load {id}"));
        let load = self.store.load(id).await?.ok_or_else(not_found)?;
        let meta = self
            .store
            .dataset(&load.dataset)
            .await?
            .ok_or_else(not_found)?;
        if !Self::runs_loads_of(p, &meta.owner) {
            return Err(not_found());
        }
        Ok(load)
    }

    /// The load history of a dataset, newest first (its owners and admins).
    pub async fn loads(&self, p: &Principal, dataset: &str, page: &Page) -> GovResult<Vec<Load>> {
        let meta = self.dataset_meta(dataset).await?;
        if !Self::runs_loads_of(p, &meta.owner) {
            return Err(GovError::Forbidden(format!(
                "only an admin or an owner of `{}` sees the loads of `{dataset}`",
                meta.owner
            )));
        }
        Ok(self.store.loads_of(dataset, page).await?)
    }

    // ---- access requests -----------------------------------------------------------

    /// File an access request (a consumer: a consumer system's token or a consumer user).
    pub async fn create_request(
        &self,
        p: &Principal,
        input: RequestInput,
    ) -> GovResult<AccessRequest> {
        if p.role != Role::Consumer {
            return Err(GovError::Forbidden(
                "only a consumer (system or user) files access requests".into(),
            ));
        }
        let org = Self::org_of(p)?.to_owned();
        let meta = self.dataset_meta(&input.dataset).await?;
        if meta.owner == org {
            return Err(invalid(
                "dataset",
                "your organisation owns this dataset; owners need no agreement",
            ));
        }
        let def = self.engine()?.definition(&input.dataset)?;
        let attributes = check_attributes(
            &input.attributes,
            |a| def.attribute(a).is_some(),
            &input.dataset,
        )?;
        let row_scope = match &input.row_scope {
            Some(s) if !s.trim().is_empty() => {
                self.engine()?
                    .check_row_scope(&input.dataset, s)
                    .map_err(|e| invalid("row_scope", e.to_string()))?;
                Some(s.trim().to_owned())
            }
            _ => None,
        };
        let purpose = text("purpose", &input.purpose, true)?;
        let legal_basis = text("legal_basis", &input.legal_basis, true)?;
        if input.systems.is_empty() {
            return Err(invalid(
                "systems",
                "name at least one of your consumer systems",
            ));
        }
        if input.systems.len() > 100 {
            return Err(invalid("systems", "at most 100"));
        }
        let mut systems = input.systems.clone();
        systems.sort_unstable();
        systems.dedup();
        for &id in &systems {
            match self.store.system(id).await? {
                Some(s) if s.organisation == org && s.kind == SystemKind::Consumer => {}
                _ => {
                    return Err(invalid(
                        "systems",
                        format!("system {id} is not a consumer system of `{org}`"),
                    ));
                }
            }
        }
        let now = Time::now();
        let valid_from = input.valid_from.unwrap_or(now);
        check_validity(valid_from, input.valid_to, now)?;
        let request = self
            .store
            .create_request(&NewRequest {
                dataset: input.dataset.clone(),
                owner_organisation: meta.owner.clone(),
                consumer_organisation: org,
                attributes,
                row_scope,
                purpose,
                legal_basis,
                systems,
                valid_from,
                valid_to: input.valid_to,
                created_by: p.describe(),
                created_at: now,
                due_at: Self::decision_due(&meta, now),
            })
            .await?;
        Ok(request)
    }

    fn sees_request(p: &Principal, r: &AccessRequest) -> bool {
        p.role == Role::Admin
            || (p.role == Role::Consumer
                && p.organisation.as_deref() == Some(&r.consumer_organisation))
            || (p.role == Role::Owner && p.organisation.as_deref() == Some(&r.owner_organisation))
    }

    /// One request (admin; the consumer organisation; the dataset's owner).
    pub async fn request(&self, p: &Principal, id: i64) -> GovResult<AccessRequest> {
        match self.store.request(id).await? {
            Some(r) if Self::sees_request(p, &r) => Ok(r),
            _ => Err(GovError::NotFound(format!("request {id}"))),
        }
    }

    /// Requests visible to the caller, newest first. `overdue` lists only pending requests
    /// past their deadline.
    pub async fn requests(
        &self,
        p: &Principal,
        mut filter: ListFilter,
        overdue: bool,
        page: &Page,
    ) -> GovResult<Vec<AccessRequest>> {
        scope_filter(p, &mut filter)?;
        if overdue {
            filter.due_before = Some(Time::now());
        }
        Ok(self.store.requests(&filter, page).await?)
    }

    /// Approve a pending request, possibly narrowing it (the dataset's owner).
    pub async fn approve(
        &self,
        p: &Principal,
        id: i64,
        input: ApprovalInput,
    ) -> GovResult<Agreement> {
        let r = self.request(p, id).await?;
        Self::require_decider(p, &r)?;
        if r.status != RequestStatus::Pending {
            return Err(GovError::Conflict(format!(
                "request {id} is {}; only a pending request can be approved",
                r.status
            )));
        }
        // Serialise with schema changes on this server, so an approval cannot slip between a
        // change's check of the affected agreements and its application.
        let _schema = self.schema_lock.lock().await;
        let def = self.engine()?.definition(&r.dataset)?;
        let attributes = match input.attributes {
            None => r.attributes.clone(),
            Some(list) => {
                let list =
                    check_attributes(&list, |a| r.attributes.iter().any(|x| x == a), &r.dataset)
                        .map_err(|e| match e {
                            GovError::Invalid { reason, .. } => invalid(
                                "attributes",
                                format!(
                                    "{reason}; an approval may only narrow the requested attributes"
                                ),
                            ),
                            other => other,
                        })?;
                // Keep the dataset's order.
                r.attributes
                    .iter()
                    .filter(|a| list.contains(a))
                    .cloned()
                    .collect()
            }
        };
        if let Some(gone) = attributes.iter().find(|a| def.attribute(a).is_none()) {
            return Err(invalid(
                "attributes",
                format!(
                    "`{gone}` is no longer an attribute of `{}`; leave it out",
                    r.dataset
                ),
            ));
        }
        let extra = input
            .row_scope
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        if let Some(e) = extra {
            // Checked alone first: a fragment like `TRUE) OR (TRUE` would widen the
            // requested scope once pasted into `(S) AND (E)`.
            self.engine()?
                .check_row_scope(&r.dataset, e)
                .map_err(|e| invalid("row_scope", e.to_string()))?;
        }
        let row_scope = match (r.row_scope.as_deref(), extra) {
            (s, None) => s.map(str::to_owned),
            (None, Some(e)) => Some(e.to_owned()),
            // Newlines end any `--` comment inside a part, so neither can swallow the other.
            (Some(s), Some(e)) => Some(format!("({s}\n) AND ({e}\n)")),
        };
        if let Some(s) = &row_scope {
            self.engine()?
                .check_row_scope(&r.dataset, s)
                .map_err(|e| invalid("row_scope", e.to_string()))?;
        }
        let now = Time::now();
        let valid_to = match input.valid_to {
            None => r.valid_to,
            Some(t) if t > r.valid_to => {
                return Err(invalid(
                    "valid_to",
                    "an approval may end earlier, not later, than requested",
                ));
            }
            Some(t) => t,
        };
        if valid_to <= now {
            return Err(invalid(
                "valid_to",
                "the requested validity has already ended",
            ));
        }
        if valid_to <= r.valid_from {
            return Err(invalid(
                "valid_to",
                "must be after the requested valid_from",
            ));
        }
        let note = input
            .note
            .as_deref()
            .map(|n| text("note", n, false))
            .transpose()?;
        let approval = Approval {
            attributes,
            row_scope,
            valid_from: r.valid_from,
            valid_to,
            note,
        };
        let agreement = self
            .store
            .approve_request(&r, &approval, &p.describe())
            .await?
            .ok_or_else(|| GovError::Conflict(format!("request {id} was decided meanwhile")))?;
        self.reload().await?;
        Ok(agreement)
    }

    /// Refuse anyone but an owner of the organisation that decides request `r`.
    pub fn require_decider(p: &Principal, r: &AccessRequest) -> GovResult<()> {
        if p.role == Role::Owner && p.organisation.as_deref() == Some(&r.owner_organisation) {
            Ok(())
        } else {
            Err(GovError::Forbidden(format!(
                "only an owner of `{}` decides requests for `{}`",
                r.owner_organisation, r.dataset
            )))
        }
    }

    /// Refuse anyone but a consumer of the organisation that filed request `r` (who may
    /// withdraw it).
    pub fn require_requester(p: &Principal, r: &AccessRequest) -> GovResult<()> {
        if p.role == Role::Consumer && p.organisation.as_deref() == Some(&r.consumer_organisation) {
            Ok(())
        } else {
            Err(GovError::Forbidden(
                "only the requesting organisation withdraws a request".into(),
            ))
        }
    }

    /// Refuse a pending request with a reason (the dataset's owner).
    pub async fn refuse(&self, p: &Principal, id: i64, reason: &str) -> GovResult<AccessRequest> {
        let r = self.request(p, id).await?;
        Self::require_decider(p, &r)?;
        let reason = text("reason", reason, true)?;
        self.close(p, r, RequestStatus::Refused, Some(&reason))
            .await
    }

    /// Withdraw a pending request (the consumer organisation).
    pub async fn withdraw(
        &self,
        p: &Principal,
        id: i64,
        reason: Option<&str>,
    ) -> GovResult<AccessRequest> {
        let r = self.request(p, id).await?;
        Self::require_requester(p, &r)?;
        let reason = reason.map(|r| text("reason", r, false)).transpose()?;
        self.close(p, r, RequestStatus::Withdrawn, reason.as_deref())
            .await
    }

    async fn close(
        &self,
        p: &Principal,
        r: AccessRequest,
        to: RequestStatus,
        reason: Option<&str>,
    ) -> GovResult<AccessRequest> {
        if r.status != RequestStatus::Pending {
            return Err(GovError::Conflict(format!(
                "request {} is {}; only a pending request can be {to}",
                r.id, r.status
            )));
        }
        if !self
            .store
            .close_request(r.id, to, &p.describe(), reason)
            .await?
        {
            return Err(GovError::Conflict(format!(
                "request {} was decided meanwhile",
                r.id
            )));
        }
        self.request(p, r.id).await
    }

    // ---- agreements ----------------------------------------------------------------

    fn sees_agreement(p: &Principal, a: &Agreement) -> bool {
        p.role == Role::Admin
            || (p.role == Role::Consumer
                && p.organisation.as_deref() == Some(&a.consumer_organisation))
            || (p.role == Role::Owner && p.organisation.as_deref() == Some(&a.owner_organisation))
    }

    /// One agreement (admin; the consumer organisation; the dataset's owner).
    pub async fn agreement(&self, p: &Principal, id: i64) -> GovResult<Agreement> {
        match self.store.agreement(id).await? {
            Some(a) if Self::sees_agreement(p, &a) => Ok(a),
            _ => Err(GovError::NotFound(format!("agreement {id}"))),
        }
    }

    /// Agreements visible to the caller, newest first.
    pub async fn agreements(
        &self,
        p: &Principal,
        mut filter: ListFilter,
        page: &Page,
    ) -> GovResult<Vec<Agreement>> {
        scope_filter(p, &mut filter)?;
        Ok(self.store.agreements(&filter, page).await?)
    }

    /// Revoke an active agreement (the dataset's owner, or an admin), with a reason.
    pub async fn revoke(&self, p: &Principal, id: i64, reason: &str) -> GovResult<Agreement> {
        let a = self.agreement(p, id).await?;
        Self::require_admin_or_owner_of(p, &a.owner_organisation)?;
        let reason = text("reason", reason, true)?;
        if a.status != AgreementStatus::Active {
            return Err(GovError::Conflict(format!(
                "agreement {id} is {}; only an active agreement can be revoked",
                a.status
            )));
        }
        if !self
            .store
            .revoke_agreement(id, &p.describe(), &reason)
            .await?
        {
            return Err(GovError::Conflict(format!(
                "agreement {id} changed meanwhile"
            )));
        }
        self.reload().await?;
        self.agreement(p, id).await
    }

    /// The history of a request, agreement, change request, token, system or user, if the caller
    /// may see the entity.
    pub async fn history(
        &self,
        p: &Principal,
        entity: &str,
        id: i64,
    ) -> GovResult<Vec<HistoryEntry>> {
        match entity {
            "request" => drop(self.request(p, id).await?),
            "agreement" => drop(self.agreement(p, id).await?),
            "change_request" => drop(self.change_request(p, id).await?),
            "token" => drop(self.token(p, id).await?),
            "system" => drop(self.system(p, id).await?),
            "user" => self.user_history_visible(p, id).await?,
            other => return Err(GovError::NotFound(format!("entity kind `{other}`"))),
        }
        Ok(self.store.history(entity, &id.to_string()).await?)
    }

    // ---- schema change management ---------------------------------------------------

    /// File a schema change (the dataset's owner). A change that breaks no active agreement
    /// is applied at once; one that removes or retypes an attribute an active agreement
    /// grants (or its row scope reads) waits for an admin, listing those agreements; so does
    /// one that un-marks a personal attribute (or changes its subject column).
    pub async fn file_change(
        &self,
        p: &Principal,
        dataset: &str,
        definition: DatasetDefinition,
    ) -> GovResult<ChangeRequest> {
        let meta = self.dataset_meta(dataset).await?;
        if !(p.role == Role::Owner && p.organisation.as_deref() == Some(&meta.owner)) {
            return Err(GovError::Forbidden(format!(
                "only an owner of `{}` changes the schema of `{dataset}`",
                meta.owner
            )));
        }
        if definition.name != dataset {
            return Err(invalid("definition.name", format!("must be `{dataset}`")));
        }
        let new = definition.validated()?;
        let _schema = self.schema_lock.lock().await;
        let old = self.engine()?.definition(dataset)?;
        if new.owner != old.owner {
            return Err(invalid("definition.owner", "the owner cannot change"));
        }
        if new.primary_key != old.primary_key {
            return Err(invalid(
                "definition.primary_key",
                "the primary key cannot change; register a new dataset instead",
            ));
        }
        let changes = diff(&old, &new);
        let breaking: BTreeSet<&str> = changes
            .removed
            .iter()
            .map(String::as_str)
            .chain(changes.retyped.iter().map(|r| r.name.as_str()))
            .collect();
        let mut affected = Vec::new();
        if !breaking.is_empty() {
            let now = Time::now();
            let filter = ListFilter {
                dataset: Some(dataset.to_owned()),
                status: Some("active".into()),
                ..Default::default()
            };
            let page = Page {
                limit: i64::MAX,
                after: None,
            };
            for a in self.store.agreements(&filter, &page).await? {
                if a.valid_to <= now {
                    continue;
                }
                let mut hit: BTreeSet<String> = a
                    .attributes
                    .iter()
                    .filter(|x| breaking.contains(x.as_str()))
                    .cloned()
                    .collect();
                if let Some(scope) = &a.row_scope
                    && let Ok(cols) = self.engine()?.check_row_scope(dataset, scope)
                {
                    hit.extend(cols.into_iter().filter(|c| breaking.contains(c.as_str())));
                }
                if !hit.is_empty() {
                    affected.push(AffectedAgreement {
                        agreement: a.id,
                        consumer_organisation: a.consumer_organisation.clone(),
                        attributes: hit.into_iter().collect(),
                    });
                }
            }
        }
        let json = serde_json::to_value(&new).map_err(|e| invalid("definition", e.to_string()))?;
        let base =
            serde_json::to_value(old.as_ref()).map_err(|e| invalid("definition", e.to_string()))?;
        // Switching off (or re-pointing) the audit of a personal attribute is for an admin
        // to review, whoever reads it.
        let status = if affected.is_empty() && changes.unmarked_personal.is_empty() {
            ChangeStatus::Applied
        } else {
            ChangeStatus::Pending
        };
        // The record first: a crash after it is finished by `reconcile_definitions`.
        let change = self
            .store
            .create_change_request(
                dataset,
                &json,
                &base,
                &changes,
                &affected,
                status,
                &p.describe(),
            )
            .await?;
        if status == ChangeStatus::Applied {
            self.engine()?.redefine(new).await?;
        }
        Ok(change)
    }

    fn sees_change(p: &Principal, owner: &str) -> bool {
        p.role == Role::Admin || (p.role == Role::Owner && p.organisation.as_deref() == Some(owner))
    }

    /// One change request (admin, or an owner of the dataset).
    pub async fn change_request(&self, p: &Principal, id: i64) -> GovResult<ChangeRequest> {
        let not_found = || GovError::NotFound(format!("change request {id}"));
        let c = self.store.change_request(id).await?.ok_or_else(not_found)?;
        let meta = self.dataset_meta(&c.dataset).await?;
        if Self::sees_change(p, &meta.owner) {
            Ok(c)
        } else {
            Err(not_found())
        }
    }

    /// Change requests (admin: all; an owner: its datasets').
    pub async fn change_requests(
        &self,
        p: &Principal,
        dataset: Option<&str>,
        status: Option<&str>,
        page: &Page,
    ) -> GovResult<Vec<ChangeRequest>> {
        let owner = match p.role {
            Role::Admin => None,
            Role::Owner => Some(Self::org_of(p)?),
            _ => {
                return Err(GovError::Forbidden(
                    "only owners and admins see schema changes".into(),
                ));
            }
        };
        if let Some(s) = status
            && ChangeStatus::parse(s).is_none()
        {
            return Err(invalid(
                "status",
                "one of pending, applied, accepted, rejected",
            ));
        }
        Ok(self
            .store
            .change_requests(dataset, owner, status, page)
            .await?)
    }

    /// Accept a pending change (admin): the new definition takes effect, and removed
    /// attributes leave the affected agreements (an agreement left with none is revoked).
    pub async fn accept_change(&self, p: &Principal, id: i64) -> GovResult<ChangeRequest> {
        Self::require_admin(p)?;
        let c = self.change_request(p, id).await?;
        if c.status != ChangeStatus::Pending {
            return Err(GovError::Conflict(format!(
                "change request {id} is {}; only a pending one can be accepted",
                c.status
            )));
        }
        let def: DatasetDefinition = serde_json::from_value(c.definition.clone())
            .map_err(|e| GovError::Store(StoreError::Corrupt(format!("change {id}: {e}"))))?;
        let _schema = self.schema_lock.lock().await;
        let engine = self.engine()?;
        let current = engine.definition(&c.dataset)?;
        let current_json = serde_json::to_value(current.as_ref())
            .map_err(|e| GovError::Store(StoreError::Corrupt(e.to_string())))?;
        if c.base.as_ref() != Some(&current_json) {
            return Err(GovError::Conflict(format!(
                "the definition of `{}` changed after change request {id} was filed; \
                 reject it and file the change again against the current definition",
                c.dataset
            )));
        }
        // Agreements whose row scope reads a removed or retyped column would mean something
        // else (or fail) under the new definition: they are revoked, not narrowed.
        let broken: BTreeSet<String> = c
            .changes
            .removed
            .iter()
            .cloned()
            .chain(c.changes.retyped.iter().map(|r| r.name.clone()))
            .collect();
        let mut revoke = Vec::new();
        let active = ListFilter {
            dataset: Some(c.dataset.clone()),
            status: Some("active".into()),
            ..Default::default()
        };
        let all = Page {
            limit: i64::MAX,
            after: None,
        };
        for ag in self.store.agreements(&active, &all).await? {
            if let Some(scope) = &ag.row_scope
                && engine
                    .check_row_scope(&c.dataset, scope)
                    .map_or(true, |cols| cols.iter().any(|col| broken.contains(col)))
            {
                revoke.push(ag.id);
            }
        }
        // The decision first (with the agreements it narrows or revokes), then the engine;
        // if the process dies in between, `reconcile_definitions` finishes the job.
        if !self
            .store
            .decide_change_request(&c, ChangeStatus::Accepted, &p.describe(), None, &revoke)
            .await?
        {
            return Err(GovError::Conflict(format!(
                "change request {id} was decided meanwhile"
            )));
        }
        engine.redefine(def).await?;
        self.reload().await?;
        self.change_request(p, id).await
    }

    /// Reject a pending change with a reason (admin).
    pub async fn reject_change(
        &self,
        p: &Principal,
        id: i64,
        reason: &str,
    ) -> GovResult<ChangeRequest> {
        Self::require_admin(p)?;
        let c = self.change_request(p, id).await?;
        let reason = text("reason", reason, true)?;
        if c.status != ChangeStatus::Pending {
            return Err(GovError::Conflict(format!(
                "change request {id} is {}; only a pending one can be rejected",
                c.status
            )));
        }
        if !self
            .store
            .decide_change_request(
                &c,
                ChangeStatus::Rejected,
                &p.describe(),
                Some(&reason),
                &[],
            )
            .await?
        {
            return Err(GovError::Conflict(format!(
                "change request {id} was decided meanwhile"
            )));
        }
        self.change_request(p, id).await
    }

    /// When the owner of `meta` must decide an access request filed at `filed_at`: the
    /// deadline [`Governance::create_request`] gives a request (the portal shows it before
    /// the request is filed).
    pub fn decision_due(meta: &DatasetMeta, filed_at: Time) -> Time {
        filed_at.plus_days(meta.sla_days)
    }

    /// File a schema change as [`Governance::file_change`] does, with the owner's reason
    /// for it (optional; checked before anything is filed) kept in the change request's
    /// history as `explained`, for the admin who decides.
    pub async fn file_change_with_reason(
        &self,
        p: &Principal,
        dataset: &str,
        definition: DatasetDefinition,
        reason: &str,
    ) -> GovResult<ChangeRequest> {
        let reason = text("reason", reason, false)?;
        let change = self.file_change(p, dataset, definition).await?;
        // The change is committed (and, if not breaking, applied): a failure to add the
        // note must not make the caller file it again.
        if !reason.is_empty()
            && let Err(e) = self
                .store
                .add_note(
                    "change_request",
                    change.id,
                    "explained",
                    &p.describe(),
                    &reason,
                )
                .await
        {
            tracing::error!(error = %e, change = change.id, "cannot record a schema change's reason");
        }
        Ok(change)
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

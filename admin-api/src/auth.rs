//! Secrets and the in-memory access policy.
//!
//! - API tokens are `dagr_` + 64 hex digits (256 random bits). Only their SHA-256 is stored:
//!   a token has full entropy, so a fast hash is enough and lets every request be checked
//!   from memory in well under a microsecond.
//! - Passwords (portal users) are hashed with Argon2id and a random salt.
//! - [`Policy`] is the [`AccessPolicy`] of the engine seam: an immutable [`PolicyState`]
//!   (live tokens, agreements, dataset owners) swapped whole whenever the metadata store
//!   changes. Expiry of tokens and agreements is checked against the clock on every call,
//!   so it takes effect at once, without waiting for a reload. The state also carries each
//!   system's own quotas, and the policy owns the per-token quota state
//!   ([`dagr_engine::Quotas`]) that the REST API and the Flight service share.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use dagr_engine::{
    Access, AccessPolicy, AuthError, Grant, Principal, QuotaOverrides, Quotas, Role,
};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::model::{Agreement, SystemKind, Time, TokenAuth, TokenKind};

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "dagr_";
/// Characters of a token kept in clear to recognise it (`dagr_` + 8 hex digits).
pub const TOKEN_SHOWN: usize = TOKEN_PREFIX.len() + 8;

/// A new random token secret.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{TOKEN_PREFIX}{}", to_hex(&bytes)))
}

/// SHA-256 of a token secret.
pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Parse a 64-digit hex hash.
pub fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Hash a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Check a password against its PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// What the policy knows about one live token.
#[derive(Debug, Clone)]
struct TokenEntry {
    principal: Principal,
    expires_at: Option<Time>,
}

/// The policy's view of the metadata store at one generation.
#[derive(Debug, Default)]
pub struct PolicyState {
    generation: i64,
    tokens: HashMap<[u8; 32], TokenEntry>,
    /// Agreements stored as active, by consumer organisation.
    agreements: HashMap<String, Vec<Agreement>>,
    /// Datasets owned, by organisation: their attribute lists are read from the engine.
    owned: HashMap<String, Vec<String>>,
    /// Systems' own quotas, by system id (as in [`Principal::system`]).
    quotas: HashMap<String, QuotaOverrides>,
}

impl PolicyState {
    /// Build from the store's live tokens, active agreements and dataset owners.
    pub fn new(
        generation: i64,
        tokens: Vec<TokenAuth>,
        agreements: Vec<Agreement>,
        owners: Vec<(String, String)>,
    ) -> Self {
        let mut state = PolicyState {
            generation,
            ..Default::default()
        };
        for t in tokens {
            let id = t.token.id.to_string();
            let principal = match (t.token.kind, &t.system, &t.user) {
                (TokenKind::Admin, _, _) => Principal {
                    role: Role::Admin,
                    organisation: None,
                    system: None,
                    subject: None,
                    user: None,
                    token_id: Some(id),
                },
                (TokenKind::System, Some(s), _) => Principal {
                    role: match s.kind {
                        SystemKind::Provider => Role::Owner,
                        SystemKind::Consumer => Role::Consumer,
                    },
                    organisation: Some(s.organisation.clone()),
                    system: Some(s.id.to_string()),
                    subject: None,
                    user: None,
                    token_id: Some(id),
                },
                (TokenKind::Subject, _, _) if t.token.subject.is_some() => Principal {
                    role: Role::Subject,
                    organisation: None,
                    system: None,
                    subject: t.token.subject.clone(),
                    user: None,
                    token_id: Some(id),
                },
                // A person's token acts as the person's portal session does, with the
                // person's role and organisation as stored now.
                (TokenKind::User, _, Some(u)) => Principal {
                    token_id: Some(id),
                    ..crate::Governance::user_principal(u)
                },
                _ => {
                    tracing::warn!(
                        token = t.token.id,
                        kind = t.token.kind.as_str(),
                        "token without its system, subject or person; ignored"
                    );
                    continue;
                }
            };
            state.tokens.insert(
                t.hash,
                TokenEntry {
                    principal,
                    expires_at: t.token.expires_at,
                },
            );
        }
        for a in agreements {
            state
                .agreements
                .entry(a.consumer_organisation.clone())
                .or_default()
                .push(a);
        }
        for (dataset, owner) in owners {
            state.owned.entry(owner).or_default().push(dataset);
        }
        state
    }

    /// The state with the systems' own quotas (`(system id, quotas)`).
    pub fn with_quotas(mut self, quotas: Vec<(i64, QuotaOverrides)>) -> Self {
        self.quotas = quotas
            .into_iter()
            .filter(|(_, q)| !q.is_default())
            .map(|(id, q)| (id.to_string(), q))
            .collect();
        self
    }

    /// The store generation this state was built from.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The agreements in force now that a principal reads under: those of its organisation
    /// naming its system (a person of the organisation reads under all of them).
    pub fn agreements_in_force(&self, p: &Principal, now: Time) -> Vec<&Agreement> {
        let Some(org) = &p.organisation else {
            return vec![];
        };
        if p.role != Role::Consumer && p.role != Role::Owner {
            return vec![];
        }
        let system: Option<i64> = p.system.as_deref().and_then(|s| s.parse().ok());
        self.agreements
            .get(org)
            .map(|list| {
                list.iter()
                    .filter(|a| a.in_force(now))
                    .filter(|a| system.is_none_or(|s| a.systems.contains(&s)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The access policy: authenticates tokens and compiles agreements into engine grants.
#[derive(Debug)]
pub struct Policy {
    state: RwLock<Arc<PolicyState>>,
    engine: Option<Arc<dagr_engine::Engine>>,
    /// Per-token quota state, shared with the Flight service.
    quotas: Arc<Quotas>,
    /// When the state was last known to match the store (Unix ms).
    fresh_at: AtomicI64,
    /// How old the state may get before callers are refused (ms); 0 = no bound (a policy
    /// without a refresher, e.g. in-process tests).
    max_age_ms: AtomicI64,
}

impl Policy {
    /// A policy over `engine` with an empty state (nobody is authenticated until the first
    /// [`Policy::replace`]).
    pub fn new(engine: Option<Arc<dagr_engine::Engine>>) -> Self {
        Policy {
            state: RwLock::new(Arc::new(PolicyState::default())),
            engine,
            quotas: Quotas::new(Default::default()),
            fresh_at: AtomicI64::new(Time::now().0),
            max_age_ms: AtomicI64::new(0),
        }
    }

    /// Refuse callers ([`AuthError::Unavailable`]) once the state is older than `max_age`
    /// (set by the refresher, which keeps it fresh).
    pub fn require_fresh(&self, max_age: std::time::Duration) {
        self.max_age_ms
            .store(max_age.as_millis().max(1) as i64, Ordering::Relaxed);
    }

    /// The per-token quota state with the server defaults ([`Quotas::set_defaults`]);
    /// hand it to the Flight service so both servers count a token together.
    pub fn quotas(&self) -> &Arc<Quotas> {
        &self.quotas
    }

    /// Record that the state matches the store now.
    pub fn mark_fresh(&self) {
        self.fresh_at.store(Time::now().0, Ordering::Relaxed);
    }

    /// Whether the state is older than its bound.
    pub fn is_stale(&self) -> bool {
        let max = self.max_age_ms.load(Ordering::Relaxed);
        max > 0 && Time::now().0 - self.fresh_at.load(Ordering::Relaxed) > max
    }

    /// Drop one token from the current state (a revocation committed to the store whose
    /// reload failed must still hold at once).
    pub fn forget_token(&self, id: i64) {
        let id = id.to_string();
        let mut guard = self.state.write();
        let old = guard.as_ref();
        let next = PolicyState {
            generation: old.generation,
            tokens: old
                .tokens
                .iter()
                .filter(|(_, t)| t.principal.token_id.as_deref() != Some(id.as_str()))
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            agreements: old.agreements.clone(),
            owned: old.owned.clone(),
            quotas: old.quotas.clone(),
        };
        *guard = Arc::new(next);
    }

    /// The current state.
    pub fn state(&self) -> Arc<PolicyState> {
        Arc::clone(&self.state.read())
    }

    /// Swap in a new state.
    pub fn replace(&self, state: PolicyState) {
        *self.state.write() = Arc::new(state);
        self.mark_fresh();
    }

    /// The principal of the live token whose SHA-256 is `hash` (a portal session keeps the
    /// hash of the subject token a citizen signed in with, never the token).
    pub fn authenticate_hash(&self, hash: &[u8; 32]) -> Result<Principal, AuthError> {
        if self.is_stale() {
            return Err(AuthError::Unavailable);
        }
        let state = self.state();
        let entry = state.tokens.get(hash).ok_or(AuthError::Invalid)?;
        if entry.expires_at.is_some_and(|t| t <= Time::now()) {
            return Err(AuthError::Invalid);
        }
        Ok(entry.principal.clone())
    }

    fn owner_grants(&self, org: &str, state: &PolicyState, out: &mut BTreeMap<String, Vec<Grant>>) {
        let Some(engine) = &self.engine else {
            return;
        };
        for dataset in state.owned.get(org).into_iter().flatten() {
            if let Ok(def) = engine.definition(dataset) {
                out.entry(dataset.clone())
                    .or_default()
                    .push(Grant::attributes(
                        def.attributes.iter().map(|a| a.name.clone()),
                    ));
            }
        }
    }

    /// How old the state is (since it was last known to match the store) and how old it may
    /// get before callers are refused (`None`: no bound), for health pages.
    pub fn age(&self) -> (std::time::Duration, Option<std::time::Duration>) {
        let ms = |v: i64| std::time::Duration::from_millis(v.max(0) as u64);
        let max = self.max_age_ms.load(Ordering::Relaxed);
        (
            ms(Time::now().0 - self.fresh_at.load(Ordering::Relaxed)),
            (max > 0).then(|| ms(max)),
        )
    }
}

impl AccessPolicy for Policy {
    fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let bearer = bearer.trim();
        if bearer.is_empty() {
            return Err(AuthError::Missing);
        }
        if !bearer.starts_with(TOKEN_PREFIX) || bearer.len() != TOKEN_PREFIX.len() + 64 {
            return Err(AuthError::Invalid);
        }
        self.authenticate_hash(&token_hash(bearer))
    }

    fn access(&self, p: &Principal) -> Access {
        let state = self.state();
        let mut grants: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        // An owner reads its own organisation's datasets whole.
        if p.role == Role::Owner
            && let Some(org) = &p.organisation
        {
            self.owner_grants(org, &state, &mut grants);
        }
        for a in state.agreements_in_force(p, Time::now()) {
            let mut g =
                Grant::attributes(a.attributes.iter().cloned()).with_agreement(a.id.to_string());
            if let Some(scope) = &a.row_scope {
                g = g.with_row_scope(scope.clone());
            }
            grants.entry(a.dataset.clone()).or_default().push(g);
        }
        Access::Grants(grants)
    }

    fn agreement_in_force(&self, id: &str) -> bool {
        let Ok(id) = id.parse::<i64>() else {
            return false;
        };
        let now = Time::now();
        self.state()
            .agreements
            .values()
            .flatten()
            .any(|a| a.id == id && a.in_force(now))
    }

    fn quota_overrides(&self, p: &Principal) -> QuotaOverrides {
        match &p.system {
            Some(system) => {
                let state = self.state.read();
                state.quotas.get(system).copied().unwrap_or_default()
            }
            None => QuotaOverrides::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_round_trips() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        let h = token_hash(&a);
        assert_eq!(parse_hash(&to_hex(&h)), Some(h));
        assert_eq!(parse_hash("zz"), None);
    }

    #[test]
    fn a_persons_token_is_the_persons_principal_and_ignored_without_the_person() {
        use crate::model::{Token, User, UserRole};
        let user = User {
            id: 7,
            login: "anna.bank".into(),
            name: "Anna".into(),
            organisation: Some("BANK".into()),
            role: UserRole::Owner,
            created_at: Time(0),
        };
        let entry = |id: i64, secret: &str, user: Option<User>| TokenAuth {
            token: Token {
                id,
                prefix: String::new(),
                kind: TokenKind::User,
                system: None,
                subject: None,
                user: Some(7),
                user_login: user.as_ref().map(|u| u.login.clone()),
                label: String::new(),
                created_at: Time(0),
                created_by: String::new(),
                expires_at: None,
                revoked_at: None,
            },
            hash: token_hash(secret),
            system: None,
            user,
        };
        let (live, gone) = (
            format!("{TOKEN_PREFIX}{}", "1".repeat(64)),
            format!("{TOKEN_PREFIX}{}", "2".repeat(64)),
        );
        let policy = Policy::new(None);
        policy.replace(PolicyState::new(
            1,
            vec![entry(1, &live, Some(user.clone())), entry(2, &gone, None)],
            vec![],
            vec![],
        ));
        assert_eq!(
            policy.authenticate(&live),
            Ok(Principal {
                token_id: Some("1".into()),
                ..crate::Governance::user_principal(&user)
            })
        );
        assert_eq!(policy.authenticate(&gone), Err(AuthError::Invalid));
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}

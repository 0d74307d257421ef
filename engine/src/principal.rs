//! The caller seam: who is asking ([`Principal`]) and what they may read ([`AccessPolicy`]).
//!
//! Protocol crates (`flight-server`, `admin-api`) never decide permissions themselves: they
//! hand the bearer token to an [`AccessPolicy`], get a [`Principal`] back, and ask the policy
//! for that principal's [`Access`]. `admin-api` implements the policy on the metadata store;
//! the `dagr` binary hands the same implementation to every server.

use std::fmt;

use crate::engine::Access;

/// The role a caller acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Operates DAGR: organisations, systems, schema changes. Reads register data only under
    /// an agreement, like anyone else.
    Admin,
    /// Data steward of an organisation: its datasets, loads and access decisions.
    Owner,
    /// A system (or a person of an organisation) reading data under agreements.
    Consumer,
    /// A citizen reading who used their data.
    Subject,
}

impl Role {
    /// The lower-case name used in the API and the metadata store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Consumer => "consumer",
            Role::Subject => "subject",
        }
    }

    /// Parse the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            "consumer" => Role::Consumer,
            "subject" => Role::Subject,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The role the caller acts in.
    pub role: Role,
    /// The caller's organisation (code); `None` for admins and subjects.
    pub organisation: Option<String>,
    /// The caller's system, when the caller is a system's token.
    pub system: Option<String>,
    /// The data subject's identifier (personal code), for subjects.
    pub subject: Option<String>,
    /// The user, when a person signed in (portal session).
    pub user: Option<String>,
    /// The API token the caller presented, if any (its id, never the secret).
    pub token_id: Option<String>,
}

impl Principal {
    /// A short description for logs and history: `consumer BANK/sys-12`, `admin`, ...
    pub fn describe(&self) -> String {
        let mut s = self.role.as_str().to_owned();
        if let Some(o) = &self.organisation {
            s.push(' ');
            s.push_str(o);
        }
        if let Some(sys) = &self.system {
            s.push('/');
            s.push_str(sys);
        }
        if let Some(u) = &self.user {
            s.push_str(" user ");
            s.push_str(u);
        }
        if let Some(t) = &self.token_id {
            s.push_str(" token ");
            s.push_str(t);
        }
        s
    }
}

/// Why a caller was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials were presented.
    #[error("no credentials: send `Authorization: Bearer <token>`")]
    Missing,
    /// The credentials are malformed, unknown, revoked or expired. Deliberately one variant:
    /// the caller learns nothing about which.
    #[error("invalid, revoked or expired token")]
    Invalid,
    /// The policy could not be kept current (its store is unreachable); callers are refused
    /// rather than judged on permissions that may have been revoked.
    #[error("access decisions are unavailable: the governance store cannot be read")]
    Unavailable,
}

/// Authenticates callers and tells what they may read. Cheap and synchronous: answered from
/// memory, so that it can sit on the point-lookup fast path.
pub trait AccessPolicy: Send + Sync + fmt::Debug {
    /// The principal a bearer token stands for.
    fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError>;
    /// The grants the principal holds now, per dataset.
    fn access(&self, principal: &Principal) -> Access;
    /// The quotas the principal's system sets for itself (none: the server defaults). Read
    /// from memory on every call, like the token: never a database query.
    fn quota_overrides(&self, _principal: &Principal) -> crate::quota::QuotaOverrides {
        crate::quota::QuotaOverrides::default()
    }
    /// Whether the agreement `id` (as in [`crate::Grant::agreement`]) is in force now: a
    /// cache of data cut by an agreement drops it when it is not. Read from memory.
    fn agreement_in_force(&self, _id: &str) -> bool {
        true
    }
}

//! The personal-data usage audit: the durable, hash-chained log of access records and usage
//! events ([`store`]), the REST resources over it ([`api`]), and the [`IdentityProvider`] seam
//! that decides which data subject a caller is.
//!
//! Read paths (REST here, Flight in `flight-server`) note what they hand out in the engine's
//! [`dagr_engine::ReadLog`] and commit the resulting records through the engine's
//! [`dagr_engine::AuditSink`] seam, which [`store::AuditStore`] implements, before the response
//! is released.

pub(crate) mod api;
pub mod store;

use std::fmt;

use dagr_engine::{Principal, Role};

/// The usage views as the REST API serves them, for the portal.
pub use api::{subject_usage_page, usage_records_for, usage_scope, usage_summary_for};
pub use store::{AuditConfig, AuditStore};

/// Decides which data subject (personal code) an authenticated caller is, for the citizen's
/// view of their own usage log. Today subjects hold DAGR subject tokens; an OpenID Connect or
/// national eID provider implements the same trait.
pub trait IdentityProvider: Send + Sync + fmt::Debug {
    /// The subject the principal stands for, if the principal is a data subject.
    fn subject(&self, principal: &Principal) -> Option<String>;
}

/// Subjects identified by DAGR subject tokens: the token names the personal code.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenIdentity;

impl IdentityProvider for TokenIdentity {
    fn subject(&self, principal: &Principal) -> Option<String> {
        match principal.role {
            Role::Subject => principal.subject.clone(),
            _ => None,
        }
    }
}

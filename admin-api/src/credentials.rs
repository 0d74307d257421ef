//! Who may create a credential, so that no role is escalated through one.
//!
//! What each credential reads (see [`crate::auth::Policy`]): a provider system's token reads
//! its organisation's datasets whole; a consumer system's token reads under the agreements
//! naming that system; an owner person reads the organisation's datasets whole and, like a
//! consumer person, under all of the organisation's agreements; admins and citizens read no
//! register data. So:
//!
//! - **a provider system's token** is minted by an owner of its organisation (an owner person,
//!   or a token of one of its provider systems): they read the same data already;
//! - **a consumer system's token** is minted by a person (portal user) of its organisation,
//!   owner or consumer: persons read under all the organisation's agreements already. No
//!   system token mints one: a provider token would gain the agreements, a consumer token
//!   its sibling's;
//! - **admins mint no system token and create no person of an organisation**: an admin reads
//!   data only under an agreement, as every consumer, and a password the admin chose would be
//!   such a credential. Persons of an organisation, and each organisation's first system
//!   token, are made on the server (`dagr admin create-user`, `dagr admin create-token`), by
//!   whoever holds the data directory anyway. Over the API an admin creates admin users only.
//! - **a person's token** (kind `user`, [`Governance::create_user_token`]) is minted only by
//!   that person, signed in to the portal (a session: a principal with the person's login and
//!   no token), or on the server (`dagr admin create-user-token`). Nobody mints one for
//!   someone else, an admin included: it would let its maker act as the person, with the
//!   person's reads and the person's name in every record;
//! - **a person's token mints no credential** ([`Governance::refuse_person_token`]): no token
//!   of any kind (not its own successor, not a system token, not an admin token) and no
//!   user. It exists so that a program acts as the person; if it leaks, revoking it must
//!   end all it can do, and a credential it had minted would outlive it. Otherwise it acts as
//!   the person's session does: same role, organisation and reads, and it may revoke what
//!   the person may revoke.
//!
//! Every credential created (a token minted, a user created with its password) is written to
//! the governance history in the same transaction as the credential itself, with who made
//! it: `GET /api/v1/tokens/{id}/history`, `GET /api/v1/users/{id}/history`.

use dagr_engine::{Principal, Role};

use crate::governance::{GovError, GovResult, Governance};
use crate::model::{System, SystemKind, User, UserRole};

/// Whether `p` is a person acting through one of their tokens (kind `user`): the only
/// principal with both a login and a token.
pub fn is_person_token(p: &Principal) -> bool {
    p.user.is_some() && p.token_id.is_some()
}

impl Governance {
    /// Refuse a person's token (kind `user`): it mints no credential (see the
    /// [module](self) docs). The first check of every rule here.
    pub fn refuse_person_token(p: &Principal) -> GovResult<()> {
        if is_person_token(p) {
            return Err(GovError::Forbidden(
                "a person's token mints no credential: tokens are minted from a portal \
                 session (or with `dagr admin` on the server)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Refuse `p` unless it may mint a token for the person whose login is `login`: only
    /// that person, signed in to the portal (a principal with that login and no token);
    /// never an admin for someone else, never a token (see the [module](self) docs).
    pub fn may_issue_user_token(p: &Principal, login: &str) -> GovResult<()> {
        Self::refuse_person_token(p)?;
        if p.token_id.is_none() && p.user.as_deref() == Some(login) {
            return Ok(());
        }
        Err(GovError::Forbidden(format!(
            "a person's token is minted only by that person, signed in to the portal (or \
             with `dagr admin create-user-token` on the server); nobody, an admin included, \
             mints one for `{login}`"
        )))
    }

    /// Refuse `p` unless it may mint a token for system `s` (see the [module](self) docs).
    pub fn may_issue_system_token(p: &Principal, s: &System) -> GovResult<()> {
        Self::refuse_person_token(p)?;
        let own_org = p.organisation.as_deref() == Some(s.organisation.as_str());
        let may = own_org
            && match s.kind {
                SystemKind::Provider => p.role == Role::Owner,
                SystemKind::Consumer => {
                    p.user.is_some() && matches!(p.role, Role::Owner | Role::Consumer)
                }
            };
        if may {
            return Ok(());
        }
        let who = match s.kind {
            SystemKind::Provider => "an owner of it",
            SystemKind::Consumer => "a person of it",
        };
        Err(GovError::Forbidden(format!(
            "tokens of `{}`'s {} systems are issued by `{}` itself ({who}); the first one \
             comes from `dagr admin create-token` on the server",
            s.organisation,
            s.kind.as_str(),
            s.organisation
        )))
    }

    /// Refuse `p` unless it may create, over the API or the portal, a user of `organisation`
    /// with `role`: admins create admin users only (see the [module](self) docs).
    pub fn may_create_user(
        p: &Principal,
        organisation: Option<&str>,
        role: UserRole,
    ) -> GovResult<()> {
        Self::refuse_person_token(p)?;
        Self::require_admin(p)?;
        if role != UserRole::Admin || organisation.is_some() {
            return Err(GovError::Forbidden(
                "persons of an organisation are created on the server with `dagr admin \
                 create-user`: an admin holds no credential that reads an organisation's data"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Create a portal user for a caller of the API or the portal: what
    /// [`Governance::create_user`] does, within [`Governance::may_create_user`].
    pub async fn create_user_by_caller(
        &self,
        p: &Principal,
        login: &str,
        name: &str,
        organisation: Option<&str>,
        role: UserRole,
        password: &str,
    ) -> GovResult<User> {
        Self::may_create_user(p, organisation, role)?;
        self.create_user(p, login, name, organisation, role, password)
            .await
    }

    /// The history of user `id` (who created it, and when), for an admin or a person of its
    /// organisation.
    pub(crate) async fn user_history_visible(&self, p: &Principal, id: i64) -> GovResult<()> {
        let visible = match self.store().user(id).await? {
            Some(u) => {
                p.role == Role::Admin
                    || (u.organisation.is_some() && u.organisation == p.organisation)
            }
            None => false,
        };
        if visible {
            Ok(())
        } else {
            Err(GovError::NotFound(format!("user {id}")))
        }
    }
}

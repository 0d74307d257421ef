//! Rules for organisations, users, systems and tokens.

use super::*;

impl Governance {
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

    #[expect(
        clippy::too_many_arguments,
        reason = "whom the token is for, by kind, and its fields; private, called by the \
                  create_*_token rules"
    )]
    async fn issue(
        &self,
        actor: &str,
        kind: TokenKind,
        system: Option<i64>,
        subject: Option<&str>,
        user: Option<&User>,
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
                user,
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
                Self::refuse_person_token(p)?;
                Self::require_admin(p)?;
                p.describe()
            }
            None => "dagr admin (bootstrap)".to_owned(),
        };
        self.issue(
            &actor,
            TokenKind::Admin,
            None,
            None,
            None,
            label,
            expires_at,
        )
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
                Self::refuse_person_token(p)?;
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
            None,
            label,
            expires_at,
        )
        .await
    }

    /// Issue a person's token (kind `user`): it authenticates as the person whose login is
    /// `login` — the person's role and organisation, as their portal session does — so that
    /// a program calls the API as that person. Minted only by the person, signed in to the
    /// portal ([`Governance::may_issue_user_token`]): never by an admin for someone else,
    /// never by a token. `None` is the local bootstrap of `dagr admin` and the demo.
    ///
    /// An unknown login is 404 for the bootstrap and for admins (who see every user
    /// anyway); anyone else gets the 403 of a login not their own, whether it exists or not.
    pub async fn create_user_token(
        &self,
        p: Option<&Principal>,
        login: &str,
        label: &str,
        expires_at: Option<Time>,
    ) -> GovResult<IssuedToken> {
        if let Some(p) = p {
            Self::refuse_person_token(p)?;
        }
        let login = login.trim();
        if login.is_empty() {
            return Err(invalid("login", "name the person's login"));
        }
        let user = if login.len() > 64 {
            None
        } else {
            self.store.user_by_login(login).await?
        };
        let actor = match p {
            Some(p) => {
                if user.is_some() || p.role != Role::Admin {
                    Self::may_issue_user_token(p, login)?;
                }
                p.describe()
            }
            None => "dagr admin (bootstrap)".to_owned(),
        };
        let user = user.ok_or_else(|| GovError::NotFound(format!("user `{login}`")))?;
        self.issue(
            &actor,
            TokenKind::User,
            None,
            None,
            Some(&user),
            label,
            expires_at,
        )
        .await
    }

    /// The tokens of the person whose login is `login` (admin, or the person themselves).
    pub async fn user_tokens(
        &self,
        p: &Principal,
        login: &str,
        page: &Page,
    ) -> GovResult<Vec<Token>> {
        let not_found = || GovError::NotFound(format!("user `{login}`"));
        if p.role != Role::Admin && p.user.as_deref() != Some(login) {
            return Err(not_found());
        }
        let user = self
            .store
            .user_by_login(login)
            .await?
            .ok_or_else(not_found)?;
        Ok(self.store.user_tokens(user.id, page).await?)
    }

    /// One token's metadata (admin; anyone of its system's organisation; the person of a
    /// person's token; or the token itself).
    pub async fn token(&self, p: &Principal, id: i64) -> GovResult<Token> {
        let t = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| GovError::NotFound(format!("token {id}")))?;
        if p.role == Role::Admin
            || p.token_id.as_deref() == Some(id.to_string().as_str())
            || Self::is_persons_own(p, &t)
        {
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

    /// Whether `t` is a person's token and `p` that person (by their session or by one of
    /// their tokens).
    fn is_persons_own(p: &Principal, t: &Token) -> bool {
        t.kind == TokenKind::User
            && t.user_login.is_some()
            && t.user_login.as_deref() == p.user.as_deref()
    }

    /// Token `id`, if `p` may revoke it (admin; an owner or a person of its system's
    /// organisation; the person of a person's token; or the token itself): 404 for a token
    /// `p` does not see, 403 for one it sees but may not revoke. The role check of
    /// [`Governance::revoke_token`], for callers that check before they read the request
    /// body.
    pub async fn revocable_token(&self, p: &Principal, id: i64) -> GovResult<Token> {
        let t = self.token(p, id).await?;
        let own = p.token_id.as_deref() == Some(&id.to_string());
        if t.kind == TokenKind::User {
            // A person's token: the person, an admin, or the token itself.
            if own || p.role == Role::Admin || Self::is_persons_own(p, &t) {
                return Ok(t);
            }
            return Err(GovError::Forbidden(format!(
                "token {id} is a person's: it is revoked by that person or an admin"
            )));
        }
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

    /// Revoke a token (as [`Governance::revocable_token`] allows: admin; an owner or a
    /// person of its system's organisation; the person of a person's token; or the token
    /// itself). Refused when it is already revoked.
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
}

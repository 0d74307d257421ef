//! Organisations, users, portal sessions, systems and tokens.

use super::*;

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

/// Tokens with their person's login (`user_login`, NULL but for user tokens), as
/// [`token_row`] reads them; the table is `t`, alone in the outer query, so `id` is the
/// token's.
const TOKENS: &str = "SELECT t.*, (SELECT u.login FROM users u WHERE u.id = t.user_id) \
                      AS user_login FROM tokens t";

fn token_row(r: &AnyRow) -> StoreResult<Token> {
    Ok(Token {
        id: r.try_get("id")?,
        prefix: r.try_get("prefix")?,
        kind: enum_col(r, "kind", TokenKind::parse)?,
        system: r.try_get("system_id")?,
        subject: r.try_get("subject")?,
        user: r.try_get("user_id")?,
        user_login: r.try_get("user_login")?,
        label: r.try_get("label")?,
        created_at: time_col(r, "created_at")?,
        created_by: r.try_get("created_by")?,
        expires_at: opt_time_col(r, "expires_at")?,
        revoked_at: opt_time_col(r, "revoked_at")?,
    })
}

impl MetaStore {
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

    /// One user by login.
    pub async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE login = $1")
            .bind(login)
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

    /// Store a new token (its secret already hashed). `system`, `subject` and `user` name
    /// whom it authenticates, by kind (at most one of them).
    #[expect(
        clippy::too_many_arguments,
        reason = "one column each; called by one service"
    )]
    pub async fn create_token(
        &self,
        kind: TokenKind,
        system: Option<i64>,
        subject: Option<&str>,
        user: Option<&User>,
        label: &str,
        expires_at: Option<Time>,
        hash_hex: &str,
        prefix: &str,
        actor: &str,
    ) -> StoreResult<Token> {
        let now = Time::now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (secret_hash, prefix, kind, system_id, subject, user_id, label, \
             created_at, created_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(hash_hex)
        .bind(prefix)
        .bind(kind.as_str())
        .bind(system)
        .bind(subject)
        .bind(user.map(|u| u.id))
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
                    "kind": kind.as_str(), "system": system,
                    "user": user.map(|u| u.id), "label": label,
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
            user: user.map(|u| u.id),
            user_login: user.map(|u| u.login.clone()),
            label: label.to_owned(),
            created_at: now,
            created_by: actor.to_owned(),
            expires_at,
            revoked_at: None,
        })
    }

    /// One token's metadata.
    pub async fn token(&self, id: i64) -> StoreResult<Option<Token>> {
        sqlx::query(&format!("{TOKENS} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_row)
            .transpose()
    }

    /// Tokens, optionally of one system.
    pub async fn tokens(&self, system: Option<i64>, page: &Page) -> StoreResult<Vec<Token>> {
        let mut sql = Sql::new(&format!("{TOKENS} WHERE 1 = 1"));
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

    /// The tokens of the person `user` (user tokens), by id.
    pub async fn user_tokens(&self, user: i64, page: &Page) -> StoreResult<Vec<Token>> {
        let mut sql = Sql::new(&format!("{TOKENS} WHERE 1 = 1"));
        sql.and("user_id = ?", Arg::I(user));
        id_page(&mut sql, page, false)?;
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_row)
            .collect()
    }

    /// Every token that is not revoked, with its hash and its system or person (as stored
    /// now: a person's current role and organisation), for the authenticator. A token whose
    /// system or person is gone comes without it, and the authenticator ignores it.
    pub async fn live_tokens(&self) -> StoreResult<Vec<TokenAuth>> {
        let rows = sqlx::query(
            "SELECT t.*, s.organisation AS s_organisation, s.name AS s_name, s.kind AS s_kind, \
             s.description AS s_description, s.created_at AS s_created_at, \
             u.id AS u_id, u.login AS user_login, u.name AS u_name, \
             u.organisation AS u_organisation, u.role AS u_role, u.created_at AS u_created_at \
             FROM tokens t LEFT JOIN systems s ON s.id = t.system_id \
             LEFT JOIN users u ON u.id = t.user_id \
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
                let user_id: Option<i64> = r.try_get("u_id")?;
                let user = match (token.user, user_id) {
                    (Some(_), Some(id)) => Some(User {
                        id,
                        login: r.try_get("user_login")?,
                        name: r.try_get("u_name")?,
                        organisation: r.try_get("u_organisation")?,
                        role: enum_col(r, "u_role", UserRole::parse)?,
                        created_at: time_col(r, "u_created_at")?,
                    }),
                    _ => None,
                };
                Ok(TokenAuth {
                    token,
                    hash,
                    system,
                    user,
                })
            })
            .collect()
    }
}

//! `dagr admin`: bootstrap and maintain the metadata store from the command line, without a
//! running server: the first admin token, organisations, systems, their tokens, portal
//! users and their (persons') tokens.
//!
//! This module owns the flags of `dagr admin` and their execution. It opens only the
//! metadata store (never the engine: a server may be running on the same data directory,
//! and the engine's start-up deletes uncommitted files) and calls the offline
//! [`Governance`] service, so the CLI follows the same rules as the REST API. A running
//! server picks the changes up through the store's generation counter within
//! [`dagr_admin_api::REFRESH_INTERVAL`].
//!
//! Every subcommand prints its result as pretty JSON on stdout; logs go to stderr.
//! Secrets are never taken as command-line arguments (they would show in `ps`): a new
//! user's password comes from an environment variable or from stdin.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use dagr_admin_api::Governance;
use dagr_admin_api::governance::IssuedToken;
use dagr_admin_api::model::{SystemKind, Time, UserRole};
use dagr_admin_api::store::Page;
use dagr_engine::{Principal, Role};

/// Items fetched per page when a list subcommand walks through everything.
pub const LIST_PAGE: i64 = 1000;

/// Flags of `dagr admin`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Data directory whose metadata database (`meta.db`) to use, unless --database-url is
    /// given. Only the metadata database is opened.
    #[arg(long, env = "DAGR_DATA_DIR", default_value = "./dagr-data")]
    pub data_dir: PathBuf,
    /// Metadata database: `postgres://USER@HOST:PORT/DB` or `sqlite://PATH`; default the
    /// SQLite file `meta.db` in the data directory.
    #[arg(long, env = "DAGR_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Subcommands of `dagr admin`.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Issue an admin token; prints its `id` and the secret `token` (`dagr_...`), shown
    /// only this once.
    CreateAdminToken {
        /// Free label, to recognise the token later.
        #[arg(long, default_value = "")]
        label: String,
        /// When the token stops working: RFC 3339, or YYYY-MM-DD (end of that day, UTC).
        #[arg(long, value_parser = parse_end_time)]
        expires_at: Option<Time>,
    },
    /// Register an organisation.
    CreateOrganisation {
        /// Short code: 2–32 characters of A–Z, 0–9, `_` and `-` (e.g. `PMLP`).
        #[arg(long)]
        code: String,
        /// Full name.
        #[arg(long)]
        name: String,
    },
    /// Register a system of an organisation.
    CreateSystem {
        /// Code of the owning organisation.
        #[arg(long)]
        organisation: String,
        /// Name, unique within the organisation.
        #[arg(long)]
        name: String,
        /// What the system does with DAGR.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// What the system is.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Issue a token for a system; prints its `id` and the secret `token`, shown only this
    /// once.
    CreateToken {
        /// Id of the system.
        #[arg(long)]
        system: i64,
        /// Free label, to recognise the token later.
        #[arg(long, default_value = "")]
        label: String,
        /// When the token stops working: RFC 3339, or YYYY-MM-DD (end of that day, UTC).
        #[arg(long, value_parser = parse_end_time)]
        expires_at: Option<Time>,
    },
    /// Issue a person's token (kind `user`) for the portal user `--login`: it calls the API
    /// as that person (their role, organisation and reads). Prints its `id` and the secret
    /// `token`, shown only this once. Over the API only the person mints their own.
    CreateUserToken {
        /// Login of the person.
        #[arg(long)]
        login: String,
        /// Free label, to recognise the token later.
        #[arg(long, default_value = "")]
        label: String,
        /// When the token stops working: RFC 3339, or YYYY-MM-DD (end of that day, UTC).
        #[arg(long, value_parser = parse_end_time)]
        expires_at: Option<Time>,
    },
    /// Create a portal user. The password is read from an environment variable
    /// (--password-env) or from stdin (--password-stdin), never from the command line.
    CreateUser {
        /// Login name: 3–64 characters of a–z, 0–9, `.`, `_`, `-`, `@`.
        #[arg(long)]
        login: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Role of the user.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Organisation code (required for owners and consumers; none for admins).
        #[arg(long)]
        organisation: Option<String>,
        /// Name of the environment variable that holds the password.
        #[arg(long, value_name = "VAR", conflicts_with = "password_stdin")]
        password_env: Option<String>,
        /// Read the password from stdin (one trailing newline is dropped).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List all organisations.
    ListOrganisations,
    /// List all systems, optionally of one organisation.
    ListSystems {
        /// Only this organisation's systems.
        #[arg(long)]
        organisation: Option<String>,
    },
    /// List all tokens of a system, or of a person (metadata only; secrets are not stored).
    ListTokens {
        /// Id of the system.
        #[arg(long, required_unless_present = "user", conflicts_with = "user")]
        system: Option<i64>,
        /// Login of the person (their user tokens).
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token; a running server refuses it within a fraction of a second.
    RevokeToken {
        /// Id of the token.
        #[arg(long)]
        id: i64,
        /// Why, for the history.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// `--kind` of `create-system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Reads data under agreements.
    Consumer,
    /// Feeds its organisation's datasets.
    Provider,
}

impl From<KindArg> for SystemKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Consumer => SystemKind::Consumer,
            KindArg::Provider => SystemKind::Provider,
        }
    }
}

/// `--role` of `create-user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Operates DAGR (belongs to no organisation).
    Admin,
    /// Data steward of the organisation's datasets.
    Owner,
    /// Requests and uses data for the organisation.
    Consumer,
}

impl From<RoleArg> for UserRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => UserRole::Admin,
            RoleArg::Owner => UserRole::Owner,
            RoleArg::Consumer => UserRole::Consumer,
        }
    }
}

fn parse_end_time(text: &str) -> Result<Time, String> {
    Time::parse_end(text)
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time or a YYYY-MM-DD date"))
}

/// A token as printed at creation: its id and the secret (shown only this once), with its
/// kind, system, label and expiry.
fn new_token(t: IssuedToken) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": t.token.id,
        "token": t.secret,
        "kind": t.token.kind,
        "label": t.token.label,
        "expires_at": t.token.expires_at,
    });
    if let Some(system) = t.token.system {
        v["system"] = system.into();
    }
    if let Some(login) = t.token.user_login {
        v["user"] = login.into();
    }
    v
}

/// The principal the CLI acts as: a local admin (whoever can open the metadata store
/// already controls it).
pub fn local_admin() -> Principal {
    Principal {
        role: Role::Admin,
        organisation: None,
        system: None,
        subject: None,
        user: Some("dagr admin (local)".into()),
        token_id: None,
    }
}

/// Run `dagr admin` on `runtime`, printing the result as pretty JSON on stdout.
///
/// Blocking input (a password on stdin) is read before the runtime is entered and the
/// output is written after it returns, so no async task blocks.
pub fn run(runtime: &tokio::runtime::Runtime, args: AdminArgs) -> anyhow::Result<()> {
    let password = match &args.command {
        AdminCommand::CreateUser {
            password_env,
            password_stdin,
            ..
        } => Some(read_password(password_env.as_deref(), *password_stdin)?),
        _ => None,
    };
    let result = runtime.block_on(execute(&args, password.as_deref()))?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &result).context("writing the result to stdout")?;
    writeln!(out)
        .and_then(|()| out.flush())
        .context("writing the result to stdout")?;
    Ok(())
}

/// The password of `create-user`, from the environment variable `env` or from stdin.
fn read_password(env: Option<&str>, stdin: bool) -> anyhow::Result<String> {
    match (env, stdin) {
        (Some(var), _) => std::env::var(var).with_context(|| {
            format!(
                "the environment variable `{var}` named by --password-env is not set (or not UTF-8)"
            )
        }),
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .lock()
                .read_to_string(&mut text)
                .context("reading the password from stdin")?;
            let password = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            Ok(password.to_owned())
        }
        (None, false) => bail!(
            "create-user needs a password: give --password-env VAR (the name of an environment \
             variable holding it) or --password-stdin; it is never taken as an argument"
        ),
    }
}

/// Open the store, run the subcommand, and return what to print.
async fn execute(args: &AdminArgs, password: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let store = crate::server::open_store(&args.data_dir, args.database_url.as_deref()).await?;
    let gov = Governance::offline(store);
    let result = command(&gov, &args.command, password).await;
    gov.store().close().await;
    result
}

async fn command(
    gov: &Governance,
    command: &AdminCommand,
    password: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let p = &local_admin();
    let value = match command {
        AdminCommand::CreateAdminToken { label, expires_at } => {
            let t = gov
                .create_admin_token(None, label, *expires_at)
                .await
                .context("creating an admin token")?;
            tracing::info!(id = t.token.id, "admin token created");
            new_token(t)
        }
        AdminCommand::CreateOrganisation { code, name } => {
            let o = gov
                .create_organisation(p, code, name)
                .await
                .with_context(|| format!("creating organisation `{code}`"))?;
            tracing::info!(code = %o.code, "organisation created");
            serde_json::to_value(&o)?
        }
        AdminCommand::CreateSystem {
            organisation,
            name,
            kind,
            description,
        } => {
            let s = gov
                .create_system(p, organisation, name, (*kind).into(), description)
                .await
                .with_context(|| format!("creating system `{name}` of `{organisation}`"))?;
            tracing::info!(id = s.id, organisation = %s.organisation, "system created");
            serde_json::to_value(&s)?
        }
        AdminCommand::CreateToken {
            system,
            label,
            expires_at,
        } => {
            let t = gov
                .create_system_token(None, *system, label, *expires_at)
                .await
                .with_context(|| format!("creating a token for system {system}"))?;
            tracing::info!(id = t.token.id, system, "system token created");
            new_token(t)
        }
        AdminCommand::CreateUserToken {
            login,
            label,
            expires_at,
        } => {
            let t = gov
                .create_user_token(None, login, label, *expires_at)
                .await
                .with_context(|| format!("creating a token for user `{login}`"))?;
            tracing::info!(id = t.token.id, login = %login, "user token created");
            new_token(t)
        }
        AdminCommand::CreateUser {
            login,
            name,
            role,
            organisation,
            ..
        } => {
            let password = password.context("create-user needs a password")?;
            let u = gov
                .create_user(
                    p,
                    login,
                    name,
                    organisation.as_deref(),
                    (*role).into(),
                    password,
                )
                .await
                .with_context(|| format!("creating user `{login}`"))?;
            tracing::info!(id = u.id, login = %u.login, "user created");
            serde_json::to_value(&u)?
        }
        AdminCommand::ListOrganisations => {
            let all = collect(
                async |page| gov.organisations(p, &page).await,
                |o| o.code.clone(),
            )
            .await
            .context("listing organisations")?;
            serde_json::to_value(&all)?
        }
        AdminCommand::ListSystems { organisation } => {
            if let Some(code) = organisation {
                gov.organisation(p, code).await.context("listing systems")?;
            }
            let all = collect(
                async |page| gov.systems(p, organisation.as_deref(), &page).await,
                |s| s.id.to_string(),
            )
            .await
            .context("listing systems")?;
            serde_json::to_value(&all)?
        }
        AdminCommand::ListTokens { system, user } => {
            let all = match (system, user) {
                (Some(system), _) => collect(
                    async |page| gov.system_tokens(p, *system, &page).await,
                    |t| t.id.to_string(),
                )
                .await
                .with_context(|| format!("listing the tokens of system {system}"))?,
                (None, Some(login)) => collect(
                    async |page| gov.user_tokens(p, login, &page).await,
                    |t| t.id.to_string(),
                )
                .await
                .with_context(|| format!("listing the tokens of user `{login}`"))?,
                (None, None) => bail!("list-tokens needs --system ID or --user LOGIN"),
            };
            serde_json::to_value(&all)?
        }
        AdminCommand::RevokeToken { id, reason } => {
            let t = gov
                .revoke_token(p, *id, reason)
                .await
                .with_context(|| format!("revoking token {id}"))?;
            tracing::info!(id = t.id, "token revoked");
            serde_json::to_value(&t)?
        }
    };
    Ok(value)
}

/// Walk a keyset-paginated list to its end, [`LIST_PAGE`] items at a time; `key` gives
/// the cursor of an item.
async fn collect<T, E>(
    mut fetch: impl AsyncFnMut(Page) -> Result<Vec<T>, E>,
    key: impl Fn(&T) -> String,
) -> Result<Vec<T>, E> {
    let mut all = Vec::new();
    let mut page = Page {
        limit: LIST_PAGE,
        after: None,
    };
    loop {
        let batch = fetch(page.clone()).await?;
        let full = batch.len() as i64 >= LIST_PAGE;
        page.after = batch.last().map(&key);
        all.extend(batch);
        if !full || page.after.is_none() {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyset-paginated list of the ids 1..=n.
    fn fake(n: i64, calls: &mut usize, page: &Page) -> Result<Vec<i64>, String> {
        *calls += 1;
        let after: i64 = page.after.as_deref().map_or(0, |a| a.parse().unwrap());
        Ok((after + 1..=n).take(page.limit as usize).collect())
    }

    #[tokio::test]
    async fn collect_walks_every_page() {
        for (n, pages) in [(0, 1), (5, 1), (LIST_PAGE, 2), (2 * LIST_PAGE + 7, 3)] {
            let mut calls = 0;
            let all = collect(async |page| fake(n, &mut calls, &page), |i| i.to_string())
                .await
                .unwrap();
            assert_eq!(all, (1..=n).collect::<Vec<_>>());
            assert_eq!(calls, pages, "{n} items");
        }
    }

    #[test]
    fn password_needs_a_source() {
        let err = read_password(None, false).unwrap_err().to_string();
        assert!(err.contains("--password-env") && err.contains("--password-stdin"));
        let err = read_password(Some("DAGR_ADMIN_TEST_SURELY_UNSET"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("DAGR_ADMIN_TEST_SURELY_UNSET"));
    }
}

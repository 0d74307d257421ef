//! Sign-in state: the visitor's language, portal sessions, and CSRF protection.
//!
//! - **Session cookie** `dagr_session`: 256 random bits; only their SHA-256 is stored (in
//!   the metadata store's `portal_sessions`, so replicas share sessions and a restart keeps
//!   them). `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when the portal is served
//!   over TLS (`--secure-cookies`, or a proxy's `X-Forwarded-Proto: https`). A session dies
//!   after [`IDLE`] unused or [`ABSOLUTE`] after sign-in.
//! - **CSRF**: every form of a session carries the session's random token in a hidden
//!   `csrf` field; [`Posted`] refuses a POST whose token is missing or wrong, and one whose
//!   `Origin` is another site. The sign-in forms, before any session, use a double-submit
//!   cookie (`dagr_login_csrf`).
//! - **Who**: a user session acts as [`Governance::user_principal`]; a citizen session as
//!   the live subject token it was opened with, whose subject the [`IdentityProvider`]
//!   names. Both are checked on every request, so a revoked token or a removed user ends
//!   the session.
//!
//! [`Governance::user_principal`]: dagr_admin_api::Governance::user_principal
//! [`IdentityProvider`]: dagr_admin_api::audit::IdentityProvider

use std::time::Duration;

use dagr_admin_api::Governance;
use dagr_admin_api::auth::{parse_hash, to_hex, token_hash};
use dagr_admin_api::axum::body::Bytes;
use dagr_admin_api::axum::extract::{FromRequest, FromRequestParts, Request};
use dagr_admin_api::axum::http::request::Parts;
use dagr_admin_api::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use dagr_admin_api::axum::response::{IntoResponse, Redirect, Response};
use dagr_admin_api::model::{Time, User};
use dagr_admin_api::store::PortalSession;
use dagr_engine::{Principal, Role};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Portal;
use crate::i18n::{Common, Lang};
use crate::web::{NavItem, PortalError, Shell, ShellUser, encode_component, role_name};

/// Name of the session cookie.
pub(crate) const SESSION_COOKIE: &str = "dagr_session";
/// Name of the language cookie.
pub(crate) const LANG_COOKIE: &str = "dagr_lang";
/// Name of the sign-in forms' double-submit CSRF cookie.
pub(crate) const LOGIN_CSRF_COOKIE: &str = "dagr_login_csrf";
/// A session unused this long is dead.
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is dead this long after sign-in, however used.
pub(crate) const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// Largest form body accepted.
pub(crate) const MAX_FORM_BYTES: usize = 256 << 10;
/// How often use of a session is written back (moving its idle limit on).
const TOUCH_EVERY_MS: i64 = 60_000;

/// 32 random bytes as 64 hex digits.
pub(crate) fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(to_hex(&bytes))
}

/// When a session signed in at `created` and used at `now` dies unless used again: after
/// [`IDLE`], but never later than [`ABSOLUTE`] after sign-in.
fn expiry(created: Time, now: Time) -> Time {
    Time((now.0 + IDLE.as_millis() as i64).min(created.0 + ABSOLUTE.as_millis() as i64))
}

/// Compare two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A request's language: the one its language cookie names, else the one its browser
/// prefers (`Accept-Language`), else Latvian.
pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::from_accept)
        })
        .unwrap_or_default()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` when `secure`;
/// `max_age` in seconds (`Some(0)` deletes, `None` lasts for the browser session).
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Whoever asks for a page, signed in or not: language and where they are.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    /// The chosen language (cookie), else the browser's (`Accept-Language`).
    pub(crate) lang: Lang,
    /// Path and query of the request (for the language switch and "come back" links).
    pub(crate) path: String,
    /// Whether cookies must be `Secure` (TLS).
    pub(crate) secure: bool,
}

impl Visitor {
    fn of(parts: &Parts, portal: &Portal) -> Visitor {
        let lang = lang_of(&parts.headers);
        let forwarded_tls = parts
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        Visitor {
            lang,
            path: if parts.method == dagr_admin_api::axum::http::Method::GET {
                path
            } else {
                page_of_action(&path).to_owned()
            },
            secure: portal.secure_cookies || forwarded_tls,
        }
    }

    /// The frame for this visitor, nobody signed in.
    pub(crate) fn shell(&self, title: impl Into<String>) -> Shell {
        Shell::anonymous(self.lang, &self.path).titled(title)
    }
}

impl FromRequestParts<Portal> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Portal,
    ) -> Result<Self, Self::Rejection> {
        Ok(Visitor::of(parts, portal))
    }
}

/// The page a form's action belongs to, for links on a page answering a POST (the language
/// switch must lead to a page that answers GET): `/requests/7/approve` → `/requests/7`.
/// Actions that are pages themselves (`/flows/new`, `/systems`) stay as they are.
pub(crate) fn page_of_action(path: &str) -> &str {
    const ACTIONS: &[&str] = &[
        "approve", "refuse", "withdraw", "revoke", "settings", "accept", "reject", "sample",
        "tokens",
    ];
    let path = path.split('?').next().unwrap_or("/");
    match path.rsplit_once('/') {
        Some((page, last)) if !page.is_empty() && ACTIONS.contains(&last) => page,
        _ => path,
    }
}

/// Who a session stands for.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// A person of an organisation, or an admin.
    User(User),
    /// A citizen, by personal code.
    Citizen(String),
}

/// A signed-in visitor. As an extractor it sends anyone not signed in to the sign-in page
/// (and back here afterwards).
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// Language and place.
    pub(crate) visitor: Visitor,
    /// Who it is.
    pub(crate) who: Who,
    /// The principal the domain services are called with.
    pub(crate) principal: Principal,
    /// The session's CSRF token.
    pub(crate) csrf: String,
    /// SHA-256 (hex) of the session secret.
    pub(crate) id_hash: String,
}

impl SignedIn {
    /// The citizen's personal code, or `None` for a user.
    pub(crate) fn subject(&self) -> Option<&str> {
        match &self.who {
            Who::User(_) => None,
            Who::Citizen(code) => Some(code),
        }
    }

    /// The role acted in.
    pub(crate) fn role(&self) -> Role {
        self.principal.role
    }

    /// The organisation acted for, if any.
    pub(crate) fn organisation(&self) -> Option<&str> {
        self.principal.organisation.as_deref()
    }

    /// The page's language.
    pub(crate) fn lang(&self) -> Lang {
        self.visitor.lang
    }

    /// The frame for this signed-in visitor, with the navigation of their role.
    pub(crate) fn shell(&self, title: impl Into<String>) -> Shell {
        let lang = self.visitor.lang;
        let c = Common::get(lang);
        let mut shell = Shell::anonymous(lang, &self.visitor.path).titled(title);
        shell.csrf = self.csrf.clone();
        shell.user = Some(match &self.who {
            Who::User(u) => ShellUser {
                name: u.name.clone(),
                detail: match &u.organisation {
                    Some(org) => format!("{}, {org}", role_name(c, self.principal.role)),
                    None => role_name(c, self.principal.role).to_owned(),
                },
            },
            Who::Citizen(code) => ShellUser {
                name: c.citizen.to_owned(),
                detail: mask_code(code),
            },
        });
        let links: &[(&'static str, &'static str)] = match self.principal.role {
            Role::Admin => &[
                ("/admin", c.nav_dashboard),
                ("/catalog", c.nav_catalog),
                ("/changes", c.nav_changes),
                ("/usage", c.nav_usage),
                ("/systems", c.nav_systems),
            ],
            Role::Owner => &[
                ("/catalog", c.nav_catalog),
                ("/inbox", c.nav_inbox),
                ("/flows", c.nav_flows),
                ("/changes", c.nav_changes),
                ("/usage", c.nav_usage),
                ("/systems", c.nav_systems),
            ],
            Role::Consumer => &[
                ("/catalog", c.nav_catalog),
                ("/requests", c.nav_requests),
                ("/agreements", c.nav_agreements),
                ("/systems", c.nav_systems),
            ],
            Role::Subject => &[("/me/usage", c.nav_my_usage)],
        };
        let path = self.visitor.path.split('?').next().unwrap_or("/");
        // MAP (grants) for citizens and people of organisations; its page explains to those
        // it does not serve.
        let map = (self.principal.role != Role::Admin)
            .then_some(("/map", crate::map::MapText::get(lang).nav));
        // TAPIS (territorial planning) is public: for everyone.
        let tapis = ("/tapis", crate::tapis::TapisText::get(lang).nav);
        // A person's messages from every module (citizens and people of organisations).
        let messages =
            crate::messages::offered(self).then(|| ("/messages", crate::messages::nav(lang)));
        shell.nav = links
            .iter()
            .copied()
            .chain(map)
            .chain([tapis])
            .chain(messages)
            .map(|(href, label)| NavItem {
                href,
                label,
                current: path == href || path.starts_with(&format!("{href}/")),
            })
            .collect();
        shell
    }

    /// The error page for a governance error, in this visitor's frame.
    pub(crate) fn fail(&self, e: dagr_admin_api::governance::GovError) -> PortalError {
        self.shell("").fail(e)
    }

    /// The page a role starts on after sign-in.
    pub(crate) fn home(&self) -> &'static str {
        home_of(self.principal.role)
    }
}

/// The page a role starts on after sign-in.
pub(crate) fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Owner => "/inbox",
        Role::Consumer => "/catalog",
        Role::Subject => "/me/usage",
    }
}

/// A personal code shown masked: `123456-*****`.
pub(crate) fn mask_code(code: &str) -> String {
    match code.split_once('-') {
        Some((head, tail)) => format!("{head}-{}", "*".repeat(tail.chars().count())),
        None => {
            let keep = code.chars().count().min(6);
            let head: String = code.chars().take(keep).collect();
            format!("{head}{}", "*".repeat(code.chars().count() - keep))
        }
    }
}

/// Why a request has no usable session.
enum NoSession {
    /// No cookie, or a dead or unknown session: sign in.
    SignIn,
    /// The store or the policy cannot be read now.
    Unavailable,
}

async fn resolve(parts: &Parts, portal: &Portal, visitor: &Visitor) -> Result<SignedIn, NoSession> {
    let secret = cookie(&parts.headers, SESSION_COOKIE).ok_or(NoSession::SignIn)?;
    if secret.len() != 64 || parse_hash(secret).is_none() {
        return Err(NoSession::SignIn);
    }
    let id_hash = to_hex(&token_hash(secret));
    let gov = &portal.app.gov;
    let stored = gov
        .store()
        .session(&id_hash)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "portal: cannot read sessions");
            NoSession::Unavailable
        })?
        .ok_or(NoSession::SignIn)?;
    let now = Time::now();
    if stored.expires_at <= now {
        return Err(NoSession::SignIn);
    }
    gov.ensure_fresh().await.map_err(|e| {
        tracing::error!(error = %e, "portal: the access policy is stale");
        NoSession::Unavailable
    })?;
    let (who, principal) = match (&stored.user_id, &stored.subject_token) {
        (Some(id), _) => {
            let user = gov
                .user_by_id(*id)
                .await
                .map_err(|_| NoSession::Unavailable)?
                .ok_or(NoSession::SignIn)?;
            let principal = Governance::user_principal(&user);
            (Who::User(user), principal)
        }
        (None, Some(token_hash)) => {
            let hash = parse_hash(token_hash).ok_or(NoSession::SignIn)?;
            let principal = gov.policy().authenticate_hash(&hash).map_err(|e| match e {
                dagr_engine::AuthError::Unavailable => NoSession::Unavailable,
                _ => NoSession::SignIn,
            })?;
            let subject = portal
                .app
                .identity
                .subject(&principal)
                .ok_or(NoSession::SignIn)?;
            (Who::Citizen(subject), principal)
        }
        (None, None) => return Err(NoSession::SignIn),
    };
    if now.0 - stored.last_seen.0 >= TOUCH_EVERY_MS {
        let expires = expiry(stored.created_at, now);
        if let Err(e) = gov.store().touch_session(&id_hash, now, expires).await {
            tracing::warn!(error = %e, "portal: cannot record use of a session");
        }
    }
    Ok(SignedIn {
        visitor: visitor.clone(),
        who,
        principal,
        csrf: stored.csrf,
        id_hash,
    })
}

impl FromRequestParts<Portal> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, Response> {
        let visitor = Visitor::of(parts, portal);
        match resolve(parts, portal, &visitor).await {
            Ok(s) => Ok(s),
            Err(NoSession::SignIn) => {
                let to = if parts.method == dagr_admin_api::axum::http::Method::GET {
                    format!("/login?next={}", encode_component(&visitor.path))
                } else {
                    "/login".to_owned()
                };
                Err(Redirect::to(&to).into_response())
            }
            Err(NoSession::Unavailable) => Err(visitor.shell("").unavailable().into_response()),
        }
    }
}

/// Open a session for `who` and answer with a redirect to `to` that sets its cookie.
pub(crate) async fn open(
    portal: &Portal,
    visitor: &Visitor,
    who: SessionFor,
    to: &str,
) -> Result<Response, PortalError> {
    let unavailable = || visitor.shell("").unavailable();
    let (secret, csrf) = match (random_hex(), random_hex()) {
        (Ok(s), Ok(c)) => (s, c),
        _ => return Err(unavailable()),
    };
    let now = Time::now();
    let (user_id, subject_token) = match who {
        SessionFor::User(id) => (Some(id), None),
        SessionFor::Citizen(hash) => (None, Some(hash)),
    };
    let row = PortalSession {
        user_id,
        subject_token,
        csrf,
        created_at: now,
        last_seen: now,
        expires_at: expiry(now, now),
    };
    portal
        .app
        .gov
        .store()
        .create_session(&to_hex(&token_hash(&secret)), &row)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "portal: cannot store a session");
            unavailable()
        })?;
    let mut response = Redirect::to(to).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &secret, None, visitor.secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", Some(0), visitor.secure),
    );
    Ok(response)
}

/// Whom a new session is for.
pub(crate) enum SessionFor {
    /// A user, by id.
    User(i64),
    /// A citizen, by the SHA-256 (hex) of their subject token.
    Citizen(String),
}

/// End the session and clear its cookie.
pub(crate) async fn close(portal: &Portal, s: &SignedIn) -> Response {
    if let Err(e) = portal.app.gov.store().delete_session(&s.id_hash).await {
        tracing::error!(error = %e, "portal: cannot delete a session");
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Some(0), s.visitor.secure),
    );
    response
}

/// The `csrf` field every form carries.
#[derive(Debug, Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Whether the request's `Origin` (when the browser sent one) is this site: the host the
/// browser asked for, as `Host` says or, behind a proxy that rewrites `Host`, as the
/// proxy's `X-Forwarded-Host` says. (The CSRF token is the protection; this is a second
/// check that costs nothing.)
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .any(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|host| !bare.is_empty() && bare == host.trim())
        })
}

/// Read a form body (repeated fields become lists).
pub(crate) async fn read_form<T: DeserializeOwned>(
    req: Request,
    shell: &Shell,
) -> Result<(T, String), PortalError> {
    let bad = |detail: &str| shell.error(StatusCode::BAD_REQUEST, shell.c.error_bad_form, detail);
    let bytes = Bytes::from_request(req, &())
        .await
        .map_err(|e| bad(&e.body_text()))?;
    if bytes.len() > MAX_FORM_BYTES {
        return Err(shell.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            shell.c.error_bad_form,
            &format!("larger than {} KiB", MAX_FORM_BYTES >> 10),
        ));
    }
    let token: CsrfField = serde_html_form::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))?;
    let form: T = serde_html_form::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))?;
    Ok((form, token.csrf))
}

/// A form posted by a signed-in visitor, its CSRF token checked: the only way a portal
/// handler reads a form of a session, so no form can skip the check. A POST without the
/// session's token, or from another site's page, is refused (403) and changes nothing.
#[derive(Debug)]
pub(crate) struct Posted<T> {
    /// Who posted it.
    pub(crate) session: SignedIn,
    /// The form's fields.
    pub(crate) form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Portal> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, portal: &Portal) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = SignedIn::from_request_parts(&mut parts, portal).await?;
        let shell = session.shell("");
        let csrf_refused = || {
            shell
                .error(StatusCode::FORBIDDEN, shell.c.error_csrf, "")
                .into_response()
        };
        if !same_origin(&parts.headers) {
            return Err(csrf_refused());
        }
        let req = Request::from_parts(parts, body);
        let (form, token) = read_form::<T>(req, &shell)
            .await
            .map_err(IntoResponse::into_response)?;
        if !same_secret(&token, &session.csrf) {
            return Err(csrf_refused());
        }
        Ok(Posted { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; dagr_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("dagr_lang=en"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LANG_COOKIE), Some("en"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn session_cookies_are_http_only_and_secure_with_tls() {
        let c = set_cookie(SESSION_COOKIE, "x", None, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("; Secure"));
        let c = set_cookie(SESSION_COOKIE, "x", Some(0), false);
        assert!(!c.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn origin_must_be_this_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        // Behind a proxy that rewrites Host, the proxy's X-Forwarded-Host names the site.
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://dagr.example"),
        );
        assert!(!same_origin(&h));
        h.insert("x-forwarded-host", HeaderValue::from_static("dagr.example"));
        assert!(same_origin(&h));
    }

    #[test]
    fn pages_answering_a_post_link_back_to_their_page() {
        assert_eq!(page_of_action("/requests/7/approve"), "/requests/7");
        assert_eq!(page_of_action("/agreements/3/revoke"), "/agreements/3");
        assert_eq!(
            page_of_action("/datasets/persons/sample"),
            "/datasets/persons"
        );
        assert_eq!(page_of_action("/flows/new"), "/flows/new");
        assert_eq!(page_of_action("/systems"), "/systems");
        assert_eq!(
            page_of_action("/datasets/persons/request"),
            "/datasets/persons/request"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert_eq!(mask_code("010190-12345"), "010190-*****");
    }
}

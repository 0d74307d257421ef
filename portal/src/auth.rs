//! Signing in and out, and the language switch.
//!
//! - `GET/POST /login`: organisations' people and admins, with login and password; the
//!   throttling of failures per source (the peer address) is [`Governance::login`]'s: a
//!   throttled source gets 429 with `Retry-After`.
//! - `GET/POST /citizen/login`: citizens, through the subject identity seam. In the demo
//!   the identity is a DAGR subject token (`demo-credentials.json` lists them); a national
//!   eID provider would answer the same question, which subject this is.
//! - `POST /logout`: ends the session (a form with the session's CSRF token).
//! - `GET /lang/{code}?back=PATH`: sets the language cookie and goes back.
//!
//! [`Governance::login`]: dagr_admin_api::Governance::login

use askama::Template;
use dagr_admin_api::auth::{TOKEN_PREFIX, to_hex, token_hash};
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{ConnectInfo, Path, Query, Request, State};
use dagr_admin_api::axum::http::{HeaderMap, StatusCode, header};
use dagr_admin_api::axum::response::{IntoResponse, Redirect, Response};
use dagr_admin_api::axum::routing::{get, post};
use dagr_admin_api::governance::LoginError;
use dagr_engine::{AccessPolicy, Role};
use serde::Deserialize;

use crate::Portal;
use crate::i18n::{Lang, texts};
use crate::session::{
    self, LANG_COOKIE, LOGIN_CSRF_COOKIE, Posted, SessionFor, SignedIn, Visitor, cookie,
    random_hex, read_form, same_origin, same_secret, set_cookie,
};
use crate::web::{PortalError, Shell, render_status, safe_back};

texts! {
    /// Texts of the sign-in pages.
    pub(crate) struct LoginText {
        title: "Pieslēgšanās", "Sign in";
        intro: "Organizāciju darbinieki un DAGR administratori pieslēdzas ar lietotājvārdu un paroli.", "People of organisations and DAGR administrators sign in with their login and password.";
        login: "Lietotājvārds", "Login";
        password: "Parole", "Password";
        submit: "Pieslēgties", "Sign in";
        refused: "Nepareizs lietotājvārds vai parole. Pēc 5 neveiksmīgiem mēģinājumiem pēc kārtas pieslēgšanās no šīs vietas tiek apturēta uz 15 minūtēm.", "Wrong login or password. After 5 failed attempts in a row, sign-ins from this place are paused for 15 minutes.";
        throttled: "Pārāk daudz neveiksmīgu pieslēgšanās mēģinājumu no šīs vietas. Mēģiniet vēlreiz pēc dažām minūtēm.", "Too many failed sign-ins from this place. Try again in a few minutes.";
        demo: "Demonstrācijā lietotājvārdi un paroles ir datu direktorijas failā demo-credentials.json (piemēram, banka.consumer).", "In the demo, logins and passwords are in demo-credentials.json in the data directory (for example banka.consumer).";
        citizen_link: "Iedzīvotājs? Uzziniet, kas izmantoja jūsu datus", "A citizen? See who used your data";
        citizen_title: "Iedzīvotāja pieslēgšanās", "Citizen sign-in";
        citizen_intro: "Pieslēdzieties, lai redzētu, kuras iestādes un kādam nolūkam izmantoja jūsu personas datus.", "Sign in to see which organisations used your personal data, and why.";
        citizen_token: "Identitātes apliecinājums (demonstrācijā — subjekta atslēga)", "Proof of identity (in the demo, a subject token)";
        citizen_token_hint: "Reālā sistēmā šeit būtu pieslēgšanās ar eID vai internetbanku. Demonstrācijā subjektu atslēgas ir failā demo-credentials.json.", "In production this is the national eID sign-in. In the demo, subject tokens are in demo-credentials.json.";
        citizen_refused: "Šo identitāti neizdevās apstiprināt.", "This identity could not be confirmed.";
        org_link: "Organizācijas darbinieks? Pieslēgties šeit", "Working for an organisation? Sign in here";
    }
}

/// Routes of this module.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/citizen/login", get(citizen_page).post(citizen_login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_language))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    shell: Shell,
    t: &'static LoginText,
    citizen: bool,
    next: String,
    login: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

/// The sign-in form with its double-submit CSRF token: the one the browser already has
/// (so two sign-in pages open at once both work), else a fresh one in a new cookie.
fn form_page(
    v: &Visitor,
    existing: Option<&str>,
    citizen: bool,
    next: &str,
    login: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = LoginText::get(v.lang);
    let reuse = existing
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let Some(token) = reuse.or_else(|| random_hex().ok()) else {
        return v.shell("").unavailable().into_response();
    };
    let mut shell = v.shell(if citizen { t.citizen_title } else { t.title });
    shell.csrf = token.clone();
    let page = LoginPage {
        shell,
        t,
        citizen,
        next: next.to_owned(),
        login: login.to_owned(),
        error,
    };
    let mut r = render_status(status, &page);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &token, Some(3600), v.secure),
    );
    r
}

/// The empty sign-in form (`citizen`: the citizens' one), coming back to `?next=`.
fn empty_form(v: &Visitor, headers: &HeaderMap, q: &NextQuery, citizen: bool) -> Response {
    form_page(
        v,
        cookie(headers, LOGIN_CSRF_COOKIE),
        citizen,
        &safe_back(q.next.as_deref(), ""),
        "",
        None,
        StatusCode::OK,
    )
}

async fn login_page(v: Visitor, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    empty_form(&v, &headers, &q, false)
}

async fn citizen_page(v: Visitor, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    empty_form(&v, &headers, &q, true)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Where a sign-in goes: the page it was asked from (`next`), else the role's start page.
fn next_or_home(next: String, role: Role) -> String {
    if next.is_empty() {
        session::home_of(role).to_owned()
    } else {
        next
    }
}

/// Read a sign-in form and check its double-submit token and origin.
async fn sign_in_form(v: &Visitor, req: Request) -> Result<(LoginForm, String), PortalError> {
    let shell = v.shell("");
    let refused = || shell.error(StatusCode::FORBIDDEN, shell.c.error_csrf, "");
    if !same_origin(req.headers()) {
        return Err(refused());
    }
    let expected = cookie(req.headers(), LOGIN_CSRF_COOKIE).map(str::to_owned);
    let (form, token): (LoginForm, String) = read_form(req, &shell).await?;
    match expected {
        Some(e) if !e.is_empty() && same_secret(&e, &token) => Ok((form, token)),
        _ => Err(refused()),
    }
}

async fn login(
    State(portal): State<Portal>,
    v: Visitor,
    req: Request,
) -> Result<Response, PortalError> {
    let source = source(&req);
    let (form, csrf) = sign_in_form(&v, req).await?;
    let t = LoginText::get(v.lang);
    let next = safe_back(Some(&form.next), "");
    match portal
        .app
        .gov
        .login(form.login.trim(), &form.password, &source)
        .await
    {
        Ok(user) => {
            let role = dagr_admin_api::Governance::user_principal(&user).role;
            let to = next_or_home(next, role);
            session::open(&portal, &v, SessionFor::User(user.id), &to).await
        }
        Err(LoginError::Refused) => Ok(form_page(
            &v,
            Some(&csrf),
            false,
            &next,
            &form.login,
            Some(t.refused.into()),
            StatusCode::UNAUTHORIZED,
        )),
        Err(LoginError::Throttled(wait)) => {
            let mut r = form_page(
                &v,
                Some(&csrf),
                false,
                &next,
                &form.login,
                Some(t.throttled.into()),
                StatusCode::TOO_MANY_REQUESTS,
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(wait.as_secs().max(1)),
            );
            Ok(r)
        }
        Err(LoginError::Unavailable(e)) => {
            tracing::error!(error = %e, "portal: cannot check a sign-in");
            Err(v.shell("").unavailable())
        }
    }
}

/// The source a sign-in is throttled by: the peer address of the connection
/// ([`dagr_admin_api::throttle::source_of`]); `X-Forwarded-For` is not trusted.
fn source(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(
            || dagr_admin_api::throttle::UNKNOWN_SOURCE.to_owned(),
            |c| dagr_admin_api::throttle::source_of(c.0.ip()),
        )
}

async fn citizen_login(
    State(portal): State<Portal>,
    v: Visitor,
    req: Request,
) -> Result<Response, PortalError> {
    let (form, csrf) = sign_in_form(&v, req).await?;
    let t = LoginText::get(v.lang);
    let next = safe_back(Some(&form.next), "");
    let token = form.token.trim();
    let subject = token
        .starts_with(TOKEN_PREFIX)
        .then(|| portal.app.gov.policy().authenticate(token).ok())
        .flatten()
        .filter(|p| p.role == Role::Subject)
        .and_then(|p| portal.app.identity.subject(&p));
    if subject.is_none() {
        return Ok(form_page(
            &v,
            Some(&csrf),
            true,
            &next,
            "",
            Some(t.citizen_refused.into()),
            StatusCode::UNAUTHORIZED,
        ));
    }
    let to = next_or_home(next, Role::Subject);
    session::open(
        &portal,
        &v,
        SessionFor::Citizen(to_hex(&token_hash(token))),
        &to,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct Empty {}

async fn logout(State(portal): State<Portal>, posted: Posted<Empty>) -> Response {
    session::close(&portal, &posted.session).await
}

#[derive(Debug, Deserialize)]
struct BackQuery {
    back: Option<String>,
}

async fn switch_language(
    v: Visitor,
    Path(code): Path<String>,
    Query(q): Query<BackQuery>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or(v.lang);
    let mut r = Redirect::to(&safe_back(q.back.as_deref(), "/")).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LANG_COOKIE, lang.code(), Some(365 * 86_400), v.secure),
    );
    r
}

/// `GET /`: the start page for visitors; the signed-in go to their role's home.
pub(crate) async fn start(State(portal): State<Portal>, v: Visitor, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    use dagr_admin_api::axum::extract::FromRequestParts;
    if let Ok(s) = SignedIn::from_request_parts(&mut parts, &portal).await {
        return Redirect::to(s.home()).into_response();
    }
    crate::home::landing(&v)
}

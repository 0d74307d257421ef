//! What every page shares: the frame ([`Shell`]), rendering, readable errors
//! ([`PortalError`]), times in Latvian local time, and the security headers of every
//! response.

use askama::Template;
use dagr_admin_api::axum::http::{HeaderValue, StatusCode, header};
use dagr_admin_api::axum::response::{Html, IntoResponse, Redirect, Response};
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::{Organisation, Time};
use dagr_admin_api::store::Page;
use dagr_engine::Role;

use crate::Portal;
use crate::i18n::{Common, Lang};
use crate::session::SignedIn;

/// Rows a list page shows.
pub(crate) const PAGE: i64 = 50;
/// Most organisations a page reads to offer or to name them.
const MAX_ORGANISATIONS: i64 = 1000;

/// One link of the main navigation.
#[derive(Debug, Clone)]
pub(crate) struct NavItem {
    /// Where it leads.
    pub(crate) href: &'static str,
    /// Its text.
    pub(crate) label: &'static str,
    /// Whether the current page is under it (`aria-current="page"`).
    pub(crate) current: bool,
}

/// Who is signed in, as the frame shows it.
#[derive(Debug, Clone)]
pub(crate) struct ShellUser {
    /// The person's name (or "Citizen" and the masked personal code).
    pub(crate) name: String,
    /// Role and organisation, e.g. "data owner, PMLP".
    pub(crate) detail: String,
}

/// The frame of a page: language, navigation, who is signed in, the session's CSRF token
/// for the sign-out form. Every page template has it as its `shell` field.
#[derive(Debug, Clone)]
pub(crate) struct Shell {
    /// The page's language.
    pub(crate) lang: Lang,
    /// The frame's texts in that language.
    pub(crate) c: &'static Common,
    /// The page title (the `<title>` and usually the `<h1>`).
    pub(crate) title: String,
    /// Who is signed in, if anyone.
    pub(crate) user: Option<ShellUser>,
    /// The session's CSRF token (empty when nobody is signed in).
    pub(crate) csrf: String,
    /// The link that switches the language and comes back to this page.
    pub(crate) switch_href: String,
    /// The main navigation for the signed-in role.
    pub(crate) nav: Vec<NavItem>,
    /// A confirmation to show at the top (after a form succeeded), if any.
    pub(crate) notice: Option<String>,
}

impl Shell {
    /// A frame for nobody signed in.
    pub(crate) fn anonymous(lang: Lang, path: &str) -> Shell {
        Shell {
            lang,
            c: Common::get(lang),
            title: String::new(),
            user: None,
            csrf: String::new(),
            switch_href: switch_href(lang, path),
            nav: Vec::new(),
            notice: None,
        }
    }

    /// The same frame with `title`.
    pub(crate) fn titled(mut self, title: impl Into<String>) -> Shell {
        self.title = title.into();
        self
    }

    /// The same frame with a confirmation at the top.
    pub(crate) fn with_notice(mut self, notice: impl Into<String>) -> Shell {
        self.notice = Some(notice.into());
        self
    }

    /// The same frame with the confirmation a `?done=` parameter names: the text paired
    /// with it in `known`, none for any other value (the URL's own text is never shown).
    pub(crate) fn with_done(self, done: Option<&str>, known: &[(&str, &'static str)]) -> Shell {
        match known.iter().find(|(key, _)| Some(*key) == done) {
            Some((_, text)) => self.with_notice(*text),
            None => self,
        }
    }

    /// The error page for `e` in this frame.
    pub(crate) fn fail(&self, e: GovError) -> PortalError {
        let (status, lead) = status_lead(self.c, &e);
        self.error(status, lead, &message(&e))
    }

    /// The "try again later" page of a part DAGR needs that failed (the caller logs why).
    pub(crate) fn unavailable(&self) -> PortalError {
        self.error(
            StatusCode::SERVICE_UNAVAILABLE,
            self.c.error_unavailable,
            "",
        )
    }

    /// An error page with a status, a lead sentence and details.
    pub(crate) fn error(&self, status: StatusCode, lead: &str, detail: &str) -> PortalError {
        PortalError {
            status,
            shell: Box::new(self.clone().titled(self.c.error_title)),
            lead: lead.to_owned(),
            detail: detail.to_owned(),
        }
    }
}

/// The status of a page refused with `e`, and the lead sentence of its message.
pub(crate) fn status_lead(c: &Common, e: &GovError) -> (StatusCode, &'static str) {
    match e {
        GovError::Forbidden(_) => (StatusCode::FORBIDDEN, c.error_forbidden),
        GovError::NotFound(_) => (StatusCode::NOT_FOUND, c.error_not_found),
        GovError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, c.error_invalid),
        GovError::Conflict(_) => (StatusCode::CONFLICT, c.error_conflict),
        GovError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, c.error_unavailable),
        GovError::Engine(_) => (StatusCode::UNPROCESSABLE_ENTITY, c.error_invalid),
    }
}

/// The service's refusal of a form's `field`, for a check the page makes itself (e.g. a
/// date that does not parse).
pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The ids chosen in a form's `field` (e.g. its systems); a value that is not an id is
/// refused, `not_id` saying why.
pub(crate) fn parse_ids(
    field: &str,
    values: &[String],
    not_id: &str,
) -> Result<Vec<i64>, GovError> {
    values
        .iter()
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(field, format!("`{v}` {not_id}")))
        })
        .collect()
}

/// The readable part of a governance error, for a message on the page: what was wrong,
/// never a database error's internals.
pub(crate) fn message(e: &GovError) -> String {
    match e {
        GovError::Store(inner) => {
            tracing::error!(error = %inner, "portal: metadata store failed");
            String::new()
        }
        GovError::Engine(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// `/lang/{other}?back={path}`: the link of the language switch.
fn switch_href(lang: Lang, path: &str) -> String {
    format!(
        "/lang/{}?back={}",
        lang.other().code(),
        encode_component(path)
    )
}

/// Percent-encode a URL component (everything but unreserved characters).
pub(crate) use dagr_admin_api::extract::encode as encode_component;

/// A same-site path to come back to: a path starting with one `/`, or `fallback`
/// (never an absolute URL, so a crafted link cannot send a user elsewhere).
pub(crate) fn safe_back(back: Option<&str>, fallback: &str) -> String {
    match back {
        Some(b)
            if b.starts_with('/')
                && !b.starts_with("//")
                && !b.starts_with("/\\")
                && !b.bytes().any(|c| c.is_ascii_control()) =>
        {
            b.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

/// A page shown because something failed: its status, the frame, a lead sentence and the
/// details, all readable; never a stack trace or raw JSON.
#[derive(Debug)]
pub(crate) struct PortalError {
    status: StatusCode,
    shell: Box<Shell>,
    lead: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    shell: &'a Shell,
    lead: &'a str,
    detail: &'a str,
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            shell: &self.shell,
            lead: &self.lead,
            detail: &self.detail,
        };
        let mut response = render(&page);
        *response.status_mut() = self.status;
        response
    }
}

/// The "not found" page for a path no page or API route has.
pub(crate) async fn not_found(req: dagr_admin_api::axum::extract::Request) -> Response {
    let lang = crate::session::lang_of(req.headers());
    let shell = Shell::anonymous(lang, req.uri().path());
    let c = shell.c;
    shell
        .error(StatusCode::NOT_FOUND, c.error_not_found, req.uri().path())
        .into_response()
}

/// A request with a method a page does not answer: a GET of a form's action (a link
/// followed, an address typed) goes to the page the action belongs to; anything else is a
/// readable 405 page.
pub(crate) async fn method_not_allowed(req: dagr_admin_api::axum::extract::Request) -> Response {
    let path = req.uri().path();
    let page = crate::session::page_of_action(path);
    if req.method() == dagr_admin_api::axum::http::Method::GET && page != path {
        return Redirect::to(page).into_response();
    }
    let lang = crate::session::lang_of(req.headers());
    let shell = Shell::anonymous(lang, page);
    let c = shell.c;
    let mut r = shell
        .error(StatusCode::METHOD_NOT_ALLOWED, c.error_not_found, path)
        .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Render a template as an HTML response (a template that fails to render, which only a
/// bug can cause, is logged and answered with a plain 500).
pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal: a template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown. The error was logged.",
            )
                .into_response()
        }
    }
}

/// Render a template with a status (e.g. a refused form shown again with 422).
pub(crate) fn render_status(status: StatusCode, t: &impl Template) -> Response {
    let mut r = render(t);
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    r
}

/// Redirect after a successful form (303: the browser follows with GET).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The store page of a list page after cursor `after` (the last id of the page before;
/// anything but an id starts at the first page): one row more than [`PAGE`], so that
/// [`split_next`] knows whether a next page follows.
pub(crate) fn page_after(after: Option<&str>) -> Page {
    Page {
        limit: PAGE + 1,
        after: after
            .and_then(|a| a.trim().parse::<i64>().ok())
            .map(|a| a.to_string()),
    }
}

/// The rows of a list page read by [`page_after`] (at most [`PAGE`]), and where the next
/// page starts, if one follows: the last shown row's id.
pub(crate) fn split_next<T>(mut items: Vec<T>, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    if items.len() as i64 > PAGE {
        items.truncate(PAGE as usize);
        let next = items.last().map(id);
        (items, next)
    } else {
        (items, None)
    }
}

/// The link to the next page of list `path`, starting after `after` (none without it),
/// keeping the list's filter `param` (name and value).
pub(crate) fn next_href(
    path: &str,
    param: Option<(&str, &str)>,
    after: Option<i64>,
) -> Option<String> {
    let after = after?;
    Some(match param {
        Some((name, value)) => {
            format!("{path}?{name}={}&after={after}", encode_component(value))
        }
        None => format!("{path}?after={after}"),
    })
}

/// Every item of a list the service gives a page at a time: `read` gets pages of
/// `per_page` items, each after the `cursor` of the last item read, until a page is short
/// or `max` items are read. The items, and whether `max` cut the list short.
pub(crate) async fn read_all<T, F, Fut>(
    per_page: i64,
    max: usize,
    cursor: impl Fn(&T) -> String,
    mut read: F,
) -> Result<(Vec<T>, bool), GovError>
where
    F: FnMut(Page) -> Fut,
    Fut: Future<Output = Result<Vec<T>, GovError>>,
{
    let mut all = Vec::new();
    loop {
        let page = Page {
            limit: per_page,
            after: all.last().map(&cursor),
        };
        let got = read(page).await?;
        let full = got.len() as i64 >= per_page;
        all.extend(got);
        if !full {
            return Ok((all, false));
        }
        if all.len() >= max {
            return Ok((all, true));
        }
    }
}

/// The organisations the caller may list, by code (at most [`MAX_ORGANISATIONS`]), for a
/// choice of organisation or to name them.
pub(crate) async fn organisations(
    portal: &Portal,
    s: &SignedIn,
) -> Result<Vec<Organisation>, PortalError> {
    let all = Page {
        limit: MAX_ORGANISATIONS,
        after: None,
    };
    portal
        .app
        .gov
        .organisations(&s.principal, &all)
        .await
        .map_err(|e| s.fail(e))
}

/// Headers every portal response carries: a strict content security policy (only our own
/// scripts, styles and images; no framing), no MIME sniffing, no referrer outside, and
/// no caching of pages (they show personal data).
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

pub(crate) use dagr_admin_api::calendar::{riga, riga_day_start};

/// A time for people: `2026-11-27 19:20` in Latvian local time.
pub(crate) fn fmt_time(t: Time) -> String {
    riga(t).format("%Y-%m-%d %H:%M").to_string()
}

/// The end of a validity (an exclusive instant) for people. An end at a Latvian local
/// midnight is shown as the day before, the inclusive "to" date the forms take: the end
/// 2027-01-01 00:00 reads `2026-12-31`, and typing `2026-12-31` into a form gives that same
/// end. Any other end is shown as [`fmt_time`] shows it.
pub(crate) fn fmt_end(t: Time) -> String {
    let local = riga(t);
    match local.date().pred_opt() {
        Some(last_day) if local.time() == chrono::NaiveTime::MIN => {
            last_day.format("%Y-%m-%d").to_string()
        }
        _ => fmt_time(t),
    }
}

/// The role's name in the frame's language.
pub(crate) fn role_name(c: &Common, role: Role) -> &'static str {
    match role {
        Role::Admin => c.role_admin,
        Role::Owner => c.role_owner,
        Role::Consumer => c.role_consumer,
        Role::Subject => c.citizen,
    }
}

/// `YYYY-MM-DD HH:MM` in UTC as a time, for tests.
#[cfg(test)]
pub(crate) fn utc(s: &str) -> Time {
    Time(
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latvian_days_start_at_local_midnight() {
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Winter: UTC+2; summer: UTC+3.
        assert_eq!(riga_day_start(day("2026-01-15")), utc("2026-01-14 22:00"));
        assert_eq!(riga_day_start(day("2026-07-01")), utc("2026-06-30 21:00"));
        // The days summer time starts and ends.
        assert_eq!(riga_day_start(day("2026-03-29")), utc("2026-03-28 22:00"));
        assert_eq!(riga_day_start(day("2026-10-25")), utc("2026-10-24 21:00"));
    }

    #[test]
    fn list_pages_read_one_row_more_to_know_of_a_next_page() {
        assert_eq!(page_after(Some(" 12 ")).after.as_deref(), Some("12"));
        assert_eq!(page_after(Some("x")).after, None);
        assert_eq!(page_after(None).limit, PAGE + 1);
        let (rows, next) = split_next((1..=PAGE + 1).collect(), |&i| i * 10);
        assert_eq!((rows.len() as i64, next), (PAGE, Some(PAGE * 10)));
        assert_eq!(
            next_href("/changes", Some(("status", "a b")), Some(7)).as_deref(),
            Some("/changes?status=a%20b&after=7")
        );
        assert_eq!(
            next_href("/x", None, Some(3)).as_deref(),
            Some("/x?after=3")
        );
        assert_eq!(next_href("/x", None, None), None);
        assert_eq!(split_next(vec![1, 2], |&i| i), (vec![1, 2], None));
    }

    #[test]
    fn riga_time_follows_summer_time() {
        // Winter: UTC+2.
        assert_eq!(fmt_time(utc("2026-11-27 17:20")), "2026-11-27 19:20");
        // Summer 2026 starts 29 March 01:00 UTC and ends 25 October 01:00 UTC.
        assert_eq!(fmt_time(utc("2026-03-29 00:59")), "2026-03-29 02:59");
        assert_eq!(fmt_time(utc("2026-03-29 01:00")), "2026-03-29 04:00");
        assert_eq!(fmt_time(utc("2026-10-25 00:59")), "2026-10-25 03:59");
        assert_eq!(fmt_time(utc("2026-10-25 01:00")), "2026-10-25 03:00");
    }

    #[test]
    fn an_end_at_latvian_midnight_is_the_last_day_it_includes() {
        // Winter: midnight 1 January 2027 in Latvia is 22:00 UTC the day before.
        assert_eq!(fmt_end(utc("2026-12-31 22:00")), "2026-12-31");
        // Summer: midnight 1 August 2026 is 21:00 UTC the day before.
        assert_eq!(fmt_end(utc("2026-07-31 21:00")), "2026-07-31");
        // Around the days summer time starts (29 March) and ends (25 October).
        assert_eq!(fmt_end(utc("2026-03-28 22:00")), "2026-03-28");
        assert_eq!(fmt_end(utc("2026-03-29 21:00")), "2026-03-29");
        assert_eq!(fmt_end(utc("2026-10-24 21:00")), "2026-10-24");
        assert_eq!(fmt_end(utc("2026-10-25 22:00")), "2026-10-25");
        // Not a Latvian midnight (a UTC midnight, one minute past, one millisecond past):
        // the time as it is.
        assert_eq!(fmt_end(utc("2026-12-31 00:00")), "2026-12-31 02:00");
        assert_eq!(fmt_end(utc("2026-12-31 22:01")), "2027-01-01 00:01");
        assert_eq!(
            fmt_end(Time(utc("2026-12-31 22:00").0 + 1)),
            "2027-01-01 00:00"
        );
        assert_eq!(fmt_end(utc("2026-07-31 22:00")), "2026-08-01 01:00");
    }

    #[test]
    fn only_same_site_paths_are_followed_back() {
        assert_eq!(safe_back(Some("/catalog?q=x"), "/"), "/catalog?q=x");
        assert_eq!(safe_back(Some("//evil.example/"), "/"), "/");
        assert_eq!(safe_back(Some("/\\evil.example"), "/"), "/");
        assert_eq!(safe_back(Some("https://evil.example/"), "/"), "/");
        assert_eq!(safe_back(None, "/home"), "/home");
        assert_eq!(encode_component("/a b?c=ā"), "%2Fa%20b%3Fc%3D%C4%81");
    }
}

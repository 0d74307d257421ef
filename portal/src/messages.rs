//! `GET|POST /messages`: a person's messages — what DAGR's modules told them (an answer to
//! their TAPIS comment, a notice that a consultation touches their property, MAP's news
//! about their application…), newest first, each with its module, subject, text and the
//! link to follow it up; and the e-mail address the same messages are mailed to.
//!
//! The list is the person's inbox across modules (`outbox::inbox::list`, what
//! `GET /api/v1/me/inbox` answers), the address the one `PUT /api/v1/me/email` sets
//! (`outbox::check_address`, `outbox::set_address`). Persons only: a citizen signed in as
//! themselves (`subject:{code}`) or a person of an organisation (`user:{login}`); the key is
//! `outbox::api::recipient`, so the page and the REST API read the same inbox.

use askama::Template;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::Time;
use dagr_admin_api::outbox::{self, inbox::InboxEntry};
use dagr_admin_api::store::StoreError;
use serde::Deserialize;

use crate::Portal;
use crate::i18n::{Lang, texts};
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, Shell, fmt_time, invalid, render_status, see_other};

/// Messages the page shows, newest first.
const SHOWN: i64 = 100;
/// Longest address field read from the form (bytes; the address itself is at most
/// [`outbox::MAX_ADDRESS`]).
const MAX_FIELD: usize = 1 << 10;

texts! {
    /// Texts of the messages page.
    pub(crate) struct MessagesText {
        nav: "Ziņojumi", "Messages";
        title: "Mani ziņojumi", "My messages";
        lead: "Ko jums paziņojuši DAGR moduļi — piemēram, atbilde uz jūsu priekšlikumu plānošanas dokumentam —, jaunākie vispirms.", "What DAGR's modules told you (an answer to your comment on a planning document, for instance), newest first.";
        empty: "Ziņojumu nav.", "No messages.";
        more: "Parādīti tikai jaunākie ziņojumi.", "Only the newest messages are shown.";
        received: "Saņemts", "Received";
        open: "Atvērt", "Open";
        email_title: "E-pasta adrese", "E-mail address";
        email_hint: "Ja norādāt adresi, ziņojumus saņemsiet arī pa e-pastu. Atstājiet tukšu, lai tie būtu tikai šeit.", "With an address, you get the messages by e-mail too. Leave it empty to have them only here.";
        email_current: "Ziņojumi tiek sūtīti uz", "Messages are mailed to";
        email_none: "Adrese nav norādīta: ziņojumi ir tikai šeit.", "No address given: the messages are only here.";
        email_label: "E-pasta adrese", "E-mail address";
        email_submit: "Saglabāt", "Save";
        done_email: "E-pasta adrese saglabāta.", "The e-mail address was saved.";
        done_email_removed: "E-pasta adrese noņemta; ziņojumi būs tikai šeit.", "The e-mail address was removed; messages are only here.";
    }
}

/// The routes of the page.
pub(crate) fn routes() -> Router<Portal> {
    Router::new().route("/messages", get(page).post(set_email))
}

/// A message as shown.
struct Row {
    /// Its id in the page (`inbox-12`, `map-7`).
    id: String,
    module: String,
    module_text: String,
    subject: String,
    body: String,
    at: String,
    /// Where to follow it up, when it is a link a page may hold.
    link: Option<String>,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    shell: Shell,
    t: &'static MessagesText,
    rows: Vec<Row>,
    more: bool,
    /// The address given, if any.
    current: Option<String>,
    /// The form's value: as typed when refused, else the address given.
    address: String,
    error: Option<crate::tapis::Refusal>,
}

/// The query: the confirmation.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(default)]
    done: String,
}

/// The recipient key of the signed-in person, or the service's refusal.
fn recipient(s: &SignedIn) -> Result<String, GovError> {
    outbox::api::recipient(&s.principal)
        .ok_or_else(|| GovError::Forbidden("messages belong to a person signed in".into()))
}

/// A module's name in the page's language, as the navigation names it (its code for a
/// module without a page).
fn module_text(lang: Lang, module: &str) -> String {
    match module {
        "tapis" => crate::tapis::TapisText::get(lang).nav.to_owned(),
        "map" => crate::map::MapText::get(lang).nav.to_owned(),
        other => other.to_owned(),
    }
}

/// A message's link as a page may hold it: one of DAGR's own addresses (`public_url`
/// followed by a path) as that path, so it opens wherever the portal is reached; a path of
/// this site; an `http(s)` address. Anything else (`javascript:`, `//elsewhere`) is no link.
fn link_of(link: &str, public_url: &str) -> Option<String> {
    let link = link.trim();
    let base = public_url.trim_end_matches('/');
    if !base.is_empty()
        && let Some(path) = link.strip_prefix(base)
        && path.starts_with('/')
        && !path.starts_with("//")
    {
        return Some(path.to_owned());
    }
    if (link.starts_with('/') && !link.starts_with("//"))
        || link.starts_with("https://")
        || link.starts_with("http://")
    {
        return Some(link.to_owned());
    }
    None
}

fn row(lang: Lang, public_url: &str, e: InboxEntry) -> Row {
    Row {
        id: e.id.replace(':', "-"),
        module_text: module_text(lang, &e.module),
        at: Time::parse(&e.at).map(fmt_time).unwrap_or(e.at),
        link: e.link.as_deref().and_then(|l| link_of(l, public_url)),
        module: e.module,
        subject: e.subject,
        body: e.body,
    }
}

fn db(e: impl Into<StoreError>) -> GovError {
    GovError::Store(e.into())
}

/// The page of `who`, the form holding `typed` when it was refused.
async fn load(
    portal: &Portal,
    shell: Shell,
    who: &str,
    typed: Option<String>,
    error: Option<crate::tapis::Refusal>,
) -> Result<MessagesPage, PortalError> {
    let t = MessagesText::get(shell.lang);
    let pool = portal.app.gov.store().pool();
    let mut list = outbox::inbox::list(pool, who, SHOWN + 1)
        .await
        .map_err(|e| shell.fail(e))?;
    let more = list.len() as i64 > SHOWN;
    list.truncate(SHOWN as usize);
    let current = async {
        let mut c = pool.acquire().await.map_err(db)?;
        outbox::address(&mut c, who).await
    }
    .await
    .map_err(|e| shell.fail(e))?;
    let public_url = portal.app.public_url();
    Ok(MessagesPage {
        rows: list
            .into_iter()
            .map(|e| row(shell.lang, &public_url, e))
            .collect(),
        more,
        address: typed.unwrap_or_else(|| current.clone().unwrap_or_default()),
        current,
        error,
        shell,
        t,
    })
}

/// `GET /messages`.
async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<PageQuery>,
) -> Result<Response, PortalError> {
    let t = MessagesText::get(s.lang());
    let shell = s.shell(t.title).with_done(
        Some(&q.done),
        &[
            ("email", t.done_email),
            ("email-removed", t.done_email_removed),
        ],
    );
    let who = recipient(&s).map_err(|e| shell.fail(e))?;
    let page = load(&portal, shell, &who, None, None).await?;
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /messages`: set the e-mail address (an empty one removes it).
async fn set_email(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let t = MessagesText::get(s.lang());
    let shell = s.shell(t.title);
    let who = recipient(&s).map_err(|e| shell.fail(e))?;
    let typed = form
        .into_iter()
        .find(|(k, _)| k == "address")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let result = async {
        if typed.len() > MAX_FIELD {
            return Err(invalid(
                "address",
                format!("longer than {} bytes", outbox::MAX_ADDRESS),
            ));
        }
        let address = match typed.trim() {
            "" => None,
            a => Some(outbox::check_address(a)?),
        };
        outbox::set_address(portal.app.gov.store().pool(), &who, address.as_deref()).await?;
        Ok(address.is_some())
    }
    .await;
    match result {
        Ok(true) => Ok(see_other("/messages?done=email")),
        Ok(false) => Ok(see_other("/messages?done=email-removed")),
        Err(GovError::Store(inner)) => Err(shell.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = crate::tapis::Refusal::of(&shell, &e);
            let typed: String = typed.chars().take(MAX_FIELD).collect();
            let page = load(&portal, shell, &who, Some(typed), Some(refusal)).await?;
            Ok(render_status(status, &page))
        }
    }
}

/// Whether the navigation offers the page: to persons (citizens and persons of
/// organisations), not to admins.
pub(crate) fn offered(s: &SignedIn) -> bool {
    s.principal.role != dagr_engine::Role::Admin && outbox::api::recipient(&s.principal).is_some()
}

/// The navigation entry's text.
pub(crate) fn nav(lang: Lang) -> &'static str {
    MessagesText::get(lang).nav
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_dagr_paths_or_web_addresses() {
        let base = "https://dagr.example";
        assert_eq!(
            link_of("https://dagr.example/tapis/receipts/ab12", base).as_deref(),
            Some("/tapis/receipts/ab12"),
            "DAGR's own address opens where the portal is reached"
        );
        assert_eq!(
            link_of("/map/applications/7", base).as_deref(),
            Some("/map/applications/7")
        );
        assert_eq!(
            link_of("https://elsewhere.example/x", base).as_deref(),
            Some("https://elsewhere.example/x")
        );
        assert_eq!(link_of("javascript:alert(1)", base), None);
        assert_eq!(link_of("//evil.example/x", base), None);
        assert_eq!(
            link_of("https://dagr.example//evil.example", base).as_deref(),
            Some("https://dagr.example//evil.example"),
            "not a path of this site: kept as the address it is"
        );
    }

    #[test]
    fn modules_are_named_in_both_languages() {
        for lang in [Lang::Lv, Lang::En] {
            assert_ne!(module_text(lang, "tapis"), "tapis");
            assert_ne!(module_text(lang, "map"), "map");
            assert_eq!(module_text(lang, "other"), "other");
        }
        assert_eq!(module_text(Lang::En, "tapis"), "Territorial planning");
    }
}

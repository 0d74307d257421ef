//! TAPIS, territorial development planning, in the portal: help and FAQ ([`help`]), and
//! the pages of planners, institutions (their answer page reached by the signed link) and
//! the public.
//!
//! Every read and action is a call of [`dagr_admin_api::tapis::service`] (or the module's
//! other service functions) with the session's principal, the same functions the REST API
//! calls: no rule of TAPIS lives here.
//!
//! - `GET /tapis`: the public list of documents, filtered by municipality, stage and type;
//!   a planner also has the "new document" form (`POST /tapis`) ([`documents`]).
//! - `GET /tapis/documents/{id}`: the public page of a document: stages, history, the
//!   territory on an SVG map ([`svg`]), versions and their paragraphs, consultations,
//!   the institutions asked; for its planner also the actions, taken by
//!   `POST /tapis/documents/{id}/act` ([`document`], [`actions`]).
//! - `GET|POST /tapis/respond/{token}`: the institution's answer page, reached by the link
//!   of its e-mail, without an account ([`respond`]).
//! - During an open consultation a signed-in citizen comments from the document's page (a
//!   paragraph, or a point clicked on the map) and gets a receipt:
//!   `GET /tapis/receipts/{rid}` shows it, its status and the answer ([`receipt`]).
//! - `GET|POST /tapis/documents/{id}/consultations/{cid}/comments`: the planner's list of
//!   a consultation's comments with filters and answer forms; `…/report` downloads the
//!   report ([`consultation`]); the comments can be split into parts and tagged and
//!   grouped there too.
//! - `GET|POST /tapis/answer-blocks`: a planner's standard answer blocks ([`blocks`]).
//! - `GET /tapis/static/map.js`: the small script that turns a click on the map into
//!   coordinates, or clicks into an area's polygon (the pages work without it:
//!   coordinates and GeoJSON can be typed).

mod actions;
mod blocks;
mod consultation;
mod document;
mod documents;
mod help;
mod receipt;
mod respond;
mod svg;
mod text;

use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::FromRequestParts;
use dagr_admin_api::axum::http::request::Parts;
use dagr_admin_api::axum::http::{HeaderValue, header};
use dagr_admin_api::axum::response::{IntoResponse, Response};
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::model::Time;
use dagr_admin_api::tapis::model::{DocType, Stage};
use dagr_admin_api::tapis::service::{self, Caller};

use crate::Portal;
use crate::i18n::Lang;
use crate::session::{SESSION_COOKIE, SignedIn, Visitor, cookie};
use crate::web::{Shell, fmt_time};

pub(crate) use text::TapisText;

/// The map script (plain JavaScript, no third-party code).
const MAP_JS: &str = include_str!("map.js");

/// The TAPIS pages.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/tapis", get(documents::page).post(documents::create))
        .route("/tapis/documents/{id}", get(document::page))
        .route(
            "/tapis/documents/{id}/act",
            get(actions::back).post(actions::act),
        )
        .route(
            "/tapis/respond/{token}",
            get(respond::page).post(respond::answer),
        )
        .route(
            "/tapis/documents/{id}/consultations/{cid}/comments",
            get(consultation::page).post(consultation::act),
        )
        .route(
            "/tapis/documents/{id}/consultations/{cid}/report",
            get(consultation::report),
        )
        .route("/tapis/answer-blocks", get(blocks::page).post(blocks::put))
        .route("/tapis/receipts/{rid}", get(receipt::page))
        .route("/tapis/static/map.js", get(map_js))
        .merge(help::routes())
}

async fn map_js() -> Response {
    let mut r = MAP_JS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// Whoever reads a public page: a visitor, signed in or not. A session cookie that no
/// longer holds (expired, signed out elsewhere) reads the page as the public does; a
/// session store that cannot be read is the "try again" page.
pub(crate) struct Reader {
    /// Language and place.
    pub(crate) visitor: Visitor,
    /// The session, if any.
    pub(crate) session: Option<SignedIn>,
}

impl FromRequestParts<Portal> for Reader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, Response> {
        let visitor = match Visitor::from_request_parts(parts, portal).await {
            Ok(v) => v,
            Err(never) => match never {},
        };
        if cookie(&parts.headers, SESSION_COOKIE).is_none() {
            return Ok(Reader {
                visitor,
                session: None,
            });
        }
        match SignedIn::from_request_parts(parts, portal).await {
            Ok(s) => Ok(Reader {
                visitor,
                session: Some(s),
            }),
            // A dead session is sent to sign in on other pages; a public page is shown.
            Err(r) if r.status().is_redirection() => Ok(Reader {
                visitor,
                session: None,
            }),
            Err(r) => Err(r),
        }
    }
}

impl Reader {
    /// The frame: the signed-in one with its navigation, or the anonymous one.
    pub(crate) fn shell(&self, title: impl Into<String>) -> Shell {
        match &self.session {
            Some(s) => s.shell(title),
            None => self.visitor.shell(title),
        }
    }

    /// The page's language.
    pub(crate) fn lang(&self) -> Lang {
        self.visitor.lang
    }
}

/// Who the signed-in person is in TAPIS (citizens, planners, admins; the public without a
/// session).
pub(crate) async fn caller_of(portal: &Portal, s: Option<&SignedIn>) -> Result<Caller, GovError> {
    match s {
        Some(s) => service::caller(&portal.app, &s.principal).await,
        None => Ok(Caller::Public),
    }
}

/// The role a help page is chosen for.
pub(crate) fn role_of(c: &Caller) -> &'static str {
    match c {
        Caller::Planner { .. } => "planner",
        Caller::Admin => "admin",
        Caller::Citizen { .. } => "citizen",
        Caller::Public => "public",
    }
}

/// The link to the help of a stage and role, in the page's language.
pub(crate) fn help_href(stage: Option<Stage>, role: &str, lang: Lang) -> String {
    let mut href = format!("/tapis/help?role={role}&lang={}", lang.code());
    if let Some(s) = stage {
        href.push_str(&format!("&stage={}", s.as_str()));
    }
    href
}

/// A stage's name in the page's language.
pub(crate) fn stage_text(t: &TapisText, s: Stage) -> &'static str {
    match s {
        Stage::Initiated => t.stage_initiated,
        Stage::Conditions => t.stage_conditions,
        Stage::Drafting => t.stage_drafting,
        Stage::Consultation => t.stage_consultation,
        Stage::Evaluation => t.stage_evaluation,
        Stage::Approved => t.stage_approved,
        Stage::InForce => t.stage_in_force,
        Stage::Cancelled => t.stage_cancelled,
    }
}

/// A document type's name in the page's language.
pub(crate) fn type_text(t: &TapisText, d: DocType) -> &'static str {
    match d {
        DocType::DevelopmentStrategy => t.type_development_strategy,
        DocType::DevelopmentProgramme => t.type_development_programme,
        DocType::TerritorialPlan => t.type_territorial_plan,
        DocType::LocalPlan => t.type_local_plan,
        DocType::DetailedPlan => t.type_detailed_plan,
        DocType::ThematicPlan => t.type_thematic_plan,
    }
}

/// A time the service gives as RFC 3339, in Latvian local time (as given if it is none).
pub(crate) fn when(s: &str) -> String {
    Time::parse(s).map(fmt_time).unwrap_or_else(|| s.to_owned())
}

/// An area for people: hectares with two decimals, and square metres below one hectare.
pub(crate) fn area(m2: f64) -> String {
    if m2 >= 10_000.0 {
        format!("{:.2} ha", m2 / 10_000.0)
    } else {
        format!("{m2:.0} m²")
    }
}

/// A `<select>` option.
pub(crate) struct Choice {
    /// The value sent.
    pub(crate) value: String,
    /// The text shown.
    pub(crate) label: String,
    /// Whether it is chosen.
    pub(crate) selected: bool,
}

/// A refusal shown on a page: the lead sentence, the service's message, the field it
/// names (if any).
pub(crate) struct Refusal {
    /// The lead sentence ("Please correct what you entered").
    pub(crate) lead: &'static str,
    /// The service's message.
    pub(crate) message: String,
    /// The field named, or empty.
    pub(crate) field: String,
}

impl Refusal {
    /// The refusal of `e` in `shell`'s language, and the page's status.
    pub(crate) fn of(
        shell: &Shell,
        e: &GovError,
    ) -> (dagr_admin_api::axum::http::StatusCode, Refusal) {
        let (status, lead) = crate::web::status_lead(shell.c, e);
        let field = match e {
            GovError::Invalid { field, .. } => field.clone(),
            _ => String::new(),
        };
        (
            status,
            Refusal {
                lead,
                message: crate::web::message(e),
                field,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_read_in_hectares_above_one() {
        assert_eq!(area(2_500.4), "2500 m²");
        assert_eq!(area(123_456.0), "12.35 ha");
    }

    #[test]
    fn help_links_name_stage_role_and_language() {
        assert_eq!(
            help_href(Some(Stage::Drafting), "planner", Lang::En),
            "/tapis/help?role=planner&lang=en&stage=drafting"
        );
        assert_eq!(
            help_href(None, "public", Lang::Lv),
            "/tapis/help?role=public&lang=lv"
        );
    }

    #[test]
    fn every_stage_and_type_has_a_name_in_both_languages() {
        for lang in [Lang::Lv, Lang::En] {
            let t = TapisText::get(lang);
            for s in Stage::WAY.into_iter().chain([Stage::Cancelled]) {
                assert!(!stage_text(t, s).is_empty());
            }
            for d in DocType::ALL {
                assert!(!type_text(t, d).is_empty());
            }
        }
        assert_eq!(
            stage_text(TapisText::get(Lang::En), Stage::InForce),
            "In force"
        );
    }
}

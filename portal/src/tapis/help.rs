//! `GET /tapis/help?q=&stage=&role=&lang=`: TAPIS's help and FAQ, searchable (case and
//! Latvian diacritics folded: `e` finds `ē`), for a stage and a role; every other TAPIS
//! page links here with its own stage and role ([`super::help_href`]). Each article asks
//! "Was this helpful?"; an admin also sees the votes, least helpful first.
//!
//! `POST /tapis/help/{id}/feedback` records a vote ([`help::vote`]) and comes back. A vote
//! is anonymous and anyone may give one, signed in or not, so its form is protected as the
//! sign-in forms are: a double-submit token, here the random help cookie
//! ([`HELP_COOKIE`]) that the page sets and the form repeats, and the `Origin` check. The
//! same cookie names the browser as the voter: one vote per article and browser, a second
//! changing the first.
//!
//! Every read and vote is a call of [`dagr_admin_api::tapis::help`], as the REST API's.

use askama::Template;
use dagr_admin_api::axum::Router;
use dagr_admin_api::axum::extract::{Path, Query, Request, State};
use dagr_admin_api::axum::http::{HeaderMap, StatusCode, header};
use dagr_admin_api::axum::response::{IntoResponse, Response};
use dagr_admin_api::axum::routing::get;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::TapisStore;
use dagr_admin_api::tapis::help::{self, Block, HelpLang, HelpQuery, HelpRole, MAX_QUERY, Voter};
use dagr_admin_api::tapis::model::Stage;
use dagr_admin_api::tapis::service::Caller;
use serde::Deserialize;

use super::{Choice, Reader, Refusal, TapisText, caller_of, stage_text};
use crate::Portal;
use crate::i18n::texts;
use crate::session::{
    Visitor, cookie, random_hex, read_form, same_origin, same_secret, set_cookie,
};
use crate::web::{PortalError, Shell, encode_component, render_status, safe_back, see_other};

/// The browser's help cookie: 64 random hex digits, the voter and the vote forms' token.
pub(crate) const HELP_COOKIE: &str = "dagr_help";
/// How long the help cookie lasts, in seconds (a year).
const HELP_COOKIE_AGE: u64 = 365 * 86_400;
/// Articles a page shows.
const PAGE_RESULTS: i64 = 50;

texts! {
    /// Texts of the help page.
    pub(crate) struct HelpText {
        title: "Palīdzība un biežāk uzdotie jautājumi", "Help and frequently asked questions";
        lead: "Kā notiek teritorijas attīstības plānošana: kas notiek katrā stadijā, kas rīkojas, kā iestādes atbild un kā iedzīvotāji komentē. Termiņus nosaka noteikumi.", "How territorial development planning works: what happens at each stage, who acts, how institutions answer and how citizens comment. Deadlines are set by the rules.";
        search_label: "Meklēt palīdzībā", "Search the help";
        search_hint: "Piemēram: kvīts, nokavēts, sadalīts", "For example: receipt, overdue, split";
        search_button: "Meklēt", "Search";
        stage: "Stadija", "Stage";
        all_stages: "Visas stadijas", "Every stage";
        role: "Kam", "For";
        all_roles: "Visiem", "Everyone";
        role_planner: "Plānotājam", "Planners";
        role_institution: "Iestādei", "Institutions";
        role_public: "Ikvienam", "The public";
        role_citizen: "Iedzīvotājam", "Citizens";
        role_admin: "Administratoram", "Administrators";
        role_any: "Visiem", "Everyone";
        language: "Valoda", "Language";
        lang_lv: "Latviešu", "Latvian";
        lang_en: "Angļu", "English";
        show_all: "Rādīt visu palīdzību", "Show all help";
        found: "Atrasti raksti", "Articles found";
        none_found: "Nekas netika atrasts. Mēģiniet citu vārdu vai izvēlieties „Visas stadijas” un „Visiem”.", "Nothing was found. Try another word, or choose “Every stage” and “Everyone”.";
        helpful_q: "Vai tas palīdzēja?", "Was this helpful?";
        yes: "Jā", "Yes";
        no: "Nē", "No";
        your_vote: "Jūsu atbilde:", "Your answer:";
        voted: "Paldies! Jūsu atbilde ir saglabāta.", "Thank you! Your answer is saved.";
        rules_link: "Noteikumi (termiņi, iestādes)", "The rules (deadlines, institutions)";
        documents_link: "Plānošanas dokumenti", "Planning documents";
        stats_title: "Vai palīdzība palīdz? (administratoram)", "Does the help help? (administrators)";
        stats_hint: "Vismazāk noderīgie raksti vispirms; raksti bez balsīm — beigās. Rakstus maina ar PUT /api/v1/tapis/help/{id}.", "The least helpful articles first; articles without votes last. Articles are changed with PUT /api/v1/tapis/help/{id}.";
        col_article: "Raksts", "Article";
        col_lang: "Valoda", "Language";
        col_yes: "Jā", "Yes";
        col_no: "Nē", "No";
        col_share: "Noderīgi", "Helpful";
    }
}

/// Routes of the help page.
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/tapis/help", get(page))
        .route("/tapis/help/{id}/feedback", get(back).post(vote))
}

/// The page's filter, as the query gives it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct HelpParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    done: String,
}

/// An article as the page shows it.
struct Shown {
    id: String,
    title: String,
    /// The stage's name, or "every stage".
    stage: &'static str,
    role: &'static str,
    blocks: Vec<Block>,
    /// This browser voted "yes".
    voted_yes: bool,
    /// This browser voted "no".
    voted_no: bool,
}

/// A row of the admin's table.
struct StatRow {
    id: String,
    title: String,
    lang: &'static str,
    yes: i64,
    no: i64,
    /// The share of "yes" in per cent, or empty without votes.
    share: String,
}

#[derive(Template)]
#[template(path = "tapis_help.html")]
struct HelpPage {
    shell: Shell,
    t: &'static HelpText,
    q: String,
    stages: Vec<Choice>,
    roles: Vec<Choice>,
    langs: Vec<Choice>,
    /// This page's address without `done`, where a vote comes back to.
    here: String,
    /// The browser's help cookie, repeated by the vote forms.
    token: String,
    articles: Vec<Shown>,
    error: Option<Refusal>,
    stats: Option<Vec<StatRow>>,
    max_query: usize,
}

fn role_text(t: &HelpText, r: HelpRole) -> &'static str {
    match r {
        HelpRole::Planner => t.role_planner,
        HelpRole::Institution => t.role_institution,
        HelpRole::Public => t.role_public,
        HelpRole::Citizen => t.role_citizen,
        HelpRole::Admin => t.role_admin,
        HelpRole::Any => t.role_any,
    }
}

/// The help cookie of the request, if it is one this page made.
fn help_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, HELP_COOKIE)
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `/tapis/help` with the page's filter (empty parts left out).
fn href(q: &str, stage: &str, role: &str, lang: &str) -> String {
    let parts: Vec<String> = [("q", q), ("stage", stage), ("role", role), ("lang", lang)]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect();
    if parts.is_empty() {
        "/tapis/help".to_owned()
    } else {
        format!("/tapis/help?{}", parts.join("&"))
    }
}

/// `GET /tapis/help`.
async fn page(
    State(portal): State<Portal>,
    r: Reader,
    headers: HeaderMap,
    Query(p): Query<HelpParams>,
) -> Result<Response, PortalError> {
    let lang = r.lang();
    let t = HelpText::get(lang);
    let tt = TapisText::get(lang);
    let store = TapisStore::new(portal.app.gov.store());
    let existing = help_cookie(&headers).map(str::to_owned);
    let Some(token) = existing.clone().or_else(|| random_hex().ok()) else {
        return Err(r.shell("").unavailable());
    };
    // The articles' language: the one asked for, else the page's.
    let article_lang = match p.lang.as_str() {
        "" => lang.code().to_owned(),
        l => l.chars().take(8).collect(),
    };
    let q: String = p.q.chars().take(MAX_QUERY + 1).collect();
    let stage = p.stage.chars().take(32).collect::<String>();
    let role = p.role.chars().take(32).collect::<String>();
    let shell = r
        .shell(t.title)
        .with_done(Some(p.done.as_str()), &[("voted", t.voted)]);
    let mut page = HelpPage {
        t,
        q: q.clone(),
        stages: Stage::WAY
            .into_iter()
            .chain([Stage::Cancelled])
            .map(|s| Choice {
                value: s.as_str().into(),
                label: stage_text(tt, s).into(),
                selected: s.as_str() == stage,
            })
            .collect(),
        roles: HelpRole::ALL
            .into_iter()
            .filter(|r| *r != HelpRole::Any)
            .map(|x| Choice {
                value: x.as_str().into(),
                label: role_text(t, x).into(),
                selected: x.as_str() == role,
            })
            .collect(),
        langs: [(HelpLang::Lv, t.lang_lv), (HelpLang::En, t.lang_en)]
            .into_iter()
            .map(|(l, label)| Choice {
                value: l.as_str().into(),
                label: label.into(),
                selected: l.as_str() == article_lang,
            })
            .collect(),
        here: href(&q, &stage, &role, &p.lang),
        token: token.clone(),
        articles: Vec::new(),
        error: None,
        stats: None,
        max_query: MAX_QUERY,
        shell,
    };
    let query = HelpQuery {
        q: Some(q),
        stage: Some(stage),
        role: Some(role),
        lang: Some(article_lang),
        limit: Some(PAGE_RESULTS),
    };
    let mut status = StatusCode::OK;
    match help::search(&store, &query).await {
        Ok(found) => {
            let votes = match &existing {
                Some(c) => help::votes_of(&store, Voter::Browser(c))
                    .await
                    .map_err(|e| page.shell.fail(e))?,
                None => Default::default(),
            };
            page.articles = found
                .into_iter()
                .map(|a| Shown {
                    voted_yes: votes.get(&a.id) == Some(&true),
                    voted_no: votes.get(&a.id) == Some(&false),
                    stage: a.stage.map_or(t.all_stages, |s| stage_text(tt, s)),
                    role: role_text(t, a.role),
                    blocks: help::blocks(&a.body),
                    title: a.title,
                    id: a.id,
                })
                .collect();
        }
        Err(e @ GovError::Invalid { .. }) => {
            let (s, refusal) = Refusal::of(&page.shell, &e);
            status = s;
            page.error = Some(refusal);
        }
        Err(e) => return Err(page.shell.fail(e)),
    }
    if let Some(s) = &r.session
        && matches!(
            caller_of(&portal, Some(s))
                .await
                .map_err(|e| page.shell.fail(e))?,
            Caller::Admin
        )
    {
        let rows = help::stats(&store, &Caller::Admin)
            .await
            .map_err(|e| page.shell.fail(e))?;
        page.stats = Some(
            rows.into_iter()
                .map(|s| StatRow {
                    share: s
                        .helpful_share
                        .map(|x| format!("{:.0} %", x * 100.0))
                        .unwrap_or_default(),
                    lang: s.lang.as_str(),
                    yes: s.yes,
                    no: s.no,
                    title: s.title,
                    id: s.id,
                })
                .collect(),
        );
    }
    let mut response = render_status(status, &page);
    if existing.is_none() {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(HELP_COOKIE, &token, Some(HELP_COOKIE_AGE), r.visitor.secure),
        );
    }
    Ok(response)
}

/// A vote as the form sends it.
#[derive(Debug, Deserialize)]
struct VoteForm {
    #[serde(default)]
    helpful: String,
    #[serde(default)]
    back: String,
}

/// `POST /tapis/help/{id}/feedback`: record the vote, back to the page with a thank-you.
async fn vote(
    State(portal): State<Portal>,
    v: Visitor,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, PortalError> {
    let shell = v.shell("");
    let refused = || shell.error(StatusCode::FORBIDDEN, shell.c.error_csrf, "");
    if !same_origin(req.headers()) {
        return Err(refused());
    }
    let voter = help_cookie(req.headers()).map(str::to_owned);
    let (form, token): (VoteForm, String) = read_form(req, &shell).await?;
    let voter = match voter {
        Some(c) if same_secret(&c, &token) => c,
        _ => return Err(refused()),
    };
    let helpful = match form.helpful.as_str() {
        "yes" => true,
        "no" => false,
        other => {
            return Err(shell.fail(GovError::Invalid {
                field: "helpful".into(),
                reason: format!(
                    "`{}`: yes or no",
                    other.chars().take(16).collect::<String>()
                ),
            }));
        }
    };
    let store = TapisStore::new(portal.app.gov.store());
    help::vote(&store, &id, helpful, Voter::Browser(&voter))
        .await
        .map_err(|e| shell.fail(e))?;
    let back = safe_back(Some(&form.back), "/tapis/help");
    let back = if back.starts_with("/tapis/help") {
        back
    } else {
        "/tapis/help".to_owned()
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(&format!(
        "{back}{sep}done=voted#help-{}",
        encode_component(&id)
    )))
}

/// `GET /tapis/help/{id}/feedback` (a link followed, an address typed): the help page.
async fn back() -> Response {
    see_other("/tapis/help").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn the_page_address_keeps_its_filter() {
        assert_eq!(href("", "", "", ""), "/tapis/help");
        assert_eq!(
            href("kāpēc sadalīts", "evaluation", "citizen", "lv"),
            "/tapis/help?q=k%C4%81p%C4%93c%20sadal%C4%ABts&stage=evaluation&role=citizen&lang=lv"
        );
    }

    #[test]
    fn every_role_has_a_name_in_both_languages() {
        for lang in [Lang::Lv, Lang::En] {
            let t = HelpText::get(lang);
            for r in HelpRole::ALL {
                assert!(!role_text(t, r).is_empty());
            }
        }
        assert_eq!(
            role_text(HelpText::get(Lang::En), HelpRole::Citizen),
            "Citizens"
        );
    }

    #[test]
    fn only_cookies_this_page_made_name_a_voter() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "dagr_help=abc".parse().unwrap());
        assert_eq!(help_cookie(&h), None);
        let good = "a".repeat(64);
        h.insert(header::COOKIE, format!("dagr_help={good}").parse().unwrap());
        assert_eq!(help_cookie(&h), Some(good.as_str()));
    }
}

//! `GET|POST /tapis/respond/{token}`: the institution's answer page, reached by the link in
//! the request's e-mail, without an account — the link is the credential
//! (`service::link` shows the request and the document, `service::verify_link` and
//! `service::answer` take the answer once). A changed link is the service's 404, an
//! expired one its 403, a second answer its 409: each shown as a readable page with that
//! status. The form carries no session token (there is no session); a post from another
//! site's page is refused all the same.

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, Request, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::coordination::{Answer, LinkView, RequestKind, Verdict};
use dagr_admin_api::tapis::model::{DocType, Stage};
use dagr_admin_api::tapis::service;
use serde::Deserialize;

use super::document::verdict_text;
use super::{Choice, Refusal, TapisText, area, help_href, stage_text, type_text, when};
use crate::Portal;
use crate::session::{Visitor, read_form, same_origin};
use crate::web::{PortalError, Shell, encode_component, invalid, render_status, see_other};

/// Longest token read from the path (the service refuses longer ones too).
const MAX_TOKEN: usize = 200;

/// The answer form as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AnswerForm {
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    responder: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RespondQuery {
    #[serde(default)]
    done: String,
}

#[derive(Template)]
#[template(path = "tapis_respond.html")]
struct RespondPage {
    shell: Shell,
    t: &'static TapisText,
    help: String,
    action: String,
    institution: String,
    institution_name: String,
    kind: &'static str,
    note: String,
    sent: String,
    due_on: String,
    overdue: bool,
    link_expires: String,
    document_id: i64,
    document_title: String,
    document_type: &'static str,
    document_stage: &'static str,
    document_area: Option<String>,
    organisation: String,
    /// The answer, once given: verdict, its class, text, responder, time.
    answered: Option<(&'static str, &'static str, String, String, String)>,
    verdicts: Vec<Choice>,
    form: AnswerForm,
    error: Option<Refusal>,
}

impl RespondPage {
    fn bad(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }

    fn of(
        shell: Shell,
        t: &'static TapisText,
        token: &str,
        v: LinkView,
        form: AnswerForm,
        error: Option<Refusal>,
    ) -> RespondPage {
        let r = v.request;
        let doc = &v.document;
        let s = |k: &str| doc.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        let lang = shell.lang;
        let stage = Stage::parse(&s("stage"));
        RespondPage {
            help: help_href(stage, "institution", lang),
            action: format!("/tapis/respond/{}", encode_component(token)),
            institution: r.institution.clone(),
            institution_name: v.institution_name,
            kind: match r.kind {
                RequestKind::Conditions => t.kind_conditions,
                RequestKind::Opinion => t.kind_opinion,
            },
            note: r.note.clone(),
            sent: when(&r.sent_at),
            due_on: r.due_on.clone(),
            overdue: r.overdue,
            link_expires: when(&r.link_expires_at),
            document_id: doc.get("id").and_then(|x| x.as_i64()).unwrap_or_default(),
            document_title: s("title"),
            document_type: DocType::parse(&s("type"))
                .map(|d| type_text(t, d))
                .unwrap_or(""),
            document_stage: stage.map(|x| stage_text(t, x)).unwrap_or(""),
            document_area: doc.get("area_m2").and_then(|x| x.as_f64()).map(area),
            organisation: s("organisation"),
            answered: r.verdict.filter(|_| r.status == "answered").map(|v| {
                let (text, class) = verdict_text(t, v);
                (
                    text,
                    class,
                    r.answer.clone().unwrap_or_default(),
                    r.responder.clone().unwrap_or_default(),
                    r.answered_at.as_deref().map(when).unwrap_or_default(),
                )
            }),
            verdicts: [Verdict::Positive, Verdict::Conditional, Verdict::Negative]
                .into_iter()
                .map(|x| {
                    let value = verdict_value(x);
                    Choice {
                        selected: form.verdict == value,
                        value: value.into(),
                        label: verdict_text(t, x).0.into(),
                    }
                })
                .collect(),
            form,
            error,
            shell,
            t,
        }
    }
}

fn verdict_value(v: Verdict) -> &'static str {
    match v {
        Verdict::Positive => "positive",
        Verdict::Conditional => "conditional",
        Verdict::Negative => "negative",
    }
}

/// The page of the link, or the service's refusal of it as a page with its status.
async fn load(
    portal: &Portal,
    shell: Shell,
    t: &'static TapisText,
    token: &str,
    form: AnswerForm,
    error: Option<Refusal>,
) -> Result<RespondPage, PortalError> {
    if token.len() > MAX_TOKEN {
        return Err(shell.fail(GovError::NotFound("no such coordination link".into())));
    }
    let v = service::link(&portal.app, token)
        .await
        .map_err(|e| shell.fail(e))?;
    Ok(RespondPage::of(shell, t, token, v, form, error))
}

/// `GET /tapis/respond/{token}`.
pub(super) async fn page(
    State(portal): State<Portal>,
    v: Visitor,
    Path(token): Path<String>,
    Query(q): Query<RespondQuery>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(v.lang);
    let shell = v
        .shell(t.respond_title)
        .with_done(Some(&q.done), &[("answered", t.done_answered)]);
    let page = load(&portal, shell, t, &token, AnswerForm::default(), None).await?;
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /tapis/respond/{token}`: the answer, once; on success the page again with the
/// answer shown (303), on a refusal the page with the form as typed.
pub(super) async fn answer(
    State(portal): State<Portal>,
    v: Visitor,
    Path(token): Path<String>,
    req: Request,
) -> Result<Response, PortalError> {
    let t = TapisText::get(v.lang);
    let shell = v.shell(t.respond_title);
    if !same_origin(req.headers()) {
        return Err(shell.error(StatusCode::FORBIDDEN, shell.c.error_csrf, ""));
    }
    if token.len() > MAX_TOKEN {
        return Err(shell.fail(GovError::NotFound("no such coordination link".into())));
    }
    // The link is the credential: checked before the form is read.
    let id = service::verify_link(&portal.app, &token)
        .await
        .map_err(|e| shell.fail(e))?;
    let (form, _) = read_form::<AnswerForm>(req, &shell).await?;
    let verdict = match form.verdict.as_str() {
        "positive" => Ok(Verdict::Positive),
        "conditional" => Ok(Verdict::Conditional),
        "negative" => Ok(Verdict::Negative),
        _ => Err(invalid("verdict", t.choose_verdict)),
    };
    let result = match verdict {
        Ok(verdict) => {
            let a = Answer {
                verdict,
                text: form.text.clone(),
                responder: form.responder.clone(),
            };
            service::answer(&portal.app, id, &a).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/tapis/respond/{}?done=answered",
            encode_component(&token)
        ))),
        Err(GovError::Store(inner)) => Err(shell.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&shell, &e);
            let page = load(&portal, shell, t, &token, form, Some(refusal)).await?;
            Ok(render_status(status, &page))
        }
    }
}

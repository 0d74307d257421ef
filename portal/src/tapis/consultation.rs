//! The planner's work on a consultation's comments:
//!
//! - `GET /tapis/documents/{id}/consultations/{cid}/comments`: the comments (without their
//!   authors), filtered by answer status, tag, group, paragraph and text, 100 a page, each
//!   unanswered one with its answer form (a decision, the municipality's standard answer
//!   blocks, free text);
//! - `POST` to the same path, its `action` naming the form: `answer` one
//!   (`service::answer_comment`, written once), `split` an unanswered comment into parts
//!   typed one a line, each a verbatim piece of its text (`service::split`), or `label` a
//!   comment or part with tags and a group (`service::label`);
//! - `GET /tapis/documents/{id}/consultations/{cid}/report`: the report without
//!   identities (`service::report`), downloaded as JSON.
//!
//! The municipality's standard answer blocks, offered by every answer form, are kept on
//! their own page ([`super::blocks`]). A refused form shows the page again with the
//! service's refusal and that form as typed.

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::{HeaderValue, StatusCode, header};
use dagr_admin_api::axum::response::{IntoResponse, Response};
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::comments::{
    CommentView, DECISIONS, Filter, Labels, MAX_PARTS, NewAnswer, Part, Split,
};
use dagr_admin_api::tapis::service::{self, Caller};
use serde::Deserialize;

use super::receipt::{AnswerShown, anchor_text, answer_shown, decision_text};
use super::{Choice, Refusal, TapisText, caller_of, help_href, when};
use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, Shell, encode_component, invalid, render_status, see_other};

/// Comments a page shows.
const PAGE: i64 = 100;
/// Longest filter value.
const MAX_FILTER: usize = 200;
/// Longest answer form field (bytes).
const MAX_FIELD: usize = 64 << 10;

/// The list's filter as the query gives it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    paragraph: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
}

impl ListQuery {
    fn value(v: &str) -> Option<String> {
        let v: String = v.trim().chars().take(MAX_FILTER).collect();
        (!v.is_empty()).then_some(v)
    }

    fn filter(&self) -> Filter {
        Filter {
            status: Self::value(&self.status),
            tag: Self::value(&self.tag),
            group: Self::value(&self.group),
            paragraph: Self::value(&self.paragraph),
            q: Self::value(&self.q),
            after: self.after.trim().parse().ok(),
            limit: Some(PAGE + 1),
        }
    }

    /// The query of the next page, after comment `after`.
    fn next(&self, base: &str, after: i64) -> String {
        let mut href = format!("{base}?");
        for (k, v) in [
            ("status", &self.status),
            ("tag", &self.tag),
            ("group", &self.group),
            ("paragraph", &self.paragraph),
            ("q", &self.q),
        ] {
            if let Some(v) = Self::value(v) {
                href.push_str(&format!("{k}={}&", encode_component(&v)));
            }
        }
        href.push_str(&format!("after={after}"));
        href
    }
}

/// A comment as listed.
struct Row {
    id: i64,
    parent: Option<i64>,
    text: String,
    anchor: String,
    created: String,
    tags: String,
    group: String,
    split: bool,
    answer: Option<AnswerShown>,
    /// An unanswered original not split yet: the split form is offered.
    can_split: bool,
}

/// The forms of the page, by their `action` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Answer a comment or part.
    Answer,
    /// Split a comment into parts.
    Split,
    /// Tag and group a comment or part.
    Label,
}

impl Form {
    fn parse(action: &str) -> Option<Form> {
        match action {
            // The answer form is the page's first; a form without `action` is one.
            "" | "answer" => Some(Form::Answer),
            "split" => Some(Form::Split),
            "label" => Some(Form::Label),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Form::Answer => "answer",
            Form::Split => "split",
            Form::Label => "label",
        }
    }

    /// The `?done=` of a form that succeeded.
    fn done(self) -> &'static str {
        match self {
            Form::Answer => "answered",
            Form::Split => "split",
            Form::Label => "labelled",
        }
    }
}

/// Parts typed one a line (a line's surrounding spaces and empty lines left out); at most
/// one more than a split takes, so the service names the limit.
fn parts(raw: &str) -> Vec<Part> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(MAX_PARTS + 1)
        .map(|l| Part {
            text: l.to_owned(),
            anchor: None,
        })
        .collect()
}

/// Tags typed separated by commas (empty ones left out); an empty group clears it.
fn labels(tags: &str, group: &str) -> Labels {
    let group = group.trim();
    Labels {
        tags: Some(
            tags.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        group: Some((!group.is_empty()).then(|| group.to_owned())),
    }
}

#[derive(Template)]
#[template(path = "tapis_comments.html")]
struct CommentsPage {
    shell: Shell,
    t: &'static TapisText,
    help: String,
    id: i64,
    cid: i64,
    title: String,
    action: String,
    q: ListQuery,
    statuses: Vec<Choice>,
    rows: Vec<Row>,
    next: Option<String>,
    decisions: Vec<Choice>,
    blocks: Vec<Choice>,
    /// The refused answer form as typed: its comment and fields.
    kept: BTreeMap<String, String>,
    kept_blocks: Vec<String>,
    error: Option<Refusal>,
}

impl CommentsPage {
    /// Whether the refused form is `action`'s of comment `id`.
    fn is_kept(&self, action: &str, id: &i64) -> bool {
        let form = self.kept.get("action").map(String::as_str).unwrap_or("");
        Form::parse(form).map(Form::as_str) == Some(action)
            && self.kept.get("comment").map(String::as_str) == Some(id.to_string().as_str())
    }

    /// A field of the refused `action` form of comment `id`, as typed.
    fn kept_in(&self, action: &str, id: &i64, name: &str) -> &str {
        if self.is_kept(action, id) {
            self.kept.get(name).map(String::as_str).unwrap_or("")
        } else {
            ""
        }
    }

    /// A field of the refused answer of comment `id`, as typed.
    fn kept(&self, id: &i64, name: &str) -> &str {
        self.kept_in("answer", id, name)
    }

    /// Whether the refused answer of comment `id` chose block `code`.
    fn kept_block(&self, id: &i64, code: &str) -> bool {
        self.is_kept("answer", id) && self.kept_blocks.iter().any(|b| b == code)
    }

    /// The split form's parts: as typed when refused, else the comment's text to break
    /// into lines.
    fn split_value<'a>(&'a self, r: &'a Row) -> &'a str {
        if self.is_kept("split", &r.id) {
            self.kept_in("split", &r.id, "parts")
        } else {
            &r.text
        }
    }

    /// The label form's `name` (`tags` or `group`): as typed when refused, else the
    /// comment's.
    fn label_value<'a>(&'a self, r: &'a Row, name: &str) -> &'a str {
        if self.is_kept("label", &r.id) {
            self.kept_in("label", &r.id, name)
        } else if name == "tags" {
            &r.tags
        } else {
            &r.group
        }
    }

    /// Whether the refusal names `field` of the `action` form of comment `id`.
    fn bad(&self, action: &str, id: &i64, field: &str) -> bool {
        self.is_kept(action, id)
            && self
                .error
                .as_ref()
                .is_some_and(|e| e.field == field || e.field.starts_with(&format!("{field}[")))
    }
}

/// The document and consultation of the path, checked: the consultation is the
/// document's, and the caller its planner (the service decides the latter).
async fn target(
    portal: &Portal,
    s: &SignedIn,
    raw_id: &str,
    raw_cid: &str,
) -> Result<(i64, i64, String, Caller), GovError> {
    let not_found =
        || GovError::NotFound(format!("no consultation {raw_cid} of document {raw_id}"));
    let id = raw_id.parse::<i64>().map_err(|_| not_found())?;
    let cid = raw_cid.parse::<i64>().map_err(|_| not_found())?;
    let c = caller_of(portal, Some(s)).await?;
    service::require_planner(&c)?;
    let doc = service::document(&portal.app, id).await?;
    if !service::consultations(&portal.app, id)
        .await?
        .iter()
        .any(|k| k.id == cid)
    {
        return Err(not_found());
    }
    Ok((id, cid, doc.title, c))
}

#[expect(clippy::too_many_arguments, reason = "the page's parts, each needed")]
async fn load(
    portal: &Portal,
    s: &SignedIn,
    shell: Shell,
    (id, cid, title, c): (i64, i64, String, Caller),
    q: ListQuery,
    kept: BTreeMap<String, String>,
    kept_blocks: Vec<String>,
    error: Option<Refusal>,
) -> Result<CommentsPage, PortalError> {
    let t = TapisText::get(s.lang());
    let app = &portal.app;
    let mut list = service::comments(app, &c, cid, &q.filter())
        .await
        .map_err(|e| shell.fail(e))?;
    let base = format!("/tapis/documents/{id}/consultations/{cid}/comments");
    let next = if list.len() as i64 > PAGE {
        list.truncate(PAGE as usize);
        list.last().map(|x| q.next(&base, x.id))
    } else {
        None
    };
    let blocks = service::answer_blocks(app, &c)
        .await
        .map_err(|e| shell.fail(e))?;
    let row = |x: CommentView| Row {
        id: x.id,
        parent: x.parent,
        anchor: anchor_text(t, &x.anchor),
        created: when(&x.created_at),
        tags: x.tags.join(", "),
        group: x.group.unwrap_or_default(),
        split: x.split,
        can_split: x.parent.is_none() && !x.split && x.answer.is_none(),
        answer: x.answer.as_ref().map(|a| answer_shown(t, a)),
        text: x.text,
    };
    Ok(CommentsPage {
        help: help_href(None, "planner", s.lang()),
        statuses: [("unanswered", t.unanswered), ("answered", t.answered)]
            .into_iter()
            .map(|(v, l)| Choice {
                value: v.into(),
                label: l.into(),
                selected: q.status.trim() == v,
            })
            .collect(),
        decisions: DECISIONS
            .into_iter()
            .map(|d| Choice {
                value: d.into(),
                label: decision_text(t, d).into(),
                selected: false,
            })
            .collect(),
        blocks: blocks
            .into_iter()
            .map(|b| Choice {
                value: b.code,
                label: b.title,
                selected: false,
            })
            .collect(),
        rows: list.into_iter().map(row).collect(),
        action: base,
        next,
        id,
        cid,
        title,
        q,
        kept,
        kept_blocks,
        error,
        shell,
        t,
    })
}

/// `GET /tapis/documents/{id}/consultations/{cid}/comments`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path((raw_id, raw_cid)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let shell = s.shell(t.comments_title).with_done(
        Some(&q.done),
        &[
            ("answered", t.done_comment_answered),
            ("split", t.done_comment_split),
            ("labelled", t.done_comment_labelled),
        ],
    );
    let target = target(&portal, &s, &raw_id, &raw_cid)
        .await
        .map_err(|e| shell.fail(e))?;
    let page = load(
        &portal,
        &s,
        shell,
        target,
        q,
        BTreeMap::new(),
        Vec::new(),
        None,
    )
    .await?;
    Ok(render_status(StatusCode::OK, &page))
}

/// Take the action of a form of the page on comment `comment`.
async fn take(
    portal: &Portal,
    c: &Caller,
    form: Form,
    comment: i64,
    get: impl Fn(&str) -> String,
    blocks: Vec<String>,
) -> Result<(), GovError> {
    let app = &portal.app;
    match form {
        Form::Answer => {
            let text = Some(get("text")).filter(|x| !x.trim().is_empty());
            let a = NewAnswer {
                decision: get("decision"),
                text,
                blocks,
            };
            service::answer_comment(app, c, comment, &a).await.map(drop)
        }
        Form::Split => {
            let sp = Split {
                parts: parts(&get("parts")),
            };
            service::split(app, c, comment, &sp).await.map(drop)
        }
        Form::Label => {
            let l = labels(&get("tags"), &get("group"));
            service::label(app, c, comment, &l).await.map(drop)
        }
    }
}

/// `POST /tapis/documents/{id}/consultations/{cid}/comments`: answer, split or label one
/// comment, as the form's `action` says.
pub(super) async fn act(
    State(portal): State<Portal>,
    Path((raw_id, raw_cid)): Path<(String, String)>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let shell = s.shell(t.comments_title);
    let target = target(&portal, &s, &raw_id, &raw_cid)
        .await
        .map_err(|e| shell.fail(e))?;
    let mut fields = BTreeMap::new();
    let mut blocks = Vec::new();
    let mut too_long = None;
    for (k, v) in form {
        if v.len() > MAX_FIELD && too_long.is_none() {
            too_long = Some(invalid(&k, format!("at most {} KiB", MAX_FIELD >> 10)));
        }
        match k.as_str() {
            "csrf" => {}
            "blocks" => blocks.push(v),
            _ => {
                fields.entry(k).or_insert(v);
            }
        }
    }
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let action = get("action");
    let result = async {
        if let Some(e) = too_long {
            return Err(e);
        }
        let form =
            Form::parse(&action).ok_or_else(|| invalid("action", format!("no form `{action}`")))?;
        let comment = get("comment")
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid("comment", t.not_an_id))?;
        take(&portal, &target.3, form, comment, get, blocks.clone()).await?;
        Ok((form, comment))
    }
    .await;
    let (id, cid) = (target.0, target.1);
    match result {
        Ok((form, comment)) => Ok(see_other(&format!(
            "/tapis/documents/{id}/consultations/{cid}/comments?done={}#comment-{comment}",
            form.done()
        ))),
        Err(GovError::Store(inner)) => Err(shell.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&shell, &e);
            let page = load(
                &portal,
                &s,
                shell,
                target,
                ListQuery::default(),
                fields,
                blocks,
                Some(refusal),
            )
            .await?;
            Ok(render_status(status, &page))
        }
    }
}

/// `GET /tapis/documents/{id}/consultations/{cid}/report`: the report, downloaded as JSON.
pub(super) async fn report(
    State(portal): State<Portal>,
    s: SignedIn,
    Path((raw_id, raw_cid)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let shell = s.shell(t.comments_title);
    let (id, cid, _, c) = target(&portal, &s, &raw_id, &raw_cid)
        .await
        .map_err(|e| shell.fail(e))?;
    // Written as it is read (a consultation may hold 200 000 comments).
    let body = service::report_body(&portal.app, &c, cid)
        .await
        .map_err(|e| shell.fail(e))?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"tapis-{id}-consultation-{cid}-report.json\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_typed_one_a_line() {
        let p = parts("Koki jāsaglabā.\r\n\n   Stāvvieta nav vajadzīga.  \n");
        let texts: Vec<&str> = p.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(texts, ["Koki jāsaglabā.", "Stāvvieta nav vajadzīga."]);
        assert!(
            p.iter().all(|x| x.anchor.is_none()),
            "the original's anchor"
        );
        let many = "x\n".repeat(1_000);
        assert_eq!(
            parts(&many).len(),
            MAX_PARTS + 1,
            "the service names the limit"
        );
    }

    #[test]
    fn tags_are_separated_by_commas_and_an_empty_group_clears_it() {
        let l = labels(" koki, ,bērni ,", "  ");
        assert_eq!(l.tags, Some(vec!["koki".to_owned(), "bērni".to_owned()]));
        assert_eq!(l.group, Some(None));
        assert_eq!(
            labels("", "Zaļā zona").group,
            Some(Some("Zaļā zona".into()))
        );
    }

    #[test]
    fn forms_are_named_by_their_action() {
        assert_eq!(Form::parse(""), Some(Form::Answer));
        assert_eq!(Form::parse("split"), Some(Form::Split));
        assert_eq!(Form::parse("label").map(Form::done), Some("labelled"));
        assert_eq!(Form::parse("delete"), None);
    }
}

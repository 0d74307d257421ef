//! The planner's work on a consultation's comments:
//!
//! - `GET /tapis/documents/{id}/consultations/{cid}/comments`: the comments (without their
//!   authors), filtered by answer status, tag, group, paragraph and text, 100 a page, each
//!   unanswered one with its answer form (a decision, the municipality's standard answer
//!   blocks, free text);
//! - `POST` to the same path: answer one (`service::answer_comment`, written once);
//! - `GET /tapis/documents/{id}/consultations/{cid}/report`: the report without
//!   identities (`service::report`), downloaded as JSON.
//!
//! Splitting and labelling comments are the REST API's (`/api/v1/tapis/comments/{id}/…`).

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::{HeaderValue, StatusCode, header};
use dagr_admin_api::axum::response::{IntoResponse, Response};
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::comments::{CommentView, DECISIONS, Filter, NewAnswer};
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
    /// A field of the refused answer of comment `id`, as typed.
    fn kept(&self, id: &i64, name: &str) -> &str {
        if self.kept.get("comment").map(String::as_str) == Some(id.to_string().as_str()) {
            self.kept.get(name).map(String::as_str).unwrap_or("")
        } else {
            ""
        }
    }

    /// Whether the refused answer of comment `id` chose block `code`.
    fn kept_block(&self, id: &i64, code: &str) -> bool {
        !self.kept(id, "comment").is_empty() && self.kept_blocks.iter().any(|b| b == code)
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
    let shell = s
        .shell(t.comments_title)
        .with_done(Some(&q.done), &[("answered", t.done_comment_answered)]);
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

/// `POST /tapis/documents/{id}/consultations/{cid}/comments`: answer one comment.
pub(super) async fn answer(
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
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let result = async {
        if let Some(e) = too_long {
            return Err(e);
        }
        let comment = get("comment")
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid("comment", t.not_an_id))?;
        let text = Some(get("text").to_owned()).filter(|x| !x.trim().is_empty());
        let a = NewAnswer {
            decision: get("decision").to_owned(),
            text,
            blocks: blocks.clone(),
        };
        service::answer_comment(&portal.app, &target.3, comment, &a).await
    }
    .await;
    let (id, cid) = (target.0, target.1);
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/tapis/documents/{id}/consultations/{cid}/comments?done=answered"
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
    let r = service::report(&portal.app, &c, cid)
        .await
        .map_err(|e| shell.fail(e))?;
    let body = serde_json::to_vec_pretty(&r).map_err(|e| {
        tracing::error!(error = %e, "portal: a TAPIS report did not serialise");
        shell.unavailable()
    })?;
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

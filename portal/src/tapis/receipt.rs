//! `GET /tapis/receipts/{rid}`: a citizen's receipt of their comment — the receipt DAGR
//! signed (id, time, hash, signature, and whether they still match the stored original),
//! the comment, its status (`received` or `answered`) and the answer (a split comment's
//! answers part by part). Only its author sees it (`service::receipt`); the link in the
//! answer's e-mail leads here.

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::comments::{Anchor, AnswerView, ReceiptView};
use dagr_admin_api::tapis::service;
use serde::Deserialize;

use super::{TapisText, caller_of, help_href, when};
use crate::Portal;
use crate::session::SignedIn;
use crate::web::{PortalError, Shell, render_status};

/// Longest receipt id read from the path.
const MAX_RECEIPT: usize = 200;

/// An answer as shown.
pub(super) struct AnswerShown {
    pub(super) decision: &'static str,
    pub(super) decision_code: String,
    pub(super) text: String,
    pub(super) at: String,
}

/// A decision's name in the page's language.
pub(super) fn decision_text(t: &TapisText, d: &str) -> &'static str {
    match d {
        "accepted" => t.decision_accepted,
        "partly_accepted" => t.decision_partly_accepted,
        "rejected" => t.decision_rejected,
        _ => t.decision_noted,
    }
}

/// An answer as shown.
pub(super) fn answer_shown(t: &TapisText, a: &AnswerView) -> AnswerShown {
    AnswerShown {
        decision: decision_text(t, &a.decision),
        decision_code: a.decision.clone(),
        text: a.text.clone(),
        at: when(&a.at),
    }
}

/// What a comment is about, in words.
pub(super) fn anchor_text(t: &TapisText, a: &Anchor) -> String {
    match a {
        Anchor::Paragraph { paragraph } => format!("{} {paragraph}", t.paragraph),
        Anchor::Point { point: [lon, lat] } => format!("{} {lat:.6} N, {lon:.6} E", t.anchor_point),
        Anchor::Polygon { .. } => t.anchor_polygon.to_owned(),
    }
}

/// A part of a split comment.
struct PartShown {
    text: String,
    answer: Option<AnswerShown>,
}

#[derive(Template)]
#[template(path = "tapis_receipt.html")]
struct ReceiptPage {
    shell: Shell,
    t: &'static TapisText,
    help: String,
    id: String,
    at: String,
    hash: String,
    signature: String,
    verified: bool,
    document: i64,
    status: String,
    status_text: &'static str,
    text: String,
    anchor: String,
    answer: Option<AnswerShown>,
    parts: Vec<PartShown>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ReceiptQuery {
    #[serde(default)]
    done: String,
}

fn page_of(shell: Shell, t: &'static TapisText, v: ReceiptView) -> ReceiptPage {
    let lang = shell.lang;
    ReceiptPage {
        help: help_href(None, "citizen", lang),
        id: v.receipt.id,
        at: when(&v.receipt.at),
        hash: v.receipt.hash,
        signature: v.receipt.signature,
        verified: v.verified,
        document: v.document,
        status_text: if v.status == "answered" {
            t.status_answered
        } else {
            t.status_received
        },
        status: v.status,
        text: v.text,
        anchor: anchor_text(t, &v.anchor),
        answer: v.answer.as_ref().map(|a| answer_shown(t, a)),
        parts: v
            .parts
            .iter()
            .map(|p| PartShown {
                text: p.text.clone(),
                answer: p.answer.as_ref().map(|a| answer_shown(t, a)),
            })
            .collect(),
        shell,
        t,
    }
}

/// `GET /tapis/receipts/{rid}`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(rid): Path<String>,
    Query(q): Query<ReceiptQuery>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let shell = s
        .shell(t.receipt_title)
        .with_done(Some(&q.done), &[("comment", t.done_comment)]);
    if rid.len() > MAX_RECEIPT {
        return Err(shell.fail(GovError::NotFound("no such receipt".into())));
    }
    let c = caller_of(&portal, Some(&s))
        .await
        .map_err(|e| shell.fail(e))?;
    let v = service::receipt(&portal.app, &c, &rid)
        .await
        .map_err(|e| shell.fail(e))?;
    Ok(render_status(StatusCode::OK, &page_of(shell, t, v)))
}

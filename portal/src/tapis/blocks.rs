//! `GET|POST /tapis/answer-blocks`: a planner's standard answer blocks — the texts their
//! municipality answers comments with again and again (`service::answer_blocks`), each with
//! a code and a title, offered by every answer form of the comments pages; the form adds
//! one or replaces the one of the same code (`service::put_answer_block`, which checks the
//! code, the title, the text and the municipality's limit). `?code=` fills the form with
//! that block, to change it. Planners only: the service refuses anyone else.

use askama::Template;
use dagr_admin_api::axum::extract::{Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::comments::AnswerBlock;
use dagr_admin_api::tapis::service::{self, Caller};
use serde::Deserialize;

use super::{Refusal, TapisText, caller_of, help_href};
use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, Shell, encode_component, invalid, render_status, see_other};

/// Longest field read from the form (bytes; the service's own limits are lower).
const MAX_FIELD: usize = 96 << 10;
/// Longest code read from the query.
const MAX_CODE: usize = 64;

/// A block as listed.
struct BlockRow {
    code: String,
    title: String,
    text: String,
    /// The link that fills the form with it.
    edit: String,
}

#[derive(Template)]
#[template(path = "tapis_answer_blocks.html")]
struct BlocksPage {
    shell: Shell,
    t: &'static TapisText,
    help: String,
    rows: Vec<BlockRow>,
    /// The form's values: as typed when refused, the chosen block's, or empty.
    code: String,
    title: String,
    text: String,
    /// Whether the form replaces a block of the same code.
    replaces: bool,
    error: Option<Refusal>,
}

impl BlocksPage {
    /// Whether the refusal names `field`.
    fn bad(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }
}

/// The query: a block to change, and the confirmation.
#[derive(Debug, Default, Deserialize)]
pub(super) struct BlocksQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    done: String,
}

/// The page with the municipality's blocks and the form holding `form` (code, title, text).
async fn load(
    portal: &Portal,
    c: &Caller,
    shell: Shell,
    form: AnswerBlock,
    error: Option<Refusal>,
) -> Result<BlocksPage, PortalError> {
    let t = TapisText::get(shell.lang);
    let blocks = service::answer_blocks(&portal.app, c)
        .await
        .map_err(|e| shell.fail(e))?;
    let replaces = blocks.iter().any(|b| b.code == form.code);
    Ok(BlocksPage {
        help: help_href(None, "planner", shell.lang),
        rows: blocks
            .into_iter()
            .map(|b| BlockRow {
                edit: format!("/tapis/answer-blocks?code={}", encode_component(&b.code)),
                code: b.code,
                title: b.title,
                text: b.text,
            })
            .collect(),
        code: form.code,
        title: form.title,
        text: form.text,
        replaces,
        error,
        shell,
        t,
    })
}

/// `GET /tapis/answer-blocks`.
pub(super) async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<BlocksQuery>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let shell = s
        .shell(t.blocks_title)
        .with_done(Some(&q.done), &[("saved", t.done_block)]);
    let c = caller_of(&portal, Some(&s))
        .await
        .map_err(|e| shell.fail(e))?;
    service::require_planner(&c).map_err(|e| shell.fail(e))?;
    // The block to change, when the query names one of the municipality's.
    let code: String = q.code.trim().chars().take(MAX_CODE).collect();
    let mut page = load(&portal, &c, shell, empty(), None).await?;
    if let Some(b) = page.rows.iter().find(|b| b.code == code) {
        (page.code, page.title, page.text) = (b.code.clone(), b.title.clone(), b.text.clone());
        page.replaces = true;
    }
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /tapis/answer-blocks`: add a block, or replace the one of the same code.
pub(super) async fn put(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let shell = s.shell(t.blocks_title);
    let c = caller_of(&portal, Some(&s))
        .await
        .map_err(|e| shell.fail(e))?;
    // Who may is checked before the form is read.
    service::require_planner(&c).map_err(|e| shell.fail(e))?;
    let mut b = empty();
    let mut too_long = None;
    for (k, v) in form {
        if v.len() > MAX_FIELD && too_long.is_none() {
            too_long = Some(invalid(&k, format!("at most {} KiB", MAX_FIELD >> 10)));
        }
        let slot = match k.as_str() {
            "code" => &mut b.code,
            "title" => &mut b.title,
            "text" => &mut b.text,
            _ => continue,
        };
        if slot.is_empty() {
            *slot = v;
        }
    }
    b.code = b.code.trim().to_owned();
    let result = match too_long {
        Some(e) => Err(e),
        None => service::put_answer_block(&portal.app, &c, &b).await,
    };
    match result {
        Ok(saved) => Ok(see_other(&format!(
            "/tapis/answer-blocks?done=saved#block-{}",
            encode_component(&saved.code)
        ))),
        Err(GovError::Store(inner)) => Err(shell.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&shell, &e);
            let page = load(&portal, &c, shell, b, Some(refusal)).await?;
            Ok(render_status(status, &page))
        }
    }
}

/// An empty block, for the form.
fn empty() -> AnswerBlock {
    AnswerBlock {
        code: String::new(),
        title: String::new(),
        text: String::new(),
    }
}

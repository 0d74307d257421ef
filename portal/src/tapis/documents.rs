//! `GET /tapis`: the public list of planning documents, newest first, filtered by
//! municipality, stage and type; a planner also sees the form of a new document
//! (`POST /tapis`), refused by the service with the form kept as typed.
//!
//! The service lists documents by municipality, a page at a time; the stage and type
//! filters are applied here to what it lists (a view, not a rule), reading at most
//! [`MAX_SCANNED`] documents for one page of the list.

use askama::Template;
use dagr_admin_api::axum::extract::{Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::model::{DocType, Document, NewDocument, Stage};
use dagr_admin_api::tapis::service::{self, Caller};
use serde::Deserialize;

use super::{
    Choice, Reader, Refusal, TapisText, area, caller_of, help_href, role_of, stage_text, type_text,
    when,
};
use crate::Portal;
use crate::session::Posted;
use crate::web::{PortalError, Shell, encode_component, invalid, render_status, see_other};

/// Documents a list page shows.
const LIST_PAGE: usize = 50;
/// Documents the service is asked for at a time.
const READ_PAGE: i64 = 200;
/// Most documents read to fill one filtered page.
const MAX_SCANNED: usize = 2_000;
/// Longest municipality code in the filter.
const MAX_ORGANISATION: usize = 64;

/// The list's filter, as the query gives it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    stage: String,
    #[serde(default, rename = "type")]
    doc_type: String,
    #[serde(default)]
    before: String,
}

/// The new document form as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NewForm {
    #[serde(default, rename = "type")]
    doc_type: String,
    #[serde(default)]
    title: String,
}

/// A row of the list.
struct Row {
    id: i64,
    title: String,
    doc_type: &'static str,
    organisation: String,
    stage: &'static str,
    stage_text: &'static str,
    area: Option<String>,
    updated: String,
}

#[derive(Template)]
#[template(path = "tapis_documents.html")]
struct ListPage {
    shell: Shell,
    t: &'static TapisText,
    help: String,
    planner: bool,
    organisation: String,
    stages: Vec<Choice>,
    types: Vec<Choice>,
    rows: Vec<Row>,
    next: Option<String>,
    /// The scan stopped at [`MAX_SCANNED`] before the page was full.
    cut: bool,
    form: NewForm,
    new_types: Vec<Choice>,
    error: Option<Refusal>,
}

impl ListPage {
    fn bad(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == field)
    }
}

fn row(t: &TapisText, d: Document) -> Row {
    Row {
        id: d.id,
        title: d.title,
        doc_type: type_text(t, d.doc_type),
        organisation: d.organisation,
        stage: d.stage.as_str(),
        stage_text: stage_text(t, d.stage),
        area: d.territory.map(|x| area(x.area_m2)),
        updated: when(&d.updated_at),
    }
}

/// The documents of one list page: those matching the filter, newest first, at most
/// [`LIST_PAGE`], and the id the next page starts below (if more may follow).
async fn matching(
    portal: &Portal,
    organisation: Option<&str>,
    stage: Option<Stage>,
    doc_type: Option<DocType>,
    mut before: Option<i64>,
) -> Result<(Vec<Document>, Option<i64>, bool), GovError> {
    let mut out = Vec::new();
    let mut scanned = 0;
    loop {
        let page = service::documents(&portal.app, organisation, READ_PAGE, before).await?;
        let full = page.len() as i64 == READ_PAGE;
        for d in page {
            scanned += 1;
            before = Some(d.id);
            if stage.is_none_or(|s| s == d.stage) && doc_type.is_none_or(|t| t == d.doc_type) {
                out.push(d);
                if out.len() == LIST_PAGE {
                    return Ok((out, before, false));
                }
            }
        }
        if !full {
            return Ok((out, None, false));
        }
        if scanned >= MAX_SCANNED {
            return Ok((out, before, true));
        }
    }
}

async fn load(
    portal: &Portal,
    r: &Reader,
    q: &ListQuery,
    form: NewForm,
    error: Option<Refusal>,
) -> Result<ListPage, PortalError> {
    let t = TapisText::get(r.lang());
    let shell = r.shell(t.list_title);
    let c = caller_of(portal, r.session.as_ref())
        .await
        .map_err(|e| shell.fail(e))?;
    let organisation: String = q
        .organisation
        .trim()
        .chars()
        .take(MAX_ORGANISATION)
        .collect();
    let stage = Stage::parse(q.stage.trim());
    let doc_type = DocType::parse(q.doc_type.trim());
    let before = q.before.trim().parse::<i64>().ok();
    let org = (!organisation.is_empty()).then_some(organisation.as_str());
    let (docs, next_before, cut) = matching(portal, org, stage, doc_type, before)
        .await
        .map_err(|e| shell.fail(e))?;
    let next = next_before.map(|b| {
        let mut href = String::from("/tapis?");
        if !organisation.is_empty() {
            href.push_str(&format!(
                "organisation={}&",
                encode_component(&organisation)
            ));
        }
        if let Some(s) = stage {
            href.push_str(&format!("stage={}&", s.as_str()));
        }
        if let Some(d) = doc_type {
            href.push_str(&format!("type={}&", d.as_str()));
        }
        href.push_str(&format!("before={b}"));
        href
    });
    let chosen_type = DocType::parse(form.doc_type.trim());
    Ok(ListPage {
        help: help_href(None, role_of(&c), r.lang()),
        planner: matches!(c, Caller::Planner { .. }),
        stages: Stage::WAY
            .into_iter()
            .chain([Stage::Cancelled])
            .map(|s| Choice {
                value: s.as_str().into(),
                label: stage_text(t, s).into(),
                selected: Some(s) == stage,
            })
            .collect(),
        types: DocType::ALL
            .into_iter()
            .map(|d| Choice {
                value: d.as_str().into(),
                label: type_text(t, d).into(),
                selected: Some(d) == doc_type,
            })
            .collect(),
        new_types: DocType::ALL
            .into_iter()
            .map(|d| Choice {
                value: d.as_str().into(),
                label: type_text(t, d).into(),
                selected: Some(d) == chosen_type,
            })
            .collect(),
        rows: docs.into_iter().map(|d| row(t, d)).collect(),
        organisation,
        next,
        cut,
        form,
        error,
        shell,
        t,
    })
}

/// `GET /tapis`.
pub(super) async fn page(
    State(portal): State<Portal>,
    r: Reader,
    Query(q): Query<ListQuery>,
) -> Result<Response, PortalError> {
    let page = load(&portal, &r, &q, NewForm::default(), None).await?;
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /tapis`: a planner creates a document; on success its page, else the list with
/// the form as typed and the service's refusal.
pub(super) async fn create(
    State(portal): State<Portal>,
    Posted { session: s, form }: Posted<NewForm>,
) -> Result<Response, PortalError> {
    let result = async {
        let doc_type = DocType::parse(form.doc_type.trim()).ok_or_else(|| {
            invalid(
                "type",
                format!(
                    "choose one of {}",
                    DocType::ALL.map(DocType::as_str).join(", ")
                ),
            )
        })?;
        let c = caller_of(&portal, Some(&s)).await?;
        service::create(
            &portal.app,
            &c,
            &NewDocument {
                doc_type,
                title: form.title.clone(),
            },
        )
        .await
    }
    .await;
    match result {
        Ok(d) => Ok(see_other(&format!(
            "/tapis/documents/{}?done=created",
            d.id
        ))),
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let r = Reader {
                visitor: s.visitor.clone(),
                session: Some(s),
            };
            let page = load(&portal, &r, &ListQuery::default(), form, Some(refusal)).await?;
            Ok(render_status(status, &page))
        }
    }
}

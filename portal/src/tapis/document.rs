//! `GET /tapis/documents/{id}`: the public page of a planning document — its type, title,
//! stage on the way, history, territory on an SVG map ([`super::svg`]) with the land
//! parcels it holds (as stored, no register read), versions with
//! their paragraphs, consultations with their dates, and the institutions it is
//! coordinated with. The document's planner sees on the same page the coordination
//! requests with their due dates and answers, and the forms of the actions
//! ([`super::actions`]); a refused action shows the page again with the service's
//! refusal and the form as typed.

use std::collections::BTreeMap;

use askama::Template;
use dagr_admin_api::axum::extract::{Path, Query, State};
use dagr_admin_api::axum::http::StatusCode;
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::comments::{Anchor, Filter};
use dagr_admin_api::tapis::coordination::{Request, RequestKind, Verdict};
use dagr_admin_api::tapis::model::{Document, Stage, check_move};
use dagr_admin_api::tapis::parcels;
use dagr_admin_api::tapis::service::{self, Caller};
use serde::Deserialize;

use super::svg::MapView;
use super::{
    Choice, Reader, Refusal, TapisText, area, caller_of, help_href, role_of, stage_text, type_text,
    when,
};
use crate::Portal;
use crate::web::{PortalError, Shell, render_status};

/// Most paragraphs of a version the page shows (the whole version is in the API).
const SHOWN_PARAGRAPHS: usize = 500;
/// Most comments of a consultation pinned on the planner's map.
const MAX_PINS: i64 = 1_000;
/// Most properties whose boundaries the map draws (a detailed plan has tens; a
/// municipality-wide territory's hundreds of thousands are not drawn one by one).
const MAX_PARCELS: usize = 2_000;

/// The form of an action as typed, kept when the service refused it.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// The action (`stage`, `territory`, …).
    pub(super) action: String,
    /// Its fields.
    pub(super) fields: BTreeMap<String, String>,
}

/// A step of the way.
pub(super) struct Step {
    text: &'static str,
    /// `done`, `current` or `todo`.
    state: &'static str,
}

/// A history entry.
pub(super) struct HistoryRow {
    at: String,
    stage: String,
    action: String,
    actor: String,
    reason: String,
}

/// A paragraph.
pub(super) struct ParagraphView {
    id: String,
    text: String,
}

/// A version.
pub(super) struct VersionView {
    id: i64,
    label: String,
    summary: String,
    created: String,
    frozen: Option<String>,
    paragraphs: Vec<ParagraphView>,
    total: usize,
}

/// A consultation.
pub(super) struct ConsultationView {
    id: i64,
    version: String,
    starts: String,
    ends: String,
    status: String,
    status_text: &'static str,
    /// The reader is the document's planner: the comments and the report are linked.
    planner: bool,
}

/// An institution asked, and why.
pub(super) struct AskedRow {
    institution: String,
    name: String,
    reason: String,
}

/// The comment form of an open consultation.
pub(super) struct CommentForm {
    /// The consultation commented on.
    consultation: i64,
    /// When it closes.
    ends: String,
    /// Whether the reader may comment (a signed-in citizen).
    citizen: bool,
    /// Whether the reader is signed in (else the sign-in link is offered).
    signed_in: bool,
    /// Where signing in as a citizen leads, and back here.
    sign_in_href: String,
    /// The consulted version's paragraphs.
    paragraphs: Vec<Choice>,
    /// Latvia's extent, the typed coordinates' bounds: west, south, east, north.
    bounds: (f64, f64, f64, f64),
}

/// A coordination request (the planner's view).
pub(super) struct RequestRow {
    id: i64,
    institution: String,
    name: String,
    kind: &'static str,
    note: String,
    sent: String,
    due_on: String,
    overdue: bool,
    answered: bool,
    verdict: &'static str,
    verdict_class: &'static str,
    answer: String,
    responder: String,
    answered_at: String,
    extensions: Vec<String>,
}

#[derive(Template)]
#[template(path = "tapis_document.html")]
pub(super) struct DocPage {
    pub(super) shell: Shell,
    t: &'static TapisText,
    id: i64,
    help: String,
    title: String,
    doc_type: &'static str,
    organisation: String,
    stage: &'static str,
    stage_text: &'static str,
    created: String,
    updated: String,
    area: Option<String>,
    way: Vec<Step>,
    cancelled: bool,
    history: Vec<HistoryRow>,
    map: Option<MapView>,
    versions: Vec<VersionView>,
    consultations: Vec<ConsultationView>,
    asked: Vec<AskedRow>,
    /// The document's planner: the actions are offered.
    planner: bool,
    requests: Vec<RequestRow>,
    institutions: Vec<Choice>,
    /// The next stage a planner moves to by hand, if any.
    next_stage: Option<(&'static str, &'static str)>,
    /// Why the next stage is not a planner's move (it follows a consultation), if so.
    next_automatic: bool,
    back_stages: Vec<Choice>,
    version_choices: Vec<Choice>,
    kinds: Vec<Choice>,
    comment: Option<CommentForm>,
    /// The territory as GeoJSON, for the form.
    territory_json: String,
    kept: Kept,
    pub(super) status: StatusCode,
    error: Option<Refusal>,
}

impl DocPage {
    /// A field of the refused form, as typed (empty for other forms).
    fn kept(&self, action: &str, name: &str) -> &str {
        if self.kept.action == action {
            self.kept.fields.get(name).map(String::as_str).unwrap_or("")
        } else {
            ""
        }
    }

    /// A field of a refused extension of request `id`, as typed.
    fn kept_extend(&self, id: &i64, name: &str) -> &str {
        if self.kept.action == "extend"
            && self.kept.fields.get("request").map(String::as_str) == Some(id.to_string().as_str())
        {
            self.kept.fields.get(name).map(String::as_str).unwrap_or("")
        } else {
            ""
        }
    }

    /// Whether the map picks the comment's point (a citizen may comment, the territory is
    /// drawn).
    fn comment_form(&self) -> bool {
        self.map.is_some() && self.comment.as_ref().is_some_and(|c| c.citizen)
    }

    /// Whether the refused comment form had `anchor` chosen (the paragraph by default).
    fn anchor_is(&self, anchor: &str) -> bool {
        match self.kept("comment", "anchor") {
            "" => anchor == "paragraph",
            a => a == anchor,
        }
    }

    /// Whether the refusal names `field` of form `action`.
    fn bad(&self, action: &str, field: &str) -> bool {
        self.kept.action == action && self.error.as_ref().is_some_and(|e| e.field == field)
    }
}

fn kind_text(t: &TapisText, k: RequestKind) -> &'static str {
    match k {
        RequestKind::Conditions => t.kind_conditions,
        RequestKind::Opinion => t.kind_opinion,
    }
}

/// A verdict's text and its tag's class.
pub(super) fn verdict_text(t: &TapisText, v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Positive => (t.verdict_positive, "ok"),
        Verdict::Conditional => (t.verdict_conditional, "pending"),
        Verdict::Negative => (t.verdict_negative, "bad"),
    }
}

fn consultation_status(t: &TapisText, s: &str) -> &'static str {
    match s {
        "scheduled" => t.consultation_scheduled,
        "open" => t.consultation_open,
        _ => t.consultation_closed,
    }
}

fn request_row(t: &TapisText, names: &BTreeMap<String, String>, r: Request) -> RequestRow {
    let (verdict, verdict_class) = r.verdict.map(|v| verdict_text(t, v)).unwrap_or(("", ""));
    RequestRow {
        name: names
            .get(&r.institution)
            .cloned()
            .unwrap_or_else(|| r.institution.clone()),
        id: r.id,
        kind: kind_text(t, r.kind),
        note: r.note,
        sent: when(&r.sent_at),
        due_on: r.due_on,
        overdue: r.overdue,
        answered: r.status == "answered",
        verdict,
        verdict_class,
        answer: r.answer.unwrap_or_default(),
        responder: r.responder.unwrap_or_default(),
        answered_at: r.answered_at.as_deref().map(when).unwrap_or_default(),
        extensions: r
            .extensions
            .iter()
            .map(|e| {
                let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                format!("{} → {}: {}", s("from"), s("due_on"), s("reason"))
            })
            .collect(),
        institution: r.institution,
    }
}

/// The first words of a paragraph, for a choice.
fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out.replace(['\n', '\r'], " ")
}

/// Pin the comments anchored to a point on the map and draw those anchored to an area
/// (the planner's view: comments are not public), at most [`MAX_PINS`] of each
/// consultation.
async fn pin_comments(
    app: &dagr_admin_api::AppState,
    c: &Caller,
    consultations: &[dagr_admin_api::tapis::consultation::Consultation],
    map: &mut MapView,
) -> Result<(), GovError> {
    for k in consultations.iter().filter(|k| k.status != "scheduled") {
        let f = Filter {
            limit: Some(MAX_PINS),
            ..Filter::default()
        };
        for x in service::comments(app, c, k.id, &f).await? {
            if x.parent.is_some() {
                // A part of a split comment: its original is drawn.
                continue;
            }
            let label = format!("{} {}", x.id, excerpt(&x.text));
            match &x.anchor {
                Anchor::Point { point: [lon, lat] } => map.add_pin(*lon, *lat, &label),
                Anchor::Polygon { polygon } => map.add_area(polygon, &label),
                Anchor::Paragraph { .. } => {}
            }
        }
    }
    Ok(())
}

/// Draw the land boundaries of the document's properties, as stored at the set's last
/// derivation (`parcels::shapes`: no register read, no access record, nothing about the
/// owners, so the public page may), at most [`MAX_PARCELS`]; buildings and apartments have
/// no boundary of their own and lie on the land drawn.
async fn draw_parcels(
    app: &dagr_admin_api::AppState,
    id: i64,
    map: &mut MapView,
) -> Result<(), GovError> {
    let shapes = parcels::shapes(app, id).await?;
    map.parcels_total = shapes.len();
    map.parcels_cut = shapes.len() > MAX_PARCELS;
    for p in shapes.iter().take(MAX_PARCELS) {
        if let Some(b) = &p.boundary {
            map.add_parcel(b, &format!("{} ({})", p.cadastre_number, p.property_type));
        }
    }
    Ok(())
}

/// The way's steps for a document at `stage`.
fn way(t: &TapisText, stage: Stage) -> Vec<Step> {
    Stage::WAY
        .into_iter()
        .map(|s| Step {
            text: stage_text(t, s),
            state: if s == stage {
                "current"
            } else if stage != Stage::Cancelled && s < stage {
                "done"
            } else {
                "todo"
            },
        })
        .collect()
}

impl DocPage {
    /// The page of document `id` as `r` may see it, with a refused form kept.
    pub(super) async fn load(
        portal: &Portal,
        r: &Reader,
        id: i64,
        kept: Kept,
        error: Option<Refusal>,
        status: StatusCode,
    ) -> Result<DocPage, PortalError> {
        let t = TapisText::get(r.lang());
        let shell = r.shell(t.document_title);
        let fail = |e: GovError| shell.fail(e);
        let app = &portal.app;
        let d: Document = service::document(app, id).await.map_err(fail)?;
        let c = caller_of(portal, r.session.as_ref()).await.map_err(fail)?;
        let history = service::history(app, id).await.map_err(fail)?;
        let versions = service::versions(app, id).await.map_err(fail)?;
        let consultations = service::consultations(app, id).await.map_err(fail)?;
        let asked = service::institutions_for(app, id).await.map_err(fail)?;
        let names: BTreeMap<String, String> = service::institutions(app)
            .await
            .map_err(fail)?
            .into_iter()
            .map(|i| (i.code, i.name))
            .collect();
        let planner =
            matches!(&c, Caller::Planner { organisation, .. } if *organisation == d.organisation);
        // Due dates and answers are public; who answered is the planner's to see.
        let requests = if planner {
            service::requests(app, &c, id).await.map_err(fail)?
        } else {
            service::public_requests(app, id).await.map_err(fail)?
        };
        let mut map = d
            .territory
            .as_ref()
            .and_then(|x| MapView::of(&x.geometry, &d.title));
        if let Some(m) = map.as_mut() {
            draw_parcels(app, id, m).await.map_err(fail)?;
        }
        if planner && let Some(m) = map.as_mut() {
            pin_comments(app, &c, &consultations, m)
                .await
                .map_err(fail)?;
        }
        let comment = consultations
            .iter()
            .find(|x| x.status == "open")
            .map(|open| CommentForm {
                consultation: open.id,
                ends: when(&open.ends_at),
                citizen: matches!(c, Caller::Citizen { .. }),
                signed_in: r.session.is_some(),
                sign_in_href: format!(
                    "/citizen/login?next={}",
                    crate::web::encode_component(&format!("/tapis/documents/{id}"))
                ),
                paragraphs: versions
                    .iter()
                    .find(|v| v.id == open.version)
                    .map(|v| {
                        v.paragraphs
                            .iter()
                            .map(|p| Choice {
                                selected: kept.action == "comment"
                                    && kept.fields.get("paragraph") == Some(&p.id),
                                label: format!("{} — {}", p.id, excerpt(&p.text)),
                                value: p.id.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                bounds: MapView::latvia(),
            });
        let label_of = |v: i64| {
            versions
                .iter()
                .find(|x| x.id == v)
                .map(|x| x.label.clone())
                .unwrap_or_else(|| v.to_string())
        };
        let next = Stage::WAY
            .into_iter()
            .find(|s| check_move(d.stage, *s) == Ok(false));
        let next_automatic = matches!(next, Some(Stage::Consultation | Stage::Evaluation));
        let shell = shell.titled(d.title.clone());
        Ok(DocPage {
            help: help_href(Some(d.stage), role_of(&c), r.lang()),
            id,
            doc_type: type_text(t, d.doc_type),
            organisation: d.organisation.clone(),
            stage: d.stage.as_str(),
            stage_text: stage_text(t, d.stage),
            created: when(&d.created_at),
            updated: when(&d.updated_at),
            area: d.territory.as_ref().map(|x| area(x.area_m2)),
            way: way(t, d.stage),
            cancelled: d.stage == Stage::Cancelled,
            history: history
                .into_iter()
                .map(|h| HistoryRow {
                    at: when(&h.at),
                    stage: Stage::parse(&h.to_status)
                        .map(|s| stage_text(t, s).to_owned())
                        .unwrap_or(h.to_status),
                    action: h.action,
                    actor: h.actor,
                    reason: h.reason.unwrap_or_default(),
                })
                .collect(),
            map,
            consultations: consultations
                .iter()
                .map(|x| ConsultationView {
                    id: x.id,
                    version: label_of(x.version),
                    starts: when(&x.starts_at),
                    ends: when(&x.ends_at),
                    status_text: consultation_status(t, &x.status),
                    status: x.status.clone(),
                    planner,
                })
                .collect(),
            version_choices: versions
                .iter()
                .rev()
                .map(|v| Choice {
                    value: v.id.to_string(),
                    label: v.label.clone(),
                    selected: false,
                })
                .collect(),
            versions: versions
                .into_iter()
                .rev()
                .map(|v| VersionView {
                    id: v.id,
                    total: v.paragraphs.len(),
                    paragraphs: v
                        .paragraphs
                        .into_iter()
                        .take(SHOWN_PARAGRAPHS)
                        .map(|p| ParagraphView {
                            id: p.id,
                            text: p.text,
                        })
                        .collect(),
                    label: v.label,
                    summary: v.summary,
                    created: when(&v.created_at),
                    frozen: v.frozen_at.as_deref().map(when),
                })
                .collect(),
            asked: asked
                .into_iter()
                .map(|a| AskedRow {
                    name: names
                        .get(&a.institution)
                        .cloned()
                        .unwrap_or_else(|| a.institution.clone()),
                    institution: a.institution,
                    reason: a.reason,
                })
                .collect(),
            requests: requests
                .into_iter()
                .map(|x| request_row(t, &names, x))
                .collect(),
            institutions: names
                .iter()
                .map(|(code, name)| Choice {
                    value: code.clone(),
                    label: format!("{name} ({code})"),
                    selected: kept.action == "request"
                        && kept.fields.get("institution") == Some(code),
                })
                .collect(),
            kinds: [RequestKind::Conditions, RequestKind::Opinion]
                .into_iter()
                .map(|k| Choice {
                    value: match k {
                        RequestKind::Conditions => "conditions".into(),
                        RequestKind::Opinion => "opinion".into(),
                    },
                    label: kind_text(t, k).into(),
                    selected: match k {
                        RequestKind::Conditions => d.stage <= Stage::Conditions,
                        RequestKind::Opinion => d.stage > Stage::Conditions,
                    },
                })
                .collect(),
            next_stage: next
                .filter(|_| !next_automatic)
                .map(|s| (s.as_str(), stage_text(t, s))),
            next_automatic,
            back_stages: Stage::WAY
                .into_iter()
                .filter(|s| *s < d.stage)
                .chain([Stage::Cancelled])
                .filter(|_| !d.stage.is_final())
                .map(|s| Choice {
                    value: s.as_str().into(),
                    label: stage_text(t, s).into(),
                    selected: kept.action == "stage"
                        && kept.fields.get("stage").map(String::as_str) == Some(s.as_str()),
                })
                .collect(),
            comment,
            territory_json: d
                .territory
                .as_ref()
                .map(|x| x.geometry.to_string())
                .unwrap_or_default(),
            title: d.title,
            planner,
            kept,
            status,
            error,
            shell,
            t,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    done: String,
}

/// The confirmations a `?done=` names.
pub(super) fn done_texts(t: &TapisText) -> [(&'static str, &'static str); 7] {
    [
        ("created", t.done_created),
        ("stage", t.done_stage),
        ("territory", t.done_territory),
        ("version", t.done_version),
        ("request", t.done_request),
        ("extend", t.done_extend),
        ("schedule", t.done_schedule),
    ]
}

/// `GET /tapis/documents/{id}`.
pub(super) async fn page(
    State(portal): State<Portal>,
    r: Reader,
    Path(raw): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(r.lang());
    let id = parse_id(&r.shell(t.document_title), &raw)?;
    let mut page = DocPage::load(&portal, &r, id, Kept::default(), None, StatusCode::OK).await?;
    page.shell = page.shell.with_done(Some(&q.done), &done_texts(t));
    Ok(render_status(page.status, &page))
}

/// A document id from the path, or the "not found" page.
pub(super) fn parse_id(shell: &Shell, raw: &str) -> Result<i64, PortalError> {
    raw.parse::<i64>()
        .map_err(|_| shell.fail(GovError::NotFound(format!("no planning document `{raw}`"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn the_way_marks_what_is_done_and_where_the_document_is() {
        let t = TapisText::get(Lang::En);
        let w = way(t, Stage::Drafting);
        let states: Vec<&str> = w.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            ["done", "done", "current", "todo", "todo", "todo", "todo"]
        );
        assert!(
            way(t, Stage::Cancelled).iter().all(|s| s.state == "todo"),
            "a cancelled document went nowhere"
        );
    }
}

//! `POST /tapis/documents/{id}/act`: the planner's actions on a document's page — move the
//! stage (a reason for going back or cancelling), set the territory (GeoJSON), add a
//! version (paragraphs typed as lines `id: text`), send a coordination request, extend
//! one, schedule a consultation — and a citizen's comment during an open consultation (on
//! a paragraph, a point picked on the map or typed, or an area drawn on the map or typed
//! as a GeoJSON Polygon), which leads to its receipt. Each is one call of the service with
//! the session's principal; on success the page again with a confirmation (303), on a
//! refusal the page with the service's message and the form as typed.
//!
//! What this module checks itself is only what a form cannot say in the service's terms:
//! a date or time that does not parse, GeoJSON that is no JSON, a paragraph line without
//! its id. Every rule (who may, which stage, which dates) is the service's.

use std::collections::BTreeMap;

use dagr_admin_api::axum::extract::{Path, State};
use dagr_admin_api::axum::response::Response;
use dagr_admin_api::calendar::Date;
use dagr_admin_api::governance::GovError;
use dagr_admin_api::tapis::comments::{Anchor, NewComment};
use dagr_admin_api::tapis::consultation::{NewConsultation, NewVersion, Paragraph};
use dagr_admin_api::tapis::coordination::{Extension, NewRequest, RequestKind};
use dagr_admin_api::tapis::model::{Stage, StageMove};
use dagr_admin_api::tapis::service;
use serde_json::Value;

use super::document::{DocPage, Kept, parse_id};
use super::{Reader, Refusal, TapisText, caller_of};
use crate::Portal;
use crate::session::{Posted, SignedIn};
use crate::web::{PortalError, encode_component, invalid, render_status, see_other};

/// Longest single field (bytes), but for the two below.
const MAX_FIELD: usize = 16 << 10;
/// Longest territory or paragraph list (bytes); the whole form is limited by the session's
/// form limit too.
const MAX_BIG_FIELD: usize = 240 << 10;

/// The actions of a document's planner.
const PLANNER_ACTIONS: [&str; 6] = [
    "stage",
    "territory",
    "version",
    "request",
    "extend",
    "schedule",
];

/// `GET /tapis/documents/{id}/act` (a form's action opened as a page): the document.
pub(super) async fn back(Path(raw): Path<String>) -> Response {
    match raw.parse::<i64>() {
        Ok(id) => see_other(&format!("/tapis/documents/{id}")),
        Err(_) => see_other("/tapis"),
    }
}

/// A form's fields by name (the first value of each, the CSRF token left out), or the
/// refusal of a field that is too long.
pub(super) fn fields_of(
    form: Vec<(String, String)>,
) -> (BTreeMap<String, String>, Option<GovError>) {
    let mut fields = BTreeMap::new();
    let mut too_long = None;
    for (k, v) in form {
        if k == "csrf" {
            continue;
        }
        let max = if k == "geometry" || k == "paragraphs" || k == "polygon" {
            MAX_BIG_FIELD
        } else {
            MAX_FIELD
        };
        if v.len() > max && too_long.is_none() {
            too_long = Some(invalid(&k, format!("at most {} KiB", max >> 10)));
        }
        fields.entry(k).or_insert(v);
    }
    (fields, too_long)
}

fn field<'a>(f: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    f.get(name).map(String::as_str).unwrap_or("")
}

/// Paragraphs typed one a line as `id: text`; a line starting with a space or a tab
/// continues the paragraph above it; empty lines are skipped.
pub(super) fn paragraphs(raw: &str) -> Result<Vec<Paragraph>, GovError> {
    let mut out: Vec<Paragraph> = Vec::new();
    for (i, line) in raw.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some(p) => {
                    p.text.push('\n');
                    p.text.push_str(line.trim());
                    continue;
                }
                None => {
                    return Err(invalid(
                        "paragraphs",
                        format!("line {}: the first line starts with a paragraph id", i + 1),
                    ));
                }
            }
        }
        let Some((id, text)) = line.split_once(':') else {
            return Err(invalid(
                "paragraphs",
                format!(
                    "line {}: write `id: text` (e.g. `1.2: Apbūves augstums …`)",
                    i + 1
                ),
            ));
        };
        out.push(Paragraph {
            id: id.trim().to_owned(),
            text: text.trim().to_owned(),
        });
    }
    Ok(out)
}

/// A territory typed as GeoJSON: a geometry, or a Feature holding one.
pub(super) fn geometry(raw: &str) -> Result<Value, GovError> {
    geometry_in("geometry", raw)
}

/// GeoJSON typed (or drawn) in form field `field`: a geometry, or a Feature holding one.
fn geometry_in(field: &str, raw: &str) -> Result<Value, GovError> {
    let v: Value =
        serde_json::from_str(raw.trim()).map_err(|e| invalid(field, format!("not JSON: {e}")))?;
    if v.get("type").and_then(Value::as_str) == Some("Feature") {
        return v
            .get("geometry")
            .cloned()
            .filter(|g| !g.is_null())
            .ok_or_else(|| invalid(field, "the Feature has no geometry"));
    }
    Ok(v)
}

/// A time typed in a datetime field (Latvian local time) as RFC 3339.
fn time(f: &BTreeMap<String, String>, name: &str, t: &TapisText) -> Result<String, GovError> {
    crate::map::parse_local_time(field(f, name))
        .map(|x| x.to_rfc3339())
        .ok_or_else(|| invalid(name, t.not_a_time))
}

/// A coordinate typed in degrees (a decimal point or comma).
fn coordinate(f: &BTreeMap<String, String>, name: &str, t: &TapisText) -> Result<f64, GovError> {
    field(f, name)
        .trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| invalid(name, t.not_a_number))
}

/// Where the page goes after the action: the document with a confirmation, or a receipt.
enum Done {
    /// The document's page with the confirmation `?done=` names.
    Page(&'static str),
    /// A comment's receipt.
    Receipt(String),
}

/// Take the action the form names.
async fn take(
    portal: &Portal,
    s: &SignedIn,
    t: &TapisText,
    id: i64,
    f: &BTreeMap<String, String>,
) -> Result<Done, GovError> {
    let app = &portal.app;
    let c = caller_of(portal, Some(s)).await?;
    let action = field(f, "action");
    if PLANNER_ACTIONS.contains(&action) {
        // Who may is checked before the form's fields are read.
        service::require_planner(&c)?;
    }
    match action {
        "stage" => {
            let stage = Stage::parse(field(f, "stage").trim())
                .ok_or_else(|| invalid("stage", t.choose_stage))?;
            let reason = Some(field(f, "reason").to_owned()).filter(|r| !r.trim().is_empty());
            service::move_stage(app, &c, id, &StageMove { stage, reason }).await?;
            Ok(Done::Page("stage"))
        }
        "territory" => {
            let g = geometry(field(f, "geometry"))?;
            service::set_territory(app, &c, id, &g).await?;
            Ok(Done::Page("territory"))
        }
        "version" => {
            let v = NewVersion {
                label: field(f, "label").to_owned(),
                summary: field(f, "summary").to_owned(),
                paragraphs: paragraphs(field(f, "paragraphs"))?,
            };
            service::add_version(app, &c, id, &v).await?;
            Ok(Done::Page("version"))
        }
        "request" => {
            let kind = match field(f, "kind") {
                "conditions" => RequestKind::Conditions,
                "opinion" => RequestKind::Opinion,
                _ => return Err(invalid("kind", t.choose_kind)),
            };
            let r = NewRequest {
                institution: field(f, "institution").trim().to_owned(),
                kind,
                note: field(f, "note").to_owned(),
            };
            service::send_request(app, &c, id, &r).await?;
            Ok(Done::Page("request"))
        }
        "extend" => {
            let request = field(f, "request")
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("request", t.not_an_id))?;
            let due_on = crate::map::parse_day(field(f, "due_on"))
                .ok_or_else(|| invalid("due_on", t.not_a_date))?;
            let e = Extension {
                due_on: Date(due_on),
                reason: field(f, "reason").to_owned(),
            };
            service::extend(app, &c, id, request, &e).await?;
            Ok(Done::Page("extend"))
        }
        "schedule" => {
            let version = field(f, "version")
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("version", t.choose_version))?;
            let starts_at = if field(f, "starts_at").trim().is_empty() {
                None
            } else {
                Some(time(f, "starts_at", t)?)
            };
            let n = NewConsultation {
                version,
                starts_at,
                ends_at: time(f, "ends_at", t)?,
            };
            service::schedule(app, &c, id, &n).await?;
            Ok(Done::Page("schedule"))
        }
        "comment" => {
            service::require_citizen(&c)?;
            let consultation = field(f, "consultation")
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("consultation", t.not_an_id))?;
            let anchor = match field(f, "anchor") {
                "paragraph" => Anchor::Paragraph {
                    paragraph: field(f, "paragraph").trim().to_owned(),
                },
                "point" => Anchor::Point {
                    point: [coordinate(f, "lon", t)?, coordinate(f, "lat", t)?],
                },
                // The service checks it as it checks a territory (a Polygon, closed rings,
                // no self-intersection, in Latvia).
                "polygon" => Anchor::Polygon {
                    polygon: geometry_in("polygon", field(f, "polygon"))?,
                },
                _ => return Err(invalid("anchor", t.choose_anchor)),
            };
            let n = NewComment {
                text: field(f, "text").to_owned(),
                anchor,
            };
            let done = service::add_comment(app, &c, consultation, &n).await?;
            Ok(Done::Receipt(done.receipt.id))
        }
        other => Err(invalid("action", format!("no action `{other}`"))),
    }
}

/// `POST /tapis/documents/{id}/act`.
pub(super) async fn act(
    State(portal): State<Portal>,
    Path(raw): Path<String>,
    Posted { session: s, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let t = TapisText::get(s.lang());
    let id = parse_id(&s.shell(t.document_title), &raw)?;
    let (fields, too_long) = fields_of(form);
    let result = match too_long {
        Some(e) => Err(e),
        None => take(&portal, &s, t, id, &fields).await,
    };
    match result {
        Ok(Done::Page(done)) => Ok(see_other(&format!("/tapis/documents/{id}?done={done}"))),
        Ok(Done::Receipt(rid)) => Ok(see_other(&format!(
            "/tapis/receipts/{}?done=comment",
            encode_component(&rid)
        ))),
        Err(GovError::Store(inner)) => Err(s.fail(GovError::Store(inner))),
        Err(e) => {
            let (status, refusal) = Refusal::of(&s.shell(""), &e);
            let kept = Kept {
                action: field(&fields, "action").to_owned(),
                fields,
            };
            let r = Reader {
                visitor: s.visitor.clone(),
                session: Some(s),
            };
            let page = DocPage::load(&portal, &r, id, kept, Some(refusal), status).await?;
            Ok(render_status(page.status, &page))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_typed_one_a_line_with_their_ids() {
        let p =
            paragraphs("1.1: Apbūves augstums\n  līdz 12 m\n\n1.2:Zaļā zona: 30 %\r\n").unwrap();
        assert_eq!(
            p,
            vec![
                Paragraph {
                    id: "1.1".into(),
                    text: "Apbūves augstums\nlīdz 12 m".into()
                },
                Paragraph {
                    id: "1.2".into(),
                    text: "Zaļā zona: 30 %".into()
                },
            ]
        );
        match paragraphs("1.1 Apbūve") {
            Err(GovError::Invalid { field, reason }) => {
                assert_eq!(field, "paragraphs");
                assert!(reason.starts_with("line 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(paragraphs("  turpinājums").is_err());
        assert_eq!(paragraphs("").unwrap(), vec![]);
    }

    #[test]
    fn a_territory_is_a_geometry_or_a_feature_holding_one() {
        let g = r#"{"type":"Polygon","coordinates":[]}"#;
        assert_eq!(geometry(g).unwrap()["type"], "Polygon");
        let f = format!(r#"{{"type":"Feature","properties":{{}},"geometry":{g}}}"#);
        assert_eq!(geometry(&f).unwrap()["type"], "Polygon");
        assert!(matches!(
            geometry(r#"{"type":"Feature","geometry":null}"#),
            Err(GovError::Invalid { .. })
        ));
        assert!(matches!(
            geometry_in("polygon", ""),
            Err(GovError::Invalid { field, .. }) if field == "polygon"
        ));
        match geometry("{not json") {
            Err(GovError::Invalid { field, reason }) => {
                assert_eq!(field, "geometry");
                assert!(reason.starts_with("not JSON"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_keep_the_first_value_and_refuse_what_is_too_long() {
        let (f, e) = fields_of(vec![
            ("csrf".into(), "x".into()),
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("geometry".into(), "x".repeat(MAX_FIELD + 1)),
        ]);
        assert_eq!(f["a"], "1");
        assert!(!f.contains_key("csrf"));
        assert!(e.is_none(), "a territory may be longer");
        let (_, e) = fields_of(vec![("note".into(), "x".repeat(MAX_FIELD + 1))]);
        assert!(matches!(e, Some(GovError::Invalid { field, .. }) if field == "note"));
    }
}

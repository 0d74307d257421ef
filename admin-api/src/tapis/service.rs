//! TAPIS as a service for the REST handlers (and the portal, later): who the caller is
//! ([`Caller`]) and each read or action with the rules applied.

use dagr_engine::{Principal, Role};

use crate::AppState;
use crate::governance::{GovError, GovResult};

use super::comments::{
    self, AnswerBlock, CommentView, Filter, Labels, NewAnswer, NewComment, ReceiptView, Split,
    Submitted,
};
use super::consultation::{self, Consultation, NewConsultation, NewVersion, Version};
use super::coordination::{Answer, Extension, LinkView, NewRequest, Request, RequestKind};
use super::files::{self, VersionFile};
use super::geometry;
use super::model::{Document, NewDocument, Stage, StageMove, check_move};
use super::rules::{Rules, merge_patch};
use super::store::{HistoryEntry, Institution, TapisStore};

/// Longest title.
const MAX_TITLE: usize = 300;

/// The caller as TAPIS knows them.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A planner of a municipality.
    Planner {
        /// Login.
        login: String,
        /// The municipality.
        organisation: String,
    },
    /// A DAGR operator: keeps the rules, planners and institutions.
    Admin,
    /// A citizen (a data subject, signed in through the subject identity seam): comments
    /// during a public consultation and follows their receipts.
    Citizen {
        /// The personal code the identity provider names.
        subject: String,
    },
    /// Anyone else: reads what is public.
    Public,
}

/// Who `p` is in TAPIS, with the server's identity provider naming citizens.
pub async fn caller(state: &AppState, p: &Principal) -> GovResult<Caller> {
    if let Some(subject) = state.identity.subject(p) {
        return Ok(Caller::Citizen { subject });
    }
    Caller::of(&store(state), p).await
}

impl Caller {
    /// Who `p` is in TAPIS (planners, admins and the public; see [`caller`] for citizens).
    pub async fn of(store: &TapisStore, p: &Principal) -> GovResult<Caller> {
        if p.role == Role::Admin {
            return Ok(Caller::Admin);
        }
        if let (Some(login), Some(org)) = (&p.user, &p.organisation)
            && store.planner(login).await?.as_deref() == Some(org)
        {
            return Ok(Caller::Planner {
                login: login.clone(),
                organisation: org.clone(),
            });
        }
        Ok(Caller::Public)
    }

    fn describe(&self) -> String {
        match self {
            Caller::Planner {
                login,
                organisation,
            } => format!("planner {login} ({organisation})"),
            Caller::Admin => "admin".into(),
            Caller::Citizen { .. } => "citizen".into(),
            Caller::Public => "public".into(),
        }
    }

    /// The person acting, when a planner acts (named in access records).
    fn login(&self) -> Option<&str> {
        match self {
            Caller::Planner { login, .. } => Some(login),
            _ => None,
        }
    }

    /// The planner's organisation; 403 for anyone else.
    fn planner(&self) -> GovResult<&str> {
        match self {
            Caller::Planner { organisation, .. } => Ok(organisation),
            _ => Err(GovError::Forbidden(
                "this is for the planners of a municipality (a person with their own token)".into(),
            )),
        }
    }
}

/// Refuse unless the caller is a planner (before a body is read).
pub fn require_planner(c: &Caller) -> GovResult<()> {
    c.planner().map(drop)
}

/// Refuse unless the caller is a citizen (before a body is read).
pub fn require_citizen(c: &Caller) -> GovResult<&str> {
    match c {
        Caller::Citizen { subject } => Ok(subject),
        _ => Err(GovError::Forbidden(
            "comments are written by citizens signed in as themselves (a subject token)".into(),
        )),
    }
}

/// Refuse unless the caller is an admin (before a body is read).
pub fn require_admin(c: &Caller) -> GovResult<()> {
    match c {
        Caller::Admin => Ok(()),
        _ => Err(GovError::Forbidden("this is for an admin".into())),
    }
}

fn store(state: &AppState) -> TapisStore {
    TapisStore::new(state.gov.store())
}

/// A document the planner leads (404 for others' documents: nothing to act on).
async fn own(s: &TapisStore, c: &Caller, id: i64) -> GovResult<super::store::DocRow> {
    let org = c.planner()?;
    let d = s.document(id).await?;
    if d.organisation != org {
        return Err(GovError::NotFound(format!(
            "no planning document {id} of {org}"
        )));
    }
    Ok(d)
}

/// Create a document (a planner).
pub async fn create(state: &AppState, c: &Caller, n: &NewDocument) -> GovResult<Document> {
    let org = c.planner()?;
    let title = n.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE || title.chars().any(char::is_control)
    {
        return Err(GovError::Invalid {
            field: "title".into(),
            reason: format!("give 1 to {MAX_TITLE} characters, no control characters"),
        });
    }
    let s = store(state);
    let id = s.create(org, n.doc_type, title, &c.describe()).await?;
    Ok(s.document(id).await?.view())
}

/// Documents, newest first (public: planning documents are public).
pub async fn documents(
    state: &AppState,
    organisation: Option<&str>,
    limit: i64,
    before: Option<i64>,
) -> GovResult<Vec<Document>> {
    if !(1..=500).contains(&limit) {
        return Err(GovError::Invalid {
            field: "limit".into(),
            reason: "1 to 500".into(),
        });
    }
    Ok(store(state)
        .documents(organisation, limit, before)
        .await?
        .iter()
        .map(|d| d.view())
        .collect())
}

/// One document (public).
pub async fn document(state: &AppState, id: i64) -> GovResult<Document> {
    Ok(store(state).document(id).await?.view())
}

/// Move a document to another stage (its planner): the next stage, or back / cancelled
/// with a reason. `consultation` and `evaluation` follow a consultation's start and end,
/// not a planner's move.
pub async fn move_stage(
    state: &AppState,
    c: &Caller,
    id: i64,
    m: &StageMove,
) -> GovResult<Document> {
    let s = store(state);
    let d = own(&s, c, id).await?;
    let needs_reason = check_move(d.stage, m.stage).map_err(GovError::Conflict)?;
    if !needs_reason && matches!(m.stage, Stage::Consultation | Stage::Evaluation) {
        return Err(GovError::Conflict(format!(
            "a document moves to {} when its public consultation starts or ends, not by a planner's move",
            m.stage.as_str()
        )));
    }
    if m.stage != Stage::Cancelled
        && let Some(open) = s.consultation_pending(id).await?
        && open.status == "open"
    {
        return Err(GovError::Conflict(format!(
            "consultation {} is open until {}: it is never cut short (a document may still be cancelled)",
            open.id, open.ends_at
        )));
    }
    let reason = m.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if needs_reason && reason.is_none() {
        return Err(GovError::Invalid {
            field: "reason".into(),
            reason: format!(
                "a move back to {} or a cancellation needs a reason",
                m.stage.as_str()
            ),
        });
    }
    if let Some(r) = reason
        && r.chars().count() > 4_000
    {
        return Err(GovError::Invalid {
            field: "reason".into(),
            reason: "at most 4 000 characters".into(),
        });
    }
    if m.stage == Stage::Approved {
        ready_for_approval(&s, id).await?;
        // The plan against the cadastre at approval (new owners told), after every other
        // check: an approval waits for it.
        if d.territory.is_some() {
            super::parcels::compare_cadastre_as(state, id, "approval", c.login())
                .await
                .map_err(|e| match e {
                    GovError::Conflict(_)
                    | GovError::NotFound(_)
                    | GovError::Forbidden(_)
                    | GovError::Invalid { .. } => GovError::Conflict(format!(
                        "the plan could not be compared with the cadastre before approval: {e}"
                    )),
                    other => other,
                })?;
        }
    }
    s.move_stage(id, d.stage, m.stage, &c.describe(), reason)
        .await?;
    if matches!(m.stage, Stage::InForce | Stage::Cancelled) {
        super::parcels::forget_owners(&s, id).await?;
    }
    Ok(s.document(id).await?.view())
}

/// Set a document's territory (its planner): checked, its area computed; refused with the
/// reason and nothing changed.
pub async fn set_territory(
    state: &AppState,
    c: &Caller,
    id: i64,
    geometry: &serde_json::Value,
) -> GovResult<Document> {
    let s = store(state);
    own(&s, c, id).await?;
    let t = geometry::parse(geometry).map_err(|e| GovError::Invalid {
        field: "geometry".into(),
        reason: e.0,
    })?;
    s.set_territory(id, geometry, t.area_m2, &c.describe())
        .await?;
    // The properties in the territory are derived again (audited). The territory stands
    // whether or not the registers can be read now; `GET …/parcels` derives them again in
    // any case.
    if let Err(e) = super::parcels::refresh_as(state, id, c.login()).await {
        tracing::warn!(document = id, error = %e,
            "TAPIS: the properties of a new territory could not be derived now");
    }
    Ok(s.document(id).await?.view())
}

/// The history of a document (public).
pub async fn history(state: &AppState, id: i64) -> GovResult<Vec<HistoryEntry>> {
    let s = store(state);
    s.document(id).await?;
    s.history(id).await
}

/// An institution to ask, and why.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Asked {
    /// The institution's code.
    pub institution: String,
    /// `always` (the document type's rule) or `layer` (the territory crosses a layer).
    pub kind: String,
    /// Why, in words.
    pub reason: String,
}

/// The institutions a document is coordinated with under the current rules (public).
pub async fn institutions_for(state: &AppState, id: i64) -> GovResult<Vec<Asked>> {
    let s = store(state);
    let d = s.document(id).await?;
    let rules = s.rules().await?;
    let mut out: Vec<Asked> = rules
        .institutions
        .always
        .get(d.doc_type.as_str())
        .into_iter()
        .flatten()
        .map(|i| Asked {
            institution: i.clone(),
            kind: "always".into(),
            reason: format!("asked for every {}", d.doc_type.as_str().replace('_', " ")),
        })
        .collect();
    if let Some(g) = &d.territory {
        let territory = geometry::parse(g).map_err(|e| GovError::Invalid {
            field: "territory".into(),
            reason: e.0,
        })?;
        for l in &rules.institutions.layers {
            let Ok(layer) = geometry::parse(&l.geometry) else {
                continue;
            };
            if geometry::overlaps(&territory, &layer)
                && !out
                    .iter()
                    .any(|a| a.institution == l.institution && a.kind == "layer")
            {
                out.push(Asked {
                    institution: l.institution.clone(),
                    kind: "layer".into(),
                    reason: format!("the territory crosses {} ({})", l.title, l.code),
                });
            }
        }
    }
    Ok(out)
}

/// Send a coordination request (the document's planner).
pub async fn send_request(
    state: &AppState,
    c: &Caller,
    id: i64,
    r: &NewRequest,
) -> GovResult<Request> {
    let s = store(state);
    let d = own(&s, c, id).await?;
    let allowed = match r.kind {
        RequestKind::Conditions => matches!(d.stage, Stage::Initiated | Stage::Conditions),
        RequestKind::Opinion => matches!(
            d.stage,
            Stage::Drafting | Stage::Consultation | Stage::Evaluation
        ),
    };
    if !allowed {
        return Err(GovError::Conflict(format!(
            "document {id} is {}: conditions are asked at initiated or conditions, opinions at drafting, consultation or evaluation",
            d.stage.as_str()
        )));
    }
    let institution = s
        .institutions()
        .await?
        .into_iter()
        .find(|i| i.code == r.institution)
        .ok_or_else(|| GovError::Invalid {
            field: "institution".into(),
            reason: format!("no institution `{}`", r.institution),
        })?;
    let rules = s.rules().await?;
    let t = rules.of(d.doc_type);
    let deadline = match r.kind {
        RequestKind::Conditions => t.conditions_days,
        RequestKind::Opinion => t.opinion_days,
    };
    let base = state.public_url();
    s.send_request(
        id,
        d.stage,
        r,
        &institution.email,
        deadline,
        rules.link_days,
        &base,
        &c.describe(),
    )
    .await
}

/// The requests of a document (its planner).
pub async fn requests(state: &AppState, c: &Caller, id: i64) -> GovResult<Vec<Request>> {
    let s = store(state);
    own(&s, c, id).await?;
    s.requests(id).await
}

/// A document's coordination requests as the public sees them (due dates are public):
/// institution, kind, due date, overdue, status, verdict and answer; not who answered.
pub async fn public_requests(state: &AppState, id: i64) -> GovResult<Vec<Request>> {
    let s = store(state);
    s.document(id).await?;
    let mut out = s.requests(id).await?;
    for r in &mut out {
        r.responder = None;
    }
    Ok(out)
}

/// Extend a request's due date (the document's planner).
pub async fn extend(
    state: &AppState,
    c: &Caller,
    id: i64,
    request: i64,
    e: &Extension,
) -> GovResult<Request> {
    let s = store(state);
    own(&s, c, id).await?;
    s.extend(id, request, e, &c.describe()).await
}

/// What a coordination link shows (no token needed: the link is the credential).
pub async fn link(state: &AppState, token: &str) -> GovResult<LinkView> {
    store(state).by_link(token).await
}

/// The request a coordination link names (404 for a changed link, 403 for an expired one).
pub async fn verify_link(state: &AppState, token: &str) -> GovResult<i64> {
    store(state).verify_link(token).await
}

/// Answer request `id` through its verified link, once.
pub async fn answer(state: &AppState, id: i64, a: &Answer) -> GovResult<Request> {
    store(state).answer(id, a).await
}

/// The rules (public: due dates are public).
pub async fn rules(state: &AppState) -> GovResult<Rules> {
    store(state).rules().await
}

/// Change the rules with an RFC 7396 merge patch (an admin): a new version.
pub async fn patch_rules(
    state: &AppState,
    c: &Caller,
    patch: &serde_json::Value,
) -> GovResult<Rules> {
    require_admin(c)?;
    if !patch.is_object() {
        return Err(GovError::Invalid {
            field: "patch".into(),
            reason: "a merge patch is a JSON object".into(),
        });
    }
    let s = store(state);
    let current = s.rules().await?;
    let mut doc = serde_json::to_value(&current).map_err(|e| GovError::Invalid {
        field: "rules".into(),
        reason: e.to_string(),
    })?;
    merge_patch(&mut doc, patch);
    if let Some(o) = doc.as_object_mut() {
        o.remove("version");
    }
    let next: Rules = serde_json::from_value(doc).map_err(|e| GovError::Invalid {
        field: "rules".into(),
        reason: e.to_string(),
    })?;
    let codes: Vec<String> = s
        .institutions()
        .await?
        .into_iter()
        .map(|i| i.code)
        .collect();
    next.check(&codes)
        .map_err(|(field, reason)| GovError::Invalid { field, reason })?;
    s.save_rules(&next, &c.describe()).await
}

/// The institutions (public).
pub async fn institutions(state: &AppState) -> GovResult<Vec<Institution>> {
    store(state).institutions().await
}

/// Add or change an institution (an admin).
pub async fn set_institution(
    state: &AppState,
    c: &Caller,
    i: &Institution,
) -> GovResult<Institution> {
    require_admin(c)?;
    let code_ok = (1..=40).contains(&i.code.len())
        && i.code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !code_ok {
        return Err(GovError::Invalid {
            field: "code".into(),
            reason: "1 to 40 of A-Z, a-z, 0-9, _ and -".into(),
        });
    }
    let name = i.name.trim();
    if name.is_empty() || name.chars().count() > 300 {
        return Err(GovError::Invalid {
            field: "name".into(),
            reason: "1 to 300 characters".into(),
        });
    }
    let email = crate::outbox::check_address(&i.email)?;
    let i = Institution {
        code: i.code.clone(),
        name: name.to_owned(),
        email,
    };
    store(state).set_institution(&i).await?;
    Ok(i)
}

/// Make a person of an organisation a planner (an admin).
pub async fn add_planner(state: &AppState, c: &Caller, login: &str) -> GovResult<()> {
    require_admin(c)?;
    let user = state
        .gov
        .store()
        .user_by_login(login)
        .await?
        .ok_or_else(|| GovError::Invalid {
            field: "login".into(),
            reason: format!("no user `{login}`"),
        })?;
    let org = user.organisation.ok_or_else(|| GovError::Invalid {
        field: "login".into(),
        reason: format!("`{login}` belongs to no organisation"),
    })?;
    store(state).add_planner(login, &org).await
}

/// Add a version (the document's planner), before approval.
pub async fn add_version(
    state: &AppState,
    c: &Caller,
    id: i64,
    v: &NewVersion,
) -> GovResult<Version> {
    let s = store(state);
    let d = own(&s, c, id).await?;
    if d.stage >= Stage::Approved {
        return Err(GovError::Conflict(format!(
            "document {id} is {}: it takes no new version",
            d.stage.as_str()
        )));
    }
    s.add_version(id, v, &c.describe()).await
}

/// The versions of a document (public).
pub async fn versions(state: &AppState, id: i64) -> GovResult<Vec<Version>> {
    let s = store(state);
    s.document(id).await?;
    s.versions(id).await
}

/// One version (public).
pub async fn version(state: &AppState, id: i64, version: i64) -> GovResult<Version> {
    store(state).version(id, version).await
}

/// The consultations of a document (public).
pub async fn consultations(state: &AppState, id: i64) -> GovResult<Vec<Consultation>> {
    let s = store(state);
    s.document(id).await?;
    s.consultations(id).await
}

/// Schedule a public consultation of a version (the document's planner, while drafting):
/// at least the type's `consultation_min_days`, at most a year; it opens and closes by
/// itself.
pub async fn schedule(
    state: &AppState,
    c: &Caller,
    id: i64,
    n: &NewConsultation,
) -> GovResult<Consultation> {
    let s = store(state);
    let d = own(&s, c, id).await?;
    if d.stage != Stage::Drafting {
        return Err(GovError::Conflict(format!(
            "document {id} is {}: a consultation is scheduled while drafting",
            d.stage.as_str()
        )));
    }
    s.version(id, n.version)
        .await
        .map_err(|_| GovError::Invalid {
            field: "version".into(),
            reason: format!("no version {} of document {id}", n.version),
        })?;
    let now = crate::model::Time::now();
    let time = |field: &str, v: &str| {
        crate::model::Time::parse(v).ok_or_else(|| GovError::Invalid {
            field: field.into(),
            reason: "not an RFC 3339 time".into(),
        })
    };
    let starts = match &n.starts_at {
        Some(v) => time("starts_at", v)?,
        None => now,
    };
    let ends = time("ends_at", &n.ends_at)?;
    if starts.0 < now.0 - 60_000 {
        return Err(GovError::Invalid {
            field: "starts_at".into(),
            reason: "is in the past".into(),
        });
    }
    let min_days = i64::from(s.rules().await?.of(d.doc_type).consultation_min_days);
    let day = 86_400_000;
    if ends.0 - starts.0 < min_days * day || ends.0 <= starts.0 {
        return Err(GovError::Invalid {
            field: "ends_at".into(),
            reason: format!(
                "a consultation of a {} lasts at least {min_days} days (and ends after it starts)",
                d.doc_type.as_str().replace('_', " ")
            ),
        });
    }
    if ends.0 - starts.0 > consultation::MAX_CONSULTATION_DAYS * day {
        return Err(GovError::Invalid {
            field: "ends_at".into(),
            reason: format!("at most {} days", consultation::MAX_CONSULTATION_DAYS),
        });
    }
    let out = s
        .schedule(id, n.version, starts, ends, &c.describe())
        .await?;
    // One that starts now opens now, not at the scheduler's next look.
    consultation::advance(&s).await?;
    s.consultation(out.id).await
}

/// Refuse approval while a consultation is scheduled or open, a comment or part is
/// unanswered, or a coordination request is unanswered (past its due date too, unless the
/// rules count silence as consent).
async fn ready_for_approval(s: &TapisStore, id: i64) -> GovResult<()> {
    if let Some(k) = s.consultation_pending(id).await? {
        return Err(GovError::Conflict(format!(
            "consultation {} is {}: a document is approved after its consultation closed",
            k.id, k.status
        )));
    }
    let open = s.unanswered(id).await?;
    if open > 0 {
        return Err(GovError::Conflict(format!(
            "{open} comment(s) of the public consultation have no answer yet: every comment is answered before approval"
        )));
    }
    let silence = s.rules().await?.silence_is_consent;
    let waiting: Vec<String> = s
        .requests(id)
        .await?
        .into_iter()
        .filter(|r| r.status != "answered" && !(silence && r.overdue))
        .map(|r| format!("{} ({}, due {})", r.institution, r.kind.as_str(), r.due_on))
        .collect();
    if !waiting.is_empty() {
        return Err(GovError::Conflict(format!(
            "institutions have not answered: {}{}",
            waiting.join(", "),
            if silence {
                ""
            } else {
                " (the rules do not count silence as consent)"
            }
        )));
    }
    Ok(())
}

// ---- files of versions -------------------------------------------------------------

/// Add a file to a version (the document's planner, before approval; the version not
/// frozen), streaming `body` to the object store.
pub async fn add_file<S, E>(
    state: &AppState,
    c: &Caller,
    id: i64,
    version: i64,
    name: &str,
    content_type: Option<&str>,
    body: S,
) -> Result<VersionFile, crate::error::ApiError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let s = store(state);
    let d = own(&s, c, id).await?;
    if d.stage >= Stage::Approved {
        return Err(GovError::Conflict(format!(
            "document {id} is {}: its versions take no files",
            d.stage.as_str()
        ))
        .into());
    }
    files::check_name(name)?;
    let ct = files::check_content_type(content_type)?;
    files::upload(state, &s, id, version, name, &ct, &c.describe(), body).await
}

/// A file of a version (public): its row and its bytes.
pub async fn file(
    state: &AppState,
    id: i64,
    version: i64,
    name: &str,
) -> GovResult<(
    VersionFile,
    futures::stream::BoxStream<'static, Result<bytes::Bytes, dagr_engine::Error>>,
)> {
    files::download(state, &store(state), id, version, name).await
}

// ---- comments --------------------------------------------------------------------

async fn target(s: &TapisStore, cid: i64) -> GovResult<comments::Target> {
    let k = s.consultation(cid).await?;
    let v = s.version(k.document, k.version).await?;
    Ok(comments::Target {
        consultation: cid,
        document: k.document,
        version: k.version,
        paragraphs: v.paragraphs,
    })
}

/// A citizen comments while the consultation is open; the answer is a receipt.
pub async fn add_comment(
    state: &AppState,
    c: &Caller,
    cid: i64,
    n: &NewComment,
) -> GovResult<Submitted> {
    let subject = require_citizen(c)?;
    let s = store(state);
    let t = target(&s, cid).await?;
    let base = state.public_url();
    s.add_comment(&t, subject, n, |rid| format!("{base}/tapis/receipts/{rid}"))
        .await
}

/// The consultation's comments (its document's planner), filtered, by id.
pub async fn comments(
    state: &AppState,
    c: &Caller,
    cid: i64,
    f: &Filter,
) -> GovResult<Vec<CommentView>> {
    c.planner()?;
    let s = store(state);
    let k = s.consultation(cid).await?;
    own(&s, c, k.document).await?;
    s.comments(cid, f).await
}

/// The document of a comment, when the caller is its planner.
async fn own_comment(s: &TapisStore, c: &Caller, comment: i64) -> GovResult<super::store::DocRow> {
    c.planner()?;
    let doc = s.comment_document(comment).await?;
    own(s, c, doc).await
}

/// Split a comment into parts (its document's planner).
pub async fn split(
    state: &AppState,
    c: &Caller,
    comment: i64,
    sp: &Split,
) -> GovResult<Vec<CommentView>> {
    let s = store(state);
    own_comment(&s, c, comment).await?;
    let original = s.comment(comment).await?;
    let t = target(&s, original.consultation).await?;
    let mut parts = Vec::with_capacity(sp.parts.len());
    for (i, p) in sp.parts.iter().enumerate() {
        let anchor = match &p.anchor {
            Some(a) => Some(
                comments::check_anchor(a, &t.paragraphs).map_err(|e| match e {
                    GovError::Invalid { field, reason } => GovError::Invalid {
                        field: format!("parts[{i}].{field}"),
                        reason,
                    },
                    other => other,
                })?,
            ),
            None => None,
        };
        parts.push(comments::Part {
            text: p.text.clone(),
            anchor,
        });
    }
    s.split(comment, &Split { parts }, &c.describe()).await
}

/// Tag and group a comment or part (its document's planner).
pub async fn label(
    state: &AppState,
    c: &Caller,
    comment: i64,
    l: &Labels,
) -> GovResult<CommentView> {
    let s = store(state);
    own_comment(&s, c, comment).await?;
    s.label(comment, l).await
}

/// Answer a comment or part (its document's planner), once; before approval.
pub async fn answer_comment(
    state: &AppState,
    c: &Caller,
    comment: i64,
    a: &NewAnswer,
) -> GovResult<CommentView> {
    let s = store(state);
    let d = own_comment(&s, c, comment).await?;
    if d.stage >= Stage::Approved {
        return Err(GovError::Conflict(format!(
            "document {} is {}: its comments were answered before",
            d.id,
            d.stage.as_str()
        )));
    }
    let base = state.public_url();
    s.answer_comment(comment, &d.organisation, a, &c.describe(), |rid| {
        format!("{base}/tapis/receipts/{rid}")
    })
    .await
}

/// The standard answer blocks of the planner's municipality.
pub async fn answer_blocks(state: &AppState, c: &Caller) -> GovResult<Vec<AnswerBlock>> {
    let org = c.planner()?;
    store(state).answer_blocks(org).await
}

/// Add or replace a standard answer block of the planner's municipality.
pub async fn put_answer_block(
    state: &AppState,
    c: &Caller,
    b: &AnswerBlock,
) -> GovResult<AnswerBlock> {
    let org = c.planner()?;
    store(state).put_answer_block(org, b, &c.describe()).await
}

/// A receipt and the answer (its author only).
pub async fn receipt(state: &AppState, c: &Caller, rid: &str) -> GovResult<ReceiptView> {
    let subject = require_citizen(c)?;
    store(state).receipt(rid, subject).await
}

/// The report of a consultation without identities (its document's planner, or an
/// admin), as JSON bytes written page by page.
pub async fn report(
    state: &AppState,
    c: &Caller,
    cid: i64,
) -> GovResult<futures::stream::BoxStream<'static, Result<bytes::Bytes, GovError>>> {
    if !matches!(c, Caller::Admin) {
        c.planner()?;
    }
    let s = store(state);
    let k = s.consultation(cid).await?;
    if !matches!(c, Caller::Admin) {
        own(&s, c, k.document).await?;
    }
    s.report_stream(cid).await
}

/// [`report`] as an HTTP body (a failure half-way ends the body, and is logged).
pub async fn report_body(state: &AppState, c: &Caller, cid: i64) -> GovResult<axum::body::Body> {
    use futures::TryStreamExt;
    let stream = report(state, c, cid).await?;
    Ok(axum::body::Body::from_stream(stream.map_err(move |e| {
        tracing::error!(consultation = cid, error = %e, "a TAPIS report export broke off");
        std::io::Error::other(e.to_string())
    })))
}

//! Coordination with institutions: a request (conditions or an opinion) with a due date
//! from the rules and the calendar, e-mailed with a signed, expiring single-request link
//! where the institution answers without an account; the answer is written once; an
//! overdue flag; an extension with a reason; reminders once before the due date and once
//! when overdue.
//!
//! A link is `{request}.{expires}.{mac}`: the HMAC-SHA-256 of the request id and the expiry
//! under the module's key (`tapis_secrets`, made at first use, shared by the replicas),
//! base64url. A changed id, expiry or MAC fails the check (404, as for no such link); an
//! expired link is refused (403) before anything is read; an answered request takes no
//! second answer (409).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::calendar::Calendar;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::{Stage, text};
use super::rules::Deadline;
use super::store::{TapisStore, db, history_entry};
use crate::calendar::riga_date;

/// Longest note or answer text.
pub const MAX_TEXT: usize = 20_000;
/// Most requests of one document.
pub const MAX_REQUESTS: i64 = 500;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Conditions for drafting (at the `conditions` stage).
    Conditions,
    /// An opinion on the draft.
    Opinion,
}

impl RequestKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RequestKind::Conditions => "conditions",
            RequestKind::Opinion => "opinion",
        }
    }
}

/// An institution's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Agrees.
    Positive,
    /// Agrees with conditions.
    Conditional,
    /// Does not agree.
    Negative,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Positive => "positive",
            Verdict::Conditional => "conditional",
            Verdict::Negative => "negative",
        }
    }
}

/// A new request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The institution's code.
    pub institution: String,
    /// What is asked.
    pub kind: RequestKind,
    /// A note to the institution.
    #[serde(default)]
    pub note: String,
}

/// An extension of a request's due date.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// The new due date (`YYYY-MM-DD`), later than the current one.
    pub due_on: crate::calendar::Date,
    /// Why.
    pub reason: String,
}

/// An institution's answer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The verdict.
    pub verdict: Verdict,
    /// Its text.
    pub text: String,
    /// Who answers for the institution (name and position).
    pub responder: String,
}

/// A request as the planner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Request {
    /// Id.
    pub id: i64,
    /// The document.
    pub document: i64,
    /// The institution.
    pub institution: String,
    /// What is asked.
    pub kind: RequestKind,
    /// The note.
    pub note: String,
    /// Sent (RFC 3339).
    pub sent_at: String,
    /// Due (`YYYY-MM-DD`, Europe/Riga).
    pub due_on: String,
    /// Whether it is past due without an answer.
    pub overdue: bool,
    /// `sent` or `answered`.
    pub status: String,
    /// The verdict, once answered.
    pub verdict: Option<Verdict>,
    /// The answer's text.
    pub answer: Option<String>,
    /// Who answered.
    pub responder: Option<String>,
    /// When (RFC 3339).
    pub answered_at: Option<String>,
    /// Extensions: `{due_on, reason, by, at}`.
    #[schema(value_type = Vec<Object>)]
    pub extensions: Vec<serde_json::Value>,
    /// When the link stops working (RFC 3339).
    pub link_expires_at: String,
}

/// What the institution's link shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LinkView {
    /// The request (the note, due date, answer once given).
    pub request: Request,
    /// The document: id, type, title, stage, area.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// The institution's name.
    pub institution_name: String,
}

fn request_row(r: &AnyRow, today: NaiveDate) -> GovResult<Request> {
    let kind: String = r.try_get("kind").map_err(db)?;
    let status: String = r.try_get("status").map_err(db)?;
    let verdict: Option<String> = r.try_get("verdict").map_err(db)?;
    let due_on: String = r.try_get("due_on").map_err(db)?;
    let due: NaiveDate = due_on
        .parse()
        .map_err(|_| GovError::Store(crate::store::StoreError::Corrupt("due_on".into())))?;
    let extensions: String = r.try_get("extensions").map_err(db)?;
    Ok(Request {
        id: r.try_get("id").map_err(db)?,
        document: r.try_get("document").map_err(db)?,
        institution: r.try_get("institution").map_err(db)?,
        kind: if kind == "opinion" {
            RequestKind::Opinion
        } else {
            RequestKind::Conditions
        },
        note: r.try_get("note").map_err(db)?,
        sent_at: Time(r.try_get("sent_at").map_err(db)?).to_rfc3339(),
        overdue: status == "sent" && due < today,
        due_on,
        verdict: verdict.as_deref().and_then(|v| match v {
            "positive" => Some(Verdict::Positive),
            "conditional" => Some(Verdict::Conditional),
            "negative" => Some(Verdict::Negative),
            _ => None,
        }),
        status,
        answer: r.try_get("answer").map_err(db)?,
        responder: r.try_get("responder").map_err(db)?,
        answered_at: r
            .try_get::<Option<i64>, _>("answered_at")
            .map_err(db)?
            .map(|t| Time(t).to_rfc3339()),
        extensions: serde_json::from_str(&extensions).unwrap_or_default(),
        link_expires_at: Time(r.try_get("link_expires_at").map_err(db)?).to_rfc3339(),
    })
}

fn today() -> NaiveDate {
    riga_date(Time::now().0)
}

fn mac(key: &[u8], id: i64, expires: i64) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("tapis-link:{id}:{expires}").as_bytes());
    m
}

/// The link token of request `id` expiring at `expires`.
fn sign(key: &[u8], id: i64, expires: i64) -> String {
    let tag = mac(key, id, expires).finalize().into_bytes();
    format!("{id}.{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The request a token names, when its MAC holds (404 otherwise) and it has not expired
/// (403).
async fn verify(store: &TapisStore, token: &str) -> GovResult<i64> {
    check_token(&store.secret("links").await?, token, Time::now().0)
}

/// [`verify`] with the key and the time given.
fn check_token(key: &[u8], token: &str, now: i64) -> GovResult<i64> {
    let bad = || GovError::NotFound("no such coordination link".into());
    if token.len() > 200 {
        return Err(bad());
    }
    let mut parts = token.splitn(3, '.');
    let (Some(id), Some(exp), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (Ok(id), Ok(exp)) = (id.parse::<i64>(), exp.parse::<i64>()) else {
        return Err(bad());
    };
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
    mac(key, id, exp).verify_slice(&tag).map_err(|_| bad())?;
    if exp <= now {
        return Err(GovError::Forbidden(format!(
            "the link expired at {}; ask the planner for a new one",
            Time(exp).to_rfc3339()
        )));
    }
    Ok(id)
}

impl TapisStore {
    /// Send a request: the due date from `deadline` and the calendar, the link signed, the
    /// mail queued to the institution — one transaction with the history entry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_request(
        &self,
        doc: i64,
        stage: Stage,
        r: &NewRequest,
        email: &str,
        deadline: Deadline,
        link_days: u32,
        public_url: &str,
        actor: &str,
    ) -> GovResult<Request> {
        let note = if r.note.trim().is_empty() {
            String::new()
        } else {
            text("note", &r.note, MAX_TEXT)?
        };
        let cal = Calendar::load(&self.pool).await?;
        let now = Time::now();
        let due = deadline.due(&cal, riga_date(now.0));
        let expires = now.plus_days(i64::from(link_days)).0;
        let key = self.secret("links").await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The document's row first: requests of one document are written one at a time.
        let r0 =
            sqlx::query("UPDATE tapis_documents SET updated_at = $1 WHERE id = $2 AND stage = $3")
                .bind(now.0)
                .bind(doc)
                .bind(stage.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        if r0.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "document {doc} changed; read it again"
            )));
        }
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tapis_requests WHERE document = $1 AND institution = $2 AND kind = $3 AND status = 'sent'",
        )
        .bind(doc)
        .bind(&r.institution)
        .bind(r.kind.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if open > 0 {
            return Err(GovError::Conflict(format!(
                "{} has an unanswered {} request for document {doc}",
                r.institution,
                r.kind.as_str()
            )));
        }
        let all: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tapis_requests WHERE document = $1")
                .bind(doc)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if all >= MAX_REQUESTS {
            return Err(GovError::Conflict(format!(
                "document {doc} has {all} requests, the most one may have"
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tapis_requests (document, institution, kind, note, sent_at, due_on, \
             link_expires_at, status, extensions, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'sent', '[]', $8) RETURNING id",
        )
        .bind(doc)
        .bind(&r.institution)
        .bind(r.kind.as_str())
        .bind(&note)
        .bind(now.0)
        .bind(due.to_string())
        .bind(expires)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let token = sign(&key, id, expires);
        let body = format!(
            "Planning document {doc} asks for your {kind} by {due}.\n\n{note}\n\n\
             Answer here (no account needed; the link works once, until {until}):\n\
             {public_url}/tapis/respond/{token}\n\n\
             The same over the API: GET or POST {public_url}/api/v1/tapis/responses/{token}\n",
            kind = r.kind.as_str(),
            until = Time(expires).to_rfc3339(),
        );
        crate::outbox::enqueue_to(
            &mut tx,
            &format!("institution:{}", r.institution),
            email,
            &format!(
                "TAPIS: {} requested for document {doc}, due {due}",
                r.kind.as_str()
            ),
            &body,
        )
        .await?;
        history_entry(
            &mut tx,
            doc,
            None,
            stage,
            &format!("request {} {}", r.kind.as_str(), r.institution),
            actor,
            None,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.request(id).await
    }

    /// One request.
    pub(crate) async fn request(&self, id: i64) -> GovResult<Request> {
        let row = sqlx::query("SELECT * FROM tapis_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| GovError::NotFound(format!("no coordination request {id}")))?;
        request_row(&row, today())
    }

    /// The requests of a document, oldest first.
    pub(crate) async fn requests(&self, doc: i64) -> GovResult<Vec<Request>> {
        let rows = sqlx::query("SELECT * FROM tapis_requests WHERE document = $1 ORDER BY id")
            .bind(doc)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let t = today();
        rows.iter().map(|r| request_row(r, t)).collect()
    }

    /// The request a link names (404 for a bad link, 403 for an expired one).
    pub(crate) async fn verify_link(&self, token: &str) -> GovResult<i64> {
        verify(self, token).await
    }

    /// What a link shows (404 for a bad link, 403 for an expired one).
    pub(crate) async fn by_link(&self, token: &str) -> GovResult<LinkView> {
        let id = verify(self, token).await?;
        let request = self.request(id).await?;
        let doc = self.document(request.document).await?;
        let name: Option<String> =
            sqlx::query_scalar("SELECT name FROM tapis_institutions WHERE code = $1")
                .bind(&request.institution)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(LinkView {
            institution_name: name.unwrap_or_else(|| request.institution.clone()),
            document: serde_json::json!({
                "id": doc.id, "type": doc.doc_type, "title": doc.title, "stage": doc.stage,
                "organisation": doc.organisation, "area_m2": doc.area_m2,
            }),
            request,
        })
    }

    /// Answer through a link, once (409 for a second answer).
    /// Answer request `id` (its link verified by [`TapisStore::verify_link`]), once.
    pub(crate) async fn answer(&self, id: i64, a: &Answer) -> GovResult<Request> {
        let answer = text("text", &a.text, MAX_TEXT)?;
        let responder = text("responder", &a.responder, 200)?;
        let now = Time::now().0;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let r = sqlx::query(
            "UPDATE tapis_requests SET status = 'answered', verdict = $1, answer = $2, responder = $3, \
             answered_at = $4 WHERE id = $5 AND status = 'sent'",
        )
        .bind(a.verdict.as_str())
        .bind(&answer)
        .bind(&responder)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "request {id} was answered already; an answer is not changed"
            )));
        }
        let (doc, stage, institution): (i64, String, String) = {
            let row = sqlx::query(
                "SELECT r.document, d.stage, r.institution FROM tapis_requests r \
                 JOIN tapis_documents d ON d.id = r.document WHERE r.id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            (
                row.try_get(0).map_err(db)?,
                row.try_get(1).map_err(db)?,
                row.try_get(2).map_err(db)?,
            )
        };
        let stage = Stage::parse(&stage).unwrap_or(Stage::Initiated);
        history_entry(
            &mut tx,
            doc,
            None,
            stage,
            &format!("answer {institution}: {}", a.verdict.as_str()),
            &format!("{responder} ({institution})"),
            None,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.request(id).await
    }

    /// Extend an unanswered request's due date (later only), with the reason.
    pub(crate) async fn extend(
        &self,
        doc: i64,
        id: i64,
        e: &Extension,
        actor: &str,
    ) -> GovResult<Request> {
        let reason = text("reason", &e.reason, MAX_TEXT)?;
        let current = self.request(id).await?;
        if current.document != doc {
            return Err(GovError::NotFound(format!(
                "no coordination request {id} of document {doc}"
            )));
        }
        if current.status != "sent" {
            return Err(GovError::Conflict(format!("request {id} is answered")));
        }
        if e.due_on.to_string() <= current.due_on {
            return Err(GovError::Invalid {
                field: "due_on".into(),
                reason: format!("must be later than {}", current.due_on),
            });
        }
        let mut ext = current.extensions.clone();
        ext.push(
            serde_json::json!({"from": current.due_on, "due_on": e.due_on.to_string(),
            "reason": reason, "by": actor, "at": Time::now().to_rfc3339()}),
        );
        let r = sqlx::query(
            "UPDATE tapis_requests SET due_on = $1, extensions = $2 WHERE id = $3 AND status = 'sent' AND due_on = $4",
        )
        .bind(e.due_on.to_string())
        .bind(serde_json::Value::Array(ext).to_string())
        .bind(id)
        .bind(&current.due_on)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "request {id} changed; read it again"
            )));
        }
        self.request(id).await
    }

    /// Send the reminders due today (each once): to the institution `reminder_days`
    /// before the due date, and once when overdue. Returns how many were queued.
    pub async fn send_reminders(&self, reminder_days: u32, public_note: &str) -> GovResult<usize> {
        let t = today();
        let rows = sqlx::query(
            "SELECT r.*, i.email FROM tapis_requests r JOIN tapis_institutions i ON i.code = r.institution \
             WHERE r.status = 'sent' ORDER BY r.id LIMIT 10000",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut sent = 0;
        for row in &rows {
            let r = request_row(row, t)?;
            let due: NaiveDate = r.due_on.parse().unwrap_or(t);
            let stage = if r.overdue {
                "overdue"
            } else if (due - t).num_days() <= i64::from(reminder_days) {
                "due"
            } else {
                continue;
            };
            let key = format!("{}:{}:{stage}", r.id, r.due_on);
            let mut tx = self.pool.begin().await.map_err(db)?;
            let fresh = sqlx::query("INSERT INTO tapis_reminders (key, at) VALUES ($1, $2)")
                .bind(&key)
                .bind(Time::now().0)
                .execute(&mut *tx)
                .await;
            match fresh {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(db(e)),
            }
            let email: String = row.try_get("email").map_err(db)?;
            let text = if r.overdue {
                format!(
                    "The {} of request {} for planning document {} was due on {}. {public_note}",
                    r.kind.as_str(),
                    r.id,
                    r.document,
                    r.due_on
                )
            } else {
                format!(
                    "The {} of request {} for planning document {} is due on {}. {public_note}",
                    r.kind.as_str(),
                    r.id,
                    r.document,
                    r.due_on
                )
            };
            crate::outbox::enqueue_to(
                &mut tx,
                &format!("institution:{}", r.institution),
                &email,
                &format!("TAPIS reminder: request {} due {}", r.id, r.due_on),
                &text,
            )
            .await?;
            tx.commit().await.map_err(db)?;
            sent += 1;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_signed() {
        let k = [7u8; 32];
        let t = sign(&k, 42, 1_900_000_000_000);
        let mut parts = t.splitn(3, '.');
        let (id, exp, tag) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!((id, exp), ("42", "1900000000000"));
        let tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        assert!(mac(&k, 42, 1_900_000_000_000).verify_slice(&tag).is_ok());
        assert!(mac(&k, 43, 1_900_000_000_000).verify_slice(&tag).is_err());
        assert!(mac(&k, 42, 1_900_000_000_001).verify_slice(&tag).is_err());
        assert!(
            mac(&[8u8; 32], 42, 1_900_000_000_000)
                .verify_slice(&tag)
                .is_err()
        );
    }

    #[test]
    fn tokens_are_refused_when_changed_or_expired() {
        let k = [7u8; 32];
        let t = sign(&k, 42, 2_000);
        assert_eq!(check_token(&k, &t, 1_000).unwrap(), 42);
        // Expired: 403, before anything is read.
        assert!(matches!(
            check_token(&k, &t, 2_000),
            Err(GovError::Forbidden(_))
        ));
        // Another id, a later expiry, a changed MAC, garbage: 404.
        let (_, rest) = t.split_once('.').unwrap();
        for bad in [
            format!("43.{rest}"),
            t.replacen(".2000.", ".9000.", 1),
            format!("{}A", &t[..t.len() - 1]),
            "x".into(),
            "1.2.%%%".into(),
            "9".repeat(300),
        ] {
            assert!(
                matches!(check_token(&k, &bad, 1_000), Err(GovError::NotFound(_))),
                "{bad}"
            );
        }
    }
}

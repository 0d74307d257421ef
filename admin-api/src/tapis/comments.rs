//! Public comments during a consultation, their receipts, the officers' work on them and
//! the report.
//!
//! - **Originals are immutable.** A citizen (a data subject, signed in through the subject
//!   identity seam) comments on a paragraph of the consulted version, a point or a polygon
//!   while the consultation is open (checked under the consultation's row lock, so no
//!   comment slips in after the scheduler closed it). The text, anchor, author, time and
//!   hash are written once and never updated.
//! - **Receipts.** Each comment gets a receipt: an unguessable id, the time, the SHA-256 of
//!   the comment's canonical form ([`canonical`]) and DAGR's HMAC-SHA-256 over id, time and
//!   hash under the module's `receipts` key. `GET /receipts/{id}` (the author) checks both
//!   against the stored original and shows the answer.
//! - **Officers' work** is beside the original: tags, a group, a split into parts (each a
//!   piece of the original's text, answered on its own), and the answer (a decision and a
//!   text, from standard answer blocks and free text), written once. A comment is answered
//!   when it, or every one of its parts, has an answer; its author is then told (inbox and
//!   e-mail) with the receipt's address.
//! - **The report** lists every comment with its parts and answers, numbered, without any
//!   identity.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::auth::to_hex;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::geometry;
use super::model::text;
use super::store::{TapisStore, db};

/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 10_000;
/// Longest answer, in characters.
pub const MAX_ANSWER: usize = 20_000;
/// Most comments of one person in one consultation.
pub const MAX_PER_PERSON: i64 = 200;
/// Most comments (originals and parts) of one consultation.
pub const MAX_PER_CONSULTATION: i64 = 200_000;
/// Most parts of a split.
pub const MAX_PARTS: usize = 50;
/// Most tags of a comment; longest tag.
pub const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 60;
/// Most comments one list call returns.
pub const MAX_LIST: i64 = 1_000;
/// The subject line of what TAPIS tells a person about their comment: it names neither the
/// document nor the comment, since the operator's outbox list shows subject lines.
const PERSON_SUBJECT: &str =
    "Teritorijas plānošana: jauns paziņojums / Territorial planning: a new message";

/// Where a comment points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Anchor {
    /// A paragraph of the consulted version, by its id.
    Paragraph {
        /// The paragraph's id.
        paragraph: String,
    },
    /// A point on the map, `[longitude, latitude]` (WGS 84).
    Point {
        /// `[lon, lat]`.
        point: [f64; 2],
    },
    /// An area on the map: an RFC 7946 Polygon.
    Polygon {
        /// The polygon.
        #[schema(value_type = Object)]
        polygon: Value,
    },
}

impl Anchor {
    fn paragraph(&self) -> Option<&str> {
        match self {
            Anchor::Paragraph { paragraph } => Some(paragraph),
            _ => None,
        }
    }
}

/// A new comment.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The text.
    pub text: String,
    /// What it is about.
    pub anchor: Anchor,
}

/// A receipt: what the author keeps.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The receipt's id: the author's way back to the answer (`GET /receipts/{id}`).
    pub id: String,
    /// When the comment was received (RFC 3339).
    pub at: String,
    /// SHA-256 (hex) of the comment's canonical form: consultation, document, version,
    /// time, anchor and text.
    pub hash: String,
    /// DAGR's signature (HMAC-SHA-256, base64url) over the id, the time and the hash.
    pub signature: String,
}

/// A comment as its author submitted it, with its receipt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    /// The comment's id.
    pub id: i64,
    /// The consultation.
    pub consultation: i64,
    /// The receipt.
    pub receipt: Receipt,
}

/// The answer to a comment or a part.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnswerView {
    /// `accepted`, `partly_accepted`, `rejected` or `noted`.
    pub decision: String,
    /// The text.
    pub text: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A comment or a part, as the officers see it (no author).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CommentView {
    /// Id.
    pub id: i64,
    /// The consultation.
    pub consultation: i64,
    /// For a part: the comment it was split from.
    pub parent: Option<i64>,
    /// The text (for a part: its piece of the original).
    pub text: String,
    /// What it is about.
    pub anchor: Anchor,
    /// Received (RFC 3339; a part: when it was made).
    pub created_at: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The group it was put in.
    pub group: Option<String>,
    /// For an original: split into parts (answered through them).
    pub split: bool,
    /// The answer.
    pub answer: Option<AnswerView>,
}

/// What the author sees of their comment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    /// The receipt.
    pub receipt: Receipt,
    /// The receipt's signature and hash match the stored comment.
    pub verified: bool,
    /// The consultation.
    pub consultation: i64,
    /// The document.
    pub document: i64,
    /// `received` or `answered`.
    pub status: String,
    /// The comment's text.
    pub text: String,
    /// What it was about.
    pub anchor: Anchor,
    /// The answer (for a split comment: its parts' answers, in order, in `parts`).
    pub answer: Option<AnswerView>,
    /// A split comment's parts with their answers.
    pub parts: Vec<CommentView>,
}

/// A split: the parts, each a piece of the original's text.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// 2 to [`MAX_PARTS`] parts.
    pub parts: Vec<Part>,
}

/// One part of a split.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// A piece of the original's text (verbatim).
    pub text: String,
    /// Its anchor (default: the original's).
    #[serde(default)]
    pub anchor: Option<Anchor>,
}

/// Tags and group of a comment or part (absent: unchanged; `group: null` clears it).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// The tags (replacing the old ones).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// The group; `null` for none.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub group: Option<Option<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// The decisions an answer takes.
pub const DECISIONS: [&str; 4] = ["accepted", "partly_accepted", "rejected", "noted"];

/// An answer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAnswer {
    /// `accepted`, `partly_accepted`, `rejected` or `noted`.
    pub decision: String,
    /// Free text (after the blocks').
    #[serde(default)]
    pub text: Option<String>,
    /// Codes of the municipality's standard answer blocks, their texts first, in order.
    #[serde(default)]
    pub blocks: Vec<String>,
}

/// A standard answer block.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerBlock {
    /// Its code (1–64 of `A-Z a-z 0-9 . _ -`).
    #[serde(default)]
    pub code: String,
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
}

/// Which comments to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `answered` or `unanswered` (what still needs an answer: unsplit originals and parts).
    pub status: Option<String>,
    /// Having this tag.
    pub tag: Option<String>,
    /// In this group.
    pub group: Option<String>,
    /// On this paragraph.
    pub paragraph: Option<String>,
    /// Containing this text (case-insensitive).
    pub q: Option<String>,
    /// Ids after this one (the last id of the previous page).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1 000).
    pub limit: Option<i64>,
}

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn corrupt(what: impl Into<String>) -> GovError {
    GovError::Store(crate::store::StoreError::Corrupt(what.into()))
}

/// Longest stored anchor (a polygon's JSON), in bytes.
pub const MAX_ANCHOR_BYTES: usize = 64 * 1024;

/// Check an anchor against the consulted version's paragraphs; the anchor as stored (a
/// polygon rebuilt from its type and rings only, at most [`MAX_ANCHOR_BYTES`]).
pub fn check_anchor(
    a: &Anchor,
    paragraphs: &[super::consultation::Paragraph],
) -> GovResult<Anchor> {
    match a {
        Anchor::Paragraph { paragraph } => {
            if paragraphs.iter().any(|p| &p.id == paragraph) {
                Ok(a.clone())
            } else {
                Err(invalid(
                    "anchor.paragraph",
                    format!(
                        "the consulted version has no paragraph `{}`",
                        paragraph.chars().take(80).collect::<String>()
                    ),
                ))
            }
        }
        Anchor::Point { point: [lon, lat] } => {
            let (w, s, e, n) = geometry::LATVIA;
            if lon.is_finite() && lat.is_finite() && (w..=e).contains(lon) && (s..=n).contains(lat)
            {
                Ok(a.clone())
            } else {
                Err(invalid(
                    "anchor.point",
                    format!("[longitude, latitude] in Latvia ({w}–{e} E, {s}–{n} N)"),
                ))
            }
        }
        Anchor::Polygon { polygon } => {
            let only_shape = polygon
                .as_object()
                .is_some_and(|o| o.keys().all(|k| k == "type" || k == "coordinates"));
            if polygon.get("type").and_then(Value::as_str) != Some("Polygon") || !only_shape {
                return Err(invalid(
                    "anchor.polygon",
                    "an RFC 7946 Polygon: `type` and `coordinates` only",
                ));
            }
            geometry::parse(polygon).map_err(|e| invalid("anchor.polygon", e.0))?;
            let rebuilt = Anchor::Polygon {
                polygon: serde_json::json!({"type": "Polygon", "coordinates": polygon["coordinates"]}),
            };
            if crate::store::to_json(&rebuilt).len() > MAX_ANCHOR_BYTES {
                return Err(invalid(
                    "anchor.polygon",
                    format!("at most {MAX_ANCHOR_BYTES} bytes"),
                ));
            }
            Ok(rebuilt)
        }
    }
}

/// The canonical form of a comment that its receipt's hash covers.
pub fn canonical(
    consultation: i64,
    document: i64,
    version: i64,
    at: i64,
    anchor: &Anchor,
    text: &str,
) -> String {
    format!(
        "dagr-tapis-comment/1\nconsultation {consultation}\ndocument {document}\nversion {version}\nat {at}\nanchor {}\ntext {text}",
        serde_json::to_string(anchor).unwrap_or_default()
    )
}

fn sign(key: &[u8], id: &str, at: i64, hash: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("tapis-receipt:{id}:{at}:{hash}").as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

fn verify(key: &[u8], id: &str, at: i64, hash: &str, signature: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("tapis-receipt:{id}:{at}:{hash}").as_bytes());
    m.verify_slice(&tag).is_ok()
}

fn tags_of(raw: &str) -> GovResult<Vec<String>> {
    serde_json::from_str(raw).map_err(|e| corrupt(format!("comment tags: {e}")))
}

fn anchor_of(raw: &str) -> GovResult<Anchor> {
    serde_json::from_str(raw).map_err(|e| corrupt(format!("comment anchor: {e}")))
}

pub(crate) fn view(r: &AnyRow) -> GovResult<CommentView> {
    let answer = match r.try_get::<Option<String>, _>("decision").map_err(db)? {
        Some(decision) => Some(AnswerView {
            decision,
            text: r
                .try_get::<Option<String>, _>("answer")
                .map_err(db)?
                .unwrap_or_default(),
            at: Time(
                r.try_get::<Option<i64>, _>("answered_at")
                    .map_err(db)?
                    .unwrap_or(0),
            )
            .to_rfc3339(),
        }),
        None => None,
    };
    Ok(CommentView {
        id: r.try_get("id").map_err(db)?,
        consultation: r.try_get("consultation").map_err(db)?,
        parent: r.try_get("parent").map_err(db)?,
        text: r.try_get("text").map_err(db)?,
        anchor: anchor_of(&r.try_get::<String, _>("anchor").map_err(db)?)?,
        created_at: Time(r.try_get("created_at").map_err(db)?).to_rfc3339(),
        tags: tags_of(&r.try_get::<String, _>("tags").map_err(db)?)?,
        group: r.try_get("group_name").map_err(db)?,
        split: r
            .try_get::<Option<i64>, _>("split_at")
            .map_err(db)?
            .is_some(),
        answer,
    })
}

/// The columns [`view`] reads.
pub(crate) const VIEW_COLUMNS: &str = "id, consultation, parent, text, anchor, created_at, tags, group_name, \
     split_at, decision, answer, answered_at";

fn random_id() -> GovResult<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| corrupt(format!("no randomness: {e}")))?;
    Ok(to_hex(&b))
}

/// Check a tag or group name.
fn label(field: &str, v: &str) -> GovResult<String> {
    let v = text(field, v, MAX_TAG)?;
    if v.contains('\n') || v.contains('\r') {
        return Err(invalid(field, "one line"));
    }
    Ok(v)
}

/// Check a standard answer block's code.
pub fn check_code(code: &str) -> GovResult<()> {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid("code", "1 to 64 of A-Z, a-z, 0-9, ., _ and -"))
    }
}

/// The consultation a comment is written to: its document, version and the version's
/// paragraphs.
pub(crate) struct Target {
    pub(crate) consultation: i64,
    pub(crate) document: i64,
    pub(crate) version: i64,
    pub(crate) paragraphs: Vec<super::consultation::Paragraph>,
}

impl TapisStore {
    /// Write a citizen's comment and its receipt, while the consultation is open (409
    /// otherwise, and after [`MAX_PER_PERSON`] comments of theirs).
    pub(crate) async fn add_comment(
        &self,
        t: &Target,
        subject: &str,
        n: &NewComment,
        receipt_link: impl Fn(&str) -> String,
    ) -> GovResult<Submitted> {
        let body = text("text", &n.text, MAX_COMMENT)?;
        let anchor = check_anchor(&n.anchor, &t.paragraphs)?;
        let key = self.secret("receipts").await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = Time::now();
        // The consultation's row lock: the scheduler's close waits for this, or this sees
        // it closed.
        let r = sqlx::query(
            "UPDATE tapis_consultations SET status = status \
             WHERE id = $1 AND status = 'open' AND starts_at <= $2 AND ends_at > $2",
        )
        .bind(t.consultation)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "consultation {} is not open: comments are taken between its start and its end",
                t.consultation
            )));
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN subject = $2 THEN 1 ELSE 0 END), 0) AS mine \
             FROM tapis_comments WHERE consultation = $1",
        )
        .bind(t.consultation)
        .bind(subject)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let (all, mine): (i64, i64) = (
            row.try_get("n").map_err(db)?,
            row.try_get("mine").map_err(db)?,
        );
        if mine >= MAX_PER_PERSON {
            return Err(GovError::Conflict(format!(
                "you have sent {MAX_PER_PERSON} comments to this consultation, the most one may"
            )));
        }
        if all >= MAX_PER_CONSULTATION {
            return Err(GovError::Conflict(format!(
                "consultation {} has {MAX_PER_CONSULTATION} comments, the most it takes",
                t.consultation
            )));
        }
        let rid = random_id()?;
        let hash = to_hex(&Sha256::digest(
            canonical(t.consultation, t.document, t.version, now.0, &anchor, &body).as_bytes(),
        ));
        let signature = sign(&key, &rid, now.0, &hash);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tapis_comments (consultation, document, parent, subject, text, anchor, \
             paragraph, receipt, hash, signature, created_at, tags, folded) \
             VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9, $10, '[]', $11) RETURNING id",
        )
        .bind(t.consultation)
        .bind(t.document)
        .bind(subject)
        .bind(&body)
        .bind(crate::store::to_json(&anchor))
        .bind(anchor.paragraph())
        .bind(&rid)
        .bind(&hash)
        .bind(&signature)
        .bind(now.0)
        .bind(super::help::fold(&body))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        // The author's own copy of the receipt, outside the comment's row: in their inbox
        // and, when they gave an address, by e-mail.
        crate::outbox::inbox::notify(
            &mut tx,
            &format!("subject:{subject}"),
            "tapis",
            PERSON_SUBJECT,
            &format!(
                "Your comment was received.\nReceipt {rid}\nTime {}\nSHA-256 {hash}\nDAGR signature {signature}\n\
                 Keep this message: the receipt's page shows the answer and checks the comment against it.",
                now.to_rfc3339()
            ),
            Some(&receipt_link(&rid)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(Submitted {
            id,
            consultation: t.consultation,
            receipt: Receipt {
                id: rid,
                at: now.to_rfc3339(),
                hash,
                signature,
            },
        })
    }

    /// A comment or part row.
    async fn comment_row(&self, id: i64) -> GovResult<AnyRow> {
        sqlx::query("SELECT * FROM tapis_comments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| GovError::NotFound(format!("no comment {id}")))
    }

    /// The document of a comment or part (for the caller's check).
    pub(crate) async fn comment_document(&self, id: i64) -> GovResult<i64> {
        self.comment_row(id).await?.try_get("document").map_err(db)
    }

    /// One comment or part.
    pub(crate) async fn comment(&self, id: i64) -> GovResult<CommentView> {
        view(&self.comment_row(id).await?)
    }

    /// Comments and parts of a consultation, by id, filtered.
    pub(crate) async fn comments(&self, cid: i64, f: &Filter) -> GovResult<Vec<CommentView>> {
        let limit = f.limit.unwrap_or(100);
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(invalid("limit", format!("1 to {MAX_LIST}")));
        }
        let status = match f.status.as_deref() {
            None | Some("") => 0,
            Some("unanswered") => 1,
            Some("answered") => 2,
            Some(_) => return Err(invalid("status", "`answered` or `unanswered`")),
        };
        let q =
            f.q.as_deref()
                .map(|q| {
                    if q.chars().count() > 200 {
                        Err(invalid("q", "at most 200 characters"))
                    } else {
                        Ok(format!(
                            "%{}%",
                            super::help::fold(q)
                                .replace('\\', "\\\\")
                                .replace('%', "\\%")
                                .replace('_', "\\_")
                        ))
                    }
                })
                .transpose()?
                .unwrap_or_default();
        let tag = f
            .tag
            .as_deref()
            .map(|t| serde_json::to_string(&t.trim().to_lowercase()).unwrap_or_default())
            .map(|t| {
                format!(
                    "%{}%",
                    t.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            })
            .unwrap_or_default();
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM tapis_comments WHERE consultation = $1 AND id > $2 \
             AND ($3 = 0 OR ($3 = 1 AND split_at IS NULL AND decision IS NULL) \
                  OR ($3 = 2 AND decision IS NOT NULL)) \
             AND ($4 = '' OR tags LIKE $4 ESCAPE '\\') \
             AND ($5 = '' OR group_name = $5) \
             AND ($6 = '' OR paragraph = $6) \
             AND ($7 = '' OR folded LIKE $7 ESCAPE '\\') \
             ORDER BY id LIMIT $8"
        );
        let rows = sqlx::query(&sql)
            .bind(cid)
            .bind(f.after.unwrap_or(0))
            .bind(status)
            .bind(&tag)
            .bind(f.group.as_deref().unwrap_or(""))
            .bind(f.paragraph.as_deref().unwrap_or(""))
            .bind(&q)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(view).collect()
    }

    /// Split an unanswered, unsplit original into parts, each a verbatim piece of its
    /// text.
    pub(crate) async fn split(
        &self,
        id: i64,
        s: &Split,
        actor: &str,
    ) -> GovResult<Vec<CommentView>> {
        if s.parts.len() < 2 || s.parts.len() > MAX_PARTS {
            return Err(invalid("parts", format!("2 to {MAX_PARTS} parts")));
        }
        let row = self.comment_row(id).await?;
        let original: String = row.try_get("text").map_err(db)?;
        if row
            .try_get::<Option<i64>, _>("parent")
            .map_err(db)?
            .is_some()
        {
            return Err(GovError::Conflict(format!(
                "{id} is a part: split the comment it came from"
            )));
        }
        let anchor: String = row.try_get("anchor").map_err(db)?;
        let (cid, doc): (i64, i64) = (
            row.try_get("consultation").map_err(db)?,
            row.try_get("document").map_err(db)?,
        );
        let mut parts = Vec::with_capacity(s.parts.len());
        for (i, p) in s.parts.iter().enumerate() {
            let t = text(&format!("parts[{i}].text"), &p.text, MAX_COMMENT)?;
            if !original.contains(&t) {
                return Err(invalid(
                    &format!("parts[{i}].text"),
                    "a part is a verbatim piece of the comment's text",
                ));
            }
            let a = match &p.anchor {
                Some(a) => {
                    // Paragraph ids are checked against the consulted version by the
                    // service; here the shape.
                    crate::store::to_json(a)
                }
                None => anchor.clone(),
            };
            let para = p
                .anchor
                .as_ref()
                .map(|a| a.paragraph().map(str::to_owned))
                .unwrap_or_else(|| row.try_get("paragraph").ok().flatten());
            parts.push((t, a, para));
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = Time::now().0;
        let r = sqlx::query(
            "UPDATE tapis_comments SET split_at = $1 \
             WHERE id = $2 AND split_at IS NULL AND decision IS NULL AND parent IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "comment {id} is split or answered already"
            )));
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tapis_comments WHERE consultation = $1")
                .bind(cid)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if count + parts.len() as i64 > MAX_PER_CONSULTATION {
            return Err(GovError::Conflict(format!(
                "consultation {cid} would hold more than {MAX_PER_CONSULTATION} comments and parts"
            )));
        }
        let mut ids = Vec::with_capacity(parts.len());
        for (t, a, para) in &parts {
            let pid: i64 = sqlx::query_scalar(
                "INSERT INTO tapis_comments (consultation, document, parent, subject, text, anchor, \
                 paragraph, created_at, tags, answered_by, folded) \
                 VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, '[]', NULL, $8) RETURNING id",
            )
            .bind(cid)
            .bind(doc)
            .bind(id)
            .bind(t)
            .bind(a)
            .bind(para.as_deref())
            .bind(now)
            .bind(super::help::fold(t))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            ids.push(pid);
        }
        tx.commit().await.map_err(db)?;
        tracing::info!(
            comment = id,
            parts = ids.len(),
            actor,
            "TAPIS comment split"
        );
        let mut out = Vec::with_capacity(ids.len());
        for pid in ids {
            out.push(self.comment(pid).await?);
        }
        Ok(out)
    }

    /// Set tags and group of an unsplit original or a part.
    pub(crate) async fn label(&self, id: i64, l: &Labels) -> GovResult<CommentView> {
        let c = self.comment(id).await?;
        if c.split {
            return Err(GovError::Conflict(format!(
                "comment {id} is split: tag and group its parts"
            )));
        }
        let tags = match &l.tags {
            Some(t) => {
                if t.len() > MAX_TAGS {
                    return Err(invalid("tags", format!("at most {MAX_TAGS}")));
                }
                let mut out: Vec<String> = Vec::with_capacity(t.len());
                for (i, tag) in t.iter().enumerate() {
                    let v = label(&format!("tags[{i}]"), tag)?.to_lowercase();
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                out
            }
            None => c.tags.clone(),
        };
        let group = match &l.group {
            Some(Some(g)) => Some(label("group", g)?),
            Some(None) => None,
            None => c.group.clone(),
        };
        sqlx::query("UPDATE tapis_comments SET tags = $1, group_name = $2 WHERE id = $3")
            .bind(crate::store::to_json(&tags))
            .bind(group.as_deref())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.comment(id).await
    }

    /// The municipality's standard answer blocks.
    pub(crate) async fn answer_blocks(&self, org: &str) -> GovResult<Vec<AnswerBlock>> {
        let rows = sqlx::query(
            "SELECT code, title, text FROM tapis_answer_blocks WHERE organisation = $1 ORDER BY code",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(AnswerBlock {
                    code: r.try_get("code").map_err(db)?,
                    title: r.try_get("title").map_err(db)?,
                    text: r.try_get("text").map_err(db)?,
                })
            })
            .collect()
    }

    /// Add or replace a standard answer block.
    pub(crate) async fn put_answer_block(
        &self,
        org: &str,
        b: &AnswerBlock,
        actor: &str,
    ) -> GovResult<AnswerBlock> {
        check_code(&b.code)?;
        let title = text("title", &b.title, 200)?;
        let body = text("text", &b.text, MAX_ANSWER)?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tapis_answer_blocks WHERE organisation = $1 AND code <> $2",
        )
        .bind(org)
        .bind(&b.code)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        if count >= 500 {
            return Err(GovError::Conflict(
                "a municipality keeps at most 500 standard answer blocks".into(),
            ));
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM tapis_answer_blocks WHERE organisation = $1 AND code = $2")
            .bind(org)
            .bind(&b.code)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO tapis_answer_blocks (organisation, code, title, text, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org)
        .bind(&b.code)
        .bind(&title)
        .bind(&body)
        .bind(actor)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(AnswerBlock {
            code: b.code.clone(),
            title,
            text: body,
        })
    }

    /// Answer an unsplit original or a part, once; when that completes a comment's answer,
    /// tell its author (inbox and e-mail, in the same transaction).
    pub(crate) async fn answer_comment(
        &self,
        id: i64,
        org: &str,
        a: &NewAnswer,
        actor: &str,
        receipt_link: impl Fn(&str) -> String,
    ) -> GovResult<CommentView> {
        if !DECISIONS.contains(&a.decision.as_str()) {
            return Err(invalid("decision", DECISIONS.join(", ")));
        }
        if a.blocks.len() > 20 {
            return Err(invalid("blocks", "at most 20"));
        }
        let mut pieces = Vec::new();
        if !a.blocks.is_empty() {
            let blocks = self.answer_blocks(org).await?;
            for code in &a.blocks {
                let b = blocks.iter().find(|b| &b.code == code).ok_or_else(|| {
                    invalid(
                        "blocks",
                        format!(
                            "no standard answer block `{}`",
                            code.chars().take(64).collect::<String>()
                        ),
                    )
                })?;
                pieces.push(b.text.clone());
            }
        }
        if let Some(t) = a.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            pieces.push(text("text", t, MAX_ANSWER)?);
        }
        let answer = pieces.join("\n\n");
        if answer.is_empty() {
            return Err(invalid("text", "an answer has a text or standard blocks"));
        }
        if answer.chars().count() > MAX_ANSWER {
            return Err(invalid(
                "text",
                format!("the answer is at most {MAX_ANSWER} characters"),
            ));
        }
        let c = self.comment(id).await?;
        if c.split {
            return Err(GovError::Conflict(format!(
                "comment {id} is split: answer its parts"
            )));
        }
        let original = c.parent.unwrap_or(id);
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = Time::now().0;
        // The original's row first: answers to its parts are counted one after another, so
        // the last answer sees all the others (PostgreSQL's read committed included).
        sqlx::query("UPDATE tapis_comments SET notified_at = notified_at WHERE id = $1")
            .bind(original)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let r = sqlx::query(
            "UPDATE tapis_comments SET decision = $1, answer = $2, answered_by = $3, answered_at = $4 \
             WHERE id = $5 AND decision IS NULL AND split_at IS NULL",
        )
        .bind(&a.decision)
        .bind(&answer)
        .bind(actor)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "comment {id} is answered already (answers are not changed) or was split"
            )));
        }
        // Is the original now wholly answered?
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tapis_comments WHERE parent = $1 AND decision IS NULL",
        )
        .bind(original)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let tell = open == 0
            && sqlx::query(
                "UPDATE tapis_comments SET notified_at = $1 WHERE id = $2 AND notified_at IS NULL",
            )
            .bind(now)
            .bind(original)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
                == 1;
        if tell {
            let row =
                sqlx::query("SELECT subject, receipt, document FROM tapis_comments WHERE id = $1")
                    .bind(original)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
            let subject: Option<String> = row.try_get("subject").map_err(db)?;
            let receipt: Option<String> = row.try_get("receipt").map_err(db)?;
            let doc: i64 = row.try_get("document").map_err(db)?;
            if let (Some(subject), Some(receipt)) = (subject, receipt) {
                crate::outbox::inbox::notify(
                    &mut tx,
                    &format!("subject:{subject}"),
                    "tapis",
                    PERSON_SUBJECT,
                    &format!(
                        "The municipality answered your comment {original} on planning document {doc}. \
                         Your receipt {receipt} leads to the answer."
                    ),
                    Some(&receipt_link(&receipt)),
                )
                .await?;
            }
        }
        tx.commit().await.map_err(db)?;
        self.comment(id).await
    }

    /// A receipt and what became of the comment, for its author only (404 for anyone else:
    /// a receipt id says nothing to others).
    pub(crate) async fn receipt(&self, rid: &str, subject: &str) -> GovResult<ReceiptView> {
        let not_found = || {
            GovError::NotFound(format!(
                "no receipt `{}` of yours",
                rid.chars().take(40).collect::<String>()
            ))
        };
        if rid.len() != 32 || !rid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let row = sqlx::query(
            "SELECT c.*, k.version AS version FROM tapis_comments c \
             JOIN tapis_consultations k ON k.id = c.consultation WHERE c.receipt = $1",
        )
        .bind(rid)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
        if row
            .try_get::<Option<String>, _>("subject")
            .map_err(db)?
            .as_deref()
            != Some(subject)
        {
            return Err(not_found());
        }
        let c = view(&row)?;
        let at: i64 = row.try_get("created_at").map_err(db)?;
        let hash: String = row
            .try_get::<Option<String>, _>("hash")
            .map_err(db)?
            .unwrap_or_default();
        let signature: String = row
            .try_get::<Option<String>, _>("signature")
            .map_err(db)?
            .unwrap_or_default();
        let document: i64 = row.try_get("document").map_err(db)?;
        let version: i64 = row.try_get("version").map_err(db)?;
        let key = self.secret("receipts").await?;
        let recomputed = to_hex(&Sha256::digest(
            canonical(c.consultation, document, version, at, &c.anchor, &c.text).as_bytes(),
        ));
        let verified = recomputed == hash && verify(&key, rid, at, &hash, &signature);
        let parts = if c.split {
            let rows = sqlx::query(&format!(
                "SELECT {VIEW_COLUMNS} FROM tapis_comments WHERE parent = $1 ORDER BY id"
            ))
            .bind(c.id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            rows.iter().map(view).collect::<GovResult<Vec<_>>>()?
        } else {
            vec![]
        };
        let answered = if c.split {
            !parts.is_empty() && parts.iter().all(|p| p.answer.is_some())
        } else {
            c.answer.is_some()
        };
        Ok(ReceiptView {
            receipt: Receipt {
                id: rid.to_owned(),
                at: Time(at).to_rfc3339(),
                hash,
                signature,
            },
            verified,
            consultation: c.consultation,
            document,
            status: if answered { "answered" } else { "received" }.into(),
            text: c.text.clone(),
            anchor: c.anchor.clone(),
            answer: c.answer.clone(),
            parts,
        })
    }

    /// Comments and parts of a document's consultations still without an answer.
    pub(crate) async fn unanswered(&self, doc: i64) -> GovResult<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM tapis_comments WHERE document = $1 AND split_at IS NULL \
             AND decision IS NULL",
        )
        .bind(doc)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_by_shape() {
        let a: Anchor = serde_json::from_str(r#"{"paragraph": "p-1"}"#).unwrap();
        assert_eq!(
            a,
            Anchor::Paragraph {
                paragraph: "p-1".into()
            }
        );
        let a: Anchor = serde_json::from_str(r#"{"point": [24.1, 56.95]}"#).unwrap();
        assert_eq!(
            a,
            Anchor::Point {
                point: [24.1, 56.95]
            }
        );
        assert!(serde_json::from_str::<Anchor>(r#"{"point": [24.1]}"#).is_err());
        assert!(serde_json::from_str::<Anchor>(r#"{"nothing": 1}"#).is_err());
    }

    #[test]
    fn anchors_are_checked() {
        let paras = vec![super::super::consultation::Paragraph {
            id: "1.1".into(),
            text: "x".into(),
        }];
        assert!(
            check_anchor(
                &Anchor::Paragraph {
                    paragraph: "1.1".into()
                },
                &paras
            )
            .is_ok()
        );
        assert!(
            check_anchor(
                &Anchor::Paragraph {
                    paragraph: "9".into()
                },
                &paras
            )
            .is_err()
        );
        assert!(
            check_anchor(
                &Anchor::Point {
                    point: [24.1, 56.95]
                },
                &paras
            )
            .is_ok()
        );
        assert!(
            check_anchor(
                &Anchor::Point {
                    point: [2.35, 48.85]
                },
                &paras
            )
            .is_err()
        );
        assert!(
            check_anchor(
                &Anchor::Point {
                    point: [f64::NAN, 56.0]
                },
                &paras
            )
            .is_err()
        );
        let open = serde_json::json!({"type": "Polygon", "coordinates": [[[24.1, 56.9], [24.2, 56.9], [24.2, 57.0]]]});
        assert!(check_anchor(&Anchor::Polygon { polygon: open }, &paras).is_err());
        let multi = serde_json::json!({"type": "MultiPolygon", "coordinates": []});
        assert!(check_anchor(&Anchor::Polygon { polygon: multi }, &paras).is_err());
    }

    #[test]
    fn receipts_sign_what_they_cover() {
        let key = b"k".repeat(32);
        let a = Anchor::Point {
            point: [24.1, 56.95],
        };
        let h = to_hex(&Sha256::digest(
            canonical(1, 2, 3, 4, &a, "text").as_bytes(),
        ));
        let s = sign(&key, "ab", 4, &h);
        assert!(verify(&key, "ab", 4, &h, &s));
        assert!(!verify(&key, "ac", 4, &h, &s));
        assert!(!verify(&key, "ab", 5, &h, &s));
        let other = to_hex(&Sha256::digest(
            canonical(1, 2, 3, 4, &a, "texT").as_bytes(),
        ));
        assert!(!verify(&key, "ab", 4, &other, &s));
        assert!(!verify(b"other key", "ab", 4, &h, &s));
        assert!(!verify(&key, "ab", 4, &h, "not base64!"));
    }
}

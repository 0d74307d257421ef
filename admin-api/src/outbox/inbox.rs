//! The in-app inbox of a person (`GET /api/v1/me/inbox`): what any module told them.
//! [`notify`] writes the inbox entry and, when the person gave an address, the e-mail, on
//! the caller's transaction, so both exist exactly when their cause commits. MAP keeps its
//! own inbox (`map_inbox`, with its organisation-wide entries); the person's list shows
//! both, newest first.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::governance::GovResult;
use crate::model::Time;

use super::{MAX_BODY, MAX_SUBJECT, cut, db, enqueue};

/// Longest link, in characters.
const MAX_LINK: usize = 2_000;
/// Most entries one call lists.
pub const MAX_LIST: i64 = 500;

/// An inbox entry.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxEntry {
    /// `{module}:{id}` (`inbox:12`, `map:7`): unique in the list.
    pub id: String,
    /// The module that wrote it (`tapis`, `map`, …).
    pub module: String,
    /// Subject line.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Where to follow it up (a page or API address), when there is one.
    pub link: Option<String>,
    /// Written (RFC 3339).
    pub at: String,
}

/// Tell `recipient` (`user:LOGIN` or `subject:CODE`) something, on `c` (the caller's
/// transaction): an inbox entry, and an e-mail when they gave an address. Returns whether
/// an e-mail was queued.
pub async fn notify(
    c: &mut AnyConnection,
    recipient: &str,
    module: &str,
    subject: &str,
    body: &str,
    link: Option<&str>,
) -> GovResult<bool> {
    sqlx::query(
        "INSERT INTO inbox (recipient, module, subject, body, link, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(recipient)
    .bind(module)
    .bind(cut(subject.lines().next().unwrap_or(""), MAX_SUBJECT))
    .bind(cut(body, MAX_BODY))
    .bind(link.map(|l| cut(l, MAX_LINK)))
    .bind(Time::now().0)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    let mail = match link {
        Some(l) => format!("{body}\n\n{l}"),
        None => body.to_owned(),
    };
    enqueue(c, recipient, subject, &mail).await
}

/// The newest `limit` (≤ [`MAX_LIST`]) entries of `recipient`, from every module.
pub async fn list(pool: &AnyPool, recipient: &str, limit: i64) -> GovResult<Vec<InboxEntry>> {
    let limit = limit.clamp(1, MAX_LIST);
    let rows = sqlx::query(
        "SELECT id, module, subject, body, link, created_at FROM inbox WHERE recipient = $1 \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(recipient)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out: Vec<(i64, InboxEntry)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let t: i64 = r.try_get("created_at").map_err(db)?;
        out.push((
            t,
            InboxEntry {
                id: format!("inbox:{}", r.try_get::<i64, _>("id").map_err(db)?),
                module: r.try_get("module").map_err(db)?,
                subject: r.try_get("subject").map_err(db)?,
                body: r.try_get("body").map_err(db)?,
                link: r.try_get("link").map_err(db)?,
                at: Time(t).to_rfc3339(),
            },
        ));
    }
    // MAP's own inbox (the table exists once MAP's migrations ran, which the server does
    // at start).
    let map = sqlx::query(
        "SELECT id, application, text, at FROM map_inbox WHERE recipient = $1 \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(recipient)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    for r in &map {
        let t: i64 = r.try_get("at").map_err(db)?;
        let text: String = r.try_get("text").map_err(db)?;
        let app: Option<i64> = r.try_get("application").map_err(db)?;
        out.push((
            t,
            InboxEntry {
                id: format!("map:{}", r.try_get::<i64, _>("id").map_err(db)?),
                module: "map".into(),
                subject: cut(text.lines().next().unwrap_or(""), MAX_SUBJECT),
                body: text,
                link: app.map(|a| format!("/map/applications/{a}")),
                at: Time(t).to_rfc3339(),
            },
        ));
    }
    out.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    out.truncate(limit as usize);
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

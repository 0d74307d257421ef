//! The report of a consultation: every comment with its parts and answers, numbered in the
//! order received, without any identity. It is written as it is read: the totals come from
//! SQL aggregates, then the comments a page at a time, so a consultation of 200 000
//! comments is exported in bounded memory.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use sqlx::{AnyPool, Row};

use crate::governance::{GovError, GovResult};

use super::comments::{CommentView, VIEW_COLUMNS, view};
use super::store::{TapisStore, db};

/// Comments read per page of the export.
const PAGE: i64 = 500;

/// The report of a consultation (no identities).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The consultation.
    pub consultation: i64,
    /// The document.
    pub document: i64,
    /// Its title.
    pub title: String,
    /// The version consulted.
    pub version: i64,
    /// Opened (RFC 3339).
    pub starts_at: String,
    /// Closed (RFC 3339).
    pub ends_at: String,
    /// `scheduled`, `open` or `closed`.
    pub status: String,
    /// Comments received.
    pub comments: i64,
    /// Comments and parts that need an answer, and how many have one.
    pub to_answer: i64,
    /// Answered of those.
    pub answered: i64,
    /// Answers by decision.
    pub by_decision: std::collections::BTreeMap<String, i64>,
    /// The comments, in the order received, numbered from 1.
    pub items: Vec<ReportItem>,
}

/// One comment in the report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportItem {
    /// Its number in the report.
    pub number: i64,
    /// The comment (without its author).
    pub comment: CommentView,
    /// Its parts, when split.
    pub parts: Vec<CommentView>,
}

/// The report's head: everything but `items`.
#[derive(Serialize)]
struct Head {
    consultation: i64,
    document: i64,
    title: String,
    version: i64,
    starts_at: String,
    ends_at: String,
    status: String,
    comments: i64,
    to_answer: i64,
    answered: i64,
    by_decision: BTreeMap<String, i64>,
}

async fn count(pool: &AnyPool, sql: &str, cid: i64) -> GovResult<i64> {
    sqlx::query_scalar(sql)
        .bind(cid)
        .fetch_one(pool)
        .await
        .map_err(db)
}

/// One page of originals after `after`, each with its parts, numbered from `number`.
async fn page(pool: &AnyPool, cid: i64, after: i64, number: i64) -> GovResult<Vec<ReportItem>> {
    let rows = sqlx::query(&format!(
        "SELECT {VIEW_COLUMNS} FROM tapis_comments WHERE consultation = $1 AND parent IS NULL \
         AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(cid)
    .bind(after)
    .bind(PAGE)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut items: Vec<ReportItem> = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        items.push(ReportItem {
            number: number + i as i64,
            comment: view(r)?,
            parts: vec![],
        });
    }
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Ok(items);
    };
    let parts = sqlx::query(&format!(
        "SELECT {VIEW_COLUMNS} FROM tapis_comments WHERE consultation = $1 AND parent >= $2 \
         AND parent <= $3 ORDER BY id"
    ))
    .bind(cid)
    .bind(first.comment.id)
    .bind(last.comment.id)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    for r in &parts {
        let p = view(r)?;
        if let Some(parent) = p.parent
            && let Ok(i) = items.binary_search_by_key(&parent, |it| it.comment.id)
        {
            items[i].parts.push(p);
        }
    }
    Ok(items)
}

/// Where the export is.
enum Step {
    Items {
        after: i64,
        number: i64,
        first: bool,
    },
    Done,
}

impl TapisStore {
    /// The report of a consultation as JSON bytes, written page by page.
    pub(crate) async fn report_stream(
        &self,
        cid: i64,
    ) -> GovResult<BoxStream<'static, Result<Bytes, GovError>>> {
        let k = self.consultation(cid).await?;
        let pool = self.pool.clone();
        let title: String = sqlx::query_scalar("SELECT title FROM tapis_documents WHERE id = $1")
            .bind(k.document)
            .fetch_one(&pool)
            .await
            .map_err(db)?;
        let mut by_decision = BTreeMap::new();
        for r in sqlx::query(
            "SELECT decision, COUNT(*) AS n FROM tapis_comments WHERE consultation = $1 \
             AND split_at IS NULL AND decision IS NOT NULL GROUP BY decision",
        )
        .bind(cid)
        .fetch_all(&pool)
        .await
        .map_err(db)?
        {
            by_decision.insert(
                r.try_get::<String, _>("decision").map_err(db)?,
                r.try_get::<i64, _>("n").map_err(db)?,
            );
        }
        let head = Head {
            consultation: cid,
            document: k.document,
            title,
            version: k.version,
            starts_at: k.starts_at,
            ends_at: k.ends_at,
            status: k.status,
            comments: count(
                &pool,
                "SELECT COUNT(*) FROM tapis_comments WHERE consultation = $1 AND parent IS NULL",
                cid,
            )
            .await?,
            to_answer: count(
                &pool,
                "SELECT COUNT(*) FROM tapis_comments WHERE consultation = $1 AND split_at IS NULL",
                cid,
            )
            .await?,
            answered: by_decision.values().sum(),
            by_decision,
        };
        // `{...head fields..., "items": [` then the items, then `]}`.
        let mut open = serde_json::to_vec(&head).map_err(|e| {
            GovError::Store(crate::store::StoreError::Corrupt(format!("report: {e}")))
        })?;
        open.pop();
        open.extend_from_slice(b",\"items\":[");
        let head = stream::once(async move { Ok(Bytes::from(open)) });
        let items = stream::unfold(
            Step::Items {
                after: 0,
                number: 1,
                first: true,
            },
            move |step| {
                let pool = pool.clone();
                async move {
                    let Step::Items {
                        after,
                        number,
                        first,
                    } = step
                    else {
                        return None;
                    };
                    match page(&pool, cid, after, number).await {
                        Err(e) => Some((Err(e), Step::Done)),
                        Ok(items) if items.is_empty() => {
                            Some((Ok(Bytes::from_static(b"]}")), Step::Done))
                        }
                        Ok(items) => {
                            let mut out = Vec::new();
                            for (i, it) in items.iter().enumerate() {
                                if !(first && i == 0) {
                                    out.push(b',');
                                }
                                if let Err(e) = serde_json::to_writer(&mut out, it) {
                                    return Some((
                                        Err(GovError::Store(crate::store::StoreError::Corrupt(
                                            format!("report: {e}"),
                                        ))),
                                        Step::Done,
                                    ));
                                }
                            }
                            let last = items.last().map_or(after, |it| it.comment.id);
                            Some((
                                Ok(Bytes::from(out)),
                                Step::Items {
                                    after: last,
                                    number: number + items.len() as i64,
                                    first: false,
                                },
                            ))
                        }
                    }
                }
            },
        );
        Ok(head.chain(items).boxed())
    }
}

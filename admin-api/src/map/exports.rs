//! Exports for a grantor's accounting and records: payment orders, accounting entries and
//! registered documents of its programmes in a period, as JSON or CSV (formula-neutralised
//! text, like the audit's exports). For the grantor's accountants and programme managers.

use serde::Serialize;
use sqlx::Row;

use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::{MapRole, eur};
use super::rules::Actor;
use super::service::MapCaller;
use super::store::db;

/// Most rows one export returns; a longer period is refused with a request to narrow it.
pub const MAX_EXPORT_ROWS: i64 = 50_000;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Payments paid in the period: the payment orders.
    Payments,
    /// Accounting entries: commitments, releases, payments and recoveries.
    Accounting,
    /// Registered incoming and outgoing documents.
    Documents,
}

impl ExportKind {
    /// Parse `payments`, `accounting` or `documents`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "payments" => ExportKind::Payments,
            "accounting" => ExportKind::Accounting,
            "documents" => ExportKind::Documents,
            _ => return None,
        })
    }
}

/// One exported row: column names and values (text or numbers).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct ExportRow(pub serde_json::Map<String, serde_json::Value>);

/// The rows of an export of the caller's organisation in `[from, to)`.
pub async fn export(
    c: &MapCaller,
    kind: ExportKind,
    from: Time,
    to: Time,
) -> GovResult<Vec<ExportRow>> {
    let Actor::Staff { organisation, .. } = &c.actor else {
        return Err(GovError::Forbidden(
            "exports are for accountants and programme managers of a grantor".into(),
        ));
    };
    if c.actor.require(MapRole::Accountant, organisation).is_err()
        && c.actor
            .require(MapRole::ProgrammeManager, organisation)
            .is_err()
    {
        return Err(GovError::Forbidden(format!(
            "exports are for accountants and programme managers of {organisation}"
        )));
    }
    if to <= from {
        return Err(GovError::Invalid {
            field: "to".into(),
            reason: "must be after `from`".into(),
        });
    }
    let (sql, columns): (&str, &[&str]) = match kind {
        ExportKind::Payments => (
            "SELECT p.id AS payment, p.application, a.programme, a.registration_number, \
             p.amount, p.paid_at AS at FROM map_payments p \
             JOIN map_applications a ON a.id = p.application \
             JOIN map_programmes g ON g.id = a.programme \
             WHERE g.organisation = $1 AND p.status = 'paid' AND p.paid_at >= $2 AND p.paid_at < $3 \
             ORDER BY p.paid_at, p.id LIMIT $4",
            &[
                "payment",
                "application",
                "programme",
                "registration_number",
                "amount",
                "at",
            ],
        ),
        ExportKind::Accounting => (
            "SELECT l.id AS entry, l.programme, l.application, l.kind, l.amount, l.at, l.reference \
             FROM map_ledger l JOIN map_programmes g ON g.id = l.programme \
             WHERE g.organisation = $1 AND l.at >= $2 AND l.at < $3 \
             ORDER BY l.at, l.id LIMIT $4",
            &[
                "entry",
                "programme",
                "application",
                "kind",
                "amount",
                "at",
                "reference",
            ],
        ),
        ExportKind::Documents => (
            "SELECT d.number, d.application, a.programme, d.direction, d.kind, d.at \
             FROM map_documents d JOIN map_applications a ON a.id = d.application \
             JOIN map_programmes g ON g.id = a.programme \
             WHERE g.organisation = $1 AND d.at >= $2 AND d.at < $3 \
             ORDER BY d.at, d.number LIMIT $4",
            &[
                "number",
                "application",
                "programme",
                "direction",
                "kind",
                "at",
            ],
        ),
    };
    let rows = sqlx::query(sql)
        .bind(organisation)
        .bind(from.0)
        .bind(to.0)
        .bind(MAX_EXPORT_ROWS + 1)
        .fetch_all(&c.store.pool)
        .await
        .map_err(db)?;
    if rows.len() as i64 > MAX_EXPORT_ROWS {
        return Err(GovError::Invalid {
            field: "from".into(),
            reason: format!(
                "the period holds more than {MAX_EXPORT_ROWS} rows; export a shorter one"
            ),
        });
    }
    rows.iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            for col in columns {
                let v = match *col {
                    "amount" => serde_json::json!(eur(r.try_get::<i64, _>(*col).map_err(db)?)),
                    "at" => {
                        serde_json::json!(Time(r.try_get::<i64, _>(*col).map_err(db)?).to_rfc3339())
                    }
                    "payment" | "application" | "programme" | "entry" => {
                        serde_json::json!(r.try_get::<i64, _>(*col).map_err(db)?)
                    }
                    _ => serde_json::json!(r.try_get::<Option<String>, _>(*col).map_err(db)?),
                };
                m.insert((*col).to_owned(), v);
            }
            Ok(ExportRow(m))
        })
        .collect()
}

/// The rows as CSV with a header line; text is formula-neutralised and quoted as needed,
/// numbers written as they are.
pub fn to_csv(rows: &[ExportRow], kind: ExportKind) -> String {
    let header: &[&str] = match kind {
        ExportKind::Payments => &[
            "payment",
            "application",
            "programme",
            "registration_number",
            "amount",
            "at",
        ],
        ExportKind::Accounting => &[
            "entry",
            "programme",
            "application",
            "kind",
            "amount",
            "at",
            "reference",
        ],
        ExportKind::Documents => &[
            "number",
            "application",
            "programme",
            "direction",
            "kind",
            "at",
        ],
    };
    let mut out = header.join(",");
    out.push('\n');
    for r in rows {
        let line: Vec<String> = header
            .iter()
            .map(|h| match r.0.get(*h) {
                Some(serde_json::Value::String(s)) => crate::audit::api::csv_field(s),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

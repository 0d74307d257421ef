//! The REST resources of the usage audit: systems report usage events, a citizen reads who
//! used their data, owners and admins read summaries and export records. Each handler checks
//! the caller's role, bounds the input and calls one method of [`AuditStore`].
//!
//! [`AuditStore`]: super::store::AuditStore

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimestampMillisecondType};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use dagr_engine::{Principal, Role};
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::store::{
    AuditStoreError, MAX_USAGE_EVENTS, SummaryRow, UsageEntry, UsageEventIn, UsageFilter,
    UsageOutcome, UsagePage, export_schema,
};
use crate::AppState;
use crate::error::{ApiError, Problem, Result};
use crate::extract::{Caller, Params};
use crate::gate::RawJson;
use crate::governance::GovError;
use crate::model::Time;

/// Longest period of a summary or an export, in days.
pub(crate) const MAX_PERIOD_DAYS: i64 = 366;
/// Period of a summary or an export when none is given, in days (ending now).
pub(crate) const DEFAULT_PERIOD_DAYS: i64 = 30;
/// Default page size of the citizen view.
const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of the citizen view.
const MAX_LIMIT: i64 = 1000;

/// The audit routes, merged into the API router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usage-events", post(report_usage))
        .route("/api/v1/me/usage", get(my_usage))
        .route("/api/v1/usage/summary", get(usage_summary))
        .route("/api/v1/usage/records", get(usage_records))
}

fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError::Gov(GovError::Forbidden(msg.into()))
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
    ApiError::Gov(GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    })
}

fn time_param(field: &str, value: Option<&str>, end: bool) -> Result<Option<i64>> {
    value
        .map(|v| {
            let t = if end {
                Time::parse_end(v)
            } else {
                Time::parse(v)
            };
            t.map(|t| t.0).ok_or_else(|| {
                invalid(
                    field,
                    format!("`{v}` is not an RFC 3339 time or a YYYY-MM-DD date"),
                )
            })
        })
        .transpose()
}

// ---- usage events ------------------------------------------------------------------------

/// A batch of usage events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageEventsIn {
    /// 1–1000 events.
    pub(crate) events: Vec<UsageEventIn>,
}

/// What became of each event, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageEventsOut {
    /// One outcome per event.
    pub(crate) events: Vec<UsageOutcome>,
}

/// Report that your system used data subjects' data, at the time of your own transactions
/// (provider and consumer system tokens only). Idempotent by your transaction id: a repeat
/// is answered `duplicate` with the id first given, and writes nothing. Every event is
/// checked before any is written; an invalid one names its field (`events[3].subject`).
#[utoipa::path(post, path = "/api/v1/usage-events", tag = "usage",
    request_body = UsageEventsIn,
    responses((status = 200, body = UsageEventsOut), (status = 403, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn report_usage(
    State(s): State<AppState>,
    Caller(p): Caller,
    body: RawJson,
) -> Result<Json<UsageEventsOut>> {
    crate::gate::reporting_system(&p)?;
    let b: UsageEventsIn = body.parse()?;
    if b.events.is_empty() || b.events.len() > MAX_USAGE_EVENTS {
        return Err(invalid(
            "events",
            format!("send 1–{MAX_USAGE_EVENTS} events; got {}", b.events.len()),
        ));
    }
    for (i, e) in b.events.iter().enumerate() {
        let Some(name) = &e.dataset else { continue };
        let Ok(def) = s.engine.definition(name.trim()) else {
            return Err(invalid(
                format!("events[{i}].dataset"),
                format!("there is no dataset `{name}`"),
            ));
        };
        for (j, a) in e.attributes.iter().enumerate() {
            if def.ordinal(a.trim()).is_none() {
                return Err(invalid(
                    format!("events[{i}].attributes[{j}]"),
                    format!("dataset `{name}` has no attribute `{a}`"),
                ));
            }
        }
    }
    let events = s.audit.record_usage(&p, b.events).await?;
    Ok(Json(UsageEventsOut { events }))
}

// ---- the citizen view --------------------------------------------------------------------

/// Filters and paging of the citizen view.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MyUsageParams {
    /// Entries at or after this time (RFC 3339 or `YYYY-MM-DD`).
    from: Option<String>,
    /// Entries before this time (a plain date includes that day).
    to: Option<String>,
    /// Only entries of this organisation (code).
    organisation: Option<String>,
    /// Entries per page, 1–1000 (default 100).
    limit: Option<i64>,
    /// Cursor from the previous page's `Link` header: entries recorded before this id.
    before: Option<String>,
}

/// Who used my data: every access record and usage event concerning the data subject the
/// caller is (a citizen's subject token), newest first — in the order DAGR recorded them,
/// not by the time of the read or use. Paginated: a page after which more may follow carries
/// `Link: <...&before=ID>; rel="next"` — every full page, and a short (even empty) page when
/// the request examined as many bulk records as it may; follow the link until it is absent.
#[utoipa::path(get, path = "/api/v1/me/usage", tag = "usage", params(MyUsageParams),
    responses((status = 200, body = Vec<UsageEntry>), (status = 403, body = Problem),
        (status = 400, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn my_usage(
    State(s): State<AppState>,
    Caller(p): Caller,
    uri: Uri,
    Params(q): Params<MyUsageParams>,
) -> Result<Response> {
    let Some(subject) = s.identity.subject(&p) else {
        return Err(forbidden(
            "this is the usage log of a data subject: sign in as the citizen (a subject \
             token); organisations see usage in /api/v1/usage/summary",
        ));
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}; got {limit}"
        )));
    }
    let before = q
        .before
        .as_deref()
        .map(|b| {
            b.parse::<i64>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| ApiError::BadRequest("before: not a cursor of this list".into()))
        })
        .transpose()?;
    let filter = UsageFilter {
        from: time_param("from", q.from.as_deref(), false)?,
        to: time_param("to", q.to.as_deref(), true)?,
        organisation: q.organisation.clone(),
    };
    let page = subject_usage_page(&s, &subject, &filter, before, limit as usize).await?;
    let mut response = Json(page.entries).into_response();
    if let Some(c) = page.next {
        let mut params: Vec<String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("before="))
            .map(str::to_owned)
            .collect();
        params.push(format!("before={c}"));
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), params.join("&"));
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(response)
}

/// Fill in the names of the organisations and systems of entries (one lookup each).
async fn name_parties(s: &AppState, entries: &mut [UsageEntry]) -> Result<()> {
    let store = s.gov.store();
    let mut organisations: HashMap<String, Option<String>> = HashMap::new();
    let mut systems: HashMap<String, Option<String>> = HashMap::new();
    for e in entries.iter_mut() {
        if let Some(code) = &e.organisation {
            if !organisations.contains_key(code) {
                let name = store
                    .organisation(code)
                    .await
                    .map_err(GovError::from)?
                    .map(|o| o.name);
                organisations.insert(code.clone(), name);
            }
            e.organisation_name = organisations[code].clone();
        }
        if let Some(id) = &e.system {
            if !systems.contains_key(id) {
                let name = match id.parse::<i64>() {
                    Ok(n) => store
                        .system(n)
                        .await
                        .map_err(GovError::from)?
                        .map(|s| s.name),
                    Err(_) => None,
                };
                systems.insert(id.clone(), name);
            }
            e.system_name = systems[id].clone();
        }
    }
    Ok(())
}

// ---- owner and admin views -----------------------------------------------------------------

/// The period and dataset of a summary.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryParams {
    /// Start (RFC 3339 or `YYYY-MM-DD`); default 30 days before `to`.
    from: Option<String>,
    /// End, exclusive (a plain date includes that day); default now. At most 366 days
    /// after `from`.
    to: Option<String>,
    /// Only this dataset (owners: one of their organisation's).
    dataset: Option<String>,
}

/// The period, dataset and format of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// Start (RFC 3339 or `YYYY-MM-DD`); default 30 days before `to`.
    from: Option<String>,
    /// End, exclusive (a plain date includes that day); default now. At most 366 days
    /// after `from`.
    to: Option<String>,
    /// Only this dataset (owners: one of their organisation's).
    dataset: Option<String>,
    /// `parquet` (default) or `csv`.
    format: Option<String>,
}

/// The datasets whose usage the caller may see: `None` = all (admins).
fn scope(s: &AppState, p: &Principal, dataset: Option<&str>) -> Result<Option<Vec<String>>> {
    match p.role {
        Role::Admin => Ok(dataset.map(|d| vec![d.to_owned()])),
        Role::Owner => {
            let Some(org) = &p.organisation else {
                return Err(forbidden("an owner acts for an organisation"));
            };
            let owned: Vec<String> = s
                .engine
                .dataset_names()
                .into_iter()
                .filter(|n| s.engine.definition(n).is_ok_and(|d| &d.owner == org))
                .collect();
            match dataset {
                None => Ok(Some(owned)),
                Some(d) if owned.iter().any(|o| o == d) => Ok(Some(vec![d.to_owned()])),
                Some(d) => Err(forbidden(format!(
                    "dataset `{d}` is not one of `{org}`'s; owners see the usage of their own \
                     datasets"
                ))),
            }
        }
        Role::Consumer | Role::Subject => Err(forbidden(
            "usage summaries and records are for dataset owners and admins; a citizen reads \
             their own at /api/v1/me/usage",
        )),
    }
}

/// `[from, to)` in Unix ms, bounded to [`MAX_PERIOD_DAYS`].
fn period(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64)> {
    // The default period ends after the current millisecond: an entry recorded in it (a
    // report acknowledged just before the export) is in the export.
    let to = time_param("to", to, true)?.unwrap_or_else(|| Time::now().0 + 1);
    let from = time_param("from", from, false)?
        .unwrap_or_else(|| to.saturating_sub(DEFAULT_PERIOD_DAYS * 86_400_000));
    if from >= to {
        return Err(invalid("from", "must be before `to`"));
    }
    if to - from > MAX_PERIOD_DAYS * 86_400_000 {
        return Err(invalid(
            "from",
            format!("the period is at most {MAX_PERIOD_DAYS} days; ask for several periods"),
        ));
    }
    Ok((from, to))
}

/// Usage per UTC day, dataset, organisation, system, attribute and kind (owners: their
/// organisation's datasets; admins: all). A record of three attributes counts once for each.
#[utoipa::path(get, path = "/api/v1/usage/summary", tag = "usage", params(SummaryParams),
    responses((status = 200, body = Vec<SummaryRow>), (status = 403, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn usage_summary(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<SummaryParams>,
) -> Result<Json<Vec<SummaryRow>>> {
    let (_, _, rows) = usage_summary_for(
        &s,
        &p,
        q.from.as_deref(),
        q.to.as_deref(),
        q.dataset.as_deref(),
    )
    .await?;
    Ok(Json(rows))
}

/// The access records and usage events of a period (by the time of the read or use) as a
/// Parquet or CSV download, streamed (owners: their organisation's datasets; admins: all).
/// Columns: id, time, recorded_at, kind, organisation, system, token, purpose, channel,
/// dataset, version, attributes and agreements (JSON lists), request_id, query_sha256, rows,
/// subject_count, subjects (JSON list, for records that list them), subjects_sha256 (bulk
/// records), reporter, transaction_id, access_record, hash.
#[utoipa::path(get, path = "/api/v1/usage/records", tag = "usage", params(ExportParams),
    responses(
        (status = 200, description = "The entries, as an attachment",
            content((String = "application/vnd.apache.parquet"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn usage_records(
    State(s): State<AppState>,
    Caller(p): Caller,
    Params(q): Params<ExportParams>,
) -> Result<Response> {
    usage_records_for(
        &s,
        &p,
        q.from.as_deref(),
        q.to.as_deref(),
        q.dataset.as_deref(),
        q.format.as_deref(),
    )
    .await
}

/// The download `GET /api/v1/usage/records` answers `p` (the portal's CSV link too):
/// Parquet or CSV (`format`, default Parquet) of the period and dataset given, streamed.
pub async fn usage_records_for(
    s: &AppState,
    p: &Principal,
    from: Option<&str>,
    to: Option<&str>,
    dataset: Option<&str>,
    format: Option<&str>,
) -> Result<Response> {
    let datasets = scope(s, p, dataset)?;
    let (from, to) = period(from, to)?;
    let format = format.unwrap_or("parquet");
    let (content_type, ext) = match format {
        "parquet" => ("application/vnd.apache.parquet", "parquet"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format must be `parquet` or `csv`; got `{other}`"
            )));
        }
    };
    // The first page is read before the response starts, so that an unavailable log is a
    // problem document rather than a cut-off download.
    let mut batches = Box::pin(s.audit.export(datasets.as_deref(), from, to));
    let first = batches.next().await.transpose()?;
    let batches = futures::stream::iter(first.map(Ok)).chain(batches);
    let body = if ext == "parquet" {
        axum::body::Body::from_stream(parquet_stream(batches)?)
    } else {
        axum::body::Body::from_stream(csv_stream(batches))
    };
    let name = format!(
        "dagr-usage-{}-{}.{ext}",
        Time(from).to_datetime().format("%Y%m%dT%H%M%SZ"),
        Time(to).to_datetime().format("%Y%m%dT%H%M%SZ"),
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// One page of the citizen view of `subject` as `GET /api/v1/me/usage` answers it, the
/// organisations and systems named (the portal's "who used my data" page too).
pub async fn subject_usage_page(
    s: &AppState,
    subject: &str,
    filter: &UsageFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<UsagePage> {
    let mut page = s
        .audit
        .subject_usage(subject, filter, before, limit)
        .await?;
    name_parties(s, &mut page.entries).await?;
    Ok(page)
}

/// The datasets whose usage `p` may see, narrowed to `dataset` when given: `None` = all
/// (admins). Owners see their organisation's datasets; anyone else is refused.
pub fn usage_scope(
    s: &AppState,
    p: &Principal,
    dataset: Option<&str>,
) -> Result<Option<Vec<String>>> {
    scope(s, p, dataset)
}

/// The summary `GET /api/v1/usage/summary` answers `p` (the portal's usage page too), with
/// the period `[from, to)` it covers in Unix ms (`from`/`to` as the query gives them).
pub async fn usage_summary_for(
    s: &AppState,
    p: &Principal,
    from: Option<&str>,
    to: Option<&str>,
    dataset: Option<&str>,
) -> Result<(i64, i64, Vec<SummaryRow>)> {
    let datasets = scope(s, p, dataset)?;
    let (from, to) = period(from, to)?;
    let rows = s.audit.summary(datasets.as_deref(), from, to).await?;
    Ok((from, to, rows))
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A `Write` into a buffer shared with the stream that drains it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(&mut *self.0.lock()))
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Batches =
    std::pin::Pin<Box<dyn Stream<Item = std::result::Result<RecordBatch, AuditStoreError>> + Send>>;

/// Parquet bytes as they are produced: one row group per page of entries, drained from the
/// writer's buffer after each; the footer at the end.
fn parquet_stream(
    batches: impl Stream<Item = std::result::Result<RecordBatch, AuditStoreError>> + Send + 'static,
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let buf = SharedBuf::default();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let writer = ArrowWriter::try_new(buf.clone(), export_schema(), Some(props))
        .map_err(|e| ApiError::Engine(dagr_engine::Error::Internal(e.to_string())))?;
    let batches: Batches = Box::pin(batches);
    Ok(futures::stream::unfold(
        Some((writer, batches, buf)),
        |state| async move {
            let (mut writer, mut batches, buf) = state?;
            match batches.next().await {
                Some(Ok(batch)) => match writer.write(&batch).and_then(|()| writer.flush()) {
                    Ok(()) => Some((Ok(buf.take()), Some((writer, batches, buf)))),
                    Err(e) => Some((Err(io_error(e)), None)),
                },
                Some(Err(e)) => {
                    tracing::error!(error = %e, "usage export failed half-way; the download is cut off");
                    Some((Err(io_error(e)), None))
                }
                None => match writer.close() {
                    Ok(_) => Some((Ok(buf.take()), None)),
                    Err(e) => Some((Err(io_error(e)), None)),
                },
            }
        },
    ))
}

/// CSV (RFC 4180) bytes as they are produced: a header line, then one chunk per page.
fn csv_stream(
    batches: impl Stream<Item = std::result::Result<RecordBatch, AuditStoreError>> + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let schema = export_schema();
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| csv_field(f.name()))
        .collect();
    let header = Bytes::from(format!("{}\r\n", header.join(",")));
    futures::stream::once(async move { Ok(header) }).chain(batches.map(|b| match b {
        Ok(batch) => csv_rows(&batch).map(Bytes::from),
        Err(e) => {
            tracing::error!(error = %e, "usage export failed half-way; the download is cut off");
            Err(io_error(e))
        }
    }))
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One text field: a `'` put before it when it starts like a formula ([`FORMULA_START`]), so
/// that a spreadsheet shows it as text and never runs it; then quoted when it holds a comma, a
/// quote or a line break. Only text goes through here: numbers are written as they are
/// (`-5` in a number column stays a number).
pub(crate) fn csv_field(v: &str) -> String {
    let v = if v.starts_with(FORMULA_START) {
        std::borrow::Cow::Owned(format!("'{v}"))
    } else {
        std::borrow::Cow::Borrowed(v)
    };
    if v.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.into_owned()
    }
}

fn csv_rows(batch: &RecordBatch) -> std::io::Result<String> {
    let mut out = String::new();
    for row in 0..batch.num_rows() {
        for (i, col) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if col.is_null(row) {
                continue;
            }
            let v = match col.data_type() {
                DataType::Int64 => col.as_primitive::<Int64Type>().value(row).to_string(),
                DataType::Timestamp(_, _) => {
                    Time(col.as_primitive::<TimestampMillisecondType>().value(row)).to_rfc3339()
                }
                DataType::Utf8 => csv_field(col.as_string::<i32>().value(row)),
                other => return Err(io_error(format!("no CSV form for {other}"))),
            };
            out.push_str(&v);
        }
        out.push_str("\r\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_formula_cells_are_neutralised() {
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("+31"), "'+31");
        assert_eq!(csv_field("-5"), "'-5");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"x\",1)"),
            "\"'=HYPERLINK(\"\"x\"\",1)\""
        );
        assert_eq!(csv_field("a=b"), "a=b");
        // Numbers are not text cells: they are written as they are.
        let batch = RecordBatch::try_new(
            Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("n", DataType::Int64, false),
                arrow::datatypes::Field::new("s", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(arrow::array::Int64Array::from(vec![-5])),
                Arc::new(arrow::array::StringArray::from(vec!["-5"])),
            ],
        )
        .unwrap();
        assert_eq!(csv_rows(&batch).unwrap(), "-5,'-5\r\n");
    }

    #[test]
    fn periods_are_bounded() {
        assert!(period(Some("2026-01-01"), Some("2026-12-31")).is_ok());
        let e = period(Some("2025-01-01"), Some("2026-12-31")).unwrap_err();
        assert!(e.to_string().contains("366 days"), "{e}");
        assert!(period(Some("2026-02-01"), Some("2026-01-01")).is_err());
        assert!(period(Some("yesterday"), None).is_err());
    }

    #[test]
    fn the_default_period_includes_the_current_millisecond() {
        let now = Time::now().0;
        let (_, to) = period(None, None).unwrap();
        assert!(to > now, "an entry recorded at {now} is before `to` ({to})");
    }
}

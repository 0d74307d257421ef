//! PostgreSQL: one connection, one `REPEATABLE READ READ ONLY` transaction, rows streamed
//! with `fetch` and decoded from PostgreSQL's binary format by the type of each column (the
//! mapping is in the [`crate::source`] docs).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit};
use dagr_engine::definition::{is_decimal_type, is_string_type};
use futures::TryStreamExt;
use sqlx::postgres::{PgConnection, PgValueFormat};
use sqlx::{Column, Connection, Executor, Row, Statement, TypeInfo, ValueRef};
use tokio::sync::mpsc;

use super::{Earliest, Plan, Rows, TargetInfo, at_source, convert_typed, convertible};
use crate::error::{LoadError, Location, Result};
use crate::source::{PgSource, SourceBatch};

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Quote `table` or `schema.table` as identifiers (taken literally: case-sensitive).
pub(in crate::source) fn quote_table(table: &str) -> Result<String> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(LoadError::Usage(format!(
            "table `{table}`: give `table` or `schema.table`"
        )));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join("."))
}

/// The PostgreSQL types that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Bool,
    /// `text`, `varchar`, `bpchar`, `name`, `"char"`.
    Text,
    Uuid,
    Json,
    Jsonb,
    Date,
    Timestamp,
    Timestamptz,
    Bytea,
}

impl Kind {
    fn of(oid: u32) -> Option<Kind> {
        Some(match oid {
            16 => Kind::Bool,
            17 => Kind::Bytea,
            18 | 19 | 25 | 1042 | 1043 => Kind::Text,
            20 => Kind::Int8,
            21 => Kind::Int2,
            23 => Kind::Int4,
            114 => Kind::Json,
            700 => Kind::Float4,
            701 => Kind::Float8,
            1082 => Kind::Date,
            1114 => Kind::Timestamp,
            1184 => Kind::Timestamptz,
            1700 => Kind::Numeric,
            2950 => Kind::Uuid,
            3802 => Kind::Jsonb,
            _ => return None,
        })
    }

    /// The Arrow type values are first read as.
    fn natural(self) -> DataType {
        match self {
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Numeric | Kind::Text | Kind::Uuid | Kind::Json | Kind::Jsonb => DataType::Utf8,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Bytea => DataType::Binary,
        }
    }

    /// Whether a column of this type may be read into an attribute of type `to`.
    fn allows(self, to: &DataType) -> bool {
        let to_base = match to {
            DataType::Dictionary(_, v) => v.as_ref(),
            t => t,
        };
        match self {
            Kind::Numeric => {
                is_string_type(to_base)
                    || to_base.is_integer()
                    || to_base.is_floating()
                    || is_decimal_type(to_base)
            }
            Kind::Uuid | Kind::Json | Kind::Jsonb => is_string_type(to_base),
            _ => convertible(&self.natural(), to),
        }
    }

    fn builder(self, capacity: usize) -> Builder {
        match self {
            Kind::Int2 => Builder::I16(Int16Builder::with_capacity(capacity)),
            Kind::Int4 => Builder::I32(Int32Builder::with_capacity(capacity)),
            Kind::Int8 => Builder::I64(Int64Builder::with_capacity(capacity)),
            Kind::Float4 => Builder::F32(Float32Builder::with_capacity(capacity)),
            Kind::Float8 => Builder::F64(Float64Builder::with_capacity(capacity)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Numeric | Kind::Text | Kind::Uuid | Kind::Json | Kind::Jsonb => {
                Builder::Text(StringBuilder::with_capacity(capacity, 0))
            }
            Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Kind::Timestamp => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), false)
            }
            Kind::Timestamptz => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), true)
            }
            Kind::Bytea => Builder::Binary(BinaryBuilder::with_capacity(capacity, 0)),
        }
    }
}

/// Values of one column, in its natural type.
enum Builder {
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Date(Date32Builder),
    /// Whether the values are UTC instants (`timestamptz`).
    Timestamp(TimestampMicrosecondBuilder, bool),
    Binary(BinaryBuilder),
}

impl Builder {
    fn append_null(&mut self) {
        match self {
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b, _) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamp(b, true) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::Timestamp(b, false) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
        }
    }
}

fn fixed<const N: usize>(bytes: &[u8]) -> std::result::Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

fn utf8(bytes: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// The text of a binary `numeric`: `[ndigits, weight, sign, dscale]` as `i16`/`u16`, then
/// `ndigits` base-10000 digits.
fn numeric_text(bytes: &[u8]) -> std::result::Result<String, String> {
    let word = |i: usize| -> std::result::Result<u16, String> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric value".to_owned())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        other => return Err(format!("unknown numeric sign {other:#06x}")),
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<std::result::Result<_, _>>()?;
    let digit = |i: i64| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                let _ = write!(out, "{}", digit(i));
            } else {
                let _ = write!(out, "{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(i));
            i += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

fn uuid_text(bytes: &[u8]) -> std::result::Result<String, String> {
    let b: [u8; 16] = fixed(bytes)?;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
    Ok(out)
}

/// Append one binary-format value of type `kind`.
fn append(kind: Kind, bytes: &[u8], builder: &mut Builder) -> std::result::Result<(), String> {
    match (kind, builder) {
        (Kind::Int2, Builder::I16(b)) => b.append_value(i16::from_be_bytes(fixed(bytes)?)),
        (Kind::Int4, Builder::I32(b)) => b.append_value(i32::from_be_bytes(fixed(bytes)?)),
        (Kind::Int8, Builder::I64(b)) => b.append_value(i64::from_be_bytes(fixed(bytes)?)),
        (Kind::Float4, Builder::F32(b)) => b.append_value(f32::from_be_bytes(fixed(bytes)?)),
        (Kind::Float8, Builder::F64(b)) => b.append_value(f64::from_be_bytes(fixed(bytes)?)),
        (Kind::Bool, Builder::Bool(b)) => b.append_value(fixed::<1>(bytes)?[0] != 0),
        (Kind::Text | Kind::Json, Builder::Text(b)) => b.append_value(utf8(bytes)?),
        (Kind::Jsonb, Builder::Text(b)) => match bytes.split_first() {
            Some((1, json)) => b.append_value(utf8(json)?),
            _ => return Err("unknown jsonb format version".into()),
        },
        (Kind::Uuid, Builder::Text(b)) => b.append_value(uuid_text(bytes)?),
        (Kind::Numeric, Builder::Text(b)) => b.append_value(numeric_text(bytes)?),
        (Kind::Date, Builder::Date(b)) => {
            let days = i32::from_be_bytes(fixed(bytes)?);
            let days = from_pg_epoch(days, PG_EPOCH_DAYS, [i32::MIN, i32::MAX], "date")?;
            b.append_value(days);
        }
        (Kind::Timestamp | Kind::Timestamptz, Builder::Timestamp(b, _)) => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let micros = from_pg_epoch(micros, PG_EPOCH_MICROS, [i64::MIN, i64::MAX], "timestamp")?;
            b.append_value(micros);
        }
        (Kind::Bytea, Builder::Binary(b)) => b.append_value(bytes),
        (kind, _) => return Err(format!("internal error: no builder for {kind:?}")),
    }
    Ok(())
}

/// A `what` (date or timestamp) counted from PostgreSQL's epoch, counted from the Unix
/// epoch instead (`shift` later); `infinities`, the values PostgreSQL sends for `-infinity`
/// and `infinity`, and results the type cannot hold are refused.
fn from_pg_epoch<T>(
    value: T,
    shift: T,
    infinities: [T; 2],
    what: &str,
) -> std::result::Result<T, String>
where
    T: Copy + PartialEq + Into<i64> + TryFrom<i64>,
{
    if infinities.contains(&value) {
        return Err(format!("an infinite {what} cannot be read"));
    }
    value
        .into()
        .checked_add(shift.into())
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("the {what} is out of range"))
}

/// An error of the database or the connection, classified.
fn pg_error(label: &str, e: &sqlx::Error) -> LoadError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => LoadError::Transient(format!("{label}: {e}")),
        sqlx::Error::Configuration(_) => {
            LoadError::Usage(format!("{label}: invalid connection URL: {e}"))
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = format!("PostgreSQL: {} (SQLSTATE {code})", db.message());
            if code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
            {
                LoadError::Transient(format!("{label}: {message}"))
            } else if code.starts_with("28") {
                LoadError::Usage(format!("{label}: {message}"))
            } else {
                LoadError::input(at_source(label, None), message)
            }
        }
        other => LoadError::input(at_source(label, None), other.to_string()),
    }
}

/// One source column read into a target column.
struct Col {
    /// Index in the result row.
    index: usize,
    /// Target column.
    target: usize,
    kind: Kind,
    builder: Builder,
}

/// Read a table or query, sending batches to `tx`.
pub(super) async fn read(
    url: &str,
    what: &PgSource,
    label: &Arc<str>,
    target: &TargetInfo,
    batch_rows: usize,
    tx: &mpsc::Sender<Result<SourceBatch>>,
) -> Result<()> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| pg_error(label, &e))?;
    let result = read_in(&mut conn, what, label, target, batch_rows, tx).await;
    let _ = conn.close().await;
    result
}

async fn read_in(
    conn: &mut PgConnection,
    what: &PgSource,
    label: &Arc<str>,
    target: &TargetInfo,
    batch_rows: usize,
    tx: &mpsc::Sender<Result<SourceBatch>>,
) -> Result<()> {
    let fail = |e: sqlx::Error| pg_error(label, &e);
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(fail)?;
    let sql = match what {
        PgSource::Table(t) => format!("SELECT * FROM {}", quote_table(t)?),
        PgSource::Query(q) => {
            let q = q.trim().trim_end_matches(';').trim_end();
            format!("SELECT * FROM (\n{q}\n) AS dagr_source")
        }
    };
    let statement = conn.prepare(sql.as_str()).await.map_err(fail)?;
    let names: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let plan = target.plan(&names, &at_source(label, None))?;
    let capacity = batch_rows.min(65_536);
    let mut cols = Vec::new();
    for (j, slot) in plan.slots.iter().enumerate() {
        let Some(index) = *slot else { continue };
        let name = target.name(j);
        let info = statement.columns()[index].type_info();
        let kind = info.oid().and_then(|oid| Kind::of(oid.0)).ok_or_else(|| {
            LoadError::input(
                at_source(label, Some(name)),
                format!(
                    "column `{name}` has PostgreSQL type {}, which cannot be read; convert it in a query (e.g. `{name}::text`)",
                    info.name().to_lowercase()
                ),
            )
        })?;
        let to = target.data_type(j);
        if !kind.allows(to) {
            let message = format!(
                "column `{name}` has PostgreSQL type {}; the dataset defines {to}",
                info.name().to_lowercase()
            );
            return Err(LoadError::input(at_source(label, Some(name)), message));
        }
        cols.push(Col {
            index,
            target: j,
            kind,
            builder: kind.builder(capacity),
        });
    }
    let mut rows = statement.query().fetch(&mut *conn);
    let mut seen = 0u64;
    let mut pending = 0usize;
    let mut emitted = 0u64;
    while let Some(row) = rows.try_next().await.map_err(fail)? {
        seen += 1;
        for col in &mut cols {
            let value = row.try_get_raw(col.index).map_err(fail)?;
            if value.is_null() {
                col.builder.append_null();
                continue;
            }
            let decoded = if value.format() == PgValueFormat::Binary {
                value
                    .as_bytes()
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| append(col.kind, bytes, &mut col.builder))
            } else {
                Err("the server sent a value in text format".to_owned())
            };
            if let Err(message) = decoded {
                return Err(LoadError::input(
                    Location {
                        source: label.to_string(),
                        row: Some(seen),
                        line: None,
                        column: Some(target.name(col.target).to_owned()),
                    },
                    message,
                ));
            }
        }
        pending += 1;
        if pending == batch_rows {
            let batch = flush(&mut cols, &plan, label, target, emitted, pending)?;
            emitted += pending as u64;
            pending = 0;
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(());
            }
        }
    }
    drop(rows);
    if pending > 0 {
        let batch = flush(&mut cols, &plan, label, target, emitted, pending)?;
        if tx.send(Ok(batch)).await.is_err() {
            return Ok(());
        }
    }
    conn.execute("COMMIT").await.map_err(fail)?;
    Ok(())
}

fn flush(
    cols: &mut [Col],
    plan: &Plan,
    label: &Arc<str>,
    target: &TargetInfo,
    emitted: u64,
    n: usize,
) -> Result<SourceBatch> {
    let rows = Rows {
        source: label,
        first_row: emitted + 1,
        lines: None,
    };
    let mut columns: Vec<Option<ArrayRef>> = vec![None; target.schema.fields().len()];
    let mut failed = Earliest::default();
    for col in cols.iter_mut() {
        let array = col.builder.finish();
        match convert_typed(&array, target.data_type(col.target)) {
            Ok(converted) => columns[col.target] = Some(converted),
            Err(bad) => failed.offer_bad(bad, &rows, target.name(col.target)),
        }
    }
    target.assemble(plan, columns, failed, n, &rows)
}

//! The audit seam: what a read of personal data touched ([`ReadLog`]), the access records it
//! produces ([`AccessRecord`]) and where they go ([`AuditSink`]).
//!
//! Every read path (REST lookups, Flight `DoGet`, Flight SQL, exports) reads through a
//! [`MaskedView`] that carries a [`ReadLog`]. The view notes the attributes and the rows it
//! hands out; the protocol crate then asks the log whether personal attributes are involved
//! (a purpose is then mandatory, see [`ReadLog::require_purpose`]) and, before it releases the
//! response (for a stream: before its last message), turns the log into records and commits
//! them to the sink. `admin-api` implements the sink on a durable, hash-chained store; the
//! engine never knows where records go.
//!
//! Subjects are kept as row ids of the snapshot read ([`SubjectRows`]): a 5 M-row stream costs
//! a roaring bitmap, not 5 M entries. The sink resolves them to subject identifiers through
//! [`SubjectRows::values`] or [`SubjectRows::for_each`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::datatypes::DataType;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use roaring::RoaringBitmap;

use crate::engine::MaskedView;
use crate::error::{Error, Result};
use crate::principal::Principal;
use crate::snapshot::{Snapshot, split_row_id};

/// The header (HTTP and Flight metadata) in which a caller declares the purpose of use.
pub const PURPOSE_HEADER: &str = "x-dagr-purpose";
/// Longest purpose accepted, in characters.
pub const MAX_PURPOSE_CHARS: usize = 500;

/// Through which interface data left DAGR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// A REST record lookup or sample.
    Rest,
    /// A Flight `DoGet` of a dataset or a JSON ticket.
    FlightGet,
    /// A Flight SQL statement or prepared statement.
    FlightSql,
    /// A bulk export (file download).
    Export,
}

impl Channel {
    /// The name used in records and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Rest => "rest",
            Channel::FlightGet => "flight-get",
            Channel::FlightSql => "flight-sql",
            Channel::Export => "export",
        }
    }

    /// Parse [`Channel::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rest" => Channel::Rest,
            "flight-get" => Channel::FlightGet,
            "flight-sql" => Channel::FlightSql,
            "export" => Channel::Export,
            _ => return None,
        })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The purpose header's value as text: UTF-8 (HTTP), with `%XX` escapes decoded (gRPC
/// metadata is ASCII, so Flight clients percent-encode non-ASCII purposes such as Latvian
/// text). A value whose escapes do not decode to UTF-8 is taken literally.
pub fn purpose_text(raw: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| Error::PurposeRequired(format!("`{PURPOSE_HEADER}` is not UTF-8 text")))?;
    if !text.contains('%') {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out).unwrap_or_else(|_| text.to_owned()))
}

/// The purpose declared in a header's raw value (`None` when the header is absent): decoded
/// by [`purpose_text`], checked by [`parse_purpose`]. What both protocol crates call.
pub fn purpose_header(raw: Option<&[u8]>) -> Result<Option<String>> {
    match raw {
        None => Ok(None),
        Some(raw) => parse_purpose(Some(&purpose_text(raw)?)),
    }
}

/// Check a declared purpose: trimmed, 1–[`MAX_PURPOSE_CHARS`] characters, no control
/// characters. `None` (no header) stays `None`; an empty header is an error.
pub fn parse_purpose(raw: Option<&str>) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let p = raw.trim();
    if p.is_empty() {
        return Err(Error::PurposeRequired(format!(
            "`{PURPOSE_HEADER}` is empty; say why you use the data (e.g. `credit check, loan application 123`)"
        )));
    }
    if p.chars().count() > MAX_PURPOSE_CHARS {
        return Err(Error::PurposeRequired(format!(
            "`{PURPOSE_HEADER}` is longer than {MAX_PURPOSE_CHARS} characters"
        )));
    }
    if p.chars().any(char::is_control) {
        return Err(Error::PurposeRequired(format!(
            "`{PURPOSE_HEADER}` contains control characters"
        )));
    }
    Ok(Some(p.to_owned()))
}

/// The request id of a call: the caller's own (`x-request-id`) when it is 1–128 visible
/// ASCII characters, else a new random one (32 hex digits).
pub fn request_id(given: Option<&str>) -> String {
    if let Some(id) = given
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
    {
        return id.to_owned();
    }
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Randomly keyed SipHash of a counter and the clock: unique and unpredictable enough to
    // correlate logs (it is not a secret).
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_usize(i);
        *part = h.finish();
    }
    format!("{:016x}{:016x}", parts[0], parts[1])
}

/// Who read, why and how: the part of an access record that the protocol crate knows.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// The caller.
    pub principal: Principal,
    /// The declared purpose (checked by [`parse_purpose`]).
    pub purpose: Option<String>,
    /// The interface.
    pub channel: Channel,
    /// The request id (echoed to the caller), to correlate records with their logs.
    pub request_id: String,
    /// The request as text (SQL, ticket, path); the record keeps its SHA-256.
    pub query: String,
}

/// One access record: one response that carried personal attributes of one dataset.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// When the data was read.
    pub time: DateTime<Utc>,
    /// Who, why, through which interface.
    pub context: Arc<AuditContext>,
    /// The dataset read.
    pub dataset: String,
    /// The snapshot version read.
    pub version: u64,
    /// The personal attributes handed out, in dataset order.
    pub attributes: Vec<String>,
    /// The agreements whose grants allowed those attributes (ids as the policy labels them);
    /// empty for an owner reading its own dataset.
    pub agreements: Vec<String>,
    /// The data subjects concerned.
    pub subjects: SubjectRows,
}

/// The data subjects of a read: rows of one snapshot, and the columns that identify the
/// subject of the personal attributes read.
#[derive(Debug, Clone)]
pub struct SubjectRows {
    /// The snapshot read (kept alive until the record is written).
    pub snapshot: Arc<Snapshot>,
    /// Row ids read.
    pub rows: RoaringBitmap,
    /// Snapshot ordinals of the subject columns.
    pub columns: Vec<usize>,
}

impl SubjectRows {
    /// Number of rows read.
    pub fn row_count(&self) -> u64 {
        self.rows.len()
    }

    /// The distinct subject identifiers of the rows read (nulls skipped), sorted.
    pub fn values(&self) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        self.for_each_of(&self.rows, |_, v| {
            out.insert(v.to_owned());
        })?;
        Ok(out)
    }

    /// Call `f(row, subject)` for every row of the snapshot (read or not) and subject
    /// column: what a sink needs to map rows to subjects once per snapshot.
    pub fn for_each(&self, f: impl FnMut(u32, &str)) -> Result<()> {
        let all: RoaringBitmap = (0..self.snapshot.num_rows() as u32).collect();
        self.for_each_of(&all, f)
    }

    fn for_each_of(&self, rows: &RoaringBitmap, mut f: impl FnMut(u32, &str)) -> Result<()> {
        let chunks = self.snapshot.chunks();
        // Rows grouped by chunk: (chunk, row ids in it).
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        for row in rows {
            let (c, _) = split_row_id(row);
            match groups.last_mut() {
                Some((gc, g)) if *gc == c => g.push(row),
                _ => groups.push((c, vec![row])),
            }
        }
        for &column in &self.columns {
            for (c, group) in &groups {
                let col = chunks
                    .get(*c)
                    .ok_or_else(|| Error::internal(format!("chunk {c} is not in the snapshot")))?
                    .column(column);
                if let Some(strings) = col.as_any().downcast_ref::<StringArray>() {
                    for &row in group {
                        let (_, o) = split_row_id(row);
                        if strings.is_valid(o) {
                            f(row, strings.value(o));
                        }
                    }
                    continue;
                }
                // Other types (integers, views, large strings): take the rows, then cast.
                let offsets = arrow::array::UInt32Array::from_iter_values(
                    group.iter().map(|&r| split_row_id(r).1 as u32),
                );
                let taken = arrow::compute::take(col.as_ref(), &offsets, None)?;
                let cast = arrow::compute::cast(&taken, &DataType::Utf8)?;
                let strings = cast
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| Error::internal("subject column did not cast to text"))?;
                for (i, &row) in group.iter().enumerate() {
                    if strings.is_valid(i) {
                        f(row, strings.value(i));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why an access record could not be committed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit log cannot record this read: {0}")]
pub struct AuditError(pub String);

/// Where access records go. Implementations must make the records durable before
/// [`AuditSink::commit`] returns `Ok`: callers release data only then.
#[async_trait]
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Commit records durably; returns their ids, in order.
    async fn commit(&self, records: Vec<AccessRecord>) -> Result<Vec<String>, AuditError>;
}

/// What one read of a dataset touched.
#[derive(Debug)]
struct Touch {
    /// The view read (snapshot, mask, current definition), without its log.
    view: MaskedView,
    /// Snapshot ordinals of the personal attributes handed out.
    personal: BTreeSet<usize>,
    rows: RoaringBitmap,
}

/// What a request read, per dataset version: filled in by [`MaskedView`]s that carry it (see
/// [`MaskedView::with_log`]). Cheap to clone (shared).
///
/// Rows are row ids of one snapshot, so reads of two versions of a dataset (a change feed
/// hands out upserts of the new version and the keys of records deleted from the old one)
/// are kept apart and become one record each.
#[derive(Debug, Clone, Default)]
pub struct ReadLog {
    touches: Arc<Mutex<BTreeMap<(String, u64), Touch>>>,
}

impl ReadLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Note that the view's columns at snapshot `ordinals` are handed out.
    pub(crate) fn note_columns(
        &self,
        view: &MaskedView,
        ordinals: impl IntoIterator<Item = usize>,
    ) {
        let def = view.snapshot.definition();
        let personal: Vec<usize> = ordinals
            .into_iter()
            .filter(|&o| is_personal(view, o))
            .collect();
        // An answer derived from rows that carry a subject — a count, an existence check, an
        // aggregate, a lookup by personal code that returns only other columns — is a use of
        // those subjects' data even when no personal attribute is handed out: the read is
        // recorded (naming the subject identifiers) and needs a purpose.
        if personal.is_empty() && subject_columns(view).is_empty() {
            return;
        }
        let mut touches = self.touches.lock();
        let key = (def.name.clone(), view.snapshot.version());
        let touch = touches.entry(key).or_insert_with(|| Touch {
            // Without the log: the log holds the touch (no reference cycle).
            view: MaskedView {
                log: None,
                ..view.clone()
            },
            personal: BTreeSet::new(),
            rows: RoaringBitmap::new(),
        });
        touch.personal.extend(personal);
    }

    /// Note rows handed out from the view; ignored unless personal attributes of it are.
    pub(crate) fn note_rows(&self, view: &MaskedView, add: impl FnOnce(&mut RoaringBitmap)) {
        let mut touches = self.touches.lock();
        let key = (view.snapshot.dataset().to_owned(), view.snapshot.version());
        if let Some(t) = touches.get_mut(&key) {
            add(&mut t.rows);
        }
    }

    /// Whether any personal attribute is (about to be) handed out.
    pub fn is_personal(&self) -> bool {
        !self.touches.lock().is_empty()
    }

    /// The personal attributes handed out, per dataset (of every version read).
    pub fn personal_attributes(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((d, _), t) in self.touches.lock().iter() {
            let names = out.entry(d.clone()).or_default();
            for a in attribute_names(t) {
                if !names.contains(&a) {
                    names.push(a);
                }
            }
        }
        out
    }

    /// Refuse when personal attributes are involved and no purpose was declared.
    pub fn require_purpose(&self, purpose: Option<&str>) -> Result<()> {
        if purpose.is_some() {
            return Ok(());
        }
        let touched = self.personal_attributes();
        let Some((dataset, attributes)) = touched.iter().next() else {
            return Ok(());
        };
        Err(Error::PurposeRequired(format!(
            "this request returns personal data ({dataset}: {}); declare why you use it in the `{PURPOSE_HEADER}` header",
            attributes.join(", ")
        )))
    }

    /// Commit the records of what was read so far to `sink` (nothing when no personal
    /// attribute was read): the one step every read path takes before releasing data. A sink
    /// failure is [`Error::AuditUnavailable`]: the caller must withhold the data.
    pub async fn commit(&self, context: &Arc<AuditContext>, sink: &dyn AuditSink) -> Result<()> {
        let records = self.take_records(context);
        if records.is_empty() {
            return Ok(());
        }
        sink.commit(records)
            .await
            .map(drop)
            .map_err(|e| Error::AuditUnavailable(e.to_string()))
    }

    /// The access records of what was read (one per dataset version with personal attributes
    /// and at least one row), and an emptied log.
    pub fn take_records(&self, context: &Arc<AuditContext>) -> Vec<AccessRecord> {
        let touches = std::mem::take(&mut *self.touches.lock());
        let time = Utc::now();
        touches
            .into_iter()
            .filter(|(_, t)| !t.rows.is_empty())
            .map(|((dataset, _), t)| {
                let columns: BTreeSet<usize> = if t.personal.is_empty() {
                    subject_columns(&t.view)
                } else {
                    t.personal
                        .iter()
                        .filter_map(|&o| subject_ordinal(&t.view, o))
                        .collect()
                };
                // Rows read without a personal attribute: every agreement that let the
                // caller read those rows was used.
                let agreements = if t.personal.is_empty() {
                    let granted: BTreeSet<usize> = t.view.mask.ordinals().iter().copied().collect();
                    t.view.mask.agreements(&granted, &t.rows)
                } else {
                    t.view.mask.agreements(&t.personal, &t.rows)
                };
                AccessRecord {
                    time,
                    context: Arc::clone(context),
                    version: t.view.snapshot.version(),
                    attributes: attribute_names(&t),
                    agreements,
                    subjects: SubjectRows {
                        snapshot: Arc::clone(&t.view.snapshot),
                        rows: t.rows,
                        columns: columns.into_iter().collect(),
                    },
                    dataset,
                }
            })
            .collect()
    }
}

/// Whether the snapshot column `o` is personal data: by the definition the snapshot was
/// loaded with, or by the dataset's current one (an owner who marks an attribute personal
/// is audited from then on, not from the next load).
fn is_personal(view: &MaskedView, o: usize) -> bool {
    let Some(a) = view.snapshot.definition().attributes.get(o) else {
        return false;
    };
    a.personal
        || view
            .definition
            .attribute(&a.name)
            .is_some_and(|c| c.personal)
}

/// The snapshot ordinal of the column identifying the subject of personal column `o`: the
/// current definition's choice when the snapshot has that column, else the snapshot's own.
fn subject_ordinal(view: &MaskedView, o: usize) -> Option<usize> {
    let def = view.snapshot.definition();
    let a = def.attributes.get(o)?;
    let current = view
        .definition
        .attribute(&a.name)
        .and_then(|c| c.subject.as_deref())
        .and_then(|s| def.ordinal(s));
    current.or_else(|| a.subject.as_deref().and_then(|s| def.ordinal(s)))
}

/// The snapshot ordinals of the columns identifying the subjects of the view's personal
/// attributes (empty when its rows carry no subject).
fn subject_columns(view: &MaskedView) -> BTreeSet<usize> {
    let def = view.snapshot.definition();
    (0..def.attributes.len())
        .filter(|&o| is_personal(view, o))
        .filter_map(|o| subject_ordinal(view, o))
        .collect()
}

/// The personal attributes handed out; when none was (a count, an existence check), the
/// subject identifiers the answer was derived from.
fn attribute_names(t: &Touch) -> Vec<String> {
    let def = t.view.snapshot.definition();
    let ordinals = if t.personal.is_empty() {
        subject_columns(&t.view)
    } else {
        t.personal.clone()
    };
    ordinals
        .iter()
        .map(|&o| def.attributes[o].name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_are_checked_and_decoded() {
        assert_eq!(parse_purpose(None).unwrap(), None);
        assert_eq!(
            parse_purpose(Some("  credit check ")).unwrap().as_deref(),
            Some("credit check")
        );
        assert!(parse_purpose(Some("  ")).is_err());
        assert!(parse_purpose(Some(&"x".repeat(MAX_PURPOSE_CHARS + 1))).is_err());
        assert!(parse_purpose(Some("a\u{7}b")).is_err());
        assert_eq!(
            purpose_text(b"kred%C4%ABta p%C4%81rbaude").unwrap(),
            "kredīta pārbaude"
        );
        assert_eq!(purpose_text(b"100% sure").unwrap(), "100% sure");
        assert_eq!(purpose_text(b"%FF").unwrap(), "%FF");
        assert_eq!(purpose_text("pārbaude".as_bytes()).unwrap(), "pārbaude");
        assert!(purpose_text(&[0xff, 0xfe]).is_err());
    }
}

//! The readers of each format, and what they share: the producer thread or task behind a
//! [`BatchStream`], the matching of source columns to the target ([`TargetInfo::plan`]),
//! value conversion with row-level errors, and the final assembly of a batch in the target
//! schema ([`TargetInfo::assemble`]).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, new_null_array};
use arrow::compute::kernels::cmp::distinct;
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dagr_engine::definition::{is_binary_type, is_decimal_type, is_string_type};
use dagr_engine::task::SpawnedTask;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{
    BatchStream, CHANGE_COLUMN, DELETE, Format, Input, InputKind, SourceBatch, Target, UPSERT,
};
use crate::error::{LoadError, Location, Result};
use crate::validate::{change_value_message, null_message};

pub(super) mod csv;
pub(super) mod ipc;
pub(super) mod ndjson;
pub(super) mod parquet;
pub(super) mod postgres;
mod text;

/// Batches buffered between a reader and the consumer.
const CHANNEL_BATCHES: usize = 4;

/// Longest value text quoted in a message.
const MAX_VALUE_CHARS: usize = 100;

/// The target, prepared for the readers.
#[derive(Debug)]
pub(super) struct TargetInfo {
    /// [`Target::schema`].
    pub(super) schema: SchemaRef,
    /// Whether this is a change set.
    pub(super) changes: bool,
    /// Dataset name, for messages.
    pub(super) dataset: String,
    /// Per target column: whether it is part of the primary key.
    pub(super) is_key: Vec<bool>,
    /// Ordinal of [`CHANGE_COLUMN`] in a change set.
    pub(super) change: Option<usize>,
}

/// How the columns of one source map to the target.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Per target column: the source column it is read from, if any.
    pub(super) slots: Vec<Option<usize>>,
    /// Non-key target columns the source leaves out (change sets): every row must be a delete.
    pub(super) absent: Vec<usize>,
}

/// Where the rows of a batch are, for messages.
pub(super) struct Rows<'a> {
    /// The source label.
    pub(super) source: &'a Arc<str>,
    /// 1-based row of the first row.
    pub(super) first_row: u64,
    /// The line each row starts on (text formats).
    pub(super) lines: Option<&'a [u64]>,
}

impl Rows<'_> {
    /// The location of row `i` of the batch, in `column`.
    pub(super) fn at(&self, i: usize, column: Option<&str>) -> Location {
        Location {
            source: self.source.to_string(),
            row: Some(self.first_row + i as u64),
            line: self.lines.and_then(|l| l.get(i).copied()),
            column: column.map(str::to_owned),
        }
    }
}

/// The location of a whole source (or of one of its columns).
pub(super) fn at_source(source: &str, column: Option<&str>) -> Location {
    Location {
        source: source.to_owned(),
        column: column.map(str::to_owned),
        ..Location::default()
    }
}

/// "column `a` is", "columns `a`, `b` are".
fn column_list(list: &[&str]) -> String {
    if list.len() == 1 {
        format!("column {} is", names(list))
    } else {
        format!("columns {} are", names(list))
    }
}

/// "`a`", "`a`, `b`".
fn names(list: &[&str]) -> String {
    list.iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TargetInfo {
    pub(super) fn new(target: &Target) -> Self {
        let schema = target.schema();
        let is_key = schema
            .fields()
            .iter()
            .map(|f| target.definition.primary_key.iter().any(|k| k == f.name()))
            .collect();
        Self {
            change: target.changes.then(|| schema.fields().len() - 1),
            schema,
            changes: target.changes,
            dataset: target.definition.name.clone(),
            is_key,
        }
    }

    /// The data type of target column `j`.
    pub(super) fn data_type(&self, j: usize) -> &DataType {
        self.schema.field(j).data_type()
    }

    /// The name of target column `j`.
    pub(super) fn name(&self, j: usize) -> &str {
        self.schema.field(j).name()
    }

    /// Match a source's column names to the target: the engine's rules (no column that is
    /// not an attribute; every attribute present, but in a change set [`CHANGE_COLUMN`] may
    /// be absent, and non-key columns too when every row is a delete).
    pub(super) fn plan(&self, names_in: &[String], at: &Location) -> Result<Plan> {
        let width = self.schema.fields().len();
        let mut slots = vec![None; width];
        let mut seen = HashSet::new();
        let mut unknown: Vec<&str> = Vec::new();
        for (i, n) in names_in.iter().enumerate() {
            if !seen.insert(n.as_str()) {
                let mut at = at.clone();
                at.column = Some(n.clone());
                return Err(LoadError::input(at, format!("column `{n}` appears twice")));
            }
            match self.schema.index_of(n) {
                Ok(j) => slots[j] = Some(i),
                Err(_) => unknown.push(n),
            }
        }
        let mut missing: Vec<&str> = Vec::new();
        let mut absent = Vec::new();
        for (j, slot) in slots.iter().enumerate() {
            if slot.is_some() || Some(j) == self.change {
                continue;
            }
            if self.changes && !self.is_key[j] {
                absent.push(j);
            } else {
                missing.push(self.name(j));
            }
        }
        let change_absent = self.change.is_some_and(|c| slots[c].is_none());
        let mut problems = Vec::new();
        let mut columns: Vec<&str> = Vec::new();
        if !unknown.is_empty() {
            columns.extend(&unknown);
            if !self.changes && unknown.contains(&CHANGE_COLUMN) {
                problems.push(format!(
                    "column `{CHANGE_COLUMN}` marks a change set, but this load replaces the whole dataset"
                ));
                unknown.retain(|n| *n != CHANGE_COLUMN);
            }
            if !unknown.is_empty() {
                let mut text = if unknown.len() == 1 {
                    format!(
                        "column {} is not an attribute of dataset `{}`",
                        names(&unknown),
                        self.dataset
                    )
                } else {
                    format!(
                        "columns {} are not attributes of dataset `{}`",
                        names(&unknown),
                        self.dataset
                    )
                };
                // A likely typo in case: names are case-sensitive.
                let hints: Vec<String> = unknown
                    .iter()
                    .filter_map(|u| {
                        self.schema
                            .fields()
                            .iter()
                            .find(|f| f.name() != *u && f.name().eq_ignore_ascii_case(u))
                            .map(|f| format!("`{u}` → `{}`", f.name()))
                    })
                    .collect();
                if !hints.is_empty() {
                    text.push_str(&format!(
                        " (names are case-sensitive: {})",
                        hints.join(", ")
                    ));
                }
                problems.push(text);
            }
        }
        if !missing.is_empty() {
            columns.extend(&missing);
            problems.push(format!("{} missing", column_list(&missing)));
        }
        if change_absent && !absent.is_empty() {
            let list: Vec<&str> = absent.iter().map(|&j| self.name(j)).collect();
            columns.extend(&list);
            problems.push(format!(
                "{} missing: a change set may leave out non-key columns only when every row is a delete, and without `{CHANGE_COLUMN}` every row is an upsert",
                column_list(&list),
            ));
        }
        if problems.is_empty() {
            return Ok(Plan { slots, absent });
        }
        let mut at = at.clone();
        if columns.len() == 1 {
            at.column = Some(columns[0].to_owned());
        }
        Err(LoadError::input(at, problems.join("; ")))
    }

    /// Build the batch in the target schema from the converted columns (one per target
    /// column; `None` where the source has none), checking values that may not be null.
    ///
    /// `failed` holds the earliest value that did not convert (its column is `None`); the
    /// error of the earliest row wins.
    pub(super) fn assemble(
        &self,
        plan: &Plan,
        mut columns: Vec<Option<ArrayRef>>,
        failed: Earliest,
        rows: usize,
        at: &Rows<'_>,
    ) -> Result<SourceBatch> {
        let mut earliest = failed;
        for (j, field) in self.schema.fields().iter().enumerate() {
            if let Some(c) = &columns[j]
                && !field.is_nullable()
                && c.null_count() > 0
            {
                let i = (0..c.len()).find(|&i| c.is_null(i)).unwrap_or(0);
                earliest.offer(i, || {
                    LoadError::input(
                        at.at(i, Some(field.name())),
                        null_message(field.name(), self.is_key[j], Some(j) == self.change, false),
                    )
                });
            }
        }
        earliest.result()?;
        let mut out: Vec<ArrayRef> = Vec::with_capacity(columns.len());
        for (j, field) in self.schema.fields().iter().enumerate() {
            let column = match columns[j].take() {
                Some(c) => c,
                None if Some(j) == self.change => Arc::new(StringArray::from_iter_values(
                    std::iter::repeat_n(UPSERT, rows),
                )),
                None => new_null_array(field.data_type(), rows),
            };
            out.push(column);
        }
        if !plan.absent.is_empty()
            && let Some(c) = self.change
        {
            let values = out[c].as_string::<i32>();
            for i in 0..rows {
                let v = values.value(i);
                if v == DELETE {
                    continue;
                }
                let message = if v == UPSERT {
                    let list: Vec<&str> = plan.absent.iter().map(|&j| self.name(j)).collect();
                    format!(
                        "this row is an upsert, but {} missing: a change set may leave out non-key columns only when every row is a delete",
                        column_list(&list)
                    )
                } else {
                    change_value_message(v)
                };
                return Err(LoadError::input(at.at(i, Some(CHANGE_COLUMN)), message));
            }
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), out).map_err(|e| {
            LoadError::input(at_source(at.source, None), format!("internal error: {e}"))
        })?;
        Ok(SourceBatch {
            batch,
            source: Arc::clone(at.source),
            first_row: at.first_row,
        })
    }
}

/// The error of the earliest row among those offered (ties: the first offered).
#[derive(Debug, Default)]
pub(super) struct Earliest(Option<(usize, LoadError)>);

impl Earliest {
    /// Offer the error `make` builds for row `i` of the batch.
    pub(super) fn offer(&mut self, i: usize, make: impl FnOnce() -> LoadError) {
        if self.0.as_ref().is_none_or(|(first, _)| i < *first) {
            self.0 = Some((i, make()));
        }
    }

    /// Offer a conversion failure (one without a row comes first).
    pub(super) fn offer_bad(&mut self, bad: Bad, rows: &Rows<'_>, column: &str) {
        let i = bad.index.unwrap_or(0);
        self.offer(i, || bad.at(rows, column));
    }

    /// The error, if any.
    pub(super) fn result(self) -> Result<()> {
        match self.0 {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// A value that did not convert.
#[derive(Debug)]
pub(super) struct Bad {
    /// The row within the array, when one value is at fault.
    pub(super) index: Option<usize>,
    /// What is wrong.
    pub(super) message: String,
}

impl Bad {
    /// The error at `rows`, in `column`.
    pub(super) fn at(self, rows: &Rows<'_>, column: &str) -> LoadError {
        let location = match self.index {
            Some(i) => rows.at(i, Some(column)),
            None => at_source(rows.source, Some(column)),
        };
        LoadError::input(location, self.message)
    }
}

fn decimal_scale(t: &DataType) -> i8 {
    match t {
        DataType::Decimal32(_, s)
        | DataType::Decimal64(_, s)
        | DataType::Decimal128(_, s)
        | DataType::Decimal256(_, s) => *s,
        _ => 0,
    }
}

/// "a Date32", "an Int64".
fn a_type(t: &DataType) -> String {
    let name = t.to_string();
    let article = match name.chars().next() {
        Some('A' | 'E' | 'I' | 'O') => "an",
        _ => "a",
    };
    format!("{article} {name}")
}

/// A value's text for a message, shortened.
fn quoted(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        return format!("`{text}`");
    }
    let short: String = text.chars().take(MAX_VALUE_CHARS).collect();
    format!("`{short}…`")
}

/// Whether a typed column of type `from` may be read into an attribute of type `to`.
pub(super) fn convertible(from: &DataType, to: &DataType) -> bool {
    if from == to {
        return true;
    }
    match (from, to) {
        (DataType::Null, _) => true,
        (DataType::Dictionary(_, value), _) => convertible(value, to),
        (_, DataType::Dictionary(_, value)) => convertible(from, value) && can_cast_types(from, to),
        (f, t) if is_string_type(f) => is_string_type(t) || can_cast_types(&DataType::Utf8, t),
        (f, t) if is_binary_type(f) => is_binary_type(t),
        (f, t) if f.is_integer() => t.is_integer() || t.is_floating() || is_decimal_type(t),
        (DataType::Float16, DataType::Float32 | DataType::Float64) => true,
        (DataType::Float32, DataType::Float64) => true,
        (f, t) if is_decimal_type(f) => {
            (is_decimal_type(t) && decimal_scale(t) >= decimal_scale(f)) || t.is_floating()
        }
        (DataType::Date32 | DataType::Date64, DataType::Date32 | DataType::Date64) => true,
        // A time zone is neither added to nor dropped from a timestamp: that would change
        // the instant (or the wall-clock time). Between zones the instant is kept.
        (DataType::Timestamp(_, from_tz), DataType::Timestamp(_, to_tz)) => {
            from_tz.is_some() == to_tz.is_some()
        }
        (DataType::Time32(_) | DataType::Time64(_), DataType::Time32(_) | DataType::Time64(_)) => {
            true
        }
        (DataType::Duration(_), DataType::Duration(_)) => true,
        _ => false,
    }
}

/// The message for a typed column that cannot be read into its attribute.
pub(super) fn type_mismatch(column: &str, from: &DataType, to: &DataType) -> String {
    let zones = match (from, to) {
        (DataType::Timestamp(_, None), DataType::Timestamp(_, Some(_))) => {
            " (a timestamp without a time zone is not given one)"
        }
        (DataType::Timestamp(_, Some(_)), DataType::Timestamp(_, None)) => {
            " (a timestamp's time zone is not dropped)"
        }
        _ => "",
    };
    format!("column `{column}` has type {from}; the dataset defines {to}{zones}")
}

fn cast_safe(array: &ArrayRef, to: &DataType) -> std::result::Result<ArrayRef, Bad> {
    cast_with_options(
        array,
        to,
        &CastOptions {
            safe: true,
            format_options: FormatOptions::default(),
        },
    )
    .map_err(|e| Bad {
        index: None,
        message: format!(
            "values of type {} cannot be read as {to}: {e}",
            array.data_type()
        ),
    })
}

/// The first row whose value was lost by a cast (valid before, null after).
fn first_lost(input: &dyn Array, output: &dyn Array) -> Option<usize> {
    if output.null_count() == input.null_count() {
        return None;
    }
    (0..input.len()).find(|&i| input.is_valid(i) && output.is_null(i))
}

fn value_text(array: &dyn Array, i: usize) -> String {
    if let Some(s) = array.as_string_opt::<i32>() {
        return s.value(i).to_owned();
    }
    match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(f) => f.value(i).to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// Parse text (a `Utf8` array) as `to`; the first value that does not parse is reported.
pub(super) fn parse_text(text: &StringArray, to: &DataType) -> std::result::Result<ArrayRef, Bad> {
    let array: ArrayRef = Arc::new(text.clone());
    if to == &DataType::Utf8 {
        return Ok(array);
    }
    if is_decimal_type(to) {
        // Arrow rounds extra decimal places away; a value is not silently changed here.
        let scale = usize::try_from(decimal_scale(to)).unwrap_or(0);
        let too_fine = |v: &str| {
            v.trim()
                .split_once('.')
                .is_some_and(|(_, f)| f.trim_end_matches('0').len() > scale)
        };
        if let Some(i) = (0..text.len()).find(|&i| text.is_valid(i) && too_fine(text.value(i))) {
            return Err(Bad {
                index: Some(i),
                message: format!(
                    "{} has more decimal places than {to} holds ({scale})",
                    quoted(text.value(i))
                ),
            });
        }
    }
    let out = cast_safe(&array, to)?;
    match first_lost(&array, out.as_ref()) {
        None => Ok(out),
        Some(i) => Err(Bad {
            index: Some(i),
            message: format!("{} is not {}", quoted(text.value(i)), a_type(to)),
        }),
    }
}

/// Convert a typed column (checked with [`convertible`]) to `to`; the first value that does
/// not fit is reported.
pub(super) fn convert_typed(array: &ArrayRef, to: &DataType) -> std::result::Result<ArrayRef, Bad> {
    if array.data_type() == to {
        return Ok(Arc::clone(array));
    }
    // Strings are parsed as text (dictionaries of strings too).
    let base = match array.data_type() {
        DataType::Dictionary(_, v) => v.as_ref(),
        t => t,
    };
    if is_string_type(base) && !is_string_type(to) {
        let text = cast_safe(array, &DataType::Utf8)?;
        return parse_text(text.as_string::<i32>(), to);
    }
    let out = cast_safe(array, to)?;
    if let Some(i) = first_lost(array.as_ref(), out.as_ref()) {
        return Err(Bad {
            index: Some(i),
            message: format!(
                "{} ({}) does not fit {to}",
                quoted(&value_text(array.as_ref(), i)),
                array.data_type()
            ),
        });
    }
    let to_base = match to {
        DataType::Dictionary(_, v) => v.as_ref(),
        t => t,
    };
    if may_round(base, to_base) {
        // Arrow divides (truncating) into a coarser unit and rounds integers into floats;
        // a value is not silently changed here: it must come back unchanged.
        let input = if base == array.data_type() {
            Arc::clone(array)
        } else {
            cast_safe(array, base)?
        };
        let back = cast_safe(&out, base)?;
        let changed = distinct(&input, &back).map_err(|e| Bad {
            index: None,
            message: e.to_string(),
        })?;
        if let Some(i) = (0..changed.len()).find(|&i| changed.value(i)) {
            return Err(Bad {
                index: Some(i),
                message: format!(
                    "{} ({base}) is more precise than {to} holds",
                    quoted(&value_text(input.as_ref(), i)),
                ),
            });
        }
    }
    Ok(out)
}

/// Whether a cast from `from` to `to` (both convertible) may change a value that it does
/// not lose: into a coarser time unit, `Date64` into `Date32` (whole days), integers into
/// floats (whose mantissa may be too short).
fn may_round(from: &DataType, to: &DataType) -> bool {
    use DataType::{Date32, Date64, Duration, Time32, Time64, Timestamp};
    let coarser = |a: &TimeUnit, b: &TimeUnit| unit_rank(b) < unit_rank(a);
    match (from, to) {
        (Timestamp(a, _), Timestamp(b, _))
        | (Time32(a) | Time64(a), Time32(b) | Time64(b))
        | (Duration(a), Duration(b)) => coarser(a, b),
        (Date64, Date32) => true,
        (f, t) => f.is_integer() && t.is_floating(),
    }
}

/// Time units from the coarsest.
fn unit_rank(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// Convert `batch`, the rows of a typed source (Parquet, IPC) that follow the `*row` rows
/// already read, and hand it over with `emit`; `*row` moves past it. `Ok(false)` when nobody
/// reads batches any more.
pub(super) fn emit_typed(
    target: &TargetInfo,
    plan: &Plan,
    batch: &RecordBatch,
    source: &Arc<str>,
    row: &mut u64,
    emit: Emit<'_>,
) -> Result<bool> {
    let rows = Rows {
        source,
        first_row: *row + 1,
        lines: None,
    };
    let out = typed_batch(target, plan, batch, &rows)?;
    *row += batch.num_rows() as u64;
    Ok(emit(out))
}

/// Convert the columns of a typed batch (Parquet, IPC) in place of `plan` and assemble it.
fn typed_batch(
    target: &TargetInfo,
    plan: &Plan,
    batch: &RecordBatch,
    rows: &Rows<'_>,
) -> Result<SourceBatch> {
    let mut columns = Vec::with_capacity(plan.slots.len());
    let mut failed = Earliest::default();
    for (j, slot) in plan.slots.iter().enumerate() {
        columns.push(match slot {
            Some(i) => match convert_typed(batch.column(*i), target.data_type(j)) {
                Ok(array) => Some(array),
                Err(bad) => {
                    failed.offer_bad(bad, rows, target.name(j));
                    None
                }
            },
            None => None,
        });
    }
    target.assemble(plan, columns, failed, batch.num_rows(), rows)
}

/// The plan of a typed source (one with an Arrow schema, like Arrow IPC and Parquet): its
/// columns matched to the target by name ([`TargetInfo::plan`]), and each matched column's
/// type checked to convert to the target's.
pub(super) fn typed_plan(target: &TargetInfo, schema: &Schema, source: &str) -> Result<Plan> {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let plan = target.plan(&names, &at_source(source, None))?;
    for (j, slot) in plan.slots.iter().enumerate() {
        if let Some(i) = slot {
            let from = schema.field(*i).data_type();
            let to = target.data_type(j);
            if !convertible(from, to) {
                return Err(LoadError::input(
                    at_source(source, Some(target.name(j))),
                    type_mismatch(target.name(j), from, to),
                ));
            }
        }
    }
    Ok(plan)
}

/// A reader's way to hand over batches; `false` when nobody reads them any more.
pub(super) type Emit<'a> = &'a mut dyn FnMut(SourceBatch) -> bool;

type Sender = mpsc::Sender<Result<SourceBatch>>;

/// What produces one input's batches.
enum Worker {
    Blocking(tokio::task::JoinHandle<()>),
    Task(SpawnedTask<()>),
}

impl Worker {
    async fn join(self) -> std::result::Result<(), String> {
        match self {
            Worker::Blocking(h) => h.await.map_err(|e| e.to_string()),
            Worker::Task(t) => t.join().await.map_err(|e| e.to_string()),
        }
    }
}

enum State<F> {
    Start(F),
    Running(mpsc::Receiver<Result<SourceBatch>>, Worker),
    Done,
}

/// A stream fed through a bounded channel by the worker `start` launches on first poll
/// (so that opening needs no runtime; polling does).
fn channel_stream<F>(label: Arc<str>, start: F) -> BatchStream
where
    F: FnOnce(Sender) -> Worker + Send + 'static,
{
    futures::stream::unfold(State::Start(start), move |state| {
        let label = Arc::clone(&label);
        async move {
            let (mut rx, worker) = match state {
                State::Start(start) => {
                    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
                    (rx, start(tx))
                }
                State::Running(rx, worker) => (rx, worker),
                State::Done => return None,
            };
            match rx.recv().await {
                Some(item) => Some((item, State::Running(rx, worker))),
                None => match worker.join().await {
                    Ok(()) => None,
                    Err(e) => Some((
                        Err(LoadError::Io(format!("{label}: the reader failed: {e}"))),
                        State::Done,
                    )),
                },
            }
        }
    })
    .boxed()
}

/// The batches of one input.
pub(super) fn open_input(input: &Input, target: Arc<TargetInfo>, batch_rows: usize) -> BatchStream {
    let label = Arc::clone(&input.label);
    match &input.kind {
        InputKind::File { path, format, csv } => {
            let (path, format, csv) = (path.clone(), *format, csv.clone());
            channel_stream(Arc::clone(&label), move |tx: Sender| {
                Worker::Blocking(tokio::task::spawn_blocking(move || {
                    let mut emit = |b: SourceBatch| tx.blocking_send(Ok(b)).is_ok();
                    let result = match format {
                        Format::Csv => {
                            csv::read(&path, &label, &csv, &target, batch_rows, &mut emit)
                        }
                        Format::Ndjson => {
                            ndjson::read(&path, &label, &target, batch_rows, &mut emit)
                        }
                        Format::Ipc => ipc::read(&path, &label, &target, batch_rows, &mut emit),
                        Format::Parquet => {
                            parquet::read(&path, &label, &target, batch_rows, &mut emit)
                        }
                    };
                    if let Err(e) = result {
                        let _ = tx.blocking_send(Err(e));
                    }
                }))
            })
        }
        InputKind::Postgres { url, what } => {
            let (url, what) = (url.0.clone(), what.clone());
            channel_stream(Arc::clone(&label), move |tx: Sender| {
                Worker::Task(SpawnedTask::spawn(async move {
                    let result =
                        postgres::read(&url, &what, &label, &target, batch_rows, &tx).await;
                    if let Err(e) = result {
                        let _ = tx.send(Err(e)).await;
                    }
                }))
            })
        }
    }
}

/// An I/O error reading `source`.
pub(super) fn io_error(source: &str, e: &std::io::Error) -> LoadError {
    LoadError::Io(format!("{source}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[Option<&str>], to: &DataType) -> std::result::Result<ArrayRef, Bad> {
        parse_text(&values.iter().copied().collect::<StringArray>(), to)
    }

    #[test]
    fn text_is_parsed_and_the_first_bad_value_named() {
        let ok = parse(
            &[Some("1.50"), None, Some("-2")],
            &DataType::Decimal128(10, 2),
        )
        .unwrap();
        assert_eq!(ok.null_count(), 1);
        let bad = parse(&[Some("1.5"), Some("1.234")], &DataType::Decimal128(10, 2)).unwrap_err();
        assert_eq!(bad.index, Some(1));
        assert_eq!(
            bad.message,
            "`1.234` has more decimal places than Decimal128(10, 2) holds (2)"
        );
        let bad = parse(&[Some("12"), Some("x")], &DataType::Int64).unwrap_err();
        assert_eq!(
            (bad.index, bad.message.as_str()),
            (Some(1), "`x` is not an Int64")
        );
        let bad = parse(&[Some("2024-02-30")], &DataType::Date32).unwrap_err();
        assert_eq!(bad.message, "`2024-02-30` is not a Date32");
        assert!(parse(&[Some("yes"), Some("0")], &DataType::Boolean).is_ok());
    }

    #[test]
    fn typed_conversions_follow_the_documented_rules() {
        use DataType::*;
        assert!(convertible(&Int32, &Int64));
        assert!(convertible(&Int64, &Int16));
        assert!(convertible(&Int64, &Decimal128(18, 2)));
        assert!(convertible(&Float32, &Float64));
        assert!(!convertible(&Float64, &Float32));
        assert!(!convertible(&Float64, &Int64));
        assert!(convertible(&Decimal128(10, 2), &Decimal128(18, 4)));
        assert!(!convertible(&Decimal128(10, 4), &Decimal128(18, 2)));
        assert!(convertible(&LargeUtf8, &Utf8));
        assert!(convertible(&Utf8View, &Date32));
        assert!(!convertible(&Int64, &Utf8));
        assert!(!convertible(&Boolean, &Int8));
        // Units convert; a time zone is neither added nor dropped, but may change.
        assert!(convertible(
            &Timestamp(TimeUnit::Nanosecond, None),
            &Timestamp(TimeUnit::Second, None)
        ));
        assert!(!convertible(
            &Timestamp(TimeUnit::Nanosecond, None),
            &Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        ));
        assert!(!convertible(
            &Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            &Timestamp(TimeUnit::Microsecond, None)
        ));
        assert!(convertible(
            &Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
            &Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        ));
        assert_eq!(
            type_mismatch(
                "at",
                &Timestamp(TimeUnit::Microsecond, None),
                &Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ),
            "column `at` has type Timestamp(µs); the dataset defines Timestamp(µs, \"UTC\") \
             (a timestamp without a time zone is not given one)"
        );
        assert!(convertible(
            &Dictionary(Box::new(Int32), Box::new(Utf8)),
            &Utf8
        ));
        let big: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1, 1 << 40]));
        let bad = convert_typed(&big, &Int32).unwrap_err();
        assert_eq!(bad.index, Some(1));
        assert_eq!(bad.message, "`1099511627776` (Int64) does not fit Int32");
    }

    /// Converts `from` to `to`: the values, or the row and message of the first refused.
    fn typed(from: ArrayRef, to: &DataType) -> std::result::Result<Vec<String>, (usize, String)> {
        match convert_typed(&from, to) {
            Ok(out) => {
                assert_eq!(out.data_type(), to);
                Ok((0..out.len())
                    .map(|i| value_text(out.as_ref(), i))
                    .collect())
            }
            Err(bad) => Err((bad.index.unwrap(), bad.message)),
        }
    }

    #[test]
    fn typed_conversions_into_a_coarser_unit_are_exact_or_refused() {
        use DataType::*;
        use arrow::array::{
            Date64Array, DurationNanosecondArray, Int32Array, Int64Array, Time32MillisecondArray,
            Time64MicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        };
        let ns = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(TimestampNanosecondArray::from(v)) };
        let us = Timestamp(TimeUnit::Microsecond, None);
        let s = Timestamp(TimeUnit::Second, None);
        // Whole units (negative ones too) convert exactly.
        assert_eq!(
            typed(
                ns(vec![Some(1_000_000_000), None, Some(-2_000_000_000)]),
                &s
            ),
            Ok(vec![
                "1970-01-01T00:00:01".to_owned(),
                String::new(),
                "1969-12-31T23:59:58".to_owned()
            ])
        );
        assert_eq!(
            typed(ns(vec![Some(1_000), None, Some(-3_000)]), &us),
            Ok(vec![
                "1970-01-01T00:00:00.000001".to_owned(),
                String::new(),
                "1969-12-31T23:59:59.999997".to_owned()
            ])
        );
        // A fraction of the coarser unit is refused at its row, negative values too (Arrow
        // would truncate them towards zero).
        assert_eq!(
            typed(ns(vec![Some(1_000), Some(1_001)]), &us),
            Err((
                1,
                "`1970-01-01T00:00:00.000001001` (Timestamp(ns)) is more precise than Timestamp(µs) holds"
                    .to_owned()
            ))
        );
        assert_eq!(
            typed(ns(vec![None, Some(-1_500)]), &us),
            Err((
                1,
                "`1969-12-31T23:59:59.999998500` (Timestamp(ns)) is more precise than Timestamp(µs) holds"
                    .to_owned()
            ))
        );
        // Between zones the instant is kept.
        let zoned: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![Some(7_000)]).with_timezone("+02:00"));
        assert_eq!(
            typed(zoned, &Timestamp(TimeUnit::Second, Some("UTC".into()))),
            Ok(vec!["1970-01-01T00:00:07Z".to_owned()])
        );
        // Times, dates, durations.
        let micros: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![1_000, 1_234]));
        assert_eq!(
            typed(micros, &Time32(TimeUnit::Millisecond)),
            Err((
                1,
                "`00:00:00.001234` (Time64(µs)) is more precise than Time32(ms) holds".to_owned()
            ))
        );
        let millis: ArrayRef = Arc::new(Time32MillisecondArray::from(vec![3_000]));
        assert_eq!(
            typed(millis, &Time32(TimeUnit::Second)),
            Ok(vec!["00:00:03".to_owned()])
        );
        const DAY: i64 = 86_400_000;
        let dates: ArrayRef = Arc::new(Date64Array::from(vec![DAY, -DAY]));
        assert_eq!(
            typed(dates, &Date32),
            Ok(vec!["1970-01-02".to_owned(), "1969-12-31".to_owned()])
        );
        let dates: ArrayRef = Arc::new(Date64Array::from(vec![DAY, -DAY + 1]));
        let (row, message) = typed(dates, &Date32).unwrap_err();
        assert_eq!(row, 1);
        assert!(
            message.ends_with("(Date64) is more precise than Date32 holds"),
            "{message}"
        );
        let nanos: ArrayRef = Arc::new(DurationNanosecondArray::from(vec![2_000_000, 1]));
        let (row, message) = typed(nanos, &Duration(TimeUnit::Millisecond)).unwrap_err();
        assert_eq!(row, 1);
        assert!(
            message.ends_with("(Duration(ns)) is more precise than Duration(ms) holds"),
            "{message}"
        );
        // Integers into floats whose mantissa cannot hold them.
        let big: ArrayRef = Arc::new(Int64Array::from(vec![1 << 53, (1 << 53) + 1]));
        assert_eq!(
            typed(big, &Float64),
            Err((
                1,
                "`9007199254740993` (Int64) is more precise than Float64 holds".to_owned()
            ))
        );
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(-16_777_216), None]));
        assert_eq!(
            typed(ints, &Float32),
            Ok(vec!["-16777216.0".to_owned(), String::new()])
        );
    }
}

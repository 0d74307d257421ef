//! CSV: a streaming RFC 4180 parser that knows the line every record starts on, values
//! collected as text and parsed as the defined types (with `--infer-schema`, numbers in a
//! column arrow-csv infers as Float64 may be whole numbers written with a zero fraction).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use dagr_engine::definition::is_string_type;
use encoding_rs::Encoding;

use super::text::{TextError, TextInput, TextRead};
use super::{Bad, Earliest, Emit, Plan, Rows, TargetInfo, io_error, parse_text};
use crate::error::{LoadError, Location, Result};
use crate::source::{CHANGE_COLUMN, CsvOptions, SourceBatch};

/// Records arrow-csv looks at to infer column types.
const INFER_RECORDS: usize = 1000;

/// Read a CSV file.
pub(in crate::source) fn read(
    path: &Path,
    label: &Arc<str>,
    options: &CsvOptions,
    target: &TargetInfo,
    batch_rows: usize,
    emit: Emit<'_>,
) -> Result<()> {
    let encoding = Encoding::for_label(options.encoding.trim().as_bytes())
        .ok_or_else(|| LoadError::Usage(format!("unknown encoding `{}`", options.encoding)))?;
    let mut input = TextInput::open(path, encoding).map_err(|e| io_error(label, &e))?;
    let inferred = if options.infer_schema {
        infer_types(path, encoding, options)
    } else {
        None
    };
    let mut parser = Parser::new(options.delimiter, options.quote);
    let mut sink = Sink::new(label, options, target, batch_rows, inferred);
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        if sink.is_full() {
            let batch = sink.flush()?;
            if !emit(batch) {
                return Ok(());
            }
        }
        if pos == buf.len() {
            buf.clear();
            pos = 0;
            match input.read(&mut buf) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(TextError::Io(e)) => return Err(io_error(label, &e)),
                Err(TextError::Malformed(message)) => {
                    return Err(sink.error_at(&parser, message));
                }
            }
        }
        pos += parser.feed(&buf[pos..], &mut sink)?;
    }
    parser.finish(&mut sink)?;
    if sink.pending() > 0 {
        let batch = sink.flush()?;
        emit(batch);
    }
    Ok(())
}

/// Column types as arrow-csv infers them from the first records, by position.
fn infer_types(
    path: &Path,
    encoding: &'static Encoding,
    options: &CsvOptions,
) -> Option<Vec<DataType>> {
    let input = TextInput::open(path, encoding).ok()?;
    let format = arrow::csv::reader::Format::default()
        .with_header(options.header)
        .with_delimiter(options.delimiter)
        .with_quote(options.quote);
    // A file that arrow-csv cannot read is read without inference: the parser below then
    // reports what is wrong, with its line.
    let (schema, _) = format
        .infer_schema(TextRead::new(input), Some(INFER_RECORDS))
        .ok()?;
    Some(
        schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect(),
    )
}

/// Parse text with the inferred type in mind. A cast through the inferred type is not
/// exact (`100001.5` read as a Float64 and cast to Int64 is `100001`, `1.234` cast to
/// Decimal(10, 2) is `1.23`, `2` cast to Boolean is `true`), so values are parsed as `to`
/// directly, with the same values and errors as without inference. The one leniency: in
/// a column inferred as Float64, a whole number written with a zero fraction (`100001.0`,
/// `-7.`) reads into an integer attribute as that integer, exactly.
fn parse_inferred(
    text: &StringArray,
    inferred: &DataType,
    to: &DataType,
) -> std::result::Result<ArrayRef, Bad> {
    if inferred != &DataType::Float64 || !to.is_integer() {
        return parse_text(text, to);
    }
    if !text.iter().flatten().any(|v| whole_number(v).is_some()) {
        return parse_text(text, to);
    }
    let whole: StringArray = text
        .iter()
        .map(|v| v.map(|v| whole_number(v).unwrap_or(v)))
        .collect();
    parse_text(&whole, to).map_err(|bad| match bad.index {
        // Reported as written (`3000000000.0` is not an Int32), as without inference.
        Some(i) => match parse_text(&text.slice(i, 1), to) {
            Err(direct) => Bad {
                index: Some(i),
                message: direct.message,
            },
            Ok(_) => bad,
        },
        None => bad,
    })
}

/// The integer part of `[+-]digits.zeros` (`100001.0` → `100001`); no exponent, nothing
/// else, so that the integer is exactly the value written.
fn whole_number(v: &str) -> Option<&str> {
    let (int, fraction) = v.split_once('.')?;
    let digits = int.strip_prefix(['-', '+']).unwrap_or(int);
    let whole = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b == b'0');
    whole.then_some(int)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a record (blank lines are skipped here).
    RecordStart,
    /// Before a field.
    FieldStart,
    /// In an unquoted field.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// After a quote in a quoted field: a doubled quote, or the end of the field.
    QuoteInQuoted,
}

/// The CSV state machine. Records end at `\n`, `\r\n` or `\r` outside quotes; lines are
/// counted by `\n`.
struct Parser {
    delimiter: u8,
    quote: u8,
    state: State,
    /// Line of the parse position (1-based).
    line: u64,
    /// Line the current record started on.
    record_line: u64,
    /// The current record's field bytes, unquoted.
    record: Vec<u8>,
    /// Per finished field of the current record: its end in `record`, whether quoted.
    ends: Vec<(usize, bool)>,
    /// Whether the current field started with a quote.
    quoted: bool,
}

impl Parser {
    fn new(delimiter: u8, quote: u8) -> Self {
        Self {
            delimiter,
            quote,
            state: State::RecordStart,
            line: 1,
            record_line: 1,
            record: Vec::new(),
            ends: Vec::new(),
            quoted: false,
        }
    }

    fn end_field(&mut self) {
        self.ends.push((self.record.len(), self.quoted));
    }

    fn end_record(&mut self, sink: &mut Sink<'_>) -> Result<()> {
        sink.record(&self.record, &self.ends, self.record_line)?;
        self.record.clear();
        self.ends.clear();
        self.state = State::RecordStart;
        Ok(())
    }

    /// Parse `data`, handing records to `sink`; stops after a record that fills the sink.
    /// Returns the bytes consumed.
    fn feed(&mut self, data: &[u8], sink: &mut Sink<'_>) -> Result<usize> {
        let (d, q) = (self.delimiter, self.quote);
        let n = data.len();
        let mut i = 0;
        while i < n {
            match self.state {
                State::RecordStart => match data[i] {
                    b'\n' => {
                        self.line += 1;
                        i += 1;
                    }
                    b'\r' => i += 1,
                    _ => {
                        self.record_line = self.line;
                        self.state = State::FieldStart;
                    }
                },
                State::FieldStart => {
                    if data[i] == q {
                        self.quoted = true;
                        self.state = State::Quoted;
                        i += 1;
                    } else {
                        self.quoted = false;
                        self.state = State::Unquoted;
                    }
                }
                State::Unquoted => {
                    let start = i;
                    while i < n && data[i] != d && data[i] != b'\n' && data[i] != b'\r' {
                        i += 1;
                    }
                    self.record.extend_from_slice(&data[start..i]);
                    if i == n {
                        break;
                    }
                    let b = data[i];
                    i += 1;
                    self.end_field();
                    if b == d {
                        self.state = State::FieldStart;
                    } else {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        self.end_record(sink)?;
                        if sink.is_full() {
                            return Ok(i);
                        }
                    }
                }
                State::Quoted => {
                    let start = i;
                    while i < n && data[i] != q && data[i] != b'\n' {
                        i += 1;
                    }
                    self.record.extend_from_slice(&data[start..i]);
                    if i == n {
                        break;
                    }
                    if data[i] == q {
                        self.state = State::QuoteInQuoted;
                    } else {
                        self.record.push(b'\n');
                        self.line += 1;
                    }
                    i += 1;
                }
                State::QuoteInQuoted => {
                    let b = data[i];
                    if b == q {
                        self.record.push(q);
                        self.state = State::Quoted;
                        i += 1;
                    } else if b == d {
                        self.end_field();
                        self.state = State::FieldStart;
                        i += 1;
                    } else if b == b'\n' || b == b'\r' {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        i += 1;
                        self.end_field();
                        self.end_record(sink)?;
                        if sink.is_full() {
                            return Ok(i);
                        }
                    } else {
                        // Text after the closing quote: taken as is, like csv-core does.
                        self.state = State::Unquoted;
                    }
                }
            }
        }
        Ok(i)
    }

    /// The end of the input: the last record may lack its line break.
    fn finish(&mut self, sink: &mut Sink<'_>) -> Result<()> {
        match self.state {
            State::RecordStart => Ok(()),
            State::Quoted => {
                let field = self.ends.len();
                Err(sink.error(
                    self.record_line,
                    Some(field),
                    format!(
                        "a quoted field is not closed: its quote (`{}`) runs to the end of the file",
                        char::from(self.quote)
                    ),
                ))
            }
            _ => {
                self.end_field();
                self.end_record(sink)
            }
        }
    }
}

/// One column of the file.
struct Column {
    /// Target column it is read into.
    target: usize,
    /// Whether the target type is a string (an empty field is then an empty string, unless
    /// it is the null text).
    string_target: bool,
    /// The type arrow-csv inferred, with `infer_schema`.
    inferred: Option<DataType>,
    values: StringBuilder,
}

/// The file's columns, known from the header (or the first record).
struct Layout {
    names: Vec<String>,
    plan: Plan,
    columns: Vec<Column>,
}

/// Where records go: the header, then rows collected into batches.
struct Sink<'a> {
    label: &'a Arc<str>,
    target: &'a TargetInfo,
    batch_rows: usize,
    header: bool,
    null: Option<Vec<u8>>,
    inferred: Option<Vec<DataType>>,
    layout: Option<Layout>,
    /// Start line of each pending row.
    lines: Vec<u64>,
    /// Data rows seen.
    rows: u64,
    /// Data rows handed over in batches.
    emitted: u64,
}

impl<'a> Sink<'a> {
    fn new(
        label: &'a Arc<str>,
        options: &CsvOptions,
        target: &'a TargetInfo,
        batch_rows: usize,
        inferred: Option<Vec<DataType>>,
    ) -> Self {
        Self {
            label,
            target,
            batch_rows,
            header: options.header,
            null: options.null.as_ref().map(|n| n.as_bytes().to_vec()),
            inferred,
            layout: None,
            lines: Vec::new(),
            rows: 0,
            emitted: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.lines.len() >= self.batch_rows
    }

    fn pending(&self) -> usize {
        self.lines.len()
    }

    /// An error at `line`, in the row being read, in field `field` (when known).
    fn error(&self, line: u64, field: Option<usize>, message: String) -> LoadError {
        let in_header = self.header && self.layout.is_none();
        let column = match (&self.layout, field) {
            (Some(l), Some(f)) => l.names.get(f).cloned(),
            _ => None,
        };
        LoadError::input(
            Location {
                source: self.label.to_string(),
                line: Some(line),
                row: (!in_header).then_some(self.rows + 1),
                column,
            },
            message,
        )
    }

    /// An error at the parser's position (malformed text).
    fn error_at(&self, parser: &Parser, message: String) -> LoadError {
        let field = (parser.state != State::RecordStart).then_some(parser.ends.len());
        self.error(parser.line, field, message)
    }

    fn text<'b>(&self, bytes: &'b [u8], line: u64, field: usize) -> Result<&'b str> {
        std::str::from_utf8(bytes)
            .map_err(|e| self.error(line, Some(field), format!("invalid UTF-8: {e}")))
    }

    /// Learn the columns from their names (the header, or the dataset's order).
    fn set_layout(&mut self, names: Vec<String>, line: u64) -> Result<()> {
        let at = Location {
            source: self.label.to_string(),
            line: Some(line),
            ..Location::default()
        };
        let plan = self.target.plan(&names, &at)?;
        let mut columns = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            let Some(target) = plan.slots.iter().position(|s| *s == Some(i)) else {
                continue;
            };
            let inferred = self
                .inferred
                .as_ref()
                .filter(|t| t.len() == names.len())
                .map(|t| t[i].clone());
            columns.push(Column {
                target,
                string_target: is_string_type(self.target.data_type(target)),
                inferred,
                values: StringBuilder::with_capacity(self.batch_rows.min(65_536), 0),
            });
        }
        self.layout = Some(Layout {
            names,
            plan,
            columns,
        });
        Ok(())
    }

    /// One record from the parser.
    fn record(&mut self, bytes: &[u8], ends: &[(usize, bool)], line: u64) -> Result<()> {
        if self.layout.is_none() {
            if self.header {
                let mut names = Vec::with_capacity(ends.len());
                let mut start = 0;
                for (f, &(end, _)) in ends.iter().enumerate() {
                    let name = self.text(&bytes[start..end], line, f)?;
                    if name.is_empty() {
                        return Err(self.error(
                            line,
                            None,
                            format!("header column {} has no name", f + 1),
                        ));
                    }
                    names.push(name.to_owned());
                    start = end;
                }
                return self.set_layout(names, line);
            }
            let fields = self.target.schema.fields();
            let width = fields.len();
            let names: Vec<String> = if ends.len() == width {
                fields.iter().map(|f| f.name().clone()).collect()
            } else if self.target.changes && ends.len() + 1 == width {
                fields[..width - 1]
                    .iter()
                    .map(|f| f.name().clone())
                    .collect()
            } else {
                let order: Vec<String> = fields
                    .iter()
                    .filter(|f| f.name() != CHANGE_COLUMN)
                    .map(|f| f.name().clone())
                    .collect();
                return Err(self.error(
                    line,
                    None,
                    format!(
                        "{} fields; without a header the fields must be the dataset's {} columns in order ({}){}",
                        ends.len(),
                        order.len(),
                        order.join(", "),
                        if self.target.changes {
                            format!(", optionally followed by `{CHANGE_COLUMN}`")
                        } else {
                            String::new()
                        }
                    ),
                ));
            };
            self.set_layout(names, line)?;
        }
        let expected = self.layout.as_ref().map_or(0, |l| l.names.len());
        if ends.len() != expected {
            let message = if self.header {
                format!(
                    "{} field{}, but the header has {expected} column{}",
                    ends.len(),
                    if ends.len() == 1 { "" } else { "s" },
                    if expected == 1 { "" } else { "s" },
                )
            } else {
                format!(
                    "{} field{}, but the first record has {expected}",
                    ends.len(),
                    if ends.len() == 1 { "" } else { "s" },
                )
            };
            return Err(self.error(line, None, message));
        }
        let mut start = 0;
        let Some(layout) = self.layout.as_mut() else {
            return Ok(());
        };
        for (f, (column, &(end, quoted))) in layout.columns.iter_mut().zip(ends).enumerate() {
            let value = &bytes[start..end];
            start = end;
            let null_text = match &self.null {
                Some(t) => value == t.as_slice(),
                None => value.is_empty(),
            };
            if (!quoted && null_text) || (value.is_empty() && !column.string_target) {
                column.values.append_null();
            } else {
                match std::str::from_utf8(value) {
                    Ok(s) => column.values.append_value(s),
                    Err(e) => {
                        let name = layout.names.get(f).cloned();
                        return Err(LoadError::input(
                            Location {
                                source: self.label.to_string(),
                                line: Some(line),
                                row: Some(self.rows + 1),
                                column: name,
                            },
                            format!("invalid UTF-8: {e}"),
                        ));
                    }
                }
            }
        }
        self.rows += 1;
        self.lines.push(line);
        Ok(())
    }

    /// The pending rows as a batch in the target schema.
    fn flush(&mut self) -> Result<SourceBatch> {
        let Sink {
            label,
            target,
            layout,
            lines,
            emitted,
            ..
        } = self;
        let layout = layout
            .as_mut()
            .ok_or_else(|| LoadError::Io(format!("{label}: rows before the header")))?;
        let n = lines.len();
        let rows = Rows {
            source: label,
            first_row: *emitted + 1,
            lines: Some(lines.as_slice()),
        };
        let mut columns: Vec<Option<ArrayRef>> = vec![None; target.schema.fields().len()];
        let mut failed = Earliest::default();
        for column in &mut layout.columns {
            let text = column.values.finish();
            let to = target.data_type(column.target);
            let array = match &column.inferred {
                Some(inferred) => parse_inferred(&text, inferred, to),
                None => parse_text(&text, to),
            };
            match array {
                Ok(array) => columns[column.target] = Some(array),
                Err(bad) => failed.offer_bad(bad, &rows, target.name(column.target)),
            }
        }
        let batch = target.assemble(&layout.plan, columns, failed, n, &rows)?;
        *emitted += n as u64;
        lines.clear();
        Ok(batch)
    }
}

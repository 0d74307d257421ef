//! NDJSON: lines are split here (so every row knows its line), decoded by arrow-json a
//! batch at a time with every column as text, and parsed as the defined types. A batch that
//! arrow-json refuses is decoded again line by line to find the line at fault.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::reader::{Decoder, ReaderBuilder};

use super::text::{TextError, TextInput};
use super::{Earliest, Emit, Plan, Rows, TargetInfo, io_error, parse_text};
use crate::error::{LoadError, Location, Result};
use crate::source::{CHANGE_COLUMN, SourceBatch, UPSERT};

/// Non-blank lines collected for one batch.
#[derive(Default)]
struct Chunk {
    /// The lines, each followed by `\n`.
    text: Vec<u8>,
    /// Each line's span in `text`.
    spans: Vec<(usize, usize)>,
    /// Each line's number in the file.
    lines: Vec<u64>,
}

impl Chunk {
    fn push(&mut self, line: &[u8], number: u64) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let start = self.text.len();
        self.text.extend_from_slice(line);
        self.spans.push((start, self.text.len()));
        self.text.push(b'\n');
        self.lines.push(number);
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.lines.clear();
    }
}

struct Reader<'a> {
    label: &'a Arc<str>,
    target: &'a TargetInfo,
    /// Every target column, as nullable text.
    schema: SchemaRef,
    decoder: Decoder,
    plan: Plan,
    batch_rows: usize,
    emitted: u64,
}

fn decoder(schema: &SchemaRef, batch_rows: usize) -> Result<Decoder> {
    ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_rows)
        .with_coerce_primitive(true)
        .with_strict_mode(true)
        .build_decoder()
        .map_err(|e| LoadError::Io(format!("NDJSON decoder: {e}")))
}

/// Read an NDJSON file.
pub(super) fn read(
    path: &Path,
    label: &Arc<str>,
    target: &TargetInfo,
    batch_rows: usize,
    emit: Emit<'_>,
) -> Result<()> {
    let mut input = TextInput::open(path, encoding_rs::UTF_8).map_err(|e| io_error(label, &e))?;
    let schema: SchemaRef = Arc::new(Schema::new(
        target
            .schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let width = schema.fields().len();
    let mut reader = Reader {
        label,
        target,
        decoder: decoder(&schema, batch_rows)?,
        schema,
        plan: Plan {
            slots: (0..width).map(Some).collect(),
            absent: Vec::new(),
        },
        batch_rows,
        emitted: 0,
    };
    let mut chunk = Chunk::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut line = 0u64;
    loop {
        // What is pending holds no line break: search only the new text.
        let mut scan = pending.len();
        let more = match input.read(&mut pending) {
            Ok(more) => more,
            Err(TextError::Io(e)) => return Err(io_error(label, &e)),
            Err(TextError::Malformed(message)) => {
                return Err(LoadError::input(
                    Location {
                        source: label.to_string(),
                        line: Some(line + 1),
                        row: Some(reader.emitted + chunk.len() as u64 + 1),
                        column: None,
                    },
                    message,
                ));
            }
        };
        let mut start = 0;
        while let Some(offset) = pending[scan..].iter().position(|&b| b == b'\n') {
            let end = scan + offset;
            line += 1;
            chunk.push(&pending[start..end], line);
            start = end + 1;
            scan = start;
            if chunk.len() >= reader.batch_rows {
                let batch = reader.flush(&chunk)?;
                chunk.clear();
                if !emit(batch) {
                    return Ok(());
                }
            }
        }
        pending.drain(..start);
        if !more {
            if !pending.is_empty() {
                line += 1;
                chunk.push(&pending, line);
            }
            break;
        }
    }
    if chunk.len() > 0 {
        let batch = reader.flush(&chunk)?;
        emit(batch);
    }
    Ok(())
}

impl Reader<'_> {
    /// Decode the chunk's lines as a batch in the target schema.
    fn flush(&mut self, chunk: &Chunk) -> Result<SourceBatch> {
        let batch = match self.decode(chunk) {
            Some(batch) => batch,
            None => return Err(self.locate(chunk)),
        };
        let n = batch.num_rows();
        let rows = Rows {
            source: self.label,
            first_row: self.emitted + 1,
            lines: Some(&chunk.lines),
        };
        let mut columns = Vec::with_capacity(batch.num_columns());
        let mut failed = Earliest::default();
        for (j, column) in batch.columns().iter().enumerate() {
            let mut text = column.as_string::<i32>().clone();
            if Some(j) == self.target.change && text.null_count() > 0 {
                // A line without `_dagr_change` is an upsert.
                text = text
                    .iter()
                    .map(|v| Some(v.unwrap_or(UPSERT)))
                    .collect::<StringArray>();
            }
            match parse_text(&text, self.target.data_type(j)) {
                Ok(array) => columns.push(Some(array)),
                Err(bad) => {
                    failed.offer_bad(bad, &rows, self.target.name(j));
                    columns.push(None);
                }
            }
        }
        let out = self
            .target
            .assemble(&self.plan, columns, failed, n, &rows)?;
        self.emitted += n as u64;
        Ok(out)
    }

    /// The chunk as one batch of text columns, or `None` if arrow-json refuses it or finds
    /// other than one value per line.
    fn decode(&mut self, chunk: &Chunk) -> Option<RecordBatch> {
        let mut done = 0;
        while done < chunk.text.len() {
            match self.decoder.decode(&chunk.text[done..]) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(_) => return None,
            }
        }
        let batch = self.decoder.flush().ok()??;
        (batch.num_rows() == chunk.len()).then_some(batch)
    }

    /// The error of the first line arrow-json refuses on its own.
    fn locate(&mut self, chunk: &Chunk) -> LoadError {
        for (k, &(start, end)) in chunk.spans.iter().enumerate() {
            let text = &chunk.text[start..end];
            let problem = match decoder(&self.schema, 2) {
                Ok(mut d) => match d.decode(text).and_then(|_| d.flush()) {
                    Ok(Some(b)) if b.num_rows() == 1 => None,
                    Ok(_) => Some(String::from("the line does not hold one JSON object")),
                    Err(e) => Some(e.to_string()),
                },
                Err(e) => return e,
            };
            let Some(arrow_message) = problem else {
                continue;
            };
            let (column, message) = self.explain(text, arrow_message);
            return LoadError::input(
                Location {
                    source: self.label.to_string(),
                    line: Some(chunk.lines[k]),
                    row: Some(self.emitted + k as u64 + 1),
                    column,
                },
                message,
            );
        }
        LoadError::input(
            Location {
                source: self.label.to_string(),
                line: chunk.lines.first().copied(),
                row: Some(self.emitted + 1),
                column: None,
            },
            "the lines from here on could not be decoded as JSON objects",
        )
    }

    /// Why a line was refused, in the reader's terms (with serde_json for the detail).
    fn explain(&self, line: &[u8], arrow_message: String) -> (Option<String>, String) {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Err(e) => {
                let text = e.to_string();
                let what = text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(what, _)| what);
                (
                    None,
                    format!("not valid JSON: {what} (at character {})", e.column()),
                )
            }
            Ok(serde_json::Value::Object(map)) => {
                for (key, value) in &map {
                    if self.schema.index_of(key).is_err() {
                        let message = if key == CHANGE_COLUMN {
                            format!(
                                "column `{CHANGE_COLUMN}` marks a change set, but this load replaces the whole dataset"
                            )
                        } else {
                            format!(
                                "column `{key}` is not an attribute of dataset `{}`",
                                self.target.dataset
                            )
                        };
                        return (Some(key.clone()), message);
                    }
                    if value.is_object() || value.is_array() {
                        return (
                            Some(key.clone()),
                            format!(
                                "a JSON {} cannot be read into column `{key}`: attributes hold flat values",
                                if value.is_object() { "object" } else { "array" }
                            ),
                        );
                    }
                }
                (None, arrow_message)
            }
            Ok(other) => (
                None,
                format!(
                    "a line must hold one JSON object, not {}",
                    match other {
                        serde_json::Value::Null => "null",
                        serde_json::Value::Bool(_) => "a boolean",
                        serde_json::Value::Number(_) => "a number",
                        serde_json::Value::String(_) => "a string",
                        serde_json::Value::Array(_) => "an array",
                        serde_json::Value::Object(_) => "an object",
                    }
                ),
            ),
        }
    }
}

//! Reading inputs: Parquet, CSV, NDJSON and Arrow IPC files or directories, and PostgreSQL
//! tables or queries, as record batches in a dataset's schema.
//!
//! [`Sources::resolve`] turns command-line inputs into a list of sources; [`Sources::open`]
//! reads them in order as a [`BatchStream`] of [`SourceBatch`]es, each exactly in the
//! schema of the [`Target`]. Reading runs off the async threads (files on the blocking pool,
//! PostgreSQL on a task of its own) and streams through a channel of a few batches: no input
//! is read whole into memory (Parquet metadata aside).
//!
//! # Conformance to the dataset
//!
//! Columns are matched by name, case-sensitively (CSV without a header: by position, in the
//! dataset's column order). The rules are the engine's: a column that is not an attribute
//! is refused, and every attribute must be present — except in a change set
//! ([`Target::changes`]): there [`CHANGE_COLUMN`] may be left out (every row is then an
//! upsert), and non-key columns may be left out only when every row is a delete. NDJSON has
//! no header: a key missing from an object is a null.
//!
//! Values are converted to the defined type; a value that does not convert is reported with
//! its source, row (for CSV and NDJSON also its line), column and text:
//! `persons.csv, line 17, row 16, column `birth_date`: `1990-13-45` is not a Date32`.
//!
//! - **Text** (CSV, NDJSON, PostgreSQL text columns) is parsed as the defined type (Arrow's
//!   parsers: dates `YYYY-MM-DD`, timestamps RFC 3339 or `YYYY-MM-DD hh:mm:ss[.f]`, booleans
//!   `true`/`false`/`t`/`f`/`yes`/`no`/`1`/`0`, decimals with `.`).
//! - **Typed columns** (Parquet, Arrow IPC, PostgreSQL) keep their values: the same type or
//!   one of the same family (strings, binaries, dictionaries — what the engine accepts) is
//!   taken as is; integers convert to any integer, float or decimal type (a value that does
//!   not fit is refused at its row), `Float32` to `Float64`, decimals to decimals of no
//!   smaller scale or to floats, dates to dates, timestamps to timestamps; strings are parsed
//!   as text. Any other pairing is refused for the whole column, naming it and both types.
//!
//! # CSV
//!
//! RFC 4180: fields separated by [`CsvOptions::delimiter`], optionally quoted with
//! [`CsvOptions::quote`] (a quote inside a quoted field is doubled), records ending in
//! `\n` or `\r\n`; quoted fields may span lines, blank lines are skipped. The first record is
//! the header unless [`CsvOptions::header`] is false. An unquoted field equal to
//! [`CsvOptions::null`] (by default: the empty field) is null; an empty field of a
//! non-string column is always null. Files in another encoding than UTF-8 are transcoded
//! while they are read ([`CsvOptions::encoding`], any WHATWG label that `encoding_rs`
//! knows). With [`CsvOptions::infer_schema`], column types are first inferred by
//! arrow-csv (from the first 1000 records); a value is still parsed as the defined type, so
//! nothing is ever changed by the inference (the one shortcut: a whole number written as
//! `100001.0` in a column inferred as floating point loads into an integer attribute).
//!
//! # PostgreSQL
//!
//! A `postgres://` or `postgresql://` URL with either [`SourceOptions::pg_table`] (quoted as
//! an identifier; `schema.table` allowed) or [`SourceOptions::pg_query`] (run as given, as a
//! subquery). Rows are streamed from one `REPEATABLE READ READ ONLY` transaction and decoded
//! by the type of the target column:
//!
//! | PostgreSQL type                               | read as            | into attributes of type                                  |
//! |-----------------------------------------------|--------------------|----------------------------------------------------------|
//! | `int2`, `int4`, `int8`                        | Int16/Int32/Int64  | any integer (range-checked per value), float, decimal     |
//! | `float4`, `float8`                            | Float32/Float64    | Float32 (only from `float4`), Float64                     |
//! | `numeric`                                     | its decimal text   | Decimal128/256 (precision-checked), Float32/64, integers (whole values), strings |
//! | `bool`                                        | Boolean            | Boolean                                                   |
//! | `text`, `varchar`, `bpchar`, `name`, `"char"` | text               | strings; any other type parsed from the text              |
//! | `uuid`                                        | text (hyphenated)  | strings                                                   |
//! | `json`, `jsonb`                               | text (the JSON)    | strings                                                   |
//! | `date`                                        | Date32             | Date32, Date64                                            |
//! | `timestamp`                                   | Timestamp(µs)      | any Timestamp                                             |
//! | `timestamptz`                                 | Timestamp(µs, UTC) | any Timestamp                                             |
//! | `bytea`                                       | Binary             | Binary, LargeBinary, BinaryView                           |
//!
//! `NULL` is null in every type; `infinity` dates and timestamps are refused. Any other type
//! (arrays, `interval`, `time`, `money`, enums, ...) is refused naming the column and type:
//! cast it in a query.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dagr_engine::DatasetDefinition;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{LoadError, Result};

#[path = "formats/mod.rs"]
mod formats;

/// The column of a change set that says what to do with each row: [`UPSERT`] or [`DELETE`].
pub const CHANGE_COLUMN: &str = "_dagr_change";
/// [`CHANGE_COLUMN`] value: insert the row, or replace the row with the same key.
pub const UPSERT: &str = "upsert";
/// [`CHANGE_COLUMN`] value: remove the row with this key.
pub const DELETE: &str = "delete";
/// Default number of rows in a [`SourceBatch`].
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// Comma- (or tab-, ...) separated values.
    Csv,
    /// Newline-delimited JSON: one JSON object per line.
    Ndjson,
    /// Arrow IPC, file (`ARROW1` magic) or stream format.
    Ipc,
}

impl Format {
    /// The format of a file by its extension (case-insensitive): `.parquet`/`.parq`,
    /// `.csv`/`.tsv`, `.ndjson`/`.jsonl`/`.json`, `.arrow`/`.ipc`/`.feather`/`.arrows`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "parquet" | "parq" => Format::Parquet,
            "csv" | "tsv" => Format::Csv,
            "ndjson" | "jsonl" | "json" => Format::Ndjson,
            "arrow" | "ipc" | "feather" | "arrows" => Format::Ipc,
            _ => return None,
        })
    }

    /// The format's name, as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Ipc => "ipc",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = LoadError;

    /// `parquet`, `csv`, `ndjson` (or `jsonl`, `json`), `ipc` (or `arrow`), any case.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "parquet" => Format::Parquet,
            "csv" => Format::Csv,
            "ndjson" | "jsonl" | "json" => Format::Ndjson,
            "ipc" | "arrow" => Format::Ipc,
            _ => {
                return Err(LoadError::Usage(format!(
                    "unknown format `{s}`; use parquet, csv, ndjson or ipc"
                )));
            }
        })
    }
}

/// How CSV files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field separator (ASCII; default `,`; a `.tsv` file gets a tab unless this is changed).
    pub delimiter: u8,
    /// Whether the first record names the columns (default true). Without a header the
    /// fields are the dataset's columns in order.
    pub header: bool,
    /// Quote character (ASCII; default `"`).
    pub quote: u8,
    /// Encoding label: `utf-8` (default), `windows-1257`, `iso-8859-13`, `iso-8859-1`, ...
    /// (any label `encoding_rs` knows).
    pub encoding: String,
    /// Infer column types with arrow-csv first (default false); values are still parsed as
    /// the defined type, and `100001.0` is accepted for an integer attribute.
    pub infer_schema: bool,
    /// Text that means null in an unquoted field; `None` (default): the empty field.
    pub null: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            header: true,
            quote: b'"',
            encoding: "utf-8".into(),
            infer_schema: false,
            null: None,
        }
    }
}

/// How inputs are found and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// The format of every file input; `None`: by each file's extension.
    pub format: Option<Format>,
    /// CSV options.
    pub csv: CsvOptions,
    /// For a PostgreSQL URL: the table to read (`table` or `schema.table`).
    pub pg_table: Option<String>,
    /// For a PostgreSQL URL: the query to read.
    pub pg_query: Option<String>,
    /// Rows per batch (default [`DEFAULT_BATCH_ROWS`]).
    pub batch_rows: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            format: None,
            csv: CsvOptions::default(),
            pg_table: None,
            pg_query: None,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

/// What the inputs are read into: a dataset, as a full snapshot or as a change set.
#[derive(Debug, Clone)]
pub struct Target {
    /// The dataset's definition (validated).
    pub definition: DatasetDefinition,
    /// Whether the input is a change set (rows to upsert or delete, see [`CHANGE_COLUMN`])
    /// rather than the whole dataset.
    pub changes: bool,
}

impl Target {
    /// A target for `definition`.
    pub fn new(definition: DatasetDefinition, changes: bool) -> Self {
        Self {
            definition,
            changes,
        }
    }

    /// The schema of every [`SourceBatch`]: the definition's Arrow schema (key columns
    /// never null); for a change set every non-key column nullable and [`CHANGE_COLUMN`]
    /// (`Utf8`, not null) appended last.
    pub fn schema(&self) -> SchemaRef {
        let base = self.definition.arrow_schema();
        let mut fields: Vec<Field> = base
            .fields()
            .iter()
            .map(|f| {
                let key = self.definition.primary_key.iter().any(|k| k == f.name());
                let nullable = if key {
                    false
                } else {
                    self.changes || f.is_nullable()
                };
                f.as_ref().clone().with_nullable(nullable)
            })
            .collect();
        if self.changes {
            fields.push(Field::new(CHANGE_COLUMN, DataType::Utf8, false));
        }
        Arc::new(Schema::new(fields))
    }
}

/// A batch read from one source.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// The rows, exactly in [`Target::schema`].
    pub batch: RecordBatch,
    /// The source's label (file path, or `postgresql: TABLE/QUERY`), for messages.
    pub source: Arc<str>,
    /// 1-based data row, within its source, of the batch's first row.
    pub first_row: u64,
}

/// The batches of all sources, in order; the stream ends after the first error.
pub type BatchStream = BoxStream<'static, Result<SourceBatch, LoadError>>;

/// Resolved inputs: files (directories expanded) and PostgreSQL sources, in order.
#[derive(Debug, Clone)]
pub struct Sources {
    inputs: Vec<Input>,
    batch_rows: usize,
}

/// One input.
#[derive(Debug, Clone)]
struct Input {
    label: Arc<str>,
    kind: InputKind,
}

#[derive(Debug, Clone)]
enum InputKind {
    File {
        path: PathBuf,
        format: Format,
        csv: CsvOptions,
    },
    Postgres {
        url: PgUrl,
        what: PgSource,
    },
}

/// A PostgreSQL URL, which may hold a password: never printed.
#[derive(Clone)]
struct PgUrl(String);

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgUrl(..)")
    }
}

/// What to read from PostgreSQL.
#[derive(Debug, Clone)]
enum PgSource {
    Table(String),
    Query(String),
}

fn is_postgres_url(spec: &str) -> bool {
    let lower = spec.get(..13).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn io_error(path: &Path, e: &std::io::Error) -> LoadError {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    };
    LoadError::Io(format!("{}: {what}", path.display()))
}

/// The label of a query source: its text on one line, shortened.
fn query_label(query: &str) -> String {
    const MAX: usize = 80;
    let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        return format!("postgresql: {one_line}");
    }
    let short: String = one_line.chars().take(MAX - 1).collect();
    format!("postgresql: {short}…")
}

impl Sources {
    /// Resolve inputs: files, directories (their files of a known extension — every
    /// non-hidden file when [`SourceOptions::format`] is given — sorted by name; an empty
    /// directory is an error) and `postgres://` / `postgresql://` URLs (which need exactly
    /// one of [`SourceOptions::pg_table`] and [`SourceOptions::pg_query`]). Formats may be
    /// mixed. A path that does not exist is an [`LoadError::Io`] naming it.
    pub fn resolve(specs: &[String], options: &SourceOptions) -> Result<Sources> {
        if specs.is_empty() {
            return Err(LoadError::Usage("no input given".into()));
        }
        if options.batch_rows == 0 {
            return Err(LoadError::Usage("batch rows must be at least 1".into()));
        }
        check_csv_options(&options.csv)?;
        let mut inputs = Vec::new();
        for spec in specs {
            if is_postgres_url(spec) {
                let what = match (&options.pg_table, &options.pg_query) {
                    (Some(t), None) if !t.trim().is_empty() => PgSource::Table(t.trim().to_owned()),
                    (None, Some(q)) if !q.trim().is_empty() => PgSource::Query(q.clone()),
                    (Some(_), Some(_)) => {
                        return Err(LoadError::Usage(
                            "a PostgreSQL source takes a table or a query, not both".into(),
                        ));
                    }
                    _ => {
                        return Err(LoadError::Usage(
                            "a PostgreSQL source needs a table or a query to read".into(),
                        ));
                    }
                };
                let label = match &what {
                    PgSource::Table(t) => format!("postgresql: {t}"),
                    PgSource::Query(q) => query_label(q),
                };
                if let PgSource::Table(t) = &what {
                    formats::postgres::quote_table(t)?;
                }
                inputs.push(Input {
                    label: label.into(),
                    kind: InputKind::Postgres {
                        url: PgUrl(spec.clone()),
                        what,
                    },
                });
                continue;
            }
            let path = Path::new(spec);
            let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
            if meta.is_dir() {
                let mut files = Vec::new();
                let entries = std::fs::read_dir(path).map_err(|e| io_error(path, &e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| io_error(path, &e))?;
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with('.') {
                        continue;
                    }
                    let file = entry.path();
                    let is_file = std::fs::metadata(&file)
                        .map_err(|e| io_error(&file, &e))?
                        .is_file();
                    if !is_file {
                        continue;
                    }
                    let format = options.format.or_else(|| Format::from_path(&file));
                    if let Some(format) = format {
                        files.push((name, file, format));
                    }
                }
                if files.is_empty() {
                    return Err(LoadError::Usage(format!(
                        "directory {} holds no {}",
                        path.display(),
                        match options.format {
                            Some(_) => "files".to_owned(),
                            None => "files of a known format (.parquet, .csv, .tsv, .ndjson, .jsonl, .json, .arrow, .ipc, .feather, .arrows)".to_owned(),
                        }
                    )));
                }
                files.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, file, format) in files {
                    inputs.push(file_input(file, format, &options.csv));
                }
            } else {
                let format = options
                    .format
                    .or_else(|| Format::from_path(path))
                    .ok_or_else(|| {
                        LoadError::Usage(format!(
                            "cannot tell the format of {} from its extension; name the format (parquet, csv, ndjson or ipc)",
                            path.display()
                        ))
                    })?;
                inputs.push(file_input(path.to_path_buf(), format, &options.csv));
            }
        }
        Ok(Sources {
            inputs,
            batch_rows: options.batch_rows,
        })
    }

    /// The exact number of rows, from file metadata, when every input is a Parquet file or
    /// an Arrow IPC file (not stream) whose metadata can be read; `None` otherwise.
    pub fn known_rows(&self) -> Option<u64> {
        let mut total = 0u64;
        for input in &self.inputs {
            let rows = match &input.kind {
                InputKind::File {
                    path,
                    format: Format::Parquet,
                    ..
                } => formats::parquet::file_rows(path),
                InputKind::File {
                    path,
                    format: Format::Ipc,
                    ..
                } => formats::ipc::file_rows(path),
                _ => None,
            }?;
            total += rows;
        }
        Some(total)
    }

    /// One label per input, in reading order, for progress output.
    pub fn describe(&self) -> Vec<String> {
        self.inputs
            .iter()
            .map(|i| match &i.kind {
                InputKind::File { format, .. } => format!("{} ({format})", i.label),
                InputKind::Postgres { .. } => i.label.to_string(),
            })
            .collect()
    }

    /// Read every input, in order, as batches in `target`'s schema. May be called again
    /// (e.g. on a retry): every call reads from the start.
    pub fn open(&self, target: &Target) -> BatchStream {
        let info = Arc::new(formats::TargetInfo::new(target));
        let batch_rows = self.batch_rows;
        let streams: Vec<BatchStream> = self
            .inputs
            .iter()
            .map(|input| formats::open_input(input, Arc::clone(&info), batch_rows))
            .collect();
        futures::stream::iter(streams)
            .flatten()
            .scan(false, |failed, item| {
                let next = if *failed {
                    None
                } else {
                    *failed = item.is_err();
                    Some(item)
                };
                futures::future::ready(next)
            })
            .boxed()
    }
}

fn file_input(path: PathBuf, format: Format, csv: &CsvOptions) -> Input {
    let mut csv = csv.clone();
    let tsv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    if tsv && csv.delimiter == b',' {
        csv.delimiter = b'\t';
    }
    Input {
        label: path.display().to_string().into(),
        kind: InputKind::File { path, format, csv },
    }
}

fn check_csv_options(csv: &CsvOptions) -> Result<()> {
    let bad = |c: u8| !c.is_ascii() || c == b'\n' || c == b'\r';
    if bad(csv.delimiter) {
        return Err(LoadError::Usage(
            "the CSV delimiter must be an ASCII character other than a line break".into(),
        ));
    }
    if bad(csv.quote) {
        return Err(LoadError::Usage(
            "the CSV quote must be an ASCII character other than a line break".into(),
        ));
    }
    if csv.delimiter == csv.quote {
        return Err(LoadError::Usage(
            "the CSV delimiter and quote must differ".into(),
        ));
    }
    if encoding_rs::Encoding::for_label(csv.encoding.trim().as_bytes()).is_none() {
        return Err(LoadError::Usage(format!(
            "unknown encoding `{}` (use e.g. utf-8, windows-1257, iso-8859-13)",
            csv.encoding
        )));
    }
    Ok(())
}

//! `dagr load`, `dagr pull` and `dagr sync`: the connector's command line, on top of the
//! `dagr-loaders` crate.
//!
//! Each prints a JSON report on stdout when it succeeds and a one-line error on stderr when it
//! fails (exit status 1; 2 for bad arguments). Progress goes to stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use dagr_loaders::LoadError;
use dagr_loaders::client::Connection;
use dagr_loaders::pull::OutFormat;
use dagr_loaders::push::LoadOptions;
use dagr_loaders::source::{CsvOptions, Format, SourceOptions};

/// Where the server is and who calls it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's Flight URL.
    #[arg(long, env = "DAGR_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Bearer token (of a provider system for `load`, of a consumer for `pull`/`sync`).
    #[arg(long, env = "DAGR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Attempts after the first on transient network errors (with exponential backoff).
    #[arg(long, env = "DAGR_RETRIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

impl ServerArgs {
    fn connection(&self, purpose: Option<String>) -> anyhow::Result<Connection> {
        let token = self
            .token
            .clone()
            .filter(|t| !t.trim().is_empty())
            .context("give a token with --token or DAGR_TOKEN")?;
        let mut c = Connection::new(self.server.clone(), token).with_purpose(purpose);
        c.retries = self.retries;
        Ok(c)
    }
}

/// Flags of `dagr load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The dataset.
    pub dataset: String,
    /// Files or directories (Parquet, CSV, NDJSON, Arrow IPC), or a `postgresql://` URL.
    #[arg(required = true)]
    pub sources: Vec<String>,
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// A change set (upserts and deletes by primary key; column `_dagr_change` = upsert |
    /// delete, absent = upsert) instead of a full snapshot.
    #[arg(long)]
    pub changes: bool,
    /// Only read and validate the sources against the definition; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Validate against this definition (JSON) instead of the server's: an offline dry run.
    #[arg(long)]
    pub definition: Option<PathBuf>,
    /// Input format (default: from each file's extension).
    #[arg(long, value_parser = ["parquet", "csv", "ndjson", "ipc"])]
    pub format: Option<String>,
    /// CSV field delimiter (one character; `\t` for tab).
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// The CSV files have no header line (columns in definition order).
    #[arg(long)]
    pub no_header: bool,
    /// CSV text encoding (utf-8, windows-1257, iso-8859-13, ...).
    #[arg(long, default_value = "utf-8")]
    pub encoding: String,
    /// Infer CSV column types from the data first; values are still parsed as the
    /// definition's types (so nothing changes), but whole numbers written as `100001.0` load
    /// into integer attributes.
    #[arg(long)]
    pub infer_schema: bool,
    /// The CSV text that means null (default: an empty field).
    #[arg(long)]
    pub null: Option<String>,
    /// PostgreSQL source: the table (`schema.table` allowed).
    #[arg(long, conflicts_with = "query")]
    pub table: Option<String>,
    /// PostgreSQL source: the query.
    #[arg(long)]
    pub query: Option<String>,
    /// IPC compression of the upload (useful over slow links).
    #[arg(long, value_parser = ["none", "lz4", "zstd"])]
    pub compression: Option<String>,
}

/// Flags of `dagr pull`.
#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    /// The dataset.
    pub dataset: String,
    /// The output file (`.parquet` or `.csv`).
    #[arg(long)]
    pub out: PathBuf,
    /// Output format (default: from the file's extension).
    #[arg(long, value_parser = ["parquet", "csv"])]
    pub format: Option<String>,
    /// Why you use the data (recorded in the usage log the data subjects see).
    #[arg(long, env = "DAGR_PURPOSE")]
    pub purpose: Option<String>,
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Flags of `dagr sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// The dataset.
    pub dataset: String,
    /// The directory of the local copy (`DATASET.parquet`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Why you use the data (recorded in the usage log the data subjects see).
    #[arg(long, env = "DAGR_PURPOSE")]
    pub purpose: Option<String>,
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A connector error, as the process exit: the message on stderr, status 2 for bad
/// arguments, 1 otherwise.
fn fail(e: LoadError) -> i32 {
    eprintln!("error: {e}");
    match e {
        LoadError::Usage(_) => 2,
        _ => 1,
    }
}

fn delimiter(text: &str) -> anyhow::Result<u8> {
    match text {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        t if t.len() == 1 => Ok(t.as_bytes()[0]),
        t => anyhow::bail!("the delimiter must be one ASCII character; got `{t}`"),
    }
}

/// `dagr load`; the exit status.
pub fn load(runtime: &tokio::runtime::Runtime, args: LoadArgs) -> anyhow::Result<i32> {
    let definition = match &args.definition {
        None => None,
        Some(p) => {
            let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let d: dagr_engine::DatasetDefinition = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a dataset definition", p.display()))?;
            Some(
                d.validated()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
            )
        }
    };
    let format = args
        .format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = LoadOptions {
        dataset: args.dataset.clone(),
        sources: args.sources.clone(),
        source_options: SourceOptions {
            format,
            csv: CsvOptions {
                delimiter: delimiter(&args.delimiter)?,
                header: !args.no_header,
                encoding: args.encoding.clone(),
                infer_schema: args.infer_schema,
                null: args.null.clone(),
                ..CsvOptions::default()
            },
            pg_table: args.table.clone(),
            pg_query: args.query.clone(),
            ..SourceOptions::default()
        },
        changes: args.changes,
        dry_run: args.dry_run,
        definition,
        compression: args.compression.clone(),
        quiet: args.server.quiet,
    };
    let conn = if args.dry_run && options.definition.is_some() {
        None
    } else {
        Some(args.server.connection(None)?)
    };
    match runtime.block_on(dagr_loaders::push::load(conn.as_ref(), &options)) {
        Ok(outcome) => print_json(&outcome).map(|()| 0),
        Err(e) => Ok(fail(e)),
    }
}

/// `dagr pull`; the exit status.
pub fn pull(runtime: &tokio::runtime::Runtime, args: PullArgs) -> anyhow::Result<i32> {
    let conn = args.server.connection(args.purpose.clone())?;
    let format = match OutFormat::choose(args.format.as_deref(), &args.out) {
        Ok(f) => f,
        Err(e) => return Ok(fail(e)),
    };
    match runtime.block_on(dagr_loaders::pull::pull(
        &conn,
        &args.dataset,
        &args.out,
        format,
        args.server.quiet,
    )) {
        Ok(outcome) => print_json(&outcome).map(|()| 0),
        Err(e) => Ok(fail(e)),
    }
}

/// `dagr sync`; the exit status.
pub fn sync(runtime: &tokio::runtime::Runtime, args: SyncArgs) -> anyhow::Result<i32> {
    let conn = args.server.connection(args.purpose.clone())?;
    match runtime.block_on(dagr_loaders::sync::sync(
        &conn,
        &args.dataset,
        &args.dir,
        args.server.quiet,
    )) {
        Ok(outcome) => print_json(&outcome).map(|()| 0),
        Err(e) => Ok(fail(e)),
    }
}

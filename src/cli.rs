//! Command-line interface. Every flag also reads an environment variable `DAGR_...`, and
//! the flags of `dagr serve` can also come from a TOML file (`--config`, see
//! [`crate::config`]): flags win over the environment, which wins over the file, which wins
//! over the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

/// DAGR: data distribution and governance platform.
#[derive(Debug, Parser)]
#[command(name = "dagr", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "DAGR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API and portal; on an empty data directory, seed the demo).
    Serve(ServeArgs),
    /// Demo registers.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Manage the metadata store without a server: admin tokens, organisations, systems,
    /// tokens, users and persons' tokens (safe while a server runs on the same data
    /// directory).
    Admin(crate::admin::AdminArgs),
    /// Check the usage audit log (hash chain) without a server.
    Audit(crate::audit::AuditArgs),
    /// Check a configuration file of `dagr serve`, or print an example one.
    #[command(subcommand)]
    Config(crate::config::ConfigCommand),
    /// Load files or a PostgreSQL table into a dataset of a running server (a full snapshot
    /// or, with --changes, upserts and deletes), validating them first.
    Load(crate::connector::LoadArgs),
    /// Export your masked view of a dataset to a Parquet or CSV file.
    Pull(crate::connector::PullArgs),
    /// Keep a local Parquet copy of your masked view of a dataset current (changes only).
    Sync(crate::connector::SyncArgs),
}

/// Flags of `dagr serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file whose keys are the long flags below (`http-addr =
    /// "0.0.0.0:8080"`); flags and environment variables win over it. See
    /// docs/configuration.md.
    #[arg(long, env = "DAGR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: snapshots, and the metadata database unless --database-url is given.
    #[arg(long, env = "DAGR_DATA_DIR", default_value = "./dagr-data")]
    pub data_dir: PathBuf,
    /// Where snapshots are kept: a directory, or S3-compatible object storage
    /// `s3://BUCKET/PREFIX` (endpoint, region and credentials from the `AWS_*` environment
    /// variables: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_ALLOW_HTTP). Default: `snapshots` in the data directory.
    #[arg(long, env = "DAGR_STORE")]
    pub store: Option<String>,
    /// Metadata database: `postgres://USER@HOST:PORT/DB` (needed for several replicas) or
    /// `sqlite://PATH`; default a SQLite file `meta.db` in the data directory.
    #[arg(long, env = "DAGR_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address of the HTTP API and portal; port 0 picks a free port.
    #[arg(long, env = "DAGR_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Address of the Arrow Flight / Flight SQL service; port 0 picks a free port.
    #[arg(long, env = "DAGR_FLIGHT_ADDR", default_value = dagr_flight_server::DEFAULT_FLIGHT_ADDR)]
    pub flight_addr: SocketAddr,
    /// PEM certificate (chain) for TLS on the Flight service (with --flight-tls-key).
    #[arg(long, env = "DAGR_FLIGHT_TLS_CERT")]
    pub flight_tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the Flight service (with --flight-tls-cert).
    #[arg(long, env = "DAGR_FLIGHT_TLS_KEY")]
    pub flight_tls_key: Option<PathBuf>,
    /// Rows per record batch of a Flight DoGet of a dataset.
    #[arg(long, env = "DAGR_FLIGHT_BATCH_ROWS", default_value_t = 8192, value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub flight_batch_rows: u64,
    /// Memory for encoded whole-dataset Flight streams kept for repeated pulls, in MiB (0 =
    /// no cache). See docs/flight.md.
    #[arg(long, env = "DAGR_FLIGHT_CACHE_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub flight_cache_mb: u64,
    /// Serve Flight DoGet through tonic's generated encoder (copies every body twice) instead
    /// of the zero-copy wire path; for comparison and as a fallback.
    #[arg(long, env = "DAGR_FLIGHT_NO_ZERO_COPY")]
    pub flight_no_zero_copy: bool,
    /// Persons in the demo seeded into an empty data directory (other registers scale with it).
    #[arg(long, env = "DAGR_DEMO_ROWS", default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(10..=50_000_000))]
    pub demo_rows: u64,
    /// Do not seed the demo into an empty data directory.
    #[arg(long, env = "DAGR_NO_DEMO")]
    pub no_demo: bool,
    /// Snapshot versions kept per dataset for rollback.
    #[arg(long, env = "DAGR_KEEP_VERSIONS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub keep_versions: u64,
    /// Memory that running queries may use together, in MiB.
    #[arg(long, env = "DAGR_QUERY_MEMORY_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..))]
    pub query_memory_mb: u64,
    /// Most rows one SQL query may return (0 = no limit).
    #[arg(long, env = "DAGR_MAX_RESULT_ROWS", default_value_t = 0)]
    pub max_result_rows: u64,
    /// Most operators (`+`, `=`, `AND`, ...) one SQL query may hold: a longer chain is refused
    /// before parsing (the planner recurses once per operator).
    #[arg(long, env = "DAGR_MAX_SQL_OPERATORS", default_value_t = dagr_engine::query::DEFAULT_MAX_SQL_OPERATORS as u64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_sql_operators: u64,
    /// Default quota: requests per second per token (REST record reads, every Flight call
    /// but Handshake; the burst is one second's worth; 0 = no limit). A system's own quota
    /// (`PUT /api/v1/systems/{id}/quotas`) replaces it. Over it: 429 / RESOURCE_EXHAUSTED
    /// with Retry-After.
    #[arg(long, env = "DAGR_QUOTA_RPS", default_value_t = dagr_engine::quota::DEFAULT_REQUESTS_PER_SECOND, value_parser = clap::value_parser!(u32).range(0..=dagr_engine::quota::MAX_REQUESTS_PER_SECOND as i64))]
    pub quota_rps: u32,
    /// Default quota: result streams (Flight `DoGet`s: datasets, lookups, SQL) one token may
    /// hold open at once; more are refused with RESOURCE_EXHAUSTED until one ends.
    /// `--max-streams-per-token` is the older name of this flag.
    #[arg(long, alias = "max-streams-per-token", env = "DAGR_QUOTA_STREAMS", default_value_t = dagr_engine::quota::DEFAULT_STREAMS, value_parser = clap::value_parser!(u32).range(1..=dagr_engine::quota::MAX_STREAMS as i64))]
    pub quota_streams: u32,
    /// Default quota: SQL queries (Flight SQL statements and prepared statements, filtered
    /// tickets, while they plan and stream) one token may run at once.
    #[arg(long, env = "DAGR_QUOTA_SQL", default_value_t = dagr_engine::quota::DEFAULT_SQL_QUERIES, value_parser = clap::value_parser!(u32).range(1..=dagr_engine::quota::MAX_SQL_QUERIES as i64))]
    pub quota_sql: u32,
    /// Longest one SQL query may run, in seconds, from planning to its last batch (0 = no
    /// limit); a query over it fails with RESOURCE_EXHAUSTED.
    #[arg(long, env = "DAGR_QUERY_TIMEOUT_SECS", default_value_t = dagr_engine::query::DEFAULT_MAX_QUERY_TIME.as_secs())]
    pub query_timeout_secs: u64,
    /// Days access records and usage events are kept (0 = forever). Older ones are removed
    /// hourly; the hash chain stays verifiable.
    #[arg(long, env = "DAGR_AUDIT_RETENTION_DAYS", default_value_t = 1826, value_parser = clap::value_parser!(u64).range(0..=36_500))]
    pub audit_retention_days: u64,
    /// The address users reach this server at (`https://dagr.example.lv`), for links in
    /// e-mail; default the HTTP address.
    #[arg(long, env = "DAGR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP relay (`HOST:PORT`, plain SMTP on the operator's network) that drains the e-mail
    /// outbox; without it messages wait in the outbox (`GET /api/v1/outbox`).
    #[arg(long, env = "DAGR_SMTP_RELAY")]
    pub smtp_relay: Option<String>,
    /// The sender of e-mail (`Name <address>` or an address).
    #[arg(
        long,
        env = "DAGR_MAIL_FROM",
        default_value = "DAGR <noreply@dagr.invalid>"
    )]
    pub mail_from: String,
    /// Seconds between rounds of the outbox drain.
    #[arg(long, env = "DAGR_MAIL_INTERVAL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub mail_interval_secs: u64,
    /// Largest snapshot or change set accepted by one upload (Flight `DoPut` or HTTP), in MiB.
    #[arg(long, env = "DAGR_MAX_UPLOAD_MB", default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_upload_mb: u64,
    /// Worker threads of the bulk runtime, on which SQL queries are planned and run and
    /// whole-dataset, change and SQL streams are produced (default: the cores but one, at
    /// least one). Point lookups stay on the serving runtime.
    #[arg(long, env = "DAGR_BULK_THREADS", value_parser = clap::value_parser!(u64).range(1..=dagr_engine::pools::MAX_THREADS as u64))]
    pub bulk_threads: Option<u64>,
    /// Load jobs (decode, validate, index, encode for the store) that run at once (default:
    /// half the cores, at least one).
    #[arg(long, env = "DAGR_LOAD_THREADS", value_parser = clap::value_parser!(u64).range(1..=dagr_engine::pools::MAX_THREADS as u64))]
    pub load_threads: Option<u64>,
    /// How much lower than the serving threads the bulk and load threads run (`nice`
    /// increment, Linux; 0 = the same priority).
    #[arg(long, env = "DAGR_BULK_NICE", default_value_t = dagr_engine::pools::DEFAULT_NICE as i64, value_parser = clap::value_parser!(i64).range(0..=dagr_engine::pools::MAX_NICE as i64))]
    pub bulk_nice: i64,
    /// Mark the portal's cookies `Secure`: set it when users reach DAGR over HTTPS through a
    /// TLS-terminating proxy (a request with `X-Forwarded-Proto: https` gets them anyway).
    #[arg(long, env = "DAGR_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Seconds between SIGTERM and closing the listeners, during which the node keeps
    /// serving but `/api/v1/ready` answers 503, so that a load balancer polling it stops
    /// sending new requests first (0 = close at once).
    #[arg(long, env = "DAGR_DRAIN_SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub drain_secs: u64,
    /// Replicas (a PostgreSQL `--database-url`): seconds before snapshot files that no
    /// committed version references are deleted — a version past retention this long after it
    /// expired (a node still catching up may read it until then), the files of a load that
    /// never committed this long after its last write.
    #[arg(long, env = "DAGR_GC_GRACE_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub gc_grace_secs: u64,
    /// Export tracing spans to this OpenTelemetry collector (OTLP over gRPC, e.g.
    /// `http://127.0.0.1:4317`). Without it nothing is exported; trace ids are in the logs,
    /// the `x-trace-id` response header and problem+json errors either way.
    #[arg(long, env = "DAGR_OTLP_ENDPOINT", value_parser = crate::telemetry::parse_endpoint)]
    pub otlp_endpoint: Option<String>,
}

/// `dagr demo ...`
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write the five demo registers as Parquet (with their definitions as JSON).
    Generate {
        /// Persons to generate; the other registers scale with it.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(10..=50_000_000))]
        rows: u64,
        /// Seed of the generator (the same seed gives the same data).
        #[arg(long, default_value_t = dagr_engine::demo::DEFAULT_SEED)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// End the process with `code` (after stopping the runtime) unless it is 0.
fn exit_with(runtime: tokio::runtime::Runtime, code: i32) -> anyhow::Result<()> {
    if code != 0 {
        drop(runtime);
        std::process::exit(code);
    }
    Ok(())
}

/// Stack of every runtime thread (workers and blocking threads).
pub const WORKER_STACK_BYTES: usize = 16 << 20;

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config(cmd) = &cli.command {
        crate::telemetry::init_logging(cli.log_format, None);
        // Checks files only: no runtime, no database, no ports.
        let code = crate::config::run(cmd);
        if code != 0 {
            std::process::exit(code);
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dagr")
        // SQL is parsed and planned on these threads: a known stack, sized for the deepest
        // query the limits accept (`DAGR_MAX_SQL_OPERATORS`) with room to spare.
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
        .context("cannot start the async runtime")?;
    // Spans are exported from the start when `dagr serve --otlp-endpoint` is set.
    let otel = match &cli.command {
        Command::Serve(args) => match &args.otlp_endpoint {
            Some(endpoint) => {
                let _in_runtime = runtime.enter();
                Some(crate::telemetry::export_spans(endpoint)?)
            }
            None => None,
        },
        _ => None,
    };
    crate::telemetry::init_logging(cli.log_format, otel);
    match cli.command {
        Command::Serve(args) => runtime.block_on(crate::server::run(args)),
        Command::Config(_) => unreachable!("handled before the runtime starts"),
        Command::Admin(args) => crate::admin::run(&runtime, args),
        Command::Audit(args) => {
            let code = crate::audit::run(&runtime, args)?;
            exit_with(runtime, code)
        }
        Command::Load(args) => {
            let code = crate::connector::load(&runtime, args)?;
            exit_with(runtime, code)
        }
        Command::Pull(args) => {
            let code = crate::connector::pull(&runtime, args)?;
            exit_with(runtime, code)
        }
        Command::Sync(args) => {
            let code = crate::connector::sync(&runtime, args)?;
            exit_with(runtime, code)
        }
        Command::Demo(DemoCommand::Generate { rows, seed, out }) => {
            let started = std::time::Instant::now();
            let cfg = dagr_engine::demo::DemoConfig {
                persons: rows as usize,
                seed,
            };
            let data =
                dagr_engine::demo::generate(&cfg).context("generating the demo registers")?;
            let files = dagr_engine::demo::write_parquet(&data, &out)
                .with_context(|| format!("writing the demo registers to {}", out.display()))?;
            for d in &data {
                let rows: usize = d.batches.iter().map(|b| b.num_rows()).sum();
                tracing::info!(dataset = %d.definition.name, rows, "generated");
            }
            tracing::info!(
                files = files.len(),
                dir = %out.display(),
                ms = started.elapsed().as_millis() as u64,
                "demo registers written"
            );
            Ok(())
        }
    }
}

//! `dagr audit`: check the usage audit log without a server.
//!
//! `dagr audit verify` walks the hash chain of access records and usage events and names
//! the first record that was modified, inserted or removed; it exits with status 1 when the
//! chain is broken. It opens only the audit store (`audit.db` in the data directory, or the
//! PostgreSQL database of `--database-url`), so it is safe next to a running server.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use dagr_admin_api::audit::{AuditConfig, AuditStore};

/// Flags of `dagr audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Data directory whose audit log (`audit.db`) to use, unless --database-url is given.
    #[arg(
        long,
        env = "DAGR_DATA_DIR",
        default_value = "./dagr-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL database that holds the audit log (the metadata database of the servers).
    #[arg(long, env = "DAGR_DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Subcommands of `dagr audit`. The report's `head_hash` is worth publishing (or keeping
/// outside DAGR) now and then: it is what proves that the whole chain was not rewritten.
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain: every record unchanged, none inserted or removed. Prints a
    /// JSON report; exits with status 1 and names the first broken record otherwise.
    Verify {
        /// The retention the servers run with (`--audit-retention-days`; 0 = forever): the
        /// oldest records may be missing only if they are older than this.
        #[arg(long, env = "DAGR_AUDIT_RETENTION_DAYS", default_value_t = 1826, value_parser = clap::value_parser!(u64).range(0..=36_500))]
        retention_days: u64,
    },
}

/// The audit store's URL: PostgreSQL when the servers use it, else `audit.db` in the data
/// directory (a SQLite metadata URL keeps the audit log in the data directory too).
pub fn audit_url(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<String> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(url.to_owned())
        }
        _ => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            Ok(format!("sqlite://{}", data_dir.join("audit.db").display()))
        }
    }
}

/// Open the audit store for a data directory / database URL.
pub async fn open_audit(
    data_dir: &Path,
    database_url: Option<&str>,
    config: AuditConfig,
) -> anyhow::Result<AuditStore> {
    let url = audit_url(data_dir, database_url)?;
    AuditStore::open(&url, config).await.with_context(|| {
        format!(
            "opening the audit log {}",
            dagr_admin_api::store::redact(&url)
        )
    })
}

/// Run `dagr audit`; returns the process exit code.
pub fn run(runtime: &tokio::runtime::Runtime, args: AuditArgs) -> anyhow::Result<i32> {
    match args.command {
        AuditCommand::Verify { retention_days } => runtime.block_on(async {
            let url = audit_url(&args.data_dir, args.database_url.as_deref())?;
            // Never create an empty log where one was expected: that would "verify".
            if url.starts_with("sqlite://") {
                let path = args.data_dir.join("audit.db");
                anyhow::ensure!(
                    path.exists(),
                    "there is no audit log at {} (wrong --data-dir?)",
                    path.display()
                );
            }
            let store = open_audit(
                &args.data_dir,
                args.database_url.as_deref(),
                AuditConfig::default(),
            )
            .await?;
            let retention = (retention_days > 0)
                .then(|| std::time::Duration::from_secs(retention_days * 86_400));
            let started = std::time::Instant::now();
            let mut last_log = std::time::Instant::now();
            let mut progress = |checked: u64| {
                if last_log.elapsed() >= std::time::Duration::from_secs(2) {
                    tracing::info!(checked, "verifying the audit chain");
                    last_log = std::time::Instant::now();
                }
            };
            let report = store
                .verify(retention, &mut progress)
                .await
                .context("verifying the audit log")?;
            store.close().await;
            tracing::info!(
                records = report.records,
                ms = started.elapsed().as_millis() as u64,
                "audit chain checked"
            );
            let json = serde_json::json!({
                "ok": report.broken.is_none(),
                "records": report.records,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "anchor_seq": report.anchor_seq,
                "dictionary_ids": report.dictionary_ids,
                "dictionary_head_id": report.dict_id,
                "dictionary_head_hash": report.dict_hash,
                "broken": report.broken.as_ref().map(|b| serde_json::json!({
                    "seq": (!b.dictionary).then_some(b.seq),
                    "dictionary_id": b.dictionary.then_some(b.seq),
                    "reason": b.reason,
                })),
            });
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &json).context("writing the report")?;
            writeln!(out).context("writing the report")?;
            if let Some(b) = &report.broken {
                tracing::error!(seq = b.seq, reason = %b.reason, "the audit chain is broken");
                return Ok(1);
            }
            Ok(0)
        }),
    }
}

//! `dagr load`: read the sources, validate every batch against the dataset definition, and
//! push them to the server in one Flight `DoPut` — a full snapshot or a change set.
//!
//! Batches are validated before they are sent; the first bad value stops the upload, whose
//! stream then ends without the end marker, so the server commits nothing. The upload ends
//! with the marker `{"end":{"rows":N}}` (see `dagr_flight_server::put`), which is what lets
//! the server tell a complete upload from one whose source failed half-way. Transient network
//! failures restart the whole upload after a pause (sources are re-read from the start).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{Action, FlightData, FlightDescriptor};
use dagr_engine::DatasetDefinition;
use dagr_engine::arrow::ipc::CompressionType;
use dagr_engine::arrow::ipc::writer::IpcWriteOptions;
use dagr_flight_server::put::{EndMarker, LOAD_HEADER, PutReport};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::client::{Connection, flight_error};
use crate::error::{LoadError, Result};
use crate::progress::Progress;
use crate::source::{SourceOptions, Sources, Target};
use crate::validate::Validator;

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The dataset.
    pub dataset: String,
    /// Files, directories or PostgreSQL URLs.
    pub sources: Vec<String>,
    /// How to read them.
    pub source_options: SourceOptions,
    /// A change set (upserts and deletes by key) instead of a full snapshot.
    pub changes: bool,
    /// Only validate; send nothing.
    pub dry_run: bool,
    /// Validate against this definition instead of asking the server (offline dry runs).
    pub definition: Option<DatasetDefinition>,
    /// IPC compression of the upload: `lz4` or `zstd`.
    pub compression: Option<String>,
    /// No progress output.
    pub quiet: bool,
}

/// What a load did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadOutcome {
    /// The dataset.
    pub dataset: String,
    /// Rows read and validated (and sent, unless a dry run).
    pub rows: u64,
    /// Upsert rows (all rows of a snapshot).
    pub upserts: u64,
    /// Delete rows of a change set.
    pub deletes: u64,
    /// Whether nothing was sent.
    pub dry_run: bool,
    /// The server's report of the committed version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<PutReport>,
    /// Attempts it took.
    pub attempts: u32,
    /// Wall time of the last attempt, in seconds.
    pub seconds: f64,
    /// Rows per second of the last attempt.
    pub rows_per_second: f64,
}

/// The dataset's definition, from the server (the `dagr.definition` action).
pub async fn fetch_definition(conn: &Connection, dataset: &str) -> Result<DatasetDefinition> {
    conn.retrying("reading the definition", |_| async {
        let mut client = conn.client().await?;
        let action = Action::new(
            dagr_flight_server::DEFINITION_ACTION,
            dataset.as_bytes().to_vec(),
        );
        let body: Vec<bytes::Bytes> = client
            .do_action(action)
            .await
            .map_err(flight_error)?
            .try_collect()
            .await
            .map_err(flight_error)?;
        let first = body
            .first()
            .ok_or_else(|| LoadError::Server("the definition action answered nothing".into()))?;
        serde_json::from_slice(first).map_err(|e| {
            LoadError::Server(format!("the server sent an unreadable definition: {e}"))
        })
    })
    .await
}

/// Load `options.sources` into `options.dataset` (or only validate them).
pub async fn load(conn: Option<&Connection>, options: &LoadOptions) -> Result<LoadOutcome> {
    if options.sources.is_empty() {
        return Err(LoadError::Usage("name at least one source".into()));
    }
    let sources = Sources::resolve(&options.sources, &options.source_options)?;
    let definition = match (&options.definition, conn) {
        (Some(d), _) => d.clone(),
        (None, Some(conn)) => fetch_definition(conn, &options.dataset).await?,
        (None, None) => {
            return Err(LoadError::Usage(
                "give --server and --token, or --definition FILE for an offline dry run".into(),
            ));
        }
    };
    if definition.name != options.dataset {
        return Err(LoadError::Usage(format!(
            "the definition is of `{}`, not `{}`",
            definition.name, options.dataset
        )));
    }
    let target = Target {
        definition,
        changes: options.changes,
    };
    let what = format!(
        "{} {}",
        if options.dry_run {
            "checking"
        } else {
            "loading"
        },
        options.dataset
    );
    let progress = Arc::new(Mutex::new(Progress::new(
        what,
        sources.known_rows(),
        options.quiet,
    )));
    if options.dry_run || conn.is_none() {
        if !options.dry_run {
            return Err(LoadError::Usage("give --server and --token to load".into()));
        }
        let mut validator = Validator::new(&target);
        let mut batches = sources.open(&target);
        while let Some(b) = batches.next().await {
            let b = b?;
            validator.check(&b)?;
            lock(&progress).add(b.batch.num_rows() as u64);
        }
        let summary = validator.finish();
        let mut p = lock(&progress);
        p.finish("valid, nothing sent (dry run)");
        return Ok(LoadOutcome {
            dataset: options.dataset.clone(),
            rows: summary.rows,
            upserts: summary.upserts,
            deletes: summary.deletes,
            dry_run: true,
            committed: None,
            attempts: 1,
            seconds: p.elapsed().as_secs_f64(),
            rows_per_second: summary.rows as f64 / p.elapsed().as_secs_f64().max(1e-9),
        });
    }
    let conn = conn.ok_or_else(|| LoadError::Usage("no server".into()))?;
    let attempts = AtomicU64::new(0);
    let (report, summary) = conn
        .retrying("upload", |_| {
            attempts.fetch_add(1, Ordering::Relaxed);
            upload(conn, options, &sources, &target, Arc::clone(&progress))
        })
        .await?;
    let mut p = lock(&progress);
    p.finish(&if report.version == 0 {
        "nothing to change (no version yet, and the change set only deletes)".to_owned()
    } else {
        format!(
            "committed as version {} ({} rows now)",
            report.version, report.rows
        )
    });
    let seconds = p.elapsed().as_secs_f64();
    Ok(LoadOutcome {
        dataset: options.dataset.clone(),
        rows: summary.rows,
        upserts: summary.upserts,
        deletes: summary.deletes,
        dry_run: false,
        committed: Some(report),
        attempts: attempts.load(Ordering::Relaxed) as u32,
        seconds,
        rows_per_second: summary.rows as f64 / seconds.max(1e-9),
    })
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// One attempt: stream, validate, send, and read the server's report.
async fn upload(
    conn: &Connection,
    options: &LoadOptions,
    sources: &Sources,
    target: &Target,
    progress: Arc<Mutex<Progress>>,
) -> Result<(PutReport, crate::validate::Summary)> {
    lock(&progress).restart();
    let mut client = conn.client().await?;
    client
        .add_header(
            LOAD_HEADER,
            if options.changes {
                "changes"
            } else {
                "snapshot"
            },
        )
        .map_err(flight_error)?;
    let compression = match options.compression.as_deref() {
        None | Some("none") => None,
        Some("lz4") => Some(CompressionType::LZ4_FRAME),
        Some("zstd") => Some(CompressionType::ZSTD),
        Some(other) => {
            return Err(LoadError::Usage(format!(
                "compression must be lz4, zstd or none; got `{other}`"
            )));
        }
    };
    let ipc = IpcWriteOptions::default()
        .try_with_compression(compression)
        .map_err(|e| LoadError::Usage(format!("compression: {e}")))?;
    // The first input or validation error, kept with its location: the stream can only
    // carry a Flight error.
    let failed: Arc<Mutex<Option<LoadError>>> = Arc::new(Mutex::new(None));
    let validator = Arc::new(Mutex::new(Validator::new(target)));
    let sent = Arc::new(AtomicU64::new(0));
    let batches = {
        let failed = Arc::clone(&failed);
        let validator = Arc::clone(&validator);
        let sent = Arc::clone(&sent);
        sources.open(target).map(move |item| {
            let checked = item.and_then(|b| {
                validator
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .check(&b)
                    .map(|()| b)
            });
            match checked {
                Ok(b) => {
                    let n = b.batch.num_rows() as u64;
                    sent.fetch_add(n, Ordering::Relaxed);
                    lock(&progress).add(n);
                    Ok(b.batch)
                }
                Err(e) => {
                    let text = e.to_string();
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    Err(FlightError::ProtocolError(text))
                }
            }
        })
    };
    let data = FlightDataEncoderBuilder::new()
        .with_schema(target.schema())
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec![
            options.dataset.clone(),
        ])))
        .with_options(ipc)
        .build(batches);
    // The end marker goes after the last batch, with the count of rows actually sent.
    let end = {
        let sent = Arc::clone(&sent);
        stream::once(async move {
            Ok(FlightData {
                app_metadata: EndMarker::new(sent.load(Ordering::Relaxed))
                    .to_bytes()
                    .into(),
                ..Default::default()
            })
        })
    };
    let result = async {
        let mut responses = client.do_put(data.chain(end)).await.map_err(flight_error)?;
        let first = responses.next().await;
        match first {
            Some(Ok(r)) => serde_json::from_slice::<PutReport>(&r.app_metadata)
                .map_err(|e| LoadError::Server(format!("unreadable upload report: {e}"))),
            Some(Err(e)) => Err(flight_error(e)),
            None => Err(LoadError::Transient(
                "the server closed the upload without an answer".into(),
            )),
        }
    }
    .await;
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    let report = result?;
    let summary = std::mem::replace(
        &mut *validator.lock().unwrap_or_else(|e| e.into_inner()),
        Validator::new(target),
    )
    .finish();
    Ok((report, summary))
}

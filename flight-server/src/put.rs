//! `DoPut` of a full new snapshot, or of a change set, by the dataset's owner: the stream is
//! decoded and checked as it arrives (size bound), validated by the engine like any load, and
//! committed only when the stream ended cleanly *and* complete; any error leaves the previous
//! snapshot current.
//!
//! A connection that breaks (a client that dies, a network failure) ends the stream with an
//! error, and nothing is committed. But standard clients end the stream *cleanly* when their
//! own data source fails half-way, so every upload must prove that it is complete, in one of
//! two ways:
//! - announce its row count up front in the header `x-dagr-rows` (for sources whose size is
//!   known, and for standard Flight clients), or
//! - end with a message without data whose `app_metadata` is the JSON `{"end":{"rows":N}}`
//!   (what `dagr load` sends, so that it can stream sources of unknown length).
//!
//! An upload with neither, or with another count, is refused.
//!
//! The header `x-dagr-load` says what the upload is: `snapshot` (the default; the stream is
//! the next version) or `changes` (upserts and deletes by primary key, in the column
//! [`dagr_engine::changes::CHANGE_COLUMN`]; the engine derives the next version by
//! copy-on-write).
//!
//! Compressed IPC buffers declare their decompressed size, which arrow allocates before
//! decompressing; [`check_declared_sizes`] sums what the messages declare, and an upload
//! whose messages declare more than it may hold in all is refused, so forged lengths cannot
//! exhaust memory.
//!
//! Owners of the dataset's organisation and admins upload; anyone else is refused without
//! learning whether the dataset exists. Each upload is recorded in the dataset's load history
//! through the [`LoadJournal`] of the [`FlightConfig`], when there is one.

use std::sync::Arc;

use arrow_flight::FlightData;
use arrow_flight::PutResult;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::sql::server::PeekableFlightDataStream;
use dagr_engine::{Engine, Role};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::FlightConfig;
use crate::auth::Caller;
use crate::error::{bad_input, status};

/// What a committed upload answers, as JSON in `PutResult.app_metadata`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PutReport {
    /// The dataset.
    pub dataset: String,
    /// The version the upload became.
    pub version: u64,
    /// Rows in that version.
    pub rows: usize,
    /// `snapshot` or `changes`.
    #[serde(default = "snapshot_mode")]
    pub mode: String,
    /// For a change set: what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeCounts>,
}

fn snapshot_mode() -> String {
    "snapshot".to_owned()
}

/// What a committed change set did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// Upserted keys that were new.
    pub inserted: usize,
    /// Upserted keys that existed.
    pub updated: usize,
    /// Deleted keys.
    pub deleted: usize,
    /// Deletes of keys that were not there (ignored, so that a retry is harmless).
    pub missing: usize,
}

/// The header in which an uploader announces how many rows it sends.
pub const ROWS_HEADER: &str = "x-dagr-rows";
/// The header that says whether an upload is a `snapshot` (default) or `changes`.
pub const LOAD_HEADER: &str = "x-dagr-load";

/// The `app_metadata` of the message that ends a complete upload: `{"end":{"rows":N}}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct EndMarker {
    /// The end of the upload.
    pub end: EndOfUpload,
}

/// The content of an [`EndMarker`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct EndOfUpload {
    /// Rows sent in all.
    pub rows: u64,
}

impl EndMarker {
    /// The marker of an upload of `rows` rows.
    pub fn new(rows: u64) -> Self {
        EndMarker {
            end: EndOfUpload { rows },
        }
    }

    /// The marker as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// A full snapshot: the next version.
    Snapshot,
    /// Upserts and deletes by primary key.
    Changes,
}

impl LoadMode {
    /// The mode named by the `x-dagr-load` header value (absent: snapshot).
    pub fn parse(value: Option<&str>) -> Result<Self, Status> {
        match value.map(str::trim) {
            None | Some("") | Some("snapshot") => Ok(LoadMode::Snapshot),
            Some("changes") => Ok(LoadMode::Changes),
            Some(other) => Err(Status::invalid_argument(format!(
                "{LOAD_HEADER} must be `snapshot` or `changes`; got `{other}`"
            ))),
        }
    }
}

/// Where uploads are recorded — the dataset's load history — if anywhere. The server
/// records an upload when it has checked who sends it, and its end (committed or refused)
/// when the upload has been decided. A record left open by a crash is the history's to close.
pub trait LoadJournal: Send + Sync + std::fmt::Debug {
    /// An upload of `dataset` by `principal` in `mode` started; the id of its record, or
    /// `None` when it could not be recorded (the upload goes on; the failure is logged).
    fn started<'a>(
        &'a self,
        principal: &'a dagr_engine::Principal,
        dataset: &'a str,
        mode: LoadMode,
    ) -> BoxFuture<'a, Option<i64>>;

    /// The upload `id` ended after `bytes` bytes: committed as `Ok((version, rows))`, or
    /// refused with `Err(reason)`.
    fn finished(
        &self,
        id: i64,
        bytes: u64,
        outcome: std::result::Result<(u64, usize), String>,
    ) -> BoxFuture<'_, ()>;
}

/// The dataset named by a descriptor path `[dataset]`.
pub(crate) fn dataset_of(descriptor: &arrow_flight::FlightDescriptor) -> Result<String, Status> {
    if descriptor.r#type() != DescriptorType::Path || descriptor.path.len() != 1 {
        return Err(Status::invalid_argument(
            "name the dataset with a PATH descriptor of one element: [dataset]",
        ));
    }
    Ok(descriptor.path[0].clone())
}

/// Receive and commit a snapshot or a change set, recorded in the load history.
pub(crate) async fn put_upload(
    engine: &Arc<Engine>,
    caller: &Caller,
    config: &FlightConfig,
    expected_rows: Option<usize>,
    mode: LoadMode,
    mut stream: PeekableFlightDataStream,
) -> Result<PutResult, Status> {
    let descriptor = match stream.peek().await {
        Some(Ok(first)) => first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("the first message must carry the descriptor [dataset]")
        })?,
        Some(Err(e)) => return Err(e.clone()),
        None => return Err(Status::invalid_argument("empty upload")),
    };
    let dataset = dataset_of(&descriptor)?;
    let p = &caller.principal;
    // Who may load is decided before anything about the dataset is said: others learn
    // neither whether it exists nor who owns it.
    let definition = engine.definition(&dataset).ok();
    let allowed = definition.as_ref().is_some_and(|d| {
        p.role == Role::Admin
            || (p.role == Role::Owner && p.organisation.as_deref() == Some(d.owner.as_str()))
    });
    if !allowed {
        return Err(
            if matches!(p.role, Role::Owner | Role::Admin) && definition.is_none() {
                Status::not_found(format!("dataset `{dataset}` not found"))
            } else {
                Status::permission_denied(format!(
                    "only an owner of `{dataset}` (a provider system of its organisation) or an \
                 admin uploads to it"
                ))
            },
        );
    }
    let journal = config.journal.as_deref();
    let record = match journal {
        Some(j) => j.started(p, &dataset, mode).await,
        None => None,
    };
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let result = receive(
        engine,
        caller,
        config,
        expected_rows,
        mode,
        &dataset,
        stream,
        Arc::clone(&received),
    )
    .await;
    if let (Some(j), Some(id)) = (journal, record) {
        let bytes = received.load(std::sync::atomic::Ordering::Relaxed);
        let outcome = match &result {
            Ok((_, report)) => Ok((report.version, report.rows)),
            Err(s) => Err(s.message().to_owned()),
        };
        j.finished(id, bytes, outcome).await;
    }
    result.map(|(put, _)| put)
}

#[allow(clippy::too_many_arguments)]
async fn receive(
    engine: &Arc<Engine>,
    caller: &Caller,
    config: &FlightConfig,
    expected_rows: Option<usize>,
    mode: LoadMode,
    dataset: &str,
    stream: PeekableFlightDataStream,
    counted: Arc<std::sync::atomic::AtomicU64>,
) -> Result<(PutResult, PutReport), Status> {
    let dataset = dataset.to_owned();
    let p = &caller.principal;
    let max = config.max_upload_bytes;
    let mut received = 0usize;
    let mut declared = 0u64;
    // The end marker is a message without IPC data: taken out here, before the decoder
    // (which only understands IPC messages), and any data after it is refused.
    let marker: Arc<parking_lot::Mutex<Option<u64>>> = Arc::default();
    let seen = Arc::clone(&marker);
    let checked = stream.filter_map(move |item| {
        let out = (|| {
            let data = item?;
            if seen.lock().is_some() {
                return Err(Status::invalid_argument(
                    "the upload sent data after its end marker; nothing was committed",
                ));
            }
            if data.data_header.is_empty() {
                if !data.app_metadata.is_empty() {
                    let end: EndMarker =
                        serde_json::from_slice(&data.app_metadata).map_err(|e| {
                            Status::invalid_argument(format!(
                                "a message without data carries app_metadata that is not the \
                                 end marker {{\"end\":{{\"rows\":N}}}}: {e}"
                            ))
                        })?;
                    *seen.lock() = Some(end.end.rows);
                }
                return Ok(None);
            }
            received = received.saturating_add(data.data_body.len() + data.data_header.len());
            counted.store(received as u64, std::sync::atomic::Ordering::Relaxed);
            if received > max {
                return Err(Status::resource_exhausted(format!(
                    "the upload exceeds {max} bytes; nothing was committed"
                )));
            }
            declared = declared.saturating_add(check_declared_sizes(&data, max)?);
            if declared > max as u64 {
                return Err(Status::resource_exhausted(format!(
                    "the upload declares more than {max} bytes once decompressed; nothing was \
                     committed"
                )));
            }
            Ok(Some(data))
        })();
        std::future::ready(out.transpose())
    });
    // Decoding (and decompressing) the IPC messages is bulk work: on the bulk runtime, which
    // reads the upload's messages as they arrive.
    let label = dataset.clone();
    let decode = async move {
        let mut batches = Vec::new();
        let mut decoded = FlightDataDecoder::new(checked.map_err(FlightError::from)).fuse();
        while let Some(message) = decoded.next().await {
            let message = message.map_err(|e| match e {
                FlightError::Tonic(s) if s.code() == tonic::Code::ResourceExhausted => *s,
                FlightError::Tonic(s) if s.code() == tonic::Code::InvalidArgument => *s,
                // A client that breaks off: nothing is committed.
                FlightError::Tonic(s) => Status::aborted(format!(
                    "the upload of `{label}` broke off ({}); nothing was committed",
                    s.message()
                )),
                other => bad_input("the upload is not a valid Arrow stream", other),
            })?;
            if let DecodedPayload::RecordBatch(batch) = message.payload {
                batches.push(batch);
            }
        }
        Ok::<_, Status>(batches)
    };
    let batches = engine
        .pools()
        .run_bulk(decode)
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
    let end = *marker.lock();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let announced = match (expected_rows, end) {
        (Some(header), _) => header as u64,
        (None, Some(marked)) => marked,
        (None, None) => {
            return Err(Status::invalid_argument(format!(
                "the upload of `{dataset}` ended without a row count or its end marker, so it \
                 is not known to be complete: the sender stopped early (its source or its own \
                 validation failed), or it does not announce its rows (the header \
                 `{ROWS_HEADER}`, or a last message with the app_metadata \
                 {{\"end\":{{\"rows\":N}}}}); nothing was committed"
            )));
        }
    };
    if let (Some(header), Some(marked)) = (expected_rows, end)
        && header as u64 != marked
    {
        return Err(Status::invalid_argument(format!(
            "the upload of `{dataset}` announced {header} rows ({ROWS_HEADER}) but its end \
             marker says {marked}; nothing was committed"
        )));
    }
    if announced != rows as u64 {
        return Err(Status::aborted(format!(
            "the upload of `{dataset}` announced {announced} rows but carried {rows}; \
             nothing was committed"
        )));
    }
    if batches.is_empty() {
        return Err(Status::invalid_argument(format!(
            "the upload of `{dataset}` holds no record batch; nothing was committed"
        )));
    }
    let meta = match mode {
        LoadMode::Snapshot => {
            let report = engine
                .load_batches(&dataset, batches)
                .await
                .map_err(status)?;
            tracing::info!(dataset = %dataset, version = report.version, rows = report.rows,
                by = %p.describe(), "snapshot uploaded over Flight");
            PutReport {
                dataset,
                version: report.version,
                rows: report.rows,
                mode: snapshot_mode(),
                changes: None,
            }
        }
        LoadMode::Changes => {
            let report = engine
                .apply_changes(&dataset, batches)
                .await
                .map_err(status)?;
            tracing::info!(dataset = %dataset, version = report.version, rows = report.rows,
                inserted = report.inserted, updated = report.updated, deleted = report.deleted,
                by = %p.describe(), "change set uploaded over Flight");
            PutReport {
                dataset,
                version: report.version,
                rows: report.rows,
                mode: "changes".to_owned(),
                changes: Some(ChangeCounts {
                    inserted: report.inserted,
                    updated: report.updated,
                    deleted: report.deleted,
                    missing: report.missing,
                }),
            }
        }
    };
    Ok((
        PutResult {
            app_metadata: serde_json::to_vec(&meta).unwrap_or_default().into(),
        },
        meta,
    ))
}

/// The bytes an IPC message will take once decoded: what its compressed buffers declare
/// (arrow reserves that before it decompresses), or its body. Refuses a message that
/// declares more than `max` on its own.
pub(crate) fn check_declared_sizes(data: &FlightData, max: usize) -> Result<u64, Status> {
    if data.data_header.is_empty() {
        return Ok(0);
    }
    let message = dagr_engine::arrow::ipc::root_as_message(&data.data_header)
        .map_err(|e| bad_input("invalid IPC message header", e))?;
    let batch = message
        .header_as_record_batch()
        .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
    let Some(batch) = batch else {
        return Ok(0);
    };
    if batch.compression().is_none() {
        return Ok(data.data_body.len() as u64);
    }
    let body = &data.data_body;
    let mut total = 0u64;
    for b in batch.buffers().into_iter().flatten() {
        let (offset, length) = (b.offset(), b.length());
        if length == 0 {
            continue;
        }
        let start =
            usize::try_from(offset).map_err(|_| bad_input("IPC buffer", "negative offset"))?;
        let prefix = body
            .get(start..start.saturating_add(8))
            .filter(|p| p.len() == 8 && length >= 8)
            .ok_or_else(|| bad_input("IPC buffer", "a compressed buffer lies outside the body"))?;
        let declared = i64::from_le_bytes(prefix.try_into().unwrap_or([0; 8]));
        // -1 marks a buffer sent uncompressed.
        total = total.saturating_add(if declared < 0 {
            length as u64
        } else {
            declared as u64
        });
        if total > max as u64 {
            return Err(Status::resource_exhausted(format!(
                "a message declares more than {max} bytes once decompressed"
            )));
        }
    }
    Ok(total)
}

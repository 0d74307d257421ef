//! `DoPut` of a full new snapshot by the dataset's owner: the stream is decoded and checked
//! as it arrives (size bound), validated by the engine like any load, and committed only when
//! the stream ended cleanly; any error leaves the previous snapshot current.
//!
//! A connection that breaks (a client that dies, a network failure) ends the stream with an
//! error, and nothing is committed. But standard clients end the stream *cleanly* when their
//! own data source fails half-way, so every upload must announce its row count in the header
//! `x-dagr-rows`: an upload without it, or with another count, is refused.
//!
//! Compressed IPC buffers declare their decompressed size, which arrow allocates before
//! decompressing; [`check_declared_sizes`] refuses a message that declares more than the
//! upload may hold, so a forged length cannot exhaust memory.

use std::sync::Arc;

use arrow_flight::FlightData;
use arrow_flight::PutResult;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::sql::server::PeekableFlightDataStream;
use dagr_engine::{Engine, Role};
use futures::{StreamExt, TryStreamExt};
use tonic::Status;

use crate::FlightConfig;
use crate::auth::Caller;
use crate::error::{bad_input, status};

/// What a committed upload answers, as JSON in `PutResult.app_metadata`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PutReport {
    /// The dataset.
    pub dataset: String,
    /// The version the upload became.
    pub version: u64,
    /// Rows loaded.
    pub rows: usize,
}

/// The header in which an uploader announces how many rows it sends.
pub const ROWS_HEADER: &str = "x-dagr-rows";

/// The dataset named by a descriptor path `[dataset]`.
pub(crate) fn dataset_of(descriptor: &arrow_flight::FlightDescriptor) -> Result<String, Status> {
    if descriptor.r#type() != DescriptorType::Path || descriptor.path.len() != 1 {
        return Err(Status::invalid_argument(
            "name the dataset with a PATH descriptor of one element: [dataset]",
        ));
    }
    Ok(descriptor.path[0].clone())
}

/// Receive and commit a snapshot.
pub(crate) async fn put_snapshot(
    engine: &Arc<Engine>,
    caller: &Caller,
    config: &FlightConfig,
    expected_rows: Option<usize>,
    mut stream: PeekableFlightDataStream,
) -> Result<PutResult, Status> {
    let Some(expected_rows) = expected_rows else {
        return Err(Status::invalid_argument(format!(
            "announce the number of rows of the upload in the header `{ROWS_HEADER}`, so that \
             an upload cut short by the client is refused instead of committed"
        )));
    };
    let descriptor = match stream.peek().await {
        Some(Ok(first)) => first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("the first message must carry the descriptor [dataset]")
        })?,
        Some(Err(e)) => return Err(e.clone()),
        None => return Err(Status::invalid_argument("empty upload")),
    };
    let dataset = dataset_of(&descriptor)?;
    let definition = engine.definition(&dataset).map_err(status)?;
    let p = &caller.principal;
    if !(p.role == Role::Owner && p.organisation.as_deref() == Some(definition.owner.as_str())) {
        return Err(Status::permission_denied(format!(
            "only an owner of `{}` (a provider system's token) uploads snapshots of `{dataset}`",
            definition.owner
        )));
    }
    let mut batches = Vec::new();
    let max = config.max_upload_bytes;
    let mut received = 0usize;
    let checked = stream.map(move |item| {
        let data = item?;
        received = received.saturating_add(data.data_body.len() + data.data_header.len());
        if received > max {
            return Err(Status::resource_exhausted(format!(
                "the upload exceeds {max} bytes; nothing was committed"
            )));
        }
        check_declared_sizes(&data, max)?;
        Ok(data)
    });
    let mut decoded =
        FlightRecordBatchStream::new_from_flight_data(checked.map_err(FlightError::from)).fuse();
    while let Some(batch) = decoded.next().await {
        let batch = batch.map_err(|e| match e {
            FlightError::Tonic(s) if s.code() == tonic::Code::ResourceExhausted => *s,
            FlightError::Tonic(s) if s.code() == tonic::Code::InvalidArgument => *s,
            // A client that breaks off: nothing is committed.
            FlightError::Tonic(s) => Status::aborted(format!(
                "the upload of `{dataset}` broke off ({}); nothing was committed",
                s.message()
            )),
            other => bad_input("the upload is not a valid Arrow stream", other),
        })?;
        batches.push(batch);
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if expected_rows != rows {
        return Err(Status::aborted(format!(
            "the upload of `{dataset}` announced {expected_rows} rows ({ROWS_HEADER}) but \
             carried {rows}; nothing was committed"
        )));
    }
    if batches.is_empty() {
        return Err(Status::invalid_argument(format!(
            "the upload of `{dataset}` holds no record batch; nothing was committed"
        )));
    }
    let report = engine
        .load_batches(&dataset, batches)
        .await
        .map_err(status)?;
    tracing::info!(
        dataset = %dataset,
        version = report.version,
        rows = report.rows,
        by = %p.describe(),
        "snapshot uploaded over Flight"
    );
    let meta = PutReport {
        dataset,
        version: report.version,
        rows: report.rows,
    };
    Ok(PutResult {
        app_metadata: serde_json::to_vec(&meta).unwrap_or_default().into(),
    })
}

/// Refuse an IPC message whose compressed buffers declare more than `max` bytes in all once
/// decompressed (arrow reserves the declared size before it decompresses).
pub(crate) fn check_declared_sizes(data: &FlightData, max: usize) -> Result<(), Status> {
    if data.data_header.is_empty() {
        return Ok(());
    }
    let message = dagr_engine::arrow::ipc::root_as_message(&data.data_header)
        .map_err(|e| bad_input("invalid IPC message header", e))?;
    let batch = message
        .header_as_record_batch()
        .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
    let Some(batch) = batch else {
        return Ok(());
    };
    if batch.compression().is_none() {
        return Ok(());
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
    Ok(())
}

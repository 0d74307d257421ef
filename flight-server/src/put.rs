//! `DoPut` of a full new snapshot by the dataset's owner: the stream is decoded and checked
//! as it arrives (size bound), validated by the engine like any load, and committed only when
//! the stream ended cleanly; any error leaves the previous snapshot current.
//!
//! A connection that breaks (a client that dies, a network failure) ends the stream with an
//! error, and nothing is committed. A client that merely stops sending ends it cleanly, so a
//! client that wants the server to check that everything arrived sends the row count it is
//! about to upload in the header `x-dagr-rows`: an upload with another count is refused.

use std::sync::Arc;

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
    let mut bytes = 0usize;
    let mut decoded =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from)).fuse();
    while let Some(batch) = decoded.next().await {
        let batch = batch.map_err(|e| match e {
            // A client that breaks off: nothing is committed.
            FlightError::Tonic(s) => Status::aborted(format!(
                "the upload of `{dataset}` broke off ({}); nothing was committed",
                s.message()
            )),
            other => bad_input("the upload is not a valid Arrow stream", other),
        })?;
        bytes += batch.get_array_memory_size();
        if bytes > config.max_upload_bytes {
            return Err(Status::resource_exhausted(format!(
                "the upload exceeds {} bytes; nothing was committed",
                config.max_upload_bytes
            )));
        }
        batches.push(batch);
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if let Some(expected) = expected_rows
        && expected != rows
    {
        return Err(Status::aborted(format!(
            "the upload of `{dataset}` announced {expected} rows (x-dagr-rows) but carried \
             {rows}; nothing was committed"
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

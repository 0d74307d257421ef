//! Turning engine data into Flight streams: a masked dataset as batches of a configured size,
//! a query result, and the IPC encoding (size-bounded messages, optional LZ4/ZSTD,
//! dictionaries kept as dictionaries).

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::FlightData;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::datatypes::SchemaRef;
use dagr_engine::arrow::ipc::CompressionType;
use dagr_engine::arrow::ipc::writer::IpcWriteOptions;
use dagr_engine::{AuditContext, AuditSink, MaskedView, QueryResult, ReadLog};
use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use tonic::Status;

use crate::FlightConfig;

/// The header in which a client asks for IPC compression (`lz4` or `zstd`).
pub(crate) const COMPRESSION_HEADER: &str = "x-dagr-compression";

/// A stream of record batches on its way to a client.
pub(crate) type Batches = BoxStream<'static, Result<RecordBatch, FlightError>>;
/// The `DoGet` response stream.
pub(crate) type FlightStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send>>;

/// The compression a client asked for, by name.
pub(crate) fn compression(name: Option<&str>) -> Result<Option<CompressionType>, Status> {
    match name.map(str::trim) {
        None | Some("") | Some("none") => Ok(None),
        Some("lz4") => Ok(Some(CompressionType::LZ4_FRAME)),
        Some("zstd") => Ok(Some(CompressionType::ZSTD)),
        Some(other) => Err(Status::invalid_argument(format!(
            "compression must be `lz4`, `zstd` or `none`; got `{other}`"
        ))),
    }
}

/// Encode batches as Flight data: messages kept under the configured size, compressed when
/// asked, dictionaries sent as dictionaries.
pub(crate) fn encode(
    schema: SchemaRef,
    batches: Batches,
    config: &FlightConfig,
    compression: Option<CompressionType>,
) -> Result<FlightStream, Status> {
    let options = IpcWriteOptions::default()
        .try_with_compression(compression)
        .map_err(|e| Status::internal(format!("IPC options: {e}")))?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(config.max_message_bytes)
        .with_options(options)
        .with_dictionary_handling(DictionaryHandling::Resend)
        .build(batches)
        .map_err(Status::from);
    Ok(Box::pin(stream))
}

/// A masked dataset, chunk by chunk, in batches of at most `batch_rows` rows. The view pins
/// the snapshot: a load that commits meanwhile changes nothing for this stream. Batches are
/// produced as the client reads them (backpressure through the HTTP/2 window).
pub(crate) fn dataset(
    view: MaskedView,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    batch_rows: usize,
) -> Batches {
    let batch_rows = batch_rows.max(1);
    let chunks = view.snapshot.chunks().len();
    stream::iter(0..chunks)
        .flat_map(move |c| {
            let out: Vec<Result<RecordBatch, FlightError>> =
                match view.chunk(c, projection.as_deref(), &schema) {
                    Ok(None) => vec![],
                    Ok(Some(b)) => (0..b.num_rows())
                        .step_by(batch_rows)
                        .map(|at| Ok(b.slice(at, batch_rows.min(b.num_rows() - at))))
                        .collect(),
                    Err(e) => vec![Err(FlightError::from(crate::error::status(e)))],
                };
            stream::iter(out)
        })
        .boxed()
}

/// One batch as a stream.
pub(crate) fn once(batch: RecordBatch) -> Batches {
    stream::iter([Ok(batch)]).boxed()
}

/// A query's result stream.
pub(crate) fn query(result: QueryResult) -> Batches {
    result
        .stream
        .map_err(|e| {
            FlightError::from(crate::error::status(dagr_engine::error::from_query_error(
                e,
            )))
        })
        .boxed()
}

/// Where a response's access records go, and in whose name.
pub(crate) struct Audit {
    /// The sink.
    pub(crate) sink: Arc<dyn AuditSink>,
    /// What the response hands out.
    pub(crate) reads: ReadLog,
    /// Who, why, how.
    pub(crate) context: Arc<AuditContext>,
}

impl Audit {
    /// Commit the records of what was read so far (nothing when no personal attribute was).
    async fn commit(&self) -> Result<(), Status> {
        let records = self.reads.take_records(&self.context);
        if records.is_empty() {
            return Ok(());
        }
        self.sink
            .commit(records)
            .await
            .map(drop)
            .map_err(|e| crate::error::status(dagr_engine::Error::AuditUnavailable(e.to_string())))
    }
}

/// Records what a stream handed out if it ends early (the client went away): the records
/// are written after the fact, since the stream is gone.
struct Guard {
    audit: Audit,
    finished: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let records = self.audit.reads.take_records(&self.audit.context);
        if records.is_empty() {
            return;
        }
        let sink = Arc::clone(&self.audit.sink);
        match tokio::runtime::Handle::try_current() {
            // Detached on purpose: the stream that owned the records is being dropped.
            Ok(handle) => drop(handle.spawn(async move {
                if let Err(e) = sink.commit(records).await {
                    tracing::error!(error = %e, "the access record of an abandoned stream was not written");
                }
            })),
            Err(_) => tracing::error!(
                "no runtime to write the access record of an abandoned stream"
            ),
        }
    }
}

/// The batches of a response that may carry personal data, audited: each batch is held back
/// until the next one arrives, and the last one is released only after the access records
/// of everything read are committed. If the commit fails, the stream ends with an error
/// instead of its last batch (for a one-batch answer, a point lookup: nothing is returned).
pub(crate) fn audited(batches: Batches, audit: Audit) -> Batches {
    struct State {
        inner: Batches,
        held: Option<RecordBatch>,
        guard: Guard,
        done: bool,
    }
    let state = State {
        inner: batches,
        held: None,
        guard: Guard {
            audit,
            finished: false,
        },
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.inner.next().await {
                Some(Ok(b)) => {
                    if let Some(prev) = st.held.replace(b) {
                        return Some((Ok(prev), st));
                    }
                }
                Some(Err(e)) => {
                    // The batches already sent are recorded; the held one is not sent.
                    st.done = true;
                    st.guard.finished = true;
                    if let Err(s) = st.guard.audit.commit().await {
                        tracing::error!(error = %s, "access record of a failed stream not written");
                    }
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    st.guard.finished = true;
                    return match st.guard.audit.commit().await {
                        Ok(()) => st.held.take().map(|b| (Ok(b), st)),
                        Err(s) => Some((Err(FlightError::from(s)), st)),
                    };
                }
            }
        }
    })
    .boxed()
}

//! Turning engine data into Flight streams: a masked dataset as batches of a configured size,
//! a query result, and the IPC encoding (size-bounded messages, optional LZ4/ZSTD,
//! dictionaries kept as dictionaries).

use std::pin::Pin;

use arrow_flight::FlightData;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::datatypes::SchemaRef;
use dagr_engine::arrow::ipc::CompressionType;
use dagr_engine::arrow::ipc::writer::IpcWriteOptions;
use dagr_engine::{MaskedView, QueryResult};
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
                match view
                    .mask
                    .apply_chunk(&view.snapshot, c, projection.as_deref(), &schema)
                {
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

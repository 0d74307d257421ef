//! Turning engine data into Flight streams: a masked dataset as batches of a configured size,
//! a query result, and the IPC encoding (size-bounded messages, optional LZ4/ZSTD,
//! dictionaries kept as dictionaries).
//!
//! Bulk responses (whole datasets, change feeds, SQL results) are produced, masked, audited
//! and encoded on the engine's bulk runtime ([`on_bulk`]); the serving runtime only moves
//! finished messages to the socket. Point lookups are answered on the serving runtime.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::FlightData;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::datatypes::SchemaRef;
use dagr_engine::arrow::ipc::CompressionType;
use dagr_engine::arrow::ipc::writer::IpcWriteOptions;
use dagr_engine::pools::BULK_STREAM_AHEAD;
use dagr_engine::{AuditContext, AuditSink, MaskedView, Pools, QueryResult, ReadLog};
use futures::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use tonic::Status;

use crate::FlightConfig;
use crate::wire::{self, Encoded, Messages};

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

/// Encode batches as IPC messages: kept under the configured size, compressed when asked,
/// dictionaries sent as dictionaries (when they change). With [`FlightConfig::zero_copy`],
/// the batches' own buffers are referenced ([`wire::IpcEncoder`]); without, arrow-flight's
/// `FlightDataEncoder` copies them into each message as before.
pub(crate) fn encode(
    schema: SchemaRef,
    batches: Batches,
    config: &FlightConfig,
    compression: Option<CompressionType>,
) -> Result<Messages, Status> {
    let options = IpcWriteOptions::default()
        .try_with_compression(compression)
        .map_err(|e| Status::internal(format!("IPC options: {e}")))?;
    if !config.zero_copy {
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(config.max_message_bytes)
            .with_options(options)
            .with_dictionary_handling(DictionaryHandling::Resend)
            .build(batches.inspect(|b| {
                if let Ok(b) = b {
                    count_rows(b);
                }
            }))
            .map(|d| d.map(Encoded::from_flight).map_err(Status::from));
        return Ok(stream.boxed());
    }
    let (mut encoder, first) = wire::IpcEncoder::new(&schema, options, config.max_message_bytes)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?;
    let rest = batches
        .map(move |batch| {
            let messages = batch.map_err(Status::from).and_then(|b| {
                count_rows(&b);
                encoder
                    .encode(&b)
                    .map_err(|e| Status::internal(format!("cannot encode a batch: {e}")))
            });
            match messages {
                Ok(m) => stream::iter(m.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::iter([Err(e)]).right_stream(),
            }
        })
        .flatten();
    Ok(stream::once(async { Ok(first) }).chain(rest).boxed())
}

/// Count the rows of a batch put on a stream (`dagr_flight_sent_rows_total`).
fn count_rows(batch: &RecordBatch) {
    dagr_engine::metrics::metrics()
        .flight_rows
        .inc_by(batch.num_rows() as u64);
}

/// Produce an encoded response on the bulk runtime of `pools`: at most
/// [`BULK_STREAM_AHEAD`] messages wait for the client; when it stops reading (the HTTP/2
/// window is full), production stops until it reads again, and when it goes away, the
/// producer stops. Unchanged when the pools are shared.
pub(crate) fn on_bulk(pools: &Pools, stream: Messages) -> Messages {
    pools.bulk_stream(stream, BULK_STREAM_AHEAD, |reason| {
        tracing::error!(reason, "a bulk Flight stream failed");
        Err(Status::internal(format!("the stream failed: {reason}")))
    })
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
        self.reads
            .commit(&self.context, self.sink.as_ref())
            .await
            .map_err(crate::error::status)
    }
}

/// Most bytes of batches an audited stream holds back before it commits the rows read so far
/// and releases them.
pub(crate) const MAX_HELD_BYTES: usize = 64 << 20;

/// A stream whose access record covers everything it will send (a whole-dataset `DoGet`:
/// every visible row, noted before the call; as batches, or as messages from the cache): the record is committed before the first
/// batch, so no batch leaves without it. If the commit fails, the stream is only the error.
pub(crate) fn committed_first<T, E>(
    items: BoxStream<'static, Result<T, E>>,
    audit: Audit,
) -> BoxStream<'static, Result<T, E>>
where
    T: Send + 'static,
    E: From<Status> + Send + 'static,
{
    stream::once(async move {
        match audit.commit().await {
            Ok(()) => items,
            Err(s) => stream::iter([Err(E::from(s))]).boxed(),
        }
    })
    .flatten()
    .boxed()
}

/// The batches of a response whose rows are known only as they are produced (SQL, filter
/// tickets, key lookups): batches are held back until the access record of what was read
/// commits — at the end of the stream, or when more than [`MAX_HELD_BYTES`] are held (then
/// the rows so far are committed as one record and released, and holding starts again, so a
/// huge result may give several records with the same request id). If a commit fails, the
/// stream ends with `UNAVAILABLE` and nothing held is released; a one-batch answer (a point
/// lookup) then returns nothing.
pub(crate) fn audited(batches: Batches, audit: Audit) -> Batches {
    struct State {
        inner: Batches,
        audit: Audit,
        held: std::collections::VecDeque<RecordBatch>,
        held_bytes: usize,
        ended: bool,
        failed: bool,
    }
    let state = State {
        inner: batches,
        audit,
        held: std::collections::VecDeque::new(),
        held_bytes: 0,
        ended: false,
        failed: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if st.failed {
                return None;
            }
            // Release what a commit has covered.
            if st.held_bytes == 0
                && let Some(b) = st.held.pop_front()
            {
                return Some((Ok(b), st));
            }
            if st.ended {
                return None;
            }
            match st.inner.next().await {
                Some(Ok(b)) => {
                    st.held_bytes += b.get_array_memory_size().max(1);
                    st.held.push_back(b);
                    if st.held_bytes > MAX_HELD_BYTES {
                        if let Err(s) = st.audit.commit().await {
                            st.failed = true;
                            return Some((Err(FlightError::from(s)), st));
                        }
                        st.held_bytes = 0;
                    }
                }
                Some(Err(e)) => {
                    // Nothing held is sent; what was read is recorded all the same, since an
                    // error message may quote a value. If that fails, say so instead.
                    st.held.clear();
                    st.failed = true;
                    return match st.audit.commit().await {
                        Ok(()) => Some((Err(e), st)),
                        Err(s) => Some((Err(FlightError::from(s)), st)),
                    };
                }
                None => {
                    st.ended = true;
                    if let Err(s) = st.audit.commit().await {
                        st.failed = true;
                        return Some((Err(FlightError::from(s)), st));
                    }
                    st.held_bytes = 0;
                }
            }
        }
    })
    .boxed()
}

//! The `DoGet` wire path: Arrow IPC messages go to the socket without being copied into a
//! protobuf message.
//!
//! tonic's generated server copies every byte of a response twice after the data is
//! produced: `FlightDataEncoder` copies the record batch's buffers into one body vector, and
//! prost copies that `FlightData` into tonic's frame buffer. Here (`docs/flight.md`, "The wire
//! path"):
//! - [`IpcEncoder`] encodes a batch with arrow-ipc's `StreamEncoder`, which references the
//!   batch's own buffers where they need no rewriting (a slice's values, an unmasked column)
//!   and writes only the rest (the flatbuffer header, padding, a sliced validity bitmap or
//!   re-based offsets, compressed buffers). Each message is an [`Encoded`]: header and body
//!   pieces, byte for byte what `FlightDataEncoder` puts in a `FlightData`.
//! - [`GrpcBody`] frames each message as gRPC does — the 5-byte length prefix, then the
//!   protobuf fields of `FlightData` in prost's order, then the body — and hands the body
//!   pieces to hyper as they are: h2 writes each one from where it lies (`writev`). Pieces
//!   under [`COALESCE_BYTES`] are merged into one buffer, so a message is a few large
//!   writes and not one small frame per buffer.
//! - [`Wire`] sits in front of the generated `FlightServiceServer` and answers `DoGet` itself;
//!   every other method goes to the generated code. Authentication, quotas, masks and the
//!   audit are the service's own ([`crate::DagrFlight`]); only the encoding differs.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use arrow_flight::{FlightData, Ticket};
use bytes::{BufMut, Bytes, BytesMut};
use dagr_engine::arrow::array::{Array, AsArray, RecordBatch};
use dagr_engine::arrow::buffer::Buffer;
use dagr_engine::arrow::datatypes::Schema;
use dagr_engine::arrow::error::ArrowError;
use dagr_engine::arrow::ipc::root_as_message;
use dagr_engine::arrow::ipc::writer::{IpcWriteOptions, StreamEncoder};
use futures::stream::{BoxStream, StreamExt};
use http_body::Frame;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;

use crate::DagrFlight;

/// One IPC message on its way to a client: the flatbuffer header and the body as the pieces
/// it is made of (the record batch's own buffers where no copy was needed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Encoded {
    /// The IPC message (flatbuffer), `FlightData.data_header`.
    pub(crate) header: Bytes,
    /// The body, in order; together `FlightData.data_body`.
    pub(crate) body: Vec<Bytes>,
    /// `FlightData.app_metadata`.
    pub(crate) app_metadata: Bytes,
}

impl Encoded {
    /// Bytes of the body.
    pub(crate) fn body_len(&self) -> usize {
        self.body.iter().map(Bytes::len).sum()
    }

    /// Bytes held: header, body and metadata.
    pub(crate) fn size(&self) -> usize {
        self.header.len() + self.body_len() + self.app_metadata.len()
    }

    /// A `FlightData` produced elsewhere (DoGet responses carry no descriptor).
    pub(crate) fn from_flight(data: FlightData) -> Self {
        let body = if data.data_body.is_empty() {
            vec![]
        } else {
            vec![data.data_body]
        };
        Encoded {
            header: data.data_header,
            body,
            app_metadata: data.app_metadata,
        }
    }

    /// As a `FlightData`: the body is joined (copied) only when it has several pieces.
    pub(crate) fn into_flight(mut self) -> FlightData {
        let data_body = match self.body.len() {
            0 => Bytes::new(),
            1 => self.body.pop().unwrap_or_default(),
            _ => {
                let mut joined = BytesMut::with_capacity(self.body_len());
                for piece in &self.body {
                    joined.extend_from_slice(piece);
                }
                joined.freeze()
            }
        };
        FlightData {
            flight_descriptor: None,
            data_header: self.header,
            app_metadata: self.app_metadata,
            data_body,
        }
    }
}

/// A `DoGet` response as encoded messages.
pub(crate) type Messages = BoxStream<'static, Result<Encoded, Status>>;

/// Messages as the `FlightData` stream tonic's generated code sends.
pub(crate) fn into_flight_stream(messages: Messages) -> crate::stream::FlightStream {
    Box::pin(messages.map(|m| m.map(Encoded::into_flight)))
}

/// An arrow `Buffer` as `Bytes`, without a copy (the `Bytes` keeps the buffer alive).
fn to_bytes(buffer: Buffer) -> Bytes {
    struct Owner(Buffer);
    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            self.0.as_slice()
        }
    }
    Bytes::from_owner(Owner(buffer))
}

/// Encodes record batches as IPC messages, referencing their buffers instead of copying
/// them. Dictionaries are sent when they change, as `FlightDataEncoder` with
/// `DictionaryHandling::Resend` does; batches are split by rows to keep each message under
/// `max_message_bytes`.
pub(crate) struct IpcEncoder {
    inner: StreamEncoder,
    max_message_bytes: usize,
    /// Whether `inner` has emitted its schema message (dropped: [`Self::new`] gives it).
    schema_skipped: bool,
}

impl IpcEncoder {
    /// An encoder for batches of `schema`, and the schema message that starts the stream.
    pub(crate) fn new(
        schema: &Schema,
        options: IpcWriteOptions,
        max_message_bytes: usize,
    ) -> Result<(Self, Encoded), ArrowError> {
        // The schema message as the batch encoder will number its dictionaries: from an
        // encoder of its own, finished at once (schema + end of stream).
        let alone = StreamEncoder::try_new_with_options(schema, options.clone())?.finish()?;
        let mut first = Vec::with_capacity(1);
        split_messages(alone, &mut first)?;
        let schema_message = first
            .into_iter()
            .next()
            .ok_or_else(|| ArrowError::IpcError("no schema message".to_owned()))?;
        Ok((
            IpcEncoder {
                inner: StreamEncoder::try_new_with_options(schema, options)?,
                max_message_bytes: max_message_bytes.max(1),
                schema_skipped: false,
            },
            schema_message,
        ))
    }

    /// The messages of one batch: dictionaries that changed, then the batch (in pieces).
    pub(crate) fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Encoded>, ArrowError> {
        let mut out = Vec::new();
        for piece in split_batch(batch, self.max_message_bytes) {
            let buffers = self.inner.encode(&piece)?;
            let from = out.len();
            split_messages(buffers, &mut out)?;
            if !self.schema_skipped && out.len() > from && is_schema(&out[from]) {
                out.remove(from);
                self.schema_skipped = true;
            }
        }
        Ok(out)
    }
}

/// Whether `m` is a schema message.
fn is_schema(m: &Encoded) -> bool {
    root_as_message(&m.header)
        .is_ok_and(|h| h.header_type() == dagr_engine::arrow::ipc::MessageHeader::Schema)
}

/// `batch` cut by rows into pieces of about `max_bytes` each (of the bytes the batch
/// references, not of its parents' buffers: a slice of a large chunk is not cut further than
/// its own size needs; a dictionary column counts its keys, its values travel in their own
/// message).
fn split_batch(batch: &RecordBatch, max_bytes: usize) -> Vec<RecordBatch> {
    let size: usize = batch
        .columns()
        .iter()
        .map(|c| {
            let data = match c.as_any_dictionary_opt() {
                Some(d) => d.keys().to_data(),
                None => c.to_data(),
            };
            data.get_slice_memory_size()
                .unwrap_or_else(|_| c.get_buffer_memory_size())
        })
        .sum();
    let pieces = size.div_ceil(max_bytes).max(1);
    let rows = batch.num_rows();
    if pieces == 1 || rows <= 1 {
        return vec![batch.clone()];
    }
    let per_piece = (rows / pieces).max(1);
    (0..rows)
        .step_by(per_piece)
        .map(|at| batch.slice(at, per_piece.min(rows - at)))
        .collect()
}

/// Cut the framed IPC stream `StreamEncoder` gives (continuation and length, header,
/// padding, body buffers, padding; each write its own buffer) into messages.
fn split_messages(buffers: Vec<Buffer>, out: &mut Vec<Encoded>) -> Result<(), ArrowError> {
    let framing = |what: &str| ArrowError::IpcError(format!("unexpected IPC framing: {what}"));
    let mut pieces = buffers.into_iter().filter(|b| !b.is_empty());
    while let Some(prefix) = pieces.next() {
        if prefix.len() != 8 || prefix[..4] != [0xff; 4] {
            return Err(framing("no continuation marker"));
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&prefix[4..]);
        let metadata_len = i32::from_le_bytes(len);
        if metadata_len == 0 {
            // End of stream.
            break;
        }
        let metadata_len =
            usize::try_from(metadata_len).map_err(|_| framing("negative metadata length"))?;
        let header = pieces.next().ok_or_else(|| framing("no header"))?;
        let mut seen = header.len();
        while seen < metadata_len {
            seen += pieces.next().ok_or_else(|| framing("short header"))?.len();
        }
        if seen != metadata_len {
            return Err(framing("header length"));
        }
        let body_len = root_as_message(&header)
            .map_err(|e| ArrowError::IpcError(format!("an IPC header we wrote: {e}")))?
            .bodyLength();
        let body_len = usize::try_from(body_len).map_err(|_| framing("negative body length"))?;
        let mut body = Vec::new();
        let mut got = 0;
        while got < body_len {
            let piece = pieces.next().ok_or_else(|| framing("short body"))?;
            got += piece.len();
            body.push(to_bytes(piece));
        }
        if got != body_len {
            return Err(framing("body length"));
        }
        out.push(Encoded {
            header: to_bytes(header),
            body,
            app_metadata: Bytes::new(),
        });
    }
    Ok(())
}

/// Body pieces smaller than this are merged into one buffer before they go to hyper (each
/// piece is at least one HTTP/2 frame and one `writev`).
pub(crate) const COALESCE_BYTES: usize = 64 << 10;

/// The `data_body` field number of `FlightData`.
const DATA_BODY_TAG: u32 = 1000;

/// Append to `out` the pieces of one gRPC message carrying `m` as a `FlightData`: the length
/// prefix and the protobuf fields before the body (prost's order: descriptor, header,
/// app_metadata, body), then the body pieces, small ones merged.
fn frame(m: Encoded, max_bytes: usize, out: &mut VecDeque<Bytes>) -> Result<(), Status> {
    let body_len = m.body_len();
    let fields = FlightData {
        flight_descriptor: None,
        data_header: m.header,
        app_metadata: m.app_metadata,
        data_body: Bytes::new(),
    };
    let fields_len = fields.encoded_len();
    let body_key_len = if body_len > 0 {
        key_len(DATA_BODY_TAG) + encoded_len_varint(body_len as u64)
    } else {
        0
    };
    let total = fields_len + body_key_len + body_len;
    if total > max_bytes {
        // As tonic's encoder refuses a message over its limit.
        return Err(Status::out_of_range(format!(
            "a message of {total} bytes is over the limit of {max_bytes} bytes (one row too large?)"
        )));
    }
    let total =
        u32::try_from(total).map_err(|_| Status::internal("a Flight message over 4 GiB"))?;
    let mut current = BytesMut::with_capacity(5 + fields_len + body_key_len);
    current.put_u8(0);
    current.put_u32(total);
    fields
        .encode(&mut current)
        .map_err(|e| Status::internal(format!("cannot encode a FlightData: {e}")))?;
    if body_len > 0 {
        encode_key(DATA_BODY_TAG, WireType::LengthDelimited, &mut current);
        encode_varint(body_len as u64, &mut current);
    }
    for piece in m.body {
        if piece.len() < COALESCE_BYTES {
            current.extend_from_slice(&piece);
        } else {
            if !current.is_empty() {
                out.push_back(current.split().freeze());
            }
            out.push_back(piece);
        }
    }
    if !current.is_empty() {
        out.push_back(current.freeze());
    }
    Ok(())
}

/// The trailers that end a response with `status`.
fn trailers(status: &Status) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.clear();
        let _ = Status::internal("the response failed").add_header(&mut map);
    }
    map
}

/// A gRPC response body of encoded messages, ended by trailers with the stream's status.
/// Dropping it (the client went away) drops the message stream, which stops its producer.
pub(crate) struct GrpcBody {
    messages: Option<Messages>,
    /// Largest message sent.
    max_message_bytes: usize,
    pending: VecDeque<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl GrpcBody {
    pub(crate) fn new(messages: Messages, max_message_bytes: usize) -> Self {
        GrpcBody {
            messages: Some(messages),
            max_message_bytes,
            pending: VecDeque::new(),
            trailers: None,
        }
    }
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if let Some(piece) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if let Some(t) = this.trailers.take() {
                return Poll::Ready(Some(Ok(Frame::trailers(t))));
            }
            let Some(messages) = this.messages.as_mut() else {
                return Poll::Ready(None);
            };
            let end = match ready!(messages.poll_next_unpin(cx)) {
                Some(Ok(m)) => match frame(m, this.max_message_bytes, &mut this.pending) {
                    Ok(()) => continue,
                    Err(s) => s,
                },
                Some(Err(s)) => s,
                None => Status::ok(""),
            };
            this.messages = None;
            this.trailers = Some(trailers(&end));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.messages.is_none() && self.pending.is_empty() && self.trailers.is_none()
    }
}

/// The gRPC path of `DoGet`.
const DO_GET: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// The Flight service with `DoGet` answered on the wire path; every other method goes to
/// `inner` (the generated `FlightServiceServer`).
#[derive(Debug, Clone)]
pub(crate) struct Wire<S> {
    inner: S,
    flight: DagrFlight,
    /// Largest request accepted (the ticket's gRPC message).
    max_request_bytes: usize,
    /// Largest message sent.
    max_response_bytes: usize,
}

impl<S> Wire<S> {
    pub(crate) fn new(
        inner: S,
        flight: DagrFlight,
        max_request_bytes: usize,
        max_response_bytes: usize,
    ) -> Self {
        Wire {
            inner,
            flight,
            max_request_bytes,
            max_response_bytes,
        }
    }
}

impl<S> NamedService for Wire<S> {
    const NAME: &'static str = "arrow.flight.protocol.FlightService";
}

impl<S> Service<http::Request<Body>> for Wire<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != DO_GET {
            return Box::pin(self.inner.call(request));
        }
        let flight = self.flight.clone();
        let limits = (self.max_request_bytes, self.max_response_bytes);
        Box::pin(async move {
            Ok(match do_get(flight, request, limits).await {
                Ok(response) => response,
                Err(status) => status.into_http(),
            })
        })
    }
}

/// `DoGet`: the ticket from the request, the response from the service, sent as
/// [`GrpcBody`]. The token is checked before the request body is read.
async fn do_get(
    flight: DagrFlight,
    request: http::Request<Body>,
    (max_request_bytes, max_response_bytes): (usize, usize),
) -> Result<http::Response<Body>, Status> {
    let (parts, body) = request.into_parts();
    let metadata = MetadataMap::from_headers(parts.headers);
    let principal = flight.authenticate_metadata(&metadata)?;
    let ticket = read_ticket(body, max_request_bytes).await?;
    let request = tonic::Request::from_parts(metadata, parts.extensions, ticket);
    let (metadata, messages, _) = flight.get_messages(principal, request).await?.into_parts();
    let mut response = http::Response::new(Body::new(GrpcBody::new(messages, max_response_bytes)));
    *response.headers_mut() = metadata.into_headers();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    Ok(response)
}

/// The one gRPC message of a `DoGet` request, decoded as a `Ticket`.
async fn read_ticket(mut body: Body, max_bytes: usize) -> Result<Ticket, Status> {
    use http_body::Body as _;
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > max_bytes.saturating_add(5) {
                return Err(Status::out_of_range(format!(
                    "the DoGet request is larger than {max_bytes} bytes"
                )));
            }
            buf.extend_from_slice(&data);
        }
    }
    if buf.len() < 5 {
        return Err(Status::invalid_argument("the DoGet request has no message"));
    }
    if buf[0] != 0 {
        return Err(Status::unimplemented(
            "compressed DoGet requests are not supported",
        ));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() != 5 + len {
        return Err(Status::invalid_argument(
            "the DoGet request must be one gRPC message",
        ));
    }
    Ticket::decode(&buf[5..])
        .map_err(|e| Status::invalid_argument(format!("the DoGet request is not a Ticket: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
    use dagr_engine::arrow::array::{
        ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, ListArray,
        StringArray, StructArray,
    };
    use dagr_engine::arrow::datatypes::{DataType, Field, Int32Type};
    use dagr_engine::arrow::ipc::CompressionType;

    use crate::FlightConfig;
    use crate::stream::{Batches, encode};

    /// Plain, dictionary (the same dictionary twice, then a new one) and nested columns,
    /// with nulls, some batches sliced at odd offsets.
    fn batches() -> (Arc<Schema>, Vec<RecordBatch>) {
        let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let item = Arc::new(Field::new("item", DataType::Int32, true));
        let fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("score", DataType::Float64, true),
            Field::new("city", dict_type, true),
            Field::new("tags", DataType::List(Arc::clone(&item)), true),
            Field::new(
                "address",
                DataType::Struct(
                    vec![
                        Field::new("street", DataType::Utf8, true),
                        Field::new("number", DataType::Int32, true),
                    ]
                    .into(),
                ),
                true,
            ),
        ];
        let schema = Arc::new(Schema::new(fields));
        let make = |n: i64, cities: &[&str]| {
            let keys = Int32Array::from_iter(
                (0..n).map(|i| (i % 7 != 3).then_some((i % cities.len() as i64) as i32)),
            );
            let city: DictionaryArray<Int32Type> =
                DictionaryArray::try_new(keys, Arc::new(StringArray::from(cities.to_vec())))
                    .unwrap();
            let tags =
                ListArray::from_iter_primitive::<Int32Type, _, _>((0..n).map(|i| {
                    (i % 5 != 0).then(|| (0..(i % 4) as i32).map(Some).collect::<Vec<_>>())
                }));
            let street: ArrayRef = Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 3 != 0).then(|| format!("iela {i}"))),
            ));
            let number: ArrayRef = Arc::new(Int32Array::from_iter(
                (0..n).map(|i| (i % 4 != 0).then_some(i as i32)),
            ));
            let address = StructArray::from(vec![
                (Arc::new(Field::new("street", DataType::Utf8, true)), street),
                (
                    Arc::new(Field::new("number", DataType::Int32, true)),
                    number,
                ),
            ]);
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 6 != 0).then(|| format!("person {i}"))),
                )),
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|i| (i % 9 != 0).then_some(i % 2 == 0)),
                )),
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| (i % 8 != 0).then_some(i as f64 / 3.0)),
                )),
                Arc::new(city),
                Arc::new(tags),
                Arc::new(address),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        };
        let first = make(3000, &["Rīga", "Cēsis"]);
        let again = make(1000, &["Rīga", "Cēsis"]);
        let other = make(2000, &["Liepāja", "Ogre", "Valka"]);
        (
            Arc::clone(&schema),
            vec![
                first.clone(),
                first.slice(3, 1001),
                again,
                other.slice(1, 555),
                other,
            ],
        )
    }

    async fn encoded(
        schema: &Arc<Schema>,
        batches: &[RecordBatch],
        zero_copy: bool,
        max_message_bytes: usize,
        compression: Option<CompressionType>,
    ) -> Vec<FlightData> {
        let config = FlightConfig {
            zero_copy,
            max_message_bytes,
            ..Default::default()
        };
        let input: Batches =
            futures::stream::iter(batches.iter().cloned().map(Ok).collect::<Vec<_>>()).boxed();
        encode(Arc::clone(schema), input, &config, compression)
            .unwrap()
            .map(|m| m.unwrap().into_flight())
            .collect()
            .await
    }

    #[tokio::test]
    async fn the_zero_copy_encoder_sends_the_bytes_flight_data_encoder_sends() {
        let (schema, batches) = batches();
        for compression in [None, Some(CompressionType::LZ4_FRAME)] {
            let ours = encoded(&schema, &batches, true, 64 << 20, compression).await;
            let theirs = encoded(&schema, &batches, false, 64 << 20, compression).await;
            assert_eq!(ours.len(), theirs.len(), "messages ({compression:?})");
            // Schema, the first dictionary, five batches, the replaced dictionary.
            assert_eq!(ours.len(), 8);
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert_eq!(a.data_header, b.data_header, "header of message {i}");
                assert_eq!(a.data_body, b.data_body, "body of message {i}");
                assert_eq!(a.app_metadata, b.app_metadata);
            }
        }
    }

    #[test]
    fn an_unsliced_column_is_sent_from_its_own_memory() {
        let (schema, batches) = batches();
        let (mut encoder, _) =
            IpcEncoder::new(&schema, IpcWriteOptions::default(), 64 << 20).unwrap();
        let messages = encoder.encode(&batches[0]).unwrap();
        let ids = batches[0].column(0).to_data().buffers()[0].as_ptr();
        let names = batches[0].column(1).to_data().buffers()[1].as_ptr();
        let pieces: Vec<*const u8> = messages
            .iter()
            .flat_map(|m| m.body.iter().map(|b| b.as_ptr()))
            .collect();
        assert!(pieces.contains(&ids), "the id values are not copied");
        assert!(pieces.contains(&names), "the name bytes are not copied");
    }

    #[tokio::test]
    async fn batches_are_cut_below_the_message_size_and_decode_to_the_same_rows() {
        let (schema, batches) = batches();
        let max = 16 << 10;
        let ours = encoded(&schema, &batches, true, max, None).await;
        assert!(ours.len() > 8, "cut into more messages: {}", ours.len());
        for m in &ours {
            // One row more than the size would be needed to cross it.
            assert!(m.data_body.len() < 2 * max, "{} bytes", m.data_body.len());
        }
        let decoded: Vec<RecordBatch> =
            FlightDataDecoder::new(futures::stream::iter(ours.into_iter().map(Ok)))
                .filter_map(|d| async move {
                    match d.unwrap().payload {
                        DecodedPayload::RecordBatch(b) => Some(b),
                        _ => None,
                    }
                })
                .collect()
                .await;
        let expected = dagr_engine::arrow::compute::concat_batches(&schema, &batches).unwrap();
        let got = dagr_engine::arrow::compute::concat_batches(&schema, &decoded).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_framed_message_is_what_prost_encodes() {
        let m = Encoded {
            header: Bytes::from_static(b"header bytes"),
            body: vec![
                Bytes::from(vec![1u8; 100]),
                Bytes::from(vec![2u8; COALESCE_BYTES + 3]),
                Bytes::from(vec![3u8; 7]),
            ],
            app_metadata: Bytes::from_static(b"meta"),
        };
        let expected = m.clone().into_flight().encode_to_vec();
        let mut pieces = VecDeque::new();
        frame(m, usize::MAX, &mut pieces).unwrap();
        assert_eq!(pieces.len(), 3, "small pieces merged, the large one alone");
        let wire: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(wire[0], 0);
        assert_eq!(
            u32::from_be_bytes([wire[1], wire[2], wire[3], wire[4]]) as usize,
            expected.len()
        );
        assert_eq!(&wire[5..], &expected[..]);
    }

    #[test]
    fn an_empty_body_has_no_body_field() {
        let m = Encoded {
            header: Bytes::from_static(b"schema"),
            ..Default::default()
        };
        let expected = m.clone().into_flight().encode_to_vec();
        let mut pieces = VecDeque::new();
        frame(m, usize::MAX, &mut pieces).unwrap();
        let wire: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(&wire[5..], &expected[..]);
    }
}

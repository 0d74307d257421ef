//! What the Flight benches (`benches/flight.rs`, `benches/flight_bulk.rs`) share: the demo
//! `persons` engine, a one-token [`BenchPolicy`], the minimal arrow-flight [`BaselineFlight`]
//! server, DAGR's and the baseline's servers on `127.0.0.1:0`, tonic clients with chosen
//! HTTP/2 settings ([`ClientOptions`]), and one timed full `DoGet` ([`full_get`]).
//!
//! It measures nothing by itself. Each Flight bench includes it with
//! `#[path = "support/flight.rs"] mod flight_support;` (it is not part of `support/mod.rs`,
//! which every bench includes); run them with `cargo bench --bench flight` and
//! `cargo bench --bench flight_bulk`.

// Each bench uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::DecodedPayload;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightClient, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use dagr_engine::demo::{DEFAULT_SEED, DemoConfig, generate};
use dagr_engine::task::SpawnedTask;
use dagr_engine::{
    Access, AccessPolicy, AuditSink, AuthError, Engine, EngineConfig, Principal, Snapshot,
};
use dagr_flight_server::FlightConfig;
use futures::StreamExt;
use futures::TryStreamExt;
use futures::stream::{self, BoxStream};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

/// The one bearer token [`BenchPolicy`] accepts.
pub(crate) const TOKEN: &str = "bench-token";
/// The purpose every read declares (personal data needs one).
pub(crate) const PURPOSE: &str = "benchmark";
/// Client HTTP/2 windows, as NOTES.md recommends (16 / 32 MiB).
pub(crate) const CLIENT_STREAM_WINDOW: u32 = 16 << 20;
pub(crate) const CLIENT_CONNECTION_WINDOW: u32 = 32 << 20;
/// Client decoding limit: large, so that no server setting is refused by the client.
pub(crate) const CLIENT_MAX_DECODING: usize = 256 << 20;

/// The demo's persons: `DAGR_BENCH_PERSONS`, default 5 000 000.
pub(crate) fn persons_count() -> usize {
    std::env::var("DAGR_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000)
}

/// The demo `persons` register generated with `n` persons and loaded into an engine on a
/// temporary directory (no metadata store); the directory lives as long as the handle.
pub(crate) async fn setup(n: usize) -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let persons = tokio::task::spawn_blocking(move || {
        generate(&DemoConfig {
            persons: n,
            seed: DEFAULT_SEED,
        })
        .expect("demo data")
        .into_iter()
        .find(|d| d.definition.name == "persons")
        .expect("persons")
    })
    .await
    .expect("generator");
    let engine = Engine::open_dir(&dir.path().join("store"), EngineConfig::default())
        .await
        .expect("engine");
    engine
        .create_dataset(persons.definition.clone())
        .await
        .expect("create persons");
    engine
        .load_batches("persons", persons.batches)
        .await
        .expect("load persons");
    (dir, Arc::new(engine))
}

/// Authenticates [`TOKEN`] as `principal`, who holds `access`; no governance store.
#[derive(Debug)]
pub(crate) struct BenchPolicy {
    pub(crate) principal: Principal,
    pub(crate) access: Access,
}

impl AccessPolicy for BenchPolicy {
    fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        if bearer == TOKEN {
            Ok(self.principal.clone())
        } else {
            Err(AuthError::Invalid)
        }
    }

    fn access(&self, _principal: &Principal) -> Access {
        self.access.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The baseline: a minimal arrow-flight server
// ---------------------------------------------------------------------------------------

/// `DoGet` of any ticket streams the prepared batches; nothing else is implemented.
#[derive(Debug, Clone)]
pub(crate) struct BaselineFlight {
    pub(crate) schema: SchemaRef,
    pub(crate) batches: Arc<Vec<RecordBatch>>,
    pub(crate) max_message_bytes: usize,
}

type Boxed<T> = BoxStream<'static, Result<T, Status>>;

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented("the baseline only answers DoGet"))
}

#[tonic::async_trait]
impl FlightService for BaselineFlight {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoExchangeStream = Boxed<FlightData>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented()
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unimplemented()
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unimplemented()
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unimplemented()
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        unimplemented()
    }

    async fn do_get(
        &self,
        _request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let batches = Arc::clone(&self.batches);
        let input = stream::iter((0..batches.len()).map(move |i| Ok(batches[i].clone())));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(Arc::clone(&self.schema))
            .with_max_flight_data_size(self.max_message_bytes)
            .with_dictionary_handling(DictionaryHandling::Resend)
            .build(input)
            .map_err(Status::from);
        Ok(Response::new(stream.boxed()))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unimplemented()
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented()
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented()
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        unimplemented()
    }
}

/// The snapshot's chunks sliced to `batch_rows`, as DAGR's `DoGet` slices them.
pub(crate) fn baseline_batches(snapshot: &Snapshot, batch_rows: usize) -> Vec<RecordBatch> {
    snapshot
        .chunks()
        .iter()
        .flat_map(|c| {
            (0..c.num_rows())
                .step_by(batch_rows)
                .map(move |at| c.slice(at, batch_rows.min(c.num_rows() - at)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Servers and clients
// ---------------------------------------------------------------------------------------

/// A server on 127.0.0.1:0, stopped with [`Running::stop`].
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: SpawnedTask<()>,
}

impl Running {
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        // Dropping the join on timeout drops the task, which aborts it.
        if tokio::time::timeout(Duration::from_secs(10), self.task.join())
            .await
            .is_err()
        {
            eprintln!("a server did not stop within 10 s; aborted it");
        }
    }
}

pub(crate) async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// `dagr_flight_server::serve` with `config` on its own port.
pub(crate) async fn start_dagr(
    engine: &Arc<Engine>,
    policy: &Arc<dyn AccessPolicy>,
    audit: &Arc<dyn AuditSink>,
    config: FlightConfig,
) -> Running {
    let (listener, addr) = bind().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let engine = Arc::clone(engine);
    let policy = Arc::clone(policy);
    let audit = Arc::clone(audit);
    let task = SpawnedTask::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) =
            dagr_flight_server::serve(listener, engine, policy, audit, config, shutdown).await
        {
            eprintln!("DAGR Flight server failed: {e}");
        }
    });
    Running { addr, stop, task }
}

/// The baseline with the transport settings `dagr_flight_server::serve` applies.
pub(crate) async fn start_baseline(service: BaselineFlight, config: &FlightConfig) -> Running {
    let (listener, addr) = bind().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = FlightServiceServer::new(service)
        .max_encoding_message_size(config.max_message_bytes.max(4 << 20) * 2)
        .max_decoding_message_size(config.max_decoding_bytes);
    let router = Server::builder()
        .initial_stream_window_size(config.stream_window)
        .initial_connection_window_size(config.connection_window)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true)
        .add_service(service);
    let task = SpawnedTask::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            eprintln!("baseline Flight server failed: {e}");
        }
    });
    Running { addr, stop, task }
}

/// HTTP/2 settings of a client channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientOptions {
    /// The 16 / 32 MiB stream / connection windows; else tonic's defaults.
    pub(crate) windows: bool,
    /// The `SETTINGS_MAX_FRAME_SIZE` advertised; `None` leaves h2's 16 KiB default.
    pub(crate) max_frame_size: Option<u32>,
}

impl ClientOptions {
    /// With or without the large windows, h2's default frame size.
    pub(crate) const fn windows(windows: bool) -> Self {
        ClientOptions {
            windows,
            max_frame_size: None,
        }
    }

    /// The large windows and DAGR's client frame size
    /// ([`dagr_flight_server::CLIENT_MAX_FRAME_SIZE`]).
    pub(crate) const fn tuned() -> Self {
        ClientOptions {
            windows: true,
            max_frame_size: Some(dagr_flight_server::CLIENT_MAX_FRAME_SIZE),
        }
    }
}

/// A channel to `addr` with `options`.
pub(crate) async fn channel(addr: SocketAddr, options: ClientOptions) -> Channel {
    let mut endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .tcp_nodelay(true);
    if options.windows {
        endpoint = endpoint
            .initial_stream_window_size(CLIENT_STREAM_WINDOW)
            .initial_connection_window_size(CLIENT_CONNECTION_WINDOW);
    }
    if let Some(size) = options.max_frame_size {
        endpoint = endpoint.max_frame_size(size);
    }
    endpoint.connect().await.expect("connect")
}

pub(crate) fn raw_client(channel: Channel) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(channel).max_decoding_message_size(CLIENT_MAX_DECODING)
}

/// A client sending [`TOKEN`] and [`PURPOSE`] with every call.
pub(crate) async fn flight_client(addr: SocketAddr, options: ClientOptions) -> FlightClient {
    let mut c = FlightClient::new_from_inner(raw_client(channel(addr, options).await));
    c.add_header("authorization", &format!("Bearer {TOKEN}"))
        .expect("header");
    c.add_header("x-dagr-purpose", PURPOSE).expect("header");
    c
}

// ---------------------------------------------------------------------------------------
// DoGet throughput
// ---------------------------------------------------------------------------------------

/// One full `DoGet`: rows, bytes (IPC header + body of every `FlightData`) and wall time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    pub(crate) rows: usize,
    pub(crate) bytes: usize,
    pub(crate) secs: f64,
}

/// How the client reads a `DoGet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// `FlightClient::do_get(..).into_inner()`: every message decoded to a `RecordBatch`, as
    /// a client that uses the data does.
    Decoded,
    /// The raw `FlightData` stream of the tonic client: bytes counted, rows read from each
    /// IPC message header, nothing decoded (isolates the server and the transport).
    Raw,
}

impl Read {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Read::Decoded => "decoded",
            Read::Raw => "raw",
        }
    }
}

/// One full `DoGet` of `ticket`, read as `read` says.
pub(crate) async fn full_get(client: &mut FlightClient, ticket: &Ticket, read: Read) -> Transfer {
    full_get_keep(client, ticket, read, None).await
}

/// [`full_get`], keeping the decoded batches in `keep` (with [`Read::Decoded`] only).
pub(crate) async fn full_get_keep(
    client: &mut FlightClient,
    ticket: &Ticket,
    read: Read,
    mut keep: Option<&mut Vec<RecordBatch>>,
) -> Transfer {
    let started = Instant::now();
    let (mut rows, mut bytes) = (0, 0);
    match read {
        Read::Decoded => {
            let mut decoder = client
                .do_get(ticket.clone())
                .await
                .expect("DoGet")
                .into_inner();
            while let Some(data) = decoder.next().await {
                let data = data.expect("a FlightData message");
                bytes += data.inner.data_header.len() + data.inner.data_body.len();
                if let DecodedPayload::RecordBatch(b) = data.payload {
                    rows += b.num_rows();
                    if let Some(keep) = keep.as_deref_mut() {
                        keep.push(b);
                    }
                }
            }
        }
        Read::Raw => {
            let mut request = Request::new(ticket.clone());
            *request.metadata_mut() = client.metadata().clone();
            let mut stream = client
                .inner_mut()
                .do_get(request)
                .await
                .expect("DoGet")
                .into_inner();
            while let Some(data) = stream.message().await.expect("a FlightData message") {
                bytes += data.data_header.len() + data.data_body.len();
                rows += arrow::ipc::root_as_message(&data.data_header)
                    .ok()
                    .and_then(|m| m.header_as_record_batch())
                    .map_or(0, |b| b.length() as usize);
            }
        }
    }
    Transfer {
        rows,
        bytes,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// The median run of several (by time).
pub(crate) fn median(mut runs: Vec<Transfer>) -> Transfer {
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    runs[runs.len() / 2]
}

pub(crate) fn gbps(t: &Transfer) -> f64 {
    t.bytes as f64 / t.secs / 1e9
}

pub(crate) fn mrows(t: &Transfer) -> f64 {
    t.rows as f64 / t.secs / 1e6
}

/// The ticket of a whole-dataset `DoGet` of `persons`.
pub(crate) fn dataset_ticket() -> Ticket {
    Ticket::new(serde_json::json!({ "dataset": "persons" }).to_string())
}

//! The service: [`DagrFlight`] implements Flight, answering plain-Flight calls (path
//! descriptors, JSON tickets, `ListFlights`, `GetSchema`) itself and handing Flight SQL
//! commands to [`SqlService`], which implements arrow-flight's `FlightSqlService`.
//!
//! Every call authenticates first and reads with the caller's grants as they are at that
//! moment. `GetFlightInfo` only plans; `DoGet` authorizes again and streams, so a ticket is
//! worth nothing to anyone but a caller who may read it anyway.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::Command;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt,
    SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, IpcMessage, PollInfo, PutResult, SchemaAsIpc,
    SchemaResult, Ticket,
};
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::datatypes::{Schema, SchemaRef};
use dagr_engine::arrow::ipc::writer::IpcWriteOptions;
use dagr_engine::datafusion::scalar::ScalarValue;
use dagr_engine::prepared::Prepared;
use dagr_engine::{
    AccessPolicy, AuditContext, AuditSink, Channel, Engine, MaskedView, Principal, ReadLog,
};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use crate::FlightConfig;
use crate::auth::{self, Caller};
use crate::cache::{self, EncodedCache};
use crate::error::{bad_input, status};
use crate::metadata;
use crate::put::{dataset_of, put_upload};
use crate::quota;
use crate::stream::{self as fstream, COMPRESSION_HEADER, FlightStream};
use crate::ticket::DatasetTicket;
use crate::wire::{self, Encoded, Messages};

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A prepared statement unused this long is closed.
const PREPARED_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// Open prepared statements per caller.
const PREPARED_PER_CALLER: usize = 256;
/// Largest parameter upload, decompressed.
const MAX_PARAMETER_BYTES: usize = 1 << 20;

/// A prepared statement kept between its creation and its close.
struct PreparedEntry {
    prepared: Arc<Prepared>,
    /// The result schema as an IPC message, encoded once when prepared: what every
    /// `GetFlightInfo` of the statement answers with.
    schema_ipc: bytes::Bytes,
    /// Bound parameter values (the last `DoPut` of parameters).
    params: Vec<ScalarValue>,
    /// Who prepared it (the principal with its token): only that caller may use it.
    owner: String,
    used: Instant,
}

/// The Flight SQL half of the service.
pub struct SqlService {
    engine: Arc<Engine>,
    policy: Arc<dyn AccessPolicy>,
    audit: Arc<dyn AuditSink>,
    config: FlightConfig,
    prepared: Mutex<HashMap<Vec<u8>, PreparedEntry>>,
    /// Encoded whole-dataset streams sent before ([`cache`]).
    cache: Arc<EncodedCache>,
    sql_info: arrow_flight::sql::metadata::SqlInfoData,
}

impl std::fmt::Debug for SqlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlService")
            .field("config", &self.config)
            .finish()
    }
}

/// The Flight service of DAGR.
#[derive(Debug, Clone)]
pub struct DagrFlight {
    sql: Arc<SqlService>,
}

impl DagrFlight {
    /// A service over `engine`, authenticating through `policy` and recording every read of
    /// personal data in `audit`.
    pub fn new(
        engine: Arc<Engine>,
        policy: Arc<dyn AccessPolicy>,
        audit: Arc<dyn AuditSink>,
        config: FlightConfig,
    ) -> Self {
        DagrFlight {
            sql: Arc::new(SqlService {
                engine,
                policy,
                audit,
                cache: Arc::new(EncodedCache::new(config.cache_bytes)),
                config,
                prepared: Mutex::new(HashMap::new()),
                sql_info: metadata::sql_info(),
            }),
        }
    }

    /// Whether whole-dataset streams are cached.
    pub(crate) fn cache_enabled(&self) -> bool {
        self.sql.cache.enabled()
    }

    /// Drop the cached streams of agreements no longer in force.
    pub(crate) fn sweep_cache(&self) {
        let engine = &self.sql.engine;
        self.sql.cache.sweep(self.sql.policy.as_ref(), |dataset| {
            engine
                .current(dataset)
                .ok()
                .map(|s| (s.version(), s.created_at().timestamp_micros()))
        });
    }

    /// The caller's principal from its token (nothing counted, nothing read): checked first,
    /// by the wire path before it reads a request body.
    pub(crate) fn authenticate_metadata(
        &self,
        metadata: &MetadataMap,
    ) -> Result<Principal, Status> {
        auth::principal(self.sql.policy.as_ref(), metadata)
    }

    /// `DoGet` of `principal` (from [`Self::authenticate_metadata`]) as encoded IPC messages:
    /// what the wire path ([`wire::Wire`]) sends, and what `FlightService::do_get` turns
    /// into `FlightData`.
    pub(crate) async fn get_messages(
        &self,
        principal: Principal,
        request: Request<Ticket>,
    ) -> Result<Response<Messages>, Status> {
        // Counted against the token's requests per second; then a stream permit of the
        // caller's token, held by the response until it ends.
        self.sql.admit(&principal)?;
        let sql = &self.sql;
        let permit = quota::stream(&sql.config.quotas, sql.policy.as_ref(), &principal)?;
        // JSON tickets are ours; anything else is a Flight SQL ticket (protobuf `Any`).
        let response = if request.get_ref().ticket.first() == Some(&b'{') {
            let caller = auth::caller_of(self.sql.policy.as_ref(), principal, request.metadata())?;
            self.sql.get_dataset(caller, request).await?
        } else {
            self.sql.get_sql(request).await?
        };
        Ok(response.map(|s| quota::hold(permit, s)))
    }
}

fn any_ticket(message: &impl ProstMessageExt) -> Ticket {
    Ticket {
        ticket: message.as_any().encode_to_vec().into(),
    }
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: dagr_engine::arrow::error::ArrowError| {
            Status::internal(format!("cannot encode a schema: {e}"))
        })?;
    Ok(bytes)
}

fn flight_info(
    schema: &Schema,
    descriptor: FlightDescriptor,
    ticket: Ticket,
    records: i64,
) -> Result<FlightInfo, Status> {
    FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))
        .map(|i| {
            i.with_descriptor(descriptor)
                .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
                .with_total_records(records)
                .with_total_bytes(-1)
        })
}

impl SqlService {
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        auth::caller(self.policy.as_ref(), request.metadata())
    }

    /// Authenticate, count the call against the token's requests per second, then resolve the
    /// grants: a token over its rate costs no grant resolution.
    fn admitted_caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let principal = auth::principal(self.policy.as_ref(), request.metadata())?;
        self.admit(&principal)?;
        auth::caller_of(self.policy.as_ref(), principal, request.metadata())
    }

    /// Authenticate only, and count the call against the token's requests per second: for
    /// the wrapper's check before a call is dispatched, whose handler resolves the grants
    /// itself (so they are not built twice per call).
    fn authenticate<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let principal = auth::principal(self.policy.as_ref(), request.metadata())?;
        self.admit(&principal)
    }

    /// Count one call of `p` against its requests per second ([`quota::admit`]).
    fn admit(&self, p: &dagr_engine::Principal) -> Result<(), Status> {
        quota::admit(&self.config.quotas, self.policy.as_ref(), p)
    }

    /// An SQL permit of the caller's token ([`quota::sql`]), held while its query plans
    /// and streams.
    fn sql_permit(&self, caller: &Caller) -> Result<dagr_engine::QuotaPermit, Status> {
        quota::sql(&self.config.quotas, self.policy.as_ref(), &caller.principal)
    }

    fn compression<T>(&self, request: &Request<T>) -> Result<Option<&'static str>, Status> {
        match request.metadata().get(COMPRESSION_HEADER) {
            None => Ok(None),
            Some(v) => match v.to_str().map(str::trim) {
                Ok("lz4") => Ok(Some("lz4")),
                Ok("zstd") => Ok(Some("zstd")),
                Ok("none") | Ok("") => Ok(None),
                _ => Err(Status::invalid_argument(format!(
                    "{COMPRESSION_HEADER} must be `lz4`, `zstd` or `none`"
                ))),
            },
        }
    }

    fn encode<T>(
        &self,
        request: &Request<T>,
        schema: SchemaRef,
        batches: fstream::Batches,
        asked: Option<&str>,
    ) -> Result<Response<Messages>, Status> {
        let name = match asked {
            Some(a) => Some(a),
            None => self.compression(request)?,
        };
        let compression = fstream::compression(name)?;
        Ok(Response::new(fstream::encode(
            schema,
            batches,
            &self.config,
            compression,
        )?))
    }

    /// [`Self::encode`] of a bulk response (a whole dataset, changes, SQL): produced, audited
    /// and encoded on the engine's bulk runtime ([`fstream::on_bulk`]).
    fn encode_bulk<T>(
        &self,
        request: &Request<T>,
        schema: SchemaRef,
        batches: fstream::Batches,
        asked: Option<&str>,
    ) -> Result<Response<Messages>, Status> {
        let response = self.encode(request, schema, batches, asked)?;
        Ok(response.map(|s| fstream::on_bulk(self.engine.pools(), s)))
    }

    /// Audit a response: refused now when it carries personal attributes and the caller
    /// declared no purpose; otherwise its last batch waits for the access records.
    fn audited(
        &self,
        caller: &Caller,
        channel: Channel,
        query: String,
        reads: ReadLog,
        batches: fstream::Batches,
    ) -> Result<fstream::Batches, Status> {
        self.audit_with(caller, channel, query, reads, batches, fstream::audited)
    }

    /// [`Self::audited`] with the stream shape of `wrap`: held back until the record commits
    /// ([`fstream::audited`]) or recorded in full before the first batch
    /// ([`fstream::committed_first`]).
    fn audit_with(
        &self,
        caller: &Caller,
        channel: Channel,
        query: String,
        reads: ReadLog,
        batches: fstream::Batches,
        wrap: fn(fstream::Batches, fstream::Audit) -> fstream::Batches,
    ) -> Result<fstream::Batches, Status> {
        Ok(wrap(batches, self.audit_of(caller, channel, query, reads)?))
    }

    /// Where a response's records go: refused now when it carries personal attributes and
    /// the caller declared no purpose.
    fn audit_of(
        &self,
        caller: &Caller,
        channel: Channel,
        query: String,
        reads: ReadLog,
    ) -> Result<fstream::Audit, Status> {
        reads
            .require_purpose(caller.purpose.as_deref())
            .map_err(status)?;
        let context = Arc::new(AuditContext {
            principal: caller.principal.clone(),
            purpose: caller.purpose.clone(),
            channel,
            request_id: caller.request_id.clone(),
            query,
        });
        Ok(fstream::Audit {
            sink: Arc::clone(&self.audit),
            reads,
            context,
        })
    }

    /// The caller's masked view of a dataset it may read.
    fn view(&self, caller: &Caller, dataset: &str) -> Result<MaskedView, Status> {
        self.engine.view(dataset, &caller.access).map_err(status)
    }

    fn dataset_info(&self, caller: &Caller, dataset: &str) -> Result<FlightInfo, Status> {
        let view = self.view(caller, dataset)?;
        let records = view.mask.visible_rows(view.snapshot.num_rows()) as i64;
        let meta = serde_json::json!({
            "version": view.snapshot.version(),
            "owner": view.snapshot.definition().owner,
            "loaded_at": view.snapshot.created_at().to_rfc3339(),
                        "primary_key": view.mask.key_granted().then(|| view.snapshot.definition().primary_key.clone()),
        });
        let info = flight_info(
            view.mask.schema(),
            FlightDescriptor::new_path(vec![dataset.to_owned()]),
            Ticket::new(DatasetTicket::dataset(dataset).to_bytes()),
            records,
        )?
        .with_app_metadata(meta.to_string().into_bytes());
        Ok(info)
    }

    /// `DoGet` of a JSON ticket.
    async fn get_dataset(
        &self,
        caller: Caller,
        request: Request<Ticket>,
    ) -> Result<Response<Messages>, Status> {
        let ticket = DatasetTicket::parse(&request.get_ref().ticket)?;
        let query = String::from_utf8_lossy(&request.get_ref().ticket).into_owned();
        let reads = ReadLog::new();
        if let Some(since) = ticket.since {
            return self
                .get_changes(&request, &caller, &ticket, since, query)
                .await;
        }
        let view = self.view(&caller, &ticket.dataset)?.with_log(reads.clone());
        let dataset = ticket.dataset.clone();
        let projection = match &ticket.columns {
            None => None,
            Some(cols) => Some(
                cols.iter()
                    .map(|c| {
                        view.mask.index_of(&dataset, c).map_err(|e| {
                            if view.snapshot.definition().attribute(c).is_some() {
                                Status::permission_denied(format!(
                                    "attribute `{c}` of `{dataset}` is not granted to you"
                                ))
                            } else {
                                status(e)
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let schema = view
            .mask
            .projected_schema(projection.as_deref())
            .map_err(status)?;
        tracing::debug!(dataset = %dataset, version = view.snapshot.version(), by = %caller.principal.describe(), "DoGet");
        let batches = if let Some(filter) = &ticket.filter {
            // Checked as a plain predicate over what the caller sees, then run through the
            // same read-only, masked SQL path as Flight SQL.
            dagr_engine::scope::parse(&dataset, view.mask.schema(), filter).map_err(|e| {
                let reason = match e {
                    dagr_engine::Error::InvalidRowScope { reason, .. } => reason,
                    other => other.to_string(),
                };
                Status::invalid_argument(format!("invalid filter on `{dataset}`: {reason}"))
            })?;
            let cols = match &ticket.columns {
                None => "*".to_owned(),
                Some(c) => c
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let sql = format!("SELECT {cols} FROM \"{dataset}\" WHERE ({filter}\n)");
            let permit = self.sql_permit(&caller)?;
            let result = self
                .engine
                .query(&sql, &caller.access)
                .await
                .map_err(status)?;
            // The query pins its own snapshot: its schema is the one that describes the rows.
            let schema = Arc::clone(&result.schema);
            let reads = result.reads.clone();
            let batches = self.audited(
                &caller,
                Channel::FlightGet,
                query,
                reads,
                fstream::query(result),
            )?;
            return self
                .encode_bulk(&request, schema, batches, ticket.compression.as_deref())
                .map(|r| r.map(|s| quota::hold(permit, s)));
        } else if ticket.keys.is_some() {
            let keys = ticket
                .key_texts()?
                .iter()
                .map(|k| view.snapshot.parse_key(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(status)?;
            let rows = view.key_rows(&keys).map_err(status)?;
            // Personal columns are noted even when no key is found: a purpose is required.
            view.note_projection(projection.as_deref());
            let batch = view
                .take(&rows, projection.as_deref(), &schema)
                .map_err(status)?;
            fstream::once(batch)
        } else {
            // The whole masked dataset: its record (every visible row) is committed before the
            // first batch, and the stream itself notes nothing more.
            view.note_whole(projection.as_deref());
            let fingerprint =
                crate::feed::mask_fingerprint(&caller.access, &dataset, view.mask.schema());
            let described = (Arc::clone(&view.snapshot), view.mask.key_granted());
            let compression = match ticket.compression.as_deref() {
                Some(asked) => Some(asked),
                None => self.compression(&request)?,
            };
            let key = match self.cache.enabled() {
                false => None,
                true => Some(cache::Key::new(
                    &view,
                    &caller.access,
                    &fingerprint,
                    projection.as_deref(),
                    fstream::compression(compression)?,
                )),
            };
            let hit = key.as_ref().and_then(|k| self.cache.get(k));
            let cached = match (&key, &hit) {
                (None, _) => None,
                (Some(_), Some(_)) => Some("hit"),
                (Some(_), None) => Some("miss"),
            };
            let mut response = match hit {
                // Sent before to the same grants: the same messages, after the same record.
                Some(hit) => {
                    let audit = self.audit_of(&caller, Channel::FlightGet, query, reads)?;
                    Response::new(fstream::committed_first(hit, audit))
                }
                None => {
                    let stream_view = MaskedView { log: None, ..view };
                    let batches = fstream::dataset(
                        stream_view,
                        projection,
                        Arc::clone(&schema),
                        self.config.batch_rows,
                    );
                    let batches = self.audit_with(
                        &caller,
                        Channel::FlightGet,
                        query,
                        reads,
                        batches,
                        fstream::committed_first,
                    )?;
                    let response = self.encode_bulk(&request, schema, batches, compression)?;
                    match key {
                        Some(key) => response.map(|s| self.cache.tee(key, s)),
                        None => response,
                    }
                }
            };
            crate::feed::describe(
                response.metadata_mut(),
                &described.0,
                None,
                described.1,
                &fingerprint,
            );
            if let Some(cached) = cached {
                dagr_engine::metrics::metrics()
                    .flight_cache
                    .with_label_values(&[cached])
                    .inc();
                response.metadata_mut().insert(
                    crate::feed::CACHE_HEADER,
                    tonic::metadata::MetadataValue::from_static(cached),
                );
            }
            return Ok(response);
        };
        let batches = self.audited(&caller, Channel::FlightGet, query, reads, batches)?;
        self.encode(&request, schema, batches, ticket.compression.as_deref())
    }

    /// `DoGet` of a change ticket: the caller's masked changes since a kept version.
    async fn get_changes(
        &self,
        request: &Request<Ticket>,
        caller: &Caller,
        ticket: &DatasetTicket,
        since: u64,
        query: String,
    ) -> Result<Response<Messages>, Status> {
        let dataset = &ticket.dataset;
        let feed = self
            .engine
            .change_feed(dataset, since, &caller.access)
            .await
            .map_err(status)?;
        let reads = ReadLog::new();
        let feed = Arc::new(feed.with_log(reads.clone()));
        // The fingerprint of the mask the changes were cut with, as a whole-dataset stream
        // of the same version states it.
        let fingerprint =
            crate::feed::mask_fingerprint(&caller.access, dataset, feed.to_view().mask.schema());
        let schema = Arc::clone(&feed.schema);
        tracing::debug!(dataset = %dataset, from = feed.from_version, to = feed.to_version,
            upserts = feed.upserts.len(), deletes = feed.deletes.len(),
            by = %caller.principal.describe(), "DoGet of changes");
        let described = Arc::clone(&feed.to_view().snapshot);
        let batches = crate::feed::batches(Arc::clone(&feed), self.config.batch_rows);
        let batches = self.audited(caller, Channel::FlightGet, query, reads, batches)?;
        let mut response =
            self.encode_bulk(request, schema, batches, ticket.compression.as_deref())?;
        crate::feed::describe(
            response.metadata_mut(),
            &described,
            Some(feed.from_version),
            true,
            &fingerprint,
        );
        Ok(response)
    }

    /// The definition of a dataset, as JSON, for its owner or an admin: what a loader
    /// validates against before it sends anything.
    fn definition(&self, caller: &Caller, body: &[u8]) -> Result<Vec<u8>, Status> {
        let name = std::str::from_utf8(body)
            .map_err(|_| Status::invalid_argument("the action body is the dataset name"))?
            .trim();
        let definition = self.engine.definition(name).map_err(status)?;
        let p = &caller.principal;
        let owner = p.role == dagr_engine::Role::Owner
            && p.organisation.as_deref() == Some(definition.owner.as_str());
        if !(owner || p.role == dagr_engine::Role::Admin) {
            return Err(Status::permission_denied(format!(
                "only an owner of `{}` or an admin reads the definition of `{name}`",
                definition.owner
            )));
        }
        serde_json::to_vec(definition.as_ref())
            .map_err(|e| Status::internal(format!("cannot encode the definition: {e}")))
    }

    fn list(&self, caller: &Caller) -> Vec<Result<FlightInfo, Status>> {
        self.engine
            .dataset_names()
            .into_iter()
            .filter(|n| caller.access.can_see(n))
            .filter_map(|n| match self.dataset_info(caller, &n) {
                Ok(info) => Some(Ok(info)),
                // Nothing granted after all, or nothing loaded yet: not listed.
                Err(s) if s.code() == tonic::Code::PermissionDenied => None,
                                Err(s) if s.code() == tonic::Code::NotFound => None,
                // A grant that does not fit the snapshot hides that dataset, not the list.
                Err(s) if s.code() == tonic::Code::InvalidArgument => {
                    tracing::warn!(dataset = %n, error = %s.message(), "a dataset left out of ListFlights");
                    None
                }
                Err(s) => Some(Err(s)),
            })
            .collect()
    }

    fn prepared_entry(
        &self,
        caller: &Caller,
        handle: &[u8],
    ) -> Result<(Arc<Prepared>, Vec<ScalarValue>), Status> {
        let (prepared, params, _) = self.prepared_of(&caller.principal, handle)?;
        Ok((prepared, params))
    }

    /// The prepared statement `handle` of `owner` (only its maker may use it), its bound
    /// parameters and its encoded result schema; marked as used now.
    ///
    /// Takes only the principal: binding parameters and describing the result need no
    /// grants (the execution resolves them), so those calls skip resolving them.
    fn prepared_of(
        &self,
        owner: &dagr_engine::Principal,
        handle: &[u8],
    ) -> Result<(Arc<Prepared>, Vec<ScalarValue>, bytes::Bytes), Status> {
        let gone = || {
            Status::not_found(
                "no such prepared statement on this server (closed, expired, never made, or \
                     made on another replica behind the same address): prepare it again",
            )
        };
        let owner = owner.describe();
        let mut map = self.prepared.lock();
        let entry = map.get_mut(handle).ok_or_else(gone)?;
        if entry.owner != owner || entry.used.elapsed() > PREPARED_IDLE {
            return Err(gone());
        }
        entry.used = Instant::now();
        Ok((
            Arc::clone(&entry.prepared),
            entry.params.clone(),
            entry.schema_ipc.clone(),
        ))
    }

    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        batch: Result<RecordBatch, dagr_engine::Error>,
        ticket: Ticket,
    ) -> Result<Response<FlightInfo>, Status> {
        let batch = batch.map_err(status)?;
        let descriptor = request.into_inner();
        Ok(Response::new(flight_info(
            &batch.schema(),
            descriptor,
            ticket,
            batch.num_rows() as i64,
        )?))
    }

    /// `DoGet` of a Flight SQL statement ticket.
    async fn get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<Messages>, Status> {
        let caller = self.caller(&request)?;
        let sql = std::str::from_utf8(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("the statement handle is not UTF-8"))?;
        let permit = self.sql_permit(&caller)?;
        let result = self
            .engine
            .query(sql, &caller.access)
            .await
            .map_err(status)?;
        let schema = Arc::clone(&result.schema);
        let reads = result.reads.clone();
        let batches = self.audited(
            &caller,
            Channel::FlightSql,
            sql.to_owned(),
            reads,
            fstream::query(result),
        )?;
        self.encode_bulk(&request, schema, batches, None)
            .map(|r| r.map(|s| quota::hold(permit, s)))
    }

    /// `DoGet` of a prepared statement (a point lookup answers from the key index).
    async fn get_prepared(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<Messages>, Status> {
        let caller = self.caller(&request)?;
        let (prepared, params) = self.prepared_entry(&caller, &cmd.prepared_statement_handle)?;
        // A point lookup reads the key index, as a JSON keys ticket does: it is not an SQL
        // query and takes no SQL permit.
        let permit = if prepared.is_lookup() {
            None
        } else {
            Some(self.sql_permit(&caller)?)
        };
        let result = self
            .engine
            .execute_prepared(&prepared, &params, &caller.access)
            .await
            .map_err(status)?;
        let schema = Arc::clone(&result.schema);
        let reads = result.reads.clone();
        let query = format!("{} -- parameters: {params:?}", prepared.sql());
        let batches = self.audited(
            &caller,
            Channel::FlightSql,
            query,
            reads,
            fstream::query(result),
        )?;
        let response = if prepared.is_lookup() {
            self.encode(&request, schema, batches, None)
        } else {
            self.encode_bulk(&request, schema, batches, None)
        };
        response.map(|r| {
            r.map(|s| match permit {
                Some(p) => quota::hold(p, s),
                None => s,
            })
        })
    }

    /// `DoGet` of a Flight SQL ticket (a protobuf `Any`): statements and prepared statements
    /// here, the metadata commands through the generated dispatch.
    async fn get_sql(&self, request: Request<Ticket>) -> Result<Response<Messages>, Status> {
        let any: Any = prost::Message::decode(&*request.get_ref().ticket)
            .map_err(|e| Status::invalid_argument(format!("the ticket is not valid: {e}")))?;
        match Command::try_from(any).map_err(|e| Status::invalid_argument(e.to_string()))? {
            Command::TicketStatementQuery(t) => self.get_statement(t, request).await,
            Command::CommandPreparedStatementQuery(c) => self.get_prepared(c, request).await,
            _ => {
                let response = FlightService::do_get(self, request).await?;
                Ok(response.map(|s| s.map(|d| d.map(Encoded::from_flight)).boxed()))
            }
        }
    }

    fn metadata_get(
        &self,
        request: &Request<Ticket>,
        batch: Result<RecordBatch, dagr_engine::Error>,
    ) -> Result<Response<FlightStream>, Status> {
        let batch = batch.map_err(status)?;
        let response = self.encode(request, batch.schema(), fstream::once(batch), None)?;
        Ok(response.map(wire::into_flight_stream))
    }
}

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxedStream<HandshakeResponse>>, Status> {
        let metadata = request.metadata().clone();
        let mut inbound = request.into_inner();
        let first = if metadata.get("authorization").is_some() {
            None
        } else {
            inbound.message().await?
        };
        let token = auth::handshake(self.policy.as_ref(), &metadata, first.as_ref())?;
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into_bytes().into(),
        };
        let mut out: Response<BoxedStream<HandshakeResponse>> =
            Response::new(Box::pin(stream::iter([Ok(response)])));
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("cannot set the authorization header"))?;
        out.metadata_mut().insert("authorization", value);
        Ok(out)
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        _message: Any,
    ) -> Result<Response<FlightStream>, Status> {
        let caller = self.caller(&request)?;
        let response = self.get_dataset(caller, request).await?;
        Ok(response.map(wire::into_flight_stream))
    }

    async fn get_flight_info_fallback(
        &self,
        _cmd: arrow_flight::sql::Command,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let dataset = dataset_of(request.get_ref())?;
        Ok(Response::new(self.dataset_info(&caller, &dataset)?))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let _permit = self.sql_permit(&caller)?;
        // Plan only, run nothing: the schema, and every refusal, now.
        let (schema, reads) = self
            .engine
            .describe(&query.query, &caller.access)
            .await
            .map_err(status)?;
        reads
            .require_purpose(caller.purpose.as_deref())
            .map_err(status)?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.clone().into_bytes().into(),
        };
        let descriptor = request.into_inner();
        Ok(Response::new(flight_info(
            &schema,
            descriptor,
            any_ticket(&ticket),
            -1,
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        let response = self.get_statement(ticket, request).await?;
        Ok(response.map(wire::into_flight_stream))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        let response = self.get_prepared(cmd, request).await?;
        Ok(response.map(wire::into_flight_stream))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        let permit = self.sql_permit(&caller)?;
        let prepared = self
            .engine
            .prepare(&query.query, &caller.access)
            .await
            .map_err(status)?;
        drop(permit);
        let dataset_schema = schema_bytes(prepared.result_schema())?;
        let parameter_schema = schema_bytes(prepared.parameter_schema())?;
        let mut handle = vec![0u8; 16];
        getrandom::fill(&mut handle).map_err(|e| Status::internal(e.to_string()))?;
        let owner = caller.principal.describe();
        let mut map = self.prepared.lock();
        // Statements idle too long are closed; a caller over its quota loses its own oldest
        // statement (never another caller's); a full server refuses.
        map.retain(|_, e| e.used.elapsed() <= PREPARED_IDLE);
        let mine: Vec<(Instant, Vec<u8>)> = map
            .iter()
            .filter(|(_, e)| e.owner == owner)
            .map(|(k, e)| (e.used, k.clone()))
            .collect();
        if mine.len() >= PREPARED_PER_CALLER
            && let Some((_, oldest)) = mine.iter().min_by_key(|(used, _)| *used)
        {
            map.remove(oldest);
        }
        if map.len() >= self.config.max_prepared {
            return Err(Status::resource_exhausted(
                "too many open prepared statements on this server; close some and retry",
            ));
        }
        map.insert(
            handle.clone(),
            PreparedEntry {
                prepared: Arc::new(prepared),
                schema_ipc: dataset_schema.clone(),
                params: Vec::new(),
                owner,
                used: Instant::now(),
            },
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let caller = self.caller(&request)?;
        self.prepared_entry(&caller, &query.prepared_statement_handle)?;
        self.prepared
            .lock()
            .remove(query.prepared_statement_handle.as_ref());
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        // Binding needs no grants: the execution resolves them.
        let principal = auth::principal(self.policy.as_ref(), request.metadata())?;
        let (prepared, _, _) = self.prepared_of(&principal, &query.prepared_statement_handle)?;
        let mut received = 0usize;
        let checked = request.into_inner().map(move |item| {
            let data = item?;
            received = received.saturating_add(data.data_body.len() + data.data_header.len());
            if received > MAX_PARAMETER_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "parameters are limited to {MAX_PARAMETER_BYTES} bytes"
                )));
            }
            crate::put::check_declared_sizes(&data, MAX_PARAMETER_BYTES)?;
            Ok(data)
        });
        let mut decoded = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            checked.map_err(FlightError::from),
        );
        let mut row: Option<RecordBatch> = None;
        while let Some(b) = decoded.next().await {
            let b = b.map_err(|e| match e {
                FlightError::Tonic(s) => *s,
                other => bad_input("parameters are not a valid Arrow stream", other),
            })?;
            if b.num_rows() == 0 {
                continue;
            }
            if row.is_some() || b.num_rows() > 1 {
                return Err(Status::invalid_argument(
                    "bind exactly one row of parameters per execution",
                ));
            }
            row = Some(b);
        }
        let batch = row.ok_or_else(|| Status::invalid_argument("no parameter row was sent"))?;
        let expected = prepared.parameter_schema().fields().len();
        if batch.num_columns() != expected {
            return Err(Status::invalid_argument(format!(
                "the statement takes {expected} parameters; got {}",
                batch.num_columns()
            )));
        }
        let params = batch
            .columns()
            .iter()
            .map(|c| ScalarValue::try_from_array(c, 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_input("parameters", e))?;
        if let Some(e) = self
            .prepared
            .lock()
            .get_mut(query.prepared_statement_handle.as_ref())
        {
            e.params = params;
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        // Describing the result needs no grants and no planning: the schema was encoded
        // when the statement was prepared, and `DoGet` checks everything again.
        let principal = auth::principal(self.policy.as_ref(), request.metadata())?;
        let (_, _, schema) = self.prepared_of(&principal, &cmd.prepared_statement_handle)?;
        let descriptor = request.into_inner();
        let info = FlightInfo {
            schema,
            flight_descriptor: Some(descriptor),
            endpoint: vec![FlightEndpoint::new().with_ticket(any_ticket(&cmd))],
            total_records: -1,
            total_bytes: -1,
            ordered: false,
            app_metadata: bytes::Bytes::new(),
        };
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        cmd: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let ticket = any_ticket(&cmd);
        self.metadata_info(request, metadata::catalogs(&cmd), ticket)
    }

    async fn do_get_catalogs(
        &self,
        cmd: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        self.caller(&request)?;
        self.metadata_get(&request, metadata::catalogs(&cmd))
    }

    async fn get_flight_info_schemas(
        &self,
        cmd: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let ticket = any_ticket(&cmd);
        self.metadata_info(request, metadata::db_schemas(&cmd), ticket)
    }

    async fn do_get_schemas(
        &self,
        cmd: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        self.caller(&request)?;
        self.metadata_get(&request, metadata::db_schemas(&cmd))
    }

    async fn get_flight_info_tables(
        &self,
        cmd: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let ticket = any_ticket(&cmd);
        let batch = metadata::tables(&self.engine, &caller.access, &cmd);
        self.metadata_info(request, batch, ticket)
    }

    async fn do_get_tables(
        &self,
        cmd: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        let caller = self.caller(&request)?;
        let batch = metadata::tables(&self.engine, &caller.access, &cmd);
        self.metadata_get(&request, batch)
    }

    async fn get_flight_info_table_types(
        &self,
        cmd: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let ticket = any_ticket(&cmd);
        self.metadata_info(request, metadata::table_types(), ticket)
    }

    async fn do_get_table_types(
        &self,
        _cmd: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        self.caller(&request)?;
        self.metadata_get(&request, metadata::table_types())
    }

    async fn get_flight_info_primary_keys(
        &self,
        cmd: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let ticket = any_ticket(&cmd);
        let batch = metadata::primary_keys(&self.engine, &caller.access, &cmd);
        self.metadata_info(request, batch, ticket)
    }

    async fn do_get_primary_keys(
        &self,
        cmd: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        let caller = self.caller(&request)?;
        let batch = metadata::primary_keys(&self.engine, &caller.access, &cmd);
        self.metadata_get(&request, batch)
    }

    async fn get_flight_info_sql_info(
        &self,
        cmd: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let ticket = any_ticket(&cmd);
        let batch = self
            .sql_info
            .record_batch(cmd.info.clone())
            .map_err(dagr_engine::Error::internal);
        self.metadata_info(request, batch, ticket)
    }

    async fn do_get_sql_info(
        &self,
        cmd: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<FlightStream>, Status> {
        self.caller(&request)?;
        let batch = self
            .sql_info
            .record_batch(cmd.info)
            .map_err(dagr_engine::Error::internal);
        self.metadata_get(&request, batch)
    }

    async fn do_put_fallback(
        &self,
        request: Request<PeekableFlightDataStream>,
        _message: Any,
    ) -> Result<Response<BoxedStream<PutResult>>, Status> {
        let caller = self.caller(&request)?;
        let expected = match request.metadata().get(crate::put::ROWS_HEADER) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|t| t.trim().parse::<usize>().ok())
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "{} must be a row count",
                            crate::put::ROWS_HEADER
                        ))
                    })?,
            ),
        };
        let mode = crate::put::LoadMode::parse(
            request
                .metadata()
                .get(crate::put::LOAD_HEADER)
                .map(|v| v.to_str().unwrap_or("?")),
        )?;
        let result = put_upload(
            &self.engine,
            &caller,
            &self.config,
            expected,
            mode,
            request.into_inner(),
        )
        .await?;
        Ok(Response::new(Box::pin(stream::iter([Ok(result)]))))
    }

    async fn do_put_error_callback(
        &self,
        request: Request<PeekableFlightDataStream>,
        error: arrow_flight::sql::server::DoPutError,
    ) -> Result<Response<BoxedStream<PutResult>>, Status> {
        self.caller(&request)?;
        Err(Status::invalid_argument(format!(
            "not a valid upload ({error}): send a descriptor path [dataset] and an Arrow stream"
        )))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.caller(&request)?;
        Err(read_only())
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.caller(&request)?;
        Err(Status::invalid_argument(
            "Flight SQL ingest is not supported: upload a full snapshot with DoPut on the \
             descriptor path [dataset]",
        ))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.caller(&request)?;
        Err(read_only())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn read_only() -> Status {
    Status::invalid_argument(
        "DAGR is read-only over SQL: updates and DDL are refused; owners upload snapshots with \
         DoPut on the descriptor path [dataset]",
    )
}

/// The action that returns a dataset's definition.
pub const DEFINITION_ACTION: &str = "dagr.definition";

type Inner = SqlService;

#[tonic::async_trait]
impl FlightService for DagrFlight {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(self.sql.as_ref(), request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let caller = self.sql.admitted_caller(&request)?;
        let infos = self.sql.list(&caller);
        Ok(Response::new(Box::pin(stream::iter(infos))))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        // Every call but Handshake authenticates before anything else is looked at.
        self.sql.authenticate(&request)?;
        FlightService::get_flight_info(self.sql.as_ref(), request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.sql.authenticate(&request)?;
        FlightService::poll_flight_info(self.sql.as_ref(), request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let caller = self.sql.admitted_caller(&request)?;
        let dataset = dataset_of(request.get_ref())?;
        let view = self.sql.view(&caller, &dataset)?;
        let schema = SchemaAsIpc::new(view.mask.schema(), &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: dagr_engine::arrow::error::ArrowError| {
                Status::internal(format!("cannot encode a schema: {e}"))
            })?;
        Ok(Response::new(schema))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let principal = self.authenticate_metadata(request.metadata())?;
        let response = self.get_messages(principal, request).await?;
        Ok(response.map(wire::into_flight_stream))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.sql.authenticate(&request)?;
        FlightService::do_put(self.sql.as_ref(), request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        if request.get_ref().r#type == DEFINITION_ACTION {
            let caller = self.sql.admitted_caller(&request)?;
            let body = self.sql.definition(&caller, &request.get_ref().body)?;
            let result = arrow_flight::Result { body: body.into() };
            return Ok(Response::new(Box::pin(stream::iter([Ok(result)]))));
        }
        self.sql.authenticate(&request)?;
        FlightService::do_action(self.sql.as_ref(), request).await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.sql.authenticate(&request)?;
        let mut actions: Vec<Result<ActionType, Status>> = vec![Ok(ActionType {
            r#type: DEFINITION_ACTION.to_owned(),
            description: "The definition of a dataset (body: its name) as JSON: attributes, \
                          types, key, personal-data flags. For its owner and admins."
                .to_owned(),
        })];
        let mut sql = FlightService::list_actions(self.sql.as_ref(), request)
            .await?
            .into_inner();
        while let Some(a) = sql.next().await {
            actions.push(a);
        }
        Ok(Response::new(Box::pin(stream::iter(actions))))
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.sql.authenticate(&request)?;
        FlightService::do_exchange(self.sql.as_ref(), request).await
    }
}

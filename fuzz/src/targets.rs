//! The bodies of DAGR's fuzz targets, one public function per target, each taking the raw
//! input bytes. They are shared by the libFuzzer binaries of `fuzz/fuzz_targets/` (nightly,
//! coverage-guided: `cargo +nightly fuzz run TARGET`) and by the stable smoke runner
//! `tests/fuzz_smoke.rs`, which includes this file with `#[path]` (see `docs/fuzzing.md`).
//!
//! A target feeds its input to the same public entry points the servers and the connector
//! use, and catches nothing: an error returned to the caller is the parser doing its job,
//! a panic (or an abort, such as a stack overflow) is the bug the fuzzer looks for. A few
//! targets also assert round trips the rest of DAGR relies on (a ticket's own bytes parse
//! back to it; a definition DAGR accepts reads back from its JSON the same).
//!
//! Everything asynchronous runs on one shared runtime whose threads have the 16 MiB stack
//! of the server's runtime (`src/cli.rs` `WORKER_STACK_BYTES`): SQL is parsed and planned
//! there, as it is in the server.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow_flight::Ticket;
use arrow_flight::flight_service_server::FlightService;
use dagr_admin_api::api;
use dagr_admin_api::axum::body::Body;
use dagr_admin_api::axum::extract::FromRequest;
use dagr_admin_api::axum::http::{Request, header};
use dagr_admin_api::gate::RawJson;
use dagr_admin_api::model::Time;
use dagr_engine::arrow::datatypes::{DataType, TimeUnit};
use dagr_engine::datafusion::object_store::memory::InMemory;
use dagr_engine::datafusion::scalar::ScalarValue;
use dagr_engine::definition::{check_type_string, parse_data_type};
use dagr_engine::demo::{self, DemoConfig};
use dagr_engine::query::{QueryConfig, QueryResult};
use dagr_engine::{
    Access, AccessPolicy, AccessRecord, Attribute, AuditError, AuditSink, AuthError,
    DatasetDefinition, Engine, EngineConfig, Grant, Principal, Role, Snapshot,
};
use dagr_flight_server::auth::PURPOSE_HEADER;
use dagr_flight_server::ticket::DatasetTicket;
use dagr_flight_server::{DagrFlight, FlightConfig};
use dagr_loaders::source::CsvOptions;
use dagr_loaders::{Format, SourceOptions, Sources, Target, Validator};
use futures::StreamExt;
use tonic::metadata::MetadataValue;

/// The stack of every thread of the shared runtime: the server's (`WORKER_STACK_BYTES`).
pub const STACK_BYTES: usize = 16 << 20;
/// Persons in the demo data the SQL and ticket targets read (the other registers scale).
pub const DEMO_PERSONS: usize = 300;
/// Rows read from one query or one input at most: enough to pass every batch boundary of
/// the inputs of the corpus, few enough that a generator (`range(1e12)`) ends quickly.
const MAX_ROWS: usize = 20_000;
/// Flight messages read from one `DoGet` at most.
const MAX_MESSAGES: usize = 256;
/// Rows per batch of the connector's readers: small, so that batch boundaries (a quoted
/// CSV field, a run of blank lines, a row group) are crossed by small inputs.
const BATCH_ROWS: usize = 16;
/// The Parquet target hands a file to the engine's reader only if its footer says at most
/// this many rows: the engine's reader decodes a file whole, and a footer that claims
/// billions of rows is refused before decoding by the HTTP upload path, not by this reader.
const MAX_ENGINE_PARQUET_ROWS: u64 = 100_000;

/// What the targets share: a runtime, an engine holding the five demo registers (persons
/// in two versions, for the change feed), the Flight service over it, and the grants of a
/// masked caller.
struct Harness {
    runtime: tokio::runtime::Runtime,
    engine: Arc<Engine>,
    flight: DagrFlight,
    masked: Access,
    ingest: DatasetDefinition,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(Harness::new)
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dagr-fuzz")
            .thread_stack_size(STACK_BYTES)
            .enable_all()
            .build()
            .expect("a runtime");
        let engine = runtime.block_on(demo_engine());
        let masked = masked_access();
        let policy: Arc<dyn AccessPolicy> = Arc::new(FuzzPolicy {
            masked: masked.clone(),
        });
        let audit: Arc<dyn AuditSink> = Arc::new(NoAudit);
        let config = FlightConfig {
            batch_rows: 64,
            ..FlightConfig::default()
        };
        let flight = DagrFlight::new(Arc::clone(&engine), policy, audit, config);
        Harness {
            runtime,
            engine,
            flight,
            masked,
            ingest: ingest_definition(),
        }
    }

    /// Run `task` on the runtime and wait for it; a panic in it is resumed here.
    fn run(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.runtime.spawn(task);
        match self.runtime.block_on(handle) {
            Ok(()) => {}
            Err(e) => match e.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(e) => panic!("the target's task did not finish: {e}"),
            },
        }
    }
}

/// An in-memory engine with the demo registers; `persons` has a second version.
async fn demo_engine() -> Arc<Engine> {
    // The server's limits, smaller: a query runs a quarter of a second and a few hundred MiB
    // at most (the operator limit is the server's default).
    let config = EngineConfig {
        query: QueryConfig {
            memory_limit: 256 << 20,
            max_result_rows: Some(MAX_ROWS),
            target_partitions: 2,
            batch_size: 1024,
            max_query_time: Some(Duration::from_millis(250)),
            ..QueryConfig::default()
        },
        ..EngineConfig::default()
    };
    let engine = Arc::new(
        Engine::open(Arc::new(InMemory::new()), config)
            .await
            .expect("an in-memory engine"),
    );
    let data = demo::generate(&DemoConfig {
        persons: DEMO_PERSONS,
        seed: demo::DEFAULT_SEED,
    })
    .expect("the demo data");
    for d in &data {
        let name = d.definition.name.clone();
        engine
            .create_dataset(d.definition.clone())
            .await
            .expect("a demo dataset");
        engine
            .load_batches(&name, d.batches.clone())
            .await
            .expect("the demo data loads");
        if name == "persons" {
            // Version 2 drops some persons and keeps the rest: `{"since": 1}` has changes.
            let fewer = d
                .batches
                .iter()
                .map(|b| b.slice(0, b.num_rows().min(DEMO_PERSONS - 40)))
                .collect();
            engine
                .load_batches(&name, fewer)
                .await
                .expect("the second version loads");
        }
    }
    engine
}

/// A consumer's grants: part of `persons` under two agreements (one with a row scope, so
/// that some columns are visible on fewer rows than others) and all of `companies`.
fn masked_access() -> Access {
    let companies = demo::definitions()
        .into_iter()
        .find(|d| d.name == "companies")
        .expect("the companies register");
    Access::Grants(BTreeMap::from([
        (
            "persons".to_owned(),
            vec![
                Grant::attributes(["personal_code", "given_name", "birth_date", "municipality"])
                    .with_row_scope("birth_date < DATE '1990-01-01'")
                    .with_agreement("fuzz-1"),
                Grant::attributes(["personal_code", "family_name", "sex"]).with_agreement("fuzz-2"),
            ],
        ),
        (
            "companies".to_owned(),
            vec![
                Grant::attributes(companies.attributes.iter().map(|a| a.name.clone()))
                    .with_agreement("fuzz-3"),
            ],
        ),
    ]))
}

/// Tokens of the Flight target: `owner` reads everything, `consumer` through
/// [`masked_access`].
#[derive(Debug)]
struct FuzzPolicy {
    masked: Access,
}

impl AccessPolicy for FuzzPolicy {
    fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let role = match bearer {
            "owner" => Role::Owner,
            "consumer" => Role::Consumer,
            _ => return Err(AuthError::Invalid),
        };
        Ok(Principal {
            role,
            organisation: Some("FUZZ".to_owned()),
            system: Some("fuzz".to_owned()),
            subject: None,
            user: None,
            token_id: Some(bearer.to_owned()),
        })
    }

    fn access(&self, principal: &Principal) -> Access {
        match principal.role {
            Role::Owner => Access::Unrestricted,
            _ => self.masked.clone(),
        }
    }
}

/// Accepts every access record (the audit log is not what is fuzzed here).
#[derive(Debug)]
struct NoAudit;

#[async_trait::async_trait]
impl AuditSink for NoAudit {
    async fn commit(&self, records: Vec<AccessRecord>) -> Result<Vec<String>, AuditError> {
        Ok((0..records.len()).map(|i| format!("fuzz-{i}")).collect())
    }
}

/// The dataset the ingest targets load into: one attribute of each kind of type the
/// connector converts text and typed columns to.
pub fn ingest_definition() -> DatasetDefinition {
    let attributes = vec![
        Attribute::new("id", DataType::Utf8, "key").required(),
        Attribute::new("n", DataType::Int32, "").personal("id"),
        Attribute::new("big", DataType::Int64, ""),
        Attribute::new("small", DataType::UInt8, ""),
        Attribute::new("f", DataType::Float64, ""),
        Attribute::new("h", DataType::Float32, ""),
        Attribute::new("amount", DataType::Decimal128(12, 2), ""),
        Attribute::new("day", DataType::Date32, "").required(),
        Attribute::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "",
        ),
        Attribute::new(
            "local",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            "",
        ),
        Attribute::new("flag", DataType::Boolean, ""),
        Attribute::new(
            "code",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            "",
        ),
        Attribute::new("note", DataType::LargeUtf8, ""),
        Attribute::new("label", DataType::Utf8View, ""),
        Attribute::new("raw", DataType::Binary, ""),
    ];
    DatasetDefinition {
        name: "fuzz".into(),
        owner: "FUZZ".into(),
        description: "the ingest targets' dataset".into(),
        primary_key: vec!["id".into()],
        attributes,
    }
    .validated()
    .expect("the ingest definition is valid")
}

/// Keywords whose nested expressions sqlparser parses in exponential time (see
/// [`exponential_sql`]), as measured on sqlparser 0.62 by the `sql` target's findings.
pub const EXPONENTIAL_KEYWORDS: &[&str] = &[
    "ARRAY",
    "CASE",
    "CAST",
    "CEIL",
    "CONVERT",
    "CURRENT_DATE",
    "FLOOR",
    "NOT",
    "OVERLAY",
    "POSITION",
    "SAFE_CAST",
    "SUBSTR",
    "SUBSTRING",
    "TRY_CAST",
    "TRY_CONVERT",
];

/// Deepest nesting of [`EXPONENTIAL_KEYWORDS`] expressions the SQL-reaching targets hand
/// to the engine.
pub const MAX_KEYWORD_NESTING: usize = 8;

/// A known finding, reported and not fixed yet: sqlparser's time grows exponentially with
/// the nesting of some keyword expressions (a level that fails to parse as the keyword's
/// special form is parsed again as a function call or an identifier, and so on at every
/// level): `SELECT CAST(CAST(CAST(...` 20 deep takes seconds, 30 deep hours,
/// `POSITION(` grows by 3× a level, all well under the parser's recursion limit (50) and
/// before any time limit of the engine applies. The SQL-reaching targets skip inputs that
/// nest those keywords deeper than [`MAX_KEYWORD_NESTING`] (outside string literals), so
/// that they find other bugs and CI does not hang on this one; drop this check once the
/// engine refuses such nesting before it parses.
pub fn exponential_sql(text: &str) -> bool {
    let mut depth = 0usize;
    // Per open bracket: whether it counts (opened right after one of the keywords).
    let mut open: Vec<bool> = Vec::new();
    let mut word = String::new();
    let mut last_word = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            last_word = std::mem::take(&mut word);
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                last_word.clear();
            }
            '(' | '[' => {
                let counts = EXPONENTIAL_KEYWORDS
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&last_word));
                open.push(counts);
                if counts {
                    depth += 1;
                    if depth > MAX_KEYWORD_NESTING {
                        return true;
                    }
                }
                last_word.clear();
            }
            ')' | ']' => {
                if open.pop() == Some(true) {
                    depth -= 1;
                }
                last_word.clear();
            }
            c if c.is_whitespace() => {}
            _ => last_word.clear(),
        }
    }
    false
}

/// Read a query's batches, at most [`MAX_ROWS`] rows; an error ends it.
async fn drain(mut result: QueryResult) {
    let mut rows = 0;
    while let Some(batch) = result.stream.next().await {
        match batch {
            Ok(b) => rows += b.num_rows(),
            Err(_) => break,
        }
        if rows > MAX_ROWS {
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The targets
// ---------------------------------------------------------------------------------------

/// Flight `DoGet` tickets: [`DatasetTicket::parse`] (and its round trip through
/// [`DatasetTicket::to_bytes`]), then the whole `DoGet` of [`DagrFlight`] as an owner and
/// as a masked consumer, which routes a ticket starting with `{` to the JSON ticket path
/// (projection, filter as SQL, keys, change feed) and anything else to Flight SQL's
/// protobuf `Any` decoding (statement tickets run their SQL; prepared-statement handles are
/// looked up). Inputs that [`exponential_sql`] names get the parse only.
pub fn ticket(data: &[u8]) {
    if let Ok(t) = DatasetTicket::parse(data) {
        let _ = t.key_texts();
        // The connector sends tickets it made with `to_bytes`: they parse back the same
        // (but for the last digits of a floating-point key, which serde_json does not
        // round-trip exactly, and which never equals an integer or string key anyway).
        let again = DatasetTicket::parse(&t.to_bytes())
            .unwrap_or_else(|e| panic!("the bytes of a parsed ticket do not parse: {e}"));
        let without_keys = |t: &DatasetTicket| DatasetTicket {
            keys: t
                .keys
                .as_ref()
                .map(|k| vec![serde_json::Value::Null; k.len()]),
            ..t.clone()
        };
        assert_eq!(
            without_keys(&again),
            without_keys(&t),
            "a ticket does not survive its own bytes"
        );
    }
    if exponential_sql(&String::from_utf8_lossy(data)) {
        return;
    }
    let h = harness();
    let flight = h.flight.clone();
    let bytes = data.to_vec();
    h.run(async move {
        for token in ["Bearer owner", "Bearer consumer"] {
            let mut request = tonic::Request::new(Ticket {
                ticket: bytes.clone().into(),
            });
            let metadata = request.metadata_mut();
            metadata.insert("authorization", MetadataValue::from_static(token));
            metadata.insert(PURPOSE_HEADER, MetadataValue::from_static("fuzzing"));
            let Ok(response) = flight.do_get(request).await else {
                continue;
            };
            let mut stream = response.into_inner();
            let mut messages = 0;
            while let Some(item) = stream.next().await {
                messages += 1;
                if item.is_err() || messages >= MAX_MESSAGES {
                    break;
                }
            }
        }
    });
}

/// JSON request bodies of the admin API: the body extractor of `admin-api/src/gate.rs`
/// ([`RawJson`], as every governance route takes its body) parsing the input as each
/// request type of `admin_api::api`, the definitions in them validated as registration and
/// schema changes validate them and their times parsed as the handlers parse them; and a
/// bare definition, which must read back from its own JSON unchanged once valid
/// (definitions are stored as JSON and read at start).
pub fn json_body(data: &[u8]) {
    let body = data.to_vec();
    harness().run(async move {
        let request = Request::builder()
            .method("POST")
            .uri("/api/v1/fuzz")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("a request");
        let Ok(raw) = <RawJson as FromRequest<()>>::from_request(request, &()).await else {
            return;
        };
        let _ = raw.clone().parse::<api::CreateOrganisation>();
        let _ = raw.clone().parse::<api::UpdateOrganisation>();
        let _ = raw.clone().parse::<api::CreateUser>();
        let _ = raw.clone().parse::<api::CreateSystem>();
        if let Ok(b) = raw.clone().parse::<api::CreateOtherToken>() {
            times([b.expires_at.as_deref()]);
        }
        let _ = raw.clone().parse::<api::OptionalReason>();
        let _ = raw.clone().parse::<api::Reason>();
        let _ = raw.clone().parse::<api::UpdateDataset>();
        if let Ok(b) = raw.clone().parse::<api::CreateToken>() {
            times([b.expires_at.as_deref()]);
        }
        if let Ok(b) = raw.clone().parse::<api::CreateRequest>() {
            times([b.valid_from.as_deref(), Some(b.valid_to.as_str())]);
        }
        if let Ok(b) = raw.clone().parse::<api::Approve>() {
            times([b.valid_to.as_deref()]);
        }
        if let Ok(b) = raw.clone().parse::<api::RegisterDataset>() {
            let _ = b.definition.validated();
        }
        if let Ok(b) = raw.clone().parse::<api::FileChange>() {
            let _ = b.definition.validated();
        }
        if let Ok(d) = raw.parse::<DatasetDefinition>() {
            check_definition_round_trip(d);
        }
    });
}

/// The times of a body, as the handlers read them (a start, or an end of validity where a
/// plain date means the end of that day), written back as the API writes them.
fn times<'a>(texts: impl IntoIterator<Item = Option<&'a str>>) {
    for text in texts.into_iter().flatten() {
        for t in [Time::parse(text), Time::parse_end(text)]
            .into_iter()
            .flatten()
        {
            let _ = t.to_rfc3339();
        }
    }
}

/// A definition that validates must read back from its JSON as itself.
fn check_definition_round_trip(definition: DatasetDefinition) {
    let Ok(valid) = definition.validated() else {
        return;
    };
    let json = serde_json::to_vec(&valid).expect("a definition serialises");
    let back: DatasetDefinition = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "a valid definition does not read back from its JSON ({e}): {}",
            String::from_utf8_lossy(&json)
        )
    });
    let back = back
        .validated()
        .unwrap_or_else(|e| panic!("a valid definition read back from its JSON is refused: {e}"));
    assert_eq!(back, valid, "a definition changes through its JSON");
}

/// Type strings: [`check_type_string`] and [`parse_data_type`] on the input, then the
/// input as the type of an attribute of a definition, which must survive its JSON when the
/// definition is valid (a type is stored in its display form and parsed again at start).
pub fn type_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = check_type_string(text);
    if let Ok(t) = parse_data_type(text) {
        let _ = t.to_string();
    }
    let definition = serde_json::json!({
        "name": "t",
        "owner": "FUZZ",
        "primary_key": ["id"],
        "attributes": [{"name": "id", "type": "Int64"}, {"name": "v", "type": text}],
    });
    if let Ok(d) = serde_json::from_value::<DatasetDefinition>(definition) {
        check_definition_round_trip(d);
    }
}

/// The SQL entry point (inputs that [`exponential_sql`] names aside): [`Engine::query`] of
/// the input (as UTF-8, invalid bytes replaced)
/// unrestricted and as a masked consumer, read to the end (at most [`MAX_ROWS`] rows);
/// [`Engine::prepare`] and, for a statement with parameters or a key lookup, an execution
/// with null parameters; and the input as a row scope
/// (parsed by [`Engine::check_row_scope`], then evaluated in a masked view of `persons`).
pub fn sql(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    if exponential_sql(&text) {
        return;
    }
    let h = harness();
    let engine = Arc::clone(&h.engine);
    let masked = h.masked.clone();
    h.run(async move {
        for access in [&Access::Unrestricted, &masked] {
            if let Ok(result) = engine.query(&text, access).await {
                drain(result).await;
            }
        }
        if let Ok(prepared) = engine.prepare(&text, &masked).await {
            let params: Vec<ScalarValue> = prepared
                .parameter_schema()
                .fields()
                .iter()
                .map(|f| ScalarValue::try_from(f.data_type()).unwrap_or(ScalarValue::Null))
                .collect();
            // Without parameters an execution is the query above again (a lookup aside).
            if (!params.is_empty() || prepared.is_lookup())
                && let Ok(result) = engine.execute_prepared(&prepared, &params, &masked).await
            {
                drain(result).await;
            }
        }
        if engine.check_row_scope("persons", &text).is_ok() {
            let scoped = Access::Grants(BTreeMap::from([(
                "persons".to_owned(),
                vec![Grant::attributes(["personal_code", "given_name"]).with_row_scope(&*text)],
            )]));
            if let Ok(view) = engine.view("persons", &scoped) {
                let _ = view.head(10);
            }
        }
    });
}

/// Parquet ingest: the connector's reader (`dagr load`: [`Sources`], then the
/// [`Validator`]) into a full load and a change set of the ingest dataset; then, for a file
/// of at most [`MAX_ENGINE_PARQUET_ROWS`] rows, the engine's reader
/// ([`dagr_engine::engine::read_parquet_source`]) and the validation every upload passes
/// before it becomes a snapshot ([`Snapshot::build`]).
pub fn ingest_parquet(data: &[u8]) {
    let h = harness();
    let definition = h.ingest.clone();
    let data = data.to_vec();
    h.run(async move {
        let file = input_file(&data, "parquet");
        let options = SourceOptions {
            format: Some(Format::Parquet),
            batch_rows: BATCH_ROWS,
            ..SourceOptions::default()
        };
        for changes in [false, true] {
            load(file.path(), &options, &definition, changes).await;
        }
        let Ok(sources) = Sources::resolve(&[path_text(file.path())], &options) else {
            return;
        };
        if sources
            .known_rows()
            .is_some_and(|rows| rows <= MAX_ENGINE_PARQUET_ROWS)
            && let Ok(batches) =
                dagr_engine::engine::read_parquet_source(&path_text(file.path())).await
        {
            let _ = Snapshot::build(Arc::new(definition), 1, Default::default(), batches);
        }
    });
}

/// CSV ingest: the connector's reader and validator, with the default options (header,
/// `,`, `"`, UTF-8) into a full load and a change set, and with the other options
/// (no header, `;`, `'`, windows-1257, inferred types, `NULL` as null) into a full load.
pub fn ingest_csv(data: &[u8]) {
    let h = harness();
    let definition = h.ingest.clone();
    let data = data.to_vec();
    h.run(async move {
        let file = input_file(&data, "csv");
        let plain = SourceOptions {
            format: Some(Format::Csv),
            batch_rows: BATCH_ROWS,
            ..SourceOptions::default()
        };
        for changes in [false, true] {
            load(file.path(), &plain, &definition, changes).await;
        }
        let other = SourceOptions {
            csv: CsvOptions {
                delimiter: b';',
                header: false,
                quote: b'\'',
                encoding: "windows-1257".into(),
                infer_schema: true,
                null: Some("NULL".into()),
            },
            ..plain
        };
        load(file.path(), &other, &definition, false).await;
    });
}

/// NDJSON ingest: the connector's reader and validator into a full load and a change set.
pub fn ingest_ndjson(data: &[u8]) {
    let h = harness();
    let definition = h.ingest.clone();
    let data = data.to_vec();
    h.run(async move {
        let file = input_file(&data, "ndjson");
        let options = SourceOptions {
            format: Some(Format::Ndjson),
            batch_rows: BATCH_ROWS,
            ..SourceOptions::default()
        };
        for changes in [false, true] {
            load(file.path(), &options, &definition, changes).await;
        }
    });
}

/// The input in a temporary file (removed when dropped) with the extension `ext`.
fn input_file(data: &[u8], ext: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("dagr-fuzz-")
        .suffix(&format!(".{ext}"))
        .tempfile()
        .expect("a temporary file");
    file.write_all(data).expect("the input is written");
    file.flush().expect("the input is written");
    file
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

/// What `dagr load --dry-run` does with a file: read it as batches in the dataset's schema
/// and validate them, up to the first error or [`MAX_ROWS`] rows.
async fn load(path: &Path, options: &SourceOptions, definition: &DatasetDefinition, changes: bool) {
    let Ok(sources) = Sources::resolve(&[path_text(path)], options) else {
        return;
    };
    let target = Target::new(definition.clone(), changes);
    let mut validator = Validator::new(&target);
    let mut stream = sources.open(&target);
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let Ok(batch) = batch else { break };
        rows += batch.batch.num_rows();
        if validator.check(&batch).is_err() || rows > MAX_ROWS {
            break;
        }
    }
    let _ = validator.finish();
}

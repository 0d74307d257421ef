//! End to end: the connector's commands (`dagr load`, `dagr pull`, `dagr sync`) and the HTTP
//! upload against the real `dagr serve`, with the demo's tokens.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightDescriptor};
use common::{PURPOSE, Server, credentials};
use dagr_engine::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use dagr_engine::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use dagr_engine::arrow::datatypes::{DataType, Field, Schema};
use dagr_engine::arrow::util::display::array_value_to_string;
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

const PERSONS: usize = 1000;

/// Writes batches to a file in one format.
type Writer = fn(&Path, &[RecordBatch]);

struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    creds: Value,
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, PERSONS, &[]);
    let creds = credentials(&data);
    Fixture { dir, server, creds }
}

/// What a `dagr` command did.
struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

impl Fixture {
    fn token(&self, org: &str, role: &str) -> String {
        common::system_token(&self.creds, org, role)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `dagr ARGS --server ... --token TOKEN --quiet`.
    fn dagr(&self, token: &str, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_dagr"))
            .args(args)
            .args(["--server", &self.server.flight, "--token", token, "--quiet"])
            .env_remove("DAGR_SERVER")
            .env_remove("DAGR_TOKEN")
            .env_remove("DAGR_PURPOSE")
            .output()
            .expect("run dagr");
        Run {
            code: out.status.code().unwrap_or(-1),
            json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, token: &str, args: &[&str]) -> Value {
        let r = self.dagr(token, args);
        assert_eq!(r.code, 0, "dagr {args:?} failed: {}", r.stderr);
        r.json
    }

    /// Pull `persons` as `token` into `name`; (version, rows sorted as text).
    fn pull(&self, token: &str, name: &str) -> (u64, Vec<String>) {
        let out = self.path(name);
        let j = self.ok(
            token,
            &[
                "pull",
                "persons",
                "--out",
                out.to_str().unwrap(),
                "--purpose",
                PURPOSE,
            ],
        );
        let version = j["origin"]["version"].as_u64().unwrap();
        (version, rows_text(&read_parquet(&out)))
    }

    fn version(&self) -> u64 {
        self.pull(&self.token("PMLP", "provider"), "version-check.parquet")
            .0
    }

    async fn flight(&self, token: &str) -> FlightClient {
        common::flight_client(&self.server, token, None).await
    }
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn write_csv(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = dagr_engine::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(file);
    for b in batches {
        w.write(b).unwrap();
    }
}

fn write_ndjson(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = dagr_engine::arrow::json::LineDelimitedWriter::new(file);
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

fn write_ipc(path: &Path, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        dagr_engine::arrow::ipc::writer::FileWriter::try_new(file, &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

/// Every row as text (columns sorted by name), sorted: equal for the same rows in any order.
fn rows_text(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        let mut cols: Vec<usize> = (0..schema.fields().len()).collect();
        cols.sort_by_key(|&i| schema.field(i).name().clone());
        for r in 0..b.num_rows() {
            let cells: Vec<String> = cols
                .iter()
                .map(|&c| {
                    format!(
                        "{}={}",
                        schema.field(c).name(),
                        array_value_to_string(b.column(c), r).unwrap()
                    )
                })
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// One batch of everything.
fn all(batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(&batches[0].schema(), batches).unwrap()
}

/// `batch` with the string column `name` set to `value` on the rows `rows` (all when None).
fn with_text(batch: &RecordBatch, name: &str, value: &str, rows: Option<&[usize]>) -> RecordBatch {
    let i = batch.schema().index_of(name).unwrap();
    let old = batch.column(i).as_string::<i32>();
    let new: StringArray = (0..batch.num_rows())
        .map(|r| {
            if rows.is_none_or(|rs| rs.contains(&r)) {
                Some(value.to_owned())
            } else {
                old.is_valid(r).then(|| old.value(r).to_owned())
            }
        })
        .collect();
    let mut cols = batch.columns().to_vec();
    cols[i] = Arc::new(new);
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

/// The rows of `batch` at `rows`.
fn pick(batch: &RecordBatch, rows: &[usize]) -> RecordBatch {
    let idx = dagr_engine::arrow::array::UInt32Array::from(
        rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
    );
    take_record_batch(batch, &idx).unwrap()
}

/// `batch` with the change column `_dagr_change` = `op` appended.
fn with_op(batch: &RecordBatch, op: &str) -> RecordBatch {
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("_dagr_change", DataType::Utf8, false));
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![op; batch.num_rows()])));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

fn rows_where(batch: &RecordBatch, column: &str, pred: impl Fn(&str) -> bool) -> Vec<usize> {
    let c = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..batch.num_rows())
        .filter(|&r| c.is_valid(r) && pred(c.value(r)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_format_loads_and_bad_files_change_nothing() {
    let f = start();
    let owner = f.token("PMLP", "provider");
    let (v1, _) = f.pull(&owner, "owner.parquet");
    let base = all(&read_parquet(&f.path("owner.parquet")));
    assert_eq!(base.num_rows(), PERSONS);

    // Each format, with every given name changed so that the load is visible.
    let mut version = v1;
    let formats: [(&str, &str, Writer); 4] = [
        ("Anna", "p.csv", write_csv),
        ("Berta", "p.ndjson", write_ndjson),
        ("Cilda", "p.arrow", write_ipc),
        ("Dace", "p.parquet", write_parquet),
    ];
    for (name, file, write) in formats {
        let data = with_text(&base, "given_name", name, None);
        write(&f.path(file), std::slice::from_ref(&data));
        let j = f.ok(&owner, &["load", "persons", f.path(file).to_str().unwrap()]);
        version += 1;
        assert_eq!(j["committed"]["version"], version, "{file}: {j}");
        assert_eq!(j["rows"], PERSONS as u64, "{file}: {j}");
        let (v, rows) = f.pull(&owner, "check.parquet");
        assert_eq!(v, version);
        assert_eq!(rows, rows_text(&[data]), "{file} loaded other rows");
    }

    // A directory of mixed files: the first half Parquet, the rest CSV.
    let dir = f.path("mixed");
    std::fs::create_dir(&dir).unwrap();
    let data = with_text(&base, "given_name", "Elza", None);
    write_parquet(&dir.join("a.parquet"), &[data.slice(0, 400)]);
    write_csv(&dir.join("b.csv"), &[data.slice(400, PERSONS - 400)]);
    let j = f.ok(&owner, &["load", "persons", dir.to_str().unwrap()]);
    version += 1;
    assert_eq!(j["committed"]["version"], version);
    assert_eq!(
        f.pull(&owner, "check.parquet").1,
        rows_text(std::slice::from_ref(&data))
    );

    // A dry run validates and sends nothing.
    let j = f.ok(
        &owner,
        &[
            "load",
            "persons",
            f.path("p.csv").to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["rows"], PERSONS as u64);
    assert_eq!(f.version(), version);

    // Bad files: refused with where the problem is; the current version stays.
    let good = std::fs::read(f.path("p.parquet")).unwrap();
    std::fs::write(f.path("truncated.parquet"), &good[..good.len() / 2]).unwrap();
    let r = f.dagr(
        &owner,
        &[
            "load",
            "persons",
            f.path("truncated.parquet").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("truncated.parquet"), "{}", r.stderr);

    let mut csv = std::fs::read_to_string(f.path("p.csv")).unwrap();
    let line4 = csv.lines().nth(3).unwrap().to_owned();
    let birth = array_value_to_string(base.column_by_name("birth_date").unwrap(), 2).unwrap();
    csv = csv.replacen(&line4, &line4.replacen(&birth, "1990-13-45", 1), 1);
    std::fs::write(f.path("bad.csv"), csv).unwrap();
    let r = f.dagr(
        &owner,
        &["load", "persons", f.path("bad.csv").to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    for needle in ["bad.csv", "line 4", "birth_date", "1990-13-45"] {
        assert!(r.stderr.contains(needle), "no `{needle}` in: {}", r.stderr);
    }

    // A column of the wrong type.
    let i = base.schema().index_of("birth_date").unwrap();
    let mut fields: Vec<Field> = base
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[i] = Field::new("birth_date", DataType::Utf8, false);
    let mut cols = base.columns().to_vec();
    cols[i] = Arc::new(StringArray::from(vec!["not a date"; PERSONS]));
    let wrong = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    write_parquet(&f.path("wrong.parquet"), &[wrong]);
    let r = f.dagr(
        &owner,
        &["load", "persons", f.path("wrong.parquet").to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("wrong.parquet") && r.stderr.contains("birth_date"),
        "{}",
        r.stderr
    );

    // A duplicate key across two files.
    let dup = f.path("dup");
    std::fs::create_dir(&dup).unwrap();
    write_parquet(&dup.join("a.parquet"), &[base.slice(0, 10)]);
    write_csv(&dup.join("b.csv"), &[base.slice(5, 10)]);
    let r = f.dagr(&owner, &["load", "persons", dup.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("a.parquet") && r.stderr.contains("b.csv"),
        "{}",
        r.stderr
    );

    assert_eq!(f.version(), version, "a refused load changed the version");
    assert_eq!(f.pull(&owner, "check.parquet").1, rows_text(&[data]));

    // Every upload over Flight is in the dataset's load history, newest first.
    let (status, _, history) = common::get_auth(
        &format!("{}/api/v1/datasets/persons/loads", f.server.base),
        &owner,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let flight: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["channel"] == "flight")
        .collect();
    // The four bad files stopped their uploads on the client: refused, saying so.
    let (refused, committed): (Vec<&Value>, Vec<&Value>) =
        flight.iter().partition(|l| l["status"] == "refused");
    assert_eq!((committed.len(), refused.len()), (5, 4), "{history}");
    assert!(
        committed.iter().all(|l| l["mode"] == "snapshot"),
        "{history}"
    );
    assert_eq!(committed[0]["version"], version, "{history}");
    assert!(
        refused.iter().all(|l| l["reasons"]
            .to_string()
            .contains("the sender stopped early")),
        "{history}"
    );

    // A consumer cannot load.
    let bank = f.token("BANKA", "consumer");
    let r = f.dagr(
        &bank,
        &["load", "persons", f.path("p.csv").to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("owner"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_table_and_query_load() {
    let Some(url) = postgres_url() else { return };
    let f = start();
    let owner = f.token("PMLP", "provider");
    f.pull(&owner, "owner.parquet");
    let base = all(&read_parquet(&f.path("owner.parquet")));
    let table = format!("connector_persons_{}", std::process::id());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let columns: Vec<String> = base
        .schema()
        .fields()
        .iter()
        .map(|fl| {
            let t = match fl.data_type() {
                DataType::Date32 => "date",
                DataType::Int64 => "bigint",
                DataType::Int32 => "integer",
                DataType::Boolean => "boolean",
                DataType::Float64 => "double precision",
                _ => "text",
            };
            format!("\"{}\" {t}", fl.name())
        })
        .collect();
    sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE TABLE {table} ({})", columns.join(", ")))
        .execute(&mut conn)
        .await
        .unwrap();
    // Rows go in as text literals, cast by PostgreSQL to the column types.
    let data = with_text(&base, "given_name", "Zane", None);
    for chunk in (0..data.num_rows()).collect::<Vec<_>>().chunks(200) {
        let values: Vec<String> = chunk
            .iter()
            .map(|&r| {
                let cells: Vec<String> = (0..data.num_columns())
                    .map(|c| {
                        if data.column(c).is_null(r) {
                            "NULL".to_owned()
                        } else {
                            let v = array_value_to_string(data.column(c), r).unwrap();
                            format!("'{}'", v.replace('\'', "''"))
                        }
                    })
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        sqlx::query(&format!("INSERT INTO {table} VALUES {}", values.join(", ")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let v = f.version();
    let j = f.ok(&owner, &["load", "persons", &url, "--table", &table]);
    assert_eq!(j["committed"]["version"], v + 1, "{j}");
    assert_eq!(
        f.pull(&owner, "check.parquet").1,
        rows_text(std::slice::from_ref(&data))
    );

    let query = format!("SELECT * FROM {table} WHERE true");
    let j = f.ok(&owner, &["load", "persons", &url, "--query", &query]);
    assert_eq!(j["committed"]["version"], v + 2, "{j}");
    assert_eq!(j["rows"], PERSONS as u64);

    // A value that does not fit the definition: refused, naming the row and column.
    sqlx::query(&format!(
        "UPDATE {table} SET \"sex\" = NULL WHERE ctid = (SELECT ctid FROM {table} LIMIT 1)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let r = f.dagr(&owner, &["load", "persons", &url, "--table", &table]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("sex"), "{}", r.stderr);
    assert_eq!(f.version(), v + 2);
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&mut conn)
        .await
        .unwrap();
}

fn postgres_url() -> Option<String> {
    match std::env::var("DAGR_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("DAGR_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("DAGR_TEST_REQUIRE_POSTGRES=1 but DAGR_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("DAGR_TEST_POSTGRES_URL not set: the PostgreSQL source is not tested");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_sets_and_sync_reproduce_the_masked_view() {
    let f = start();
    let owner = f.token("PMLP", "provider");
    let riga = f.token("RIGA", "consumer");
    let (v1, _) = f.pull(&owner, "owner.parquet");
    let base = all(&read_parquet(&f.path("owner.parquet")));

    // The municipality's first sync is a full pull of what it sees (Rīga only, its columns).
    let copies = f.path("copies");
    let j = f.ok(
        &riga,
        &[
            "sync",
            "persons",
            "--dir",
            copies.to_str().unwrap(),
            "--purpose",
            PURPOSE,
        ],
    );
    assert_eq!(j["mode"], "full", "{j}");
    assert_eq!(j["version"], v1);
    let copy = copies.join("persons.parquet");
    let (_, pulled) = f.pull(&riga, "riga.parquet");
    assert_eq!(rows_text(&read_parquet(&copy)), pulled);
    assert!(!pulled.is_empty() && pulled.len() < PERSONS);
    // A CSV pull holds the same rows.
    let csv = f.path("riga.csv");
    f.ok(
        &riga,
        &[
            "pull",
            "persons",
            "--out",
            csv.to_str().unwrap(),
            "--purpose",
            PURPOSE,
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap().lines().count(),
        pulled.len() + 1
    );

    // The register pushes a change set: two Rīga residents renamed, one moved away, one
    // moved in, one deleted, one born.
    let in_riga = rows_where(&base, "municipality", |m| m == "Rīga");
    let elsewhere = rows_where(&base, "municipality", |m| m != "Rīga");
    let renamed = with_text(&pick(&base, &in_riga[0..2]), "given_name", "Jānis", None);
    let moved_out = with_text(
        &pick(&base, &in_riga[2..3]),
        "municipality",
        "Liepāja",
        None,
    );
    let moved_in = with_text(&pick(&base, &elsewhere[0..1]), "municipality", "Rīga", None);
    let deleted = pick(&base, &in_riga[3..4]);
    let born = with_text(
        &with_text(
            &pick(&base, &in_riga[4..5]),
            "personal_code",
            "999999-99999",
            None,
        ),
        "given_name",
        "Jaundzimušais",
        None,
    );
    let changes: Vec<RecordBatch> = vec![
        with_op(&renamed, "upsert"),
        with_op(&moved_out, "upsert"),
        with_op(&moved_in, "upsert"),
        with_op(&deleted, "delete"),
        with_op(&born, "upsert"),
    ];
    write_parquet(&f.path("changes.parquet"), &changes);
    let j = f.ok(
        &owner,
        &[
            "load",
            "persons",
            f.path("changes.parquet").to_str().unwrap(),
            "--changes",
        ],
    );
    let v2 = v1 + 1;
    assert_eq!(j["committed"]["version"], v2, "{j}");
    assert_eq!(j["committed"]["changes"]["inserted"], 1, "{j}");
    assert_eq!(j["committed"]["changes"]["updated"], 4, "{j}");
    assert_eq!(j["committed"]["changes"]["deleted"], 1, "{j}");
    assert_eq!(j["committed"]["rows"], PERSONS as u64);

    // The owner's view is the old one with the changes applied.
    let mut expected = base.clone();
    let touched: Vec<String> = changes
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name("personal_code")
                .unwrap()
                .as_string::<i32>();
            (0..b.num_rows())
                .map(|r| c.value(r).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let keep: dagr_engine::arrow::array::BooleanArray = expected
        .column_by_name("personal_code")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|k| Some(!touched.iter().any(|t| Some(t.as_str()) == k)))
        .collect();
    expected = filter_record_batch(&expected, &keep).unwrap();
    let expected = concat_batches(
        &base.schema(),
        &[expected, renamed, moved_out, moved_in, born],
    )
    .unwrap();
    assert_eq!(f.pull(&owner, "check.parquet").1, rows_text(&[expected]));

    let (_, _, history) = common::get_auth(
        &format!("{}/api/v1/datasets/persons/loads", f.server.base),
        &owner,
    )
    .await;
    assert_eq!(history[0]["mode"], "changes", "{history}");
    assert_eq!(history[0]["version"], v2, "{history}");

    // A refused change set (one key twice) changes nothing.
    write_parquet(
        &f.path("dup-changes.parquet"),
        &[with_op(&pick(&base, &[in_riga[5], in_riga[5]]), "upsert")],
    );
    let r = f.dagr(
        &owner,
        &[
            "load",
            "persons",
            f.path("dup-changes.parquet").to_str().unwrap(),
            "--changes",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(f.version(), v2);

    // The municipality's sync applies only what it sees change: 4 upserts (two renamed, the
    // newcomer, the newborn), 2 deletes (moved away, deleted); the copy equals a fresh pull.
    let j = f.ok(
        &riga,
        &[
            "sync",
            "persons",
            "--dir",
            copies.to_str().unwrap(),
            "--purpose",
            PURPOSE,
        ],
    );
    assert_eq!(j["mode"], "changes", "{j}");
    assert_eq!(
        (j["from_version"].as_u64(), j["version"].as_u64()),
        (Some(v1), Some(v2))
    );
    assert_eq!(
        (j["upserts"].as_u64(), j["deletes"].as_u64()),
        (Some(4), Some(2)),
        "{j}"
    );
    let (_, pulled) = f.pull(&riga, "riga.parquet");
    assert_eq!(rows_text(&read_parquet(&copy)), pulled);

    // Nothing new: the copy stays.
    let j = f.ok(
        &riga,
        &[
            "sync",
            "persons",
            "--dir",
            copies.to_str().unwrap(),
            "--purpose",
            PURPOSE,
        ],
    );
    assert_eq!(j["mode"], "current", "{j}");

    // Three more loads push the copy's version out of the kept ones: a full pull again.
    for name in ["Kārlis", "Līga", "Māra"] {
        let data = with_text(&base, "given_name", name, None);
        write_parquet(&f.path("next.parquet"), &[data]);
        f.ok(
            &owner,
            &["load", "persons", f.path("next.parquet").to_str().unwrap()],
        );
    }
    let j = f.ok(
        &riga,
        &[
            "sync",
            "persons",
            "--dir",
            copies.to_str().unwrap(),
            "--purpose",
            PURPOSE,
        ],
    );
    assert_eq!(j["mode"], "full", "{j}");
    assert!(
        j["reason"].as_str().unwrap().contains("no change feed"),
        "{j}"
    );
    let (v, pulled) = f.pull(&riga, "riga.parquet");
    assert_eq!(j["version"], v);
    assert_eq!(rows_text(&read_parquet(&copy)), pulled);

    // A sync needs a purpose, like every read of personal data, and leaves the copy as it was.
    let before = std::fs::read(&copy).unwrap();
    let r = f.dagr(
        &riga,
        &["sync", "persons", "--dir", copies.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("purpose"), "{}", r.stderr);
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_break_off_change_nothing() {
    let f = start();
    let owner = f.token("PMLP", "provider");
    let (v1, before) = f.pull(&owner, "owner.parquet");
    let base = read_parquet(&f.path("owner.parquet"));

    // Flight: a stream without a row count or end marker, and one whose source fails.
    let mut c = f.flight(&owner).await;
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec!["persons".into()])))
        .build(futures::stream::iter(base.clone().into_iter().map(Ok)));
    let err = match c.do_put(data).await {
        Ok(results) => results.try_collect::<Vec<_>>().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains("not known to be complete"),
        "{err}"
    );
    let failing = base
        .clone()
        .into_iter()
        .take(1)
        .map(Ok)
        .chain([Err(FlightError::ProtocolError("the source died".into()))]);
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec!["persons".into()])))
        .build(futures::stream::iter(failing));
    let mut c = f.flight(&owner).await;
    if let Ok(results) = c.do_put(data).await {
        assert!(results.try_collect::<Vec<_>>().await.is_err());
    }

    // HTTP: a Parquet body cut off half-way by a client that goes away.
    let mut body = Vec::new();
    {
        let mut w = ArrowWriter::try_new(&mut body, base[0].schema(), None).unwrap();
        for b in &base {
            w.write(&with_text(b, "given_name", "Ilze", None)).unwrap();
        }
        w.close().unwrap();
    }
    let addr = f.server.base.trim_start_matches("http://").to_owned();
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/datasets/persons/loads HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {owner}\r\nContent-Type: application/vnd.apache.parquet\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body[..body.len() / 2]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    } // dropped: the connection closes mid-body
    let history = format!("{}/api/v1/datasets/persons/loads", f.server.base);
    let mut refused = Value::Null;
    for _ in 0..100 {
        let (status, _, j) = common::get_auth(&history, &owner).await;
        assert_eq!(status, 200, "{j}");
        if let Some(l) = j.as_array().and_then(|a| a.first())
            && l["status"] == "refused"
        {
            refused = l.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused["reasons"].to_string().contains("broke off"),
        "the interrupted upload is not refused in the history: {refused}"
    );
    assert_eq!(f.pull(&owner, "check.parquet"), (v1, before));

    // The whole body: accepted, validated and committed.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/datasets/persons/loads?wait=true",
            f.server.base
        ))
        .bearer_auth(&owner)
        .header("content-type", "application/vnd.apache.parquet")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["status"], "committed", "{j}");
    assert_eq!(j["version"], v1 + 1, "{j}");
    let (status, _, one) = common::get_auth(
        &format!("{}/api/v1/loads/{}", f.server.base, j["id"]),
        &owner,
    )
    .await;
    assert_eq!((status, &one["status"]), (200, &Value::from("committed")));
    let (v, rows) = f.pull(&owner, "check.parquet");
    assert_eq!(v, v1 + 1);
    assert!(rows.iter().all(|r| r.contains("given_name=Ilze|")));
}

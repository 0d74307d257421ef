//! The reading side of the connector: every format read back into the demo `persons`
//! dataset, errors with their exact locations, change sets, and PostgreSQL (set
//! `DAGR_TEST_POSTGRES_URL`; with `DAGR_TEST_REQUIRE_POSTGRES=1` its absence fails).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dagr_engine::DatasetDefinition;
use dagr_loaders::LoadError;
use dagr_loaders::source::{
    CHANGE_COLUMN, CsvOptions, Format, SourceBatch, SourceOptions, Sources, Target,
};
use dagr_loaders::validate::{Summary, Validator};
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn persons() -> DatasetDefinition {
    dagr_engine::demo::definitions()
        .into_iter()
        .find(|d| d.name == "persons")
        .expect("the demo has persons")
}

fn target() -> Target {
    Target::new(persons(), false)
}

fn changes() -> Target {
    Target::new(persons(), true)
}

/// One row of `persons`.
struct Person {
    code: &'static str,
    given: &'static str,
    family: &'static str,
    birth: &'static str,
    sex: &'static str,
    address: Option<i64>,
    municipality: &'static str,
    citizenship: Option<&'static str>,
    phone: Option<&'static str>,
    email: Option<&'static str>,
}

const HEADER: [&str; 10] = [
    "personal_code",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "declared_address_code",
    "municipality",
    "citizenship",
    "phone",
    "email",
];

const PEOPLE: [Person; 4] = [
    Person {
        code: "010190-10001",
        given: "Jānis",
        family: "Bērziņš",
        birth: "1990-01-01",
        sex: "M",
        address: Some(100_001),
        municipality: "Rīga",
        citizenship: Some("LVA"),
        phone: Some("+37120000001"),
        email: Some("janis@example.lv"),
    },
    Person {
        code: "020285-20002",
        given: "Līga",
        family: "Ozoliņa",
        birth: "1985-02-02",
        sex: "F",
        address: None,
        municipality: "Ķekava",
        citizenship: None,
        phone: None,
        email: None,
    },
    Person {
        code: "320000-00003",
        given: "Anna, Marija",
        family: "Kalniņa",
        birth: "2001-12-31",
        sex: "F",
        address: Some(100_003),
        municipality: "Jūrmala",
        citizenship: Some("XXA"),
        phone: Some("+37120000003"),
        email: Some("a\"b@example.lv"),
    },
    Person {
        code: "040470-40004",
        given: "Ģirts",
        family: "Šķēle",
        birth: "1970-04-04",
        sex: "M",
        address: Some(100_004),
        municipality: "Ventspils",
        citizenship: Some("LVA"),
        phone: None,
        email: Some("girts@example.lv"),
    },
];

fn days(date: &str) -> i32 {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    i32::try_from((d - epoch).num_days()).unwrap()
}

/// The rows as a batch in `schema` (the persons schema).
fn batch_of(people: &[Person], schema: SchemaRef) -> RecordBatch {
    let text = |f: fn(&Person) -> &'static str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(people.iter().map(f)))
    };
    let opt = |f: fn(&Person) -> Option<&'static str>| -> ArrayRef {
        Arc::new(people.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        text(|p| p.code),
        text(|p| p.given),
        text(|p| p.family),
        Arc::new(Date32Array::from_iter_values(
            people.iter().map(|p| days(p.birth)),
        )),
        text(|p| p.sex),
        Arc::new(people.iter().map(|p| p.address).collect::<Int64Array>()),
        text(|p| p.municipality),
        opt(|p| p.citizenship),
        opt(|p| p.phone),
        opt(|p| p.email),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn csv_field(value: &str, delimiter: char) -> String {
    if value.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn csv_line(p: &Person, delimiter: char) -> String {
    let address = p.address.map(|a| a.to_string()).unwrap_or_default();
    let fields = [
        p.code,
        p.given,
        p.family,
        p.birth,
        p.sex,
        &address,
        p.municipality,
        p.citizenship.unwrap_or(""),
        p.phone.unwrap_or(""),
        p.email.unwrap_or(""),
    ];
    fields
        .iter()
        .map(|f| csv_field(f, delimiter))
        .collect::<Vec<_>>()
        .join(&delimiter.to_string())
}

fn csv_of(people: &[Person], delimiter: char, header: bool, eol: &str) -> String {
    let mut out = String::new();
    if header {
        out.push_str(&HEADER.join(&delimiter.to_string()));
        out.push_str(eol);
    }
    for p in people {
        out.push_str(&csv_line(p, delimiter));
        out.push_str(eol);
    }
    out
}

fn json_of(p: &Person) -> String {
    let mut object = serde_json::json!({
        "personal_code": p.code,
        "given_name": p.given,
        "family_name": p.family,
        "birth_date": p.birth,
        "sex": p.sex,
        "declared_address_code": p.address,
        "municipality": p.municipality,
    });
    // Absent keys are nulls too.
    for (key, value) in [
        ("citizenship", p.citizenship),
        ("phone", p.phone),
        ("email", p.email),
    ] {
        if let Some(v) = value {
            object[key] = v.into();
        }
    }
    object.to_string()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

fn write_parquet(path: &Path, batches: &[RecordBatch], row_group_rows: usize) -> PathBuf {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut writer = ArrowWriter::try_new(
        File::create(path).unwrap(),
        batches[0].schema(),
        Some(props),
    )
    .unwrap();
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    path.to_path_buf()
}

fn write_ipc_file(path: &Path, batch: &RecordBatch) -> PathBuf {
    let mut w =
        arrow::ipc::writer::FileWriter::try_new(File::create(path).unwrap(), &batch.schema())
            .unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
    path.to_path_buf()
}

fn write_ipc_stream(path: &Path, batch: &RecordBatch) -> PathBuf {
    let mut w =
        arrow::ipc::writer::StreamWriter::try_new(File::create(path).unwrap(), &batch.schema())
            .unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
    path.to_path_buf()
}

/// What a load read: its batches and the validator's summary.
struct Loaded {
    batches: Vec<SourceBatch>,
    summary: Summary,
}

impl Loaded {
    fn all(&self, target: &Target) -> RecordBatch {
        concat_batches(&target.schema(), self.batches.iter().map(|b| &b.batch)).unwrap()
    }
}

fn specs(paths: &[&Path]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Read `specs` into `target` and validate every batch, as `dagr load` does.
async fn load(
    specs: &[String],
    options: &SourceOptions,
    target: &Target,
) -> Result<Loaded, LoadError> {
    let sources = Sources::resolve(specs, options)?;
    let mut stream = sources.open(target);
    let mut validator = Validator::new(target);
    let mut batches = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        assert_eq!(batch.batch.schema(), target.schema());
        validator.check(&batch)?;
        batches.push(batch);
    }
    Ok(Loaded {
        batches,
        summary: validator.finish(),
    })
}

async fn load_paths(paths: &[&Path], options: &SourceOptions, target: &Target) -> Loaded {
    match load(&specs(paths), options, target).await {
        Ok(l) => l,
        Err(e) => panic!("load failed: {e}"),
    }
}

async fn load_error(paths: &[&Path], options: &SourceOptions, target: &Target) -> String {
    match load(&specs(paths), options, target).await {
        Ok(_) => panic!("the load should fail"),
        Err(e) => e.to_string(),
    }
}

fn defaults() -> SourceOptions {
    SourceOptions::default()
}

fn d(path: &Path) -> String {
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn parquet_round_trip_of_demo_persons_with_row_groups_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dagr_engine::demo::generate(&dagr_engine::demo::DemoConfig {
        persons: 2000,
        seed: 7,
    })
    .unwrap();
    let persons = demo
        .into_iter()
        .find(|d| d.definition.name == "persons")
        .unwrap();
    let path = write_parquet(&dir.path().join("persons.parquet"), &persons.batches, 700);
    let options = SourceOptions {
        batch_rows: 500,
        ..defaults()
    };
    let sources = Sources::resolve(&specs(&[&path]), &options).unwrap();
    assert_eq!(sources.known_rows(), Some(2000));
    assert_eq!(sources.describe(), vec![format!("{} (parquet)", d(&path))]);
    let t = target();
    let loaded = load_paths(&[&path], &options, &t).await;
    let expected = concat_batches(&t.schema(), &persons.batches).unwrap();
    assert_eq!(loaded.all(&t), expected);
    let mut next = 1;
    for b in &loaded.batches {
        assert_eq!(b.first_row, next);
        assert!(b.batch.num_rows() <= 500);
        assert_eq!(&*b.source, d(&path));
        next += b.batch.num_rows() as u64;
    }
    assert_eq!(
        loaded.summary,
        Summary {
            rows: 2000,
            upserts: 2000,
            deletes: 0,
            sources: 1
        }
    );
}

#[tokio::test]
async fn csv_with_header_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("persons.csv"),
        csv_of(&PEOPLE, ',', true, "\n"),
    );
    let t = target();
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));
    assert_eq!(loaded.summary.rows, 4);
    // A byte-order mark is dropped; a file with only a header holds no rows.
    let bom = write(
        &dir.path().join("bom.csv"),
        format!("\u{feff}{}", csv_of(&PEOPLE, ',', true, "\r\n")),
    );
    let loaded = load_paths(&[&bom], &defaults(), &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));
    let empty = write(
        &dir.path().join("empty.csv"),
        format!("{}\n", HEADER.join(",")),
    );
    assert_eq!(load_paths(&[&empty], &defaults(), &t).await.summary.rows, 0);
}

#[tokio::test]
async fn csv_without_header_takes_columns_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("persons.csv"),
        csv_of(&PEOPLE, ',', false, "\r\n"),
    );
    let options = SourceOptions {
        csv: CsvOptions {
            header: false,
            ..CsvOptions::default()
        },
        ..defaults()
    };
    let t = target();
    let loaded = load_paths(&[&path], &options, &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));
}

#[tokio::test]
async fn tsv_implies_a_tab_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("persons.tsv"),
        csv_of(&PEOPLE, '\t', true, "\r\n"),
    );
    let t = target();
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));
}

#[tokio::test]
async fn csv_in_windows_1257_with_latvian_letters() {
    const LATVIAN: [Person; 2] = [
        Person {
            code: "111111-11111",
            given: "Ēriks Ģirts Īvāns",
            family: "Āboliņš-Čakste",
            birth: "1950-05-05",
            sex: "M",
            address: Some(7),
            municipality: "Ķekava",
            citizenship: None,
            phone: None,
            email: Some("ļ ņ š ū ž ā č ē ģ ī ķ"),
        },
        Person {
            code: "222222-22222",
            given: "Ļuba Ņina",
            family: "Šķēle-Ūdre-Žagare",
            birth: "1960-06-06",
            sex: "F",
            address: None,
            municipality: "Līvāni",
            citizenship: Some("LVA"),
            phone: None,
            email: None,
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let text = csv_of(&LATVIAN, ';', true, "\r\n");
    let (bytes, _, had_errors) = encoding_rs::WINDOWS_1257.encode(&text);
    assert!(!had_errors);
    assert_ne!(bytes.as_ref(), text.as_bytes(), "really transcoded");
    let path = write(&dir.path().join("persons.csv"), &bytes);
    let options = SourceOptions {
        csv: CsvOptions {
            delimiter: b';',
            encoding: "windows-1257".into(),
            ..CsvOptions::default()
        },
        ..defaults()
    };
    let t = target();
    let loaded = load_paths(&[&path], &options, &t).await;
    let all = loaded.all(&t);
    assert_eq!(all, batch_of(&LATVIAN, t.schema()));
    assert_eq!(
        all.column(9).as_string::<i32>().value(0),
        "ļ ņ š ū ž ā č ē ģ ī ķ"
    );
    // The same bytes read as UTF-8 are refused, with a hint.
    let err = load_error(
        &[&path],
        &SourceOptions {
            csv: CsvOptions {
                delimiter: b';',
                ..CsvOptions::default()
            },
            ..defaults()
        },
        &t,
    )
    .await;
    assert!(
        err.starts_with(&format!(
            "{}, line 2, row 1, column `given_name`: invalid UTF-8",
            d(&path)
        )),
        "{err}"
    );
}

#[tokio::test]
async fn csv_with_infer_schema_casts_inferred_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("persons.csv"),
        csv_of(&PEOPLE, ',', true, "\n"),
    );
    let infer = SourceOptions {
        csv: CsvOptions {
            infer_schema: true,
            ..CsvOptions::default()
        },
        ..defaults()
    };
    let t = target();
    let loaded = load_paths(&[&path], &infer, &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));

    // `100001.0` is inferred as Float64: a whole number, it reads into the Int64 attribute;
    // without inference it is not an Int64.
    let text = csv_of(&PEOPLE[..1], ',', true, "\n").replace(",100001,", ",100001.0,");
    let path = write(&dir.path().join("floats.csv"), text);
    let loaded = load_paths(&[&path], &infer, &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE[..1], t.schema()));
    let err = load_error(&[&path], &defaults(), &t).await;
    assert_eq!(
        err,
        format!(
            "{}, line 2, row 1, column `declared_address_code`: `100001.0` is not an Int64",
            d(&path)
        )
    );
}

/// A dataset of one attribute of each type `--infer-schema` could change.
fn measures() -> Target {
    use dagr_engine::Attribute;
    let a = |name: &str, t: DataType| Attribute::new(name, t, name);
    let definition = DatasetDefinition {
        name: "measures".into(),
        owner: "test".into(),
        description: String::new(),
        primary_key: vec!["id".into()],
        attributes: vec![
            a("id", DataType::Int64),
            a("count", DataType::Int64),
            a("amount", DataType::Decimal128(10, 2)),
            a("big", DataType::Decimal128(38, 2)),
            a("flag", DataType::Boolean),
        ],
    }
    .validated()
    .unwrap();
    Target::new(definition, false)
}

#[tokio::test]
async fn csv_with_infer_schema_never_changes_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let infer = SourceOptions {
        csv: CsvOptions {
            infer_schema: true,
            ..CsvOptions::default()
        },
        ..defaults()
    };
    let t = measures();
    // arrow-csv infers `count`, `amount` and `big` as Float64 and `flag` as Int64; the values
    // are read exactly (a Float64 would round `big`).
    let good = "id,count,amount,big,flag\n\
                1,100001.0,1.5,12345678901234567890.12,1\n\
                2,-7.,2.25,-0.01,0\n";
    let path = write(&dir.path().join("good.csv"), good);
    let all = load_paths(&[&path], &infer, &t).await.all(&t);
    let fmt = |name: &str| -> Vec<String> {
        let c = all.column(all.schema().index_of(name).unwrap());
        let f =
            arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()).unwrap();
        (0..c.len()).map(|i| f.value(i).to_string()).collect()
    };
    assert_eq!(fmt("count"), ["100001", "-7"]);
    assert_eq!(fmt("amount"), ["1.50", "2.25"]);
    assert_eq!(fmt("big"), ["12345678901234567890.12", "-0.01"]);
    assert_eq!(fmt("flag"), ["true", "false"]);

    // A value the attribute cannot hold exactly is refused where it is, as without
    // inference (a cast through the inferred type would truncate, round, or make `2` true).
    let cases = [
        (
            "fraction",
            "1,100001.5,1.5,1.5,1",
            "column `count`: `100001.5` is not an Int64",
        ),
        (
            "places",
            "1,1,1.234,1.5,1",
            "column `amount`: `1.234` has more decimal places than Decimal128(10, 2) holds (2)",
        ),
        (
            "precision",
            "1,1,1.5,12345678901234567890.125,1",
            "column `big`: `12345678901234567890.125` has more decimal places than Decimal128(38, 2) holds (2)",
        ),
        (
            "boolean",
            "1,1,1.5,1.5,2",
            "column `flag`: `2` is not a Boolean",
        ),
        (
            "range",
            "1,100000000000000000000.0,1.5,1.5,1",
            "column `count`: `100000000000000000000.0` is not an Int64",
        ),
    ];
    for (name, row, message) in cases {
        let text = format!("id,count,amount,big,flag\n2,-7,2.25,-0.01,0\n{row}\n");
        let path = write(&dir.path().join(format!("{name}.csv")), text);
        let expected = format!("{}, line 3, row 2, {message}", d(&path));
        assert_eq!(load_error(&[&path], &infer, &t).await, expected, "{name}");
        assert_eq!(
            load_error(&[&path], &defaults(), &t).await,
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn ndjson_round_trip_with_blank_lines_and_absent_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for (i, p) in PEOPLE.iter().enumerate() {
        text.push_str(&json_of(p));
        text.push_str(if i == 1 { "\r\n\n" } else { "\n" });
    }
    let path = write(&dir.path().join("persons.jsonl"), text);
    let t = target();
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));
}

#[tokio::test]
async fn ipc_file_and_stream_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let expected = batch_of(&PEOPLE, t.schema());
    let file = write_ipc_file(&dir.path().join("persons.arrow"), &expected);
    let stream = write_ipc_stream(&dir.path().join("persons.arrows"), &expected);
    for path in [&file, &stream] {
        let loaded = load_paths(&[path], &defaults(), &t).await;
        assert_eq!(loaded.all(&t), expected);
    }
    let known = |p: &Path| {
        Sources::resolve(&specs(&[p]), &defaults())
            .unwrap()
            .known_rows()
    };
    assert_eq!(known(&file), Some(4));
    assert_eq!(known(&stream), None, "a stream has no footer");
    // Batches are cut to `batch_rows`.
    let small = SourceOptions {
        batch_rows: 3,
        ..defaults()
    };
    let loaded = load_paths(&[&file], &small, &t).await;
    let firsts: Vec<u64> = loaded.batches.iter().map(|b| b.first_row).collect();
    assert_eq!(firsts, vec![1, 4]);
}

#[tokio::test]
async fn directory_of_mixed_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let t = target();
    write(&root.join("a.csv"), csv_of(&PEOPLE[..1], ',', true, "\n"));
    write(&root.join("b.ndjson"), json_of(&PEOPLE[1]));
    write_parquet(
        &root.join("c.parquet"),
        &[batch_of(&PEOPLE[2..3], t.schema())],
        100,
    );
    write_ipc_file(&root.join("d.feather"), &batch_of(&PEOPLE[3..], t.schema()));
    write(&root.join("notes.txt"), "not data");
    write(&root.join(".hidden.csv"), "junk");
    std::fs::create_dir(root.join("sub.csv")).unwrap();
    let sources = Sources::resolve(&specs(&[root]), &defaults()).unwrap();
    assert_eq!(sources.describe().len(), 4);
    assert_eq!(
        sources.known_rows(),
        None,
        "CSV and NDJSON have no row count"
    );
    let loaded = load_paths(&[root], &defaults(), &t).await;
    assert_eq!(loaded.all(&t), batch_of(&PEOPLE, t.schema()));
    let labels: Vec<String> = loaded
        .batches
        .iter()
        .map(|b| b.source.to_string())
        .collect();
    assert_eq!(
        labels,
        ["a.csv", "b.ndjson", "c.parquet", "d.feather"]
            .iter()
            .map(|n| d(&root.join(n)))
            .collect::<Vec<_>>()
    );
    assert_eq!(loaded.summary.sources, 4);
    // Two directories with only Parquet and IPC files: known rows.
    let typed = tempfile::tempdir().unwrap();
    write_parquet(
        &typed.path().join("x.parquet"),
        &[batch_of(&PEOPLE[..2], t.schema())],
        1,
    );
    write_ipc_file(
        &typed.path().join("y.arrow"),
        &batch_of(&PEOPLE[2..], t.schema()),
    );
    let sources = Sources::resolve(&specs(&[typed.path()]), &defaults()).unwrap();
    assert_eq!(sources.known_rows(), Some(4));
}

#[tokio::test]
async fn a_stream_can_be_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("persons.csv"),
        csv_of(&PEOPLE, ',', true, "\n"),
    );
    let t = target();
    let sources = Sources::resolve(
        &specs(&[&path]),
        &SourceOptions {
            batch_rows: 1,
            ..defaults()
        },
    )
    .unwrap();
    // A reader dropped after one batch stops; the next open starts from the top.
    let mut first = sources.open(&t);
    let b = first.try_next().await.unwrap().unwrap();
    assert_eq!(b.first_row, 1);
    drop(first);
    let all: Vec<SourceBatch> = sources.open(&t).try_collect().await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].first_row, 4);
}

// ---------------------------------------------------------------------------------------
// Errors, with their locations
// ---------------------------------------------------------------------------------------

/// `n` valid CSV rows of distinct people.
fn many_rows(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{i:06}-{i:05},Given{i},Family{i},1990-01-01,F,{i},Rīga,LVA,,"))
        .collect()
}

#[tokio::test]
async fn bad_csv_value_is_reported_with_line_row_column_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = many_rows(16);
    rows[15] = rows[15].replace("1990-01-01", "1990-13-45");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("persons.csv"), text);
    let err = load_error(&[&path], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 17, row 16, column `birth_date`: `1990-13-45` is not a Date32",
            d(&path)
        )
    );
    // A quoted field across lines (and a blank line) moves lines, not rows.
    let mut rows = many_rows(3);
    rows[1] = rows[1].replace(",,", ",\"line one\nline two\",");
    rows[2] = rows[2].replace("1990-01-01", "01.01.1990");
    let text = format!(
        "{}\n{}\n\n{}\n",
        HEADER.join(","),
        rows[..2].join("\n"),
        rows[2]
    );
    let path = write(&dir.path().join("multiline.csv"), text);
    let err = load_error(&[&path], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 6, row 3, column `birth_date`: `01.01.1990` is not a Date32",
            d(&path)
        )
    );
}

#[tokio::test]
async fn csv_record_with_too_many_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = many_rows(4);
    rows[2].push_str(",extra");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("persons.csv"), text);
    let err = load_error(&[&path], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 4, row 3: 11 fields, but the header has 10 columns",
            d(&path)
        )
    );
}

#[tokio::test]
async fn csv_unterminated_quote() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = many_rows(2);
    rows[1] = rows[1].replace(",Family2,", ",\"Family2,");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("persons.csv"), text);
    let err = load_error(&[&path], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 3, row 2, column `family_name`: a quoted field is not closed: its quote (`\"`) runs to the end of the file",
            d(&path)
        )
    );
}

#[tokio::test]
async fn invalid_utf8_is_reported_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let rows = many_rows(3);
    let mut bytes = format!("{}\n{}\n", HEADER.join(","), rows[0]).into_bytes();
    bytes.extend_from_slice(&rows[1].replace("Given2", "J\u{1}nis").into_bytes());
    // Latin-1 `é` (0xE9) where UTF-8 was expected.
    let at = bytes.iter().rposition(|&b| b == 1).unwrap();
    bytes[at] = 0xE9;
    bytes.extend_from_slice(format!("\n{}\n", rows[2]).as_bytes());
    let path = write(&dir.path().join("persons.csv"), bytes);
    let err = load_error(&[&path], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 3, row 2, column `given_name`: invalid UTF-8: byte E9 cannot be decoded; if the file is not UTF-8, give its encoding (e.g. windows-1257)",
            d(&path)
        )
    );
}

#[tokio::test]
async fn bad_ndjson_lines() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let good = json_of(&PEOPLE[0]);
    let cases = [
        (
            r#"{"personal_code": "x", "given_name": }"#.to_owned(),
            "line 3, row 2: not valid JSON: expected value (at character 38)".to_owned(),
        ),
        (
            json_of(&PEOPLE[1]).replace("1985-02-02", "1985-02-30"),
            "line 3, row 2, column `birth_date`: `1985-02-30` is not a Date32".to_owned(),
        ),
        (
            json_of(&PEOPLE[1]).replace("\"sex\"", "\"gender\""),
            "line 3, row 2, column `gender`: column `gender` is not an attribute of dataset `persons`"
                .to_owned(),
        ),
        (
            json_of(&PEOPLE[1]).replace("\"Līga\"", "{\"first\": \"Līga\"}"),
            "line 3, row 2, column `given_name`: a JSON object cannot be read into column `given_name`: attributes hold flat values".to_owned(),
        ),
        (
            "[1, 2]".to_owned(),
            "line 3, row 2: a line must hold one JSON object, not an array".to_owned(),
        ),
        (
            format!("{} {}", json_of(&PEOPLE[1]), json_of(&PEOPLE[2])),
            "line 3, row 2: not valid JSON: trailing characters (at character ".to_owned(),
        ),
    ];
    for (k, (line, expected)) in cases.iter().enumerate() {
        let path = write(
            &dir.path().join(format!("bad{k}.ndjson")),
            format!("{good}\n\n{line}\n"),
        );
        let err = load_error(&[&path], &defaults(), &t).await;
        let expected = format!("{}, {expected}", d(&path));
        assert!(
            err.starts_with(&expected),
            "case {k}:\n{err}\nexpected\n{expected}"
        );
    }
}

#[tokio::test]
async fn unknown_and_missing_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let rows = many_rows(2).join("\n");
    let path = write(
        &dir.path().join("typo.csv"),
        format!(
            "{}\n{rows}\n",
            HEADER.join(",").replace("birth_date", "Birth_Date")
        ),
    );
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, line 1: column `Birth_Date` is not an attribute of dataset `persons` (names are case-sensitive: `Birth_Date` → `birth_date`); column `birth_date` is missing",
            d(&path)
        )
    );
    let header = HEADER[..9].join(",");
    let rows: Vec<String> = many_rows(2)
        .iter()
        .map(|r| r[..r.len() - 1].to_owned())
        .collect();
    let path = write(
        &dir.path().join("missing.csv"),
        format!("{header}\n{}\n", rows.join("\n")),
    );
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, line 1, column `email`: column `email` is missing",
            d(&path)
        )
    );
    // The same rules for typed files.
    let schema = Arc::new(Schema::new(vec![
        Field::new("personal_code", DataType::Utf8, false),
        Field::new("nickname", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(StringArray::from(vec!["b"])),
        ],
    )
    .unwrap();
    let path = write_parquet(&dir.path().join("odd.parquet"), &[batch], 10);
    let err = load_error(&[&path], &defaults(), &t).await;
    assert_eq!(
        err,
        format!(
            "{}: column `nickname` is not an attribute of dataset `persons`; columns `given_name`, `family_name`, `birth_date`, `sex`, `declared_address_code`, `municipality`, `citizenship`, `phone`, `email` are missing",
            d(&path)
        )
    );
}

#[tokio::test]
async fn duplicate_key_across_two_files_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        &dir.path().join("a.csv"),
        csv_of(&PEOPLE[..2], ',', true, "\n"),
    );
    let b = write(
        &dir.path().join("b.csv"),
        csv_of(&PEOPLE[1..3], ',', true, "\n"),
    );
    let err = load_error(&[&a, &b], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, row 1, column `personal_code`: key `020285-20002` appears twice: {} row 2 and {} row 1",
            d(&b),
            d(&a),
            d(&b)
        )
    );
}

#[tokio::test]
async fn null_in_a_required_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = many_rows(3);
    rows[1] = rows[1].replace("Given2", "");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("persons.csv"), text);
    let err = load_error(&[&path], &defaults(), &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 3, row 2, column `given_name`: required column `given_name` is null",
            d(&path)
        )
    );
    // In a batch, the earliest row's problem is reported, whatever its kind or column.
    let mut rows = many_rows(3);
    rows[1] = rows[1].replace("Rīga", "");
    rows[2] = rows[2].replace("1990-01-01", "1990-02-30");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("two.csv"), text);
    assert_eq!(
        load_error(&[&path], &defaults(), &target()).await,
        format!(
            "{}, line 3, row 2, column `municipality`: required column `municipality` is null",
            d(&path)
        )
    );
    let mut rows = many_rows(3);
    rows[1] = rows[1].replace(",2,", ",x2,");
    rows[2] = rows[2].replace("Given3", "");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("three.csv"), text);
    assert_eq!(
        load_error(&[&path], &defaults(), &target()).await,
        format!(
            "{}, line 3, row 2, column `declared_address_code`: `x2` is not an Int64",
            d(&path)
        )
    );
    // A custom null text: `NULL` is null, the empty field an empty string.
    let mut rows = many_rows(2);
    rows[1] = rows[1]
        .replace("Given2", "NULL")
        .replace("LVA,,", "LVA,NULL,");
    rows[0] = rows[0].replace("Rīga", "\"NULL\"");
    let text = format!("{}\n{}\n", HEADER.join(","), rows.join("\n"));
    let path = write(&dir.path().join("nulls.csv"), text);
    let options = SourceOptions {
        csv: CsvOptions {
            null: Some("NULL".into()),
            ..CsvOptions::default()
        },
        ..defaults()
    };
    let err = load_error(&[&path], &options, &target()).await;
    assert_eq!(
        err,
        format!(
            "{}, line 3, row 2, column `given_name`: required column `given_name` is null",
            d(&path)
        )
    );
    let rows = many_rows(1)[0].replace("LVA,,", "LVA,NULL,");
    let path = write(
        &dir.path().join("nulls_ok.csv"),
        format!("{}\n{rows}\n", HEADER.join(",")),
    );
    let t = target();
    let all = load_paths(&[&path], &options, &t).await.all(&t);
    assert!(all.column(8).is_null(0), "`NULL` phone is null");
    assert_eq!(
        all.column(9).as_string::<i32>().value(0),
        "",
        "empty email is ``"
    );
}

#[tokio::test]
async fn truncated_and_corrupt_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let path = write_parquet(
        &dir.path().join("persons.parquet"),
        &[batch_of(&PEOPLE, t.schema())],
        2,
    );
    let bytes = std::fs::read(&path).unwrap();
    let cut = write(&dir.path().join("cut.parquet"), &bytes[..bytes.len() / 2]);
    let err = load_error(&[&cut], &defaults(), &t).await;
    assert!(
        err.starts_with(&format!(
            "{}: not a readable Parquet file (truncated or corrupt?): ",
            d(&cut)
        )),
        "{err}"
    );
    assert_eq!(
        Sources::resolve(&specs(&[&cut]), &defaults())
            .unwrap()
            .known_rows(),
        None
    );
    // Garbage in the second row group's pages: the error names it.
    let file = File::open(&path).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader as _;
    let column = reader.metadata().row_group(1).column(0);
    let start = usize::try_from(column.data_page_offset()).unwrap();
    let mut bad = bytes.clone();
    for b in &mut bad[start..start + 12] {
        *b = 0xFF;
    }
    let bad = write(&dir.path().join("bad.parquet"), &bad);
    let err = load_error(&[&bad], &defaults(), &t).await;
    assert!(
        err.starts_with(&format!(
            "{}: row group 2 of 2 (rows 3–4) cannot be read: ",
            d(&bad)
        )),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_typed_parquet_columns() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    let good = batch_of(&PEOPLE, t.schema());
    let replace = |i: usize, field: Field, column: ArrayRef| {
        let mut fields: Vec<Field> = good
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[i] = field;
        let mut columns = good.columns().to_vec();
        columns[i] = column;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    // A type that cannot hold dates: the whole column is refused.
    let floats = replace(
        3,
        Field::new("birth_date", DataType::Float64, false),
        Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
    );
    let path = write_parquet(&dir.path().join("floats.parquet"), &[floats], 10);
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, column `birth_date`: column `birth_date` has type Float64; the dataset defines Date32",
            d(&path)
        )
    );
    // Text is parsed: the value that does not parse is named.
    let text = replace(
        5,
        Field::new("declared_address_code", DataType::Utf8, true),
        Arc::new(StringArray::from(vec![
            Some("1"),
            None,
            Some("12a"),
            Some("4"),
        ])),
    );
    let path = write_parquet(&dir.path().join("text.parquet"), &[text], 10);
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, row 3, column `declared_address_code`: `12a` is not an Int64",
            d(&path)
        )
    );
    // Integers of another width convert.
    let narrow = replace(
        5,
        Field::new("declared_address_code", DataType::Int32, true),
        Arc::new(arrow::array::Int32Array::from(vec![
            Some(100_001),
            None,
            Some(100_003),
            Some(100_004),
        ])),
    );
    let path = write_parquet(&dir.path().join("narrow.parquet"), &[narrow], 10);
    assert_eq!(load_paths(&[&path], &defaults(), &t).await.all(&t), good);
}

/// A dataset of timestamps, a date and a time.
fn moments() -> Target {
    use arrow::datatypes::TimeUnit;
    use dagr_engine::Attribute;
    let a = |name: &str, t: DataType| Attribute::new(name, t, name);
    let definition = DatasetDefinition {
        name: "moments".into(),
        owner: "test".into(),
        description: String::new(),
        primary_key: vec!["id".into()],
        attributes: vec![
            a("id", DataType::Int64),
            a("at", DataType::Timestamp(TimeUnit::Microsecond, None)),
            a(
                "at_utc",
                DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            ),
            a("day", DataType::Date32),
            a("time", DataType::Time32(TimeUnit::Millisecond)),
        ],
    }
    .validated()
    .unwrap();
    Target::new(definition, false)
}

#[tokio::test]
async fn typed_columns_are_not_rounded_into_a_coarser_unit() {
    use arrow::array::{
        Date64Array, Time64MicrosecondArray, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use arrow::datatypes::TimeUnit;
    let dir = tempfile::tempdir().unwrap();
    let t = moments();
    const DAY: i64 = 86_400_000;
    // Two rows: `at` in ns, `at_utc` in ms at +02:00, `day` as Date64, `time` as Time64(µs).
    let batch = |at: [i64; 2], at_utc: [i64; 2], day: [i64; 2], time: [i64; 2]| {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("at", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new(
                "at_utc",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
                true,
            ),
            Field::new("day", DataType::Date64, true),
            Field::new("time", DataType::Time64(TimeUnit::Microsecond), true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(TimestampNanosecondArray::from(at.to_vec())),
            Arc::new(TimestampMillisecondArray::from(at_utc.to_vec()).with_timezone("+02:00")),
            Arc::new(Date64Array::from(day.to_vec())),
            Arc::new(Time64MicrosecondArray::from(time.to_vec())),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    };
    // Whole units, negative ones too, convert exactly; between zones the instant is kept.
    let exact = batch(
        [1_700_000_000_123_456_000, -1_000],
        [1_700_000_000_000, -2_000],
        [19_000 * DAY, -DAY],
        [45_296_789_000, 0],
    );
    let path = write_ipc_file(&dir.path().join("exact.arrow"), &exact);
    let all = load_paths(&[&path], &defaults(), &t).await.all(&t);
    let fmt = |name: &str| -> Vec<String> {
        let c = all.column(all.schema().index_of(name).unwrap());
        let f =
            arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()).unwrap();
        (0..c.len()).map(|i| f.value(i).to_string()).collect()
    };
    assert_eq!(
        fmt("at"),
        ["2023-11-14T22:13:20.123456", "1969-12-31T23:59:59.999999"]
    );
    assert_eq!(
        fmt("at_utc"),
        ["2023-11-14T22:13:20Z", "1969-12-31T23:59:58Z"]
    );
    assert_eq!(fmt("day"), ["2022-01-08", "1969-12-31"]);
    assert_eq!(fmt("time"), ["12:34:56.789", "00:00:00"]);

    // A value the coarser unit cannot hold is refused at its row (Arrow would truncate it,
    // negative ones towards zero).
    let cases = [
        (
            "at",
            batch([0, -1_500], [0, 0], [0, 0], [0, 0]),
            "column `at`: `1969-12-31T23:59:59.999998500` (Timestamp(ns)) is more precise than Timestamp(µs) holds",
        ),
        (
            "at_utc",
            batch([0, 0], [0, 1_500], [0, 0], [0, 0]),
            "column `at_utc`: `1970-01-01T02:00:01.500+02:00` (Timestamp(ms, \"+02:00\")) is more precise than Timestamp(s, \"UTC\") holds",
        ),
        (
            "day",
            batch([0, 0], [0, 0], [0, DAY + 3_600_000], [0, 0]),
            "column `day`: `1970-01-02T01:00:00` (Date64) is more precise than Date32 holds",
        ),
        (
            "time",
            batch([0, 0], [0, 0], [0, 0], [0, 1_001]),
            "column `time`: `00:00:00.001001` (Time64(µs)) is more precise than Time32(ms) holds",
        ),
    ];
    for (name, batch, message) in cases {
        let path = write_ipc_file(&dir.path().join(format!("{name}.arrow")), &batch);
        assert_eq!(
            load_error(&[&path], &defaults(), &t).await,
            format!("{}, row 2, {message}", d(&path)),
            "{name}"
        );
    }

    // A time zone is neither added nor dropped: the whole column is refused.
    let zeros = batch([0, 0], [0, 0], [0, 0], [0, 0]);
    let retype = |i: usize, field: Field, column: ArrayRef| {
        let mut fields: Vec<Field> = zeros
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[i] = field;
        let mut columns = zeros.columns().to_vec();
        columns[i] = column;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    let zoned = retype(
        1,
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![0, 0]).with_timezone("UTC")),
    );
    let path = write_ipc_file(&dir.path().join("zoned.arrow"), &zoned);
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, column `at`: column `at` has type Timestamp(µs, \"UTC\"); the dataset defines Timestamp(µs) (a timestamp's time zone is not dropped)",
            d(&path)
        )
    );
    let naive = retype(
        2,
        Field::new("at_utc", DataType::Timestamp(TimeUnit::Second, None), true),
        Arc::new(arrow::array::TimestampSecondArray::from(vec![0, 0])),
    );
    let path = write_ipc_file(&dir.path().join("naive.arrow"), &naive);
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, column `at_utc`: column `at_utc` has type Timestamp(s); the dataset defines Timestamp(s, \"UTC\") (a timestamp without a time zone is not given one)",
            d(&path)
        )
    );
}

// ---------------------------------------------------------------------------------------
// Change sets
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn change_set_with_change_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{},{CHANGE_COLUMN}\n{},upsert\n020285-20002,,,,,,,,,,delete\n",
        HEADER.join(","),
        csv_line(&PEOPLE[0], ',')
    );
    let path = write(&dir.path().join("changes.csv"), text);
    let t = changes();
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!(
        loaded.summary,
        Summary {
            rows: 2,
            upserts: 1,
            deletes: 1,
            sources: 1
        }
    );
    let all = loaded.all(&t);
    assert_eq!(all.schema().field(10).name(), CHANGE_COLUMN);
    assert_eq!(all.column(10).as_string::<i32>().value(1), "delete");
    assert!(all.column(1).is_null(1));
    // An upsert must have its required values.
    let text = format!(
        "{},{CHANGE_COLUMN}\n020285-20002,,,,,,,,,,upsert\n",
        HEADER.join(",")
    );
    let path = write(&dir.path().join("bad.csv"), text);
    assert_eq!(
        load_error(&[&path], &defaults(), &t).await,
        format!(
            "{}, row 1, column `given_name`: required column `given_name` is null in an upsert row",
            d(&path)
        )
    );
    // Only `upsert` and `delete`.
    let text = format!("personal_code,{CHANGE_COLUMN}\n020285-20002,remove\n");
    let path = write(&dir.path().join("verb.csv"), text);
    let err = load_error(&[&path], &defaults(), &t).await;
    assert_eq!(
        err,
        format!(
            "{}, line 2, row 1, column `_dagr_change`: `_dagr_change` is `remove`; it must be `upsert` or `delete`",
            d(&path)
        )
    );
    // Not in a full load.
    let text = format!(
        "{},{CHANGE_COLUMN}\n{},upsert\n",
        HEADER.join(","),
        csv_line(&PEOPLE[0], ',')
    );
    let path = write(&dir.path().join("full.csv"), text);
    assert_eq!(
        load_error(&[&path], &defaults(), &target()).await,
        format!(
            "{}, line 1, column `_dagr_change`: column `_dagr_change` marks a change set, but this load replaces the whole dataset",
            d(&path)
        )
    );
}

#[tokio::test]
async fn change_set_without_change_column_is_all_upserts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("up.csv"),
        csv_of(&PEOPLE[..2], ',', true, "\n"),
    );
    let t = changes();
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!((loaded.summary.upserts, loaded.summary.deletes), (2, 0));
    let all = loaded.all(&t);
    let change = all.column(10).as_string::<i32>();
    assert!(change.iter().all(|v| v == Some("upsert")));
    // NDJSON: a line without `_dagr_change` is an upsert, with it whatever it says.
    let mut delete = serde_json::json!({"personal_code": PEOPLE[2].code});
    delete[CHANGE_COLUMN] = "delete".into();
    let path = write(
        &dir.path().join("mixed.ndjson"),
        format!("{}\n{delete}\n", json_of(&PEOPLE[0])),
    );
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!((loaded.summary.upserts, loaded.summary.deletes), (1, 1));
}

#[tokio::test]
async fn deletes_only_file_with_key_columns_only() {
    let dir = tempfile::tempdir().unwrap();
    let t = changes();
    let path = write(
        &dir.path().join("deletes.csv"),
        format!("personal_code,{CHANGE_COLUMN}\n010190-10001,delete\n020285-20002,delete\n"),
    );
    let loaded = load_paths(&[&path], &defaults(), &t).await;
    assert_eq!((loaded.summary.rows, loaded.summary.deletes), (2, 2));
    let all = loaded.all(&t);
    assert_eq!(all.column(9).null_count(), 2);
    // An upsert among them lacks its values.
    let path = write(
        &dir.path().join("mixed.csv"),
        format!("personal_code,{CHANGE_COLUMN}\n010190-10001,delete\n020285-20002,upsert\n"),
    );
    let err = load_error(&[&path], &defaults(), &t).await;
    assert!(
        err.starts_with(&format!(
            "{}, line 3, row 2, column `_dagr_change`: this row is an upsert, but columns `given_name`, `family_name`,",
            d(&path)
        )),
        "{err}"
    );
    // Without `_dagr_change`, every row is an upsert: the columns are missing.
    let path = write(
        &dir.path().join("keys.csv"),
        "personal_code\n010190-10001\n",
    );
    let err = load_error(&[&path], &defaults(), &t).await;
    assert!(
        err.starts_with(&format!("{}, line 1: columns `given_name`, ", d(&path))),
        "{err}"
    );
    assert!(
        err.ends_with("without `_dagr_change` every row is an upsert"),
        "{err}"
    );
    // The key is always needed.
    let path = write(
        &dir.path().join("nokey.csv"),
        format!("given_name,{CHANGE_COLUMN}\nX,delete\n"),
    );
    let err = load_error(&[&path], &defaults(), &t).await;
    assert_eq!(
        err,
        format!(
            "{}, line 1, column `personal_code`: column `personal_code` is missing",
            d(&path)
        )
    );
}

// ---------------------------------------------------------------------------------------
// Resolving inputs
// ---------------------------------------------------------------------------------------

#[test]
fn formats_by_name_and_extension() {
    assert_eq!("parquet".parse::<Format>().unwrap(), Format::Parquet);
    assert_eq!("CSV".parse::<Format>().unwrap(), Format::Csv);
    assert_eq!("jsonl".parse::<Format>().unwrap(), Format::Ndjson);
    assert_eq!("ndjson".parse::<Format>().unwrap(), Format::Ndjson);
    assert_eq!("arrow".parse::<Format>().unwrap(), Format::Ipc);
    assert_eq!("ipc".parse::<Format>().unwrap(), Format::Ipc);
    assert!("xlsx".parse::<Format>().is_err());
    for (name, format) in [
        ("a.parquet", Some(Format::Parquet)),
        ("a.PARQ", Some(Format::Parquet)),
        ("a.csv", Some(Format::Csv)),
        ("a.tsv", Some(Format::Csv)),
        ("a.ndjson", Some(Format::Ndjson)),
        ("a.jsonl", Some(Format::Ndjson)),
        ("a.json", Some(Format::Ndjson)),
        ("a.arrow", Some(Format::Ipc)),
        ("a.ipc", Some(Format::Ipc)),
        ("a.feather", Some(Format::Ipc)),
        ("a.arrows", Some(Format::Ipc)),
        ("a.txt", None),
        ("noext", None),
    ] {
        assert_eq!(Format::from_path(Path::new(name)), format, "{name}");
    }
}

#[test]
fn resolve_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let err = Sources::resolve(&specs(&[&missing]), &defaults()).unwrap_err();
    assert!(matches!(err, LoadError::Io(_)));
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or directory", d(&missing))
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = Sources::resolve(&specs(&[&empty]), &defaults()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("directory {} holds no files", d(&empty)))
    );
    let txt = write(&dir.path().join("data.txt"), "x");
    let err = Sources::resolve(&specs(&[&txt]), &defaults()).unwrap_err();
    assert!(err.to_string().contains("cannot tell the format"), "{err}");
    // With a format, any file (and every file of a directory) is taken.
    let with = SourceOptions {
        format: Some(Format::Csv),
        ..defaults()
    };
    assert_eq!(
        Sources::resolve(&specs(&[&txt]), &with)
            .unwrap()
            .describe()
            .len(),
        1
    );
    assert_eq!(
        Sources::resolve(&specs(&[dir.path()]), &with)
            .unwrap()
            .describe()
            .len(),
        1
    );
    // PostgreSQL needs exactly one of a table and a query.
    let url = vec!["postgres://u@localhost/db".to_owned()];
    assert!(matches!(
        Sources::resolve(&url, &defaults()),
        Err(LoadError::Usage(_))
    ));
    let both = SourceOptions {
        pg_table: Some("t".into()),
        pg_query: Some("select 1".into()),
        ..defaults()
    };
    assert!(matches!(
        Sources::resolve(&url, &both),
        Err(LoadError::Usage(_))
    ));
    let table = SourceOptions {
        pg_table: Some("public.persons".into()),
        ..defaults()
    };
    let sources = Sources::resolve(&url, &table).unwrap();
    assert_eq!(
        sources.describe(),
        vec!["postgresql: public.persons".to_owned()]
    );
    assert!(
        !format!("{sources:?}").contains("localhost"),
        "the URL is never printed"
    );
    let bad_encoding = SourceOptions {
        csv: CsvOptions {
            encoding: "klingon".into(),
            ..CsvOptions::default()
        },
        ..defaults()
    };
    assert!(matches!(
        Sources::resolve(&specs(&[&txt]), &bad_encoding),
        Err(LoadError::Usage(_))
    ));
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

fn postgres_url() -> Option<String> {
    match std::env::var("DAGR_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("DAGR_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "DAGR_TEST_REQUIRE_POSTGRES=1 but DAGR_TEST_POSTGRES_URL is not set"
            );
            eprintln!(
                "note: DAGR_TEST_POSTGRES_URL is not set; skipping the PostgreSQL test (scripts/postgres start DIR prints one)"
            );
            None
        }
    }
}

/// A dataset with an attribute for every PostgreSQL type the reader maps.
fn pg_types() -> DatasetDefinition {
    use arrow::datatypes::TimeUnit;
    use dagr_engine::Attribute;
    let a = |name: &str, t: DataType| Attribute::new(name, t, name);
    DatasetDefinition {
        name: "pg_types".into(),
        owner: "test".into(),
        description: String::new(),
        primary_key: vec!["id".into()],
        attributes: vec![
            a("id", DataType::Int64),
            a("small", DataType::Int16),
            a("big", DataType::Int64),
            a("narrow", DataType::Int32),
            a("real_v", DataType::Float32),
            a("double_v", DataType::Float64),
            a("amount", DataType::Decimal128(18, 2)),
            a("ratio", DataType::Float64),
            a("flag", DataType::Boolean),
            a("note", DataType::Utf8),
            a("code", DataType::Utf8),
            a("fixed", DataType::Utf8),
            a("label", DataType::Utf8),
            a("guid", DataType::Utf8),
            a("doc", DataType::Utf8),
            a("docb", DataType::Utf8),
            a("born", DataType::Date32),
            a("seen_at", DataType::Timestamp(TimeUnit::Microsecond, None)),
            a(
                "seen_tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
            a("payload", DataType::Binary),
            a("parsed", DataType::Date32),
        ],
    }
    .validated()
    .unwrap()
}

#[tokio::test]
async fn postgres_table_query_types_and_errors() {
    use sqlx::{Connection, Executor};
    let Some(url) = postgres_url() else { return };
    let table = format!("dagr_src_{}", std::process::id());
    let odd = format!("dagr_src_odd_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(sqlx::raw_sql(&format!(
        r#"
            CREATE TABLE public.{table} (
                id int4 PRIMARY KEY, small int2, big int8, narrow int8, real_v float4,
                double_v float8, amount numeric(18, 2), ratio numeric, flag bool, note text,
                code varchar(10), fixed char(5), label name, guid uuid, doc json, docb jsonb,
                born date, seen_at timestamp, seen_tz timestamptz, payload bytea, parsed text
            );
            INSERT INTO public.{table} VALUES
              (1, -32768, 9007199254740993, 2147483647, 1.5, -2.25, 12345678.91, -0.00012,
               true, 'ā č ē', 'V1', 'ab', 'pg_name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
               '{{"a": [1, 2]}}', '{{"b":  true}}', '1990-01-31', '2024-03-01 12:34:56.789012',
               '2024-03-01 12:00:00+02', '\x00ff10', '2020-02-29'),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            CREATE TABLE {odd} (id int4, span interval, flag bool);
            INSERT INTO {odd} VALUES (1, '1 day', true);
            "#
    )))
    .await
    .unwrap();

    let t = Target::new(pg_types(), false);
    let by_table = SourceOptions {
        pg_table: Some(format!("public.{table}")),
        batch_rows: 1,
        ..defaults()
    };
    let from_table = load(std::slice::from_ref(&url), &by_table, &t).await;
    let by_query = SourceOptions {
        pg_query: Some(format!("SELECT * FROM {table} ORDER BY id DESC;")),
        ..defaults()
    };
    let from_query = load(std::slice::from_ref(&url), &by_query, &t).await;
    // A row that does not cast, and a value out of range.
    conn.execute(
        sqlx::raw_sql(&format!(
            "INSERT INTO {table} (id, parsed) VALUES (3, '1990-13-45'); INSERT INTO {table} (id, narrow) VALUES (4, 2147483648);"
        )),
    )
    .await
    .unwrap();
    let ordered = SourceOptions {
        pg_query: Some(format!("SELECT * FROM {table} ORDER BY id")),
        ..defaults()
    };
    let bad_cast = load(std::slice::from_ref(&url), &ordered, &t).await.err();
    let ordered_no_3 = SourceOptions {
        pg_query: Some(format!("SELECT * FROM {table} WHERE id <> 3 ORDER BY id")),
        ..defaults()
    };
    let bad_range = load(std::slice::from_ref(&url), &ordered_no_3, &t)
        .await
        .err();
    // Unsupported and mismatched types.
    let odd_def = DatasetDefinition {
        name: "odd".into(),
        owner: "test".into(),
        description: String::new(),
        primary_key: vec!["id".into()],
        attributes: vec![
            dagr_engine::Attribute::new("id", DataType::Int64, ""),
            dagr_engine::Attribute::new("span", DataType::Utf8, ""),
            dagr_engine::Attribute::new("flag", DataType::Date32, ""),
        ],
    }
    .validated()
    .unwrap();
    let odd_target = Target::new(odd_def, false);
    let odd_table = SourceOptions {
        pg_table: Some(odd.clone()),
        ..defaults()
    };
    let unsupported = load(std::slice::from_ref(&url), &odd_table, &odd_target)
        .await
        .err();
    let odd_query = SourceOptions {
        pg_query: Some(format!("SELECT id, span::text AS span, flag FROM {odd}")),
        ..defaults()
    };
    let mismatched = load(std::slice::from_ref(&url), &odd_query, &odd_target)
        .await
        .err();
    let missing_table = SourceOptions {
        pg_table: Some(format!("{table}_nope")),
        ..defaults()
    };
    let no_table = load(std::slice::from_ref(&url), &missing_table, &t)
        .await
        .err();

    conn.execute(sqlx::raw_sql(&format!(
        "DROP TABLE public.{table}; DROP TABLE {odd};"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();

    let from_table = from_table.unwrap();
    assert_eq!(from_table.batches.len(), 2, "one row per batch");
    assert_eq!(from_table.batches[1].first_row, 2);
    let all = from_table.all(&t);
    let from_query = from_query.unwrap().all(&t);
    let reversed = arrow::compute::take_record_batch(
        &from_query,
        &arrow::array::UInt32Array::from(vec![1, 0]),
    )
    .unwrap();
    assert_eq!(all, reversed, "table and query read the same rows");

    let col = |name: &str| Arc::clone(all.column(all.schema().index_of(name).unwrap()));
    let fmt = |name: &str| {
        let c = col(name);
        arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
            .unwrap()
            .value(0)
            .to_string()
    };
    assert_eq!(fmt("id"), "1");
    assert_eq!(fmt("small"), "-32768");
    assert_eq!(fmt("big"), "9007199254740993");
    assert_eq!(fmt("narrow"), "2147483647");
    assert_eq!(fmt("real_v"), "1.5");
    assert_eq!(fmt("double_v"), "-2.25");
    assert_eq!(fmt("amount"), "12345678.91");
    assert_eq!(fmt("ratio"), "-0.00012");
    assert_eq!(fmt("flag"), "true");
    assert_eq!(fmt("note"), "ā č ē");
    assert_eq!(fmt("code"), "V1");
    assert_eq!(fmt("fixed"), "ab   ");
    assert_eq!(fmt("label"), "pg_name");
    assert_eq!(fmt("guid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(fmt("doc"), r#"{"a": [1, 2]}"#);
    assert_eq!(fmt("docb"), r#"{"b": true}"#);
    assert_eq!(fmt("born"), "1990-01-31");
    assert_eq!(fmt("seen_at"), "2024-03-01T12:34:56.789012");
    assert_eq!(fmt("seen_tz"), "2024-03-01T10:00:00Z");
    assert_eq!(fmt("payload"), "00ff10");
    assert_eq!(fmt("parsed"), "2020-02-29");
    for f in all.schema().fields().iter().skip(1) {
        let c = col(f.name());
        assert!(c.is_null(1), "`{}` NULL is null", f.name());
    }

    let label = format!("postgresql: SELECT * FROM {table} ORDER BY id");
    assert_eq!(
        bad_cast.unwrap().to_string(),
        format!("{label}, row 3, column `parsed`: `1990-13-45` is not a Date32")
    );
    let label = format!("postgresql: SELECT * FROM {table} WHERE id <> 3 ORDER BY id");
    assert_eq!(
        bad_range.unwrap().to_string(),
        format!("{label}, row 3, column `narrow`: `2147483648` (Int64) does not fit Int32")
    );
    assert_eq!(
        unsupported.unwrap().to_string(),
        format!(
            "postgresql: {odd}, column `span`: column `span` has PostgreSQL type interval, which cannot be read; convert it in a query (e.g. `span::text`)"
        )
    );
    let mismatched = mismatched.unwrap().to_string();
    assert!(
        mismatched.ends_with(
            "column `flag`: column `flag` has PostgreSQL type bool; the dataset defines Date32"
        ),
        "{mismatched}"
    );
    let no_table = no_table.unwrap();
    assert!(matches!(no_table, LoadError::Input { .. }), "{no_table:?}");
    assert!(
        no_table.to_string().contains("does not exist"),
        "{no_table}"
    );
}

#[tokio::test]
async fn postgres_timestamps_keep_their_precision_and_zone() {
    let Some(url) = postgres_url() else { return };
    let t = moments();
    let query = |at: &str, at_utc: &str| SourceOptions {
        pg_query: Some(format!(
            "SELECT 1::int8 AS id, {at} AS at, {at_utc} AS at_utc, '2024-03-01'::date AS day, \
             '12:34:56.789' AS time"
        )),
        ..defaults()
    };
    // The label quotes the query, shortened.
    let ends = |err: LoadError, end: &str| {
        let err = err.to_string();
        assert!(
            err.starts_with("postgresql: SELECT 1::int8 AS id,") && err.ends_with(end),
            "{err}"
        );
    };
    // timestamptz into a zoned attribute of a coarser unit: whole seconds convert.
    let exact = query(
        "'2024-03-01 12:34:56.789012'::timestamp",
        "'2024-03-01 12:00:00+02'::timestamptz",
    );
    let all = load(std::slice::from_ref(&url), &exact, &t)
        .await
        .unwrap()
        .all(&t);
    let fmt = |name: &str| {
        let c = all.column(all.schema().index_of(name).unwrap());
        arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
            .unwrap()
            .value(0)
            .to_string()
    };
    assert_eq!(fmt("at"), "2024-03-01T12:34:56.789012");
    assert_eq!(fmt("at_utc"), "2024-03-01T10:00:00Z");
    // A fraction of a second is refused at its row.
    let fraction = query(
        "'2024-03-01 12:34:56'::timestamp",
        "'2024-03-01 12:00:00.5+02'::timestamptz",
    );
    let err = load(std::slice::from_ref(&url), &fraction, &t)
        .await
        .err()
        .unwrap();
    ends(
        err,
        ", row 1, column `at_utc`: `2024-03-01T10:00:00.500Z` (Timestamp(µs, \"UTC\")) is more precise than Timestamp(s, \"UTC\") holds",
    );
    // A time zone is neither dropped nor added.
    let dropped = query(
        "'2024-03-01 12:34:56+02'::timestamptz",
        "'2024-03-01 12:00:00+02'::timestamptz",
    );
    let err = load(std::slice::from_ref(&url), &dropped, &t)
        .await
        .err()
        .unwrap();
    ends(
        err,
        ", column `at`: column `at` has PostgreSQL type timestamptz; the dataset defines Timestamp(µs)",
    );
    let added = query(
        "'2024-03-01 12:34:56'::timestamp",
        "'2024-03-01 12:00:00'::timestamp",
    );
    let err = load(std::slice::from_ref(&url), &added, &t)
        .await
        .err()
        .unwrap();
    ends(
        err,
        ", column `at_utc`: column `at_utc` has PostgreSQL type timestamp; the dataset defines Timestamp(s, \"UTC\")",
    );
}

//! Answers to the Flight SQL metadata commands (`GetCatalogs`, `GetDbSchemas`, `GetTables`,
//! `GetTableTypes`, `GetPrimaryKeys`, `GetSqlInfo`), built with arrow-flight's builders.
//!
//! The catalog a caller sees is the one its SQL queries run against: catalog [`CATALOG`],
//! schema [`SCHEMA`], and one table of type [`TABLE_TYPE`] per dataset the caller may see
//! that has a snapshot loaded. A table's schema is always the caller's *masked* schema (only
//! the granted attributes), never the dataset's full one.
//!
//! Everything here is a pure function of the engine's state and the command: no I/O, no
//! tonic. The service calls these from `GetFlightInfo` (for the schema, via the `*_schema`
//! functions) and `DoGet` (for the data).

use std::sync::{Arc, LazyLock};

use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTableTypes,
    CommandGetTables, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, SqlSupportedGroupBy, SqlSupportedSubqueries,
    SqlSupportedTransaction, SqlSupportedUnions, SqlTransactionIsolationLevel,
};
use dagr_engine::arrow::array::{
    ArrayRef, AsArray, Int32Array, RecordBatch, StringArray, StringBuilder,
};
use dagr_engine::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dagr_engine::definition::{MAX_ATTRIBUTES, MAX_NAME_LEN};
use dagr_engine::query::MAX_SQL_LEN;
use dagr_engine::{Access, Engine, Error, MaskedView, Result};

/// The one catalog callers see (the SQL entry point's default catalog).
pub const CATALOG: &str = "dagr";
/// The one schema callers see, inside [`CATALOG`].
pub const SCHEMA: &str = "public";
/// The type of every table (a dataset is a table; there are no views or system tables).
pub const TABLE_TYPE: &str = "TABLE";

/// A builder failure on data we built ourselves is a server fault.
fn internal(e: FlightError) -> Error {
    Error::Internal(format!("building a Flight SQL metadata answer: {e}"))
}

/// Whether a dataset appears in the caller's catalog: the caller may see it and it has a
/// snapshot. The same rule as the SQL catalog of [`Engine::query`].
fn listed(engine: &Engine, access: &Access, name: &str) -> bool {
    access.can_see(name) && matches!(engine.current_opt(name), Ok(Some(_)))
}

/// The caller's masked view of a dataset, or `None` when the caller cannot read it (the
/// dataset is gone or has no snapshot, or its grants resolve to nothing on this snapshot).
fn view(engine: &Engine, access: &Access, name: &str) -> Result<Option<MaskedView>> {
    match engine.view(name, access) {
        Ok(v) => Ok(Some(v)),
        Err(
            Error::DatasetNotFound(_)
            | Error::NoSnapshot(_)
            | Error::AccessDenied(_)
            | Error::InvalidRowScope { .. },
        ) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The schema of a `GetCatalogs` answer (`catalog_name utf8 not null`).
pub fn catalogs_schema() -> SchemaRef {
    GetCatalogsBuilder::new().schema()
}

/// `GetCatalogs`: the one catalog [`CATALOG`].
pub fn catalogs(_cmd: &CommandGetCatalogs) -> Result<RecordBatch> {
    let mut builder = GetCatalogsBuilder::new();
    builder.append(CATALOG);
    builder.build().map_err(internal)
}

/// The schema of a `GetDbSchemas` answer (`catalog_name utf8`, `db_schema_name utf8 not
/// null`).
pub fn db_schemas_schema() -> SchemaRef {
    GetDbSchemasBuilder::new(None::<String>, None::<String>).schema()
}

/// `GetDbSchemas`: schema [`SCHEMA`] of catalog [`CATALOG`], when it matches the command's
/// catalog (exact) and schema filter pattern (SQL `LIKE`: `%` any substring, `_` one
/// character).
pub fn db_schemas(cmd: &CommandGetDbSchemas) -> Result<RecordBatch> {
    let mut builder = GetDbSchemasBuilder::new(
        cmd.catalog.as_deref(),
        cmd.db_schema_filter_pattern.as_deref(),
    );
    builder.append(CATALOG, SCHEMA);
    builder.build().map_err(internal)
}

/// A `GetTables` builder that applies no filter.
fn unfiltered_tables(include_schema: bool) -> GetTablesBuilder {
    GetTablesBuilder::new(
        None::<String>,
        None::<String>,
        None::<String>,
        std::iter::empty::<String>(),
        include_schema,
    )
}

/// The schema of a `GetTables` answer: `catalog_name utf8`, `db_schema_name utf8`,
/// `table_name utf8 not null`, `table_type utf8 not null`, and with `include_schema` also
/// `table_schema binary not null` (the table's Arrow schema as an IPC message).
pub fn tables_schema(include_schema: bool) -> SchemaRef {
    unfiltered_tables(include_schema).schema()
}

/// `GetTables`: the datasets the caller may see that have a snapshot, as tables of type
/// [`TABLE_TYPE`] in [`CATALOG`].[`SCHEMA`], filtered by the command's catalog (exact),
/// schema and table name patterns (SQL `LIKE`) and table types, sorted by name.
///
/// With `include_schema`, each table carries the caller's masked schema: only the granted
/// attributes, and nullable where the caller's grants hide some of a column's cells. A
/// dataset whose masked view cannot be resolved at that moment (replaced or emptied since
/// it was listed, or grants that resolve to nothing on its snapshot) is left out.
pub fn tables(engine: &Engine, access: &Access, cmd: &CommandGetTables) -> Result<RecordBatch> {
    let mut builder = GetTablesBuilder::new(
        cmd.catalog.as_deref(),
        cmd.db_schema_filter_pattern.as_deref(),
        cmd.table_name_filter_pattern.as_deref(),
        cmd.table_types.iter().map(String::as_str),
        false,
    );
    let no_schema = Schema::empty();
    for name in engine.dataset_names() {
        if listed(engine, access, &name) {
            builder
                .append(CATALOG, SCHEMA, &name, TABLE_TYPE, &no_schema)
                .map_err(internal)?;
        }
    }
    let listing = builder.build().map_err(internal)?;
    if !cmd.include_schema {
        return Ok(listing);
    }
    // Resolve masks only for the tables that passed the filters.
    let mut builder = unfiltered_tables(true);
    for name in listing.column(2).as_string::<i32>().iter().flatten() {
        if let Some(view) = view(engine, access, name)? {
            builder
                .append(CATALOG, SCHEMA, name, TABLE_TYPE, view.mask.schema())
                .map_err(internal)?;
        }
    }
    builder.build().map_err(internal)
}

/// The schema of a `GetTableTypes` answer (`table_type utf8 not null`).
pub fn table_types_schema() -> SchemaRef {
    CommandGetTableTypes {}.into_builder().schema()
}

/// `GetTableTypes`: the one type [`TABLE_TYPE`].
pub fn table_types() -> Result<RecordBatch> {
    let mut builder = CommandGetTableTypes {}.into_builder();
    builder.append(TABLE_TYPE);
    builder.build().map_err(internal)
}

static PRIMARY_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// The schema of a `GetPrimaryKeys` answer, as Flight SQL defines it: `catalog_name utf8`,
/// `db_schema_name utf8`, `table_name utf8 not null`, `column_name utf8 not null`,
/// `key_name utf8`, `key_sequence int32 not null`.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::clone(&PRIMARY_KEYS_SCHEMA)
}

/// `GetPrimaryKeys`: the primary-key columns of one table, in key order (`key_sequence`
/// from 1; `key_name` is null, keys have no names).
///
/// The answer is empty unless the table is one the caller can read (as in [`tables`]), the
/// command's catalog and schema (when given) are [`CATALOG`] and [`SCHEMA`], and every key
/// column is granted to the caller: a caller never learns the name of an attribute it is not
/// granted, and a partial key would not identify records.
pub fn primary_keys(
    engine: &Engine,
    access: &Access,
    cmd: &CommandGetPrimaryKeys,
) -> Result<RecordBatch> {
    let schema = primary_keys_schema();
    let in_scope = cmd.catalog.as_deref().is_none_or(|c| c == CATALOG)
        && cmd.db_schema.as_deref().is_none_or(|s| s == SCHEMA);
    if !in_scope || !listed(engine, access, &cmd.table) {
        return Ok(RecordBatch::new_empty(schema));
    }
    let Some(view) = view(engine, access, &cmd.table)? else {
        return Ok(RecordBatch::new_empty(schema));
    };
    if !view.mask.key_granted() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let key = &view.snapshot.definition().primary_key;
    let n = key.len();
    let repeat = |value: &str| {
        let mut b = StringBuilder::with_capacity(n, n * value.len());
        for _ in 0..n {
            b.append_value(value);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        repeat(CATALOG),
        repeat(SCHEMA),
        repeat(&cmd.table),
        Arc::new(StringArray::from_iter_values(key)),
        Arc::new(StringArray::new_null(n)),
        Arc::new(Int32Array::from_iter_values((1..).take(n))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// What the server tells Flight SQL clients about itself (`GetSqlInfo`), built once; the
/// service keeps it and answers each `CommandGetSqlInfo` with
/// `cmd.into_builder(&info).build()` (or [`SqlInfoData::record_batch`]), whose schema is
/// [`SqlInfoData::schema`].
///
/// It covers what ADBC and JDBC clients ask at connect: server name and version, Arrow
/// version, read-only, SQL yes, Substrait no, no transactions, no cancellation, no bulk
/// ingestion, no DDL; and how DataFusion's SQL behaves: identifiers quoted with `"`,
/// unquoted identifiers folded to lower case, nulls sorted high, full outer joins,
/// `UNION`/`UNION ALL`, subqueries, and DAGR's own limits on name and statement lengths.
pub fn sql_info() -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    // The server.
    b.append(SqlInfo::FlightSqlServerName, "DAGR");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    // Definitions: none through SQL.
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    // Identifiers and names.
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    // Quoted identifiers keep their case; the enumeration has no "sensitive" value.
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // Query language.
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(
        SqlInfo::SqlSupportedGroupBy,
        bits(&[
            SqlSupportedGroupBy::SqlGroupByUnrelated as i32,
            SqlSupportedGroupBy::SqlGroupByBeyondSelect as i32,
        ]),
    );
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(
        SqlInfo::SqlSupportedSubqueries,
        bits(&[
            SqlSupportedSubqueries::SqlSubqueriesInComparisons as i32,
            SqlSupportedSubqueries::SqlSubqueriesInExists as i32,
            SqlSupportedSubqueries::SqlSubqueriesInIns as i32,
        ]),
    );
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(
        SqlInfo::SqlSupportedUnions,
        bits(&[
            SqlSupportedUnions::SqlUnion as i32,
            SqlSupportedUnions::SqlUnionAll as i32,
        ]),
    );
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    // Transactions: none.
    b.append(
        SqlInfo::SqlDefaultTransactionIsolation,
        SqlTransactionIsolationLevel::SqlTransactionNone as i32,
    );
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0_i32);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    // Limits.
    b.append(SqlInfo::SqlMaxStatementLength, as_i64(MAX_SQL_LEN));
    b.append(SqlInfo::SqlMaxColumnNameLength, as_i64(MAX_NAME_LEN));
    b.append(SqlInfo::SqlMaxTableNameLength, as_i64(MAX_NAME_LEN));
    b.append(SqlInfo::SqlMaxColumnsInTable, as_i64(MAX_ATTRIBUTES));
    b.build()
        .expect("the static SQL info has one value of a known type per name")
}

/// An `int32` bitmask with the given bit positions set.
fn bits(positions: &[i32]) -> i32 {
    positions.iter().fold(0, |acc, p| acc | (1 << p))
}

/// A limit as Flight SQL's `int64`.
fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow_flight::IpcMessage;
    use arrow_flight::sql::CommandGetSqlInfo;
    use dagr_engine::arrow::array::Int64Array;
    use dagr_engine::arrow::util::pretty::pretty_format_batches;
    use dagr_engine::{Attribute, DatasetDefinition, EngineConfig, Grant};

    use super::*;

    fn people_def() -> DatasetDefinition {
        DatasetDefinition {
            name: "people".into(),
            owner: "PMLP".into(),
            description: "test persons".into(),
            primary_key: vec!["personal_code".into()],
            attributes: vec![
                Attribute::new("personal_code", DataType::Utf8, "code").personal("personal_code"),
                Attribute::new("municipality", DataType::Utf8, "where").required(),
                Attribute::new("income", DataType::Int64, "EUR").personal("personal_code"),
                Attribute::new("secret", DataType::Utf8, "never granted"),
            ],
        }
    }

    /// Keyed by (country, reg_no): key order differs from column order.
    fn vehicles_def() -> DatasetDefinition {
        DatasetDefinition {
            name: "vehicles".into(),
            owner: "CSDD".into(),
            description: "test vehicles".into(),
            primary_key: vec!["country".into(), "reg_no".into()],
            attributes: vec![
                Attribute::new("reg_no", DataType::Utf8, "plate"),
                Attribute::new("make", DataType::Utf8, "make"),
                Attribute::new("country", DataType::Utf8, "registered in"),
            ],
        }
    }

    /// Defined, never loaded: in nobody's catalog.
    fn pending_def() -> DatasetDefinition {
        DatasetDefinition {
            name: "pending".into(),
            owner: "VID".into(),
            description: String::new(),
            primary_key: vec!["id".into()],
            attributes: vec![Attribute::new("id", DataType::Int64, "id")],
        }
    }

    fn strings(values: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values.iter().copied()))
    }

    async fn engine(dir: &std::path::Path) -> Engine {
        let engine = Engine::open_dir(dir, EngineConfig::default())
            .await
            .unwrap();
        for def in [people_def(), vehicles_def(), pending_def()] {
            engine.create_dataset(def).await.unwrap();
        }
        let people = RecordBatch::try_new(
            engine.definition("people").unwrap().arrow_schema(),
            vec![
                strings(&["P1", "P2", "P3"]),
                strings(&["Rīga", "Ogre", "Ogre"]),
                Arc::new(Int64Array::from(vec![10, 20, 30])),
                strings(&["s1", "s2", "s3"]),
            ],
        )
        .unwrap();
        engine.load_batches("people", vec![people]).await.unwrap();
        let vehicles = RecordBatch::try_new(
            engine.definition("vehicles").unwrap().arrow_schema(),
            vec![
                strings(&["AB1", "AB1"]),
                strings(&["Volvo", "Saab"]),
                strings(&["LV", "EE"]),
            ],
        )
        .unwrap();
        engine
            .load_batches("vehicles", vec![vehicles])
            .await
            .unwrap();
        engine
    }

    fn access(list: Vec<(&str, Vec<Grant>)>) -> Access {
        Access::Grants(
            list.into_iter()
                .map(|(d, g)| (d.to_owned(), g))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    /// Part of `people`: the key everywhere, the municipality only on Ogre's rows; no
    /// `vehicles` (a grant of nothing), no `pending`.
    fn masked() -> Access {
        access(vec![
            (
                "people",
                vec![
                    Grant::attributes(["personal_code"]),
                    Grant::attributes(["municipality"]).with_row_scope("municipality = 'Ogre'"),
                ],
            ),
            ("vehicles", vec![Grant::attributes(Vec::<String>::new())]),
        ])
    }

    fn table(batch: &RecordBatch) -> Vec<String> {
        pretty_format_batches(std::slice::from_ref(batch))
            .unwrap()
            .to_string()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn assert_table(batch: &RecordBatch, expected: &[&str]) {
        assert_eq!(table(batch), expected, "\n{}", table(batch).join("\n"));
    }

    fn get_tables(
        catalog: Option<&str>,
        schema: Option<&str>,
        name: Option<&str>,
        types: &[&str],
        include_schema: bool,
    ) -> CommandGetTables {
        CommandGetTables {
            catalog: catalog.map(Into::into),
            db_schema_filter_pattern: schema.map(Into::into),
            table_name_filter_pattern: name.map(Into::into),
            table_types: types.iter().map(|t| (*t).to_owned()).collect(),
            include_schema,
        }
    }

    fn names(batch: &RecordBatch) -> Vec<&str> {
        batch
            .column_by_name("table_name")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect()
    }

    fn get_keys(catalog: Option<&str>, schema: Option<&str>, table: &str) -> CommandGetPrimaryKeys {
        CommandGetPrimaryKeys {
            catalog: catalog.map(Into::into),
            db_schema: schema.map(Into::into),
            table: table.into(),
        }
    }

    #[test]
    fn one_catalog_with_one_schema() {
        let c = catalogs(&CommandGetCatalogs {}).unwrap();
        assert_eq!(c.schema(), catalogs_schema());
        assert_table(
            &c,
            &[
                "+--------------+",
                "| catalog_name |",
                "+--------------+",
                "| dagr         |",
                "+--------------+",
            ],
        );
        let s = |catalog: Option<&str>, pattern: Option<&str>| {
            let b = db_schemas(&CommandGetDbSchemas {
                catalog: catalog.map(Into::into),
                db_schema_filter_pattern: pattern.map(Into::into),
            })
            .unwrap();
            assert_eq!(b.schema(), db_schemas_schema());
            b
        };
        assert_table(
            &s(None, None),
            &[
                "+--------------+----------------+",
                "| catalog_name | db_schema_name |",
                "+--------------+----------------+",
                "| dagr         | public         |",
                "+--------------+----------------+",
            ],
        );
        assert_eq!(s(Some("dagr"), Some("pub%")).num_rows(), 1);
        assert_eq!(s(None, Some("p_blic")).num_rows(), 1);
        assert_eq!(s(None, Some("x%")).num_rows(), 0);
        assert_eq!(s(Some("other"), None).num_rows(), 0);
        assert_eq!(s(Some(""), None).num_rows(), 0);
    }

    #[test]
    fn one_table_type() {
        let t = table_types().unwrap();
        assert_eq!(t.schema(), table_types_schema());
        assert_table(
            &t,
            &[
                "+------------+",
                "| table_type |",
                "+------------+",
                "| TABLE      |",
                "+------------+",
            ],
        );
    }

    #[tokio::test]
    async fn tables_lists_only_what_the_caller_reads_with_its_masked_schema() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;

        let all = tables(
            &engine,
            &masked(),
            &get_tables(None, None, None, &[], false),
        )
        .unwrap();
        assert_eq!(all.schema(), tables_schema(false));
        assert_table(
            &all,
            &[
                "+--------------+----------------+------------+------------+",
                "| catalog_name | db_schema_name | table_name | table_type |",
                "+--------------+----------------+------------+------------+",
                "| dagr         | public         | people     | TABLE      |",
                "+--------------+----------------+------------+------------+",
            ],
        );

        let with_schema =
            tables(&engine, &masked(), &get_tables(None, None, None, &[], true)).unwrap();
        assert_eq!(with_schema.schema(), tables_schema(true));
        assert_eq!(names(&with_schema), ["people"]);
        let bytes = with_schema
            .column_by_name("table_schema")
            .unwrap()
            .as_binary::<i32>()
            .value(0);
        let schema = Schema::try_from(IpcMessage(bytes::Bytes::copy_from_slice(bytes))).unwrap();
        // Only the granted columns; the municipality is hidden on some rows, so nullable.
        assert_eq!(
            schema,
            Schema::new(vec![
                Field::new("personal_code", DataType::Utf8, false),
                Field::new("municipality", DataType::Utf8, true),
            ])
        );

        // Unrestricted: every loaded dataset, never the one without a snapshot.
        let everything = tables(
            &engine,
            &Access::Unrestricted,
            &get_tables(None, None, None, &[], true),
        )
        .unwrap();
        assert_eq!(names(&everything), ["people", "vehicles"]);

        // Nothing granted at all.
        let none = tables(
            &engine,
            &access(vec![]),
            &get_tables(None, None, None, &[], true),
        )
        .unwrap();
        assert_eq!(none.num_rows(), 0);
        assert_eq!(none.schema(), tables_schema(true));
    }

    #[tokio::test]
    async fn tables_honours_the_filters() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let all = Access::Unrestricted;
        let list = |cmd: CommandGetTables| names(&tables(&engine, &all, &cmd).unwrap()).len();
        let found = |cmd: CommandGetTables| {
            let b = tables(&engine, &all, &cmd).unwrap();
            names(&b).into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(
            found(get_tables(None, None, Some("veh%"), &[], false)),
            ["vehicles"]
        );
        assert_eq!(
            found(get_tables(None, None, Some("p_ople"), &[], true)),
            ["people"]
        );
        assert_eq!(list(get_tables(None, None, Some("pending"), &[], false)), 0);
        assert_eq!(
            list(get_tables(Some("dagr"), Some("pub%"), None, &[], false)),
            2
        );
        assert_eq!(
            list(get_tables(
                Some("dagr"),
                Some("public"),
                None,
                &["TABLE"],
                true
            )),
            2
        );
        assert_eq!(
            list(get_tables(None, None, None, &["VIEW", "TABLE"], false)),
            2
        );
        assert_eq!(list(get_tables(None, None, None, &["VIEW"], false)), 0);
        assert_eq!(list(get_tables(None, None, None, &["VIEW"], true)), 0);
        assert_eq!(list(get_tables(Some("other"), None, None, &[], false)), 0);
        assert_eq!(
            list(get_tables(
                None,
                Some("information_schema"),
                None,
                &[],
                true
            )),
            0
        );
    }

    #[tokio::test]
    async fn primary_keys_in_key_order_only_for_readable_tables_with_a_granted_key() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let keys = |access: &Access, cmd: CommandGetPrimaryKeys| {
            let b = primary_keys(&engine, access, &cmd).unwrap();
            assert_eq!(b.schema(), primary_keys_schema());
            b
        };

        assert_table(
            &keys(&Access::Unrestricted, get_keys(None, None, "vehicles")),
            &[
                "+--------------+----------------+------------+-------------+----------+--------------+",
                "| catalog_name | db_schema_name | table_name | column_name | key_name | key_sequence |",
                "+--------------+----------------+------------+-------------+----------+--------------+",
                "| dagr         | public         | vehicles   | country     |          | 1            |",
                "| dagr         | public         | vehicles   | reg_no      |          | 2            |",
                "+--------------+----------------+------------+-------------+----------+--------------+",
            ],
        );
        assert_table(
            &keys(&masked(), get_keys(Some("dagr"), Some("public"), "people")),
            &[
                "+--------------+----------------+------------+---------------+----------+--------------+",
                "| catalog_name | db_schema_name | table_name | column_name   | key_name | key_sequence |",
                "+--------------+----------------+------------+---------------+----------+--------------+",
                "| dagr         | public         | people     | personal_code |          | 1            |",
                "+--------------+----------------+------------+---------------+----------+--------------+",
            ],
        );

        let empty = |access: &Access, cmd: CommandGetPrimaryKeys| {
            assert_eq!(keys(access, cmd).num_rows(), 0);
        };
        // Not visible to the caller, not loaded, or absent.
        empty(&masked(), get_keys(None, None, "vehicles"));
        empty(&Access::Unrestricted, get_keys(None, None, "pending"));
        empty(&Access::Unrestricted, get_keys(None, None, "nothing"));
        // Another catalog or schema.
        empty(
            &Access::Unrestricted,
            get_keys(Some("other"), None, "people"),
        );
        empty(
            &Access::Unrestricted,
            get_keys(None, Some("other"), "people"),
        );
        // Visible, but the key column is not granted: its name is not revealed.
        let no_key = access(vec![("people", vec![Grant::attributes(["income"])])]);
        empty(&no_key, get_keys(None, None, "people"));
        // Part of a composite key is not a key.
        let half_key = access(vec![(
            "vehicles",
            vec![Grant::attributes(["reg_no", "make"])],
        )]);
        empty(&half_key, get_keys(None, None, "vehicles"));
    }

    #[test]
    fn sql_info_answers_what_clients_ask_at_connect() {
        let info = sql_info();
        let asked = [
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::FlightSqlServerTransaction,
            SqlInfo::SqlDdlTable,
            SqlInfo::SqlIdentifierQuoteChar,
        ];
        let batch = CommandGetSqlInfo {
            info: asked.iter().map(|i| *i as u32).collect(),
        }
        .into_builder(&info)
        .build()
        .unwrap();
        assert_eq!(batch.schema(), info.schema());
        assert_table(
            &batch,
            &[
                "+-----------+---------------------+",
                "| info_name | value               |",
                "+-----------+---------------------+",
                "| 0         | {string_value=DAGR} |",
                "| 3         | {bool_value=true}   |",
                "| 8         | {int32_bitmask=0}   |",
                "| 502       | {bool_value=false}  |",
                "| 504       | {string_value=\"}    |",
                "+-----------+---------------------+",
            ],
        );
        let version = info
            .record_batch([SqlInfo::FlightSqlServerVersion as u32])
            .unwrap();
        assert_eq!(version.num_rows(), 1);
        assert!(
            table(&version)
                .join("\n")
                .contains(env!("CARGO_PKG_VERSION"))
        );
        // Everything at once when nothing is named.
        assert!(info.record_batch(None).unwrap().num_rows() > 40);
    }
}

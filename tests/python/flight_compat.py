"""Client compatibility of DAGR's Arrow Flight / Flight SQL endpoint with the Python clients.

    python flight_compat.py URI TOKEN BANK_TOKEN [GRANTED_COLUMNS [RIGA_TOKEN]]

URI is the Flight endpoint (grpc://127.0.0.1:PORT), TOKEN a token that reads `persons` whole
(the demo's PMLP provider), BANK_TOKEN a consumer with a partial agreement on `persons`, and
GRANTED_COLUMNS the comma-separated attributes of that agreement (default: the demo's BANKA
agreement). RIGA_TOKEN, if given, is a consumer whose two agreements on `persons` grant
some columns on Rīga's rows only and the key and municipality on every row: the raw buffers
it receives must not carry the hidden cells. Drives the server with the ADBC Flight SQL driver (DB-API) and with pyarrow.flight,
prints one line per check and `N passed, M failed` as the last line; exits 1 on any failure.
Run it with the environment made by scripts/python-env.
"""

import struct
import sys
import traceback

import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions
import pyarrow as pa
import pyarrow.flight as flight

CATALOG = "dagr"
SCHEMA = "public"
DATASET = "persons"
# The attributes of the demo's BANKA consumer agreement on `persons`.
DEMO_BANK_COLUMNS = "personal_code,given_name,family_name,birth_date,declared_address_code"
# No call of a healthy local server takes this long; a hang becomes a failure, not a stuck test.
TIMEOUT_S = 60
# Reads of personal data must declare their purpose (x-dagr-purpose).
PURPOSE = "client compatibility test"


def adbc_connect(uri, token):
    """An ADBC DB-API connection that logs in through Handshake with basic credentials."""
    return flightsql.connect(
        uri,
        db_kwargs={
            "username": "token",
            "password": token,
            DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + "x-dagr-purpose": PURPOSE,
            DatabaseOptions.TIMEOUT_QUERY.value: str(TIMEOUT_S),
            DatabaseOptions.TIMEOUT_FETCH.value: str(TIMEOUT_S),
            DatabaseOptions.TIMEOUT_UPDATE.value: str(TIMEOUT_S),
        },
        autocommit=True,  # read-only server: no transactions to ask about
    )


def flight_login(uri, token):
    """A pyarrow.flight client and call options carrying the bearer token from Handshake."""
    client = flight.FlightClient(uri)
    header = client.authenticate_basic_token(
        "token", token, flight.FlightCallOptions(timeout=TIMEOUT_S)
    )
    options = flight.FlightCallOptions(
        headers=[header, (b"x-dagr-purpose", PURPOSE.encode())], timeout=TIMEOUT_S
    )
    return client, header, options


def fetch_all(client, info, options):
    """Every endpoint's stream of a FlightInfo, as one table."""
    tables = [client.do_get(ep.ticket, options).read_all() for ep in info.endpoints]
    if not tables:
        raise AssertionError("the FlightInfo has no endpoints")
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


class Checks:
    def __init__(self, uri, token, bank_token, granted, riga_token=None):
        self.riga_token = riga_token
        self.uri = uri
        self.token = token
        self.bank_token = bank_token
        self.granted = granted
        self.state = {}

    def need(self, key):
        if key not in self.state:
            raise AssertionError(f"skipped: an earlier check did not provide {key}")
        return self.state[key]

    # --- ADBC Flight SQL driver (DB-API) with the full-access token ---

    def adbc_connect_with_handshake(self):
        conn = adbc_connect(self.uri, self.token)
        self.state["conn"] = conn
        return "connected with username/password (Handshake)"

    def adbc_get_objects_lists_persons(self):
        conn = self.need("conn")
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = {
            (cat["catalog_name"], sch["db_schema_name"], tab["table_name"])
            for cat in objects
            for sch in cat["catalog_db_schemas"] or []
            for tab in sch["db_schema_tables"] or []
        }
        expect(
            (CATALOG, SCHEMA, DATASET) in tables,
            f"{CATALOG}.{SCHEMA}.{DATASET} not among the tables: {sorted(tables)}",
        )
        return f"{len(tables)} tables: " + ", ".join(
            ".".join(t) for t in sorted(tables)
        )

    def adbc_get_table_schema(self):
        conn = self.need("conn")
        schema = conn.adbc_get_table_schema(
            DATASET, catalog_filter=CATALOG, db_schema_filter=SCHEMA
        )
        expect(len(schema) > 0, "empty schema")
        expect(
            "personal_code" in schema.names,
            f"no personal_code in the schema: {schema.names}",
        )
        self.state["full_columns"] = list(schema.names)
        return f"{len(schema)} columns: {', '.join(schema.names)}"

    def adbc_count_query(self):
        conn = self.need("conn")
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {DATASET}")
            rows = cur.fetchall()
        expect(len(rows) == 1 and len(rows[0]) == 1, f"unexpected result {rows!r}")
        count = rows[0][0]
        expect(isinstance(count, int) and count > 0, f"count(*) = {count!r}")
        self.state["count"] = count
        return f"count(*) = {count}"

    def adbc_query_arrow(self):
        conn = self.need("conn")
        with conn.cursor() as cur:
            cur.execute(f"SELECT personal_code FROM {DATASET} LIMIT 5")
            table = cur.fetch_arrow_table()
        expect(table.num_rows == 5, f"LIMIT 5 gave {table.num_rows} rows")
        expect(table.column_names == ["personal_code"], f"columns {table.column_names}")
        self.state["code"] = table.column(0)[3].as_py()
        return f"5 rows as Arrow; picked personal_code {self.state['code']}"

    def adbc_prepared_lookup(self):
        conn = self.need("conn")
        code = self.need("code")
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT * FROM {DATASET} WHERE personal_code = ?", parameters=(code,)
            )
            table = cur.fetch_arrow_table()
        expect(table.num_rows == 1, f"lookup of {code} gave {table.num_rows} rows")
        expect(
            table.column("personal_code")[0].as_py() == code,
            f"lookup returned {table.column('personal_code')[0]}",
        )
        full = self.state.get("full_columns")
        if full is not None:
            expect(
                table.column_names == full,
                f"lookup columns {table.column_names} differ from the table schema {full}",
            )
        return f"1 row with {table.num_columns} columns for {code}"

    def adbc_bad_sql_is_an_error(self):
        conn = self.need("conn")
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT no_such_column FROM {DATASET}")
                cur.fetchall()
        except flightsql.InternalError as e:
            raise AssertionError(f"bad SQL reported as a server fault: {e}") from e
        except flightsql.Error as e:
            return f"{type(e).__name__}: {first_line(e)}"
        raise AssertionError("a query naming an unknown column succeeded")

    # --- pyarrow.flight with the full-access token ---

    def flight_handshake(self):
        client, header, options = flight_login(self.uri, self.token)
        name, value = (x.decode() if isinstance(x, bytes) else x for x in header)
        expect(name.lower() == "authorization", f"header name {name!r}")
        expect(value.startswith("Bearer "), f"header value {value[:16]!r}...")
        self.state["client"] = client
        self.state["options"] = options
        return "authenticate_basic_token gave an authorization: Bearer header"

    def flight_bad_password_is_refused(self):
        client = flight.FlightClient(self.uri)
        try:
            client.authenticate_basic_token(
                "token", "not-a-dagr-token", flight.FlightCallOptions(timeout=TIMEOUT_S)
            )
        except flight.FlightUnauthenticatedError as e:
            return f"FlightUnauthenticatedError: {first_line(e)}"
        finally:
            client.close()
        raise AssertionError("Handshake accepted a wrong password")

    def flight_list_flights(self):
        client, options = self.need("client"), self.need("options")
        paths = [
            "/".join(p.decode() if isinstance(p, bytes) else p for p in i.descriptor.path)
            for i in client.list_flights(options=options)
        ]
        expect(DATASET in paths, f"{DATASET} not among the flights {paths}")
        return f"{len(paths)} flights: {', '.join(sorted(paths))}"

    def flight_do_get_persons(self):
        client, options = self.need("client"), self.need("options")
        info = client.get_flight_info(flight.FlightDescriptor.for_path(DATASET), options)
        table = fetch_all(client, info, options)
        expect(
            table.num_rows == info.total_records,
            f"do_get gave {table.num_rows} rows, total_records is {info.total_records}",
        )
        count = self.state.get("count")
        if count is not None:
            expect(
                table.num_rows == count,
                f"do_get gave {table.num_rows} rows, count(*) is {count}",
            )
        expect(
            table.schema.names == info.schema.names,
            f"stream columns {table.schema.names} differ from FlightInfo {info.schema.names}",
        )
        return (
            f"{len(info.endpoints)} endpoint(s), {table.num_rows} rows "
            f"= total_records, {table.num_columns} columns"
        )

    # --- a consumer with a partial agreement ---

    def bank_adbc_schema_is_the_agreement(self):
        conn = adbc_connect(self.uri, self.bank_token)
        self.state["bank_conn"] = conn
        schema = conn.adbc_get_table_schema(
            DATASET, catalog_filter=CATALOG, db_schema_filter=SCHEMA
        )
        expect(
            set(schema.names) == set(self.granted) and len(schema) == len(self.granted),
            f"consumer sees {schema.names}, the agreement grants {self.granted}",
        )
        return f"{', '.join(schema.names)}"

    def bank_select_star_is_the_agreement(self):
        conn = self.need("bank_conn")
        code = self.need("code")
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT * FROM {DATASET} WHERE personal_code = ?", parameters=(code,)
            )
            table = cur.fetch_arrow_table()
        expect(table.num_rows == 1, f"lookup of {code} gave {table.num_rows} rows")
        expect(
            set(table.column_names) == set(self.granted),
            f"SELECT * gave {table.column_names}, the agreement grants {self.granted}",
        )
        return f"prepared lookup: 1 row, {table.num_columns} granted columns"

    def bank_flight_info_is_the_agreement(self):
        client, _, options = flight_login(self.uri, self.bank_token)
        try:
            info = client.get_flight_info(
                flight.FlightDescriptor.for_path(DATASET), options
            )
            expect(
                set(info.schema.names) == set(self.granted),
                f"FlightInfo schema {info.schema.names}, the agreement grants {self.granted}",
            )
        finally:
            client.close()
        return f"{len(info.schema)} columns in the FlightInfo schema"

    def bank_non_granted_column_fails(self):
        conn = self.need("bank_conn")
        full = self.need("full_columns")
        hidden = [c for c in full if c not in self.granted]
        expect(hidden, f"every column {full} is granted; nothing to test")
        column = hidden[0]
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {column} FROM {DATASET} LIMIT 1")
                rows = cur.fetchall()
        except flightsql.InternalError as e:
            raise AssertionError(f"reported as a server fault: {e}") from e
        except flightsql.Error as e:
            return f"SELECT {column}: {type(e).__name__}: {first_line(e)}"
        raise AssertionError(f"SELECT {column} (not granted) succeeded: {rows!r}")

    # --- hidden cells, in the bytes a pyarrow client receives ---

    def riga_hidden_cells_are_not_in_the_buffers(self):
        if self.riga_token is None:
            return "skipped: no RIGA_TOKEN given"
        owner, owner_options = self.need("client"), self.need("options")
        full = fetch_all(
            owner,
            owner.get_flight_info(flight.FlightDescriptor.for_path(DATASET), owner_options),
            owner_options,
        ).to_pylist()
        client, _, options = flight_login(self.uri, self.riga_token)
        try:
            info = client.get_flight_info(flight.FlightDescriptor.for_path(DATASET), options)
            batches = []
            for ep in info.endpoints:
                batches.extend(chunk.data for chunk in client.do_get(ep.ticket, options))
        finally:
            client.close()
        expect(sum(b.num_rows for b in batches) == len(full), "Rīga sees every person")
        checked = 0
        for batch in batches:
            for name, column in zip(batch.schema.names, batch.columns):
                checked += null_slots_empty(column, name)
        expect(checked > 100, f"only {checked} hidden cells: the masks are not as set up")
        # Values that only hidden cells hold (rows outside Rīga), and that no visible value
        # contains, must not occur in any buffer received.
        visible = set()
        for batch in batches:
            for row in batch.to_pylist():
                visible.update(str(v) for v in row.values() if v is not None)
        hidden = set()
        for row in full:
            if row["municipality"] == "Rīga":
                continue
            for key in ("given_name", "family_name", "declared_address_code"):
                v = row.get(key)
                if isinstance(v, str) and len(v) >= 6 and not any(v in w for w in visible):
                    hidden.add(v.encode())
        expect(len(hidden) > 10, f"only {len(hidden)} values to look for")
        raw = [
            buf.to_pybytes()
            for batch in batches
            for column in batch.columns
            for buf in all_buffers(column)
        ]
        leaked = sorted(v for v in hidden if any(v in r for r in raw))
        expect(not leaked, f"hidden values in the buffers: {leaked[:5]}")
        return f"{checked} hidden cells empty; {len(hidden)} hidden values absent from the bytes"

    def close(self):
        for key in ("conn", "bank_conn", "client"):
            if key in self.state:
                try:
                    self.state[key].close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass


def all_buffers(array):
    """Every buffer of an array, its children's and its dictionary's included."""
    out = [b for b in array.buffers() if b is not None]
    if pa.types.is_dictionary(array.type):
        out.extend(all_buffers(array.dictionary))
    return out


def null_slots_empty(array, name):
    """Check the raw buffers of the null slots of `array`: a fixed-width slot holds zeros, a
    variable-width slot no bytes (equal offsets), a view slot zeros. Returns how many."""
    nulls = [i for i, valid in enumerate(array.is_valid().to_pylist()) if not valid]
    if not nulls:
        return 0
    t = array.type
    buffers = array.buffers()
    at = array.offset
    if pa.types.is_string(t) or pa.types.is_binary(t):
        offsets = struct.unpack_from(f"<{at + len(array) + 1}i", buffers[1])
        for i in nulls:
            expect(
                offsets[at + i] == offsets[at + i + 1],
                f"hidden cell {i} of `{name}` carries bytes",
            )
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        offsets = struct.unpack_from(f"<{at + len(array) + 1}q", buffers[1])
        for i in nulls:
            expect(offsets[at + i] == offsets[at + i + 1], f"hidden cell {i} of `{name}`")
    elif pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        views = buffers[1].to_pybytes()
        for i in nulls:
            slot = views[(at + i) * 16 : (at + i + 1) * 16]
            expect(slot == bytes(16), f"hidden view {i} of `{name}` is not zero")
    elif pa.types.is_dictionary(t):
        width = t.index_type.bit_width // 8
        data = buffers[1].to_pybytes()
        for i in nulls:
            slot = data[(at + i) * width : (at + i + 1) * width]
            expect(slot == bytes(width), f"hidden index {i} of `{name}` is not zero")
    elif pa.types.is_boolean(t):
        pass  # one bit; its value says nothing once the row is known to be there
    elif t.bit_width is not None and t.bit_width % 8 == 0:
        width = t.bit_width // 8
        data = buffers[1].to_pybytes()
        for i in nulls:
            slot = data[(at + i) * width : (at + i + 1) * width]
            expect(slot == bytes(width), f"hidden cell {i} of `{name}` is {slot.hex()}")
    else:
        raise AssertionError(f"no buffer check for {t} (`{name}`)")
    return len(nulls)


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main(argv):
    if len(argv) not in (4, 5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    uri, token, bank_token = argv[1:4]
    granted = (argv[4] if len(argv) >= 5 else DEMO_BANK_COLUMNS).split(",")
    riga_token = argv[5] if len(argv) == 6 else None
    checks = Checks(uri, token, bank_token, granted, riga_token)
    order = [
        checks.adbc_connect_with_handshake,
        checks.adbc_get_objects_lists_persons,
        checks.adbc_get_table_schema,
        checks.adbc_count_query,
        checks.adbc_query_arrow,
        checks.adbc_prepared_lookup,
        checks.adbc_bad_sql_is_an_error,
        checks.flight_handshake,
        checks.flight_bad_password_is_refused,
        checks.flight_list_flights,
        checks.flight_do_get_persons,
        checks.bank_adbc_schema_is_the_agreement,
        checks.bank_select_star_is_the_agreement,
        checks.bank_flight_info_is_the_agreement,
        checks.bank_non_granted_column_fails,
        checks.riga_hidden_cells_are_not_in_the_buffers,
    ]
    print(f"Flight compatibility against {uri}")
    passed = failed = 0
    try:
        for check in order:
            try:
                detail = check()
            except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
                failed += 1
                print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
                if not isinstance(e, AssertionError):
                    traceback.print_exc(file=sys.stderr)
            else:
                passed += 1
                print(f"ok   {check.__name__}: {detail}")
    finally:
        checks.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

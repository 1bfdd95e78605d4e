"""End to end into real destinations: the records the connector emits, as PyAirbyte stores them.

One full-refresh read of all streams through the connector CLI says what the connector emitted.
The same config is synced through PyAirbyte into a DuckDB file and into a throwaway PostgreSQL
server. Each table must then hold exactly the emitted records, every declared column with the
emitted value, and no value the connector emitted may be lost on the way (a `NULL` cell, or a
field with no declared column, which PyAirbyte drops). A single bad value can also abort a whole
sync (DuckDB rejects a timestamp it cannot parse): the test of that destination then fails with
PyAirbyte's error.

The three reads run at the same time, each on its own emulator: the emulated rate limits are per
emulator, and every emulator with the same config serves the same bytes.

How PyAirbyte 0.71.3 stores a record (what `stored_as` undoes):
- column names: PyAirbyte's normalizer (lower case, other characters as `_`; 63 characters at
  most in Postgres);
- `format: date-time`: a `TIMESTAMP` *without* time zone in both databases, holding the wall
  clock of the string with any UTC offset dropped (so only UTC strings keep their instant);
- integer: `BIGINT`; number: `DECIMAL(38,9)`; boolean: `BOOLEAN`; object and array: `JSON`.
"""

import importlib.util
import json
import logging
import math
import re
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest

if importlib.util.find_spec("airbyte") is None:
    pytest.skip("needs the demo extra: PyAirbyte 0.71.3 supports Python < 3.13 only", allow_module_level=True)

import duckdb  # noqa: E402  (installed with PyAirbyte)
import psycopg2  # noqa: E402  (installed with PyAirbyte)

from integration_tests.connector import Connector, catalog_for  # noqa: E402
from integration_tests.postgres import PostgresServer, throwaway_postgres  # noqa: E402
from integration_tests.project import emulated_project  # noqa: E402
from iterable_to_duckdb.sync import connector_source, pyairbyte  # noqa: E402

DESTINATIONS = ["duckdb", "postgres"]
SCHEMA = "main"
EXAMPLES_PER_COLUMN = 3
Row = Dict[str, Any]


@dataclass
class Destination:
    """What one PyAirbyte sync left: each stream's rows (`None`: no table), or the error that aborted it."""

    name: str
    column_of: Callable[[str], str]  # the column PyAirbyte names after a property
    tables: Dict[str, Optional[List[Row]]] = field(default_factory=dict)
    error: Optional[str] = None


@dataclass
class Synced:
    streams: Dict[str, Dict[str, Any]]  # discovered, by name
    emitted: Dict[str, List[Dict[str, Any]]]  # the records the connector CLI emitted, by stream
    destinations: Dict[str, Destination]


# --- the syncs ----------------------------------------------------------------------------------


def sync_with_pyairbyte(name: str, config: Mapping[str, Any], cache: Any, read_back: Callable[[Any], Dict]) -> Destination:
    """A full-refresh sync of all streams into `cache`; the error text if PyAirbyte raised."""
    destination = Destination(name, column_of=cache.processor.normalizer.normalize)
    source = connector_source(config)
    source.select_all_streams()
    try:
        # The connector validates its config itself; PyAirbyte's validation would cost a `spec` run.
        source.read(cache=cache, force_full_refresh=True, skip_validation=True)
    except Exception as error:  # any error aborts the whole sync: that is what the tests report
        destination.error = failure_text(error)
        return destination
    destination.tables = read_back(cache)
    return destination


def failure_text(error: BaseException) -> str:
    """The error, its causes and the last errors of the connector log PyAirbyte names, if any."""
    lines, seen, cause = [], set(), error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        lines.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__ or cause.__context__
    log_file = getattr(error, "log_file", None)
    if log_file is not None and Path(log_file).is_file():
        logged = [line[:600] for line in Path(log_file).read_text(errors="replace").splitlines() if "ERROR" in line]
        lines += [f"last errors in {log_file}:", *logged[-5:]]
    return "\n".join(lines)


def duckdb_tables(streams: List[str]) -> Callable[[Any], Dict[str, Optional[List[Row]]]]:
    def read_back(cache: Any) -> Dict[str, Optional[List[Row]]]:
        # PyAirbyte's engine may still hold the file: let it go before opening it read-only.
        cache.dispose_engine()
        with duckdb.connect(str(cache.db_path), read_only=True) as db:
            listed = db.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [SCHEMA]).fetchall()
            tables = {name for (name,) in listed}
            return {stream: duckdb_rows(db, cache.processor.get_sql_table_name(stream), tables) for stream in streams}

    return read_back


def duckdb_rows(db: "duckdb.DuckDBPyConnection", table: str, tables: set) -> Optional[List[Row]]:
    """The table's rows; DuckDB returns `JSON` cells as text, parsed here so both databases give objects."""
    if table not in tables:
        return None
    cursor = db.execute(f'SELECT * FROM {SCHEMA}."{table}"')
    columns = [(column[0], str(column[1]) == "JSON") for column in cursor.description]
    return [
        {name: json.loads(value) if is_json and value is not None else value for (name, is_json), value in zip(columns, row)}
        for row in cursor.fetchall()
    ]


def postgres_tables(server: PostgresServer, streams: List[str]) -> Callable[[Any], Dict[str, Optional[List[Row]]]]:
    def read_back(cache: Any) -> Dict[str, Optional[List[Row]]]:
        # psycopg2 returns `JSON` cells as Python objects and `TIMESTAMP` ones as naive datetimes.
        connection = psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname=server.database)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [SCHEMA])
                tables = {name for (name,) in cursor.fetchall()}
                return {stream: postgres_rows(cursor, cache.processor.get_sql_table_name(stream), tables) for stream in streams}
        finally:
            connection.close()

    return read_back


def postgres_rows(cursor: Any, table: str, tables: set) -> Optional[List[Row]]:
    if table not in tables:
        return None
    cursor.execute(f'SELECT * FROM {SCHEMA}."{table}"')
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


@contextmanager
def the_airbyte_logger_restored() -> Iterator[None]:
    """PyAirbyte, run in this process, takes over the `airbyte` logger it shares with the CDK (its
    own file handler, no propagation); later tests of this worker read the connector's logs
    through that logger, so it is given back as it was."""
    logger = logging.getLogger("airbyte")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Synced:
    """Discover, then the three reads at once; servers and emulators are gone before the first check."""
    workdir = tmp_path_factory.mktemp("destinations")
    with ExitStack() as running:
        running.enter_context(the_airbyte_logger_restored())
        airbyte = pyairbyte()
        # An emulator per read, see the module's docstring: each read needs only its config.
        cli_config, duckdb_config, postgres_config = [running.enter_context(emulated_project())[1] for _ in range(3)]
        postgres = running.enter_context(throwaway_postgres())
        connector = Connector(workdir)
        streams = connector.streams(cli_config)
        names = sorted(streams)
        duckdb_cache = airbyte.caches.DuckDBCache(
            db_path=str(workdir / "destination.duckdb"), schema_name=SCHEMA, cache_dir=workdir / "duckdb-files"
        )
        postgres_cache = airbyte.caches.PostgresCache(
            host=postgres.host, port=postgres.port, username=postgres.user, password=postgres.password,
            database=postgres.database, schema_name=SCHEMA, cache_dir=workdir / "postgres-files",
        )  # fmt: skip
        with ThreadPoolExecutor(max_workers=3) as pool:
            cli_read = pool.submit(connector.read, cli_config, catalog_for(streams, names, incremental=False))
            into_duckdb = pool.submit(sync_with_pyairbyte, "duckdb", duckdb_config, duckdb_cache, duckdb_tables(names))
            into_postgres = pool.submit(
                sync_with_pyairbyte, "postgres", postgres_config, postgres_cache, postgres_tables(postgres, names)
            )
            emitted = cli_read.result()
            destinations = {"duckdb": into_duckdb.result(), "postgres": into_postgres.result()}
    assert emitted.returncode == 0 and not emitted.errors, f"the connector's own read failed: {emitted.errors}"
    return Synced(streams, {name: emitted.records.get(name, []) for name in names}, destinations)


def synced_destination(synced: Synced, name: str) -> Destination:
    destination = synced.destinations[name]
    if destination.error is not None:
        pytest.fail(f"PyAirbyte's sync into {name} aborted, so no table can be checked:\n{destination.error}", pytrace=False)
    return destination


# --- how a value is stored ----------------------------------------------------------------------

RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def stored_as(property_schema: Mapping[str, Any]) -> str:
    """The kind of column PyAirbyte makes of a declared property (its `_get_airbyte_type` rules)."""
    airbyte_type = property_schema.get("airbyte_type")
    if airbyte_type in ("timestamp_with_timezone", "timestamp_without_timezone"):
        return "timestamp"
    types = property_schema.get("type")
    if isinstance(types, list):
        not_null = [name for name in types if name != "null"]
        types = not_null[0] if len(not_null) == 1 else None
    if types == "string" and property_schema.get("format") == "date-time":
        return "timestamp"
    if types == "string" and property_schema.get("format") == "date":
        return "date"
    if types in ("object", "array"):
        return "json"
    if types in ("integer", "number", "boolean"):
        return types
    return "string"  # PyAirbyte's fallback column type is VARCHAR


def rfc3339_instant(text: Any) -> Optional[datetime]:
    """The UTC instant of an RFC 3339 date-time string (offset required), or `None` if it is not one."""
    match = RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, offset_h, offset_m = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    except ValueError:
        return None
    moment += timedelta(microseconds=round(int((fraction or "0")[:7].ljust(7, "0")) / 10))
    if not zulu:
        moment -= (1 if sign == "+" else -1) * timedelta(hours=int(offset_h), minutes=int(offset_m))
    return moment


def stored_instant(value: datetime) -> datetime:
    """A timestamp cell as a UTC instant: PyAirbyte's columns have no time zone and hold UTC wall clocks."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def same_number(emitted: Any, stored: Any) -> bool:
    """Equal as numbers: integers exactly, others within `DECIMAL(38,9)`'s rounding. A boolean is no number."""
    is_number = lambda value: isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)  # noqa: E731
    if not (is_number(emitted) and is_number(stored)):
        return False
    if isinstance(emitted, int) and isinstance(stored, int):
        return emitted == stored
    return math.isclose(float(emitted), float(stored), rel_tol=1e-12, abs_tol=1e-9)


def same_json(emitted: Any, stored: Any) -> bool:
    """Equal as JSON values: same keys and items, numbers compared as numbers, `true` never `1`."""
    if isinstance(emitted, dict) and isinstance(stored, dict):
        return emitted.keys() == stored.keys() and all(same_json(emitted[key], stored[key]) for key in emitted)
    if isinstance(emitted, list) and isinstance(stored, list):
        return len(emitted) == len(stored) and all(map(same_json, emitted, stored))
    if isinstance(emitted, (int, float)) and not isinstance(emitted, bool):
        return same_number(emitted, stored)
    return type(emitted) is type(stored) and emitted == stored


def same_value(kind: str, emitted: Any, stored: Any) -> bool:
    """Whether a cell holds the emitted value, once each side's representation is undone."""
    if emitted is None or stored is None:
        return emitted is None and stored is None
    if kind == "timestamp":
        instant = rfc3339_instant(emitted)
        return instant is not None and isinstance(stored, datetime) and instant == stored_instant(stored)
    if kind == "date":
        return isinstance(emitted, str) and isinstance(stored, date) and emitted == stored.isoformat()[:10]
    if kind == "json":
        return same_json(emitted, stored)
    if kind in ("integer", "number"):
        return same_number(emitted, stored)
    return type(emitted) is type(stored) and emitted == stored  # boolean, string


def reread_by_pandas(emitted: Any, stored: Any) -> bool:
    """PyAirbyte 0.71.3's Postgres loader re-reads its own JSONL files with `pandas.read_json`,
    which turns text that looks like a number into a number: `"+15550001111"` is stored as
    `'15550001111'` (or `'15550001111.0'` in a column with nulls). A PyAirbyte defect no source
    can avoid; this exact change, and only in Postgres, is not counted against the connector."""
    if not (isinstance(emitted, str) and isinstance(stored, str)):
        return False
    try:
        return float(emitted) == float(stored) and emitted.strip() != stored
    except ValueError:
        return False


def why_different(kind: str, emitted: Any) -> str:
    if kind == "timestamp" and emitted is not None and rfc3339_instant(emitted) is None:
        return " (the emitted value is no RFC 3339 date-time)"
    return ""


# --- matching rows to records -------------------------------------------------------------------


def primary_key(synced: Synced, stream: str) -> List[str]:
    """The stream's `source_defined_primary_key` fields (all top-level in this connector)."""
    paths = synced.streams[stream]["source_defined_primary_key"]
    assert paths and all(len(path) == 1 for path in paths), f"{stream}: expected a top-level primary key, got {paths}"
    return [path[0] for path in paths]


def key_value(kinds: Mapping[str, str], key: List[str], value_of: Callable[[str], Any]) -> Tuple:
    """A record's or row's primary key, each part in one representation (a timestamp as its instant)."""
    parts = []
    for name in key:
        value = value_of(name)
        if kinds.get(name) == "timestamp" and isinstance(value, str):
            value = rfc3339_instant(value) or value
        elif kinds.get(name) == "timestamp" and isinstance(value, datetime):
            value = stored_instant(value)
        parts.append(value)
    return tuple(parts)


def key_text(key: List[str], values: Any) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in zip(key, values))


@dataclass
class Problem:
    """One broken rule, named in the failure message by stream, column, primary key and value."""

    rule: str
    stream: str
    column: str  # "property -> column", or "" for a whole row
    key: str
    detail: str


@dataclass
class Pairing:
    """Each emitted record with its row (`None`: no row), and what could not be paired."""

    pairs: List[Tuple[Dict[str, Any], Optional[Row]]]
    problems: List[Problem]


def pair_rows_with_records(synced: Synced, destination: Destination, stream: str, rule: str) -> Pairing:
    """Matches rows to records by primary key; a count or key that differs is a `rule` problem."""
    records, rows = synced.emitted[stream], destination.tables.get(stream)
    properties = synced.streams[stream]["json_schema"].get("properties", {})
    kinds = {name: stored_as(schema) for name, schema in properties.items()}
    key = primary_key(synced, stream)
    if rows is None:
        problem = Problem(rule, stream, "", "", f"no table for the stream, {len(records)} records emitted")
        return Pairing([(record, None) for record in records], [problem])
    problems = []
    if len(rows) != len(records):
        problems.append(Problem(rule, stream, "", "", f"{len(rows)} rows, but the connector emitted {len(records)} records"))
    row_key = lambda row: key_value(kinds, key, lambda name: row.get(destination.column_of(name)))  # noqa: E731
    rows_by_key: Dict[Tuple, List[Row]] = defaultdict(list)
    for row in rows:
        rows_by_key[row_key(row)].append(row)
    record_keys = Counter(key_value(kinds, key, record.get) for record in records)
    for value, matching_rows in rows_by_key.items():
        if len(matching_rows) != record_keys.get(value, 0):
            detail = f"{len(matching_rows)} rows, {record_keys.get(value, 0)} emitted records with this key"
            problems.append(Problem(rule, stream, "", key_text(key, value), detail))
    pairs = []
    for record in records:
        matches = rows_by_key.get(key_value(kinds, key, record.get), [])
        pairs.append((record, matches[0] if len(matches) == 1 else None))
    return Pairing(pairs, problems)


# --- the rules ----------------------------------------------------------------------------------

SAME_VALUES = "rows equal the records the connector emitted"
NOT_NULL = "every declared column the records fill is non-null"
ALL_FIELDS_HAVE_COLUMNS = "every field the records carry has a declared column (PyAirbyte drops the others)"


def rows_unlike_records(synced: Synced, destination: Destination, stream: str) -> List[Problem]:
    """Rows per record and, for each record and declared property, the cell against the emitted value."""
    pairing = pair_rows_with_records(synced, destination, stream, SAME_VALUES)
    properties = synced.streams[stream]["json_schema"].get("properties", {})
    key = primary_key(synced, stream)
    problems = pairing.problems
    for record, row in pairing.pairs:
        record_key = key_text(key, [record.get(name) for name in key])
        if row is None:
            problems.append(Problem(SAME_VALUES, stream, "", record_key, "no row (or several) for this emitted record"))
            continue
        for name, schema in properties.items():
            column, kind = destination.column_of(name), stored_as(schema)
            emitted, stored = record.get(name), row.get(column)
            if column not in row:
                problems.append(Problem(SAME_VALUES, stream, f"{name} -> {column}", record_key, "the table has no such column"))
            elif not same_value(kind, emitted, stored) and not (
                destination.name == "postgres" and kind == "string" and reread_by_pandas(emitted, stored)
            ):
                detail = f"table {stored!r}, emitted {emitted!r}{why_different(kind, emitted)}"
                problems.append(Problem(SAME_VALUES, stream, f"{name} -> {column} ({kind})", record_key, detail))
    return problems


def filled_values_lost(synced: Synced, destination: Destination, stream: str) -> List[Problem]:
    """Each non-null emitted value of a declared property has a non-null cell in the record's row."""
    pairing = pair_rows_with_records(synced, destination, stream, NOT_NULL)
    properties = synced.streams[stream]["json_schema"].get("properties", {})
    key = primary_key(synced, stream)
    problems = [problem for problem in pairing.problems if not problem.key]  # whole-table problems only
    for record, row in pairing.pairs:
        record_key = key_text(key, [record.get(name) for name in key])
        filled = [name for name in properties if record.get(name) is not None]
        if row is None:
            detail = f"no row (or several) for this emitted record: its {len(filled)} filled values are lost"
            problems.append(Problem(NOT_NULL, stream, "", record_key, detail))
            continue
        for name in filled:
            column = destination.column_of(name)
            if row.get(column) is None:
                detail = f"{'NULL' if column in row else 'no such column'} in the table, emitted {record[name]!r}"
                problems.append(Problem(NOT_NULL, stream, f"{name} -> {column}", record_key, detail))
    return problems


def undeclared_fields(synced: Synced, stream: str) -> List[Problem]:
    """Non-null emitted fields the stream's schema does not declare: no destination column receives them."""
    properties = synced.streams[stream]["json_schema"].get("properties", {})
    key = primary_key(synced, stream)
    problems = []
    for record in synced.emitted[stream]:
        record_key = key_text(key, [record.get(name) for name in key])
        for name, value in record.items():
            if name not in properties and value is not None:
                problems.append(Problem(ALL_FIELDS_HAVE_COLUMNS, stream, name, record_key, f"emitted {value!r}, not declared"))
    return problems


def report(problems: List[Problem], where: str) -> str:
    """One paragraph per broken rule, one line per stream and column: how many rows, and a few of them."""
    lines = []
    by_rule: Dict[str, Dict[Tuple[str, str], List[Problem]]] = defaultdict(lambda: defaultdict(list))
    for problem in problems:
        by_rule[problem.rule][(problem.stream, problem.column)].append(problem)
    for rule, places in by_rule.items():
        streams = sorted({stream for stream, _ in places})
        lines.append(f"{where}: rule broken: {rule} ({len(streams)} streams: {', '.join(streams)})")
        for (stream, column), found in sorted(places.items()):
            lines.append(f"  stream {stream}, column {column or '(rows)'}: {len(found)} failing")
            for problem in found[:EXAMPLES_PER_COLUMN]:
                lines.append(f"    [{problem.key}] {problem.detail}" if problem.key else f"    {problem.detail}")
    return "\n".join(lines)


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_the_sync_completes(synced, destination):
    synced_destination(synced, destination)


def test_the_connector_emitted_every_stream(synced):
    assert len(synced.streams) == 64
    assert all(synced.emitted.values()), "each stream has records, so each table is checked against some"


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_rows_equal_the_records_the_connector_emitted(synced, destination):
    target = synced_destination(synced, destination)
    problems = [problem for stream in sorted(synced.streams) for problem in rows_unlike_records(synced, target, stream)]

    assert not problems, report(problems, destination)


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_every_declared_column_the_records_fill_is_non_null(synced, destination):
    target = synced_destination(synced, destination)
    problems = [problem for stream in sorted(synced.streams) for problem in filled_values_lost(synced, target, stream)]

    assert not problems, report(problems, destination)


def test_every_field_the_records_carry_has_a_column(synced):
    problems = [problem for stream in sorted(synced.streams) for problem in undeclared_fields(synced, stream)]

    assert not problems, report(problems, "every destination")

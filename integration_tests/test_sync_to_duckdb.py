"""The main job (the console script `iterable-to-duckdb`): what its DuckDB file holds.

The demo path runs twice on one DuckDB file, as a newcomer runs it: the installed console script,
which starts its own emulator. The hidden `--demo-data-end` gives both runs the same project,
which this module rebuilds (`demo_emulator_config`) to know what every table must hold. Export
streams read up to the connector's lookback before now; the state PyAirbyte stored in the file
says how far exactly.
"""

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from itertools import takewhile
from pathlib import Path
from typing import Dict, List

import pytest

if importlib.util.find_spec("airbyte") is None:
    pytest.skip("needs the demo extra: PyAirbyte 0.71.3 supports Python < 3.13 only", allow_module_level=True)

import duckdb  # noqa: E402  (installed with PyAirbyte)

from integration_tests.expected import EXPORT_STREAMS, campaign_metrics, catalogue_records
from iterable_emulator import IterableEmulator, emulator_and_connector_config
from iterable_to_duckdb.sync import DATE_FORMAT, account_config, demo_emulator_config, midnight_utc

# The console script pip installs next to this Python, and the same job as a module.
JOB = [str(Path(sys.executable).with_name("iterable-to-duckdb"))]
JOB_AS_MODULE = [sys.executable, "-m", "iterable_to_duckdb"]
JOB_TIMEOUT_S = 300
ALL_STREAMS = 64
EVENT_STREAMS = sorted(set(EXPORT_STREAMS) - {"users"})
DuckDB = duckdb.DuckDBPyConnection


def run_job(*args: str, job: List[str] = JOB) -> subprocess.CompletedProcess:
    return subprocess.run([*job, *args], capture_output=True, text=True, timeout=JOB_TIMEOUT_S)


def table_rows(db: DuckDB) -> Dict[str, int]:
    """Rows of every stream's table (PyAirbyte names a table after its stream)."""
    tables = db.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
    return {
        table: db.sql(f"SELECT count(*) FROM main.{table}").fetchone()[0]
        for (table,) in tables
        if not table.startswith("_airbyte")
    }


def printed_rows(stdout: str) -> Dict[str, int]:
    """The job's closing table: the lines after its `stream  rows` header, up to a blank line."""
    lines = stdout.split("\nstream ", 1)[1].splitlines()[1:]
    return {name: int(count) for name, count in map(str.split, takewhile(str.strip, lines))}


def column(db: DuckDB, table: str, expression: str) -> List:
    return [value for (value,) in db.sql(f"SELECT {expression} FROM main.{table}").fetchall()]


def state_end_s(db: DuckDB, stream: str) -> int:
    """Epoch second up to which the export stream was read: its cursor state in `_airbyte_state`."""
    (state_json,) = db.execute("SELECT state_json FROM main._airbyte_state WHERE stream_name = ?", [stream]).fetchone()
    stream_state = json.loads(state_json)["stream"]["stream_state"]
    (cursor,) = (value for key, value in stream_state.items() if key != "late_events")
    return int(datetime.strptime(cursor, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def served_rows(emulator: IterableEmulator, db: DuckDB) -> Dict[str, int]:
    """Rows the emulator serves for each stream, export streams up to the state stored in `db`."""
    rows = {stream: len(records) for stream, records in catalogue_records(emulator).items()}
    rows["campaigns_metrics"] = len(campaign_metrics(emulator))
    start_s = emulator.config.start_ms // 1000
    for stream, data_type in EXPORT_STREAMS.items():
        rows[stream] = emulator.data.export_count(data_type, start_s, state_end_s(db, stream))
    return rows


def served_event_hashes(emulator: IterableEmulator, stream: str, end_s: int) -> List[str]:
    """The connector keys an event by the BLAKE2b-128 hash of the event as Iterable sent it, with
    sorted keys and without Iterable's index bookkeeping (`itblInternal`)."""
    records = emulator.data.export_records(EXPORT_STREAMS[stream], emulator.config.start_ms // 1000, end_s)
    return sorted(_event_hash({k: v for k, v in record.items() if k != "itblInternal"}) for record in records)


def _event_hash(event: Dict) -> str:
    return hashlib.blake2b(json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(), digest_size=16).hexdigest()


@pytest.fixture(scope="module")
def data_end() -> datetime:
    """The default's, passed explicitly so that both runs serve one project even across midnight."""
    return midnight_utc()


@pytest.fixture(scope="module")
def served(data_end) -> IterableEmulator:
    """The demo project the job serves (not started: only its data is used)."""
    return IterableEmulator(demo_emulator_config(data_end))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, data_end):
    """Two demo runs on one DuckDB file; `first_db` is a copy of the file as the first run left it."""
    workdir = tmp_path_factory.mktemp("sync-to-duckdb")
    path, after_first = workdir / "iterable.duckdb", workdir / "after-first-run.duckdb"
    arguments = ["--duckdb", str(path), "--demo-data-end", data_end.strftime(DATE_FORMAT)]
    first = run_job(*arguments)
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copyfile(path, after_first)
    second = run_job(*arguments)
    with duckdb.connect(str(after_first), read_only=True) as first_db, duckdb.connect(str(path), read_only=True) as db:
        yield {"path": path, "first": first, "second": second, "first_db": first_db, "db": db}


@pytest.mark.parametrize("job", [JOB, JOB_AS_MODULE], ids=["iterable-to-duckdb", "python -m iterable_to_duckdb"])
def test_help_shows_the_options_but_not_the_test_only_one(job):
    result = run_job("--help", job=job)

    assert result.returncode == 0
    assert result.stdout.startswith("usage: iterable-to-duckdb ")
    assert all(word in result.stdout for word in ("--duckdb", "--config", "ITERABLE_API_KEY", "ITERABLE_REGION"))
    assert "--demo-data-end" not in result.stdout


def test_an_account_from_the_environment_starts_30_days_ago_in_the_us():
    config = account_config(None, {"ITERABLE_API_KEY": "key-1"})

    start = (midnight_utc() - timedelta(days=30)).strftime(DATE_FORMAT)
    assert config == {"api_key": "key-1", "start_date": start, "region": "US"}
    assert account_config(None, {}) is None, "without a key the job syncs the demo emulator"


def test_a_config_file_wins_over_the_environment(tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"api_key": "from-file", "start_date": "2024-01-01T00:00:00Z", "region": "EU"}))

    config = account_config(config_file, {"ITERABLE_API_KEY": "from-env"})

    assert (config["api_key"], config["region"]) == ("from-file", "EU")


def test_a_rejected_key_fails_clearly_without_printing_the_key(tmp_path):
    wrong_key = "wrong-key-9c41d7"
    config_file = tmp_path / "config.json"
    with emulator_and_connector_config(api_key=wrong_key) as (_, config):
        config_file.write_text(json.dumps(config))

        result = run_job("--config", str(config_file), "--duckdb", str(tmp_path / "x.duckdb"))

    assert result.returncode == 1
    assert "Sync failed" in result.stderr
    assert "rejected the API key" in result.stderr, "the connector's check says what to fix"
    assert wrong_key not in result.stdout + result.stderr, "the API key is a secret"


def test_the_demo_starts_the_emulator_and_prints_rows_per_stream_from_duckdb(demo):
    stdout, rows = demo["first"].stdout, table_rows(demo["first_db"])

    assert "started the Iterable emulator at http://127.0.0.1:" in stdout
    assert f"Syncing {ALL_STREAMS} streams into {demo['path']}" in stdout
    assert printed_rows(stdout) == {**rows, "total": sum(rows.values())}, "the closing table counts the DuckDB tables"
    assert f"DuckDB file: {demo['path'].resolve()}" in stdout


def test_the_demo_file_has_a_table_with_every_served_row_of_every_stream(demo, served):
    rows = table_rows(demo["first_db"])

    assert len(rows) == ALL_STREAMS
    assert rows == served_rows(served, demo["first_db"])
    assert all(rows.values()), "the demo project has data in every stream"


@pytest.mark.parametrize("stream", EVENT_STREAMS)
def test_the_demo_event_tables_hold_exactly_the_served_events(demo, served, stream):
    stored = sorted(column(demo["first_db"], stream, "eventhash"))

    assert stored == served_event_hashes(served, stream, state_end_s(demo["first_db"], stream))


def test_the_demo_users_keep_their_custom_fields(demo, served):
    stored = demo["first_db"].sql("SELECT email, loyaltypoints, address FROM main.users").fetchall()

    assert {email: points for email, points, _ in stored} == {u["email"]: u["loyaltyPoints"] for u in served.data.users()}, (
        "the project's user fields (users/getFields) are typed columns, e.g. loyaltyPoints as an integer"
    )
    assert {email: json.loads(address)["city"] for email, _, address in stored} == {
        u["email"]: u["address"]["city"] if "address" in u else u["address.city"] for u in served.data.users()
    }, "objects keep their sub-fields, also those Iterable sends as dotted keys (address.city)"


def test_the_demo_catalogue_tables_hold_the_served_ids(demo, served):
    expected, db = catalogue_records(served), demo["first_db"]

    assert sorted(column(db, "campaigns", "id")) == sorted(c["id"] for c in expected["campaigns"])
    assert sorted(column(db, "templates", "templateid")) == sorted(t["templateId"] for t in expected["templates"])
    assert sorted(column(db, "list_users", "listid || ' ' || email")) == sorted(
        f"{row['listId']} {row['email']}" for row in expected["list_users"]
    )


def test_a_second_demo_run_reads_only_what_is_new(demo, served):
    second, first_db, db = demo["second"], demo["first_db"], demo["db"]

    assert second.returncode == 0, second.stderr[-3000:]
    assert table_rows(db) == served_rows(served, db), "rows up to the new state, none twice"
    for stream in EXPORT_STREAMS:
        # PyAirbyte's merge gives a row read again a new _airbyte_raw_id.
        first_ids, ids = set(column(first_db, stream, "_airbyte_raw_id")), set(column(db, stream, "_airbyte_raw_id"))
        assert first_ids <= ids, f"{stream}: the second run resumed from the state in DuckDB and read no row again"

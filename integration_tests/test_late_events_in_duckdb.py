"""Late events through PyAirbyte into DuckDB: 32 hourly incremental syncs of one DuckDB cache,
which keeps the state between them and merges on the primary key (Append + Deduped). Each email
send indexed within the horizon is in the table once; the connector itself emitted each once.

The scenario is `test_late_events.py`'s; PyAirbyte runs the connector as a subprocess and stores
the state in the cache, as a user's PyAirbyte job does.
"""

import importlib.util
from collections import Counter

import pytest

if importlib.util.find_spec("airbyte") is None:
    pytest.skip("needs the demo extra: PyAirbyte 0.71.3 supports Python < 3.13 only", allow_module_level=True)

from datetime import timedelta  # noqa: E402

import duckdb  # noqa: E402  (installed with PyAirbyte)

from integration_tests.late_syncs import Syncs, at, end_date  # noqa: E402
from integration_tests.test_destinations import the_airbyte_logger_restored  # noqa: E402
from integration_tests.test_late_events import FIRST_SYNC, SYNCS, outcomes, project  # noqa: E402
from iterable_emulator import emulator_and_connector_config  # noqa: E402
from iterable_to_duckdb.sync import connector_source, pyairbyte  # noqa: E402


def test_every_record_indexed_within_the_horizon_is_in_the_deduplicated_table_once(tmp_path):
    with the_airbyte_logger_restored(), emulator_and_connector_config(project()) as (emulator, config):
        airbyte = pyairbyte()
        cache = airbyte.caches.DuckDBCache(db_path=str(tmp_path / "late.duckdb"), schema_name="main", cache_dir=tmp_path / "files")
        syncs = Syncs(copies={"email_send": Counter()})
        processed = 0
        for moment in (FIRST_SYNC + timedelta(hours=k) for k in range(SYNCS)):
            at(emulator, moment)
            source = connector_source({**config, "end_date": end_date(moment)})
            source.select_streams(["email_send"])
            processed += source.read(cache=cache, skip_validation=True).processed_records
            syncs.times.append(moment)
        cache.dispose_engine()
        with duckdb.connect(str(cache.db_path), read_only=True) as db:
            rows = db.sql("SELECT messageid, count(*) FROM main.email_send GROUP BY messageid").fetchall()
            (states,) = db.sql("SELECT count(*) FROM main._airbyte_state WHERE stream_name = 'email_send'").fetchone()
        syncs.copies["email_send"].update({message_id: count for message_id, count in rows})
        by_bucket = {o.label: o for o in outcomes(emulator, syncs, "email_send")}

    assert states == 1, "PyAirbyte kept the stream's state between the syncs"
    assert all(count == 1 for _, count in rows), "the deduplicated table holds each email send once"
    assert processed == len(rows), "the connector emitted each email send once: there was nothing to deduplicate"
    assert all(o.lost == 0 for o in by_bucket.values()), f"late records lost on the way to DuckDB: {by_bucket}"
    assert by_bucket["2 h - 24 h"].due > 0, "the scenario holds records indexed hours late"

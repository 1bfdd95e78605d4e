"""Incremental syncs end to end: every record exactly once over consecutive syncs."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from integration_tests.connector import catalog_for
from integration_tests.expected import as_multiset, assert_exactly_once, export_records, overflow_key
from integration_tests.project import END, START
from iterable_emulator import EmulatorConfig, IndexingDelays, emulator_and_connector_config

STREAMS = ["email_send", "email_open", "users", "sms_bounce"]
MIDDLE = "2024-01-20T07:30:00Z"


def test_two_incremental_syncs_emit_every_record_exactly_once_in_total(emulator, config, connector):
    streams = connector.streams(config)
    catalog = catalog_for(streams, STREAMS)

    first = connector.read({**config, "end_date": MIDDLE}, catalog)
    second = connector.read({**config, "end_date": END}, catalog, state=first.final_states())

    assert first.returncode == 0 and second.returncode == 0, first.errors + second.errors
    both_syncs = {stream: first.records[stream] + second.records[stream] for stream in STREAMS}
    assert_exactly_once(both_syncs, emulator, STREAMS, START, END)
    assert second.records["email_send"], "the second sync reads what is new since the first"


def test_a_third_sync_with_nothing_new_costs_one_request_per_stream(emulator, config, connector):
    streams = connector.streams(config)
    catalog = catalog_for(streams, STREAMS)
    first = connector.read({**config, "end_date": END}, catalog)
    emulator.requests.clear()

    again = connector.read({**config, "end_date": "2024-03-01T00:10:00Z"}, catalog, state=first.final_states())

    assert sum(len(again.records[s]) for s in STREAMS) == 0
    assert len(emulator.requests_to("export/data.json")) == len(STREAMS)


@pytest.mark.parametrize("lookback_minutes, loses_records", [(5, False), (0, True)], ids=["lookback 5 min", "no lookback"])
def test_late_indexed_events_are_read_by_the_next_sync_thanks_to_the_lookback(lookback_minutes, loses_records, connector):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # Records become visible up to 3 minutes after their createdAt, not in order.
    up_to_3_minutes = IndexingDelays(((1.0, 180.0),), visibility_lag_max_s=0)
    near_now = EmulatorConfig(start=now - timedelta(minutes=40), end=now + timedelta(minutes=20), records_per_type=720,
                              indexing_delays=up_to_3_minutes)
    # No end_date: each sync reads up to now minus the lookback; no re-reading of late events (see
    # test_late_events.py), so that the lookback alone is tested.
    with emulator_and_connector_config(near_now, lookback_window=lookback_minutes, late_event_horizon=0) as (emulator, config):
        start = config["start_date"]
        catalog = catalog_for(connector.streams(config), ["email_send"])

        first = connector.read(config, catalog)
        time.sleep(8)  # time passes: new events are created and late ones get indexed
        second = connector.read(config, catalog, state=first.final_states())
        read_until = datetime.strptime(second.final_states()[0]["stream"]["stream_state"]["createdAt"], "%Y-%m-%d %H:%M:%S")

        emitted = first.records["email_send"] + second.records["email_send"]
        served = export_records(emulator, "email_send", start, read_until.strftime("%Y-%m-%d %H:%M:%S"))
        assert len(emitted) == len({r["eventHash"] for r in emitted}), "no record twice"
        missing = as_multiset(served) - as_multiset(emitted, overflow_key("email_send"))
        if loses_records:
            assert missing, "without lookback, events indexed late are skipped for good (the emulator's lag is real)"
        else:
            assert not missing, f"{sum(missing.values())} records lost"

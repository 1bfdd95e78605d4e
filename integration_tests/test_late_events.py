"""Events Iterable indexes late reach the destination exactly once, over 32 hourly syncs.

The emulator indexes 90% of records within 5 minutes, 8% within 2 hours and 2% within a day (its
default), stamps each with its indexing time and shows it in exports from then on, up to a minute
later. The connector runs with its default settings (lookback 5 minutes, late-event horizon 24
hours), first over the project's first 6 hours, then every hour.
"""

from datetime import datetime, timedelta, timezone

from integration_tests.connector import catalog_for
from integration_tests.late_syncs import LOOKBACK, cli_sync, hourly_syncs
from iterable_emulator import EmulatorConfig, IndexingDelays, emulator_and_connector_config
from iterable_emulator.late_audit import late_outcomes

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = START + timedelta(days=3)
FIRST_SYNC = START + timedelta(hours=6)
SYNCS = 32
HORIZON = timedelta(hours=24)
STREAMS = {"email_send": "emailSend", "users": "user"}
# Email sends have a messageId each; a user profile exported once (the emulator updates each
# profile once) is its email.
IDENTITIES = {"email_send": lambda record: record["messageId"], "users": lambda record: record["email"]}


def project(**changes) -> EmulatorConfig:
    return EmulatorConfig(
        start=START, end=END, records_per_type={"emailSend": 9_000}, default_records_per_type=10, users=3_000, **changes
    )


def outcomes(emulator, syncs, stream):
    return late_outcomes(
        emulator.data, STREAMS[stream], START, END, syncs.copies[stream], IDENTITIES[stream],
        due_by=syncs.last - HORIZON, read_until=syncs.last - LOOKBACK,
    )


def test_every_record_indexed_within_the_horizon_arrives_exactly_once_in_append_mode(connector):
    with emulator_and_connector_config(project()) as (emulator, config):
        catalog = catalog_for(connector.streams(config), list(STREAMS))
        syncs = hourly_syncs(emulator, config, FIRST_SYNC, SYNCS, cli_sync(connector, catalog), IDENTITIES)
        requests = [r for r in emulator.requests_to("export/data.json") if r.param("dataTypeName") in STREAMS.values()]

    for stream in STREAMS:
        by_bucket = {o.label: o for o in outcomes(emulator, syncs, stream)}
        assert all(o.lost == 0 for o in by_bucket.values()), f"{stream}: late records lost: {by_bucket}"
        assert all(o.duplicated == 0 for o in by_bucket.values()), f"{stream}: records emitted twice: {by_bucket}"
        late = by_bucket["5 min - 2 h"].due + by_bucket["2 h - 24 h"].due
        assert by_bucket["2 h - 24 h"].due > 0 and late > 20, f"{stream}: the scenario must hold late records: {by_bucket}"
    found = syncs.logged("late record(s) emitted")
    assert found and any(" 0 late record(s)" not in line for line in found), "each sync reports the late records it found"
    assert len(requests) <= 1.1 * SYNCS * len(STREAMS) + len(STREAMS), "about one export request per stream per sync"


def test_a_data_type_without_indexing_stamps_loses_nothing_and_counts_its_copies(connector):
    with emulator_and_connector_config(project(indexing_stamps=False)) as (emulator, config):
        catalog = catalog_for(connector.streams(config), ["email_send"])
        identities = {"email_send": IDENTITIES["email_send"]}
        syncs = hourly_syncs(emulator, config, FIRST_SYNC, SYNCS, cli_sync(connector, catalog), identities)

    by_bucket = {o.label: o for o in outcomes(emulator, syncs, "email_send")}
    assert all(o.lost == 0 for o in by_bucket.values()), f"nothing is lost without stamps: {by_bucket}"
    copies = sum(o.duplicated for o in by_bucket.values())
    warned = sum(int(line.split(": ", 1)[1].split(" ")[0]) for line in syncs.logged("carry no indexing stamp"))
    assert 0 < copies <= warned, "every possible copy is announced in the logs, with its count"


def test_without_a_horizon_late_records_are_lost_as_before(connector):
    with emulator_and_connector_config(project(), late_event_horizon=0) as (emulator, config):
        catalog = catalog_for(connector.streams(config), ["email_send"])
        identities = {"email_send": IDENTITIES["email_send"]}
        syncs = hourly_syncs(emulator, config, FIRST_SYNC, 8, cli_sync(connector, catalog), identities)
        requests = [r for r in emulator.requests_to("export/data.json") if r.param("dataTypeName") == "emailSend"]

    shown_an_hour_before_the_last_sync = late_outcomes(
        emulator.data, "emailSend", START, END, syncs.copies["email_send"], IDENTITIES["email_send"],
        due_by=syncs.last - timedelta(hours=1), read_until=syncs.last - LOOKBACK,
    )
    lost = sum(o.lost for o in shown_an_hour_before_the_last_sync)
    assert lost > 0, "the emulator's late indexing is real: without re-reading, late records are lost"
    ends = [r.param("endDateTime") for r in requests]
    assert [r.param("startDateTime") for r in requests[1:]] == ends[:-1], "each sync reads only what is new"
    assert all("late_events" not in s["stream"]["stream_state"] for s in syncs.outputs[-1].final_states())


def test_export_jobs_keep_the_guarantee(connector):
    """A two-hour horizon, records indexed up to 90 minutes late, every window read by an export job."""
    delays = IndexingDelays(((0.85, 300.0), (0.15, 5_400.0)))
    with emulator_and_connector_config(project(indexing_delays=delays), export_mode="jobs", late_event_horizon=2,
                                       export_job_requests_per_second=40) as (emulator, config):
        catalog = catalog_for(connector.streams(config), ["email_send"])
        identities = {"email_send": IDENTITIES["email_send"]}
        syncs = hourly_syncs(emulator, config, FIRST_SYNC, 10, cli_sync(connector, catalog), identities)
        jobs = emulator.requests_to("export/start", "POST")

    by_bucket = {o.label: o for o in late_outcomes(
        emulator.data, "emailSend", START, END, syncs.copies["email_send"], IDENTITIES["email_send"],
        due_by=syncs.last - timedelta(hours=2), read_until=syncs.last - LOOKBACK,
    )}
    assert len(jobs) >= 10, "each sync read through export jobs"
    assert all(o.lost == 0 and o.duplicated == 0 for o in by_bucket.values()), by_bucket
    assert by_bucket["5 min - 2 h"].due > 20, by_bucket

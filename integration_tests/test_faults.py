"""Faults real Iterable shows, end to end: nothing lost, nothing duplicated."""

import pytest

from integration_tests.connector import catalog_for
from integration_tests.expected import as_multiset, assert_exactly_once, catalogue_records, export_records, overflow_key
from integration_tests.project import END, START, emulated_project

EXPORT_SAMPLE = ["email_send", "email_click", "users", "custom_event"]


@pytest.fixture
def big():
    """A bigger project than conftest's, as (emulator, config): export bodies of 3,000 records."""
    with emulated_project(records_per_type=3000, users=300) as emulated:
        yield emulated


def read_sample(connector, config, streams=EXPORT_SAMPLE, **overrides):
    catalog = catalog_for(connector.streams(config), streams)
    return connector.read({**config, **overrides}, catalog)


def test_connections_dropped_mid_body_lose_and_duplicate_nothing(big, connector):
    emulator, config = big
    emulator.faults.drop_export_after_lines = 700
    emulator.faults.drop_export_times = 6

    output = read_sample(connector, config)

    assert output.returncode == 0, output.errors
    assert sum(1 for r in emulator.requests_to("export/data.json") if r.cut) == 6
    assert_exactly_once(output.records, emulator, EXPORT_SAMPLE, START, END)
    assert any("dropped the connection" in w for w in output.warnings())


def test_a_server_that_cannot_serve_big_windows_is_read_in_smaller_ones(big, connector):
    emulator, config = big
    emulator.faults.drop_export_over_lines = 1200

    output = read_sample(connector, config, streams=["email_send"])

    assert output.returncode == 0, output.errors
    assert_exactly_once(output.records, emulator, ["email_send"], START, END)


def test_a_429_storm_is_waited_out_when_iterable_sends_retry_after(emulator, config, connector):
    # The connector asks for far more than the emulator allows (4 per second): a storm of 429s.
    emulator.faults.retry_after_header = True

    output = read_sample(connector, config, streams=["email_send", "email_open", "sms_send", "push_send"], export_requests_per_minute=6000)

    assert output.returncode == 0, output.errors
    assert any(r.status == 429 for r in emulator.requests_to("export/data.json")), "the storm happened"
    assert_exactly_once(output.records, emulator, ["email_send", "email_open", "sms_send", "push_send"], START, END)


def test_429_without_retry_after_and_5xx_are_retried_with_backoff(emulator, config, connector):
    emulator.faults.fail_next("export/data.json", 429, count=1)
    emulator.faults.fail_next("lists", 503, count=1)

    output = read_sample(connector, config, streams=["email_send", "lists"])

    assert output.returncode == 0, output.errors
    statuses = [r.status for r in emulator.requests.all()]
    assert 429 in statuses and 503 in statuses
    assert_exactly_once(output.records, emulator, ["email_send"], START, END)
    assert as_multiset(output.records["lists"]) == as_multiset(catalogue_records(emulator)["lists"])


def test_a_broken_list_is_skipped_and_the_other_lists_are_read(emulator, config, connector):
    broken = emulator.data.lists()[0]["id"]
    emulator.faults.broken_lists = {broken}
    emulator.faults.broken_retry_after_s = 1

    # list_users alone: Iterable allows 5 getUsers calls a minute, and 3 lists + 2 retries are 5.
    output = read_sample(connector, config, streams=["list_users"])

    assert output.returncode == 0, output.errors
    expected = [row for row in catalogue_records(emulator)["list_users"] if row["listId"] != broken]
    assert as_multiset(output.records["list_users"]) == as_multiset(expected)
    assert any(f"list {broken}" in w for w in output.warnings()), "the skipped list is named in a warning"


def test_a_user_whose_events_keep_failing_is_skipped(emulator, config, connector):
    broken_user = emulator.data.list_members(emulator.data.lists()[0]["id"])[0]
    emulator.faults.broken_users = {broken_user}
    emulator.faults.broken_retry_after_s = 1

    output = read_sample(connector, config, streams=["events"])

    assert output.returncode == 0, output.errors
    expected = [e for e in catalogue_records(emulator)["events"] if e["email"] != broken_user]
    assert as_multiset(output.records["events"], overflow_key("events")) == as_multiset(expected)
    assert any("user" in w and broken_user in w for w in output.warnings())


def test_malformed_lines_are_skipped_counted_and_never_silent(big, connector):
    emulator, config = big
    emulator.faults.malformed_line_every = 500

    output = read_sample(connector, config, streams=["email_send"])

    assert output.returncode == 0, output.errors
    assert_exactly_once(output.records, emulator, ["email_send"], START, END)
    served = sum(r.malformed for r in emulator.requests_to("export/data.json"))
    counted = sum(int(w.split("skipped ")[1].split(" ")[0]) for w in output.warnings() if "malformed" in w)
    assert served > 0 and counted == served


def test_a_sync_killed_mid_way_resumes_from_its_last_state(connector):
    """Airbyte's contract is at-least-once: records read after the last checkpoint before the
    kill may be emitted again by the resumed sync. Those are the only duplicates allowed."""
    with emulated_project(records_per_type=2000, users=100, start="2023-01-01T00:00:00Z") as (emulator, config):
        streams = ["email_send", "users"]
        catalog = catalog_for(connector.streams(config), streams)

        killed = connector.read_until(config, catalog, stop_after_states=3)
        resumed = connector.read(config, catalog, state=killed.final_states())

        assert killed.returncode != 0 and resumed.returncode == 0, resumed.errors
        checkpoint = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in killed.final_states()}
        for stream in streams:
            emitted = killed.records[stream] + resumed.records[stream]
            expected = as_multiset(export_records(emulator, stream, "2023-01-01T00:00:00Z", END))
            got = as_multiset(emitted, overflow_key(stream))
            assert not expected - got, f"{stream}: records lost"
            duplicated = got - expected
            cursor = "profileUpdatedAt" if stream == "users" else "createdAt"
            resumed_from = checkpoint.get(stream, {}).get(cursor, "2023-01-01 00:00:00").replace(" ", "T")
            assert all(_cursor_of(key, cursor) >= resumed_from for key in duplicated), (
                f"{stream}: only records after the last checkpoint may be read twice"
            )


def _cursor_of(canonical_record: str, cursor: str) -> str:
    import json

    return json.loads(canonical_record)[cursor][:19]


def test_a_data_type_the_projects_plan_lacks_is_skipped_and_the_sync_succeeds(connector):
    with emulated_project(unavailable_data_types=frozenset({"whatsAppSend"})) as (emulator, config):
        output = read_sample(connector, config, streams=["whatsapp_send", "email_send"])

        assert output.returncode == 0, output.errors
        assert output.records["whatsapp_send"] == []
        assert any("whatsapp_send" in w and "whatsAppSend" in w for w in output.warnings())
        assert "COMPLETE" in output.stream_statuses("whatsapp_send")
        assert_exactly_once(output.records, emulator, ["email_send"], START, END)
        (check,) = connector.check(config).of_type("CONNECTION_STATUS")
        assert check["connectionStatus"]["status"] == "SUCCEEDED", "check stays green"

"""The connector CLI against the emulator: spec, check, discover, and a full read of all 64 streams."""

import json

import pytest

from integration_tests.conformance import violations
from integration_tests.connector import Connector, catalog_for
from integration_tests.expected import (
    EXPORT_STREAMS,
    as_multiset,
    campaign_metrics,
    catalogue_records,
    export_records,
    overflow_key,
)
from integration_tests.project import END, START

ALL_STREAMS = 64
CATALOGUE_STREAMS = [
    "campaigns", "campaigns_metrics", "channels", "lists", "list_users", "message_types", "metadata", "templates",
    "events", "experiment_metrics", "email_templates",
]
STREAMS = sorted(set(EXPORT_STREAMS) | set(CATALOGUE_STREAMS))


def test_spec_lists_the_config_fields(connector):
    (spec,) = connector.spec().of_type("SPEC")

    properties = spec["spec"]["connectionSpecification"]["properties"]
    assert {"api_key", "start_date", "region", "lookback_window"} <= set(properties)
    assert properties["api_key"]["airbyte_secret"] is True
    assert all(properties[name]["airbyte_hidden"] for name in ("end_date", "base_url", "export_job_requests_per_second"))
    assert not properties["export_requests_per_minute"].get("airbyte_hidden"), "connections sharing a project split it"


def test_check_succeeds_with_the_right_key(shared_config, connector):
    (status,) = connector.check(shared_config).of_type("CONNECTION_STATUS")

    assert status["connectionStatus"]["status"] == "SUCCEEDED"


def test_check_fails_with_a_wrong_key_and_never_prints_it(shared_config, connector):
    wrong_key = "wrong-key-5f2b8c0e"

    output = connector.check({**shared_config, "api_key": wrong_key})

    (status,) = output.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    assert "rejected the API key" in status["connectionStatus"]["message"]
    assert wrong_key not in json.dumps(output.messages) + output.stderr


def test_discover_lists_all_streams_with_keys(shared_config, connector):
    streams = connector.streams(shared_config)

    assert len(streams) == ALL_STREAMS
    assert all(stream["source_defined_primary_key"] for stream in streams.values()), "every stream has a primary key"
    assert all(streams[name]["default_cursor_field"] == (["profileUpdatedAt"] if name == "users" else ["createdAt"]) for name in EXPORT_STREAMS)


@pytest.fixture(scope="module")
def discovered(shared_config, tmp_path_factory):
    return Connector(tmp_path_factory.mktemp("discover")).streams(shared_config)


@pytest.fixture(scope="module")
def full_read(shared_config, discovered, tmp_path_factory):
    connector = Connector(tmp_path_factory.mktemp("full-read"))
    return connector.read(shared_config, catalog_for(discovered, sorted(discovered), incremental=False))


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_every_record_keeps_its_discovered_schema_at_every_depth(stream, full_read, discovered):
    """The record contract, judged by an independent checker: types and RFC 3339 date-times at
    every depth, no undeclared top-level field, no null primary key. A record that breaks it makes
    a typed destination reject it (and PyAirbyte abort the whole sync)."""
    schema, key = discovered[stream]["json_schema"], discovered[stream]["source_defined_primary_key"]
    records = full_read.records[stream]

    problems = [problem for record in records for problem in violations(stream, record, schema, key)]

    assert records, "the emulator serves data for every stream, so every stream is checked"
    assert not problems, "\n".join(problems[:20])


def test_full_read_succeeds_without_errors(full_read):
    assert full_read.returncode == 0, full_read.errors
    assert not full_read.errors


@pytest.mark.parametrize("stream", sorted(EXPORT_STREAMS))
def test_full_read_delivers_every_export_record_exactly_once(stream, full_read, shared_emulator):
    emitted = full_read.records[stream]
    expected = export_records(shared_emulator, stream, START, END)

    assert expected, "the emulator serves data for every stream"
    assert as_multiset(emitted, overflow_key(stream)) == as_multiset(expected)
    key = "userKey" if stream == "users" else "eventHash"
    assert len({record[key] for record in emitted}) == len(emitted), "primary keys are unique"


@pytest.mark.parametrize(
    "stream",
    ["campaigns", "channels", "lists", "list_users", "message_types", "metadata", "templates", "events", "experiment_metrics", "email_templates"],
)
def test_full_read_delivers_every_catalogue_record_exactly_once(stream, full_read, shared_emulator):
    expected = catalogue_records(shared_emulator)[stream]

    assert expected
    assert as_multiset(full_read.records[stream], overflow_key(stream)) == as_multiset(expected)


def test_users_schema_declares_the_projects_user_fields_with_their_types(shared_emulator, shared_config, connector):
    properties = connector.streams(shared_config)["users"]["json_schema"]["properties"]
    fields = shared_emulator.data.user_fields()

    json_type = {"string": "string", "long": "integer", "double": "number", "boolean": "boolean", "date": "string"}
    for name in ["firstName", "loyaltyPoints", "lifetimeValue", "isVip", "birthday"]:
        assert json_type[fields[name]] in properties[name]["type"], f"{name} is declared as Iterable types it"
    assert properties["birthday"]["format"] == "date-time"
    assert fields["address"] == "object" and set(properties["address"]["properties"]) == {"city", "country", "zip"}


def test_full_read_delivers_campaign_metrics(full_read, shared_emulator):
    expected = campaign_metrics(shared_emulator)
    emitted = {record["id"]: record["data"] for record in full_read.records["campaigns_metrics"]}

    assert sorted(emitted) == sorted(expected)
    for campaign_id, row in expected.items():
        cells = {name: value for name, value in row.items() if value != ""}
        assert {name: str(value) for name, value in emitted[campaign_id].items()}.keys() == cells.keys()

"""The export engine's touch points with the CDK (source_iterable/export/cdk_adapter.py).

Each test pins what the adapter relies on in airbyte-cdk's internals. If one fails after a CDK
upgrade, the adapter needs a change before anything else: the engine's checkpoints, its RUNNING
status or its streaming bodies would silently break.
"""

from datetime import datetime

import pytest
from airbyte_cdk.models import AirbyteStreamStatus, TraceType, Type
from airbyte_cdk.sources.declarative.requesters.http_requester import HttpRequester
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor
from airbyte_cdk.test.state_builder import StateBuilder

from source_iterable import SourceIterable
from source_iterable.export import cdk_adapter

CONFIG = {"api_key": "adapter-test-key", "start_date": "2024-01-01T00:00:00Z", "end_date": "2024-03-01T00:00:00Z"}


@pytest.fixture
def email_send_cursor() -> ConcurrentCursor:
    config = dict(CONFIG)
    streams = {stream.name: stream for stream in SourceIterable(config=config).streams(config)}
    cursor = streams["email_send"].cursor
    assert isinstance(cursor, ConcurrentCursor), "an export stream's cursor is the CDK's ConcurrentCursor"
    return cursor


def test_a_checkpoint_moves_the_state_to_the_end_of_the_window_even_without_records(email_send_cursor):
    cdk_adapter.checkpoint(email_send_cursor, "email_send", "createdAt", datetime(2024, 1, 1), datetime(2024, 1, 31))
    assert email_send_cursor.state == {"createdAt": "2024-01-31 00:00:00"}

    cdk_adapter.checkpoint(email_send_cursor, "email_send", "createdAt", datetime(2024, 1, 31), datetime(2024, 2, 4, 6))
    assert email_send_cursor.state == {"createdAt": "2024-02-04 06:00:00"}, "each complete window moves the state on"


def test_a_requester_made_streaming_sends_with_stream_true(requests_mock):
    requester = HttpRequester(name="export", url="https://api.iterable.com/api/export/data.json", parameters={}, config={})
    requests_mock.get("https://api.iterable.com/api/export/data.json", content=b'{"a":1}\n{"a":2}\n')

    response = cdk_adapter.streaming(requester).send_request()

    assert response is not None and not response._content_consumed, "the body is left to be read as it arrives"
    assert response.raw.read() == b'{"a":1}\n{"a":2}\n'


def test_running_is_the_stream_status_trace_the_cdk_emits():
    message = cdk_adapter.running("email_send")

    assert message.type == Type.TRACE and message.trace.type == TraceType.STREAM_STATUS
    assert message.trace.stream_status.status == AirbyteStreamStatus.RUNNING
    assert message.trace.stream_status.stream_descriptor.name == "email_send"


def test_keys_beside_the_cursor_value_are_emitted_with_it_and_read_back_from_the_incoming_state():
    config = dict(CONFIG)
    incoming = StateBuilder().with_stream_state("email_send", {"createdAt": "2024-01-31 00:00:00", "late_events": {"v": 1}}).build()
    streams = {stream.name: stream for stream in SourceIterable(config=config, state=incoming).streams(config)}
    cursor = streams["email_send"].cursor

    assert cdk_adapter.keeps_state(cursor)
    assert cdk_adapter.stored_state(cursor, "late_events") == {"v": 1}, "the incoming state's own keys reach the engine"
    cdk_adapter.checkpoint(cursor, "email_send", "createdAt", datetime(2024, 1, 31), datetime(2024, 2, 4), {"late_events": {"v": 2}})
    assert cursor.state == {"createdAt": "2024-02-04 00:00:00", "late_events": {"v": 2}}

    cdk_adapter.checkpoint(cursor, "email_send", "createdAt", datetime(2024, 1, 20), datetime(2024, 1, 25), {"late_events": {"v": 3}})
    assert cursor.state == {"createdAt": "2024-02-04 00:00:00", "late_events": {"v": 3}}, (
        "a re-read window below the cursor updates the ledger and leaves the cursor where it is"
    )

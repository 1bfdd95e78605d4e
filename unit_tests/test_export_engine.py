"""The export engine: windows, dropped connections, exactly-once records and state."""

import http.client
import io
import socket
from datetime import datetime, timedelta, timezone

import pytest
import requests
from airbyte_cdk.models import SyncMode

import source_iterable.export.emitted_keys as emitted_keys
import source_iterable.export.sync_export as sync_export
from unit_tests.harness import cursor_of, final_state, make_config, records_of, read_stream
from unit_tests.export_mocks import EXPORT_URL, Body, FakeClock, data_type_of, event, in_window, jsonl, parse, serve_export, window_of

BACKFILL = make_config(start_date="2024-01-01T00:00:00Z", end_date="2024-03-01T00:00:00Z")
JANUARY = [event(f"2024-01-{day:02d} 12:00:00 +00:00", messageId=f"m{day}") for day in range(1, 32)]


def states(output):
    return [m.state.stream.stream_state.__dict__ for m in output.state_messages]


def test_first_window_is_30_days_and_each_record_arrives_once(requests_mock):
    requests = serve_export(requests_mock, lambda request: Body(jsonl(in_window(JANUARY, request))))

    output = read_stream("email_send", BACKFILL, SyncMode.incremental)

    assert window_of(requests[0]) == ("2024-01-01 00:00:00", "2024-01-31 00:00:00")
    assert sorted(r["messageId"] for r in records_of(output)) == sorted(e["messageId"] for e in JANUARY)
    assert records_of(output)[0]["createdAt"].endswith("T12:00:00+00:00"), "createdAt is ISO-8601 UTC"
    windows = [window_of(r) for r in requests]
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:])), "windows tile the range with no gap or overlap"
    assert windows[-1][1] == "2024-03-01 00:00:00"


@pytest.mark.parametrize(
    "seconds, expected_days",
    [(0.5, 120), (10, 120), (60, 30), (100, 18), (240, 15)],
    ids=["empty-fast grows 4x", "quick grows 4x", "on target keeps it", "slow shrinks", "very slow halves"],
)
def test_next_window_is_sized_from_how_long_the_whole_request_took(seconds, expected_days, requests_mock, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(sync_export, "monotonic", clock)
    config = make_config(start_date="2024-01-01T00:00:00Z", end_date="2025-01-01T00:00:00Z")
    requests = serve_export(
        requests_mock, lambda request: Body(jsonl(in_window(JANUARY, request)), clock=clock, seconds=seconds)
    )

    read_stream("email_send", config, SyncMode.incremental)

    start, end = map(parse, window_of(requests[1]))
    # Within 3 %: the real time the mocked request took adds to the faked seconds.
    assert abs((end - start) - timedelta(days=expected_days)) < timedelta(days=expected_days) * 0.03, (
        f"a first window that took {seconds} s is followed by about {expected_days} days, got {end - start}"
    )


@pytest.mark.parametrize(
    "failure",
    [
        http.client.IncompleteRead(b"partial"),
        ConnectionResetError("Connection reset by peer"),
        socket.timeout("timed out"),
        requests.exceptions.ChunkedEncodingError("Connection broken: InvalidChunkLength"),
    ],
    ids=["incomplete read", "connection reset", "read timeout", "chunked encoding"],
)
def test_a_dropped_connection_halves_the_window_and_emits_no_record_twice(failure, requests_mock):
    attempts = []

    def answer(request):
        attempts.append(window_of(request))
        body = jsonl(in_window(JANUARY, request))
        if len(attempts) == 1:
            return Body(body, cut_after=len(body) // 2, fail_with=failure)
        return Body(body)

    serve_export(requests_mock, answer)

    output = read_stream("email_send", BACKFILL, SyncMode.incremental)

    assert attempts[0] == ("2024-01-01 00:00:00", "2024-01-31 00:00:00")
    assert attempts[1] == ("2024-01-01 00:00:00", "2024-01-16 00:00:00"), "the retry asks for half the window"
    ids = [r["messageId"] for r in records_of(output)]
    assert sorted(ids) == sorted(e["messageId"] for e in JANUARY), "nothing lost"
    assert len(ids) == len(set(ids)), "records read before the drop are not emitted again"
    assert any("dropped the connection" in m.log.message for m in output.logs)
    summary = [m.log.message for m in output.logs if m.log.message.startswith("email_send: read 31 records in ")]
    assert summary, "the stream's total counts the records emitted before the drop too"


def test_the_stream_fails_after_six_drops_with_a_message_naming_stream_and_window(requests_mock):
    def always_cut(request):
        body = jsonl(in_window(JANUARY, request))
        return Body(body, cut_after=min(len(body), 10), fail_with=http.client.IncompleteRead(b""))

    requests = serve_export(requests_mock, always_cut)

    output = read_stream("email_send", BACKFILL, SyncMode.incremental, expect_failure=True)

    assert len(requests) == 7, "one attempt and six halvings"
    spans = [parse(window_of(r)[1]) - parse(window_of(r)[0]) for r in requests]
    assert spans == [timedelta(days=30) / 2**i for i in range(7)]
    error = output.errors[0].trace.error
    assert error.failure_type.name == "system_error"
    assert "email_send" in error.message and "2024-01-01 00:00:00" in error.message
    assert not output.state_messages or all(s["createdAt"] == "2024-01-01 00:00:00" for s in states(output)), (
        "a window that was never read completely does not move the state"
    )


def test_state_is_the_end_of_each_complete_window_even_without_records(requests_mock):
    serve_export(requests_mock, lambda request: Body(b""))

    output = read_stream("sms_bounce", BACKFILL, SyncMode.incremental)

    assert records_of(output) == []
    assert cursor_of(states(output)[0]) == {"createdAt": "2024-01-31 00:00:00"}, "checkpoint after the first window"
    assert cursor_of(final_state(output)) == {"createdAt": "2024-03-01 00:00:00"}, "an empty stream advances"


def test_next_sync_of_an_empty_stream_costs_one_request(requests_mock):
    requests = serve_export(requests_mock, lambda request: Body(b""))
    config = make_config(start_date="2024-01-01T00:00:00Z", end_date="2024-03-02T00:00:00Z", late_event_horizon=0)

    read_stream("sms_bounce", config, SyncMode.incremental, state={"createdAt": "2024-03-01 00:00:00"})

    assert [window_of(r) for r in requests] == [("2024-03-01 00:00:00", "2024-03-02 00:00:00")]


def test_a_state_without_a_ledger_re_reads_the_horizon_before_its_cursor_in_the_same_request(requests_mock):
    late = event("2024-02-29 12:00:00 +00:00", messageId="late", itblInternal={"documentCreatedAt": "2024-03-01 02:00:00 +00:00"})
    early = event("2024-02-29 12:00:01 +00:00", messageId="early", itblInternal={"documentCreatedAt": "2024-02-29 12:00:30 +00:00"})
    requests = serve_export(requests_mock, lambda request: Body(jsonl(in_window([late, early], request))))
    config = make_config(start_date="2024-01-01T00:00:00Z", end_date="2024-03-02T00:00:00Z")

    output = read_stream("email_send", config, SyncMode.incremental, state={"createdAt": "2024-03-01 00:00:00"})

    (request,) = requests
    assert window_of(request) == ("2024-02-29 00:02:00", "2024-03-02 00:00:00"), (
        "the state of an earlier version counts as read a lookback after its cursor: the horizon before it is re-read"
    )
    assert [r["messageId"] for r in records_of(output)] == ["late"], "what that read returned is not emitted again"
    assert "late_events" in final_state(output)


def test_a_failed_window_keeps_the_state_of_the_last_complete_one(requests_mock):
    def answer(request):
        records = in_window(JANUARY + [event("2024-02-10 00:00:00 +00:00", messageId="feb")], request)
        if window_of(request)[0] >= "2024-01-31":
            return Body(jsonl(records), cut_after=5, fail_with=http.client.IncompleteRead(b""))
        return Body(jsonl(records))

    serve_export(requests_mock, answer)

    output = read_stream("email_send", BACKFILL, SyncMode.incremental, expect_failure=True)

    assert cursor_of(final_state(output)) == {"createdAt": "2024-01-31 00:00:00"}


def test_window_end_is_now_minus_the_lookback_window(requests_mock):
    requests = serve_export(requests_mock, lambda request: Body(b""))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    config = make_config(start_date=(now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), lookback_window=10)

    read_stream("email_send", config, SyncMode.incremental)
    after = datetime.now(timezone.utc).replace(tzinfo=None)

    end = parse(window_of(requests[-1])[1])
    assert now - timedelta(minutes=10, seconds=1) <= end <= after - timedelta(minutes=10)


def test_records_on_window_edges_are_emitted_exactly_once_across_two_syncs(requests_mock):
    edge_records = [
        event("2024-01-10 00:00:00 +00:00", messageId="on-first-start"),
        event("2024-01-19 23:59:59.999 +00:00", messageId="just-before-end"),
        event("2024-01-20 00:00:00 +00:00", messageId="on-second-start"),
        event("2024-01-25 00:00:00 +00:00", messageId="later"),
    ]
    # A sloppy server that ignores the window and always answers everything.
    serve_export(requests_mock, lambda request: Body(jsonl(edge_records)))

    first = read_stream(
        "email_send",
        make_config(start_date="2024-01-10T00:00:00Z", end_date="2024-01-20T00:00:00Z"),
        SyncMode.incremental,
    )
    second = read_stream(
        "email_send",
        make_config(start_date="2024-01-10T00:00:00Z", end_date="2024-01-30T00:00:00Z"),
        SyncMode.incremental,
        state=final_state(first),
    )

    assert [r["messageId"] for r in records_of(first)] == ["on-first-start", "just-before-end"]
    assert [r["messageId"] for r in records_of(second)] == ["on-second-start", "later"]


def test_malformed_lines_are_skipped_and_counted_in_a_warning(requests_mock):
    body = jsonl(JANUARY[:2]) + b'{"createdAt": "2024-01-0\n<html>oops</html>\n\n[1, 2]\n' + jsonl(JANUARY[2:3])
    serve_export(requests_mock, lambda request: Body(body if request.url.find("2024-01-01") > 0 else b""))

    output = read_stream("email_send", BACKFILL, SyncMode.incremental)

    assert len(records_of(output)) == 3
    warnings = [m.log.message for m in output.logs if m.log.level.name == "WARN"]
    assert any("email_send" in w and "3 malformed" in w and "2024-01-01 00:00:00" in w for w in warnings), warnings


def test_upstream_connector_state_loads(requests_mock):
    requests = serve_export(requests_mock, lambda request: Body(b""))

    for upstream_value in ["2024-01-30T23:59:58+00:00", "2024-01-30 23:59:58 +00:00", "2024-01-30 23:59:58.123000 +00:00"]:
        del requests[:]
        read_stream("email_send", {**BACKFILL, "late_event_horizon": 0}, SyncMode.incremental, state={"createdAt": upstream_value})
        assert window_of(requests[0])[0] == "2024-01-30 23:59:58", upstream_value


def test_upstream_state_of_a_stream_that_never_had_data_starts_at_start_date(requests_mock):
    requests = serve_export(requests_mock, lambda request: Body(b""))

    read_stream("email_send", BACKFILL, SyncMode.incremental, state={})

    assert window_of(requests[0])[0] == "2024-01-01 00:00:00"


def test_a_data_type_the_project_does_not_have_is_skipped_with_a_warning(requests_mock):
    requests_mock.get(
        EXPORT_URL,
        status_code=400,
        json={"msg": "Invalid dataTypeName whatsAppSend for this project", "code": "BadParams"},
    )

    output = read_stream("whatsapp_send", BACKFILL, SyncMode.incremental)

    assert not output.errors, "an unavailable channel does not fail the sync"
    assert records_of(output) == []
    assert any("whatsapp_send" in w and "whatsAppSend" in w for w in warnings_of(output))
    assert requests_mock.call_count == 1, "not retried"
    assert all(s.get("createdAt", "2024-01-01 00:00:00") == "2024-01-01 00:00:00" for s in states(output)), (
        "the state does not move past data that was never read"
    )


def test_an_alternative_spelling_of_the_data_type_is_tried(requests_mock):
    def answer(request, context):
        if data_type_of(request) == "unknownSession":
            context.status_code = 400
            return b'{"msg": "Invalid dataTypeName unknownSession", "code": "BadParams"}'
        return jsonl(in_window([event("2024-01-02 00:00:00 +00:00", sessionId="s1")], request))

    requests_mock.get(EXPORT_URL, body=lambda request, context: io.BytesIO(answer(request, context)))

    output = read_stream("anonymous_session", BACKFILL, SyncMode.incremental)

    assert [r["sessionId"] for r in records_of(output)] == ["s1"]


def test_other_bad_requests_still_fail_the_stream(requests_mock):
    requests_mock.get(EXPORT_URL, status_code=400, json={"msg": "startDateTime is invalid", "code": "BadParams"})

    output = read_stream("email_send", BACKFILL, SyncMode.incremental, expect_failure=True)

    assert "startDateTime is invalid" in output.errors[0].trace.error.message


def test_export_bodies_are_streamed_not_read_ahead_by_the_error_handler(requests_mock, monkeypatch):
    seen = []
    original = sync_export.iter_body_lines
    monkeypatch.setattr(sync_export, "iter_body_lines", lambda response: seen.append(response._content_consumed) or original(response))
    serve_export(requests_mock, lambda request: Body(jsonl(in_window(JANUARY, request))))

    read_stream("email_send", BACKFILL, SyncMode.incremental)

    assert seen and not any(seen), "nothing may read an export body before the line loop: memory would grow with it"


def warnings_of(output):
    return [m.log.message for m in output.logs if m.log.level.name == "WARN"]


def test_keys_of_a_big_window_spill_to_disk_and_still_prevent_duplicates_after_a_drop(requests_mock, monkeypatch):
    monkeypatch.setattr(emitted_keys, "KEYS_IN_MEMORY", 4)
    spilled = []
    monkeypatch.setattr(emitted_keys.EmittedKeys, "spill_if_full",
                        lambda self, spill=emitted_keys.EmittedKeys.spill_if_full: (spilled.append(len(self)), spill(self)))
    attempts = []

    def answer(request):
        attempts.append(window_of(request))
        body = jsonl(in_window(JANUARY, request))
        return Body(body, cut_after=len(body) * 2 // 3, fail_with=ConnectionResetError("reset")) if len(attempts) == 1 else Body(body)

    serve_export(requests_mock, answer)

    ids = [r["messageId"] for r in records_of(read_stream("email_send", BACKFILL, SyncMode.incremental))]

    assert len(spilled) >= 4, "the first attempt's keys went to disk, four at a time"
    assert sorted(ids) == sorted(e["messageId"] for e in JANUARY) and len(ids) == len(set(ids))


def test_emitted_keys_keep_their_order_across_spills_and_remove_their_file():
    keys = emitted_keys.EmittedKeys(in_memory=3)
    for key in range(-5, 6):
        keys.recent.append(key)
        keys.spill_if_full()
    assert (list(keys), len(keys), len(keys.recent)) == (list(range(-5, 6)), 11, 2)
    spill_file = keys._spilled
    keys.close()
    assert spill_file.closed

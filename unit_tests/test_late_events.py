"""The late-event ledger, the re-read schedule and the per-record rule (source_iterable/export)."""

from datetime import datetime, timezone

import pytest
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_iterable.export.late_records import LateRecords, stamp_seconds
from source_iterable.export.ledger import MAX_KEYS, VISIBILITY_SLACK_S, ReadLedger, Segment, key_created, record_key
from source_iterable.export.trailing import TAIL_S, reread

HOUR, DAY = 3600, 86_400
H = DAY
T0 = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp())


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def test_a_later_read_replaces_what_it_covers_and_keeps_the_rest():
    ledger = ReadLedger(H)
    early, replaced = record_key("a", T0 + HOUR), record_key("b", T0 + 5 * HOUR)
    ledger.record(T0, T0 + 10 * HOUR, T0 + 10 * HOUR, [early, replaced])
    ledger.record(T0 + 4 * HOUR, T0 + 12 * HOUR, T0 + 12 * HOUR, [record_key("c", T0 + 11 * HOUR)])

    assert [(s.low - T0, s.high - T0, s.read_at - T0) for s in ledger.segments] == [
        (0, 4 * HOUR, 10 * HOUR),
        (4 * HOUR, 12 * HOUR, 12 * HOUR),
    ]
    assert ledger.segment_at(T0 + 3 * HOUR).keys == {early}, "a cut segment keeps the keys of what it still covers"
    assert key_created(early) == T0 + HOUR
    assert ledger.segment_at(T0 + 12 * HOUR) is None


def test_closed_segments_drop_their_keys_and_far_older_ones_are_forgotten():
    ledger = ReadLedger(H)
    kept = record_key("k", T0)
    ledger.record(T0, T0 + HOUR, T0 + HOUR, [kept])
    ledger.record(T0 + HOUR, T0 + 2 * HOUR, T0 + 2 * HOUR + H + VISIBILITY_SLACK_S, [record_key("m", T0 + HOUR)])
    (old, closed) = ledger.segments
    assert closed.closed(H) and not closed.keys, "every record within the horizon was returned: keys are useless"
    assert not old.closed(H) and old.keys == {kept}

    ledger.record(T0 + 10 * DAY, T0 + 10 * DAY + HOUR, T0 + 10 * DAY + HOUR, [])
    assert ledger.segments[0].low == T0, "an open segment is kept, whatever its age"
    assert all(s.low != T0 + HOUR for s in ledger.segments), "a closed segment far older than a re-read reaches goes"


def test_the_state_round_trips_and_a_foreign_value_is_a_clear_error():
    ledger = ReadLedger(H)
    ledger.record(T0, T0 + HOUR, T0 + HOUR, [record_key("e1", T0), record_key("e2", T0 + 1)])
    assert ReadLedger.from_state("email_send", ledger.to_state(), H).segments == ledger.segments
    for bad in [{"version": 99, "segments": []}, {"version": 1, "segments": [[1, 0, 2, ""]]}, "yesterday", [1]]:
        with pytest.raises(AirbyteTracedException, match="email_send.*late_events"):
            ReadLedger.from_state("email_send", bad, H)


def test_keys_beyond_the_cap_are_dropped_oldest_first_and_counted():
    ledger = ReadLedger(H)
    ledger.record(T0, T0 + HOUR, T0 + HOUR, [record_key(str(n), T0) for n in range(MAX_KEYS)])
    ledger.record(T0 + HOUR, T0 + 2 * HOUR, T0 + 2 * HOUR, [record_key(str(n), T0 + HOUR) for n in range(10)])
    assert ledger.segments[0].keys == frozenset() and len(ledger.segments[1].keys) == 10
    assert ledger.dropped_keys == MAX_KEYS, "what the state forgets is counted, for the warning"


def test_a_first_sync_reads_only_the_new_range():
    assert reread(ReadLedger(H), T0, T0 + HOUR, T0 - DAY, T0 + HOUR).low == T0


def test_each_sync_re_reads_a_tail_of_at_most_the_new_ranges_length():
    ledger = ReadLedger(H)
    ledger.record(T0 - 2 * HOUR, T0, T0 + 300, [])
    assert reread(ledger, T0, T0 + HOUR, T0 - DAY, T0 + HOUR).low == T0 - TAIL_S
    assert reread(ledger, T0, T0 + 600, T0 - DAY, T0 + 900).low == T0 - 600, "frequent syncs re-read less"


def test_about_once_per_horizon_the_read_reaches_back_to_the_oldest_open_created_at():
    ledger = ReadLedger(H)
    ledger.record(T0 - 2 * DAY, T0, T0 + 300, [])
    oldest = T0 + 300 - VISIBILITY_SLACK_S - H
    hourly = [reread(ledger, T0 + k * HOUR, T0 + (k + 1) * HOUR, T0 - 3 * DAY, T0 + (k + 1) * HOUR + 300) for k in range(24)]
    deep = [k for k, r in enumerate(hourly) if r.reach == "horizon"]
    assert deep and deep[0] == 22, "the last hourly sync before a record indexed after the read would wait a horizon"
    assert hourly[deep[0]].low == oldest
    assert reread(ledger, T0, T0 + DAY, T0 - 3 * DAY, T0 + DAY + 300).reach == "horizon", "a daily sync reaches back each time"
    assert reread(ledger, T0, T0 + DAY, oldest + HOUR, T0 + DAY + 300).low == oldest + HOUR, "never before start_date"


def test_a_re_read_record_is_emitted_only_if_the_read_that_covered_it_could_not_have_returned_it():
    ledger = ReadLedger(H)
    read_at = T0 + HOUR
    returned_late = record_key("late-but-returned", T0 + 60)
    ledger.record(T0, T0 + HOUR - 300, read_at, [returned_late])
    late = LateRecords(ledger, T0 + HOUR - 300, T0, T0 + 2 * HOUR, "documentCreatedAt")
    seen_until = iso(read_at - VISIBILITY_SLACK_S)[:19]

    assert late.emitted_before(iso(T0 + 60), iso(read_at - VISIBILITY_SLACK_S - 1)[:19], "old")
    assert late.emitted_before(iso(T0 + 60), iso(read_at - 30)[:19], "late-but-returned"), "remembered by key"
    assert not late.emitted_before(iso(T0 + 60), iso(read_at - 30)[:19], "late-and-missed")
    assert not late.emitted_before(iso(T0 + 60), iso(read_at + 2 * HOUR)[:19], "indexed after the read")
    assert not late.emitted_before(iso(T0 + 60), None, "no stamp")
    assert (late.already_emitted, late.late, late.unstamped) == (2, 2, 1)
    assert late.max_delay_s == read_at + 2 * HOUR - (T0 + 60)
    assert seen_until < iso(read_at - 30)[:19]


def test_stamps_are_read_nested_or_dotted_in_any_of_iterables_forms():
    late = LateRecords(ReadLedger(H), T0, T0, T0 + HOUR, "documentCreatedAt")
    assert late.stamp({"itblInternal": {"documentCreatedAt": "2024-03-01 10:00:00 +00:00"}}) == "2024-03-01T10:00:00"
    assert late.stamp({"itblInternal.documentCreatedAt": "2024-03-01T12:00:00+02:00"}) == "2024-03-01T10:00:00"
    assert late.stamp({"itblInternal": {"documentUpdatedAt": "2024-03-01 10:00:00 +00:00"}}) is None
    assert stamp_seconds("2024-03-01 10:00:00.123 +00:00") == "2024-03-01T10:00:00"
    assert stamp_seconds("soon") is None


def test_a_segment_the_ledger_lacks_means_emit():
    late = LateRecords(ReadLedger(H), T0 + HOUR, T0, T0 + 2 * HOUR, "documentCreatedAt")
    assert not late.emitted_before(iso(T0 + 60), iso(T0 + 90)[:19], "x") and late.unknown == 1
    assert Segment(T0, T0 + 1, T0 + 1).oldest_open(H) == T0


def test_a_deep_re_read_closes_what_it_covered_so_the_next_sync_only_re_reads_its_tail():
    ledger = ReadLedger(H)
    ledger.record(T0 - 2 * DAY, T0, T0 + 301, [])
    deep = reread(ledger, T0, T0 + HOUR, T0 - 3 * DAY, T0 + HOUR + 300 + H)
    assert deep.reach == "horizon"
    ledger.record(deep.low, T0 + HOUR + H, T0 + HOUR + H + 300, [])

    after = reread(ledger, T0 + HOUR + H, T0 + 2 * HOUR + H, T0 - 3 * DAY, T0 + 2 * HOUR + H + 300)
    assert after.reach == "tail", "everything the deep re-read covered a horizon back is closed"
    assert all(s.closed(H) for s in ledger.segments if s.high <= deep.low + HOUR), ledger.segments

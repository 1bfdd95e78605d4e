"""The conformance checker itself: it must catch each way a record can break its schema."""

import pytest

from integration_tests.conformance import is_rfc3339, violations

TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
SCHEMA = {
    "properties": {
        "eventHash": {"type": "string"},
        "createdAt": TIMESTAMP,
        "campaignId": {"type": ["integer", "null"]},
        "itblInternal": {"type": ["object", "null"], "properties": {"documentCreatedAt": TIMESTAMP}},
        "items": {"type": ["array", "null"], "items": {"type": "object", "properties": {"price": {"type": ["number", "null"]}}}},
    }
}
GOOD = {
    "eventHash": "k",
    "createdAt": "2024-01-24T16:48:00+00:00",
    "campaignId": 7,
    "itblInternal": {"documentCreatedAt": "2024-01-24T16:48:00.123+00:00", "other": 1},
    "items": [{"price": 3}],
}


@pytest.mark.parametrize(
    "value, valid",
    [
        ("2024-01-24T16:48:00+00:00", True),
        ("2024-01-24T16:48:00.123456Z", True),
        ("2024-01-24 16:48:00 +00:00", False),
        ("2024-01-24T16:48:00", False),
        ("2024-02-30T16:48:00+00:00", False),
        ("2024-01-24T24:00:00+00:00", False),
        ("2024-01-24", False),
    ],
)
def test_rfc3339_is_checked_strictly(value, valid):
    assert is_rfc3339(value) is valid


def test_a_record_that_keeps_its_schema_has_no_violations():
    assert violations("s", GOOD, SCHEMA, [["eventHash"]]) == []


@pytest.mark.parametrize(
    "change, reported",
    [
        ({"itblInternal": {"documentCreatedAt": "2024-01-24 16:48:00 +00:00"}}, "s.itblInternal.documentCreatedAt"),
        ({"campaignId": [1, 2]}, "s.campaignId"),
        ({"campaignId": True}, "s.campaignId"),
        ({"items": [{"price": "3"}]}, "s.items[0].price"),
        ({"messageBusId": "x"}, "s.messageBusId"),
        ({"eventHash": None}, "s.eventHash"),
    ],
)
def test_each_broken_rule_is_reported_with_stream_field_and_value(change, reported):
    problems = violations("s", {**GOOD, **change}, SCHEMA, [["eventHash"]])

    assert problems and all(p.startswith(reported) for p in problems), problems

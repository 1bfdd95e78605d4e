"""The record contract: placement, conformance at any depth, and keys (record_contract.py)."""

import pytest

from source_iterable import record_contract
from source_iterable.record_contract import ContractViolation, RecordContract, rfc3339_utc

TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
EVENT_SCHEMA = {
    "properties": {
        "createdAt": TIMESTAMP,
        "campaignId": {"type": ["integer", "null"]},
        "total": {"type": ["number", "null"]},
        "isGhostSend": {"type": ["boolean", "null"]},
        "channelIds": {"type": ["array", "null"], "items": {"type": "integer"}},
        "itblInternal": {
            "type": ["object", "null"],
            "additionalProperties": True,
            "properties": {"documentCreatedAt": TIMESTAMP, "documentUpdatedAt": TIMESTAMP},
        },
        "additionalFields": {"type": ["object", "null"], "additionalProperties": True},
    }
}


def conform(record, schema=EVENT_SCHEMA, overflow="additionalFields", **options):
    return RecordContract(schema, overflow, **options).conform(record)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2021-04-14 16:25:55 +00:00", "2021-04-14T16:25:55+00:00"),
        ("2021-04-14 16:25:55.123 +00:00", "2021-04-14T16:25:55.123+00:00"),
        ("2021-04-14T16:48:01+00:00", "2021-04-14T16:48:01+00:00"),
        ("2021-04-14T16:48:01Z", "2021-04-14T16:48:01+00:00"),
        ("2021-04-14 18:48:01 +02:00", "2021-04-14T16:48:01+00:00"),
        ("2021-04-14 16:48:01", "2021-04-14T16:48:01+00:00"),
        ("1954-07-03", "1954-07-03T00:00:00+00:00"),
        ("2021-13-14 16:25:55 +00:00", None),
        ("2021-04-14 25:25:55 +00:00", None),
        ("1954-13-03", None),
        ("yesterday", None),
        (1618417553314, None),
        (None, None),
    ],
)
def test_iterable_timestamps_become_rfc_3339_utc_or_nothing(raw, expected):
    assert rfc3339_utc(raw) == expected


def test_declared_values_conform_at_every_depth_and_undeclared_fields_overflow():
    record = {
        "createdAt": "2024-01-24 16:48:00 +00:00",
        "campaignId": 7,
        "itblInternal": {"documentCreatedAt": "2024-01-24 16:49:00 +00:00", "documentUpdatedAt": None},
        "messageBusId": "0100-abc",
    }

    assert conform(record) == {
        "createdAt": "2024-01-24T16:48:00+00:00",
        "campaignId": 7,
        "itblInternal": {"documentCreatedAt": "2024-01-24T16:49:00+00:00", "documentUpdatedAt": None},
        "additionalFields": {"messageBusId": "0100-abc"},
    }, "a nested Iterable timestamp is converted like a top-level one; an undeclared field is kept aside"


def test_a_value_that_does_not_fit_its_column_moves_to_overflow_under_its_path():
    record = {
        "createdAt": "not a time",
        "campaignId": "7",
        "isGhostSend": 1,
        "itblInternal": {"documentCreatedAt": 1706114880000},
        "channelIds": [1, "two"],
    }

    assert conform(record) == {
        "itblInternal": {},
        "additionalFields": {
            "createdAt": "not a time",
            "campaignId": "7",
            "isGhostSend": 1,
            "itblInternal.documentCreatedAt": 1706114880000,
            "channelIds": [1, "two"],
        },
    }, "a typed destination would reject each of these values in its column"


def test_json_types_are_checked_the_json_way():
    shaped = conform({"campaignId": 5.0, "total": 3, "isGhostSend": True, "channelIds": [1, 2]})

    assert shaped == {"campaignId": 5, "total": 3, "isGhostSend": True, "channelIds": [1, 2]}
    assert conform({"campaignId": True})["additionalFields"] == {"campaignId": True}, "a bool is no integer"
    assert conform({"campaignId": 5.5})["additionalFields"] == {"campaignId": 5.5}


USER_SCHEMA = {
    "properties": {
        "email": {"type": ["string", "null"]},
        "itblInternal": {"type": ["object", "null"], "properties": {"emailDomain": {"type": ["string", "null"]}}},
        "shoppingPreferences": {
            "type": ["object", "null"],
            "additionalProperties": True,
            "properties": {"vip": {"type": ["object", "null"], "properties": {"since": TIMESTAMP}}},
        },
        "itblDS.score": {"type": ["number", "null"]},
        "dataFields": {"type": ["object", "null"], "additionalProperties": True},
    }
}


def test_dotted_keys_fill_the_declared_objects_they_name():
    record = {
        "email": "a@b.c",
        "itblInternal.emailDomain": "b.c",
        "shoppingPreferences.vip.since": "2023-02-12 10:11:27 +00:00",
        "shoppingPreferences.addedLater": "x",
        "itblDS.score": 0.5,
        "favorite.color": "green",
    }

    assert conform(record, USER_SCHEMA, "dataFields") == {
        "email": "a@b.c",
        "itblInternal": {"emailDomain": "b.c"},
        "shoppingPreferences": {"vip": {"since": "2023-02-12T10:11:27+00:00"}, "addedLater": "x"},
        "itblDS.score": 0.5,
        "dataFields": {"favorite.color": "green"},
    }, "declared structure holds the value; a key declared with its dot stays; an unknown object overflows"


def test_placement_of_dotted_keys_is_the_same_on_every_record_past_the_cache_bound(monkeypatch):
    monkeypatch.setattr(record_contract, "DOTTED_PATHS_CACHED", 1)
    contract = RecordContract(USER_SCHEMA, "dataFields")
    records = [{"itblInternal.emailDomain": f"d{n}.c", "favorite.color": "green", "shoppingPreferences.vip.since": "2024-01-02"}
               for n in range(3)]

    shaped = [contract.conform(dict(record)) for record in records]

    assert [s["itblInternal"]["emailDomain"] for s in shaped] == ["d0.c", "d1.c", "d2.c"]
    assert all(s["dataFields"] == {"favorite.color": "green"} for s in shaped), "an unplaceable key overflows every time"
    assert all(s["shoppingPreferences"] == {"vip": {"since": "2024-01-02T00:00:00+00:00"}} for s in shaped)
    assert len(contract._dotted_paths) == 1, "names past the bound are placed without being remembered"


def test_dotted_keys_merge_with_an_object_sent_whole():
    record = {"shoppingPreferences": {"vip": {"since": "2023-02-12 10:11:27 +00:00"}}, "shoppingPreferences.tier": "gold"}

    shaped = conform(record, USER_SCHEMA, "dataFields")

    assert shaped["shoppingPreferences"] == {"vip": {"since": "2023-02-12T10:11:27+00:00"}, "tier": "gold"}


def test_an_existing_overflow_object_is_merged_not_nested():
    shaped = conform({"email": "a@b.c", "dataFields": {"x": 1}, "y": 2}, USER_SCHEMA, "dataFields")

    assert shaped == {"email": "a@b.c", "dataFields": {"x": 1, "y": 2}}


def test_a_stream_without_an_overflow_object_refuses_an_undeclared_field():
    with pytest.raises(ContractViolation, match="mystery"):
        conform({"email": "a@b.c", "mystery": 1}, {"properties": {"email": {"type": "string"}}}, overflow=None)


METRICS_SCHEMA = {
    "required": ["experimentId", "templateId"],
    "properties": {
        "experimentId": {"type": "integer"},
        "templateId": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "creationDate": TIMESTAMP,
        "confidence": {"type": ["number", "null"]},
        "additionalFields": {"type": ["object", "null"], "additionalProperties": True},
    },
}


def test_csv_headers_fill_their_columns_whatever_their_spelling_and_cells_take_the_column_type():
    row = {
        "Experiment Id": "310000",
        "Template Id": " 7100001",
        "Name": "1234",
        "Creation Date": "2023-12-25 01:52:47 +00:00",
        "Confidence": "",
        "Purchases / M (Email)": "1.5",
    }

    assert conform(row, METRICS_SCHEMA, csv_rows=True) == {
        "experimentId": 310000,
        "templateId": 7100001,
        "name": "1234",
        "creationDate": "2023-12-25T01:52:47+00:00",
        "additionalFields": {"Purchases / M (Email)": 1.5},
    }, "a text column stays text even when it looks numeric; an empty cell is no value"


def test_a_record_whose_key_stays_empty_fails_naming_its_fields():
    row = {"Experiment": "310000", "Variant Template": "7100001"}

    with pytest.raises(ContractViolation) as failure:
        conform(row, METRICS_SCHEMA, csv_rows=True)

    assert "experimentId, templateId" in str(failure.value) and "Variant Template" in str(failure.value), (
        "the error names the missing key columns and the header Iterable sent"
    )

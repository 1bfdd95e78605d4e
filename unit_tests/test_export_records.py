"""Record rules of the export streams: timestamps, keys and undeclared fields."""

import pytest

from source_iterable.export_records import RecordShaper, content_key, fits, iso_utc, value_types


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2021-04-14 16:25:55 +00:00", "2021-04-14T16:25:55+00:00"),
        ("2021-04-14 16:25:55.123 +00:00", "2021-04-14T16:25:55.123+00:00"),
        ("2021-04-14T16:48:01+00:00", "2021-04-14T16:48:01+00:00"),
        ("2021-04-14T16:48:01Z", "2021-04-14T16:48:01+00:00"),
        ("2021-04-14 18:48:01 +02:00", "2021-04-14T16:48:01+00:00"),
        ("2021-04-14 16:48:01", "2021-04-14T16:48:01+00:00"),
        ("yesterday", None),
        (1618417553314, None),
        (None, None),
    ],
)
def test_iterable_timestamps_become_iso_8601_utc(raw, expected):
    assert iso_utc(raw) == expected


def test_event_key_is_stable_for_the_same_line_and_differs_for_another():
    line = b'{"createdAt":"2021-04-14 16:25:55 +00:00","messageId":"m1","ip":"1.2.3.4"}'
    same_open_other_ip = b'{"createdAt":"2021-04-14 16:25:55 +00:00","messageId":"m1","ip":"5.6.7.8"}'

    assert content_key(line) == content_key(bytes(line))
    assert content_key(line) != content_key(same_open_other_ip), (
        "two opens of one message in the same second are two events"
    )


def users_shaper() -> RecordShaper:
    return RecordShaper(
        cursor_field="profileUpdatedAt",
        timestamp_fields=frozenset({"profileUpdatedAt", "signupDate"}),
        declared_fields=frozenset({"email", "userId", "profileUpdatedAt", "signupDate", "userKey", "dataFields"}),
        key_field="userKey",
        overflow_field="dataFields",
        identity_fields=("email", "userId"),
    )


def test_user_custom_fields_move_into_data_fields_and_standard_fields_stay():
    record = {
        "email": "jane@example.com",
        "userId": "u-1",
        "profileUpdatedAt": "2021-04-14 16:45:13 +00:00",
        "signupDate": "2021-04-14T16:46:01+00:00",
        "firstName": "Jane",
        "itblInternal.emailDomain": "example.com",
        "favorites": {"color": "green"},
    }

    shaped = users_shaper().shape(dict(record), b"{}", iso_utc(record["profileUpdatedAt"]))

    assert shaped == {
        "email": "jane@example.com",
        "userId": "u-1",
        "profileUpdatedAt": "2021-04-14T16:45:13+00:00",
        "signupDate": "2021-04-14T16:46:01+00:00",
        "userKey": "jane@example.com",
        "dataFields": {"firstName": "Jane", "itblInternal.emailDomain": "example.com", "favorites": {"color": "green"}},
    }


def test_user_key_falls_back_to_the_user_id():
    shaped = users_shaper().shape({"userId": "u-9", "profileUpdatedAt": None}, b"{}", None)

    assert shaped["userKey"] == "userId:u-9"


def test_a_record_with_only_declared_fields_is_left_as_it_is():
    shaper = RecordShaper("createdAt", frozenset({"createdAt"}), frozenset({"createdAt", "email", "eventHash"}), "eventHash", "additionalFields")

    shaped = shaper.shape({"createdAt": "x", "email": "a@b.c"}, b"line", "2024-01-01T00:00:00+00:00")

    assert shaped == {"createdAt": "2024-01-01T00:00:00+00:00", "email": "a@b.c", "eventHash": content_key(b"line")}


def test_a_date_alone_is_its_midnight_utc():
    assert iso_utc("1954-07-03") == "1954-07-03T00:00:00+00:00"
    assert iso_utc("1954-13-03") is None


def test_user_values_that_do_not_fit_their_declared_type_are_kept_in_data_fields():
    shaper = RecordShaper(
        cursor_field="profileUpdatedAt",
        timestamp_fields=frozenset({"profileUpdatedAt"}),
        declared_fields=frozenset({"email", "interests", "isVip", "points", "dataFields", "userKey"}),
        key_field="userKey",
        overflow_field="dataFields",
        identity_fields=("email",),
        checked_types=value_types(
            {"interests": {"type": ["string", "null"]}, "isVip": {"type": ["boolean", "null"]}, "points": {"type": ["integer", "null"]}}
        ),
    )

    shaped = shaper.shape({"email": "a@b.c", "interests": ["golf", "chess"], "isVip": True, "points": 3}, b"{}", None)

    assert shaped == {
        "email": "a@b.c",
        "isVip": True,
        "points": 3,
        "dataFields": {"interests": ["golf", "chess"]},
        "userKey": "a@b.c",
    }


def test_json_types_are_checked_the_json_way():
    types = value_types({"b": {"type": "boolean"}, "i": {"type": ["integer", "null"]}, "n": {"type": "number"}, "s": {"type": "string"}})

    assert fits(True, types["b"]) and not fits(True, types["i"]), "a bool is not an integer to JSON schema"
    assert fits(3, types["n"]) and fits(3.5, types["n"]) and not fits(3.5, types["i"])
    assert fits(None, types["s"])

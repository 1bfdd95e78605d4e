"""Keys of export records: the stable event key and the users key (export_records.py)."""

import orjson

from source_iterable.export.records import RecordShaper, event_key

SCHEMA = {
    "properties": {
        "email": {"type": ["string", "null"]},
        "userId": {"type": ["string", "null"]},
        "profileUpdatedAt": {"type": ["string", "null"], "format": "date-time"},
        "userKey": {"type": "string"},
        "dataFields": {"type": ["object", "null"]},
    }
}


def test_the_event_key_ignores_key_order_whitespace_and_escaping():
    sync_line = b'{"createdAt":"2021-04-14 16:25:55 +00:00","email":"jos\\u00e9@example.com","ip":"1.2.3.4"}'
    job_line = '{"ip": "1.2.3.4",  "email": "jos\u00e9@example.com", "createdAt": "2021-04-14 16:25:55 +00:00"}'.encode()

    assert event_key(orjson.loads(sync_line)) == event_key(orjson.loads(job_line)), (
        "the sync export and an export job's file of the same event give the same key"
    )


def test_the_event_key_differs_for_another_event_but_not_for_a_reindexed_one():
    open_ = {"createdAt": "2021-04-14 16:25:55 +00:00", "messageId": "m1", "ip": "1.2.3.4"}
    same_open_other_ip = dict(open_, ip="5.6.7.8")
    reindexed = dict(open_, itblInternal={"documentUpdatedAt": "2021-04-15 00:00:00 +00:00"})

    assert event_key(open_) != event_key(same_open_other_ip), "two opens of one message in one second are two events"
    assert event_key(open_) == event_key(reindexed), "Iterable's index bookkeeping is not part of the event"


def test_users_are_keyed_by_email_else_by_user_id_and_conformed():
    shaper = RecordShaper(SCHEMA, key_field="userKey", overflow_field="dataFields", identity_fields=("email", "userId"))

    jane = shaper.shape({"email": "jane@example.com", "profileUpdatedAt": "2021-04-14 16:45:13 +00:00", "firstName": "Jane"})
    no_email = shaper.shape({"userId": "u-9"})

    assert jane == {
        "email": "jane@example.com",
        "profileUpdatedAt": "2021-04-14T16:45:13+00:00",
        "dataFields": {"firstName": "Jane"},
        "userKey": "jane@example.com",
    }
    assert no_email["userKey"] == "userId:u-9"


def test_events_are_keyed_by_their_content_as_iterable_sent_it():
    shaper = RecordShaper({"properties": {"createdAt": {"type": "string", "format": "date-time"}, "eventHash": {}}}, "eventHash", None)
    raw = {"createdAt": "2021-04-14 16:25:55 +00:00"}

    assert shaper.shape(dict(raw)) == {"createdAt": "2021-04-14T16:25:55+00:00", "eventHash": event_key(raw)}

"""Turning one parsed export record into the record a destination receives."""

import hashlib
from typing import Any, Dict, Mapping, Optional, Sequence

import orjson

from source_iterable.record_contract import RecordContract

# Iterable's index bookkeeping, not part of the event: it changes when Iterable re-indexes one.
NOT_PART_OF_THE_EVENT = "itblInternal"


def event_key(record: Mapping[str, Any]) -> str:
    """A stable key for an event as Iterable exported it: its content, whatever the line's key
    order, whitespace or escaping (the sync export and an export job's file give the same key).

    Iterable's events carry no id of their own; two events that differ in any field (two opens of
    one message in the same second from two IPs) get different keys.
    """
    if NOT_PART_OF_THE_EVENT in record:
        record = {name: value for name, value in record.items() if name != NOT_PART_OF_THE_EVENT}
    return hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


class RecordShaper:
    """The record contract of one export stream, plus its primary key.

    - the record is conformed to the stream's schema (`RecordContract`);
    - `key_field` gets the primary key: the first of `identity_fields` the record has (users:
      email, else `userId:<userId>`), or else the event's content key (`event_key`).
    """

    def __init__(
        self,
        schema: Mapping[str, Any],
        key_field: Optional[str],
        overflow_field: Optional[str],
        identity_fields: Sequence[str] = (),
    ) -> None:
        self._contract = RecordContract(schema, overflow_field)
        self._key_field = key_field
        self._identity_fields = tuple(identity_fields)

    def shape(
        self, record: Dict[str, Any], cursor_field: str = "", cursor_value: Optional[str] = None, key: Optional[str] = None
    ) -> Dict[str, Any]:
        """The record to emit (`record` itself, updated, where it can be); `cursor_value` is the
        cursor already in RFC 3339, if known; `key` its primary key, if already computed (`key`)."""
        if self._key_field and key is None:
            key = self.key(record)  # of the record as Iterable sent it
        shaped = self._contract.conform(record, cursor_field, cursor_value)
        if self._key_field:
            shaped[self._key_field] = key
        return shaped

    def key(self, record: Mapping[str, Any]) -> str:
        """The primary key of the record as Iterable sent it."""
        for position, name in enumerate(self._identity_fields):
            value = record.get(name)
            if value:
                return str(value) if position == 0 else f"{name}:{value}"
        return event_key(record)

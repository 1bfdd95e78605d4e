"""Turning one raw export line into the record a destination receives."""

import hashlib
from datetime import date, datetime, timezone
from typing import Any, Dict, FrozenSet, Mapping, Optional, Sequence

UTC_SUFFIX = " +00:00"
ISO_UTC_SUFFIX = "+00:00"
PARSE_FORMATS = (
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S.%f %z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)


def iso_utc(value: Any) -> Optional[str]:
    """Iterable's `2021-04-14 16:25:55 +00:00` as ISO-8601 UTC `2021-04-14T16:25:55+00:00`.

    Fractions of a second are kept; a date alone is its midnight UTC. Values that are not a
    timestamp give None.
    """
    if not isinstance(value, str):
        return None
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        return f"{value}T00:00:00{ISO_UTC_SUFFIX}" if _is_date(value) else None
    if len(value) < 19:
        return None
    if value.endswith(UTC_SUFFIX) and value[10] == " ":
        return f"{value[:10]}T{value[11:-7]}{ISO_UTC_SUFFIX}"
    if value.endswith(ISO_UTC_SUFFIX) and value[10] == "T":
        return value
    return _parse_to_iso_utc(value)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parse_to_iso_utc(value: str) -> Optional[str]:
    text = value[:-1] + "+0000" if value.endswith("Z") else value
    for fmt in PARSE_FORMATS:
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat()
    return None


# orjson gives exactly these types, so `type(value) in ...` is exact (and keeps bool apart from int).
PYTHON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def value_types(properties: Mapping[str, Any]) -> Dict[str, FrozenSet[type]]:
    """The Python types each declared property accepts (None always); untyped properties are left out."""
    accepted: Dict[str, FrozenSet[type]] = {}
    for name, spec in properties.items():
        declared = spec.get("type") if isinstance(spec, dict) else None
        names = (declared,) if isinstance(declared, str) else tuple(declared or ())
        types = frozenset(python_type for t in names for python_type in PYTHON_TYPES.get(t, ()))
        if types:
            accepted[name] = types | {type(None)}
    return accepted


def fits(value: Any, python_types: FrozenSet[type]) -> bool:
    return type(value) in python_types


def content_key(line: bytes) -> str:
    """A stable key for an export line: Iterable's events carry no id of their own."""
    return hashlib.blake2b(line, digest_size=16).hexdigest()


class RecordShaper:
    """Applies a stream's record rules to parsed export lines.

    - the cursor and the other `timestamp_fields` become ISO-8601 UTC;
    - `key_field` gets the primary key: the first of `identity_fields` the record has (users:
      email, else `userId:<userId>`), or else the content key of the raw line (events);
    - keys the stream's schema does not declare move into the `overflow_field` object, so
      destinations that keep only declared columns lose nothing; with `checked_types`, so do
      values whose type does not fit their declared column (an array in a `string` user field).
    """

    def __init__(
        self,
        cursor_field: str,
        timestamp_fields: FrozenSet[str],
        declared_fields: FrozenSet[str],
        key_field: Optional[str],
        overflow_field: Optional[str],
        identity_fields: Sequence[str] = (),
        checked_types: Optional[Mapping[str, FrozenSet[type]]] = None,
    ) -> None:
        self.cursor_field = cursor_field
        self._other_timestamps = tuple(f for f in timestamp_fields if f != cursor_field)
        self._declared = declared_fields
        self._key_field = key_field
        self._overflow_field = overflow_field
        self._identity_fields = tuple(identity_fields)
        self._checked_types = dict(checked_types or {})

    def shape(self, record: Dict[str, Any], line: bytes, cursor_iso: Optional[str]) -> Dict[str, Any]:
        if cursor_iso is not None:
            record[self.cursor_field] = cursor_iso
        for name in self._other_timestamps:
            value = record.get(name)
            if value is not None:
                record[name] = iso_utc(value) or value
        if self._overflow_field and (self._checked_types or not self._declared.issuperset(record.keys())):
            record = self._move_undeclared(record)
        if self._key_field:
            record[self._key_field] = self._key(record, line)
        return record

    def _key(self, record: Dict[str, Any], line: bytes) -> str:
        for position, name in enumerate(self._identity_fields):
            value = record.get(name)
            if value:
                return str(value) if position == 0 else f"{name}:{value}"
        return content_key(line)

    def _move_undeclared(self, record: Dict[str, Any]) -> Dict[str, Any]:
        declared: Dict[str, Any] = {}
        existing = record.get(self._overflow_field)
        overflow: Dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
        for name, value in record.items():
            if name == self._overflow_field and isinstance(value, dict):
                continue
            if name in self._declared and name != self._overflow_field and self._fits(name, value):
                declared[name] = value
            else:
                overflow[name] = value
        if overflow or existing is not None:
            declared[self._overflow_field] = overflow
        return declared

    def _fits(self, name: str, value: Any) -> bool:
        python_types = self._checked_types.get(name)
        return python_types is None or fits(value, python_types)

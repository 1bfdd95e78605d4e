"""An independent check of the record contract: does an emitted record keep its discovered schema?

Written apart from the connector's own rule (`source_iterable/record_contract.py`) so that a bug
there cannot hide itself: types are checked the JSON-schema way at every depth, `date-time`
values against RFC 3339 with a strict pattern and a calendar check (not a lenient parser), no
top-level field may be undeclared, and no primary-key field may be null.
"""

import re
from datetime import datetime
from typing import Any, Dict, List, Mapping, Sequence

RFC3339 = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.\d{1,9})?(?:Z|[+-](?P<offset_hours>\d{2}):(?P<offset_minutes>\d{2}))"
)


def is_rfc3339(value: str) -> bool:
    """`2024-01-24T16:48:00+00:00` yes; `2024-01-24 16:48:00 +00:00`, `2024-13-01T00:00:00Z` no."""
    match = RFC3339.fullmatch(value)
    if not match:
        return False
    parts = {name: int(text) for name, text in match.groupdict().items() if text is not None}
    if parts.get("offset_hours", 0) > 23 or parts.get("offset_minutes", 0) > 59:
        return False
    try:
        datetime(parts["year"], parts["month"], parts["day"], parts["hour"], parts["minute"], parts["second"])
    except ValueError:
        return False
    return True


JSON_TYPES = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def json_type(value: Any) -> str:
    """The JSON-schema type of a parsed JSON value (a bool is no integer)."""
    return JSON_TYPES.get(type(value), type(value).__name__)


def violations(
    stream: str, record: Mapping[str, Any], schema: Mapping[str, Any], primary_key: Sequence[Sequence[str]]
) -> List[str]:
    """Every way `record` breaks `schema`, each naming the stream, the field and the value."""
    properties = schema.get("properties") or {}
    problems: List[str] = []
    for name, value in record.items():
        if name not in properties:
            problems.append(f"{stream}.{name} = {value!r}: a top-level field the schema does not declare")
        else:
            _check(f"{stream}.{name}", value, properties[name], problems)
    for key_path in primary_key:
        value: Any = record
        for part in key_path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            problems.append(f"{stream}.{'.'.join(key_path)}: a primary-key field is null in {dict(record)!r}")
    return problems


def _check(path: str, value: Any, spec: Mapping[str, Any], problems: List[str]) -> None:
    declared = spec.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    actual = json_type(value)
    if types and not (actual in types or (actual == "integer" and "number" in types)):
        problems.append(f"{path} = {value!r}: a {actual}, declared {types}")
        return
    if actual == "string" and spec.get("format") == "date-time" and not is_rfc3339(value):
        problems.append(f"{path} = {value!r}: not an RFC 3339 date-time")
    elif actual == "object":
        sub_properties: Dict[str, Any] = spec.get("properties") or {}
        for name, inner in value.items():
            if name in sub_properties:
                _check(f"{path}.{name}", inner, sub_properties[name], problems)
            elif spec.get("additionalProperties") is False:
                problems.append(f"{path}.{name} = {inner!r}: not declared in a closed object")
    elif actual == "array" and isinstance(spec.get("items"), dict):
        for position, item in enumerate(value):
            _check(f"{path}[{position}]", item, spec["items"], problems)

"""The record contract: every value a stream emits fits the column its schema declares.

One rule for every stream (export, jobs, `users`, `events`, catalogue, metrics, templates):

- **Placement.** A field the schema declares stays in its column. Iterable's dotted keys
  (`itblInternal.emailDomain`, `shoppingPreferences.vip.since`) fill the declared object they
  name. Everything else goes into the stream's overflow object (`additionalFields`, `dataFields`
  for users) under the name Iterable gave it, so typed destinations, which keep declared columns
  only, lose nothing.
- **Conformance, at any depth.** `date-time` values become RFC 3339 UTC
  (`2024-01-24 16:48:00 +00:00` -> `2024-01-24T16:48:00+00:00`), integers stay integers, arrays
  arrays. A value that does not fit its declared type moves to the overflow object (a nested one
  under its dotted path), never into a column a destination would reject.
- **Keys.** A field the schema lists as `required` (the primary key) must end up with a value;
  otherwise the stream fails with `ContractViolation`, because a destination would collapse
  every such row into one.
"""

import re
from datetime import date, datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

# orjson (and the json module) give exactly these types, so `type(value) in ...` is exact and
# keeps bool apart from int, as JSON schema does.
PYTHON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
UTC = timezone.utc
ITERABLE_UTC_SUFFIX = " +00:00"
RFC3339_UTC_SUFFIX = "+00:00"
FALLBACK_FORMATS = (
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S.%f %z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)
_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")
# A project's dotted field names are a few hundred; the bound only guards against keys that never repeat.
DOTTED_PATHS_CACHED = 10_000


class ContractViolation(Exception):
    """A record cannot be emitted without breaking the contract (e.g. its primary key is empty)."""


def rfc3339_utc(value: Any) -> Optional[str]:
    """An Iterable timestamp as RFC 3339 UTC, or None if `value` is not a valid timestamp.

    Iterable writes `2021-04-14 16:25:55 +00:00` (sometimes with milliseconds), some fields
    `2021-04-14T16:48:01+00:00`, date fields may hold a date alone (its midnight UTC). Fractions
    of a second are kept as sent; other offsets are converted to UTC.
    """
    if type(value) is not str:
        return None
    size = len(value)
    # Iterable's own form first: it is on every export record, so it must stay cheap.
    if size == 26 and value[10] == " " and value[19:] == ITERABLE_UTC_SUFFIX:
        candidate = value[:10] + "T" + value[11:19] + RFC3339_UTC_SUFFIX
    elif size > 27 and value[10] == " " and value[19] == "." and value.endswith(ITERABLE_UTC_SUFFIX):
        candidate = value[:10] + "T" + value[11:-7] + RFC3339_UTC_SUFFIX
    elif size >= 25 and value[10] == "T" and value.endswith(RFC3339_UTC_SUFFIX) and (size == 25 or value[19] == "."):
        candidate = value
    elif size == 10:
        return f"{value}T00:00:00{RFC3339_UTC_SUFFIX}" if _is_date(value) else None
    else:
        return _parsed_rfc3339_utc(value)
    return candidate if _is_rfc3339_utc(candidate) else None


def _is_rfc3339_utc(candidate: str) -> bool:
    """`YYYY-MM-DDTHH:MM:SS[.fraction]+00:00` with a real date and time."""
    if candidate[4] != "-" or candidate[7] != "-" or candidate[13] != ":" or candidate[16] != ":":
        return False
    if len(candidate) > 25 and not candidate[20:-6].isdigit():
        return False
    try:
        datetime.fromisoformat(candidate)  # digits and calendar: month 13 or 25:00 fail here
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parsed_rfc3339_utc(value: str) -> Optional[str]:
    text = value[:-1] + "+0000" if value.endswith("Z") else value
    for fmt in FALLBACK_FORMATS:
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    return None


class _Rule:
    """What one declared property accepts; compiled once per schema."""

    __slots__ = ("types", "timestamp", "properties", "closed", "items", "whole_numbers")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        declared = spec.get("type")
        names = (declared,) if isinstance(declared, str) else tuple(declared or ())
        # An untyped property accepts anything.
        self.types = frozenset(t for name in names for t in PYTHON_TYPES.get(name, ())) or None
        self.timestamp = spec.get("format") == "date-time" and "string" in names
        self.whole_numbers = "integer" in names and "number" not in names
        sub_properties = spec.get("properties") if "object" in names else None
        self.properties = compile_properties(sub_properties) if isinstance(sub_properties, dict) else None
        self.closed = spec.get("additionalProperties") is False
        items = spec.get("items") if "array" in names else None
        self.items = _Rule(items) if isinstance(items, dict) and items else None


def compile_properties(properties: Mapping[str, Any]) -> Dict[str, _Rule]:
    return {name: _Rule(spec if isinstance(spec, dict) else {}) for name, spec in properties.items()}


_MISFIT = object()


def _conform(rule: _Rule, value: Any, path: str, overflow: Dict[str, Any]) -> Any:
    """`value` made to fit `rule`, or `_MISFIT`; misfits inside objects go to `overflow` by path."""
    if value is None:
        return None if rule.types is None or type(None) in rule.types else _MISFIT
    if rule.timestamp and type(value) is str:
        return rfc3339_utc(value) or _MISFIT
    kind = type(value)
    if rule.types is not None and kind not in rule.types:
        if kind is float and rule.whole_numbers and value.is_integer():
            return int(value)
        return _MISFIT
    if kind is dict and rule.properties is not None:
        return _conform_object(rule, value, path, overflow)
    if kind is list and rule.items is not None:
        return _conform_array(rule.items, value)
    return value


def _conform_object(rule: _Rule, value: Dict[str, Any], path: str, overflow: Dict[str, Any]) -> Dict[str, Any]:
    properties = rule.properties or {}
    conformed: Dict[str, Any] = {}
    for name, sub_value in value.items():
        sub_rule = properties.get(name)
        if sub_rule is None:
            if rule.closed:
                overflow[f"{path}.{name}"] = sub_value
            else:
                conformed[name] = sub_value
            continue
        fitted = _conform(sub_rule, sub_value, f"{path}.{name}", overflow)
        if fitted is _MISFIT:
            overflow[f"{path}.{name}"] = sub_value
        else:
            conformed[name] = fitted
    return conformed


def _conform_array(items: _Rule, values: List[Any]) -> Any:
    # A misfit inside an array element cannot move on its own: the whole array goes to overflow.
    scratch: Dict[str, Any] = {}
    conformed = []
    for item in values:
        fitted = _conform(items, item, "", scratch)
        if fitted is _MISFIT or scratch:
            return _MISFIT
        conformed.append(fitted)
    return conformed


def _path_of(rules: Mapping[str, _Rule], dotted: str) -> Optional[Tuple[List[str], Optional[_Rule]]]:
    """How a dotted key such as `a.b.c` nests in declared objects: the names down to the leaf and
    the leaf's rule (None when the leaf is not declared but its object is open); None if it does
    not fit the declared structure."""
    if dotted in rules:
        return [dotted], rules[dotted]
    position = dotted.find(".")
    while position > 0:
        head, rest = dotted[:position], dotted[position + 1 :]
        container = rules.get(head)
        if container is not None and container.properties is not None:
            inner = _path_of(container.properties, rest)
            if inner is not None:
                return [head, *inner[0]], inner[1]
            if not container.closed and "." not in rest:
                return [head, rest], None
        position = dotted.find(".", position + 1)
    return None


class RecordContract:
    """Conforms records to one stream's JSON schema (see the module docstring for the rule).

    Attributes:
        overflow_field: the declared object column that receives what does not fit, or None for
            streams whose schema declares every field Iterable sends (a misfit then raises).
        csv_rows: records are CSV rows: a header matches its column ignoring case, spaces and
            punctuation (`Experiment Id` fills `experimentId`), a cell is read as its column's
            type (`"42"` in an integer column is 42), an empty cell is no value, and cells of
            undeclared columns are numbers where they read as one.
    """

    def __init__(self, schema: Mapping[str, Any], overflow_field: Optional[str], csv_rows: bool = False):
        properties = schema.get("properties") or {}
        self.overflow_field = overflow_field if overflow_field in properties else None
        self._rules = compile_properties({k: v for k, v in properties.items() if k != self.overflow_field})
        # Columns whose values are only type-checked, checked inline: this runs for every record.
        self._plain_types = {
            name: rule.types
            for name, rule in self._rules.items()
            if rule.types is not None and not (rule.timestamp or rule.properties is not None or rule.items is not None)
        }
        self._required = tuple(name for name in schema.get("required", ()) if name in properties)
        self._columns_by_spelling = {_spelling(name): name for name in self._rules} if csv_rows else None
        # Where each dotted key goes: the same few names recur on every user record.
        self._dotted_paths: Dict[str, Optional[Tuple[List[str], Optional[_Rule]]]] = {}

    def conform(self, record: Dict[str, Any], conformed_field: str = "", conformed_value: Any = None) -> Dict[str, Any]:
        """The record, keeping the contract; raises `ContractViolation` if a key stays empty.

        `conformed_field` names a field whose conformed value the caller already has
        (`conformed_value`), e.g. the export cursor parsed for the window filter. A record whose
        other values all fit plain columns is updated in place and returned (most export
        records: no new dict per record); any other gets a new dict.
        """
        if self._fits_in_place(record, conformed_field, conformed_value):
            if conformed_value is not None and conformed_field in record:
                record[conformed_field] = conformed_value
            return record
        source = record if self._columns_by_spelling is None else self._typed_row(record)
        rules, plain_types = self._rules, self._plain_types
        overflow_field = self.overflow_field
        conformed: Dict[str, Any] = {}
        overflow: Dict[str, Any] = {}
        dotted: List[Tuple[str, Any]] = []
        for name, value in source.items():
            types = plain_types.get(name)
            if types is not None and type(value) in types:
                conformed[name] = value
                continue
            if name == conformed_field and conformed_value is not None:
                conformed[name] = conformed_value
                continue
            rule = rules.get(name)
            if rule is None:
                if name == overflow_field and type(value) is dict:
                    overflow.update(value)
                elif "." in name:
                    dotted.append((name, value))
                else:
                    overflow[name] = value
                continue
            fitted = _conform(rule, value, name, overflow)
            if fitted is _MISFIT:
                overflow[name] = value
            else:
                conformed[name] = fitted
        for name, value in dotted:
            self._place_dotted(conformed, overflow, name, value)
        if self._required:
            self._check_required(conformed, record)
        if overflow_field is not None and (overflow or overflow_field in record):
            conformed[overflow_field] = overflow
        elif overflow:
            raise ContractViolation(f"fields this stream does not declare: {sorted(overflow)}")
        return conformed

    def _fits_in_place(self, record: Mapping[str, Any], conformed_field: str, conformed_value: Any) -> bool:
        if self._columns_by_spelling is not None or self._required:
            return False
        plain_types = self._plain_types
        for name, value in record.items():
            types = plain_types.get(name)
            if (types is None or type(value) not in types) and (name != conformed_field or conformed_value is None):
                return False
        return True

    def _typed_row(self, row: Mapping[str, Any]) -> Dict[str, Any]:
        assert self._columns_by_spelling is not None
        typed: Dict[str, Any] = {}
        for header, cell in row.items():
            if cell is None or cell == "" or not header:
                continue
            column = self._columns_by_spelling.get(_spelling(header))
            if column is None:
                typed[header] = typed_cell(cell)
            else:
                typed[column] = _typed_text(cell, self._rules[column])
        return typed

    def _place_dotted(self, conformed: Dict[str, Any], overflow: Dict[str, Any], name: str, value: Any) -> None:
        try:
            found = self._dotted_paths[name]
        except KeyError:
            found = _path_of(self._rules, name)
            if len(self._dotted_paths) < DOTTED_PATHS_CACHED:
                self._dotted_paths[name] = found
        if found is None:
            overflow[name] = value
            return
        path, leaf_rule = found
        target = conformed
        for part in path[:-1]:
            inner = target.get(part)
            if inner is None:
                inner = target[part] = {}
            elif type(inner) is not dict:
                overflow[name] = value
                return
            target = inner
        fitted = value if leaf_rule is None else _conform(leaf_rule, value, name, overflow)
        if fitted is _MISFIT:
            overflow[name] = value
        else:
            target[path[-1]] = fitted

    def _check_required(self, conformed: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        missing = [name for name in self._required if conformed.get(name) is None]
        if missing:
            raise ContractViolation(
                f"no value for {', '.join(missing)} (the primary key) in a record with the fields {sorted(record)}"
            )


def _spelling(name: str) -> str:
    return _NOT_ALPHANUMERIC.sub("", name.lower())


def _typed_text(value: Any, rule: _Rule) -> Any:
    """A CSV cell read as the type its column declares; other values are returned unchanged."""
    if type(value) is not str or rule.types is None:
        return value
    text = value.strip()
    if int in rule.types:
        try:
            return int(text)
        except ValueError:
            pass
    if float in rule.types:
        try:
            return float(text)
        except ValueError:
            pass
    if bool in rule.types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def typed_cell(value: Any) -> Any:
    """A CSV cell of a column no schema types: a number if it reads as one, else the text."""
    if type(value) is not str:
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value

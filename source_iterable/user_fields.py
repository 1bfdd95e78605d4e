"""The `users` schema with the project's own user fields, typed, read from `users/getFields`."""

import logging
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta, timezone
from time import monotonic
from typing import AbstractSet, Any, Dict, Iterable, Mapping, Optional, Set

import orjson

from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader
from airbyte_cdk.sources.types import Config

from source_iterable.export.cdk_adapter import streaming
from source_iterable.export.lines import iter_body_lines
from source_iterable.read_context import configured_users_schema

logger = logging.getLogger("airbyte")

TIMESTAMP = {"type": ["string", "null"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"}
ITERABLE_TYPES: Dict[str, Dict[str, Any]] = {
    "string": {"type": ["string", "null"]},
    "long": {"type": ["integer", "null"]},
    "double": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date": TIMESTAMP,
    "object": {"type": ["object", "null"], "additionalProperties": True},
    "nested": {"type": ["array", "null"], "items": {"type": "object", "additionalProperties": True}},
    "geo_location": {
        "type": ["object", "null"],
        "additionalProperties": True,
        "properties": {"lat": {"type": ["number", "null"]}, "lon": {"type": ["number", "null"]}},
    },
}
# A type Iterable may add later: declared without a type, so that no value is rejected.
UNKNOWN_TYPE: Dict[str, Any] = {}
SCALAR_TYPES = frozenset({"string", "long", "double", "boolean", "date"})
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def json_schema_of(iterable_type: str, is_array: bool = False) -> Dict[str, Any]:
    """The JSON schema of a getFields type; `is_array` for a field that holds arrays of it
    (getFields names an array field by the type of its elements)."""
    spec = dict(ITERABLE_TYPES.get(str(iterable_type).lower(), UNKNOWN_TYPE))
    if not is_array or str(iterable_type).lower() not in SCALAR_TYPES:
        return spec
    items = {**spec, "type": [t for t in spec["type"] if t != "null"][0]}
    return {"type": ["array", "null"], "items": items}


def user_field_properties(fields: Mapping[str, str], array_fields: AbstractSet[str] = frozenset()) -> Dict[str, Any]:
    """JSON-schema properties for Iterable's `{field name: type}`.

    `a.b` is field `b` of `a` when `a` is an object (or `nested`, an array of objects) field;
    otherwise it is a top-level key with a dot in its name, as Iterable's `itblInternal.emailDomain`.
    Fields named in `array_fields` (dotted names) are declared as arrays of their type.
    """
    properties: Dict[str, Any] = {}
    for name in sorted(fields, key=lambda dotted: dotted.count(".")):
        head, _, rest = name.partition(".")
        container = _container(properties.get(head)) if rest else None
        if container is None:
            properties[name] = json_schema_of(fields[name], name in array_fields)
        else:
            _insert(container, rest, json_schema_of(fields[name], name in array_fields))
    return properties


def array_valued_fields(records: Iterable[Mapping[str, Any]]) -> Set[str]:
    """Dotted names of the fields that hold an array of values (not of objects) in `records`,
    whether Iterable sent them as dotted keys or inside objects."""
    found: Set[str] = set()

    def visit(prefix: str, record: Mapping[str, Any]) -> None:
        for name, value in record.items():
            if isinstance(value, list) and not any(isinstance(item, dict) for item in value):
                found.add(prefix + name)
            elif isinstance(value, dict):
                visit(f"{prefix}{name}.", value)

    for record in records:
        visit("", record)
    return found


def _container(spec: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The object schema that holds sub-fields of `spec`, if `spec` is an object or array of objects."""
    if not spec:
        return None
    if "object" in spec.get("type", []):
        return spec
    if "array" in spec.get("type", []) and isinstance(spec.get("items"), dict):
        return spec["items"]
    return None


def _insert(container: Dict[str, Any], dotted: str, spec: Dict[str, Any]) -> None:
    head, _, rest = dotted.partition(".")
    children = container.setdefault("properties", {})
    inner = _container(children.get(head)) if rest else None
    if inner is None:
        children[dotted] = spec
    else:
        _insert(inner, rest, spec)


@dataclass
class UserFieldsSchema(SchemaLoader):
    """The static `users` schema plus every user field of the project, typed.

    At discover, asks `users/getFields` once and declares each field as a column: strings,
    integers (`long`), numbers (`double`), booleans, dates as date-time strings, objects with
    their sub-fields. getFields names an array field by the type of its elements, so discover
    also reads a sample of recently updated users (`sample_requester`, one export request): a
    field that holds arrays there is declared as an array of its type. The static schema's
    standard fields win. If the fields cannot be read, the static schema is used and a warning
    says so: fields then land in `dataFields`, nothing is lost. A read with a configured `users`
    schema uses that one: it shapes user records by the columns the destination was given, so a
    field the project added since then goes to `dataFields`, not into a column the destination
    does not know and may drop.

        schema_loader:
          type: CustomSchemaLoader
          class_name: source_iterable.user_fields.UserFieldsSchema
          base_schema: {type: InlineSchemaLoader, schema: {$ref: "#/schemas/users"}}
          requester: {$ref: "#/definitions/requester", $parameters: {endpoint: users/getFields}}
          sample_requester: {$ref: "#/definitions/requester", $parameters: {endpoint: export/data.json}}

    Attributes:
        requester: sends `GET users/getFields`.
        base_schema: the standard `users` schema.
        sample_requester: sends the `user` export request of the sample.
        sample_users / sample_days / sample_seconds: the sample reads at most this many users,
            updated in the last `sample_days` before the end of the data, for at most this long.
    """

    requester: Requester
    base_schema: SchemaLoader
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    sample_requester: Optional[Requester] = None
    sample_users: int = 2000
    sample_days: int = 30
    sample_seconds: float = 30.0
    _schema: Optional[Dict[str, Any]] = field(init=False, repr=False, default=None)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._schema = None

    def get_json_schema(self) -> Mapping[str, Any]:
        if self._schema is None:
            self._schema = self._build()
        return self._schema

    def _build(self) -> Dict[str, Any]:
        base = self.base_schema.get_json_schema()
        schema = {**base, "properties": dict(base.get("properties", {}))}
        configured = configured_users_schema(self.config)
        if configured is not None:
            # The standard fields stay declared (the key, `dataFields`) even in a foreign catalog.
            schema["properties"].update(configured["properties"])
            return schema
        fields = self._project_fields()
        array_fields = self._sampled_array_fields() if fields else set()
        for name, spec in user_field_properties(fields, array_fields).items():
            schema["properties"].setdefault(name, spec)
        return schema

    def _project_fields(self) -> Mapping[str, str]:
        try:
            response = self.requester.send_request()
            fields = response.json().get("fields", {}) if response is not None and response.ok else None
        except Exception as error:  # the schema must never fail discover
            logger.warning(f"users: could not read the project's user fields ({error}); custom fields go to dataFields.")
            return {}
        if not isinstance(fields, dict):
            logger.warning("users: users/getFields gave no field list; custom fields go to dataFields.")
            return {}
        return fields

    def _sampled_array_fields(self) -> Set[str]:
        if self.sample_requester is None:
            return set()
        end = self._sample_end()
        start = max(end - timedelta(days=self.sample_days), _utc(self.config["start_date"]))
        try:
            response = streaming(self.sample_requester).send_request(
                request_params={
                    "dataTypeName": "user",
                    "startDateTime": start.strftime(DATE_FORMAT),
                    "endDateTime": end.strftime(DATE_FORMAT),
                }
            )
            if response is None or not response.ok:
                raise ValueError(f"HTTP {getattr(response, 'status_code', 'no response')}")
            try:
                return array_valued_fields(self._sample(iter_body_lines(response)))
            finally:
                response.close()
        except Exception as error:  # the schema must never fail discover
            logger.warning(
                f"users: could not read a sample of users to find array fields ({error}); fields are declared "
                "as getFields types them, and array values of them land in dataFields."
            )
            return set()

    def _sample(self, lines: Iterable[bytes]) -> Iterable[Mapping[str, Any]]:
        deadline = monotonic() + self.sample_seconds
        for count, line in enumerate(lines):
            if count >= self.sample_users or monotonic() > deadline:
                return
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record

    def _sample_end(self) -> datetime:
        lookback = timedelta(minutes=int(self.config.get("lookback_window", 5) or 0))
        end = datetime.now(timezone.utc).replace(microsecond=0) - lookback
        if self.config.get("end_date"):
            end = min(end, _utc(self.config["end_date"]))
        return end


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)

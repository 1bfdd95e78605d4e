"""The `users` schema with the project's own user fields, typed, read from `users/getFields`."""

import logging
from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Mapping, Optional

from airbyte_cdk.models import ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader
from airbyte_cdk.sources.types import Config

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


def json_schema_of(iterable_type: str) -> Dict[str, Any]:
    return dict(ITERABLE_TYPES.get(str(iterable_type).lower(), UNKNOWN_TYPE))


def user_field_properties(fields: Mapping[str, str]) -> Dict[str, Any]:
    """JSON-schema properties for Iterable's `{field name: type}`.

    `a.b` is field `b` of `a` when `a` is an object (or `nested`, an array of objects) field;
    otherwise it is a top-level key with a dot in its name, as Iterable's `itblInternal.emailDomain`.
    """
    properties: Dict[str, Any] = {}
    for name in sorted(fields, key=lambda dotted: dotted.count(".")):
        head, _, rest = name.partition(".")
        container = _container(properties.get(head)) if rest else None
        if container is None:
            properties[name] = json_schema_of(fields[name])
        else:
            _insert(container, rest, fields[name])
    return properties


def _container(spec: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The object schema that holds sub-fields of `spec`, if `spec` is an object or array of objects."""
    if not spec:
        return None
    if "object" in spec.get("type", []):
        return spec
    if "array" in spec.get("type", []) and isinstance(spec.get("items"), dict):
        return spec["items"]
    return None


def _insert(container: Dict[str, Any], dotted: str, iterable_type: str) -> None:
    head, _, rest = dotted.partition(".")
    children = container.setdefault("properties", {})
    inner = _container(children.get(head)) if rest else None
    if inner is None:
        children[dotted] = json_schema_of(iterable_type)
    else:
        _insert(inner, rest, iterable_type)


class ConfiguredUsersSchema:
    """The `users` schema of the catalog this process reads with, set by `SourceIterable`.

    A read shapes user records by the columns the destination was given at discover time: a
    field the project added since then goes to `dataFields` rather than into a column the
    destination does not know and may drop. Process-wide because only the source sees the catalog.
    """

    schema: Optional[Mapping[str, Any]] = None

    @classmethod
    def set_from(cls, catalog: Optional[ConfiguredAirbyteCatalog]) -> None:
        streams = catalog.streams if catalog else []
        configured = next((s.stream.json_schema for s in streams if s.stream.name == "users"), None)
        cls.schema = configured if configured and configured.get("properties") else None


@dataclass
class UserFieldsSchema(SchemaLoader):
    """The static `users` schema plus every user field of the project, typed.

    At discover, asks `users/getFields` once and declares each field as a column: strings,
    integers (`long`), numbers (`double`), booleans, dates as date-time strings, objects with
    their sub-fields. The static schema's standard fields win. If the fields cannot be read, the
    static schema is used and a warning says so: fields then land in `dataFields`, nothing is
    lost. A read with a configured `users` schema uses that one (see `ConfiguredUsersSchema`).

        schema_loader:
          type: CustomSchemaLoader
          class_name: source_iterable.components.UserFieldsSchema
          base_schema: {type: InlineSchemaLoader, schema: {$ref: "#/schemas/users"}}
          requester: {$ref: "#/definitions/requester", $parameters: {endpoint: users/getFields}}

    Attributes:
        requester: sends `GET users/getFields`.
        base_schema: the standard `users` schema.
    """

    requester: Requester
    base_schema: SchemaLoader
    config: Config
    parameters: InitVar[Mapping[str, Any]]
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
        configured = ConfiguredUsersSchema.schema
        if configured is not None:
            # The standard fields stay declared (the key, `dataFields`) even in a foreign catalog.
            schema["properties"].update(configured["properties"])
            return schema
        fields = self._project_fields()
        for name, spec in user_field_properties(fields).items():
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

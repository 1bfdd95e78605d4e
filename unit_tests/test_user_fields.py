"""users: the project's user fields become typed columns."""

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_iterable import SourceIterable
from source_iterable.user_fields import array_valued_fields, user_field_properties
from unit_tests.harness import API, discover_streams, make_config, records_of, read_stream
from unit_tests.export_mocks import Body, in_window, jsonl, serve_export

FIELDS = {
    "email": "string",
    "firstName": "string",
    "loyaltyPoints": "long",
    "lifetimeValue": "double",
    "isVip": "boolean",
    "birthday": "date",
    "address": "object",
    "address.city": "string",
    "address.geo": "geo_location",
    "devices": "nested",
    "devices.token": "string",
    "itblInternal.emailDomain": "string",
    "mystery": "someNewType",
}


def test_iterable_field_types_become_json_schema_types():
    properties = user_field_properties(FIELDS)

    assert properties["loyaltyPoints"]["type"] == ["integer", "null"]
    assert properties["lifetimeValue"]["type"] == ["number", "null"]
    assert properties["isVip"]["type"] == ["boolean", "null"]
    assert properties["birthday"]["format"] == "date-time"
    assert properties["address"]["properties"]["city"] == {"type": ["string", "null"]}
    assert properties["address"]["properties"]["geo"]["properties"]["lat"] == {"type": ["number", "null"]}
    assert properties["devices"]["items"]["properties"]["token"] == {"type": ["string", "null"]}
    assert properties["itblInternal.emailDomain"] == {"type": ["string", "null"]}, "a dotted key, not an object"
    assert properties["mystery"] == {}, "an unknown type accepts any value"


def test_discover_declares_the_projects_user_fields(requests_mock):
    requests_mock.get(f"{API}/users/getFields", json={"fields": FIELDS})

    catalog = {s.name: s for s in discover_streams(make_config()).catalog.catalog.streams}
    properties = catalog["users"].json_schema["properties"]

    assert properties["loyaltyPoints"]["type"] == ["integer", "null"]
    assert properties["profileUpdatedAt"]["format"] == "date-time", "standard fields stay as declared"
    assert properties["userKey"]["type"] == "string"


def test_discover_stays_green_when_user_fields_cannot_be_read(requests_mock):
    requests_mock.get(f"{API}/users/getFields", status_code=403, json={"code": "Forbidden"})

    output = discover_streams(make_config())

    properties = {s.name: s for s in output.catalog.catalog.streams}["users"].json_schema["properties"]
    assert "dataFields" in properties and "loyaltyPoints" not in properties


def test_declared_custom_fields_stay_top_level_and_unknown_ones_go_to_data_fields(requests_mock):
    requests_mock.get(f"{API}/users/getFields", json={"fields": {"loyaltyPoints": "long", "birthday": "date"}})
    users = [
        {
            "email": "a@example.com",
            "profileUpdatedAt": "2024-01-05 10:00:00 +00:00",
            "loyaltyPoints": 7,
            "birthday": "1990-02-03 00:00:00 +00:00",
            "appearedLater": "x",
        }
    ]
    serve_export(requests_mock, lambda request: Body(jsonl(in_window(users, request, "profileUpdatedAt"))))

    (record,) = records_of(read_stream("users", make_config(end_date="2024-02-01T00:00:00Z"), SyncMode.incremental))

    assert record["loyaltyPoints"] == 7
    assert record["birthday"] == "1990-02-03T00:00:00+00:00", "declared dates become ISO-8601 UTC"
    assert record["dataFields"] == {"appearedLater": "x"}, "a field getFields did not list is kept, not dropped"


def test_a_read_shapes_users_by_the_configured_schema_so_fields_added_since_discover_are_kept(requests_mock):
    """The destination knows the columns of its catalog: a field added to the project after
    discover goes to dataFields, not into a column the destination would drop."""
    get_fields = requests_mock.get(f"{API}/users/getFields", json={"fields": {"loyaltyPoints": "long", "birthday": "date"}})
    users = [{"email": "a@example.com", "profileUpdatedAt": "2024-01-05 10:00:00 +00:00", "loyaltyPoints": 7, "birthday": "1990-02-03"}]
    serve_export(requests_mock, lambda request: Body(jsonl(in_window(users, request, "profileUpdatedAt"))))
    config = make_config(end_date="2024-02-01T00:00:00Z")
    discovered = {s.name: s for s in discover_streams(config).catalog.catalog.streams}["users"].json_schema
    del discovered["properties"]["birthday"]  # as if birthday was created after this discover
    catalog = CatalogBuilder().with_stream(ConfiguredAirbyteStreamBuilder().with_name("users").with_json_schema(discovered).with_sync_mode(SyncMode.incremental)).build()
    asked_at_discover = get_fields.call_count

    output = read(SourceIterable(catalog=catalog, config=config), config, catalog)

    (record,) = records_of(output)
    assert record["loyaltyPoints"] == 7
    assert "birthday" not in record and record["dataFields"] == {"birthday": "1990-02-03"}
    assert get_fields.call_count == asked_at_discover, "a read with a configured schema needs no users/getFields"


def test_fields_holding_arrays_are_declared_as_arrays_of_their_getfields_type():
    sample = [{"favoriteStoreIds": [7001, 7002], "interests": "chess", "address": {"tags": ["a"]}, "devices": [{"t": 1}]}]

    arrays = array_valued_fields(sample)
    properties = user_field_properties(
        {"favoriteStoreIds": "long", "interests": "string", "address": "object", "address.tags": "string"}, arrays
    )

    assert arrays == {"favoriteStoreIds", "address.tags"}, "arrays of objects are `nested` fields, not arrays of a type"
    assert properties["favoriteStoreIds"] == {"type": ["array", "null"], "items": {"type": "integer"}}, (
        "getFields calls an array of ids `long`: the column is an array of integers, not an integer"
    )
    assert properties["interests"] == {"type": ["string", "null"]}, "a field seen with scalars stays a scalar column"
    assert properties["address"]["properties"]["tags"]["items"] == {"type": "string"}


def test_discover_samples_recent_users_to_find_array_fields(requests_mock):
    requests_mock.get(f"{API}/users/getFields", json={"fields": {"favoriteStoreIds": "long", "loyaltyPoints": "long"}})
    users = [{"email": "a@example.com", "profileUpdatedAt": "2024-01-20 10:00:00 +00:00", "favoriteStoreIds": [1, 2], "loyaltyPoints": 3}]
    requests = serve_export(requests_mock, lambda request: Body(jsonl(in_window(users, request, "profileUpdatedAt"))))

    output = discover_streams(make_config(end_date="2024-02-01T00:00:00Z"))

    properties = {s.name: s for s in output.catalog.catalog.streams}["users"].json_schema["properties"]
    assert properties["favoriteStoreIds"]["type"] == ["array", "null"]
    assert properties["loyaltyPoints"]["type"] == ["integer", "null"]
    (sample,) = requests
    assert "dataTypeName=user" in sample.url and "startDateTime=2024-01-02" in sample.url, (
        "one export request, for the users updated in the last 30 days of the data"
    )


def test_discover_declares_getfields_types_when_the_sample_cannot_be_read(requests_mock):
    requests_mock.get(f"{API}/users/getFields", json={"fields": {"favoriteStoreIds": "long"}})
    requests_mock.get(f"{API}/export/data.json", status_code=400, json={"code": "BadParams", "msg": "Invalid dataTypeName user"})

    output = discover_streams(make_config())

    properties = {s.name: s for s in output.catalog.catalog.streams}["users"].json_schema["properties"]
    assert properties["favoriteStoreIds"]["type"] == ["integer", "null"]
    assert any("could not read a sample of users" in log.log.message for log in output.logs)

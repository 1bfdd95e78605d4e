"""Catalogue streams: each reads Iterable's JSON shape into records with their primary keys."""

import pytest

from unit_tests.harness import API, discover_streams, make_config, records_of, read_stream

CATALOGUE = {
    "channels": ("channels", "channels", [{"id": 39581, "name": "Marketing", "channelType": "Marketing", "messageMedium": "Email"}]),
    "lists": ("lists", "lists", [{"id": 1, "name": "Newsletter", "createdAt": 1617891908857, "listType": "Standard"}]),
    "message_types": (
        "messageTypes",
        "messageTypes",
        [{"id": 47257, "name": "Marketing", "channelId": 39581, "subscriptionPolicy": "OptOut", "frequencyCap": {"days": 7, "messages": 3}}],
    ),
    "metadata": ("metadata", "results", [{"name": "products"}, {"name": "stores"}]),
}


@pytest.mark.parametrize("stream", sorted(CATALOGUE))
def test_catalogue_stream_reads_every_item(stream, config, requests_mock):
    path, key, items = CATALOGUE[stream]
    requests_mock.get(f"{API}/{path}", json={key: items})

    output = read_stream(stream, config)

    assert records_of(output) == items
    assert requests_mock.request_history[0].headers["Api-Key"] == config["api_key"]


def test_campaigns_are_paged_until_a_short_page(config, requests_mock):
    first_page = [{"id": i, "name": f"c{i}", "createdAt": 1617891908857} for i in range(1000)]
    requests_mock.get(
        f"{API}/campaigns",
        [{"json": {"campaigns": first_page, "totalCampaignsCount": 1001}}, {"json": {"campaigns": [{"id": 1000}]}}],
    )

    output = read_stream("campaigns", config)

    assert [r["id"] for r in records_of(output)] == list(range(1001))
    pages = [(h.qs["page"], h.qs["pagesize"]) for h in requests_mock.request_history]
    assert pages == [(["1"], ["1000"]), (["2"], ["1000"])], "every call is paged: unpaged calls are deprecated"


def test_discover_declares_primary_keys_and_cursors(config):
    catalog = {s.name: s for s in discover_streams(config).catalog.catalog.streams}

    expected_keys = {
        "campaigns": [["id"]],
        "campaigns_metrics": [["id"]],
        "channels": [["id"]],
        "lists": [["id"]],
        "list_users": [["listId"], ["email"]],
        "message_types": [["id"]],
        "metadata": [["name"]],
        "templates": [["templateId"]],
    }
    for name, key in expected_keys.items():
        assert catalog[name].source_defined_primary_key == key, f"{name} needs a primary key for deduped syncs"
    assert catalog["templates"].default_cursor_field == ["updatedAt"]


@pytest.mark.parametrize(
    "overrides, expected_base",
    [
        ({}, "https://api.iterable.com/api"),
        ({"region": "US"}, "https://api.iterable.com/api"),
        ({"region": "EU"}, "https://api.eu.iterable.com/api"),
        ({"region": "EU", "base_url": "http://127.0.0.1:8080/api/"}, "http://127.0.0.1:8080/api"),
        ({"base_url": "https://proxy.example.com/iterable/api"}, "https://proxy.example.com/iterable/api"),
    ],
)
def test_region_and_base_url_choose_the_api_host(overrides, expected_base, requests_mock):
    requests_mock.get(f"{expected_base}/channels", json={"channels": [{"id": 1}]})

    output = read_stream("channels", make_config(**overrides))

    assert records_of(output) == [{"id": 1}]

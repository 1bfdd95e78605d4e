"""templates: incremental on updatedAt although Iterable filters only on creation time."""

from urllib.parse import parse_qs, urlsplit

from airbyte_cdk.models import SyncMode

from unit_tests.harness import API, final_state, records_of, read_stream

JAN_2024 = 1704067200000  # 2024-01-01T00:00:00Z in epoch milliseconds


def _serve_templates(requests_mock, templates_by_listing):
    def answer(request, context):
        query = parse_qs(urlsplit(request.url).query)
        listing = (query["templateType"][0], query["messageMedium"][0])
        return {"templates": templates_by_listing.get(listing, [])}

    requests_mock.get(f"{API}/templates", json=answer)


def test_every_type_and_medium_is_listed_and_tagged(config, requests_mock):
    _serve_templates(requests_mock, {("Blast", "Email"): [{"templateId": 1, "createdAt": JAN_2024, "updatedAt": JAN_2024 + 5}]})

    records = records_of(read_stream("templates", config))

    listings = {(h.qs["templatetype"][0], h.qs["messagemedium"][0]) for h in requests_mock.request_history}
    assert len(listings) == 16, "4 template types x 4 media"
    assert all("startdatetime" not in h.qs for h in requests_mock.request_history), (
        "no creation-date filter: edited old templates must be seen"
    )
    assert records == [
        {"templateId": 1, "createdAt": JAN_2024, "updatedAt": JAN_2024 + 5, "templateType": "Blast", "messageMedium": "Email"}
    ]


def test_incremental_sync_picks_up_an_edited_old_template_and_nothing_else(config, requests_mock):
    old = {"templateId": 1, "createdAt": JAN_2024 - 10**9, "updatedAt": JAN_2024 + 1000}
    newest = {"templateId": 2, "createdAt": JAN_2024 + 2000, "updatedAt": JAN_2024 + 3000}
    _serve_templates(requests_mock, {("Base", "Email"): [old, newest]})

    first = read_stream("templates", config, SyncMode.incremental)
    assert [r["templateId"] for r in records_of(first)] == [1, 2]
    state = final_state(first)

    edited_old = dict(old, updatedAt=JAN_2024 + 9000)
    _serve_templates(requests_mock, {("Base", "Email"): [edited_old, newest]})
    second = read_stream("templates", config, SyncMode.incremental, state=state)

    assert [r["templateId"] for r in records_of(second)] == [1], (
        "only the edited template comes back; the newest of the last sync is not read twice"
    )
    assert records_of(second)[0]["updatedAt"] == JAN_2024 + 9000


def test_template_updated_exactly_at_start_date_is_kept(config, requests_mock):
    _serve_templates(requests_mock, {("Base", "SMS"): [{"templateId": 3, "createdAt": JAN_2024, "updatedAt": JAN_2024}]})

    assert [r["templateId"] for r in records_of(read_stream("templates", config, SyncMode.incremental))] == [3]


def test_upstream_connector_state_loads(config, requests_mock):
    before = {"templateId": 1, "createdAt": JAN_2024, "updatedAt": JAN_2024 + 1000}
    after = {"templateId": 2, "createdAt": JAN_2024, "updatedAt": 1706659200000}  # 2024-01-31
    _serve_templates(requests_mock, {("Base", "Email"): [before, after]})

    output = read_stream("templates", config, SyncMode.incremental, state={"createdAt": "2024-01-30T23:59:58+00:00"})

    assert [r["templateId"] for r in records_of(output)] == [2]

"""users, events and the export rate budget shared by every export stream."""

import time
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_iterable import SourceIterable
from unit_tests.harness import API, cursor_of, final_state, make_config, records_of, read_stream
from unit_tests.export_mocks import Body, in_window, jsonl, serve_export, window_of


def test_users_are_read_by_profile_updated_at_with_custom_fields_kept(requests_mock):
    users = [
        {"email": "jane@example.com", "profileUpdatedAt": "2024-01-05T10:00:00+00:00", "firstName": "Jane"},
        {"userId": "u-2", "profileUpdatedAt": "2024-01-06 10:00:00 +00:00", "signupDate": "2023-01-01 00:00:00 +00:00"},
    ]
    requests = serve_export(requests_mock, lambda request: Body(jsonl(in_window(users, request, "profileUpdatedAt"))))

    output = read_stream("users", make_config(end_date="2024-02-01T00:00:00Z"), SyncMode.incremental)

    assert {r.qs["datatypename"][0] for r in requests} == {"user"}
    assert records_of(output) == [
        {"email": "jane@example.com", "profileUpdatedAt": "2024-01-05T10:00:00+00:00", "userKey": "jane@example.com", "dataFields": {"firstName": "Jane"}},
        {"userId": "u-2", "profileUpdatedAt": "2024-01-06T10:00:00+00:00", "signupDate": "2023-01-01T00:00:00+00:00", "userKey": "userId:u-2"},
    ]
    assert cursor_of(final_state(output)) == {"profileUpdatedAt": "2024-02-01 00:00:00"}


def test_upstream_users_state_loads(requests_mock):
    requests = serve_export(requests_mock, lambda request: Body(b""))

    config = make_config(end_date="2024-02-01T00:00:00Z", late_event_horizon=0)
    read_stream("users", config, SyncMode.incremental, state={"profileUpdatedAt": "2024-01-20T08:00:00+00:00"})

    assert window_of(requests[0])[0] == "2024-01-20 08:00:00"


def test_events_reads_each_list_member_once_even_in_several_lists(requests_mock):
    requests_mock.get(f"{API}/lists", json={"lists": [{"id": 1}, {"id": 2}]})
    requests_mock.get(f"{API}/lists/getUsers?listId=1", text="alice@example.com\nbob@example.com\n")
    requests_mock.get(f"{API}/lists/getUsers?listId=2", text="bob@example.com\ncarol@example.com\n")

    def user_events(request, context):
        email = request.qs["email"][0]
        return f'{{"_type":"emailOpen","createdAt":"2024-01-02 03:04:05 +00:00","email":"{email}","userId":"id-{email}"}}\n'

    events = requests_mock.get(f"{API}/export/userEvents", text=user_events)

    records = records_of(read_stream("events", make_config()))

    asked = sorted(h.qs["email"][0] for h in events.request_history)
    assert asked == ["alice@example.com", "bob@example.com", "carol@example.com"], "bob is in two lists, read once"
    assert all(h.qs["includecustomevents"] == ["true"] for h in events.request_history)
    assert sorted(r["email"] for r in records) == asked
    assert all(r["userId"] == f"id-{r['email']}" and r["createdAt"] == "2024-01-02T03:04:05+00:00" for r in records)
    assert len({r["eventHash"] for r in records}) == 3



def test_events_asks_a_member_without_an_email_by_user_id(requests_mock, sleeps):
    """In userId-based projects lists/getUsers answers userIds; they are not emails."""
    requests_mock.get(f"{API}/lists", json={"lists": [{"id": 1}]})
    requests_mock.get(f"{API}/lists/getUsers?listId=1", text="alice@example.com\nusr_42\nusr_broken\n")

    def user_events(request, context):
        if request.qs.get("userid") == ["usr_broken"]:
            context.status_code = 500
            return '{"code":"GenericError"}'
        who = request.qs.get("email", request.qs.get("userid"))[0]
        return f'{{"_type":"emailOpen","createdAt":"2024-01-02 03:04:05 +00:00","userId":"{who}"}}\n'

    events = requests_mock.get(f"{API}/export/userEvents", text=user_events)

    output = read_stream("events", make_config())

    asked = {(k, v[0]) for h in events.request_history for k, v in h.qs.items() if k in ("email", "userid")}
    assert asked == {("email", "alice@example.com"), ("userid", "usr_42"), ("userid", "usr_broken")}
    assert sorted(r["userId"] for r in records_of(output)) == ["alice@example.com", "usr_42"]
    warnings = [m.log.message for m in output.logs if m.log.level.name == "WARN"]
    assert any("user usr_broken" in w for w in warnings), warnings


def test_all_export_streams_share_one_budget(requests_mock):
    """A limit of 240 per minute is 4 per second: never more, whichever stream asks."""
    started = []
    serve_export(requests_mock, lambda request: started.append(time.monotonic()) or Body(b""))
    config = make_config(start_date="2023-01-01T00:00:00Z", end_date="2024-01-01T00:00:00Z", export_requests_per_minute=240)
    catalog = CatalogBuilder()
    for name in ["email_send", "email_open", "sms_send", "users"]:
        catalog = catalog.with_stream(name, SyncMode.incremental)
    catalog = catalog.build()

    read(SourceIterable(catalog=catalog, config=config), config, catalog)

    assert len(started) >= 12, "every stream needs several windows for a year"
    # 0.9 s rather than 1 s: the mock notes a request a moment after the budget let it go.
    busiest = max(sum(1 for t in started if s <= t < s + 0.9) for s in started)
    assert busiest <= 4, f"at most 4 export requests may start in any second, saw {busiest}"


def export_rates(config):
    source = SourceIterable(config=config)
    source.streams(config)
    # The first policy that matches a request is the one that paces it.
    export_policy = next(p for p in source._constructor._api_budget._policies if p.matches(_export_request()))
    return sorted((rate.limit, rate.interval / 1000) for rate in export_policy._bucket.rates)


def _export_request():
    import requests

    return requests.Request("GET", f"{API}/export/data.json?dataTypeName=emailSend").prepare()


def test_default_export_budget_is_one_request_per_16_seconds_and_4_per_62_seconds():
    rates = export_rates(make_config(export_requests_per_minute=4))

    assert (1, 16) in rates, "requests are spread out: a burst would exceed Iterable's moving window"
    assert (4, 62) in rates, "and never more than Iterable's 4 per minute, with a margin"


def test_a_raised_export_limit_raises_the_budget():
    assert (8, 62) in export_rates(make_config(export_requests_per_minute=8))
    assert (2, 16) in export_rates(make_config(export_requests_per_minute=8))

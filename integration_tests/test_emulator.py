"""The Iterable emulator's own contract: what it serves, and how each fault behaves.

End-to-end tests trust the emulator's ``data`` to say what a connector should have emitted; these
tests keep that promise honest.
"""

import csv
import io
import re
import time

import orjson
import pytest
import requests

from integration_tests.emulator import EmulatorConfig, EmulatorData, IterableEmulator
from integration_tests.emulator.event_types import EVENT_TYPES
from integration_tests.emulator.timefmt import parse_query_datetime, query_datetime

CONFIG = EmulatorConfig(seed=7, records_per_type=400, users=30, lists=3, campaigns=25, max_page_size=10)
START_S, END_S = CONFIG.start_ms // 1000, CONFIG.end_ms // 1000


@pytest.fixture(scope="module")
def running():
    with IterableEmulator(CONFIG) as emulator:
        yield emulator


@pytest.fixture()
def emulator(running):
    running.faults.reset()
    running.requests.clear()
    yield running
    running.faults.reset()


def get(emulator, path, key=None, **params):
    headers = {"Api-Key": emulator.api_key if key is None else key}
    return requests.get(f"{emulator.base_url}/{path}", params=params, headers=headers, timeout=10)


def export(emulator, data_type, start_s, end_s, **kwargs):
    params = {"dataTypeName": data_type, "startDateTime": query_datetime(start_s), "endDateTime": query_datetime(end_s)}
    return requests.get(f"{emulator.base_url}/export/data.json", params=params,
                        headers={"Api-Key": emulator.api_key}, timeout=10, **kwargs)


def jsonl(body: bytes) -> list[dict]:
    return [orjson.loads(line) for line in body.splitlines() if line]


def created_second(record: dict) -> int:
    return parse_query_datetime(record["createdAt"][:19])


def test_wrong_or_missing_key_is_401_bad_api_key_without_echoing_it(emulator):
    for key in ("not-the-key", ""):
        response = get(emulator, "lists", key=key)
        assert response.status_code == 401
        assert response.json() == {"msg": "Invalid API key", "code": "BadApiKey", "params": {"endpoint": "/api/lists"}}
        assert "not-the-key" not in response.text, "the server must never echo a key back"


def test_export_window_is_start_inclusive_and_end_exclusive(emulator):
    record = next(iter(emulator.data.export_records("emailSend", START_S + 86_400, END_S)))
    second = created_second(record)
    assert record in jsonl(export(emulator, "emailSend", second, second + 1).content), "start is inclusive"
    assert record not in jsonl(export(emulator, "emailSend", second - 3600, second).content), "end is exclusive"


def test_export_serves_exactly_the_expected_records_and_the_same_bytes_twice(emulator):
    first = export(emulator, "emailOpen", START_S, START_S + 20 * 86_400)
    second = export(emulator, "emailOpen", START_S, START_S + 20 * 86_400)
    assert first.headers["Content-Type"] == "application/x-json-stream"
    assert first.headers["Transfer-Encoding"] == "chunked"
    assert first.content == second.content, "a window must always serve identical bytes"
    expected = list(emulator.data.export_records("emailOpen", START_S, START_S + 20 * 86_400))
    assert jsonl(first.content) == expected
    assert len(expected) == emulator.data.export_count("emailOpen", START_S, START_S + 20 * 86_400) > 0


def test_export_lines_are_not_in_created_order_and_twins_share_message_and_time():
    records = list(EmulatorData(CONFIG).all_export_records("emailClick"))
    cursors = [r["createdAt"][:19] for r in records]
    assert cursors != sorted(cursors), "Iterable does not sort exports; neither may the emulator"
    keys = [(r["messageId"], r["createdAt"]) for r in records]
    assert len(set(keys)) < len(keys), "some clicks share messageId and createdAt, as in real data"
    assert any("." in r["createdAt"] for r in records), "some createdAt carry milliseconds"


def test_every_data_type_has_unique_records_and_iterable_timestamps():
    data = EmulatorData(CONFIG)
    created = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})? \+00:00$")
    for data_type in EVENT_TYPES:
        records = list(data.all_export_records(data_type))
        assert len(records) == CONFIG.count(data_type)
        unique = {orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records}
        assert len(unique) == len(records), f"{data_type}: whole records must identify themselves"
        if data_type != "user":
            assert all(created.match(r["createdAt"]) for r in records), data_type
    sends = {r["messageId"]: r for r in data.all_export_records("emailSend")}
    opens = list(data.all_export_records("emailOpen"))
    assert all(sends[o["messageId"]]["email"] == o["email"] for o in opens), "opens refer to real sends"


def test_same_seed_gives_same_data_and_another_seed_does_not():
    one, two, other = EmulatorData(CONFIG), EmulatorData(CONFIG), EmulatorData(EmulatorConfig(seed=8))
    for data_type in ("emailSend", "user", "customEvent", "purchase"):
        assert list(one.all_export_records(data_type)) == list(two.all_export_records(data_type))
    assert one.campaigns() == two.campaigns() and one.templates() == two.templates()
    email = one.users()[0]["email"]
    assert one.user_events(email) == two.user_events(email)
    assert list(one.all_export_records("emailSend")) != list(other.all_export_records("emailSend"))


def test_export_rejects_unknown_types_and_missing_dates_but_accepts_any_case(emulator):
    response = export(emulator, "emailTeleport", START_S, END_S)
    assert response.status_code == 400
    assert response.json() == {"code": "BadParams", "msg": "Invalid dataTypeName emailTeleport"}
    assert get(emulator, "export/data.json", dataTypeName="emailSend").status_code == 400
    lower = export(emulator, "emailUnsubscribe", START_S, END_S)
    assert jsonl(lower.content) == list(emulator.data.all_export_records("emailUnSubscribe"))


def test_user_export_filters_on_profile_updated_at(emulator):
    users = jsonl(export(emulator, "user", START_S, END_S).content)
    assert sorted(users, key=lambda u: u["email"]) == sorted(emulator.data.users(), key=lambda u: u["email"])
    assert any("T" in u["profileUpdatedAt"] for u in users) and all("itblInternal.emailDomain" in u for u in users)


def test_campaigns_page_through_max_page_size(emulator):
    url, seen, pages = f"{emulator.base_url}/campaigns?page=1&pageSize=1000", [], 0
    while url:
        body = requests.get(url, headers={"Api-Key": emulator.api_key}, timeout=10).json()
        assert len(body["campaigns"]) <= CONFIG.max_page_size and body["totalCampaignsCount"] == 25
        seen += body["campaigns"]
        url, pages = body.get("nextPageUrl"), pages + 1
    assert pages == 3 and seen == emulator.data.campaigns()


def test_metrics_csv_matches_rows_and_a_long_uri_is_414(emulator):
    ids = [c["id"] for c in emulator.data.campaigns()]
    response = get(emulator, "campaigns/metrics", campaignId=ids, startDateTime="2024-01-01", endDateTime="2024-02-01")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == emulator.data.campaign_metrics_rows(ids)
    cells = {value for row in rows for value in row.values()}
    assert {"", "N/A", "1,234.5"} <= cells, "mixed media leave empty cells; odd cells test tolerant parsing"
    long = get(emulator, "campaigns/metrics", campaignId=list(range(10**7, 10**7 + 300)))
    assert long.status_code == 414
    assert long.text == "URI length exceeds the configured limit of 2048 characters"


def test_rate_limit_answers_429_with_and_without_retry_after(emulator):
    emulator.faults.rate_limits_enabled, emulator.faults.time_scale = True, 0.02  # 4 exports per 1.2 s
    statuses = [export(emulator, "emailSend", START_S, START_S + 60).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429], "export allows 4 calls per (scaled) minute"
    limited = export(emulator, "emailSend", START_S, START_S + 60)
    assert limited.json() == {"msg": "Exceeded rate limit.", "code": "RateLimitExceeded"}
    assert int(limited.headers["Retry-After"]) >= 1
    emulator.faults.retry_after_header = False
    assert "Retry-After" not in export(emulator, "emailSend", START_S, START_S + 60).headers
    assert get(emulator, "lists").status_code == 200, "other families have their own budget"
    time.sleep(1.3)
    assert export(emulator, "emailSend", START_S, START_S + 60).status_code == 200, "the window slides"


def test_a_cut_export_body_raises_in_a_streaming_client(emulator):
    emulator.faults.drop_export_after_lines, emulator.faults.drop_export_times = 5, 1
    response = export(emulator, "emailSend", START_S, END_S, stream=True)
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in response.iter_lines():
            received.append(line)
    assert len(received) == 5
    assert emulator.requests_to("export/data.json")[-1].cut
    assert len(jsonl(export(emulator, "emailSend", START_S, END_S).content)) == 400, "only the first response is cut"


def test_responses_over_a_size_are_always_cut(emulator):
    emulator.faults.drop_export_over_lines = 50
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        export(emulator, "emailSend", START_S, END_S)
    small = export(emulator, "emailSend", START_S, START_S + 5 * 86_400)
    assert 0 < len(jsonl(small.content)) <= 50


def test_malformed_lines_are_inserted_and_counted(emulator):
    emulator.faults.malformed_line_every = 7
    lines = [line for line in export(emulator, "emailBounce", START_S, END_S).content.splitlines() if line]
    good, bad = [], 0
    for line in lines:
        try:
            good.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            bad += 1
    assert good == list(emulator.data.all_export_records("emailBounce"))
    assert bad == len(good) // 7 == emulator.requests_to("export/data.json")[-1].malformed


def test_late_indexing_hides_recent_records_and_the_future(emulator):
    delay_s, now_s = 2 * 86_400, END_S - 10 * 86_400
    emulator.faults.indexing_delay_max_s = delay_s
    emulator.faults.clock_offset_s = now_s - time.time()
    window = (now_s - 4 * 86_400, END_S)
    before = emulator.faults.now_ms() / 1000
    served = jsonl(export(emulator, "emailSend", *window).content)
    after = emulator.faults.now_ms() / 1000
    late = {"now": before, "indexing_delay_max_s": delay_s}
    assert all(r in served for r in emulator.data.export_records("emailSend", *window, **late))
    late["now"] = after
    assert all(r in emulator.data.export_records("emailSend", *window, **late) for r in served)
    everything = list(emulator.data.export_records("emailSend", *window))
    assert all(created_second(r) <= after for r in served), "records in the future are never visible"
    old = [r for r in everything if created_second(r) + 1 < before - delay_s]
    assert old and all(r in served for r in old), "records older than the maximum delay are all visible"
    hidden = [r for r in everything if r not in served and created_second(r) <= before]
    assert hidden and max(created_second(r) for r in served) > min(created_second(r) for r in hidden), \
        "late indexing makes records visible out of order"


def test_list_users_is_plain_text_with_blank_lines_and_failures(emulator):
    list_id = emulator.data.lists()[0]["id"]
    response = get(emulator, "lists/getUsers", listId=list_id)
    assert response.headers["Content-Type"].startswith("text/plain") and response.text.endswith("\n\n")
    assert [line for line in response.text.splitlines() if line] == emulator.data.list_members(list_id)
    assert all(emulator.data.list_members(lst["id"]) for lst in emulator.data.lists()), "no list is empty"
    assert get(emulator, "lists/getUsers", listId=1).json() == {"code": "NotFound", "msg": "List not found"}
    emulator.faults.broken_lists.add(list_id)
    broken = get(emulator, "lists/getUsers", listId=list_id)
    assert broken.status_code == 500 and broken.json()["code"] == "GenericError"


def test_fail_next_answers_the_given_status_then_recovers(emulator):
    emulator.faults.fail_next("templates", 503, count=2)
    statuses = [get(emulator, "templates", pageSize=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_user_events_and_template_edits(emulator):
    email = emulator.data.users()[0]["email"]
    events = jsonl(get(emulator, "export/userEvents", email=email).content)
    assert events == emulator.data.user_events(email) and all("_type" in e and "itblInternal" in e for e in events)
    assert get(emulator, "export/userEvents", email="nobody@example.com").content == b""
    old = min(emulator.data.templates(), key=lambda t: t["createdAt"])
    emulator.data.edit_template(old["templateId"], CONFIG.end_ms + 5)
    edited = get(emulator, "templates", pageSize=1000, startDateTime=query_datetime(START_S),
                 endDateTime=query_datetime(old["createdAt"] // 1000 + 1)).json()["templates"]
    assert {"templateId": old["templateId"], "updatedAt": CONFIG.end_ms + 5}.items() <= edited[0].items()


def test_slow_responses_and_broken_users(emulator):
    emulator.faults.delay_before_headers_s, emulator.faults.delay_per_line_s = 0.2, 0.02
    started = time.monotonic()
    lines = jsonl(export(emulator, "emailSend", START_S, START_S + 5 * 86_400).content)
    assert time.monotonic() - started >= 0.2 + 0.02 * len(lines) and lines
    emulator.faults.delay_before_headers_s = emulator.faults.delay_per_line_s = 0.0
    user = emulator.data.users()[1]
    emulator.faults.broken_users.add(user["email"])
    assert get(emulator, "export/userEvents", email=user["email"]).status_code == 500
    by_id = get(emulator, "export/userEvents", userId=user["userId"], includeCustomEvents="true")
    assert jsonl(by_id.content) == emulator.data.user_events(user["email"], include_custom_events=True)

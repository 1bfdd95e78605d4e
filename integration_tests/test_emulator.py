"""The Iterable emulator's own contract: what it serves, and how each fault behaves.

End-to-end tests trust the emulator's ``data`` to say what a connector should have emitted; these
tests keep that promise honest.
"""

import csv
import email.utils
import io
import re
import time

import orjson
import pytest
import requests

from integration_tests.project import emulated_project
from iterable_emulator import (
    NO_DELAY, EmulatorConfig, EmulatorData, IndexingDelays, IterableEmulator, ManualClock, emulator_and_connector_config,
)
from iterable_emulator.event_types import EVENT_TYPES
from iterable_emulator.timefmt import parse_query_datetime, query_datetime
from iterable_emulator.users import UNLISTED_USER_FIELD

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
    running.jobs.reset()
    yield running
    running.faults.reset()
    running.jobs.reset()


def get(emulator, path, key=None, **params):
    headers = {"Api-Key": emulator.api_key if key is None else key}
    return requests.get(f"{emulator.base_url}/{path}", params=params, headers=headers, timeout=10)


def get_stream(emulator, path, **params):
    return requests.get(f"{emulator.base_url}/{path}", params=params, headers={"Api-Key": emulator.api_key},
                        stream=True, timeout=30)


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


def test_late_indexing_stamps_each_record_and_shows_it_from_then_on():
    with emulated_project(records_per_type={"emailSend": 20_000}) as (emulator, _):
        now_s = END_S - 10 * 86_400
        emulator.faults.clock_offset_s = now_s - time.time()
        window = (now_s - 4 * 86_400, END_S)
        before = emulator.faults.now_ms() / 1000
        served = jsonl(export(emulator, "emailSend", *window).content)
        after = emulator.faults.now_ms() / 1000
        indexed = list(emulator.data.indexed_records("emailSend", *window))

    def stamp(record):
        internal = record.get("itblInternal") or {}
        return parse_query_datetime((internal.get("documentCreatedAt") or record["itblInternal.documentCreatedAt"])[:19])

    shown = {r["messageId"] for r, _, _, visible_ms in indexed if visible_ms <= before * 1000}
    maybe = {r["messageId"] for r, _, _, visible_ms in indexed if visible_ms <= after * 1000}
    assert shown <= {r["messageId"] for r in served} <= maybe, "a record shows once indexed and visible, not before"
    assert all(created_second(r) <= stamp(r) <= after for r in served), "every record is stamped with when it was indexed"
    assert all(visible_ms - indexed_ms <= 60_000 for _, _, indexed_ms, visible_ms in indexed), "shown within a minute"
    delays = [(indexed_ms - created_ms) / 1000 for _, created_ms, indexed_ms, _ in indexed]
    assert 0.85 < sum(d <= 300 for d in delays) / len(delays) < 0.95 and max(delays) > 7_200, "a heavy tail by default"
    hidden = [r for r, _, _, visible_ms in indexed if visible_ms > after * 1000 and created_second(r) < before]
    assert hidden and max(created_second(r) for r in served) > min(created_second(r) for r in hidden), \
        "late indexing makes records visible out of order"
    nested = [r for r in served if "itblInternal" in r]
    assert nested and len(nested) < len(served), "stamps come nested and, in some records, as Iterable's dotted keys"
    assert all(r["itblInternal"]["documentUpdatedAt"] == r["itblInternal"]["documentCreatedAt"] for r in nested)


def test_the_date_header_tells_the_servers_clock(emulator):
    emulator.faults.clock_offset_s = END_S - time.time()
    response = get(emulator, "channels")
    assert abs(email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp() - END_S) < 5


def test_without_stamps_or_delays_records_carry_no_stamp_or_show_at_once():
    project = EmulatorConfig(indexing_stamps=False, indexing_delays=IndexingDelays(NO_DELAY))
    data = EmulatorData(project)
    assert not any("itblInternal" in r or "itblInternal.documentCreatedAt" in r for r in data.all_export_records("emailOpen"))
    assert all(indexed == created // 1000 * 1000 for _, created, indexed, _ in data.indexed_records("emailOpen", START_S, END_S))


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


def test_listed_users_puts_only_the_first_users_on_lists():
    data = EmulatorData(EmulatorConfig(seed=7, users=30, lists=1, listed_users=12))
    (only,), users = data.lists(), data.users()
    assert data.list_members(only["id"]) == [u["email"] for u in users[:12]], "one list: exactly the listed users"
    assert all(u["emailListIds"] == [only["id"]] for u in users[:12]) and all(u["emailListIds"] == [] for u in users[12:])
    assert EmulatorConfig().listed_users is None, "by default every user is listed"
    with pytest.raises(ValueError, match="listed_users"):
        EmulatorConfig(users=30, lists=3, listed_users=2)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_millions_of_users_start_at_once_and_are_served_in_flat_memory():
    before, started = rss_mb(), time.monotonic()
    config = EmulatorConfig(users=5_000_000, lists=1, listed_users=300_000, records_per_type=10,
                            start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z")
    with IterableEmulator(config) as big:
        assert time.monotonic() - started < 2, "users are generated when served, not at start"
        users = big.data.catalog.users
        (the_list,) = big.data.lists()
        members, last = 0, b""
        with get_stream(big, "lists/getUsers", listId=the_list["id"]) as response:
            for line in response.iter_lines(chunk_size=1 << 16):
                members, last = members + bool(line), line or last
        assert (members, last.decode()) == (300_000, users.email(299_999)), "streamed as it is generated"
        day_s = START_S + 200 * 86_400
        with get_stream(big, "export/data.json", dataTypeName="user", startDateTime=query_datetime(day_s),
                        endDateTime=query_datetime(day_s + 86_400)) as response:
            served = sum(1 for line in response.iter_lines(chunk_size=1 << 16) if line)
        assert served == big.data.export_count("user", day_s, day_s + 86_400) > 10_000
        clock = manual_clock(big)
        big.faults.job_file_max_bytes = 2_000_000
        job_id = job_id_of(big, "user", start_s=day_s, end_s=day_s + 86_400)
        clock.advance(3600)
        state, files = list_files(big, job_id)
        in_files = sum(len(jsonl(requests.get(f["url"], timeout=30).content)) for f in files)
        assert state == "completed" and len(files) > 3 and in_files == served, "job files are regenerated too"
        last_user = f"usr_{4_999_998:07d}"
        assert big.data.user_events(last_user) == big.data.user_events(users.email(4_999_998)) != [], \
            "a user is found by either identifier without an index of all users"
        assert big.data.user_events(f"usr_{4_999_999:07d}") == [], "one user in five has no userId"
        assert big.data.user_events(users.email(12).replace("12@", "13@")) == [], "the digits alone do not match"
        assert rss_mb() - before < 60, "nothing is kept per user, per list member or per exported record"


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


# Asynchronous export jobs. Most tests drive the jobs' clock by hand: Iterable's timings (2 s
# enqueued, 3 s per file, 30 min URL lifetime) pass in no real time.

JSONL_FORMAT = "application/x-json-stream"


def start_job(emulator, data_type, start_s=START_S, end_s=END_S, **extra):
    body = {"dataTypeName": data_type, "outputFormat": JSONL_FORMAT, "startDateTime": query_datetime(start_s),
            "endDateTime": f"{query_datetime(end_s)} +00:00", **extra}
    return requests.post(f"{emulator.base_url}/export/start", json=body, headers={"Api-Key": emulator.api_key},
                         timeout=10)


def job_id_of(emulator, data_type, **kwargs) -> int:
    response = start_job(emulator, data_type, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["jobId"]


def list_files(emulator, job_id) -> tuple[str, list[dict]]:
    """The job's state and every file so far, paging with ``startAfter``."""
    files, after = [], None
    while True:
        body = get(emulator, f"export/{job_id}/files", **({"startAfter": after} if after else {})).json()
        if not body["files"]:
            return body["jobState"], files
        files += body["files"]
        after = body["files"][-1]["file"]


def manual_clock(emulator, now_s=None) -> ManualClock:
    """Drive the jobs' clock by hand, from a whole second so that sums of whole seconds are exact."""
    emulator.jobs.clock = clock = ManualClock(float(round(time.time()) if now_s is None else now_s))
    return clock


def test_a_job_runs_then_completes_with_exactly_the_export_records_split_into_files(emulator):
    clock, faults = manual_clock(emulator), emulator.faults
    faults.job_file_max_bytes, faults.job_files_per_response = 20_000, 3
    job_id = job_id_of(emulator, "emailSend")
    assert list_files(emulator, job_id) == ("enqueued", []), "a new job waits job_queue_delay_s first"
    counts = []
    for _ in range(12):
        clock.advance(faults.job_seconds_per_file)
        state, files = list_files(emulator, job_id)
        counts.append(len(files))
    assert state == "completed" and counts[:3] == [0, 1, 2] and counts == sorted(counts), \
        "files appear one per job_seconds_per_file while the job runs"
    assert [f["file"] for f in files] == sorted(f["file"] for f in files) and len(files) == counts[-1] > 3
    bodies = [requests.get(f["url"], timeout=10).content for f in files]
    assert all(len(body) <= 20_000 for body in bodies), "no file exceeds job_file_max_bytes"
    records = [record for body in bodies for record in jsonl(body)]
    assert records == list(emulator.data.export_records("emailSend", START_S, END_S)), \
        "a job holds exactly what the sync export serves for its window, in order"
    assert emulator.jobs.records(job_id) == records == emulator.jobs.expected_records(job_id)
    job = emulator.jobs.get(job_id)
    assert job.states == ["enqueued", "running", "completed"] and not job.truncated
    (listed,) = get(emulator, "export/jobs", jobState="Completed").json()["jobs"]
    assert listed["id"] == job_id and listed["dataTypeName"] == "emailSend" and "endTime" in listed
    assert listed["bytesExported"] == sum(map(len, bodies)) == job.bytes_exported
    assert get(emulator, "export/jobs", jobState="running").json() == {"jobs": []}
    assert get(emulator, "export/999/files").status_code == 404
    (started,) = emulator.requests_to("export/start", "POST")
    assert started.body["dataTypeName"] == "emailSend" and started.status == 200


def test_a_job_sees_only_records_indexed_when_it_first_runs(emulator):
    clock = manual_clock(emulator, END_S - 10 * 86_400)
    job_id = job_id_of(emulator, "emailOpen", start_s=END_S - 20 * 86_400)
    clock.advance(60)
    assert list_files(emulator, job_id)[0] == "completed"
    records = emulator.jobs.records(job_id)
    everything = list(emulator.data.export_records("emailOpen", END_S - 20 * 86_400, END_S))
    assert records == emulator.jobs.expected_records(job_id) and 0 < len(records) < len(everything), \
        "late indexing and the future hide records from jobs as from the sync export"


def test_more_than_four_jobs_queue_until_a_running_one_finishes(emulator):
    clock, faults = manual_clock(emulator), emulator.faults
    ids = [job_id_of(emulator, data_type) for data_type in ["emailSend", "emailOpen", "emailClick", "pushSend",
                                                             "smsSend", "purchase"]]
    clock.advance(faults.job_queue_delay_s)
    states = [emulator.jobs.get(i).state for i in ids]
    assert states == ["running"] * 4 + ["enqueued"] * 2, "Iterable runs at most 4 jobs of an organization at once"
    clock.advance(faults.job_seconds_per_file)  # each job fits one file: the first four complete
    assert [emulator.jobs.get(i).state for i in ids] == ["completed"] * 4 + ["running"] * 2
    clock.advance(faults.job_seconds_per_file)
    fifth = emulator.jobs.get(ids[4])
    waited = faults.job_queue_delay_s + faults.job_seconds_per_file
    assert fifth.state == "completed" and fifth.queued_s() == pytest.approx(waited), \
        "the job log shows how long a job waited for a slot"


def test_file_urls_need_no_key_and_a_key_sent_to_them_is_logged(emulator):
    clock = manual_clock(emulator)
    job_id = job_id_of(emulator, "emailBounce")
    clock.advance(60)
    (file,) = list_files(emulator, job_id)[1]
    assert requests.get(file["url"], timeout=10).status_code == 200, "pre-signed URLs need no Api-Key"
    assert requests.get(file["url"], headers={"Api-Key": emulator.api_key}, timeout=10).status_code == 200
    downloads = emulator.requests.file_downloads()
    assert [d.api_key_sent for d in downloads] == [False, True], "the log tells whether the key leaked to a file URL"
    assert [d.endpoint for d in downloads] == ["/files/{jobId}/{file}"] * 2
    assert all(r.api_key_sent for r in emulator.requests.all() if r.path.startswith("/api/"))
    emulator.faults.reject_api_key_on_files = True
    assert requests.get(file["url"], headers={"Api-Key": emulator.api_key}, timeout=10).status_code == 400


def test_an_expired_url_is_403_access_denied_and_listing_files_again_gives_fresh_ones(emulator):
    clock = manual_clock(emulator)
    job_id = job_id_of(emulator, "emailBounce")
    clock.advance(60)
    (old,) = list_files(emulator, job_id)[1]
    clock.advance(emulator.faults.file_url_ttl_s)
    expired = requests.get(old["url"], timeout=10)
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text, "S3 answers 403 in XML"
    (fresh,) = list_files(emulator, job_id)[1]
    assert fresh["file"] == old["file"] and fresh["url"] != old["url"]
    assert jsonl(requests.get(fresh["url"], timeout=10).content) == emulator.jobs.records(job_id)
    forged = requests.get(fresh["url"].replace("Signature=", "Signature=0"), timeout=10)
    assert forged.status_code == 403 and "SignatureDoesNotMatch" in forged.text
    emulator.faults.expire_file_urls_times = 1
    (born_expired,) = list_files(emulator, job_id)[1]
    assert requests.get(born_expired["url"], timeout=10).status_code == 403
    assert requests.get(list_files(emulator, job_id)[1][0]["url"], timeout=10).status_code == 200


def test_a_failed_job_stops_with_the_files_it_made(emulator):
    clock, faults = manual_clock(emulator), emulator.faults
    faults.job_file_max_bytes, faults.job_fail_after_files = 20_000, 2
    faults.job_fail_times, faults.job_fail_types = 1, {"emailopen"}
    healthy, failing = job_id_of(emulator, "emailSend"), job_id_of(emulator, "emailOpen")
    clock.advance(120)
    assert list_files(emulator, healthy)[0] == "completed", "only jobs of job_fail_types fail"
    state, files = list_files(emulator, failing)
    assert state == "failed" and len(files) == 2
    assert emulator.jobs.get(failing).states == ["enqueued", "running", "failed"]
    assert list_files(emulator, job_id_of(emulator, "emailOpen"))[0] == "enqueued", "only job_fail_times jobs fail"


def test_a_restarted_job_goes_back_to_enqueued_and_keeps_its_progress(emulator):
    clock, faults = manual_clock(emulator), emulator.faults
    faults.job_file_max_bytes, faults.job_restart_times, faults.job_restart_after_files = 20_000, 1, 2
    job_id = job_id_of(emulator, "emailSend")
    clock.advance(faults.job_queue_delay_s + 2 * faults.job_seconds_per_file)
    state, before = list_files(emulator, job_id)
    assert state == "enqueued" and len(before) == 2, "a restart sends a running job back to the queue"
    clock.advance(120)
    state, after = list_files(emulator, job_id)
    assert state == "completed" and [f["file"] for f in after[:2]] == [f["file"] for f in before]
    assert emulator.jobs.get(job_id).states == ["enqueued", "running", "enqueued", "running", "completed"]
    assert emulator.jobs.records(job_id) == emulator.jobs.expected_records(job_id), "progress kept, nothing twice"


def test_a_file_download_can_be_dropped_mid_body(emulator):
    clock = manual_clock(emulator)
    emulator.faults.drop_file_times, emulator.faults.drop_file_after_lines = 1, 3
    job_id = job_id_of(emulator, "emailSend")
    clock.advance(60)
    (file,) = list_files(emulator, job_id)[1]
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for byte in requests.get(file["url"], stream=True, timeout=10).iter_content(chunk_size=1):
            received += byte
    *whole, half = bytes(received).split(b"\n")
    assert len(whole) == 3 and all(map(orjson.loads, whole)) and half and emulator.requests.file_downloads()[-1].cut, \
        "three whole lines, then half a line, then the connection is cut"
    assert jsonl(requests.get(file["url"], timeout=10).content) == emulator.jobs.expected_records(job_id)


def test_a_job_over_job_max_bytes_is_truncated(emulator):
    clock, faults = manual_clock(emulator), emulator.faults
    faults.job_file_max_bytes, faults.job_max_bytes = 20_000, 50_000
    job_id = job_id_of(emulator, "emailSend")
    clock.advance(120)
    body = get(emulator, f"export/{job_id}/files").json()
    assert body["jobState"] == "completed" and body["exportTruncated"] is True
    records, expected = emulator.jobs.records(job_id), emulator.jobs.expected_records(job_id)
    assert 0 < len(records) < len(expected) and records == expected[:len(records)], \
        "a truncated job holds a prefix of its records; the rest is in no file"
    assert 40_000 < emulator.jobs.get(job_id).bytes_exported <= 50_000


def test_cancelling_a_running_job_stops_its_files(emulator):
    clock, faults = manual_clock(emulator), emulator.faults
    faults.job_file_max_bytes = 20_000
    job_id = job_id_of(emulator, "emailSend")
    clock.advance(faults.job_queue_delay_s + faults.job_seconds_per_file)
    cancel = requests.delete(f"{emulator.base_url}/export/{job_id}", headers={"Api-Key": emulator.api_key}, timeout=10)
    assert cancel.status_code == 200 and cancel.json()["code"] == "Success"
    assert list_files(emulator, job_id)[0] == "cancelling"
    clock.advance(120)
    state, files = list_files(emulator, job_id)
    assert state == "cancelled" and len(files) == 1, "a cancelled job's files stop growing"
    assert emulator.jobs.get(job_id).cancelled and emulator.requests_to("export/{jobId}", "DELETE")
    again = requests.delete(f"{emulator.base_url}/export/{job_id}", headers={"Api-Key": emulator.api_key}, timeout=10)
    assert again.status_code == 400
    unknown = requests.delete(f"{emulator.base_url}/export/1", headers={"Api-Key": emulator.api_key}, timeout=10)
    assert unknown.status_code == 404


def test_export_start_validates_like_iterable_and_is_limited_to_one_per_second(emulator):
    unknown = start_job(emulator, "emailTeleport")
    assert unknown.json() == {"code": "BadParams", "msg": "Invalid dataTypeName emailTeleport"}
    assert start_job(emulator, "emailSend", outputFormat="application/xml").status_code == 400
    assert start_job(emulator, "emailSend", dataTypeName=None).json()["code"] == "BadParams"
    assert start_job(emulator, "emailSend", startDateTime="yesterday").status_code == 400
    assert start_job(emulator, "anonSession", onlyFields="createdAt,email").status_code == 200, \
        "anonSession is unknownSession; onlyFields is accepted"
    bad_json = requests.post(f"{emulator.base_url}/export/start", data="{", headers={"Api-Key": emulator.api_key})
    assert bad_json.json()["code"] == "BadJsonBody"
    no_key = requests.post(f"{emulator.base_url}/export/start", json={}, timeout=10)
    assert no_key.status_code == 401
    emulator.faults.rate_limits_enabled = True
    statuses = [start_job(emulator, "emailSend").status_code, get(emulator, "export/1/files").status_code]
    assert statuses == [200, 429], "export/start and export/{jobId}/files share 1 request per second"
    assert get(emulator, "export/jobs").status_code == 200, "export/jobs has no documented limit"


def test_jobs_run_on_the_server_clock_scaled_by_time_scale(emulator):
    emulator.faults.time_scale, emulator.faults.job_file_max_bytes = 0.01, 20_000  # 20 ms queued, 30 ms a file
    job_id = job_id_of(emulator, "emailSend")
    deadline = time.monotonic() + 5
    while list_files(emulator, job_id)[0] != "completed":
        assert time.monotonic() < deadline, "a scaled job finishes in well under a second"
        time.sleep(0.02)
    assert emulator.jobs.records(job_id) == list(emulator.data.export_records("emailSend", START_S, END_S))


# Endpoints of other streams.


FIELD_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str), "date": lambda v: isinstance(v, str) and v[4:5] == "-",
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool), "object": lambda v: isinstance(v, dict),
    "nested": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "geo_location": lambda v: isinstance(v, dict) and {"lat", "lon"} <= v.keys(),
}


def is_of_type(value, field_type: str) -> bool:
    """Whether a user field's value fits its ``getFields`` type; an array has the type of its elements."""
    if isinstance(value, list) and field_type != "nested":
        return all(FIELD_TYPE_CHECKS[field_type](x) for x in value)
    return FIELD_TYPE_CHECKS[field_type](value)


def test_user_fields_list_every_user_field_with_its_iterable_type(emulator):
    fields = get(emulator, "users/getFields").json()["fields"]
    assert fields == emulator.data.user_fields()
    assert {"email": "string", "profileUpdatedAt": "date", "emailListIds": "long", "lifetimeValue": "double",
            "isVip": "boolean", "address": "object", "address.city": "string"}.items() <= fields.items()
    served, dotted, nested = set(), set(), set()
    for user in jsonl(export(emulator, "user", START_S, END_S).content):
        for name, value in user.items():
            assert name in fields, f"{name}: every field a user record carries is listed"
            assert is_of_type(value, fields[name]), f"{name}={value!r} is not a {fields[name]}"
            parts = name.split(".")
            served.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
            (dotted if len(parts) > 1 else nested if isinstance(value, dict) else set()).add(name)
            items = value if isinstance(value, list) else [] if fields[name] == "geo_location" else [value]
            served.update(f"{name}.{sub}" for item in items if isinstance(item, dict) for sub in item)
    assert served == set(fields), "getFields lists every field users carry (objects with their sub-fields), no other"
    assert "shoppingPreferences.vip.since" in dotted and "address.city" in dotted and "address" in nested, \
        "nested objects come flattened into dotted keys, and (for some users) as objects"
    emulator.faults.rate_limits_enabled = True
    statuses = [get(emulator, "users/getFields").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429], "users/getFields allows 3 requests per second"


def test_experiment_metrics_are_csv_rows_per_variant_of_email_campaigns(emulator):
    experiments = emulator.data.experiments()
    with_experiments = {e["campaignId"] for e in experiments}
    campaigns = emulator.data.campaigns()
    assert 0 < len(with_experiments) < len([c for c in campaigns if c["messageMedium"] == "Email"]) / 2, \
        "some email campaigns have experiments, most not"
    ids = [c["id"] for c in campaigns]
    response = get(emulator, "experiments/metrics", campaignId=ids, startDateTime="2024-01-01",
                   endDateTime="2024-02-01")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == emulator.data.experiment_metrics_rows(ids)
    assert len(rows) == sum(len(e["templateIds"]) for e in experiments), "one row per variant"
    assert {int(r["Campaign Id"]) for r in rows} == with_experiments
    assert response.text.startswith("Campaign Id,Experiment Id,Template Id,Name,Type,Created By,Creation Date,"), \
        "Iterable's readable headers, as campaigns/metrics has them"
    one = experiments[-1]
    only = list(csv.DictReader(io.StringIO(get(emulator, "experiments/metrics", experimentId=one["id"]).text)))
    assert [int(r["Template Id"]) for r in only] == one["templateIds"] and only[0]["Improvement"] == ""
    with IterableEmulator(EmulatorConfig(experiment_metrics_header="camelCase")) as camel:
        header = get(camel, "experiments/metrics", campaignId=ids).text.splitlines()[0]
        assert header.startswith("campaignId,experimentId,templateId,name,"), "the form Matatika's tap derives"
    empty = get(emulator, "experiments/metrics", campaignId=[c for c in ids if c not in with_experiments][:3])
    assert empty.status_code == 200 and len(empty.text.splitlines()) == 1, "no experiment: the header alone"
    assert get(emulator, "experiments/metrics", campaignId=list(range(10**7, 10**7 + 300))).status_code == 414


def test_email_template_get_serves_the_full_template_of_email_templates_only(emulator):
    listed = emulator.data.templates(medium="Email")[0]
    template = get(emulator, "templates/email/get", templateId=listed["templateId"]).json()
    assert listed.items() <= template.items(), "the listing's fields, updatedAt included, match"
    assert {"fromName", "fromEmail", "replyToEmail", "subject", "preheaderText", "html", "plainText", "locale",
            "metadata"} <= template.keys() and template == emulator.data.email_template(listed["templateId"])
    push = emulator.data.templates(medium="Push")[0]["templateId"]
    for template_id in (push, 1):
        response = get(emulator, "templates/email/get", templateId=template_id)
        assert response.status_code == 404 and response.json()["code"] == "NotFound"
    assert get(emulator, "templates/email/get").status_code == 400


def test_data_types_outside_the_plan_answer_like_unknown_ones_and_user_field_knobs():
    config = EmulatorConfig(seed=7, records_per_type=50, users=12, unavailable_data_types={"whatsAppSend", "SMSSend"},
                            unlisted_user_field_every=3, user_fields_of_every_type=True)
    assert len(EVENT_TYPES) == 53, "every value of Iterable's export enum is generated"
    with IterableEmulator(config) as planned:
        response = export(planned, "smsSend", START_S, END_S)
        assert response.status_code == 400
        assert response.json() == {"code": "BadParams", "msg": "Invalid dataTypeName smsSend"}
        job = start_job(planned, "whatsAppSend")
        assert job.json() == {"code": "BadParams", "msg": "Invalid dataTypeName whatsAppSend"}
        assert jsonl(export(planned, "anonSession", START_S, END_S).content) == \
            list(planned.data.all_export_records("unknownSession")), "anonSession is an alias of unknownSession"
        fields = get(planned, "users/getFields").json()["fields"]
        assert {"devices": "nested", "lastKnownLocation": "geo_location"}.items() <= fields.items()
        users = jsonl(export(planned, "user", START_S, END_S).content)
        assert UNLISTED_USER_FIELD not in fields and sum(UNLISTED_USER_FIELD in u for u in users) == 4
        assert all(e["_type"] != "smsSend" for u in users for e in planned.data.user_events(u["email"], True))


def test_emulator_and_connector_config_runs_a_rate_limited_emulator_and_the_config_that_reads_it():
    project = EmulatorConfig(seed=7, start="2024-01-01T00:00:00Z", end="2024-02-01T00:00:00Z", records_per_type=10)

    with emulator_and_connector_config(project, bounded=True, lookback_window=0) as (emulator, config):
        assert config == {
            "api_key": emulator.api_key, "base_url": emulator.base_url, "start_date": "2024-01-01T00:00:00Z",
            "end_date": "2024-02-01T00:00:00Z", "export_requests_per_minute": 180, "lookback_window": 0,
            "campaign_metrics_requests_per_minute": 450,
        }, "3/4 of Iterable's 4 exports and 10 campaign metrics requests per minute, 60 times faster"
        assert (emulator.faults.rate_limits_enabled, emulator.faults.time_scale) == (True, 1 / 60)
        assert get(emulator, "channels", key=config["api_key"]).status_code == 200
    with pytest.raises(RuntimeError, match="not running"):
        emulator.base_url

    with emulator_and_connector_config(project, time_scale=1 / 20, api_key="another-key") as (emulator, config):
        assert "end_date" not in config, "unbounded: the connector reads up to now"
        assert (config["export_requests_per_minute"], config["api_key"], emulator.faults.time_scale) == (60, "another-key", 1 / 20)

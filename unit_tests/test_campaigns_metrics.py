"""campaigns_metrics: CSV rows batched under Iterable's 2,048-character URL limit."""

import re

from airbyte_cdk.models import SyncMode

from source_iterable.campaign_metrics import can_change_after
from unit_tests.harness import API, final_state, records_of, read_stream

METRICS_CSV = (
    "id,Average Order Value,Revenue,Total Email Sends,Unique Email Opens,Total Pushes Sent,Note\n"
    "2220229,0,12.5,2,1,,N/A\n"
    "2197857,0,0,,,7,\"1,234.5\"\n"
)


def test_metrics_rows_become_typed_records(config, requests_mock):
    requests_mock.get(f"{API}/campaigns", json={"campaigns": [{"id": 2220229}, {"id": 2197857}]})
    requests_mock.get(f"{API}/campaigns/metrics", text=METRICS_CSV)

    records = records_of(read_stream("campaigns_metrics", config))

    assert all(r.pop("metricsReadAt").endswith("+00:00") for r in records), "each record says when it was read"
    assert records == [
        {
            "id": 2220229,
            "data": {"id": 2220229, "Average Order Value": 0, "Revenue": 12.5, "Total Email Sends": 2, "Unique Email Opens": 1, "Note": "N/A"},
        },
        {
            "id": 2197857,
            "data": {"id": 2197857, "Average Order Value": 0, "Revenue": 0, "Total Pushes Sent": 7, "Note": "1,234.5"},
        },
    ], "numbers become numbers, odd cells stay strings, empty cells are omitted"
    query = requests_mock.request_history[-1].qs
    assert query["campaignid"] == ["2220229", "2197857"], "campaign ids are repeated as campaignId"
    assert query["startdatetime"] == ["2024-01-01"]


def test_campaign_ids_are_batched_so_every_url_stays_under_2048_characters(config, requests_mock):
    # 19-digit ids are the longest an int64 can be.
    ids = [10**18 + i for i in range(120)]
    requests_mock.get(f"{API}/campaigns", json={"campaigns": [{"id": i} for i in ids]})
    requests_mock.get(f"{API}/campaigns/metrics", text="id,Revenue\n")

    read_stream("campaigns_metrics", config)

    metric_calls = [h for h in requests_mock.request_history if h.path.endswith("/metrics")]
    requested = [int(v) for h in metric_calls for v in h.qs["campaignid"]]
    assert sorted(requested) == ids, "every campaign is asked for exactly once"
    assert len(metric_calls) == 3
    for call in metric_calls:
        assert len(call.url) < 2048, f"Iterable answers 414 above 2,048 characters, got {len(call.url)}"
        assert not re.search(r"api_key|Api-Key", call.url)


DAY_MS = 86_400_000
SINCE_MS = 1_717_200_000_000  # 2024-06-01 00:00:00 UTC, the previous sync
CAMPAIGNS = [
    {"id": 1, "campaignState": "Running", "createdAt": SINCE_MS - 400 * DAY_MS, "updatedAt": SINCE_MS - 400 * DAY_MS},
    {"id": 2, "campaignState": "Finished", "createdAt": SINCE_MS - 90 * DAY_MS, "updatedAt": SINCE_MS - 90 * DAY_MS,
     "startAt": SINCE_MS - 90 * DAY_MS, "endedAt": SINCE_MS - 60 * DAY_MS},
    {"id": 3, "campaignState": "Finished", "createdAt": SINCE_MS - 90 * DAY_MS, "updatedAt": SINCE_MS - 90 * DAY_MS,
     "startAt": SINCE_MS - 40 * DAY_MS, "endedAt": SINCE_MS - 29 * DAY_MS},
    {"id": 4, "campaignState": "Draft", "createdAt": SINCE_MS - 200 * DAY_MS, "updatedAt": SINCE_MS - 200 * DAY_MS},
    {"id": 5, "campaignState": "Scheduled", "createdAt": SINCE_MS - 2 * DAY_MS, "updatedAt": SINCE_MS - 2 * DAY_MS},
    {"id": 6, "campaignState": "SomethingNew", "createdAt": SINCE_MS - 900 * DAY_MS, "updatedAt": SINCE_MS - 900 * DAY_MS},
]


def asked_ids(requests_mock):
    return sorted(int(v) for h in requests_mock.request_history if h.path.endswith("/metrics") for v in h.qs["campaignid"])


def test_an_incremental_sync_reads_only_campaigns_whose_metrics_can_still_change(config, requests_mock):
    requests_mock.get(f"{API}/campaigns", json={"campaigns": CAMPAIGNS})
    requests_mock.get(f"{API}/campaigns/metrics", text="id,Revenue\n1,2\n")
    incremental = {**config, "end_date": "2024-06-02T00:00:00Z"}

    output = read_stream("campaigns_metrics", incremental, SyncMode.incremental, state={"metricsReadAt": "2024-06-01 00:00:00"})

    assert asked_ids(requests_mock) == [1, 3, 5, 6], (
        "sending (or in an unknown state), or active within the 30-day attribution window before the previous sync"
    )
    assert final_state(output) == {"metricsReadAt": "2024-06-02 00:00:00"}


def test_a_first_sync_and_a_full_refresh_read_every_campaign(config, requests_mock):
    requests_mock.get(f"{API}/campaigns", json={"campaigns": CAMPAIGNS})
    requests_mock.get(f"{API}/campaigns/metrics", text="id,Revenue\n")

    read_stream("campaigns_metrics", {**config, "end_date": "2024-06-02T00:00:00Z"}, SyncMode.incremental)
    first = asked_ids(requests_mock)
    requests_mock.reset_mock()
    read_stream("campaigns_metrics", config, SyncMode.full_refresh)

    assert first == asked_ids(requests_mock) == [1, 2, 3, 4, 5, 6]


def test_a_campaign_is_read_once_more_after_its_metrics_settle_then_no_more():
    window = 30
    ended_ms = SINCE_MS - (window * DAY_MS) + 3_600_000  # settles an hour after the previous sync
    campaign = {"campaignState": "Finished", "createdAt": ended_ms - DAY_MS, "endedAt": ended_ms}

    assert can_change_after(campaign, SINCE_MS, window), "the sync after it settled reads its final metrics"
    assert not can_change_after(campaign, SINCE_MS + DAY_MS, window), "later syncs leave it alone"
    assert can_change_after(campaign, SINCE_MS + DAY_MS, 60), "a longer window keeps it longer"

"""campaigns_metrics: CSV rows batched under Iterable's 2,048-character URL limit."""

import re

from unit_tests.harness import API, records_of, read_stream

METRICS_CSV = (
    "id,Average Order Value,Revenue,Total Email Sends,Unique Email Opens,Total Pushes Sent,Note\n"
    "2220229,0,12.5,2,1,,N/A\n"
    "2197857,0,0,,,7,\"1,234.5\"\n"
)


def test_metrics_rows_become_typed_records(config, requests_mock):
    requests_mock.get(f"{API}/campaigns", json={"campaigns": [{"id": 2220229}, {"id": 2197857}]})
    requests_mock.get(f"{API}/campaigns/metrics", text=METRICS_CSV)

    records = records_of(read_stream("campaigns_metrics", config))

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

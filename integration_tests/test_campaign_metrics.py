"""campaigns_metrics end to end: an incremental sync reads the campaigns whose metrics can still
change, and the newest metrics of every campaign equal Iterable's at the last sync.

The emulator's metrics grow while a campaign sends and for 14 days after it ends (attribution),
then stay final; the connector's attribution window is 30 days (its default).
"""

from datetime import datetime, timedelta
from typing import Any, Dict

from integration_tests.connector import catalog_for
from integration_tests.late_syncs import at
from integration_tests.project import END, emulated_project

DAY_MS = 86_400_000
QUIET = {"Draft", "Ready", "Scheduled", "Finished", "Aborted", "Archived"}


def newest(outputs) -> Dict[int, Dict[str, Any]]:
    latest: Dict[int, Dict[str, Any]] = {}
    for output in outputs:
        for record in output.records["campaigns_metrics"]:
            latest[record["id"]] = record["data"]
    return latest


def as_served(row: Dict[str, str]) -> Dict[str, str]:
    return {name: value for name, value in row.items() if value != ""}


def as_emitted(data: Dict[str, Any]) -> Dict[str, str]:
    return {name: value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
            for name, value in data.items()}


def test_a_second_sync_reads_only_what_can_change_and_every_campaign_ends_exact(connector):
    first_sync = datetime.fromisoformat(END.replace("Z", "+00:00"))
    second_sync = first_sync + timedelta(days=2)
    with emulated_project() as (emulator, config):
        config = {key: value for key, value in config.items() if key != "end_date"}
        catalog = catalog_for(connector.streams(config), ["campaigns_metrics"])
        at(emulator, first_sync)
        first = connector.read({**config, "end_date": END}, catalog)
        emulator.requests.clear()
        at(emulator, second_sync)
        second = connector.read({**config, "end_date": second_sync.strftime("%Y-%m-%dT%H:%M:%SZ")}, catalog,
                                state=first.final_states())
        asked = sorted(int(v) for r in emulator.requests_to("campaigns/metrics") for v in r.query["campaignId"])
        campaigns = emulator.data.campaigns()
        served = {int(row["id"]): row for row in emulator.data.campaign_metrics_rows(
            [c["id"] for c in campaigns], now=second_sync)}
        at_first = {int(row["id"]): row for row in emulator.data.campaign_metrics_rows(
            [c["id"] for c in campaigns], now=first_sync)}

    assert first.returncode == 0 and second.returncode == 0, first.errors + second.errors
    assert len(first.records["campaigns_metrics"]) == len(campaigns), "the first sync reads every campaign"
    since_ms = first_sync.timestamp() * 1000
    changeable = sorted(
        c["id"] for c in campaigns
        if c["campaignState"] not in QUIET
        or max(c.get(k, 0) for k in ("createdAt", "updatedAt", "startAt", "endedAt")) + 30 * DAY_MS > since_ms
    )
    assert asked == changeable and 0 < len(asked) < len(campaigns), "the second sync reads only what can change"
    changed_after_end = [c["id"] for c in campaigns if "endedAt" in c and as_served(served[c["id"]]) != as_served(at_first[c["id"]])]
    assert changed_after_end and set(changed_after_end) <= set(asked), "metrics that changed after the end are read again"
    latest = newest([first, second])
    assert {campaign_id: as_emitted(data) for campaign_id, data in latest.items()} == {
        campaign_id: as_served(row) for campaign_id, row in served.items()
    }, "every campaign's newest metrics are Iterable's at the second sync"
    assert second.final_states()[0]["stream"]["stream_state"] == {"metricsReadAt": second_sync.strftime("%Y-%m-%d %H:%M:%S")}
    assert all(r["metricsReadAt"] == second_sync.strftime("%Y-%m-%dT%H:%M:%S+00:00") for r in second.records["campaigns_metrics"])

"""`campaigns_metrics` that scales with activity: each sync reads the metrics of the campaigns whose
metrics can still change, and every other campaign's once.

A campaign's metrics keep changing while it sends and, through attribution (opens, clicks and
purchases credited to it), for a while after it ends. Iterable does not move a campaign's
`updatedAt` when it starts or ends, so the rule looks at its state and all its timestamps.
"""

from dataclasses import InitVar, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, List, Mapping, Optional

from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, Type
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, StreamSlice

from source_iterable.components import CampaignMetricsRecord, ConformToSchema
from source_iterable.export import cdk_adapter

# States in which a campaign can send; any state not known to be quiet counts as one of them.
QUIET_STATES = {"Draft", "Ready", "Scheduled", "Finished", "Aborted", "Archived", "Recalled", "Cancelled"}
TIMESTAMPS = ("createdAt", "updatedAt", "startAt", "endedAt")
CURSOR_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY_MS = 86_400_000


def can_change_after(campaign: Mapping[str, Any], since_ms: int, window_days: int) -> bool:
    """Whether the campaign's metrics may have changed since `since_ms` (epoch ms): it can send
    (not in a quiet state), or it was created, updated, started or ended within the attribution
    window before then. A campaign whose metrics settled after `since_ms` is read once more."""
    if campaign.get("campaignState") not in QUIET_STATES:
        return True
    moments = [campaign[name] for name in TIMESTAMPS if isinstance(campaign.get(name), (int, float))]
    return not moments or max(moments) + window_days * DAY_MS > since_ms


@dataclass
class ChangeableCampaignMetrics(Retriever):
    """Reads `campaigns`, keeps the campaigns whose metrics can still change since the previous
    sync (all of them on a first sync or a full refresh), and reads their metrics in batches.

    The state is when the previous sync read the metrics (`metricsReadAt`, the slice end the
    cursor hands over). Each record carries it too, so that a deduplicated destination keeps the
    newest metrics of a campaign.

        retriever:
          type: CustomRetriever
          class_name: source_iterable.campaign_metrics.ChangeableCampaignMetrics
          campaigns: {$ref: "#/definitions/streams/campaigns/retriever", $parameters: {...}}
          metrics: {$ref: "#/definitions/csv_metrics_retriever"}
          attribution_window_days: "{{ config.get('campaign_attribution_window_days', 30) }}"

    Attributes:
        campaigns: the `campaigns` listing (paged).
        metrics: `campaigns/metrics` for the ids of one slice partition (`campaign_id`).
        cursor: the stream's ConcurrentCursor (a FinalStateCursor in full refresh).
        attribution_window_days: how long after a campaign's last activity its metrics may change.
        batch_size: campaign ids per request (Iterable rejects URLs over 2,048 characters).
    """

    campaigns: Retriever
    metrics: Retriever
    cursor: Any
    name: str
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    attribution_window_days: Any = 30
    batch_size: int = 50
    _window: int = field(init=False, default=30)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        value = InterpolatedString.create(str(self.attribution_window_days), parameters=parameters).eval(self.config)
        self._window = int(value)
        self._to_record = CampaignMetricsRecord(parameters=parameters)
        self._contract = ConformToSchema(parameters=parameters, overflow_field="additionalFields")

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[StreamData]:
        read_at = _slice_time(stream_slice, "end_time") or datetime.now(timezone.utc).replace(tzinfo=None)
        since = _slice_time(stream_slice, "start_time") if cdk_adapter.stored_state(self.cursor, "metricsReadAt") else None
        ids = self._campaign_ids(since)
        read_at_text = read_at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        announced = False
        for batch in (ids[k : k + self.batch_size] for k in range(0, len(ids), self.batch_size)):
            partition = StreamSlice(partition={"campaign_id": batch}, cursor_slice={})
            for row in self.metrics.read_records(records_schema, stream_slice=partition):
                if not announced:
                    announced = True
                    yield cdk_adapter.running(self.name)
                record = dict(row)
                self._to_record.transform(record)
                record["metricsReadAt"] = read_at_text
                self._contract.transform(record, records_schema)
                yield AirbyteMessage(
                    type=Type.RECORD, record=AirbyteRecordMessage(stream=self.name, data=record, emitted_at=_now_ms())
                )
        if stream_slice is not None and cdk_adapter.keeps_state(self.cursor):
            low = _slice_time(stream_slice, "start_time") or read_at
            cdk_adapter.checkpoint(self.cursor, self.name, "metricsReadAt", min(low, read_at), read_at)

    def _campaign_ids(self, since: Optional[datetime]) -> List[int]:
        since_ms = None if since is None else int(since.replace(tzinfo=timezone.utc).timestamp() * 1000)
        ids: List[int] = []
        seen = set()
        for campaign in self._listing():
            campaign_id = campaign.get("id")
            if campaign_id is None or campaign_id in seen:
                continue
            seen.add(campaign_id)
            if since_ms is None or can_change_after(campaign, since_ms, self._window):
                ids.append(campaign_id)
        return ids

    def _listing(self) -> Iterator[Mapping[str, Any]]:
        yield from self.campaigns.read_records({}, stream_slice=StreamSlice(partition={}, cursor_slice={}))


def _slice_time(stream_slice: Optional[StreamSlice], key: str) -> Optional[datetime]:
    value = (stream_slice.cursor_slice or {}).get(key) if stream_slice is not None else None
    return datetime.strptime(value, CURSOR_FORMAT) if value else None


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)

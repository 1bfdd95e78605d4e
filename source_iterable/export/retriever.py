"""The export engine's CDK component: reads one export stream in adaptive windows, exactly once.

The CDK's `DatetimeBasedCursor` hands this retriever one slice per stream, from the state (or
`start_date`) to `now - lookback_window`. The retriever cuts it into windows itself, because
only here is it known how long a request took and whether the body arrived whole.
"""

import logging
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, List, Mapping, Optional, Union

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_iterable.export import cdk_adapter
from source_iterable.export.jobs import ExportJobReader, ExportJobRequest, JobFailed, JobTruncated
from source_iterable.export.late_events import STATE_KEY, LateEvents, horizon_seconds
from source_iterable.export.plan import API_DATETIME_FORMAT, ExportPlan, Window
from source_iterable.export.records import RecordShaper
from source_iterable.export.recovery import DROPPED, DropRecovery
from source_iterable.export.sync_export import DataTypeUnavailable, SyncExport, SyncExportRequest
from source_iterable.export.window_read import WindowRead
from source_iterable.read_context import export_jobs

logger = logging.getLogger("airbyte")


@dataclass
class AdaptiveExportWindows(Retriever):
    """Reads Iterable's export of one data type in adaptive windows (see the package docstring).

    - `ExportPlan` gives the next window and whether the sync export or an export job reads it
      (`export_mode` sync, jobs, or auto: jobs for all but the last 3 days).
    - A body cut mid-way (or a failed job) halves the window and retries it, up to `max_drops`
      times in a row; records the failed attempts emitted are not emitted again (`DropRecovery`).
    - Only records inside the requested window are emitted, so consecutive syncs never overlap.
    - After each complete window the state moves to its end (`cdk_adapter.checkpoint`).
    - A data type Iterable rejects for the project is tried under its `data_type_aliases`, then
      the stream is skipped with a warning.

    The CDK passes one slice per stream, so `read_records` runs once per stream; the state of a
    read stays in locals, as the CDK asks of retrievers (it calls them from worker threads).

        retriever:
          type: CustomRetriever
          class_name: source_iterable.export.retriever.AdaptiveExportWindows
          requester: {$ref: "#/definitions/requester"}
          $parameters: {data_type: emailSend, cursor_field: createdAt}

    Attributes:
        requester: sends the export requests (rate budget and error handling included).
        cursor: the stream's ConcurrentCursor, built from `incremental_sync`.
        job_start_requester / job_files_requester / job_cancel_requester: the export-job endpoints.
        max_drops: dropped connections (or failed jobs) tolerated in a row before the stream fails.
        target_seconds: how long one export request should take.
    """

    requester: Requester
    cursor: Any
    name: str
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    job_start_requester: Optional[Requester] = None
    job_files_requester: Optional[Requester] = None
    job_cancel_requester: Optional[Requester] = None
    max_drops: int = 6
    target_seconds: float = 60.0
    _parameters: Mapping[str, Any] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._parameters = parameters
        self.data_type: str = parameters["data_type"]
        self.data_type_aliases: List[str] = list(parameters.get("data_type_aliases", []))
        self.cursor_field: str = parameters.get("cursor_field", "createdAt")
        self.stamp_field: str = parameters.get("stamp_field", "documentCreatedAt")
        self.export_mode: str = str(self.config.get("export_mode") or "sync")
        self._sync_export = SyncExport(self.requester, self.name)
        self._jobs = self._job_reader()

    def _job_reader(self) -> Optional[ExportJobReader]:
        if self.export_mode == "sync" or not (self.job_start_requester and self.job_files_requester and self.job_cancel_requester):
            return None
        # Iterable allows 1 job request per second per organization; a job is polled every 5 of them.
        requests_per_second = float(self.config.get("export_job_requests_per_second") or 1)
        return ExportJobReader(
            start_requester=self.job_start_requester,
            files_requester=self.job_files_requester,
            cancel_requester=self.job_cancel_requester,
            live_jobs=export_jobs(self.config),
            stream=self.name,
            poll_seconds=5 / requests_per_second,
        )

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        if stream_slice is None:
            return
        cursor = datetime.strptime(stream_slice.cursor_slice["start_time"], API_DATETIME_FORMAT)
        end = datetime.strptime(stream_slice.cursor_slice["end_time"], API_DATETIME_FORMAT)
        late = self._late_events(cursor, end)
        start = _utc(late.read_from) if late is not None else cursor
        plan = ExportPlan(start, end, self.export_mode, self._jobs is not None, self.target_seconds)
        recovery = DropRecovery(self.max_drops)
        shaper = self._shaper(records_schema)
        data_types = [self.data_type, *self.data_type_aliases]
        announced = False
        records = windows = 0
        low = start
        while low < end:
            window = plan.window_from(low)
            late_records = late.window(_epoch(window.low), _epoch(window.high)) if late is not None else None
            source = self._request(data_types[0], window)
            read = WindowRead(
                self.name, window, self.cursor_field, shaper, recovery.already_emitted, late_records, lambda: source.read_at
            )
            try:
                for message in read.messages(source.lines()):
                    if not announced:
                        announced = True
                        yield cdk_adapter.running(self.name)
                    yield message
            except DataTypeUnavailable as rejection:
                data_types.pop(0)
                if not self._can_fall_back(rejection, data_types):
                    return
                continue
            except DROPPED as error:
                records += read.records
                recovery.after_drop(window, read.emitted_keys, late_records.keys if late_records is not None else ())
                if recovery.exhausted:
                    raise self._too_many_drops(start, end, window, recovery.drops, error) from None
                self._log_drop(window, read.records, error, plan.after_drop(window), recovery.drops)
                continue
            finally:
                read.emitted_keys.close()
            carried_keys = recovery.after_success(window)
            plan.after_success(window, source.seconds, read.records)
            records, windows = records + read.records, windows + 1
            self._log_window(read, source.seconds)
            extra_state = None
            if late is not None and late_records is not None:
                late.completed(late_records, _epoch(window.low), _epoch(window.high), source.read_at, carried_keys)
                extra_state = late.state()
            cdk_adapter.checkpoint(self.cursor, self.name, self.cursor_field, window.low, window.high, extra_state)
            low = window.high
        # The CDK's own "Read N records" line counts only records it built itself, so it says 0 here.
        logger.info(f"{self.name}: read {records} records in {windows} window(s) covering {Window(start, end, False)}.")
        if late is not None:
            late.log_summary(str(Window(start, min(cursor, end), False)))

    def _late_events(self, cursor: datetime, end: datetime) -> Optional[LateEvents]:
        """The late-event side of an incremental sync (`None` for a full refresh, or a horizon of 0)."""
        horizon_s = horizon_seconds(self.config)
        if horizon_s <= 0 or not cdk_adapter.keeps_state(self.cursor):
            return None
        lookback_s = int(self.config.get("lookback_window", 5) or 0) * 60
        start_date = datetime.strptime(self.config["start_date"], START_DATE_FORMAT)
        return LateEvents.for_sync(
            self.name,
            cdk_adapter.stored_state(self.cursor, STATE_KEY),
            horizon_s,
            cursor_s=_epoch(cursor),
            start_s=_epoch(start_date),
            end_s=_epoch(end),
            now_s=_epoch(end) + lookback_s,
            lookback_s=lookback_s,
            stamp_field=self.stamp_field,
        )

    def _request(self, data_type: str, window: Window) -> Union[SyncExportRequest, ExportJobRequest]:
        if window.by_job and self._jobs is not None:
            return self._jobs.request(data_type, window.low.strftime(API_DATETIME_FORMAT), window.high.strftime(API_DATETIME_FORMAT))
        return self._sync_export.request(data_type, window)

    def _can_fall_back(self, rejection: DataTypeUnavailable, remaining: List[str]) -> bool:
        if remaining:
            logger.info(f"{self.name}: Iterable rejected dataTypeName {rejection.data_type}; trying {remaining[0]}.")
            return True
        logger.warning(
            f"Skipping stream {self.name}: Iterable rejected its data type for this project ({rejection}). "
            "The project's plan may not include this channel. Nothing was read and the stream's "
            "state is unchanged; it is read once Iterable accepts the data type."
        )
        return False

    def _shaper(self, records_schema: Mapping[str, Any]) -> RecordShaper:
        return RecordShaper(
            schema=records_schema,
            key_field=self._parameters.get("key_field"),
            overflow_field=self._parameters.get("overflow_field"),
            identity_fields=self._parameters.get("identity_fields", ()),
        )

    def _log_window(self, read: WindowRead, seconds: float) -> None:
        how = "an export job" if read.window.by_job else "the export"
        logger.info(f"{self.name}: read {read.window} through {how}: {read.records} records in {seconds:.1f} s.")
        if read.malformed:
            logger.warning(f"{self.name}: skipped {read.malformed} malformed line(s) (not a JSON object) in {read.window}.")
        if read.without_cursor:
            logger.warning(
                f"{self.name}: {read.without_cursor} record(s) in {read.window} have no readable "
                f"{self.cursor_field}; they were emitted as they are."
            )
        if read.outside_window:
            logger.info(
                f"{self.name}: ignored {read.outside_window} record(s) Iterable returned outside {read.window}; "
                "the window they belong to reads them."
            )

    def _log_drop(self, window: Window, emitted: int, error: BaseException, retry_span: Any, drops: int) -> None:
        logger.warning(
            f"{self.name}: {_failure(error)} while exporting {window} after {emitted} records "
            f"({type(error).__name__}: {error}); retrying with a window of {_duration(retry_span)} "
            f"(attempt {drops + 1} of {self.max_drops + 1}). Records already read are not emitted again."
        )

    def _too_many_drops(self, start: datetime, end: datetime, window: Window, drops: int, error: BaseException) -> AirbyteTracedException:
        return AirbyteTracedException(
            message=(
                f"Stream {self.name}: the export of {self.data_type} for {window} failed {drops} times "
                f"in a row ({_failure(error)}), even after halving the window. The state stays at "
                f"the last complete window, so the next sync resumes from there. If it keeps happening, "
                "Iterable's export may be degraded; try again later."
            ),
            internal_message=f"{self.name} {Window(start, end, False)}: last error {error!r}",
            failure_type=FailureType.system_error,
        )


START_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _epoch(moment: datetime) -> int:
    """Epoch seconds of a naive UTC datetime (the engine's windows are naive UTC)."""
    return int(moment.replace(tzinfo=timezone.utc).timestamp())


def _utc(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc).replace(tzinfo=None)


def _failure(error: BaseException) -> str:
    if isinstance(error, JobTruncated):
        return "Iterable truncated the export job at its size cap"
    if isinstance(error, JobFailed):
        return "the Iterable export job failed"
    return "Iterable dropped the connection"


def _duration(span: Any) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.2f} days" if hours >= 24 else f"{hours:.2f} hours"

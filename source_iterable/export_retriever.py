"""The export engine: reads one export stream in adaptive date windows, exactly once.

The CDK's `DatetimeBasedCursor` hands this retriever one slice per stream, from the state (or
`start_date`) to `now - lookback_window`. The retriever cuts it into windows itself, because
only here is it known how long a request took and whether the body arrived whole.
"""

import http.client
import logging
import time
from array import array
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta
from time import monotonic
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Set

import orjson
import requests
import urllib3
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteRecordMessage,
    AirbyteStreamStatus,
    FailureType,
    StreamDescriptor,
    Type,
)
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice
from airbyte_cdk.utils.stream_status_utils import as_airbyte_message as stream_status_message
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_iterable.export_jobs import ExportJobReader, JobFailed, JobTruncated
from source_iterable.export_records import RecordShaper
from source_iterable.record_contract import rfc3339_utc
from source_iterable.export_windows import WindowSizer
from source_iterable.jsonl import iter_body_lines, streaming

logger = logging.getLogger("airbyte")

API_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ISO_SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%S"
ONE_SECOND = timedelta(seconds=1)

# Export jobs cover long windows in one request; the last days stay on the sync export in `auto`.
JOB_WINDOW = timedelta(days=366)
AUTO_SYNC_TAIL = timedelta(days=3)

# What a body cut short looks like, depending on where the read stopped.
DROPPED_CONNECTION_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.DecodeError,
    http.client.IncompleteRead,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    ConnectionError,
    TimeoutError,
)


class DataTypeUnavailable(Exception):
    """Iterable rejected the data type for this project (its plan may not include the channel)."""

    def __init__(self, data_type: str, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.data_type = data_type


@dataclass
class WindowResult:
    """What one complete window returned, for sizing and for the logs."""

    records: int = 0
    seconds: float = 0.0
    malformed: int = 0
    outside_window: int = 0
    without_cursor: int = 0
    already_emitted: int = 0


@dataclass
class AdaptiveExportWindows(Retriever):
    """Reads Iterable's `export/data.json` for one data type in adaptive windows.

    - Window sizes follow `WindowSizer`: 30 days first, then sized from each request's duration.
    - A body cut mid-way halves the window and retries it, up to `max_drops` times; records the
      failed attempts already emitted are skipped on the retries (keyed by the raw line).
    - Only records inside the requested window are emitted, so consecutive syncs never overlap.
    - After each complete window the state moves to its end, through the stream's cursor.

    The CDK passes one slice per stream, so `read_records` runs once per stream; all state of a
    read stays in locals anyway, as the CDK asks of retrievers.

        retriever:
          type: CustomRetriever
          class_name: source_iterable.components.AdaptiveExportWindows
          requester: {$ref: "#/definitions/requester"}
          $parameters: {data_type: emailSend, cursor_field: createdAt}

    With `export_mode` `jobs` (or `auto`, for all but the last 3 days), windows of up to 366 days
    are read through Iterable's export jobs instead (`ExportJobReader`); a failed or truncated
    job counts as a dropped connection, with the same halving and the same skipping of records
    already emitted.

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
        # The nested requester is built with a buffering decoder; exports must stream.
        streaming(self.requester)
        self._parameters = parameters
        self.data_type: str = parameters["data_type"]
        self.data_type_aliases: List[str] = list(parameters.get("data_type_aliases", []))
        self.cursor_field: str = parameters.get("cursor_field", "createdAt")
        self.export_mode: str = str(self.config.get("export_mode") or "sync")
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
            stream=self.name,
            poll_seconds=5 / requests_per_second,
        )

    def _jobs_until(self, start: datetime, end: datetime) -> datetime:
        """Windows before this instant are read by export jobs, the rest by the sync export."""
        if self._jobs is None:
            return start
        return end if self.export_mode == "jobs" else max(start, end - AUTO_SYNC_TAIL)

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        if stream_slice is None:
            return
        start = datetime.strptime(stream_slice.cursor_slice["start_time"], API_DATETIME_FORMAT)
        end = datetime.strptime(stream_slice.cursor_slice["end_time"], API_DATETIME_FORMAT)
        shaper = self._shaper(records_schema)
        jobs_until = self._jobs_until(start, end)
        sync_sizer = WindowSizer(target_seconds=self.target_seconds)
        job_sizer = WindowSizer(first_window=JOB_WINDOW, max_window=JOB_WINDOW)
        sync_span, job_span = sync_sizer.first(), job_sizer.first()
        emitted = array("q")
        already_emitted: Optional[Set[int]] = None
        already_emitted_until = start
        drops = 0
        records_read = windows_read = 0
        announced_running = False
        data_types = [self.data_type, *self.data_type_aliases]
        low = start
        while low < end:
            by_job = low < jobs_until
            high = min(low + job_span, jobs_until) if by_job else min(low + sync_span, end)
            del emitted[:]
            try:
                result = WindowResult()
                for message in self._read_window(data_types[0], low, high, by_job, shaper, emitted, already_emitted, result):
                    if not announced_running:
                        announced_running = True
                        yield stream_status_message(StreamDescriptor(name=self.name), AirbyteStreamStatus.RUNNING)
                    yield message
            except DataTypeUnavailable as rejection:
                data_types.pop(0)
                if data_types:
                    logger.info(f"{self.name}: Iterable rejected dataTypeName {rejection.data_type}; trying {data_types[0]}.")
                    continue
                logger.warning(
                    f"Skipping stream {self.name}: Iterable rejected its data type for this project ({rejection}). "
                    "The project's plan may not include this channel. Nothing was read and the stream's "
                    "state is unchanged; it is read once Iterable accepts the data type."
                )
                return
            except (*DROPPED_CONNECTION_ERRORS, JobFailed, JobTruncated) as error:
                drops += 1
                records_read += len(emitted)
                already_emitted = (already_emitted or set()) | set(emitted)
                already_emitted_until = max(already_emitted_until, high)
                if drops > self.max_drops:
                    raise self._too_many_drops(start, end, low, high, drops, error) from None
                if by_job:
                    job_span = job_sizer.after_drop(high - low)
                else:
                    sync_span = sync_sizer.after_drop(high - low)
                logger.warning(
                    f"{self.name}: {_failure(error)} while exporting {_window(low, high)} after {len(emitted)} "
                    f"records ({type(error).__name__}: {error}); retrying with a window of "
                    f"{_duration(job_span if by_job else sync_span)} (attempt {drops + 1} of {self.max_drops + 1}). "
                    "Records already read are not emitted again."
                )
                continue
            drops = 0
            records_read += result.records
            windows_read += 1
            self._log_window(low, high, result, by_job)
            self._checkpoint(low, high)
            if not by_job:
                sync_span = sync_sizer.after_success(high - low, result.seconds, result.records)
            low = high
            if already_emitted is not None and low >= already_emitted_until:
                already_emitted = None
        # The CDK's own "Read N records" line counts only records it built itself, so it says 0 here.
        logger.info(
            f"{self.name}: read {records_read} records in {windows_read} window(s) covering {_window(start, end)}."
        )

    def _read_window(
        self,
        data_type: str,
        low: datetime,
        high: datetime,
        by_job: bool,
        shaper: RecordShaper,
        emitted: array,
        already_emitted: Optional[Set[int]],
        result: WindowResult,
    ) -> Iterator[AirbyteMessage]:
        started = monotonic()
        lines = self._job_lines(data_type, low, high) if by_job else self._export_lines(data_type, low, high, result)
        low_iso, high_iso = low.strftime(ISO_SECONDS_FORMAT), high.strftime(ISO_SECONDS_FORMAT)
        cursor_field, stream, loads = self.cursor_field, self.name, orjson.loads
        emitted_at = int(time.time() * 1000)
        for line in lines:
            line_key = hash(line)
            if already_emitted is not None and line_key in already_emitted:
                result.already_emitted += 1
                continue
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                if line.strip():
                    result.malformed += 1
                continue
            if not isinstance(record, dict):
                result.malformed += 1
                continue
            cursor_iso = rfc3339_utc(record.get(cursor_field))
            if cursor_iso is None:
                result.without_cursor += 1
            elif not low_iso <= cursor_iso[:19] < high_iso:
                result.outside_window += 1
                continue
            emitted.append(line_key)
            result.records += 1
            yield AirbyteMessage(
                type=Type.RECORD,
                record=AirbyteRecordMessage(stream=stream, data=shaper.shape(record, cursor_field, cursor_iso), emitted_at=emitted_at),
            )
        if by_job:
            result.seconds = monotonic() - started

    def _export_lines(self, data_type: str, low: datetime, high: datetime, result: WindowResult) -> Iterator[bytes]:
        """The lines of one `export/data.json` response; `result.seconds` gets the request's duration."""
        window_slice = StreamSlice(
            partition={},
            cursor_slice={"start_time": low.strftime(API_DATETIME_FORMAT), "end_time": high.strftime(API_DATETIME_FORMAT)},
        )
        response = self.requester.send_request(
            stream_slice=window_slice,
            request_params={
                "dataTypeName": data_type,
                "startDateTime": low.strftime(API_DATETIME_FORMAT),
                "endDateTime": high.strftime(API_DATETIME_FORMAT),
            },
        )
        if response is None:
            return
        if not response.ok:
            raise self._refusal(data_type, low, high, response)
        body_started = monotonic()
        try:
            yield from iter_body_lines(response)
        finally:
            response.close()
        result.seconds = response.elapsed.total_seconds() + (monotonic() - body_started)

    def _job_lines(self, data_type: str, low: datetime, high: datetime) -> Iterator[bytes]:
        assert self._jobs is not None
        return self._jobs.lines(data_type, low.strftime(API_DATETIME_FORMAT), high.strftime(API_DATETIME_FORMAT))

    def _refusal(self, data_type: str, low: datetime, high: datetime, response: requests.Response) -> Exception:
        """What a 400 answer means: the project lacks the data type, or the request was wrong."""
        try:
            message = str(response.json().get("msg", ""))
        except ValueError:
            message = response.text[:300]
        finally:
            response.close()
        if "datatype" in message.lower().replace(" ", ""):
            return DataTypeUnavailable(data_type, response.status_code, message)
        return AirbyteTracedException(
            message=f"Stream {self.name}: Iterable refused the export of {data_type} for {_window(low, high)}: {message}",
            internal_message=f"HTTP {response.status_code}: {message}",
            failure_type=FailureType.system_error,
        )

    def _checkpoint(self, low: datetime, high: datetime) -> None:
        """Moves the stream state to `high` through the cursor, which emits the STATE message.

        The window is closed as a partition of its own whose newest cursor value is its end,
        so the state is the end of the last complete window, also when it held no record.
        """
        window = StreamSlice(
            partition={},
            cursor_slice={
                "start_time": low.strftime(API_DATETIME_FORMAT),
                "end_time": (high - ONE_SECOND).strftime(API_DATETIME_FORMAT),
            },
        )
        end_marker = Record(
            data={self.cursor_field: high.strftime(API_DATETIME_FORMAT)}, stream_name=self.name, associated_slice=window
        )
        self.cursor.observe(end_marker)
        self.cursor.close_partition(_CompletedWindow(window))

    def _shaper(self, records_schema: Mapping[str, Any]) -> RecordShaper:
        return RecordShaper(
            schema=records_schema,
            key_field=self._parameters.get("key_field"),
            overflow_field=self._parameters.get("overflow_field"),
            identity_fields=self._parameters.get("identity_fields", ()),
        )

    def _log_window(self, low: datetime, high: datetime, result: WindowResult, by_job: bool) -> None:
        how = "an export job" if by_job else "the export"
        logger.info(
            f"{self.name}: read {_window(low, high)} through {how}: {result.records} records in {result.seconds:.1f} s."
        )
        if result.malformed:
            logger.warning(
                f"{self.name}: skipped {result.malformed} malformed line(s) (not a JSON object) in {_window(low, high)}."
            )
        if result.without_cursor:
            logger.warning(
                f"{self.name}: {result.without_cursor} record(s) in {_window(low, high)} have no readable "
                f"{self.cursor_field}; they were emitted as they are."
            )
        if result.outside_window:
            logger.info(
                f"{self.name}: ignored {result.outside_window} record(s) Iterable returned outside {_window(low, high)}; "
                "the window they belong to reads them."
            )

    def _too_many_drops(
        self, start: datetime, end: datetime, low: datetime, high: datetime, drops: int, error: BaseException
    ) -> AirbyteTracedException:
        return AirbyteTracedException(
            message=(
                f"Stream {self.name}: the export of {self.data_type} for {_window(low, high)} failed {drops} times "
                f"in a row ({_failure(error)}), even after halving the window. The state stays at "
                f"the last complete window, so the next sync resumes from there. If it keeps happening, "
                "Iterable's export may be degraded; try again later."
            ),
            internal_message=f"{self.name} {_window(start, end)}: last error {error!r}",
            failure_type=FailureType.system_error,
        )


@dataclass
class _CompletedWindow:
    """The slice of a finished window, in the shape `ConcurrentCursor.close_partition` reads."""

    window: StreamSlice

    def to_slice(self) -> StreamSlice:
        return self.window


def _failure(error: BaseException) -> str:
    if isinstance(error, JobTruncated):
        return "Iterable truncated the export job at its size cap"
    if isinstance(error, JobFailed):
        return "the Iterable export job failed"
    return "Iterable dropped the connection"


def _window(low: datetime, high: datetime) -> str:
    return f"[{low.strftime(API_DATETIME_FORMAT)}, {high.strftime(API_DATETIME_FORMAT)})"


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.2f} days" if hours >= 24 else f"{hours:.2f} hours"

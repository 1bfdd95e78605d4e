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
from typing import Any, Iterable, Iterator, Mapping, Optional, Set

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

from source_iterable.export_records import RecordShaper, iso_utc
from source_iterable.export_windows import WindowSizer
from source_iterable.jsonl import iter_body_lines

logger = logging.getLogger("airbyte")

API_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ISO_SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%S"
ONE_SECOND = timedelta(seconds=1)

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

    Attributes:
        requester: sends the export requests (rate budget and error handling included).
        cursor: the stream's ConcurrentCursor, built from `incremental_sync`.
        max_drops: dropped connections tolerated in a row before the stream fails.
        target_seconds: how long one export request should take.
    """

    requester: Requester
    cursor: Any
    name: str
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    max_drops: int = 6
    target_seconds: float = 60.0
    _parameters: Mapping[str, Any] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # The nested requester is built with a buffering decoder; exports must stream.
        self.requester.stream_response = True  # type: ignore[attr-defined]
        self._parameters = parameters
        self.data_type: str = parameters["data_type"]
        self.cursor_field: str = parameters.get("cursor_field", "createdAt")

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        if stream_slice is None:
            return
        start = datetime.strptime(stream_slice.cursor_slice["start_time"], API_DATETIME_FORMAT)
        end = datetime.strptime(stream_slice.cursor_slice["end_time"], API_DATETIME_FORMAT)
        shaper = self._shaper(records_schema)
        sizer = WindowSizer(target_seconds=self.target_seconds)
        span = sizer.first()
        emitted = array("q")
        already_emitted: Optional[Set[int]] = None
        already_emitted_until = start
        drops = 0
        announced_running = False
        low = start
        while low < end:
            high = min(low + span, end)
            del emitted[:]
            try:
                result = WindowResult()
                for message in self._read_window(low, high, shaper, emitted, already_emitted, result):
                    if not announced_running:
                        announced_running = True
                        yield stream_status_message(StreamDescriptor(name=self.name), AirbyteStreamStatus.RUNNING)
                    yield message
            except DROPPED_CONNECTION_ERRORS as error:
                drops += 1
                already_emitted = (already_emitted or set()) | set(emitted)
                already_emitted_until = max(already_emitted_until, high)
                if drops > self.max_drops:
                    raise self._too_many_drops(start, end, low, high, drops, error) from None
                span = sizer.after_drop(high - low)
                logger.warning(
                    f"{self.name}: Iterable dropped the connection while exporting {_window(low, high)} "
                    f"after {len(emitted)} records ({type(error).__name__}); retrying with a window of "
                    f"{_duration(span)} (attempt {drops + 1} of {self.max_drops + 1}). "
                    "Records already read are not emitted again."
                )
                continue
            drops = 0
            self._log_window(low, high, result, span)
            self._checkpoint(low, high)
            span = sizer.after_success(high - low, result.seconds, result.records)
            low = high
            if already_emitted is not None and low >= already_emitted_until:
                already_emitted = None

    def _read_window(
        self,
        low: datetime,
        high: datetime,
        shaper: RecordShaper,
        emitted: array,
        already_emitted: Optional[Set[int]],
        result: WindowResult,
    ) -> Iterator[AirbyteMessage]:
        window_slice = StreamSlice(
            partition={},
            cursor_slice={"start_time": low.strftime(API_DATETIME_FORMAT), "end_time": high.strftime(API_DATETIME_FORMAT)},
        )
        response = self.requester.send_request(
            stream_slice=window_slice,
            request_params={
                "dataTypeName": self.data_type,
                "startDateTime": low.strftime(API_DATETIME_FORMAT),
                "endDateTime": high.strftime(API_DATETIME_FORMAT),
            },
        )
        if response is None:
            return
        body_started = monotonic()
        low_iso, high_iso = low.strftime(ISO_SECONDS_FORMAT), high.strftime(ISO_SECONDS_FORMAT)
        cursor_field, stream, loads = self.cursor_field, self.name, orjson.loads
        emitted_at = int(time.time() * 1000)
        try:
            for line in iter_body_lines(response):
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
                cursor_iso = iso_utc(record.get(cursor_field))
                if cursor_iso is None:
                    result.without_cursor += 1
                elif not low_iso <= cursor_iso[:19] < high_iso:
                    result.outside_window += 1
                    continue
                emitted.append(line_key)
                result.records += 1
                yield AirbyteMessage(
                    type=Type.RECORD,
                    record=AirbyteRecordMessage(
                        stream=stream, data=shaper.shape(record, line, cursor_iso), emitted_at=emitted_at
                    ),
                )
        finally:
            response.close()
        result.seconds = response.elapsed.total_seconds() + (monotonic() - body_started)

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
        declared = frozenset(records_schema.get("properties", {}))
        timestamps = frozenset(
            name
            for name, spec in records_schema.get("properties", {}).items()
            if isinstance(spec, dict) and spec.get("format") == "date-time"
        )
        return RecordShaper(
            cursor_field=self.cursor_field,
            timestamp_fields=timestamps,
            declared_fields=declared,
            key_field=self._parameters.get("key_field"),
            overflow_field=self._parameters.get("overflow_field"),
            identity_fields=self._parameters.get("identity_fields", ()),
        )

    def _log_window(self, low: datetime, high: datetime, result: WindowResult, span: timedelta) -> None:
        logger.info(
            f"{self.name}: read {_window(low, high)}: {result.records} records in {result.seconds:.1f} s."
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
                f"Stream {self.name}: Iterable dropped the connection {drops} times in a row while exporting "
                f"{self.data_type} for {_window(low, high)}, even after halving the window. The state stays at "
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


def _window(low: datetime, high: datetime) -> str:
    return f"[{low.strftime(API_DATETIME_FORMAT)}, {high.strftime(API_DATETIME_FORMAT)})"


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.2f} days" if hours >= 24 else f"{hours:.2f} hours"

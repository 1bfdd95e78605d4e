"""One window of Iterable's synchronous export, `GET export/data.json`, as lines."""

import time
from time import monotonic
from typing import Iterator

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_iterable.export.cdk_adapter import streaming
from source_iterable.export.lines import iter_body_lines
from source_iterable.export.plan import API_DATETIME_FORMAT, Window
from source_iterable.export.server_clock import read_started_at


class DataTypeUnavailable(Exception):
    """Iterable rejected the data type for this project (its plan may not include the channel)."""

    def __init__(self, data_type: str, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.data_type = data_type


class SyncExport:
    """Sends `export/data.json` requests for one stream through its requester (budget and
    retries included), streaming the body."""

    def __init__(self, requester: Requester, stream: str) -> None:
        self._requester = streaming(requester)
        self._stream = stream

    def request(self, data_type: str, window: Window) -> "SyncExportRequest":
        return SyncExportRequest(self._requester, self._stream, data_type, window)


class SyncExportRequest:
    """One window's request. `lines()` yields the body's lines; `read_at` is when Iterable began
    answering (`read_started_at`), once the response arrived; afterwards `seconds` says how long
    the request took from being sent to its last byte (waits for the rate budget excluded)."""

    def __init__(self, requester: Requester, stream: str, data_type: str, window: Window) -> None:
        self._requester, self._stream, self._data_type, self._window = requester, stream, data_type, window
        self.seconds = 0.0
        self.read_at = int(time.time())

    def lines(self) -> Iterator[bytes]:
        low, high = self._window.low.strftime(API_DATETIME_FORMAT), self._window.high.strftime(API_DATETIME_FORMAT)
        response = self._requester.send_request(
            stream_slice=StreamSlice(partition={}, cursor_slice={"start_time": low, "end_time": high}),
            request_params={"dataTypeName": self._data_type, "startDateTime": low, "endDateTime": high},
        )
        if response is None:
            return
        self.read_at = read_started_at(response)
        if not response.ok:
            raise self._refusal(response)
        body_started = monotonic()
        try:
            yield from iter_body_lines(response)
        finally:
            response.close()
        self.seconds = response.elapsed.total_seconds() + (monotonic() - body_started)

    def _refusal(self, response: requests.Response) -> Exception:
        """What a 400 means: the project lacks the data type, or the request was wrong."""
        try:
            message = str(response.json().get("msg", ""))
        except ValueError:
            message = response.text[:300]
        finally:
            response.close()
        if "datatype" in message.lower().replace(" ", ""):
            return DataTypeUnavailable(self._data_type, response.status_code, message)
        return AirbyteTracedException(
            message=f"Stream {self._stream}: Iterable refused the export of {self._data_type} for {self._window}: {message}",
            internal_message=f"HTTP {response.status_code}: {message}",
            failure_type=FailureType.system_error,
        )

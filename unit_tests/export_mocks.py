"""Helpers to fake Iterable's export endpoint: JSONL bodies, cut bodies, a controllable clock."""

import io
import json
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, List, Optional
from urllib.parse import parse_qs, urlsplit

from unit_tests.harness import API

EXPORT_URL = f"{API}/export/data.json"
API_FORMAT = "%Y-%m-%d %H:%M:%S"


def event(created_at: str, **fields: Any) -> Dict[str, Any]:
    return {"createdAt": created_at, **fields}


def jsonl(records: Iterable[Dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def window_of(request) -> tuple:
    query = parse_qs(urlsplit(request.url).query)
    return query["startDateTime"][0], query["endDateTime"][0]


def data_type_of(request) -> str:
    return parse_qs(urlsplit(request.url).query)["dataTypeName"][0]


def in_window(records: Iterable[Dict[str, Any]], request, field: str = "createdAt") -> List[Dict[str, Any]]:
    """What a faithful Iterable answers: the records with start <= cursor < end."""
    start, end = window_of(request)
    return [r for r in records if start <= r[field][:19].replace("T", " ") < end]


class FakeClock:
    """A monotonic clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Body(io.RawIOBase):
    """A response body that may take (fake) time and may be cut after some bytes.

    `fail_with` is raised once `cut_after` bytes are served, as a dropped connection does.
    """

    def __init__(
        self,
        data: bytes,
        cut_after: Optional[int] = None,
        fail_with: Optional[BaseException] = None,
        clock: Optional[FakeClock] = None,
        seconds: float = 0.0,
    ) -> None:
        self._data = data
        self._position = 0
        self._cut_after = cut_after
        self._fail_with = fail_with
        self._clock = clock
        self._seconds = seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        limit = len(self._data) if self._cut_after is None else min(len(self._data), self._cut_after)
        if self._position >= limit:
            if self._cut_after is not None:
                raise self._fail_with
            if self._clock is not None and self._seconds:
                self._clock.now += self._seconds
                self._seconds = 0
            return 0
        chunk = self._data[self._position : min(limit, self._position + len(buffer), self._position + 64)]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


def serve_export(requests_mock, answer: Callable[[Any], Body]) -> List[Any]:
    """Routes every export request to `answer(request)`; returns the list of requests seen."""
    seen: List[Any] = []

    def respond(request, context):
        seen.append(request)
        return answer(request)

    requests_mock.get(EXPORT_URL, body=respond)
    return seen


def parse(value: str) -> datetime:
    return datetime.strptime(value, API_FORMAT)

"""Retrying a window after a dropped connection (or a failed job) without emitting a record twice."""

import http.client
from datetime import datetime
from typing import Optional, Sequence, Set

import requests
import urllib3

from source_iterable.export.jobs import JobFailed, JobTruncated
from source_iterable.export.plan import Window

# What a body cut short looks like, depending on where the read stopped; failed and truncated
# export jobs are retried the same way.
DROPPED = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.DecodeError,
    http.client.IncompleteRead,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    ConnectionError,
    TimeoutError,
    JobFailed,
    JobTruncated,
)


class DropRecovery:
    """Counts drops in a row and remembers the lines the failed attempts already emitted.

    A retry covers a smaller window starting at the same instant, so what the failed attempt
    emitted is skipped (keyed by the raw line) until the read has passed the failed window's end.

    Attributes:
        max_drops: drops tolerated in a row; one more fails the stream.
    """

    def __init__(self, max_drops: int) -> None:
        self.max_drops = max_drops
        self.drops = 0
        self._emitted: Optional[Set[int]] = None
        self._emitted_until: Optional[datetime] = None

    @property
    def already_emitted(self) -> Optional[Set[int]]:
        """Keys of the lines emitted by failed attempts that a window may meet again."""
        return self._emitted

    @property
    def exhausted(self) -> bool:
        return self.drops > self.max_drops

    def after_drop(self, window: Window, emitted: Sequence[int]) -> None:
        self.drops += 1
        self._emitted = (self._emitted or set()) | set(emitted)
        self._emitted_until = max(self._emitted_until or window.high, window.high)

    def after_success(self, window: Window) -> None:
        self.drops = 0
        if self._emitted_until is not None and window.high >= self._emitted_until:
            self._emitted, self._emitted_until = None, None

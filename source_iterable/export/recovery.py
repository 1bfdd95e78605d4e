"""Retrying a window after a dropped connection (or a failed job) without emitting a record twice."""

import http.client
from datetime import datetime
from typing import Iterable, List, Optional, Sequence, Set

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
    The ledger keys the failed attempts gathered (`LateRecords.keys`) go with the complete windows
    up to that end: the lines they stand for are skipped there, yet were returned.

    Attributes:
        max_drops: drops tolerated in a row; one more fails the stream.
    """

    def __init__(self, max_drops: int) -> None:
        self.max_drops = max_drops
        self.drops = 0
        self._emitted: Optional[Set[int]] = None
        self._emitted_until: Optional[datetime] = None
        self._ledger_keys: List[str] = []

    @property
    def already_emitted(self) -> Optional[Set[int]]:
        """Keys of the lines emitted by failed attempts that a window may meet again."""
        return self._emitted

    @property
    def exhausted(self) -> bool:
        return self.drops > self.max_drops

    def after_drop(self, window: Window, emitted: Sequence[int], ledger_keys: Iterable[str] = ()) -> None:
        self.drops += 1
        self._emitted = (self._emitted or set()) | set(emitted)
        self._emitted_until = max(self._emitted_until or window.high, window.high)
        self._ledger_keys.extend(ledger_keys)

    def after_success(self, window: Window) -> List[str]:
        """The window read whole; returns the ledger keys of failed attempts to record with it
        (with every window up to the failed one's end: a key is not tied to a createdAt)."""
        self.drops = 0
        carried = self._ledger_keys
        if self._emitted_until is not None and window.high >= self._emitted_until:
            self._emitted, self._emitted_until, self._ledger_keys = None, None, []
        return carried

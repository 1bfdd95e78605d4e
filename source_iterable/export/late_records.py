"""One window's use of the ledger: which re-read records an earlier sync already emitted, and
which keys the ledger must remember of this read.

A record below the stream's cursor was in an earlier read's range. It was emitted then if that
read returned it: if it was stamped before the read's `seen_until`, or if the read remembered its
key. Otherwise Iterable indexed it after that read: a late record, emitted now.
"""

from bisect import bisect_right
from datetime import datetime
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from source_iterable.export.ledger import VISIBILITY_SLACK_S, ReadLedger, epoch, iso, record_key
from source_iterable.record_contract import rfc3339_utc

ITERABLE_UTC_SUFFIX = " +00:00"


def stamp_seconds(value: Any) -> Optional[str]:
    """An Iterable timestamp as `YYYY-MM-DDTHH:MM:SS` in UTC, or None."""
    if type(value) is str and len(value) == 26 and value[10] == " " and value.endswith(ITERABLE_UTC_SUFFIX):
        return value[:10] + "T" + value[11:19]
    parsed = rfc3339_utc(value)
    return None if parsed is None else parsed[:19]


class LateRecords:
    """The ledger's answers for one window read, and what the read tells the ledger.

    Attributes:
        reread_until: `createdAt` (ISO seconds) below which records were in earlier reads (the
            stream's cursor at the start of the sync), or "" if the window lies above it.
        keys: keys of the records this read returned that were stamped after its `seen_until`.
        already_emitted, late, unstamped, unknown: what the re-read records turned out to be
            (`unstamped`: no indexing stamp, emitted again; `unknown`: no earlier read on record).
        max_delay_s, beyond_horizon: of the late records, the largest `stamp - createdAt` and how
            many exceed the horizon.
    """

    def __init__(self, ledger: ReadLedger, cursor_s: int, low_s: int, high_s: int, stamp_field: str) -> None:
        self.horizon_s = ledger.horizon_s
        self.reread_until = iso(cursor_s) if low_s < cursor_s else ""
        self._stamp_field, self._dotted_stamp = stamp_field, f"itblInternal.{stamp_field}"
        covering = ledger.covering(low_s, min(high_s, cursor_s))
        self._lows = [iso(s.low) for s in covering]
        self._segments: List[Tuple[str, str, FrozenSet[str]]] = [(iso(s.high), iso(s.seen_until), s.keys) for s in covering]
        self.keys: List[str] = []
        self.already_emitted = self.late = self.unstamped = self.unknown = self.beyond_horizon = 0
        self.max_delay_s = 0
        self.read_at = 0
        self.seen_until = ""

    def begin(self, read_at: int) -> str:
        """The read began at `read_at` (Iterable's clock); returns its `seen_until`."""
        self.read_at = read_at
        self.seen_until = iso(read_at - VISIBILITY_SLACK_S)
        return self.seen_until

    def stamp(self, record: Dict[str, Any]) -> Optional[str]:
        """The record's indexing stamp (nested `itblInternal` or Iterable's dotted key), ISO seconds."""
        internal = record.get("itblInternal")
        value = internal.get(self._stamp_field) if type(internal) is dict else record.get(self._dotted_stamp)
        return None if value is None else stamp_seconds(value)

    def remember(self, primary_key: str, cursor: Optional[str]) -> None:
        self.keys.append(record_key(primary_key, epoch(cursor) if cursor else 0))

    def emitted_before(self, cursor: str, stamp: Optional[str], primary_key: str) -> bool:
        """Whether an earlier read returned this record (below `reread_until`), counting each answer."""
        position = bisect_right(self._lows, cursor[:19]) - 1
        if position < 0 or cursor[:19] >= self._segments[position][0]:
            self.unknown += 1
            return False
        if stamp is None:
            self.unstamped += 1
            return False
        _, seen_until, keys = self._segments[position]
        if stamp <= seen_until or record_key(primary_key, epoch(cursor)) in keys:
            self.already_emitted += 1
            return True
        self.late += 1
        delay = int((datetime.fromisoformat(stamp) - datetime.fromisoformat(cursor[:19])).total_seconds())
        self.max_delay_s = max(self.max_delay_s, delay)
        if delay > self.horizon_s:
            self.beyond_horizon += 1
        return False

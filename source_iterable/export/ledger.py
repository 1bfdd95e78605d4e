"""What earlier reads of an export stream returned, so that a re-read emits only what they missed.

Iterable's export selects records by `createdAt` alone, and indexes some of them long after it:
the same range read again later returns more. A record carries its indexing time,
`itblInternal.documentCreatedAt` (its "stamp"). A read that began at `read_at` returned every
record of its range stamped before `read_at - VISIBILITY_SLACK` (the export may show a record a
little after its stamp), and possibly some stamped after that: those it returned are remembered
by key. So for any record a re-read meets, the ledger tells whether an earlier read returned it,
which is whether the connector already emitted it.

The ledger keeps, for each stretch of `createdAt`, the latest read that covered it (a segment):
a later read replaces what it covers. Stretches whose every record within the horizon was
certainly returned are closed: their keys are dropped and neighbours merged, so the ledger stays
a few dozen segments.
"""

import base64
import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Tuple

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

# Iterable does not say how soon after its stamp the export shows a record; up to a minute or two
# is what to assume, so three minutes leave a margin.
VISIBILITY_SLACK_S = 180
KEY_CHARS = 16
STATE_VERSION = 1
# About 190 KB of keys: the state of one stream stays well under 256 KB.
MAX_KEYS = 12_000
# Closed segments older than twice the horizon (at least this) cannot be reached by a re-read.
FORGET_AFTER_S = 2 * 86_400
ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"


def record_key(primary_key: str, created_s: int) -> str:
    """A record's key in the ledger, 16 characters: its `createdAt` (so that a segment cut in two
    keeps each key on its side) and 56 bits of a hash of its primary key and `createdAt`."""
    digest = hashlib.blake2b(f"{primary_key}|{created_s}".encode(), digest_size=7).digest()
    return base64.urlsafe_b64encode(created_s.to_bytes(5, "big") + digest).decode()


def key_created(key: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(key[:8])[:5], "big")


def iso(epoch_s: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS`, the prefix of an RFC 3339 UTC timestamp, for string comparisons."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime(ISO_SECONDS)


def epoch(iso_seconds: str) -> int:
    """Epoch seconds of `YYYY-MM-DDTHH:MM:SS` (UTC), the inverse of `iso`."""
    return int(datetime.fromisoformat(iso_seconds[:19]).replace(tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class Segment:
    """`createdAt` in `[low, high)` (epoch s) was last read by a read that began at `read_at`
    (Iterable's clock), which also returned the records whose `keys` it lists."""

    low: int
    high: int
    read_at: int
    keys: FrozenSet[str] = frozenset()

    @property
    def seen_until(self) -> int:
        """Every record of the segment stamped at or before this instant was returned."""
        return self.read_at - VISIBILITY_SLACK_S

    def closed(self, horizon_s: int) -> bool:
        """Whether every record of the segment indexed within the horizon was returned."""
        return self.seen_until >= self.high + horizon_s

    def oldest_open(self, horizon_s: int) -> Optional[int]:
        """Where the `createdAt` whose late records may still be unread begin in the segment: after
        `seen_until - horizon`, to the second (a `createdAt` may have milliseconds)."""
        if self.closed(horizon_s):
            return None
        return max(self.low, self.seen_until - horizon_s)

    def to_state(self) -> List[Any]:
        return [self.low, self.high, self.read_at, "".join(sorted(self.keys))]

    @classmethod
    def from_state(cls, value: Any) -> "Segment":
        low, high, read_at, keys = value
        if not all(type(v) is int for v in (low, high, read_at)) or low >= high or not isinstance(keys, str) or len(keys) % KEY_CHARS:
            raise ValueError(value)
        return cls(low, high, read_at, frozenset(keys[i : i + KEY_CHARS] for i in range(0, len(keys), KEY_CHARS)))


@dataclass
class ReadLedger:
    """The segments of one stream, sorted by `createdAt`, not overlapping.

    Attributes:
        horizon_s: the late-event horizon; decides which segments are closed.
        dropped_keys: keys dropped to keep the state within `MAX_KEYS` (records they stood for
            may be emitted again; never lost).
    """

    horizon_s: int
    segments: List[Segment] = field(default_factory=list)
    dropped_keys: int = 0

    @classmethod
    def from_state(cls, stream: str, value: Any, horizon_s: int) -> "ReadLedger":
        if value is None:
            return cls(horizon_s)
        try:
            if value.get("version") != STATE_VERSION:
                raise ValueError(f"version {value.get('version')!r}")
            segments = [Segment.from_state(s) for s in value["segments"]]
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise AirbyteTracedException(
                message=(
                    f"Stream {stream}: the state's late_events value is not one this connector wrote ({error}). "
                    "Remove late_events from the stream's state (the cursor is kept) or reset the stream."
                ),
                failure_type=FailureType.config_error,
            ) from None
        return cls(horizon_s, sorted(segments, key=lambda s: s.low))

    @classmethod
    def assumed(cls, cursor_s: int, read_at: int, start_s: int, horizon_s: int) -> "ReadLedger":
        """A ledger for a state without one (an earlier version, or Airbyte's own connector): the
        range up to the cursor is taken as read at `read_at`, with no keys. Records stamped
        within the slack of it may then be emitted a second time; none is lost."""
        if cursor_s <= start_s:
            return cls(horizon_s)
        return cls(horizon_s, [Segment(start_s, cursor_s, read_at)])

    def to_state(self) -> Dict[str, Any]:
        return {"version": STATE_VERSION, "segments": [s.to_state() for s in self.segments]}

    def __bool__(self) -> bool:
        return bool(self.segments)

    def segment_at(self, created_s: int) -> Optional[Segment]:
        position = bisect_right([s.low for s in self.segments], created_s) - 1
        if position >= 0 and created_s < self.segments[position].high:
            return self.segments[position]
        return None

    def covering(self, low: int, high: int) -> List[Segment]:
        """The segments that overlap `[low, high)`, in order."""
        return [s for s in self.segments if s.low < high and low < s.high]

    def oldest_open(self) -> Optional[Tuple[int, int]]:
        """`(createdAt, read_at)`: the earliest `createdAt` that may still have unread late
        records, and the earliest read of an open segment (when the oldest open part was read)."""
        opens = [(s.oldest_open(self.horizon_s), s.read_at) for s in self.segments]
        opens = [(created, read_at) for created, read_at in opens if created is not None]
        if not opens:
            return None
        return min(created for created, _ in opens), min(read_at for _, read_at in opens)

    def record(self, low: int, high: int, read_at: int, keys: Iterable[str]) -> None:
        """A read of `[low, high)` that began at `read_at` completed; it returned `keys`."""
        kept: List[Segment] = []
        for s in self.segments:
            if s.high <= low or high <= s.low:
                kept.append(s)
                continue
            if s.low < low:
                kept.append(Segment(s.low, low, s.read_at, frozenset(k for k in s.keys if key_created(k) < low)))
            if high < s.high:
                kept.append(Segment(high, s.high, s.read_at, frozenset(k for k in s.keys if key_created(k) >= high)))
        kept.append(Segment(low, high, read_at, frozenset(keys)))
        self.segments = sorted(kept, key=lambda s: s.low)
        self._compact()

    def _compact(self) -> None:
        """Closed segments lose their keys and merge with closed neighbours where the earlier read
        still closes both; closed segments far older than any re-read reaches are forgotten; then
        the oldest keys go if there are more than `MAX_KEYS`."""
        latest = max((s.read_at for s in self.segments), default=0)
        forget_before = latest - 2 * max(self.horizon_s, FORGET_AFTER_S)
        compacted: List[Segment] = []
        for s in self.segments:
            if s.closed(self.horizon_s) and s.high < forget_before:
                continue
            if s.closed(self.horizon_s):
                s = Segment(s.low, s.high, s.read_at)
                previous = compacted[-1] if compacted else None
                if previous is not None and previous.high == s.low and not previous.keys:
                    merged = Segment(previous.low, s.high, min(previous.read_at, s.read_at))
                    if merged.closed(self.horizon_s):
                        s = merged
                        compacted.pop()
            compacted.append(s)
        total = sum(len(s.keys) for s in compacted)
        for position in sorted(range(len(compacted)), key=lambda p: compacted[p].read_at):
            if total <= MAX_KEYS:
                break
            s = compacted[position]
            total -= len(s.keys)
            self.dropped_keys += len(s.keys)
            compacted[position] = Segment(s.low, s.high, s.read_at)
        self.segments = compacted

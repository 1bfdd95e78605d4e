"""Late events for one incremental sync of one export stream: where its read starts, what each
window tells the ledger, what goes into the state, and what the sync reports.

    late = LateEvents.for_sync(stream, cursor, config, start, end, stamp_field)
    low = late.read_from               # at or before the cursor
    records = late.window(low_s, high_s)   # per window: a LateRecords for WindowRead
    late.completed(records, low_s, high_s, read_at, carried_keys)
    extra_state = late.state()          # {"late_events": ...} beside the cursor value
    late.log_summary()
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional

from source_iterable.export.late_records import LateRecords
from source_iterable.export.ledger import ReadLedger
from source_iterable.export.trailing import Reread, reread

logger = logging.getLogger("airbyte")

STATE_KEY = "late_events"
DEFAULT_HORIZON_HOURS = 24


def horizon_seconds(config: Mapping[str, Any]) -> int:
    value = config.get("late_event_horizon")
    return int(DEFAULT_HORIZON_HOURS if value is None else value) * 3600


@dataclass
class LateEvents:
    """The late-event side of one sync of one stream (see the module docstring).

    Attributes:
        stream: the stream's name, for the logs.
        ledger: what earlier reads returned; updated as windows complete.
        cursor_s: the stream's cursor when the sync began: records below it were read before.
        reread: where the read starts and why.
        stamp_field: the `itblInternal` field with the indexing time (`documentCreatedAt`, or
            `documentUpdatedAt` for user profiles).
    """

    stream: str
    ledger: ReadLedger
    cursor_s: int
    reread: Reread
    stamp_field: str
    _totals: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_sync(
        cls,
        stream: str,
        stored: Optional[Mapping[str, Any]],
        horizon_s: int,
        cursor_s: int,
        start_s: int,
        end_s: int,
        now_s: int,
        lookback_s: int,
        stamp_field: str,
    ) -> "LateEvents":
        """`stored`: the state's `late_events`; without one, the range up to the cursor counts as
        read a lookback after the cursor (when a sync that ended there ran)."""
        if stored is None:
            ledger = ReadLedger.assumed(cursor_s, cursor_s + lookback_s, start_s, horizon_s)
        else:
            ledger = ReadLedger.from_state(stream, stored, horizon_s)
        return cls(stream, ledger, cursor_s, reread(ledger, cursor_s, end_s, start_s, now_s), stamp_field)

    @property
    def read_from(self) -> int:
        return self.reread.low

    def window(self, low_s: int, high_s: int) -> LateRecords:
        return LateRecords(self.ledger, self.cursor_s, low_s, high_s, self.stamp_field)

    def completed(self, records: LateRecords, low_s: int, high_s: int, read_at: int, carried_keys: Iterable[str]) -> None:
        """A window read whole: the ledger records it, and its counts go into the sync's totals."""
        self.ledger.record(low_s, high_s, read_at, [*records.keys, *carried_keys])
        totals = self._totals
        for name in ("already_emitted", "late", "unstamped", "unknown", "beyond_horizon"):
            totals[name] = totals.get(name, 0) + getattr(records, name)
        totals["max_delay_s"] = max(totals.get("max_delay_s", 0), records.max_delay_s)

    def state(self) -> Dict[str, Any]:
        return {STATE_KEY: self.ledger.to_state()}

    def log_summary(self, reread_span: str) -> None:
        if self.reread.reach == "none":
            return
        totals = self._totals
        what = "its tail" if self.reread.reach == "tail" else "the late-event horizon"
        logger.info(
            f"{self.stream}: late events: re-read {reread_span} ({what}): {totals.get('late', 0)} late record(s) "
            f"emitted, largest indexing delay {_duration(totals.get('max_delay_s', 0))}; "
            f"{totals.get('already_emitted', 0)} record(s) already emitted by earlier syncs skipped."
        )
        if totals.get("unstamped"):
            logger.warning(
                f"{self.stream}: {totals['unstamped']} re-read record(s) carry no indexing stamp "
                "(itblInternal.documentCreatedAt), so whether an earlier sync emitted them cannot be told: "
                "they were emitted again (possible duplicates; a deduplicated destination keeps one per primary key)."
            )
        if totals.get("unknown"):
            logger.warning(
                f"{self.stream}: {totals['unknown']} re-read record(s) lie where the state records no earlier "
                "read; they were emitted again (possible duplicates)."
            )
        if totals.get("beyond_horizon"):
            logger.warning(
                f"{self.stream}: {totals['beyond_horizon']} late record(s) were indexed more than "
                f"late_event_horizon ({_duration(self.ledger.horizon_s)}) after their createdAt. Records later "
                "than the horizon can be missed: raise late_event_horizon, or run a full refresh of the stream."
            )
        if self.ledger.dropped_keys:
            logger.warning(
                f"{self.stream}: the late-event state dropped {self.ledger.dropped_keys} record key(s) to stay small; "
                "up to as many records may be emitted twice by later syncs."
            )


def _duration(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"

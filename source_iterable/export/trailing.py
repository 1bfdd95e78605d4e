"""How far back before its cursor an incremental sync of an export stream reads again.

A sync reads `[cursor, end)`, the new range. To catch records Iterable indexed late, its request
starts earlier, so that the re-read rides in the same request as the new range:
- every sync re-reads a short tail before the cursor (`TAIL_S`, at most the length of the new
  range): most late records are minutes late, and the next sync delivers them;
- about once per horizon it reaches back to the oldest `createdAt` whose late records may still be
  unread (`ReadLedger.oldest_open`), which closes everything before `read_at - horizon`. It runs at
  the last sync before a record indexed just after the previous deep re-read would wait longer than
  the horizon, taking the time since the previous sync as the time to the next.

Over a day of hourly syncs with a 24-hour horizon, each record is downloaded about 3.4 times
(once new, half the time in a tail, twice in deep re-reads), in one request per sync.
"""

from dataclasses import dataclass
from typing import Optional

from source_iterable.export.ledger import VISIBILITY_SLACK_S, ReadLedger

TAIL_S = 30 * 60


@dataclass(frozen=True)
class Reread:
    """Where this sync's read starts (`low`, epoch s) and why: `none`, `tail` or `horizon`."""

    low: int
    reach: str


def reread(ledger: ReadLedger, cursor_s: int, end_s: int, start_s: int, now_s: int) -> Reread:
    """The start of the sync's read for a stream whose state is at `cursor_s`.

    Args:
        ledger: what earlier reads returned (empty on a first sync).
        cursor_s: the stream's cursor; `end_s`: the end of the new range; `start_s`: `start_date`.
        now_s: now by Iterable's clock, as far as it is known (the new range ends a lookback before it).
    """
    if ledger.horizon_s <= 0 or not ledger:
        return Reread(cursor_s, "none")
    gap = max(0, end_s - cursor_s)
    low, reach = cursor_s - min(TAIL_S, gap), "tail"
    oldest: Optional[tuple] = ledger.oldest_open()
    if oldest is not None:
        oldest_created, oldest_read_at = oldest
        if now_s + gap >= oldest_read_at + ledger.horizon_s - VISIBILITY_SLACK_S and oldest_created < low:
            low, reach = oldest_created, "horizon"
    low = max(low, start_s)
    return Reread(low, reach if low < cursor_s else "none")

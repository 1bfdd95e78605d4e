"""What a connector should have delivered of the records Iterable indexed late, and what it did.

A record counts as due once exports have shown it for at least one horizon before the last sync:
by then a connector that keeps its promise has emitted it. Every record is checked for copies.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .data import EmulatorData
from .timefmt import to_epoch_ms

# Indexing delay (stamp - createdAt) buckets of the heavy-tail default (``indexing.HEAVY_TAIL``).
DELAY_BUCKETS = ((300, "up to 5 min"), (7_200, "5 min - 2 h"), (86_400, "2 h - 24 h"), (math.inf, "over 24 h"))


@dataclass
class BucketOutcome:
    """Records of one delay bucket: ``due`` (visible for a horizon before the last sync),
    ``delivered`` (emitted at least once), ``lost`` (due, never emitted), ``duplicated`` (extra
    copies, due or not)."""

    label: str
    due: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0


def late_outcomes(data: EmulatorData, data_type: str, start, end, emitted: Mapping[str, int],
                  identity: Callable[[dict], str], due_by, read_until) -> list[BucketOutcome]:
    """Outcomes per delay bucket for the records of ``[start, end)``.

    Args:
        emitted: how many times the connector emitted each record, by ``identity``.
        identity: a record's identity, computed alike on what the emulator serves and what the
            connector emitted (e.g. ``messageId`` of email sends).
        due_by: the last sync's time less the horizon: records shown by then are due.
        read_until: where the last sync's read ended (its ``end_date``): later records are not due.
    """
    due_by_ms, read_until_ms = to_epoch_ms(due_by), to_epoch_ms(read_until)
    outcomes = [BucketOutcome(label) for _, label in DELAY_BUCKETS]
    for record, created_ms, indexed_ms, visible_ms in data.indexed_records(data_type, start, end):
        delay_s = (indexed_ms - created_ms) / 1000
        outcome = outcomes[next(k for k, (limit, _) in enumerate(DELAY_BUCKETS) if delay_s <= limit)]
        copies = emitted.get(identity(record), 0)
        outcome.delivered += copies > 0
        outcome.duplicated += max(0, copies - 1)
        if visible_ms <= due_by_ms and created_ms < read_until_ms:
            outcome.due += 1
            outcome.lost += copies == 0
    return outcomes

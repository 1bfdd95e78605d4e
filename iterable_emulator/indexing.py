"""When Iterable indexes a record, and when its export starts to show it.

Iterable indexes events asynchronously: mobile SDKs send queued offline events with their original
``createdAt``, ``events/track`` takes a ``createdAt`` from the caller, and the export filters on
``createdAt`` alone. So an event can enter the export hours after its ``createdAt`` has passed. A
record's ``itblInternal.documentCreatedAt`` (``documentUpdatedAt`` for a user profile) is the time
it was indexed; the export shows it from then on, up to ``visibility_lag_max_s`` later.

Delays come from buckets with a heavy tail: ``((0.90, 300), (0.08, 7200), (0.02, 86400))`` puts 90%
of records within 5 minutes, 8% between 5 minutes and 2 hours and 2% between 2 and 24 hours
(uniform within a bucket).
"""

from dataclasses import dataclass

HEAVY_TAIL = ((0.90, 300.0), (0.08, 7_200.0), (0.02, 86_400.0))
NO_DELAY = ((1.0, 0.0),)
VISIBILITY_LAG_MAX_S = 60.0
_FRACTION = 1 << 20


@dataclass(frozen=True)
class IndexingDelays:
    """Per-record indexing delay and visibility lag, both drawn from one 64-bit hash word.

    Attributes:
        buckets: ``(share, max_delay_s)`` pairs in increasing ``max_delay_s``; the shares add up
            to 1 and a bucket's delays lie in ``(previous max, max]`` (the first from 0).
        visibility_lag_max_s: how long after its stamp a record may stay out of the export.
    """

    buckets: tuple[tuple[float, float], ...] = HEAVY_TAIL
    visibility_lag_max_s: float = VISIBILITY_LAG_MAX_S

    def __post_init__(self):
        if not self.buckets or abs(sum(share for share, _ in self.buckets) - 1) > 1e-9:
            raise ValueError("indexing delay buckets need shares that add up to 1")
        maxima = [max_s for _, max_s in self.buckets]
        if any(m < 0 for m in maxima) or maxima != sorted(maxima):
            raise ValueError("indexing delay buckets need non-negative, increasing maximum delays")
        if self.visibility_lag_max_s < 0:
            raise ValueError("visibility_lag_max_s must not be negative")
        thresholds, ranges, low, cumulative = [], [], 0, 0.0
        for share, max_s in self.buckets:
            cumulative += share
            thresholds.append(round(cumulative * _FRACTION))
            ranges.append((low, int(max_s * 1000)))
            low = int(max_s * 1000)
        object.__setattr__(self, "_thresholds", thresholds)
        object.__setattr__(self, "_ranges", ranges)

    @property
    def max_delay_ms(self) -> int:
        return int(self.buckets[-1][1] * 1000)

    @property
    def max_lag_ms(self) -> int:
        return int(self.visibility_lag_max_s * 1000)

    def delay_ms(self, word: int) -> int:
        """The indexing delay of the record whose hash word is ``word``."""
        fraction = word % _FRACTION
        for threshold, (low, high) in zip(self._thresholds, self._ranges):
            if fraction < threshold:
                return low + (word >> 20) % (high - low + 1) if high > low else high
        return self._ranges[-1][1]

    def lag_ms(self, word: int) -> int:
        """How long after its stamp the record stays invisible, in ``[0, visibility_lag_max_s]``."""
        mixed = ((word ^ (word >> 29)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        return (mixed >> 24) % (self.max_lag_ms + 1)

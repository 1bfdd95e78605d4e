"""How long the next export window should be, learned from how long the last request took.

Iterable's export answers a whole date window in one streamed response, with no paging. Too short a
window wastes the 4 requests per minute a project gets; too long a window takes so long that the
server drops the connection. The sizer aims each request at `target_seconds`.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

DAY = timedelta(days=1)


@dataclass
class WindowSizer:
    """Sizes export windows for one stream in one sync.

    Attributes:
        first_window: the span of the first request.
        min_window / max_window: bounds of any span.
        target_seconds: how long a request should take, from sending it to its last byte.
        max_growth: the most a span may grow from one window to the next.
    """

    first_window: timedelta = 30 * DAY
    min_window: timedelta = timedelta(minutes=1)
    max_window: timedelta = 180 * DAY
    target_seconds: float = 60.0
    max_growth: float = 4.0
    max_shrink: float = 0.5

    def __post_init__(self) -> None:
        self._ceiling: Optional[timedelta] = None

    @property
    def ceiling(self) -> timedelta:
        """The largest span allowed now: `max_window`, or less once a span was dropped."""
        return min(self.max_window, self._ceiling) if self._ceiling else self.max_window

    def first(self) -> timedelta:
        return self._bounded(self.first_window)

    def after_success(self, span: timedelta, seconds: float, records: int) -> timedelta:
        """The next span after a window of `span` took `seconds` and returned `records`."""
        if records == 0 or seconds <= self.target_seconds / self.max_growth:
            factor = self.max_growth
        else:
            factor = min(self.max_growth, max(self.max_shrink, self.target_seconds / seconds))
        return self._bounded(span * factor)

    def after_drop(self, span: timedelta) -> timedelta:
        """The span to retry with after the server dropped a window of `span` mid-body.

        Later windows of this sync stay at or below the halved span: a size the server could
        not serve once is not worth the shared request budget again.
        """
        halved = self._bounded(span / 2)
        self._ceiling = halved if self._ceiling is None else min(self._ceiling, halved)
        return halved

    def _bounded(self, span: timedelta) -> timedelta:
        whole_seconds = timedelta(seconds=int(span.total_seconds()))
        return max(self.min_window, min(self.ceiling, whole_seconds))

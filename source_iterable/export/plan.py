"""Which window a stream reads next, and whether an export job or the sync export reads it."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from source_iterable.export.windows import WindowSizer

API_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# An export job covers a long window in one request; in `auto` mode the last days stay on the
# sync export, so that incremental syncs of a few hours never wait for a job.
JOB_WINDOW = timedelta(days=366)
AUTO_SYNC_TAIL = timedelta(days=3)


@dataclass(frozen=True)
class Window:
    """A date window `[low, high)` and how it is read."""

    low: datetime
    high: datetime
    by_job: bool

    @property
    def span(self) -> timedelta:
        return self.high - self.low

    def __str__(self) -> str:
        return f"[{self.low.strftime(API_DATETIME_FORMAT)}, {self.high.strftime(API_DATETIME_FORMAT)})"


class ExportPlan:
    """Cuts `[start, end)` into windows: export jobs up to `jobs_until`, the sync export after.

    Each kind has its own sizer: sync windows follow how long requests take, job windows are
    366 days; both halve after a drop.

    Attributes:
        mode: `sync`, `jobs` or `auto` (jobs for all but the last 3 days).
        jobs_available: whether the stream can start export jobs at all.
    """

    def __init__(self, start: datetime, end: datetime, mode: str, jobs_available: bool, target_seconds: float) -> None:
        self.end = end
        if not jobs_available or mode == "sync":
            self.jobs_until = start
        else:
            self.jobs_until = end if mode == "jobs" else max(start, end - AUTO_SYNC_TAIL)
        self._sync_sizer = WindowSizer(target_seconds=target_seconds)
        self._job_sizer = WindowSizer(first_window=JOB_WINDOW, max_window=JOB_WINDOW)
        self._sync_span, self._job_span = self._sync_sizer.first(), self._job_sizer.first()

    def window_from(self, low: datetime) -> Window:
        if low < self.jobs_until:
            return Window(low, min(low + self._job_span, self.jobs_until), by_job=True)
        return Window(low, min(low + self._sync_span, self.end), by_job=False)

    def after_success(self, window: Window, seconds: float, records: int) -> None:
        if not window.by_job:
            self._sync_span = self._sync_sizer.after_success(window.span, seconds, records)

    def after_drop(self, window: Window) -> timedelta:
        """The span the window is retried with (at most half of it)."""
        if window.by_job:
            self._job_span = self._job_sizer.after_drop(window.span)
            return self._job_span
        self._sync_span = self._sync_sizer.after_drop(window.span)
        return self._sync_span

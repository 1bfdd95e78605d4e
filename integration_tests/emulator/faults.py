"""Switchable misbehaviour: rate limits, injected errors, dropped and slow bodies, bad lines, late data.

Everything is off by default. Tests flip the fields of ``emulator.faults`` at runtime from their own
thread; plain attribute writes are atomic under the GIL, and the counters that several server
threads consume (``fail_next``, ``drop_export_times``) are guarded by a lock.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field

RATE_LIMITED_BODY = {"msg": "Exceeded rate limit.", "code": "RateLimitExceeded"}
ERROR_BODIES = {
    429: RATE_LIMITED_BODY,
    500: {"code": "GenericError", "msg": "Something went wrong. Please try again later."},
    503: {"code": "GenericError", "msg": "Request timeout. Try again later."},
}


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per sliding ``window_s`` seconds (before ``Faults.time_scale``)."""

    requests: int
    window_s: float


def iterable_rate_limits() -> dict[str, RateLimit]:
    """Iterable's documented per-project limits, by endpoint family (see ``family_of``)."""
    return {
        "export": RateLimit(4, 60.0),
        "listUsers": RateLimit(5, 60.0),
        "campaignMetrics": RateLimit(10, 60.0),
        "default": RateLimit(100, 1.0),
    }


def family_of(path: str) -> str:
    """The rate-limit family of an API path such as ``/api/export/data.json``."""
    if path.startswith("/api/export/data."):
        return "export"
    if path.startswith(("/api/lists/getUsers", "/api/lists/previewUsers")):
        return "listUsers"
    if path.startswith("/api/campaigns/metrics"):
        return "campaignMetrics"
    return "default"


@dataclass
class Failure:
    """One ``fail_next`` rule: the next ``remaining`` requests whose path contains ``path_part``."""

    path_part: str
    status: int
    remaining: int
    body: dict | str | None
    retry_after: int | None


@dataclass(frozen=True)
class ExportCut:
    """Cut the body after ``after_records`` records; if the body is shorter, cut it at its end
    (no terminating chunk) only when ``even_if_shorter``."""

    after_records: int
    even_if_shorter: bool


class SlidingWindowLimiter:
    """Per-family sliding-window counters of accepted requests.

    Iterable describes its limits per minute; a sliding log is the strictest reading, so a
    connector that passes here passes a leaky bucket too.
    """

    def __init__(self):
        self._accepted: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, family: str, limit: RateLimit, time_scale: float) -> float | None:
        """Record a request; ``None`` if it is within the limit, else seconds until a slot frees."""
        window, now = limit.window_s * time_scale, time.monotonic()
        with self._lock:
            accepted = self._accepted.setdefault(family, deque())
            while accepted and accepted[0] <= now - window:
                accepted.popleft()
            if len(accepted) < limit.requests:
                accepted.append(now)
                return None
            return accepted[0] + window - now

    def reset(self) -> None:
        with self._lock:
            self._accepted.clear()


@dataclass
class Faults:
    """Fault switches of a running emulator.

    Attributes:
        rate_limits_enabled: enforce ``rate_limits`` (429 ``RateLimitExceeded`` when exceeded).
        rate_limits: limit per family ``export``, ``listUsers``, ``campaignMetrics``, ``default``.
        time_scale: multiplies every rate-limit window, e.g. 0.05 turns 4/min into 4 per 3 s.
        retry_after_header: send ``Retry-After`` (whole seconds until a slot frees, at least 1) on 429.
        broken_lists: list ids whose ``lists/getUsers`` always answers 500 GenericError.
        broken_users: emails/userIds whose ``export/userEvents`` always answers 500 GenericError.
        broken_retry_after_s: if set, those 500 answers carry ``Retry-After`` (Iterable is not known
            to send it; tests use it so that a connector's backoff does not take real minutes).
        drop_export_after_lines, drop_export_times, drop_export_types: the next ``drop_export_times``
            export responses (of ``drop_export_types`` only, canonical names, if not empty) send at most
            ``drop_export_after_lines`` records, then the connection is cut mid-body.
        drop_export_over_lines: every export response with more records than this is cut after
            that many (a server that cannot serve big windows).
        delay_before_headers_s: sleep before answering any request.
        delay_per_line_s: sleep before each streamed line (export, userEvents, getUsers); lines are
            then sent one chunk each.
        malformed_line_every: after every K-th record of an export body insert one non-JSON line,
            so a body of n records carries ``n // K`` of them (also logged per request).
        indexing_delay_max_s: each export record becomes visible only ``delay`` seconds after its
            cursor, ``delay`` fixed per record in ``[0, max]``; records in the future never show.
        clock_offset_s: added to the wall clock for that visibility check.
    """

    rate_limits_enabled: bool = False
    rate_limits: dict[str, RateLimit] = field(default_factory=iterable_rate_limits)
    time_scale: float = 1.0
    retry_after_header: bool = True
    broken_lists: set[int] = field(default_factory=set)
    broken_users: set[str] = field(default_factory=set)
    broken_retry_after_s: int | None = None
    drop_export_after_lines: int = 0
    drop_export_times: int = 0
    drop_export_types: set[str] = field(default_factory=set)
    drop_export_over_lines: int | None = None
    delay_before_headers_s: float = 0.0
    delay_per_line_s: float = 0.0
    malformed_line_every: int | None = None
    indexing_delay_max_s: float = 0.0
    clock_offset_s: float = 0.0
    _failures: list[Failure] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _limiter: SlidingWindowLimiter = field(default_factory=SlidingWindowLimiter, repr=False)

    def fail_next(self, path_part: str, status: int, count: int = 1, body: dict | str | None = None,
                  retry_after: int | None = None) -> None:
        """Answer the next ``count`` requests whose path contains ``path_part`` with ``status``.

        ``body`` defaults to Iterable's body for that status; ``retry_after`` adds that header.
        """
        with self._lock:
            self._failures.append(Failure(path_part, status, count, body, retry_after))

    def take_failure(self, path: str) -> Failure | None:
        """The injected failure for this request, if any, consuming one use of it."""
        with self._lock:
            for failure in self._failures:
                if failure.path_part in path:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def take_export_cut(self, data_type: str) -> ExportCut | None:
        """How to cut this export response, or ``None`` to send it whole."""
        with self._lock:
            if self.drop_export_times > 0 and (not self.drop_export_types or data_type in self.drop_export_types):
                self.drop_export_times -= 1
                return ExportCut(self.drop_export_after_lines, even_if_shorter=True)
        if self.drop_export_over_lines is not None:
            return ExportCut(self.drop_export_over_lines, even_if_shorter=False)
        return None

    def retry_after_s(self, path: str) -> float | None:
        """``None`` if the request is within its family's rate limit, else seconds until it would be."""
        if not self.rate_limits_enabled:
            return None
        family = family_of(path)
        return self._limiter.admit(family, self.rate_limits[family], self.time_scale)

    def broken_headers(self) -> dict:
        """Headers of a broken list's or user's 500 answer."""
        return {} if self.broken_retry_after_s is None else {"Retry-After": str(self.broken_retry_after_s)}

    def now_ms(self) -> int:
        """The server's clock for export visibility: wall clock plus ``clock_offset_s``."""
        return int((time.time() + self.clock_offset_s) * 1000)

    def reset(self) -> None:
        """Switch every fault off and forget rate-limit history and pending failures."""
        defaults = Faults()
        for name in self.__dataclass_fields__:
            if not name.startswith("_"):
                setattr(self, name, getattr(defaults, name))
        with self._lock:
            self._failures.clear()
        self._limiter.reset()

"""Switchable misbehaviour: rate limits, injected errors, dropped and slow bodies, bad lines, the clock,
and the knobs and faults of asynchronous export jobs.

Everything is off by default. Tests flip the fields of ``emulator.faults`` at runtime from their own
thread; plain attribute writes are atomic under the GIL, and the counters that several server
threads consume (``fail_next``, ``drop_export_times``, the ``job_*_times`` and ``*_file_*`` counters)
are guarded by a lock.
"""

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .event_types import canonical_type

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


_EXPORT_JOB_PATH = re.compile(r"^/api/export/(start|\d+|\d+/files)$")


def iterable_rate_limits() -> dict[str, RateLimit]:
    """Iterable's documented limits, by endpoint family (see ``family_of``).

    ``exportJobs`` is one budget shared by ``export/start``, ``export/{jobId}/files`` and
    ``DELETE export/{jobId}``: Iterable documents 1 req/s for each, per organization, without saying
    whether they share it, and the shared reading is the strictest (the emulator is one project of
    one organization).
    """
    return {
        "export": RateLimit(4, 60.0),
        "listUsers": RateLimit(5, 60.0),
        "campaignMetrics": RateLimit(10, 60.0),
        "exportJobs": RateLimit(1, 1.0),
        "userFields": RateLimit(3, 1.0),
        "default": RateLimit(100, 1.0),
    }


def family_of(path: str) -> str:
    """The rate-limit family of an API path such as ``/api/export/data.json``."""
    if path.startswith("/api/export/data."):
        return "export"
    if _EXPORT_JOB_PATH.match(path):
        return "exportJobs"
    if path.startswith("/api/users/getFields"):
        return "userFields"
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
        rate_limits: limit per family ``export``, ``listUsers``, ``campaignMetrics``, ``exportJobs``,
            ``userFields``, ``default``.
        time_scale: multiplies every rate-limit window, e.g. 0.05 turns 4/min into 4 per 3 s.
        retry_after_header: send ``Retry-After`` (whole seconds until a slot frees, at least 1) on 429.
        broken_lists: list ids whose ``lists/getUsers`` always answers 500 GenericError.
        broken_users: emails/userIds whose ``export/userEvents`` always answers 500 GenericError.
        broken_retry_after_s: if set, those 500 answers carry ``Retry-After`` (Iterable is not known
            to send it; tests use it so that a connector's backoff does not take real minutes).
        drop_export_after_lines, drop_export_times, drop_export_types: the next ``drop_export_times``
            export responses (of ``drop_export_types`` only, any spelling, if not empty) send at most
            ``drop_export_after_lines`` records, then the connection is cut mid-body.
        drop_export_over_lines: every export response with more records than this is cut after
            that many (a server that cannot serve big windows).
        delay_before_headers_s: sleep before answering any request.
        delay_per_line_s: sleep before each streamed line (export, userEvents, getUsers); lines are
            then sent one chunk each.
        malformed_line_every: after every K-th record of an export body insert one non-JSON line,
            so a body of n records carries ``n // K`` of them (also logged per request).
        clock_offset_s: added to the wall clock: the server's clock, by which exports show a record
            only once it is indexed (``EmulatorConfig.indexing_delays``), and which its ``Date``
            header tells.

    Asynchronous export jobs (``export/start``; see ``jobs.py``). Durations are in Iterable's
    seconds and multiplied by ``time_scale``; a job takes the values in force when it is started.
        job_max_running: jobs that run at once (Iterable: 4 per organization); more wait ``enqueued``.
        job_queue_delay_s: a new (or restarted) job stays ``enqueued`` at least this long.
        job_seconds_per_file: a running job produces one file per this many seconds; it completes
            with its last file (a job without records completes after one period, with no file).
        job_cancel_delay_s: a cancelled job stays ``cancelling`` this long before ``cancelled``.
        job_file_max_bytes: maximum size of a file (Iterable: 10 MB); a single bigger record gets a
            file of its own.
        job_max_bytes: cap on a job's output (Iterable: 100 GB); ``None`` means no cap. A job that
            reaches it stops, completes and reports ``exportTruncated: true``; later records are in no file.
        job_files_per_response: at most this many files per ``export/{jobId}/files`` answer (page
            with ``startAfter``; Iterable's page size is not documented, and a small one makes every
            job of the tests span several pages).
        file_url_ttl_s: a file URL expires this long after it is handed out (Iterable: 30 min).
        job_fail_times, job_fail_types, job_fail_after_files: the next ``job_fail_times`` jobs started
            (of ``job_fail_types`` only, any spelling, if not empty) fail once they have produced
            ``job_fail_after_files`` files (unless they complete first).
        job_restart_times, job_restart_after_files: the next ``job_restart_times`` jobs go back from
            ``running`` to ``enqueued`` once, after producing ``job_restart_after_files`` files (unless
            they complete first); their files stay, and they go on where they stopped.
        drop_file_times, drop_file_after_lines: the next ``drop_file_times`` file downloads send at
            most ``drop_file_after_lines`` lines, then half a line, then the connection is cut
            (a file that is shorter loses its last byte).
        expire_file_urls_times: the next that many file URLs handed out are already expired.
        reject_api_key_on_files: answer 400 to file downloads that carry ``Api-Key``/``Api_Key``
            (they are logged either way, see ``RequestRecord.api_key_sent``; S3 would ignore it).
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
    clock_offset_s: float = 0.0
    job_max_running: int = 4
    job_queue_delay_s: float = 2.0
    job_seconds_per_file: float = 3.0
    job_cancel_delay_s: float = 1.0
    job_file_max_bytes: int = 10 * 1024 * 1024
    job_max_bytes: int | None = None
    job_files_per_response: int = 10
    file_url_ttl_s: float = 1800.0
    job_fail_times: int = 0
    job_fail_types: set[str] = field(default_factory=set)
    job_fail_after_files: int = 0
    job_restart_times: int = 0
    job_restart_after_files: int = 1
    drop_file_times: int = 0
    drop_file_after_lines: int = 0
    expire_file_urls_times: int = 0
    reject_api_key_on_files: bool = False
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
            if self.drop_export_times > 0 and _selects(self.drop_export_types, data_type):
                self.drop_export_times -= 1
                return ExportCut(self.drop_export_after_lines, even_if_shorter=True)
        if self.drop_export_over_lines is not None:
            return ExportCut(self.drop_export_over_lines, even_if_shorter=False)
        return None

    def take_job_failure(self, data_type: str) -> int | None:
        """After how many files a job of ``data_type`` being started fails, ``None`` if it does not."""
        with self._lock:
            if self.job_fail_times > 0 and _selects(self.job_fail_types, data_type):
                self.job_fail_times -= 1
                return self.job_fail_after_files
        return None

    def take_job_restart(self) -> int | None:
        """After how many files a job being started goes back to ``enqueued``, ``None`` if it does not."""
        with self._lock:
            if self.job_restart_times > 0:
                self.job_restart_times -= 1
                return self.job_restart_after_files
        return None

    def take_file_cut(self) -> int | None:
        """After how many lines to cut this file download, ``None`` to send it whole."""
        with self._lock:
            if self.drop_file_times > 0:
                self.drop_file_times -= 1
                return self.drop_file_after_lines
        return None

    def take_expired_url(self) -> bool:
        """Whether the file URL being handed out must be already expired."""
        with self._lock:
            if self.expire_file_urls_times > 0:
                self.expire_file_urls_times -= 1
                return True
        return False

    def retry_after_s(self, path: str) -> float | None:
        """``None`` if the request is within its family's rate limit, else seconds until it would be.

        A family missing from ``rate_limits`` (a table a test built by hand) falls under ``default``.
        """
        if not self.rate_limits_enabled:
            return None
        family = family_of(path)
        limit = self.rate_limits.get(family) or self.rate_limits.get("default")
        return None if limit is None else self._limiter.admit(family, limit, self.time_scale)

    def broken_headers(self) -> dict:
        """Headers of a broken list's or user's 500 answer."""
        return {} if self.broken_retry_after_s is None else {"Retry-After": str(self.broken_retry_after_s)}

    def now_s(self) -> float:
        """The server's clock in epoch seconds: wall clock plus ``clock_offset_s``."""
        return time.time() + self.clock_offset_s

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


def _selects(types: set[str], data_type: str) -> bool:
    """Whether a fault limited to ``types`` (any spelling; empty: every type) applies to the canonical ``data_type``."""
    return not types or data_type in {canonical_type(t) or t for t in types}

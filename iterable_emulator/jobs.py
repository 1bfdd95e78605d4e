"""Iterable's asynchronous ("bulk") export jobs, simulated in time, and their pre-signed file URLs.

A job started by ``POST export/start`` lives on the jobs' clock (the server clock by default)::

    enqueued --(job_queue_delay_s passed and fewer than job_max_running jobs running)--> running
    running  --(one file per job_seconds_per_file)--> ... --> completed (with its last file)
    running  --(fault: restart)--> enqueued --> running (files kept, goes on where it stopped)
    running  --(fault)--> failed;  enqueued | running --(DELETE)--> cancelling --> cancelled

Nothing runs in the background: every read first advances a discrete-event simulation of all jobs
up to the clock's ``now``, so a job's history is the same whether it was polled every millisecond
or once, and a test can drive time with ``ManualClock`` instead of sleeping.

A job reads its records when it first runs: exactly ``EmulatorData.export_records(dataTypeName,
start, end)`` as the sync export would serve them at that moment (late indexing included). A file
holds only where its records start in that stream (a shuffle block and how many records of it came
before), not its records: a job costs the same memory whatever its size. Downloads regenerate the
lines, which are deterministic, and stream them block by block.
"""

import hashlib
import hmac
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from .data import SHUFFLE_BLOCK, EmulatorData
from .faults import Faults

JOB_STATES = ("enqueued", "running", "completed", "failed", "cancelling", "cancelled")
TERMINAL_STATES = ("completed", "failed", "cancelled")
FIRST_JOB_ID = 3562


class ManualClock:
    """A clock tests move by hand: ``emulator.jobs.clock = clock = ManualClock(time.time())``, then
    ``clock.advance(seconds)``. Calling it returns epoch seconds."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class JobFile:
    """One file of a job: ``name`` (``file-<epoch ms>.json``), its ``records`` and ``bytes``, when
    it was ``produced`` (jobs' clock, epoch s) and where its records begin in the job's record
    stream: ``start`` is (shuffle block, records of that block in earlier files)."""

    name: str
    records: int
    bytes: int
    produced: float
    start: tuple[int, int] = field(repr=False)


class _JobOutput:
    """Cuts a job's record stream into files: at most ``file_max_bytes`` each (a bigger record gets
    a file of its own), and no more than ``max_bytes`` in all (then ``truncated``)."""

    def __init__(self, data: EmulatorData, data_type: str, orders: Iterator[list[int]],
                 file_max_bytes: int, max_bytes: int | None):
        self._data, self._type, self._orders = data, data_type, orders
        self._file_max, self._max = file_max_bytes, max_bytes
        self._pending: list[int] = []  # bytes (with newline) of the block's next records, next last
        self._block = self._taken = 0  # the shuffle block pending, and how many of its records were taken
        self.total_bytes = 0
        self.truncated = False
        self.done = False
        self._fill()

    def _fill(self) -> None:
        """Make sure the next record is pending unless the stream is exhausted."""
        while not self._pending:
            order = next(self._orders, None)
            if order is None:
                self.done = True
                return
            self._pending = [len(line.encode()) + 1 for line in self._data.export_lines(self._type, order)][::-1]
            self._block, self._taken = order[0] // SHUFFLE_BLOCK, 0

    def next_file(self) -> tuple[tuple[int, int], int, int] | None:
        """Start (see ``JobFile``), records and size of the next file, ``None`` if nothing is left
        (``done`` is then set)."""
        start, records, size = (self._block, self._taken), 0, 0
        while not self.done:
            length = self._pending[-1]
            if records and size + length > self._file_max:
                break
            if self._max is not None and self.total_bytes + size + length > self._max:
                self.truncated = self.done = True
                break
            self._pending.pop()
            self._taken += 1
            records += 1
            size += length
            self._fill()
        self.total_bytes += size
        return (start, records, size) if records else None


@dataclass
class ExportJob:
    """One export job. Read-only for tests: ``emulator.jobs`` keeps it up to date.

    Attributes:
        id, data_type (canonical), start_s, end_s: what ``export/start`` asked for (epoch s).
        state: one of ``JOB_STATES``; ``history``: every ``(state, time)`` it went through, first
            ``("enqueued", created)``, times on the jobs' clock (epoch s).
        files: the files produced so far, in name order; ``truncated``: it hit ``job_max_bytes``.
        snapshot_ms: the server clock (epoch ms) at which it read its records (first ``running``).
        fail_after_files, restart_after_files: injected faults (``None``: none).
        queue_delay_s, seconds_per_file, cancel_delay_s, file_max_bytes, max_bytes: the settings it
            took at start (durations already multiplied by ``time_scale``).
    """

    id: int
    data_type: str
    start_s: int
    end_s: int
    created: float
    queue_delay_s: float
    seconds_per_file: float
    cancel_delay_s: float
    file_max_bytes: int
    max_bytes: int | None
    fail_after_files: int | None = None
    restart_after_files: int | None = None
    state: str = "enqueued"
    history: list[tuple[str, float]] = field(default_factory=list)
    files: list[JobFile] = field(default_factory=list)
    truncated: bool = False
    snapshot_ms: int | None = None
    ready_at: float = 0.0
    next_at: float | None = field(default=None, repr=False)
    holds_slot: bool = field(default=False, repr=False)
    restarted: bool = field(default=False, repr=False)
    output: _JobOutput | None = field(default=None, repr=False)

    @property
    def states(self) -> list[str]:
        """The states it went through, in order (``enqueued`` twice after a restart)."""
        return [state for state, _ in self.history]

    @property
    def ended(self) -> float | None:
        """When it reached a terminal state (jobs' clock), ``None`` before."""
        return self.history[-1][1] if self.state in TERMINAL_STATES else None

    @property
    def bytes_exported(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def cancelled(self) -> bool:
        return self.state in ("cancelling", "cancelled")

    def queued_s(self, now: float | None = None) -> float:
        """Seconds spent ``enqueued`` in all (up to ``now`` if it is still enqueued)."""
        total = 0.0
        for (state, since), (_, until) in zip(self.history, self.history[1:] + [("", now)]):
            if state == "enqueued" and until is not None:
                total += until - since
        return total

    def _enter(self, state: str, at: float) -> None:
        self.state = state
        self.history.append((state, at))


class ExportJobs:
    """The project's export jobs (Iterable's limits are per organization; the emulator is one).

    Usage in tests::

        emulator.jobs.clock = clock = ManualClock(time.time())   # optional: drive time by hand
        job_id = requests.post(f"{base}/export/start", json={...}, headers=...).json()["jobId"]
        clock.advance(60)
        job = emulator.jobs.get(job_id)           # state, history, files, truncated...
        assert emulator.jobs.records(job_id) == emulator.jobs.expected_records(job_id)

    Attributes:
        clock: returns the jobs' time in epoch seconds; defaults to the server clock (wall clock
            plus ``faults.clock_offset_s``). Also decides file URL expiry.
    """

    def __init__(self, data: EmulatorData, faults: Faults, clock: Callable[[], float] | None = None):
        self._data, self._faults = data, faults
        self.clock = clock or faults.now_s
        self._jobs: dict[int, ExportJob] = {}
        self._ids = itertools.count(FIRST_JOB_ID)
        self._lock = threading.RLock()
        self._secret = os.urandom(16)
        self._last_event = 0.0

    # Reading and driving jobs.

    def start(self, data_type: str, start_s: int, end_s: int) -> ExportJob:
        """Create a job of a canonical ``data_type`` for ``[start_s, end_s)``; it starts ``enqueued``."""
        faults, scale = self._faults, self._faults.time_scale
        with self._lock:
            now = self._advance()
            job = ExportJob(
                next(self._ids), data_type, start_s, end_s, now, faults.job_queue_delay_s * scale,
                faults.job_seconds_per_file * scale, faults.job_cancel_delay_s * scale, faults.job_file_max_bytes,
                faults.job_max_bytes,
                fail_after_files=faults.take_job_failure(data_type), restart_after_files=faults.take_job_restart(),
            )
            self._enqueue(job, now)
            self._jobs[job.id] = job
            return job

    def get(self, job_id: int) -> ExportJob | None:
        with self._lock:
            self._advance()
            return self._jobs.get(job_id)

    def all(self, state: str | None = None) -> list[ExportJob]:
        """Every job, newest first, optionally only those in ``state``."""
        with self._lock:
            self._advance()
            return [j for j in sorted(self._jobs.values(), key=lambda j: -j.id) if state in (None, j.state)]

    def cancel(self, job_id: int) -> str | None:
        """Cancel an enqueued or running job: it goes ``cancelling``, then ``cancelled``; a job in
        any other state is left as it is. Returns the state it was in, ``None`` if unknown."""
        with self._lock:
            now = self._advance()
            job = self._jobs.get(job_id)
            if job is None:
                return None
            previous = job.state
            if previous in ("enqueued", "running"):
                job._enter("cancelling", now)
                job.next_at = now + job.cancel_delay_s
            return previous

    def files_page(self, job_id: int, start_after: str | None, limit: int) -> dict | None:
        """The ``export/{jobId}/files`` answer without URLs (``files`` are ``JobFile``s); state
        and files are read together, so a ``completed`` job always lists its last file."""
        with self._lock:
            self._advance()
            job = self._jobs.get(job_id)
            if job is None:
                return None
            files = [f for f in job.files if start_after is None or f.name > start_after][:max(0, limit)]
            return {"jobId": job.id, "jobState": job.state, "exportTruncated": job.truncated, "files": files}

    def listing(self, state: str | None = None) -> list[dict]:
        """The ``export/jobs`` answer's ``jobs``: newest first, only those in ``state`` if given.

        ``endTime`` appears once a job has finished; times are ISO 8601 with milliseconds, in UTC.
        """
        with self._lock:
            listed = []
            for job in self.all(state):
                item = {"id": job.id, "dataTypeName": job.data_type, "jobState": job.state,
                        "scheduledStartTime": iso_time(job.created)}
                if job.ended is not None:
                    item["endTime"] = iso_time(job.ended)
                item["bytesExported"] = job.bytes_exported
                listed.append(item)
            return listed

    def file(self, job_id: int, name: str) -> tuple[ExportJob, JobFile] | None:
        """A job's file by name, ``None`` if there is none."""
        with self._lock:
            job = self._jobs.get(job_id)
            found = next((f for f in job.files if f.name == name), None) if job else None
            return None if found is None else (job, found)

    def reset(self) -> None:
        """Forget every job and go back to the server clock (for tests sharing an emulator)."""
        with self._lock:
            self._jobs.clear()
            self.clock = self._faults.now_s
            self._last_event = 0.0

    # What tests compare.

    def records(self, job_id: int) -> list[dict]:
        """The records in the job's files so far, file after file, as downloads serve them."""
        job = self._known(job_id)
        return [orjson.loads(line) for f in job.files for lines in self._file_lines(job, f) for line in lines]

    def expected_records(self, job_id: int) -> list[dict]:
        """What the finished job holds unless truncated, failed or cancelled: ``export_records`` of
        its window at the moment it read its records (``[]`` if it never ran)."""
        job = self._known(job_id)
        if job.snapshot_ms is None:
            return []
        return list(self._data.export_records(job.data_type, job.start_s, job.end_s, now=job.snapshot_ms / 1000))

    def _known(self, job_id: int) -> ExportJob:
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"No export job {job_id}")
        return job

    def file_body(self, job: ExportJob, file: JobFile) -> bytes:
        """The JSONL bytes of a file."""
        return b"".join(self.file_chunks(job, file))

    def file_chunks(self, job: ExportJob, file: JobFile) -> Iterator[bytes]:
        """The JSONL bytes of a file, a shuffle block at a time (``file.bytes`` in all)."""
        for lines in self._file_lines(job, file):
            yield "".join(line + "\n" for line in lines).encode()

    def _file_lines(self, job: ExportJob, file: JobFile) -> Iterator[list[str]]:
        """The lines of a file, regenerated from where it starts, block by block."""
        block, skip = file.start
        left = file.records
        for order in self._orders(job, from_block=block):
            part = order[skip:skip + left]
            skip, left = 0, left - len(part)
            yield self._data.export_lines(job.data_type, part)
            if not left:
                return

    def _orders(self, job: ExportJob, from_block: int = 0) -> Iterator[list[int]]:
        """The job's record stream (``EmulatorData.export_orders`` at its snapshot)."""
        return self._data.export_orders(job.data_type, job.start_s, job.end_s, job.snapshot_ms, from_block=from_block)

    # Pre-signed file URLs.

    def sign(self, job_id: int, name: str, expired: bool = False) -> str:
        """The query string of a URL for a job's file, valid ``file_url_ttl_s`` (scaled) from now."""
        now = self.clock()
        ttl = self._faults.file_url_ttl_s * self._faults.time_scale
        expires_ms = int((now - 1 if expired else now + ttl) * 1000)
        return f"Expires={expires_ms}&Signature={self._signature(job_id, name, expires_ms)}"

    def check_url(self, job_id: int, name: str, expires: str | None, signature: str | None) -> str:
        """``ok``, ``expired`` or ``forged`` for a file URL's ``Expires`` and ``Signature``."""
        try:
            expires_ms = int(expires or "")
        except ValueError:
            return "forged"
        if not hmac.compare_digest(self._signature(job_id, name, expires_ms), signature or ""):
            return "forged"
        return "expired" if self.clock() * 1000 >= expires_ms else "ok"

    def _signature(self, job_id: int, name: str, expires_ms: int) -> str:
        return hmac.new(self._secret, f"{job_id}/{name}/{expires_ms}".encode(), hashlib.sha256).hexdigest()

    # The simulation.

    def _advance(self) -> float:
        """Apply every event up to now, in time order; returns now."""
        now = self.clock()
        while True:
            event = self._next_event()
            if event is None or event[0] > now:
                return now
            # A job waiting since before the last event (``job_max_running`` was raised) starts now.
            at, job = max(event[0], self._last_event), event[1]
            self._last_event = at
            self._apply(job, at)
            self._start_ready(at)

    def _free_slots(self) -> int:
        return self._faults.job_max_running - sum(j.holds_slot for j in self._jobs.values())

    def _next_event(self) -> tuple[float, ExportJob] | None:
        events = [(j.next_at, j.id, j) for j in self._jobs.values()
                  if j.state in ("running", "cancelling") and j.next_at is not None]
        if self._free_slots() > 0:
            events += [(j.ready_at, j.id, j) for j in self._jobs.values() if j.state == "enqueued"]
        return min(events, key=lambda e: e[:2])[::2] if events else None

    def _start_ready(self, at: float) -> None:
        ready = sorted((j for j in self._jobs.values() if j.state == "enqueued" and j.ready_at <= at),
                       key=lambda j: (j.ready_at, j.id))
        for job in ready[:max(0, self._free_slots())]:
            self._run(job, at)

    def _run(self, job: ExportJob, at: float) -> None:
        job._enter("running", at)
        job.holds_slot, job.next_at = True, at + job.seconds_per_file
        if job.output is None:
            job.snapshot_ms = int(at * 1000)
            job.output = _JobOutput(self._data, job.data_type, self._orders(job), job.file_max_bytes, job.max_bytes)

    def _apply(self, job: ExportJob, at: float) -> None:
        if job.state == "enqueued":
            return self._run(job, at)
        if job.state == "cancelling":
            return self._finish(job, "cancelled", at)
        if job.fail_after_files is not None and len(job.files) >= job.fail_after_files:
            return self._finish(job, "failed", at)
        produced = job.output.next_file()
        if produced is not None:
            start, records, size = produced
            # Names sort in production order even when two files share a millisecond.
            last_ms = int(job.files[-1].name.removeprefix("file-").removesuffix(".json")) if job.files else 0
            name = f"file-{max(int(at * 1000), last_ms + 1)}.json"
            job.files.append(JobFile(name, records, size, at, start))
        job.truncated = job.output.truncated
        if job.output.done:
            return self._finish(job, "completed", at)
        if job.restart_after_files is not None and not job.restarted and len(job.files) >= job.restart_after_files:
            job.restarted, job.holds_slot, job.next_at = True, False, None
            return self._enqueue(job, at)
        job.next_at = at + job.seconds_per_file
        return None

    @staticmethod
    def _enqueue(job: ExportJob, at: float) -> None:
        job._enter("enqueued", at)
        job.ready_at = at + job.queue_delay_s

    @staticmethod
    def _finish(job: ExportJob, state: str, at: float) -> None:
        job._enter(state, at)
        job.holds_slot, job.next_at = False, None


def iso_time(epoch_s: float) -> str:
    """``2023-12-19T10:12:27.732+00:00``, the form of ``export/jobs`` times."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(timespec="milliseconds")

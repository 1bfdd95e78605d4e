"""Reading an export window through Iterable's asynchronous export jobs (beta).

`POST export/start` starts a job for a data type and date window; `GET export/{jobId}/files` gives
its state and the files written so far, at pre-signed URLs that expire after 30 minutes; each file
is JSONL of at most 10 MB. Iterable runs at most 4 jobs per organization at once and allows 1 job
request per second per organization; the rate budget in the manifest paces the job requests.
"""

import logging
import re
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import requests
from airbyte_cdk.sources.declarative.requesters.http_requester import HttpRequester
from airbyte_cdk.sources.declarative.requesters.requester import HttpMethod, Requester

from source_iterable.export.lines import CHUNK_BYTES
from source_iterable.export.server_clock import read_started_at

logger = logging.getLogger("airbyte")

TERMINAL_STATES = {"completed", "failed", "cancelled"}
JSONL_FORMAT = "application/x-json-stream"
FILE_TIMEOUT_S = (60, 300)


@dataclass
class DeleteRequester(HttpRequester):
    """An HttpRequester that sends DELETE (the manifest's HttpRequester offers GET and POST only).

        job_cancel_requester:
          type: CustomRequester
          class_name: source_iterable.export.jobs.DeleteRequester
          url: ...
    """

    def get_method(self) -> HttpMethod:
        return HttpMethod.DELETE


class JobFailed(Exception):
    """The job ended as `failed` or `cancelled`, or a file could not be downloaded: retry the window."""


class JobTruncated(Exception):
    """Iterable stopped the job at its size cap (`exportTruncated`): read the window in halves."""


@dataclass
class JobFile:
    name: str
    url: str


class ExportJobs:
    """The export jobs one read started and has not seen end, so that a failed or interrupted
    read can cancel them and free the organization's 4 job slots.

    One instance per read, shared by every stream's job reader: `SourceIterable` creates it and
    `run()` cancels what is left on SIGTERM or when the read ends. Once closed, no new job starts
    (a stream must not replace a job that was just cancelled). Used from several worker threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancellers: Dict[int, Callable[[], None]] = {}
        self._closed = False

    def add(self, job_id: int, cancel: Callable[[], None]) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._cancellers[job_id] = cancel
        if closed:
            cancel()
            raise JobFailed(f"job {job_id} started while the sync was ending; cancelled it")

    def discard(self, job_id: int) -> None:
        with self._lock:
            self._cancellers.pop(job_id, None)

    def accepting(self) -> bool:
        return not self._closed

    def cancel_all(self) -> None:
        """Cancels every live job and refuses new ones for the rest of the read."""
        with self._lock:
            self._closed = True
            cancellers = list(self._cancellers.items())
            self._cancellers.clear()
        for job_id, cancel in cancellers:
            try:
                cancel()
            except Exception as error:  # best effort while shutting down
                logger.warning(f"Could not cancel Iterable export job {job_id}: {error}")


@dataclass
class ExportJobReader:
    """Starts one export job for a window and yields the lines of its files, in file order.

    Files are downloaded as they appear, `parallel_downloads` at a time, without the API key (the
    URLs are pre-signed). An expired URL (403) or a dropped download is fetched again with a fresh
    URL, up to `download_attempts` times. A job this reader started is cancelled if the read ends
    before the job does (failure, interruption).

    Attributes:
        start_requester / files_requester / cancel_requester: the job endpoints (budget included).
        live_jobs: the jobs of this read, where each job is registered for cancellation.
        stream: the stream name, for the logs.
        poll_seconds: the least time between two `files` calls for one job.
    """

    start_requester: Requester = field(repr=False)
    files_requester: Requester = field(repr=False)
    cancel_requester: Requester = field(repr=False)
    live_jobs: ExportJobs = field(default_factory=ExportJobs, repr=False)
    stream: str = ""
    poll_seconds: float = 5.0
    parallel_downloads: int = 3
    download_attempts: int = 4
    sleep: Callable[[float], None] = time.sleep
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def request(self, data_type: str, start: str, end: str) -> "ExportJobRequest":
        return ExportJobRequest(self, data_type, start, end)

    def lines(
        self, data_type: str, start: str, end: str, started: Callable[[int], None] = lambda read_at: None
    ) -> Iterator[bytes]:
        """The lines of the job's files; `started` hears when Iterable accepted the job."""
        if not self.live_jobs.accepting():
            raise JobFailed("the sync is ending; no new export job is started")
        job_id, read_at = self._start(data_type, start, end)
        started(read_at)
        self.live_jobs.add(job_id, lambda: self._cancel(job_id))
        finished = False
        try:
            yield from self._files_lines(job_id)
            finished = True
        finally:
            self.live_jobs.discard(job_id)
            if not finished:
                self._cancel(job_id)

    def _start(self, data_type: str, start: str, end: str) -> Tuple[int, int]:
        response = self.start_requester.send_request(
            request_body_json={
                "dataTypeName": data_type,
                "outputFormat": JSONL_FORMAT,
                "startDateTime": start,
                "endDateTime": end,
            }
        )
        job_id = int(response.json()["jobId"])
        logger.info(f"{self.stream}: started Iterable export job {job_id} for {data_type} [{start}, {end}).")
        return job_id, read_started_at(response)

    def _files_lines(self, job_id: int) -> Iterator[bytes]:
        listed: List[JobFile] = []
        downloads: Dict[str, Future] = {}
        next_file = 0
        # Files (up to 10 MB each) are downloaded to disk and read line by line, so memory stays
        # flat however many streams read jobs at once; the folder goes when the job's read ends.
        with tempfile.TemporaryDirectory(prefix=f"iterable-job-{job_id}-") as folder, ThreadPoolExecutor(
            max_workers=self.parallel_downloads, thread_name_prefix="iterable-files"
        ) as pool:
            paging = False
            while True:
                # Polling is paced: a job never has files the moment it starts, and every poll
                # spends the organization's 1 job request per second. Pages of a finished job's
                # listing are asked for at once (the requester's budget still paces them).
                if not paging:
                    self.sleep(self.poll_seconds)
                state, truncated, new_files = self._poll(job_id, listed[-1].name if listed else None)
                listed.extend(new_files)
                while next_file < len(listed):
                    self._prefetch(pool, Path(folder), listed, next_file, downloads)
                    downloaded = self._body(job_id, Path(folder), listed[next_file], downloads.pop(listed[next_file].name))
                    yield from _file_lines(downloaded)
                    next_file += 1
                # Iterable answers a page of files at a time: a completed job is read to its end
                # only once a poll lists nothing after its last file (a failed one is read again).
                paging = state == "completed" and bool(new_files)
                if paging:
                    continue
                if state == "completed":
                    if truncated:
                        raise JobTruncated(f"job {job_id} reached Iterable's export size cap")
                    return
                if state in TERMINAL_STATES:
                    raise JobFailed(f"job {job_id} ended as {state}")

    def _poll(self, job_id: int, after: Optional[str]):
        params = {"startAfter": after} if after else {}
        response = self.files_requester.send_request(path=f"{job_id}/files", request_params=params)
        answer = response.json()
        files = [JobFile(item["file"], item["url"]) for item in answer.get("files", [])]
        return str(answer.get("jobState", "")).lower(), bool(answer.get("exportTruncated")), files

    def _prefetch(
        self, pool: ThreadPoolExecutor, folder: Path, listed: List[JobFile], first: int, downloads: Dict[str, Future]
    ) -> None:
        for job_file in listed[first : first + self.parallel_downloads]:
            if job_file.name not in downloads:
                downloads[job_file.name] = pool.submit(self._download, job_file.url, folder)

    def _body(self, job_id: int, folder: Path, job_file: JobFile, download: Future) -> Path:
        """The downloaded file; an expired URL or a dropped download is tried again with a fresh URL."""
        try:
            return download.result()
        except (requests.RequestException, OSError) as error:
            failure: BaseException = error
        for _ in range(1, self.download_attempts):
            logger.warning(
                f"{self.stream}: downloading {job_file.name} of export job {job_id} failed ({_unsigned(failure)}); "
                "fetching it again with a fresh URL."
            )
            try:
                return self._download(self._fresh_url(job_id, job_file.name), folder)
            except (requests.RequestException, OSError) as error:
                failure = error
        raise JobFailed(
            f"file {job_file.name} of job {job_id} failed {self.download_attempts} times: {_unsigned(failure)}"
        ) from None

    def _fresh_url(self, job_id: int, name: str) -> str:
        after = None
        while True:
            state, _, files = self._poll(job_id, after)
            for job_file in files:
                if job_file.name == name:
                    return job_file.url
            if not files:
                raise JobFailed(f"file {name} is no longer listed for job {job_id} (state {state})")
            after = files[-1].name

    def _download(self, url: str, folder: Path) -> Path:
        # A plain session: the URL is pre-signed, and the API key must never leave for it.
        with self._session.get(url, timeout=FILE_TIMEOUT_S, stream=True) as response:
            response.raise_for_status()
            with tempfile.NamedTemporaryFile(dir=folder, suffix=".jsonl", delete=False) as file:
                for chunk in response.iter_content(CHUNK_BYTES):
                    file.write(chunk)
        return Path(file.name)

    def _cancel(self, job_id: int) -> None:
        try:
            self.cancel_requester.send_request(path=str(job_id))
            logger.info(f"{self.stream}: cancelled Iterable export job {job_id}.")
        except Exception as error:
            logger.warning(f"{self.stream}: could not cancel Iterable export job {job_id}: {error}")


def _file_lines(path: Path) -> Iterator[bytes]:
    """The lines of a downloaded file, without their newline; the file is deleted once read."""
    with path.open("rb") as file:
        for line in file:
            yield line[:-1] if line.endswith(b"\n") else line
    path.unlink()


def _unsigned(error: BaseException) -> str:
    """The error without URL query strings: a pre-signed file URL grants access to the data."""
    return re.sub(r"\?[^\s'\")]*", "?…", str(error))


class ExportJobRequest:
    """One window read by one export job: `lines()`, then `seconds`, its whole duration; `read_at`
    is when Iterable accepted the job, by its clock (the job reads what is indexed when it runs)."""

    def __init__(self, reader: ExportJobReader, data_type: str, start: str, end: str) -> None:
        self._reader, self._data_type, self._start, self._end = reader, data_type, start, end
        self.seconds = 0.0
        self.read_at = int(time.time())

    def lines(self) -> Iterator[bytes]:
        started = monotonic()
        yield from self._reader.lines(self._data_type, self._start, self._end, self._started)
        self.seconds = monotonic() - started

    def _started(self, read_at: int) -> None:
        self.read_at = read_at

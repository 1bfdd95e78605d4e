"""ExportJobReader and ExportJobs: one window through an export job, with file URLs mocked."""

from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

from source_iterable.export.jobs import ExportJobReader, ExportJobs, JobFailed, JobTruncated

FILES_HOST = "https://files.example.com"


class FakeJobApi:
    """The three job endpoints: answers `files` polls from a script of answers."""

    def __init__(self, polls: List[Dict[str, Any]], page_size: int = 100) -> None:
        self.polls, self.page_size = polls, page_size
        self.started: List[Dict[str, Any]] = []
        self.cancelled: List[str] = []
        self.asked_after: List[str] = []
        self.start = SimpleNamespace(send_request=self._start)
        self.files = SimpleNamespace(send_request=self._files)
        self.cancel = SimpleNamespace(send_request=self._cancel)

    def _start(self, request_body_json):
        self.started.append(request_body_json)
        return SimpleNamespace(json=lambda: {"jobId": 7})

    def _files(self, path, request_params):
        answer = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        after = request_params.get("startAfter", "")
        self.asked_after.append(after)
        page = {**answer, "files": [f for f in answer.get("files", []) if f["file"] > after][: self.page_size]}
        return SimpleNamespace(json=lambda: page)

    def _cancel(self, path):
        self.cancelled.append(path)


def reader(api: FakeJobApi, live_jobs: ExportJobs = None) -> ExportJobReader:
    return ExportJobReader(
        api.start, api.files, api.cancel, live_jobs=live_jobs or ExportJobs(), stream="email_send", poll_seconds=0, sleep=lambda s: None
    )


def file(name: str) -> Dict[str, str]:
    return {"file": name, "url": f"{FILES_HOST}/{name}?Signature=abc"}


def test_lines_of_all_files_arrive_in_order_and_the_key_never_goes_to_file_urls(requests_mock):
    api = FakeJobApi(
        [
            {"jobState": "running", "files": [file("f1.json")]},
            {"jobState": "completed", "exportTruncated": False, "files": [file("f2.json")]},
        ]
    )
    requests_mock.get(f"{FILES_HOST}/f1.json", content=b'{"a":1}\n{"a":2}\n')
    requests_mock.get(f"{FILES_HOST}/f2.json", content=b'{"a":3}\n')

    lines = [line for line in reader(api).lines("emailSend", "2024-01-01 00:00:00", "2025-01-01 00:00:00") if line]

    assert lines == [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    assert api.started == [
        {"dataTypeName": "emailSend", "outputFormat": "application/x-json-stream", "startDateTime": "2024-01-01 00:00:00", "endDateTime": "2025-01-01 00:00:00"}
    ]
    assert all("Api-Key" not in h.headers and "Api_Key" not in h.headers for h in requests_mock.request_history)
    assert api.cancelled == [], "a job read to its end is not cancelled"


def test_a_finished_jobs_listing_is_read_page_after_page_to_its_last_file(requests_mock):
    names = [f"file-{n}.json" for n in range(1, 6)]
    api = FakeJobApi([{"jobState": "completed", "exportTruncated": False, "files": [file(name) for name in names]}], page_size=2)
    for n, name in enumerate(names, 1):
        requests_mock.get(f"{FILES_HOST}/{name}", content=b'{"a":%d}\n' % n)

    lines = [line for line in reader(api).lines("user", "2024-01-01 00:00:00", "2025-01-01 00:00:00") if line]

    assert lines == [b'{"a":%d}' % n for n in range(1, 6)], "Iterable lists files a page at a time"
    assert api.asked_after == ["", "file-2.json", "file-4.json", "file-5.json"], "paged with startAfter until an empty page"


def test_an_expired_url_is_fetched_again_with_a_fresh_one(requests_mock, caplog):
    api = FakeJobApi([{"jobState": "completed", "files": [file("f1.json")]}])
    requests_mock.get(f"{FILES_HOST}/f1.json", [{"status_code": 403, "text": "<Error>AccessDenied</Error>"}, {"content": b'{"a":1}\n'}])

    assert [line for line in reader(api).lines("emailSend", "a", "b") if line] == [b'{"a":1}']
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "403" in warning and "f1.json" in warning
    assert "Signature" not in warning, "a pre-signed URL is a credential: never logged"


def test_a_failed_job_raises_so_the_window_is_retried(requests_mock):
    api = FakeJobApi([{"jobState": "failed", "files": []}])

    with pytest.raises(JobFailed):
        list(reader(api).lines("emailSend", "a", "b"))


def test_a_truncated_export_raises_after_its_files_were_read(requests_mock):
    api = FakeJobApi([{"jobState": "completed", "exportTruncated": True, "files": [file("f1.json")]}])
    requests_mock.get(f"{FILES_HOST}/f1.json", content=b'{"a":1}\n')
    seen = []

    with pytest.raises(JobTruncated):
        for line in reader(api).lines("emailSend", "a", "b"):
            seen.append(line)
    assert b'{"a":1}' in seen


def test_a_read_abandoned_mid_job_cancels_the_job(requests_mock):
    api = FakeJobApi([{"jobState": "running", "files": [file("f1.json")]}])
    requests_mock.get(f"{FILES_HOST}/f1.json", content=b'{"a":1}\n')

    lines = reader(api).lines("emailSend", "a", "b")
    next(lines)
    lines.close()

    assert api.cancelled == ["7"]


def test_once_the_reads_jobs_are_cancelled_no_new_job_starts(requests_mock):
    api = FakeJobApi([{"jobState": "running", "files": []}])
    live_jobs = ExportJobs()
    live_jobs.cancel_all()

    with pytest.raises(JobFailed):
        list(reader(api, live_jobs).lines("emailSend", "a", "b"))
    assert api.started == []
    assert ExportJobs().accepting(), "another read (another registry) starts jobs again"


def test_cancelling_a_read_cancels_each_job_it_still_runs(requests_mock):
    api = FakeJobApi([{"jobState": "running", "files": [file("f1.json")]}])
    requests_mock.get(f"{FILES_HOST}/f1.json", content=b'{"a":1}\n')
    live_jobs = ExportJobs()
    lines = reader(api, live_jobs).lines("emailSend", "a", "b")
    next(lines)

    live_jobs.cancel_all()

    assert api.cancelled == ["7"], "SIGTERM or a failed sync frees the organization's job slots"

"""export_mode jobs (beta): Iterable's asynchronous export jobs, end to end, with their faults.

Every test compares what the connector emitted with what the emulator serves: nothing lost,
nothing duplicated.
"""

import signal
import subprocess
import time

import pytest

from integration_tests.connector import CONNECTOR, catalog_for
from integration_tests.expected import as_multiset, assert_exactly_once, overflow_key
from integration_tests.project import END, START, emulated_project

STREAMS = ["email_send", "email_open", "users", "purchase"]
# Iterable's 1 job request per second, 60 times faster like the emulator's clock (project.py), with a margin.
JOB_REQUESTS_PER_SECOND = 30


@pytest.fixture
def emulated():
    """This module's `emulator` and `config`: a bigger project than conftest's, in small files, so
    that every job writes several and faults can strike between them."""
    with emulated_project(records_per_type=1500, users=200) as (emulator, config):
        emulator.faults.job_file_max_bytes = 64 * 1024
        yield emulator, config


def jobs_config(config, **overrides):
    return {**config, "export_mode": "jobs", "export_job_requests_per_second": JOB_REQUESTS_PER_SECOND, **overrides}


def read(emulator, config, connector, streams=STREAMS, mode="jobs", **overrides):
    catalog = catalog_for(connector.streams(config), streams)
    emulator.requests.clear()  # discover's sample of users is not part of the read
    mode_config = jobs_config(config, **overrides) if mode == "jobs" else {**config, "export_mode": mode, **overrides}
    output = connector.read(mode_config, catalog)
    assert output.returncode == 0, output.errors
    return output


def test_jobs_and_sync_modes_emit_exactly_the_same_records(emulator, config, connector):
    by_jobs = read(emulator, config, connector)
    assert emulator.requests_to("export/start"), "the jobs run went through export jobs"
    by_sync = read(emulator, config, connector, mode="sync")

    for stream in STREAMS:
        assert as_multiset(by_jobs.records[stream], overflow_key(stream)) == as_multiset(by_sync.records[stream], overflow_key(stream))
    assert_exactly_once(by_jobs.records, emulator, STREAMS, START, END)


def test_file_urls_never_receive_the_api_key(emulator, config, connector):
    read(emulator, config, connector, streams=["email_send"])

    downloads = emulator.requests.file_downloads()
    assert downloads and not any(download.api_key_sent for download in downloads)


def test_the_state_is_checkpointed_per_job_window(emulator, config, connector):
    # A size cap makes the connector split the 60 days into several job windows.
    emulator.faults.job_max_bytes = 200 * 1024

    output = read(emulator, config, connector, streams=["email_send"])

    (state,) = [s for s in output.final_states() if s["stream"]["stream_descriptor"]["name"] == "email_send"]
    assert state["stream"]["stream_state"]["createdAt"] == "2024-03-01 00:00:00"
    checkpoints = [s["stream"]["stream_state"]["createdAt"] for s in output.states if s["stream"]["stream_descriptor"]["name"] == "email_send"]
    distinct = sorted(set(checkpoints))
    assert len(distinct) > 1, f"a state after each completed job window, not only at the end: {checkpoints}"
    assert checkpoints == sorted(checkpoints), "the state only moves forward"


def test_a_job_that_finished_before_its_first_poll_is_read_from_every_page_of_its_listing(emulator, config, connector):
    # One job request per second: the first poll comes 5 s after the start, when the job has long
    # written all its files, more than one page of the listing holds.
    emulator.faults.job_file_max_bytes = 32 * 1024
    output = read(emulator, config, connector, streams=["email_send"], export_job_requests_per_second=1)

    (job,) = emulator.jobs.all()
    assert job.state == "completed" and len(job.files) > emulator.faults.job_files_per_response
    assert len(emulator.requests_to("export/{jobId}/files")) >= 2, "the listing was paged"
    assert_exactly_once(output.records, emulator, ["email_send"], START, END)


def test_a_failed_job_is_retried_without_duplicates(emulator, config, connector):
    # emailSend jobs write several files: the first two fail after writing two.
    emulator.faults.job_fail_types = {"emailSend"}
    emulator.faults.job_fail_times = 2
    emulator.faults.job_fail_after_files = 2

    output = read(emulator, config, connector)

    assert sum(1 for job in emulator.jobs.all() if job.state == "failed") == 2
    assert_exactly_once(output.records, emulator, STREAMS, START, END)


def test_a_job_that_goes_back_to_enqueued_is_followed_to_its_end(emulator, config, connector):
    emulator.faults.job_restart_times = 2
    emulator.faults.job_restart_after_files = 1
    # Streams whose jobs write several files, so that each restart happens mid-job.
    streams = ["email_send", "email_open", "purchase"]

    output = read(emulator, config, connector, streams=streams)

    assert sum(1 for job in emulator.jobs.all() if job.states.count("enqueued") > 1) == 2
    assert_exactly_once(output.records, emulator, streams, START, END)


def test_a_download_dropped_mid_body_is_fetched_again(emulator, config, connector):
    emulator.faults.drop_file_times = 3
    emulator.faults.drop_file_after_lines = 20

    output = read(emulator, config, connector)

    assert sum(1 for d in emulator.requests.file_downloads() if d.cut) == 3
    assert_exactly_once(output.records, emulator, STREAMS, START, END)


def test_an_expired_file_url_is_renewed(emulator, config, connector):
    emulator.faults.expire_file_urls_times = 3

    output = read(emulator, config, connector)

    assert sum(1 for d in emulator.requests.file_downloads() if d.status == 403) == 3
    assert_exactly_once(output.records, emulator, STREAMS, START, END)


def test_jobs_queued_behind_the_organizations_running_jobs_are_waited_for(emulator, config, connector):
    # Other syncs of the organization hold 2 of its 4 slots: our jobs queue.
    emulator.faults.job_max_running = 2

    output = read(emulator, config, connector)

    assert any(job.queued_s() > emulator.faults.job_queue_delay_s * emulator.faults.time_scale for job in emulator.jobs.all())
    assert_exactly_once(output.records, emulator, STREAMS, START, END)


def test_a_truncated_export_is_read_again_in_smaller_windows(emulator, config, connector):
    emulator.faults.job_max_bytes = 200 * 1024

    output = read(emulator, config, connector, streams=["email_send"])

    assert any(job.truncated for job in emulator.jobs.all())
    assert_exactly_once(output.records, emulator, ["email_send"], START, END)


def test_auto_mode_uses_jobs_for_history_and_the_sync_export_for_the_last_days(emulator, config, connector):
    output = read(emulator, config, connector, mode="auto", export_job_requests_per_second=JOB_REQUESTS_PER_SECOND)

    assert_exactly_once(output.records, emulator, STREAMS, START, END)
    assert emulator.requests_to("export/start") and emulator.requests_to("export/data.json")
    sync_windows = [r.param("startDateTime") for r in emulator.requests_to("export/data.json")]
    assert min(sync_windows) >= "2024-02-27", "only the last 3 days are read by the sync export"


def test_an_interrupted_sync_cancels_the_jobs_it_started(emulator, config, connector):
    # Slow jobs, so that they are still running when the sync is stopped.
    emulator.faults.job_seconds_per_file = 600
    catalog = catalog_for(connector.streams(config), ["email_send", "users"])
    process = subprocess.Popen([*CONNECTOR, *connector.read_args(jobs_config(config), catalog, None)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait for a poll of each job: the connector polls a job only once it has registered it for
    # cancellation (a job merely created may not have its id back at the connector yet).
    deadline = time.monotonic() + 60
    while len({r.path for r in emulator.requests_to("export/{jobId}/files")}) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)

    jobs = emulator.jobs.all()
    assert len(jobs) == 2
    assert all(job.cancelled for job in jobs), [job.states for job in jobs]

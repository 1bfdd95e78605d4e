"""check, HTTP error handling and secrets: what a user sees when something is wrong."""

import json
from pathlib import Path

import pytest
from airbyte_cdk.test.entrypoint_wrapper import _run_command
from airbyte_cdk.test.models import ExpectedOutcome

from source_iterable import SourceIterable
from unit_tests.harness import API, API_KEY, make_config, records_of, read_stream

BAD_KEY_BODY = {"msg": "Invalid API key", "code": "BadApiKey", "params": {"endpoint": "/api/channels"}}


def run_check(config, tmp_path: Path):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    return _run_command(
        SourceIterable(config=config), ["check", "--config", str(config_file)], expected_outcome=ExpectedOutcome.ALLOW_ANY
    )


def connection_status(output):
    (message,) = output.connection_status_messages
    return message.connectionStatus


def test_check_succeeds_with_one_request(config, requests_mock, tmp_path):
    requests_mock.get(f"{API}/channels", json={"channels": [{"id": 1}]})

    status = connection_status(run_check(config, tmp_path))

    assert status.status.name == "SUCCEEDED"
    assert requests_mock.call_count == 1


def test_check_with_a_rejected_key_says_what_to_do_without_the_key(config, requests_mock, tmp_path):
    requests_mock.get(f"{API}/channels", status_code=401, json=BAD_KEY_BODY)

    output = run_check(config, tmp_path)
    status = connection_status(output)

    assert status.status.name == "FAILED"
    assert "API key" in status.message and "region" in status.message
    assert API_KEY not in status.message
    assert API_KEY not in json.dumps([m.model_dump() if hasattr(m, "model_dump") else str(m) for m in output.logs])


def test_check_on_a_server_error_fails_clearly(config, requests_mock, tmp_path, sleeps):
    requests_mock.get(f"{API}/channels", status_code=503, text="Service Unavailable")

    status = connection_status(run_check(config, tmp_path))

    assert status.status.name == "FAILED"
    assert "server error" in status.message.lower() and "try again later" in status.message


@pytest.mark.parametrize("base_url", ["http://api.iterable.com/api", "ftp://127.0.0.1/api", "http://10.0.0.5/api", "not a url"])
def test_check_refuses_an_unsafe_base_url(base_url, tmp_path, requests_mock):
    status = connection_status(run_check(make_config(base_url=base_url), tmp_path))

    assert status.status.name == "FAILED"
    assert "base_url" in status.message and "https://" in status.message
    assert requests_mock.call_count == 0, "no request, and so no key, goes to a rejected host"


def test_a_rejected_base_url_is_not_echoed_beyond_its_scheme_and_host(tmp_path, requests_mock):
    base_url = f"http://proxy:hunter2@example.com/{API_KEY}/api?token={API_KEY}"
    status = connection_status(run_check(make_config(base_url=base_url), tmp_path))

    assert status.status.name == "FAILED"
    assert "scheme 'http', host 'example.com'" in status.message
    assert API_KEY not in status.message and "hunter2" not in status.message


def test_read_refuses_an_unsafe_base_url_as_a_config_error(requests_mock):
    output = read_stream("channels", make_config(base_url="http://example.com/api"), expect_failure=True)

    assert output.errors, "the read must fail"
    assert output.errors[-1].trace.error.failure_type.name == "config_error"
    assert requests_mock.call_count == 0


def test_read_with_a_rejected_key_is_a_config_error(config, requests_mock):
    requests_mock.get(f"{API}/lists", status_code=401, json=BAD_KEY_BODY)

    output = read_stream("lists", config, expect_failure=True)

    error = output.errors[0].trace.error
    assert error.failure_type.name == "config_error"
    assert "rejected the API key" in error.message and "region" in error.message
    assert requests_mock.call_count == 1, "a rejected key is not retried"


def test_forbidden_endpoint_names_the_endpoint(config, requests_mock):
    requests_mock.get(f"{API}/metadata", status_code=403, json={"code": "Forbidden", "msg": "Forbidden"})

    error = read_stream("metadata", config, expect_failure=True).errors[0].trace.error

    assert error.failure_type.name == "config_error"
    assert "/api/metadata" in error.message and "permission" in error.message.lower()


def test_429_waits_for_retry_after_when_iterable_sends_it(config, requests_mock, sleeps):
    requests_mock.get(
        f"{API}/channels",
        [
            {"status_code": 429, "headers": {"Retry-After": "7"}, "json": {"code": "RateLimitExceeded"}},
            {"json": {"channels": [{"id": 1}]}},
        ],
    )

    assert records_of(read_stream("channels", config)) == [{"id": 1}]
    assert sleeps == [7 + 1], "Retry-After wins over the exponential backoff (the CDK adds one second)"


def test_429_without_retry_after_backs_off_exponentially_from_20_seconds(config, requests_mock, sleeps):
    requests_mock.get(
        f"{API}/channels",
        [{"status_code": 429, "json": {"code": "RateLimitExceeded"}}] * 3 + [{"json": {"channels": [{"id": 1}]}}],
    )

    assert records_of(read_stream("channels", config)) == [{"id": 1}]
    assert sleeps == [21, 41, 81]


def test_429_is_retried_ten_times_with_a_400_second_cap_then_fails(config, requests_mock, sleeps):
    calls = requests_mock.get(f"{API}/channels", status_code=429, json={"code": "RateLimitExceeded"})

    output = read_stream("channels", config, expect_failure=True)

    assert calls.call_count == 11, "one request plus ten retries, never forever"
    assert sleeps == [21, 41, 81, 161, 321, 401, 401, 401, 401, 401]
    assert output.errors


def test_a_429_with_retry_after_never_uses_up_the_retries(config, requests_mock, sleeps):
    """Another connection or tool drawing on the project's limits slows a sync down; it must not fail it."""
    rate_limited = {"status_code": 429, "headers": {"Retry-After": "2"}, "json": {"code": "RateLimitExceeded"}}
    requests_mock.get(f"{API}/channels", [rate_limited] * 25 + [{"json": {"channels": [{"id": 1}]}}])

    assert records_of(read_stream("channels", config)) == [{"id": 1}]
    assert sleeps == [3] * 25, "each wait is what Iterable asked for (plus the CDK's second)"


def test_failures_between_rate_limits_still_fail_a_request_after_ten_retries(config, requests_mock, sleeps):
    rate_limited = {"status_code": 429, "headers": {"Retry-After": "2"}, "json": {"code": "RateLimitExceeded"}}
    server_error = {"status_code": 500, "json": {"code": "GenericError"}}
    calls = requests_mock.get(f"{API}/channels", [rate_limited, server_error] * 20)

    output = read_stream("channels", config, expect_failure=True)

    assert calls.call_count == 22, "ten retries after server errors, whatever rate limits came between"
    assert output.errors


def test_check_gives_up_on_a_rate_limit_at_once(config, requests_mock, tmp_path, sleeps):
    rate_limited = {"status_code": 429, "headers": {"Retry-After": "60"}, "json": {"code": "RateLimitExceeded"}}
    calls = requests_mock.get(f"{API}/channels", [rate_limited] * 5)

    status = connection_status(run_check(config, tmp_path))

    assert status.status.name == "FAILED" and calls.call_count == 2, "check answers in a minute, not after a sync's waits"


def test_the_key_never_appears_in_output_even_on_errors(config, requests_mock, sleeps):
    requests_mock.get(f"{API}/lists", status_code=500, json={"code": "GenericError", "msg": "boom"})

    output = read_stream("lists", config, expect_failure=True)

    text = "\n".join(str(message) for message in output._messages) if hasattr(output, "_messages") else ""
    dumped = text or "\n".join(str(m) for m in output.logs + output.errors)
    assert API_KEY not in dumped
    assert all(API_KEY not in h.url for h in requests_mock.request_history), "the key goes in a header, never a URL"

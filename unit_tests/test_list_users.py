"""list_users: one text request per list; a list that keeps failing is skipped, not fatal."""

from unit_tests.harness import API, records_of, read_stream


def test_each_line_is_a_member_and_blank_lines_are_not(config, requests_mock):
    requests_mock.get(f"{API}/lists", json={"lists": [{"id": 1}, {"id": 2}]})
    requests_mock.get(f"{API}/lists/getUsers?listId=1", text="alice@example.com\nbob@example.com\n\n")
    requests_mock.get(f"{API}/lists/getUsers?listId=2", text="carol@example.com\n")

    records = records_of(read_stream("list_users", config))

    assert sorted((r["listId"], r["email"]) for r in records) == [
        (1, "alice@example.com"),
        (1, "bob@example.com"),
        (2, "carol@example.com"),
    ]
    assert all(set(r) == {"listId", "email"} for r in records)


def test_a_list_answering_500_is_skipped_with_a_warning_naming_it(config, requests_mock, sleeps):
    requests_mock.get(f"{API}/lists", json={"lists": [{"id": 7}, {"id": 8}]})
    broken = requests_mock.get(
        f"{API}/lists/getUsers?listId=7",
        status_code=500,
        json={"code": "GenericError", "msg": "Something went wrong. Please try again later."},
    )
    requests_mock.get(f"{API}/lists/getUsers?listId=8", text="dave@example.com\n")

    output = read_stream("list_users", config)

    assert records_of(output) == [{"listId": 8, "email": "dave@example.com"}], "the healthy list is still read"
    assert broken.call_count == 3, "a failing list is retried before it is skipped"
    warnings = [m.log.message for m in output.logs if m.log.level.name == "WARN"]
    assert any("list 7" in w and "500" in w for w in warnings), warnings
    assert not output.errors


def test_a_list_that_recovers_is_read(config, requests_mock, sleeps):
    requests_mock.get(f"{API}/lists", json={"lists": [{"id": 7}]})
    requests_mock.get(
        f"{API}/lists/getUsers?listId=7",
        [{"status_code": 500, "json": {"code": "GenericError"}}, {"text": "erin@example.com\n"}],
    )

    assert records_of(read_stream("list_users", config)) == [{"listId": 7, "email": "erin@example.com"}]
    assert sleeps == [20.0 + 1], "one backoff of 20 s (the CDK adds a second)"

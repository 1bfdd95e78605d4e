"""Two Airbyte connections reading one Iterable project at once, as users scale out on Airbyte.

Iterable's limits are per project, but each connector process budgets as if it had them to
itself: two processes that each send up to 3 export requests per second to a project that
allows 4 draw 429s. Iterable's `Retry-After` answers must slow them down, never fail them, and
neither may lose or duplicate a record.
"""

from integration_tests.connector import Connector, catalog_for, finished
from integration_tests.expected import assert_exactly_once
from integration_tests.project import END, START, emulated_project

EXPORT_STREAMS = [
    "email_bounce", "email_click", "email_complaint", "email_open", "email_send", "email_send_skip",
    "email_subscribe", "email_unsubscribe", "push_send", "push_open", "in_app_send", "in_app_open",
    "sms_send", "sms_click", "web_push_send", "purchase", "custom_event", "journey_exit", "users",
]
# The connections split the streams, as the README advises, but not the budget: each process
# keeps the whole project's limit, the worst case.
FIRST, SECOND = EXPORT_STREAMS[::2] + ["list_users"], EXPORT_STREAMS[1::2] + ["lists"]


def test_two_connections_on_one_project_both_finish_exactly_despite_429s(tmp_path_factory):
    with emulated_project(records_per_type=400) as (emulator, config):
        streams = Connector(tmp_path_factory.mktemp("discover")).streams(config)
        emulator.requests.clear()
        reads = [
            Connector(tmp_path_factory.mktemp(name)).start_read(config, catalog_for(streams, selected))
            for name, selected in (("first", FIRST), ("second", SECOND))
        ]
        outputs = [finished(read) for read in reads]
        rate_limited = [r for r in emulator.requests_to("export/data.json") if r.status == 429]

        for output in outputs:
            assert output.returncode == 0 and not output.errors, output.errors
        assert rate_limited, "the two connections did exceed the project's shared limit"
        for output, selected in zip(outputs, (FIRST, SECOND)):
            exported = [stream for stream in selected if stream in EXPORT_STREAMS]
            assert_exactly_once(output.records, emulator, exported, START, END)

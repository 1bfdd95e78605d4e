"""The connector in-process, with HTTP mocked: a config, a read and a discover, what came out."""

from typing import Any, Dict, List, Mapping, Optional

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover, read
from airbyte_cdk.test.models import ExpectedOutcome
from airbyte_cdk.test.state_builder import StateBuilder

from source_iterable import SourceIterable

API_KEY = "unit-test-secret-key-0123456789"
API = "https://api.iterable.com/api"


def make_config(**overrides: Any) -> Dict[str, Any]:
    # A high export limit, so that tests do not wait for Iterable's real 4 requests per minute.
    config = {"api_key": API_KEY, "start_date": "2024-01-01T00:00:00Z", "export_requests_per_minute": 6000}
    config.update(overrides)
    return config


def read_stream(
    stream: str,
    config: Mapping[str, Any],
    sync_mode: SyncMode = SyncMode.full_refresh,
    state: Optional[Mapping[str, Any]] = None,
    expect_failure: bool = False,
) -> EntrypointOutput:
    catalog = CatalogBuilder().with_stream(stream, sync_mode).build()
    state_messages = StateBuilder().with_stream_state(stream, state).build() if state is not None else None
    source = SourceIterable(catalog=catalog, config=config, state=state_messages)
    return read(
        source,
        config,
        catalog,
        state=state_messages,
        expected_outcome=ExpectedOutcome.EXPECT_EXCEPTION if expect_failure else ExpectedOutcome.EXPECT_SUCCESS,
    )


def discover_streams(config: Mapping[str, Any]) -> EntrypointOutput:
    return discover(SourceIterable(config=config), config)


def records_of(output: EntrypointOutput) -> List[Dict[str, Any]]:
    return [message.record.data for message in output.records]


def final_state(output: EntrypointOutput) -> Dict[str, Any]:
    return output.most_recent_state.stream_state.__dict__


def cursor_of(state: Mapping[str, Any]) -> Dict[str, Any]:
    """A stream state without the late-event ledger beside its cursor (`late_events`)."""
    return {key: value for key, value in state.items() if key != "late_events"}

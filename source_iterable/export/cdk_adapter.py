"""The export engine's touch points with the CDK beyond its public component interfaces.

The engine reads windows the CDK does not know about, so it checkpoints them, announces the
stream as running and makes its requester stream by itself. Each touch point is here, once, and
`unit_tests/test_cdk_adapter.py` fails if a CDK upgrade changes what it relies on. Tested against
airbyte-cdk 7.39 (the range pinned in pyproject.toml).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Optional

from airbyte_cdk.models import AirbyteMessage, AirbyteStreamStatus, StreamDescriptor
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.types import Record, StreamSlice
from airbyte_cdk.utils.stream_status_utils import as_airbyte_message

API_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ONE_SECOND = timedelta(seconds=1)


def streaming(requester: Requester) -> Requester:
    """`requester`, made to send with `stream=True` so that a body is read as it arrives.

    A requester built outside a retriever gets the default (buffering) decoder, and the manifest
    cannot set `HttpRequester.stream_response`, the field the CDK reads when it sends.
    """
    requester.stream_response = True  # type: ignore[attr-defined]
    return requester


def keeps_state(cursor: Any) -> bool:
    """Whether the stream is read incrementally: its cursor is a `ConcurrentCursor` with a
    sequential state (a full refresh gets a `FinalStateCursor`, which keeps none)."""
    return isinstance(getattr(cursor, "_concurrent_state", None), dict)


def stored_state(cursor: Any, key: str) -> Optional[Any]:
    """What the stream's incoming state holds under `key` beside its cursor value.

    A `ConcurrentCursor` built from a sequential state (`{"createdAt": ...}`) keeps that state
    under `legacy` and writes it back, cursor value updated, into every STATE it emits: keys of
    its own ride along.
    """
    if not keeps_state(cursor):
        return None
    return cursor._concurrent_state.get("legacy", {}).get(key)


def checkpoint(
    cursor: Any, stream: str, cursor_field: str, low: datetime, high: datetime, extra: Optional[Mapping[str, Any]] = None
) -> None:
    """Moves the stream's state to `high` through its `ConcurrentCursor`, which emits the STATE,
    with the keys of `extra` beside the cursor value (see `stored_state`).

    The window is closed as a partition of its own whose newest cursor value is its end, so the
    state is the end of the last complete window, also when the window held no record; a window
    below the state's value leaves it where it is. The CDK has no public call for "this range is
    done"; `observe` and `close_partition` are the ones its partition reader makes, and
    `close_partition` reads nothing but `to_slice()` of a partition. Each value of `extra` must be
    a new object: a STATE message queued earlier holds the values it was emitted with.
    """
    if extra and keeps_state(cursor):
        cursor._concurrent_state.setdefault("legacy", {}).update(extra)
    window = StreamSlice(
        partition={},
        cursor_slice={
            "start_time": low.strftime(API_DATETIME_FORMAT),
            "end_time": (high - ONE_SECOND).strftime(API_DATETIME_FORMAT),
        },
    )
    end_marker = Record(data={cursor_field: high.strftime(API_DATETIME_FORMAT)}, stream_name=stream, associated_slice=window)
    cursor.observe(end_marker)
    cursor.close_partition(_CompletedWindow(window))


@dataclass
class _CompletedWindow:
    """A finished window in the shape `ConcurrentCursor.close_partition` reads."""

    window: StreamSlice

    def to_slice(self) -> StreamSlice:
        return self.window


def running(stream: str) -> AirbyteMessage:
    """The RUNNING status of `stream`: the CDK announces it on the first `Record` a stream
    yields, and the engine yields ready RECORD messages instead (no per-record cursor work)."""
    return as_airbyte_message(StreamDescriptor(name=stream), AirbyteStreamStatus.RUNNING)

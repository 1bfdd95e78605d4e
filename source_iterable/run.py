"""Console entry point `source-iterable`: spec | check | discover | read."""

import os
import signal
import sys
import traceback
from datetime import datetime, timezone
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    TraceType,
    Type,
)

from source_iterable.malloc_arenas import limit_malloc_arenas
from source_iterable.source import SourceIterable


def _print_startup_error(error: Exception) -> None:
    message = AirbyteMessage(
        type=Type.TRACE,
        trace=AirbyteTraceMessage(
            type=TraceType.ERROR,
            emitted_at=int(datetime.now(timezone.utc).timestamp() * 1000),
            error=AirbyteErrorTraceMessage(
                message=f"The Iterable source could not start: {error}",
                internal_message=str(error),
                stack_trace=traceback.format_exc(),
                failure_type=FailureType.config_error,
            ),
        ),
    )
    print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode())


def _create_source(args: List[str]) -> Optional[SourceIterable]:
    # The arguments are parsed before the source exists, because CDK 7 only honours the
    # config, catalog and state given to the constructor.
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    config_path = AirbyteEntrypoint.extract_config(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    try:
        return SourceIterable(
            catalog=SourceIterable.read_catalog(catalog_path) if catalog_path else None,
            config=SourceIterable.read_config(config_path) if config_path else None,
            state=SourceIterable.read_state(state_path) if state_path else None,
            config_path=config_path,
        )
    except Exception as error:
        _print_startup_error(error)
        return None


def run() -> None:
    limit_malloc_arenas()
    args = sys.argv[1:]
    source = _create_source(args)
    if source is None:
        sys.exit(1)

    def cancel_jobs_and_exit(signum: int, frame: object) -> None:
        # The platform stops a sync with SIGTERM: free the organization's export-job slots first.
        source.export_jobs.cancel_all()
        sys.stdout.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, cancel_jobs_and_exit)
    try:
        launch(source, args)
    finally:
        # A failed sync leaves the jobs of streams that were still running: cancel them.
        source.export_jobs.cancel_all()

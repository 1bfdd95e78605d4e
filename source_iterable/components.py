"""Small components for what the manifest cannot say on its own.

Each class is referenced from `manifest.yaml` by `class_name: source_iterable.components.<Name>`.
"""

import hashlib
import logging
import threading
from collections import Counter
from dataclasses import InitVar, dataclass, field
from typing import Any, List, Mapping, MutableMapping, Optional, Union
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.declarative.requesters.error_handlers.default_error_handler import (
    DefaultErrorHandler,
)
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.declarative.validators.validation_strategy import ValidationStrategy
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_iterable.export_records import iso_utc
from source_iterable.export_jobs import DeleteRequester
from source_iterable.export_retriever import AdaptiveExportWindows
from source_iterable.user_fields import UserFieldsSchema

logger = logging.getLogger("airbyte")

LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass
class SafeBaseUrl(ValidationStrategy):
    """Rejects an API base that would send the key in clear text to another machine.

    `https://` is accepted everywhere; `http://` only for 127.0.0.1/localhost (local emulators).

        validations:
          - type: DpathValidator
            field_path: [base_url]
            validation_strategy: {type: CustomValidationStrategy, class_name: source_iterable.components.SafeBaseUrl}
    """

    def validate(self, value: Any) -> None:
        parts = urlsplit(str(value))
        is_https = parts.scheme == "https" and bool(parts.hostname)
        is_local_http = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
        if not (is_https or is_local_http):
            raise AirbyteTracedException(
                # Only scheme and host: a path, query or user:password@ may carry a secret.
                message=(
                    f"Invalid base_url (scheme '{parts.scheme}', host '{parts.hostname or ''}'): it must start "
                    "with https://, or with http:// only for 127.0.0.1 or localhost. Remove base_url to use "
                    "the region's Iterable API."
                ),
                failure_type=FailureType.config_error,
            )


@dataclass
class CappedExponentialBackoff(BackoffStrategy):
    """Waits `initial_seconds` after the first failure, doubling each time up to `max_seconds`.

    The CDK's ExponentialBackoffStrategy has no cap; Iterable's limits reset within minutes, so
    waiting longer than that only delays the sync.

    Attributes:
        initial_seconds: wait after the first failed attempt.
        max_seconds: longest single wait.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config
    initial_seconds: float = 20
    max_seconds: float = 400

    def backoff_time(
        self,
        response_or_exception: Optional[Union[requests.Response, requests.RequestException]],
        attempt_count: int,
    ) -> Optional[float]:
        return float(min(self.max_seconds, self.initial_seconds * 2 ** max(attempt_count - 1, 0)))


@dataclass
class IterableErrorHandler(DefaultErrorHandler):
    """The DefaultErrorHandler with room for ten capped retries.

    The CDK gives up retrying after `max_time` seconds in total (10 minutes by default), which
    would cut ten waits of 20 s … 400 s short after the fifth.

    Attributes:
        max_time: seconds of retrying before a request is given up.
    """

    max_time: int = 3600


@dataclass
class SkipPersistentServerErrors(IterableErrorHandler):
    """Retries a 5xx a few times, then skips that one request (a list, a user) with a warning.

    Iterable answers some lists with a lasting 500 GenericError; one such list must not fail the
    stream. Called from several worker threads, so the attempt counts are guarded by a lock.

    Attributes:
        skip_after_attempts: how many 5xx answers a request gets before it is skipped.
        skipped_item: what a request reads, for the warning (e.g. "list").
        identifying_parameters: the query parameters that can name the item in the warning, the
            first one present wins (e.g. ["email", "userId"]).
    """

    skip_after_attempts: int = 3
    skipped_item: str = "request"
    identifying_parameters: List[str] = field(default_factory=list)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        resolution = super().interpret_response(response_or_exception)
        if not isinstance(response_or_exception, requests.Response):
            return resolution
        url = response_or_exception.request.url or ""
        if response_or_exception.status_code < 500:
            return resolution
        with self._lock:
            self._attempts[url] += 1
            attempts = self._attempts[url]
        if attempts < self.skip_after_attempts:
            return resolution
        item = self._describe(url)
        logger.warning(
            f"Skipping {item}: Iterable answered HTTP {response_or_exception.status_code} "
            f"{attempts} times in a row ({_error_code(response_or_exception)}). "
            "Its records are not in this sync; the rest of the stream is read."
        )
        return ErrorResolution(
            response_action=ResponseAction.IGNORE,
            failure_type=FailureType.transient_error,
            error_message=f"Skipped {item} after {attempts} server errors.",
        )

    def _describe(self, url: str) -> str:
        query = parse_qs(urlsplit(url).query)
        for name in self.identifying_parameters:
            if query.get(name):
                return f"{self.skipped_item} {query[name][0]}"
        return f"{self.skipped_item} {urlsplit(url).path}"


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json().get("code", "no error code"))
    except ValueError:
        return "no error code"


@dataclass
class TypedCsvCells(RecordTransformation):
    """Numeric CSV cells become numbers, empty cells are dropped, `text_columns` stay strings.

    Attributes:
        text_columns: columns declared as strings, kept as text even when they look numeric.
    """

    parameters: InitVar[Mapping[str, Any]]
    text_columns: List[str] = field(default_factory=list)

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        for name in list(record):
            value = record[name]
            if value in (None, "") or not name:
                del record[name]
            elif name not in self.text_columns:
                record[name] = _typed_cell(value)


@dataclass
class CampaignMetricsRecord(TypedCsvCells):
    """One CSV row of `campaigns/metrics` as `{"id": <int>, "data": {<metric>: value}}`.

    Cells are typed like `TypedCsvCells`. Metric names differ per medium and change over time,
    so they stay keys of `data` (the upstream connector's shape).
    """

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        super().transform(record, config, stream_state, stream_slice)
        cells = dict(record)
        record.clear()
        record["id"] = cells.get("id")
        record["data"] = cells


def _typed_cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return number if number == number and abs(number) != float("inf") else value


@dataclass
class RenameStateCursor(StateMigration):
    """Loads state written under another cursor field, e.g. upstream's `{"createdAt": …}`.

    Attributes:
        from_field: the cursor field of the old state.
        to_field: this stream's cursor field.
    """

    from_field: str
    to_field: str
    parameters: InitVar[Mapping[str, Any]] = field(default=None)

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return self.from_field in stream_state and self.to_field not in stream_state

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        migrated = {key: value for key, value in stream_state.items() if key != self.from_field}
        migrated[self.to_field] = stream_state[self.from_field]
        return migrated


@dataclass
class UserEventRecord(RecordTransformation):
    """Shapes one `export/userEvents` line: `createdAt` as ISO-8601 UTC and an `eventHash` key.

    Iterable's events carry no id; the key is a hash of the event's content with sorted keys,
    the same for the same event in every sync.
    """

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        record["eventHash"] = hashlib.blake2b(
            orjson.dumps(dict(record), option=orjson.OPT_SORT_KEYS), digest_size=16
        ).hexdigest()
        created_at = iso_utc(record.get("createdAt"))
        if created_at:
            record["createdAt"] = created_at


__all__: List[str] = [
    "AdaptiveExportWindows",
    "DeleteRequester",
    "UserFieldsSchema",
    "UserEventRecord",
    "SafeBaseUrl",
    "CappedExponentialBackoff",
    "IterableErrorHandler",
    "SkipPersistentServerErrors",
    "CampaignMetricsRecord",
    "TypedCsvCells",
    "RenameStateCursor",
]

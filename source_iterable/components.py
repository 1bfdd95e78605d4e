"""Small components for what the manifest cannot say on its own.

Each class is referenced from `manifest.yaml` by `class_name: source_iterable.components.<Name>`.
The export engine's retriever lives in `source_iterable.export`, the `users` schema loader in
`source_iterable.user_fields`; the manifest names them where they are defined.
"""

import logging
import threading
from collections import Counter
from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, MutableMapping, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.decoders.decoder import Decoder
from airbyte_cdk.sources.declarative.extractors.type_transformer import TypeTransformer
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
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

from source_iterable.export.lines import iter_body_lines
from source_iterable.export.records import event_key
from source_iterable.record_contract import ContractViolation, RecordContract, typed_cell

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
    """The DefaultErrorHandler with ten capped retries per request, and rate limits waited out.

    - `max_retries` failures (5xx, dropped connections, a 429 without `Retry-After`) fail a request.
    - A 429 that carries `Retry-After` says when Iterable's limit resets; it never counts against
      `max_retries`, so another tool or connection drawing on the same project's limits slows a
      sync down but cannot fail it. `rate_limit_retries` bounds them only against a server that
      never lets a request through.
    - The CDK gives up after `max_time` seconds in total (10 minutes by default), which would cut
      ten waits of 20 s … 400 s, or a long wait for a shared limit, short.
    - `ignored_http_codes` hands those answers to the caller instead of failing: YAML cannot add a
      filter to the shared `response_filters` list without writing the whole list again.

        error_handler: {$ref: "#/definitions/error_handler", ignored_http_codes: [404]}

    Failures are counted per request (method and URL) until it succeeds. Called from several
    worker threads: the counts are guarded by a lock.

    Attributes:
        max_time: seconds of retrying before a request is given up.
        ignored_http_codes: statuses the caller handles itself (e.g. 404: a deleted template).
        rate_limit_retries: the most 429s with `Retry-After` one request waits out.
    """

    max_time: int = 6 * 3600
    ignored_http_codes: List[int] = field(default_factory=list)
    rate_limit_retries: Union[int, str] = 1000

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        if isinstance(self.rate_limit_retries, str):
            self.rate_limit_retries = int(InterpolatedString.create(self.rate_limit_retries, parameters=parameters).eval(self.config))
        self._failure_retries = self.max_retries if self.max_retries is not None else 5
        # The CDK stops retrying a request after `max_retries`; the failure cap is kept here.
        self.max_retries = max(self._failure_retries, self.rate_limit_retries)
        self._failures: Counter[Tuple[str, str]] = Counter()
        self._failures_lock = threading.Lock()

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response) and response_or_exception.status_code in self.ignored_http_codes:
            return ErrorResolution(
                response_action=ResponseAction.IGNORE,
                failure_type=FailureType.system_error,
                error_message=f"HTTP {response_or_exception.status_code}, handled by the stream.",
            )
        resolution = super().interpret_response(response_or_exception)
        request = _request_key(response_or_exception)
        if resolution.response_action not in (ResponseAction.RETRY, ResponseAction.RATE_LIMITED):
            self._forget(request)
            return resolution
        if _announces_its_reset(response_or_exception) or self._count_failure(request) <= self._failure_retries:
            return resolution
        self._forget(request)
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=resolution.failure_type or FailureType.transient_error,
            error_message=resolution.error_message,
        )

    def _count_failure(self, request: Optional[Tuple[str, str]]) -> int:
        if request is None:
            return 1
        with self._failures_lock:
            self._failures[request] += 1
            return self._failures[request]

    def _forget(self, request: Optional[Tuple[str, str]]) -> None:
        if request is not None and request in self._failures:
            with self._failures_lock:
                self._failures.pop(request, None)


def _request_key(response_or_exception: Any) -> Optional[Tuple[str, str]]:
    request = getattr(response_or_exception, "request", None)
    url = getattr(request, "url", None)
    return (str(getattr(request, "method", "")), url) if url else None


def _announces_its_reset(response_or_exception: Any) -> bool:
    return (
        isinstance(response_or_exception, requests.Response)
        and response_or_exception.status_code == 429
        and "Retry-After" in response_or_exception.headers
    )


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
class CampaignMetricsRecord(RecordTransformation):
    """One CSV row of `campaigns/metrics` as `{"id": <int>, "data": {<metric>: value}}`.

    Metric names differ per medium and change over time, so they stay keys of `data` (the
    upstream connector's shape); numeric cells become numbers and empty cells are left out.
    """

    parameters: InitVar[Mapping[str, Any]]

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        cells = {name: typed_cell(value) for name, value in record.items() if name and value not in (None, "")}
        record.clear()
        record["id"] = cells.get("id")
        record["data"] = cells


@dataclass
class ConformToSchema(TypeTransformer):
    """The record contract (`record_contract.RecordContract`) as the CDK's schema normalization.

    The record selector calls it for every record with the stream's schema, after the
    transformations. Called from several worker threads: the compiled contract per schema is
    built once and only read afterwards.

        schema_normalization:
          type: CustomSchemaNormalization
          class_name: source_iterable.components.ConformToSchema
          overflow_field: additionalFields

    Attributes:
        overflow_field: the object column that receives undeclared fields and misfits.
        csv_rows: records are CSV rows (headers matched by spelling, cells typed by column).
    """

    parameters: InitVar[Mapping[str, Any]]
    overflow_field: Optional[str] = "additionalFields"
    csv_rows: bool = False

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._contracts: Dict[int, Tuple[Mapping[str, Any], RecordContract]] = {}

    def transform(self, record: Dict[str, Any], schema: Mapping[str, Any]) -> None:
        cached = self._contracts.get(id(schema))
        if cached is None or cached[0] is not schema:
            cached = self._contracts[id(schema)] = (schema, RecordContract(schema, self.overflow_field, self.csv_rows))
        try:
            conformed = cached[1].conform(record)
        except ContractViolation as violation:
            raise AirbyteTracedException(
                message=f"Iterable sent a record this stream cannot emit without breaking its schema: {violation}.",
                internal_message=str(violation),
                failure_type=FailureType.system_error,
            ) from None
        if conformed is not record:
            record.clear()
            record.update(conformed)


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
    """Gives one `export/userEvents` event its `eventHash` key, the same rule as the export
    streams' (`export_records.event_key`): Iterable's events carry no id of their own."""

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        record["eventHash"] = event_key(record)


@dataclass
class ListMembersDecoder(Decoder):
    """`lists/getUsers` answers text, one member per line: each non-empty line becomes
    `{"listId": <the list asked for>, "email": <the line>}`.

    Lists hold millions of members in one response, so the body is read as it arrives (64 KiB
    at a time) and memory stays flat; the list id comes from the request, not from a per-record
    interpolation (which would cost more than everything else a record takes).

        decoder: {type: CustomDecoder, class_name: source_iterable.components.ListMembersDecoder}
    """

    parameters: InitVar[Mapping[str, Any]]

    def is_stream_response(self) -> bool:
        return True

    def decode(self, response: requests.Response) -> Iterator[MutableMapping[str, Any]]:
        list_id = int(parse_qs(urlsplit(response.request.url or "").query)["listId"][0])
        for line in iter_body_lines(response):
            member = line.strip()
            if member:
                yield {"listId": list_id, "email": member.decode()}

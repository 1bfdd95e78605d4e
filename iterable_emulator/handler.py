"""HTTP handling: authentication, injected faults, Iterable's endpoints under ``/api/``, and the
pre-signed export file URLs under ``/files/``."""

import email.utils
import itertools
import math
import re
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from .faults import ERROR_BODIES, RATE_LIMITED_BODY, ExportCut, Failure
from .jobs import JOB_STATES
from .requestlog import RequestRecord
from .timefmt import parse_query_datetime

MAX_URI_LENGTH = 2048
CHUNK_BYTES = 64 * 1024
MALFORMED_LINES = ['{"createdAt": "2024-01-01 00:', "<html><body>502 Bad Gateway</body></html>"]
JSONL = "application/x-json-stream"
TEXT = "text/plain; charset=utf-8"
XML = "application/xml"
FILE_PATH = re.compile(r"^/files/(\d+)/([^/]+)$")
# ``jobState`` filter values, any case; Iterable's TS client also documents ``queued``.
JOB_STATE_FILTERS = {state: state for state in JOB_STATES} | {"queued": "enqueued"}
# Far enough to cover any data; an export job without ``endDateTime`` exports up to now.
NO_END_S = 2**33


class BadParams(Exception):
    """A request parameter Iterable would reject with 400 ``BadParams``."""


class BadJsonBody(Exception):
    """A request body Iterable would reject with 400 ``BadJsonBody``."""


def s3_error(code: str, message: str) -> bytes:
    """An S3-style XML error body, as pre-signed URLs answer."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>EMULATOR{time.monotonic_ns() % 10**12:012d}</RequestId></Error>").encode()


class ApiHandler(BaseHTTPRequestHandler):
    """Serves one connection of the emulator; ``self.server.emulator`` holds data, faults and log.

    HTTP/1.1 keeps connections alive; streamed bodies (export, userEvents, getUsers) use chunked
    transfer encoding so a body can be cut before its terminating chunk, which clients see as
    ``IncompleteRead``/``ProtocolError`` like a real dropped export.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        """Silence per-request stderr logging; the request log records everything."""

    def date_time_string(self, timestamp=None):
        """The ``Date`` header: the server's clock (``Faults.clock_offset_s`` included), which also
        decides what late indexing hides."""
        return email.utils.formatdate(self.server.emulator.faults.now_s() if timestamp is None else timestamp,
                                      usegmt=True)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        self.entry = RequestRecord(method, url.path, parse_qs(url.query, keep_blank_values=True), time.monotonic())
        self.entry.api_key_sent = any(name in self.headers for name in ("Api-Key", "Api_Key"))
        # Logged on arrival, so the entry is complete (but ``ended``) before the client sees the
        # body's last byte, and in-flight requests show up too.
        self.server.emulator.requests.append(self.entry)
        try:
            self.entry.body = self._read_body()
            self._dispatch(method, url.path)
        except BadParams as error:
            self._json(400, {"msg": str(error), "code": "BadParams"})
        except BadJsonBody as error:
            self._json(400, {"msg": str(error), "code": "BadJsonBody"})
        except (BrokenPipeError, ConnectionResetError):
            self.entry.cut, self.close_connection = True, True
        finally:
            self.entry.ended = time.monotonic()

    def _read_body(self):
        """The request body, read whole so the connection stays usable: parsed JSON, else the text."""
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw.decode(errors="replace")

    def _dispatch(self, method: str, path: str) -> None:
        emulator, faults = self.server.emulator, self.server.emulator.faults
        if len(self.path) > MAX_URI_LENGTH:
            return self._send(414, b"URI length exceeds the configured limit of 2048 characters", TEXT)
        if faults.delay_before_headers_s:
            time.sleep(faults.delay_before_headers_s)
        if path.startswith("/files/"):
            failure = faults.take_failure(path)
            return self._fail(failure) if failure else self._file_download(method, path)
        key = self.headers.get("Api-Key") or self.headers.get("Api_Key")
        if key != emulator.api_key:
            return self._json(401, {"msg": "Invalid API key", "code": "BadApiKey", "params": {"endpoint": path}})
        failure = faults.take_failure(path)
        if failure:
            return self._fail(failure)
        wait_s = faults.retry_after_s(path)
        if wait_s is not None:
            headers = {"Retry-After": str(max(1, math.ceil(wait_s)))} if faults.retry_after_header else {}
            return self._json(429, RATE_LIMITED_BODY, headers)
        route, args = self._route(method, path.removeprefix("/api/")) if path.startswith("/api/") else (None, ())
        if route is None:
            return self._json(404, {"msg": f"No endpoint {method} {path}", "code": "NotFound"})
        route(self, *args)

    def _route(self, method: str, path: str):
        """The endpoint method for ``method`` and ``path`` (without ``/api/``) and its path arguments."""
        if method == "GET" and path in self.ROUTES:
            return self.ROUTES[path], ()
        for route_method, pattern, route in self.OTHER_ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                return route, match.groups()
        return None, ()

    def _fail(self, failure: Failure) -> None:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
        body = failure.body
        if body is None:
            body = ERROR_BODIES.get(failure.status, {"code": "GenericError", "msg": f"HTTP {failure.status}"})
        if isinstance(body, str):
            self._send(failure.status, body.encode(), TEXT, headers)
        else:
            self._json(failure.status, body, headers)

    # Parameters.

    def _param(self, name: str, required: bool = False) -> str | None:
        value = self.entry.param(name)
        if required and not value:
            raise BadParams(f"Missing required parameter {name}")
        return value or None

    def _int_param(self, name: str, default: int | None = None) -> int | None:
        value = self._param(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise BadParams(f"Invalid {name} {value!r}, expected an integer") from None

    def _data_type(self, name) -> str:
        """The canonical name of a data type the project has; else what Iterable answers an unknown one."""
        data_type = self.server.emulator.data.available_type(name) if isinstance(name, str) else None
        if data_type is None:
            raise BadParams(f"Invalid dataTypeName {name}")
        return data_type

    def _ints_param(self, name: str) -> list[int]:
        """Every value of a repeated integer parameter (``?campaignId=1&campaignId=2``)."""
        try:
            return [int(value) for value in self.entry.query.get(name, [])]
        except ValueError:
            raise BadParams(f"Invalid {name} {self.entry.query[name]!r}, expected integers") from None

    def _date_param(self, name: str, required: bool = False) -> int | None:
        value = self._param(name, required)
        try:
            return None if value is None else parse_query_datetime(value)
        except ValueError as error:
            raise BadParams(f"Invalid {name}: {error}") from None

    # Responses.

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.entry.bytes += len(body)

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        self._send(status, orjson.dumps(payload), "application/json", headers)

    def _stream(self, content_type: str, blocks: Iterable[list[str]], cut: ExportCut | None = None,
                malformed_every: int | None = None) -> None:
        """Send ``blocks`` of lines as a chunked body, a chunk per block unless line faults apply."""
        self.entry.status = 200
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        delay = self.server.emulator.faults.delay_per_line_s
        if cut is None and not malformed_every and not delay:
            for block in blocks:
                self.entry.records += len(block)
                self._chunk(("\n".join(block) + "\n").encode())
        elif not self._stream_with_faults(blocks, cut, malformed_every, delay):
            return
        self.wfile.write(b"0\r\n\r\n")

    def _stream_with_faults(self, blocks, cut: ExportCut | None, malformed_every: int | None, delay: float) -> bool:
        """Stream line by line; returns ``False`` if the body was cut (connection to be closed)."""
        pending: list[str] = []
        size = 0
        for line in (line for block in blocks for line in block):
            if cut is not None and self.entry.records >= cut.after_records:
                # Declare a chunk holding the whole next line but send only half of it, then hang up.
                self._flush(pending)
                data = line.encode()
                self.wfile.write(b"%x\r\n" % (len(data) + 1) + data[: len(data) // 2])
                self.entry.bytes += len(data) // 2
                return self._cut()
            if delay:
                self._flush(pending)
                size = 0
                time.sleep(delay)
            pending.append(line + "\n")
            size += len(line) + 1
            self.entry.records += 1
            if malformed_every and self.entry.records % malformed_every == 0:
                pending.append(MALFORMED_LINES[self.entry.malformed % 2] + "\n")
                self.entry.malformed += 1
            if delay or size >= CHUNK_BYTES:
                self._flush(pending)
                size = 0
        self._flush(pending)
        if cut is not None and cut.even_if_shorter:
            return self._cut()
        return True

    def _cut(self) -> bool:
        self.entry.cut, self.close_connection = True, True
        return False

    def _flush(self, pending: list[str]) -> None:
        if pending:
            self._chunk("".join(pending).encode())
            pending.clear()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        self.entry.bytes += len(data)

    def _paged(self, key: str, total_key: str, items: list[dict]) -> None:
        """Iterable's paging: ``page`` from 1, ``pageSize`` default 20 capped at ``max_page_size``."""
        page, size = self._int_param("page", 1), self._int_param("pageSize", 20)
        if page < 1 or size < 1:
            raise BadParams("page and pageSize must be positive")
        size = min(size, self.server.emulator.config.max_page_size)
        sort = self._param("sort")
        if sort:
            field, descending = sort.lstrip("+-"), sort.startswith("-")
            present = sorted((i for i in items if field in i), key=lambda i: i[field], reverse=descending)
            items = present + [i for i in items if field not in i]
        payload = {key: items[(page - 1) * size: page * size], total_key: len(items)}
        if page * size < len(items):
            payload["nextPageUrl"] = self._page_url(page + 1, size)
        if page > 1:
            payload["previousPageUrl"] = self._page_url(page - 1, size)
        self._json(200, payload)

    def _page_url(self, page: int, size: int) -> str:
        query = dict(self.entry.query) | {"page": [str(page)], "pageSize": [str(size)]}
        return f"{self.server.emulator.base_url}{self.entry.path.removeprefix('/api')}?{urlencode(query, doseq=True)}"

    # Endpoints.

    def _lists(self):
        self._json(200, {"lists": self.server.emulator.data.lists()})

    def _list_users(self):
        emulator, list_id = self.server.emulator, self._int_param("listId")
        if list_id is None:
            raise BadParams("Missing required parameter listId")
        if list_id in emulator.faults.broken_lists:
            return self._json(500, ERROR_BODIES[500], emulator.faults.broken_headers())
        members = emulator.data.iter_list_members(list_id)
        if members is None:
            return self._json(404, {"code": "NotFound", "msg": "List not found"})
        # Real bodies end with (and may contain) blank lines; connectors must skip them. Members
        # are generated as they are sent: a list of millions costs no memory.
        self._stream(TEXT, _blocks(itertools.chain(members, [""])))

    def _campaigns(self):
        campaigns = self.server.emulator.data.campaigns()
        states = self.entry.query.get("campaignState")
        if states:
            campaigns = [c for c in campaigns if c["campaignState"] in states]
        self._paged("campaigns", "totalCampaignsCount", campaigns)

    def _campaign_metrics(self):
        ids = []
        for value in self.entry.query.get("campaignId", []):
            try:
                ids.append(int(value))
            except ValueError:
                raise BadParams(f"Invalid campaignId {value!r}") from None
        if not ids:
            raise BadParams("Missing required parameter campaignId")
        emulator = self.server.emulator
        self._send(200, emulator.data.campaign_metrics_csv(ids, emulator.faults.now_s()).encode(), TEXT)

    def _channels(self):
        self._json(200, {"channels": self.server.emulator.data.channels()})

    def _message_types(self):
        self._json(200, {"messageTypes": self.server.emulator.data.message_types()})

    def _metadata(self):
        self._json(200, {"results": [{"name": name} for name in self.server.emulator.data.metadata_tables()]})

    def _templates(self):
        start, end = self._date_param("startDateTime"), self._date_param("endDateTime")
        templates = self.server.emulator.data.templates(
            self._param("templateType"), self._param("messageMedium"), start, end)
        self._paged("templates", "totalTemplatesCount", templates)

    def _export(self):
        emulator = self.server.emulator
        data_type = self._data_type(self._param("dataTypeName", required=True))
        if not (self._param("startDateTime") and self._param("endDateTime")):
            raise BadParams("startDateTime and endDateTime are required (the emulator does not support range)")
        start, end = self._date_param("startDateTime"), self._date_param("endDateTime")
        faults = emulator.faults
        blocks = emulator.data.export_blocks(data_type, start, end, faults.now_ms())
        self._stream(JSONL, blocks, faults.take_export_cut(data_type), faults.malformed_line_every)

    def _user_events(self):
        emulator = self.server.emulator
        identifier = self._param("email") or self._param("userId")
        if identifier is None:
            raise BadParams("Either email or userId is required")
        if identifier in emulator.faults.broken_users:
            return self._json(500, ERROR_BODIES[500], emulator.faults.broken_headers())
        include_custom = (self._param("includeCustomEvents") or "").lower() == "true"
        events = emulator.data.user_events(identifier, include_custom)
        self._stream(JSONL, _blocks([orjson.dumps(event).decode() for event in events]))

    def _user_fields(self):
        self._json(200, {"fields": self.server.emulator.data.user_fields()})

    def _experiment_metrics(self):
        """Experiments of the repeated ``campaignId`` and ``experimentId`` values (all if none); the
        dates are accepted and ignored, as by ``campaigns/metrics``."""
        campaign_ids, experiment_ids = self._ints_param("campaignId"), self._ints_param("experimentId")
        self._send(200, self.server.emulator.data.experiment_metrics_csv(campaign_ids, experiment_ids).encode(), TEXT)

    def _email_template(self):
        """``templates/email/get``; the ``locale`` parameter is accepted and ignored (one locale each)."""
        template_id = self._int_param("templateId")
        if template_id is None:
            raise BadParams("Missing required parameter templateId")
        template = self.server.emulator.data.email_template(template_id)
        if template is None:
            return self._json(404, {"code": "NotFound", "msg": f"No email template with id {template_id}"})
        self._json(200, template)

    # Asynchronous export jobs (``jobs.py``).

    def _export_start(self):
        """``POST export/start``. Only JSONL output: ``text/csv`` is valid for Iterable but the
        emulator answers 400 rather than serve CSV it does not model; ``campaignId`` likewise.
        ``onlyFields``, ``omitFields`` and ``delimiter`` are accepted and ignored."""
        body = self.entry.body
        if not isinstance(body, dict):
            raise BadJsonBody("Request body must be a JSON object")
        if not body.get("dataTypeName"):
            raise BadParams("Missing required parameter dataTypeName")
        data_type = self._data_type(body["dataTypeName"])
        output_format = body.get("outputFormat")
        if output_format != JSONL:
            detail = " (the emulator serves only application/x-json-stream)" if output_format == "text/csv" else ""
            raise BadParams(f"Invalid outputFormat {output_format}{detail}")
        if body.get("campaignId") is not None:
            raise BadParams("campaignId is not supported by the emulator")
        start_s, end_s = self._body_date(body, "startDateTime", 0), self._body_date(body, "endDateTime", NO_END_S)
        job = self.server.emulator.jobs.start(data_type, start_s, end_s)
        self._json(200, {"jobId": job.id})

    def _body_date(self, body: dict, name: str, default: int) -> int:
        value = body.get(name)
        if value is None:
            return default
        try:
            return parse_query_datetime(str(value))
        except ValueError as error:
            raise BadParams(f"Invalid {name}: {error}") from None

    def _job_files(self, job_id: str):
        emulator = self.server.emulator
        page = emulator.jobs.files_page(int(job_id), self._param("startAfter"), emulator.faults.job_files_per_response)
        if page is None:
            return self._json(404, {"msg": f"Export job {job_id} not found", "code": "NotFound"})
        origin = emulator.base_url.removesuffix("/api")
        page["files"] = [
            {"file": f.name, "url": f"{origin}/files/{page['jobId']}/{f.name}?"
                                   f"{emulator.jobs.sign(page['jobId'], f.name, emulator.faults.take_expired_url())}"}
            for f in page["files"]
        ]
        self._json(200, page)

    def _jobs(self):
        state = self._param("jobState")
        if state is not None and state.lower() not in JOB_STATE_FILTERS:
            raise BadParams(f"Invalid jobState {state}")
        self._json(200, {"jobs": self.server.emulator.jobs.listing(state and JOB_STATE_FILTERS[state.lower()])})

    def _cancel_job(self, job_id: str):
        previous = self.server.emulator.jobs.cancel(int(job_id))
        if previous is None:
            return self._json(404, {"msg": f"Export job {job_id} not found", "code": "NotFound"})
        if previous not in ("enqueued", "running", "cancelling"):
            raise BadParams(f"Export job {job_id} is {previous} and cannot be cancelled")
        self._json(200, {"msg": f"Cancelling export job {job_id}", "code": "Success"})

    def _file_download(self, method: str, path: str):
        """A pre-signed file URL, as S3 serves one: no ``Api-Key`` needed, XML errors, a fixed
        ``Content-Length`` (so a cut body is an incomplete read for the client)."""
        emulator, faults = self.server.emulator, self.server.emulator.faults
        match = FILE_PATH.match(path)
        if method != "GET" or match is None:
            return self._send(403, s3_error("AccessDenied", "Access Denied"), XML)
        if faults.reject_api_key_on_files and self.entry.api_key_sent:
            return self._send(400, s3_error("InvalidArgument", "Unexpected Api-Key header"), XML)
        job_id, name = int(match.group(1)), match.group(2)
        verdict = emulator.jobs.check_url(job_id, name, self._param("Expires"), self._param("Signature"))
        if verdict == "forged":
            message = "The request signature we calculated does not match the signature you provided."
            return self._send(403, s3_error("SignatureDoesNotMatch", message), XML)
        if verdict == "expired":
            return self._send(403, s3_error("AccessDenied", "Request has expired"), XML)
        found = emulator.jobs.file(job_id, name)
        if found is None:
            return self._send(404, s3_error("NoSuchKey", "The specified key does not exist."), XML)
        job, file = found
        cut_after = faults.take_file_cut()
        self.entry.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "binary/octet-stream")
        self.send_header("Content-Length", str(file.bytes))
        self.end_headers()
        if cut_after is None:
            for chunk in emulator.jobs.file_chunks(job, file):  # generated as sent: memory stays flat
                self.wfile.write(chunk)
                self.entry.bytes += len(chunk)
            self.entry.records = file.records
            return None
        body = emulator.jobs.file_body(job, file)
        sent = _cut_offset(body, cut_after)
        self.wfile.write(body[:sent])
        self.entry.bytes += sent
        self.entry.records = body.count(b"\n", 0, sent)
        return self._cut()

    ROUTES = {
        "lists": _lists, "lists/getUsers": _list_users, "campaigns": _campaigns,
        "campaigns/metrics": _campaign_metrics, "channels": _channels, "messageTypes": _message_types,
        "metadata": _metadata, "templates": _templates, "export/data.json": _export,
        "export/userEvents": _user_events, "users/getFields": _user_fields,
        "experiments/metrics": _experiment_metrics, "templates/email/get": _email_template, "export/jobs": _jobs,
    }
    OTHER_ROUTES = [
        ("POST", re.compile(r"^export/start$"), _export_start),
        ("GET", re.compile(r"^export/(\d+)/files$"), _job_files),
        ("DELETE", re.compile(r"^export/(\d+)$"), _cancel_job),
    ]


def _cut_offset(body: bytes, after_lines: int) -> int:
    """Where to cut a file body: after ``after_lines`` whole lines and half of the next one, or one
    byte before its end if it is shorter."""
    offset = 0
    for _ in range(after_lines):
        newline = body.find(b"\n", offset)
        if newline < 0 or newline + 1 >= len(body):
            return len(body) - 1
        offset = newline + 1
    line_end = body.find(b"\n", offset)
    return offset + (line_end - offset) // 2 if line_end > offset else len(body) - 1


def _blocks(lines: Iterable[str], size: int = 256) -> Iterator[list[str]]:
    """``lines`` in lists of ``size``, read as they are needed."""
    lines = iter(lines)
    while block := list(itertools.islice(lines, size)):
        yield block

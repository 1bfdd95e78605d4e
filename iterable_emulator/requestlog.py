"""The log of requests the emulator served, for tests to assert on pacing, retries and windows."""

import re
import threading
from dataclasses import dataclass, field

_IDS = [(re.compile(r"^/api/export/\d+(?=/files$|$)"), "/api/export/{jobId}"),
        (re.compile(r"^/files/\d+/[^/]+$"), "/files/{jobId}/{file}")]


@dataclass
class RequestRecord:
    """One served request.

    Attributes:
        method, path: e.g. ``GET`` and ``/api/export/data.json`` (no query string); file downloads
            (pre-signed URLs of export jobs) have paths ``/files/{jobId}/{file}``, outside ``/api``.
        query: parsed query parameters, each a list of values.
        body: the parsed JSON body of a POST (the raw text if it is not JSON), else ``None``.
        api_key_sent: the request carried an ``Api-Key`` or ``Api_Key`` header (never its value).
        status: HTTP status sent (0 if the client went away before headers were sent).
        started, ended: ``time.monotonic()`` at arrival and after the last byte or the cut (0.0
            while the request is in flight).
        cut: whether the body was cut mid-way on purpose, or the client went away.
        records: records (lines) sent in a streamed body; ``malformed``: non-JSON lines inserted.
        bytes: body bytes sent (chunk framing excluded).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    started: float
    status: int = 0
    ended: float = 0.0
    cut: bool = False
    records: int = 0
    malformed: int = 0
    body: object = None
    api_key_sent: bool = False
    bytes: int = 0

    @property
    def endpoint(self) -> str:
        """The path with ids replaced, e.g. ``/api/export/{jobId}/files`` or ``/files/{jobId}/{file}``."""
        for pattern, template in _IDS:
            if pattern.match(self.path):
                return pattern.sub(template, self.path)
        return self.path

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class RequestLog:
    """Thread-safe, append-only list of ``RequestRecord``s."""

    _records: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def all(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def to(self, path: str, method: str | None = None) -> list[RequestRecord]:
        """Requests to ``path``, given as ``export/data.json`` or ``/api/export/data.json``, or to an
        ``endpoint`` such as ``export/{jobId}/files`` or ``/files/{jobId}/{file}``; of ``method`` if given."""
        wanted = path if path.startswith("/") else f"/api/{path}"
        return [r for r in self.all()
                if (r.path == wanted or r.endpoint == wanted) and method in (None, r.method)]

    def file_downloads(self) -> list[RequestRecord]:
        """Requests to export file URLs (valid or not)."""
        return [r for r in self.all() if r.path.startswith("/files/")]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

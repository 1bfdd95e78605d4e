"""The emulator's lifecycle: a threaded HTTP server on localhost serving one emulated project."""

import threading
from http.server import ThreadingHTTPServer

from .config import EmulatorConfig
from .data import EmulatorData
from .faults import Faults
from .handler import ApiHandler
from .jobs import ExportJobs
from .requestlog import RequestLog, RequestRecord


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Slow or stalled streams must not keep ``stop()`` waiting.
    block_on_close = False
    # Connectors open several connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 64

    def __init__(self, address, emulator: "IterableEmulator"):
        self.emulator = emulator
        super().__init__(address, ApiHandler)


class IterableEmulator:
    """A local Iterable REST API, deterministic from its config, with switchable faults.

    Usage::

        with IterableEmulator(EmulatorConfig(seed=1, records_per_type=500)) as emulator:
            requests.get(f"{emulator.base_url}/lists", headers={"Api-Key": emulator.api_key})
            emulator.faults.rate_limits_enabled = True
            expected = list(emulator.data.export_records("emailSend", start, end))

    Attributes:
        config, data: what the project contains (``data`` answers what a test should expect).
        faults: fault switches, mutable while the server runs (export job knobs included).
        jobs: the asynchronous export jobs (``ExportJobs``): their states over time, files and records.
        requests: log of served requests, file downloads included.
        api_key: the key every request must carry in ``Api-Key`` (or ``Api_Key``).
        base_url: ``http://127.0.0.1:PORT/api``, set once started.
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.config = config or EmulatorConfig()
        self.data = EmulatorData(self.config)
        self.faults = Faults()
        self.jobs = ExportJobs(self.data, self.faults)
        self.requests = RequestLog()
        self.api_key = self.config.api_key
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("The emulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def start(self) -> "IterableEmulator":
        if self._server is None:
            self._server = _Server(self._address, self)
            self._thread = threading.Thread(target=self._server.serve_forever, name="iterable-emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def requests_to(self, path: str, method: str | None = None) -> list[RequestRecord]:
        """Served requests to ``path`` (``export/data.json`` or ``/api/export/data.json``) or to an
        endpoint with ids (``export/{jobId}/files``, ``/files/{jobId}/{file}``), oldest first."""
        return self.requests.to(path, method)

    def __enter__(self) -> "IterableEmulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

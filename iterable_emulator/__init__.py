"""A local emulator of the Iterable REST API: try source-iterable without an Iterable account.

``IterableEmulator`` serves a deterministic project (``EmulatorConfig``) over HTTP with switchable
``Faults``; its ``data`` (``EmulatorData``) tells a test exactly what each endpoint serves, and its
``jobs`` (``ExportJobs``) what each asynchronous export job did. ``emulator_and_connector_config``
runs one with Iterable's rate limits (time-scaled) and gives the connector config that reads it.
The main job (``iterable-to-duckdb``), the connector's integration tests and benchmarks use it.
From a shell: ``python -m iterable_emulator --help``.
"""

from .config import EmulatorConfig
from .connector_config import emulator_and_connector_config
from .data import EmulatorData
from .faults import Faults, RateLimit
from .indexing import HEAVY_TAIL, NO_DELAY, IndexingDelays
from .jobs import ExportJob, ExportJobs, ManualClock
from .requestlog import RequestRecord
from .server import IterableEmulator

__all__ = ["HEAVY_TAIL", "NO_DELAY", "EmulatorConfig", "EmulatorData", "ExportJob", "ExportJobs", "Faults",
           "IndexingDelays", "IterableEmulator", "ManualClock", "RateLimit", "RequestRecord",
           "emulator_and_connector_config"]

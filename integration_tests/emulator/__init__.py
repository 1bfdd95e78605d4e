"""A local emulator of the Iterable REST API for the connector's integration tests and benchmarks.

``IterableEmulator`` serves a deterministic project (``EmulatorConfig``) over HTTP with switchable
``Faults``; its ``data`` (``EmulatorData``) tells a test exactly what each endpoint serves, and its
``jobs`` (``ExportJobs``) what each asynchronous export job did.
"""

from .config import EmulatorConfig
from .data import EmulatorData
from .faults import Faults, RateLimit
from .jobs import ExportJob, ExportJobs, ManualClock
from .requestlog import RequestRecord
from .server import IterableEmulator

__all__ = ["EmulatorConfig", "EmulatorData", "ExportJob", "ExportJobs", "Faults", "IterableEmulator", "ManualClock",
           "RateLimit", "RequestRecord"]

"""Fixtures: the emulator on 127.0.0.1, the connector CLI, and what each stream must deliver."""

from typing import Any, Dict, Iterator

import pytest

from integration_tests.connector import Connector
from integration_tests.emulator import EmulatorConfig, IterableEmulator

START = "2024-01-01T00:00:00Z"
END = "2024-03-01T00:00:00Z"
# Iterable's limits, 60x faster: export 4 per second. The connector asks for 3 per second.
TIME_SCALE = 1 / 60
EXPORT_REQUESTS_PER_MINUTE = 180


def connector_config(emulator: IterableEmulator, **overrides: Any) -> Dict[str, Any]:
    config = {
        "api_key": emulator.api_key,
        "start_date": START,
        "end_date": END,
        "base_url": emulator.base_url,
        "export_requests_per_minute": EXPORT_REQUESTS_PER_MINUTE,
    }
    config.update(overrides)
    return config


def start_emulator(**config: Any) -> IterableEmulator:
    emulator = IterableEmulator(EmulatorConfig(**{"start": START, "end": END, **config}))
    emulator.start()
    emulator.faults.rate_limits_enabled = True
    emulator.faults.time_scale = TIME_SCALE
    return emulator


@pytest.fixture
def emulator() -> Iterator[IterableEmulator]:
    emulator = start_emulator()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[IterableEmulator]:
    """One emulator for the read-only tests of a module; tests must not switch faults on."""
    emulator = start_emulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def connector(tmp_path) -> Connector:
    return Connector(tmp_path)

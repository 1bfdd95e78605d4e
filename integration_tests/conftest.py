"""Fixtures: the emulated project (`project.py`) with the connector config that reads it, and the connector CLI."""

from typing import Any, Dict, Iterator, Tuple

import pytest

from integration_tests.connector import Connector
from integration_tests.project import emulated_project
from iterable_emulator import IterableEmulator

Emulated = Tuple[IterableEmulator, Dict[str, Any]]


@pytest.fixture
def emulated() -> Iterator[Emulated]:
    """A fresh emulator and its connector config, for `emulator` and `config`."""
    with emulated_project() as emulated:
        yield emulated


@pytest.fixture
def emulator(emulated: Emulated) -> IterableEmulator:
    return emulated[0]


@pytest.fixture
def config(emulated: Emulated) -> Dict[str, Any]:
    """The connector config that reads `emulator`: `{**config, ...}` changes a key."""
    return emulated[1]


@pytest.fixture(scope="module")
def shared_emulated() -> Iterator[Emulated]:
    """One emulator for the read-only tests of a module; tests must not switch faults on."""
    with emulated_project() as emulated:
        yield emulated


@pytest.fixture(scope="module")
def shared_emulator(shared_emulated: Emulated) -> IterableEmulator:
    return shared_emulated[0]


@pytest.fixture(scope="module")
def shared_config(shared_emulated: Emulated) -> Dict[str, Any]:
    return shared_emulated[1]


@pytest.fixture
def connector(tmp_path) -> Connector:
    return Connector(tmp_path)

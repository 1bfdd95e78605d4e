"""Shared fixtures: a project without custom user fields, a config, and sleeping replaced by a recorder."""

from types import SimpleNamespace
from typing import Any, Dict, List

import airbyte_cdk.sources.streams.http.rate_limiting as rate_limiting
import pytest

from unit_tests.harness import API, make_config


@pytest.fixture(autouse=True)
def no_custom_user_fields(requests_mock) -> None:
    """Every test's project has no custom user fields unless the test registers some."""
    requests_mock.get(f"{API}/users/getFields", json={"fields": {}})


@pytest.fixture
def config() -> Dict[str, Any]:
    return make_config()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """Records every backoff wait instead of sleeping through it."""
    waits: List[float] = []
    monkeypatch.setattr(rate_limiting, "time", SimpleNamespace(sleep=waits.append))
    return waits

"""An emulator started for the connector, together with the connector config that reads it."""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from .config import EmulatorConfig
from .server import IterableEmulator

# Iterable's rate limits 60 times faster: a sync of every stream takes about a minute.
DEFAULT_TIME_SCALE = 1 / 60
# The connector is given this share of the emulator's scaled limits, a margin for clock jitter:
# at the default time scale, 180 export requests per minute where the emulator allows 240.
BUDGET_SHARE = 0.75
CONFIG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@contextmanager
def emulator_and_connector_config(
    project: EmulatorConfig | None = None,
    *,
    time_scale: float = DEFAULT_TIME_SCALE,
    bounded: bool = False,
    **overrides: Any,
) -> Iterator[tuple[IterableEmulator, dict[str, Any]]]:
    """Runs an emulator of ``project`` and yields it with a source-iterable config that reads it.

    The emulator enforces Iterable's rate limits with every window multiplied by ``time_scale``
    (1/60: 60 times faster than Iterable). The config holds the emulator's ``api_key`` and
    ``base_url``, ``start_date``: the start of the project's data, and the
    ``export_requests_per_minute`` that matches the scaled export limit (``BUDGET_SHARE`` of it,
    e.g. 180 at 1/60), and ``campaign_metrics_requests_per_minute`` likewise (450 at 1/60). With ``bounded`` it also holds ``end_date``: the end of the project's data,
    so that a read is the same whenever it runs; without it the connector reads up to now, as in
    production (a second sync then reads only what is new). ``overrides`` are further config keys
    (``export_mode="jobs"``, ``api_key="wrong"``, ...) and win over the ones above.

    Usage::

        with emulator_and_connector_config(EmulatorConfig(records_per_type=500), bounded=True) as (emulator, config):
            emulator.faults.drop_export_times = 2
            ...  # run the connector with `config`, compare with `emulator.data`

    The emulator stops when the block ends.
    """
    emulator = IterableEmulator(project)
    emulator.faults.rate_limits_enabled = True
    emulator.faults.time_scale = time_scale
    config: dict[str, Any] = {
        "api_key": emulator.api_key,
        "start_date": _config_date(emulator.config.start_ms),
        "export_requests_per_minute": _requests_per_minute(emulator, "export", time_scale),
        "campaign_metrics_requests_per_minute": _requests_per_minute(emulator, "campaignMetrics", time_scale),
    }
    if bounded:
        config["end_date"] = _config_date(emulator.config.end_ms)
    with emulator:
        config["base_url"] = emulator.base_url
        config.update(overrides)
        yield emulator, config


def _config_date(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime(CONFIG_DATE_FORMAT)


def _requests_per_minute(emulator: IterableEmulator, family: str, time_scale: float) -> int:
    limit = emulator.faults.rate_limits[family]
    allowed_per_minute = limit.requests * 60 / (limit.window_s * time_scale)
    # The small epsilon keeps float noise (1/60 is not exact) from costing a whole request.
    return max(1, math.floor(allowed_per_minute * BUDGET_SHARE + 1e-9))

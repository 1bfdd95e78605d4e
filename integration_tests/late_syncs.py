"""Consecutive incremental syncs over simulated hours against an emulator that indexes late.

The emulator's clock (its `Date` header and what its export shows) is moved to each sync's
simulated time, and the sync's `end_date` is that time less the lookback: the connector reads
exactly what it would read at that time in production, by the same wall-clock-free rules.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

from integration_tests.connector import Connector, Output
from iterable_emulator import IterableEmulator

CONFIG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
LOOKBACK = timedelta(minutes=5)


@dataclass
class Syncs:
    """What a run of syncs emitted: copies per record identity, by stream, and each sync's output."""

    times: List[datetime] = field(default_factory=list)
    outputs: List[Output] = field(default_factory=list)
    copies: Dict[str, Counter] = field(default_factory=dict)

    @property
    def last(self) -> datetime:
        return self.times[-1]

    def logged(self, fragment: str) -> List[str]:
        return [log["message"] for output in self.outputs for log in output.logs if fragment in log["message"]]


def at(emulator: IterableEmulator, moment: datetime) -> None:
    """Sets the emulator's clock to `moment`, from now on."""
    emulator.faults.clock_offset_s = moment.timestamp() - time.time()


def end_date(moment: datetime) -> str:
    return (moment - LOOKBACK).strftime(CONFIG_DATE_FORMAT)


def hourly_syncs(
    emulator: IterableEmulator,
    config: Mapping[str, Any],
    first: datetime,
    count: int,
    sync: Callable[[Mapping[str, Any], Optional[list]], Output],
    identities: Mapping[str, Callable[[Dict[str, Any]], str]],
) -> Syncs:
    """`count` syncs an hour apart from `first`, each from the state the previous one left;
    `sync(config, state)` runs one, `identities` names each stream's records."""
    syncs = Syncs(copies={stream: Counter() for stream in identities})
    state = None
    for moment in (first + timedelta(hours=k) for k in range(count)):
        at(emulator, moment)
        output = sync({**config, "end_date": end_date(moment)}, state)
        assert output.returncode == 0, output.errors
        for stream, identity in identities.items():
            syncs.copies[stream].update(identity(record) for record in output.records[stream])
        syncs.times.append(moment)
        syncs.outputs.append(output)
        state = output.final_states()
    return syncs


def cli_sync(connector: Connector, catalog: Mapping[str, Any]) -> Callable[[Mapping[str, Any], Optional[list]], Output]:
    return lambda config, state: connector.read(config, catalog, state=state)


def records(outputs: Iterator[Output], stream: str) -> List[Dict[str, Any]]:
    return [record for output in outputs for record in output.records[stream]]

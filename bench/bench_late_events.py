"""Late events: what hourly incremental syncs catch of records Iterable indexes late, and the cost.

    python bench/bench_late_events.py                          # 200,000 email sends a day
    python bench/bench_late_events.py --events-per-day 1000000 --syncs 48

The emulator indexes 90% of records within 5 minutes, 8% within 2 hours and 2% within a day (its
default). The connector runs with its default settings (lookback 5 minutes, late-event horizon 24
hours), once over the project's first 6 hours, then every simulated hour: the emulator's clock is
set to each sync's time and the sync's `end_date` to that time less the lookback. The same
scenario runs with `late_event_horizon` 0 (no re-reading: the connector before late events).

Printed per horizon: records due (shown by exports at least a horizon before the last sync),
lost and duplicated per indexing-delay bucket; over the last 24 syncs (a day in the steady state):
export requests per sync, bytes per sync and their ratio to reading each record once; the largest
state of the stream. Needs only the connector and the emulator (`pip install -e .`).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional

import orjson

from iterable_emulator import EmulatorConfig, emulator_and_connector_config
from iterable_emulator.late_audit import late_outcomes

CONNECTOR = [sys.executable, "-c", "from source_iterable.run import run; run()"]
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 3
LOOKBACK = timedelta(minutes=5)
HORIZON = timedelta(hours=24)
STREAM, DATA_TYPE = "email_send", "emailSend"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
STEADY_SYNCS = 24


@dataclass
class Sync:
    requests: int
    bytes: int
    state_bytes: int
    new_range_bytes: int


@dataclass
class Run:
    horizon_hours: int
    copies: Counter = field(default_factory=Counter)
    syncs: List[Sync] = field(default_factory=list)
    late_logs: List[str] = field(default_factory=list)


def read(config: dict, catalog: dict, state: Optional[list], workdir: Path, run: Run) -> Optional[list]:
    """One sync through the CLI; counts the records it emitted by messageId, returns its final state."""
    paths = {}
    for name, content in (("config", config), ("catalog", catalog), ("state", state)):
        if content is not None:
            paths[name] = workdir / f"{name}.json"
            paths[name].write_text(json.dumps(content))
    args = ["read", "--config", str(paths["config"]), "--catalog", str(paths["catalog"])]
    if "state" in paths:
        args += ["--state", str(paths["state"])]
    process = subprocess.Popen([*CONNECTOR, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    final_state = None
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(b'{"type":"RECORD"'):
            run.copies[orjson.loads(line)["record"]["data"]["messageId"]] += 1
        elif line.startswith(b'{"type":"STATE"'):
            final_state = orjson.loads(line)["state"]
        elif b"late events:" in line:
            run.late_logs.append(orjson.loads(line)["log"]["message"])
        elif line.startswith(b'{"type":"TRACE"') and b'"ERROR"' in line:
            raise SystemExit(f"the sync failed: {line[:2000]!r}")
    if process.wait() != 0:
        raise SystemExit(f"the sync exited with {process.returncode}")
    state_entry = {"type": "STREAM", "stream": {k: final_state["stream"][k] for k in ("stream_descriptor", "stream_state")}}
    return [state_entry]


def scenario(horizon_hours: int, events_per_day: int, syncs: int) -> tuple:
    project = EmulatorConfig(start=START, end=START + timedelta(days=DAYS), records_per_type={DATA_TYPE: events_per_day * DAYS},
                             default_records_per_type=10)
    run = Run(horizon_hours)
    workdir = Path(tempfile.mkdtemp(prefix="bench-late-"))
    with emulator_and_connector_config(project, time_scale=1 / 600, late_event_horizon=horizon_hours) as (emulator, config):
        catalog = {"streams": [{"stream": {"name": STREAM, "json_schema": {}, "supported_sync_modes": ["incremental"]},
                                "sync_mode": "incremental", "destination_sync_mode": "append",
                                "cursor_field": ["createdAt"], "primary_key": [["eventHash"]]}]}
        state = None
        previous_end = START
        for k in range(syncs):
            moment = START + timedelta(hours=6 + k)
            emulator.faults.clock_offset_s = moment.timestamp() - time.time()
            emulator.requests.clear()
            end = moment - LOOKBACK
            state = read({**config, "end_date": end.strftime(DATE_FORMAT)}, catalog, state, workdir, run)
            requests = [r for r in emulator.requests_to("export/data.json") if r.param("dataTypeName") == DATA_TYPE]
            new_range = sum(len(line) + 1 for block in emulator.data.export_blocks(
                DATA_TYPE, int(previous_end.timestamp()), int(end.timestamp())) for line in block)
            run.syncs.append(Sync(len(requests), sum(r.bytes for r in requests), len(json.dumps(state[0]["stream"]["stream_state"])),
                                  new_range))
            previous_end = end
        last = START + timedelta(hours=6 + syncs - 1)
        outcomes = late_outcomes(emulator.data, DATA_TYPE, START, START + timedelta(days=DAYS), run.copies,
                                 lambda record: record["messageId"], due_by=last - HORIZON, read_until=last - LOOKBACK)
    return run, outcomes


def report(run: Run, outcomes) -> None:
    print(f"\nlate_event_horizon = {run.horizon_hours} h")
    print(f"  {'indexing delay':<14} {'due':>8} {'lost':>7} {'duplicated':>11}")
    for o in outcomes:
        print(f"  {o.label:<14} {o.due:>8} {o.lost:>7} {o.duplicated:>11}")
    steady = run.syncs[-STEADY_SYNCS:]
    downloaded, once = sum(s.bytes for s in steady), sum(s.new_range_bytes for s in steady)
    print(f"  last {len(steady)} syncs: export requests per sync {sum(s.requests for s in steady) / len(steady):.2f} "
          f"(max {max(s.requests for s in steady)}), bytes per sync {downloaded / len(steady) / 1e6:.2f} MB, "
          f"{downloaded / once:.2f}x reading each record once")
    print(f"  largest state: {max(s.state_bytes for s in run.syncs) / 1024:.1f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events-per-day", type=int, default=200_000)
    parser.add_argument("--syncs", type=int, default=48, help="hourly syncs after the first (at least 24)")
    args = parser.parse_args()
    print(f"{args.events_per_day:,} email sends a day; a first sync over 6 hours, then {args.syncs - 1} hourly syncs")
    for horizon_hours in (24, 0):
        started = time.monotonic()
        run, outcomes = scenario(horizon_hours, args.events_per_day, args.syncs)
        report(run, outcomes)
        print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()

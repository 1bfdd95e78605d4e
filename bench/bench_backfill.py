"""Backfill of every export stream over two years, in `sync` and in `jobs` export mode.

    python bench/bench_backfill.py                      # 2,000 records per data type, 20x faster clock
    python bench/bench_backfill.py --records-per-type 20000 --speed-up 10

Run it with the dev venv's Python (`pip install -e ".[dev]"`): its editable install makes the
repository's packages importable, `integration_tests` among them.

Iterable's real limits, `--speed-up` times faster in the emulator and the connector alike: the
emulator's rate-limit windows and job durations are divided by it, and the connector is given
3/4 of Iterable's limits multiplied by it (e.g. at 20x: export 60 requests per minute instead of
4, job requests 15 per second instead of 1; the 1/4 is a margin against clock jitter). Each mode
reads all 53 export streams of the same emulated project, from a fresh start; the script prints
wall time, records/s, requests per endpoint, the ratio of the two wall times, and what the wall
times would be at Iterable's real speed (scaled waits; the connector's own work is not scaled).
"""

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from integration_tests.connector import Connector, catalog_for
from integration_tests.expected import EXPORT_STREAMS
from iterable_emulator import EmulatorConfig, emulator_and_connector_config
from iterable_emulator.connector_config import BUDGET_SHARE

START, END = "2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z"


def backfill(mode: str, records_per_type: int, speed_up: float) -> dict:
    project = EmulatorConfig(start=START, end=END, records_per_type=records_per_type, users=records_per_type)
    # The export budget matches the emulator's clock; job requests too (Iterable: 1 per second).
    job_requests_per_second = max(1, int(speed_up * BUDGET_SHARE))
    with emulator_and_connector_config(
        project, time_scale=1 / speed_up, bounded=True, export_mode=mode, export_job_requests_per_second=job_requests_per_second
    ) as (emulator, config):
        connector = Connector(Path(tempfile.mkdtemp(prefix=f"backfill-{mode}-")))
        catalog = catalog_for(connector.streams(config), sorted(EXPORT_STREAMS))
        emulator.requests.clear()
        started = time.monotonic()
        output = connector.run(*connector.read_args(config, catalog, None), timeout=4 * 3600)
        wall = time.monotonic() - started
        if output.returncode != 0:
            raise SystemExit(f"{mode} backfill failed: {json.dumps(output.errors)[:2000]}")
        requests = Counter(
            (entry.method, entry.endpoint, entry.status) for entry in emulator.requests.all() if entry.endpoint != "/api/users/getFields"
        )
        return {"mode": mode, "wall": wall, "records": sum(len(r) for r in output.records.values()), "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records-per-type", type=int, default=2000)
    parser.add_argument("--speed-up", type=float, default=20, help="how much faster than Iterable's clock")
    args = parser.parse_args()

    runs = [backfill(mode, args.records_per_type, args.speed_up) for mode in ("sync", "jobs")]
    for run in runs:
        print(f"\n{run['mode']} mode: {run['records']:,} records in {run['wall']:.1f} s "
              f"({run['records'] / run['wall']:,.0f} records/s; at most {run['wall'] * args.speed_up / 60:.0f} minutes at Iterable's real limits)")
        for (method, endpoint, status), count in sorted(run["requests"].items()):
            print(f"  {count:>6}  {method:<6} {endpoint} -> {status}")
    sync, jobs = runs
    print(f"\njobs mode backfilled {sync['wall'] / jobs['wall']:.1f}x faster than sync mode "
          f"(same {jobs['records']:,} records: {'yes' if jobs['records'] == sync['records'] else 'NO'})")


if __name__ == "__main__":
    main()

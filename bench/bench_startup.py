"""Start-up cost of a connector process: the CDK's import, `spec`, and a read with nothing new.

    python bench/bench_startup.py            # median of 5 runs each
    python bench/bench_startup.py --runs 9

Each command runs as its own process, as Airbyte runs it, and is timed from launch to exit:
- `python -c "import airbyte_cdk"`: the CDK's own import, which the connector cannot avoid;
- `source-iterable spec`;
- `source-iterable read` of `email_send` with a state one hour old, against the emulator: one
  export request that returns nothing, i.e. the cost of an incremental sync with nothing new.
The connector's own share of that read is its wall time minus the CDK's import time. Run it with
the dev venv's Python (`pip install -e ".[dev]"`); run it from another checkout (with that
checkout on `PYTHONPATH`) to compare two versions.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

from integration_tests.connector import CONNECTOR, Connector, catalog_for
from iterable_emulator import EmulatorConfig, emulator_and_connector_config

STREAM = "email_send"


def wall_s(command: List[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_s(command: List[str], runs: int) -> float:
    return statistics.median(wall_s(command) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    cdk_import = median_s([sys.executable, "-c", "import airbyte_cdk"], runs)
    spec = median_s([*CONNECTOR, "spec"], runs)
    with emulator_and_connector_config(EmulatorConfig(records_per_type=10)) as (emulator, config):
        connector = Connector(Path(tempfile.mkdtemp(prefix="bench-startup-")))
        catalog = catalog_for(connector.streams(config), [STREAM])
        hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": STREAM}, "stream_state": {"createdAt": hour_ago}}}]
        args = connector.read_args(config, catalog, state)
        emulator.requests.clear()
        empty_read = median_s([*CONNECTOR, *args], runs)
        requests_per_read = len(emulator.requests_to("export/data.json")) / runs
    print(f"median of {runs} runs, wall time from launch to exit")
    print(f"  import airbyte_cdk (the CDK's own import)   {cdk_import:6.2f} s")
    print(f"  spec                                        {spec:6.2f} s")
    print(f"  read of {STREAM} with nothing new           {empty_read:6.2f} s  ({requests_per_read:g} export request per read)")
    print(f"  the connector's own share of that read      {empty_read - cdk_import:6.2f} s  (read - CDK import)")


if __name__ == "__main__":
    main()

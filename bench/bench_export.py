"""Throughput and memory of the export path, against the project's emulator.

    python bench/bench_export.py                      # email_send, 1,000,000 records, + reference loop
    python bench/bench_export.py --records 100000     # a smaller run, e.g. to see that memory is flat
    python bench/bench_export.py --stream users --records 200000
    python bench/bench_export.py --stream list_users --records 1000000   # one list of a million members

Starts the emulator in its own process with N records, then runs, each as a subprocess whose
stdout is counted line by line:
- the connector: `source-iterable read` with an incremental catalog of the stream;
- the reference loop: one streamed request per window, orjson per line, one RECORD message per line
  (for `list_users`: one streamed `lists/getUsers` request, one RECORD message per member).
It prints records/s, wall time, CPU time and peak RSS of each, and the connector/reference ratio,
so the numbers mean something on any machine. Run it with the dev venv's Python
(`pip install -e ".[dev]"`): its editable install makes `integration_tests` importable.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from integration_tests.connector import CONNECTOR

DATA_TYPES = {"email_send": "emailSend", "users": "user", "email_open": "emailOpen", "custom_event": "customEvent",
              "list_users": "list"}
START, END = "2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z"
# The windows the connector asks for over START..END (30 days, then the rest): the reference
# loop requests the same ones.
CONNECTOR_WINDOWS = ["2024-01-01 00:00:00|2024-01-31 00:00:00", "2024-01-31 00:00:00|2024-03-01 00:00:00"]

REFERENCE_LOOP = r'''
import sys, time, orjson, requests
base_url, api_key, data_type, windows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
out = sys.stdout.buffer
for window in windows:
    start, end = window.split("|")
    params = {"dataTypeName": data_type, "startDateTime": start, "endDateTime": end}
    with requests.get(f"{base_url}/export/data.json", params=params, headers={"Api-Key": api_key}, stream=True) as response:
        emitted_at = int(time.time() * 1000)
        for line in response.iter_lines(chunk_size=1 << 16):
            if line:
                out.write(orjson.dumps({"type": "RECORD", "record": {"stream": data_type, "data": orjson.loads(line), "emitted_at": emitted_at}}) + b"\n")
'''

LIST_REFERENCE_LOOP = r"""
import sys, time, orjson, requests
base_url, api_key = sys.argv[1], sys.argv[2]
out = sys.stdout.buffer
headers = {"Api-Key": api_key}
list_id = requests.get(f"{base_url}/lists", headers=headers).json()["lists"][0]["id"]
with requests.get(f"{base_url}/lists/getUsers", params={"listId": list_id}, headers=headers, stream=True) as response:
    emitted_at = int(time.time() * 1000)
    for line in response.iter_lines(chunk_size=1 << 16):
        if line:
            record = {"stream": "list_users", "data": {"listId": list_id, "email": line.decode()}, "emitted_at": emitted_at}
            out.write(orjson.dumps({"type": "RECORD", "record": record}) + b"\n")
"""


@dataclass
class Run:
    name: str
    records: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s

    def row(self) -> str:
        return (
            f"{self.name:<28} {self.records:>10,} {self.records_per_s:>12,.0f} {self.wall_s:>8.1f} "
            f"{self.cpu_s:>8.1f} {self.peak_rss_mb:>9.0f}"
        )


def start_emulator(stream: str, records: int) -> Tuple[subprocess.Popen, str, str]:
    if stream == "users":
        size = ["--users", str(records), "--records-per-type", "1"]
    elif stream == "list_users":
        size = ["--users", str(records), "--lists", "1", "--records-per-type", "1"]
    else:
        size = ["--records-per-type", str(records)]
    process = subprocess.Popen(
        [sys.executable, "-m", "iterable_emulator", "--start", START, "--end", END, *size],
        stdout=subprocess.PIPE,
        text=True,
    )
    base_url = process.stdout.readline().strip().split("=", 1)[1]
    api_key = process.stdout.readline().strip().split("=", 1)[1]
    return process, base_url, api_key


def measure(name: str, command: List[str]) -> Run:
    """Runs `command`, counts the RECORD lines it prints, and reads its CPU time and peak RSS."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    records = 0
    for line in process.stdout:
        if line.startswith(b'{"type":"RECORD"'):
            records += 1
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return Run(name, records, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def connector_command(stream: str, base_url: str, api_key: str, workdir: Path) -> List[str]:
    config = {
        "api_key": api_key,
        "start_date": START,
        "end_date": END,
        "base_url": base_url,
        "export_requests_per_minute": 6000,
    }
    cursor = "profileUpdatedAt" if stream == "users" else "createdAt"
    full_refresh = stream == "list_users"
    catalog = {
        "streams": [
            {
                "stream": {"name": stream, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                "sync_mode": "full_refresh" if full_refresh else "incremental",
                "destination_sync_mode": "append",
                "cursor_field": [] if full_refresh else [cursor],
            }
        ]
    }
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(catalog))
    return [*CONNECTOR, "read", "--config", str(workdir / "config.json"), "--catalog", str(workdir / "catalog.json")]


def reference_command(stream: str, base_url: str, api_key: str, windows: List[str]) -> List[str]:
    if stream == "list_users":
        return [sys.executable, "-c", LIST_REFERENCE_LOOP, base_url, api_key]
    return [sys.executable, "-c", REFERENCE_LOOP, base_url, api_key, DATA_TYPES[stream], *windows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream", choices=sorted(DATA_TYPES), default="email_send")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    emulator, base_url, api_key = start_emulator(args.stream, args.records)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            runs = [measure(f"connector {args.stream}", connector_command(args.stream, base_url, api_key, Path(workdir)))]
            if not args.skip_reference:
                runs.append(measure("reference loop", reference_command(args.stream, base_url, api_key, CONNECTOR_WINDOWS)))
    finally:
        emulator.terminate()
        emulator.wait()

    print(f"{'run':<28} {'records':>10} {'records/s':>12} {'wall s':>8} {'cpu s':>8} {'peak MB':>9}")
    for run in runs:
        print(run.row())
    if len(runs) == 2:
        print(f"connector / reference: {runs[0].records_per_s / runs[1].records_per_s:.1%} of the reference's records/s")


if __name__ == "__main__":
    main()

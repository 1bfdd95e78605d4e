"""A large Iterable organisation's first sync, in `jobs` and in `sync` export mode (issue #14).

    python bench/bench_scale.py                  # 5M users, 10M email events over 2024, a 5M-member list
    python bench/bench_scale.py --scale 0.01     # the same at 1%: about a minute
    python bench/bench_scale.py --users 200000 --events 0 --list-members 1000 --modes jobs

Run it with the dev venv's Python (`pip install -e ".[dev]"`): its editable install makes the
repository's packages importable, `integration_tests` among them.

The emulated project (generated lazily: the emulator's memory does not grow with it):
- `--users` users with every field the emulator's user export serves;
- `--events` email events over one year (2024), split over the 8 email export streams as
  `EMAIL_SHARES` says (half of them sends);
- one list, holding the first `--list-members` users (`EmulatorConfig.listed_users`).

For each mode (`--modes`), a fresh emulator with Iterable's rate limits and export job durations
`--speed-up` times faster, and the connector (`source-iterable read`, a subprocess) reading
`users`, the 8 email streams and `list_users` from scratch, with the matching budgets (3/4 of
the scaled limits, as `bench_backfill.py`). Export file URLs stay valid Iterable's 30 minutes of
real time (`--file-url-ttl`): the connector's own work is not sped up, so a scaled lifetime
would be 20 times stricter than Iterable's. The connector's stdout goes to a counting process
(`COUNTER`), as a destination would read it; its other messages are kept in a file. Per mode it prints records, records/s and the span
in which each stream's records came out, and checks every count against what the emulator
serves (`EmulatorData.export_count`, the list size); wall time, CPU time of the connector and of
the emulator; peak RSS of both, sampled every 0.5 s from /proc (the emulator runs in a process
forked from this script for the mode, so its number includes the script's few MB); requests per
endpoint from the emulator's request log. Then both modes side by side, and the command that
reproduces them. Exits non-zero if the connector failed or a count differs.
"""

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from integration_tests.connector import CONNECTOR, Connector, catalog_for
from integration_tests.expected import EXPORT_STREAMS
from iterable_emulator import EmulatorConfig, Faults, IterableEmulator, emulator_and_connector_config
from iterable_emulator.connector_config import BUDGET_SHARE

START, END = "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"
USERS, EVENTS, LIST_MEMBERS = 5_000_000, 10_000_000, 5_000_000
# How the events split over the email streams: sends, then what recipients did with them.
EMAIL_SHARES = {
    "email_send": 0.50, "email_open": 0.25, "email_click": 0.06, "email_send_skip": 0.07,
    "email_bounce": 0.04, "email_subscribe": 0.04, "email_unsubscribe": 0.03, "email_complaint": 0.01,
}
GROUPS = {"users": ["users"], "email events (8 streams)": list(EMAIL_SHARES), "list_users": ["list_users"]}
STREAMS = [stream for streams in GROUPS.values() for stream in streams]
SAMPLE_EVERY_S = 0.5

# Counts the connector's RECORD lines per stream as they arrive, in C-speed scans of 1 MiB reads,
# notes when each stream's records came (wall clock), and writes every other message (LOG, STATE,
# TRACE) to the file named first.
COUNTER = r'''
import json, re, sys, time
messages, streams = open(sys.argv[1], "wb"), sys.argv[2:]
keys = {s: b'\n{"type":"RECORD","record":{"stream":"' + s.encode() + b'"' for s in streams}
counts, first, last, records = dict.fromkeys(streams, 0), {}, {}, 0
other = re.compile(rb'\n(\{"type":"(?!RECORD")[^\n]*)')

def scan(lines, now):
    global records
    for stream, key in keys.items():
        n = lines.count(key)
        if n:
            counts[stream] += n
            first.setdefault(stream, now)
            last[stream] = now
    records += lines.count(b'\n{"type":"RECORD"')
    for match in other.finditer(lines):
        messages.write(match.group(1) + b"\n")

tail = b"\n"
while chunk := sys.stdin.buffer.read1(1 << 20):
    buffer = tail + chunk
    cut = buffer.rfind(b"\n")
    scan(buffer[:cut], time.time())
    tail = buffer[cut:]
scan(tail, time.time())
print(json.dumps({"records": records, "counts": counts, "first": first, "last": last}))
'''


@dataclass
class Sizes:
    users: int
    events: int
    list_members: int
    speed_up: float
    file_url_ttl_s: float
    files_per_response: int

    def events_per_stream(self) -> Dict[str, int]:
        """`events` split by `EMAIL_SHARES`, remainders to the biggest shares (the total is exact)."""
        counts = {stream: int(self.events * share) for stream, share in EMAIL_SHARES.items()}
        for stream in sorted(EMAIL_SHARES, key=EMAIL_SHARES.get, reverse=True)[: self.events - sum(counts.values())]:
            counts[stream] += 1
        return counts

    def project(self) -> EmulatorConfig:
        per_type = {EXPORT_STREAMS[stream]: count for stream, count in self.events_per_stream().items()}
        return EmulatorConfig(start=START, end=END, users=self.users, lists=1, listed_users=self.list_members,
                              records_per_type=per_type, default_records_per_type=0)

    def command(self, modes: List[str]) -> str:
        return (f"{sys.executable} bench/bench_scale.py --users {self.users} --events {self.events} "
                f"--list-members {self.list_members} --speed-up {self.speed_up:g} "
                f"--file-url-ttl {self.file_url_ttl_s:g} --files-per-response {self.files_per_response} "
                f"--modes {','.join(modes)}")


class RssSampler(threading.Thread):
    """VmRSS (MB) of some processes, read from /proc every `SAMPLE_EVERY_S` seconds: the peak,
    and the peak within each quarter of the run (whether memory grows as the run goes on)."""

    def __init__(self, pids: Dict[str, int]):
        super().__init__(daemon=True)
        self.pids, self.peak = pids, dict.fromkeys(pids, 0.0)
        self.samples: List[Tuple[float, float]] = []  # (seconds since start, connector MB)
        self._done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while True:
            for name, pid in self.pids.items():
                rss = vm_rss_mb(pid) or 0.0
                self.peak[name] = max(self.peak[name], rss)
                if name == "connector" and rss:
                    self.samples.append((time.monotonic() - started, rss))
            if self._done.wait(SAMPLE_EVERY_S):
                return

    def stop(self) -> Dict[str, float]:
        self._done.set()
        self.join()
        return self.peak

    def quarters(self) -> List[float]:
        """The connector's peak RSS in each quarter of the sampled time."""
        if not self.samples:
            return []
        end = self.samples[-1][0] or 1.0
        peaks = [0.0] * 4
        for at, rss in self.samples:
            quarter = min(3, int(4 * at / end))
            peaks[quarter] = max(peaks[quarter], rss)
        return peaks


def vm_rss_mb(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None


@dataclass
class Run:
    mode: str
    returncode: int
    wall_s: float
    started: float
    counted: dict
    expected: Dict[str, int]
    connector_cpu_s: float
    connector_max_rss_mb: float
    emulator_cpu_s: float
    emulator_start_rss_mb: float
    peak_rss_mb: Dict[str, float]
    connector_rss_quarters: List[float]
    load: Tuple[float, float]
    messages: dict
    requests: Counter = field(default_factory=Counter)
    served: Counter = field(default_factory=Counter)
    workdir: str = ""
    emulator_errors: int = 0

    @property
    def records(self) -> int:
        return sum(self.counted["counts"].values())

    def group(self, streams: List[str]) -> Tuple[int, int, float]:
        """Records, expected records and the seconds from the group's first record to its last."""
        records = sum(self.counted["counts"][s] for s in streams)
        expected = sum(self.expected[s] for s in streams)
        seen = [s for s in streams if s in self.counted["first"]]
        span = max(self.counted["last"][s] for s in seen) - min(self.counted["first"][s] for s in seen) if seen else 0.0
        return records, expected, span

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and all(self.counted["counts"][s] == self.expected[s] for s in STREAMS)


def summarize(messages_path: Path) -> dict:
    """What the connector said besides records: errors, warnings, each stream's last status, states."""
    summary: dict = {"states": 0, "errors": [], "warnings": 0, "warning_samples": [], "statuses": {}}
    with open(messages_path, "rb") as messages:
        for line in messages:
            message = json.loads(line)
            if message["type"] == "STATE":
                summary["states"] += 1
            elif message["type"] == "LOG" and message["log"]["level"] in ("WARN", "ERROR", "FATAL"):
                summary["warnings"] += 1
                text = f"{message['log']['level']} {message['log']['message']}"
                if len(summary["warning_samples"]) < 5 and text[:60] not in {w[:60] for w in summary["warning_samples"]}:
                    summary["warning_samples"].append(text[:300])
            elif message["type"] == "TRACE" and message["trace"]["type"] == "ERROR":
                error = message["trace"]["error"]
                summary["errors"].append(f"{error.get('message')} [{error.get('internal_message')}]"[:1000])
            elif message["type"] == "TRACE" and message["trace"]["type"] == "STREAM_STATUS":
                status = message["trace"]["stream_status"]
                summary["statuses"][status["stream_descriptor"]["name"]] = status["status"]
    return summary


def expected_counts(emulator: IterableEmulator, sizes: Sizes) -> Dict[str, int]:
    data, config = emulator.data, emulator.config
    counts = {stream: data.export_count(EXPORT_STREAMS[stream], config.start_ms // 1000, config.end_ms // 1000)
              for stream in ["users", *EMAIL_SHARES]}
    return {**counts, "list_users": sizes.list_members}


def read(mode: str, sizes: Sizes, timeout_s: Optional[float]) -> Run:
    """One sync of `STREAMS` from scratch in `mode`, on a fresh emulator."""
    job_requests_per_second = max(1, int(sizes.speed_up * BUDGET_SHARE))
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-scale-{mode}-"))
    # This process hosts the emulator: what its server threads print (clients that reset idle
    # connections) goes to a file, counted below.
    sys.stderr = open(workdir / "emulator-stderr.txt", "w")
    with emulator_and_connector_config(
        sizes.project(), time_scale=1 / sizes.speed_up, bounded=True, export_mode=mode,
        export_job_requests_per_second=job_requests_per_second,
    ) as (emulator, config):
        # Scaled like every duration (see --file-url-ttl).
        emulator.faults.file_url_ttl_s = sizes.file_url_ttl_s
        emulator.faults.job_files_per_response = sizes.files_per_response
        connector = Connector(workdir)
        catalog = catalog_for(connector.streams(config), STREAMS)
        expected = expected_counts(emulator, sizes)
        emulator.requests.clear()
        emulator_start_rss, load_before = vm_rss_mb(os.getpid()), os.getloadavg()[0]
        cpu_before = _own_cpu_s()
        stderr = open(workdir / "stderr.txt", "w+")
        started = time.time()
        process = subprocess.Popen([*CONNECTOR, *connector.read_args(config, catalog, None)],
                                   stdout=subprocess.PIPE, stderr=stderr)
        counter = subprocess.Popen([sys.executable, "-c", COUNTER, str(workdir / "messages.jsonl"), *STREAMS],
                                   stdin=process.stdout, stdout=subprocess.PIPE)
        process.stdout.close()
        sampler = RssSampler({"connector": process.pid, "emulator": os.getpid()})
        sampler.start()
        killer = threading.Timer(timeout_s, process.kill) if timeout_s else None
        if killer:
            killer.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - started
        if killer:
            killer.cancel()
        counted = json.loads(counter.communicate()[0])
        peak = sampler.stop()
        requests, served = Counter(), Counter()
        for entry in emulator.requests.all():
            requests[(entry.method, entry.endpoint, entry.status)] += 1
            served[(entry.method, entry.endpoint, entry.status)] += entry.records
        sys.stderr.flush()
        return Run(mode, process.returncode, wall, started, counted, expected, usage.ru_utime + usage.ru_stime,
                   usage.ru_maxrss / 1024, _own_cpu_s() - cpu_before, emulator_start_rss, peak,
                   sampler.quarters(), (load_before, os.getloadavg()[0]), summarize(workdir / "messages.jsonl"), requests, served,
                   str(workdir), (workdir / "emulator-stderr.txt").read_text().count("Traceback"))


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def print_run(run: Run) -> None:
    print(f"\n== {run.mode} mode: exit code {run.returncode}, {run.records:,} records in {run.wall_s:,.1f} s "
          f"({run.records / run.wall_s:,.0f} records/s)")
    print(f"  {'stream':<26} {'records':>11} {'expected':>11} {'match':>5} {'span s':>8} {'records/s':>10}")
    for name, streams in GROUPS.items():
        rows = [(s, [s]) for s in streams] + ([(name, streams)] if len(streams) > 1 else [])
        for label, members in rows:
            records, expected, span = run.group(members)
            rate = f"{records / span:,.0f}" if span > 0 else "-"
            print(f"  {label:<26} {records:>11,} {expected:>11,} {'yes' if records == expected else 'NO':>5} "
                  f"{span:>8.1f} {rate:>10}")
    print(f"  connector: CPU {run.connector_cpu_s:,.0f} s ({run.connector_cpu_s / run.wall_s:.0%} of the wall time), "
          f"peak RSS {run.peak_rss_mb['connector']:,.0f} MB sampled (kernel's max {run.connector_max_rss_mb:,.0f} MB); "
          f"peak per quarter of the run {' / '.join(f'{mb:,.0f}' for mb in run.connector_rss_quarters)} MB")
    print(f"  emulator:  CPU {run.emulator_cpu_s:,.0f} s, RSS {run.emulator_start_rss_mb:,.0f} MB at the start, "
          f"peak {run.peak_rss_mb['emulator']:,.0f} MB sampled")
    messages = run.messages
    print(f"  load average (1 min) {run.load[0]:.2f} before, {run.load[1]:.2f} after; "
          f"STATE messages {messages['states']:,}; requests (lines served):")
    for (method, endpoint, status), count in sorted(run.requests.items(), key=lambda item: item[0][1:]):
        lines = run.served[(method, endpoint, status)]
        print(f"    {count:>7,}  {method:<6} {endpoint} -> {status}" + (f"  ({lines:,} lines)" if lines else ""))
    unfinished = {stream: status for stream, status in messages["statuses"].items() if status != "COMPLETE"}
    if unfinished:
        print(f"  streams not COMPLETE: {unfinished}")
    for error in messages["errors"]:
        print(f"  ERROR {error}")
    if messages["warnings"]:
        print(f"  {messages['warnings']:,} warnings, e.g.:")
        for warning in messages["warning_samples"]:
            print(f"    {warning}")
    if run.emulator_errors:
        print(f"  the emulator's server printed {run.emulator_errors} tracebacks (emulator-stderr.txt)")
    stderr = (Path(run.workdir) / "stderr.txt").read_text()
    if run.returncode != 0 and stderr:
        print(f"  connector stderr (end):\n{stderr[-3000:]}")
    print(f"  files (config, catalog, connector messages but records, stderr): {run.workdir}")


def print_side_by_side(runs: List[Run]) -> None:
    print("\n" + f"{'':<34}" + "".join(f"{run.mode + ' mode':>16}" for run in runs))
    rows = [
        ("wall s", lambda r: f"{r.wall_s:,.0f}"),
        ("records", lambda r: f"{r.records:,}"),
        ("records/s", lambda r: f"{r.records / r.wall_s:,.0f}"),
        ("counts match the emulator", lambda r: "yes" if r.ok else "NO"),
    ]
    for name, streams in GROUPS.items():
        rows.append((f"{name} records/s", lambda r, s=streams: _rate(r.group(s))))
    rows += [
        ("connector CPU s", lambda r: f"{r.connector_cpu_s:,.0f}"),
        ("connector peak RSS MB", lambda r: f"{r.peak_rss_mb['connector']:,.0f}"),
        ("  per quarter of the run", lambda r: "/".join(f"{mb:.0f}" for mb in r.connector_rss_quarters)),
        ("emulator peak RSS MB (at start)", lambda r: f"{r.peak_rss_mb['emulator']:,.0f} ({r.emulator_start_rss_mb:,.0f})"),
    ]
    endpoints = sorted({endpoint for run in runs for (_, endpoint, _) in run.requests})
    for endpoint in endpoints:
        rows.append((f"requests {endpoint.removeprefix('/api/')}",
                     lambda r, e=endpoint: f"{sum(n for (_, ep, _), n in r.requests.items() if ep == e):,}"))
    for label, cell in rows:
        print(f"{label:<34}" + "".join(f"{cell(run):>16}" for run in runs))


def _rate(group: Tuple[int, int, float]) -> str:
    records, _, span = group
    return f"{records / span:,.0f}" if span > 0 else "-"


def arguments() -> Tuple[Sizes, List[str], Optional[float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the default sizes (e.g. 0.01)")
    parser.add_argument("--users", type=int, help=f"default {USERS:,} x scale")
    parser.add_argument("--events", type=int, help=f"email events, default {EVENTS:,} x scale")
    parser.add_argument("--list-members", type=int, help=f"default {LIST_MEMBERS:,} x scale, at most --users")
    parser.add_argument("--speed-up", type=float, default=20, help="how much faster than Iterable's clock")
    parser.add_argument("--file-url-ttl", type=float,
                        help="lifetime of an export file URL in Iterable's seconds, scaled like every duration "
                             "(default 1800 x speed-up: Iterable's 30 minutes of real time, because the "
                             "connector's own work is not faster; 1800 scales it too)")
    parser.add_argument("--files-per-response", type=int, default=Faults().job_files_per_response,
                        help="at most this many files per export/{jobId}/files answer (default %(default)s)")
    parser.add_argument("--modes", default="jobs,sync", help="export modes to run, in order")
    parser.add_argument("--timeout", type=float, help="kill a connector run after this many seconds")
    args = parser.parse_args()
    users = args.users if args.users is not None else round(USERS * args.scale)
    list_members = args.list_members if args.list_members is not None else round(LIST_MEMBERS * args.scale)
    events = args.events if args.events is not None else round(EVENTS * args.scale)
    if not 1 <= list_members <= users:
        parser.error("--list-members must be between 1 and --users (the list holds the first users)")
    modes = args.modes.split(",")
    if not set(modes) <= {"jobs", "sync", "auto"}:
        parser.error("--modes takes jobs, sync and auto")
    file_url_ttl_s = args.file_url_ttl if args.file_url_ttl is not None else 1800 * args.speed_up
    sizes = Sizes(users, events, list_members, args.speed_up, file_url_ttl_s, args.files_per_response)
    return sizes, modes, args.timeout


def main() -> None:
    sizes, modes, timeout_s = arguments()
    print(f"{sizes.users:,} users, {sizes.events:,} email events over 2024 "
          f"({', '.join(f'{s} {n:,}' for s, n in sizes.events_per_stream().items())}), "
          f"a list of {sizes.list_members:,} members; Iterable's limits and job durations {sizes.speed_up:g}x faster, "
          f"file URLs valid {sizes.file_url_ttl_s / sizes.speed_up:,.0f} s; {os.cpu_count()} CPUs")
    print(f"command: {sizes.command(modes)}", flush=True)
    runs = []
    for mode in modes:
        # A fresh process per mode hosts its emulator, so that its RSS is that mode's alone.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as process:
            runs.append(process.submit(read, mode, sizes, timeout_s).result())
        print_run(runs[-1])
        sys.stdout.flush()
    print_side_by_side(runs)
    print(f"\ncommand: {sizes.command(modes)}")
    if not all(run.ok for run in runs):
        raise SystemExit("a connector run failed or a count differs from what the emulator served")


if __name__ == "__main__":
    main()

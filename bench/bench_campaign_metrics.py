"""campaigns_metrics in an organisation with 20,000 campaigns, 300 of them sending: a first sync,
then a sync a day later, each checked campaign by campaign.

    python bench/bench_campaign_metrics.py
    python bench/bench_campaign_metrics.py --campaigns 5000 --sending 100

The campaigns were created evenly over 2,000 days, so the newest 300 (those sending) span the last
30 days; all others have finished. Iterable allows 10 `campaigns/metrics` requests a minute; the
emulator and the connector run 60 times faster, and the printed minutes are Iterable's (requests
at 10 a minute). The second sync must read only the campaigns whose metrics can still change, and
afterwards every campaign's newest metrics must equal what Iterable serves at the second sync.
Needs only the connector and the emulator (`pip install -e .`).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import orjson

from iterable_emulator import EmulatorConfig, emulator_and_connector_config

CONNECTOR = [sys.executable, "-c", "from source_iterable.run import run; run()"]
END = datetime(2025, 6, 25, tzinfo=timezone.utc)
SPAN_DAYS = 2000
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CATALOG = {"streams": [{"stream": {"name": "campaigns_metrics", "json_schema": {}, "supported_sync_modes": ["incremental"]},
                        "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
                        "cursor_field": ["metricsReadAt"], "primary_key": [["id"]]}]}


def sync(config: dict, state: Optional[list], workdir: Path) -> Tuple[Dict[int, dict], list, float]:
    """One sync through the CLI: the metrics it emitted by campaign id, its final state, its wall time."""
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(CATALOG))
    args = ["read", "--config", str(workdir / "config.json"), "--catalog", str(workdir / "catalog.json")]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        args += ["--state", str(workdir / "state.json")]
    started = time.monotonic()
    completed = subprocess.run([*CONNECTOR, *args], capture_output=True, check=False)
    wall = time.monotonic() - started
    emitted, final_state = {}, None
    for line in completed.stdout.splitlines():
        if line.startswith(b'{"type":"RECORD"'):
            record = orjson.loads(line)["record"]["data"]
            emitted[record["id"]] = record["data"]
        elif line.startswith(b'{"type":"STATE"'):
            final_state = orjson.loads(line)["state"]
    if completed.returncode != 0 or final_state is None:
        raise SystemExit(f"the sync failed: {completed.stdout[-2000:]!r}")
    return emitted, [{"type": "STREAM", "stream": {k: final_state["stream"][k] for k in ("stream_descriptor", "stream_state")}}], wall


def as_text(data: dict) -> Dict[str, str]:
    return {k: v if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v) for k, v in data.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--campaigns", type=int, default=20_000)
    parser.add_argument("--sending", type=int, default=300)
    args = parser.parse_args()
    project = EmulatorConfig(start=END - timedelta(days=SPAN_DAYS), end=END, campaigns=args.campaigns,
                             sending_campaigns=args.sending, records_per_type=0, users=10, lists=1)
    workdir = Path(tempfile.mkdtemp(prefix="bench-campaign-metrics-"))
    print(f"{args.campaigns:,} campaigns, {args.sending:,} sending; Iterable's limits 60x faster")
    print(f"{'sync':<22} {'metrics requests':>16} {'campaigns read':>15} {'at Iterable speed':>18} {'wall':>7}")
    with emulator_and_connector_config(project) as (emulator, config):
        config = {k: v for k, v in config.items() if k != "end_date"}
        state = None
        latest: Dict[int, dict] = {}
        moments: List[datetime] = [END, END + timedelta(days=1)]
        for label, moment in zip(("first", "a day later"), moments):
            emulator.faults.clock_offset_s = moment.timestamp() - time.time()
            emulator.requests.clear()
            emitted, state, wall = sync({**config, "end_date": moment.strftime(DATE_FORMAT)}, state, workdir)
            latest.update(emitted)
            requests = len(emulator.requests_to("campaigns/metrics"))
            print(f"{label:<22} {requests:>16,} {len(emitted):>15,} {requests / 10:>14.1f} min {wall:>6.1f}s")
        ids = [c["id"] for c in emulator.data.campaigns()]
        served = {int(r["id"]): {k: v for k, v in r.items() if v != ""}
                  for r in emulator.data.campaign_metrics_rows(ids, now=moments[-1])}
    wrong = [i for i in ids if as_text(latest.get(i, {})) != served[i]]
    print(f"every campaign's newest metrics equal Iterable's at the last sync: {not wrong} ({len(wrong)} differ)")
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

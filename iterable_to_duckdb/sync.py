"""The main job: sync all streams of source-iterable through PyAirbyte into a local DuckDB file.

    iterable-to-duckdb                         # no account: a local emulator
    ITERABLE_API_KEY=... iterable-to-duckdb    # your Iterable project
    iterable-to-duckdb --config secrets/config.json --duckdb data/iterable.duckdb

(`python -m iterable_to_duckdb` is the same.)

Without an account it starts the bundled Iterable emulator on 127.0.0.1 and syncs a small,
deterministic project with 29 days of data up to midnight UTC today, with Iterable's rate limits
60 times faster. With an account it syncs Iterable itself: `ITERABLE_API_KEY` (plus the optional
`ITERABLE_START_DATE` and `ITERABLE_REGION`), or `--config` with the connector's own config file.
It ends with the rows of every stream's table in the DuckDB file (default `.cache/iterable.duckdb`).
Run it again to sync incrementally: PyAirbyte keeps each stream's state in the DuckDB file.
"""

import argparse
import json
import os
import shutil
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

from iterable_emulator import NO_DELAY, EmulatorConfig, IndexingDelays, emulator_and_connector_config

if TYPE_CHECKING:
    import airbyte

DEFAULT_DUCKDB = Path(".cache/iterable.duckdb")
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_START_DAYS = 30
# The demo data ends at midnight UTC today, so every run of a day serves the same project (the
# emulator derives every timestamp from the data's span). 29 days: the connector's first export
# window, 30 days, then reaches past now, so a sync costs one export request per stream.
DEMO_DAYS = 29
DEMO_SEED = 1


def parse_arguments(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="iterable-to-duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sync all Iterable streams through PyAirbyte into a local DuckDB file.\n"
        "Without ITERABLE_API_KEY or --config it syncs a local Iterable emulator (no account needed).\n"
        "Run it again to sync incrementally.",
        epilog="environment:\n"
        "  ITERABLE_API_KEY     a server-side Iterable API key (never printed)\n"
        f"  ITERABLE_START_DATE  YYYY-MM-DDTHH:MM:SSZ (default: {DEFAULT_START_DAYS} days ago, midnight UTC)\n"
        "  ITERABLE_REGION      US (default) or EU",
    )
    parser.add_argument("--config", type=Path, metavar="PATH", help="the connector's config file (JSON)")
    parser.add_argument("--duckdb", type=Path, metavar="PATH", default=DEFAULT_DUCKDB, help="default: %(default)s")
    # For tests: where the emulator's data ends, so that every run serves the same project.
    parser.add_argument("--demo-data-end", type=_utc_datetime, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _utc_datetime(text: str) -> datetime:
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=timezone.utc)


def midnight_utc() -> datetime:
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def account_config(config_file: Optional[Path], environ: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """The connector config for the user's Iterable project, or `None` if none is given."""
    if config_file is not None:
        return json.loads(config_file.read_text())
    if not environ.get("ITERABLE_API_KEY"):
        return None
    default_start = (midnight_utc() - timedelta(days=DEFAULT_START_DAYS)).strftime(DATE_FORMAT)
    return {
        "api_key": environ["ITERABLE_API_KEY"],
        "start_date": environ.get("ITERABLE_START_DATE") or default_start,
        "region": environ.get("ITERABLE_REGION") or "US",
    }


def demo_emulator_config(data_end: datetime) -> EmulatorConfig:
    """The demo project: the emulator's default sizes (50 records per event type, 40 users, 3 lists),
    every record indexed at its createdAt, so that each run of a day shows the same rows (the
    emulator's default indexes some records up to a day late, as Iterable can)."""
    return EmulatorConfig(seed=DEMO_SEED, start=data_end - timedelta(days=DEMO_DAYS), end=data_end,
                          indexing_delays=IndexingDelays(NO_DELAY))


def pyairbyte():
    """PyAirbyte, offline and without telemetry: it reads these variables when imported."""
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Google's client libraries, which PyAirbyte imports, warn about Python 3.11's end of life.
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import airbyte
    except ImportError as error:
        raise RuntimeError(f"{error}: pip install -e '.[demo]' (PyAirbyte needs Python 3.11 or 3.12)") from error
    return airbyte


def connector_source(config: Mapping[str, Any]) -> "airbyte.Source":
    """The connector as a PyAirbyte source: the `source-iterable` script installed next to this Python."""
    executable = shutil.which("source-iterable", path=str(Path(sys.executable).parent))
    if executable is None:
        raise RuntimeError(f"source-iterable is not installed next to {sys.executable}: pip install -e '.[demo]'")
    return pyairbyte().get_source("source-iterable", config=dict(config), local_executable=executable)


def sync(source: "airbyte.Source", duckdb_path: Path) -> Dict[str, int]:
    """Reads every stream into the DuckDB file (incrementally where it holds state); rows per table."""
    cache = pyairbyte().DuckDBCache(db_path=str(duckdb_path), schema_name="main")
    source.select_all_streams()
    streams = sorted(source.get_selected_streams())
    print(f"Syncing {len(streams)} streams into {duckdb_path} ...", flush=True)
    # The connector validates its config itself; PyAirbyte's validation would cost a `spec` run.
    source.read(cache=cache, skip_validation=True)
    return {stream: len(cache[stream]) for stream in streams}


def print_summary(rows: Mapping[str, int], duckdb_path: Path) -> None:
    width = max(map(len, rows))
    print(f"\n{'stream':<{width}}  {'rows':>8}")
    for stream, count in rows.items():
        print(f"{stream:<{width}}  {count:>8}")
    print(f"{'total':<{width}}  {sum(rows.values()):>8}")
    print(f"\nDuckDB file: {duckdb_path.resolve()} (schema main, one table per stream)")


def sync_account(config: Mapping[str, Any], duckdb_path: Path) -> Dict[str, int]:
    """Checks the connection first, so that a wrong key or region fails at once with the connector's advice."""
    source = connector_source(config)
    print("Checking the connection to Iterable ...", flush=True)
    source.check()
    return sync(source, duckdb_path)


def sync_demo(duckdb_path: Path, data_end: datetime) -> Dict[str, int]:
    """Syncs the demo project. The config has no `end_date`, so the next run reads only what is new.

    Iterable's rate limits run 60 times faster (4 exports per second; the connector asks for 3).
    """
    with emulator_and_connector_config(demo_emulator_config(data_end)) as (emulator, config):
        print(
            f"No ITERABLE_API_KEY or --config given: started the Iterable emulator at {emulator.base_url} "
            f"(demo data from {config['start_date']} to {data_end.strftime(DATE_FORMAT)})",
            flush=True,
        )
        return sync(connector_source(config), duckdb_path)


def main(argv: Optional[list] = None) -> int:
    args = parse_arguments(argv)
    try:
        config = account_config(args.config, os.environ)
    except (OSError, ValueError) as error:
        print(f"Cannot read the config file {args.config}: {error}", file=sys.stderr)
        return 2
    try:
        if config is None:
            rows = sync_demo(args.duckdb, args.demo_data_end or midnight_utc())
        else:
            rows = sync_account(config, args.duckdb)
    except Exception as error:  # PyAirbyte's errors name the failure and the connector's log file
        print(f"\nSync failed: {error}", file=sys.stderr)
        return 1
    print_summary(rows, args.duckdb)
    return 0
